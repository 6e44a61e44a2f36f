//! Routing one call: the public entry points [`map`] and [`map_slice`], the hot path (a
//! thread-local read, a few atomic loads and a comparison against the site's cache), and the
//! [`Route`] every other call takes, planned from the site's costs, the pool's figures and the
//! site's measured outcomes. Running a route is `run`'s job.

use crate::cause::Cause;
use crate::config::{self, Mode};
use crate::cost::{Basis, CostWord};
use crate::items::IntoItems;
use crate::learn::{learn_from_in_place, learn_from_serial};
use crate::model::{self, Costs, Decision, Machine, Plan};
use crate::observe::Watch;
use crate::outcome::Gate;
use crate::pool::{self, Pool};
use crate::run::{fits_in_place, owned_loop, timed_owned_loop, Run, Serial};
use crate::site::{LastDecision, Site};
use crate::units::PerItem;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Serial calls predicted to take at least this long are always timed: two clock reads cost
/// about 52 ns on the development VM (`Instant::now` plus `elapsed`), about 2 % of it. A
/// change in their cost is then seen by the next call. Shorter calls are timed one in
/// [`SAMPLE_EVERY`], and every call while a drift awaits confirmation.
const ALWAYS_TIME_PS: u64 = 2_500_000;
/// One short call in this many is timed to refine the cached cost.
const SAMPLE_EVERY: u64 = 64;

/// Maps `f` over `items` (a `Vec`, an integer range, a slice, any [`IntoItems`]), choosing a plain loop or a parallel map from what
/// `site` has learned. Results are in input order; `f` runs exactly once per item.
///
/// ```
/// use amorsize_core::{map, Site};
///
/// static HASH: Site = Site::new("hash");
///
/// let hashes: Vec<u64> = map(&HASH, 0..10_000u64, |x| x.wrapping_mul(0x9E37_79B9_7F4A_7C15));
/// assert_eq!(hashes.len(), 10_000);
/// assert_eq!(hashes[1], 0x9E37_79B9_7F4A_7C15);
/// ```
///
/// A panic in `f` propagates to the caller with its original payload, as from a plain loop;
/// the site stays usable.
///
/// An owned `Vec` (or `Box<[T]>`, or a `VecDeque`) whose values have the same size and
/// alignment as its items (`u64` to `u64`, `String` to `String`) is mapped in place when the
/// call runs as a loop: each value is written where its item was and the result keeps the
/// items' allocation (and capacity), as `items.into_iter().map(f).collect()` does. A
/// parallel call, a site's first call (which profiles its head), and every call whose
/// values have another size write a new `Vec` of exactly their number.
#[inline]
pub fn map<T, I, R, F>(site: &'static Site, items: I, f: F) -> Vec<R>
where
    T: Send,
    I: IntoItems<T>,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    let items = match items.into_held_vec() {
        Ok(items) => return map_owned(site, items, f),
        Err(items) => items,
    };
    let iter = items.into_items();
    let n = iter.len();
    let call_index = site.begin_call(n);
    if n == 0 {
        return Vec::new();
    }
    if short_call(site, n, call_index) {
        // The common short call: inlined into the caller, with its loop in a callback of
        // its own so that it compiles as tightly as the user's own would.
        return iter.with_producer(Serial::new(n, &f, I::EXACT));
    }
    map_routed(site, iter, n, call_index, f, I::EXACT)
}

/// [`map`] over an owned `Vec` (or `Box<[T]>`): its loops run as the caller's own loop over
/// it would ([`owned_loop`]), in place when its values fit its items' memory.
#[inline]
fn map_owned<T, R, F>(site: &'static Site, items: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    let n = items.len();
    let call_index = site.begin_call(n);
    if n == 0 {
        return Vec::new();
    }
    if short_call(site, n, call_index) {
        return owned_loop(items, &f);
    }
    map_owned_routed(site, items, n, call_index, f)
}

/// [`map_owned`]'s calls that are not settled short loops, routed by [`owned_route`] when
/// the values fit the items' memory. A loop in place, unlike one over other items, does not
/// re-plan its rest on its first eighth's time (see `run_watched`; std's in-place `collect`
/// cannot be split): a cost that rose is acted on from the next call. An unwatched loop
/// over other values is timed as any loop is, and learned from as one. Other routes take
/// the items as a rayon iterator, as [`map_routed`] does.
#[inline(never)]
fn map_owned_routed<T, R, F>(
    site: &'static Site,
    items: Vec<T>,
    n: usize,
    call_index: u64,
    f: F,
) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    let fits = fits_in_place::<T, R>();
    let (route, owned) = if fits {
        owned_route(site, n, call_index, std::mem::size_of::<R>())
    } else {
        let route = route(site, n, call_index);
        let plain = !crate::observe::watching() && matches!(route, Route::Serial { .. });
        (route, plain)
    };
    if !owned {
        return map_on(site, items.into_par_iter(), n, call_index, route, f, false);
    }
    if let Route::Serial { timed: false, .. } = route {
        return owned_loop(items, &f);
    }
    routed(site, n, route, |watch| {
        if let Some(watch) = watch {
            watch.ran(Plan::Serial);
        }
        let (out, ns) = timed_owned_loop(items, &f);
        if fits {
            learn_from_in_place(site, n, ns, true);
        } else {
            learn_from_serial(site, n, ns, true);
        }
        (out, false)
    })
}

/// The route of a call of `n` items of `site` over an owned `Vec` whose values of
/// `value_size` bytes take its items' places, and whether it runs as a loop in place: a
/// loop unless watched (by an observer or progress bars, which take its items in steps),
/// and a call planned parallel (in `auto`: a pinned or forced mode is obeyed) that measures
/// the loop once instead, when the loop's cost was
/// never measured in place and the items are cheap enough for the new memory the parallel
/// pieces write to matter (see [`cheap_in_place`]).
pub(crate) fn owned_route(
    site: &Site,
    n: usize,
    call_index: u64,
    value_size: usize,
) -> (Route, bool) {
    let watching = crate::observe::watching();
    // The costs of cheap items, when the call may loop in place instead of its route:
    // unwatched, and in `auto` (a pinned or forced mode is obeyed).
    let cheap = || {
        let free = !watching && mode_for(site) == Mode::Auto;
        free.then(|| cheap_in_place(site, value_size)).flatten()
    };
    let route = match route(site, n, call_index) {
        Route::Parallel(plan) if !plan.retry && !site.loop_in_place() => match cheap() {
            Some(costs) => measure_in_place(site, n, &plan, costs),
            None => Route::Parallel(plan),
        },
        // A call above the break-even point whose cost only a short call measured
        // (`Basis::Weak`) profiles again: its head into a new `Vec`, which for cheap items
        // costs more than they do, and whose time says as little as the short call's did,
        // so that calls near the break-even point profiled every time (10 000 `u64`s:
        // 27 µs a call against 8 µs in place). Cheap, and within a profile's own budget of
        // work, it is one timed loop in place instead, learned from whole.
        Route::Profile
            if cheap().is_some_and(|costs| {
                costs.serial.work_ns(n) <= crate::profile::BUDGET_NS as f64
            }) =>
        {
            Route::Serial {
                timed: true,
                pool: None,
            }
        }
        route => route,
    };
    let in_place = !watching && matches!(route, Route::Serial { .. } | Route::Watched { .. });
    (route, in_place)
}

/// The planning costs of `site` if its items, mapped into values of `value_size` bytes, are
/// cheap enough for a loop in place to be worth measuring: at most 1 ns per byte of a value. The
/// pieces pay for writing a new `Vec`, whose first writes fault its pages in: measured here
/// at 0.25-1 µs a 4 KiB page, so up to about 0.25 ns a byte (2 ns for a `u64`, against 0.5
/// ns of work for a cheap function, which then runs 3x faster in place than in parallel).
/// For dearer items parallel pays whatever its memory costs, and one loop would be a loss.
fn cheap_in_place(site: &Site, value_size: usize) -> Option<Costs> {
    site.planning_costs()
        .filter(|costs| costs.serial.as_nanos() <= value_size as f64)
}

/// The route of a call planned parallel as `plan` (on `costs`) that runs as a loop in place
/// once instead, to measure it (see [`cheap_in_place`]): noted as such.
#[cold]
fn measure_in_place(site: &Site, n: usize, plan: &ParallelRoute, costs: Costs) -> Route {
    site.note(
        LastDecision::new(
            n,
            &serial_decision(plan.decision),
            Cause::MeasureLoop,
            plan.machine,
        )
        .with_costs(costs),
    );
    Route::Serial {
        timed: true,
        pool: Some(plan.pool),
    }
}

/// Whether a call is an untimed plain loop on the settled, common path: nothing watching
/// calls (no observer, no progress bars, no subscriber for the call spans), and fewer than
/// two items, or a site in `auto` with a cached cost, work below its pool's break-even
/// point, and no sample due. Everything else takes [`route`].
#[inline(always)]
pub(crate) fn short_call(site: &Site, n: usize, call_index: u64) -> bool {
    if crate::observe::watching() {
        return false;
    }
    if n < 2 {
        return true;
    }
    if !config::is_auto() || site.mode() != Mode::Auto {
        return false;
    }
    let word = site.serial_word();
    let Some(per_item) = word.per_item() else {
        return false;
    };
    let work_ps = per_item.work_ps(n);
    work_ps < pool::known_serial_limit_here_ps() && !sample_due(work_ps, call_index, word)
}

/// Every call that is not a settled short loop: routed, then run.
#[inline(never)]
fn map_routed<T, It, R, F>(
    site: &'static Site,
    iter: It,
    n: usize,
    call_index: u64,
    f: F,
    exact: bool,
) -> Vec<R>
where
    T: Send,
    It: IndexedParallelIterator<Item = T>,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    map_on(
        site,
        iter,
        n,
        call_index,
        route(site, n, call_index),
        f,
        exact,
    )
}

/// Runs a call of `n` items of `site` on `route` (`exact` as for [`Serial::new`]).
#[inline(always)]
fn map_on<T, It, R, F>(
    site: &'static Site,
    iter: It,
    n: usize,
    call_index: u64,
    route: Route,
    f: F,
    exact: bool,
) -> Vec<R>
where
    T: Send,
    It: IndexedParallelIterator<Item = T>,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    if let Route::Serial { timed: false, .. } = route {
        if !crate::observe::watching() {
            // An untimed loop the fast path could not settle (a forced or pinned mode, or a
            // pool not resolved on this thread yet).
            return iter.with_producer(Serial::new(n, &f, exact));
        }
    }
    routed(site, n, route, |watch| {
        let call = crate::run::Call {
            site,
            call_index,
            watch,
        };
        let out = iter.with_producer(Run::new(call, n, &f, route, exact));
        (out, false)
    })
}

/// Runs a routed call of `n` items of `site` (`run` gets its watch, if anything watches it,
/// and returns the result and whether the call failed): counted as running in its pool if
/// it was planned, inside its span, its end reported to whatever watches it. Every entry
/// point's routed calls go through here, but for a stream's parallel batches, which must not
/// count as running in the pool (see `stream::run_batch`).
#[inline]
pub(crate) fn routed<T>(
    site: &Site,
    n: usize,
    route: Route,
    run: impl FnOnce(Option<&Watch>) -> (T, bool),
) -> T {
    routed_with(site, n, route, None, run)
}

/// What an async call's pool job brings to the call it runs: the flag its dropped future
/// sets, and the watch of the call so far (a call whose first items ran in slices).
pub(crate) struct Handover<'a> {
    pub(crate) cancel: &'a AtomicBool,
    pub(crate) watch: Option<Watch>,
}

/// [`routed`], for an async call's pool job when `handover` is given: the call goes on
/// under the watch it brings (one call to whatever watches it), and a stop after its
/// future was dropped ends as cancelled, not failed.
#[inline]
pub(crate) fn routed_with<T>(
    site: &Site,
    n: usize,
    route: Route,
    handover: Option<Handover<'_>>,
    run: impl FnOnce(Option<&Watch>) -> (T, bool),
) -> T {
    let (watch, cancel) = match handover {
        None => (crate::observe::watch(site, n), None),
        Some(Handover { cancel, watch }) => (
            watch.or_else(|| crate::observe::watch(site, n)),
            Some(cancel),
        ),
    };
    let _running = route.long_call_pool().map(Pool::enter);
    let _in_span = watch.as_ref().map(Watch::enter);
    let (out, failed) = run(watch.as_ref());
    if let Some(watch) = &watch {
        watch.finish(failed, cancel.is_some_and(|c| c.load(Ordering::Relaxed)));
    }
    out
}

/// Maps `f` over a slice of borrowed items: [`map`] over `items.par_iter()`.
///
/// ```
/// use amorsize_core::{map_slice, Site};
///
/// static LENGTHS: Site = Site::new("lengths");
///
/// let words = vec!["a".to_string(), "bb".to_string()];
/// assert_eq!(map_slice(&LENGTHS, &words, |w: &String| w.len()), [1, 2]);
/// ```
pub fn map_slice<'a, T, R, F>(site: &'static Site, items: &'a [T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&'a T) -> R + Sync + Send,
{
    map(site, items, f)
}

/// The mode that decides `site`'s calls now: the process's, if it forces one, else the
/// site's own.
pub(crate) fn mode_for(site: &Site) -> Mode {
    match config::mode() {
        Mode::Auto => site.mode(),
        forced => forced,
    }
}

/// How one call runs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Route {
    /// A plain loop; `timed` when this call's time should refine the cost. `pool` is set
    /// for a loop chosen for a call long enough to have been planned, by its site's outcomes
    /// or to measure the loop: it counts as running there, as a parallel call would, so that
    /// calls made meanwhile plan beside the core it keeps busy.
    Serial {
        timed: bool,
        pool: Option<&'static Pool>,
    },
    /// A timed loop the model chose (in `auto`) that re-plans the rest of the call if its
    /// first items run far dearer than planned: a cost that rose is acted on at once.
    /// `pool` is set for a call long enough to have been planned: it counts as running there.
    Watched { pool: Option<&'static Pool> },
    /// No trustworthy cost: time the head of this call, then plan the rest.
    Profile,
    /// A parallel map as planned.
    Parallel(ParallelRoute),
}

/// A parallel call's plan and what learning from it needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParallelRoute {
    /// The model's decision (always a [`Plan::Parallel`]).
    pub(crate) decision: Decision,
    /// The figures it was planned with.
    pub(crate) machine: Machine,
    /// The pool it runs in.
    pub(crate) pool: &'static Pool,
    /// The pool had idled when it was planned.
    pub(crate) cold: bool,
    /// A retry of parallel after the site's outcomes or costs had turned it down.
    pub(crate) retry: bool,
}

impl Route {
    /// The pool a planned call counts as running in while it runs, if it is one.
    pub(crate) fn long_call_pool(&self) -> Option<&'static Pool> {
        match self {
            Route::Parallel(plan) => Some(plan.pool),
            Route::Watched { pool } | Route::Serial { pool, .. } => *pool,
            _ => None,
        }
    }
}

#[inline]
pub(crate) fn route(site: &Site, n: usize, call_index: u64) -> Route {
    if n < 2 {
        return Route::Serial {
            timed: false,
            pool: None,
        };
    }
    let (mode, cause) = match config::mode() {
        Mode::Auto => (site.mode(), Cause::Pinned(site.mode())),
        forced => (forced, Cause::Forced(forced)),
    };
    let word = site.serial_word();
    match mode {
        Mode::Serial => forced_serial(site, n, call_index, word, cause),
        Mode::Parallel => forced_parallel(site, n, cause),
        Mode::Auto => match site.planning_costs() {
            None => Route::Profile,
            Some(costs) => {
                let work_ps = costs.serial.work_ps(n);
                // Under the floor, a loop whatever the figures: the pool is not measured
                // for it.
                if work_ps < pool::FLOOR_LIMIT_PS || work_ps < pool::here().serial_limit_ps() {
                    match serial_route(work_ps, call_index, word) {
                        Route::Serial { timed: true, .. } if work_ps >= ALWAYS_TIME_PS => {
                            Route::Watched { pool: None }
                        }
                        route => route,
                    }
                } else {
                    plan_long_call(site, n, call_index, word)
                }
            }
        },
    }
}

/// A plain loop over `work_ps` of predicted work, timed when [`sample_due`].
#[inline]
fn serial_route(work_ps: u64, call_index: u64, word: CostWord) -> Route {
    Route::Serial {
        timed: sample_due(work_ps, call_index, word),
        pool: None,
    }
}

/// Whether a serial call over `work_ps` of predicted work is timed: when long enough for the
/// clock not to matter, while a drift awaits confirmation, or as one sample in
/// [`SAMPLE_EVERY`].
#[inline(always)]
fn sample_due(work_ps: u64, call_index: u64, word: CostWord) -> bool {
    work_ps >= ALWAYS_TIME_PS || call_index % SAMPLE_EVERY == 0 || word.drifting()
}

/// The thread cap that applies to a call of `site` made now: the site's own and the one
/// around the call (the smaller), if any.
fn cap_for(site: &Site) -> Option<usize> {
    match (site.max_threads(), config::call_max_threads()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The pool's figures for a call starting now, under `site`'s cap and beside the planned
/// calls already running: the figures, whether the pool is cold, and what to name as the
/// cause of a plan made with them.
fn figures_for(site: &Site, pool: &'static Pool) -> (Machine, bool, Cause) {
    let (m, cold) = pool.for_call();
    let (m, cause) = shared_figures(site, pool, m);
    (m, cold, cause)
}

/// The pool's figures `m` narrowed to what a call of `site` starting now can use: its cap,
/// and its share beside the planned calls already running there; with the cause to name.
fn shared_figures(site: &Site, pool: &Pool, mut m: Machine) -> (Machine, Cause) {
    let pool_threads = m.threads;
    let cap = cap_for(site).filter(|&cap| cap < pool_threads);
    if let Some(cap) = cap {
        m.threads = cap.max(1);
    }
    // Planned calls already running (other OS threads' calls, or the outer call of a nested
    // one) keep their threads busy: this one plans for its share.
    let others = pool.long_calls();
    let share = crate::pool::share_of(pool_threads, others);
    let shared = others > 0 && share < m.threads;
    if shared {
        m.threads = share;
    }
    let cause = match cap {
        _ if shared => Cause::Shared {
            other_calls: others,
        },
        Some(max_threads) => Cause::Capped { max_threads },
        None if pool_threads < 2 => Cause::OneThread,
        None => Cause::Model,
    };
    (m, cause)
}

/// Whether a call of `n` items of `site` at `costs`, made on this thread now, would run as
/// a loop: its work is below the pool's break-even point, or the model plans a loop for it
/// with the threads it can have (its cap, its share beside the planned calls running, or
/// beside as many as the async calls that ran at once lately, [`Cause::Overlapping`]). From
/// what is known: never measures the pool. A loop planned by the model is recorded as the
/// site's last decision, with its cause, as `route` records it for a planned call. An async
/// call asks it before its first slice: the pool has nothing to offer a loop (see `future`).
/// A stream asks [`plans_loop_here`] before it reads a batch.
pub(crate) fn plans_loop(site: &Site, n: usize, costs: Costs) -> bool {
    plans_loop_as(site, n, costs, true)
}

/// [`plans_loop`] for a call that works on the calling thread from its start, as `map`'s
/// does (a stream's batch): it plans beside the planned calls running only, and with the
/// pool's cost when awake, whatever the async calls did lately and however long the pool
/// idled.
pub(crate) fn plans_loop_here(site: &Site, n: usize, costs: Costs) -> bool {
    plans_loop_as(site, n, costs, false)
}

fn plans_loop_as(site: &Site, n: usize, costs: Costs, sent: bool) -> bool {
    let pool = pool::here();
    if costs.serial.work_ps(n) < pool.known_serial_limit_ps() {
        return true;
    }
    let measured = pool.measured();
    let base = measured.unwrap_or_else(|| pool.known_machine());
    let (mut m, mut cause) = shared_figures(site, pool, base);
    // Beside the calls that overlapped lately, too (see `pool::OVERLAPS_REMEMBERED`): one of
    // them may only be between two calls.
    let lately = if sent { pool.recent_peak() } else { 0 };
    if lately > pool.long_calls() + 1 {
        let share = crate::pool::share_of(base.threads, lately - 1);
        if share < m.threads {
            m.threads = share;
            cause = Cause::Overlapping { calls: lately };
        }
    }
    if m.threads >= 2 && measured.is_none() {
        // A pool not measured yet is measured by its first parallel call.
        return false;
    }
    if sent && pool.idle_for(pool::IDLE_PAUSE) {
        // Sent to the pool, an async call waits for one of its threads to wake: none of its
        // own works meanwhile, as a call of `map`'s does from the start. After the pool
        // idled as long as before a sample of its cost after idling, that is what it costs.
        m.overhead_ns = m.overhead_ns.max(m.cold_overhead_ns);
    }
    let decision = model::decide(n, costs, &m);
    if decision.plan.is_parallel() {
        return false;
    }
    site.note_decision_with(n, &decision, costs, cause, m);
    true
}

#[cold]
fn plan_long_call(site: &Site, n: usize, call_index: u64, word: CostWord) -> Route {
    if word.basis() != Basis::Tuned {
        // The cost came from a short call; a call this long is worth timing properly.
        return Route::Profile;
    }
    let Some(costs) = site.planning_costs() else {
        return Route::Profile;
    };
    let pool = pool::here();
    let (m, cold, cause) = figures_for(site, pool);
    let decision = model::decide(n, costs, &m);
    let parallel = |decision: Decision, retry: bool| {
        Route::Parallel(ParallelRoute {
            decision,
            machine: m,
            pool,
            cold,
            retry,
        })
    };
    let mut learned = site.learned();
    let (route, noted, cause) = match decision.plan {
        Plan::Parallel { .. } if word.is_head_estimate() && costs.parallel != costs.serial => {
            // The loop's cost is known from the head of a call only, and parallel pieces
            // did not confirm it: measured once over a whole call, so that parallel runs
            // are judged against the loop they replace.
            (
                Route::Serial {
                    timed: true,
                    pool: Some(pool),
                },
                serial_decision(decision),
                Cause::MeasureLoop,
            )
        }
        // A loop run in place drifted: its drift is confirmed by loops only (the pieces
        // cost more than it whatever it does), and what parallel runs measured before was
        // of the work before it. Planned on the drift, the call is not held to that verdict.
        Plan::Parallel { .. } if word.drifting() && site.loop_in_place() => {
            (parallel(decision, false), decision, cause)
        }
        Plan::Parallel { .. } => match learned.outcome.gate(n, call_index) {
            Gate::Run => (parallel(decision, false), decision, cause),
            Gate::Retry => (parallel(decision, true), decision, Cause::Retry),
            Gate::Loop { measured } => (
                Route::Serial {
                    timed: true,
                    pool: Some(pool),
                },
                serial_decision(decision),
                Cause::Outcome { measured },
            ),
        },
        Plan::Serial => {
            // Turned down only because items cost more in parallel pieces: retried now and
            // then, as that cost may have been measured in a bad moment.
            let uniform = model::decide(n, Costs::uniform(costs.serial), &m);
            if costs.parallel > costs.serial
                && uniform.plan.is_parallel()
                && learned.outcome.cost_retry_due(call_index)
            {
                (parallel(uniform, true), uniform, Cause::Retry)
            } else {
                (Route::Watched { pool: Some(pool) }, decision, cause)
            }
        }
    };
    site.remember(
        learned,
        LastDecision::new(n, &noted, cause, m).with_costs(costs),
    );
    route
}

/// `decision` with its plan turned into a loop.
fn serial_decision(decision: Decision) -> Decision {
    Decision {
        plan: Plan::Serial,
        ..decision
    }
}

/// A loop the mode asks for; a call long enough to matter is recorded with its cause.
#[cold]
fn forced_serial(site: &Site, n: usize, call_index: u64, word: CostWord, cause: Cause) -> Route {
    let work_ps = word.per_item().unwrap_or(PerItem::ZERO).work_ps(n);
    let pool = pool::here();
    if work_ps >= pool.known_serial_limit_ps() {
        let m = pool.known_machine();
        let decision = model::decide(n, site.costs().unwrap_or(Costs::uniform(PerItem::ZERO)), &m);
        site.note_decision(n, &serial_decision(decision), cause, m);
    }
    serial_route(work_ps, call_index, word)
}

#[cold]
fn forced_parallel(site: &Site, n: usize, cause: Cause) -> Route {
    let pool = pool::here();
    let (m, cold, _) = figures_for(site, pool);
    let costs = site.costs();
    let unknown = Costs::uniform(PerItem::from_picos(u64::MAX));
    let mut decision = model::decide(n, costs.unwrap_or(unknown), &m);
    if !decision.plan.is_parallel() {
        let threads = m.threads.max(1);
        let min_len = n.div_ceil(threads * model::MAX_PIECES_PER_THREAD).max(1);
        decision.plan = Plan::Parallel {
            min_len,
            threads: threads.min(n.div_ceil(min_len)),
        };
    }
    if costs.is_none() {
        // Planned on a stand-in cost: no time to predict, nor a speedup.
        decision.serial_ns = f64::NAN;
    }
    site.note_decision(n, &decision, cause, m);
    Route::Parallel(ParallelRoute {
        decision,
        machine: m,
        pool,
        cold,
        retry: false,
    })
}

/// The plan for the rest of a profiled call (`remaining` of its `n` items) at the costs the
/// profile just published, logged with what its head did (`head`: "profiled", say).
#[cold]
pub(crate) fn plan_rest(site: &Site, n: usize, remaining: usize, head: &str) -> Route {
    let done = n - remaining;
    let Some(costs) = site.planning_costs() else {
        log::debug!(
            target: "amorsize",
            "{}: first {done} of {n} items {head}; rest planned serial (no cost to plan with)",
            site.name()
        );
        return Route::Serial {
            timed: true,
            pool: None,
        };
    };
    let pool = pool::here();
    let (m, cold, cause) = figures_for(site, pool);
    let decision = model::decide(remaining, costs, &m);
    site.note(
        LastDecision::new(n, &decision, cause, m)
            .with_costs(costs)
            .of_rest(remaining),
    );
    let split = decision.serial_ns / decision.parallel_ns;
    log::debug!(
        target: "amorsize",
        "{}: first {done} of {n} items {head}; rest planned {}",
        site.name(),
        match decision.plan {
            Plan::Parallel { .. } => format!(
                "{:?} (predicted speedup {:.2}x)",
                decision.plan,
                decision.predicted_speedup()
            ),
            // What decided it, as the report says.
            Plan::Serial if split > 0.0 => {
                format!("serial ({cause:?}; the best split predicted {split:.2}x)")
            }
            Plan::Serial => format!("serial ({cause:?}; no split possible)"),
        }
    );
    match decision.plan {
        Plan::Parallel { .. } => Route::Parallel(ParallelRoute {
            decision,
            machine: m,
            pool,
            cold,
            retry: false,
        }),
        Plan::Serial => Route::Serial {
            timed: true,
            pool: None,
        },
    }
}

/// Records the plan a call of `n` items would get, for a call that profiling ran whole (too
/// short to plan): labelled with the pool's figures as far as they are known, so that a
/// short first call never pays for measuring the pool.
#[cold]
pub(crate) fn note_profiled_whole(site: &Site, n: usize, estimate: PerItem) {
    let m = pool::machine_if_known();
    let costs = site.costs().unwrap_or(Costs::uniform(estimate));
    let cause = if m.threads < 2 {
        Cause::OneThread
    } else {
        Cause::Model
    };
    site.note_decision_with(n, &model::decide(n, costs, &m), costs, cause, m);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spin;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Figures of two threads that take `overhead_ns` to go parallel awake, and
    /// `cold_overhead_ns` after idling.
    fn two_threads(overhead_ns: f64, cold_overhead_ns: f64) -> Machine {
        Machine {
            threads: 2,
            overhead_ns,
            cold_overhead_ns,
            per_piece_ns: 50.0,
        }
    }

    /// Runs `test` in a rayon pool of `size` threads, a size no other test uses, whose
    /// figures are `figures` (set, not measured: the plans do not depend on this machine's
    /// CPUs), the pool `awake` or idle.
    fn in_pool_with(size: usize, figures: Machine, awake: bool, test: impl FnOnce() + Send) {
        let own = rayon::ThreadPoolBuilder::new()
            .num_threads(size)
            .build()
            .unwrap();
        own.install(|| {
            pool::Pool::registered_with_figures(size, figures, awake);
            test();
        });
    }

    #[test]
    fn an_async_call_from_a_pool_that_idled_plans_with_the_cost_after_idling() {
        static WOKEN: Site = Site::new("woken_for_async");
        // 60 items of 1 µs: in parallel, 30 µs and the cost of going parallel.
        WOKEN.assume_cost(PerItem::from_nanos(1_000.0));
        let costs = WOKEN.planning_costs().unwrap();
        let figures = two_threads(1_000.0, 40_000.0);
        in_pool_with(5, figures, false, || {
            // Idle: sent to the pool, the call would wait 40 µs for a thread to wake, and
            // 30 + 40 µs is no faster than its 60 µs loop.
            assert!(plans_loop(&WOKEN, 60, costs));
            // Awake: 30 + 1 µs pays.
            pool::Pool::registered_with_figures(5, figures, true);
            assert!(!plans_loop(&WOKEN, 60, costs));
        });
    }

    #[test]
    fn calls_under_the_floor_never_measure_the_pool() {
        static TINY: Site = Site::new("under_the_floor");
        TINY.assume_cost(PerItem::from_nanos(1.0));
        // A pool of a size no other test uses: its figures are this test's to see.
        let own = rayon::ThreadPoolBuilder::new()
            .num_threads(7)
            .build()
            .unwrap();
        own.install(|| {
            let here = pool::here();
            assert!(here.measured().is_none());
            // 1 000 items of 1 ns: under the floor (1.25 µs), a loop without measuring, and
            // one that takes the short path (not the call in 64 that is timed).
            for call in 1..=3 {
                let r = route(&TINY, 1_000, call);
                assert!(matches!(r, Route::Serial { .. }), "{r:?}");
                assert!(short_call(&TINY, 1_000, call));
            }
            assert!(here.measured().is_none(), "a call under the floor measured");
            // A call with more work than that needs the figures, and measures them.
            let _ = route(&TINY, 1_000_000, 1);
            assert!(here.measured().is_some());
        });
    }

    #[test]
    fn a_loop_the_outcomes_chose_counts_as_running_in_the_pool() {
        static GATED: Site = Site::new("gated_loop");
        // A pool of its own: no other test's calls run in it.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let seen = AtomicUsize::new(usize::MAX);
        pool.install(|| {
            if pool::machine().threads < 2 {
                eprintln!("one usable CPU: no parallel plan to turn into a loop");
                return;
            }
            // 2 000 items of 5 µs, in a loop and in parallel pieces alike, as if well timed
            // (set, not measured: on a busy machine the pieces could measure dearer, and
            // the model would choose the loop itself): planned parallel.
            GATED.assume_cost(PerItem::from_nanos(5_000.0));
            // Parallel runs measured slower than the loop, twice: the loop, for a while.
            let call = GATED.calls();
            for _ in 0..2 {
                GATED.learned().outcome.record(2_000, call, 0.5, false);
            }
            map(&GATED, 0..2_000u64, |x| {
                if x == 0 {
                    seen.store(pool::here().long_calls(), Ordering::Relaxed);
                }
                spin(Duration::from_micros(5));
                x
            });
            let last = GATED.learned().last.expect("a planned call");
            assert!(
                matches!(last.cause, Cause::Outcome { .. }),
                "{:?}",
                last.cause
            );
            // The loop counted as a planned call running in this pool while it ran.
            assert_eq!(seen.load(Ordering::Relaxed), 1);
            assert_eq!(pool::here().long_calls(), 0);
        });
    }

    #[test]
    fn a_cheap_owned_call_planned_parallel_measures_its_loop_in_place_once() {
        static CHEAP: Site = Site::new("cheap_owned");
        static DEAR: Site = Site::new("dear_owned");
        // As a site's first call would have it: 2 ns a `u64`, its pieces' new `Vec`
        // included; 20 ns for the dear one. Either is planned parallel for 100 000 items.
        CHEAP.assume_cost(PerItem::from_nanos(2.0));
        DEAR.assume_cost(PerItem::from_nanos(20.0));
        in_pool_with(9, two_threads(1_000.0, 1_000.0), true, || {
            let expected: Vec<u64> = (0..100_000u64).map(|x| x ^ 1).collect();
            // One call of `site` over a new `Vec` of 100 000 items: its plan, and whether the
            // values took the items' places.
            let call = |site: &'static Site| {
                let owned: Vec<u64> = (0..100_000).collect();
                let at = owned.as_ptr() as usize;
                let out = map(site, owned, |x| x ^ 1);
                assert_eq!(out, expected);
                let last = site.learned().last.expect("a planned call");
                (last, out.as_ptr() as usize == at)
            };

            let (last, in_place) = call(&CHEAP);
            assert_eq!(last.cause, Cause::MeasureLoop);
            assert_eq!(last.plan, Plan::Serial);
            assert!(in_place, "the loop ran in place");
            assert!(CHEAP.loop_in_place());
            // Measured once: the next call is planned on what the loop measured.
            assert_ne!(call(&CHEAP).0.cause, Cause::MeasureLoop);

            // Dearer items: parallel as planned, into a new `Vec`.
            let (last, in_place) = call(&DEAR);
            assert_eq!(last.cause, Cause::Model);
            assert!(last.plan.is_parallel());
            assert!(!in_place);
            assert!(!DEAR.loop_in_place());

            // Cheap, but pinned parallel: parallel it is.
            static PINNED: Site = Site::new("pinned_owned").with_mode(Mode::Parallel);
            PINNED.assume_cost(PerItem::from_nanos(2.0));
            let (last, _) = call(&PINNED);
            assert_eq!(last.cause, Cause::Pinned(Mode::Parallel));
            assert!(last.plan.is_parallel());
        });
    }

    #[test]
    fn a_drift_of_a_loop_in_place_is_not_held_to_the_verdict_on_the_old_work() {
        static TURNED: Site = Site::new("turned_dear_in_place");
        in_pool_with(10, two_threads(1_000.0, 1_000.0), true, || {
            // Loops in place of 0.6 ns an item, planned parallel for 100 000 items, whose
            // parallel runs measured slower than those loops: the loop, for a while.
            TURNED.assume_cost(PerItem::from_nanos(0.6));
            crate::learn::learn_from_in_place(&TURNED, 100_000, 60_000, true);
            let call = TURNED.calls();
            for _ in 0..2 {
                TURNED.learned().outcome.record(100_000, call, 0.3, false);
            }
            let route = |call| route(&TURNED, 100_000, call);
            let r = route(call + 1);
            assert!(matches!(r, Route::Serial { .. }), "{r:?}");
            // The items turn 1 µs each: one loop in place took 100 ms.
            crate::learn::learn_from_in_place(&TURNED, 100_000, 100_000_000, true);
            assert!(TURNED.serial_word().drifting());
            // The next call is planned on it, in parallel.
            let r = route(call + 2);
            assert!(matches!(r, Route::Parallel(_)), "{r:?}");
        });
    }

    #[test]
    fn a_cheap_owned_call_on_a_weak_cost_loops_in_place_rather_than_profile_again() {
        static WEAK: Site = Site::new("weak_owned");
        // 2 ns a `u64`, from a call too short to time well: a call above the break-even
        // point would profile again.
        WEAK.publish_profile(PerItem::from_nanos(2.0), false, false);
        in_pool_with(11, two_threads(1_000.0, 1_000.0), true, || {
            let r = route(&WEAK, 50_000, WEAK.calls() + 1);
            assert!(matches!(r, Route::Profile), "{r:?}");
            // Within a profile's budget (100 µs of work): one timed loop in place.
            let owned: Vec<u64> = (0..50_000).collect();
            let at = owned.as_ptr() as usize;
            let out = map(&WEAK, owned, |x| x ^ 1);
            assert!(out.iter().enumerate().all(|(i, &v)| v == i as u64 ^ 1));
            assert_eq!(
                out.as_ptr() as usize,
                at,
                "the call profiled into a new Vec"
            );
            assert!(WEAK.loop_in_place());
        });
    }
}
