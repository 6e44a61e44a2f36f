//! The runtime of [amorsize](https://docs.rs/amorsize): data-parallel maps that choose
//! between a plain loop and a rayon parallel map by measuring the work.
//!
//! Most users write `#[amorsize::parallel]` on a per-item function and never name this
//! crate. Everything the attribute does is available by hand: declare a [`Site`] (one per
//! function whose cost should be learned) and call [`map`] or [`map_slice`].
//!
//! ```
//! use amorsize_core::{map_slice, Site};
//!
//! static SCORE: Site = Site::new("score");
//!
//! fn score(x: &u64) -> u64 {
//!     (0..50).fold(*x, |acc, i| acc.wrapping_mul(31).wrapping_add(i))
//! }
//!
//! let items: Vec<u64> = (0..10_000).collect();
//! let scores = map_slice(&SCORE, &items, score);
//! assert_eq!(scores, items.iter().map(score).collect::<Vec<_>>());
//! ```
//!
//! # How a call is decided
//! 1. The first call of a site times its own first items, serially, in growing blocks, until
//!    the per-item cost is stable (the median of three agreeing well-timed blocks). Those
//!    results are kept: nothing runs twice.
//! 2. Once per process, the cost of going parallel on this machine (rayon's wake-up,
//!    fork and join) is measured on empty work; later parallel calls refine it, separately
//!    for a pool that is awake and one that has idled.
//! 3. The [cost model](model::decide) compares a plain loop with a parallel map split into
//!    pieces of at least `min_len` items, and goes parallel only if that is predicted to be at
//!    least [`MIN_SPEEDUP`](model::MIN_SPEEDUP) times faster.
//! 4. Later calls read the cached cost (an atomic load), compare the call's total work with
//!    the break-even point, and run. Some serial calls, and the pieces of every parallel
//!    call, are timed to refine the cost and follow drift.
//!
//! # How a parallel call runs
//! The calling thread starts on the work at once, taking pieces from the front, while pool
//! threads join in from the back as they wake; a pool thread that starts after the last piece
//! is taken is not waited for. An idle or busy pool therefore costs a call little more than
//! its loop. The same holds for a call made on a pool thread (a companion inside `par_iter`,
//! `join` or `install`). Results are written straight into the output `Vec`, in input order.

#![warn(missing_docs)]
// `unsafe` is confined to `with_caller` (output slots written in place, helpers that may start
// after the call), each use allowed where it stands with its `SAFETY:` argument.
#![deny(unsafe_code)]

mod cause;
mod config;
mod cost;
mod dispatch;
pub mod future;
mod items;
mod learn;
pub mod model;
pub mod observe;
mod outcome;
mod pool;
mod profile;
mod progress;
mod reduce;
mod report;
mod run;
mod site;
pub mod stream;
mod try_map;
mod units;
mod with_caller;

pub use cause::Cause;
pub use config::{mode, set_mode, with_max_threads, Mode, ParseModeError, MODE_ENV};
pub use dispatch::{map, map_slice};
pub use future::{
    map_async, map_async_lent, try_map_async, try_map_async_lent, MapFuture, OwnedItems,
};
pub use items::{BorrowedItems, IntoItems, ParIter};
pub use model::{Costs, Decision, Machine, Plan};
pub use observe::{set_observer, Observer, ObserverAlreadySet};
pub use pool::machine;
pub use progress::PROGRESS_ENV;
pub use reduce::{
    map_fold, map_fold_slice, map_reduce, map_reduce_slice, try_map_reduce, try_map_reduce_slice,
};
pub use report::{report, Report, SiteReport};
pub use site::Site;
pub use stream::{map_iter, map_iter_ref, MapIter};
pub use try_map::{try_map, try_map_slice, TryItem};
pub use units::{Nanos, PerItem};

/// Locks `mutex`, taking over a poisoned one: the runtime runs no user code under its locks,
/// so a panic elsewhere cannot leave the guarded data half-written.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One fresh site per mode, named `prefix` and the mode, for tests that check an entry point
/// in every mode.
#[cfg(test)]
pub(crate) fn sites_in_every_mode(prefix: &str) -> [(Mode, &'static Site); 3] {
    [Mode::Auto, Mode::Serial, Mode::Parallel].map(|mode| {
        let name: &'static str = Box::leak(format!("{prefix}_{mode}").into_boxed_str());
        let site: &'static Site = Box::leak(Box::new(Site::new(name).with_mode(mode)));
        (mode, site)
    })
}

/// Serialises the unit tests that time work, keep threads or the pool busy, or measure the
/// machine: on two cores, one such test running beside another skews its timings (a profile
/// test's blocks held up).
#[cfg(test)]
pub(crate) fn timing_test() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    lock(&ONE_AT_A_TIME)
}

/// Keeps the calling thread busy for `d`: a test's item of a set cost.
#[cfg(test)]
pub(crate) fn spin(d: std::time::Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Re-exported so that code generated by `#[amorsize::parallel]` and hand-written bounds can
/// name rayon's traits through this crate.
pub use rayon;
