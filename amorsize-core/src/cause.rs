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
    /// The model planned parallel, but the site's parallel runs measured no faster than its
    /// loop, so it runs the loop for a while.
    Outcome {
        /// The speedup over the loop those runs measured.
        measured: f64,
    },
    /// A loop, run once to measure the loop's cost over a whole call: the first estimate
    /// came from the head of a call, which the parallel pieces that followed did not confirm
    /// (the rest may be dearer than the head, or items may contend in parallel).
    MeasureLoop,
    /// Parallel once more after the loop held for a while (see [`Cause::Outcome`]), or after
    /// the model turned it down because items cost more in parallel: checking whether it
    /// pays now.
    Retry,
}
