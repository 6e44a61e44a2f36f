//! Running a routed call: the plain loop, the watched loop, the profiling head followed by the
//! planned rest, and the parallel map (the caller working beside the pool's helpers, see
//! `with_caller`). What a finished call teaches is `learn`'s job.

use crate::dispatch::{plan_rest, ParallelRoute, Route};
use crate::learn::{learn_from_parallel, learn_from_serial};
use crate::model::Plan;
use crate::observe::{in_steps, Watch};
use crate::profile::{profile, Estimate};
use crate::site::Site;
use crate::units::{elapsed_ns, PerItem};
use rayon::iter::plumbing::{Folder, Producer, ProducerCallback};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A loop's function, and whether its items' producer yields them through an iterator whose
/// length `Vec::extend` trusts (see [`IntoItems::EXACT`]): what every plain loop runs.
///
/// [`IntoItems::EXACT`]: crate::IntoItems::EXACT
pub(crate) struct Loop<'f, F> {
    pub(crate) f: &'f F,
    pub(crate) exact: bool,
}

impl<F> Clone for Loop<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for Loop<'_, F> {}

/// The callback for an untimed serial call: a plain loop into a new `Vec`.
pub(crate) struct Serial<'f, F, R> {
    n: usize,
    f: Loop<'f, F>,
    _result: PhantomData<fn() -> R>,
}

impl<'f, F, R> Serial<'f, F, R> {
    /// A loop over `n` items through `f`; `exact` as for [`Loop`].
    #[inline(always)]
    pub(crate) fn new(n: usize, f: &'f F, exact: bool) -> Self {
        Serial {
            n,
            f: Loop { f, exact },
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
        extend_mapped(&mut out, producer, self.f);
        out
    }
}

/// Pushes `f` of each of `producer`'s items onto `out`, in order: the one loop every plain
/// loop over a producer runs, as tight as the caller's own loop over the same items.
/// `Vec::extend` writes without checking its capacity item by item only for iterators of
/// std's that it knows the exact length of. With `f.exact` the producer yields its items
/// through one (std's `Range`, which an integer range hands over from its `fold_with`, see
/// `items::RangeItems`; a slice's iterator), and they are mapped straight from it. Other
/// producers' iterators (a drained `Vec`'s, most adapters') are taken through a
/// `Range<usize>` of their exact length instead. Measured on 10 000 items of a 0.5 ns
/// function: from a range 9.5 µs through its producer's iterator, 4.5 µs through that
/// `Range` (the caller's loop: 4.5 µs); `u64`s of an owned `Vec` to `u32`s, 8.1 µs and
/// 4.5 µs (the caller's: 4.5 µs). That `Range` costs items that cannot run several at once
/// a little (the next item is asked for and checked in the loop): 1 000 items of a 2.4 ns
/// multiply-and-shift chain took 2.85 µs from a range through it and 2.44 µs straight from
/// the range (the caller's loop: 2.42 µs), hence `exact`.
#[inline(always)]
pub(crate) fn extend_mapped<P, F, R>(out: &mut Vec<R>, producer: P, f: Loop<'_, F>)
where
    P: Producer,
    F: Fn(P::Item) -> R,
{
    producer.fold_with(Extending { out, f });
}

/// An iterator yielded fewer items than it said it would.
#[cold]
#[inline(never)]
fn short_producer() -> ! {
    panic!("amorsize: a producer yielded fewer items than its length")
}

/// The folder of [`extend_mapped`].
struct Extending<'o, 'f, R, F> {
    out: &'o mut Vec<R>,
    f: Loop<'f, F>,
}

impl<T, R, F> Folder<T> for Extending<'_, '_, R, F>
where
    F: Fn(T) -> R,
{
    type Result = ();

    fn consume(self, item: T) -> Self {
        self.out.push((self.f.f)(item));
        self
    }

    /// A trusted iterator (`f.exact`) is mapped straight from; any other of exact length
    /// (every producer's) is taken through a `Range` of that length, and what it yields
    /// beyond its length, or an iterator of no exact length, as it comes.
    #[inline(always)]
    fn consume_iter<I: IntoIterator<Item = T>>(self, iter: I) -> Self {
        let mut iter = iter.into_iter();
        let f = self.f.f;
        if self.f.exact {
            self.out.extend(iter.map(f));
            return self;
        }
        if let (len, Some(upper)) = iter.size_hint() {
            if len == upper {
                self.out.extend((0..len).map(|_| match iter.next() {
                    Some(item) => f(item),
                    None => short_producer(),
                }));
            }
        }
        self.out.extend(iter.map(f));
        self
    }

    fn complete(self) {}

    fn full(&self) -> bool {
        false
    }
}

/// The callback that receives the call's producer and runs the route.
pub(crate) struct Run<'f, F, R> {
    call: Call<'f>,
    n: usize,
    f: Loop<'f, F>,
    route: Route,
    _result: PhantomData<fn() -> R>,
}

impl<'f, F, R> Run<'f, F, R> {
    pub(crate) fn new(call: Call<'f>, n: usize, f: &'f F, route: Route, exact: bool) -> Self {
        Run {
            call,
            n,
            f: Loop { f, exact },
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
            call, n, f, route, ..
        } = self;
        let Call { site, watch, .. } = call.begin();
        let mut out = Vec::with_capacity(n);
        match route {
            // Untimed loops took the `Serial` callback (`map`, `map_routed`) instead, unless
            // watched: then they are timed too, as the steps read the clock anyway.
            Route::Serial { .. } => {
                let ns = stepped_loop(producer, n, f, &mut out, watch);
                learn_from_serial(site, n, ns, true);
            }
            Route::Watched { .. } => run_watched(call, producer, n, f, &mut out),
            Route::Parallel(plan) => run_parallel(call, producer, n, f, plan, &mut out),
            Route::Profile => run_profiled(call, producer, n, f, &mut out),
        }
        out
    }
}

// Every site compiles the generic functions below for its own item and function types;
// whatever does not touch items lives in non-generic functions (`learn`, `dispatch`, the
// `after_*` below), compiled once for the whole program.

/// Runs `producer`'s items through `f` into `out` and returns how long that took
/// (nanoseconds): the one copy of the timed loop each site compiles.
#[inline(never)]
pub(crate) fn timed_loop<P, F, R>(producer: P, f: Loop<'_, F>, out: &mut Vec<R>) -> u64
where
    P: Producer,
    F: Fn(P::Item) -> R,
{
    let start = Instant::now();
    extend_mapped(out, producer, f);
    elapsed_ns(start)
}

/// [`timed_loop`] over an owned `Vec` (see [`owned_loop`]).
#[inline(never)]
pub(crate) fn timed_owned_loop<T, R, F>(items: Vec<T>, f: &F) -> (Vec<R>, u64)
where
    F: Fn(T) -> R,
{
    let start = Instant::now();
    let out = owned_loop(items, f);
    (out, elapsed_ns(start))
}

/// A plain loop over an owned `Vec`, as tight as the caller's own. When its items and
/// values have the same size and alignment (see [`fits_in_place`]), it runs in place:
/// std's `collect` writes each value where its item was and returns the items'
/// allocation, as a caller's own `v.into_iter().map(f).collect()` would. A new `Vec` of a
/// large output is fresh memory whose first writes fault its pages in, which can cost more
/// than cheap items themselves (measured: 100 000 `u64`s mapped by a 0.5 ns function took
/// 58 µs in place and 280 µs into a new `Vec`). Other values go to a new `Vec` of the
/// items' length, through std's `vec::IntoIter`, whose exact length `extend` trusts (a
/// rayon producer's iterator it does not: 10 000 `u64`s to `u32`s took 8.7 µs that way,
/// 4.7 µs in the caller's loop). Not `collect` there: std would reuse a larger item's
/// allocation for smaller values, and the result would hold all of it.
#[inline(always)]
pub(crate) fn owned_loop<T, R, F>(items: Vec<T>, f: &F) -> Vec<R>
where
    F: Fn(T) -> R,
{
    if fits_in_place::<T, R>() {
        items.into_iter().map(f).collect()
    } else {
        let mut out = Vec::with_capacity(items.len());
        out.extend(items.into_iter().map(f));
        out
    }
}

/// Whether a loop over an owned `Vec<T>` into a `Vec<R>` runs in place (see [`owned_loop`]): `T` and `R`
/// have the same size (not zero) and alignment. Known at compile time.
#[inline(always)]
pub(crate) const fn fits_in_place<T, R>() -> bool {
    std::mem::size_of::<T>() == std::mem::size_of::<R>()
        && std::mem::align_of::<T>() == std::mem::align_of::<R>()
        && std::mem::size_of::<T>() != 0
}

/// What every part of a routed call needs besides its items: the site, the call's number,
/// and its watch, if anything watches it.
#[derive(Clone, Copy)]
pub(crate) struct Call<'w> {
    pub(crate) site: &'static Site,
    pub(crate) call_index: u64,
    pub(crate) watch: Option<&'w Watch>,
}

impl Call<'_> {
    /// The call starts running: a loop, until a parallel plan says otherwise.
    pub(crate) fn begin(self) -> Self {
        if let Some(watch) = self.watch {
            watch.ran(Plan::Serial);
        }
        self
    }
}

/// [`timed_loop`] over `len` items, in progress steps when the call is watched and long.
pub(crate) fn stepped_loop<P, F, R>(
    producer: P,
    len: usize,
    f: Loop<'_, F>,
    out: &mut Vec<R>,
    watch: Option<&Watch>,
) -> u64
where
    P: Producer,
    F: Fn(P::Item) -> R,
{
    match watch {
        None => timed_loop(producer, f, out),
        Some(_) => {
            in_steps(producer, len, watch, |piece| {
                (timed_loop(piece, f, out), true)
            })
            .0
        }
    }
}

/// A first call: its head profiled, then the rest run as planned on what the head showed.
fn run_profiled<P, F, R>(call: Call<'_>, producer: P, n: usize, f: Loop<'_, F>, out: &mut Vec<R>)
where
    P: Producer,
    P::Item: Send,
    R: Send,
    F: Fn(P::Item) -> R + Sync + Send,
{
    let Call { site, watch, .. } = call;
    let (estimate, rest) = profile(producer, n, f, out, watch);
    let Some(rest) = rest else {
        after_profile(call, n, &estimate, false);
        return;
    };
    let remaining = n - estimate.done;
    match after_profile(call, n, &estimate, true) {
        Some(Route::Parallel(plan)) => run_parallel(call, rest, remaining, f, plan, out),
        _ => {
            // Timed: the rest of the input is a better sample of the call than its head
            // (which may be cheaper or dearer), when it is most of it.
            let ns = stepped_loop(rest, remaining, f, out, watch);
            learn_from_serial(site, remaining, ns, remaining >= estimate.done);
        }
    }
}

/// Publishes a profile's estimate; for a call with items left (`rest`), plans them.
#[cold]
pub(crate) fn after_profile(
    call: Call<'_>,
    n: usize,
    estimate: &Estimate,
    rest: bool,
) -> Option<Route> {
    let site = call.site;
    site.publish_profile(estimate.per_item, estimate.strong, rest);
    if let Some(watch) = call.watch {
        watch.predict(estimate.per_item);
    }
    if !rest {
        crate::dispatch::note_profiled_whole(site, n, estimate.per_item);
        return None;
    }
    Some(plan_rest(site, n, n - estimate.done, "profiled"))
}

/// A watched loop's first share: an eighth of the call, one clock read (about 25 ns) more
/// than a timed loop.
const WATCHED_SHARE: usize = 8;

/// The least planned work in a watched loop's first share for its time to re-plan the rest:
/// a shorter one's time says more about how warm the thread was (a service's thread just
/// woken from a wait ran 2 items of 0.6 µs in 5 µs and more) than about the items. Such a
/// call is timed whole, as a loop, and a changed cost is taken up over the next calls.
const WATCHED_HEAD_FROM: Duration = Duration::from_micros(10);

/// A timed loop that looks at the clock once more after its first eighth: if those items
/// took [`DRIFT_FACTOR`](crate::cost::DRIFT_FACTOR) times what was planned or more, they are
/// learned from as a drifted sample, and the rest of the call is planned again on it (in
/// parallel, if it now pays).
fn run_watched<P, F, R>(call: Call<'_>, producer: P, n: usize, f: Loop<'_, F>, out: &mut Vec<R>)
where
    P: Producer,
    P::Item: Send,
    R: Send,
    F: Fn(P::Item) -> R + Sync + Send,
{
    let Call { site, watch, .. } = call;
    let Some(planned) = watched_head(site, n) else {
        let ns = stepped_loop(producer, n, f, out, watch);
        learn_from_serial(site, n, ns, true);
        return;
    };
    let head_len = n / WATCHED_SHARE;
    let (head, rest) = producer.split_at(head_len);
    let head_ns = stepped_loop(head, head_len, f, out, watch);
    let rest_len = n - head_len;
    match after_watched_head(site, n, head_len, head_ns, planned) {
        None => {
            let ns = stepped_loop(rest, rest_len, f, out, watch);
            learn_from_serial(site, n, head_ns.saturating_add(ns), true);
        }
        Some(Route::Parallel(plan)) => run_parallel(call, rest, rest_len, f, plan, out),
        Some(_) => {
            let ns = stepped_loop(rest, rest_len, f, out, watch);
            learn_from_serial(site, rest_len, ns, true);
        }
    }
}

/// The planned cost per item a watched loop of `n` items checks its head against, or `None`
/// when its head is too short to re-plan the rest on (no head, or under
/// [`WATCHED_HEAD_FROM`] of planned work): then it runs as a whole timed loop.
fn watched_head(site: &Site, n: usize) -> Option<PerItem> {
    let head_len = n / WATCHED_SHARE;
    let planned = site.planning_costs()?.serial;
    let long_enough = planned.work_ns(head_len) >= WATCHED_HEAD_FROM.as_nanos() as f64;
    (head_len >= 1 && long_enough).then_some(planned)
}

/// What a watched loop does after its head of `head_len` items took `head_ns`, planned at
/// `planned` per item: `None` to go on, or (when the head ran far dearer, learned from as a
/// drifted sample) the rest's new route.
#[cold]
fn after_watched_head(
    site: &Site,
    n: usize,
    head_len: usize,
    head_ns: u64,
    planned: PerItem,
) -> Option<Route> {
    let planned_ns = planned.work_ns(head_len);
    let far_dearer = head_ns as f64 >= crate::cost::DRIFT_FACTOR as f64 * planned_ns;
    if !far_dearer {
        return None;
    }
    learn_from_serial(site, head_len, head_ns, false);
    Some(plan_rest(
        site,
        n,
        n - head_len,
        "ran far dearer than planned",
    ))
}

fn run_parallel<P, F, R>(
    call: Call<'_>,
    producer: P,
    n: usize,
    f: Loop<'_, F>,
    plan: ParallelRoute,
    out: &mut Vec<R>,
) where
    P: Producer,
    P::Item: Send,
    R: Send,
    F: Fn(P::Item) -> R + Sync + Send,
{
    let Plan::Parallel { min_len, threads } = plan.decision.plan else {
        extend_mapped(out, producer, f);
        return;
    };
    let f = f.f;
    parallel_call(call, &plan, true, |busy_ns| {
        // The calling thread works from the front while helpers take pieces from the back
        // as soon as they start, whether it is outside the pool (rather than wait for the
        // pool to do it all) or one of its workers (a nested call): one parallel path for
        // every call. At most `threads - 1` helpers are asked for, which is how a cap holds.
        crate::with_caller::map_into(
            producer,
            n,
            f,
            min_len,
            threads.saturating_sub(1),
            out,
            busy_ns,
            call.watch,
        );
        ((), n)
    });
}

/// What every planned parallel call does around its engine run, whatever its entry point:
/// tells its watch the plan, times it, and learns from it. `engine` gets the counter of the
/// pieces' busy time and returns its result and how many items ran (fewer when it stopped).
/// `wall` when the call's wall time measures the map alone (not for a stream's batch, whose
/// caller also read its input meanwhile). A panic in `engine` passes through unlearned.
pub(crate) fn parallel_call<T>(
    call: Call<'_>,
    plan: &ParallelRoute,
    wall: bool,
    engine: impl FnOnce(&AtomicU64) -> (T, usize),
) -> T {
    if let Some(watch) = call.watch {
        watch.ran(plan.decision.plan);
    }
    let busy_ns = AtomicU64::new(0);
    let running = plan.pool.parallel_running();
    let start = Instant::now();
    let (out, ran) = engine(&busy_ns);
    drop(running);
    learn_from_parallel(
        call.site,
        ran,
        call.call_index,
        plan,
        wall.then_some(start),
        busy_ns.load(Ordering::Relaxed),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_loop_replans_only_on_a_head_long_enough_to_judge() {
        static WATCHED: Site = Site::new("watched_head");
        assert_eq!(
            watched_head(&WATCHED, 200),
            None,
            "no cost, nothing to judge by"
        );
        let planned = PerItem::from_nanos(600.0);
        WATCHED.publish_profile(planned, true, true);
        // 2 items planned at 1.2 µs (they may take 10 µs on a thread just woken): not judged;
        // the call is one timed loop, learned from whole.
        assert_eq!(watched_head(&WATCHED, 20), None);
        assert_eq!(watched_head(&WATCHED, 200), Some(planned));
        // 25 items planned at 15 µs that took 100 µs: learned from, and the rest re-planned.
        assert!(after_watched_head(&WATCHED, 200, 25, 100_000, planned).is_some());
        assert!(
            WATCHED.serial_word().drifting(),
            "the head's cost is a drifted sample"
        );
        // As planned: go on.
        assert!(after_watched_head(&WATCHED, 200, 25, 16_000, planned).is_none());
    }
}
