//! The cost model: pure arithmetic that turns one call's length, the learned per-item cost and
//! the machine's parallel overhead into a [`Plan`]. No clocks, no state; unit-tested with
//! made-up numbers.

use crate::units::PerItem;

/// What one call will do: run on the caller's thread, or split across rayon's pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "kind", rename_all = "snake_case")
)]
pub enum Plan {
    /// A plain loop on the calling thread.
    Serial,
    /// A rayon parallel map whose pieces hold at least `min_len` items (rayon's
    /// `with_min_len`), spread over `threads` threads.
    Parallel {
        /// The minimum number of items rayon may put in one piece of work.
        min_len: usize,
        /// How many threads the pieces are expected to keep busy.
        threads: usize,
    },
}

impl Plan {
    /// `true` for [`Plan::Parallel`].
    pub fn is_parallel(&self) -> bool {
        matches!(self, Plan::Parallel { .. })
    }
}

/// What the model knows of the machine, measured once per process by
/// [`machine`](crate::machine()).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Machine {
    /// Threads a parallel call can keep busy at once: rayon's pool size, capped at the CPUs
    /// this process may use (`std::thread::available_parallelism`), as a pool larger than
    /// the machine only takes turns.
    pub threads: usize,
    /// Fixed cost of one parallel call that finds the pool awake: forking and joining
    /// (nanoseconds). The model plans with this field.
    pub overhead_ns: f64,
    /// The same after the pool has idled, when its threads must be woken first
    /// (nanoseconds). For reports: calls plan with `overhead_ns` whatever the pool's state,
    /// as the calling thread starts working without waiting for the pool. Equal to
    /// `overhead_ns` until measured (see [`Report::cold_measured`](crate::Report::cold_measured)).
    pub cold_overhead_ns: f64,
    /// Extra cost of every further piece a parallel call is cut into (nanoseconds).
    pub per_piece_ns: f64,
}

/// What one item costs: in a plain loop, and inside the pieces of a parallel map, where
/// items that contend for memory bandwidth or the allocator run slower than alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Costs {
    /// One item in a plain loop on one thread.
    pub serial: PerItem,
    /// One item inside a parallel piece, with the other threads busy too.
    pub parallel: PerItem,
}

impl Costs {
    /// The same cost in a loop and in parallel: work that scales perfectly.
    pub const fn uniform(per_item: PerItem) -> Costs {
        Costs {
            serial: per_item,
            parallel: per_item,
        }
    }
}

/// The model's answer for one call: the plan and the times it predicts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// What to do.
    pub plan: Plan,
    /// Predicted time of a plain loop over the call (nanoseconds).
    pub serial_ns: f64,
    /// Predicted time of the best parallel split, whether or not it was chosen (nanoseconds).
    pub parallel_ns: f64,
}

impl Decision {
    /// Predicted speedup of the chosen plan over a plain loop (1.0 for a serial plan).
    pub fn predicted_speedup(&self) -> f64 {
        match self.plan {
            Plan::Serial => 1.0,
            Plan::Parallel { .. } => self.serial_ns / self.parallel_ns,
        }
    }
}

/// Going parallel must promise at least this speedup: below it the prediction's error and
/// the machine's noise can turn a small predicted gain into a real loss.
pub const MIN_SPEEDUP: f64 = 1.25;

/// At most this many pieces per thread: enough for rayon to rebalance uneven work, few
/// enough that one misjudged cost cannot cut a call into thousands of pieces.
pub const MAX_PIECES_PER_THREAD: usize = 16;

/// A piece must be long enough that its own scheduling cost stays under this share of it.
pub const MAX_PIECE_OVERHEAD_SHARE: f64 = 0.05;

/// Total predicted work (picoseconds) below which no call can go parallel on `machine`,
/// whatever its length. The hot path compares a call's `n × per_item` against it before
/// asking [`decide`]: it is a necessary condition, so it never hides a parallel plan.
pub fn serial_work_limit_ps(machine: &Machine) -> u64 {
    if machine.threads < 2 {
        return u64::MAX;
    }
    let limit = machine.overhead_ns * MIN_SPEEDUP * 1000.0;
    if limit.is_finite() && limit > 0.0 {
        limit as u64
    } else {
        0
    }
}

/// Chooses the plan for a call of `n` items costing `costs` each on `machine`.
///
/// Serial time is `n × costs.serial`. Parallel time is modelled as the fixed overhead, plus
/// each thread's share of the pieces' scheduling cost, plus each thread's share of the work
/// (at `costs.parallel` per item) rounded up to whole pieces. The parallel plan wins only if
/// it is predicted [`MIN_SPEEDUP`] times faster than the loop.
pub fn decide(n: usize, costs: Costs, machine: &Machine) -> Decision {
    let serial_ns = costs.serial.work_ns(n);
    let per_item_ns = in_pieces(costs).as_nanos();
    let serial = Decision {
        plan: Plan::Serial,
        serial_ns,
        parallel_ns: f64::INFINITY,
    };
    if n < 2 || machine.threads < 2 || costs.serial == PerItem::ZERO {
        return serial;
    }

    let min_len = min_len(n, per_item_ns, machine);
    let pieces = n.div_ceil(min_len);
    let threads = machine.threads.min(pieces);
    if threads < 2 {
        return serial;
    }
    let pieces_per_thread = pieces.div_ceil(threads);
    // The busiest thread runs `pieces_per_thread` pieces of at most `min_len` items each
    // (rayon halves ranges, so pieces are between `min_len` and `2 × min_len` long; using
    // the even share below keeps the estimate unbiased when pieces are uniform).
    let busiest_items = (n as f64 / threads as f64).max(min_len.min(n) as f64);
    let parallel_ns = machine.overhead_ns.max(0.0)
        + pieces_per_thread as f64 * machine.per_piece_ns.max(0.0)
        + busiest_items * per_item_ns;
    let decision = Decision {
        plan: Plan::Parallel { min_len, threads },
        serial_ns,
        parallel_ns,
    };
    if decision.predicted_speedup() >= MIN_SPEEDUP {
        decision
    } else {
        Decision {
            parallel_ns,
            ..serial
        }
    }
}

/// What an item costs in parallel pieces, as [`decide`] weighs it: pieces that measured
/// free (clock granularity) cost what the loop does.
pub(crate) fn in_pieces(costs: Costs) -> PerItem {
    if costs.parallel == PerItem::ZERO {
        costs.serial
    } else {
        costs.parallel
    }
}

/// The fewest items of `per_item_ns` each that make a piece worth its scheduling cost on
/// `machine` (that cost at most [`MAX_PIECE_OVERHEAD_SHARE`] of the piece's): a call with
/// no more items than this makes one piece.
pub(crate) fn piece_floor(per_item_ns: f64, machine: &Machine) -> f64 {
    (machine.per_piece_ns.max(0.0) / MAX_PIECE_OVERHEAD_SHARE / per_item_ns).ceil()
}

/// The split length for a parallel call: long enough that a piece's scheduling cost is a small
/// share of it, and long enough that there are at most [`MAX_PIECES_PER_THREAD`] pieces per
/// thread.
fn min_len(n: usize, per_item_ns: f64, machine: &Machine) -> usize {
    let max_pieces = machine.threads.saturating_mul(MAX_PIECES_PER_THREAD).max(1);
    let by_piece_cap = n.div_ceil(max_pieces);
    let by_overhead = piece_floor(per_item_ns, machine);
    let by_overhead = if by_overhead >= n as f64 {
        n
    } else {
        by_overhead as usize
    };
    by_piece_cap.max(by_overhead).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(per_item_ns: f64) -> Costs {
        Costs::uniform(PerItem::from_nanos(per_item_ns))
    }

    fn two_cores() -> Machine {
        Machine {
            threads: 2,
            overhead_ns: 10_000.0,
            cold_overhead_ns: 100_000.0,
            per_piece_ns: 200.0,
        }
    }

    #[test]
    fn tiny_calls_stay_serial() {
        let m = two_cores();
        assert_eq!(decide(0, ns(1000.0), &m).plan, Plan::Serial);
        assert_eq!(decide(1, ns(1e9), &m).plan, Plan::Serial);
        // 100 items of 2 ns: 0.2 µs of work against 10 µs of overhead.
        assert_eq!(decide(100, ns(2.0), &m).plan, Plan::Serial);
    }

    #[test]
    fn heavy_calls_go_parallel_on_all_threads() {
        let m = two_cores();
        let d = decide(64, ns(1_000_000.0), &m);
        assert_eq!(
            d.plan,
            Plan::Parallel {
                min_len: 2,
                threads: 2
            }
        );
        assert!(d.predicted_speedup() > 1.9 && d.predicted_speedup() <= 2.0);
    }

    #[test]
    fn two_items_of_heavy_work_split_in_two() {
        let d = decide(2, ns(1_000_000.0), &two_cores());
        assert_eq!(
            d.plan,
            Plan::Parallel {
                min_len: 1,
                threads: 2
            }
        );
    }

    #[test]
    fn break_even_sits_where_speedup_reaches_the_minimum() {
        let m = two_cores();
        // With 1 µs items the parallel time is 10 µs + n/2 µs (+ piece costs): serial
        // n µs reaches 1.25× of that only once n is well above 20.
        let first_parallel = (2..10_000)
            .find(|&n| decide(n, ns(1000.0), &m).plan.is_parallel())
            .unwrap();
        assert!((30..100).contains(&first_parallel), "{first_parallel}");
        // Monotone: once parallel, longer calls stay parallel.
        for n in first_parallel..first_parallel + 2000 {
            assert!(decide(n, ns(1000.0), &m).plan.is_parallel(), "n = {n}");
        }
        // Just below, the predicted speedup is under the minimum.
        let below = decide(first_parallel - 1, ns(1000.0), &m);
        assert_eq!(below.plan, Plan::Serial);
        assert!(below.serial_ns / below.parallel_ns < MIN_SPEEDUP);
    }

    #[test]
    fn pieces_are_capped_per_thread() {
        let m = two_cores();
        // Cheap items, huge n: the overhead bound would allow tiny pieces; the cap holds.
        let d = decide(1_000_000, ns(50.0), &m);
        match d.plan {
            Plan::Parallel { min_len, threads } => {
                assert_eq!(threads, 2);
                assert_eq!(min_len, 1_000_000 / (2 * MAX_PIECES_PER_THREAD));
            }
            Plan::Serial => panic!("expected parallel, got {d:?}"),
        }
    }

    #[test]
    fn cheap_items_get_pieces_long_enough_to_pay_for_themselves() {
        let m = two_cores();
        // 2 ns items: a piece must run ≥ 200 ns / 5 % = 4 µs, i.e. ≥ 2000 items.
        match decide(1_000_000, ns(2.0), &m).plan {
            Plan::Parallel { min_len, .. } => assert!(min_len >= 2000, "{min_len}"),
            Plan::Serial => panic!("1M × 2 ns = 2 ms should be parallel"),
        }
    }

    #[test]
    fn few_pieces_use_fewer_threads() {
        let m = Machine {
            threads: 16,
            overhead_ns: 10_000.0,
            cold_overhead_ns: 10_000.0,
            per_piece_ns: 1_000.0,
        };
        // 40 items of 5 µs: pieces must run ≥ 20 µs = 4 items, so at most 10 pieces.
        match decide(40, ns(5_000.0), &m).plan {
            Plan::Parallel { min_len, threads } => {
                assert_eq!(min_len, 4);
                assert_eq!(threads, 10);
            }
            Plan::Serial => panic!("expected parallel"),
        }
    }

    #[test]
    fn one_thread_or_free_items_mean_serial() {
        let one = Machine {
            threads: 1,
            ..two_cores()
        };
        assert_eq!(decide(1_000_000, ns(1e6), &one).plan, Plan::Serial);
        assert_eq!(serial_work_limit_ps(&one), u64::MAX);
        let m = two_cores();
        assert_eq!(decide(1_000_000, ns(0.0), &m).plan, Plan::Serial);
    }

    #[test]
    fn the_hot_path_limit_never_hides_a_parallel_plan() {
        let m = two_cores();
        let limit = serial_work_limit_ps(&m);
        for &c in &[1.0, 3.0, 50.0, 1000.0, 1e5, 1e6] {
            for n in [2usize, 3, 10, 100, 1000, 10_000, 100_000, 1_000_000] {
                let work_ps = PerItem::from_nanos(c).work_ps(n);
                if work_ps < limit {
                    assert_eq!(decide(n, ns(c), &m).plan, Plan::Serial, "n={n} c={c}");
                }
            }
        }
    }

    #[test]
    fn items_that_cost_more_in_parallel_shrink_the_speedup() {
        let m = two_cores();
        let uniform = decide(100_000, ns(1000.0), &m);
        assert!(uniform.predicted_speedup() > 1.9);
        // Memory-bound: each item takes 1.5× as long with both threads busy.
        let contended = Costs {
            serial: PerItem::from_nanos(1000.0),
            parallel: PerItem::from_nanos(1500.0),
        };
        let d = decide(100_000, contended, &m);
        assert!(d.plan.is_parallel());
        let expected = 2.0 / 1.5;
        assert!((d.predicted_speedup() - expected).abs() < 0.01, "{d:?}");
        // Allocation-bound: 2.5× as long in parallel: the loop wins.
        let worse = Costs {
            parallel: PerItem::from_nanos(2500.0),
            ..contended
        };
        assert_eq!(decide(100_000, worse, &m).plan, Plan::Serial);
        // Pieces that measured free are taken at the loop's cost.
        let free = Costs {
            parallel: PerItem::ZERO,
            ..contended
        };
        assert_eq!(decide(100_000, free, &m), uniform);
    }

    #[test]
    fn huge_costs_do_not_overflow() {
        let m = two_cores();
        let d = decide(usize::MAX, ns(1e12), &m);
        assert!(d.plan.is_parallel());
        assert!(d.predicted_speedup().is_finite());
    }
}
