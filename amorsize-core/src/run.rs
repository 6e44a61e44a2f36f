//! Running a routed call: the plain loop, the profiling head followed by the planned rest, and
//! the parallel map (with the caller working beside the pool when it is outside it, else a
//! rayon map with the planned split length). What a finished call teaches is `learn`'s job.

use crate::dispatch::{plan_rest, ParallelRoute, Route};
use crate::learn::{learn_from_parallel, learn_from_serial};
use crate::model::Plan;
use crate::producers::{ProducerIter, TimedProducer};
use crate::profile::profile;
use crate::site::Site;
use crate::units::elapsed_ns;
use rayon::iter::plumbing::{Producer, ProducerCallback};
use rayon::prelude::*;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The callback for an untimed serial call: a plain loop into a new `Vec`.
pub(crate) struct Serial<'f, F, R> {
    n: usize,
    f: &'f F,
    _result: PhantomData<fn() -> R>,
}

impl<'f, F, R> Serial<'f, F, R> {
    #[inline(always)]
    pub(crate) fn new(n: usize, f: &'f F) -> Self {
        Serial {
            n,
            f,
            _result: PhantomData,
        }
    }
}

impl<T, R, F> ProducerCallback<T> for Serial<'_, F, R>
where
    F: Fn(T) -> R,
{
    type Output = Vec<R>;

    #[inline]
    fn callback<P: Producer<Item = T>>(self, producer: P) -> Vec<R> {
        let mut out = Vec::with_capacity(self.n);
        out.extend(producer.into_iter().map(self.f));
        out
    }
}

/// The callback that receives the call's producer and runs the route.
pub(crate) struct Run<'f, F, R> {
    site: &'static Site,
    n: usize,
    call_index: u64,
    f: &'f F,
    route: Route,
    _result: PhantomData<fn() -> R>,
}

impl<'f, F, R> Run<'f, F, R> {
    pub(crate) fn new(
        site: &'static Site,
        n: usize,
        call_index: u64,
        f: &'f F,
        route: Route,
    ) -> Self {
        Run {
            site,
            n,
            call_index,
            f,
            route,
            _result: PhantomData,
        }
    }
}

impl<T, R, F> ProducerCallback<T> for Run<'_, F, R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    type Output = Vec<R>;

    fn callback<P: Producer<Item = T>>(self, producer: P) -> Vec<R> {
        let Run {
            site,
            n,
            call_index,
            f,
            route,
            ..
        } = self;
        let mut out = Vec::with_capacity(n);
        match route {
            // Untimed loops took the `Serial` callback (`map`, `map_routed`) instead.
            Route::Serial { .. } => {
                let start = Instant::now();
                out.extend(producer.into_iter().map(f));
                learn_from_serial(site, n, elapsed_ns(start), true);
            }
            Route::Watched { .. } => run_watched(site, producer, n, call_index, f, &mut out),
            Route::Parallel(plan) => run_parallel(site, producer, n, call_index, f, plan, &mut out),
            Route::Profile => {
                let (estimate, rest) = profile(producer, n, f, &mut out);
                site.publish_profile(estimate.per_item, estimate.strong, rest.is_some());
                let Some(rest) = rest else {
                    crate::dispatch::note_profiled_whole(site, n, estimate.per_item);
                    return out;
                };
                let remaining = n - estimate.done;
                let plan = plan_rest(site, n, remaining);
                log::debug!(
                    target: "amorsize",
                    "{}: first {} of {n} items profiled; rest planned {}",
                    site.name(),
                    estimate.done,
                    match &plan {
                        Route::Parallel(p) => format!(
                            "{:?} (predicted speedup {:.2}x)",
                            p.decision.plan,
                            p.decision.predicted_speedup()
                        ),
                        _ => "serial".to_owned(),
                    }
                );
                match plan {
                    Route::Parallel(plan) => {
                        run_parallel(site, rest, remaining, call_index, f, plan, &mut out)
                    }
                    _ => {
                        // Timed: the rest of the input is a better sample of the call than
                        // its head (which may be cheaper or dearer), when it is most of it.
                        let start = Instant::now();
                        out.extend(rest.into_iter().map(f));
                        let whole = remaining >= estimate.done;
                        learn_from_serial(site, remaining, elapsed_ns(start), whole);
                    }
                }
            }
        }
        out
    }
}

/// A watched loop's first share: an eighth of the call, one clock read (about 25 ns) more
/// than a timed loop.
const WATCHED_SHARE: usize = 8;

/// A timed loop that looks at the clock once more after its first eighth: if those items
/// took [`DRIFT_FACTOR`](crate::cost::DRIFT_FACTOR) times what was planned or more, they are
/// learned from as a drifted sample, and the rest of the call is planned again on it (in
/// parallel, if it now pays).
fn run_watched<P, F, R>(
    site: &Site,
    producer: P,
    n: usize,
    call_index: u64,
    f: &F,
    out: &mut Vec<R>,
) where
    P: Producer,
    P::Item: Send,
    R: Send,
    F: Fn(P::Item) -> R + Sync + Send,
{
    let head_len = n / WATCHED_SHARE;
    let planned = site.planning_costs().map(|c| c.serial);
    let start = Instant::now();
    let (Some(planned), true) = (planned, head_len >= 1) else {
        out.extend(producer.into_iter().map(f));
        learn_from_serial(site, n, elapsed_ns(start), true);
        return;
    };
    let (head, rest) = producer.split_at(head_len);
    out.extend(head.into_iter().map(f));
    let head_ns = elapsed_ns(start);
    let far_dearer = head_ns as f64 >= crate::cost::DRIFT_FACTOR as f64 * planned.work_ns(head_len);
    if !far_dearer {
        out.extend(rest.into_iter().map(f));
        learn_from_serial(site, n, elapsed_ns(start), true);
        return;
    }
    learn_from_serial(site, head_len, head_ns, false);
    let remaining = n - head_len;
    match plan_rest(site, n, remaining) {
        Route::Parallel(plan) => run_parallel(site, rest, remaining, call_index, f, plan, out),
        _ => {
            let start = Instant::now();
            out.extend(rest.into_iter().map(f));
            learn_from_serial(site, remaining, elapsed_ns(start), true);
        }
    }
}

fn run_parallel<P, F, R>(
    site: &Site,
    producer: P,
    n: usize,
    call_index: u64,
    f: &F,
    plan: ParallelRoute,
    out: &mut Vec<R>,
) where
    P: Producer,
    P::Item: Send,
    R: Send,
    F: Fn(P::Item) -> R + Sync + Send,
{
    let Plan::Parallel { min_len, threads } = plan.decision.plan else {
        out.extend(producer.into_iter().map(f));
        return;
    };
    let busy_ns = AtomicU64::new(0);
    let start = Instant::now();
    if threads >= 2 && rayon::current_thread_index().is_none() {
        // This thread is not one of the pool's workers: it works from the front while
        // helpers take pieces from the back as soon as they wake, rather than wait for
        // the pool to do it all.
        crate::with_caller::map_into(producer, n, f, min_len, threads - 1, out, &busy_ns);
    } else {
        // Under a cap, pieces no more numerous than the planned threads: rayon lets every
        // worker of the pool steal, so only the piece count bounds how many take part.
        let min_len = if plan.capped {
            min_len.max(n.div_ceil(threads.max(1)))
        } else {
            min_len
        };
        out.par_extend(
            ProducerIter {
                producer: TimedProducer {
                    inner: producer,
                    busy_ns: &busy_ns,
                },
                len: n,
            }
            .with_min_len(min_len)
            .map(f),
        );
    }
    learn_from_parallel(
        site,
        n,
        call_index,
        &plan,
        start,
        busy_ns.load(Ordering::Relaxed),
    );
}
