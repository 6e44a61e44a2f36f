//! What a program can watch: an [`Observer`] installed once per process ([`set_observer`])
//! hears of calls starting and ending, the progress of long ones, profiles and plan changes.
//! Dependency-free; the `progress` feature's bars are built on it.
//!
//! With no observer installed the hot path pays one relaxed load; with one, every call takes
//! the routed path and is timed. Progress bars alone watch only the calls that may need one.

use crate::cause::Cause;
use crate::model::Plan;
use crate::units::PerItem;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Hears what the runtime does. Every method does nothing unless overridden; they run on the
/// thread that makes the call (progress also on pool threads), so keep them short.
///
/// ```
/// use amorsize_core::{map, observe, set_observer, Observer, Site};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// struct Count(AtomicUsize);
/// impl Observer for Count {
///     fn call_ended(&self, _: &observe::CallEnd) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// static CALLS: Count = Count(AtomicUsize::new(0));
/// static SITE: Site = Site::new("observed");
///
/// set_observer(&CALLS).unwrap();
/// map(&SITE, 0..100u64, |x| x + 1);
/// assert!(CALLS.0.load(Ordering::Relaxed) >= 1);
/// ```
pub trait Observer: Send + Sync {
    /// A call of `n` items is starting.
    fn call_started(&self, _call: &CallStart) {}
    /// A call has finished `done` of its items (sent per piece or block, not per item).
    fn progress(&self, _progress: &Progress) {}
    /// A call has ended: returned, failed (fallible calls) or panicked.
    fn call_ended(&self, _call: &CallEnd) {}
    /// A site's first call (or a long call after a short one) timed its head.
    fn profiled(&self, _profiled: &Profiled) {}
    /// A site's plan for calls of about this length changed: loop to parallel or back,
    /// another thread count, or another cause (a first plan for such calls counts as a
    /// change; a piece length that follows the call's length does not). Lengths within a
    /// factor of 8 are compared (1-7, 8-63, 64-511 items…), so that a site called with
    /// small and large batches in turn, a loop for one and parallel for the other, reports
    /// each once, not at every call. Only calls long enough to be planned are: calls below
    /// the break-even point, and calls in a pool of one thread (which can only loop), run
    /// the loop without a plan.
    fn plan_changed(&self, _change: &PlanChange) {}
}

impl<O: Observer + ?Sized> Observer for &'static O {
    fn call_started(&self, call: &CallStart) {
        (**self).call_started(call);
    }
    fn progress(&self, progress: &Progress) {
        (**self).progress(progress);
    }
    fn call_ended(&self, call: &CallEnd) {
        (**self).call_ended(call);
    }
    fn profiled(&self, profiled: &Profiled) {
        (**self).profiled(profiled);
    }
    fn plan_changed(&self, change: &PlanChange) {
        (**self).plan_changed(change);
    }
}

/// A call starting.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct CallStart {
    /// Numbers the call within the process, for matching its progress and end.
    pub call: u64,
    /// The site's name.
    pub site: &'static str,
    /// Its items.
    pub n: usize,
    /// How long the call is predicted to take as a loop (from the learned cost); `None` for
    /// a site that has not measured its cost yet.
    pub predicted: Option<Duration>,
}

/// A call's progress.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Progress {
    /// The call, as numbered in [`CallStart`].
    pub call: u64,
    /// The site's name.
    pub site: &'static str,
    /// Items finished so far.
    pub done: usize,
    /// The call's items.
    pub n: usize,
    /// Time since the call started.
    pub elapsed: Duration,
    /// How long the call is predicted to take as a loop, once known (a first call knows
    /// after profiling its head).
    pub predicted: Option<Duration>,
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum Ending {
    /// Every item ran.
    Done,
    /// A fallible call stopped at a failure.
    Failed,
    /// The function panicked (the panic goes on to the caller).
    Panicked,
    /// Nobody waits for the result any more: an async call's future was dropped before it
    /// completed, and no item started after that.
    Cancelled,
}

/// A call ending.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct CallEnd {
    /// The call, as numbered in [`CallStart`].
    pub call: u64,
    /// The site's name.
    pub site: &'static str,
    /// Its items.
    pub n: usize,
    /// The plan it ran (for a first call, its rest's plan), when one was made.
    pub plan: Option<Plan>,
    /// Its wall time.
    pub elapsed: Duration,
    /// How it ended.
    pub ending: Ending,
}

/// A head profiled.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Profiled {
    /// The site's name.
    pub site: &'static str,
    /// The measured cost of one item in a loop.
    #[cfg_attr(feature = "serde", serde(rename = "per_item_ns"))]
    pub per_item: PerItem,
    /// Whether it came from well-timed blocks (else from a call too short to time well).
    pub well_timed: bool,
}

/// A site's plan changed.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PlanChange {
    /// The site's name.
    pub site: &'static str,
    /// The length of the call planned.
    pub n: usize,
    /// The new plan.
    pub plan: Plan,
    /// What decided it.
    pub cause: Cause,
    /// The site's previous plan for calls of about this length, if it had one.
    pub previous: Option<Plan>,
    /// What decided that one.
    pub previous_cause: Option<Cause>,
    /// The model's predicted speedup over the loop for the new plan.
    pub predicted_speedup: f64,
}

/// [`set_observer`] was called before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObserverAlreadySet;

impl std::fmt::Display for ObserverAlreadySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an amorsize observer is installed already; it can be set once per process")
    }
}

impl std::error::Error for ObserverAlreadySet {}

static OBSERVER: OnceLock<Box<dyn Observer>> = OnceLock::new();

/// Set once an observer is installed: the hot path's one relaxed load.
static OBSERVED: AtomicBool = AtomicBool::new(false);

/// Numbers observed calls.
static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// Installs `observer` for the rest of the process. Once: a second call returns
/// [`ObserverAlreadySet`] and changes nothing.
pub fn set_observer(observer: impl Observer + 'static) -> Result<(), ObserverAlreadySet> {
    OBSERVER
        .set(Box::new(observer))
        .map_err(|_| ObserverAlreadySet)?;
    OBSERVED.store(true, Ordering::Relaxed);
    Ok(())
}

/// `true` once an observer is installed.
#[inline(always)]
fn observed() -> bool {
    OBSERVED.load(Ordering::Relaxed)
}

/// Calls `event` on every listener: the installed observer and the progress bars.
fn each(event: impl Fn(&dyn Observer)) {
    if let Some(observer) = OBSERVER.get() {
        event(observer.as_ref());
    }
    if let Some(bars) = crate::progress::bars() {
        event(bars);
    }
}

/// Whether every call is watched, short ones included: an observer is installed, or (with
/// the `tracing` feature) a subscriber wants the runtime's call spans. The hot path's check:
/// without the `tracing` feature, one relaxed load. Progress bars alone do not watch every
/// call (see [`watch`]).
#[inline(always)]
pub(crate) fn watching() -> bool {
    observed() || tracing_wants_spans()
}

#[cfg(feature = "tracing")]
#[inline(always)]
fn tracing_wants_spans() -> bool {
    tracing::enabled!(target: "amorsize", tracing::Level::DEBUG)
}

#[cfg(not(feature = "tracing"))]
#[inline(always)]
fn tracing_wants_spans() -> bool {
    false
}

/// Starts watching a routed call of `n` items of `site`, if anything listens: every call
/// when [`watching`]; with progress bars alone, only a call that may be long enough for a
/// bar (its cost not known yet, or predicted to take a bar's worth as a loop), so that bars
/// cost the many short calls of a program nothing.
#[inline]
pub(crate) fn watch(site: &crate::Site, n: usize) -> Option<Watch> {
    if watching() {
        return Some(Watch::start(site, n, predicted(site, n)));
    }
    crate::progress::bars()?;
    let predicted = predicted(site, n);
    predicted
        .map_or(true, |p| p >= crate::progress::BAR_FROM)
        .then(|| Watch::start(site, n, predicted))
}

/// How long a call of `n` items of `site` is predicted to take as a loop, if known.
fn predicted(site: &crate::Site, n: usize) -> Option<Duration> {
    site.planning_costs()
        .map(|costs| costs.serial.work(n))
        .filter(|d| !d.is_zero())
}

/// Calls predicted to take at least this long as a loop report their progress in
/// [`LOOP_STEPS`] steps when they run as one; shorter loops report once, at their end.
pub(crate) const STEPPED_FROM: Duration = Duration::from_millis(50);
/// How many progress steps a long loop is cut into (each one clock read and an event).
pub(crate) const LOOP_STEPS: usize = 64;

/// One observed call in flight: numbers it, tracks its progress, and reports its end (also
/// when it unwinds, as `Panicked`, or is dropped unfinished, as `Cancelled`). With the
/// `tracing` feature it holds the call's span.
pub(crate) struct Watch {
    call: u64,
    site: &'static str,
    n: usize,
    start: Instant,
    done: AtomicUsize,
    /// Predicted loop time (nanoseconds), 0 while unknown.
    predicted_ns: AtomicU64,
    plan: std::sync::Mutex<Option<Plan>>,
    ending: AtomicU8,
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

const DONE: u8 = 0;
const FAILED: u8 = 1;
const CANCELLED: u8 = 2;
/// Not finished: dropped while its thread unwinds (a panic), or else abandoned (an async
/// call's future dropped before the call went on).
const UNFINISHED: u8 = 3;

impl Watch {
    /// Starts watching a call of `n` items.
    #[cold]
    #[inline(never)]
    fn start(site: &crate::Site, n: usize, predicted: Option<Duration>) -> Watch {
        let call = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
        let name = site.name();
        let event = CallStart {
            call,
            site: name,
            n,
            predicted,
        };
        each(|o| o.call_started(&event));
        Watch {
            call,
            site: name,
            n,
            start: Instant::now(),
            done: AtomicUsize::new(0),
            predicted_ns: AtomicU64::new(predicted.map_or(0, |d| d.as_nanos() as u64)),
            plan: std::sync::Mutex::new(None),
            ending: AtomicU8::new(UNFINISHED),
            #[cfg(feature = "tracing")]
            span: tracing::debug_span!(
                target: "amorsize",
                "amorsize",
                function = name,
                n,
                plan = tracing::field::Empty
            ),
        }
    }

    /// Enters the call's span (with the `tracing` feature) until the guard drops.
    #[cfg(feature = "tracing")]
    pub(crate) fn enter(&self) -> tracing::span::Entered<'_> {
        self.span.enter()
    }

    /// Without the `tracing` feature there is no span to enter.
    #[cfg(not(feature = "tracing"))]
    pub(crate) fn enter(&self) {}

    /// The prediction for the whole call, once a profile has made one from `per_item`.
    pub(crate) fn predict(&self, per_item: PerItem) {
        let ns = per_item
            .work(self.n)
            .as_nanos()
            .clamp(1, u128::from(u64::MAX)) as u64;
        self.predicted_ns.store(ns, Ordering::Relaxed);
    }

    fn predicted(&self) -> Option<Duration> {
        match self.predicted_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// How many items each progress step of a loop over `len` of the call's items runs:
    /// all of them unless the loop is predicted to take [`STEPPED_FROM`] or more.
    pub(crate) fn loop_step(&self, len: usize) -> usize {
        let long = self.predicted().is_some_and(|whole| {
            whole.as_secs_f64() * len as f64 >= STEPPED_FROM.as_secs_f64() * self.n as f64
        });
        if long {
            len.div_ceil(LOOP_STEPS).max(1)
        } else {
            len.max(1)
        }
    }

    /// `items` more are finished.
    pub(crate) fn advance(&self, items: usize) {
        let done = self.done.fetch_add(items, Ordering::Relaxed) + items;
        let event = Progress {
            call: self.call,
            site: self.site,
            done,
            n: self.n,
            elapsed: self.start.elapsed(),
            predicted: self.predicted(),
        };
        each(|o| o.progress(&event));
    }

    /// The plan the call runs (for a call that re-plans, the latest).
    pub(crate) fn ran(&self, plan: Plan) {
        *crate::lock(&self.plan) = Some(plan);
        #[cfg(feature = "tracing")]
        self.span.record("plan", tracing::field::debug(plan));
    }

    /// The call returned (`failed` for a fallible call that stopped; `cancelled` if it
    /// stopped because its future was dropped).
    pub(crate) fn finish(&self, failed: bool, cancelled: bool) {
        let ending = match (failed, cancelled) {
            (false, _) => DONE,
            (true, false) => FAILED,
            (true, true) => CANCELLED,
        };
        self.ending.store(ending, Ordering::Relaxed);
    }
}

/// Advances `watch`, if there is one, by `items`.
#[inline]
pub(crate) fn advance(watch: Option<&Watch>, items: usize) {
    if let Some(watch) = watch {
        watch.advance(items);
    }
}

/// Runs a loop over `len` items of a watched call in progress steps: `run` runs one step's
/// items and returns its time (nanoseconds) and whether to go on. Returns the summed time and
/// whether every step ran. Unwatched, or predicted short, it is one step.
pub(crate) fn in_steps<P: rayon::iter::plumbing::Producer>(
    producer: P,
    len: usize,
    watch: Option<&Watch>,
    mut run: impl FnMut(P) -> (u64, bool),
) -> (u64, bool) {
    let step = watch.map_or(len.max(1), |w| w.loop_step(len));
    let mut total_ns = 0u64;
    let mut left = len;
    let mut rest = Some(producer);
    while let Some(producer) = rest.take() {
        let (piece, size) = if left > step {
            let (piece, tail) = producer.split_at(step);
            rest = Some(tail);
            (piece, step)
        } else {
            (producer, left)
        };
        let (ns, go_on) = run(piece);
        total_ns = total_ns.saturating_add(ns);
        if !go_on {
            return (total_ns, false);
        }
        left -= size;
        advance(watch, size);
    }
    (total_ns, true)
}

impl Drop for Watch {
    fn drop(&mut self) {
        let ending = match self.ending.load(Ordering::Relaxed) {
            DONE => Ending::Done,
            FAILED => Ending::Failed,
            CANCELLED => Ending::Cancelled,
            _ if std::thread::panicking() => Ending::Panicked,
            _ => Ending::Cancelled,
        };
        let event = CallEnd {
            call: self.call,
            site: self.site,
            n: self.n,
            plan: *crate::lock(&self.plan),
            elapsed: self.start.elapsed(),
            ending,
        };
        each(|o| o.call_ended(&event));
    }
}

/// Reports a profile.
#[cold]
pub(crate) fn profiled(site: &'static str, per_item: PerItem, well_timed: bool) {
    if !observed() {
        return;
    }
    let event = Profiled {
        site,
        per_item,
        well_timed,
    };
    each(|o| o.profiled(&event));
}

/// Whether a plan differs from the one before in what a reader cares about: loop or
/// parallel, how many threads, or why. A parallel plan whose piece length follows the call's
/// length is the same plan.
fn differs(plan: Plan, cause: Cause, previous: Option<(Plan, Cause)>) -> bool {
    let Some((before, before_cause)) = previous else {
        return true;
    };
    let threads = |plan: Plan| match plan {
        Plan::Serial => 0,
        Plan::Parallel { threads, .. } => threads,
    };
    threads(plan) != threads(before)
        || std::mem::discriminant(&cause) != std::mem::discriminant(&before_cause)
}

/// Reports a plan, if it [`differs`] from the site's previous one.
#[cold]
pub(crate) fn planned(
    site: &'static str,
    n: usize,
    plan: Plan,
    cause: Cause,
    predicted_speedup: f64,
    previous: Option<(Plan, Cause)>,
) {
    if !observed() || !differs(plan, cause, previous) {
        return;
    }
    let event = PlanChange {
        site,
        n,
        plan,
        previous: previous.map(|(plan, _)| plan),
        previous_cause: previous.map(|(_, cause)| cause),
        cause,
        predicted_speedup,
    };
    each(|o| o.plan_changed(&event));
}
