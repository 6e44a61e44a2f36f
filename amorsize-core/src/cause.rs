//! Why a call ran the way it did: what every plan in a report is traced to.

use crate::config::Mode;

/// What decided a site's last planned call.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Cause {
    /// The cost model, from the site's learned costs and the pool's figures.
    Model,
    /// The function's own mode: `mode = "…"` on the attribute, or
    /// [`Site::with_mode`](crate::Site::with_mode).
    Pinned(Mode),
    /// The process-wide mode: the `AMORSIZE` environment variable or
    /// [`set_mode`](crate::set_mode).
    Forced(Mode),
    /// The pool the call ran in can keep only one thread busy: nothing to split.
    OneThread,
    /// A thread cap (`max_threads` on the function or the site, or
    /// [`with_max_threads`](crate::with_max_threads) around the call) planned the call for
    /// this many threads at most.
    Capped {
        /// The cap.
        max_threads: usize,
    },
    /// Other planned calls were running in the pool (calls from other OS threads, or the
    /// outer call of a nested one): the call was planned for its share of the threads.
    Shared {
        /// How many were running.
        other_calls: usize,
    },
    /// An async call, made while fewer planned calls ran in the pool than async calls had
    /// run at once lately (within 50 ms: a service's overlapping requests, one of which is
    /// between calls): planned for its share beside that many, as the next request is
    /// likely to overlap it, and a parallel call that another overlaps only takes turns
    /// with it for the cores. Calls that async calls make themselves (a nested companion)
    /// are not counted.
    Overlapping {
        /// The most async calls that ran at once lately.
        calls: usize,
    },
    /// The model planned parallel, but the site's parallel runs measured no faster than its
    /// loop, so it runs the loop for a while.
    Outcome {
        /// The speedup over the loop those runs measured.
        measured: f64,
    },
    /// A loop, run once to measure the loop's cost over a whole call: the first estimate
    /// came from the head of a call, which the parallel pieces that followed did not confirm
    /// (the rest may be dearer than the head, or items may contend in parallel); or, for
    /// cheap items given as an owned `Vec` whose loop writes its values in place, where the
    /// parallel pieces write a new one, the loop was never measured that way.
    MeasureLoop,
    /// Parallel once more after the loop held for a while (see [`Cause::Outcome`]), or after
    /// the model turned it down because items cost more in parallel: checking whether it
    /// pays now.
    Retry,
}

/// With the `serde` feature, a cause serializes as an object named by its `kind`
/// (`"model"`, `"pinned"`, `"forced"`, `"one_thread"`, `"capped"`, `"shared"`,
/// `"overlapping"`, `"outcome"`, `"measure_loop"`, `"retry"`) with its detail beside it:
/// `{"kind":"pinned","mode":"serial"}`, `{"kind":"capped","max_threads":2}`,
/// `{"kind":"shared","other_calls":1}`, `{"kind":"overlapping","calls":2}`,
/// `{"kind":"outcome","measured":0.86}`.
#[cfg(feature = "serde")]
impl serde::Serialize for Cause {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (kind, fields) = match self {
            Cause::Model => ("model", 1),
            Cause::Pinned(_) => ("pinned", 2),
            Cause::Forced(_) => ("forced", 2),
            Cause::OneThread => ("one_thread", 1),
            Cause::Capped { .. } => ("capped", 2),
            Cause::Shared { .. } => ("shared", 2),
            Cause::Overlapping { .. } => ("overlapping", 2),
            Cause::Outcome { .. } => ("outcome", 2),
            Cause::MeasureLoop => ("measure_loop", 1),
            Cause::Retry => ("retry", 1),
        };
        let mut object = serializer.serialize_struct("Cause", fields)?;
        object.serialize_field("kind", kind)?;
        match self {
            Cause::Pinned(mode) | Cause::Forced(mode) => object.serialize_field("mode", mode)?,
            Cause::Capped { max_threads } => object.serialize_field("max_threads", max_threads)?,
            Cause::Shared { other_calls } => object.serialize_field("other_calls", other_calls)?,
            Cause::Overlapping { calls } => object.serialize_field("calls", calls)?,
            Cause::Outcome { measured } => object.serialize_field("measured", measured)?,
            Cause::Model | Cause::OneThread | Cause::MeasureLoop | Cause::Retry => {}
        }
        object.end()
    }
}
