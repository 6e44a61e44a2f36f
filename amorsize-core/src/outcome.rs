//! Whether a site's parallel runs pay, judged by what they measured rather than by what the
//! model predicted: each timed parallel call's wall time against the time the loop would
//! take at the site's measured cost. Pure bookkeeping on call indices (no clocks), tested on
//! made-up numbers.
//!
//! Rules:
//! - Each timed parallel call's speedup over the loop is averaged in (a geometric mean, the
//!   new call weighing half), so that one call held up by the machine does not decide.
//! - Parallel pays while that average is at least [`PAYS_FROM`]. Once it falls below (after
//!   [`MIN_SAMPLES`] calls: two bad calls in a row from a good history, a few middling
//!   ones), the site goes back to the loop for calls of up to [`VERDICT_SPAN`] times the
//!   longest one that failed (longer calls still follow the model, and fail on their own if
//!   they must).
//! - The loop holds for a backoff of calls, then parallel is tried once more: if it pays, the
//!   verdict is lifted; if not, the next backoff is twice as long (from [`FIRST_BACKOFF`] up to
//!   [`MAX_BACKOFF`] calls). A transient load spike therefore cannot pin a site serial.
//! - A confirmed drift of the site's cost forgets all of it: runs of other work say nothing
//!   of this one.
//! - A plan the model turned down only because items ran dearer in parallel pieces than in the
//!   loop (allocation or memory contention) is retried on the same backoff, so that a cost
//!   measured in a bad moment is measured again.

/// Parallel pays while its calls' averaged speedup over the loop is at least this.
pub(crate) const PAYS_FROM: f64 = 1.0;
/// Parallel calls measured before the average can send a site back to the loop.
pub(crate) const MIN_SAMPLES: u32 = 2;
/// A verdict covers calls up to this many times the length of the longest call that failed.
pub(crate) const VERDICT_SPAN: usize = 4;
/// Calls before the first retry of parallel.
pub(crate) const FIRST_BACKOFF: u64 = 8;
/// The longest wait between two retries, in calls.
pub(crate) const MAX_BACKOFF: u64 = 1024;

/// A site's record of how its parallel runs went.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Outcome {
    /// The speedup over the loop that the last timed parallel call measured.
    pub(crate) measured: Option<f64>,
    /// The recent calls' speedups, averaged.
    averaged: Option<f64>,
    samples: u32,
    verdict: Option<Verdict>,
    backoff: u64,
    /// The call from which a plan turned down by the parallel cost is retried; 0 before the
    /// first such plan.
    next_cost_retry: u64,
}

/// Parallel runs did not pay: the loop, for a while.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Verdict {
    /// Calls of up to this many items run the loop…
    pub(crate) up_to_n: usize,
    /// …until this call (counted by the site's call index).
    pub(crate) until_call: u64,
    /// What the recent parallel calls measured against the loop, averaged.
    pub(crate) measured: f64,
}

/// What to do with a call the model planned parallel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Gate {
    /// Run it as planned.
    Run,
    /// Run the loop: parallel measured `measured`× the loop here.
    Loop { measured: f64 },
    /// Run it as planned, as the retry after a verdict.
    Retry,
}

impl Outcome {
    pub(crate) const NEW: Outcome = Outcome {
        measured: None,
        averaged: None,
        samples: 0,
        verdict: None,
        backoff: FIRST_BACKOFF,
        next_cost_retry: 0,
    };

    /// The verdict in force, if any.
    #[cfg(test)]
    pub(crate) fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }

    /// The recent parallel calls' speedup over the loop, averaged, and how many calls it
    /// rests on; `None` before any.
    pub(crate) fn observed(&self) -> Option<(f64, u32)> {
        self.averaged.map(|a| (a, self.samples))
    }

    /// Forgets every measured run and verdict (the work changed).
    pub(crate) fn forget(&mut self) {
        *self = Outcome::NEW;
    }

    /// What to do with call `call_index` of `n` items, which the model planned parallel.
    pub(crate) fn gate(&self, n: usize, call_index: u64) -> Gate {
        match self.verdict {
            Some(v) if n <= v.up_to_n && call_index < v.until_call => Gate::Loop {
                measured: v.measured,
            },
            Some(v) if n <= v.up_to_n => Gate::Retry,
            _ => Gate::Run,
        }
    }

    /// Records that call `call_index` of `n` items ran parallel and measured `speedup` over
    /// the loop; `retry` when the gate said [`Gate::Retry`].
    pub(crate) fn record(&mut self, n: usize, call_index: u64, speedup: f64, retry: bool) {
        if !speedup.is_finite() || speedup <= 0.0 {
            return;
        }
        self.measured = Some(speedup);
        let averaged = self.averaged.map_or(speedup, |a| (a * speedup).sqrt());
        self.averaged = Some(averaged);
        self.samples = self.samples.saturating_add(1);
        if averaged >= PAYS_FROM {
            if retry || self.verdict.is_some_and(|v| n <= v.up_to_n) {
                self.verdict = None;
            }
            self.backoff = FIRST_BACKOFF;
            self.next_cost_retry = 0;
            return;
        }
        if self.samples >= MIN_SAMPLES || retry {
            let up_to_n = n
                .saturating_mul(VERDICT_SPAN)
                .max(self.verdict.map_or(0, |v| v.up_to_n));
            self.verdict = Some(Verdict {
                up_to_n,
                until_call: call_index.saturating_add(self.backoff),
                measured: averaged,
            });
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Whether call `call_index`, whose plan the model turned down only because items cost
    /// more in parallel pieces than in the loop, should try parallel anyway; schedules the
    /// next such retry.
    pub(crate) fn cost_retry_due(&mut self, call_index: u64) -> bool {
        if self.next_cost_retry == 0 {
            self.next_cost_retry = call_index.saturating_add(self.backoff).max(1);
            return false;
        }
        if call_index < self.next_cost_retry {
            return false;
        }
        self.next_cost_retry = call_index.saturating_add(self.backoff).max(1);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_that_pays_is_left_alone() {
        let mut o = Outcome::NEW;
        for call in 1..100 {
            assert_eq!(o.gate(10_000, call), Gate::Run);
            o.record(10_000, call, 1.8, false);
        }
        assert_eq!(o.measured, Some(1.8));
        assert_eq!(o.verdict(), None);
    }

    #[test]
    fn one_held_up_call_does_not_decide() {
        let mut o = Outcome::NEW;
        o.record(1_000, 1, 1.8, false);
        o.record(1_000, 2, 0.8, false); // a helper that never woke
        assert_eq!(o.gate(1_000, 3), Gate::Run);
        o.record(1_000, 3, 1.8, false);
        assert_eq!(o.verdict(), None);
        // The first call alone never decides either.
        let mut o = Outcome::NEW;
        o.record(1_000, 1, 0.5, false);
        assert_eq!(o.gate(1_000, 2), Gate::Run);
    }

    #[test]
    fn bad_calls_send_the_site_to_the_loop_and_retries_back_off() {
        let mut o = Outcome::NEW;
        o.record(1_000, 1, 0.9, false);
        o.record(1_000, 2, 0.86, false);
        // Back to the loop for calls up to 4 × 1 000 items, for 8 calls.
        let Gate::Loop { measured } = o.gate(1_000, 3) else {
            panic!("expected the loop, got {:?}", o.gate(1_000, 3));
        };
        assert!((measured - (0.9f64 * 0.86).sqrt()).abs() < 1e-9);
        assert!(matches!(o.gate(4_000, 9), Gate::Loop { .. }));
        assert_eq!(o.gate(4_001, 3), Gate::Run, "longer calls follow the model");
        assert_eq!(o.gate(1_000, 10), Gate::Retry);
        // The retry fails: 16 calls this time, then 32, … up to 1024.
        o.record(1_000, 10, 0.9, true);
        assert!(matches!(o.gate(1_000, 25), Gate::Loop { .. }));
        assert_eq!(o.gate(1_000, 26), Gate::Retry);
        let mut call = 26;
        for _ in 0..20 {
            o.record(1_000, call, 0.9, true);
            call = o.verdict().unwrap().until_call;
        }
        o.record(1_000, call, 0.9, true);
        assert_eq!(o.verdict().unwrap().until_call - call, MAX_BACKOFF);
        // A retry that pays lifts the verdict and resets the backoff.
        o.record(1_000, call, 1.9, true);
        assert_eq!(o.verdict(), None);
        assert_eq!(o.gate(1_000, call + 1), Gate::Run);
        assert_eq!(o.backoff, FIRST_BACKOFF);
    }

    #[test]
    fn middling_calls_that_never_beat_the_loop_go_back_to_it() {
        let mut o = Outcome::NEW;
        let mut call = 0;
        while o.verdict().is_none() {
            call += 1;
            assert!(
                call < 10,
                "a site at 0.95× the loop must go back to it within a few calls"
            );
            o.record(10_000, call, if call == 1 { 1.5 } else { 0.95 }, false);
        }
        assert!(call <= 5, "{call}");
    }

    #[test]
    fn a_longer_failing_call_widens_the_verdict() {
        let mut o = Outcome::NEW;
        o.record(1_000, 1, 0.5, false);
        o.record(1_000, 2, 0.5, false);
        o.record(100_000, 3, 0.7, false);
        assert_eq!(o.verdict().unwrap().up_to_n, 400_000);
    }

    #[test]
    fn a_drift_forgets_the_verdict() {
        let mut o = Outcome::NEW;
        o.record(4_000, 1, 0.7, false);
        o.record(4_000, 2, 0.7, false);
        assert!(matches!(o.gate(4_000, 3), Gate::Loop { .. }));
        o.forget();
        assert_eq!(o.gate(4_000, 3), Gate::Run);
        assert_eq!(o, Outcome::NEW);
    }

    #[test]
    fn nonsense_measurements_are_ignored() {
        let mut o = Outcome::NEW;
        for bad in [f64::NAN, 0.0, -1.0, f64::INFINITY] {
            o.record(1_000, 1, bad, false);
            o.record(1_000, 2, bad, false);
        }
        assert_eq!(o, Outcome::NEW);
    }

    #[test]
    fn plans_turned_down_by_the_parallel_cost_are_retried_with_backoff() {
        let mut o = Outcome::NEW;
        let due: Vec<u64> = (1..200).filter(|&call| o.cost_retry_due(call)).collect();
        // First seen at call 1: retried at 9, then 17 (+8), 33 (+16), 65 (+32), 129 (+64).
        assert_eq!(due, vec![9, 17, 33, 65, 129]);
        // A parallel call that pays resets the schedule.
        o.record(1_000, 200, 1.5, false);
        assert!(!o.cost_retry_due(201));
        assert!(o.cost_retry_due(209));
    }
}
