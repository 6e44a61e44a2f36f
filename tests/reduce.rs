//! `par_<name>_reduce` and `try_par_<name>_reduce`: the map combined with an associative
//! `op` without a `Vec`, checked against the serial fold in every mode (proptest, with an
//! `op` that is not commutative), and for what a reduction promises: `identity()` for no
//! items, one site shared with `par_<name>`, panics as usual, a stop at the first failure.

use amorsize::{Mode, Site};
use proptest::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod support;
use support::spin;

#[amorsize::parallel]
fn square(x: &u64) -> u64 {
    x.wrapping_mul(*x)
}

#[test]
fn a_sum_equals_the_loop_for_every_length() {
    for n in [0usize, 1, 2, 3, 100, 10_000, 200_000] {
        let items: Vec<u64> = (0..n as u64).collect();
        let expected = items
            .iter()
            .map(square)
            .fold(0u64, |a, b| a.wrapping_add(b));
        for _ in 0..3 {
            let sum = par_square_reduce(&items, || 0, |a, b| a.wrapping_add(b));
            assert_eq!(sum, expected, "n={n}");
        }
    }
}

#[test]
fn an_empty_input_gives_the_identity() {
    let none: Vec<u64> = Vec::new();
    assert_eq!(par_square_reduce(&none, || 7, |a, b| a + b), 7);
}

/// Each item is a one-element list: concatenation is associative with `[]` as identity,
/// but not commutative, so any reordering shows.
#[amorsize::parallel]
fn single(x: u32) -> Vec<u32> {
    vec![x]
}

fn concat(mut a: Vec<u32>, b: Vec<u32>) -> Vec<u32> {
    a.extend(b);
    a
}

/// Heavy enough that long inputs go parallel.
#[amorsize::parallel]
fn slow_single(x: u32) -> Vec<u32> {
    spin(Duration::from_micros(2));
    vec![x]
}

fn modes() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Auto), Just(Mode::Serial), Just(Mode::Parallel)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// In every mode, for lengths around piece boundaries, the combination comes out in
    /// input order.
    #[test]
    fn a_non_commutative_reduction_keeps_input_order(n in 0u32..3_000, mode in modes()) {
        let site: &'static Site = Box::leak(Box::new(Site::new("prop_reduce").with_mode(mode)));
        let reduced = amorsize::map_reduce(site, 0..n, |x| vec![x], Vec::new, concat);
        prop_assert_eq!(reduced, (0..n).collect::<Vec<_>>());
        // The generated companion, with its own (pinned-by-default auto) site.
        prop_assert_eq!(par_single_reduce(0..n, Vec::new, concat), (0..n).collect::<Vec<_>>());
        prop_assert_eq!(
            par_slow_single_reduce(0..n.min(500), Vec::new, concat),
            (0..n.min(500)).collect::<Vec<_>>()
        );
    }
}

#[amorsize::parallel(mode = "parallel")]
fn forced_words(x: u32) -> String {
    format!("{x},")
}

#[test]
fn a_forced_parallel_reduction_concatenates_in_order() {
    let expected: String = (0..5_000u32).map(|x| format!("{x},")).collect();
    for _ in 0..3 {
        assert_eq!(
            par_forced_words_reduce(0..5_000u32, String::new, |a, b| a + &b),
            expected
        );
    }
}

/// `op` runs in the reduction, so its cost is part of what the site learns: a cheap
/// function with an expensive `op` still goes parallel when it pays.
#[amorsize::parallel]
fn cheap_key(x: &u64) -> u64 {
    *x
}

#[test]
fn the_cost_learned_includes_the_combining() {
    let items: Vec<u64> = (0..20_000).collect();
    let dear_op = |a: u64, b: u64| {
        spin(Duration::from_micros(1));
        a.wrapping_add(b)
    };
    for _ in 0..3 {
        let sum = par_cheap_key_reduce(&items, || 0, dear_op);
        assert_eq!(sum, items.iter().sum::<u64>());
    }
    let report = amorsize::report();
    let site = report.site("cheap_key").expect("reported");
    let per_item = site.per_item.expect("a cost").as_nanos();
    assert!(
        per_item >= 800.0,
        "the 1 µs op is in the cost: {per_item} ns\n{report}"
    );
}

#[amorsize::parallel]
fn shared_site(x: &u64) -> u64 {
    spin(Duration::from_micros(1));
    *x
}

#[test]
fn a_function_learns_once_whichever_companion_calls_it() {
    let items: Vec<u64> = (0..5_000).collect();
    assert_eq!(par_shared_site(&items).len(), 5_000);
    let calls_after_map = amorsize::report().site("shared_site").unwrap().calls;
    let sum = par_shared_site_reduce(&items, || 0, |a, b| a + b);
    assert_eq!(sum, items.iter().sum::<u64>());
    let report = amorsize::report();
    let sites: Vec<_> = report
        .sites
        .iter()
        .filter(|s| s.name.ends_with("shared_site"))
        .collect();
    assert_eq!(sites.len(), 1, "{report}");
    assert_eq!(sites[0].calls, calls_after_map + 1);
}

#[amorsize::parallel]
fn fragile(x: &u64) -> u64 {
    if *x == 4_321 {
        panic!("item {x} is fragile");
    }
    spin(Duration::from_micros(1));
    *x
}

#[test]
fn a_panic_reaches_the_caller_and_the_site_stays_usable() {
    let items: Vec<u64> = (0..10_000).collect();
    for _ in 0..2 {
        let err = catch_unwind(AssertUnwindSafe(|| {
            par_fragile_reduce(&items, || 0, |a, b| a + b)
        }))
        .unwrap_err();
        let message = err.downcast_ref::<String>().expect("the payload");
        assert_eq!(message, "item 4321 is fragile");
    }
    assert_eq!(
        par_fragile_reduce(&items[..4_000], || 0, |a, b| a + b),
        (0..4_000u64).sum::<u64>()
    );
}

#[amorsize::parallel]
fn checked(x: &u64, bad: u64) -> Result<u64, String> {
    spin(Duration::from_micros(5));
    if *x == bad {
        Err(format!("{x} is bad"))
    } else {
        Ok(*x)
    }
}

#[test]
fn a_fallible_reduction_returns_the_sum_or_stops_at_a_failure() {
    let items: Vec<u64> = (0..40_000).collect();
    for _ in 0..3 {
        assert_eq!(
            try_par_checked_reduce(&items, u64::MAX, || 0, |a, b| a + b),
            Ok(items.iter().sum::<u64>())
        );
    }
    let start = Instant::now();
    let failed = try_par_checked_reduce(&items, 300, || 0, |a, b| a + b);
    assert_eq!(failed, Err("300 is bad".to_owned()));
    // 40 000 items of 5 µs take 200 ms of work; the stop comes long before.
    eprintln!("stopped after {:?}", start.elapsed());
}

static RAN: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel(mode = "serial")]
fn first_none(x: &u64) -> Option<u64> {
    RAN.fetch_add(1, Ordering::Relaxed);
    (*x != 300 && *x != 600).then_some(*x)
}

#[test]
fn a_fallible_loop_stops_at_the_first_failure_in_input_order() {
    let items: Vec<u64> = (0..10_000).collect();
    RAN.store(0, Ordering::Relaxed);
    assert_eq!(try_par_first_none_reduce(&items, || 0, |a, b| a + b), None);
    assert_eq!(RAN.load(Ordering::Relaxed), 301);
    assert_eq!(
        try_par_first_none_reduce(&items[..300], || 0, |a, b| a + b),
        Some((0..300u64).sum())
    );
}

struct Offset(u64);

impl Offset {
    #[amorsize::parallel(name = shifted_all)]
    fn shifted(&self, x: &u64) -> u64 {
        x + self.0
    }
}

#[test]
fn methods_and_custom_names_get_the_reduction_too() {
    let items: Vec<u64> = (0..1_000).collect();
    let offset = Offset(1);
    assert_eq!(
        offset.shifted_all_reduce(&items, || 0, |a, b| a + b),
        items.iter().map(|x| x + 1).sum::<u64>()
    );
}

/// A context parameter named like a reduction's own (`op`) does not clash with it.
#[amorsize::parallel]
fn scaled(x: &u64, op: u64) -> u64 {
    x * op
}

#[test]
fn a_parameter_named_op_keeps_its_meaning() {
    let items: Vec<u64> = (0..100).collect();
    assert_eq!(
        par_scaled_reduce(&items, 3, || 0, |a, b| a + b),
        3 * (0..100u64).sum::<u64>()
    );
}

/// The words of a line, borrowed from it.
#[amorsize::parallel]
fn words<'a>(line: &'a str) -> std::str::SplitWhitespace<'a> {
    line.split_whitespace()
}

fn count<'a>(
    mut counts: std::collections::HashMap<&'a str, usize>,
    words: std::str::SplitWhitespace<'a>,
) -> std::collections::HashMap<&'a str, usize> {
    for w in words {
        *counts.entry(w).or_default() += 1;
    }
    counts
}

fn merge<'a>(
    mut a: std::collections::HashMap<&'a str, usize>,
    b: std::collections::HashMap<&'a str, usize>,
) -> std::collections::HashMap<&'a str, usize> {
    for (w, n) in b {
        *a.entry(w).or_default() += n;
    }
    a
}

#[test]
fn a_fold_counts_words_like_the_loop() {
    let lines: Vec<String> = (0..30_000)
        .map(|i| format!("w{} w{} common w{}", i % 13, i % 101, i % 7))
        .collect();
    let expected = lines
        .iter()
        .map(|l| words(l))
        .fold(std::collections::HashMap::new(), count);
    for _ in 0..3 {
        let counts = par_words_fold(&lines, std::collections::HashMap::new, count, merge);
        assert_eq!(counts, expected);
    }
    assert_eq!(
        par_words_fold(&lines[..0], std::collections::HashMap::new, count, merge).len(),
        0
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A fold into another type (a list of the results' lengths' parity) in every mode.
    #[test]
    fn a_fold_keeps_input_order(n in 0u32..3_000, mode in modes()) {
        let site: &'static Site = Box::leak(Box::new(Site::new("prop_fold").with_mode(mode)));
        let folded = amorsize::map_fold(
            site,
            0..n,
            |x| x % 2 == 0,
            Vec::new,
            |mut acc: Vec<bool>, even| {
                acc.push(even);
                acc
            },
            |mut a, b| {
                a.extend(b);
                a
            },
        );
        prop_assert_eq!(folded, (0..n).map(|x| x % 2 == 0).collect::<Vec<_>>());
    }
}

/// A function with its own generic named `Acc` keeps it; the fold's accumulator gets
/// another name.
#[amorsize::parallel]
fn generic_acc<Acc: Copy + Send + Sync + Into<u64>>(x: &Acc) -> u64 {
    (*x).into()
}

#[test]
fn a_generic_named_acc_does_not_clash() {
    let items: Vec<u32> = (0..1_000).collect();
    assert_eq!(
        par_generic_acc_fold(&items, || 0u64, |a, x| a + x, |a, b| a + b),
        (0..1_000u64).sum::<u64>()
    );
}
