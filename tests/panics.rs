//! Panics in user code reach the caller with their original payload, whether they happen
//! while the first call is profiling or inside a parallel run, and the function keeps
//! working afterwards.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

fn two_threads() {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global();
}

fn payload(err: Box<dyn std::any::Any + Send>) -> String {
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a string payload")
}

static FIRST_PANICS_AT: AtomicU64 = AtomicU64::new(u64::MAX);

#[amorsize::parallel]
fn fragile_first(x: &u64) -> u64 {
    if *x == FIRST_PANICS_AT.load(Ordering::Relaxed) {
        panic!("item {x} is bad");
    }
    (0..50).fold(*x, |a, i| std::hint::black_box(a.wrapping_mul(31) ^ i))
}

#[test]
fn a_panic_on_the_very_first_item_propagates_and_leaves_no_plan() {
    two_threads();
    let items: Vec<u64> = (0..100_000).collect();
    FIRST_PANICS_AT.store(0, Ordering::Relaxed);
    let err = catch_unwind(|| par_fragile_first(&items)).unwrap_err();
    assert_eq!(payload(err), "item 0 is bad");

    // Nothing was learned from the aborted call: no half-written plan to trust.
    let report = amorsize::report();
    let site = report.site("fragile_first").unwrap();
    assert_eq!(site.per_item, None, "{report}");

    FIRST_PANICS_AT.store(u64::MAX, Ordering::Relaxed);
    let expected: Vec<u64> = items.iter().map(fragile_first).collect();
    assert_eq!(par_fragile_first(&items), expected);
    let report = amorsize::report();
    let cost = report
        .site("fragile_first")
        .unwrap()
        .per_item
        .unwrap()
        .as_nanos();
    assert!(cost.is_finite() && cost > 0.0 && cost < 1e6, "{report}");
}

static LATER_PANICS_AT: AtomicU64 = AtomicU64::new(u64::MAX);

#[amorsize::parallel(mode = "parallel")]
fn fragile_parallel(x: u64) -> u64 {
    if x == LATER_PANICS_AT.load(Ordering::Relaxed) {
        std::panic::panic_any(x);
    }
    x * 3
}

#[test]
fn a_panic_inside_a_parallel_run_propagates_its_payload() {
    two_threads();
    assert_eq!(par_fragile_parallel(0..10_000u64).len(), 10_000);
    LATER_PANICS_AT.store(7_777, Ordering::Relaxed);
    for _ in 0..3 {
        let err = catch_unwind(|| par_fragile_parallel(0..10_000u64)).unwrap_err();
        assert_eq!(err.downcast_ref::<u64>(), Some(&7_777));
    }
    LATER_PANICS_AT.store(u64::MAX, Ordering::Relaxed);
    let out = par_fragile_parallel(0..10_000u64);
    assert_eq!(out, (0..10_000u64).map(|x| x * 3).collect::<Vec<_>>());
    // The registry lock was not poisoned: reports still work.
    assert!(amorsize::report().site("fragile_parallel").unwrap().calls >= 5);
}

static MID_PANICS_AT: AtomicU64 = AtomicU64::new(u64::MAX);

#[amorsize::parallel]
fn fragile_mid(x: &u64) -> String {
    if *x == MID_PANICS_AT.load(Ordering::Relaxed) {
        panic!("mid {x}");
    }
    x.to_string()
}

#[test]
fn panics_mid_profiling_drop_partial_results_cleanly_and_recover() {
    two_threads();
    let items: Vec<u64> = (0..50_000).collect();
    MID_PANICS_AT.store(37, Ordering::Relaxed);
    // Outputs own heap memory (String): partial results must be dropped, not leaked twice.
    let err = catch_unwind(AssertUnwindSafe(|| par_fragile_mid(&items))).unwrap_err();
    assert_eq!(payload(err), "mid 37");
    MID_PANICS_AT.store(49_999, Ordering::Relaxed);
    let err = catch_unwind(AssertUnwindSafe(|| par_fragile_mid(&items))).unwrap_err();
    assert_eq!(payload(err), "mid 49999");
    MID_PANICS_AT.store(u64::MAX, Ordering::Relaxed);
    let out = par_fragile_mid(&items);
    assert_eq!(out[12_345], "12345");
    assert_eq!(out.len(), 50_000);
}

static IDLE_PANICS_AT: AtomicU64 = AtomicU64::new(u64::MAX);

#[amorsize::parallel]
fn fragile_after_idle(x: &u64) -> u64 {
    if *x == IDLE_PANICS_AT.load(Ordering::Relaxed) {
        panic!("idle {x}");
    }
    (0..200).fold(*x, |a, i| std::hint::black_box(a.rotate_left(5) ^ i))
}

#[test]
fn calls_that_find_the_pool_idle_are_correct_and_propagate_panics() {
    two_threads();
    let items: Vec<u64> = (0..20_000).collect();
    let expected: Vec<u64> = items.iter().map(fragile_after_idle).collect();
    assert_eq!(par_fragile_after_idle(&items), expected);
    // Idle pool: such calls let the calling thread work while the pool wakes.
    for bad in [0, 10_000, 19_999] {
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(par_fragile_after_idle(&items), expected);
        std::thread::sleep(std::time::Duration::from_millis(5));
        IDLE_PANICS_AT.store(bad, Ordering::Relaxed);
        let err = catch_unwind(|| par_fragile_after_idle(&items)).unwrap_err();
        assert_eq!(payload(err), format!("idle {bad}"));
        IDLE_PANICS_AT.store(u64::MAX, Ordering::Relaxed);
    }
    assert_eq!(par_fragile_after_idle(&items), expected);
}
