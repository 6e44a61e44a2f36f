//! Edge inputs: empty, one item, ten million tiny items, zero-sized types, and costs that
//! vary a thousandfold across one input.

use std::hint::black_box;

fn two_threads() {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global();
}

#[amorsize::parallel]
fn whoami(_x: &u8) -> std::thread::ThreadId {
    std::thread::current().id()
}

#[test]
fn empty_and_single_inputs_run_inline() {
    two_threads();
    let none: [u8; 0] = [];
    assert!(par_whoami(&none).is_empty());
    assert_eq!(par_whoami(&[1]), vec![std::thread::current().id()]);
    let empty: Vec<u64> = Vec::new();
    assert!(par_plus_one(empty).is_empty());
    assert!(par_plus_one(5..5u64).is_empty());
}

#[amorsize::parallel]
fn plus_one(x: u64) -> u64 {
    x + 1
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn ten_million_tiny_items_need_no_memory_beyond_the_output() {
    two_threads();
    let n = 10_000_000u64;
    let before = peak_rss_kib();
    let out = par_plus_one(0..n);
    assert_eq!(out.len(), n as usize);
    assert_eq!((out[0], out[n as usize - 1]), (1, n));
    assert!(out.iter().enumerate().all(|(i, &v)| v == i as u64 + 1));
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        let output_kib = n * 8 / 1024;
        // The output Vec, plus slack for the test harness; no second copy of the output.
        assert!(
            after.saturating_sub(before) < output_kib + output_kib / 2,
            "peak grew by {} KiB for an output of {output_kib} KiB",
            after - before
        );
    }
    // Again, from the cache.
    assert_eq!(par_plus_one(0..n).len(), n as usize);
}

#[amorsize::parallel]
fn unit(_x: &()) {}

#[amorsize::parallel(mode = "parallel")]
fn unit_parallel(_x: ()) {}

#[test]
fn zero_sized_items_and_outputs() {
    two_threads();
    let items = vec![(); 100_000];
    assert_eq!(par_unit(&items).len(), 100_000);
    assert_eq!(par_unit_parallel(items).len(), 100_000);
}

#[amorsize::parallel]
fn skewed(x: &u64) -> u64 {
    // Item i costs about i / 100 + 1 rounds: a thousandfold spread over 100 000 items.
    (0..(x / 100 + 1)).fold(*x, |a, i| black_box(a.wrapping_mul(31) ^ i))
}

#[test]
fn costs_varying_a_thousandfold_are_still_mapped_correctly() {
    two_threads();
    let items: Vec<u64> = (0..100_000).collect();
    let expected: Vec<u64> = items.iter().map(skewed).collect();
    for _ in 0..3 {
        assert_eq!(par_skewed(&items), expected);
    }
    let mut reversed = items.clone();
    reversed.reverse();
    let expected: Vec<u64> = reversed.iter().map(skewed).collect();
    assert_eq!(par_skewed(&reversed), expected);
}
