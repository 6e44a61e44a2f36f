//! An async call made while fewer planned calls run than ran at once lately (a service's
//! requests that overlap, one of them between two calls) plans for its share beside them
//! ([`amorsize::Cause::Overlapping`]); once that is forgotten, a call alone plans for the
//! whole pool again; calls a call makes itself (a nested companion) are not overlapping
//! requests. A test binary of its own, so that no other test's calls overlap these; its
//! tests take turns, each starting once the last one's overlaps are forgotten.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, MutexGuard};
use std::time::Duration;

mod support;
use support::{poll_here, spin};

static ON_POOL: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel]
fn weighed(x: &u64) -> u64 {
    if rayon::current_thread_index().is_some() {
        ON_POOL.fetch_add(1, Ordering::SeqCst);
    }
    spin(Duration::from_micros(20));
    x * 7
}

/// Set while two "requests" must overlap: their first items wait for each other.
static MEET: AtomicBool = AtomicBool::new(false);
static BOTH_STARTED: Barrier = Barrier::new(2);

// Capped: a loop on any machine, so its async calls run in slices where they are polled,
// counted as running in the pool (once per thread) whatever their outcomes.
#[amorsize::parallel(max_threads = 1)]
fn request(x: &u64) -> u64 {
    if *x == 0 && MEET.load(Ordering::SeqCst) {
        BOTH_STARTED.wait();
    }
    spin(Duration::from_micros(5));
    x + 1
}

/// Takes this test's turn, once what the last test overlapped is forgotten (50 ms).
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    std::thread::sleep(Duration::from_millis(60));
    turn
}

/// 2 000 items, and `weighed`'s results for them, once both sites have learned their costs
/// (a first call profiles).
fn learned() -> (Vec<u64>, Vec<u64>) {
    let items: Vec<u64> = (0..2_000).collect();
    let expected: Vec<u64> = items.iter().map(|x| x * 7).collect();
    for _ in 0..2 {
        assert_eq!(par_weighed(&items), expected);
        assert_eq!(par_request(&items).len(), 2_000);
    }
    (items, expected)
}

#[test]
fn an_async_call_plans_beside_the_calls_that_overlapped_lately() {
    let _turn = turn();
    let (items, expected) = learned();
    // Two "requests" from two threads, each in slices on its thread, running at once (each
    // waits in its first item for the other to start).
    MEET.store(true, Ordering::SeqCst);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| poll_here(par_request_async(items.clone())));
        }
    });
    MEET.store(false, Ordering::SeqCst);
    // Alone now, but the other "request" may only be between calls: a loop, in slices here.
    ON_POOL.store(0, Ordering::SeqCst);
    let (got, polls) = poll_here(par_weighed_async(items.clone()));
    assert_eq!(got, expected);
    let report = amorsize::report();
    let site = report.site("weighed").expect("the site is reported");
    if amorsize::machine().threads < 2 {
        // One usable thread: every call is a loop, whatever overlapped.
        eprintln!("note: one thread in this pool; checked the one-thread loop only");
        assert_eq!(
            site.cause,
            Some(amorsize::Cause::OneThread),
            "{}",
            site.reason
        );
        assert_eq!(ON_POOL.load(Ordering::SeqCst), 0, "items ran on the pool");
        return;
    }
    assert_eq!(
        site.cause,
        Some(amorsize::Cause::Overlapping { calls: 2 }),
        "{}",
        site.reason
    );
    assert_eq!(site.plan, Some(amorsize::Plan::Serial));
    assert!(
        site.reason.contains("2 async calls had run at once"),
        "{}",
        site.reason
    );
    assert_eq!(ON_POOL.load(Ordering::SeqCst), 0, "items ran on the pool");
    assert!(polls > 1, "one poll: the call did not run in slices");
    // Forgotten 50 ms on: a call alone plans for the whole pool (parallel on an idle
    // machine; a busy one may make its items dearer in parallel, and the model a loop).
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(poll_here(par_weighed_async(items)).0, expected);
    let report = amorsize::report();
    let site = report.site("weighed").expect("the site is reported");
    assert!(
        !matches!(site.cause, Some(amorsize::Cause::Overlapping { .. })),
        "{}",
        site.reason
    );
}

#[amorsize::parallel]
fn inner(x: &u64) -> u64 {
    spin(Duration::from_micros(1));
    x + 1
}

// Each item (cheaper than a slice) makes a call of its own: 30 µs of work, planned (and so
// counted in the pool), then a loop beside the outer call.
#[amorsize::parallel]
fn nesting(x: &u64) -> u64 {
    let parts: Vec<u64> = (0..30).collect();
    par_inner(&parts).iter().sum::<u64>() + x
}

#[test]
fn calls_nested_in_an_async_call_do_not_make_the_next_one_a_loop() {
    let _turn = turn();
    let items: Vec<u64> = (0..400).collect();
    // One "connection": calls one after the other. The first two learn the costs.
    for _ in 0..2 {
        poll_here(par_nesting_async(items.clone()));
    }
    poll_here(par_nesting_async(items));
    let report = amorsize::report();
    let site = report.site("nesting").expect("the site is reported");
    if amorsize::machine().threads < 2 {
        eprintln!("note: one thread in this pool: every call is a loop, nested or not");
        return;
    }
    // Planned for the whole pool: parallel on an idle machine (a busy one may make the
    // items dearer in parallel, and the model a loop), never beside its own nested calls.
    assert!(
        !matches!(site.cause, Some(amorsize::Cause::Overlapping { .. })),
        "{}",
        site.reason
    );
}

#[test]
fn a_call_in_slices_left_idle_stops_counting_in_the_pool() {
    let _turn = turn();
    let (items, expected) = learned();
    // One slice of a call, whose future is then kept and never polled again (a `select!`
    // that lost interest in it, say).
    let mut idle = Box::pin(par_request_async(items.clone()));
    let waker = support::nobody();
    let polled = idle
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker));
    assert!(polled.is_pending(), "10 ms of work done in one poll");
    let cause = || {
        let report = amorsize::report();
        report.site("weighed").and_then(|site| site.cause)
    };
    let one_thread = amorsize::machine().threads < 2;
    // Fresh, it counts as running in the pool: a call planned now plans beside it.
    assert_eq!(par_weighed(&items), expected);
    if one_thread {
        eprintln!("note: one thread in this pool: no share to plan; checked the results");
    } else {
        assert_eq!(cause(), Some(amorsize::Cause::Shared { other_calls: 1 }));
    }
    // Idle for longer than a polled call ever is: it no longer counts.
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(par_weighed(&items), expected);
    assert!(
        !matches!(cause(), Some(amorsize::Cause::Shared { .. })),
        "{:?}",
        cause()
    );
    drop(idle);
}
