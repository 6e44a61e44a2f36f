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
//! [`Site`] you declare ([`try_map`] for fallible functions).
//!
//! # Long and fallible batches
//!
//! - A function returning `Result` or `Option` also gets `try_par_<name>`, which stops at the
//!   first failure (see [`parallel`]).
//! - [`set_observer`] installs an [`Observer`] that hears of calls starting and ending,
//!   their progress, profiles and plan changes (see [`observe`]).
//!
//! # Cargo features (all off by default)
//!
//! - `progress`: a progress bar on stderr (with `indicatif`) for each call predicted to take
//!   a second or more, on a terminal; `AMORSIZE_PROGRESS=always` draws it into logs as
//!   lines, `never` turns it off ([`PROGRESS_ENV`]).
//! - `tracing`: each call runs in a debug span `amorsize` (function, n, plan), and the
//!   caller's span is entered on the pool threads that work on the call.
//! - `serde`: [`Report`], [`SiteReport`] and the observer's events implement `Serialize`.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub use amorsize_core::{
    future, machine, map, map_async, map_async_lent, map_fold, map_fold_slice, map_iter,
    map_iter_ref, map_reduce, map_reduce_slice, map_slice, mode, observe, report, set_mode,
    set_observer, try_map, try_map_async, try_map_async_lent, try_map_reduce, try_map_reduce_slice,
    try_map_slice, with_max_threads, BorrowedItems, Cause, Costs, Decision, IntoItems, Machine,
    MapFuture, Mode, Nanos, Observer, ObserverAlreadySet, OwnedItems, ParIter, ParseModeError,
    PerItem, Plan, Report, Site, SiteReport, TryItem, MODE_ENV, PROGRESS_ENV,
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
/// | `fn f(x: &T) -> R` | `par_f(&items)`: a slice, `Vec`, array or `Box<[_]>` whose elements borrow as `T` ([`BorrowedItems`]; the elements must be `Sync`) |
/// | `fn f(s: &str) -> R` | `par_f(&lines)` with `Vec<String>` or `Vec<&str>` |
/// | `fn f(b: &[u8]) -> R` | `par_f(&blobs)` with `Vec<Vec<u8>>` or `Vec<&[u8]>` |
/// | `fn f(x: T) -> R` | `par_f(vec)`, `par_f(0..n)` (any integer range), arrays, `VecDeque`, or [`ParIter`]`(rayon_iter)`: anything [`IntoItems`] |
/// | `fn f((a, b): (u32, u32)) -> R` | `par_f(pairs)`: patterns are fine |
/// | `fn f(x: &f64, factor: f64, offset: &f64) -> R` | `par_f(&xs, 2.0, &off)`: later parameters are shared by every item; `&U` needs `U: Sync`, a value `U` needs `U: Clone + Sync` (cloned per item) |
/// | `fn f<T: Hash>(x: &T) -> u64` | `par_f(&items)` with a `&[T]`: each instantiation learns its own cost; a turbofish names only the function's own generics (`par_f::<u32>`) |
/// | `fn f<T: ?Sized + AsRef<[u8]>>(x: &T) -> usize` | `par_f::<str>(&strings)`: elements that borrow as `T`, which a turbofish names when they borrow as several types |
/// | `fn f(s: &(dyn Shape + Sync)) -> f64` | `par_f(&shapes)` with `Vec<Box<dyn Shape + Sync>>`: trait objects, parenthesized as they must be |
/// | `fn f(&self, w: &str) -> R` in an inherent `impl` | `value.par_f(&words)`; needs `Self: Sync` |
/// | `fn new(x: &u32) -> Self` in an inherent `impl` | `Type::par_new(&xs)`: associated functions whose signature mentions `Self` |
///
/// The item must be `Sync` when borrowed, `Send` when owned, and `R: Send`; the compiler
/// says so at your parameter when it is not.
///
/// # Fallible functions: `try_par_<name>`
///
/// A function returning `Result<T, E>` (or an alias such as `io::Result<T>`) also gets
/// `try_par_<name>`, returning `Result<Vec<T>, E>`; one returning `Option<T>` gets one
/// returning `Option<Vec<T>>` (with `name = x`, the fallible one is `try_x`). It takes the
/// same inputs as `par_<name>` and stops at the first failure: after it, no thread starts a
/// new item (checked before every item, not only between pieces); items already running
/// finish, and the values made so far are dropped. In a loop the failure returned is the
/// first in input order; in parallel it is the earliest in input order among the items that
/// ran. Both companions share one learned cost.
///
/// ```
/// #[amorsize::parallel]
/// fn parse(line: &str) -> Result<u32, std::num::ParseIntError> {
///     line.trim().parse()
/// }
///
/// let good = vec!["1", "2", "3"];
/// assert_eq!(try_par_parse(&good), Ok(vec![1, 2, 3]));
/// let bad = vec!["1", "x", "3"];
/// assert!(try_par_parse(&bad).is_err());
/// // `par_parse` still returns every item's result.
/// assert_eq!(par_parse(&bad).len(), 3);
/// ```
///
/// # Reductions: `par_<name>_reduce` and `par_<name>_fold`
///
/// Every function whose result does not borrow elided lifetimes (and is not `()` or an
/// `impl Trait`) also gets two companions that combine the results instead of collecting
/// them, without building a `Vec`, through the same learned cost and plan:
/// - `par_<name>_reduce(items, …, identity, op) -> R`, like rayon's `map(f).reduce(identity,
///   op)`: `op` must be associative with `identity()` as its identity; results are combined
///   in input order, so it need not be commutative;
/// - `par_<name>_fold(items, …, init, fold, combine) -> Acc`, like rayon's
///   `map(f).fold(init, fold).reduce(init, combine)`, for an accumulator of another type.
///
/// A fallible function also gets `try_par_<name>_reduce`, which stops at the first failure.
/// With `name = x` they are `x_reduce`, `x_fold` and `try_x_reduce`.
///
/// ```
/// #[amorsize::parallel]
/// fn square(x: &u64) -> u64 {
///     x * x
/// }
///
/// let items: Vec<u64> = (0..1_000).collect();
/// assert_eq!(par_square_reduce(&items, || 0, |a, b| a + b), 332_833_500);
/// let (evens, odds) = par_square_fold(
///     &items,
///     || (0, 0),
///     |(e, o), sq| if sq % 2 == 0 { (e + 1, o) } else { (e, o + 1) },
///     |(e1, o1), (e2, o2)| (e1 + e2, o1 + o2),
/// );
/// assert_eq!((evens, odds), (500, 500));
/// ```
///
/// # Streams: `par_<name>_iter`
///
/// Every function whose item and result borrow nothing also gets `par_<name>_iter(input, …)
/// -> impl Iterator<Item = R>`, taking any `IntoIterator` of items (for `fn f(x: &T)`,
/// anything that borrows as `T`): lazy, in input order, in bounded memory, in parallel
/// batches when that pays (see [`map_iter`]).
///
/// ```
/// #[amorsize::parallel]
/// fn double(x: u64) -> u64 {
///     x * 2
/// }
///
/// let evens: Vec<u64> = par_double_iter(0u64..).take(3).collect();
/// assert_eq!(evens, [0, 2, 4]);
/// ```
///
/// # Async callers: `par_<name>_async`
///
/// Free and associated functions whose item and result borrow nothing also get
/// `par_<name>_async(items, …) -> MapFuture<Vec<R>>` (and `try_par_<name>_async` for
/// fallible ones): owned items, owned or `'static` context, the map run with the tuned plan
/// without blocking the executor: on rayon's pool when it runs in parallel, where it is
/// polled in slices of at most [`future::SLICE`] of work when it runs as a loop (see
/// [`future`]). The future owns the context, so a context of one of the function's type
/// parameters must also be `Send` there (`fn f<G: Fn(u64) -> u64 + Sync>(x: &u64, g: G)`
/// gets a `par_f_async` that asks `G: Send`; `par_f` does not).
///
/// ```
/// #[amorsize::parallel]
/// fn double(x: u64) -> u64 {
///     x * 2
/// }
///
/// let future = par_double_async(vec![1, 2, 3]); // `Send`, any executor
/// # let doubled = {
/// #     use std::future::Future;
/// #     use std::task::{Context, Poll, Wake, Waker};
/// #     struct Unpark(std::thread::Thread);
/// #     impl Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
/// #     let mut f = std::pin::pin!(future);
/// #     loop {
/// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { break v }
/// #         std::thread::park();
/// #     }
/// # };
/// assert_eq!(doubled, [2, 4, 6]);
/// ```
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
/// - `max_threads = 4`: at most this many threads per call, the calling thread included
///   (`1` keeps every call a loop), for services that must leave cores to other work.
///   [`with_max_threads`] caps the calls made inside a closure instead.
///
///   ```
///   #[amorsize::parallel(max_threads = 2)]
///   fn polite(x: &u32) -> u32 { x + 1 }
///   assert_eq!(par_polite(&[1, 2]), vec![2, 3]);
///   ```
/// - `crate = path` (or `crate = "path"`): where the generated code finds amorsize, when
///   the dependency is renamed in `Cargo.toml` or re-exported by another crate
///   (`#[my_lib::amorsize::parallel(crate = my_lib::amorsize)]`).
/// - `associated`: the function is an associated function of an inherent `impl` whose
///   signature and body never mention `Self` (the attribute cannot see the `impl` around
///   it; one that mentions `Self` anywhere is recognised).
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
/// # The companion's attributes
///
/// The companion gets the function's `#[cfg]`, `#[cfg_attr]` (when every attribute inside
/// it would be forwarded too), `#[deprecated]`, `#[must_use]`, lint levels (`#[allow]`,
/// `#[warn]`, `#[deny]`, `#[forbid]`, `#[expect]`) and `#[doc(hidden)]`. Not its doc comments
/// (it has its own, naming the arguments every item shares), not code hints (`#[inline]`,
/// `#[cold]`, `#[track_caller]`, `#[target_feature]`), not symbol names (`#[no_mangle]`,
/// `#[export_name]`, `#[link_section]`), and not other attribute macros
/// (`#[tracing::instrument]`): those are about the per-item function.
///
/// A companion named like an existing item (`fn par_score` beside `#[amorsize::parallel]
/// fn score`) is rustc's "defined multiple times" error, pointing at the attribute: give the
/// companion another name with `name = …`.
///
/// # Not accepted (each is a compile error saying what to do)
/// Anything that is not a function; functions without an item parameter; `async fn`;
/// `unsafe fn`; `&mut` items or parameters; `self` by value or `&mut self`; `impl Trait`
/// parameters; unknown, repeated or malformed options.
///
/// Associated functions without `self` work when their signature or body mentions `Self`
/// (`fn new(x: &u32) -> Self` gives `Type::par_new`). One that never mentions `Self` cannot
/// be told apart from a free function, so its companion would call it as one and rustc reports
/// "cannot find function `f` in this scope" at the function's name: add
/// `associated` to the attribute.
/// Companions cannot be added to trait impls (a trait impl may only define the trait's items),
/// nor to a trait's method declarations (they have no body to run).
pub use amorsize_macros::parallel;

/// Used by the code `#[amorsize::parallel]` generates. Not public API: may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use amorsize_core::{
        map, map_async, map_async_lent, map_fold, map_fold_slice, map_iter, map_iter_ref,
        map_reduce, map_reduce_slice, map_slice, try_map, try_map_async, try_map_async_lent,
        try_map_reduce, try_map_reduce_slice, try_map_slice, BorrowedItems, IntoItems, MapFuture,
        Mode, OwnedItems, Site, TryItem,
    };

    /// Says that an `impl Trait` a companion returns keeps a borrow of lifetime `'a` (what
    /// edition 2021 needs to be told, and `use<..>` cannot say beside `impl Trait`
    /// parameters).
    pub trait Captures<'a> {}
    impl<T: ?Sized> Captures<'_> for T {}

    /// Says that an `impl Trait` a companion returns may hold a `T`, and so the lifetimes in
    /// it: a method's or associated function's iterator holds `Self`, whose `impl` may have
    /// lifetime parameters the attribute cannot see (`impl<'a> Parser<'a>`).
    pub trait CapturesType<T: ?Sized> {}
    impl<T: ?Sized, U: ?Sized> CapturesType<T> for U {}

    /// Checks of the user's concrete types, called in a companion's body and spanned on the
    /// user's tokens, so that an error points at the parameter that needs the bound.
    pub mod check {
        /// Items and shared arguments are read from several threads at once.
        pub fn shared_across_threads<T: ?Sized + Sync>() {}
        /// Results are made on pool threads and handed back.
        pub fn sent_across_threads<T: ?Sized + Send>() {}
        /// A shared argument taken by value is cloned for each item, on any thread.
        pub fn cloned_across_threads<T: Clone + Sync>() {}
    }

    /// A shared argument of the same type as the item (`fn dist(a: &P, b: &P)`): only the
    /// identity converts, so passing a batch here fails with a message saying that only the
    /// first parameter varies per item.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` was passed for a parameter that every item shares, which takes `{T}`",
        label = "the same `{T}` for every item",
        note = "only the function's first parameter varies per item; to map over pairs, take one tuple, `fn f((a, b): (&P, &P))`, and pass `xs.iter().zip(&ys).collect::<Vec<_>>()`"
    )]
    pub trait SharedArg<T> {
        /// The value for one item's call.
        fn shared(&self) -> T;
    }

    impl<T: Clone> SharedArg<T> for T {
        fn shared(&self) -> T {
            self.clone()
        }
    }

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
