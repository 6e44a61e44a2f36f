//! Edge inputs: empty, one item, ten million tiny items, zero-sized types, costs that vary a
//! thousandfold across one input, and owned `Vec`s mapped in place.

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

#[amorsize::parallel(mode = "serial")]
fn scrambled(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 7)
}

#[amorsize::parallel]
fn scrambled_auto(x: u64) -> u64 {
    scrambled(x)
}

#[amorsize::parallel(mode = "serial")]
fn narrowed(x: u64) -> u32 {
    scrambled(x) as u32
}

#[test]
fn a_loop_over_an_owned_vec_writes_its_values_in_place() {
    two_threads();
    let items: Vec<u64> = (0..10_000).collect();
    let expected: Vec<u64> = items.iter().map(|&x| scrambled(x)).collect();
    let at = items.as_ptr() as usize;
    let out = par_scrambled(items);
    assert_eq!(out, expected);
    assert_eq!(
        out.as_ptr() as usize,
        at,
        "a loop reuses the items' allocation"
    );

    let boxed: Box<[u64]> = (0..10_000).collect();
    let at = boxed.as_ptr() as usize;
    let out = par_scrambled(boxed);
    assert_eq!(out, expected);
    assert_eq!(out.as_ptr() as usize, at);

    // A site in `auto`: its settled short calls (100 items of a few ns, under the floor
    // where every call is a loop) run in place too.
    let mut reused = 0;
    for _ in 0..5 {
        let items: Vec<u64> = (0..100).collect();
        let at = items.as_ptr() as usize;
        let out = par_scrambled_auto(items);
        assert_eq!(out, expected[..100]);
        reused += usize::from(out.as_ptr() as usize == at);
    }
    assert!(reused >= 4, "only {reused} of 5 short calls ran in place");

    // Values of another size go to a new `Vec`, as before.
    let narrow = par_narrowed((0..10_000).collect::<Vec<u64>>());
    assert!(narrow.iter().zip(&expected).all(|(&n, &e)| n == e as u32));
}

mod support;
use support::Counted;

#[amorsize::parallel(mode = "serial")]
fn bumped(c: Counted) -> Counted {
    assert_ne!(c.0, 77, "item 77 fails");
    Counted::new(c.0 + 1)
}

#[amorsize::parallel(mode = "serial")]
fn low_byte(c: Counted) -> u8 {
    assert_ne!(c.0, 77, "item 77 fails");
    c.0 as u8
}

// The only test here that counts `Counted` values (the count is the binary's).
#[test]
fn a_loop_run_in_place_that_panics_or_fails_drops_every_item_and_value_once() {
    let items: Vec<Counted> = (0..100).map(Counted::new).collect();
    let caught = std::panic::catch_unwind(move || par_bumped(items));
    let payload = caught.expect_err("item 77 panics");
    assert!(payload
        .downcast_ref::<String>()
        .is_some_and(|m| m.contains("item 77 fails")));
    assert_eq!(Counted::live(), 0);

    let items: Vec<Counted> = (0..50).map(Counted::new).collect();
    let out = par_bumped(items);
    assert_eq!(Counted::live(), 50);
    assert!(out.iter().enumerate().all(|(i, c)| c.0 == i as u64 + 1));
    drop(out);
    assert_eq!(Counted::live(), 0);

    // A fallible loop: a failure drops every value made and every item not run, once.
    let items: Vec<Counted> = (0..100).map(Counted::new).collect();
    assert!(try_par_bumped_or_not(items).is_none());
    assert_eq!(Counted::live(), 0);

    // A loop into a new `Vec` (smaller values): the same.
    let items: Vec<Counted> = (0..100).map(Counted::new).collect();
    assert!(std::panic::catch_unwind(move || par_low_byte(items)).is_err());
    assert_eq!(Counted::live(), 0);
    let out = par_low_byte((0..50).map(Counted::new).collect::<Vec<_>>());
    assert_eq!(out, (0..50).collect::<Vec<u8>>());
    assert_eq!(Counted::live(), 0);
    let items: Vec<Counted> = (0..50).map(Counted::new).collect();
    let out = try_par_bumped_or_not(items).expect("item 77 is not there");
    assert!(out.iter().enumerate().all(|(i, c)| c.0 == i as u64 + 1));
    drop(out);
    assert_eq!(Counted::live(), 0);
}

#[amorsize::parallel(mode = "serial")]
fn length(s: String) -> usize {
    s.len()
}

#[test]
fn a_loop_over_an_owned_vec_of_larger_items_writes_a_vec_of_its_own() {
    for n in [10, 1_000, 100_000] {
        let words: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let expected: Vec<usize> = words.iter().map(String::len).collect();
        let out = par_length(words);
        assert_eq!(out, expected);
        // std's `collect` would reuse the `String`s' allocation, and hold three `usize`s of
        // capacity a value.
        assert!(
            out.capacity() < 2 * n,
            "{n} values hold a capacity of {}",
            out.capacity()
        );
    }
}

#[amorsize::parallel]
fn tripled(x: u8) -> u16 {
    u16::from(x) * 3
}

#[amorsize::parallel(mode = "parallel")]
fn tripled_in_parallel(x: u8) -> u16 {
    tripled(x)
}

#[amorsize::parallel(mode = "serial")]
fn halved(x: i16) -> i16 {
    x / 2
}

#[test]
fn ranges_up_to_their_types_maximum() {
    two_threads();
    let expected: Vec<u16> = (0..=255u8).map(tripled).collect();
    for _ in 0..3 {
        assert_eq!(par_tripled(0..=255u8), expected);
        assert_eq!(par_tripled_in_parallel(0..=255u8), expected);
    }
    assert_eq!(par_tripled(250..=255u8), expected[250..]);
    assert_eq!(par_tripled(255..=255u8), [765]);
    assert_eq!(
        par_halved(i16::MIN..=i16::MAX),
        (i16::MIN..=i16::MAX).map(halved).collect::<Vec<_>>()
    );
}

#[amorsize::parallel(mode = "serial")]
fn checked(x: u64) -> Result<u64, String> {
    if x == 7_777 {
        Err(format!("{x} is not allowed"))
    } else {
        Ok(scrambled(x))
    }
}

#[amorsize::parallel(mode = "serial")]
fn bumped_or_not(c: Counted) -> Option<Counted> {
    (c.0 != 77).then(|| Counted::new(c.0 + 1))
}

#[test]
fn a_fallible_loop_over_an_owned_vec_writes_its_values_in_place() {
    let items: Vec<u64> = (0..5_000).collect();
    let at = items.as_ptr() as usize;
    let out = try_par_checked(items).expect("no item fails");
    assert!(out
        .iter()
        .enumerate()
        .all(|(i, &v)| v == scrambled(i as u64)));
    assert_eq!(
        out.as_ptr() as usize,
        at,
        "a loop reuses the items' allocation"
    );
    assert_eq!(
        try_par_checked((0..10_000).collect::<Vec<u64>>()),
        Err("7777 is not allowed".to_owned())
    );
}
