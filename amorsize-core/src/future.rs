//! The async entry points: [`map_async`] and its relatives return a [`MapFuture`] that runs
//! the map with the plan [`map`](crate::map) would give it (it is a call of the same site)
//! and never blocks the executor's thread for long. When first polled, the future chooses:
//!
//! - **On the pool**, for a call the plan runs in parallel (and a call of unknown cost, which
//!   profiles there): a job on rayon's pool, which wakes the awaiting task when it is done.
//!   The executor's thread neither runs nor waits for the map.
//! - **In slices on the polling thread**, for a call the plan runs as a loop: the pool has no
//!   parallelism to offer it, only a round trip (a job spawned, a worker woken, the task woken
//!   back), which costs tens of µs of CPU on the development VM, and on a loaded machine a
//!   pool's threads only take turns with the executor's for the same cores. Each poll runs
//!   items for at most [`SLICE`] of their learned cost, then wakes the task and yields, so
//!   other tasks run between slices. Calls predicted under [`INLINE_BELOW`] run whole on the
//!   first poll. Items dearer than the slice, or items that turn out far dearer than learned
//!   while a call runs, go to the pool. Items taken by value in a `Vec` or a `Box<[T]>` are
//!   held as they are; others are collected into a `Vec` to run in slices (a rayon iterator
//!   cannot be resumed across polls), up to 16 MiB of them; a larger input (a range of
//!   billions, say) runs on the pool, which iterates it lazily, and so do items that a
//!   [`ParIter`]'s adapters compute (they would all run in the first
//!   poll; see [`IntoItems::HELD`]).
//!
//! Whichever way it runs, a call is one call to whatever watches it (an
//! [`Observer`](crate::Observer), a `tracing` subscriber, a progress bar): its span is
//! entered for each slice, its progress is reported in steps, and a rest handed to the pool
//! goes on under the same watch. A call whose future is dropped before it completes ends as
//! [`Ending::Cancelled`](crate::observe::Ending::Cancelled).
//!
//! A loop is what the plan gives a call whose work is below the pool's break-even point, a
//! call capped to one thread, a call in a one-thread pool, or a call made while other
//! planned calls already keep the pool's threads busy (a loaded service: see `dispatch`), or
//! kept them busy in the last 50 ms ([`Cause::Overlapping`](crate::Cause::Overlapping): a
//! service whose requests overlap, one of them between two calls just then), or a call that
//! the pool's cost after idling would leave no faster than its loop when the pool has idled
//! (150 µs without a parallel call): sent there, an async call waits for a thread of the
//! pool to wake, where a call of [`map`](crate::map) works on its own thread from the
//! start. A mode of `serial` (the function's, or the process's) makes every call a loop, run
//! the same way once its cost is known; `parallel` sends every call to the pool.
//! Async calls count as running in the pool from their first poll: one sent to the pool
//! while it waits there, then as its plan says; calls run in slices as the thread that runs
//! them, once however many take turns on it (and not while none of them has run a slice for
//! 100 ms: a future kept and no longer polled, or forgotten, keeps no core busy). So while
//! a thread of the pool stays free for a few slices, a thread with several calls in slices
//! hands the rest of one to it: futures joined on a one-thread executor still use every
//! core (a multi-threaded executor moves tasks to its idle threads itself, sooner).
//!
//! Polled on a thread of a rayon pool (a `block_on` inside a pool's task, say), a call never
//! waits on the pool, which that thread may be all of: what would go there runs where it is
//! polled, whole, as a call of [`map`](crate::map) made there would.
//!
//! No executor is needed or assumed: the future is woken through std's [`Waker`]. Dropping it
//! before it completes stops the map promptly (no item starts after the drop is seen; items
//! running finish) and drops the results made so far, on the pool for a call running there;
//! the dropping thread never blocks. A panic in the function resumes in the awaiting task
//! when it polls.

use crate::config::{with_max_threads, Mode};
use crate::dispatch::Handover;
use crate::items::IntoItems;
use crate::learn::learn_from_serial;
use crate::model::Plan;
use crate::observe::Watch;
use crate::pool::{Pool, Slicing};
use crate::site::Site;
use crate::try_map::TryItem;
use crate::units::{elapsed_ns, PerItem};
use crate::ParIter;
use rayon::iter::plumbing::{Producer, ProducerCallback};
use rayon::iter::{IndexedParallelIterator, IntoParallelIterator};
use std::any::Any;
use std::borrow::Borrow;
use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Calls predicted (at the site's learned cost) to take less than this run whole when first
/// polled, whatever their plan: a round trip to the pool (a job spawned, a thread woken, the
/// task woken and polled again) costs more than that on the development machine.
pub const INLINE_BELOW: Duration = Duration::from_micros(20);

/// The most work one poll of a call run on the polling thread does: its first slice is
/// sized from the site's learned cost, each next one from what the last one's items took.
/// Items dearer than this run on the pool; so do calls of unknown cost.
pub const SLICE: Duration = Duration::from_micros(50);

/// The future of an async map: resolves to the map's result.
///
/// It is `Send`, so it can be awaited in a task of any multi-threaded executor. Dropping it
/// cancels the map (see the [module docs](self)). A cap set by
/// [`with_max_threads`] around the code that makes the future
/// applies to its call, wherever and whenever it is polled.
#[must_use = "a MapFuture does nothing until polled, and cancels its map when dropped"]
pub struct MapFuture<T> {
    stage: Stage<T>,
    /// The thread cap around the code that made the future (0 for none), which its call
    /// plans and runs under.
    cap: usize,
}

/// Where an async call is.
enum Stage<T> {
    /// Not polled yet.
    New(Box<dyn Start<T>>),
    /// Running on the polling thread, a slice per poll.
    Sliced(Box<dyn Slices<T>>),
    /// Running on the pool, which leaves the result in the slot.
    Pool(Arc<Slot<T>>),
    /// Returned, or panicked.
    Over,
}

/// The most item bytes a by-value call collects to run in slices; a larger one (a range of
/// billions of integers, say) runs on the pool, which iterates it lazily.
const MAX_COLLECTED_BYTES: usize = 16 << 20;

/// A job for the pool: the map, stopped when the flag is set (then `None`).
type Job<T> = Box<dyn FnOnce(&AtomicBool) -> Option<T> + Send>;

/// An async call before its first poll: its site, items and function.
trait Start<T>: Send {
    fn site(&self) -> &'static Site;
    fn len(&self) -> usize;
    /// Whether the call can run in slices: its items can be held across polls.
    fn can_slice(&self) -> bool;
    /// The call as a job for the pool.
    fn job(self: Box<Self>) -> Job<T>;
    /// The call run here, a slice per poll.
    fn slices(self: Box<Self>, pace: Pace) -> Box<dyn Slices<T>>;
    /// The whole call run here, now, under the thread cap `cap`. An infallible call
    /// (`map_async`'s) goes through the map every caller of the site has; a fallible one
    /// runs its job (which pushes its values one by one, and checks for cancellation
    /// before each).
    fn whole_here(self: Box<Self>, cap: usize) -> T;
}

/// An async call running on the polling thread.
trait Slices<T>: Send {
    /// Runs the next slice.
    fn step(self: Box<Self>) -> Step<T>;
}

/// What a slice left.
enum Step<T> {
    Done(T),
    More(Box<dyn Slices<T>>),
    /// The items left, for the pool: they cost more than a poll may take.
    ToPool(Job<T>),
}

/// Where the pool leaves the result for the awaiting task.
struct Slot<T> {
    state: Mutex<State<T>>,
    /// Set when the future is dropped: the map stops before its next item.
    cancel: AtomicBool,
}

enum State<T> {
    /// Running; the task to wake.
    Pending(Option<Waker>),
    /// Done: the value (`None` if it was cancelled), or the panic.
    Done(Result<Option<T>, Box<dyn Any + Send>>),
    /// Returned to the task.
    Taken,
}

impl<T: Send + 'static> MapFuture<T> {
    fn new(start: Box<dyn Start<T>>) -> Self {
        MapFuture {
            stage: Stage::New(start),
            cap: crate::config::call_max_threads().unwrap_or(0),
        }
    }
}

/// How a call starts, chosen when it is first polled.
enum How {
    /// Whole, now.
    Here,
    /// A slice per poll, paced from the items' learned cost.
    Slices(PerItem),
    Pool,
}

/// How a call of `n` items of `site` starts (see the [module docs](self)). Polled on a
/// thread of a rayon pool, a call never goes to the pool but runs whole instead (see
/// [`on_a_pool_thread`]).
fn how(site: &'static Site, n: usize, can_slice: bool) -> How {
    match how_anywhere(site, n, can_slice) {
        How::Pool if on_a_pool_thread() => How::Here,
        how => how,
    }
}

/// Whether the calling thread is one of a rayon pool's. A future polled there that sent its
/// map to the pool could wait for it forever: `block_on` in a pool's task parks the thread,
/// and a job spawned from a worker goes to that worker's pool, where the parked threads may
/// be all there is (one, on one CPU). So such a call runs where it is polled, like a call
/// of [`map`](crate::map) made there (which can still go parallel, as the thread helps).
fn on_a_pool_thread() -> bool {
    rayon::current_thread_index().is_some()
}

/// How a call of `n` items of `site` starts, on a thread outside the pool.
fn how_anywhere(site: &'static Site, n: usize, can_slice: bool) -> How {
    if n == 0 {
        return How::Here;
    }
    let mode = crate::dispatch::mode_for(site);
    if mode == Mode::Parallel {
        return How::Pool;
    }
    let Some(costs) = site.planning_costs() else {
        return How::Pool;
    };
    if costs.serial.work(n) < INLINE_BELOW {
        return How::Here;
    }
    if !can_slice || costs.serial.as_duration() > SLICE {
        return How::Pool;
    }
    // A mode of `serial` makes every call a loop; in `auto` the plan says.
    if mode == Mode::Auto && !crate::dispatch::plans_loop(site, n, costs) {
        return How::Pool;
    }
    How::Slices(costs.serial)
}

impl<T: Send + 'static> Future for MapFuture<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        let cap = this.cap;
        let sliced = match std::mem::replace(&mut this.stage, Stage::Over) {
            Stage::New(start) => {
                let how =
                    with_max_threads(cap, || how(start.site(), start.len(), start.can_slice()));
                match how {
                    How::Here => return Poll::Ready(start.whole_here(cap)),
                    How::Slices(per_item) => {
                        let pace = Pace::new(start.site(), start.len(), per_item);
                        start.slices(pace)
                    }
                    How::Pool => {
                        let slot = spawn(start.job(), cap, crate::pool::here(), cx.waker());
                        this.stage = Stage::Pool(slot);
                        return Poll::Pending;
                    }
                }
            }
            Stage::Sliced(slices) => slices,
            Stage::Pool(slot) => {
                let polled = poll_slot(&slot, cx);
                if polled.is_pending() {
                    this.stage = Stage::Pool(slot);
                }
                return polled;
            }
            Stage::Over => panic!("amorsize: a MapFuture was polled after it completed"),
        };
        // A panic in a slice leaves the stage `Over`, and the call's state dropped.
        match sliced.step() {
            Step::Done(value) => Poll::Ready(value),
            // The rest runs here rather than wait on the pool this thread is part of.
            Step::ToPool(job) if on_a_pool_thread() => Poll::Ready(run_here(job, cap)),
            Step::More(slices) => {
                this.stage = Stage::Sliced(slices);
                // Other tasks run before the next slice.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Step::ToPool(job) => {
                this.stage = Stage::Pool(spawn(job, cap, crate::pool::here(), cx.waker()));
                Poll::Pending
            }
        }
    }
}

/// Runs `job` on the polling thread, whole, under the thread cap `cap`.
fn run_here<T>(job: Job<T>, cap: usize) -> T {
    let never = AtomicBool::new(false);
    match with_max_threads(cap, || job(&never)) {
        Some(value) => value,
        None => unreachable!("a call run here is never cancelled"),
    }
}

/// Sends `job` to `pool`, to run under the thread cap `cap`. It counts as a planned call
/// running there until it starts, where it counts as its route says, and as an async call
/// until it ends.
fn spawn<T: Send + 'static>(
    job: Job<T>,
    cap: usize,
    pool: &'static Pool,
    waker: &Waker,
) -> Arc<Slot<T>> {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Pending(Some(waker.clone()))),
        cancel: AtomicBool::new(false),
    });
    let shared = Arc::clone(&slot);
    let queued = pool.enter();
    let async_job = pool.async_job();
    rayon::spawn(move || {
        drop(queued);
        // A future dropped before its job started: nothing to run, nothing to report.
        let result = if shared.cancel.load(Ordering::Relaxed) {
            Ok(None)
        } else {
            catch_unwind(AssertUnwindSafe(|| {
                with_max_threads(cap, || job(&shared.cancel))
            }))
        };
        drop(async_job);
        let waker = {
            let mut state = crate::lock(&shared.state);
            match std::mem::replace(&mut *state, State::Done(result)) {
                State::Pending(waker) => waker,
                _ => None,
            }
        };
        // Woken outside the lock: waking may run the executor's code.
        if let Some(waker) = waker {
            waker.wake();
        }
    });
    slot
}

fn poll_slot<T>(slot: &Slot<T>, cx: &Context<'_>) -> Poll<T> {
    let mut state = crate::lock(&slot.state);
    match std::mem::replace(&mut *state, State::Taken) {
        State::Pending(waker) => {
            let waker = match waker {
                Some(w) if w.will_wake(cx.waker()) => w,
                _ => cx.waker().clone(),
            };
            *state = State::Pending(Some(waker));
            Poll::Pending
        }
        State::Done(Ok(Some(value))) => Poll::Ready(value),
        State::Done(Ok(None)) => unreachable!("only a dropped future's map is cancelled"),
        State::Done(Err(payload)) => {
            drop(state);
            resume_unwind(payload)
        }
        State::Taken => unreachable!("the stage is `Over` once the value is taken"),
    }
}

impl<T> Drop for MapFuture<T> {
    fn drop(&mut self) {
        if let Stage::Pool(slot) = &self.stage {
            slot.cancel.store(true, Ordering::Relaxed);
        }
    }
}

/// The pace of a call run on the polling thread: how many items a poll may run, what they
/// took, and its thread's count as running in the pool.
struct Pace {
    site: &'static Site,
    /// The call's index, counted when it started.
    call: u64,
    n: usize,
    ran: usize,
    per_poll: usize,
    ns: u64,
    /// The last slice ran over twice [`SLICE`].
    over: bool,
    /// Slices in a row after which this call's thread had other calls to run in slices
    /// while the pool had a free thread.
    crowded: u32,
    running: Slicing,
    /// The call's watch, if anything watches it (it goes with the rest to the pool).
    watch: Option<Watch>,
    /// Items run and not yet reported as progress; reported every `step` items.
    unreported: usize,
    step: usize,
    /// The call's function never fails: its slices run as plain loops.
    infallible: bool,
}

/// After this many crowded slices in a row, a call's rest goes to the pool's free thread.
/// A multi-threaded executor moves tasks to its idle threads sooner than that (tokio's
/// work stealing, after at most 3 polls of a task in its LIFO slot); a one-thread executor
/// never does.
const CROWDED_SLICES: u32 = 8;

/// Slices of at least this many items read the clock halfway through.
const CHECKED_FROM: usize = 8;

/// [`SLICE`] in nanoseconds.
const SLICE_NS: u64 = SLICE.as_nanos() as u64;

impl Pace {
    fn new(site: &'static Site, n: usize, per_item: PerItem) -> Pace {
        let watch = crate::observe::watch(site, n);
        if let Some(watch) = &watch {
            watch.ran(Plan::Serial);
        }
        Pace {
            step: watch.as_ref().map_or(usize::MAX, |w| w.loop_step(n)),
            watch,
            unreported: 0,
            site,
            call: site.begin_call(n),
            n,
            ran: 0,
            per_poll: fit(per_item.as_picos()),
            ns: 0,
            over: false,
            crowded: 0,
            running: Slicing::start(crate::pool::here()),
            infallible: false,
        }
    }

    /// The most items the next slice may run.
    fn next(&self) -> usize {
        self.per_poll.min(self.n - self.ran)
    }

    /// Runs `g` over `items` (at most [`next`](Self::next) of them) into `out`, until one
    /// fails or the slice has run for [`SLICE`], then decides what comes next. A slice of
    /// [`CHECKED_FROM`] items or more reads the clock once more halfway, so that items that
    /// turn out far dearer than learned stop it early; a shorter one can overrun by a few
    /// items only, and a clock read costs 25-65 ns on the development VM.
    fn slice<X, V, E>(
        &mut self,
        items: impl Iterator<Item = X>,
        g: impl Fn(X) -> Result<V, E>,
        out: &mut Vec<V>,
    ) -> (Next, Option<E>) {
        self.running.follow();
        let halfway = if self.per_poll >= CHECKED_FROM {
            self.per_poll / 2
        } else {
            usize::MAX
        };
        let before = out.len();
        let mut stop;
        // Out of `self` while the slice runs in its span: a panic drops it, as `Panicked`.
        let watch = self.watch.take();
        let ns = {
            let _in_span = watch.as_ref().map(Watch::enter);
            let start = Instant::now();
            let mut items = items;
            // The values go to a `Vec` of this frame's while the slice runs, as the items
            // come from an iterator of this frame's (see `Drained`): pushed into the call's,
            // which lives on the heap beside its items, each push stored and reloaded its
            // length. Measured: 2 000 calls of 100 000 owned `u64`s through a 0.5 ns
            // function, pinned to one CPU, 428-431 ms in all before, 411-413 ms with the
            // values here, 366-374 ms with the items too.
            let mut values = std::mem::take(out);
            let infallible = self.infallible;
            stop = run_part(&mut items, halfway, &g, &mut values, infallible);
            if stop.is_none() && halfway != usize::MAX && elapsed_ns(start) < SLICE_NS {
                stop = run_part(&mut items, usize::MAX, &g, &mut values, infallible);
            }
            *out = values;
            elapsed_ns(start)
        };
        self.watch = watch;
        let ran = out.len() - before + usize::from(stop.is_some());
        (self.after(ran, ns, stop.is_some()), stop)
    }

    /// After a slice of `ran` items that took `ns` and failed or not: what comes next. A
    /// finished call is learned from like a timed loop. The next slice is sized from this
    /// one's cost per item. Two slices in a row that ran over twice [`SLICE`] (even one item
    /// costs more than a poll may take) send the rest to the pool; one alone may be a
    /// preempted thread. So does a thread of the pool staying free for [`CROWDED_SLICES`]
    /// slices while this call's thread has other calls to run in slices: the rest runs
    /// there, on a core of its own.
    fn after(&mut self, ran: usize, ns: u64, failed: bool) -> Next {
        self.ran += ran;
        self.ns = self.ns.saturating_add(ns);
        self.unreported += ran;
        if failed || self.ran == self.n {
            learn_from_serial(self.site, self.ran, self.ns, !failed);
            if let Some(watch) = self.watch.take() {
                if !failed {
                    report(Some(&watch), &mut self.unreported);
                }
                watch.finish(failed, false);
            }
            return Next::Done;
        }
        if self.unreported >= self.step {
            report(self.watch.as_ref(), &mut self.unreported);
        }
        let over = ns > 2 * SLICE_NS;
        let crowded = self.running.has_company() && self.running.pool().has_room();
        self.crowded = if crowded { self.crowded + 1 } else { 0 };
        if over && self.over || self.crowded >= CROWDED_SLICES {
            return Next::ToPool;
        }
        self.over = over;
        self.per_poll = fit(ns.saturating_mul(1000) / ran.max(1) as u64);
        Next::More
    }

    /// The call's items not run yet, as a part for the pool, with the call's watch.
    fn rest(&mut self) -> Part {
        let watch = self.watch.take();
        report(watch.as_ref(), &mut self.unreported);
        Part {
            site: self.site,
            call: Some(self.call),
            from: self.ran,
            watch,
        }
    }
}

/// Runs `g` over at most `most` of `items` into `out`, until one fails: the failure. A loop
/// of its own, with nothing else to look at per item (the clock is read between two). For a
/// function that never fails (`infallible`) over items of exact length, a loop of std's
/// `extend` over an exact-length `Range`, which writes the values without a push each (as
/// the sync entry points' loops do, see `run::extend_mapped`). Measured (scratch probe,
/// 2 000 calls of 100 000 owned `u64`s through a 0.5 ns function in slices, pinned to one
/// CPU): 365-384 ms in all pushing, 170-171 ms this way.
#[inline(always)]
fn run_part<X, V, E>(
    items: &mut impl Iterator<Item = X>,
    most: usize,
    g: &impl Fn(X) -> Result<V, E>,
    out: &mut Vec<V>,
    infallible: bool,
) -> Option<E> {
    if infallible {
        if let (len, Some(upper)) = items.size_hint() {
            if len == upper {
                out.extend((0..len.min(most)).map(|_| match items.next() {
                    Some(item) => never_failed(g(item)),
                    None => unreachable!("amorsize: a slice's items were fewer than their length"),
                }));
                return None;
            }
        }
    }
    for item in items.take(most) {
        match g(item) {
            Ok(value) => out.push(value),
            Err(e) => return Some(e),
        }
    }
    None
}

/// Reports the `unreported` items run to `watch`, if the call is watched.
fn report(watch: Option<&Watch>, unreported: &mut usize) {
    if let Some(watch) = watch {
        if *unreported > 0 {
            watch.advance(std::mem::take(unreported));
        }
    }
}

impl Drop for Pace {
    /// A call dropped between slices, still watched, was cancelled: its future was dropped
    /// (also when that happens while the awaiting task unwinds from a panic of its own; a
    /// panic in a slice drops the watch inside the slice, as `Panicked`).
    fn drop(&mut self) {
        if let Some(watch) = self.watch.take() {
            watch.finish(true, true);
        }
    }
}

/// Items of `per_item_ps` each that fit in a slice: at least one.
fn fit(per_item_ps: u64) -> usize {
    usize::try_from(SLICE_NS * 1000 / per_item_ps.max(1))
        .unwrap_or(usize::MAX)
        .max(1)
}

enum Next {
    Done,
    More,
    ToPool,
}

/// Why a map on the pool stopped: the function failed, or the future was dropped.
enum Halt<S> {
    Failed(S),
    Cancelled,
}

/// A pool run's result as the call's: `None` when it was cancelled. `done` holds the values
/// of the items that ran before on the polling thread.
fn finished<V, E, T>(
    result: Result<Vec<V>, Halt<E>>,
    mut done: Vec<V>,
    finish: fn(Result<Vec<V>, E>) -> T,
) -> Option<T> {
    match result {
        Ok(mut values) => {
            if done.is_empty() {
                return Some(finish(Ok(values)));
            }
            done.append(&mut values);
            Some(finish(Ok(done)))
        }
        Err(Halt::Failed(stop)) => Some(finish(Err(stop))),
        Err(Halt::Cancelled) => None,
    }
}

/// `g` for the pool: stops before any item once `cancel` is set.
fn cancellable<'a, X, V, E>(
    g: &'a (impl Fn(X) -> Result<V, E> + Sync),
    cancel: &'a AtomicBool,
) -> impl Fn(X) -> Result<V, Halt<E>> + Sync + Send + 'a {
    move |x| {
        if cancel.load(Ordering::Relaxed) {
            return Err(Halt::Cancelled);
        }
        g(x).map_err(Halt::Failed)
    }
}

/// Where a call run in slices takes its items from.
trait Source<G, V, E, T>: Send + Sized + 'static {
    /// How many items there are in all.
    fn len(&self) -> usize;
    /// Runs the next slice of `pace`'s items through `g` into `out`.
    fn slice(&mut self, pace: &mut Pace, g: &G, out: &mut Vec<V>) -> (Next, Option<E>);
    /// The items of `part` as a job for the pool, after the values `done` made before.
    fn rest(self, part: Part, g: G, done: Vec<V>, finish: fn(Result<Vec<V>, E>) -> T) -> Job<T>;
}

/// A call run in slices: its items, the values made so far, `g` (a fallible form of the
/// user's function) and `finish`, which makes the call's result.
struct Sliced<S, G, V, E, T> {
    source: S,
    out: Vec<V>,
    g: G,
    finish: fn(Result<Vec<V>, E>) -> T,
    pace: Pace,
}

impl<S, G, V, E, T> Slices<T> for Sliced<S, G, V, E, T>
where
    S: Source<G, V, E, T>,
    G: Send + 'static,
    V: Send + 'static,
    E: Send + 'static,
    T: 'static,
{
    fn step(mut self: Box<Self>) -> Step<T> {
        let this = &mut *self;
        match this.source.slice(&mut this.pace, &this.g, &mut this.out) {
            (_, Some(stop)) => Step::Done((self.finish)(Err(stop))),
            (Next::Done, None) => Step::Done((self.finish)(Ok(self.out))),
            (Next::More, None) => Step::More(self),
            (Next::ToPool, None) => {
                let Sliced {
                    source,
                    out,
                    g,
                    finish,
                    mut pace,
                } = *self;
                Step::ToPool(source.rest(pace.rest(), g, out, finish))
            }
        }
    }
}

/// An async call: its site, its items, `g` (a fallible form of the user's function) and
/// `finish`, which makes the call's result.
struct AsyncCall<In, G, V, E, T> {
    site: &'static Site,
    input: In,
    g: G,
    finish: fn(Result<Vec<V>, E>) -> T,
    /// `g` never fails.
    infallible: bool,
}

/// An async call's items before its first poll: by value ([`Owned`]) or lent ([`Lending`]).
trait Input<G, V, E, T>: Send + 'static {
    /// What a call run in slices takes its items from.
    type Source: Source<G, V, E, T>;
    fn len(&self) -> usize;
    /// Whether the call can run in slices: its items can be held across polls.
    fn can_slice(&self) -> bool;
    /// The whole call as a job for the pool.
    fn job(self, site: &'static Site, g: G, finish: fn(Result<Vec<V>, E>) -> T) -> Job<T>;
    /// The items, to run in slices.
    fn into_source(self) -> Self::Source;
    /// The whole call of an infallible `g`, run here (see [`Start::whole_here`]).
    fn map_here(self, site: &'static Site, g: G, finish: fn(Result<Vec<V>, E>) -> T) -> T;
}

impl<In, G, V, E, T> Start<T> for AsyncCall<In, G, V, E, T>
where
    In: Input<G, V, E, T>,
    G: Send + 'static,
    V: Send + 'static,
    E: Send + 'static,
    T: 'static,
{
    fn site(&self) -> &'static Site {
        self.site
    }

    fn len(&self) -> usize {
        self.input.len()
    }

    fn can_slice(&self) -> bool {
        self.input.can_slice()
    }

    fn job(self: Box<Self>) -> Job<T> {
        let AsyncCall {
            site,
            input,
            g,
            finish,
            ..
        } = *self;
        input.job(site, g, finish)
    }

    fn slices(self: Box<Self>, mut pace: Pace) -> Box<dyn Slices<T>> {
        let AsyncCall {
            input,
            g,
            finish,
            infallible,
            ..
        } = *self;
        let source = input.into_source();
        // What the items are, should an iterator's `len` have said otherwise.
        pace.n = source.len();
        pace.infallible = infallible;
        Box::new(Sliced {
            source,
            out: Vec::with_capacity(pace.n),
            g,
            finish,
            pace,
        })
    }

    fn whole_here(self: Box<Self>, cap: usize) -> T {
        if !self.infallible {
            return run_here(self.job(), cap);
        }
        let AsyncCall {
            site,
            input,
            g,
            finish,
            ..
        } = *self;
        with_max_threads(cap, || input.map_here(site, g, finish))
    }
}

/// `result`'s value: for the function of an infallible call, which returns `Ok` only.
#[inline(always)]
fn never_failed<V, E>(result: Result<V, E>) -> V {
    match result {
        Ok(value) => value,
        Err(_) => unreachable!("amorsize: an infallible map failed"),
    }
}

/// Items taken by value: the `Vec` they were (held as it is, not copied), or a rayon
/// iterator and whether its items are held already (see [`IntoItems::HELD`]).
enum Owned<It: IndexedParallelIterator> {
    Vec(Vec<It::Item>),
    Iter { iter: It, held: bool },
}

impl<It: IndexedParallelIterator> Owned<It> {
    /// `items`, held as the `Vec` they are if they are one.
    fn new<I: IntoItems<It::Item, Iter = It>>(items: I) -> Self
    where
        It::Item: Send,
    {
        match items.into_held_vec() {
            Ok(vec) => Owned::Vec(vec),
            Err(items) => Owned::Iter {
                iter: items.into_items(),
                held: I::HELD,
            },
        }
    }
}

impl<It, G, V, E, T> Input<G, V, E, T> for Owned<It>
where
    It: IndexedParallelIterator + 'static,
    G: Fn(It::Item) -> Result<V, E> + Send + Sync + 'static,
    V: Send + 'static,
    E: Send + 'static,
    T: 'static,
{
    type Source = Drained<It::Item>;

    fn len(&self) -> usize {
        match self {
            Owned::Vec(vec) => vec.len(),
            Owned::Iter { iter, .. } => iter.len(),
        }
    }

    fn can_slice(&self) -> bool {
        match self {
            // Held as they are.
            Owned::Vec(_) => true,
            // Run in slices, the items are first collected into a `Vec` (a rayon iterator
            // cannot be resumed across polls): only items held already (an adapter would
            // run for every item in that one poll), and not a huge range's worth.
            Owned::Iter { iter, held } => {
                let item = std::mem::size_of::<It::Item>().max(1);
                *held && iter.len().saturating_mul(item) <= MAX_COLLECTED_BYTES
            }
        }
    }

    fn job(self, site: &'static Site, g: G, finish: fn(Result<Vec<V>, E>) -> T) -> Job<T> {
        match self {
            Owned::Vec(vec) => pool_job(Part::whole(site), vec, g, Vec::new(), finish),
            Owned::Iter { iter, .. } => {
                pool_job(Part::whole(site), ParIter(iter), g, Vec::new(), finish)
            }
        }
    }

    fn into_source(self) -> Drained<It::Item> {
        match self {
            Owned::Vec(vec) => Drained(vec.into_iter()),
            // Taken out of the producer once: a rayon iterator cannot be resumed across
            // polls.
            Owned::Iter { iter, .. } => Drained(iter.with_producer(Collect).into_iter()),
        }
    }

    /// A rayon iterator of the items (not a `Vec` held: a loop would then run in place, and
    /// slices do not; the site's loop cost would flip between the two kinds).
    fn map_here(self, site: &'static Site, g: G, finish: fn(Result<Vec<V>, E>) -> T) -> T {
        let f = |x| never_failed(g(x));
        let values = match self {
            Owned::Vec(vec) => crate::dispatch::map(site, ParIter(vec.into_par_iter()), f),
            Owned::Iter { iter, .. } => crate::dispatch::map(site, ParIter(iter), f),
        };
        finish(Ok(values))
    }
}

/// Which items of a call a job for the pool maps: a whole call of `site`, counted when it
/// starts, or the rest of call `call`, counted already, from item `from` on, under the
/// call's `watch` if anything watched its first part.
struct Part {
    site: &'static Site,
    call: Option<u64>,
    from: usize,
    watch: Option<Watch>,
}

impl Part {
    /// A whole call of `site`.
    fn whole(site: &'static Site) -> Part {
        Part {
            site,
            call: None,
            from: 0,
            watch: None,
        }
    }

    /// Maps `g` over `items`, the items of this part, on the pool, stopping before any item
    /// once `cancel` is set (the future was dropped): the call's result after the values
    /// `done` made before, or `None` if it was cancelled.
    fn run<X, I, G, V, E, T>(
        self,
        items: I,
        g: &G,
        cancel: &AtomicBool,
        done: Vec<V>,
        finish: fn(Result<Vec<V>, E>) -> T,
    ) -> Option<T>
    where
        X: Send,
        I: IntoItems<X>,
        V: Send,
        E: Send,
        G: Fn(X) -> Result<V, E> + Sync,
    {
        let handover = Handover {
            cancel,
            watch: self.watch,
        };
        let g = cancellable(g, cancel);
        let result = crate::try_map::try_map_part(self.site, items, self.call, Some(handover), g);
        finished(result, done, finish)
    }
}

/// The job that maps `items`, those of `part`, on the pool, after the values `done` made
/// before.
fn pool_job<X, I, G, V, E, T>(
    part: Part,
    items: I,
    g: G,
    done: Vec<V>,
    finish: fn(Result<Vec<V>, E>) -> T,
) -> Job<T>
where
    X: Send,
    I: IntoItems<X> + Send + 'static,
    G: Fn(X) -> Result<V, E> + Send + Sync + 'static,
    V: Send + 'static,
    E: Send + 'static,
    T: 'static,
{
    Box::new(move |cancel| part.run(items, &g, cancel, done, finish))
}

/// Collects a producer's items on the calling thread, in order.
struct Collect;

impl<X> ProducerCallback<X> for Collect {
    type Output = Vec<X>;
    fn callback<P: Producer<Item = X>>(self, producer: P) -> Vec<X> {
        let mut items = Vec::new();
        let identity = crate::run::Loop {
            f: &|item| item,
            exact: false,
        };
        crate::run::extend_mapped(&mut items, producer, identity);
        items
    }
}

/// The items of a call run in slices taken by value: collected once, then drained.
struct Drained<X>(std::vec::IntoIter<X>);

impl<X, G, V, E, T> Source<G, V, E, T> for Drained<X>
where
    X: Send + 'static,
    G: Fn(X) -> Result<V, E> + Send + Sync + 'static,
    V: Send + 'static,
    E: Send + 'static,
    T: 'static,
{
    fn len(&self) -> usize {
        self.0.len()
    }

    fn slice(&mut self, pace: &mut Pace, g: &G, out: &mut Vec<V>) -> (Next, Option<E>) {
        let take = pace.next();
        // Taken from the heap while the slice runs (see `Pace::slice`'s `values`); a panic
        // drops the items left with it.
        let mut items = std::mem::replace(&mut self.0, Vec::new().into_iter());
        let next = pace.slice(items.by_ref().take(take), g, out);
        self.0 = items;
        next
    }

    fn rest(self, part: Part, g: G, done: Vec<V>, finish: fn(Result<Vec<V>, E>) -> T) -> Job<T> {
        // The drained items are gone already: the rest is what is left.
        let rest: Vec<X> = self.0.collect();
        pool_job(part, rest, g, done, finish)
    }
}

/// Owned items lent to the function (as `&B`), before the call and while it runs in slices
/// (from the pace's count of items run on).
struct Lending<C, B: ?Sized>(C, PhantomData<fn(&B)>);

/// Lent items are held across polls as they are: they are their own [`Source`].
impl<C, B, G, V, E, T> Input<G, V, E, T> for Lending<C, B>
where
    B: ?Sized + 'static,
    C: OwnedItems<B>,
    G: Fn(&C::Item) -> Result<V, E> + Send + Sync + 'static,
    V: Send + 'static,
    E: Send + 'static,
    T: 'static,
{
    type Source = Self;

    fn len(&self) -> usize {
        <Self as Source<G, V, E, T>>::len(self)
    }

    fn can_slice(&self) -> bool {
        true
    }

    fn job(self, site: &'static Site, g: G, finish: fn(Result<Vec<V>, E>) -> T) -> Job<T> {
        self.rest(Part::whole(site), g, Vec::new(), finish)
    }

    fn into_source(self) -> Self {
        self
    }

    fn map_here(self, site: &'static Site, g: G, finish: fn(Result<Vec<V>, E>) -> T) -> T {
        let values = crate::dispatch::map_slice(site, self.0.elements(), |x| never_failed(g(x)));
        finish(Ok(values))
    }
}

impl<C, B, G, V, E, T> Source<G, V, E, T> for Lending<C, B>
where
    B: ?Sized + 'static,
    C: OwnedItems<B>,
    G: Fn(&C::Item) -> Result<V, E> + Send + Sync + 'static,
    V: Send + 'static,
    E: Send + 'static,
    T: 'static,
{
    fn len(&self) -> usize {
        self.0.elements().len()
    }

    fn slice(&mut self, pace: &mut Pace, g: &G, out: &mut Vec<V>) -> (Next, Option<E>) {
        let from = pace.ran;
        let to = from + pace.next();
        pace.slice(self.0.elements()[from..to].iter(), g, out)
    }

    /// The job that maps the elements from `part.from` on, on the pool.
    fn rest(self, part: Part, g: G, done: Vec<V>, finish: fn(Result<Vec<V>, E>) -> T) -> Job<T> {
        let items = self.0;
        Box::new(move |cancel| {
            let from = part.from;
            part.run(&items.elements()[from..], &g, cancel, done, finish)
        })
    }
}

/// Maps `f` over owned `items` like [`map`](crate::map) through the same `site`, without
/// blocking the executor (see the [module docs](self)); the returned future resolves to the
/// results in input order.
///
/// ```
/// use amorsize_core::{map_async, Site};
///
/// static DOUBLE: Site = Site::new("double");
///
/// let future = map_async(&DOUBLE, (0..1_000u64).collect::<Vec<_>>(), |x| x * 2);
/// // Any executor; a trivial one here.
/// let doubled = futures_lite_block_on(future);
/// assert_eq!(doubled[999], 1_998);
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     use std::task::{Context, Poll, Wake, Waker};
/// #     struct Unpark(std::thread::Thread);
/// #     impl Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
/// #     let mut f = std::pin::pin!(f);
/// #     loop {
/// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v }
/// #         std::thread::park();
/// #     }
/// # }
/// ```
pub fn map_async<T, I, R, F>(site: &'static Site, items: I, f: F) -> MapFuture<Vec<R>>
where
    T: Send + 'static,
    I: IntoItems<T> + Send + 'static,
    I::Iter: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> R + Send + Sync + 'static,
{
    MapFuture::new(Box::new(AsyncCall {
        site,
        input: Owned::new(items),
        g: move |x| Ok::<R, Infallible>(f(x)),
        finish: values,
        infallible: true,
    }))
}

/// An infallible map's values.
fn values<R>(result: Result<Vec<R>, Infallible>) -> Vec<R> {
    match result {
        Ok(values) => values,
        Err(never) => match never {},
    }
}

/// A fallible map's batch.
fn batch<R: TryItem>(result: Result<Vec<R::Ok>, R::Stop>) -> R::Batch {
    match result {
        Ok(values) => R::batch(values),
        Err(stop) => R::stopped(stop),
    }
}

/// Owned items that lend their elements as `T` to a map: what an async companion of
/// `fn f(x: &T)` takes. Implemented for `Vec<S>`, `Box<[S]>`, `Arc<[S]>` and `Arc<Vec<S>>`
/// with `S: Borrow<T> + Sync` (a `Vec<String>` for `&str` items, an `Arc<[Record]>` shared
/// with other tasks).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not owned items an async companion can take",
    label = "pass a `Vec`, `Box<[_]>` or `Arc<[_]>` of the items (the future owns them)",
    note = "async companions take owned items (`Vec<S>`, `Box<[S]>`, `Arc<[S]>`, `Arc<Vec<S>>` with `S: Borrow<{T}>`): the map runs after the call returns"
)]
pub trait OwnedItems<T: ?Sized>: Send + Sync + 'static {
    /// One element.
    type Item: Borrow<T> + Sync;
    /// The elements.
    fn elements(&self) -> &[Self::Item];
}

impl<T: ?Sized, S: Borrow<T> + Send + Sync + 'static> OwnedItems<T> for Vec<S> {
    type Item = S;
    fn elements(&self) -> &[S] {
        self
    }
}

impl<T: ?Sized, S: Borrow<T> + Send + Sync + 'static> OwnedItems<T> for Box<[S]> {
    type Item = S;
    fn elements(&self) -> &[S] {
        self
    }
}

impl<T: ?Sized, S: Borrow<T> + Send + Sync + 'static> OwnedItems<T> for Arc<[S]> {
    type Item = S;
    fn elements(&self) -> &[S] {
        self
    }
}

impl<T: ?Sized, S: Borrow<T> + Send + Sync + 'static> OwnedItems<T> for Arc<Vec<S>> {
    type Item = S;
    fn elements(&self) -> &[S] {
        self
    }
}

/// [`map_async`] for a function that borrows its item: `f` gets each element of `items`
/// (owned by the future) by reference.
pub fn map_async_lent<T, C, R, F>(site: &'static Site, items: C, f: F) -> MapFuture<Vec<R>>
where
    T: ?Sized + 'static,
    C: OwnedItems<T>,
    R: Send + 'static,
    F: Fn(&T) -> R + Send + Sync + 'static,
{
    MapFuture::new(Box::new(AsyncCall {
        site,
        input: Lending(items, PhantomData::<fn(&T)>),
        g: move |x: &C::Item| Ok::<R, Infallible>(f(x.borrow())),
        finish: values,
        infallible: true,
    }))
}

/// [`map_async`] for a fallible `f` (see [`try_map`](crate::try_map)): resolves to every
/// value or the first failure.
pub fn try_map_async<T, I, R, F>(site: &'static Site, items: I, f: F) -> MapFuture<R::Batch>
where
    T: Send + 'static,
    I: IntoItems<T> + Send + 'static,
    I::Iter: Send + 'static,
    R: TryItem + 'static,
    R::Ok: 'static,
    R::Stop: 'static,
    R::Batch: Send + 'static,
    F: Fn(T) -> R + Send + Sync + 'static,
{
    MapFuture::new(Box::new(AsyncCall {
        site,
        input: Owned::new(items),
        g: move |x| f(x).into_result(),
        finish: batch::<R>,
        infallible: false,
    }))
}

/// [`try_map_async`] for a function that borrows its item.
pub fn try_map_async_lent<T, C, R, F>(site: &'static Site, items: C, f: F) -> MapFuture<R::Batch>
where
    T: ?Sized + 'static,
    C: OwnedItems<T>,
    R: TryItem + 'static,
    R::Ok: 'static,
    R::Stop: 'static,
    R::Batch: Send + 'static,
    F: Fn(&T) -> R + Send + Sync + 'static,
{
    MapFuture::new(Box::new(AsyncCall {
        site,
        input: Lending(items, PhantomData::<fn(&T)>),
        g: move |x: &C::Item| f(x.borrow()).into_result(),
        finish: batch::<R>,
        infallible: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Nobody;
    impl Wake for Nobody {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn a_call_run_in_slices_counts_as_running_until_it_ends_or_is_dropped() {
        static SITE: Site = Site::new("future::counted").with_max_threads(1);
        // A pool of a size no other test uses: its count of running calls is this test's.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(5)
            .build()
            .unwrap();
        pool.install(|| {
            let here = crate::pool::here();
            let work = |x: u64| {
                crate::spin(Duration::from_micros(2));
                x
            };
            // The first call profiles (on the pool): the cost is then known.
            assert_eq!(crate::map(&SITE, 0..2_000u64, work).len(), 2_000);
            let waker = Waker::from(Arc::new(Nobody));
            let mut cx = Context::from_waker(&waker);
            for finish in [false, true] {
                assert_eq!(here.long_calls(), 0);
                let mut future = Box::pin(map_async(&SITE, 0..2_000u64, work));
                assert!(future.as_mut().poll(&mut cx).is_pending());
                assert!(matches!(future.stage, Stage::Sliced(_)));
                assert_eq!(here.long_calls(), 1);
                if finish {
                    while future.as_mut().poll(&mut cx).is_pending() {}
                    assert_eq!(here.long_calls(), 0);
                }
                drop(future);
                assert_eq!(here.long_calls(), 0);
            }
        });
    }

    #[test]
    fn slices_fit_the_budget() {
        assert_eq!(fit(PerItem::from_nanos(10_000.0).as_picos()), 5);
        assert_eq!(fit(PerItem::from_nanos(60_000.0).as_picos()), 1);
        assert_eq!(fit(0), SLICE_NS as usize * 1000);
    }
}
