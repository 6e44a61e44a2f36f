//! Running one call: route it from the site's cache (the hot path: a few atomic loads and a
//! comparison), then run a plain loop, a profiling head followed by the tuned rest, or a rayon
//! parallel map with the planned minimum split length.

use crate::config::{self, Mode};
use crate::items::IntoItems;
use crate::machine::{
    known_serial_limit_ps, machine_for_call, note_pool_used, observe_overhead, serial_limit_ps,
};
use crate::model::{self, Decision, Plan};
use crate::profile::profile;
use crate::site::Site;
use crate::units::{elapsed_ns, PerItem};
use rayon::iter::plumbing::{
    bridge_producer_consumer, Consumer, Folder, Producer, ProducerCallback, UnindexedConsumer,
};
use rayon::prelude::*;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Serial calls predicted to take longer than this are always timed (the clock's tens of
/// nanoseconds are lost in them); shorter ones are timed on every [`SAMPLE_EVERY`]th call.
const ALWAYS_TIME_PS: u64 = 20_000_000;
/// One short call in this many is timed to refine the cached cost.
const SAMPLE_EVERY: u64 = 64;
/// A timed serial call shorter than this says more about the clock than the work: counted,
/// not learned from.
const MIN_SAMPLE_NS: u64 = 2_000;

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
        return iter.with_producer(Serial {
            n,
            f: &f,
            _result: PhantomData,
        });
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
        return iter.with_producer(Serial {
            n,
            f: &f,
            _result: PhantomData,
        });
    }
    iter.with_producer(Run {
        site,
        n,
        f: &f,
        route,
        _result: PhantomData,
    })
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
enum Route {
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

/// The callback for an untimed serial call: a plain loop into a new `Vec`.
struct Serial<'f, F, R> {
    n: usize,
    f: &'f F,
    _result: PhantomData<fn() -> R>,
}

impl<T, R, F> ProducerCallback<T> for Serial<'_, F, R>
where
    F: Fn(T) -> R,
{
    type Output = Vec<R>;

    #[inline]
    fn callback<P: Producer<Item = T>>(self, producer: P) -> Vec<R> {
        let mut out = Vec::with_capacity(self.n);
        out.extend(producer.into_iter().map(self.f));
        out
    }
}

/// The callback that receives the call's producer and runs the route.
struct Run<'f, F, R> {
    site: &'static Site,
    n: usize,
    f: &'f F,
    route: Route,
    _result: PhantomData<fn() -> R>,
}

impl<T, R, F> ProducerCallback<T> for Run<'_, F, R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    type Output = Vec<R>;

    fn callback<P: Producer<Item = T>>(self, producer: P) -> Vec<R> {
        let Run {
            site, n, f, route, ..
        } = self;
        let mut out = Vec::with_capacity(n);
        match route {
            // Untimed loops took the `Serial` callback (`map`, `map_routed`) instead.
            Route::Serial { .. } => {
                let start = Instant::now();
                out.extend(producer.into_iter().map(f));
                observe_serial(site, n, start);
            }
            Route::Parallel { decision, cold } => {
                run_parallel(site, producer, n, f, decision, cold, &mut out)
            }
            Route::Profile => {
                let (estimate, rest) = profile(producer, n, f, &mut out);
                site.publish_profile(estimate.per_item.as_picos(), estimate.strong);
                match rest {
                    None => {
                        let decision = model::decide(n, estimate.per_item, &machine_if_known());
                        site.note_decision(n, &decision);
                    }
                    Some(rest) => {
                        let remaining = n - estimate.done;
                        let (m, cold) = machine_for_call();
                        let decision = model::decide(remaining, estimate.per_item, &m);
                        log::debug!(
                            target: "amorsize",
                            "{}: first {} of {n} items profiled; rest planned {:?} (predicted speedup {:.2}x)",
                            site.name(),
                            estimate.done,
                            decision.plan,
                            decision.predicted_speedup()
                        );
                        site.note_decision(n, &decision);
                        match decision.plan {
                            Plan::Parallel { .. } => {
                                run_parallel(site, rest, remaining, f, decision, cold, &mut out)
                            }
                            Plan::Serial => out.extend(rest.into_iter().map(f)),
                        }
                    }
                }
            }
        }
        out
    }
}

/// The machine facts if already measured, else provisional ones: a call that ran whole
/// while profiling must not pay for the measurement just to label its decision.
fn machine_if_known() -> model::Machine {
    crate::machine::measured().unwrap_or_else(crate::machine::provisional)
}

#[cold]
fn observe_serial(site: &Site, n: usize, start: Instant) {
    let elapsed_ns = elapsed_ns(start);
    if elapsed_ns >= MIN_SAMPLE_NS {
        site.observe(elapsed_ns.saturating_mul(1000) / n as u64);
    }
}

fn run_parallel<P, F, R>(
    site: &Site,
    producer: P,
    n: usize,
    f: &F,
    decision: Decision,
    cold: bool,
    out: &mut Vec<R>,
) where
    P: Producer,
    P::Item: Send,
    R: Send,
    F: Fn(P::Item) -> R + Sync + Send,
{
    let Plan::Parallel { min_len, threads } = decision.plan else {
        out.extend(producer.into_iter().map(f));
        return;
    };
    let per_item = site.per_item();
    let busy_ns = AtomicU64::new(0);
    let start = Instant::now();
    if threads >= 2 && rayon::current_thread_index().is_none() {
        // This thread is not one of the pool's workers: it works from the front while
        // helpers take pieces from the back as soon as they wake, rather than wait for
        // the pool to do it all.
        crate::shared::map_into(producer, n, f, min_len, threads - 1, out, &busy_ns);
    } else {
        out.par_extend(
            ProducerIter {
                producer: TimedProducer {
                    inner: producer,
                    busy_ns: &busy_ns,
                },
                len: n,
            }
            .with_min_len(min_len)
            .map(f),
        );
    }
    let elapsed_ns = start.elapsed().as_nanos() as f64;
    let busy_ns = busy_ns.load(Ordering::Relaxed) as f64;
    // The pieces' own time is the per-item cost as paid in parallel; the rest of the wall
    // time, once the work is spread over the threads, is what going parallel cost. Few
    // pieces leave threads idle at the end: that is imbalance, not overhead.
    let predicted_loop_ns = per_item.map(|c| c.work_ns(n));
    site.observe((busy_ns * 1000.0 / n as f64) as u64);
    // Overhead is learned from calls short enough for it to matter, split finely enough to
    // balance; the last piece's expected wait (half a piece) is imbalance, not overhead.
    let pieces = n.div_ceil(min_len);
    let per_thread_ns = busy_ns / threads as f64;
    let overhead_ns = decision.parallel_ns - decision.serial_ns / threads as f64;
    if pieces >= 4 * threads && per_thread_ns < 20.0 * overhead_ns.max(1_000.0) {
        observe_overhead(
            elapsed_ns - per_thread_ns - busy_ns / pieces as f64 / 2.0,
            cold,
        );
    }
    note_pool_used();
    if let Some(loop_ns) = predicted_loop_ns {
        site.note_observed_speedup(loop_ns / elapsed_ns);
    }
}

/// A producer that adds the time each leaf piece takes to run to `busy_ns`. Rayon runs every
/// piece it no longer splits through `fold_with`; pieces hold at least `min_len` items, so
/// two clock reads per piece are lost in the work.
struct TimedProducer<'a, P> {
    inner: P,
    busy_ns: &'a AtomicU64,
}

impl<P: Producer> Producer for TimedProducer<'_, P> {
    type Item = P::Item;
    type IntoIter = P::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        self.inner.into_iter()
    }

    fn min_len(&self) -> usize {
        self.inner.min_len()
    }

    fn max_len(&self) -> usize {
        self.inner.max_len()
    }

    fn split_at(self, index: usize) -> (Self, Self) {
        let (left, right) = self.inner.split_at(index);
        let busy_ns = self.busy_ns;
        (
            TimedProducer {
                inner: left,
                busy_ns,
            },
            TimedProducer {
                inner: right,
                busy_ns,
            },
        )
    }

    fn fold_with<G: Folder<Self::Item>>(self, folder: G) -> G {
        let start = Instant::now();
        let folder = self.inner.fold_with(folder);
        self.busy_ns.fetch_add(elapsed_ns(start), Ordering::Relaxed);
        folder
    }
}

/// A rayon producer seen as an indexed parallel iterator again, so that the rest of a
/// profiled call (or a whole call) can use rayon's `with_min_len`, `map` and collection
/// straight into the output `Vec`.
struct ProducerIter<P> {
    producer: P,
    len: usize,
}

impl<P> ParallelIterator for ProducerIter<P>
where
    P: Producer,
    P::Item: Send,
{
    type Item = P::Item;

    fn drive_unindexed<C>(self, consumer: C) -> C::Result
    where
        C: UnindexedConsumer<Self::Item>,
    {
        bridge_producer_consumer(self.len, self.producer, consumer)
    }

    fn opt_len(&self) -> Option<usize> {
        Some(self.len)
    }
}

impl<P> IndexedParallelIterator for ProducerIter<P>
where
    P: Producer,
    P::Item: Send,
{
    fn drive<C: Consumer<Self::Item>>(self, consumer: C) -> C::Result {
        bridge_producer_consumer(self.len, self.producer, consumer)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn with_producer<CB: ProducerCallback<Self::Item>>(self, callback: CB) -> CB::Output {
        callback.callback(self.producer)
    }
}
