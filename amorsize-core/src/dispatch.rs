//! Routing one call: the public entry points [`map`] and [`map_slice`], the hot path (a few
//! atomic loads and a comparison against the site's cache), and the [`Route`] every other call
//! takes. Running a route is `run`'s job.

use crate::config::{self, Mode};
use crate::items::IntoItems;
use crate::machine::{known_serial_limit_ps, machine_for_call, serial_limit_ps};
use crate::model::{self, Decision, Plan};
use crate::run::{Run, Serial};
use crate::site::Site;
use crate::units::PerItem;
use rayon::prelude::*;

/// Serial calls predicted to take longer than this are always timed (the clock's tens of
/// nanoseconds are lost in them); shorter ones are timed on every [`SAMPLE_EVERY`]th call.
const ALWAYS_TIME_PS: u64 = 20_000_000;
/// One short call in this many is timed to refine the cached cost.
const SAMPLE_EVERY: u64 = 64;

/// Maps `f` over `items` (a `Vec`, an integer range, a slice, any [`IntoItems`]), choosing a plain loop or a parallel map from what
/// `site` has learned. Results are in input order; `f` runs exactly once per item.
///
/// ```
/// use amorsize_core::{map, Site};
///
/// static HASH: Site = Site::new("hash");
///
/// let hashes: Vec<u64> = map(&HASH, 0..10_000u64, |x| x.wrapping_mul(0x9E37_79B9_7F4A_7C15));
/// assert_eq!(hashes.len(), 10_000);
/// assert_eq!(hashes[1], 0x9E37_79B9_7F4A_7C15);
/// ```
///
/// A panic in `f` propagates to the caller with its original payload, as from a plain loop;
/// the site stays usable.
#[inline]
pub fn map<T, I, R, F>(site: &'static Site, items: I, f: F) -> Vec<R>
where
    T: Send,
    I: IntoItems<T>,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    let iter = items.into_items();
    let n = iter.len();
    let call_index = site.begin_call(n);
    if n == 0 {
        return Vec::new();
    }
    if short_call(site, n, call_index) {
        // The common short call: inlined into the caller, with its loop in a callback of
        // its own so that it compiles as tightly as the user's own would.
        return iter.with_producer(Serial::new(n, &f));
    }
    map_routed(site, iter, n, call_index, f)
}

/// Whether a call is an untimed plain loop on the settled, common path: fewer than two
/// items, or a site in `auto` with a cached cost, work below the break-even point, and no
/// sample due. Everything else takes [`route`].
#[inline(always)]
fn short_call(site: &Site, n: usize, call_index: u64) -> bool {
    if n < 2 {
        return true;
    }
    if !config::is_auto() || site.mode() != Mode::Auto {
        return false;
    }
    let Some(per_item_ps) = site.cost_ps() else {
        return false;
    };
    let work_ps = PerItem::from_picos(per_item_ps).work_ps(n);
    work_ps < known_serial_limit_ps() && !sample_due(work_ps, call_index)
}

/// Every call that is not a settled short loop: routed, then run.
#[inline(never)]
fn map_routed<T, It, R, F>(site: &'static Site, iter: It, n: usize, call_index: u64, f: F) -> Vec<R>
where
    T: Send,
    It: IndexedParallelIterator<Item = T>,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    let route = route(site, n, call_index);
    if let Route::Serial { timed: false } = route {
        // An untimed loop the fast path could not settle (a forced or pinned mode, or a
        // break-even point not computed yet).
        return iter.with_producer(Serial::new(n, &f));
    }
    iter.with_producer(Run::new(site, n, &f, route))
}

/// Maps `f` over a slice of borrowed items: [`map`] over `items.par_iter()`.
///
/// ```
/// use amorsize_core::{map_slice, Site};
///
/// static LENGTHS: Site = Site::new("lengths");
///
/// let words = vec!["a".to_string(), "bb".to_string()];
/// assert_eq!(map_slice(&LENGTHS, &words, |w: &String| w.len()), [1, 2]);
/// ```
pub fn map_slice<'a, T, R, F>(site: &'static Site, items: &'a [T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&'a T) -> R + Sync + Send,
{
    map(site, items, f)
}

/// How one call runs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Route {
    /// A plain loop; `timed` when this call's time should refine the cost.
    Serial { timed: bool },
    /// No trustworthy cost: time the head of this call, then plan the rest.
    Profile,
    /// A parallel map as decided; `cold` when the pool was idle as it was planned.
    Parallel { decision: Decision, cold: bool },
}

#[inline]
fn route(site: &Site, n: usize, call_index: u64) -> Route {
    if n < 2 {
        return Route::Serial { timed: false };
    }
    let mode = match config::mode() {
        Mode::Auto => site.mode(),
        forced => forced,
    };
    match mode {
        Mode::Serial => {
            let work_ps = (n as u64).saturating_mul(site.cost_ps().unwrap_or(0));
            serial_route(work_ps, call_index)
        }
        Mode::Parallel => forced_parallel(site, n),
        Mode::Auto => match site.cost_ps() {
            None => Route::Profile,
            Some(per_item_ps) => {
                let work_ps = PerItem::from_picos(per_item_ps).work_ps(n);
                if work_ps < serial_limit_ps() {
                    serial_route(work_ps, call_index)
                } else {
                    plan_long_call(site, n, per_item_ps)
                }
            }
        },
    }
}

/// A plain loop over `work_ps` of predicted work, timed when [`sample_due`].
#[inline]
fn serial_route(work_ps: u64, call_index: u64) -> Route {
    Route::Serial {
        timed: sample_due(work_ps, call_index),
    }
}

/// Whether a serial call over `work_ps` of predicted work is timed: when long enough for the
/// clock not to matter, or as one sample in [`SAMPLE_EVERY`].
#[inline(always)]
fn sample_due(work_ps: u64, call_index: u64) -> bool {
    work_ps >= ALWAYS_TIME_PS || call_index % SAMPLE_EVERY == 0
}

#[cold]
fn plan_long_call(site: &Site, n: usize, per_item_ps: u64) -> Route {
    if !site.is_tuned() {
        // The cost came from a short call; a call this long is worth timing properly.
        return Route::Profile;
    }
    let (m, cold) = machine_for_call();
    let decision = model::decide(n, PerItem::from_picos(per_item_ps), &m);
    site.note_decision(n, &decision);
    match decision.plan {
        Plan::Parallel { .. } => Route::Parallel { decision, cold },
        Plan::Serial => Route::Serial { timed: true },
    }
}

#[cold]
fn forced_parallel(site: &Site, n: usize) -> Route {
    let (m, cold) = machine_for_call();
    let per_item = site.per_item();
    let mut decision = model::decide(n, per_item.unwrap_or(PerItem::from_picos(u64::MAX)), &m);
    if !decision.plan.is_parallel() {
        let threads = m.threads.max(1);
        let min_len = n.div_ceil(threads * model::MAX_PIECES_PER_THREAD).max(1);
        decision.plan = Plan::Parallel {
            min_len,
            threads: threads.min(n.div_ceil(min_len)),
        };
        if per_item.is_none() {
            decision.serial_ns = f64::NAN;
        }
    }
    site.note_decision(n, &decision);
    Route::Parallel { decision, cold }
}
