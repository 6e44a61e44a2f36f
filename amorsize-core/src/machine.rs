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
/// Pause that lets rayon's workers fall asleep, so one sample sees the wake-up cost a call
/// after idle time pays.
const IDLE_PAUSE: Duration = Duration::from_micros(150);
/// Cold (after idle) samples; the median is kept.
const COLD_SAMPLES: usize = 3;

/// The overhead learned from timed parallel calls (`f64` bits; 0 until the first).
static LEARNED_OVERHEAD_NS: AtomicU64 = AtomicU64::new(0);
/// The break-even total work for the current overhead (picoseconds); 0 means recompute.
static SERIAL_LIMIT_PS: AtomicU64 = AtomicU64::new(0);
/// A learned overhead never drops below this: no fork-join is free.
const MIN_OVERHEAD_NS: f64 = 1_000.0;

/// The machine facts: measured on first use, then the overhead is refined by every
/// well-split parallel call, so it reflects how this program's calls actually find the pool
/// (hot, right after other parallel work, or cold, after serial stretches that let the idle
/// cores sleep).
///
/// Never blocks: a thread that asks while another is measuring (or a call nested inside the
/// measurement) gets provisional numbers.
pub fn machine() -> Machine {
    let measured = match MEASURED.get() {
        Some(m) => *m,
        None => measure_once(),
    };
    with_learned_overhead(measured)
}

/// The machine facts if they have been measured already.
pub(crate) fn measured() -> Option<Machine> {
    MEASURED.get().copied().map(with_learned_overhead)
}

fn with_learned_overhead(mut m: Machine) -> Machine {
    let learned = LEARNED_OVERHEAD_NS.load(Ordering::Relaxed);
    if learned != 0 {
        m.overhead_ns = f64::from_bits(learned);
    }
    m
}

/// Total work (picoseconds) below which no call can go parallel; cached until the
/// overhead changes.
#[inline]
pub(crate) fn serial_limit_ps() -> u64 {
    match SERIAL_LIMIT_PS.load(Ordering::Relaxed) {
        0 => compute_serial_limit_ps(),
        limit => limit,
    }
}

#[cold]
fn compute_serial_limit_ps() -> u64 {
    let limit = crate::model::serial_work_limit_ps(&machine()).max(1);
    if MEASURED.get().is_some() {
        SERIAL_LIMIT_PS.store(limit, Ordering::Relaxed);
    }
    limit
}

/// Each sample moves the learned overhead by this factor, up or down.
const OVERHEAD_STEP: f64 = 1.0625;

/// Refines the overhead with what a parallel call paid beyond its pieces' work: its wall
/// time minus the pieces' summed time spread over the threads.
///
/// The estimate steps a fixed factor toward each sample, which converges on the samples'
/// median: on a machine whose idle cores wake slowly, most calls find the pool awake and a
/// few pay milliseconds, and the typical call is what the plan should be made for.
#[cold]
pub(crate) fn observe_overhead(sample_ns: f64) {
    let Some(current) = measured() else {
        return;
    };
    if !sample_ns.is_finite() || current.threads < 2 {
        return;
    }
    let current_ns = current.overhead_ns.max(MIN_OVERHEAD_NS);
    let updated = if sample_ns > current_ns {
        current_ns * OVERHEAD_STEP
    } else {
        (current_ns / OVERHEAD_STEP).max(MIN_OVERHEAD_NS)
    };
    LEARNED_OVERHEAD_NS.store(updated.to_bits(), Ordering::Relaxed);
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
        "machine: {} threads, {:.0} ns to go parallel, {:.0} ns per extra piece",
        measured.threads,
        measured.overhead_ns,
        measured.per_piece_ns
    );
    let _ = MEASURED.set(measured);
    SERIAL_LIMIT_PS.store(0, Ordering::Relaxed);
    *MEASURED.get().unwrap_or(&measured)
}

pub(crate) fn provisional() -> Machine {
    Machine {
        threads: rayon::current_num_threads(),
        overhead_ns: PROVISIONAL_OVERHEAD_NS,
        per_piece_ns: PROVISIONAL_PER_PIECE_NS,
    }
}

/// Times rayon's fork-join on empty work: `threads` pieces (the fixed cost of a parallel call)
/// and `MAX_PIECES_PER_THREAD × threads` pieces (the cost of each extra piece).
fn measure() -> Machine {
    let threads = rayon::current_num_threads();
    if threads < 2 {
        return Machine {
            threads,
            overhead_ns: 0.0,
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
    // Calls usually arrive after the pool has gone idle; weigh the cold wake-up in (the
    // median of a few, so one descheduled worker cannot make it milliseconds).
    let mut cold_samples = [0.0; COLD_SAMPLES];
    for sample in &mut cold_samples {
        std::thread::sleep(IDLE_PAUSE);
        *sample = time_empty_split(threads);
    }
    let cold_ns = median(&mut cold_samples);

    let hot_ns = median(&mut few_ns);
    let overhead_ns = (hot_ns + cold_ns) / 2.0;
    let extra_pieces_per_thread = (MAX_PIECES_PER_THREAD - 1) as f64;
    let per_piece_ns = ((median(&mut many_ns) - hot_ns) / extra_pieces_per_thread).max(50.0);
    Machine {
        threads,
        overhead_ns: overhead_ns.max(1_000.0),
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
        let m = machine();
        assert_eq!(m.threads, rayon::current_num_threads());
        assert!(m.overhead_ns.is_finite() && m.overhead_ns >= 0.0);
        assert!(m.per_piece_ns.is_finite() && m.per_piece_ns >= 0.0);
        // Asked again, the same numbers: measured once per process.
        assert_eq!(machine().threads, m.threads);
        assert_eq!(machine().per_piece_ns, m.per_piece_ns);
    }

    #[test]
    fn learned_overhead_moves_slowly_and_stays_positive() {
        let before = machine();
        if before.threads < 2 {
            return;
        }
        observe_overhead(f64::NAN);
        observe_overhead(before.overhead_ns * 1e6);
        let after = machine().overhead_ns;
        // One huge sample moves it by at most an eighth of a factor four.
        assert!(
            after <= before.overhead_ns.max(MIN_OVERHEAD_NS) * 1.375 + 1.0,
            "{after}"
        );
        for _ in 0..200 {
            observe_overhead(-5.0);
        }
        assert_eq!(machine().overhead_ns, MIN_OVERHEAD_NS);
        assert!(serial_limit_ps() > 0);
    }
}
