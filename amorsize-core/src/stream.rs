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
//! A batch planned as a loop (items too cheap for a batch to pay for going parallel, a busy
//! pool, a serial mode) reads nothing ahead, and the items after it are mapped one by one as
//! they are asked for, like `input.map(f)`, with no batch's buffers: for about 16 ms of the
//! caller's time (at most [`LAZY_STRETCH`] items), after which a batch is planned again.
//! An input whose length has a known bound (its `size_hint`'s upper bound: a `Vec`, a
//! range, a slice's iterator, a `filter` over one…) such that a batch that long would be a
//! settled short loop (as a call of `par_<name>` would be) is mapped that way from its first
//! item, as one call of the site, with no batch at all.
//! Consumers that fold (`sum`, `for_each`, `collect`…) run such a stretch as the input's
//! own `fold`. A stream of cheap items (under 16 ns each) that the caller's own code reads
//! also compares what it sees of both ways, batches in parallel and a loop one by one (the
//! reading and handing over of each item in a batch, on the caller's thread, can cost more
//! than the parallel map saves), and maps as the faster one, trying the other again from
//! time to time; the site's next stream starts from that verdict. Until a stream has
//! measured both ways (one tries the loop after two batches in parallel it could judge, which
//! a stream of two or three batches never has), the next starts from what those batches
//! cost its caller, and tries the loop first. While every call is
//! watched (an observer, a tracing subscriber), every item is mapped in a batch.
//!
//! A batch is mapped once it is full, once the input ends, or once reading it has taken
//! about 16 ms (the clock is read after 1, 2, 4… items, or 16, 64, 256… when the input
//! bounds its length, and after every item when the input is slow): an input that yields
//! its items slowly (a socket, a pipe, a producer thread) gets its results about that long
//! after their items, not once a batch's worth has come. Reading blocks in the input's own
//! `next()`, though, and a batch's results wait for the item being read: an input that waits
//! for the stream's results before it gives its next item waits forever (map such items one
//! at a time, with the function itself).
//!
//! Nothing runs between calls to `next()`: dropping the iterator early stops all work at
//! once. A panic in the function reaches the caller at the `next()` that would have returned
//! that item's result, with its payload (the other items of its batch have run).

use crate::config::Mode;
use crate::dispatch::{route, routed, short_call, ParallelRoute, Route};
use crate::model::Plan;
use crate::run::{parallel_call, Call, Run};
use crate::site::Site;
use crate::with_caller::{run_into, Ended, MapStep};
use rayon::iter::plumbing::{Producer, ProducerCallback};
use rayon::prelude::*;
use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::Instant;

/// A batch's work target, in nanoseconds: the cost of going parallel (tens of µs) is then a
/// few per cent of it, and the first results of a stream come within a few ms.
const TARGET_BATCH_NS: f64 = 4_000_000.0;
/// The first batch of a function whose cost is not known yet: profiled like a first call.
const FIRST_BATCH: usize = 256;
/// The shortest batch.
const MIN_BATCH: usize = 64;
/// The work (nanoseconds, at the site's cost) of a batch that would run as a loop, read
/// short rather than whole (see `MapIter::loop_probe`): timed, it is long enough to learn
/// the cost from (over 2.5 µs, where every loop is timed).
const LOOP_PROBE_NS: f64 = 4_000.0;
/// The longest batch: what bounds a stream's memory (about three batches of items and
/// results) when items are cheap.
pub const MAX_BATCH: usize = 65_536;
/// How much of the caller's time (in nanoseconds) a stream whose batch was planned as a
/// loop maps one by one before it plans a batch again.
const LAZY_NS: f64 = 16_000_000.0;
/// The most items a stream maps one by one before it plans a batch again.
pub const LAZY_STRETCH: usize = 1 << 24;
/// How long (in nanoseconds) a stream goes on reading one batch: then it maps what it has
/// read. An input that yields its items slowly (a socket, a pipe, a producer thread) thus
/// gets its results within about this long, not once a batch's worth of items has come.
const READ_NS: u64 = 16_000_000;
/// Streams of items that cost less than this (nanoseconds, at the site's learned cost)
/// compare what their caller sees of batches in parallel and of a loop one by one: there
/// the reading and handing over of each item on the caller's thread (a few ns) can cost
/// more than a parallel map saves.
const COMPARED_BELOW_NS: f64 = 16.0;
/// One in this many choices of the loop over batches that might run in parallel tries two
/// batches again (the second judged): what they cost the caller may have changed.
const BATCHES_AGAIN: u32 = 4;
/// Every this many judged batches in parallel, a stream measures its loop again.
const LOOP_AGAIN: u32 = 32;

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
/// // An endless input: only what is asked for is read (and at most a batch ahead, or what
/// // comes in about 16 ms of reading when the input is slow).
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

/// A stretch of a stream from one batch to the next.
struct Segment {
    start: Instant,
    /// The batch's items (those mapped one by one after it are counted apart).
    items: usize,
    /// The batch ran in parallel.
    parallel: bool,
    /// Its wall time per item counts in the comparison of batches and the loop.
    judged: bool,
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
                let out = iter.with_producer(Run::new(call, n, f, route, false));
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
    /// Items still to map one by one before a batch is planned again.
    lazy_left: usize,
    /// What `lazy_left` was set to: the items mapped one by one since are counted in the
    /// site's report when the stretch ends (or the stream is dropped).
    lazy_set: usize,
    /// The stretch to map one by one once the current batch's results are taken.
    lazy_next: usize,
    /// Since the last batch: when it started, and how it was mapped.
    segment: Option<Segment>,
    /// The caller's wall time per item over judged batches in parallel, and over batches
    /// run as loops with the stretches after them (the mean of the last two); at first, the
    /// verdict of the site's last stream that measured both (0 for the faster way, infinite
    /// for the other).
    batched_ns: Option<f64>,
    lazy_ns: Option<f64>,
    /// What this stream last told its site: whether the loop came faster than batches.
    told: Option<bool>,
    /// Judged batches in parallel.
    parallel_batches: u32,
    /// How often [`loop_instead`](Self::loop_instead) has found the loop faster.
    loops_chosen: u32,
    /// Batches to plan before the loop is chosen again.
    batches_left: u32,
    /// The stream is read by another stream, or reads one: it follows its plans only (what
    /// its caller sees also depends on how the other maps, which adapts too).
    chained: bool,
    /// The thread cap around the code that made the stream (0 for none), which its
    /// batches are planned under wherever the stream is read.
    cap: usize,
    /// How fast the input gave its items when last read.
    pace: ReadPace,
    /// The call the next batch is, already counted (with none of its items) when the stream
    /// looked at whether its input was short.
    counted: Option<u64>,
}

impl<It: Iterator, S: StreamFn<It::Item>> MapIter<It, S> {
    fn new(site: &'static Site, input: It, f: S) -> Self {
        // What the site's last stream found, until this one measures its own: a verdict, or
        // what its batches in parallel cost, and then the loop is measured first (streams
        // too short to measure both ways would otherwise never find the loop faster).
        let (batched_ns, lazy_ns) = match site.stream_loop_faster() {
            Some(true) => (Some(f64::INFINITY), Some(0.0)),
            Some(false) => (Some(0.0), Some(f64::INFINITY)),
            None => (site.stream_batched_ns(), None),
        };
        let parallel_batches = if batched_ns.is_some_and(measured) {
            2
        } else {
            0
        };
        MapIter {
            batched_ns,
            lazy_ns,
            site,
            input,
            f,
            ahead: Vec::new(),
            out: Vec::new().into_iter(),
            exhausted: false,
            lazy_left: 0,
            lazy_set: 0,
            lazy_next: 0,
            segment: None,
            told: None,
            parallel_batches,
            loops_chosen: 0,
            batches_left: 0,
            chained: false,
            cap: crate::config::call_max_threads().unwrap_or(0),
            pace: ReadPace::default(),
            counted: None,
        }
    }
}

impl<It: Iterator, S: StreamFn<It::Item>> Iterator for MapIter<It, S> {
    type Item = S::Output;

    #[inline]
    fn next(&mut self) -> Option<S::Output> {
        // A stretch one by one starts once a batch's results are all taken.
        if self.lazy_left > 0 {
            self.lazy_left -= 1;
            if let Some(item) = self.input.next() {
                return Some(self.f.call(item));
            }
            self.lazy_left += 1;
            self.input_ended();
            return None;
        }
        if let Some(result) = self.out.next() {
            return Some(unwrapped(result));
        }
        self.next_from_batches()
    }

    /// A stretch mapped one by one runs as the input's own `fold`, as `input.map(f)` would.
    fn fold<B, G>(mut self, init: B, mut g: G) -> B
    where
        G: FnMut(B, Self::Item) -> B,
    {
        let mut acc = init;
        loop {
            for result in self.out.by_ref() {
                acc = g(acc, unwrapped(result));
            }
            if self.lazy_left > 0 {
                let stretch = self.lazy_left;
                let mut mapped = 0;
                let f = &self.f;
                acc = (&mut self.input).take(stretch).fold(acc, |acc, item| {
                    mapped += 1;
                    g(acc, f.call(item))
                });
                self.lazy_left -= mapped;
                if mapped < stretch {
                    self.input_ended();
                    return acc;
                }
                continue;
            }
            match self.next_from_batches() {
                Some(value) => acc = g(acc, value),
                None => return acc,
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

    /// The next result of a batch, or the first item of the stretch mapped one by one after
    /// it, or of the next batch.
    #[inline(never)]
    fn next_from_batches(&mut self) -> Option<S::Output> {
        loop {
            if let Some(result) = self.out.next() {
                return Some(unwrapped(result));
            }
            if self.lazy_next > 0 && self.ahead.is_empty() {
                self.lazy_left = std::mem::take(&mut self.lazy_next);
                self.lazy_set = self.lazy_left;
                return self.next();
            }
            if self.short_rest() {
                return self.next();
            }
            if !self.refill() {
                return None;
            }
        }
    }

    /// Whether the rest of the input has a known bound on its length (its `size_hint`'s
    /// upper bound: a `Vec`, a range, a slice's iterator, a `filter` over one…) and a batch
    /// that long would be a settled short loop (as [`short_call`] says of a call): then it is
    /// mapped one by one, like `input.map(f)`, with no batch's buffers, as one call of the
    /// site. Otherwise the call counted here is the next batch's.
    fn short_rest(&mut self) -> bool {
        if !self.ahead.is_empty() || self.exhausted || self.counted.is_some() {
            return false;
        }
        let bound = match self.input.size_hint() {
            (_, Some(high)) if high < LAZY_STRETCH => high,
            _ => return false,
        };
        // Its items are counted as they are mapped.
        let call_index = self.site.begin_call(0);
        if !short_call(self.site, bound, call_index) {
            self.counted = Some(call_index);
            return false;
        }
        // One more than the bound: the input's end is found one by one too.
        self.lazy_left = bound + 1;
        self.lazy_set = self.lazy_left;
        true
    }

    /// The input ended during a stretch mapped one by one.
    #[cold]
    fn input_ended(&mut self) {
        self.exhausted = true;
        self.count_lazy();
        self.lazy_left = 0;
        self.lazy_set = 0;
    }

    /// Counts the items mapped one by one since the last count in the site's report, and
    /// returns how many.
    fn count_lazy(&mut self) -> usize {
        let mapped = self.lazy_set - self.lazy_left;
        if mapped > 0 {
            self.site.count_items(mapped);
        }
        self.lazy_set = self.lazy_left;
        mapped
    }

    /// Ends the segment since the last batch, whose stretch mapped `lazy` items one by one:
    /// its wall time per item is what the caller saw of that way of mapping (its input's
    /// reading and its own work on each result included).
    fn end_segment(&mut self, now: Instant, lazy: usize) {
        let Some(segment) = self.segment.take() else {
            return;
        };
        let items = segment.items + lazy;
        // A short segment (the input's last batch) is not judged: its fixed costs weigh
        // too much.
        if !segment.judged || items < batch_len(self.site) / 2 {
            return;
        }
        let per_item_ns = now.duration_since(segment.start).as_nanos() as f64 / items as f64;
        let figure = if segment.parallel {
            self.parallel_batches += 1;
            &mut self.batched_ns
        } else {
            &mut self.lazy_ns
        };
        // The mean with the last: one slow stretch (a descheduled thread) does not turn it.
        // A figure the site's last stream left (0 or infinite) is replaced.
        *figure = Some(match *figure {
            Some(last) if measured(last) => (last + per_item_ns) / 2.0,
            _ => per_item_ns,
        });
        if segment.parallel && !self.chained {
            if let Some(batched) = self.batched_ns {
                self.site.set_stream_batched_ns(batched);
            }
        }
        if let (Some(batched), Some(lazy)) = (self.batched_ns, self.lazy_ns) {
            let verdict = Some(lazy < batched);
            if measured(batched) && measured(lazy) && !self.chained && verdict != self.told {
                self.told = verdict;
                self.site.set_stream_loop_faster(verdict);
            }
        }
    }

    /// The length to read a batch of `len` items short to, when it would run as a loop
    /// (at most as many as the input says it holds, planned now): about [`LOOP_PROBE_NS`]
    /// of work, to be timed, and the rest mapped one by one after it, like the rest of any
    /// batch planned as a loop. Read whole, a loop's batch only buffers its items and
    /// results: measured, 10 000 items of a 0.5 ns function from a range took 2-6 ns an
    /// item that way (the buffers' pages faulted in each time, and counted in the site's
    /// cost), against 0.5 ns for the caller's loop. `None` while anything watches every
    /// call (then every item is in a batch), and for a cost not known yet.
    fn loop_probe(&self, len: usize) -> Option<usize> {
        if crate::observe::watching() {
            return None;
        }
        let costs = self.site.planning_costs()?;
        let n = len.min(self.input.size_hint().1.unwrap_or(usize::MAX));
        let short = ((LOOP_PROBE_NS / costs.serial.as_nanos().max(1e-3)) as usize).max(MIN_BATCH);
        if short >= n {
            return None;
        }
        let loops = match crate::dispatch::mode_for(self.site) {
            Mode::Serial => true,
            Mode::Parallel => false,
            Mode::Auto => crate::dispatch::plans_loop_here(self.site, n, costs),
        };
        loops.then_some(short)
    }

    /// Whether this stream chooses between batches and the loop from what it measures: its
    /// items are cheap (under [`COMPARED_BELOW_NS`] at the site's cost), it is not
    /// [`chained`](Self::chained), its site's plans are its own (`auto`), and nothing
    /// watches every call.
    fn compares(&self) -> bool {
        let cheap = self
            .site
            .planning_costs()
            .is_some_and(|costs| costs.serial.as_nanos() < COMPARED_BELOW_NS);
        cheap
            && !self.chained
            && crate::dispatch::mode_for(self.site) == Mode::Auto
            && !crate::observe::watching()
    }

    /// How many items to map one by one next although a batch of them might be planned in
    /// parallel (0 for none). Only a stream that [`compares`](Self::compares) chooses so,
    /// from what it measured: when batches came slower to its caller than a loop one by one,
    /// a stretch of about [`LAZY_NS`]; every [`BATCHES_AGAIN`]th time two batches instead.
    /// To measure the loop: a batch's worth, after two judged batches in parallel and again
    /// every [`LOOP_AGAIN`].
    fn loop_instead(&mut self) -> usize {
        if !self.compares() {
            return 0;
        }
        if self.batches_left > 0 {
            self.batches_left -= 1;
            return 0;
        }
        match (self.batched_ns, self.lazy_ns) {
            (Some(batched), Some(lazy)) if lazy < batched => {
                self.loops_chosen += 1;
                if self.loops_chosen % BATCHES_AGAIN == 0 {
                    self.batches_left = 1;
                    0
                } else {
                    self.stretch(LAZY_NS)
                }
            }
            (Some(_), None) if self.parallel_batches >= 2 => self.stretch(TARGET_BATCH_NS),
            (Some(_), Some(_)) if self.parallel_batches % LOOP_AGAIN == LOOP_AGAIN - 1 => {
                // Counted once: the loop measured next is what decides.
                self.parallel_batches += 1;
                self.stretch(TARGET_BATCH_NS)
            }
            _ => 0,
        }
    }

    /// How many items mapped one by one take about `ns` of the caller's time: at the wall
    /// time per item of the last stretches (its input's reading and the caller's own work
    /// on each result included), or at the site's cost if that is more; from [`MIN_BATCH`]
    /// to [`LAZY_STRETCH`]. A batch's worth while no stretch has been measured.
    fn stretch(&self, ns: f64) -> usize {
        let cost = self
            .site
            .planning_costs()
            .map(|costs| costs.serial.as_nanos());
        match (cost, self.lazy_ns.filter(|wall| measured(*wall))) {
            (Some(cost), Some(wall)) => {
                ((ns / cost.max(wall).max(1e-3)) as usize).clamp(MIN_BATCH, LAZY_STRETCH)
            }
            // The caller's time per item is not known yet (its input may cost far more than
            // the function): a batch's worth.
            _ => batch_len(self.site),
        }
    }

    /// Maps the next batch into `out`; `false` when the input has ended.
    fn refill_now(&mut self) -> bool {
        // Whoever reads this stream now learns that it reads a stream; and this stream,
        // whether another reads it.
        REFILLED.with(|refilled| refilled.set(true));
        self.chained |= READING.with(Cell::get);
        let now = Instant::now();
        let lazy = self.count_lazy();
        self.end_segment(now, lazy);
        let site = self.site;
        let mut instead = self.loop_instead();
        let read_now = self.ahead.is_empty();
        let mut probe = false;
        if read_now && !self.exhausted {
            // A batch that will run as a loop before a stretch one by one is read short: it
            // is there to look at the plan, not to be timed. So is one that would run as a
            // loop anyway, but timed: the stretch after it maps the rest.
            let len = if instead > 0 {
                MIN_BATCH
            } else {
                let whole = batch_len(site);
                match self.loop_probe(whole) {
                    Some(len) => {
                        probe = true;
                        len
                    }
                    None => whole,
                }
            };
            self.chained |= read(
                &mut self.input,
                &mut self.ahead,
                len,
                &mut self.exhausted,
                &mut self.pace,
                now,
            );
            // An input found to be a stream: this one follows its plans from now on.
            if self.chained {
                instead = 0;
            }
            probe &= !self.ahead.is_empty();
        }
        if self.ahead.is_empty() {
            return false;
        }
        let items = std::mem::take(&mut self.ahead);
        let n = items.len();
        let call_index = match self.counted.take() {
            Some(call_index) => {
                site.count_items(n);
                call_index
            }
            None => site.begin_call(n),
        };
        let route = if probe {
            Route::Serial {
                timed: true,
                pool: None,
            }
        } else if instead > 0 || short_call(site, n, call_index) {
            Route::Serial {
                timed: false,
                pool: None,
            }
        } else {
            route(site, n, call_index)
        };
        let parallel = matches!(route, Route::Parallel(_));
        let (input, ahead, exhausted, pace) = (
            &mut self.input,
            &mut self.ahead,
            &mut self.exhausted,
            &mut self.pace,
        );
        // Read the next batch while helpers start on this one. A loop reads nothing ahead:
        // the items after it are mapped one by one.
        let mut reads_a_stream = false;
        let read_ahead = || {
            if parallel && !*exhausted {
                let start = Instant::now();
                reads_a_stream = read(input, ahead, batch_len(site), exhausted, pace, start);
            }
        };
        let batch = Batch {
            site,
            items,
            call_index,
            route,
        };
        let results = self.f.batch(batch, read_ahead);
        self.chained |= reads_a_stream;
        // A batch planned as a loop says the items after it would be mapped as a loop too
        // (unless every call is watched: an observer or a tracing subscriber hears of every
        // item in a batch, and items mapped one by one are in none).
        if !parallel
            && !matches!(route, Route::Profile)
            && !self.exhausted
            && !crate::observe::watching()
        {
            self.lazy_next = if instead > 0 {
                instead
            } else {
                self.stretch(LAZY_NS)
            };
        }
        // A batch in parallel whose items were read before it (the first after a loop: its
        // reading overlapped nothing) is not judged.
        self.segment = (!matches!(route, Route::Profile)).then_some(Segment {
            start: now,
            items: n,
            parallel,
            judged: !(parallel && read_now),
        });
        self.out = results.into_iter();
        true
    }
}

impl<It: Iterator, S: StreamFn<It::Item>> Drop for MapIter<It, S> {
    /// Counts the items mapped one by one and not counted yet.
    fn drop(&mut self) {
        self.count_lazy();
    }
}

/// Whether a wall time per item was measured by this stream (not a verdict it started from).
fn measured(per_item_ns: f64) -> bool {
    per_item_ns.is_finite() && per_item_ns > 0.0
}

/// A batch's result for one item: its value, or its panic resumed.
#[inline(always)]
fn unwrapped<R>(result: Caught<R>) -> R {
    match result {
        Ok(value) => value,
        Err(payload) => resume_unwind(payload),
    }
}

thread_local! {
    /// A stream is reading its input on this thread: a stream that plans a batch now is
    /// that stream's input.
    static READING: Cell<bool> = const { Cell::new(false) };
    /// A stream has planned a batch on this thread (since a reading stream cleared it).
    static REFILLED: Cell<bool> = const { Cell::new(false) };
}

/// A read of an input with an upper bound on its length looks at the clock first after this
/// many items (see [`read`]).
const LATE_FIRST_LOOK: usize = 16;

/// How fast a stream's input gave its items when last read: how often a read looks at the
/// clock.
struct ReadPace {
    /// Nanoseconds per item read, at the last look at the clock (0 before one).
    ns_per_item: f64,
    /// How long a read goes on: [`READ_NS`] (unbounded in tests that count what is read,
    /// which a slow machine, or valgrind, must not cut short).
    limit_ns: u64,
}

impl Default for ReadPace {
    fn default() -> Self {
        ReadPace {
            ns_per_item: 0.0,
            limit_ns: READ_NS,
        }
    }
}

impl ReadPace {
    /// The most items a read takes between two looks at the clock: about a sixteenth of
    /// [`READ_NS`] at the last look's pace, at least one; unbounded before a look (see
    /// [`read`]).
    fn stride(&self) -> usize {
        if self.ns_per_item > 0.0 {
            ((READ_NS as f64 / 16.0 / self.ns_per_item) as usize).max(1)
        } else {
            usize::MAX
        }
    }

    /// A look at the clock: `items` read in `took`.
    fn learn(&mut self, took: std::time::Duration, items: usize) {
        if items > 0 {
            self.ns_per_item = took.as_nanos() as f64 / items as f64;
        }
    }
}

/// Appends up to `len` items of `input` to `ahead`, noting when it ends, and stops early
/// once reading has taken [`READ_NS`] since `start` (looking at the clock after 1, 2, 4…
/// items, or 16, 64, 256… when the input bounds its length, and at least every
/// [`ReadPace::stride`] items: a few looks per batch when the input is fast, one per item
/// when it is slow); `true` when the input is (or reads) another stream that planned a batch
/// meanwhile.
fn read<It: Iterator>(
    input: &mut It,
    ahead: &mut Vec<It::Item>,
    len: usize,
    exhausted: &mut bool,
    pace: &mut ReadPace,
    start: Instant,
) -> bool {
    /// Puts back what an enclosing reader had set, also when the input panics.
    struct Restore(bool, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            READING.with(|reading| reading.set(self.0));
            REFILLED.with(|refilled| refilled.set(self.1));
        }
    }
    let _restore = Restore(
        READING.with(|reading| reading.replace(true)),
        REFILLED.with(|refilled| refilled.replace(false)),
    );
    // No more than the input says it holds: a short input's batch is short.
    let bound = input.size_hint().1;
    ahead.reserve(
        len.saturating_sub(ahead.len())
            .min(bound.unwrap_or(usize::MAX)),
    );
    let first = ahead.len();
    let stride = pace.stride();
    // An input that says how much it holds at most is most likely in memory (a collection,
    // a range, adapters over them), where looks are what a short read spends most on; a
    // live source (a channel, a socket's or a file's lines) says nothing.
    let (first_look, growth) = if bound.is_some() {
        (LATE_FIRST_LOOK, 4)
    } else {
        (1, 2)
    };
    let mut look_at = first + first_look.min(stride);
    'reading: loop {
        let until = look_at.min(len);
        while ahead.len() < until {
            match input.next() {
                Some(item) => ahead.push(item),
                None => {
                    *exhausted = true;
                    break 'reading;
                }
            }
        }
        if until == len {
            break;
        }
        let took = start.elapsed();
        pace.learn(took, ahead.len() - first);
        if took.as_nanos() >= u128::from(pace.limit_ns) {
            break;
        }
        look_at += ((look_at - first) * (growth - 1)).min(stride);
    }
    REFILLED.with(Cell::get)
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
            let mut out = Vec::with_capacity(n);
            let f = crate::run::Loop {
                f: &f,
                exact: false,
            };
            crate::run::extend_mapped(&mut out, producer, f);
            return out;
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

    /// `stream`, whose reads are never cut short by the clock: for tests that count what a
    /// read takes, which a slow machine (or valgrind) must not change.
    fn uncut<It: Iterator, S: StreamFn<It::Item>>(mut stream: MapIter<It, S>) -> MapIter<It, S> {
        stream.pace.limit_ns = u64::MAX;
        stream
    }

    /// Reads up to 1 000 items of `input` at `pace`: how many were read.
    fn read_some(mut input: impl Iterator<Item = u32>, pace: &mut ReadPace) -> usize {
        let (mut ahead, mut exhausted) = (Vec::new(), false);
        read(
            &mut input,
            &mut ahead,
            1_000,
            &mut exhausted,
            pace,
            Instant::now(),
        );
        ahead.len()
    }

    #[test]
    fn a_read_stops_once_it_has_taken_its_time_and_looks_at_the_clock_seldom() {
        // Fast items: looks at 16, 64… items only (the input bounds its length), and later
        // reads look seldom too (a read preempted for 16 ms stops early, at one of those).
        let mut pace = ReadPace::default();
        let read = read_some(0..10_000u32, &mut pace);
        assert!(read == 1_000 || read.is_power_of_two(), "read {read}");
        assert!(pace.ns_per_item > 0.0);
        assert!(pace.stride() > 1, "{} ns per item", pace.ns_per_item);
        // A live input (no bound on its length) whose items come slowly after the third:
        // the read stops at the first look after [`READ_NS`] has gone by, at 1 or 4 items
        // (sleeps only ever last longer).
        let given = Cell::new(0usize);
        let slowly = |x: &u32| {
            given.set(given.get() + 1);
            if *x >= 3 {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        };
        let mut slow = (0u32..).inspect(slowly);
        let mut pace = ReadPace::default();
        let read = read_some(&mut slow, &mut pace);
        assert!(read <= 4, "read {read} slow items");
        assert_eq!(read, given.get());
        // Known to be slow, the next read looks after every item: one more.
        assert_eq!(pace.stride(), 1);
        assert_eq!(read_some(&mut slow, &mut pace), 1);
        // An input that bounds its length is looked at first after 16 items.
        let mut pace = ReadPace::default();
        assert_eq!(
            read_some((0..100u32).inspect(slowly), &mut pace),
            LATE_FIRST_LOOK
        );
    }

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
    fn after_a_batch_run_as_a_loop_items_are_read_one_by_one_and_counted() {
        static LOOP: Site = Site::new("s_loop").with_mode(crate::Mode::Serial);
        let read = Cell::new(0usize);
        let input = (0u64..).inspect(|_| read.set(read.get() + 1));
        let mut out = uncut(map_iter(&LOOP, input, |x| x * 2));
        // The first batch (cost unknown: `FIRST_BATCH` items) is read whole, nothing ahead.
        assert_eq!(out.next(), Some(0));
        assert_eq!(read.get(), FIRST_BATCH);
        for i in 1..FIRST_BATCH as u64 {
            assert_eq!(out.next(), Some(i * 2));
        }
        // Then one read per item asked for (a stretch is `MIN_BATCH` items or more).
        for i in 0..MIN_BATCH as u64 {
            assert_eq!(out.next(), Some((FIRST_BATCH as u64 + i) * 2));
            assert_eq!(read.get(), FIRST_BATCH + 1 + i as usize);
        }
        drop(out);
        // The items mapped one by one count in the report like a batch's.
        let report = crate::report();
        let site = report.site("s_loop").expect("the site is reported");
        assert_eq!(
            (site.calls, site.items),
            (1, (FIRST_BATCH + MIN_BATCH) as u64)
        );
    }

    /// 1..=100, each item counted in `read` as it is read.
    fn hundred_counted(read: &Cell<usize>) -> impl Iterator<Item = u64> + '_ {
        (1u64..=100).inspect(|_| read.set(read.get() + 1))
    }

    #[test]
    fn a_short_input_of_known_length_is_mapped_one_by_one_as_one_call() {
        static SHORT: Site = Site::new("s_short");
        SHORT.assume_cost(crate::PerItem::from_nanos(1.0));
        // The pool is measured (its short-call limit known), as after any call that needed it;
        // a test beside this one may be measuring it.
        crate::pool::measured_here();
        let read = Cell::new(0usize);
        let stream = || uncut(map_iter(&SHORT, hundred_counted(&read), |x| x * 2));
        // The site's first call is the one in 64 that is timed: a batch, read whole.
        let mut first = stream();
        assert_eq!(first.next(), Some(2));
        assert_eq!(read.get(), 100);
        assert_eq!(first.sum::<u64>(), 10_100 - 2);
        // That batch was timed and may have left a drift pending (in a debug build its loop
        // is far dearer than 1 ns an item), and a pending drift has every call timed.
        SHORT.assume_cost(crate::PerItem::from_nanos(1.0));
        // The next is 100 items of 1 ns, a settled short loop: mapped one by one, as
        // `input.map(f)` would, with nothing read ahead.
        read.set(0);
        let mut second = stream();
        assert_eq!(second.next(), Some(2));
        assert_eq!(read.get(), 1);
        assert_eq!(second.by_ref().take(49).last(), Some(100));
        assert_eq!(read.get(), 50);
        assert_eq!(second.sum::<u64>(), 10_100 - 2_550);
        assert_eq!(read.get(), 100);
        let report = crate::report();
        let site = report.site("s_short").expect("the site is reported");
        assert_eq!((site.calls, site.items), (2, 200));
    }

    #[test]
    fn a_short_input_of_bounded_length_is_mapped_one_by_one_too() {
        static BOUNDED: Site = Site::new("s_bounded");
        BOUNDED.assume_cost(crate::PerItem::from_nanos(1.0));
        crate::pool::measured_here();
        let read = Cell::new(0usize);
        // A `filter`'s length is only bounded (here by 100); 34 of its items pass.
        let stream = || {
            let input = hundred_counted(&read).filter(|x| x % 3 == 0);
            uncut(map_iter(&BOUNDED, input, |x| x * 2))
        };
        // The first call (the one in 64 that is timed) is a batch; the cost is set after it,
        // as a timed batch may have left a drift pending.
        assert_eq!(stream().sum::<u64>(), 2 * 3 * (33 * 34 / 2));
        BOUNDED.assume_cost(crate::PerItem::from_nanos(1.0));
        read.set(0);
        let mut second = stream();
        // 100 items of 1 ns at most: a settled short loop, so nothing is read ahead.
        assert_eq!(second.next(), Some(6));
        assert_eq!(read.get(), 3);
        assert_eq!(second.next(), Some(12));
        assert_eq!(read.get(), 6);
        let rest: Vec<u64> = second.collect();
        assert_eq!(rest.len(), 31);
        assert_eq!(rest.last(), Some(&198));
        assert_eq!(read.get(), 100);
        let report = crate::report();
        let site = report.site("s_bounded").expect("the site is reported");
        assert_eq!((site.calls, site.items), (2, 66));
    }

    #[test]
    fn folds_over_stretches_map_every_item_once() {
        static FOLDS: Site = Site::new("s_folds").with_mode(crate::Mode::Serial);
        for n in [0u64, 1, 255, 256, 257, 100_000] {
            let sum: u64 = map_iter(&FOLDS, 0..n, |x| x * 3).sum();
            assert_eq!(sum, (0..n).map(|x| x * 3).sum::<u64>(), "{n}");
            // `next` and `fold` mixed: a stretch begun by `next`, finished by `fold`.
            let mut it = map_iter(&FOLDS, 0..n, |x| x + 1);
            let first: Vec<u64> = it.by_ref().take(300).collect();
            let rest: Vec<u64> = it.collect();
            let all: Vec<u64> = first.into_iter().chain(rest).collect();
            assert_eq!(all, (1..=n).collect::<Vec<_>>(), "{n}");
        }
        let expected: u64 = [0u64, 1, 255, 256, 257, 100_000]
            .iter()
            .map(|n| 2 * n)
            .sum();
        assert_eq!(
            crate::report().site("s_folds").map(|s| s.items),
            Some(expected)
        );
    }

    #[test]
    fn a_stream_starts_from_the_verdict_of_its_sites_last() {
        let _serial = crate::timing_test();
        static HINTED: Site = Site::new("s_hinted");
        // Items whose batches would be planned in parallel (655 µs each, on two threads)...
        HINTED.assume_cost(crate::units::PerItem::from_nanos(10.0));
        // ...but the site's last stream got its results faster one by one.
        HINTED.set_stream_loop_faster(Some(true));
        let read = Cell::new(0usize);
        let input = (0u64..).inspect(|_| read.set(read.get() + 1));
        let mut out = uncut(map_iter(&HINTED, input, |x| x + 1));
        let first = batch_len(&HINTED);
        for i in 0..=first as u64 {
            assert_eq!(out.next(), Some(i + 1));
        }
        // The first batch ran as a loop, reading nothing ahead (a parallel one would have
        // read the next batch), and the item after it was read alone.
        assert_eq!(read.get(), first + 1);
    }

    #[test]
    fn a_stream_after_batches_measured_elsewhere_tries_the_loop_first() {
        let _serial = crate::timing_test();
        static TRIED: Site = Site::new("s_tried");
        TRIED.assume_cost(crate::units::PerItem::from_nanos(10.0));
        // No verdict, but the site's earlier streams measured their batches in parallel
        // (too short to try the loop after two of them).
        TRIED.set_stream_batched_ns(12.0);
        let read = Cell::new(0usize);
        let input = (0u64..).inspect(|_| read.set(read.get() + 1));
        let mut out = uncut(map_iter(&TRIED, input, |x| x + 1));
        // A batch's worth is mapped as a loop, to measure it: a short batch run as a loop
        // (a parallel one would have read the next batch too), then items one by one.
        assert_eq!(out.next(), Some(1));
        assert_eq!(read.get(), MIN_BATCH);
        for i in 1..MIN_BATCH as u64 + 100 {
            assert_eq!(out.next(), Some(i + 1));
            assert_eq!(read.get(), (i as usize + 1).max(MIN_BATCH));
        }
    }

    #[test]
    fn a_verdict_left_by_cheap_items_does_not_hold_dearer_ones() {
        let _serial = crate::timing_test();
        static DEARER: Site = Site::new("s_dearer");
        // The site's last stream found the loop faster, but its items now cost 100 ns:
        // more than a stream compares at, so its batches are read and planned whole.
        DEARER.set_stream_loop_faster(Some(true));
        DEARER.assume_cost(crate::units::PerItem::from_nanos(100.0));
        // (Planned before the batch runs: its timing may move the cost.)
        let whole = batch_len(&DEARER);
        let read = Cell::new(0usize);
        let input = (0u64..).inspect(|_| read.set(read.get() + 1));
        // Whether the model plans such a batch as a loop here (one CPU, or a pool whose
        // cost of going parallel measured high, as under valgrind).
        let costs = DEARER.planning_costs().expect("a cost");
        let loops = crate::dispatch::plans_loop_here(&DEARER, whole, costs);
        let mut out = uncut(map_iter(&DEARER, input, |x| x + 1));
        assert_eq!(out.next(), Some(1));
        if !loops {
            assert!(
                read.get() >= whole,
                "{} items read, not {whole}",
                read.get()
            );
        } else {
            // Planned as a loop, the batch is read short: about 4 µs of it, at least 64
            // items, and timed. A verdict that held would read 64 too: what this checks
            // needs a batch planned in parallel.
            let probe = (LOOP_PROBE_NS / 100.0) as usize;
            assert_eq!(read.get(), probe.max(MIN_BATCH), "(a loop planned)");
        }
    }

    #[test]
    fn a_batch_that_would_run_as_a_loop_is_read_short_and_timed() {
        let _serial = crate::timing_test();
        static PROBED: Site = Site::new("s_probed").with_mode(crate::Mode::Serial);
        PROBED.assume_cost(crate::units::PerItem::from_nanos(1.0));
        let read = Cell::new(0usize);
        let input = (0u64..).inspect(|_| read.set(read.get() + 1));
        let mut out = uncut(map_iter(&PROBED, input, |x| x + 1));
        assert_eq!(out.next(), Some(1));
        // About 4 µs of work at 1 ns an item (a whole batch would be 65 536), and then the
        // items one by one, as they are taken.
        let probe = (LOOP_PROBE_NS / 1.0) as usize;
        assert_eq!(read.get(), probe);
        for i in 1..probe as u64 + 100 {
            assert_eq!(out.next(), Some(i + 1));
            assert_eq!(read.get(), (i as usize + 1).max(probe));
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
