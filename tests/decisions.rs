//! What the runtime decides, asserted on plans (never on times), and that every item is
//! computed exactly once, first call included.

use amorsize::Plan;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Two rayon threads even where rayon would start one, and one test at a time: a plan
/// follows a timing, which a sibling test's parallel work on the same two cores would
/// distort.
fn two_threads() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global();
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether this machine lets a parallel plan be the answer: the model plans for at most the
/// CPUs this process may use. Says so on stderr when it does not (a one-CPU runner, or
/// `taskset -c 0`): the test then checks the one-thread answer instead.
fn parallel_possible(test: &str) -> bool {
    let threads = amorsize::machine().threads;
    if threads < 2 {
        eprintln!("{test}: {threads} usable thread here, so no parallel plan: checking the serial one instead");
    }
    threads >= 2
}

mod support;
use support::spin;

static BY_REF_CALLS: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel]
fn counted_by_ref(x: &u64) -> u64 {
    BY_REF_CALLS.fetch_add(1, Ordering::Relaxed);
    x ^ 0xABCD
}

static BY_VALUE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel]
fn counted_by_value(x: u32) -> u64 {
    BY_VALUE_CALLS.fetch_add(1, Ordering::Relaxed);
    // Heavy enough that long calls go parallel.
    (0..40).fold(x as u64, |a, i| {
        black_box(a.wrapping_mul(31).wrapping_add(i))
    })
}

#[test]
fn every_item_runs_exactly_once_per_call_first_call_included() {
    let _one_at_a_time = two_threads();
    for n in [100_000usize, 0, 1, 2, 7, 1_000, 100_000] {
        let before = BY_REF_CALLS.load(Ordering::Relaxed);
        let items: Vec<u64> = (0..n as u64).collect();
        let out = par_counted_by_ref(&items);
        assert_eq!(
            BY_REF_CALLS.load(Ordering::Relaxed) - before,
            n,
            "by ref, n = {n}"
        );
        assert_eq!(out, items.iter().map(|x| x ^ 0xABCD).collect::<Vec<_>>());

        let before = BY_VALUE_CALLS.load(Ordering::Relaxed);
        let out = par_counted_by_value(0..n as u32);
        assert_eq!(
            BY_VALUE_CALLS.load(Ordering::Relaxed) - before,
            n,
            "by value, n = {n}"
        );
        assert_eq!(out.len(), n);
    }
}

#[amorsize::parallel]
fn tiny(x: &u64) -> u64 {
    x + 1
}

#[test]
fn a_hundred_nanosecond_items_are_planned_serial() {
    let _one_at_a_time = two_threads();
    let items: Vec<u64> = (0..100).collect();
    // Twice: the cost learned from one call this short is provisional, and a call whose
    // timing was inflated (the thread descheduled mid-block, about one run in a hundred here)
    // profiles again on the next call that the inflated cost makes look long.
    for _ in 0..2 {
        assert_eq!(par_tiny(&items), (1..=100).collect::<Vec<_>>());
    }
    let report = amorsize::report();
    let site = report.site("tiny").expect("the site is in the report");
    assert_eq!(site.calls, 2);
    assert_eq!(site.items, 200);
    assert_eq!(site.plan, Some(Plan::Serial), "{report}");
    assert_eq!(site.plan_for(100, &report.machine), Some(Plan::Serial));
    assert!(site.per_item.unwrap().as_nanos() < 1_000.0, "{report}");
}

#[amorsize::parallel]
fn heavy(x: &u64) -> u64 {
    spin(Duration::from_millis(1));
    x * 2
}

#[test]
fn sixty_four_millisecond_items_are_planned_parallel() {
    let _one_at_a_time = two_threads();
    let items: Vec<u64> = (0..64).collect();
    assert_eq!(
        par_heavy(&items),
        (0..64).map(|x| x * 2).collect::<Vec<_>>()
    );
    let report = amorsize::report();
    let site = report.site("heavy").unwrap();
    assert!(site.per_item.unwrap().as_nanos() >= 900_000.0, "{report}");
    if parallel_possible("sixty_four_millisecond_items_are_planned_parallel") {
        assert!(
            matches!(site.plan, Some(Plan::Parallel { threads: 2, .. })),
            "{report}"
        );
        assert!(matches!(
            site.plan_for(64, &report.machine),
            Some(Plan::Parallel { .. })
        ));
    } else {
        assert_eq!(site.plan, Some(Plan::Serial), "{report}");
    }
}

#[amorsize::parallel]
fn medium(x: &u64) -> u64 {
    (0..20).fold(*x, |a, i| black_box(a.rotate_left(5) ^ i))
}

#[test]
fn one_function_gets_the_right_plan_for_each_length() {
    let _one_at_a_time = two_threads();
    let small: Vec<u64> = (0..50).collect();
    let large: Vec<u64> = (0..200_000).collect();
    let expected = |v: &[u64]| v.iter().map(medium).collect::<Vec<_>>();

    assert_eq!(par_medium(&small), expected(&small));
    let report = amorsize::report();
    let site = report.site("medium").unwrap();
    assert_eq!(
        (site.last_n, site.plan),
        (Some(50), Some(Plan::Serial)),
        "{report}"
    );

    assert_eq!(par_medium(&large), expected(&large));
    let report = amorsize::report();
    let site = report.site("medium").unwrap();
    let parallel = parallel_possible("one_function_gets_the_right_plan_for_each_length");
    if parallel {
        // Planned: recorded, and parallel.
        assert_eq!(site.last_n, Some(200_000), "{report}");
        assert!(matches!(site.plan, Some(Plan::Parallel { .. })), "{report}");
    } else {
        // With one usable thread nothing is planned: every call is a loop.
        assert_eq!(site.plan, Some(Plan::Serial), "{report}");
    }

    // And back: the cached cost sends the short call to the loop again.
    assert_eq!(par_medium(&small), expected(&small));
    let report = amorsize::report();
    let site = report.site("medium").unwrap();
    assert_eq!(site.plan_for(50, &report.machine), Some(Plan::Serial));
    assert_eq!(
        matches!(
            site.plan_for(200_000, &report.machine),
            Some(Plan::Parallel { .. })
        ),
        parallel
    );
}
