//! The observer API: what an installed [`Observer`] hears of calls, their progress, profiles
//! and plan changes, checked against what the calls did and against `report()`.
//!
//! One observer per process: this binary installs a recorder once and each test reads the
//! events of its own functions. The tests take turns, so that one test's parallel calls do not
//! share the pool with another's (which would be a plan change of its own).

use amorsize::observe::{CallEnd, CallStart, Ending, PlanChange, Profiled, Progress};
use amorsize::{set_observer, Cause, Observer, Plan};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::task::Context;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
enum Event {
    Start(CallStart),
    Progress(Progress),
    End(CallEnd),
    Profiled(Profiled),
    Plan(PlanChange),
}

impl Event {
    fn site(&self) -> &'static str {
        match self {
            Event::Start(e) => e.site,
            Event::Progress(e) => e.site,
            Event::End(e) => e.site,
            Event::Profiled(e) => e.site,
            Event::Plan(e) => e.site,
        }
    }
}

struct Recorder(Mutex<Vec<Event>>);

impl Observer for Recorder {
    fn call_started(&self, call: &CallStart) {
        self.0.lock().unwrap().push(Event::Start(call.clone()));
    }
    fn progress(&self, progress: &Progress) {
        self.0
            .lock()
            .unwrap()
            .push(Event::Progress(progress.clone()));
    }
    fn call_ended(&self, call: &CallEnd) {
        self.0.lock().unwrap().push(Event::End(call.clone()));
    }
    fn profiled(&self, profiled: &Profiled) {
        self.0
            .lock()
            .unwrap()
            .push(Event::Profiled(profiled.clone()));
    }
    fn plan_changed(&self, change: &PlanChange) {
        self.0.lock().unwrap().push(Event::Plan(change.clone()));
    }
}

static RECORDER: Recorder = Recorder(Mutex::new(Vec::new()));

/// Installs the recorder (once) and takes this test's turn.
fn observed() -> MutexGuard<'static, ()> {
    static INSTALL: Once = Once::new();
    static TURN: Mutex<()> = Mutex::new(());
    INSTALL.call_once(|| set_observer(&RECORDER).expect("the first observer installs"));
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The events so far of the site whose name ends with `function`.
fn events_of(function: &str) -> Vec<Event> {
    RECORDER
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.site().rsplit("::").next() == Some(function))
        .cloned()
        .collect()
}

/// The plan changes reported so far for the site whose name ends with `function`.
fn plan_changes_of(function: &str) -> Vec<PlanChange> {
    events_of(function)
        .into_iter()
        .filter_map(|e| match e {
            Event::Plan(c) => Some(c),
            _ => None,
        })
        .collect()
}

mod support;
use support::{nobody, poll_here, spin_from as spin};

#[amorsize::parallel]
fn cheap(x: &u64) -> u64 {
    x.wrapping_mul(3)
}

#[test]
fn a_second_observer_is_refused() {
    let _turn = observed();
    struct Other;
    impl Observer for Other {}
    assert_eq!(set_observer(Other), Err(amorsize::ObserverAlreadySet));
}

#[test]
fn every_call_starts_and_ends_with_its_length_and_plan() {
    let _turn = observed();
    let items: Vec<u64> = (0..1_000).collect();
    for _ in 0..5 {
        assert_eq!(par_cheap(&items)[999], 2_997);
    }
    // Calls of one item take the fast path when nothing watches; watched, they count too.
    assert_eq!(par_cheap(&items[..1]), [0]);
    let events = events_of("cheap");
    let starts: Vec<&CallStart> = events
        .iter()
        .filter_map(|e| match e {
            Event::Start(s) => Some(s),
            _ => None,
        })
        .collect();
    let ends: Vec<&CallEnd> = events
        .iter()
        .filter_map(|e| match e {
            Event::End(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(starts.len(), 6, "{events:#?}");
    assert_eq!(ends.len(), 6, "{events:#?}");
    for (start, end) in starts.iter().zip(&ends) {
        assert_eq!(start.call, end.call);
        assert_eq!(start.n, end.n);
        assert_eq!(end.ending, Ending::Done);
        assert!(end.plan.is_some(), "{end:?}");
    }
    assert_eq!(starts[5].n, 1);
    // The first call knew no cost; the later ones predict from the learned one.
    assert_eq!(starts[0].predicted, None);
    assert!(starts[1].predicted.is_some(), "{:?}", starts[1]);
}

#[amorsize::parallel]
fn heavy(x: &u64) -> u64 {
    spin(*x, Duration::from_micros(20))
}

#[test]
fn a_long_call_reports_progress_up_to_its_length_before_it_ends() {
    let _turn = observed();
    // 80 ms of work: a loop (on one CPU) reports in steps too.
    let items: Vec<u64> = (0..4_000).collect();
    for _ in 0..2 {
        assert_eq!(par_heavy(&items).len(), 4_000);
    }
    let events = events_of("heavy");
    for call in events.iter().filter_map(|e| match e {
        Event::Start(s) => Some(s.call),
        _ => None,
    }) {
        let progress: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                Event::Progress(p) if p.call == call => Some(p.done),
                _ => None,
            })
            .collect();
        let end_at = events
            .iter()
            .position(|e| matches!(e, Event::End(end) if end.call == call))
            .expect("every call ends");
        let last_progress_at = events
            .iter()
            .rposition(|e| matches!(e, Event::Progress(p) if p.call == call))
            .expect("a long call reports progress");
        assert!(
            last_progress_at < end_at,
            "progress after the end: {events:#?}"
        );
        // Counted per block or piece: several steps, never past the length, up to it.
        assert!(progress.len() >= 2, "{progress:?}");
        assert!(progress.iter().all(|&done| done <= 4_000), "{progress:?}");
        assert_eq!(progress.iter().max(), Some(&4_000), "{progress:?}");
    }
}

#[amorsize::parallel]
fn fragile(x: &u64, bad: u64) -> Result<u64, String> {
    if *x == bad {
        Err(format!("{x} is bad"))
    } else if *x == bad + 1 {
        panic!("{x} panicked");
    } else {
        Ok(spin(*x, Duration::from_micros(2)))
    }
}

#[test]
fn a_failed_call_and_a_panicked_one_say_so_and_the_next_call_is_done() {
    let _turn = observed();
    let items: Vec<u64> = (0..5_000).collect();
    assert!(try_par_fragile(&items, 4_000).is_err());
    let panicked = catch_unwind(AssertUnwindSafe(|| par_fragile(&items, 4_998)));
    assert!(panicked.is_err());
    assert_eq!(
        try_par_fragile(&items, u64::MAX - 1).map(|v| v.len()),
        Ok(5_000)
    );
    let endings: Vec<Ending> = events_of("fragile")
        .iter()
        .filter_map(|e| match e {
            Event::End(end) => Some(end.ending),
            _ => None,
        })
        .collect();
    assert_eq!(endings, [Ending::Failed, Ending::Panicked, Ending::Done]);
}

#[amorsize::parallel]
fn profiled_once(x: &u64) -> u64 {
    spin(*x, Duration::from_micros(5))
}

#[test]
fn a_first_call_is_profiled_and_every_reported_plan_change_is_one() {
    let _turn = observed();
    let items: Vec<u64> = (0..4_000).collect();
    for _ in 0..6 {
        assert_eq!(par_profiled_once(&items).len(), 4_000);
    }
    let events = events_of("profiled_once");
    let profiles: Vec<&Profiled> = events
        .iter()
        .filter_map(|e| match e {
            Event::Profiled(p) => Some(p),
            _ => None,
        })
        .collect();
    assert!(!profiles.is_empty(), "{events:#?}");
    let first = profiles[0].per_item.as_nanos();
    assert!(first >= 4_000.0, "5 µs items profiled at {first} ns");

    let changes: Vec<&PlanChange> = events
        .iter()
        .filter_map(|e| match e {
            Event::Plan(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(!changes.is_empty(), "a first plan is a change: {events:#?}");
    assert_eq!(changes[0].previous, None);
    let threads = |plan: Plan| match plan {
        Plan::Serial => 0,
        Plan::Parallel { threads, .. } => threads,
    };
    for pair in changes.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        assert_eq!(after.previous.map(threads), Some(threads(before.plan)));
        let same_cause =
            std::mem::discriminant(&before.cause) == std::mem::discriminant(&after.cause);
        assert!(
            threads(before.plan) != threads(after.plan) || !same_cause,
            "reported as a change, but the same: {before:?} then {after:?}"
        );
    }
    // The report's plan is the last one reported (up to its piece length).
    let report = amorsize::report();
    let site = report
        .sites
        .iter()
        .find(|s| s.name.ends_with("profiled_once"))
        .expect("the site is reported");
    let last = changes.last().unwrap();
    assert_eq!(site.plan.map(threads), Some(threads(last.plan)), "{site:?}");
}

#[amorsize::parallel]
fn two_sizes(x: &u64) -> u64 {
    spin(*x, Duration::from_micros(5))
}

#[test]
fn a_site_called_with_two_sizes_in_turn_reports_a_change_per_size_not_per_call() {
    let _turn = observed();
    // 20 items (100 µs: planned) capped to a loop, and 2 000 planned for the pool, in turn.
    let small: Vec<u64> = (0..20).collect();
    let large: Vec<u64> = (0..2_000).collect();
    for _ in 0..6 {
        assert_eq!(
            amorsize::with_max_threads(1, || par_two_sizes(&small)).len(),
            20
        );
        assert_eq!(par_two_sizes(&large).len(), 2_000);
    }
    let changes = plan_changes_of("two_sizes");
    if amorsize::machine().threads < 2 {
        // A pool of one thread can only loop: at most a first plan per size, said to be so.
        eprintln!("note: one thread in this pool; checked the one-thread plans only");
        assert!(changes.len() <= 2, "{changes:#?}");
        assert!(
            changes.iter().all(|c| c.cause == Cause::OneThread),
            "{changes:#?}"
        );
        return;
    }
    // Each change is told against the last plan for calls of about the same length: the
    // small calls' never follows a large call's plan, and the other way round.
    for change in &changes {
        let small_call = change.n < 64;
        assert!(
            change.previous_cause.is_none()
                || matches!(change.previous_cause, Some(Cause::Capped { .. })) == small_call,
            "{changes:#?}"
        );
    }
    assert!(changes.len() < 12, "a change at every call: {changes:#?}");
}

#[amorsize::parallel(mode = "serial")]
fn pinned(x: &u64) -> u64 {
    spin(*x, Duration::from_micros(5))
}

#[test]
fn a_pinned_long_call_reports_its_plan_and_why() {
    let _turn = observed();
    let items: Vec<u64> = (0..2_000).collect();
    for _ in 0..3 {
        assert_eq!(par_pinned(&items).len(), 2_000);
    }
    let changes = plan_changes_of("pinned");
    if amorsize::machine().threads < 2 {
        // A pool of one thread can only loop: its calls are not planned, so there is no
        // plan to report. What can be checked on one CPU is that nothing is made up.
        eprintln!("note: one thread in this pool; checked that no plan is reported");
        assert!(changes.is_empty(), "{changes:#?}");
        return;
    }
    assert_eq!(changes.len(), 1, "one plan, kept: {changes:#?}");
    assert_eq!(changes[0].plan, Plan::Serial);
    assert_eq!(changes[0].cause, Cause::Pinned(amorsize::Mode::Serial));
}

static HELD_STARTED: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel]
fn held(x: &u64) -> u64 {
    HELD_STARTED.fetch_add(1, Ordering::SeqCst);
    spin(*x, Duration::from_micros(200))
}

#[test]
fn an_async_call_whose_future_is_dropped_ends_cancelled() {
    let _turn = observed();
    // 2 000 items of 200 µs: 400 ms of work, on the pool (a first call: its cost is unknown).
    let mut future = Box::pin(par_held_async((0..2_000u64).collect::<Vec<_>>()));
    let waker = nobody();
    assert!(future
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    let started = Instant::now();
    while HELD_STARTED.load(Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the map never started"
        );
        std::thread::yield_now();
    }
    drop(future);
    let end = loop {
        let end = events_of("held").into_iter().find_map(|e| match e {
            Event::End(end) => Some(end),
            _ => None,
        });
        if let Some(end) = end {
            break end;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the call never ended"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(end.ending, Ending::Cancelled, "{end:?}");
    assert!(
        HELD_STARTED.load(Ordering::SeqCst) < 2_000,
        "every item ran after the future was dropped"
    );
}

/// The events of the last call of the site whose name ends with `function`.
fn last_call_of(function: &str) -> Vec<Event> {
    let events = events_of(function);
    let Some(call) = events.iter().rev().find_map(|e| match e {
        Event::Start(start) => Some(start.call),
        _ => None,
    }) else {
        return Vec::new();
    };
    events
        .into_iter()
        .filter(|e| match e {
            Event::Start(e) => e.call == call,
            Event::Progress(e) => e.call == call,
            Event::End(e) => e.call == call,
            _ => false,
        })
        .collect()
}

static SLICED_ON_POOL: AtomicUsize = AtomicUsize::new(0);

// Capped to one thread: its plan is a loop, so an async call runs in slices where polled.
#[amorsize::parallel(max_threads = 1)]
fn sliced(x: &u64) -> u64 {
    if rayon::current_thread_index().is_some() {
        SLICED_ON_POOL.fetch_add(1, Ordering::SeqCst);
    }
    // Cheap enough that a busy machine's preemptions never make it dearer than a slice
    // (50 µs) on average, which would send the call to the pool.
    spin(*x, Duration::from_micros(5));
    x * 3
}

/// The start, the progress (items done, in order) and the end of a call's `events`.
fn start_progress_end(events: &[Event]) -> (Vec<&CallStart>, Vec<usize>, Vec<&CallEnd>) {
    let starts = events
        .iter()
        .filter_map(|e| match e {
            Event::Start(s) => Some(s),
            _ => None,
        })
        .collect();
    let done = events
        .iter()
        .filter_map(|e| match e {
            Event::Progress(p) => Some(p.done),
            _ => None,
        })
        .collect();
    let ends = events
        .iter()
        .filter_map(|e| match e {
            Event::End(e) => Some(e),
            _ => None,
        })
        .collect();
    (starts, done, ends)
}

#[test]
fn a_watched_async_call_runs_in_slices_and_reports_one_call_with_its_progress() {
    let _turn = observed();
    // 20 000 items of 5 µs: 100 ms, long enough to report progress in steps.
    let items: Vec<u64> = (0..20_000).collect();
    let expected: Vec<u64> = items.iter().map(|x| x * 3).collect();
    assert_eq!(par_sliced(&items), expected);
    SLICED_ON_POOL.store(0, Ordering::SeqCst);
    let (got, polls) = poll_here(par_sliced_async(items));
    assert_eq!(got, expected);
    assert_eq!(
        SLICED_ON_POOL.load(Ordering::SeqCst),
        0,
        "items ran on the pool"
    );
    assert!(
        polls >= 100_000 / 50,
        "{polls} polls: not in slices of at most 50 µs"
    );
    let events = last_call_of("sliced");
    let (starts, done, ends) = start_progress_end(&events);
    assert_eq!((starts.len(), ends.len()), (1, 1), "{events:#?}");
    assert_eq!(starts[0].n, 20_000);
    let end = ends[0];
    assert_eq!(
        (end.n, end.plan, end.ending),
        (20_000, Some(Plan::Serial), Ending::Done)
    );
    assert!(done.len() > 1, "no progress in steps: {done:?}");
    assert!(done.windows(2).all(|w| w[0] < w[1]), "{done:?}");
    assert_eq!(done.last(), Some(&20_000));
}

#[test]
fn a_watched_async_call_dropped_between_slices_ends_cancelled() {
    let _turn = observed();
    let items: Vec<u64> = (0..20_000).collect();
    par_sliced(&items);
    SLICED_ON_POOL.store(0, Ordering::SeqCst);
    let waker = nobody();
    let mut future = Box::pin(par_sliced_async(items));
    for _ in 0..3 {
        assert!(future
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
    }
    drop(future);
    let events = last_call_of("sliced");
    let (starts, _, ends) = start_progress_end(&events);
    assert_eq!((starts.len(), ends.len()), (1, 1), "{events:#?}");
    assert_eq!((ends[0].n, ends[0].ending), (20_000, Ending::Cancelled));
    assert_eq!(
        SLICED_ON_POOL.load(Ordering::SeqCst),
        0,
        "items ran on the pool"
    );
}

#[test]
fn a_watched_async_call_dropped_by_a_panicking_task_ends_cancelled_not_panicked() {
    let _turn = observed();
    let items: Vec<u64> = (0..20_000).collect();
    par_sliced(&items);
    let waker = nobody();
    let mut future = Box::pin(par_sliced_async(items));
    assert!(future
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    // The task fails for a reason of its own while the call waits between slices: the
    // future is dropped as the task unwinds, but the function never panicked.
    let unwound = catch_unwind(AssertUnwindSafe(move || {
        let _held = future;
        panic!("the task's own failure");
    }));
    assert!(unwound.is_err());
    let events = last_call_of("sliced");
    let (_, _, ends) = start_progress_end(&events);
    assert_eq!(ends.len(), 1, "{events:#?}");
    assert_eq!(ends[0].ending, Ending::Cancelled);
}

static DEAR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[amorsize::parallel(max_threads = 1)]
fn drifting(x: &u64) -> u64 {
    let cost = if DEAR.load(Ordering::SeqCst) { 300 } else { 2 };
    spin(*x, Duration::from_micros(cost));
    x + 7
}

#[test]
fn a_watched_async_call_whose_rest_goes_to_the_pool_is_one_call() {
    let _turn = observed();
    let cheap: Vec<u64> = (0..2_000).collect();
    par_drifting(&cheap);
    poll_here(par_drifting_async(cheap));
    // Learned at 2 µs; now 300 µs each: after two slices over, the rest goes to the pool.
    DEAR.store(true, Ordering::SeqCst);
    let items: Vec<u64> = (0..100).collect();
    let (got, _) = poll_here(par_drifting_async(items.clone()));
    DEAR.store(false, Ordering::SeqCst);
    assert_eq!(got, items.iter().map(|x| x + 7).collect::<Vec<_>>());
    let events = last_call_of("drifting");
    let (starts, done, ends) = start_progress_end(&events);
    assert_eq!((starts.len(), ends.len()), (1, 1), "{events:#?}");
    assert_eq!((ends[0].n, ends[0].ending), (100, Ending::Done));
    assert!(done.iter().all(|&d| d <= 100), "{done:?}");
}

// Capped: a loop, so its async calls run in slices where polled.
#[amorsize::parallel(max_threads = 1)]
fn sliced_fragile(x: &u64, fail_at: u64, panic_at: u64) -> Result<u64, String> {
    if *x == fail_at {
        return Err(format!("{x} is bad"));
    }
    if *x == panic_at {
        panic!("{x} panicked");
    }
    spin(*x, Duration::from_micros(5));
    Ok(*x)
}

#[test]
fn a_watched_call_in_slices_that_fails_or_panics_says_so() {
    let _turn = observed();
    let items: Vec<u64> = (0..4_000).collect();
    let never = u64::MAX;
    assert!(try_par_sliced_fragile(&items, never, never).is_ok());
    let (failed, polls) = poll_here(try_par_sliced_fragile_async(items.clone(), 3_000, never));
    assert_eq!(failed, Err("3000 is bad".to_string()));
    assert!(polls > 1, "one poll: the call did not run in slices");
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        poll_here(try_par_sliced_fragile_async(items.clone(), never, 3_000))
    }));
    assert!(panicked.is_err());
    let (done, _) = poll_here(try_par_sliced_fragile_async(items, never, never));
    assert_eq!(done.map(|v| v.len()), Ok(4_000));
    let endings: Vec<Ending> = events_of("sliced_fragile")
        .iter()
        .filter_map(|e| match e {
            Event::End(end) => Some(end.ending),
            _ => None,
        })
        .collect();
    assert_eq!(
        endings,
        [Ending::Done, Ending::Failed, Ending::Panicked, Ending::Done]
    );
}
