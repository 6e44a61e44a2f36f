//! The fallible entry point: [`try_map`] maps a function returning `Result` or `Option` and
//! stops at the first failure. After it, no thread starts a new item (checked before every
//! item, not only between pieces); items already running finish, and every result made is
//! dropped exactly once.
//!
//! It routes a call like [`map`](crate::map), through the same site: a function learns its
//! cost once, whichever entry point calls it. A stopped call teaches only what its items
//! that ran took: an early stop is not a sample saying the work got cheap.

use crate::dispatch::{owned_route, route, routed, routed_with, short_call, Handover, Route};
use crate::items::IntoItems;
use crate::learn::{learn_from_in_place, learn_from_serial};
use crate::model::Plan;
use crate::observe::{in_steps, Watch};
use crate::profile::profile_with;
use crate::run::{after_profile, fits_in_place, parallel_call, Call};
use crate::site::Site;
use crate::units::elapsed_ns;
use crate::with_caller::{run_into, Ended, Step};
use rayon::iter::plumbing::{Producer, ProducerCallback};
use rayon::prelude::*;
use std::marker::PhantomData;
use std::sync::Mutex;
use std::time::Instant;

/// What a fallible per-item function returns: `Result<T, E>` or `Option<T>`, and what a
/// batch of them becomes: `Result<Vec<T>, E>` or `Option<Vec<T>>`.
pub trait TryItem: Send {
    /// An item's value when it succeeds.
    type Ok: Send;
    /// What stops the batch: the error, or `()` for `None`.
    type Stop: Send;
    /// The batch's result.
    type Batch;
    /// The value, or what stops the batch.
    fn into_result(self) -> Result<Self::Ok, Self::Stop>;
    /// Every item succeeded.
    fn batch(values: Vec<Self::Ok>) -> Self::Batch;
    /// An item failed.
    fn stopped(stop: Self::Stop) -> Self::Batch;
    /// One value or what stopped it, as this type (a reduction's result).
    fn from_result(result: Result<Self::Ok, Self::Stop>) -> Self;
}

impl<T: Send, E: Send> TryItem for Result<T, E> {
    type Ok = T;
    type Stop = E;
    type Batch = Result<Vec<T>, E>;
    fn into_result(self) -> Result<T, E> {
        self
    }
    fn batch(values: Vec<T>) -> Self::Batch {
        Ok(values)
    }
    fn stopped(stop: E) -> Self::Batch {
        Err(stop)
    }
    fn from_result(result: Result<T, E>) -> Self {
        result
    }
}

impl<T: Send> TryItem for Option<T> {
    type Ok = T;
    type Stop = ();
    type Batch = Option<Vec<T>>;
    fn into_result(self) -> Result<T, ()> {
        self.ok_or(())
    }
    fn batch(values: Vec<T>) -> Self::Batch {
        Some(values)
    }
    fn stopped((): ()) -> Self::Batch {
        None
    }
    fn from_result(result: Result<T, ()>) -> Self {
        result.ok()
    }
}

/// Maps a fallible `f` over `items` like [`map`](crate::map), and stops at the first failure:
/// `Ok(values)` in input order when every item succeeds, else the failure.
///
/// Which failure comes back when several items fail: a loop stops at the first in input
/// order and returns it; a parallel call returns the failure of the earliest item, in input
/// order, among the items that ran (items on other threads may have failed first in time,
/// and items after the stop never run).
///
/// ```
/// use amorsize_core::{try_map, Site};
///
/// static PARSE: Site = Site::new("parse");
///
/// let lines = ["1", "2", "x", "4"];
/// let parsed: Result<Vec<u32>, _> = try_map(&PARSE, &lines[..], |s: &&str| s.parse::<u32>());
/// assert!(parsed.is_err());
/// let fine: Result<Vec<u32>, _> = try_map(&PARSE, &lines[..2], |s: &&str| s.parse::<u32>());
/// assert_eq!(fine.unwrap(), [1, 2]);
/// ```
///
/// A panic in `f` propagates to the caller with its payload, as from [`map`](crate::map).
pub fn try_map<T, I, R, F>(site: &'static Site, items: I, f: F) -> R::Batch
where
    T: Send,
    I: IntoItems<T>,
    R: TryItem,
    F: Fn(T) -> R + Sync + Send,
{
    let items = if fits_in_place::<T, R::Ok>() {
        match items.into_held_vec() {
            Ok(items) => return try_map_owned(site, items, f),
            Err(items) => items,
        }
    } else {
        items
    };
    try_map_part(site, items, None, None, f)
}

/// [`try_map`] over an owned `Vec` (or `Box<[T]>`) whose values fit its items' places: its
/// loops run in place, as [`map`](crate::map)'s do (see `dispatch::owned_route`).
fn try_map_owned<T, R, F>(site: &'static Site, items: Vec<T>, f: F) -> R::Batch
where
    T: Send,
    R: TryItem,
    F: Fn(T) -> R + Sync + Send,
{
    let n = items.len();
    let call_index = site.begin_call(n);
    if n == 0 {
        return R::batch(Vec::new());
    }
    let (route, loops_in_place) = if short_call(site, n, call_index) {
        let untimed = Route::Serial {
            timed: false,
            pool: None,
        };
        (untimed, true)
    } else {
        owned_route(site, n, call_index, std::mem::size_of::<R::Ok>())
    };
    if !loops_in_place {
        return try_map_on(site, items.into_par_iter(), n, call_index, route, None, f);
    }
    routed(site, n, route, |watch| {
        if let Some(watch) = watch {
            watch.ran(Plan::Serial);
        }
        let timed = !matches!(route, Route::Serial { timed: false, .. });
        let start = timed.then(Instant::now);
        let result = try_in_place(items, &f);
        // A loop that failed does not say how many items ran (counting them costs the loop
        // its speed: 1.75 ns an item against 0.65 for a cheap function): only a whole one
        // is learned from.
        if let (Some(start), true) = (start, result.is_ok()) {
            learn_from_in_place(site, n, elapsed_ns(start), true);
        }
        match result {
            Ok(values) => (R::batch(values), false),
            Err(stop) => (R::stopped(stop), true),
        }
    })
}

/// A loop over an owned `Vec` that stops at the first failure, writing each value where
/// its item was (see `run::owned_loop`): the values or the failure. The one copy of it each
/// fallible site compiles.
#[inline(never)]
fn try_in_place<T, R, F>(items: Vec<T>, f: &F) -> Result<Vec<R::Ok>, R::Stop>
where
    R: TryItem,
    F: Fn(T) -> R,
{
    items
        .into_iter()
        .map(|item| f(item).into_result())
        .collect()
}

/// [`try_map`] as part of a call: `call` is the index of a call of `site` counted already
/// with all its items (the rest of an async call whose first items ran in slices on the
/// polling thread), `None` for a call of its own; `handover` is what an async call's pool
/// job brings to it (see [`Handover`]).
pub(crate) fn try_map_part<T, I, R, F>(
    site: &'static Site,
    items: I,
    call: Option<u64>,
    handover: Option<Handover<'_>>,
    f: F,
) -> R::Batch
where
    T: Send,
    I: IntoItems<T>,
    R: TryItem,
    F: Fn(T) -> R + Sync + Send,
{
    let iter = items.into_items();
    let n = iter.len();
    let call_index = call.unwrap_or_else(|| site.begin_call(n));
    if n == 0 {
        if let Some(watch) = handover.and_then(|h| h.watch) {
            watch.finish(false, false);
        }
        return R::batch(Vec::new());
    }
    let route = if short_call(site, n, call_index) {
        Route::Serial {
            timed: false,
            pool: None,
        }
    } else {
        route(site, n, call_index)
    };
    try_map_on(site, iter, n, call_index, route, handover, f)
}

/// Runs a fallible call of `n` items of `site` on `route`.
fn try_map_on<T, It, R, F>(
    site: &'static Site,
    iter: It,
    n: usize,
    call_index: u64,
    route: Route,
    handover: Option<Handover<'_>>,
    f: F,
) -> R::Batch
where
    T: Send,
    It: IndexedParallelIterator<Item = T>,
    R: TryItem,
    F: Fn(T) -> R + Sync + Send,
{
    routed_with(site, n, route, handover, |watch| {
        iter.with_producer(TryRun {
            call: Call {
                site,
                call_index,
                watch,
            },
            n,
            f: &f,
            route,
            _result: PhantomData,
        })
    })
}

/// [`try_map`] over a slice of borrowed items.
pub fn try_map_slice<'a, T, R, F>(site: &'static Site, items: &'a [T], f: F) -> R::Batch
where
    T: Sync,
    R: TryItem,
    F: Fn(&'a T) -> R + Sync + Send,
{
    try_map(site, items, f)
}

/// The callback that runs a fallible call's route.
struct TryRun<'f, F, R> {
    call: Call<'f>,
    n: usize,
    f: &'f F,
    route: Route,
    _result: PhantomData<fn() -> R>,
}

impl<T, R, F> ProducerCallback<T> for TryRun<'_, F, R>
where
    T: Send,
    R: TryItem,
    F: Fn(T) -> R + Sync + Send,
{
    /// The batch, and whether it failed.
    type Output = (R::Batch, bool);

    fn callback<P: Producer<Item = T>>(self, producer: P) -> (R::Batch, bool) {
        let TryRun {
            call, n, f, route, ..
        } = self;
        let Call { site, watch, .. } = call.begin();
        let mut out = Vec::with_capacity(n);
        let stopped = match route {
            Route::Serial { timed: false, .. } if watch.is_none() => {
                try_loop(producer, f, &mut out).err()
            }
            Route::Serial { .. } | Route::Watched { .. } => {
                let (ns, result) = stepped_try_loop(producer, n, f, &mut out, watch);
                learn_from_serial(site, ran(&out, &result), ns, result.is_ok());
                result.err()
            }
            Route::Parallel(plan) => try_parallel(call, producer, n, f, plan, &mut out),
            Route::Profile => try_profiled(call, producer, n, f, &mut out),
        };
        match stopped {
            None => (R::batch(out), false),
            Some(stop) => (R::stopped(stop), true),
        }
    }
}

/// Items that ran in a loop that pushed `out`: one more than pushed if it stopped.
fn ran<V, E>(out: &[V], result: &Result<(), E>) -> usize {
    out.len() + usize::from(result.is_err())
}

/// A plain loop that stops at the first failure.
fn try_loop<P, F, R>(producer: P, f: &F, out: &mut Vec<R::Ok>) -> Result<(), R::Stop>
where
    P: Producer,
    R: TryItem,
    F: Fn(P::Item) -> R,
{
    // The values go to a `Vec` of this frame's while the loop runs: pushed into `out`
    // through the reference, each push stored and reloaded its length, which held every
    // item up behind the last one's store (as in `future::Pace::slice`).
    let mut values = std::mem::take(out);
    let mut result = Ok(());
    for item in producer.into_iter() {
        match f(item).into_result() {
            Ok(value) => values.push(value),
            Err(stop) => {
                result = Err(stop);
                break;
            }
        }
    }
    *out = values;
    result
}

/// [`try_loop`], timed (nanoseconds): the one copy each fallible site compiles.
#[inline(never)]
fn timed_try_loop<P, F, R>(producer: P, f: &F, out: &mut Vec<R::Ok>) -> (u64, Result<(), R::Stop>)
where
    P: Producer,
    R: TryItem,
    F: Fn(P::Item) -> R,
{
    let start = Instant::now();
    let result = try_loop(producer, f, out);
    (elapsed_ns(start), result)
}

/// [`timed_try_loop`] over `len` items, in progress steps when the call is watched and long.
fn stepped_try_loop<P, F, R>(
    producer: P,
    len: usize,
    f: &F,
    out: &mut Vec<R::Ok>,
    watch: Option<&Watch>,
) -> (u64, Result<(), R::Stop>)
where
    P: Producer,
    R: TryItem,
    F: Fn(P::Item) -> R,
{
    if watch.is_none() {
        return timed_try_loop(producer, f, out);
    }
    let mut failure = Ok(());
    let (ns, _) = in_steps(producer, len, watch, |piece| {
        let (ns, result) = timed_try_loop(piece, f, out);
        let go_on = result.is_ok();
        failure = result;
        (ns, go_on)
    });
    (ns, failure)
}

/// A first call: its head profiled in blocks (stopping at a failure), then the rest as planned.
fn try_profiled<P, F, R>(
    call: Call<'_>,
    producer: P,
    n: usize,
    f: &F,
    out: &mut Vec<R::Ok>,
) -> Option<R::Stop>
where
    P: Producer,
    P::Item: Send,
    R: TryItem,
    F: Fn(P::Item) -> R + Sync + Send,
{
    let Call { site, watch, .. } = call;
    let mut failure = None;
    let (estimate, rest, stopped) = profile_with(producer, n, |head| {
        let before = out.len();
        let (ns, result) = timed_try_loop(head, f, out);
        match result {
            Ok(()) => {
                crate::observe::advance(watch, out.len() - before);
                Some(ns)
            }
            Err(stop) => {
                failure = Some(stop);
                None
            }
        }
    });
    if stopped {
        // What the complete blocks measured is a fair sample; a call that failed in its
        // first block measured nothing.
        if estimate.done > 0 {
            site.publish_profile(estimate.per_item, false, true);
        }
        return failure;
    }
    let Some(rest) = rest else {
        after_profile(call, n, &estimate, false);
        return None;
    };
    let remaining = n - estimate.done;
    match after_profile(call, n, &estimate, true) {
        Some(Route::Parallel(plan)) => try_parallel(call, rest, remaining, f, plan, out),
        _ => {
            let (ns, result) = stepped_try_loop(rest, remaining, f, out, watch);
            learn_from_serial(site, ran(out, &result) - estimate.done, ns, false);
            result.err()
        }
    }
}

/// A fallible item's step: the first failure in input order among the items that ran is
/// kept, and stops the call.
struct TryStep<'f, F, S> {
    f: &'f F,
    first: Mutex<Option<(usize, S)>>,
}

impl<I, R, F> Step<I, R::Ok> for TryStep<'_, F, R::Stop>
where
    R: TryItem,
    F: Fn(I) -> R + Sync,
{
    const STOPS: bool = true;

    fn step(&self, index: usize, item: I) -> Option<R::Ok> {
        match (self.f)(item).into_result() {
            Ok(value) => Some(value),
            Err(stop) => {
                let mut first = crate::lock(&self.first);
                if first.as_ref().map_or(true, |(at, _)| index < *at) {
                    *first = Some((index, stop));
                }
                None
            }
        }
    }
}

fn try_parallel<P, F, R>(
    call: Call<'_>,
    producer: P,
    n: usize,
    f: &F,
    plan: crate::dispatch::ParallelRoute,
    out: &mut Vec<R::Ok>,
) -> Option<R::Stop>
where
    P: Producer,
    P::Item: Send,
    R: TryItem,
    F: Fn(P::Item) -> R + Sync + Send,
{
    let Plan::Parallel { min_len, threads } = plan.decision.plan else {
        return try_loop(producer, f, out).err();
    };
    let step = TryStep {
        f,
        first: Mutex::new(None),
    };
    let ended = parallel_call(call, &plan, true, |busy_ns| {
        let ended = run_into(
            producer,
            n,
            &step,
            min_len,
            threads.saturating_sub(1),
            out,
            busy_ns,
            call.watch,
            || {},
        );
        let ran = match ended {
            Ended::Done => n,
            Ended::Stopped { ran } => ran,
        };
        (ended, ran)
    });
    match ended {
        Ended::Done => None,
        Ended::Stopped { .. } => {
            // The caller drops `out`: its values so far belong to a failed batch.
            step.first
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .map(|(_, stop)| stop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_and_options_collect_or_stop() {
        static OK: Site = Site::new("try_ok");
        let all: Result<Vec<u64>, String> = try_map(&OK, 0..1_000u64, |x| Ok(x * 2));
        assert_eq!(all.unwrap()[999], 1998);
        static SOME: Site = Site::new("try_some");
        let none: Option<Vec<u64>> = try_map(&SOME, 0..1_000u64, |x| (x != 500).then_some(x));
        assert_eq!(none, None);
        let empty: Option<Vec<u64>> = try_map(&SOME, 0..0u64, Some);
        assert_eq!(empty, Some(vec![]));
    }

    #[test]
    fn a_loop_returns_the_first_failure_in_input_order_and_stops_there() {
        static SERIAL: Site = Site::new("try_serial").with_mode(crate::Mode::Serial);
        let calls = AtomicUsize::new(0);
        let result: Result<Vec<u64>, u64> = try_map(&SERIAL, 0..10_000u64, |x| {
            calls.fetch_add(1, Ordering::Relaxed);
            if x == 300 || x == 600 {
                Err(x)
            } else {
                Ok(x)
            }
        });
        assert_eq!(result, Err(300));
        assert_eq!(calls.load(Ordering::Relaxed), 301);
    }

    #[test]
    fn a_parallel_call_stops_soon_and_returns_the_earliest_failure_that_ran() {
        let _serial = crate::timing_test();
        static PARALLEL: Site = Site::new("try_parallel").with_mode(crate::Mode::Parallel);
        let calls = AtomicUsize::new(0);
        let n = 100_000u64;
        let result: Result<Vec<u64>, u64> = try_map(&PARALLEL, 0..n, |x| {
            calls.fetch_add(1, Ordering::Relaxed);
            if x % 1_000 == 300 {
                Err(x)
            } else {
                Ok(x)
            }
        });
        let err = result.unwrap_err();
        assert_eq!(err % 1_000, 300);
        // Every thread stops at its next item: far fewer than all items ran.
        assert!(
            calls.load(Ordering::Relaxed) < n as usize,
            "{} of {n} items ran",
            calls.load(Ordering::Relaxed)
        );
    }
}
