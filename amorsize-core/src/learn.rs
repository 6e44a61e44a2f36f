//! What a finished call teaches.
//!
//! - A timed loop refines the site's loop cost (see `cost` for the rules); a confirmed drift
//!   scales the parallel cost by the same factor while that one is stale.
//! - A parallel call's pieces refine the site's parallel cost. They also correct the loop
//!   cost: a piece faster than the loop's estimate means the estimate is too high (items
//!   cannot be cheaper with other threads busy), and a confirmed drift of the parallel cost
//!   scales the loop cost by the same factor (the work changed, not the way it scales), so
//!   that a site that always runs parallel follows drift either way.
//! - The call's wall time against what the loop would have taken is the site's measured
//!   outcome (see `outcome`).
//! - What the call paid beyond its pieces' work refines the pool's cost of going parallel.

use crate::cost::Change;
use crate::dispatch::ParallelRoute;
use crate::model::Plan;
use crate::site::Site;
use crate::units::{elapsed_ns, PerItem};
use std::time::Instant;

/// A timed serial call shorter than this says more about the clock than the work: counted,
/// not learned from.
const MIN_SAMPLE_NS: u64 = 2_000;

/// Pieces that cost at most this many times a loop estimate taken from a call's head
/// confirm it for the whole input; dearer ones leave it to be measured by a whole loop
/// (the rest of the input may be dearer than its head, or items may contend in parallel).
const CONFIRMS: f64 = 1.25;

/// Learns from a loop over `n` items that took `elapsed_ns`; `whole_call` when those items
/// are a whole call (or most of one), not the head of one.
#[cold]
pub(crate) fn learn_from_serial(site: &Site, n: usize, elapsed_ns: u64, whole_call: bool) {
    learn_loop(site, n, elapsed_ns, whole_call, false);
}

/// [`learn_from_serial`] for a loop run in place (see
/// [`Site::loop_in_place`]): the loop's cost, without the cost of new memory that the
/// parallel pieces pay. Its changes are not carried over to the pieces' cost, nor theirs to
/// it (see [`learn_from_parallel`]).
#[cold]
pub(crate) fn learn_from_in_place(site: &Site, n: usize, elapsed_ns: u64, whole_call: bool) {
    learn_loop(site, n, elapsed_ns, whole_call, true);
}

fn learn_loop(site: &Site, n: usize, elapsed_ns: u64, whole_call: bool, in_place: bool) {
    if n == 0 {
        return;
    }
    if elapsed_ns < MIN_SAMPLE_NS {
        site.serial_cost().short_sample();
        return;
    }
    if site.loop_in_place() != in_place {
        // Parallel runs were judged against a loop that paid for new memory, or did not:
        // not the loop there is now.
        site.set_loop_in_place(in_place);
        site.learned().outcome.forget();
    }
    let sample = PerItem::from_picos(elapsed_ns.saturating_mul(1000) / n as u64);
    let before = site.serial_word().per_item();
    let updated = Some(site.serial_cost().observe(sample, whole_call, true));
    if let Some((_, Change::Drifted { factor })) = updated {
        // The work changed: what parallel runs measured before says nothing of it now.
        site.learned().outcome.forget();
        // So did its cost in parallel pieces, unless pieces measured it since (or the loop
        // ran in place, which alone can set it that far apart from the pieces).
        if !in_place
            && site
                .parallel_cost()
                .load()
                .per_item()
                .is_some_and(|parallel| far_apart(sample, parallel))
        {
            site.parallel_cost()
                .update(|word| Some((word.scaled(factor), ())));
        }
    }
    if let Some((_, change @ (Change::Drifted { .. } | Change::Replaced))) = updated {
        log::debug!(
            target: "amorsize",
            "{}: loop cost {} per item (was {}, {})",
            site.name(),
            sample,
            before.map_or("unknown".to_owned(), |c| c.to_string()),
            if let Change::Drifted { .. } = change {
                "drifted"
            } else {
                "measured over a whole call"
            }
        );
    }
}

/// Learns from call `call_index`: `n` items run in parallel as `plan`, started at `start`,
/// whose pieces ran for `busy_ns` in all. Without a `start` (a stream's batch, whose caller
/// read the next batch while helpers worked), the wall time says nothing of the map: only
/// the pieces' cost is learned, not the outcome or the pool's overhead.
#[cold]
pub(crate) fn learn_from_parallel(
    site: &Site,
    n: usize,
    call_index: u64,
    plan: &ParallelRoute,
    start: Option<Instant>,
    busy_ns: u64,
) {
    let wall_ns = start.map(|start| elapsed_ns(start) as f64);
    plan.pool.note_used();
    let Plan::Parallel { min_len, threads } = plan.decision.plan else {
        return;
    };
    if n == 0 {
        return;
    }
    let piece = PerItem::from_picos(busy_ns.saturating_mul(1000) / n as u64);
    let serial_word = site.serial_word();
    let serial_before = serial_word.per_item();
    let parallel_before = site.per_item_in_parallel();

    // A loop cost from the head of a call says too little about the rest to judge a
    // parallel run by (a skewed input's head is cheaper than the rest).
    let planned = Some(plan.decision.serial_ns / n as f64)
        .filter(|ns| ns.is_finite())
        .map(PerItem::from_nanos);
    let loop_ns = if serial_word.is_head_estimate() {
        None
    } else {
        loop_equivalent_ns(n, piece, serial_before, parallel_before, planned)
    };
    // A call that found the pool idle is not judged either: its wall time measures how long
    // the pool's cores took to wake (the caller does not wait for them, so it costs about its
    // loop), not whether parallel pays once they are awake. Judged, such calls sent a site
    // whose calls come a few ms apart back to the loop, where the pool idles on, so every
    // retry found it idle too (see `examples/paused_calls.rs`).
    if let (Some(loop_ns), Some(wall_ns), false) = (loop_ns, wall_ns, plan.cold) {
        site.learned()
            .outcome
            .record(n, call_index, loop_ns / wall_ns, plan.retry);
    }

    // The first sample is taken as it is; the model trusts the pieces' cost from the
    // second on (one disturbed call must not decide how items scale).
    let known = site.parallel_cost().load().per_item().is_some();
    let updated = site.parallel_cost().observe(piece, false, true);
    if known {
        site.parallel_cost().update(|word| Some((word.tuned(), ())));
    }
    let Some(serial) = serial_before else {
        if let Some(wall_ns) = wall_ns {
            learn_overhead(n, min_len, threads, plan, wall_ns, busy_ns);
        }
        return;
    };
    let up = piece > serial;
    // A loop run in place and these pieces, which wrote a new `Vec`, do not correct each
    // other (see `Site::loop_in_place`).
    let in_place = site.loop_in_place();
    match updated {
        (parallel, Change::Drifted { factor }) => {
            site.learned().outcome.forget();
            // The work changed. So did the loop's cost, unless a loop measured it since, or
            // it was measured in place: the pieces' cost of new memory (which changes with
            // the allocator's state) alone can set the two that far apart.
            let stale = !in_place
                && parallel
                    .per_item()
                    .is_some_and(|parallel| far_apart(serial, parallel));
            if stale {
                log::debug!(
                    target: "amorsize",
                    "{}: cost in parallel drifted to {piece} per item; loop cost scaled by {factor:.2}",
                    site.name(),
                );
                site.serial_cost()
                    .update(|word| Some((word.scaled(factor), ())));
            }
        }
        _ if far_apart(piece, serial) && serial_word.drifting_toward(up) && !in_place => {
            // The loop's cost had drifted the same way in its last sample, and the call was
            // planned on that sample: these pieces confirm it, for both costs.
            if let Some(factor) = site.serial_cost().confirm_pending(up) {
                site.learned().outcome.forget();
                log::debug!(
                    target: "amorsize",
                    "{}: loop cost drifted by {factor:.2}, confirmed in parallel",
                    site.name(),
                );
                site.parallel_cost().confirm_pending(up);
            }
        }
        _ => {
            if serial_word.drifting() && !far_apart(piece, serial) && !in_place {
                // The call was planned on a drifted sample its pieces do not bear out (one
                // held-up stretch of a loop): the estimate stands. Not for a loop run in
                // place, whose pieces pay for new memory the loop did not.
                site.serial_cost()
                    .update(|word| word.drifting().then(|| (word.settled(), ())));
            }
            if serial_word.is_head_estimate() && piece.as_nanos() <= CONFIRMS * serial.as_nanos() {
                // The rest of the input costs about what its head did; and where it costs
                // less, the head was slow to start (cold caches, first page touches): items
                // cannot be cheaper with the other threads busy than in a loop, so the loop
                // costs at most what the pieces did.
                site.serial_cost().update(|word| {
                    word.is_head_estimate()
                        .then(|| (word.confirmed().at_most(piece), ()))
                });
            } else if piece < serial {
                // The same bound for an estimate from whole loops, a step at a time: the loop's
                // estimate is too high (a drift down), or these pieces ran unusually warm.
                site.serial_cost().observe(piece, false, true);
            }
        }
    }
    if let Some(wall_ns) = wall_ns {
        learn_overhead(n, min_len, threads, plan, wall_ns, busy_ns);
    }
}

/// Refines the pool's cost of going parallel from what the call paid beyond its pieces'
/// work.
fn learn_overhead(
    n: usize,
    min_len: usize,
    threads: usize,
    plan: &ParallelRoute,
    wall_ns: f64,
    busy_ns: u64,
) {
    // Overhead is learned from calls short enough for it to matter, split finely enough to
    // balance; the last piece's expected wait (half a piece) is imbalance, not overhead.
    let busy_ns = busy_ns as f64;
    let pieces = n.div_ceil(min_len);
    let per_thread_ns = busy_ns / threads as f64;
    let overhead_ns = plan.machine.overhead_ns;
    if pieces >= 4 * threads && per_thread_ns < 20.0 * overhead_ns.max(1_000.0) {
        plan.pool.observe_overhead(
            wall_ns - per_thread_ns - busy_ns / pieces as f64 / 2.0,
            plan.cold,
        );
    }
}

/// `true` when two costs are the drift factor or more apart.
fn far_apart(a: PerItem, b: PerItem) -> bool {
    let factor = crate::cost::DRIFT_FACTOR as f64;
    let ratio = a.as_nanos().max(1e-3) / b.as_nanos().max(1e-3);
    ratio >= factor || ratio * factor <= 1.0
}

/// What a loop over the call's `n` items would have taken at the site's measured loop
/// cost, or `None` when this call's pieces say that cost no longer holds: they cost the drift
/// factor or more away from what the plan expected (the work changed; the next calls will
/// say how, and a plan made on a stale cost says nothing about parallel runs). `None` too
/// when the call was planned at a loop cost (`planned`) the drift factor or more away from
/// the measured one: a drifted sample its pieces did not bear out (a short loop's first items
/// slowed by a thread just woken, say). Whether parallel pays at the measured cost is not
/// what such a call tried.
///
/// The pieces' own time is not used for the comparison: when the machine is loaded they are
/// stretched by preemption just like the wall time, and the comparison would flatter the
/// parallel run.
fn loop_equivalent_ns(
    n: usize,
    piece: PerItem,
    serial: Option<PerItem>,
    parallel: Option<PerItem>,
    planned: Option<PerItem>,
) -> Option<f64> {
    let serial = serial?;
    let expected = parallel.unwrap_or(serial);
    let misplanned = planned.is_some_and(|planned| far_apart(planned, serial));
    (!far_apart(piece, expected) && !misplanned).then(|| serial.work_ns(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Decision, Machine};
    use std::time::Duration;

    #[test]
    fn a_parallel_call_that_found_the_pool_idle_is_not_judged() {
        static JUDGED: Site = Site::new("judged_when_warm");
        let m = Machine {
            threads: 2,
            overhead_ns: 10_000.0,
            cold_overhead_ns: 50_000.0,
            per_piece_ns: 100.0,
        };
        JUDGED.assume_cost(ns(1_000.0));
        let plan = |cold| ParallelRoute {
            decision: Decision {
                plan: Plan::Parallel {
                    min_len: 50,
                    threads: 2,
                },
                serial_ns: 1_000_000.0,
                parallel_ns: 520_000.0,
            },
            machine: m,
            pool: crate::pool::Pool::with_figures(2, m),
            cold,
            retry: false,
        };
        // 1 000 items of 1 µs whose call took as long as their loop: the helper never came.
        let slow = |cold| {
            let start = Instant::now() - Duration::from_micros(1_000);
            learn_from_parallel(&JUDGED, 1_000, 1, &plan(cold), Some(start), 1_000_000);
        };
        slow(true);
        assert_eq!(
            JUDGED.learned().outcome.observed(),
            None,
            "judged though the pool was idle"
        );
        slow(false);
        assert!(JUDGED.learned().outcome.observed().is_some());
    }

    fn ns(x: f64) -> PerItem {
        PerItem::from_nanos(x)
    }

    #[test]
    fn a_drift_that_only_short_loops_follow_is_dropped_after_enough_of_them() {
        use crate::cost::SHORT_SAMPLES_WHILE_PENDING;
        static SHORT: Site = Site::new("short_loops");
        let cost = || SHORT.serial_word().per_item().unwrap().as_nanos();
        SHORT.assume_cost(ns(1.0));
        // Short loops with no drift pending change nothing.
        for _ in 0..2 * SHORT_SAMPLES_WHILE_PENDING {
            learn_from_serial(&SHORT, 1_000, 600, true);
        }
        assert!(!SHORT.serial_word().drifting());
        // A loop held up (a page fault, a preemption) makes a drift upward pending; short
        // loops neither confirm nor refute it, until enough of them in a row drop it.
        learn_from_serial(&SHORT, 1_000, 24_000, true);
        for _ in 1..SHORT_SAMPLES_WHILE_PENDING {
            learn_from_serial(&SHORT, 1_000, 600, true);
        }
        assert!(SHORT.serial_word().drifting_toward(true));
        learn_from_serial(&SHORT, 1_000, 600, true);
        assert!(!SHORT.serial_word().drifting());
        assert_eq!(cost(), 1.0);
        // A second held-up loop then starts a drift again rather than confirming one.
        learn_from_serial(&SHORT, 1_000, 24_000, true);
        assert_eq!(cost(), 1.0);
        // A drift that a loop long enough to learn from confirms is taken as before, however
        // many short loops came between (fewer than the limit since it began).
        for _ in 1..SHORT_SAMPLES_WHILE_PENDING {
            learn_from_serial(&SHORT, 1_000, 600, true);
        }
        learn_from_serial(&SHORT, 1_000, 24_000, true);
        assert_eq!(cost(), 24.0);
    }

    #[test]
    fn the_loop_equivalent_is_the_measured_loop_cost_while_it_holds() {
        // The loop's measured cost, whatever this call's pieces took (stretched by a
        // loaded machine, or dearer through contention)…
        let loop_ns =
            |piece, serial, parallel| loop_equivalent_ns(1_000, piece, serial, parallel, serial);
        assert_eq!(loop_ns(ns(120.0), Some(ns(100.0)), None), Some(100_000.0));
        assert_eq!(
            loop_ns(ns(300.0), Some(ns(100.0)), Some(ns(150.0))),
            Some(100_000.0)
        );
        // …unless the pieces say the work changed by the drift factor since the plan.
        assert_eq!(loop_ns(ns(1_000.0), Some(ns(100.0)), None), None);
        assert_eq!(loop_ns(ns(10.0), Some(ns(100.0)), None), None);
        assert_eq!(loop_ns(ns(700.0), Some(ns(100.0)), Some(ns(150.0))), None);
        assert_eq!(loop_ns(ns(10.0), None, None), None);
        // A call planned on a drifted sample that its pieces did not bear out.
        let planned_at =
            |planned| loop_equivalent_ns(1_000, ns(100.0), Some(ns(100.0)), None, planned);
        assert_eq!(planned_at(Some(ns(400.0))), None);
        assert_eq!(planned_at(Some(ns(250.0))), Some(100_000.0));
        assert_eq!(planned_at(None), Some(100_000.0));
    }

    #[test]
    fn a_loop_measured_in_place_and_the_pieces_keep_their_own_costs() {
        static APART: Site = Site::new("in_place_apart");
        let m = Machine {
            threads: 2,
            overhead_ns: 1_000.0,
            cold_overhead_ns: 1_000.0,
            per_piece_ns: 50.0,
        };
        let plan = ParallelRoute {
            decision: Decision {
                plan: Plan::Parallel {
                    min_len: 1_000,
                    threads: 2,
                },
                serial_ns: 400_000.0,
                parallel_ns: 200_000.0,
            },
            machine: m,
            pool: crate::pool::Pool::with_figures(2, m),
            cold: false,
            retry: false,
        };
        // 100 000 items whose pieces took `piece_ns` each.
        let pieces = |call, piece_ns: u64| {
            let start = Instant::now() - Duration::from_micros(200);
            learn_from_parallel(
                &APART,
                100_000,
                call,
                &plan,
                Some(start),
                piece_ns * 100_000,
            );
        };
        let serial = || APART.planning_costs().unwrap().serial.as_nanos();
        // 4 ns an item in a loop and in pieces, both writing a new `Vec`.
        APART.assume_cost(ns(4.0));
        // A loop in place takes 0.5 ns: a drift, to be confirmed.
        learn_from_in_place(&APART, 100_000, 50_000, true);
        assert!(APART.loop_in_place());
        assert!(serial() < 1.0, "planned on the drifted sample");
        // Pieces at 4 ns do not bear it out, but they pay for new memory the loop did not.
        pieces(1, 4);
        assert!(APART.serial_word().drifting(), "the drift was dropped");
        // A second loop in place confirms it, for the loop's cost alone.
        learn_from_in_place(&APART, 100_000, 50_000, true);
        assert!(serial() < 1.0);
        assert_eq!(
            APART.planning_costs().unwrap().parallel,
            ns(4.0),
            "the pieces' cost was scaled with the loop's"
        );
        // The pieces' cost changes (the allocator's memory came back cold, say): the
        // loop's cost stands.
        for call in 2..5 {
            pieces(call, 40);
        }
        assert!(APART.planning_costs().unwrap().parallel > ns(10.0));
        assert!(
            serial() < 1.0,
            "the loop's cost was scaled with the pieces'"
        );
        // A loop in place takes 2 ns: a drift up, for loops to confirm, not pieces, which
        // cost more than the loop whatever it does.
        learn_from_in_place(&APART, 100_000, 200_000, true);
        pieces(5, 40);
        assert!(APART.serial_word().drifting(), "confirmed by the pieces");
        // Planned on that drift, the pieces keep the cost they measured (they may have
        // measured the change already), not scaled along.
        assert_eq!(
            APART.planning_costs().unwrap().parallel,
            APART.costs().unwrap().parallel,
            "the pieces' cost was scaled along with the loop's pending drift"
        );
        // Loops that write a new `Vec` again: the site's loop is that one now.
        learn_from_serial(&APART, 100_000, 400_000, true);
        assert!(!APART.loop_in_place());
    }
}
