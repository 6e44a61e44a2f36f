//! What a finished call teaches: a timed loop refines its site's per-item cost; a parallel
//! call refines it from its pieces' time, records the speedup it achieved, and refines the
//! pool's cost of going parallel.

use crate::machine::{note_pool_used, observe_overhead};
use crate::model::{Decision, Plan};
use crate::site::Site;
use crate::units::elapsed_ns;
use std::time::Instant;

/// A timed serial call shorter than this says more about the clock than the work: counted,
/// not learned from.
const MIN_SAMPLE_NS: u64 = 2_000;

#[cold]
pub(crate) fn learn_from_serial(site: &Site, n: usize, start: Instant) {
    let elapsed_ns = elapsed_ns(start);
    if elapsed_ns >= MIN_SAMPLE_NS {
        site.observe(elapsed_ns.saturating_mul(1000) / n as u64);
    }
}

/// Learns from a parallel call of `n` items planned as `decision` that started at `start` and
/// whose pieces ran for `busy_ns` in all.
#[cold]
pub(crate) fn learn_from_parallel(
    site: &Site,
    n: usize,
    decision: Decision,
    cold: bool,
    start: Instant,
    busy_ns: u64,
) {
    let Plan::Parallel { min_len, threads } = decision.plan else {
        return;
    };
    let per_item = site.per_item();
    let elapsed_ns = start.elapsed().as_nanos() as f64;
    let busy_ns = busy_ns as f64;
    // The pieces' own time is the per-item cost as paid in parallel; the rest of the wall
    // time, once the work is spread over the threads, is what going parallel cost. Few
    // pieces leave threads idle at the end: that is imbalance, not overhead.
    let predicted_loop_ns = per_item.map(|c| c.work_ns(n));
    site.observe((busy_ns * 1000.0 / n as f64) as u64);
    // Overhead is learned from calls short enough for it to matter, split finely enough to
    // balance; the last piece's expected wait (half a piece) is imbalance, not overhead.
    let pieces = n.div_ceil(min_len);
    let per_thread_ns = busy_ns / threads as f64;
    let overhead_ns = decision.parallel_ns - decision.serial_ns / threads as f64;
    if pieces >= 4 * threads && per_thread_ns < 20.0 * overhead_ns.max(1_000.0) {
        observe_overhead(
            elapsed_ns - per_thread_ns - busy_ns / pieces as f64 / 2.0,
            cold,
        );
    }
    note_pool_used();
    if let Some(loop_ns) = predicted_loop_ns {
        site.note_observed_speedup(loop_ns / elapsed_ns);
    }
}
