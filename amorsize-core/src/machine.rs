//! The machine facts the cost model needs: rayon's thread count and what going parallel
//! costs here, measured once per process, lazily, in well under a millisecond.

use crate::model::{Machine, MAX_PIECES_PER_THREAD};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static MEASURED: OnceLock<Machine> = OnceLock::new();
static MEASURING: AtomicBool = AtomicBool::new(false);

/// Used by calls that arrive while the first measurement is still running (including calls
/// nested inside it): a typical wake-and-join cost for a small pool, so those calls lean serial.
const PROVISIONAL_OVERHEAD_NS: f64 = 20_000.0;
const PROVISIONAL_PER_PIECE_NS: f64 = 500.0;

/// Samples per measured configuration; the median is kept.
const SAMPLES: usize = 7;
/// Pause that lets rayon's workers fall asleep, so the cold samples see a wake-up.
const IDLE_PAUSE: Duration = Duration::from_micros(150);
/// Cold (after idle) samples; the median is kept.
const COLD_SAMPLES: usize = 3;

/// A pool unused for this long is planned for as cold: its workers sleep, and on virtual
/// machines their cores may be halted (measured on the 2-core development VM: a join of two
/// 500 µs halves took 526 µs back to back, 1114 µs after 2 ms of serial work).
pub const COLD_AFTER: Duration = Duration::from_millis(1);

/// The overheads learned from timed parallel calls (`f64` bits; 0 until the first).
static LEARNED_HOT_NS: AtomicU64 = AtomicU64::new(0);
static LEARNED_COLD_NS: AtomicU64 = AtomicU64::new(0);
/// The break-even total work for the current hot overhead (picoseconds); 0 means recompute.
static SERIAL_LIMIT_PS: AtomicU64 = AtomicU64::new(0);
/// When a parallel call last finished, in nanoseconds since [`epoch`]; 0 for never.
static POOL_LAST_USED_NS: AtomicU64 = AtomicU64::new(0);
/// A learned overhead never drops below this: no fork-join is free.
const MIN_OVERHEAD_NS: f64 = 1_000.0;
/// Each sample moves a learned overhead by this factor, up or down.
const OVERHEAD_STEP: f64 = 1.0625;

/// The machine facts: measured on first use; then both overheads are refined by the
/// program's own short, well-split parallel calls, so they reflect how its calls really find
/// the pool.
///
/// Never blocks: a thread that asks while another is measuring (or a call nested inside the
/// measurement) gets provisional numbers.
pub fn machine() -> Machine {
    let measured = match MEASURED.get() {
        Some(m) => *m,
        None => measure_once(),
    };
    with_learned(measured)
}

/// The machine facts if they have been measured already.
pub(crate) fn measured() -> Option<Machine> {
    MEASURED.get().copied().map(with_learned)
}

fn with_learned(mut m: Machine) -> Machine {
    let hot = LEARNED_HOT_NS.load(Ordering::Relaxed);
    if hot != 0 {
        m.overhead_ns = f64::from_bits(hot);
    }
    let cold = LEARNED_COLD_NS.load(Ordering::Relaxed);
    if cold != 0 {
        m.cold_overhead_ns = f64::from_bits(cold);
    }
    m
}

/// The machine as a call starting now will find it, and whether the pool has been idle for
/// [`COLD_AFTER`]. Reads the clock: cold path.
///
/// The cold overhead goes into `overhead_ns` only for calls made on a pool thread: they
/// wait for the pool like any rayon job. A call from outside the pool works from the start
/// and never waits for a helper that has not woken (see `shared`), so an idle pool can make
/// it no slower than its loop; it plans as if the pool were awake.
pub(crate) fn machine_for_call() -> (Machine, bool) {
    let mut m = machine();
    let cold = pool_idle() >= COLD_AFTER;
    if cold && rayon::current_thread_index().is_some() {
        m.overhead_ns = m.cold_overhead_ns;
    }
    (m, cold)
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// How long since a parallel call last finished (forever if none has).
fn pool_idle() -> Duration {
    match POOL_LAST_USED_NS.load(Ordering::Relaxed) {
        0 => Duration::MAX,
        last => epoch().elapsed().saturating_sub(Duration::from_nanos(last)),
    }
}

/// Records that a parallel call just finished: the pool is awake.
pub(crate) fn note_pool_used() {
    let now = epoch().elapsed().as_nanos().clamp(1, u64::MAX as u128) as u64;
    POOL_LAST_USED_NS.store(now, Ordering::Relaxed);
}

/// Total work (picoseconds) below which no call can go parallel (computed from the hot
/// overhead, the smaller one, so it never hides a parallel plan); cached until it changes.
#[inline]
pub(crate) fn serial_limit_ps() -> u64 {
    match known_serial_limit_ps() {
        0 => compute_serial_limit_ps(),
        limit => limit,
    }
}

/// The cached break-even total work, or 0 while it is not known (no call is then below it).
#[inline]
pub(crate) fn known_serial_limit_ps() -> u64 {
    SERIAL_LIMIT_PS.load(Ordering::Relaxed)
}

#[cold]
fn compute_serial_limit_ps() -> u64 {
    let m = machine();
    let hot = Machine {
        overhead_ns: m.overhead_ns.min(m.cold_overhead_ns),
        ..m
    };
    let limit = crate::model::serial_work_limit_ps(&hot).max(1);
    if MEASURED.get().is_some() {
        SERIAL_LIMIT_PS.store(limit, Ordering::Relaxed);
    }
    limit
}

/// Refines the hot or the cold overhead with what a parallel call paid beyond its pieces'
/// work.
///
/// The estimate steps a fixed factor toward each sample, which converges on the samples'
/// median: a few calls that pay milliseconds (a descheduled worker) do not drag it up.
#[cold]
pub(crate) fn observe_overhead(sample_ns: f64, cold: bool) {
    let Some(current) = measured() else {
        return;
    };
    if !sample_ns.is_finite() || current.threads < 2 {
        return;
    }
    let (cell, current_ns) = if cold {
        (&LEARNED_COLD_NS, current.cold_overhead_ns)
    } else {
        (&LEARNED_HOT_NS, current.overhead_ns)
    };
    let current_ns = current_ns.max(MIN_OVERHEAD_NS);
    let updated = if sample_ns > current_ns {
        current_ns * OVERHEAD_STEP
    } else {
        (current_ns / OVERHEAD_STEP).max(MIN_OVERHEAD_NS)
    };
    cell.store(updated.to_bits(), Ordering::Relaxed);
    SERIAL_LIMIT_PS.store(0, Ordering::Relaxed);
}

#[cold]
fn measure_once() -> Machine {
    if MEASURING
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return MEASURED.get().copied().unwrap_or_else(provisional);
    }
    let measured = measure();
    log::debug!(
        target: "amorsize",
        "machine: {} threads, {:.0} ns to go parallel ({:.0} ns after idling), {:.0} ns per extra piece",
        measured.threads,
        measured.overhead_ns,
        measured.cold_overhead_ns,
        measured.per_piece_ns
    );
    let _ = MEASURED.set(measured);
    SERIAL_LIMIT_PS.store(0, Ordering::Relaxed);
    *MEASURED.get().unwrap_or(&measured)
}

/// The CPUs this process may use, asked once: on Linux the answer reads cgroup files
/// (50-110 µs per call on the development VM).
static CPUS: OnceLock<usize> = OnceLock::new();

/// rayon's pool size, capped at the CPUs this process may use.
fn usable_threads() -> usize {
    let cpus = *CPUS.get_or_init(|| {
        std::thread::available_parallelism().map_or(usize::MAX, std::num::NonZeroUsize::get)
    });
    rayon::current_num_threads().min(cpus)
}

/// Stand-in numbers until the machine is measured. Cheap: a short first call labels its
/// decision with them, so the CPU count is used only if already known.
pub(crate) fn provisional() -> Machine {
    let cpus = CPUS.get().copied().unwrap_or(usize::MAX);
    Machine {
        threads: rayon::current_num_threads().min(cpus),
        overhead_ns: PROVISIONAL_OVERHEAD_NS,
        cold_overhead_ns: PROVISIONAL_OVERHEAD_NS,
        per_piece_ns: PROVISIONAL_PER_PIECE_NS,
    }
}

/// Times rayon's fork-join on empty work: `threads` pieces back to back (the hot overhead)
/// and after short idle pauses (a first guess at the cold one), and
/// `MAX_PIECES_PER_THREAD × threads` pieces (the cost of each extra piece).
fn measure() -> Machine {
    let threads = usable_threads();
    if threads < 2 {
        return Machine {
            threads,
            overhead_ns: 0.0,
            cold_overhead_ns: 0.0,
            per_piece_ns: 0.0,
        };
    }
    // Starts the pool's threads if this is the process's first parallel work.
    rayon::join(|| black_box(0), || black_box(1));

    let many = threads * MAX_PIECES_PER_THREAD;
    let mut few_ns = [0.0; SAMPLES];
    let mut many_ns = [0.0; SAMPLES];
    for i in 0..SAMPLES {
        few_ns[i] = time_empty_split(threads);
        many_ns[i] = time_empty_split(many);
    }
    let mut cold_samples = [0.0; COLD_SAMPLES];
    for sample in &mut cold_samples {
        std::thread::sleep(IDLE_PAUSE);
        *sample = time_empty_split(threads);
    }
    note_pool_used();

    let hot_ns = median(&mut few_ns).max(MIN_OVERHEAD_NS);
    let cold_ns = median(&mut cold_samples).max(hot_ns);
    let extra_pieces_per_thread = (MAX_PIECES_PER_THREAD - 1) as f64;
    let per_piece_ns = ((median(&mut many_ns) - hot_ns) / extra_pieces_per_thread).max(50.0);
    Machine {
        threads,
        overhead_ns: hot_ns,
        cold_overhead_ns: cold_ns,
        per_piece_ns,
    }
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

    #[test]
    fn median_is_robust_to_one_outlier() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [3.0]), 3.0);
        assert_eq!(median(&mut [1.0, 1e9, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn measured_machine_is_sane() {
        let _serial = crate::timing_test();
        let m = machine();
        assert_eq!(m.threads, usable_threads());
        assert!(m.threads >= 1 && m.threads <= rayon::current_num_threads());
        assert!(m.overhead_ns.is_finite() && m.overhead_ns >= 0.0);
        assert!(m.per_piece_ns.is_finite() && m.per_piece_ns >= 0.0);
        // Asked again, the same numbers: measured once per process.
        assert_eq!(machine().threads, m.threads);
        assert_eq!(machine().per_piece_ns, m.per_piece_ns);
    }

    #[test]
    fn learned_overheads_move_one_step_at_a_time_and_stay_positive() {
        let _serial = crate::timing_test();
        let before = machine();
        if before.threads < 2 {
            return;
        }
        observe_overhead(f64::NAN, false);
        observe_overhead(before.overhead_ns * 1e6, false);
        let after = machine();
        assert!(after.overhead_ns <= before.overhead_ns.max(MIN_OVERHEAD_NS) * OVERHEAD_STEP + 1.0);
        for _ in 0..400 {
            observe_overhead(-5.0, false);
            observe_overhead(1e9, true);
        }
        let after = machine();
        assert_eq!(after.overhead_ns, MIN_OVERHEAD_NS);
        assert!(after.cold_overhead_ns > 1e6);
        // The hot-path limit follows the smaller, hot overhead.
        let expected = crate::model::serial_work_limit_ps(&after);
        assert_eq!(serial_limit_ps(), expected.max(1));
    }
}
