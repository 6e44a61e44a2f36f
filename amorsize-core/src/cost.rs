//! A learned per-item cost in one atomic word: the estimate, how it was learned, and any
//! drift in progress, updated together by compare-and-swap so that no two updates can
//! interleave (a weak estimate can never overwrite a strong one between a check and a
//! store). The rules for each kind of sample are pure functions on [`CostWord`], tested on
//! made-up numbers.
//!
//! Rules:
//! - A profile's estimate fills the word; a weak one (from a call too short to time well)
//!   never replaces a strong one.
//! - A sample within [`DRIFT_FACTOR`] of the estimate moves it a quarter of the way toward
//!   the sample (clamped to a factor two): noise is averaged out.
//! - A sample [`DRIFT_FACTOR`] or more away counts as drift and leaves the estimate as it is
//!   (one call held up by the machine moves nothing). [`DRIFT_STREAK`] drifted samples in a
//!   row, the same way, replace the estimate. While a drift is unconfirmed the word says so:
//!   the next call is timed whatever its length, and is planned on the drifted sample
//!   ([`LearnedCost::speculative`]), so that a changed cost is acted on by the next call and
//!   confirmed (or dropped) by it.
//! - A sample over a whole call replaces an estimate taken from the head of an earlier call
//!   (the head may be cheaper or dearer than the rest of the input).
//! - A drift pending that only timed samples too short to learn from follow (see `learn`) is
//!   dropped after [`SHORT_SAMPLES_WHILE_PENDING`] of them in a row.

use crate::units::PerItem;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A sample this far from the estimate (either way) counts as drift…
pub(crate) const DRIFT_FACTOR: u64 = 4;
/// …and this many drifted samples in a row, the same way, replace the estimate.
pub(crate) const DRIFT_STREAK: u64 = 2;

const STATE_SHIFT: u32 = 62;
const STREAK_SHIFT: u32 = 60;
const STREAK_MASK: u64 = 0b11;
const UP_BIT: u64 = 1 << 59;
const HEAD_BIT: u64 = 1 << 58;
/// The estimate's picoseconds: 58 bits, 80 hours per item.
const COST_MASK: u64 = HEAD_BIT - 1;

/// How the estimate was learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Basis {
    /// Nothing learned yet.
    Unknown = 0,
    /// From a call too short to time well: enough to keep short calls serial, but a call
    /// long enough to go parallel profiles again.
    Weak = 1,
    /// From well-timed work.
    Tuned = 2,
}

/// The packed state: basis (2 bits), drift streak (2), drift direction (1), head estimate
/// (1), picoseconds (58).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CostWord(u64);

/// What one sample did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Change {
    /// Averaged in (or only counted toward a drift).
    Refined,
    /// A drift confirmed: the estimate was replaced; `factor` is new / old.
    Drifted { factor: f64 },
    /// A first estimate, or a whole call replacing a head estimate.
    Replaced,
}

impl CostWord {
    /// Nothing learned.
    pub(crate) const UNKNOWN: CostWord = CostWord(0);

    fn new(basis: Basis, cost: PerItem, streak: u64, up: bool, head: bool) -> CostWord {
        let ps = cost.as_picos().clamp(1, COST_MASK);
        CostWord(
            (basis as u64) << STATE_SHIFT
                | (streak.min(STREAK_MASK)) << STREAK_SHIFT
                | if up { UP_BIT } else { 0 }
                | if head { HEAD_BIT } else { 0 }
                | ps,
        )
    }

    pub(crate) fn basis(self) -> Basis {
        match self.0 >> STATE_SHIFT {
            0 => Basis::Unknown,
            1 => Basis::Weak,
            _ => Basis::Tuned,
        }
    }

    /// The estimate, once there is one.
    #[inline(always)]
    pub(crate) fn per_item(self) -> Option<PerItem> {
        (self.0 >> STATE_SHIFT != 0).then_some(PerItem::from_picos(self.0 & COST_MASK))
    }

    /// `true` while a drifted sample waits for confirmation: the next call is timed.
    #[inline(always)]
    pub(crate) fn drifting(self) -> bool {
        (self.0 >> STREAK_SHIFT) & STREAK_MASK != 0
    }

    fn streak(self) -> u64 {
        (self.0 >> STREAK_SHIFT) & STREAK_MASK
    }

    /// `true` when the estimate came from the head of a call, not from whole calls.
    pub(crate) fn is_head_estimate(self) -> bool {
        self.0 & HEAD_BIT != 0
    }

    /// The word after a profile estimated `estimate`: `strong` when it came from well-timed
    /// blocks, `head` when the call went on past the profiled items. `None` when the word
    /// should stay as it is (a weak estimate never replaces a tuned one).
    pub(crate) fn after_profile(
        self,
        estimate: PerItem,
        strong: bool,
        head: bool,
    ) -> Option<CostWord> {
        if strong {
            Some(CostWord::new(Basis::Tuned, estimate, 0, false, head))
        } else if self.basis() == Basis::Tuned {
            None
        } else {
            Some(CostWord::new(Basis::Weak, estimate, 0, false, head))
        }
    }

    /// The word after a timed sample of `sample` per item; `whole_call` when it covers a
    /// whole call's items. `smooth` is `false` for samples that may only reveal a drift,
    /// never nudge the estimate (see `learn`).
    pub(crate) fn after_sample(
        self,
        sample: PerItem,
        whole_call: bool,
        smooth: bool,
    ) -> (CostWord, Change) {
        let sample_ps = sample.as_picos().max(1);
        let Some(old) = self.per_item() else {
            return (
                CostWord::new(Basis::Weak, sample, 0, false, !whole_call),
                Change::Replaced,
            );
        };
        let basis = self.basis();
        if whole_call && self.is_head_estimate() {
            return (
                CostWord::new(basis, sample, 0, false, false),
                Change::Replaced,
            );
        }
        let old_ps = old.as_picos().max(1);
        let up = sample_ps >= old_ps.saturating_mul(DRIFT_FACTOR);
        let down = sample_ps.saturating_mul(DRIFT_FACTOR) <= old_ps;
        let head = self.is_head_estimate();
        if up || down {
            let streak = if self.streak() > 0 && (self.0 & UP_BIT != 0) == up {
                self.streak() + 1
            } else {
                1
            };
            if streak >= DRIFT_STREAK {
                let factor = sample_ps as f64 / old_ps as f64;
                return (
                    CostWord::new(basis, sample, 0, false, head),
                    Change::Drifted { factor },
                );
            }
            return (CostWord::new(basis, old, streak, up, head), Change::Refined);
        }
        let cost = if smooth {
            smoothed(old_ps, sample_ps)
        } else {
            old_ps
        };
        (
            CostWord::new(basis, PerItem::from_picos(cost), 0, false, head),
            Change::Refined,
        )
    }

    /// The same estimate, marked as well timed (a second sample agreed with a first).
    pub(crate) fn tuned(self) -> CostWord {
        if self.basis() == Basis::Unknown {
            return self;
        }
        CostWord((self.0 & !(0b11 << STATE_SHIFT)) | (Basis::Tuned as u64) << STATE_SHIFT)
    }

    /// The same estimate, marked as measured over whole calls (a parallel call's pieces
    /// agreed with an estimate taken from a head).
    pub(crate) fn confirmed(self) -> CostWord {
        CostWord(self.0 & !HEAD_BIT)
    }

    /// The estimate scaled by `factor` (a drift confirmed elsewhere), keeping its basis and
    /// head flag; any drift of its own in progress is settled by it.
    pub(crate) fn scaled(self, factor: f64) -> CostWord {
        let Some(old) = self.per_item() else {
            return self;
        };
        // `as` saturates, and turns NaN into 0.
        let ps = ((old.as_picos() as f64 * factor) as u64).clamp(1, COST_MASK);
        CostWord::new(
            self.basis(),
            PerItem::from_picos(ps),
            0,
            false,
            self.is_head_estimate(),
        )
    }

    /// The same estimate with no drift pending (a sample from elsewhere refuted it).
    pub(crate) fn settled(self) -> CostWord {
        match self.per_item() {
            Some(cost) => CostWord::new(self.basis(), cost, 0, false, self.is_head_estimate()),
            None => self,
        }
    }

    /// The same word with its estimate lowered to `bound` if it is above it.
    pub(crate) fn at_most(self, bound: PerItem) -> CostWord {
        match self.per_item() {
            Some(cost) if cost > bound => CostWord::new(
                self.basis(),
                bound,
                self.streak(),
                self.0 & UP_BIT != 0,
                self.is_head_estimate(),
            ),
            _ => self,
        }
    }

    /// `true` while a drift upward (`up`) or downward awaits confirmation.
    pub(crate) fn drifting_toward(self, up: bool) -> bool {
        self.drifting() && (self.0 & UP_BIT != 0) == up
    }
}

/// One sample averaged in: a quarter of the way toward it, clamped to a factor two.
fn smoothed(old_ps: u64, sample_ps: u64) -> u64 {
    let clamped = sample_ps.clamp(old_ps / 2, old_ps.saturating_mul(2)) as i128;
    let updated = old_ps as i128 + (clamped - old_ps as i128) / 4;
    updated.max(1) as u64
}

/// Timed samples too short to learn from (see `learn`) that may come in a row while a drift
/// is pending before the drift is dropped. A site whose calls are all that short learns only
/// from the ones held up (a page fault, a preemption), and one of those leaves a drift
/// pending that nothing confirms or refutes, during which every call is timed: the clock
/// then costs more than the work of a few-item call, and a stream cannot map a short input
/// one by one. Calls of the same site that hold dearer items come far sooner than this
/// many short ones in the mixes measured (`bench_matrix`'s drift cell: 4).
pub(crate) const SHORT_SAMPLES_WHILE_PENDING: u32 = 64;

/// A [`CostWord`] shared between threads, with the latest drifted sample beside it.
#[derive(Debug)]
pub(crate) struct LearnedCost {
    word: AtomicU64,
    /// The latest sample that counted as drift (picoseconds): what calls are planned on
    /// while the drift awaits confirmation. Only read while the word says it drifts.
    pending_ps: AtomicU64,
    /// Timed samples too short to learn from since the drift pending began.
    short_samples: AtomicU32,
}

impl LearnedCost {
    pub(crate) const fn new() -> LearnedCost {
        LearnedCost {
            word: AtomicU64::new(CostWord::UNKNOWN.0),
            pending_ps: AtomicU64::new(0),
            short_samples: AtomicU32::new(0),
        }
    }

    /// Counts a timed sample too short to learn from; the
    /// [`SHORT_SAMPLES_WHILE_PENDING`]th in a row while a drift is pending drops the drift.
    pub(crate) fn short_sample(&self) {
        if !self.load().drifting() {
            return;
        }
        if self.short_samples.fetch_add(1, Ordering::Relaxed) + 1 >= SHORT_SAMPLES_WHILE_PENDING {
            self.short_samples.store(0, Ordering::Relaxed);
            self.update(|word| word.drifting().then(|| (word.settled(), ())));
        }
    }

    #[inline(always)]
    pub(crate) fn load(&self) -> CostWord {
        CostWord(self.word.load(Ordering::Acquire))
    }

    /// Applies a timed sample (see [`CostWord::after_sample`]); a sample that counts as
    /// drift is kept as the pending estimate.
    pub(crate) fn observe(
        &self,
        sample: PerItem,
        whole_call: bool,
        smooth: bool,
    ) -> (CostWord, Change) {
        let (word, change) = self
            .update(|word| Some(word.after_sample(sample, whole_call, smooth)))
            .expect("the rule always applies");
        if word.drifting() {
            self.pending_ps
                .store(sample.as_picos().max(1), Ordering::Relaxed);
            self.short_samples.store(0, Ordering::Relaxed);
        }
        (word, change)
    }

    /// The cost to plan with while a drift awaits confirmation: the latest drifted sample.
    pub(crate) fn speculative(&self) -> Option<PerItem> {
        let word = self.load();
        let pending = self.pending_ps.load(Ordering::Relaxed);
        (word.drifting() && pending != 0).then(|| PerItem::from_picos(pending))
    }

    /// Confirms a pending drift upward (`up`) or downward with evidence from elsewhere (a
    /// parallel call's pieces, which measure another cost but the same work): the pending
    /// sample replaces the estimate. Returns the factor (new / old), or `None` if no such
    /// drift was pending.
    pub(crate) fn confirm_pending(&self, up: bool) -> Option<f64> {
        let pending = PerItem::from_picos(self.pending_ps.load(Ordering::Relaxed).max(1));
        self.update(|word| {
            let old = word.per_item()?;
            word.drifting_toward(up).then(|| {
                let factor = pending.as_picos() as f64 / old.as_picos().max(1) as f64;
                (word.scaled(factor), factor)
            })
        })
        .map(|(_, factor)| factor)
    }

    /// Applies `rule` to the current word until it sticks (nobody changed the word in
    /// between); returns what the last application reported, or `None` if `rule` left the
    /// word alone.
    pub(crate) fn update<C>(
        &self,
        mut rule: impl FnMut(CostWord) -> Option<(CostWord, C)>,
    ) -> Option<(CostWord, C)> {
        let mut current = self.load();
        loop {
            let (next, change) = rule(current)?;
            match self.word.compare_exchange_weak(
                current.0,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some((next, change)),
                Err(actual) => current = CostWord(actual),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ps(x: u64) -> PerItem {
        PerItem::from_picos(x)
    }

    fn tuned(x: u64) -> CostWord {
        CostWord::UNKNOWN.after_profile(ps(x), true, false).unwrap()
    }

    #[test]
    fn a_weak_estimate_never_replaces_a_tuned_one() {
        let weak = CostWord::UNKNOWN
            .after_profile(ps(10_000), false, false)
            .unwrap();
        assert_eq!(weak.basis(), Basis::Weak);
        assert_eq!(weak.per_item(), Some(ps(10_000)));
        assert_eq!(
            weak.after_profile(ps(5), false, false).unwrap().per_item(),
            Some(ps(5))
        );
        let strong = weak.after_profile(ps(20_000), true, false).unwrap();
        assert_eq!(strong.basis(), Basis::Tuned);
        assert_eq!(strong.after_profile(ps(1), false, false), None);
        assert_eq!(CostWord::UNKNOWN.per_item(), None);
    }

    #[test]
    fn samples_within_the_drift_factor_are_averaged_in() {
        let w = tuned(20_000);
        // A wild-ish sample (3×) moves the cost a quarter of the way to twice it.
        let (w, change) = w.after_sample(ps(60_000), false, true);
        assert_eq!(change, Change::Refined);
        assert_eq!(w.per_item(), Some(ps(25_000)));
        assert!(!w.drifting());
        let (w, _) = w.after_sample(ps(25_000), false, true);
        assert_eq!(w.per_item(), Some(ps(25_000)));
        // A sample that may not smooth leaves the estimate.
        let (w, _) = w.after_sample(ps(40_000), false, false);
        assert_eq!(w.per_item(), Some(ps(25_000)));
    }

    #[test]
    fn a_drift_is_confirmed_by_the_second_sample() {
        // 2 ns per item, then 700 ns: the first sample marks a drift and times the next
        // call; the second replaces the estimate.
        let w = tuned(2_000);
        let (w, change) = w.after_sample(ps(700_000), true, true);
        assert_eq!(change, Change::Refined);
        assert!(w.drifting());
        assert_eq!(w.per_item(), Some(ps(2_000)), "unconfirmed: unchanged");
        let (w, change) = w.after_sample(ps(700_000), true, true);
        assert_eq!(change, Change::Drifted { factor: 350.0 });
        assert_eq!(w.per_item(), Some(ps(700_000)));
        assert!(!w.drifting());
        assert_eq!(w.basis(), Basis::Tuned);
        // And down again, just as fast.
        let (w, _) = w.after_sample(ps(1_000), true, true);
        let (w, change) = w.after_sample(ps(1_000), true, true);
        assert!(matches!(change, Change::Drifted { .. }));
        assert_eq!(w.per_item(), Some(ps(1_000)));
    }

    #[test]
    fn one_outlier_or_a_zigzag_is_not_a_drift() {
        let w = tuned(10_000);
        let (w, _) = w.after_sample(ps(10_000_000), true, true); // a preempted call
        assert!(w.drifting());
        assert_eq!(w.per_item(), Some(ps(10_000)));
        let (w, _) = w.after_sample(ps(10_000), true, true);
        assert!(!w.drifting());
        assert_eq!(w.per_item(), Some(ps(10_000)));
        // Up, then down: two drifted samples, but not the same way.
        let (w, _) = w.after_sample(ps(1_000_000), true, true);
        let (w, change) = w.after_sample(ps(100), true, true);
        assert_eq!(change, Change::Refined);
        assert!(w.drifting());
    }

    #[test]
    fn a_whole_call_replaces_a_head_estimate_once() {
        // The head of the first call was cheap (a skewed input): 10 ns per item; the whole
        // next call averages 2 µs.
        let head = CostWord::UNKNOWN
            .after_profile(ps(10_000), true, true)
            .unwrap();
        assert!(head.is_head_estimate());
        // A parallel call's pieces are not a whole loop: they do not replace it.
        let (w, _) = head.after_sample(ps(2_000_000), false, true);
        assert!(w.is_head_estimate());
        assert!(!head.confirmed().is_head_estimate());
        assert_eq!(head.at_most(ps(5_000)).per_item(), Some(ps(5_000)));
        assert_eq!(head.at_most(ps(50_000)), head);
        assert!(head.at_most(ps(5_000)).is_head_estimate());
        let weak = CostWord::UNKNOWN.after_sample(ps(5), false, true).0;
        assert_eq!(weak.basis(), Basis::Weak);
        assert_eq!(weak.tuned().basis(), Basis::Tuned);
        assert_eq!(weak.tuned().per_item(), weak.per_item());
        assert_eq!(CostWord::UNKNOWN.tuned(), CostWord::UNKNOWN);
        assert_eq!(head.confirmed().per_item(), head.per_item());
        let (w, change) = head.after_sample(ps(2_000_000), true, true);
        assert_eq!(change, Change::Replaced);
        assert_eq!(w.per_item(), Some(ps(2_000_000)));
        assert!(!w.is_head_estimate());
        assert_eq!(w.basis(), Basis::Tuned);
        // From then on, whole calls are averaged in as usual.
        let (w, change) = w.after_sample(ps(2_200_000), true, true);
        assert_eq!(change, Change::Refined);
        assert_eq!(w.per_item(), Some(ps(2_050_000)));
    }

    #[test]
    fn scaling_and_extremes_stay_in_range() {
        let w = tuned(1_000).scaled(3.0);
        assert_eq!(w.per_item(), Some(ps(3_000)));
        assert_eq!(w.basis(), Basis::Tuned);
        assert_eq!(CostWord::UNKNOWN.scaled(2.0), CostWord::UNKNOWN);
        assert_eq!(tuned(u64::MAX).per_item(), Some(ps(COST_MASK)));
        assert_eq!(tuned(0).per_item(), Some(ps(1)));
        let (w, _) = tuned(COST_MASK).after_sample(ps(u64::MAX), true, true);
        assert_eq!(w.per_item(), Some(ps(COST_MASK)));
        assert_eq!(tuned(5).scaled(f64::NAN).per_item(), Some(ps(1)));
    }

    #[test]
    fn a_pending_drift_is_planned_on_and_confirmed_from_elsewhere() {
        let cost = LearnedCost::new();
        cost.update(|w| w.after_profile(ps(2_000), true, false).map(|w| (w, ())));
        assert_eq!(cost.speculative(), None);
        let (w, _) = cost.observe(ps(900_000), true, true);
        assert!(w.drifting_toward(true) && !w.drifting_toward(false));
        assert_eq!(cost.speculative(), Some(ps(900_000)));
        assert_eq!(cost.load().per_item(), Some(ps(2_000)));
        // Pieces of a parallel call planned on it agree: confirmed.
        assert_eq!(cost.confirm_pending(false), None);
        assert_eq!(cost.confirm_pending(true), Some(450.0));
        assert_eq!(cost.load().per_item(), Some(ps(900_000)));
        assert!(!cost.load().drifting());
        assert_eq!(cost.speculative(), None);
        // A sample back in line drops a pending drift.
        cost.observe(ps(9_000_000), true, true);
        assert!(cost.speculative().is_some());
        cost.observe(ps(950_000), true, true);
        assert_eq!(cost.speculative(), None);
        assert_eq!(cost.confirm_pending(true), None);
        // A sample from elsewhere can refute it too, leaving the estimate as it was.
        let before = cost.load().per_item();
        cost.observe(ps(9_000_000), true, true);
        cost.update(|w| w.drifting().then(|| (w.settled(), ())));
        assert_eq!(cost.speculative(), None);
        assert_eq!(cost.load().per_item(), before);
    }

    #[test]
    fn concurrent_updates_all_land() {
        let cost = LearnedCost::new();
        cost.update(|w| w.after_profile(ps(1_000), true, false).map(|w| (w, ())));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1_000 {
                        cost.update(|w| Some((w.scaled(1.0), ())));
                    }
                });
            }
        });
        assert_eq!(cost.load().per_item(), Some(ps(1_000)));
        // A rule that declines leaves the word.
        assert!(cost
            .update(|w| w.after_profile(ps(5), false, false).map(|w| (w, ())))
            .is_none());
        assert_eq!(cost.load().per_item(), Some(ps(1_000)));
    }
}
