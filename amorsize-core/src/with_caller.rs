//! A parallel map in which the calling thread works too: it takes pieces from the front of
//! the items while helpers on rayon's pool take pieces from the back, each piece writing its
//! results straight into its own slots of the output.
//!
//! Used for calls from outside the pool. rayon would inject the whole job and block the
//! caller until pool threads have done it all; on virtual machines an idle core can take
//! hundreds of microseconds to come back (measured on the 2-core development VM: a join of two
//! 500 µs halves took 1.1 ms after 2 ms of serial work, against 0.53 ms back to back). Here
//! the caller starts at once and helpers join in whenever they wake.
//!
//! Helpers that have not started by the time the caller has taken the last piece are never
//! waited for: they find the door closed and return without touching the call's data. A call
//! on an idle or busy pool therefore costs at most a loop plus the price of asking for help
//! (a job injected into the pool) and of finishing the piece a late helper took.
//!
//! One exception: a caller from outside the pool whose first helper has not started after
//! [`HELP_STUCK_AFTER`] waits for it, once, at most [`HELP_STUCK_WAIT`] and half the time
//! its remaining items would take it. Linux often wakes the helper onto the caller's own
//! core when the caller has just woken from a wait itself (a service's thread between
//! requests): there it waits for the caller's whole loop while the other core idles.
//! Measured on the 2-core development VM, 100 calls of 1.2 ms of work, each after nine 12 µs
//! loops 100 µs apart: 59-81 of the first helpers started only once the caller had
//! finished, all on its core, and the calls took 1.1-1.2 ms at the median against
//! 0.66-0.69 ms for rayon's `par_iter`. Waiting gives the helper that core; it then asks for
//! one more helper, woken by a pool thread, which lands on a free core.
//!
//! What runs on each item is a [`Step`]: a plain map never stops; a fallible one (see
//! `try_map`) may stop the whole call, checked before every item on every thread, after
//! which the results made so far are dropped, as after a panic.

use crate::lock;
use crate::observe::Watch;
use crate::units::elapsed_ns;
use rayon::iter::plumbing::Producer;
use std::any::Any;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a call's untaken items are paired with, split alongside them: the output slots of
/// a map, or only a count for work whose results are not per item (a reduction).
pub(crate) trait Slots: Default + Send {
    /// How many items these stand for.
    fn len(&self) -> usize;
    /// The first `mid` and the rest.
    fn split_at(self, mid: usize) -> (Self, Self);
}

impl<R: Send> Slots for &mut [MaybeUninit<R>] {
    fn len(&self) -> usize {
        <[MaybeUninit<R>]>::len(self)
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }
}

/// Slots that are only a count.
#[derive(Default)]
pub(crate) struct Count(pub(crate) usize);

impl Slots for Count {
    fn len(&self) -> usize {
        self.0
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        (Count(mid), Count(self.0 - mid))
    }
}

/// The items and slots nobody has taken yet, always the same length.
struct Middle<P, S> {
    producer: Option<P>,
    slots: S,
    /// Where `slots` starts in the call.
    offset: usize,
}

/// Takes up to `chunk` items (and as many slots) from the front, or from the back: the
/// piece's items, slots, and where they start in the call.
fn take<P: Producer, S: Slots>(
    middle: &Mutex<Middle<P, S>>,
    chunk: usize,
    from_back: bool,
) -> Option<(P, S, usize)> {
    let mut m = lock(middle);
    let len = m.slots.len();
    if len == 0 {
        return None;
    }
    let take = chunk.clamp(1, len);
    let producer = m.producer.take()?;
    let slots = std::mem::take(&mut m.slots);
    if take == len {
        return Some((producer, slots, m.offset));
    }
    if from_back {
        let (rest, back) = producer.split_at(len - take);
        let (rest_slots, back_slots) = slots.split_at(len - take);
        m.producer = Some(rest);
        m.slots = rest_slots;
        Some((back, back_slots, m.offset + len - take))
    } else {
        let (front, rest) = producer.split_at(take);
        let (front_slots, rest_slots) = slots.split_at(take);
        let offset = m.offset;
        m.producer = Some(rest);
        m.slots = rest_slots;
        m.offset += take;
        Some((front, front_slots, offset))
    }
}

/// What one call's threads share besides its items: whether to stop, what stopped it, and
/// what it measured.
pub(crate) struct Control<'c> {
    /// Set by the first panic or stop: nobody takes a new piece (or, for work that can stop,
    /// a new item) after it.
    stop: AtomicBool,
    /// Set when the work (not a panic) stopped the call.
    stopped: AtomicBool,
    /// Items run, for a stopped call's cost.
    ran: AtomicUsize,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    busy_ns: &'c AtomicU64,
    /// Told of every complete piece, if the call is watched.
    watch: Option<&'c Watch>,
}

impl<'c> Control<'c> {
    pub(crate) fn new(busy_ns: &'c AtomicU64, watch: Option<&'c Watch>) -> Self {
        Control {
            stop: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            ran: AtomicUsize::new(0),
            panic: Mutex::new(None),
            busy_ns,
            watch,
        }
    }

    /// Whether some thread stopped the call (or panicked): checked before each item by work
    /// that can stop.
    #[inline(always)]
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The work stopped the call: no thread takes another item.
    pub(crate) fn stop_here(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops the call for a panic; the first one's payload is kept for the caller.
    fn record_panic(&self, payload: Box<dyn Any + Send>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut first = lock(&self.panic);
        if first.is_none() {
            *first = Some(payload);
        } else {
            // Only the first panic reaches the caller. A later payload is leaked, not
            // dropped: its `Drop` is user code that may panic too, here on a pool thread,
            // where nothing would catch it.
            std::mem::forget(payload);
        }
    }

    /// How the call ended once every thread has stopped: a panic's payload (to resume), a
    /// stop by the work with the items that ran, or done.
    pub(crate) fn ending(self) -> Ending {
        let panic = self
            .panic
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match panic {
            Some(payload) => Ending::Panicked(payload),
            None if self.stopped.into_inner() => Ending::Stopped {
                ran: self.ran.into_inner(),
            },
            None => Ending::Done,
        }
    }
}

/// How the threads of a call ended.
pub(crate) enum Ending {
    Done,
    Stopped { ran: usize },
    Panicked(Box<dyn Any + Send>),
}

/// What a call does with one piece: a map writes each item's result into the piece's slots,
/// a reduction folds its items into one value.
pub(crate) trait Pieces<P: Producer>: Sync {
    /// What the items are paired with.
    type Slots: Slots;
    /// Runs `piece` (its items start at `offset` in the call): `Ok` with the items when the
    /// piece is complete (and recorded as such), `Err` with the items that ran when the work
    /// stopped the call in it (`control.stop_here()`; nothing of the piece kept).
    fn run(
        &self,
        piece: P,
        slots: Self::Slots,
        offset: usize,
        control: &Control<'_>,
    ) -> Result<usize, usize>;
}

/// Takes and runs pieces until none is left or the call is stopping; records a panic
/// instead of unwinding.
fn work<P, W>(
    middle: &Mutex<Middle<P, W::Slots>>,
    pieces: &W,
    chunk: usize,
    control: &Control<'_>,
    from_back: bool,
    mut between: impl FnMut(),
) where
    P: Producer,
    W: Pieces<P>,
{
    let result = catch_unwind(AssertUnwindSafe(|| {
        while !control.stopping() {
            between();
            let Some((piece, slots, offset)) = take(middle, chunk, from_back) else {
                break;
            };
            let start = Instant::now();
            let ran = pieces.run(piece, slots, offset, control);
            control
                .busy_ns
                .fetch_add(elapsed_ns(start), Ordering::Relaxed);
            match ran {
                Ok(len) => {
                    control.ran.fetch_add(len, Ordering::Relaxed);
                    crate::observe::advance(control.watch, len);
                }
                Err(ran) => {
                    control.ran.fetch_add(ran, Ordering::Relaxed);
                    break;
                }
            }
        }
    }));
    if let Err(payload) = result {
        control.record_panic(payload);
    }
}

/// Runs the `n` items of `producer` (paired with `slots`) through `pieces`: the caller takes
/// `chunk`-item pieces from the front, and up to `helpers` pool jobs take them from the back
/// if they start before the work runs out. The caller first runs `before` (while helpers
/// start). Returns when every thread has stopped; what happened is in `control`.
pub(crate) fn drive<P, W>(
    producer: P,
    slots: W::Slots,
    pieces: &W,
    chunk: usize,
    helpers: usize,
    control: &Control<'_>,
    before: impl FnOnce(),
) where
    P: Producer,
    P::Item: Send,
    W: Pieces<P>,
{
    let n = slots.len();
    let chunk = chunk.max(1);
    let middle = Mutex::new(Middle {
        producer: Some(producer),
        slots,
        offset: 0,
    });
    // With the `tracing` feature, helpers work inside the caller's span.
    #[cfg(feature = "tracing")]
    let span = tracing::Span::current();
    let help = || {
        #[cfg(feature = "tracing")]
        let _in_span = span.enter();
        work(&middle, pieces, chunk, control, true, || {})
    };
    let help: &(dyn Fn() + Sync + '_) = &help;
    // SAFETY: only the lifetime changes. The pointer is called only through `Door::enter`
    // while the door is open, and `_closer` closes it and waits for every helper inside
    // before `help` (and what it borrows) goes out of scope.
    #[allow(unsafe_code)]
    let work_ptr = unsafe {
        std::mem::transmute::<*const (dyn Fn() + Sync + '_), *const (dyn Fn() + Sync + 'static)>(
            help,
        )
    };
    let wanted = helpers.min(n.div_ceil(chunk).saturating_sub(1));
    let door = Arc::new(Door {
        state: AtomicUsize::new(0),
        to_ask: AtomicUsize::new(wanted),
        work: work_ptr,
        empty: Mutex::new(()),
        emptied: Condvar::new(),
        arrived: AtomicBool::new(false),
        arrival: Condvar::new(),
    });
    let _closer = CloseOnDrop(&door);
    let asked = Instant::now();
    door.ask_for_help();
    // From outside the pool, between pieces until the first helper is in: has it been kept
    // off every core but this one (see `HELP_STUCK_AFTER`)? Not asked when other planned
    // calls run in the pool (an outer call of this one, say): their helpers are busy, and
    // nobody waits behind this thread. A pool thread's helpers are woken by a pool thread,
    // and land on a free core.
    let mut settled = wanted == 0
        || rayon::current_thread_index().is_some()
        || crate::pool::here().long_calls() > 1;
    let stuck_check = || {
        if settled {
            return;
        }
        if door.arrived.load(Ordering::Acquire) {
            settled = true;
            return;
        }
        let ran = control.ran.load(Ordering::Relaxed);
        let elapsed = asked.elapsed();
        if ran > 0 && elapsed >= HELP_STUCK_AFTER {
            settled = true;
            // At most half of what is left at the pace so far: should no helper come, the
            // call takes at most half as long again as the rest of its loop.
            let left = elapsed.as_secs_f64() * n.saturating_sub(ran) as f64 / ran as f64;
            let limit = HELP_STUCK_WAIT.min(Duration::from_secs_f64(left / 2.0));
            if limit >= HELP_STUCK_WAIT_FROM {
                door.wait_for_first_helper(limit);
            }
        }
    };
    // The caller's own errand first (a stream reads its next batch while helpers start on
    // this one); a panic in it ends the call like a panic in a piece.
    if let Err(payload) = catch_unwind(AssertUnwindSafe(before)) {
        control.record_panic(payload);
    }
    work(&middle, pieces, chunk, control, false, stuck_check);
}

/// The slots of one piece, of which the first `written` hold results. Dropped before the
/// piece is complete (a panic in `f`), it drops those results.
struct Filling<'s, R> {
    slots: &'s mut [MaybeUninit<R>],
    written: usize,
}

impl<R> Drop for Filling<'_, R> {
    fn drop(&mut self) {
        let written = &mut self.slots[..self.written];
        // SAFETY: the first `written` slots were initialised by `MapPieces::run` and nothing
        // else refers to them (the piece was never recorded as complete).
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::drop_in_place(written as *mut [MaybeUninit<R>] as *mut [R]);
        }
    }
}

/// What a parallel map does with one item.
pub(crate) trait Step<I, R>: Sync {
    /// Whether [`step`](Step::step) can stop the call: then every piece checks for a stop
    /// before each item (a plain map skips that load).
    const STOPS: bool;
    /// The result for the item at `index` in the call, or `None` to stop the whole call (the
    /// step keeps what it needs to say why).
    fn step(&self, index: usize, item: I) -> Option<R>;
}

/// The plain map's step: `f` of each item, never stopping.
pub(crate) struct MapStep<'f, F>(pub(crate) &'f F);

impl<I, R, F: Fn(I) -> R + Sync> Step<I, R> for MapStep<'_, F> {
    const STOPS: bool = false;
    #[inline(always)]
    fn step(&self, _: usize, item: I) -> Option<R> {
        Some((self.0)(item))
    }
}

/// How a map ended, when it did not panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Every item ran; the results are in the output.
    Done,
    /// A step stopped it; the results made were dropped and nothing was appended. `ran`
    /// items had run (the stopping one included).
    Stopped { ran: usize },
}

/// A map's pieces: each writes its items' results into its own slots of the output.
struct MapPieces<'a, 's, S, R> {
    step: &'a S,
    /// Completed pieces as (offset, length): what to drop if the call fails, and whose
    /// lengths must add up to the call's length if it succeeds.
    complete: Mutex<Vec<(usize, usize)>>,
    /// The output slots the pieces write to.
    _slots: PhantomData<fn() -> &'s mut [MaybeUninit<R>]>,
}

impl<'s, P, R, S> Pieces<P> for MapPieces<'_, 's, S, R>
where
    P: Producer,
    R: Send + 's,
    S: Step<P::Item, R>,
{
    type Slots = &'s mut [MaybeUninit<R>];

    /// Writes the step's result for each item into `slots`, in order, through the piece's
    /// own `fold_with` (std's `Range` for an integer range). Panics (dropping what it
    /// wrote) unless the piece yields exactly one item per slot.
    fn run(
        &self,
        piece: P,
        slots: &'s mut [MaybeUninit<R>],
        offset: usize,
        control: &Control<'_>,
    ) -> Result<usize, usize> {
        let len = slots.len();
        let fill = piece.fold_with(Fill {
            filling: Filling { slots, written: 0 },
            step: self.step,
            offset,
            control,
            stopped: None,
            _item: PhantomData,
        });
        if let Some(ran) = fill.stopped {
            return Err(ran);
        }
        let mut filling = fill.filling;
        assert_eq!(
            filling.written, len,
            "amorsize: a producer yielded fewer items than its length"
        );
        filling.written = 0; // Complete: the results now belong to the output.
        lock(&self.complete).push((offset, len));
        Ok(len)
    }
}

/// The folder that fills a piece's slots: the step's result for each item, in order.
struct Fill<'a, 's, 'c, S, R, I> {
    filling: Filling<'s, R>,
    step: &'a S,
    offset: usize,
    control: &'a Control<'c>,
    /// The piece stopped (the call is stopping, or the step stopped it): how many of its
    /// items ran, the stopping one included. Its results are dropped with `filling`.
    stopped: Option<usize>,
    _item: PhantomData<fn(I)>,
}

impl<S, R, I> rayon::iter::plumbing::Folder<I> for Fill<'_, '_, '_, S, R, I>
where
    S: Step<I, R>,
{
    type Result = Self;

    fn consume(self, item: I) -> Self {
        self.consume_iter(std::iter::once(item))
    }

    /// Writes the slots left in order, one per item: a loop the iterator drives, with no
    /// bounds check per item (the slots' iterator ends it). A step that can stop checks for
    /// a stop before each item (see [`Step::STOPS`]). An item beyond the last slot panics,
    /// as a producer that yields more than its length is broken.
    #[inline(always)]
    fn consume_iter<T: IntoIterator<Item = I>>(mut self, iter: T) -> Self {
        if self.stopped.is_some() {
            return self;
        }
        let mut iter = iter.into_iter();
        let from = self.filling.written;
        for (slot, item) in self.filling.slots[from..].iter_mut().zip(iter.by_ref()) {
            if S::STOPS && self.control.stopping() {
                self.stopped = Some(self.filling.written);
                return self;
            }
            let Some(result) = self.step.step(self.offset + self.filling.written, item) else {
                self.control.stop_here();
                self.stopped = Some(self.filling.written + 1);
                return self;
            };
            slot.write(result);
            self.filling.written += 1;
        }
        if iter.next().is_some() {
            panic!("amorsize: a producer yielded more items than its length");
        }
        self
    }

    fn complete(self) -> Self {
        self
    }

    fn full(&self) -> bool {
        self.stopped.is_some()
    }
}

/// The door through which a pool helper reaches a call's work. Helpers keep it alive (it
/// outlives the call); the work it points to lives only as long as the call, so the caller
/// closes the door and waits for the helpers inside before returning.
struct Door {
    /// [`CLOSED`] plus the number of helpers inside.
    state: AtomicUsize,
    /// Helpers still to be asked for: each one that gets in asks for the next, so the
    /// caller pays for one injected job however many threads the pool has.
    to_ask: AtomicUsize,
    /// The call's work with its lifetime erased; only called by a helper that entered while
    /// the door was open.
    work: *const (dyn Fn() + Sync + 'static),
    /// Where a caller that has waited [`SPIN_BEFORE_SLEEP`] for the last helpers sleeps
    /// until they have left.
    empty: Mutex<()>,
    emptied: Condvar,
    /// Set by the first helper to get in; a caller waiting for it (see [`HELP_STUCK_AFTER`])
    /// sleeps on `arrival` under `empty`.
    arrived: AtomicBool,
    arrival: Condvar,
}

const CLOSED: usize = 1 << (usize::BITS - 1);

/// How long a caller from outside the pool works before it takes its first helper, not
/// started yet, for one the scheduler put on the caller's own core (see the module docs).
/// Helpers woken onto a free core start within 30-50 µs on the development VM.
const HELP_STUCK_AFTER: Duration = Duration::from_micros(100);

/// The longest a caller waits for that helper, once, before it works on alone; never more
/// than half the time its remaining items would take it.
const HELP_STUCK_WAIT: Duration = Duration::from_micros(200);

/// A wait shorter than this is not worth it: the rest of the call is nearly done.
const HELP_STUCK_WAIT_FROM: Duration = Duration::from_micros(20);

/// How long a caller spins for helpers finishing their last piece before it sleeps. Short
/// pieces end within it, and the caller does not pay for a wake-up (hundreds of
/// microseconds on a virtual machine); long ones do not keep a core busy for nothing.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(200);

// SAFETY: `work` points to a `Sync` closure and is only called (shared) by helpers inside
// the open door, while the caller keeps it alive; a closed door's pointer is never read.
#[allow(unsafe_code)]
unsafe impl Send for Door {}
// SAFETY: every field but `work` is `Sync` (atomics, a `Mutex`, a `Condvar`). `work` is only
// dereferenced to call a `Fn + Sync` closure, which several threads may call at once, and
// only by helpers that entered the open door while the caller keeps the closure alive.
#[allow(unsafe_code)]
unsafe impl Sync for Door {}

impl Door {
    /// Asks the pool for one more helper, if any is still wanted.
    fn ask_for_help(self: &Arc<Self>) {
        let wanted = self
            .to_ask
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if wanted.is_ok() {
            let door = Arc::clone(self);
            rayon::spawn(move || door.enter());
        }
    }

    /// Runs the work unless the door is closed. The work catches its own panics; if anything
    /// unwinds anyway (asking the pool for a helper, say), the helper is still counted out,
    /// so that the caller never waits for it for ever.
    fn enter(self: &Arc<Self>) {
        struct LeaveOnDrop<'d>(&'d Door);
        impl Drop for LeaveOnDrop<'_> {
            fn drop(&mut self) {
                self.0.leave();
            }
        }
        let entered = self.state.fetch_add(1, Ordering::Acquire);
        let _leave = LeaveOnDrop(self);
        if entered & CLOSED != 0 {
            return;
        }
        if !self.arrived.swap(true, Ordering::AcqRel) {
            // Under the lock, so that a caller between its check and its wait cannot miss it.
            let _empty = lock(&self.empty);
            self.arrival.notify_all();
        }
        self.ask_for_help();
        // SAFETY: the door was open when this helper entered, and `close_and_wait` does not
        // return (so the work's borrows do not end) until every helper inside has left,
        // which this one does only when `_leave` drops, after the call.
        #[allow(unsafe_code)]
        unsafe {
            (*self.work)();
        }
    }

    /// Counts a helper out; the last one out of a closed door wakes a sleeping caller.
    fn leave(&self) {
        if self.state.fetch_sub(1, Ordering::Release) == CLOSED | 1 {
            // Under the lock, so that a caller between its check and its wait cannot miss it.
            let _empty = lock(&self.empty);
            self.emptied.notify_all();
        }
    }

    /// Waits at most `limit` for the first helper to get in, and has it ask for one more:
    /// it likely waited behind the caller on the caller's core, and a helper woken by a pool
    /// thread lands on a free one.
    fn wait_for_first_helper(&self, limit: Duration) {
        self.to_ask.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + limit;
        let mut empty = lock(&self.empty);
        while !self.arrived.load(Ordering::Acquire) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            empty = match self.arrival.wait_timeout(empty, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn is_empty(&self) -> bool {
        self.state.load(Ordering::Acquire) & !CLOSED == 0
    }

    /// Closes the door and waits for the helpers inside to leave (each is finishing at most
    /// one piece, as nothing is left to take): spinning at first, then asleep.
    fn close_and_wait(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        let start = Instant::now();
        let mut spins = 0u32;
        while !self.is_empty() {
            if spins < 64 {
                std::hint::spin_loop();
                spins += 1;
            } else if start.elapsed() < SPIN_BEFORE_SLEEP {
                std::thread::yield_now();
            } else {
                let mut empty = lock(&self.empty);
                while !self.is_empty() {
                    empty = self
                        .emptied
                        .wait(empty)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                return;
            }
        }
    }
}

/// Closes the door when the caller leaves `drive`, whatever the way out.
struct CloseOnDrop<'d>(&'d Door);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close_and_wait();
    }
}

/// Maps `f` over the `n` items of `producer`, appending the results to `out` in order: the
/// caller takes `chunk`-item pieces from the front, and up to `helpers` pool jobs take them
/// from the back if they start before the work runs out. Adds the pieces' summed time to
/// `busy_ns`. A panic in `f` on any thread propagates to the caller with its payload once
/// every thread has stopped, after dropping the results computed so far.
#[allow(clippy::too_many_arguments)] // As `run_into`.
pub(crate) fn map_into<P, F, R>(
    producer: P,
    n: usize,
    f: &F,
    chunk: usize,
    helpers: usize,
    out: &mut Vec<R>,
    busy_ns: &AtomicU64,
    watch: Option<&Watch>,
) where
    P: Producer,
    P::Item: Send,
    R: Send,
    F: Fn(P::Item) -> R + Sync + Send,
{
    let ended = run_into(
        producer,
        n,
        &MapStep(f),
        chunk,
        helpers,
        out,
        busy_ns,
        watch,
        || {},
    );
    debug_assert_eq!(ended, Ended::Done);
}

/// [`map_into`] with any [`Step`]: a step that stops the call ends it with nothing appended
/// to `out` (the results made were dropped), once every thread has stopped. The caller runs
/// `before` first, while helpers start (see [`drive`]).
#[allow(clippy::too_many_arguments)] // Each is one of the call's own facts; a struct would only rename them.
pub(crate) fn run_into<P, S, R>(
    producer: P,
    n: usize,
    step: &S,
    chunk: usize,
    helpers: usize,
    out: &mut Vec<R>,
    busy_ns: &AtomicU64,
    watch: Option<&Watch>,
    before: impl FnOnce(),
) -> Ended
where
    P: Producer,
    P::Item: Send,
    R: Send,
    S: Step<P::Item, R>,
{
    out.reserve(n);
    let base = out.len();
    let pieces = MapPieces {
        step,
        // One entry per piece; plans cut at most 16 pieces per thread.
        complete: Mutex::new(Vec::with_capacity(n.div_ceil(chunk.max(1)).min(1024))),
        _slots: PhantomData,
    };
    let control = Control::new(busy_ns, watch);
    drive(
        producer,
        &mut out.spare_capacity_mut()[..n],
        &pieces,
        chunk,
        helpers,
        &control,
        before,
    );
    // Every helper has left; nothing refers to the output's spare capacity any more.
    let complete = pieces
        .complete
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let ending = control.ending();
    if let Ending::Done = ending {
        let written: usize = complete.iter().map(|&(_, len)| len).sum();
        assert_eq!(
            written, n,
            "amorsize: every item is taken unless a piece panicked or stopped"
        );
        // SAFETY: the pieces partition the `n` slots after `base`, and each complete piece
        // wrote every one of its slots (`MapPieces::run` checks); all `n` were written.
        #[allow(unsafe_code)]
        unsafe {
            out.set_len(base + n);
        }
        return Ended::Done;
    }
    let spare = &mut out.spare_capacity_mut()[..n];
    for (offset, len) in complete {
        let results = &mut spare[offset..offset + len];
        // SAFETY: a complete piece wrote all of its slots, pieces do not overlap, and these
        // results were never moved into the output's length.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::drop_in_place(results as *mut [MaybeUninit<R>] as *mut [R]);
        }
    }
    match ending {
        Ending::Panicked(payload) => resume_unwind(payload),
        Ending::Stopped { ran } => Ended::Stopped { ran },
        Ending::Done => unreachable!("returned above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::iter::plumbing::ProducerCallback;
    use rayon::prelude::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    struct Run<'a, F> {
        n: usize,
        chunk: usize,
        f: &'a F,
    }

    impl<R: Send, F: Fn(u64) -> R + Sync + Send> ProducerCallback<u64> for Run<'_, F> {
        type Output = (Vec<R>, u64);
        fn callback<P: Producer<Item = u64>>(self, producer: P) -> (Vec<R>, u64) {
            let mut out = Vec::new();
            let busy = AtomicU64::new(0);
            map_into(
                producer, self.n, self.f, self.chunk, 8, &mut out, &busy, None,
            );
            (out, busy.into_inner())
        }
    }

    fn run<R: Send, F: Fn(u64) -> R + Sync + Send>(n: usize, chunk: usize, f: F) -> Vec<R> {
        (0..n)
            .into_par_iter()
            .map(|x| x as u64)
            .with_producer(Run { n, chunk, f: &f })
            .0
    }

    /// A step that stops the call when it reaches item `stop_at`, counting the values it
    /// makes that are still alive.
    struct StopAt<'a> {
        stop_at: u64,
        live: &'a AtomicUsize,
        ran: &'a AtomicUsize,
    }

    struct Counted<'a>(&'a AtomicUsize);

    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl<'a> Step<u64, Counted<'a>> for StopAt<'a> {
        const STOPS: bool = true;
        fn step(&self, index: usize, item: u64) -> Option<Counted<'a>> {
            assert_eq!(
                index as u64, item,
                "the index is the item's place in the call"
            );
            self.ran.fetch_add(1, Ordering::SeqCst);
            if item == self.stop_at {
                return None;
            }
            self.live.fetch_add(1, Ordering::SeqCst);
            Some(Counted(self.live))
        }
    }

    struct RunSteps<'a, 's> {
        n: usize,
        chunk: usize,
        step: &'s StopAt<'a>,
    }

    impl<'a> ProducerCallback<u64> for RunSteps<'a, '_> {
        type Output = (Ended, usize);
        fn callback<P: Producer<Item = u64>>(self, producer: P) -> (Ended, usize) {
            let mut out = Vec::new();
            let busy = AtomicU64::new(0);
            let ended = run_into(
                producer,
                self.n,
                self.step,
                self.chunk,
                8,
                &mut out,
                &busy,
                None,
                || {},
            );
            (ended, out.len())
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// A step that stops the call: nothing appended, every value made dropped once, the
        /// items counted as run, and no item started after the stop on the stopping thread.
        #[test]
        fn a_stop_drops_everything_once_and_counts_what_ran(
            n in 1usize..3_000,
            chunk in 1usize..200,
            stop_at in 0u64..3_000,
        ) {
            let _serial = crate::timing_test();
            let stop_at = stop_at % n as u64;
            let live = AtomicUsize::new(0);
            let ran = AtomicUsize::new(0);
            let step = StopAt { stop_at, live: &live, ran: &ran };
            let (ended, appended) = (0..n)
                .into_par_iter()
                .map(|x| x as u64)
                .with_producer(RunSteps { n, chunk, step: &step });
            proptest::prop_assert_eq!(ended, Ended::Stopped { ran: ran.load(Ordering::SeqCst) });
            proptest::prop_assert_eq!(appended, 0);
            proptest::prop_assert_eq!(live.load(Ordering::SeqCst), 0);
            proptest::prop_assert!(ran.load(Ordering::SeqCst) <= n);
        }
    }

    #[test]
    fn output_is_in_order_whoever_computes_what() {
        let _serial = crate::timing_test();
        for (n, chunk) in [
            (0, 1),
            (1, 1),
            (2, 1),
            (7, 3),
            (1_000, 7),
            (20_000, 64),
            (5, 100),
        ] {
            let out = run(n, chunk, |x| x.to_string());
            let expected: Vec<String> = (0..n as u64).map(|x| x.to_string()).collect();
            assert_eq!(out, expected, "n = {n}, chunk = {chunk}");
        }
    }

    #[test]
    fn appends_after_what_the_output_already_holds() {
        let _serial = crate::timing_test();
        struct Append;
        impl ProducerCallback<u64> for Append {
            type Output = Vec<u64>;
            fn callback<P: Producer<Item = u64>>(self, producer: P) -> Vec<u64> {
                let mut out = vec![7, 8];
                map_into(
                    producer,
                    100,
                    &|x| x * 2,
                    9,
                    1,
                    &mut out,
                    &AtomicU64::new(0),
                    None,
                );
                out
            }
        }
        let out = (0..100usize)
            .into_par_iter()
            .map(|x| x as u64)
            .with_producer(Append);
        let expected: Vec<u64> = [7, 8].into_iter().chain((0..100).map(|x| x * 2)).collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn helpers_do_take_work_when_items_are_slow() {
        let _serial = crate::timing_test();
        // The caller's first item waits until a helper has run one, so the test needs only
        // that a helper starts at all (within the deadline), not that it starts in time.
        let helped = AtomicBool::new(false);
        let caller = std::sync::OnceLock::new();
        let (_, out) = in_own_pool(2, || {
            let _ = caller.set(rayon::current_thread_index());
            run(64, 1, |x| {
                if Some(&rayon::current_thread_index()) == caller.get() {
                    wait_until(|| helped.load(Ordering::SeqCst));
                } else {
                    helped.store(true, Ordering::SeqCst);
                }
                (x, rayon::current_thread_index())
            })
        });
        let caller = *caller.get().unwrap();
        assert!(out.iter().any(|&(_, t)| t != caller), "no helper ran");
        assert!(
            out.iter().any(|&(_, t)| t == caller),
            "the caller did not work"
        );
        for (i, &(x, _)) in out.iter().enumerate() {
            assert_eq!(x, i as u64);
        }
    }

    /// How long a test waits for a pool thread to start before it fails: far longer than any
    /// scheduling delay, so the tests hold on a loaded machine and still end on a hung one.
    const DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

    /// Waits (yielding) until `ready` or [`DEADLINE`].
    fn wait_until(ready: impl Fn() -> bool) {
        let start = Instant::now();
        while !ready() && start.elapsed() < DEADLINE {
            std::thread::yield_now();
        }
    }

    /// Runs `f` on a thread of a pool of its own with `threads` threads (the caller being one
    /// of them), so that tests which need idle helpers do not depend on what other tests do
    /// with the global pool; returns the caller's thread index with `f`'s result.
    fn in_own_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> (Option<usize>, T) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| (rayon::current_thread_index(), f()))
    }

    /// The caller asks for one helper; each helper that gets in asks for the next, so with
    /// slow items every other thread of the pool ends up helping. (A pool of its own: the
    /// global one stays free for the other tests.)
    #[test]
    fn each_helper_asks_for_the_next() {
        let _serial = crate::timing_test();
        // Every item waits until all four threads have run one: only the chain of helpers
        // asking for helpers can bring them all in.
        let seen = Mutex::new(std::collections::BTreeSet::new());
        let (caller, out) = in_own_pool(4, || {
            run(120, 1, |_| {
                let me = rayon::current_thread_index();
                lock(&seen).insert(me);
                wait_until(|| lock(&seen).len() == 4);
                me
            })
        });
        let helpers: std::collections::BTreeSet<usize> = out
            .iter()
            .flatten()
            .copied()
            .filter(|&t| Some(t) != caller)
            .collect();
        assert_eq!(helpers.len(), 3, "{helpers:?}");
    }

    /// A helper's last piece that outlasts the caller's spinning: the caller sleeps and is
    /// woken when it ends, with every result in place.
    #[test]
    fn the_caller_sleeps_through_a_long_last_piece() {
        let _serial = crate::timing_test();
        let helper_started = AtomicBool::new(false);
        let caller = std::sync::OnceLock::new();
        let (_, out) = in_own_pool(2, || {
            let _ = caller.set(rayon::current_thread_index());
            run(4, 1, |x| {
                if Some(&rayon::current_thread_index()) != caller.get() {
                    helper_started.store(true, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                } else {
                    // Keep the caller busy until a helper has its piece.
                    wait_until(|| helper_started.load(Ordering::SeqCst));
                }
                x * 3
            })
        });
        assert!(helper_started.load(Ordering::SeqCst), "no helper came");
        assert_eq!(out, [0, 3, 6, 9]);
    }

    /// With every other thread of its pool blocked, no helper can start: the caller does all
    /// the work and returns without waiting for them (rayon's own path, or a scope, would
    /// wait here). A pool of its own keeps the global one free for the other tests.
    #[test]
    fn never_waits_for_a_helper_that_has_not_started() {
        let _serial = crate::timing_test();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let _blocked = block_threads(1, |job| pool.spawn(job));
        let (caller, out) = pool.install(|| {
            let out = run(1_000, 10, |x| (x, rayon::current_thread_index()));
            (rayon::current_thread_index(), out)
        });
        assert!(out.iter().all(|&(_, thread)| thread == caller));
        assert_eq!(
            out.iter().map(|&(x, _)| x).collect::<Vec<_>>(),
            (0..1_000).collect::<Vec<_>>()
        );
    }

    /// Threads of a pool kept busy until dropped.
    struct Blocked {
        release: std::sync::mpsc::Sender<()>,
        threads: usize,
    }

    impl Drop for Blocked {
        fn drop(&mut self) {
            for _ in 0..self.threads {
                let _ = self.release.send(());
            }
        }
    }

    /// Blocks `threads` threads of a pool, through `spawn` (which spawns a job there), and
    /// returns once they all are.
    fn block_threads(threads: usize, spawn: impl Fn(Box<dyn FnOnce() + Send>)) -> Blocked {
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let (blocked_tx, blocked_rx) = std::sync::mpsc::channel::<()>();
        for _ in 0..threads {
            let (release_rx, blocked_tx) = (Arc::clone(&release_rx), blocked_tx.clone());
            spawn(Box::new(move || {
                blocked_tx.send(()).unwrap();
                let _ = lock(&release_rx).recv();
            }));
        }
        for _ in 0..threads {
            blocked_rx.recv().unwrap();
        }
        Blocked { release, threads }
    }

    /// From outside the pool, a caller whose first helper has not started after
    /// `HELP_STUCK_AFTER` waits for it once, at most `HELP_STUCK_WAIT`, then works on
    /// alone: with the global pool's threads all blocked, no helper can come, and the call
    /// still ends, with every item run by the caller, in order.
    #[test]
    fn a_caller_that_waits_for_a_stuck_helper_works_on_alone_when_none_comes() {
        let _serial = crate::timing_test();
        let blocked = block_threads(rayon::current_num_threads(), rayon::spawn);
        // 200 items of 2 µs: past `HELP_STUCK_AFTER` long before the end.
        let me = std::thread::current().id();
        let out = run(200, 10, |x| {
            crate::spin(Duration::from_micros(2));
            (x, std::thread::current().id())
        });
        drop(blocked);
        assert!(out.iter().all(|&(_, thread)| thread == me));
        assert_eq!(
            out.iter().map(|&(x, _)| x).collect::<Vec<_>>(),
            (0..200).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_panic_on_either_side_propagates_with_its_payload() {
        let _serial = crate::timing_test();
        for bad in [0u64, 9_999, 5_000] {
            let err = catch_unwind(AssertUnwindSafe(|| {
                run(10_000, 16, |x| {
                    if x == bad {
                        std::panic::panic_any(bad);
                    }
                    x.to_string()
                })
            }))
            .unwrap_err();
            assert_eq!(err.downcast_ref::<u64>(), Some(&bad));
        }
    }

    /// A panic in the caller's errand (a stream reading its input) ends the call like one
    /// in a piece: helpers stop, the results made are dropped once, the payload comes back.
    #[test]
    fn a_panic_in_the_callers_errand_propagates_and_drops_the_results() {
        let _serial = crate::timing_test();
        struct Errand;
        impl ProducerCallback<u64> for Errand {
            type Output = ();
            fn callback<P: Producer<Item = u64>>(self, producer: P) {
                let live = AtomicUsize::new(0);
                let step = StopAt {
                    stop_at: u64::MAX,
                    live: &live,
                    ran: &AtomicUsize::new(0),
                };
                let mut out = Vec::new();
                let err = catch_unwind(AssertUnwindSafe(|| {
                    run_into(
                        producer,
                        10_000,
                        &step,
                        64,
                        4,
                        &mut out,
                        &AtomicU64::new(0),
                        None,
                        || {
                            // Give helpers time to make results, then fail.
                            std::thread::sleep(std::time::Duration::from_millis(2));
                            std::panic::panic_any("errand");
                        },
                    )
                }))
                .unwrap_err();
                assert_eq!(err.downcast_ref::<&str>(), Some(&"errand"));
                assert!(out.is_empty());
                assert_eq!(live.load(Ordering::SeqCst), 0, "every result dropped once");
            }
        }
        (0..10_000usize)
            .into_par_iter()
            .map(|x| x as u64)
            .with_producer(Errand);
    }

    /// Panics on both sides whose payloads panic again when dropped: the caller gets the
    /// first payload back, is never left waiting, and no pool thread unwinds.
    #[test]
    fn payloads_that_panic_when_dropped_do_not_hang_the_caller() {
        let _serial = crate::timing_test();
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                if !std::thread::panicking() {
                    panic!("a payload that panics when dropped");
                }
            }
        }
        for chunk in [1, 16] {
            let err = catch_unwind(AssertUnwindSafe(|| {
                run(2_000, chunk, |x| {
                    if x % 2 == 0 {
                        std::panic::panic_any(Bomb);
                    }
                    x
                })
            }))
            .unwrap_err();
            assert!(err.is::<Bomb>());
            std::mem::forget(err);
        }
        // The pool is still usable.
        assert_eq!(run(100, 4, |x| x + 1)[99], 100);
    }

    /// Every result made before a panic is dropped exactly once, and none twice.
    #[test]
    fn a_panic_drops_each_computed_result_once() {
        let _serial = crate::timing_test();
        static LIVE: AtomicUsize = AtomicUsize::new(0);
        #[derive(Debug)]
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                LIVE.fetch_sub(1, Ordering::SeqCst);
            }
        }
        for bad in [0u64, 3, 4_999, 9_999] {
            LIVE.store(0, Ordering::SeqCst);
            let err = catch_unwind(AssertUnwindSafe(|| {
                run(10_000, 8, |x| {
                    if x == bad {
                        std::panic::panic_any(bad);
                    }
                    LIVE.fetch_add(1, Ordering::SeqCst);
                    Counted
                })
            }))
            .unwrap_err();
            assert_eq!(err.downcast_ref::<u64>(), Some(&bad));
            assert_eq!(LIVE.load(Ordering::SeqCst), 0, "bad = {bad}");
        }
        LIVE.store(0, Ordering::SeqCst);
        let out = run(1_000, 8, |_| {
            LIVE.fetch_add(1, Ordering::SeqCst);
            Counted
        });
        assert_eq!(LIVE.load(Ordering::SeqCst), 1_000);
        drop(out);
        assert_eq!(LIVE.load(Ordering::SeqCst), 0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any length, piece size and number of helpers, with or without a panic at any
        /// item: the output equals the serial map, or the panic's payload comes back and
        /// every result made before it has been dropped exactly once.
        #[test]
        fn any_split_matches_the_loop_and_drops_once(
            n in 0usize..3_000,
            chunk in 1usize..200,
            helpers in 0usize..4,
            panic_at in proptest::option::of(0usize..3_000),
        ) {
            let _serial = crate::timing_test();
            static LIVE: AtomicUsize = AtomicUsize::new(0);
            struct Counted(String);
            impl Drop for Counted {
                fn drop(&mut self) {
                    LIVE.fetch_sub(1, Ordering::SeqCst);
                }
            }
            struct Call {
                n: usize,
                chunk: usize,
                helpers: usize,
                panic_at: Option<u64>,
            }
            impl ProducerCallback<u64> for Call {
                type Output = Vec<Counted>;
                fn callback<P: Producer<Item = u64>>(self, producer: P) -> Vec<Counted> {
                    let panic_at = self.panic_at;
                    let f = move |x: u64| {
                        if Some(x) == panic_at {
                            std::panic::panic_any(x);
                        }
                        LIVE.fetch_add(1, Ordering::SeqCst);
                        Counted(x.to_string())
                    };
                    let mut out = Vec::new();
                    let busy = AtomicU64::new(0);
                    map_into(producer, self.n, &f, self.chunk, self.helpers, &mut out, &busy, None);
                    out
                }
            }
            let panic_at = panic_at.filter(|&i| i < n).map(|i| i as u64);
            let result = catch_unwind(AssertUnwindSafe(|| {
                (0..n)
                    .into_par_iter()
                    .map(|x| x as u64)
                    .with_producer(Call { n, chunk, helpers, panic_at })
            }));
            match (result, panic_at) {
                (Ok(out), None) => {
                    let got: Vec<String> = out.iter().map(|c| c.0.clone()).collect();
                    let expected: Vec<String> = (0..n).map(|x| x.to_string()).collect();
                    proptest::prop_assert_eq!(got, expected);
                    drop(out);
                }
                (Err(payload), Some(at)) => {
                    proptest::prop_assert_eq!(payload.downcast_ref::<u64>(), Some(&at));
                }
                (Ok(_), Some(at)) => proptest::prop_assert!(false, "no panic at {}", at),
                (Err(_), None) => proptest::prop_assert!(false, "a panic nobody raised"),
            }
            proptest::prop_assert_eq!(LIVE.load(Ordering::SeqCst), 0);
        }
    }
}
