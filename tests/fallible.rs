//! `try_par_<name>`: the companion of a function returning `Result` or `Option`, which stops
//! at the first failure. Checked against the serial `collect::<Result<Vec<_>, _>>()` in every
//! mode, and for what stopping promises: no new item after a failure, every value made
//! dropped once, panics as usual, one site shared with `par_<name>`.

use amorsize::{Mode, Site};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

mod support;
use support::{spin, Counted};

/// Fails on items that are multiples of 1 000 plus 300 (when `fail` says so).
#[amorsize::parallel]
fn checked(x: &u64, fail: bool) -> Result<u64, String> {
    if fail && x % 1_000 == 300 {
        Err(format!("item {x} is bad"))
    } else {
        Ok(x * 2)
    }
}

#[test]
fn all_good_gives_every_value_in_order() {
    let items: Vec<u64> = (0..20_000).collect();
    let expected: Vec<u64> = items.iter().map(|x| x * 2).collect();
    for _ in 0..3 {
        assert_eq!(try_par_checked(&items, false), Ok(expected.clone()));
    }
    // The same function's plain companion still returns every result.
    assert_eq!(par_checked(&items, false).len(), 20_000);
}

#[test]
fn a_failure_comes_back_and_is_one_of_the_failing_items() {
    let items: Vec<u64> = (0..20_000).collect();
    for _ in 0..3 {
        let err = try_par_checked(&items, true).unwrap_err();
        let x: u64 = err
            .trim_start_matches("item ")
            .trim_end_matches(" is bad")
            .parse()
            .unwrap();
        assert_eq!(x % 1_000, 300, "{err}");
    }
}

#[amorsize::parallel(mode = "serial")]
fn first_bad(x: &u64) -> Option<u64> {
    (x % 1_000 != 300).then_some(*x)
}

#[test]
fn a_loop_returns_the_first_failure_in_input_order() {
    let items: Vec<u64> = (0..20_000).collect();
    assert_eq!(try_par_first_bad(&items), None);
    assert_eq!(try_par_first_bad(&items[..300]), Some((0..300).collect()));
}

static RAN: AtomicUsize = AtomicUsize::new(0);

/// ~30 µs each, failing only at item 300.
#[amorsize::parallel]
fn slow_check(x: u64) -> Result<u64, u64> {
    RAN.fetch_add(1, Ordering::Relaxed);
    spin(Duration::from_micros(30));
    if x == 300 {
        Err(x)
    } else {
        Ok(x)
    }
}

#[test]
fn no_item_starts_after_a_failure() {
    // 100 000 items of 30 µs (3 s of work); the only failure is at item 300. Whatever the
    // threads, far fewer than all items run (the failing one is reached after ~300 items
    // on the calling thread, and every thread checks before each item).
    let before = RAN.load(Ordering::Relaxed);
    assert_eq!(try_par_slow_check(0..100_000u64), Err(300));
    let ran = RAN.load(Ordering::Relaxed) - before;
    assert!(ran < 10_000, "{ran} items ran after a failure at item 300");
}

#[amorsize::parallel(mode = "parallel")]
fn counted(x: u64) -> Result<Counted, u64> {
    if x == 7_777 {
        Err(x)
    } else {
        Ok(Counted::new(x))
    }
}

#[test]
fn every_value_made_before_a_stop_is_dropped_once() {
    for n in [10_000u64, 7_778, 8_000] {
        assert_eq!(try_par_counted(0..n).err(), Some(7_777));
        assert_eq!(Counted::live(), 0, "n = {n}");
    }
    let fine = try_par_counted(0..5_000u64).unwrap();
    assert_eq!(fine.len(), 5_000);
    assert_eq!(fine[4_999].0, 4_999);
    drop(fine);
    assert_eq!(Counted::live(), 0);
}

#[amorsize::parallel(mode = "parallel")]
fn fragile(x: u64) -> Result<u64, u64> {
    if x == 123 {
        panic!("boom at {x}");
    }
    Ok(x)
}

#[test]
fn a_panic_propagates_with_its_payload() {
    let err = std::panic::catch_unwind(|| try_par_fragile(0..1_000u64)).unwrap_err();
    let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert_eq!(message, "boom at 123");
    // And the site still works.
    assert_eq!(try_par_fragile(0..100u64).unwrap().len(), 100);
}

#[amorsize::parallel]
fn shared_site(x: &u64) -> Option<u64> {
    Some(x + 1)
}

#[test]
fn par_and_try_par_share_one_site() {
    let items: Vec<u64> = (0..1_000).collect();
    par_shared_site(&items);
    try_par_shared_site(&items);
    let report = amorsize::report();
    let sites: Vec<_> = report
        .sites
        .iter()
        .filter(|s| s.name.ends_with("::shared_site"))
        .collect();
    assert_eq!(sites.len(), 1, "{report}");
    assert_eq!(sites[0].calls, 2);
    assert_eq!(sites[0].items, 2_000);
}

#[amorsize::parallel(name = validate_all)]
fn validate(line: &str) -> std::io::Result<usize> {
    if line.is_empty() {
        Err(std::io::Error::other("an empty line"))
    } else {
        Ok(line.len())
    }
}

struct Limit(usize);

impl Limit {
    #[amorsize::parallel]
    fn within(&self, x: &usize) -> Option<usize> {
        (*x <= self.0).then_some(*x)
    }
}

#[test]
fn names_aliases_and_methods() {
    let lines = vec!["a".to_string(), "bb".to_string()];
    assert_eq!(try_validate_all(&lines).unwrap(), vec![1, 2]);
    assert!(try_validate_all(&["x", ""]).is_err());
    let limit = Limit(10);
    assert_eq!(limit.try_par_within(&[1, 2, 3]), Some(vec![1, 2, 3]));
    assert_eq!(limit.try_par_within(&[1, 20, 3]), None);
}

/// One mode at a time: the equivalence test sweeps the process-wide mode.
static MODES: Mutex<()> = Mutex::new(());

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random lengths and failures, in every mode: all good gives what the serial collect
    /// gives; a failure gives one of the failing items' errors, and the first in input order
    /// when the loop is forced.
    #[test]
    fn equals_the_serial_collect(
        n in 0usize..6_000,
        fail_at in proptest::collection::vec(0usize..6_000, 0..4),
        mode in prop_oneof![Just(Mode::Auto), Just(Mode::Serial), Just(Mode::Parallel)],
    ) {
        static SITE: Site = Site::new("fallible::equivalence");
        let _one_mode = MODES.lock().unwrap_or_else(|p| p.into_inner());
        amorsize::set_mode(mode);
        let f = |x: u64| if fail_at.contains(&(x as usize)) { Err(x) } else { Ok(x * 3) };
        let got: Result<Vec<u64>, u64> = amorsize::try_map(&SITE, 0..n as u64, f);
        amorsize::set_mode(Mode::Auto);
        let expected: Result<Vec<u64>, u64> = (0..n as u64).map(f).collect();
        match (got, expected) {
            (Ok(got), Ok(expected)) => prop_assert_eq!(got, expected),
            (Err(got), Err(first)) => {
                prop_assert!(fail_at.contains(&(got as usize)));
                if mode == Mode::Serial {
                    prop_assert_eq!(got, first);
                }
            }
            (got, expected) => prop_assert!(false, "{:?} against {:?}", got.map(|v| v.len()), expected.map(|v| v.len())),
        }
    }
}
