//! The streaming entry point: [`map_iter`] maps a function over any iterator, lazily, in
//! input order, in bounded memory.
//!
//! The returned [`MapIter`] reads its input in batches on the thread that calls `next()`, and
//! maps each batch as a call of its own through the site (so a function learns once, whichever
//! entry point calls it): a loop, or the parallel engine, in which the calling thread first
//! reads the next batch while the pool's helpers start on this one, so reading and mapping
//! overlap. A batch is long enough that its cost of going parallel is a few per cent of its
//! work (about 4 ms of it, from the learned per-item cost), and holds at most
//! [`MAX_BATCH`] items; at most two batches and one batch of results are held at a time.
//! Items too cheap for any batch to pay for going parallel are mapped one by one as they are
//! asked for, like `input.map(f)`, re-measured every [`LAZY_STRETCH`] items.
//!
//! Nothing runs between calls to `next()`: dropping the iterator early stops all work at
//! once. A panic in the function reaches the caller at the `next()` that would have returned
//! that item's result, with its payload (the other items of its batch have run).

use crate::dispatch::{route, routed, short_call, ParallelRoute, Route};
use crate::model::Plan;
use crate::run::{parallel_call, Call, Run};
use crate::site::Site;
use crate::with_caller::{run_into, Ended, MapStep};
use rayon::iter::plumbing::{Producer, ProducerCallback};
use rayon::prelude::*;
use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// A batch's work target, in nanoseconds: the cost of going parallel (tens of µs) is then a
/// few per cent of it, and the first results of a stream come within a few ms.
const TARGET_BATCH_NS: f64 = 4_000_000.0;
/// The first batch of a function whose cost is not known yet: profiled like a first call.
const FIRST_BATCH: usize = 256;
/// The shortest batch.
const MIN_BATCH: usize = 64;
/// The longest batch: what bounds a stream's memory (about three batches of items and
/// results) when items are cheap.
pub const MAX_BATCH: usize = 65_536;
/// How many items a stream of cheap items maps one by one before measuring a batch again.
pub const LAZY_STRETCH: usize = 1 << 20;

/// One item's result, or the panic it raised.
#[doc(hidden)]
pub type Caught<R> = Result<R, Box<dyn Any + Send>>;

/// Maps `f` over `input` lazily, in input order, choosing per batch between a loop and a
/// parallel map from what `site` has learned (see the [module docs](self)).
///
/// ```
/// use amorsize_core::{map_iter, Site};
///
/// static SQUARE: Site = Site::new("square");
///
/// // An endless input: only what is asked for is read (and at most a batch ahead).
/// let first: Vec<u64> = map_iter(&SQUARE, 0u64.., |x| x * x).take(5).collect();
/// assert_eq!(first, [0, 1, 4, 9, 16]);
/// ```
///
/// The input is only ever read on the thread that calls `next()`, so it need not be `Send`;
/// its items are (they are mapped on the pool's threads).
pub fn map_iter<I, R, F>(site: &'static Site, input: I, f: F) -> MapIter<I::IntoIter, ByValue<F>>
where
    I: IntoIterator,
    I::Item: Send,
    R: Send,
    F: Fn(I::Item) -> R + Sync,
{
    MapIter::new(site, input.into_iter(), ByValue(f))
}

/// [`map_iter`] for a function that borrows each item: the items stay on the thread that
/// reads them (they need only be `Sync`) and are dropped there after their batch, which
/// spares the allocator frees from other threads (measured: strings read on one thread and
/// freed on another cost 2.9× as much per item in parallel as in a loop, under glibc).
///
/// ```
/// use amorsize_core::{map_iter_ref, Site};
///
/// static LEN: Site = Site::new("len");
///
/// let lines = ["a", "bb", "ccc"].map(String::from);
/// let lens: Vec<usize> = map_iter_ref(&LEN, lines, |s: &String| s.len()).collect();
/// assert_eq!(lens, [1, 2, 3]);
/// ```
pub fn map_iter_ref<I, R, F>(site: &'static Site, input: I, f: F) -> MapIter<I::IntoIter, ByRef<F>>
where
    I: IntoIterator,
    I::Item: Sync,
    R: Send,
    F: Fn(&I::Item) -> R + Sync,
{
    MapIter::new(site, input.into_iter(), ByRef(f))
}

/// How a stream hands its items to the function: [`ByValue`] or [`ByRef`].
pub trait StreamFn<T>: Sync {
    /// What the function returns.
    type Output: Send;
    /// Maps one item where it is (the lazy path).
    fn call(&self, item: T) -> Self::Output;
    /// Maps a batch through `site` along `route` (call `call_index`); the caller runs
    /// `before` while helpers start, when the batch runs in parallel.
    #[doc(hidden)]
    fn batch(&self, batch: Batch<T>, before: impl FnOnce()) -> Vec<Caught<Self::Output>>;
}

/// A batch and how it runs.
#[doc(hidden)]
pub struct Batch<T> {
    site: &'static Site,
    items: Vec<T>,
    call_index: u64,
    route: Route,
}

/// Items moved into the function (`fn f(x: T)`).
pub struct ByValue<F>(F);

/// Items lent to the function (`fn f(x: &T)`), dropped by the thread that read them.
pub struct ByRef<F>(F);

impl<T: Send, R: Send, F: Fn(T) -> R + Sync> StreamFn<T> for ByValue<F> {
    type Output = R;
    #[inline]
    fn call(&self, item: T) -> R {
        (self.0)(item)
    }
    fn batch(&self, batch: Batch<T>, before: impl FnOnce()) -> Vec<Caught<R>> {
        let caught = |item| catch_unwind(AssertUnwindSafe(|| (self.0)(item)));
        run_batch(
            batch.site,
            batch.items,
            batch.call_index,
            batch.route,
            &caught,
            before,
        )
    }
}

impl<T: Sync, R: Send, F: Fn(&T) -> R + Sync> StreamFn<T> for ByRef<F> {
    type Output = R;
    #[inline]
    fn call(&self, item: T) -> R {
        (self.0)(&item)
    }
    fn batch(&self, batch: Batch<T>, before: impl FnOnce()) -> Vec<Caught<R>> {
        let caught = |item: &T| catch_unwind(AssertUnwindSafe(|| (self.0)(item)));
        let out = run_batch(
            batch.site,
            &batch.items[..],
            batch.call_index,
            batch.route,
            &caught,
            before,
        );
        // The items go where they were made.
        drop(batch.items);
        out
    }
}

/// Runs one batch of `items` along `route`: the parallel engine with the caller's errand,
/// or the route's loop (or profile) followed by the errand.
fn run_batch<T, I, R, G>(
    site: &'static Site,
    items: I,
    call_index: u64,
    route: Route,
    f: &G,
    before: impl FnOnce(),
) -> Vec<R>
where
    T: Send,
    I: IntoParallelIterator<Item = T>,
    I::Iter: IndexedParallelIterator,
    R: Send,
    G: Fn(T) -> R + Sync + Send,
{
    let iter = items.into_par_iter();
    let n = iter.len();
    match route {
        // Not counted as a planned call running in the pool (which makes calls made meanwhile
        // plan for the threads left): the errand may be another stream's batches (a chain
        // of stages), which must not see this batch's helpers as busy. Measured: a two-stage
        // chain ran its first stage as a loop, 1.07x the loop's speed in all.
        Route::Parallel(plan) => iter.with_producer(ParallelBatch {
            site,
            n,
            call_index,
            f,
            plan,
            before,
        }),
        _ => {
            let out = routed(site, n, route, |watch| {
                let call = Call {
                    site,
                    call_index,
                    watch,
                };
                let out = iter.with_producer(Run::new(call, n, f, route));
                (out, false)
            });
            before();
            out
        }
    }
}

/// The iterator [`map_iter`] and [`map_iter_ref`] return: the function of each input item,
/// in order.
pub struct MapIter<It: Iterator, S: StreamFn<It::Item>> {
    site: &'static Site,
    input: It,
    f: S,
    /// The next batch, read ahead.
    ahead: Vec<It::Item>,
    /// The current batch's results.
    out: std::vec::IntoIter<Caught<S::Output>>,
    /// The input has ended.
    exhausted: bool,
    /// Items still to map one by one before measuring a batch again (cheap items).
    lazy_left: usize,
    /// The thread cap around the code that made the stream (0 for none), which its
    /// batches are planned under wherever the stream is read.
    cap: usize,
}

impl<It: Iterator, S: StreamFn<It::Item>> MapIter<It, S> {
    fn new(site: &'static Site, input: It, f: S) -> Self {
        MapIter {
            site,
            input,
            f,
            ahead: Vec::new(),
            out: Vec::new().into_iter(),
            exhausted: false,
            lazy_left: 0,
            cap: crate::config::call_max_threads().unwrap_or(0),
        }
    }
}

impl<It: Iterator, S: StreamFn<It::Item>> Iterator for MapIter<It, S> {
    type Item = S::Output;

    #[inline]
    fn next(&mut self) -> Option<S::Output> {
        loop {
            if let Some(result) = self.out.next() {
                return Some(match result {
                    Ok(value) => value,
                    Err(payload) => resume_unwind(payload),
                });
            }
            if self.lazy_left > 0 && self.ahead.is_empty() {
                self.lazy_left -= 1;
                return match self.input.next() {
                    Some(item) => Some(self.f.call(item)),
                    None => {
                        self.exhausted = true;
                        self.lazy_left = 0;
                        None
                    }
                };
            }
            if !self.refill() {
                return None;
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let held = self.out.len() + self.ahead.len();
        if self.exhausted {
            return (held, Some(held));
        }
        let (low, high) = self.input.size_hint();
        (
            held.saturating_add(low),
            high.and_then(|high| high.checked_add(held)),
        )
    }
}

impl<It: Iterator, S: StreamFn<It::Item>> MapIter<It, S> {
    /// Maps the next batch into `out` under the stream's thread cap; `false` when the input
    /// has ended.
    #[inline(never)]
    fn refill(&mut self) -> bool {
        let cap = self.cap;
        crate::config::with_max_threads(cap, || self.refill_now())
    }

    /// Maps the next batch into `out`; `false` when the input has ended.
    fn refill_now(&mut self) -> bool {
        let site = self.site;
        if self.ahead.is_empty() && !self.exhausted {
            read(
                &mut self.input,
                &mut self.ahead,
                batch_len(site),
                &mut self.exhausted,
            );
        }
        if self.ahead.is_empty() {
            return false;
        }
        let items = std::mem::take(&mut self.ahead);
        let n = items.len();
        let call_index = site.begin_call(n);
        let route = if short_call(site, n, call_index) {
            Route::Serial {
                timed: false,
                pool: None,
            }
        } else {
            route(site, n, call_index)
        };
        let (input, ahead, exhausted) = (&mut self.input, &mut self.ahead, &mut self.exhausted);
        // Read the next batch while helpers start on this one (or after it, for a loop).
        let read_ahead = || {
            if !*exhausted {
                read(input, ahead, batch_len(site), exhausted);
            }
        };
        let batch = Batch {
            site,
            items,
            call_index,
            route,
        };
        let results = self.f.batch(batch, read_ahead);
        if cheap(site) {
            self.lazy_left = LAZY_STRETCH;
        }
        self.out = results.into_iter();
        true
    }
}

/// Appends up to `len` items of `input` to `ahead`, noting when it ends.
fn read<It: Iterator>(input: &mut It, ahead: &mut Vec<It::Item>, len: usize, exhausted: &mut bool) {
    ahead.reserve(len);
    while ahead.len() < len {
        match input.next() {
            Some(item) => ahead.push(item),
            None => {
                *exhausted = true;
                break;
            }
        }
    }
}

/// How many items the next batch of `site` holds: about [`TARGET_BATCH_NS`] of work at its
/// learned cost, [`FIRST_BATCH`] while the cost is unknown.
fn batch_len(site: &Site) -> usize {
    match site.planning_costs() {
        None => FIRST_BATCH,
        Some(costs) => {
            let per_item_ns = costs.serial.as_nanos().max(1e-3);
            ((TARGET_BATCH_NS / per_item_ns) as usize).clamp(MIN_BATCH, MAX_BATCH)
        }
    }
}

/// Whether `site`'s items are too cheap for even the longest batch to pay for going
/// parallel in this thread's pool (or the pool has one thread): then they are mapped one by
/// one, as asked for.
fn cheap(site: &Site) -> bool {
    crate::dispatch::measures(site)
        && site.planning_costs().is_some_and(|costs| {
            costs.serial.work_ps(MAX_BATCH) < crate::pool::here().serial_limit_ps()
        })
}

/// A parallel batch: the engine, with the caller reading the next batch first.
struct ParallelBatch<'f, G, B> {
    site: &'static Site,
    n: usize,
    call_index: u64,
    f: &'f G,
    plan: ParallelRoute,
    before: B,
}

impl<T, R, G, B> ProducerCallback<T> for ParallelBatch<'_, G, B>
where
    T: Send,
    R: Send,
    G: Fn(T) -> R + Sync + Send,
    B: FnOnce(),
{
    type Output = Vec<R>;

    fn callback<P: Producer<Item = T>>(self, producer: P) -> Vec<R> {
        let ParallelBatch {
            site,
            n,
            call_index,
            f,
            plan,
            before,
        } = self;
        let Plan::Parallel { min_len, threads } = plan.decision.plan else {
            before();
            return producer.into_iter().map(f).collect();
        };
        let call = Call {
            site,
            call_index,
            watch: None,
        };
        // The wall time includes the caller's reading: only the pieces are learned from.
        parallel_call(call, &plan, false, |busy_ns| {
            let mut out = Vec::with_capacity(n);
            let ended = run_into(
                producer,
                n,
                &MapStep(f),
                min_len,
                threads.saturating_sub(1),
                &mut out,
                busy_ns,
                None,
                before,
            );
            debug_assert_eq!(ended, Ended::Done);
            (out, n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn order_and_values_match_the_loop_across_batches_and_modes() {
        let _serial = crate::timing_test();
        for (mode, site) in crate::sites_in_every_mode("s") {
            for n in [0u64, 1, 63, 64, 65, 1_000, 100_000] {
                let out: Vec<u64> = map_iter(site, 0..n, |x| x * 3 + 1).collect();
                assert_eq!(
                    out,
                    (0..n).map(|x| x * 3 + 1).collect::<Vec<_>>(),
                    "{mode:?}"
                );
            }
        }
    }

    #[test]
    fn the_input_is_read_on_the_calling_thread_and_not_far_ahead() {
        let _serial = crate::timing_test();
        static AHEAD: Site = Site::new("s_ahead").with_mode(crate::Mode::Parallel);
        let read = Cell::new(0usize);
        // A `Cell` is not `Sync`: the input could not be read on another thread.
        let input = (0u64..).inspect(|_| read.set(read.get() + 1));
        let mut out = map_iter(&AHEAD, input, |x| x + 1);
        assert_eq!(out.next(), Some(1));
        // The first batch and the one read ahead, at most.
        assert!(read.get() <= 2 * MAX_BATCH, "{} items read", read.get());
        let rest: Vec<u64> = out.take(10_000).collect();
        assert_eq!(rest[9_999], 10_001);
    }
}
