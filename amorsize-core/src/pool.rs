//! The facts of each rayon pool a call runs in: how many threads it can keep busy, what going
//! parallel costs there, and the break-even work below which no call can go parallel.
//!
//! A call runs in the pool of the thread that makes it: inside `pool.install(..)` (or on any
//! worker of a pool) that pool, anywhere else rayon's global pool. rayon exposes no identity
//! for a pool, only its size, so the facts are kept per pool size: pools of the same size on
//! the same machine share them. A thread's pool never changes (a worker belongs to one pool
//! for life, and any other thread calls into the global pool), so each thread caches its
//! pool in a thread-local, and the hot path reads the break-even point with a thread-local
//! read and one atomic load.
//!
//! Each pool's figures are measured on first need (a call whose work is under the floor of
//! any pool's break-even point, [`FLOOR_LIMIT_PS`], needs none), in about 0.3 ms, never
//! blocking anyone: callers that arrive meanwhile get provisional figures. The overhead after
//! idling needs idle pauses (about a millisecond), so it is measured next on a thread of its
//! own, skipping any sample the program's own parallel calls ran beside: plans use the
//! awake overhead, and the one after idling is for reports. The figures are refined by its own
//! parallel calls, and measured again a few times with backoff: a measurement taken while
//! other threads loaded the machine must not fix a wrong figure for ever, and a figure too
//! high keeps calls serial, so no parallel call would ever correct it.
//!
//! Every figure and the break-even point derived from it change together, under the pool's
//! lock: a break-even point never outlives the figures it came from.

use crate::model::{serial_work_limit_ps, Machine, MAX_PIECES_PER_THREAD, MIN_SPEEDUP};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Used by calls that arrive while a pool is first being measured (including calls nested
/// inside the measurement): a typical wake-and-join cost for a small pool, so those calls
/// lean serial.
const PROVISIONAL_OVERHEAD_NS: f64 = 20_000.0;
const PROVISIONAL_PER_PIECE_NS: f64 = 500.0;

/// Samples per measured configuration; the median is kept.
const SAMPLES: usize = 7;
/// Pause that lets rayon's workers fall asleep, so the cold samples see a wake-up.
pub(crate) const IDLE_PAUSE: Duration = Duration::from_micros(150);
/// Cold (after idle) samples; the median is kept.
const COLD_SAMPLES: usize = 3;
/// Idle pauses tried for those samples, at most: a dozen back to back, then the rest
/// [`COLD_RETRY_AFTER`] apart (about a second in all).
const COLD_ATTEMPTS: usize = 4 * COLD_SAMPLES + 100;
/// The wait between attempts once a dozen found the pool busy.
const COLD_RETRY_AFTER: Duration = Duration::from_millis(10);
/// The longest [`machine`] waits for the overhead after idling to be measured.
const COLD_WAIT: Duration = Duration::from_millis(50);

/// A pool unused for this long is planned for as cold: its workers sleep, and on virtual
/// machines their cores may be halted (measured on the 2-core development VM: a join of two
/// 500 µs halves took 526 µs back to back, 1114 µs after 2 ms of serial work).
pub(crate) const COLD_AFTER: Duration = Duration::from_millis(1);

/// A learned overhead never drops below this: no fork-join is free.
const MIN_OVERHEAD_NS: f64 = 1_000.0;
/// Each sample moves a learned overhead by this factor, up or down.
const OVERHEAD_STEP: f64 = 1.0625;

/// After the first measurement, a pool is measured again this long after it (hot samples
/// only, about 0.1 ms of the planning call's time each): three times in a process's life.
const REMEASURE_AFTER: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(10),
];
/// A re-measurement replaces the figures only when it finds going parallel at least this
/// much cheaper: the figures refined by real calls are better than one on empty work, unless
/// they are clearly inflated (measured under load).
const REMEASURE_DROP: f64 = 1.5;

/// The facts of the pools of one size.
#[derive(Debug)]
pub(crate) struct Pool {
    /// rayon's thread count for the pool.
    size: usize,
    /// The break-even total work (picoseconds) below which no call can go parallel here;
    /// 0 while the pool is not measured (no call is then below it), `u64::MAX` for a pool
    /// with one usable thread.
    serial_limit_ps: AtomicU64,
    /// When a parallel call last finished here, in nanoseconds since [`epoch`]; 0 for never.
    last_used_ns: AtomicU64,
    /// Taken by the thread measuring the pool, so that nobody waits for it.
    measuring: AtomicBool,
    /// Set while the overhead after idling is being measured on a thread of its own.
    cold_pending: AtomicBool,
    /// Parallel calls running here now (see [`Pool::parallel_running`]), which that
    /// measurement must not run beside.
    parallel_calls: AtomicUsize,
    /// Planned calls running in the pool now (parallel ones, and loops long enough to have
    /// been planned): a call planned while others run plans for its share of the threads.
    long_calls: AtomicUsize,
    /// Async calls running here now: a thread running calls in slices counts once, an async
    /// call's pool job from when it is sent until it ends. Calls they make themselves (a
    /// nested companion) do not count: what overlaps here is requests.
    async_calls: AtomicUsize,
    /// The most async calls seen running here at once lately (2 or more; see
    /// [`OVERLAPS_REMEMBERED`]), and when last (nanoseconds since [`epoch`]): when as many
    /// started or ended together.
    peak: AtomicUsize,
    peak_at_ns: AtomicU64,
    /// The threads with calls in slices counted here (see [`Slicing`]), so that one whose
    /// calls all went idle stops counting (see [`SLICES_IDLE_AFTER`]).
    slicing: Mutex<Vec<Arc<Slices>>>,
    /// When threads with idle calls in slices were last looked for, in nanoseconds since
    /// [`epoch`].
    slices_checked_ns: AtomicU64,
    figures: Mutex<Figures>,
}

/// How long a pool remembers that async calls overlapped: the most that ran at once within
/// this time is what an async call plans beside (see `dispatch::plans_loop`). A
/// service's requests that overlap leave gaps between them (a client's round trip), tens to
/// hundreds of µs; a call that lands in one and plans parallel would then take turns for
/// the cores with the next request, as measured in `examples/web_service` (see
/// docs/PERFORMANCE.md).
pub(crate) const OVERLAPS_REMEMBERED: Duration = Duration::from_millis(50);

/// A thread whose calls in slices have not run a slice for this long stops counting as
/// running in the pool until one does: their futures are idle (kept, and not polled), or
/// forgotten (`mem::forget`), and keep no core busy. A polled call runs a slice every few
/// ms at most, even on a busy executor.
const SLICES_IDLE_AFTER: Duration = Duration::from_millis(100);

/// How often planning looks for threads whose calls in slices went idle.
const SLICES_CHECKED_EVERY: Duration = Duration::from_millis(10);

/// What has been measured and learned of a pool.
#[derive(Clone, Copy, Debug)]
struct Figures {
    /// `None` until the first measurement completes.
    machine: Option<Machine>,
    /// When the first measurement completed, in nanoseconds since [`epoch`].
    measured_at_ns: u64,
    /// Re-measurements done so far.
    remeasured: usize,
    /// Whether the overhead after idling has been measured; until then the figures hold the
    /// hot overhead in its place.
    cold_measured: bool,
}

/// Stands for a thread's pool until it is resolved: its break-even point is 0 ("unknown"),
/// so the hot path needs no test for it.
static UNRESOLVED: Pool = Pool::new(0);

thread_local! {
    /// The calling thread's pool, once resolved ([`UNRESOLVED`] until then).
    static HERE: Cell<&'static Pool> = const { Cell::new(&UNRESOLVED) };
}

/// Every pool size seen, each with its facts (leaked: a process has very few).
static POOLS: Mutex<Vec<&'static Pool>> = Mutex::new(Vec::new());

/// The CPUs this process may use, asked once: on Linux the answer reads cgroup files
/// (50-110 µs per call on the development VM).
static CPUS: OnceLock<usize> = OnceLock::new();

fn cpus() -> usize {
    *CPUS.get_or_init(|| {
        std::thread::available_parallelism().map_or(usize::MAX, std::num::NonZeroUsize::get)
    })
}

/// The pool the calling thread's calls run in.
pub(crate) fn here() -> &'static Pool {
    let pool = HERE.with(Cell::get);
    if std::ptr::eq(pool, &UNRESOLVED) {
        resolve_here()
    } else {
        pool
    }
}

/// The calling thread's pool if it has been resolved already: a short first call labels its
/// decision without paying for the lookup.
pub(crate) fn known_here() -> Option<&'static Pool> {
    let pool = HERE.with(Cell::get);
    (!std::ptr::eq(pool, &UNRESOLVED)).then_some(pool)
}

/// The break-even total work (picoseconds) of the calling thread's pool; 0 while that is not
/// known (no call is then below it, and the call takes the routed path).
#[inline(always)]
pub(crate) fn known_serial_limit_here_ps() -> u64 {
    HERE.with(Cell::get)
        .serial_limit_ps
        .load(Ordering::Relaxed)
        .max(FLOOR_LIMIT_PS)
}

/// The break-even point of the cheapest pool there can be (a fork-join costs at least
/// [`MIN_OVERHEAD_NS`]): a call with less work than this is a loop whatever the pool's
/// figures, so it needs no measurement to plan, and takes the short-call path before the
/// pool is measured.
pub(crate) const FLOOR_LIMIT_PS: u64 = (MIN_OVERHEAD_NS * MIN_SPEEDUP * 1000.0) as u64;

#[cold]
fn resolve_here() -> &'static Pool {
    let pool = of_size(rayon::current_num_threads());
    HERE.with(|here| here.set(pool));
    pool
}

fn of_size(size: usize) -> &'static Pool {
    let mut pools = crate::lock(&POOLS);
    if let Some(pool) = pools.iter().find(|p| p.size == size) {
        return pool;
    }
    let pool: &'static Pool = Box::leak(Box::new(Pool::new(size)));
    pools.push(pool);
    pool
}

/// The facts of the calling thread's pool: measured on first use (never blocking: a thread
/// that asks while another measures gets provisional figures), then refined by the program's
/// own parallel calls.
///
/// The cost of going parallel after the pool idled is measured just after the others, on a
/// thread of its own; called outside the pool, this waits for it (a millisecond or so, at
/// most 50 ms). Until it is measured, [`Machine::cold_overhead_ns`] holds the awake cost.
///
/// A call inside `pool.install(..)` gets that pool's facts; elsewhere, those of rayon's
/// global pool.
pub fn machine() -> Machine {
    let pool = here();
    pool.machine();
    // Not on a pool's worker: the measurement needs the workers, and one that waits here
    // would only hold it up.
    if rayon::current_thread_index().is_none() {
        pool.wait_for_cold();
    }
    pool.machine()
}

/// The calling thread's pool, once its figures are measured (by this thread, or by another
/// that got there first): a test whose calls must see the short-call limit.
#[cfg(test)]
pub(crate) fn measured_here() -> &'static Pool {
    let pool = here();
    while pool.measured().is_none() {
        pool.machine();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    pool
}

/// The facts of the calling thread's pool as far as they are known, without measuring: a
/// report or a short first call must not pay for a measurement.
pub(crate) fn machine_if_known() -> Machine {
    match known_here() {
        Some(pool) => pool.known_machine(),
        None => provisional_machine(rayon::current_num_threads()),
    }
}

/// The facts of the calling thread's pool as far as they are known, whether they were
/// measured (not stand-ins), and whether the overhead after idling was: what a report
/// shows. Resolves the thread's pool (cheap), so that a thread that made no call of its
/// own, such as one whose calls all ran on the pool's workers, still sees the figures those
/// calls measured; never measures.
pub(crate) fn machine_if_known_and_measured() -> (Machine, bool, bool) {
    let pool = here();
    let figures = *crate::lock(&pool.figures);
    match figures.machine {
        Some(m) => (m, true, figures.cold_measured),
        None => (pool.known_machine(), false, false),
    }
}

/// Stand-in figures for a pool of `size` threads until it is measured. Cheap: the CPU count
/// is used only if already known.
pub(crate) fn provisional_machine(size: usize) -> Machine {
    Machine {
        threads: size.min(CPUS.get().copied().unwrap_or(usize::MAX)),
        overhead_ns: PROVISIONAL_OVERHEAD_NS,
        cold_overhead_ns: PROVISIONAL_OVERHEAD_NS,
        per_piece_ns: PROVISIONAL_PER_PIECE_NS,
    }
}

/// Whether `m` holds the stand-in figures of [`provisional_machine`]: a measured pool
/// never has exactly both of them.
pub(crate) fn is_provisional(m: &Machine) -> bool {
    m.overhead_ns == PROVISIONAL_OVERHEAD_NS && m.per_piece_ns == PROVISIONAL_PER_PIECE_NS
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos().clamp(1, u64::MAX as u128) as u64
}

impl Pool {
    const fn new(size: usize) -> Pool {
        Pool {
            size,
            serial_limit_ps: AtomicU64::new(0),
            last_used_ns: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
            cold_pending: AtomicBool::new(false),
            parallel_calls: AtomicUsize::new(0),
            long_calls: AtomicUsize::new(0),
            async_calls: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            peak_at_ns: AtomicU64::new(0),
            slicing: Mutex::new(Vec::new()),
            slices_checked_ns: AtomicU64::new(0),
            figures: Mutex::new(Figures {
                machine: None,
                measured_at_ns: 0,
                remeasured: 0,
                cold_measured: false,
            }),
        }
    }

    /// The threads a parallel call here can keep busy: the pool's size capped at the CPUs
    /// this process may use, as a pool larger than the machine only takes turns.
    fn threads(&self) -> usize {
        self.size.min(cpus())
    }

    /// The figures, measuring them first if nobody has (never blocking).
    pub(crate) fn machine(&'static self) -> Machine {
        match self.measured() {
            Some(m) => m,
            None => self.measure_first(),
        }
    }

    /// The figures if they have been measured.
    pub(crate) fn measured(&self) -> Option<Machine> {
        crate::lock(&self.figures).machine
    }

    fn provisional(&self) -> Machine {
        provisional_machine(self.size)
    }

    /// The figures if measured, else provisional ones; never measures.
    pub(crate) fn known_machine(&self) -> Machine {
        self.measured().unwrap_or_else(|| self.provisional())
    }

    /// The figures as a call starting now will find the pool, and whether the pool has been
    /// idle for [`COLD_AFTER`]. Reads the clock, and re-measures the pool when that is due:
    /// cold path, for calls long enough to be planned.
    ///
    /// Every call plans with the overhead of an awake pool: its own thread works from the
    /// start and never waits for a helper that has not woken (see `with_caller`), so an idle
    /// pool can make it no slower than its loop. Whether the pool was idle only says which
    /// overhead the call's outcome refines.
    pub(crate) fn for_call(&'static self) -> (Machine, bool) {
        let figures = *crate::lock(&self.figures);
        let m = match figures.machine {
            Some(m)
                if m.threads >= 2
                    && remeasure_due(figures.measured_at_ns, figures.remeasured, now_ns()) =>
            {
                self.remeasure().unwrap_or(m)
            }
            Some(m) => m,
            None => self.measure_first(),
        };
        (m, self.idle() >= COLD_AFTER)
    }

    /// Counts a parallel call as running here until the returned guard drops (however the
    /// call ends): the overhead after idling is not measured meanwhile.
    pub(crate) fn parallel_running(&'static self) -> ParallelCall {
        self.parallel_calls.fetch_add(1, Ordering::Relaxed);
        ParallelCall(self)
    }

    /// Whether the pool has run no parallel call for `pause` and runs none now.
    pub(crate) fn idle_for(&self, pause: Duration) -> bool {
        self.parallel_calls.load(Ordering::Relaxed) == 0
            && self.long_calls.load(Ordering::Relaxed) == 0
            && self.idle() >= pause
    }

    /// Counts a planned call as running here until the returned guard drops (however the
    /// call ends).
    pub(crate) fn enter(&'static self) -> LongCall {
        self.long_calls.fetch_add(1, Ordering::Relaxed);
        LongCall(self)
    }

    /// Counts an async call's pool job as running here, for the overlaps of async calls,
    /// until the returned guard drops.
    pub(crate) fn async_job(&'static self) -> AsyncJob {
        self.async_in();
        AsyncJob(self)
    }

    /// Counts one more async call running here, and remembers when they overlap.
    fn async_in(&self) {
        let running = self.async_calls.fetch_add(1, Ordering::Relaxed) + 1;
        if running >= 2 {
            self.overlapped(running, now_ns());
        }
    }

    /// Counts one async call fewer running here; calls that overlapped until now are
    /// remembered from now.
    fn async_out(&self) {
        let running = self.async_calls.fetch_sub(1, Ordering::Relaxed);
        if running >= 2 {
            self.overlapped(running, now_ns());
        }
    }

    /// Remembers that `running` async calls ran at once at `now_ns`: the new peak if it is
    /// one (or matches it), or if the last one is forgotten.
    fn overlapped(&self, running: usize, now_ns: u64) {
        let forgotten = self.recent_peak_at(now_ns) == 0;
        if forgotten || running >= self.peak.load(Ordering::Relaxed) {
            self.peak.store(running, Ordering::Relaxed);
            self.peak_at_ns.store(now_ns, Ordering::Relaxed);
        }
    }

    /// The most async calls that ran here at once within [`OVERLAPS_REMEMBERED`], if two or
    /// more did; else 0.
    pub(crate) fn recent_peak(&self) -> usize {
        self.recent_peak_at(now_ns())
    }

    fn recent_peak_at(&self, now_ns: u64) -> usize {
        let at = self.peak_at_ns.load(Ordering::Relaxed);
        if at == 0 || now_ns.saturating_sub(at) > OVERLAPS_REMEMBERED.as_nanos() as u64 {
            return 0;
        }
        self.peak.load(Ordering::Relaxed)
    }

    /// Planned calls running here now.
    pub(crate) fn long_calls(&self) -> usize {
        self.expire_idle_slices();
        self.long_calls.load(Ordering::Relaxed)
    }

    /// Stops counting the threads whose calls in slices have not run a slice for
    /// [`SLICES_IDLE_AFTER`]; looks at most once per [`SLICES_CHECKED_EVERY`].
    fn expire_idle_slices(&self) {
        self.expire_idle_slices_at(now_ns());
    }

    fn expire_idle_slices_at(&self, now: u64) {
        let checked = self.slices_checked_ns.load(Ordering::Relaxed);
        if now.saturating_sub(checked) < SLICES_CHECKED_EVERY.as_nanos() as u64
            || self
                .slices_checked_ns
                .compare_exchange(checked, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let idle_after = SLICES_IDLE_AFTER.as_nanos() as u64;
        for thread in crate::lock(&self.slicing).iter() {
            if now.saturating_sub(thread.last_ns.load(Ordering::Relaxed)) > idle_after {
                thread.count_out(self);
            }
        }
    }

    /// Whether fewer planned calls run here now than the pool's threads (capped at the
    /// CPUs): a thread, and a core, are free for one more.
    pub(crate) fn has_room(&self) -> bool {
        self.long_calls() < self.threads()
    }

    /// How long since a parallel call last finished here (forever if none has).
    fn idle(&self) -> Duration {
        match self.last_used_ns.load(Ordering::Relaxed) {
            0 => Duration::MAX,
            last => Duration::from_nanos(now_ns().saturating_sub(last)),
        }
    }

    /// Records that a parallel call just finished: the pool is awake.
    pub(crate) fn note_used(&self) {
        self.last_used_ns.store(now_ns(), Ordering::Relaxed);
    }

    /// The break-even total work (picoseconds) below which no call can go parallel here,
    /// from the figures known now (provisional ones while the pool is being measured; those
    /// are not cached).
    pub(crate) fn serial_limit_ps(&'static self) -> u64 {
        match self.serial_limit_ps.load(Ordering::Relaxed) {
            0 => limit_for(&self.machine()),
            limit => limit,
        }
    }

    /// The break-even point as far as it is known, without measuring: from provisional
    /// figures while the pool is not measured.
    pub(crate) fn known_serial_limit_ps(&self) -> u64 {
        match self.serial_limit_ps.load(Ordering::Relaxed) {
            0 => limit_for(&self.known_machine()),
            limit => limit,
        }
    }

    /// Refines the hot or the cold overhead with what a parallel call paid beyond its pieces'
    /// work.
    ///
    /// The estimate steps a fixed factor toward each sample, which converges on the samples'
    /// median: a few calls that pay milliseconds (a descheduled worker) do not drag it up.
    #[cold]
    pub(crate) fn observe_overhead(&self, sample_ns: f64, cold: bool) {
        if !sample_ns.is_finite() {
            return;
        }
        let mut figures = crate::lock(&self.figures);
        let Some(mut m) = figures.machine else {
            return;
        };
        if m.threads < 2 {
            return;
        }
        if cold && !figures.cold_measured {
            // The first the pool has seen after idling: what that call paid.
            m.cold_overhead_ns = sample_ns.max(m.overhead_ns);
            figures.cold_measured = true;
        } else {
            let current = if cold {
                &mut m.cold_overhead_ns
            } else {
                &mut m.overhead_ns
            };
            *current = step_toward(*current, sample_ns);
        }
        self.publish(&mut figures, m);
    }

    /// Stores new figures and the break-even point that follows from them, together.
    fn publish(&self, figures: &mut Figures, m: Machine) {
        figures.machine = Some(m);
        self.serial_limit_ps.store(limit_for(&m), Ordering::Relaxed);
    }

    #[cold]
    fn measure_first(&'static self) -> Machine {
        if self
            .measuring
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return self.measured().unwrap_or_else(|| self.provisional());
        }
        let measured = measure(self.threads());
        // Set before the figures are published, so that whoever sees them waits for it.
        let cold_later = measured.threads >= 2;
        self.cold_pending.store(cold_later, Ordering::Release);
        log::debug!(
            target: "amorsize",
            "pool of {} threads: {} usable, {:.0} ns to go parallel, {:.0} ns per extra piece",
            self.size,
            measured.threads,
            measured.overhead_ns,
            measured.per_piece_ns
        );
        let mut figures = crate::lock(&self.figures);
        figures.measured_at_ns = now_ns();
        figures.cold_measured = !cold_later;
        self.publish(&mut figures, measured);
        drop(figures);
        self.note_used();
        self.measuring.store(false, Ordering::Release);
        if cold_later {
            self.measure_cold_later();
        }
        measured
    }

    /// Measures the overhead after idling, which needs idle pauses (about 1 ms in all), on a
    /// thread of its own, so that the call that needed the figures does not wait for it:
    /// calls plan with the hot overhead, and the cold one is for reports. A pool's own
    /// worker (a call inside `pool.install(..)`, whose pool another thread could not reach)
    /// measures it where it is, as does a thread that cannot start another.
    fn measure_cold_later(&'static self) {
        let threads = self.threads();
        if rayon::current_thread_index().is_some() {
            self.publish_cold(Some(measure_cold_here(threads)));
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("amorsize-idle-cost".into())
            .spawn(move || self.publish_cold(measure_cold(self, threads)));
        if spawned.is_err() {
            self.publish_cold(Some(measure_cold_here(threads)));
        }
    }

    /// Stores the overhead after idling, when it could be measured, and ends the wait for it.
    fn publish_cold(&self, cold_ns: Option<f64>) {
        let mut figures = crate::lock(&self.figures);
        if let (Some(cold_ns), Some(mut m)) = (cold_ns, figures.machine) {
            m.cold_overhead_ns = cold_ns.max(m.overhead_ns);
            log::debug!(
                target: "amorsize",
                "pool of {} threads: {:.0} ns to go parallel after idling",
                self.size,
                m.cold_overhead_ns
            );
            figures.cold_measured = true;
            self.publish(&mut figures, m);
        }
        drop(figures);
        self.cold_pending.store(false, Ordering::Release);
    }

    /// Waits (a millisecond or so, at most [`COLD_WAIT`]) while the overhead after idling is
    /// being measured: what [`machine`] returns is then complete.
    fn wait_for_cold(&self) {
        let start = Instant::now();
        while self.cold_pending.load(Ordering::Acquire) && start.elapsed() < COLD_WAIT {
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Measures the hot overhead again and keeps it if it is clearly lower; `None` when
    /// another thread is measuring.
    #[cold]
    fn remeasure(&self) -> Option<Machine> {
        if self
            .measuring
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return None;
        }
        let fresh_ns = measure_hot(self.threads());
        let mut figures = crate::lock(&self.figures);
        figures.remeasured += 1;
        let current = figures.machine?;
        let merged = merge_remeasured(current, fresh_ns);
        if merged != current {
            log::debug!(
                target: "amorsize",
                "pool of {} threads measured again: going parallel costs {:.0} ns, not {:.0} ns",
                self.size,
                merged.overhead_ns,
                current.overhead_ns
            );
        }
        self.publish(&mut figures, merged);
        drop(figures);
        self.note_used();
        self.measuring.store(false, Ordering::Release);
        Some(merged)
    }

    /// Test support: the pool that calls from a rayon pool of `size` threads use, given the
    /// figures `m` (its cost after idling measured), and idle (never used) or awake (used
    /// for as long as the test runs, whatever the clock says).
    #[cfg(test)]
    pub(crate) fn registered_with_figures(size: usize, m: Machine, awake: bool) -> &'static Pool {
        let pool = of_size(size);
        let mut figures = crate::lock(&pool.figures);
        figures.measured_at_ns = now_ns();
        figures.cold_measured = true;
        pool.publish(&mut figures, m);
        drop(figures);
        let last_used = if awake { u64::MAX } else { 0 };
        pool.last_used_ns.store(last_used, Ordering::Relaxed);
        pool
    }

    /// Test support: a pool of `size` threads whose figures are `m`, as if measured at
    /// `measured_at_ns`, not registered anywhere.
    #[cfg(test)]
    pub(crate) fn with_figures(size: usize, m: Machine) -> &'static Pool {
        let pool: &'static Pool = Box::leak(Box::new(Pool::new(size)));
        let mut figures = crate::lock(&pool.figures);
        figures.measured_at_ns = now_ns();
        pool.publish(&mut figures, m);
        drop(figures);
        pool
    }
}

/// A parallel call running in a pool; counted out when dropped.
#[derive(Debug)]
pub(crate) struct ParallelCall(&'static Pool);

impl Drop for ParallelCall {
    fn drop(&mut self) {
        self.0.parallel_calls.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A planned call running in a pool; counted out when dropped.
#[derive(Debug)]
pub(crate) struct LongCall(&'static Pool);

impl Drop for LongCall {
    fn drop(&mut self) {
        self.0.long_calls.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An async call's pool job, counted among the pool's async calls until dropped.
#[derive(Debug)]
pub(crate) struct AsyncJob(&'static Pool);

impl Drop for AsyncJob {
    fn drop(&mut self) {
        self.0.async_out();
    }
}

/// The calls a thread runs in slices (async calls planned as loops, see `future`).
#[derive(Debug, Default)]
struct Slices {
    calls: AtomicUsize,
    /// Whether the thread counts as running in the pool now: from its first call until its
    /// last ends, except while they are all idle.
    counted: AtomicBool,
    /// When a slice last started on the thread, or a call did (nanoseconds since
    /// [`epoch`]).
    last_ns: AtomicU64,
}

thread_local! {
    /// The calling thread's calls run in slices.
    static SLICES: Arc<Slices> = Arc::default();
}

/// A call run in slices, counted on the thread that last ran a slice of it. However many
/// such calls a thread has, they take turns on it: the thread counts as one planned call
/// running in its pool while it has any, except while none of them has run a slice for
/// [`SLICES_IDLE_AFTER`]. Counted out when dropped, on whichever thread.
#[derive(Debug)]
pub(crate) struct Slicing {
    thread: Arc<Slices>,
    pool: &'static Pool,
}

impl Slices {
    /// One more call on `this` thread, which then counts in `pool`.
    /// (A thread's first call and its last are counted in and out under the pool's lock of
    /// its slicing threads, so that a call ending on another thread as a new one starts
    /// here leaves the thread counted.)
    fn add(this: &Arc<Slices>, pool: &Pool) {
        let mut slicing = crate::lock(&pool.slicing);
        if this.calls.fetch_add(1, Ordering::Relaxed) == 0 {
            slicing.push(Arc::clone(this));
        }
        this.touch(pool);
    }

    /// One call fewer; the thread stops counting in `pool` with its last.
    fn remove(&self, pool: &Pool) {
        let mut slicing = crate::lock(&pool.slicing);
        if self.calls.fetch_sub(1, Ordering::Relaxed) == 1 {
            slicing.retain(|thread| !std::ptr::eq(&**thread, self));
            self.count_out(pool);
        }
    }

    /// A slice (or a call) starts on the thread: it counts in `pool`, again if its calls
    /// had gone idle.
    fn touch(&self, pool: &Pool) {
        self.last_ns.store(now_ns(), Ordering::Relaxed);
        if !self.counted.load(Ordering::Relaxed) && !self.counted.swap(true, Ordering::Relaxed) {
            pool.long_calls.fetch_add(1, Ordering::Relaxed);
            pool.async_in();
        }
    }

    /// The thread stops counting in `pool`, if it counted.
    fn count_out(&self, pool: &Pool) {
        if self.counted.swap(false, Ordering::Relaxed) {
            pool.long_calls.fetch_sub(1, Ordering::Relaxed);
            pool.async_out();
        }
    }
}

impl Slicing {
    /// Counts a call run in slices on the calling thread, whose pool is `pool`.
    pub(crate) fn start(pool: &'static Pool) -> Slicing {
        let thread = SLICES.with(Arc::clone);
        Slices::add(&thread, pool);
        Slicing { thread, pool }
    }

    /// Counts the call on the calling thread from now on, if it was counted on another (an
    /// executor moved its task): a slice is about to run here.
    pub(crate) fn follow(&mut self) {
        let here = SLICES.with(|here| (!Arc::ptr_eq(here, &self.thread)).then(|| Arc::clone(here)));
        if let Some(here) = here {
            Slices::add(&here, self.pool);
            self.thread.remove(self.pool);
            self.thread = here;
        } else {
            self.thread.touch(self.pool);
        }
    }

    /// Whether the thread this call is counted on runs other calls in slices too.
    pub(crate) fn has_company(&self) -> bool {
        self.thread.calls.load(Ordering::Relaxed) > 1
    }

    /// The pool whose thread count this call's thread counts in.
    pub(crate) fn pool(&self) -> &'static Pool {
        self.pool
    }
}

impl Drop for Slicing {
    fn drop(&mut self) {
        self.thread.remove(self.pool);
    }
}

/// The threads a call can plan for when `others` planned calls already run in a pool whose
/// calls can keep `threads` busy: an even share, at least one.
pub(crate) fn share_of(threads: usize, others: usize) -> usize {
    (threads / (others + 1)).max(1)
}

/// The hot-path limit for figures `m`: computed from the hot overhead, the smaller one, so
/// that it never hides a parallel plan; at least 1 (0 means "unknown").
fn limit_for(m: &Machine) -> u64 {
    let hot = Machine {
        overhead_ns: m.overhead_ns.min(m.cold_overhead_ns),
        ..*m
    };
    serial_work_limit_ps(&hot).max(1)
}

/// One step of a learned overhead toward a sample: up or down by [`OVERHEAD_STEP`], never
/// below [`MIN_OVERHEAD_NS`].
fn step_toward(current_ns: f64, sample_ns: f64) -> f64 {
    let current_ns = current_ns.max(MIN_OVERHEAD_NS);
    if sample_ns > current_ns {
        current_ns * OVERHEAD_STEP
    } else {
        (current_ns / OVERHEAD_STEP).max(MIN_OVERHEAD_NS)
    }
}

/// Whether figures first measured at `measured_at_ns` are due for their re-measurement
/// number `done` (counting from 0) at `now_ns`.
fn remeasure_due(measured_at_ns: u64, done: usize, now_ns: u64) -> bool {
    REMEASURE_AFTER
        .get(done)
        .is_some_and(|after| now_ns.saturating_sub(measured_at_ns) >= after.as_nanos() as u64)
}

/// The figures after a re-measurement found a hot overhead of `fresh_ns`: lowered (the cold
/// one in proportion) when clearly lower, else unchanged.
fn merge_remeasured(current: Machine, fresh_ns: f64) -> Machine {
    if !(fresh_ns.is_finite() && fresh_ns * REMEASURE_DROP < current.overhead_ns) {
        return current;
    }
    let hot = fresh_ns.max(MIN_OVERHEAD_NS);
    let ratio = hot / current.overhead_ns;
    Machine {
        overhead_ns: hot,
        cold_overhead_ns: (current.cold_overhead_ns * ratio).max(hot),
        ..current
    }
}

/// Times rayon's fork-join on empty work in the calling thread's pool: `threads` pieces
/// back to back (the hot overhead) and after short idle pauses (a first guess at the cold
/// one), and `MAX_PIECES_PER_THREAD × threads` pieces (the cost of each extra piece).
fn measure(threads: usize) -> Machine {
    if threads < 2 {
        return Machine {
            threads,
            overhead_ns: 0.0,
            cold_overhead_ns: 0.0,
            per_piece_ns: 0.0,
        };
    }
    // Starts the pool's threads if this is its first parallel work.
    rayon::join(|| black_box(0), || black_box(1));

    let many = threads * MAX_PIECES_PER_THREAD;
    let mut few_ns = [0.0; SAMPLES];
    let mut many_ns = [0.0; SAMPLES];
    for i in 0..SAMPLES {
        few_ns[i] = time_empty_split(threads);
        many_ns[i] = time_empty_split(many);
    }
    let hot_ns = median(&mut few_ns).max(MIN_OVERHEAD_NS);
    let extra_pieces_per_thread = (MAX_PIECES_PER_THREAD - 1) as f64;
    let per_piece_ns = ((median(&mut many_ns) - hot_ns) / extra_pieces_per_thread).max(50.0);
    Machine {
        threads,
        overhead_ns: hot_ns,
        // In its place until `measure_cold` has run.
        cold_overhead_ns: hot_ns,
        per_piece_ns,
    }
}

/// The overhead of a split of `threads` pieces after the pool's workers have idled: the
/// median of [`COLD_SAMPLES`] splits, each after an [`IDLE_PAUSE`] in which `pool` ran no
/// parallel call (a sample the program's own calls ran beside does not count; after
/// [`COLD_ATTEMPTS`] pauses, each [`COLD_RETRY_AFTER`] longer than the last
/// [`IDLE_PAUSE`], `None` if none was idle).
fn measure_cold(pool: &Pool, threads: usize) -> Option<f64> {
    let mut samples = Vec::with_capacity(COLD_SAMPLES);
    for attempt in 0..COLD_ATTEMPTS {
        // A busy program is waited for with longer sleeps: the thread costs nothing then.
        let wait = if attempt < 4 * COLD_SAMPLES {
            Duration::ZERO
        } else {
            COLD_RETRY_AFTER
        };
        std::thread::sleep(wait + IDLE_PAUSE);
        if !pool.idle_for(IDLE_PAUSE) {
            continue;
        }
        let sample_ns = time_empty_split(threads);
        // Nothing started or ended beside it.
        if pool.idle_for(Duration::from_nanos(sample_ns as u64) + IDLE_PAUSE) {
            samples.push(sample_ns);
            if samples.len() == COLD_SAMPLES {
                break;
            }
        }
    }
    (!samples.is_empty()).then(|| median(&mut samples))
}

/// [`measure_cold`] on a thread that waits for it (a pool's worker, which may itself be
/// inside a parallel call): [`COLD_SAMPLES`] pauses, whatever else runs meanwhile, as it
/// cannot wait long.
fn measure_cold_here(threads: usize) -> f64 {
    let mut samples = [0.0; COLD_SAMPLES];
    for sample in &mut samples {
        std::thread::sleep(IDLE_PAUSE);
        *sample = time_empty_split(threads);
    }
    median(&mut samples)
}

/// The hot overhead alone (what the break-even point follows): the median of a few
/// back-to-back splits.
fn measure_hot(threads: usize) -> f64 {
    let mut few_ns = [0.0; SAMPLES];
    for sample in &mut few_ns {
        *sample = time_empty_split(threads);
    }
    median(&mut few_ns)
}

fn time_empty_split(pieces: usize) -> f64 {
    use rayon::prelude::*;
    let start = Instant::now();
    (0..pieces).into_par_iter().with_min_len(1).for_each(|i| {
        black_box(i);
    });
    start.elapsed().as_nanos() as f64
}

/// Median of a small sample (sorts it in place). NaN-free input only.
pub(crate) fn median(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 {
        samples[mid]
    } else {
        (samples[mid - 1] + samples[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_cores() -> Machine {
        Machine {
            threads: 2,
            overhead_ns: 12_000.0,
            cold_overhead_ns: 40_000.0,
            per_piece_ns: 100.0,
        }
    }

    /// Awake figures, the cost after idling standing in as the awake one.
    const HOT_ONLY: Machine = Machine {
        threads: 2,
        overhead_ns: 5_000.0,
        cold_overhead_ns: 5_000.0,
        per_piece_ns: 50.0,
    };

    /// A pool with [`HOT_ONLY`] figures, as just after its first measurement: the cost
    /// after idling awaited. No call runs in it.
    fn awaiting_cold() -> &'static Pool {
        let pool = Pool::with_figures(2, HOT_ONLY);
        crate::lock(&pool.figures).cold_measured = false;
        pool.cold_pending.store(true, Ordering::Release);
        pool
    }

    #[test]
    fn the_cost_after_idling_is_measured_apart_and_waited_for() {
        // No call runs in the pool: every pause is idle.
        let pool = awaiting_cold();
        let measuring = std::thread::spawn(move || pool.publish_cold(measure_cold(pool, 2)));
        pool.wait_for_cold();
        assert!(!pool.cold_pending.load(Ordering::Acquire));
        let figures = *crate::lock(&pool.figures);
        assert!(figures.cold_measured);
        let m = figures.machine.unwrap();
        // Never below the awake cost; the awake figures untouched.
        assert!(m.cold_overhead_ns >= m.overhead_ns);
        assert_eq!((m.overhead_ns, m.per_piece_ns), (5_000.0, 50.0));
        measuring.join().unwrap();
    }

    #[test]
    fn a_cost_after_idling_that_found_no_idle_pause_stays_unmeasured() {
        let pool = awaiting_cold();
        pool.publish_cold(None);
        // The wait ends, and the figures say what they are.
        pool.wait_for_cold();
        let figures = *crate::lock(&pool.figures);
        assert!(!figures.cold_measured);
        assert_eq!(figures.machine, Some(HOT_ONLY));
        // A pool whose calls never leave it idle finds no pause.
        let busy = Pool::with_figures(2, HOT_ONLY);
        let _running = busy.enter();
        assert_eq!(measure_cold(busy, 2), None);
    }

    #[test]
    fn a_thread_running_calls_in_slices_counts_once_until_its_last_ends_on_any_thread() {
        let pool = Pool::with_figures(2, two_cores());
        let first = Slicing::start(pool);
        assert_eq!(pool.long_calls(), 1);
        assert!(!first.has_company());
        let second = Slicing::start(pool);
        assert_eq!(pool.long_calls(), 1, "two calls taking turns on one thread");
        assert!(first.has_company() && second.has_company());
        // A call another thread started counts for that thread.
        let mut elsewhere = std::thread::spawn(move || Slicing::start(pool))
            .join()
            .unwrap();
        assert_eq!(pool.long_calls(), 2);
        // Ended on another thread (a task that moved, say): still counted right.
        std::thread::spawn(move || drop(first)).join().unwrap();
        assert_eq!(pool.long_calls(), 2);
        assert!(!second.has_company());
        // Its next slice runs here: it now keeps this thread's call company.
        elsewhere.follow();
        assert_eq!(pool.long_calls(), 1, "the other thread has no call left");
        assert!(elsewhere.has_company() && second.has_company());
        drop(elsewhere);
        assert_eq!(pool.long_calls(), 1);
        drop(second);
        assert_eq!(pool.long_calls(), 0);
    }

    #[test]
    fn a_thread_whose_calls_in_slices_went_idle_stops_counting_until_one_runs() {
        let pool = Pool::with_figures(2, two_cores());
        let mut idle = Slicing::start(pool);
        assert_eq!(pool.long_calls(), 1);
        let later = now_ns() + SLICES_IDLE_AFTER.as_nanos() as u64 + 1_000_000;
        pool.expire_idle_slices_at(later);
        assert_eq!(pool.long_calls.load(Ordering::Relaxed), 0);
        // Looked at once per interval: a second look right after changes nothing.
        pool.expire_idle_slices_at(later + 1);
        // Its next slice counts it again; it ends counted out once.
        idle.follow();
        assert_eq!(pool.long_calls.load(Ordering::Relaxed), 1);
        drop(idle);
        assert_eq!(pool.long_calls.load(Ordering::Relaxed), 0);
        // A forgotten call's thread stops counting too, and a new call there counts.
        std::mem::forget(Slicing::start(pool));
        assert_eq!(pool.long_calls.load(Ordering::Relaxed), 1);
        let later = later + 2 * SLICES_IDLE_AFTER.as_nanos() as u64;
        pool.expire_idle_slices_at(later);
        assert_eq!(pool.long_calls.load(Ordering::Relaxed), 0);
        assert_eq!(pool.async_calls.load(Ordering::Relaxed), 0);
        let next = Slicing::start(pool);
        assert_eq!(pool.long_calls.load(Ordering::Relaxed), 1);
        drop(next);
        // The thread still has the forgotten call: counted until it goes idle again.
        assert_eq!(pool.long_calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_pool_remembers_how_many_calls_overlapped_for_a_while() {
        let ms = |ms: u64| ms * 1_000_000;
        let pool = Pool::with_figures(2, two_cores());
        assert_eq!(pool.recent_peak_at(ms(1)), 0, "nothing overlapped yet");
        let first = pool.async_job();
        assert_eq!(pool.recent_peak(), 0, "one call alone overlaps nothing");
        // Planned calls (a nested companion's, say) are not requests: they do not count.
        let nested = pool.enter();
        assert_eq!(pool.recent_peak(), 0);
        let second = Slicing::start(pool);
        assert_eq!(pool.recent_peak(), 2);
        drop((first, nested, second));
        assert_eq!(pool.recent_peak(), 2, "remembered after the calls end");
        assert_eq!(pool.long_calls(), 0);
        // With times given: a lower count keeps the higher peak until it is forgotten.
        pool.overlapped(3, ms(1_000));
        pool.overlapped(2, ms(1_030));
        assert_eq!(pool.recent_peak_at(ms(1_040)), 3);
        assert_eq!(
            pool.recent_peak_at(ms(1_050)),
            3,
            "50 ms on, still remembered"
        );
        assert_eq!(pool.recent_peak_at(ms(1_051)), 0, "forgotten after 50 ms");
        pool.overlapped(2, ms(1_060));
        assert_eq!(
            pool.recent_peak_at(ms(1_070)),
            2,
            "a new, lower peak once forgotten"
        );
        // An overlap that lasts is remembered from when it ends.
        pool.overlapped(2, ms(1_100));
        assert_eq!(pool.recent_peak_at(ms(1_140)), 2);
    }

    #[test]
    fn median_is_robust_to_one_outlier() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [3.0]), 3.0);
        assert_eq!(median(&mut [1.0, 1e9, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn the_calling_threads_pool_is_measured_once() {
        let _serial = crate::timing_test();
        let m = machine();
        assert_eq!(m.threads, rayon::current_num_threads().min(cpus()));
        assert!(m.overhead_ns.is_finite() && m.overhead_ns >= 0.0);
        assert!(m.per_piece_ns.is_finite() && m.per_piece_ns >= 0.0);
        assert_eq!(machine().per_piece_ns, m.per_piece_ns);
        assert!(std::ptr::eq(here(), here()));
    }

    #[test]
    fn each_pool_size_has_its_own_facts() {
        let _serial = crate::timing_test();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let in_one = one.install(|| (here(), machine()));
        let in_three = three.install(here);
        assert!(!std::ptr::eq(in_one.0, in_three));
        assert_eq!((in_one.0.size, in_three.size), (1, 3));
        // The test thread's pool is the global one: its own facts unless it has one thread
        // too (a one-CPU machine), when it shares the one-thread pool's.
        let global = rayon::current_num_threads();
        assert_eq!(here().size, global);
        assert_eq!(std::ptr::eq(in_one.0, here()), global == 1);
        // One thread: nothing to split, whatever the machine.
        assert_eq!(in_one.1.threads, 1);
        assert_eq!(one.install(known_serial_limit_here_ps), u64::MAX);
        // Another pool of the same size shares the facts.
        let one_again = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert!(std::ptr::eq(one_again.install(here), in_one.0));
    }

    #[test]
    fn learned_overheads_move_one_step_at_a_time_and_keep_the_limit_in_step() {
        let pool = Pool::with_figures(2, two_cores());
        let before = pool.measured().unwrap();
        pool.observe_overhead(f64::NAN, false);
        assert_eq!(pool.measured().unwrap(), before);
        pool.observe_overhead(1e9, false);
        let after = pool.measured().unwrap();
        assert_eq!(after.overhead_ns, 12_000.0 * OVERHEAD_STEP);
        assert_eq!(pool.serial_limit_ps(), limit_for(&after));
        for _ in 0..400 {
            pool.observe_overhead(-5.0, false);
            pool.observe_overhead(1e9, true);
        }
        let after = pool.measured().unwrap();
        assert_eq!(after.overhead_ns, MIN_OVERHEAD_NS);
        assert!(after.cold_overhead_ns > 1e6);
        // The hot-path limit follows the smaller, hot overhead.
        assert_eq!(pool.serial_limit_ps(), serial_work_limit_ps(&after).max(1));
    }

    #[test]
    fn a_one_thread_pool_never_learns_an_overhead() {
        let one = Machine {
            threads: 1,
            overhead_ns: 0.0,
            cold_overhead_ns: 0.0,
            per_piece_ns: 0.0,
        };
        let pool = Pool::with_figures(1, one);
        pool.observe_overhead(50_000.0, false);
        assert_eq!(pool.measured(), Some(one));
        assert_eq!(pool.serial_limit_ps(), u64::MAX);
    }

    #[test]
    fn calls_running_at_once_share_the_threads() {
        assert_eq!(share_of(2, 0), 2);
        assert_eq!(share_of(2, 1), 1);
        assert_eq!(share_of(2, 5), 1);
        assert_eq!(share_of(8, 1), 4);
        assert_eq!(share_of(8, 2), 2);
        assert_eq!(share_of(1, 0), 1);
        let pool = Pool::with_figures(2, two_cores());
        let first = pool.enter();
        let second = pool.enter();
        assert_eq!(pool.long_calls(), 2);
        drop(first);
        assert_eq!(pool.long_calls(), 1);
        let _ = std::panic::catch_unwind(|| {
            let _inside = pool.enter();
            panic!("a panicking call is counted out too");
        });
        assert_eq!(pool.long_calls(), 1);
        drop(second);
        assert_eq!(pool.long_calls(), 0);
    }

    #[test]
    fn re_measurements_come_with_backoff_and_stop() {
        let ms = 1_000_000;
        assert!(!remeasure_due(0, 0, 99 * ms));
        assert!(remeasure_due(0, 0, 100 * ms));
        assert!(!remeasure_due(0, 1, 999 * ms));
        assert!(remeasure_due(0, 1, 1_000 * ms));
        assert!(remeasure_due(0, 2, 10_000 * ms));
        assert!(!remeasure_due(0, 3, u64::MAX));
    }

    #[test]
    fn a_figure_measured_under_load_is_lowered_by_a_clear_re_measurement() {
        // Measured while other threads loaded the machine: 120 µs instead of ~12 µs.
        let loaded = Machine {
            overhead_ns: 120_000.0,
            cold_overhead_ns: 400_000.0,
            ..two_cores()
        };
        let merged = merge_remeasured(loaded, 12_000.0);
        assert_eq!(merged.overhead_ns, 12_000.0);
        assert_eq!(merged.cold_overhead_ns, 40_000.0);
        assert_eq!(merged.threads, 2);
        // A re-measurement that is only a little lower, or higher, or nonsense, changes
        // nothing: the figures refined by real calls stand.
        let m = two_cores();
        assert_eq!(merge_remeasured(m, 10_000.0), m);
        assert_eq!(merge_remeasured(m, 50_000.0), m);
        assert_eq!(merge_remeasured(m, f64::NAN), m);
        // Never below the floor.
        assert_eq!(merge_remeasured(m, 10.0).overhead_ns, MIN_OVERHEAD_NS);

        // And through a pool: the break-even point moves with the figures.
        let pool = Pool::with_figures(2, loaded);
        let high = pool.serial_limit_ps();
        let mut figures = crate::lock(&pool.figures);
        pool.publish(&mut figures, merged);
        drop(figures);
        assert!(pool.serial_limit_ps() * 9 < high);
    }
}
