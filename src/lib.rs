//! Data-parallel maps that pick their own parallelism.
//!
//! Put `#[amorsize::parallel]` on an ordinary per-item function. The function stays exactly as
//! written; beside it appears `par_<name>`, which maps it over a batch of items and returns a
//! `Vec` of results in input order. The first call times its own first items (real work,
//! nothing runs twice), learns the per-item cost and the machine's cost of going parallel,
//! and caches the decision: a plain loop when the work is small, a rayon parallel map with a
//! sensible minimum split length when it is large. Later calls decide from the cache in
//! nanoseconds, for whatever length they bring.
//!
//! ```
//! #[amorsize::parallel]
//! fn score(x: &u64) -> u64 {
//!     (0..100).fold(*x, |acc, i| acc.wrapping_mul(6364136223846793005).wrapping_add(i))
//! }
//!
//! let items: Vec<u64> = (0..100_000).collect();
//! let scores = par_score(&items);
//! assert_eq!(scores, items.iter().map(score).collect::<Vec<_>>());
//! println!("{}", amorsize::report()); // what it chose, and why
//! ```
//!
//! Without the macro, the same runtime is available as [`map`] and [`map_slice`] over a
//! [`Site`] you declare.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub use amorsize_core::{
    machine, map, map_slice, mode, model, report, set_mode, with_max_threads, Cause, Costs,
    Decision, IntoItems, Machine, Mode, Nanos, ParIter, ParseModeError, PerItem, Plan, RangeItems,
    Report, Site, SiteReport, MODE_ENV,
};

/// Generates `par_<name>`, a batch companion of a per-item function that picks a plain loop
/// or a rayon parallel map by measuring the work.
///
/// ```
/// #[amorsize::parallel]
/// fn double(x: &u64) -> u64 {
///     x * 2
/// }
///
/// assert_eq!(par_double(&vec![1, 2, 3]), vec![2, 4, 6]);
/// assert_eq!(double(&5), 10); // the function itself is unchanged
/// ```
///
/// # Accepted shapes
///
/// The first parameter (after `&self`, for methods) receives one item; the companion has the
/// function's visibility and returns `Vec<R>` in input order.
///
/// | per-item function | companion call |
/// |---|---|
/// | `fn f(x: &T) -> R` | `par_f(&items)`: any slice, `&Vec` or array whose elements borrow as `T` (`S: Borrow<T> + Sync`) |
/// | `fn f(s: &str) -> R` | `par_f(&lines)` with `Vec<String>` or `Vec<&str>` |
/// | `fn f(b: &[u8]) -> R` | `par_f(&blobs)` with `Vec<Vec<u8>>` or `Vec<&[u8]>` |
/// | `fn f(x: T) -> R` | `par_f(vec)`, `par_f(0..n)` (any integer range), arrays, `VecDeque`, or [`ParIter`]`(rayon_iter)`: anything [`IntoItems`] |
/// | `fn f((a, b): (u32, u32)) -> R` | `par_f(pairs)`: patterns are fine |
/// | `fn f(x: &f64, factor: f64, offset: &f64) -> R` | `par_f(&xs, 2.0, &off)`: later parameters are shared by every item; `&U` needs `U: Sync`, a value `U` needs `U: Clone + Sync` (cloned per item) |
/// | `fn f<T: Hash>(x: &T) -> u64` | `par_f(&items)`: each instantiation learns its own cost |
/// | `fn f(&self, w: &str) -> R` in an inherent `impl` | `value.par_f(&words)`; needs `Self: Sync` |
/// | `fn new(x: &u32) -> Self` in an inherent `impl` | `Type::par_new(&xs)`: associated functions whose signature mentions `Self` |
///
/// The item must be `Sync` when borrowed, `Send` when owned, and `R: Send`; the compiler
/// says so at your parameter when it is not.
///
/// # Options
///
/// - `name = par_custom`: the companion's name (default `par_<name>`).
///
///   ```
///   #[amorsize::parallel(name = tally_all)]
///   fn tally(x: &u32) -> u32 { x + 1 }
///   assert_eq!(tally_all(&[1, 2]), vec![2, 3]);
///   ```
/// - `mode = "auto" | "serial" | "parallel"`: pin the decision for this function, for users
///   who know better (`auto`, the default, measures). The `AMORSIZE` environment variable and
///   [`set_mode`] override it process-wide.
///
///   ```
///   #[amorsize::parallel(mode = "serial")]
///   fn touch(x: &u32) -> u32 { x ^ 1 }
///   assert_eq!(par_touch(&[1, 2]), vec![0, 3]);
///   ```
/// - `associated`: the function is an associated function of an inherent `impl` whose
///   signature never mentions `Self` (the attribute cannot see the `impl` around it).
///
///   ```
///   struct Stats;
///   impl Stats {
///       #[amorsize::parallel(associated)]
///       fn square(x: &u64) -> u64 { x * x }
///   }
///   assert_eq!(Stats::par_square(&[2, 3]), vec![4, 9]);
///   ```
///
/// # Not accepted (each is a compile error saying what to do)
/// Anything that is not a function; functions without an item parameter; `async fn`;
/// `unsafe fn`; `&mut` items or parameters; `self` by value or `&mut self`; `impl Trait`
/// parameters; unknown, repeated or malformed options.
///
/// Associated functions without `self` work when their signature mentions `Self`
/// (`fn new(x: &u32) -> Self` gives `Type::par_new`). One that never mentions `Self` cannot
/// be told apart from a free function, so its companion would call it as one and rustc reports
/// "cannot find function": add `associated` to the attribute.
/// Companions cannot be added to trait impls (a trait impl may only define the trait's items).
pub use amorsize_macros::parallel;

/// Used by the code `#[amorsize::parallel]` generates. Not public API: may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use amorsize_core::{map, map_slice, IntoItems, Mode, Site};

    macro_rules! const_keys {
        ($($name:ident: $ty:ty),* $(,)?) => {$(
            /// Names one value of a const generic parameter in a per-instantiation site key
            /// (`type_name` differs per value).
            pub struct $name<const V: $ty>;
        )*};
    }
    const_keys!(
        ConstU8: u8, ConstU16: u16, ConstU32: u32, ConstU64: u64, ConstU128: u128,
        ConstI8: i8, ConstI16: i16, ConstI32: i32, ConstI64: i64, ConstI128: i128,
        ConstIsize: isize, ConstBool: bool, ConstChar: char,
    );
}
