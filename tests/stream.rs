//! `par_<name>_iter`: a lazy, ordered, bounded map over any iterator. Checked against the
//! serial map for random lengths around batch boundaries in every mode (proptest), and for
//! what a stream promises: an endless input with `take`, an early drop that leaves no work
//! running, a panic at the `next()` of the item that raised it, inputs that are not `Send`,
//! one site shared with `par_<name>`.

use amorsize::{Mode, Site};
use proptest::prelude::*;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod support;
use support::spin;

#[amorsize::parallel]
fn triple(x: u64) -> u64 {
    x * 3
}

fn modes() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Auto), Just(Mode::Serial), Just(Mode::Parallel)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Order and values, for lengths across the first batches (256, then from the cost).
    #[test]
    fn a_stream_equals_the_serial_map(n in 0usize..40_000, mode in modes()) {
        let site: &'static Site = Box::leak(Box::new(Site::new("prop_stream").with_mode(mode)));
        let streamed: Vec<u64> =
            amorsize::map_iter(site, (0..n as u64).map(|x| x + 1), |x| x * 7).collect();
        prop_assert_eq!(streamed, (0..n as u64).map(|x| (x + 1) * 7).collect::<Vec<_>>());
    }
}

#[test]
fn the_companion_takes_any_iterator() {
    let out: Vec<u64> = par_triple_iter(vec![1, 2, 3]).collect();
    assert_eq!(out, [3, 6, 9]);
    let empty: Vec<u64> = par_triple_iter(std::iter::empty()).collect();
    assert!(empty.is_empty());
    // Lazily generated, never held whole.
    let big: u64 = par_triple_iter((0..300_000u64).filter(|x| x % 3 == 0)).sum();
    assert_eq!(
        big,
        (0..300_000u64).filter(|x| x % 3 == 0).map(|x| x * 3).sum()
    );
}

#[amorsize::parallel]
fn slow_square(x: u64) -> u64 {
    spin(Duration::from_micros(2));
    x * x
}

#[test]
fn an_endless_input_with_take_returns() {
    let first: Vec<u64> = par_slow_square_iter(0u64..).take(1_000).collect();
    assert_eq!(first.len(), 1_000);
    assert_eq!(first[999], 999 * 999);
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel]
fn counted(x: u64) -> u64 {
    STARTED.fetch_add(1, Ordering::SeqCst);
    spin(Duration::from_micros(5));
    x
}

#[test]
fn dropping_a_stream_leaves_nothing_running() {
    let mut stream = par_counted_iter(0u64..);
    for expected in 0..10 {
        assert_eq!(stream.next(), Some(expected));
    }
    drop(stream);
    let after_drop = STARTED.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        STARTED.load(Ordering::SeqCst),
        after_drop,
        "items started after the stream was dropped"
    );
}

#[amorsize::parallel]
fn from_a_slow_input(x: u64) -> u64 {
    spin(Duration::from_micros(1));
    x + 1
}

/// An input that gives its items slowly (a socket, a pipe, a producer thread) gets its first
/// results once reading has taken about 16 ms, not once a batch's worth of items has come
/// (at this function's learned cost, about 4 000 items).
#[test]
fn a_slow_input_gets_its_first_result_before_a_batch_is_read() {
    // The cost is learned first, so that the stream plans batches of thousands of items.
    let learned: Vec<u64> = (0..20_000).collect();
    assert_eq!(par_from_a_slow_input(learned).len(), 20_000);
    let read = Cell::new(0usize);
    // A live source (it says nothing of its length, as a channel or a socket's lines):
    // three items at once, then one every 20 ms (a sleep only ever lasts longer, so a busy
    // machine cannot make this input faster), for at most 64 items.
    let input = std::iter::from_fn(|| {
        let x = read.get() as u64;
        if x == 67 {
            return None;
        }
        read.set(read.get() + 1);
        if x >= 3 {
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(x)
    });
    let mut stream = par_from_a_slow_input_iter(input);
    assert_eq!(stream.next(), Some(1));
    assert!(
        read.get() <= 8,
        "{} items were read before the first result (the whole input is 67)",
        read.get()
    );
    // Every result still comes, in order.
    let rest: Vec<u64> = stream.collect();
    assert_eq!(rest, (2..=67).collect::<Vec<_>>());
}

#[amorsize::parallel]
fn fragile(x: u64) -> u64 {
    if x == 5_000 {
        panic!("item {x} broke");
    }
    spin(Duration::from_micros(1));
    x
}

#[test]
fn a_panic_reaches_the_next_that_would_have_returned_its_item() {
    for _ in 0..2 {
        let mut stream = par_fragile_iter(0u64..10_000);
        for expected in 0..5_000 {
            assert_eq!(stream.next(), Some(expected));
        }
        let err = catch_unwind(AssertUnwindSafe(|| stream.next())).unwrap_err();
        assert_eq!(err.downcast_ref::<String>().unwrap(), "item 5000 broke");
    }
    // The site stays usable.
    assert_eq!(par_fragile_iter(0u64..100).count(), 100);
}

#[amorsize::parallel]
fn length(s: &str) -> usize {
    s.len()
}

#[test]
fn an_input_that_is_not_send_is_read_on_the_calling_thread() {
    // `Rc` is neither `Send` nor `Sync`: the iterator holding it stays on this thread,
    // while its items (`String`s) are mapped anywhere.
    let shared = Rc::new(vec!["a".to_string(), "bb".to_string(), "ccc".to_string()]);
    let source = Rc::clone(&shared);
    let input = (0..30_000).map(move |i| source[i % 3].clone());
    let total: usize = par_length_iter(input).sum();
    assert_eq!(total, 60_000);
    // Borrowed items work as well: anything that borrows as `str`.
    let lines = ["x", "yy"];
    assert_eq!(par_length_iter(lines).collect::<Vec<_>>(), [1, 2]);
}

#[amorsize::parallel(mode = "serial")]
fn pinned(x: u64) -> u64 {
    x + 1
}

#[amorsize::parallel(mode = "parallel")]
fn forced(x: u64) -> u64 {
    x + 2
}

#[test]
fn pinned_modes_apply_to_streams() {
    assert_eq!(
        par_pinned_iter(0..100_000u64).last(),
        Some(100_000),
        "serial"
    );
    assert_eq!(
        par_forced_iter(0..100_000u64).last(),
        Some(100_001),
        "parallel"
    );
    let report = amorsize::report();
    let forced = report.site("forced").unwrap();
    assert!(
        matches!(forced.plan, Some(amorsize::Plan::Parallel { .. })),
        "{report}"
    );
}

#[amorsize::parallel]
fn learned_once(x: &u64) -> u64 {
    spin(Duration::from_micros(1));
    *x
}

#[test]
fn a_stream_and_a_map_share_one_site() {
    let items: Vec<u64> = (0..5_000).collect();
    assert_eq!(par_learned_once(&items).len(), 5_000);
    let streamed: u64 = par_learned_once_iter(items.iter().copied()).sum();
    assert_eq!(streamed, items.iter().sum::<u64>());
    let report = amorsize::report();
    let sites = report
        .sites
        .iter()
        .filter(|s| s.name.ends_with("learned_once"))
        .count();
    assert_eq!(sites, 1, "{report}");
}

struct Offset(u64);

impl Offset {
    #[amorsize::parallel]
    fn shift(&self, x: &u64) -> u64 {
        x + self.0
    }
}

#[test]
fn methods_stream_too() {
    let offset = Offset(10);
    let out: Vec<u64> = offset.par_shift_iter(0..3u64).collect();
    assert_eq!(out, [10, 11, 12]);
}

/// A type with a lifetime parameter: its methods' and associated functions' streams hold
/// `Self`, and so that lifetime, which the attribute cannot see.
struct Text<'a> {
    src: &'a str,
}

impl<'a> Text<'a> {
    #[amorsize::parallel]
    fn byte_at(&self, at: &usize) -> u8 {
        self.src.as_bytes()[at % self.src.len()]
    }

    /// Names `Self` in its body only.
    #[amorsize::parallel]
    fn twice(x: &usize) -> usize {
        Self::double(*x)
    }

    fn double(x: usize) -> usize {
        x * 2
    }
}

#[test]
fn streams_of_a_type_with_a_lifetime_hold_it() {
    let owned = String::from("amorsize");
    let text = Text { src: &owned };
    let bytes: Vec<u8> = text.par_byte_at_iter(&[0usize, 1, 2]).collect();
    assert_eq!(bytes, *b"amo");
    let doubled: Vec<usize> = Text::par_twice_iter(&[1usize, 2]).collect();
    assert_eq!(doubled, [2, 4]);
}

static CAPPED_ON_POOL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[amorsize::parallel]
fn capped_later(x: u64) -> u64 {
    if rayon::current_thread_index().is_some() {
        CAPPED_ON_POOL.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    spin(Duration::from_micros(20));
    x * 3
}

#[test]
fn a_cap_around_the_code_that_makes_a_stream_applies_where_it_is_read() {
    use std::sync::atomic::Ordering;
    // Learned first: 20 µs items go parallel in batches on two or more threads.
    let learned: Vec<u64> = par_capped_later_iter(0..5_000u64).collect();
    assert_eq!(learned.len(), 5_000);
    CAPPED_ON_POOL.store(0, Ordering::SeqCst);
    let stream = amorsize::with_max_threads(1, || par_capped_later_iter(0..5_000u64));
    // Read outside the cap's scope: every batch is still a loop on this thread.
    let out: Vec<u64> = stream.collect();
    assert_eq!(out, (0..5_000u64).map(|x| x * 3).collect::<Vec<_>>());
    assert_eq!(
        CAPPED_ON_POOL.load(Ordering::SeqCst),
        0,
        "items ran on the pool"
    );
    if amorsize::machine().threads < 2 {
        eprintln!("note: one thread in this pool: every batch is a loop, capped or not");
    }
}

static LOOPED: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel(mode = "serial")]
fn looped(x: u64) -> u64 {
    LOOPED.fetch_add(1, Ordering::Relaxed);
    x ^ 0x5A
}

#[test]
fn a_batch_that_would_run_as_a_loop_is_read_short_and_the_rest_mapped_one_by_one() {
    // The site's cost, learned (a call, then a stream: its first batch is profiled).
    let n = 200_000u64;
    assert_eq!(par_looped(0..n).len(), n as usize);
    let _ = par_looped_iter(0..n).count();
    LOOPED.store(0, Ordering::Relaxed);
    // A whole batch would be 65 536 items (the longest) of an item of a few ns: read
    // short, a few µs of work, and then the items one by one, as they are taken.
    let mut stream = par_looped_iter(0..n);
    assert_eq!(stream.next(), Some(0x5A));
    let first = LOOPED.load(Ordering::Relaxed);
    assert!(first <= 16_384, "{first} items mapped for the first result");
    for taken in 1..1_000u64 {
        assert_eq!(stream.next(), Some(taken ^ 0x5A));
    }
    assert!(LOOPED.load(Ordering::Relaxed) <= first.max(1_000) + 1);
    assert!(stream.zip(1_000..n).all(|(value, x)| value == x ^ 0x5A));
    assert_eq!(LOOPED.load(Ordering::Relaxed), n as usize);
}
