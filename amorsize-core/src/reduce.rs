//! The reducing entry points: [`map_reduce`] maps a function over the items and combines
//! the results with an associative `op`, like rayon's `map(f).reduce(identity, op)`, without
//! building a `Vec`; [`map_fold`] folds them into an accumulator of another type, like
//! rayon's `fold` + `reduce`; [`try_map_reduce`] reduces a fallible function's values and
//! stops at the first failure.
//!
//! A loop folds every result into one accumulator as it comes. A parallel call cuts the items
//! into pieces (`with_caller`'s engine); a piece that follows one already folded goes on
//! with its accumulator, others start from `identity()`, and accumulators of adjacent runs
//! are combined, always the earlier on the left, so an `op` that is associative but not
//! commutative (concatenation) gives the loop's result.
//!
//! Routed like [`map`](crate::map), through the same site: the cost a site learns is the
//! cost of `f` and `op` together, and a function learns once, whichever entry point calls it.

use crate::dispatch::{route, routed, short_call, ParallelRoute, Route};
use crate::items::IntoItems;
use crate::learn::learn_from_serial;
use crate::model::Plan;
use crate::observe::{in_steps, Watch};
use crate::profile::profile_with;
use crate::run::{after_profile, parallel_call, Call};
use crate::site::Site;
use crate::try_map::TryItem;
use crate::units::elapsed_ns;
use crate::with_caller::{drive, Control, Count, Ending, Pieces};
use rayon::iter::plumbing::{Producer, ProducerCallback};
use rayon::iter::IndexedParallelIterator;
use std::panic::resume_unwind;
use std::sync::Mutex;
use std::time::Instant;

/// Maps `f` over `items` and combines the results with `op`, starting from `identity()`:
/// what `items.map(f).fold(identity(), op)` returns, for an `op` that is associative and an
/// `identity()` that `op` leaves unchanged. In parallel, each piece folds from its own
/// `identity()`, and the pieces are combined in input order. No `Vec` of results is built.
///
/// ```
/// use amorsize_core::{map_reduce, Site};
///
/// static SQUARES: Site = Site::new("squares");
///
/// let total = map_reduce(&SQUARES, 0..10_000u64, |x| x * x, || 0, |a, b| a + b);
/// assert_eq!(total, (0..10_000u64).map(|x| x * x).sum::<u64>());
/// // Not commutative, only associative: still the loop's order.
/// static WORDS: Site = Site::new("words");
/// let joined = map_reduce(&WORDS, 0..5u32, |x| x.to_string(), String::new, |a, b| a + &b);
/// assert_eq!(joined, "01234");
/// ```
///
/// An empty input returns `identity()`. A panic in `f`, `identity` or `op` propagates to the
/// caller with its payload, as from [`map`](crate::map).
#[inline]
pub fn map_reduce<T, I, R, F, ID, OP>(
    site: &'static Site,
    items: I,
    f: F,
    identity: ID,
    op: OP,
) -> R
where
    T: Send,
    I: IntoItems<T>,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
    ID: Fn() -> R + Sync + Send,
    OP: Fn(R, R) -> R + Sync + Send,
{
    map_fold(site, items, f, identity, &op, &op)
}

/// Maps `f` over `items` and folds the results into accumulators: like rayon's
/// `map(f).fold(init, fold).reduce(init, combine)`. A loop folds every result into one
/// accumulator from `init()`; a parallel call folds each piece into its own, then joins them
/// in input order with `combine`. For `combine` associative, with `init()` as its identity and
/// `fold(a, r)` equal to `combine(a, fold(init(), r))`, the result is the loop's.
///
/// Use it when the accumulator is not the per-item result, such as a word count:
///
/// ```
/// use amorsize_core::{map_fold, Site};
/// use std::collections::HashMap;
///
/// static WORDS: Site = Site::new("words");
///
/// let lines = vec!["a b a".to_string(), "b c".to_string()];
/// let counts = map_fold(
///     &WORDS,
///     &lines[..],
///     |line: &String| line.split_whitespace(),
///     HashMap::new,
///     |mut counts: HashMap<&str, usize>, words| {
///         for w in words {
///             *counts.entry(w).or_default() += 1;
///         }
///         counts
///     },
///     |mut a, b| {
///         for (w, n) in b {
///             *a.entry(w).or_default() += n;
///         }
///         a
///     },
/// );
/// assert_eq!(counts["a"], 2);
/// assert_eq!(counts["c"], 1);
/// ```
#[inline]
pub fn map_fold<T, I, R, A, F, ID, FO, CO>(
    site: &'static Site,
    items: I,
    f: F,
    init: ID,
    fold: FO,
    combine: CO,
) -> A
where
    T: Send,
    I: IntoItems<T>,
    A: Send,
    F: Fn(T) -> R + Sync + Send,
    ID: Fn() -> A + Sync + Send,
    FO: Fn(A, R) -> A + Sync + Send,
    CO: Fn(A, A) -> A + Sync + Send,
{
    let iter = items.into_items();
    let n = iter.len();
    let call_index = site.begin_call(n);
    if n == 0 {
        return init();
    }
    let fold = MapFold {
        f: &f,
        init: &init,
        fold: &fold,
        combine: &combine,
    };
    if short_call(site, n, call_index) {
        // The common short call: the plain fold, inlined.
        return iter.with_producer(PlainFold(&fold));
    }
    match reduce_routed(site, iter, n, call_index, &fold) {
        Some(value) => value,
        None => unreachable!("a plain fold never stops"),
    }
}

/// [`map_fold`] over a slice of borrowed items.
pub fn map_fold_slice<'a, T, R, A, F, ID, FO, CO>(
    site: &'static Site,
    items: &'a [T],
    f: F,
    init: ID,
    fold: FO,
    combine: CO,
) -> A
where
    T: Sync,
    A: Send,
    F: Fn(&'a T) -> R + Sync + Send,
    ID: Fn() -> A + Sync + Send,
    FO: Fn(A, R) -> A + Sync + Send,
    CO: Fn(A, A) -> A + Sync + Send,
{
    map_fold(site, items, f, init, fold, combine)
}

/// [`map_reduce`] over a slice of borrowed items.
pub fn map_reduce_slice<'a, T, R, F, ID, OP>(
    site: &'static Site,
    items: &'a [T],
    f: F,
    identity: ID,
    op: OP,
) -> R
where
    T: Sync,
    R: Send,
    F: Fn(&'a T) -> R + Sync + Send,
    ID: Fn() -> R + Sync + Send,
    OP: Fn(R, R) -> R + Sync + Send,
{
    map_reduce(site, items, f, identity, op)
}

/// [`map_reduce`] for a fallible `f` (returning `Result<T, E>` or `Option<T>`): combines the
/// values with `op` from `identity()`, and stops at the first failure, returning it. After a
/// failure no thread starts a new item. Which failure comes back when several items fail is
/// as for [`try_map`](crate::try_map): the first in input order in a loop, the earliest in
/// input order among the items that ran in parallel.
///
/// ```
/// use amorsize_core::{try_map_reduce, Site};
///
/// static PARSE_SUM: Site = Site::new("parse_sum");
///
/// let lines = ["1", "2", "3"];
/// let sum = try_map_reduce(&PARSE_SUM, &lines[..], |s: &&str| s.parse::<u32>(), || 0, |a, b| a + b);
/// assert_eq!(sum, Ok(6));
/// let bad = ["1", "x", "3"];
/// assert!(try_map_reduce(&PARSE_SUM, &bad[..], |s: &&str| s.parse::<u32>(), || 0, |a, b| a + b).is_err());
/// ```
pub fn try_map_reduce<T, I, R, F, ID, OP>(
    site: &'static Site,
    items: I,
    f: F,
    identity: ID,
    op: OP,
) -> R
where
    T: Send,
    I: IntoItems<T>,
    R: TryItem,
    F: Fn(T) -> R + Sync + Send,
    ID: Fn() -> R::Ok + Sync + Send,
    OP: Fn(R::Ok, R::Ok) -> R::Ok + Sync + Send,
{
    let iter = items.into_items();
    let n = iter.len();
    let call_index = site.begin_call(n);
    if n == 0 {
        return R::from_result(Ok(identity()));
    }
    let fold = TryFold {
        f: &f,
        identity: &identity,
        op: &op,
        first: Mutex::new(None),
    };
    let reduced = reduce_routed(site, iter, n, call_index, &fold);
    R::from_result(match reduced {
        Some(value) => Ok(value),
        None => Err(fold.failure()),
    })
}

/// [`try_map_reduce`] over a slice of borrowed items.
pub fn try_map_reduce_slice<'a, T, R, F, ID, OP>(
    site: &'static Site,
    items: &'a [T],
    f: F,
    identity: ID,
    op: OP,
) -> R
where
    T: Sync,
    R: TryItem,
    F: Fn(&'a T) -> R + Sync + Send,
    ID: Fn() -> R::Ok + Sync + Send,
    OP: Fn(R::Ok, R::Ok) -> R::Ok + Sync + Send,
{
    try_map_reduce(site, items, f, identity, op)
}

/// How a reduction folds items: a plain map-and-combine, or a fallible one that can stop.
trait Fold<I>: Sync {
    type Acc: Send;
    fn identity(&self) -> Self::Acc;
    fn combine(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// Folds `items` (the first at `offset` in the call) into `acc`: `Err` with the items
    /// that ran when one failed (recorded) or when `stopping()` says the call is stopping.
    fn fold<It: Iterator<Item = I>>(
        &self,
        acc: Self::Acc,
        items: It,
        offset: usize,
        stopping: impl Fn() -> bool,
    ) -> Result<Self::Acc, usize>;
}

/// Maps each item with `f` and folds the result into the accumulator with `fold`; pieces'
/// accumulators start from `init()` and are joined with `combine` (for a reduction, `fold`
/// and `combine` are both `op`).
struct MapFold<'f, F, ID, FO, CO> {
    f: &'f F,
    init: &'f ID,
    fold: &'f FO,
    combine: &'f CO,
}

impl<I, R, A, F, ID, FO, CO> Fold<I> for MapFold<'_, F, ID, FO, CO>
where
    A: Send,
    F: Fn(I) -> R + Sync,
    ID: Fn() -> A + Sync,
    FO: Fn(A, R) -> A + Sync,
    CO: Fn(A, A) -> A + Sync,
{
    type Acc = A;
    fn identity(&self) -> A {
        (self.init)()
    }
    fn combine(&self, a: A, b: A) -> A {
        (self.combine)(a, b)
    }
    #[inline]
    fn fold<It: Iterator<Item = I>>(
        &self,
        acc: A,
        items: It,
        _: usize,
        _: impl Fn() -> bool,
    ) -> Result<A, usize> {
        Ok(items.map(self.f).fold(acc, self.fold))
    }
}

struct TryFold<'f, F, ID, OP, S> {
    f: &'f F,
    identity: &'f ID,
    op: &'f OP,
    /// The earliest failure in input order among the items that ran.
    first: Mutex<Option<(usize, S)>>,
}

impl<F, ID, OP, S> TryFold<'_, F, ID, OP, S> {
    fn failure(self) -> S {
        match self
            .first
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
        {
            Some((_, stop)) => stop,
            None => unreachable!("a reduction stops only at a failure"),
        }
    }
}

impl<I, R, F, ID, OP> Fold<I> for TryFold<'_, F, ID, OP, R::Stop>
where
    R: TryItem,
    F: Fn(I) -> R + Sync,
    ID: Fn() -> R::Ok + Sync,
    OP: Fn(R::Ok, R::Ok) -> R::Ok + Sync,
{
    type Acc = R::Ok;
    fn identity(&self) -> R::Ok {
        (self.identity)()
    }
    fn combine(&self, a: R::Ok, b: R::Ok) -> R::Ok {
        (self.op)(a, b)
    }
    fn fold<It: Iterator<Item = I>>(
        &self,
        mut acc: R::Ok,
        items: It,
        offset: usize,
        stopping: impl Fn() -> bool,
    ) -> Result<R::Ok, usize> {
        for (i, item) in items.enumerate() {
            if stopping() {
                return Err(i);
            }
            match (self.f)(item).into_result() {
                Ok(value) => acc = (self.op)(acc, value),
                Err(stop) => {
                    let mut first = crate::lock(&self.first);
                    if first.as_ref().map_or(true, |(at, _)| offset + i < *at) {
                        *first = Some((offset + i, stop));
                    }
                    return Err(i + 1);
                }
            }
        }
        Ok(acc)
    }
}

/// The untimed loop of a short call: one fold over every item.
struct PlainFold<'a, FO>(&'a FO);

impl<T, FO: Fold<T>> ProducerCallback<T> for PlainFold<'_, FO> {
    type Output = FO::Acc;
    #[inline]
    fn callback<P: Producer<Item = T>>(self, producer: P) -> FO::Acc {
        match self
            .0
            .fold(self.0.identity(), producer.into_iter(), 0, || false)
        {
            Ok(acc) => acc,
            Err(_) => unreachable!("only fallible folds stop, and they do not take this path"),
        }
    }
}

/// Every reduction that is not a settled short plain one: routed, then run. `None` when a
/// fallible fold stopped (the failure is in it).
#[inline(never)]
fn reduce_routed<T, It, FO>(
    site: &'static Site,
    iter: It,
    n: usize,
    call_index: u64,
    fold: &FO,
) -> Option<FO::Acc>
where
    T: Send,
    It: rayon::iter::IndexedParallelIterator<Item = T>,
    FO: Fold<T>,
{
    let route = if short_call(site, n, call_index) {
        Route::Serial {
            timed: false,
            pool: None,
        }
    } else {
        route(site, n, call_index)
    };
    routed(site, n, route, |watch| {
        let reduced = iter.with_producer(ReduceRun {
            call: Call {
                site,
                call_index,
                watch,
            },
            n,
            fold,
            route,
        });
        let failed = reduced.is_none();
        (reduced, failed)
    })
}

/// The callback that runs a reduction's route.
struct ReduceRun<'a, FO> {
    call: Call<'a>,
    n: usize,
    fold: &'a FO,
    route: Route,
}

impl<T, FO> ProducerCallback<T> for ReduceRun<'_, FO>
where
    T: Send,
    FO: Fold<T>,
{
    type Output = Option<FO::Acc>;

    fn callback<P: Producer<Item = T>>(self, producer: P) -> Option<FO::Acc> {
        let ReduceRun {
            call,
            n,
            fold,
            route,
        } = self;
        let call = call.begin();
        match route {
            Route::Serial { timed: false, .. } if call.watch.is_none() => fold
                .fold(fold.identity(), producer.into_iter(), 0, || false)
                .ok(),
            Route::Serial { .. } | Route::Watched { .. } => {
                let (ns, folded) = stepped_fold(producer, 0, n, fold, fold.identity(), call.watch);
                let ran = match &folded {
                    Ok(_) => n,
                    Err(ran) => *ran,
                };
                learn_from_serial(call.site, ran, ns, folded.is_ok());
                folded.ok()
            }
            Route::Parallel(plan) => reduce_parallel(call, producer, n, fold, plan),
            Route::Profile => reduce_profiled(call, producer, n, fold),
        }
    }
}

/// A timed fold of `len` items (the first at `offset`) into `acc`, in progress steps when the
/// call is watched and long: the time (nanoseconds) and the fold, or the items that ran
/// before it stopped.
#[inline(never)]
fn stepped_fold<P, FO>(
    producer: P,
    offset: usize,
    len: usize,
    fold: &FO,
    acc: FO::Acc,
    watch: Option<&Watch>,
) -> (u64, Result<FO::Acc, usize>)
where
    P: Producer,
    FO: Fold<P::Item>,
{
    if watch.is_none() {
        let start = Instant::now();
        let folded = fold.fold(acc, producer.into_iter(), offset, || false);
        return (elapsed_ns(start), folded);
    }
    let mut state = Ok(acc);
    let mut done = 0;
    let (ns, _) = in_steps(producer, len, watch, |piece| {
        let Ok(acc) = std::mem::replace(&mut state, Err(0)) else {
            return (0, false);
        };
        let start = Instant::now();
        let items = piece.into_iter();
        let len = items.len();
        let folded = fold.fold(acc, items, offset + done, || false);
        let before = done;
        done += len;
        let go_on = folded.is_ok();
        state = folded.map_err(|ran| before + ran);
        (elapsed_ns(start), go_on)
    });
    (ns, state)
}

/// A first call: its head profiled in blocks folded into one accumulator (stopping at a
/// failure), then the rest as planned and combined after it.
fn reduce_profiled<P, FO>(call: Call<'_>, producer: P, n: usize, fold: &FO) -> Option<FO::Acc>
where
    P: Producer,
    P::Item: Send,
    FO: Fold<P::Item>,
{
    let mut acc = Some(fold.identity());
    let mut done = 0;
    let (estimate, rest, stopped) = profile_with(producer, n, |block| {
        let head = acc.take()?;
        let start = Instant::now();
        let items = block.into_iter();
        let len = items.len();
        let folded = fold.fold(head, items, done, || false);
        let ns = elapsed_ns(start);
        done += len;
        let value = folded.ok()?;
        crate::observe::advance(call.watch, len);
        acc = Some(value);
        Some(ns)
    });
    if stopped {
        if estimate.done > 0 {
            call.site.publish_profile(estimate.per_item, false, true);
        }
        return None;
    }
    let head = acc?;
    let Some(rest) = rest else {
        after_profile(call, n, &estimate, false);
        return Some(head);
    };
    let remaining = n - estimate.done;
    match after_profile(call, n, &estimate, true) {
        Some(Route::Parallel(plan)) => {
            let tail = reduce_parallel_at(call, rest, estimate.done, remaining, fold, plan)?;
            Some(fold.combine(head, tail))
        }
        _ => {
            let (ns, folded) = stepped_fold(rest, estimate.done, remaining, fold, head, call.watch);
            let ran = match &folded {
                Ok(_) => remaining,
                Err(ran) => *ran,
            };
            learn_from_serial(call.site, ran, ns, false);
            folded.ok()
        }
    }
}

/// A reduction's pieces, folded into runs: a piece that follows a finished run (the calling
/// thread's next piece from the front) is folded on into that run's accumulator, with no
/// combining; one that precedes a run (a helper's next piece from the back) is folded from
/// `identity()` and combined in front of it. A call therefore ends with about one run per
/// thread, and combines few accumulators at the end, rather than one per piece.
struct ReducePieces<'a, FO, A> {
    fold: &'a FO,
    runs: Mutex<Vec<Run<A>>>,
    /// Where the call's items start in the whole input (a profiled call's rest starts after
    /// its head), so that failures are ordered across the whole input.
    base: usize,
}

/// The accumulator of the items `start..end` of a call.
struct Run<A> {
    start: usize,
    end: usize,
    acc: A,
}

impl<FO, A> ReducePieces<'_, FO, A> {
    /// Takes the finished run that satisfies `adjacent`, if there is one.
    fn take_run(&self, adjacent: impl Fn(&Run<A>) -> bool) -> Option<Run<A>> {
        let mut runs = crate::lock(&self.runs);
        let at = runs.iter().position(adjacent)?;
        Some(runs.swap_remove(at))
    }
}

impl<P, FO> Pieces<P> for ReducePieces<'_, FO, FO::Acc>
where
    P: Producer,
    FO: Fold<P::Item>,
{
    type Slots = Count;

    fn run(
        &self,
        piece: P,
        slots: Count,
        offset: usize,
        control: &Control<'_>,
    ) -> Result<usize, usize> {
        let len = slots.0;
        let end = offset + len;
        let before = self.take_run(|run| run.end == offset);
        let (start, acc) = match before {
            Some(run) => (run.start, run.acc),
            None => (offset, self.fold.identity()),
        };
        let folded = self
            .fold
            .fold(acc, piece.into_iter(), self.base + offset, || {
                control.stopping()
            });
        let acc = match folded {
            Ok(acc) => acc,
            Err(ran) => {
                control.stop_here();
                return Err(ran);
            }
        };
        let run = match self.take_run(|run| run.start == end) {
            Some(after) => Run {
                start,
                end: after.end,
                acc: self.fold.combine(acc, after.acc),
            },
            None => Run { start, end, acc },
        };
        crate::lock(&self.runs).push(run);
        Ok(len)
    }
}

fn reduce_parallel<P, FO>(
    call: Call<'_>,
    producer: P,
    n: usize,
    fold: &FO,
    plan: ParallelRoute,
) -> Option<FO::Acc>
where
    P: Producer,
    P::Item: Send,
    FO: Fold<P::Item>,
{
    reduce_parallel_at(call, producer, 0, n, fold, plan)
}

/// A parallel reduction of the `n` items of `producer`, whose first item is at `base` in the
/// call.
fn reduce_parallel_at<P, FO>(
    call: Call<'_>,
    producer: P,
    base: usize,
    n: usize,
    fold: &FO,
    plan: ParallelRoute,
) -> Option<FO::Acc>
where
    P: Producer,
    P::Item: Send,
    FO: Fold<P::Item>,
{
    let Plan::Parallel { min_len, threads } = plan.decision.plan else {
        return fold
            .fold(fold.identity(), producer.into_iter(), base, || false)
            .ok();
    };
    let pieces = ReducePieces {
        fold,
        runs: Mutex::new(Vec::with_capacity(threads.max(1) * 2)),
        base,
    };
    let completed = parallel_call(call, &plan, true, |busy_ns| {
        let control = Control::new(busy_ns, call.watch);
        drive(
            producer,
            Count(n),
            &pieces,
            min_len,
            threads.saturating_sub(1),
            &control,
            || {},
        );
        match control.ending() {
            Ending::Panicked(payload) => resume_unwind(payload),
            Ending::Stopped { ran } => (false, ran),
            Ending::Done => (true, n),
        }
    });
    if !completed {
        return None;
    }
    let mut runs = pieces
        .runs
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // In input order, so that an associative `op` need not be commutative.
    runs.sort_unstable_by_key(|run| run.start);
    let mut accs = runs.into_iter().map(|run| run.acc);
    let first = accs.next()?;
    Some(accs.fold(first, |a, b| fold.combine(a, b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn sums_and_concatenations_match_the_loop_in_every_mode() {
        let _serial = crate::timing_test();
        for (mode, site) in crate::sites_in_every_mode("r") {
            for n in [0u64, 1, 2, 7, 1_000, 50_000] {
                let sum = map_reduce(site, 0..n, |x| x * 3, || 0, |a, b| a + b);
                assert_eq!(sum, (0..n).map(|x| x * 3).sum::<u64>(), "{mode:?} n={n}");
                let joined = map_reduce(
                    site,
                    0..n.min(2_000),
                    |x| vec![x],
                    Vec::new,
                    |mut a, b| {
                        a.extend(b);
                        a
                    },
                );
                assert_eq!(
                    joined,
                    (0..n.min(2_000)).collect::<Vec<_>>(),
                    "{mode:?} n={n}"
                );
            }
        }
    }

    #[test]
    fn a_fallible_reduction_stops_at_a_failure_in_every_mode() {
        let _serial = crate::timing_test();
        for (mode, site) in crate::sites_in_every_mode("tr") {
            let calls = AtomicUsize::new(0);
            let n = 100_000u64;
            let result: Result<u64, u64> = try_map_reduce(
                site,
                0..n,
                |x| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if x % 10_000 == 300 {
                        Err(x)
                    } else {
                        Ok(x)
                    }
                },
                || 0,
                |a, b| a + b,
            );
            let err = result.unwrap_err();
            assert_eq!(err % 10_000, 300, "{mode:?}");
            if mode == crate::Mode::Serial {
                assert_eq!(err, 300);
                assert_eq!(calls.load(Ordering::Relaxed), 301);
            }
            assert!(calls.load(Ordering::Relaxed) < n as usize, "{mode:?}");
            let fine: Option<u64> = try_map_reduce(site, 0..1_000u64, Some, || 0, |a, b| a + b);
            assert_eq!(fine, Some(499_500), "{mode:?}");
        }
    }
}
