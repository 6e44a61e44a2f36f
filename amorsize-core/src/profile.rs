//! Timing real work: a call that knows no cost yet runs its first items on the caller's
//! thread in growing, timed blocks until the per-item cost is stable, keeping every result.
//! No dry runs: each item is computed once, here or by the plan that follows.

use crate::pool::median;
use crate::units::PerItem;
use rayon::iter::plumbing::Producer;

/// A block shorter than this is dominated by the clock's own cost (tens of ns per read):
/// it only tells the next block to be longer.
pub(crate) const MIN_BLOCK_NS: u64 = 5_000;
/// Well-timed blocks whose median is the estimate: one preempted block cannot skew it.
pub(crate) const GOOD_BLOCKS: usize = 3;
/// The last [`GOOD_BLOCKS`] well-timed blocks agree when the slowest is within this factor
/// of the fastest; until then the first items' cold start (caches, page faults, lazy
/// initialisation in user code) may still be in them, and profiling goes on.
pub(crate) const STABLE_SPREAD: f64 = 1.5;

fn stable(window: &[f64]) -> bool {
    let (lo, hi) = window.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| {
        (lo.min(x), hi.max(x))
    });
    hi <= lo * STABLE_SPREAD
}

/// Past this much profiled time, one or two well-timed blocks are enough: the items are
/// heavy, and the rest of the call should get on with it in parallel.
pub(crate) const BUDGET_NS: u64 = 200_000;

/// What profiling learned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Estimate {
    /// Estimated cost of one item.
    pub per_item: PerItem,
    /// `true` when it comes from well-timed blocks, `false` when the input ran out first.
    pub strong: bool,
    /// Items already run (their results are in the output).
    pub done: usize,
    /// Time spent running them (nanoseconds).
    pub spent_ns: u64,
}

/// Runs the head of `producer` (which holds `n` items) serially in timed blocks, pushing
/// results to `out` and advancing `watch` by each block. Returns the estimate and the
/// untouched rest, if any.
pub(crate) fn profile<P, F, R>(
    producer: P,
    n: usize,
    f: crate::run::Loop<'_, F>,
    out: &mut Vec<R>,
    watch: Option<&crate::observe::Watch>,
) -> (Estimate, Option<P>)
where
    P: Producer,
    F: Fn(P::Item) -> R,
{
    let (estimate, rest, _) = profile_with(producer, n, |head| {
        let before = out.len();
        let ns = crate::run::timed_loop(head, f, out);
        crate::observe::advance(watch, out.len() - before);
        Some(ns)
    });
    (estimate, rest)
}

/// [`profile`] with the block runner given: `run_block` runs a block and returns its time in
/// nanoseconds, or `None` when the call stopped in it (a fallible item failed). Returns the
/// estimate from the complete blocks, the untouched rest, and whether the call stopped.
pub(crate) fn profile_with<P: Producer>(
    producer: P,
    n: usize,
    mut run_block: impl FnMut(P) -> Option<u64>,
) -> (Estimate, Option<P>, bool) {
    let mut blocks = Blocks::new(n);
    let mut rest = Some(producer);
    while let Some(remaining_producer) = rest.take() {
        let size = blocks.next_size();
        let head = if size == n - blocks.done {
            remaining_producer
        } else {
            let (head, tail) = remaining_producer.split_at(size);
            rest = Some(tail);
            head
        };
        let Some(block_ns) = run_block(head) else {
            return (blocks.estimate(), rest, true);
        };
        if blocks.record(size, block_ns) {
            break;
        }
    }
    (blocks.estimate(), rest, false)
}

/// The rules of profiling, apart from the clock: which block comes next, when to stop, and
/// what the timed blocks say. Fed made-up timings in the tests.
#[derive(Debug)]
struct Blocks {
    n: usize,
    done: usize,
    block: usize,
    spent_ns: u64,
    /// The last well-timed blocks' per-item costs (picoseconds), oldest first.
    window: [f64; GOOD_BLOCKS],
    good: usize,
    /// For the average that short calls fall back on: the one-item first block's time (the
    /// most exposed to a cold start or to being descheduled, it is left out) and the block
    /// of two or more items with the highest per-item time, as (ns, items).
    first_item_ns: u64,
    slowest: Option<(u64, usize)>,
}

impl Blocks {
    fn new(n: usize) -> Blocks {
        Blocks {
            n,
            done: 0,
            block: 1,
            spent_ns: 0,
            window: [0.0; GOOD_BLOCKS],
            good: 0,
            first_item_ns: 0,
            slowest: None,
        }
    }

    /// How many items the next block runs.
    fn next_size(&self) -> usize {
        self.block.min(self.n - self.done)
    }

    /// Records that a block of `size` items took `block_ns`; `true` when profiling is done
    /// (the estimate is stable, the budget is spent, or the input ran out).
    fn record(&mut self, size: usize, block_ns: u64) -> bool {
        if self.done == 0 && size == 1 {
            self.first_item_ns = block_ns;
        } else if size >= 2
            && self.slowest.map_or(true, |(ns, items)| {
                u128::from(block_ns) * items as u128 > u128::from(ns) * size as u128
            })
        {
            self.slowest = Some((block_ns, size));
        }
        self.done += size;
        self.spent_ns = self.spent_ns.saturating_add(block_ns);

        // A one-item block is the most exposed to a cold start (first touches of caches,
        // pages, lazily built state), so it counts only when it alone exhausts the budget.
        let well_timed = block_ns >= MIN_BLOCK_NS && (size >= 2 || block_ns >= BUDGET_NS);
        if well_timed {
            self.window.rotate_left(1);
            self.window[GOOD_BLOCKS - 1] = block_ns as f64 * 1000.0 / size as f64;
            self.good += 1;
            if (self.good >= GOOD_BLOCKS && stable(&self.window)) || self.spent_ns >= BUDGET_NS {
                return true;
            }
        } else {
            // Aim the next block at the minimum duration, at most doubling.
            self.block = self.block.saturating_mul(2);
        }
        self.done >= self.n
    }

    /// What the blocks recorded so far say (none: a zero estimate, items `done` 0).
    fn estimate(&self) -> Estimate {
        let kept = self.good.min(GOOD_BLOCKS);
        let mut recent = self.window;
        let recent = &mut recent[GOOD_BLOCKS - kept..];
        let average_ps =
            || robust_average_ps(self.spent_ns, self.done, self.first_item_ns, self.slowest);
        // With three blocks the median shrugs off one outlier. With fewer, the fastest block
        // is the better guess: noise (preemption, first-touch page faults, a cold cache on
        // the very first item) only ever adds time; so can the one good block of a short
        // call, if it was the one held up, hence the average as a bound. With none, the
        // average.
        let (per_item_ps, strong) = if kept >= GOOD_BLOCKS {
            (median(recent).max(1.0) as u64, true)
        } else if kept > 0 {
            let fastest = recent.iter().copied().fold(f64::INFINITY, f64::min);
            (
                fastest.min(average_ps() as f64).max(1.0) as u64,
                self.spent_ns >= BUDGET_NS,
            )
        } else {
            (average_ps(), false)
        };
        Estimate {
            per_item: PerItem::from_picos(per_item_ps),
            strong,
            done: self.done,
            spent_ns: self.spent_ns,
        }
    }
}

/// The per-item average (picoseconds) of a profiled head, without its one-item first block
/// and without its slowest block when that block is an outlier (over [`OUTLIER`] times the
/// rest's average: held up, not merely a costlier stretch of the input).
fn robust_average_ps(
    spent_ns: u64,
    done: usize,
    first_item_ns: u64,
    slowest: Option<(u64, usize)>,
) -> u64 {
    let (mut ns, mut items) = if done > 1 && first_item_ns > 0 {
        (spent_ns - first_item_ns, done - 1)
    } else {
        (spent_ns, done.max(1))
    };
    if let Some((slow_ns, slow_items)) = slowest {
        if items > slow_items && slow_ns <= ns {
            let others = (ns - slow_ns) as f64 / (items - slow_items) as f64;
            if slow_ns as f64 / slow_items as f64 > OUTLIER * others {
                ns -= slow_ns;
                items -= slow_items;
            }
        }
    }
    (ns.saturating_mul(1000) / items as u64).max(1)
}

/// How many times the rest's per-item average a block must take to count as held up.
const OUTLIER: f64 = 4.0;

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::iter::plumbing::{Producer, ProducerCallback};
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    struct Profile<'a, F> {
        n: usize,
        f: &'a F,
    }

    impl<'a, T, F: Fn(T) -> u64> ProducerCallback<T> for Profile<'a, F> {
        type Output = (Estimate, Vec<u64>, usize);
        fn callback<P: Producer<Item = T>>(self, producer: P) -> Self::Output {
            let mut out = Vec::new();
            let f = crate::run::Loop {
                f: self.f,
                exact: false,
            };
            let (estimate, rest) = profile(producer, self.n, f, &mut out, None);
            let rest_len = rest.map_or(0, |p| p.into_iter().len());
            (estimate, out, rest_len)
        }
    }

    /// Profiles real work: for what does not depend on the clock (every item once, results
    /// in order, the rest left untouched).
    fn run<F: Fn(u64) -> u64>(n: usize, f: F) -> (Estimate, Vec<u64>, usize) {
        (0..n)
            .into_par_iter()
            .map(|x| x as u64)
            .with_producer(Profile { n, f: &f })
    }

    /// Profiles `n` made-up items: item `i` takes `item_ns(i)`, and a block takes the sum of
    /// its items. The rules, without the clock.
    fn simulate(n: usize, item_ns: impl Fn(usize) -> u64) -> Estimate {
        let mut blocks = Blocks::new(n);
        loop {
            let size = blocks.next_size();
            let start = blocks.done;
            let block_ns = (start..start + size).map(&item_ns).sum();
            if blocks.record(size, block_ns) {
                return blocks.estimate();
            }
        }
    }

    #[test]
    fn short_input_is_consumed_whole_and_weak() {
        let calls = AtomicUsize::new(0);
        let (est, out, rest) = run(10, |x| {
            calls.fetch_add(1, Ordering::Relaxed);
            x * 2
        });
        assert_eq!(out, (0..10).map(|x| x * 2).collect::<Vec<_>>());
        assert_eq!(rest, 0);
        assert_eq!(est.done, 10);
        assert_eq!(calls.load(Ordering::Relaxed), 10);
        // Ten 100 ns items: no block reaches 5 µs, so the estimate is provisional.
        let est = simulate(10, |_| 100);
        assert!(!est.strong);
        assert_eq!(est.done, 10);
        assert_eq!(est.per_item.as_picos(), 100_000);
    }

    #[test]
    fn long_input_stops_early_with_results_in_order() {
        let n = 1_000_000;
        let (est, out, rest) = run(n, |x| x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(7));
        assert_eq!(out.len() + rest, n);
        assert_eq!(est.done, out.len());
        let expected: Vec<u64> = (0..out.len() as u64)
            .map(|x| x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(7))
            .collect();
        assert_eq!(out, expected);
        // 1 ns items: blocks double until they last 5 µs, three agree, and profiling stops
        // after about 16 000 of the million.
        let est = simulate(n, |_| 1);
        assert!(est.strong);
        assert_eq!(est.per_item.as_picos(), 1_000);
        assert!(est.done < 40_000, "profiled {} of {n}", est.done);
    }

    #[test]
    fn a_slow_start_is_not_taken_for_the_cost() {
        // The first 3 items are 20× slower (a cold start); the rest cost 1 µs.
        let est = simulate(5_000, |i| if i < 3 { 20_000 } else { 1_000 });
        assert!(est.strong);
        assert_eq!(est.per_item.as_picos(), 1_000_000);
    }

    /// A short call of 100 items of 2 ns in which item `held` is held up for 50 µs (well under
    /// the 200 µs budget): the estimate stays near the others' cost, not the 0.5 µs per item
    /// of a plain average.
    fn assert_short_call_shrugs_off(held: usize) {
        let est = simulate(100, |i| if i == held { 50_000 } else { 2 });
        assert!(!est.strong);
        assert!(
            est.per_item.as_picos() < 10_000,
            "item {held} held up: {est:?}"
        );
    }

    /// The first item alone (a cold start, or the thread descheduled), in a call too short
    /// for well-timed blocks.
    #[test]
    fn a_short_call_does_not_take_its_first_item_for_the_cost() {
        assert_short_call_shrugs_off(0);
    }

    /// An item inside a block of several.
    #[test]
    fn a_short_call_shrugs_off_one_held_up_block() {
        for held in [1, 5, 40, 99] {
            assert_short_call_shrugs_off(held);
        }
    }

    /// The fallback average on made-up numbers: the first item and a held-up block are left
    /// out, a merely costlier last stretch is not.
    #[test]
    fn the_fallback_average_drops_only_outliers() {
        // 100 items in 10 µs; the first took 10 ns; the costliest block (the last 37 items,
        // 150 ns each) is about 2× the rest's 72 ns per item, under 4×: all 99 count.
        assert_eq!(
            robust_average_ps(10_000, 100, 10, Some((5_550, 37))),
            100_909
        );
        // A block of 8 items held up to 50.5 µs: over 4× the rest's 104 ns, left out.
        assert_eq!(
            robust_average_ps(60_000, 100, 10, Some((50_500, 8))),
            104_285
        );
        // No one-item first block (a call that started with a longer one): all items count.
        assert_eq!(robust_average_ps(10_000, 100, 0, None), 100_000);
        // A single item, or nothing at all: no division by zero.
        assert_eq!(robust_average_ps(500, 1, 500, None), 500_000);
        assert_eq!(robust_average_ps(0, 0, 0, None), 1);
        // The slowest block is all there is besides the first item: kept.
        assert_eq!(robust_average_ps(1_010, 3, 10, Some((1_000, 2))), 500_000);
    }

    #[test]
    fn heavy_items_are_profiled_with_few_items() {
        // 300 µs items: the first two pass the 200 µs budget.
        let est = simulate(64, |_| 300_000);
        assert!(est.strong);
        assert!(est.done <= 2, "profiled {} heavy items", est.done);
        assert_eq!(est.per_item.as_picos(), 300_000_000);
        // With the real clock: the spin takes at least its 300 µs.
        let (est, out, rest) = run(64, |x| {
            let start = Instant::now();
            while start.elapsed().as_micros() < 300 {}
            x
        });
        assert_eq!(out.len() + rest, 64);
        assert!(est.per_item.as_picos() >= 300_000_000);
    }
}
