//! `par_<name>_async`: the map runs on rayon's pool while the executor keeps running other
//! tasks. Checked with tokio: a one-thread runtime keeps ticking while a long map runs,
//! concurrent maps from spawned tasks, a drop that stops the map, panics, and equality with
//! the serial map.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Context;
use std::time::{Duration, Instant};

mod support;
use support::{nobody, poll_here, spin, Counted};

#[amorsize::parallel]
fn heavy(x: &u64) -> u64 {
    spin(Duration::from_micros(50));
    x * 2
}

/// Ticks every millisecond for `during`: the longest gap between two ticks.
async fn longest_tick_gap(during: Duration) -> Duration {
    let mut longest = Duration::ZERO;
    let mut last = Instant::now();
    let start = last;
    while start.elapsed() < during {
        tokio::time::sleep(Duration::from_millis(1)).await;
        longest = longest.max(last.elapsed());
        last = Instant::now();
    }
    longest
}

#[test]
fn a_one_thread_runtime_keeps_ticking_while_a_long_map_runs() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        // 2 000 items of 50 µs: 100 ms of work, on the pool.
        let items: Vec<u64> = (0..2_000).collect();
        let ticker = tokio::spawn(longest_tick_gap(Duration::from_millis(150)));
        let doubled = par_heavy_async(items.clone()).await;
        assert_eq!(doubled, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let longest = ticker.await.unwrap();
        assert!(
            longest <= Duration::from_millis(25),
            "the executor's thread stalled for {longest:?}"
        );
    });
}

#[amorsize::parallel]
fn scored(x: &u64, salt: u64) -> u64 {
    spin(Duration::from_micros(2));
    x.wrapping_mul(salt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_maps_from_spawned_tasks_match_the_loop() {
    let tasks: Vec<_> = (0..8u64)
        .map(|k| {
            tokio::spawn(async move {
                let items: Vec<u64> = (0..(1_000 + k * 700)).collect();
                let expected: Vec<u64> = items.iter().map(|x| x.wrapping_mul(k + 3)).collect();
                let got = par_scored_async(Arc::<[u64]>::from(items), k + 3).await;
                assert_eq!(got, expected);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel]
fn counted(x: u64) -> u64 {
    STARTED.fetch_add(1, Ordering::SeqCst);
    spin(Duration::from_micros(100));
    x
}

#[test]
fn dropping_the_future_stops_the_map() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        // 10 000 items of 100 µs: a second of work; dropped after 20 ms.
        let future = par_counted_async(0..10_000u64);
        let result = tokio::time::timeout(Duration::from_millis(20), future).await;
        assert!(result.is_err(), "the map should still be running");
    });
    // Items already running finish; none starts once the drop is seen.
    std::thread::sleep(Duration::from_millis(30));
    let after_drop = STARTED.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        STARTED.load(Ordering::SeqCst),
        after_drop,
        "items started after the drop"
    );
    assert!(after_drop < 10_000, "{after_drop} items ran");
}

#[amorsize::parallel]
fn fragile(x: &u64) -> u64 {
    if *x == 777 {
        panic!("item {x} broke");
    }
    *x
}

#[tokio::test]
async fn a_panic_resumes_where_the_future_is_awaited() {
    let items: Vec<u64> = (0..5_000).collect();
    let task = tokio::spawn(par_fragile_async(items.clone()));
    let err = task.await.unwrap_err();
    assert!(err.is_panic());
    let payload = err.into_panic();
    assert_eq!(payload.downcast_ref::<String>().unwrap(), "item 777 broke");
    // The site stays usable.
    assert_eq!(par_fragile_async(items[..700].to_vec()).await.len(), 700);
}

#[amorsize::parallel]
fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
    s.parse()
}

#[tokio::test]
async fn a_fallible_map_returns_the_values_or_the_failure() {
    let good: Vec<String> = (0..3_000).map(|i| i.to_string()).collect();
    let values = try_par_parse_async(good.clone()).await.unwrap();
    assert_eq!(values[2_999], 2_999);
    let mut bad = good;
    bad[1_500] = "x".to_owned();
    assert!(try_par_parse_async(bad).await.is_err());
}

#[amorsize::parallel]
fn tiny(x: u32) -> u32 {
    x + 1
}

#[amorsize::parallel]
fn tiny_lent(x: &u32) -> u32 {
    x + 1
}

#[tokio::test]
async fn every_length_matches_the_serial_map() {
    for n in [0u32, 1, 2, 10, 1_000, 100_000] {
        let got = par_tiny_async((0..n).collect::<Vec<_>>()).await;
        assert_eq!(got, (0..n).map(|x| x + 1).collect::<Vec<_>>(), "n={n}");
    }
    // Every kind of input, called again and again: whole on the polling thread, in slices
    // there, or on the pool, as the learned cost says.
    for round in 0..4 {
        for n in [3u32, 700, 5_000, 40_000, 200_000] {
            let expected: Vec<u32> = (0..n).map(|x| x + 1).collect();
            let deque: std::collections::VecDeque<u32> = (0..n).collect();
            let lent: Arc<[u32]> = (0..n).collect();
            assert_eq!(
                par_tiny_async(0..n).await,
                expected,
                "range, n={n}, {round}"
            );
            assert_eq!(
                par_tiny_async(deque).await,
                expected,
                "deque, n={n}, {round}"
            );
            assert_eq!(
                par_tiny_lent_async(lent).await,
                expected,
                "lent, n={n}, {round}"
            );
            let (here, _) = poll_here(par_tiny_async((0..n).collect::<Vec<_>>()));
            assert_eq!(here, expected, "polled here, n={n}, {round}");
        }
    }
}

/// Whether the calling thread is one of rayon's workers.
fn on_pool() -> bool {
    rayon::current_thread_index().is_some()
}

static CAPPED_ON_POOL: AtomicUsize = AtomicUsize::new(0);

// Capped to one thread, so that its plan is a loop on any machine.
#[amorsize::parallel(max_threads = 1)]
fn capped(x: &u64) -> u64 {
    if on_pool() {
        CAPPED_ON_POOL.fetch_add(1, Ordering::SeqCst);
    }
    spin(Duration::from_micros(2));
    x * 3
}

#[test]
fn a_call_planned_as_a_loop_runs_where_it_is_polled_a_slice_per_poll() {
    let items: Vec<u64> = (0..2_000).collect();
    let expected: Vec<u64> = items.iter().map(|x| x * 3).collect();
    // The first call has no cost to plan with: it profiles, on the pool.
    let (first, _) = poll_here(par_capped_async(items.clone()));
    assert_eq!(first, expected);
    CAPPED_ON_POOL.store(0, Ordering::SeqCst);
    let (second, polls) = poll_here(par_capped_async(items.clone()));
    assert_eq!(second, expected);
    assert_eq!(
        CAPPED_ON_POOL.load(Ordering::SeqCst),
        0,
        "items of a call planned as a loop ran on the pool"
    );
    // 2 000 items of at least 2 µs, at most `SLICE` (50 µs) of them per poll.
    let least = (2_000 * 2) / amorsize::future::SLICE.as_micros() as usize;
    assert!(polls >= least, "{polls} polls, fewer than {least}");
    // The report tells the loop and its cause: the cap, or on one CPU the pool's one thread.
    let report = amorsize::report();
    let site = report.site("capped").expect("the site is reported");
    assert_eq!(site.plan, Some(amorsize::Plan::Serial), "{}", site.reason);
    let one_cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) < 2;
    let cause = if one_cpu {
        amorsize::Cause::OneThread
    } else {
        amorsize::Cause::Capped { max_threads: 1 }
    };
    assert_eq!(site.cause, Some(cause), "{}", site.reason);
}

#[test]
fn a_one_thread_runtime_keeps_ticking_while_a_map_runs_in_slices_on_it() {
    static HERE: AtomicUsize = AtomicUsize::new(0);
    static ON_POOL: AtomicUsize = AtomicUsize::new(0);
    #[amorsize::parallel(max_threads = 1)]
    fn sliced(x: &u64) -> u64 {
        if on_pool() {
            ON_POOL.fetch_add(1, Ordering::SeqCst);
        } else {
            HERE.fetch_add(1, Ordering::SeqCst);
        }
        spin(Duration::from_micros(2));
        x + 1
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // Learned on this thread: a plain map call runs as a loop here.
    let warm: Vec<u64> = (0..1_000).collect();
    assert_eq!(par_sliced(&warm).len(), 1_000);
    runtime.block_on(async {
        // 50 000 items of 2 µs: 100 ms of work, on the runtime's only thread.
        let items: Vec<u64> = (0..50_000).collect();
        let ticker = tokio::spawn(longest_tick_gap(Duration::from_millis(150)));
        HERE.store(0, Ordering::SeqCst);
        ON_POOL.store(0, Ordering::SeqCst);
        let got = par_sliced_async(items.clone()).await;
        assert_eq!(got, items.iter().map(|x| x + 1).collect::<Vec<_>>());
        let longest = ticker.await.unwrap();
        assert!(
            longest <= Duration::from_millis(25),
            "the executor's thread stalled for {longest:?}"
        );
        // The call ran in slices on the runtime's thread: all of it, unless two slices in
        // a row ran over twice their 50 µs (a thread preempted on a busy machine), which
        // sends the rest to the pool; the first slice (about 25 items) ran here in any case.
        let (here, on_pool) = (HERE.load(Ordering::SeqCst), ON_POOL.load(Ordering::SeqCst));
        assert!(here >= 10, "{here} items ran on the runtime's thread");
        assert_eq!(here + on_pool, 50_000, "every item ran once");
        if on_pool > 0 {
            eprintln!("slices ran over: {on_pool} of 50 000 items went to the pool");
        }
    });
}

static DEAR: AtomicBool = AtomicBool::new(false);
static DEAR_ON_POOL: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel(max_threads = 1)]
fn drifting(x: &u64) -> u64 {
    if on_pool() {
        DEAR_ON_POOL.fetch_add(1, Ordering::SeqCst);
    }
    let cost = if DEAR.load(Ordering::SeqCst) { 300 } else { 2 };
    spin(Duration::from_micros(cost));
    x + 7
}

#[test]
fn items_that_turn_out_dearer_than_a_poll_may_take_go_to_the_pool() {
    let cheap: Vec<u64> = (0..2_000).collect();
    poll_here(par_drifting_async(cheap.clone()));
    poll_here(par_drifting_async(cheap));
    // The cost was learned at 2 µs; now each item takes 300 µs, six times a slice.
    DEAR.store(true, Ordering::SeqCst);
    DEAR_ON_POOL.store(0, Ordering::SeqCst);
    let items: Vec<u64> = (0..100).collect();
    let (got, _) = poll_here(par_drifting_async(items.clone()));
    assert_eq!(got, items.iter().map(|x| x + 7).collect::<Vec<_>>());
    let here = 100 - DEAR_ON_POOL.load(Ordering::SeqCst);
    // The first slice stops at its clock check (halfway through the at most 25 items
    // planned), the second runs one item: both ran over, so the rest went to the pool.
    assert!(here <= 13, "{here} dear items ran on the polling thread");
    // The rest that moved to the pool is the same call: three calls, every item once.
    let report = amorsize::report();
    let site = report.site("drifting").expect("the site is reported");
    assert_eq!((site.calls, site.items), (3, 4_100), "{report}");
}

static SLICED_STARTED: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel(max_threads = 1)]
fn stoppable(x: u64) -> u64 {
    SLICED_STARTED.fetch_add(1, Ordering::SeqCst);
    spin(Duration::from_micros(2));
    x
}

#[test]
fn dropping_a_map_between_slices_stops_it() {
    poll_here(par_stoppable_async(0..2_000u64));
    let before = SLICED_STARTED.load(Ordering::SeqCst);
    let waker = nobody();
    let mut cx = Context::from_waker(&waker);
    let mut future = Box::pin(par_stoppable_async(0..100_000u64));
    for _ in 0..3 {
        assert!(future.as_mut().poll(&mut cx).is_pending());
    }
    drop(future);
    let ran = SLICED_STARTED.load(Ordering::SeqCst) - before;
    assert!(
        (3..=75).contains(&ran),
        "three slices of at most 25 items ran {ran} items"
    );
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(SLICED_STARTED.load(Ordering::SeqCst) - before, ran);
}

#[amorsize::parallel(max_threads = 1)]
fn brittle(x: &u64) -> Result<u64, String> {
    spin(Duration::from_micros(2));
    if *x == 1_500 {
        panic!("item 1500 broke");
    }
    if *x == 900 {
        return Err(format!("item {x} failed"));
    }
    Ok(*x)
}

#[test]
fn a_failure_or_a_panic_in_a_slice_comes_out_of_the_poll() {
    let fine: Vec<u64> = (0..800).collect();
    let (first, _) = poll_here(try_par_brittle_async(fine.clone()));
    assert_eq!(first.unwrap(), fine);
    let failing: Vec<u64> = (0..1_200).collect();
    let (failed, polls) = poll_here(try_par_brittle_async(failing));
    assert_eq!(failed.unwrap_err(), "item 900 failed");
    assert!(polls > 1, "the call ran in one poll");
    let panicking: Vec<u64> = (1_000..2_000).collect();
    let panic = std::panic::catch_unwind(|| poll_here(try_par_brittle_async(panicking)))
        .expect_err("the panic should come out of the poll");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"item 1500 broke"));
    // The site stays usable.
    let (again, _) = poll_here(try_par_brittle_async(fine.clone()));
    assert_eq!(again.unwrap(), fine);
}

static RANGE_ON_POOL: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel(max_threads = 1)]
fn parity(x: u64) -> u64 {
    if on_pool() {
        RANGE_ON_POOL.fetch_add(1, Ordering::Relaxed);
    }
    x & 1
}

#[test]
fn a_range_too_large_to_collect_runs_on_the_pool_not_in_slices() {
    poll_here(par_parity_async(0..100_000u64));
    RANGE_ON_POOL.store(0, Ordering::Relaxed);
    // 1 M `u64`s (8 MB) are collected and run in slices here (on a busy machine, two
    // slices in a row stretched past twice their length by preemption send the rest to
    // the pool: what counts is that the slices ran here, not the pool over the range).
    let (small, polls) = poll_here(par_parity_async(0..1_000_000u64));
    assert_eq!(small.iter().sum::<u64>(), 500_000);
    assert!(polls > 1);
    let on_pool = RANGE_ON_POOL.load(Ordering::Relaxed);
    assert!(on_pool < 1_000_000, "every item ran on the pool");
    RANGE_ON_POOL.store(0, Ordering::Relaxed);
    // 3 M (24 MB) are not: the pool iterates the range itself.
    let (large, _) = poll_here(par_parity_async(0..3_000_000u64));
    assert_eq!(large.iter().sum::<u64>(), 1_500_000);
    assert_eq!(RANGE_ON_POOL.load(Ordering::Relaxed), 3_000_000);
}

/// The threads an adapter of a `ParIter` ran on.
static ADAPTED_ON: std::sync::Mutex<Vec<std::thread::ThreadId>> = std::sync::Mutex::new(Vec::new());

#[amorsize::parallel(max_threads = 1)]
fn adapted(x: u64) -> u64 {
    spin(Duration::from_micros(2));
    x * 5
}

#[test]
fn items_computed_by_a_par_iter_s_adapters_are_computed_on_the_pool() {
    use amorsize::ParIter;
    use rayon::prelude::*;
    let items = || {
        ParIter((0..2_000u64).collect::<Vec<_>>().into_par_iter().map(|x| {
            ADAPTED_ON.lock().unwrap().push(std::thread::current().id());
            spin(Duration::from_micros(20));
            x + 1
        }))
    };
    // A loop on any machine (capped): a `Vec` of the same items would run in slices here.
    let (first, _) = poll_here(par_adapted_async((1..=2_000u64).collect::<Vec<_>>()));
    let (again, polls) = poll_here(par_adapted_async((1..=2_000u64).collect::<Vec<_>>()));
    assert_eq!(first, again);
    assert!(polls > 1, "held items did not run in slices");
    ADAPTED_ON.lock().unwrap().clear();
    let (got, _) = poll_here(par_adapted_async(items()));
    assert_eq!(got, first);
    let here = std::thread::current().id();
    let on = ADAPTED_ON.lock().unwrap();
    assert_eq!(on.len(), 2_000);
    assert!(
        on.iter().all(|thread| *thread != here),
        "the adapter ran on the polling thread (40 ms in its first poll)"
    );
}

/// Runs `f` inside a rayon pool of one thread (on a thread of its own) and returns its
/// result, or `None` after 20 s: a deadlock.
fn in_a_one_thread_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let _ = tx.send(pool.install(f));
    });
    rx.recv_timeout(Duration::from_secs(20)).ok()
}

#[amorsize::parallel]
fn blocked_on(x: &u64) -> u64 {
    spin(Duration::from_micros(5));
    x * 11
}

#[test]
fn blocking_on_a_call_from_a_one_thread_pool_s_task_does_not_deadlock() {
    // The first call has no cost to plan with: it would go to the pool, whose only thread
    // is the one parked waiting for it.
    let got = in_a_one_thread_pool(|| {
        poll_here(par_blocked_on_async((0..2_000u64).collect::<Vec<_>>())).0
    })
    .expect("the call never completed: a deadlock");
    assert_eq!(got, (0..2_000u64).map(|x| x * 11).collect::<Vec<_>>());
}

static DEAR_IN_POOL: AtomicBool = AtomicBool::new(false);

#[amorsize::parallel(max_threads = 1)]
fn drifting_in_pool(x: &u64) -> u64 {
    let cost = if DEAR_IN_POOL.load(Ordering::SeqCst) {
        300
    } else {
        2
    };
    spin(Duration::from_micros(cost));
    x + 13
}

#[test]
fn a_rest_handed_on_by_a_call_in_a_one_thread_pool_s_task_runs_there() {
    let got = in_a_one_thread_pool(|| {
        let cheap: Vec<u64> = (0..2_000).collect();
        poll_here(par_drifting_in_pool_async(cheap.clone()));
        let (_, polls) = poll_here(par_drifting_in_pool_async(cheap));
        // Items 150 times dearer than learned: after two slices over, the rest would go to
        // the pool, whose only thread is this one.
        DEAR_IN_POOL.store(true, Ordering::SeqCst);
        let got = poll_here(par_drifting_in_pool_async((0..100u64).collect::<Vec<_>>())).0;
        DEAR_IN_POOL.store(false, Ordering::SeqCst);
        (polls, got)
    })
    .expect("the call never completed: a deadlock");
    assert!(got.0 > 1, "the cheap call did not run in slices here");
    assert_eq!(got.1, (0..100u64).map(|x| x + 13).collect::<Vec<_>>());
}

static PINNED_ON_POOL: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel(mode = "serial")]
fn pinned_serial(x: &u64) -> u64 {
    if on_pool() {
        PINNED_ON_POOL.fetch_add(1, Ordering::SeqCst);
    }
    spin(Duration::from_micros(2));
    x * 9
}

#[test]
fn a_function_pinned_serial_runs_its_async_calls_where_they_are_polled() {
    let items: Vec<u64> = (0..2_000).collect();
    let expected: Vec<u64> = items.iter().map(|x| x * 9).collect();
    // The first call has no cost to pace slices with: it runs on the pool, and learns it.
    assert_eq!(
        poll_here(par_pinned_serial_async(items.clone())).0,
        expected
    );
    PINNED_ON_POOL.store(0, Ordering::SeqCst);
    // 4 ms of work: a loop in slices, as the mode says, with no round trip to the pool.
    let (got, polls) = poll_here(par_pinned_serial_async(items));
    assert_eq!(got, expected);
    assert!(polls > 1, "one poll: the call did not run in slices");
    // A call of a few µs runs whole in its first poll.
    let (few, polls) = poll_here(par_pinned_serial_async(vec![1, 2, 3]));
    assert_eq!((few, polls), (vec![9, 18, 27], 1));
    assert_eq!(
        PINNED_ON_POOL.load(Ordering::SeqCst),
        0,
        "items ran on the pool"
    );
}

static CAPPED_AROUND_ON_POOL: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel]
fn capped_around(x: &u64) -> u64 {
    if on_pool() {
        CAPPED_AROUND_ON_POOL.fetch_add(1, Ordering::SeqCst);
    }
    // A tenth of `SLICE`: items learned up to ten times dearer on a busy machine still
    // run in slices (at 20 µs, one loaded run in about a hundred learned them dearer than
    // a poll may take and sent the whole call to the pool).
    spin(Duration::from_micros(5));
    x * 4
}

#[test]
fn a_cap_around_the_code_that_makes_a_future_applies_to_its_call() {
    let items: Vec<u64> = (0..2_000).collect();
    let expected: Vec<u64> = items.iter().map(|x| x * 4).collect();
    // The first call learns the cost.
    assert_eq!(
        poll_here(par_capped_around_async(items.clone())).0,
        expected
    );
    CAPPED_AROUND_ON_POOL.store(0, Ordering::SeqCst);
    // Made inside the cap's scope, polled outside it (as `.await` does): 10 ms of work that
    // would go parallel runs as the loop the cap makes it, in slices here.
    let future = amorsize::with_max_threads(1, || par_capped_around_async(items.clone()));
    let (got, polls) = poll_here(future);
    assert_eq!(got, expected);
    assert_eq!(
        CAPPED_AROUND_ON_POOL.load(Ordering::SeqCst),
        0,
        "items ran on the pool\n{}",
        amorsize::report()
    );
    assert!(polls > 1, "one poll: the call did not run in slices");
    let report = amorsize::report();
    let site = report.site("capped_around").expect("the site is reported");
    if amorsize::machine().threads < 2 {
        eprintln!("note: one thread in this pool: every call is a loop, capped or not");
        return;
    }
    assert_eq!(
        site.cause,
        Some(amorsize::Cause::Capped { max_threads: 1 }),
        "{}",
        site.reason
    );
}

static DEAR_AND_FALLIBLE: AtomicBool = AtomicBool::new(false);
static FALLIBLE_ON_POOL: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel(max_threads = 1)]
fn drifting_fallible(x: &u64) -> Result<u64, String> {
    if on_pool() {
        FALLIBLE_ON_POOL.fetch_add(1, Ordering::SeqCst);
    }
    let dear = DEAR_AND_FALLIBLE.load(Ordering::SeqCst);
    spin(Duration::from_micros(if dear { 300 } else { 2 }));
    if dear && *x == 80 {
        return Err(format!("item {x} failed"));
    }
    Ok(x + 1)
}

#[test]
fn a_failure_in_the_rest_handed_to_the_pool_comes_back_from_the_poll() {
    let cheap: Vec<u64> = (0..2_000).collect();
    for _ in 0..2 {
        assert!(poll_here(try_par_drifting_fallible_async(cheap.clone()))
            .0
            .is_ok());
    }
    // 150 times dearer than learned: the rest goes to the pool after two slices, and fails
    // there.
    DEAR_AND_FALLIBLE.store(true, Ordering::SeqCst);
    FALLIBLE_ON_POOL.store(0, Ordering::SeqCst);
    let (got, _) = poll_here(try_par_drifting_fallible_async(
        (0..100u64).collect::<Vec<_>>(),
    ));
    DEAR_AND_FALLIBLE.store(false, Ordering::SeqCst);
    assert_eq!(got, Err("item 80 failed".to_string()));
    assert!(
        FALLIBLE_ON_POOL.load(Ordering::SeqCst) > 0,
        "the rest did not go to the pool"
    );
    // The site is fine afterwards.
    let (again, _) = poll_here(try_par_drifting_fallible_async(cheap));
    assert_eq!(again.map(|v| v.len()), Ok(2_000));
}

/// A function generic over a context taken by value: the async companion moves the context
/// into its future, so it asks the context's type to be `Send`, which the function's own
/// bounds need not say (they did not compile before: "`G` cannot be sent between threads").
#[amorsize::parallel]
fn applied<G: Fn(u64) -> u64 + Sync>(x: &u64, g: G) -> u64 {
    g(*x)
}

#[test]
fn a_context_of_a_generic_type_is_moved_into_the_async_companion() {
    let xs: Vec<u64> = (0..300).collect();
    let expected: Vec<u64> = xs.iter().map(|x| x + 7).collect();
    assert_eq!(par_applied(&xs, |v| v + 7), expected);
    let (got, _) = poll_here(par_applied_async(xs.clone(), |v| v + 7));
    assert_eq!(got, expected);
}

/// A generic type whose associated functions have companions: its `impl` has parameters
/// of its own, which the attribute cannot see.
#[derive(Debug, PartialEq)]
struct Scaled<T> {
    value: u64,
    unit: T,
}

impl<T: Copy + Into<u64> + Send + Sync> Scaled<T> {
    /// Mentions `Self`; its async companions hold `Self`, so they ask `Self: 'static`.
    #[amorsize::parallel]
    fn of(x: &u64, unit: T) -> Self {
        Scaled {
            value: x * unit.into(),
            unit,
        }
    }
}

#[test]
fn associated_functions_of_a_generic_impl_get_async_companions() {
    let xs: Vec<u64> = (0..300).collect();
    let expected: Vec<Scaled<u32>> = xs.iter().map(|x| Scaled::of(x, 3u32)).collect();
    assert_eq!(Scaled::par_of(&xs, 3u32), expected);
    let (got, _) = poll_here(Scaled::<u32>::par_of_async(xs.clone(), 3u32));
    assert_eq!(got, expected);
    // A non-'static instance still has the sync companions (this would not compile if the
    // companions asked `T: 'static` of the whole impl).
    fn borrowed_unit(unit: &u8) -> Vec<u64> {
        #[derive(Clone, Copy)]
        struct Unit<'a>(&'a u8);
        impl From<Unit<'_>> for u64 {
            fn from(u: Unit<'_>) -> u64 {
                u64::from(*u.0)
            }
        }
        let xs = [1u64, 2, 3];
        Scaled::par_of(&xs, Unit(unit))
            .into_iter()
            .map(|s| s.value)
            .collect()
    }
    assert_eq!(borrowed_unit(&2), vec![2, 4, 6]);
}

#[amorsize::parallel(max_threads = 1)]
fn unwrap_tracked(item: Counted) -> u64 {
    spin(Duration::from_micros(2));
    item.0 * 2
}

#[amorsize::parallel(max_threads = 1)]
fn tracked_until_1500(item: Counted) -> u64 {
    spin(Duration::from_micros(2));
    assert_ne!(item.0, 1_500, "item 1500 panics");
    item.0 * 2
}

#[test]
fn items_held_as_their_vec_or_box_run_in_slices_and_are_all_dropped() {
    let tracked = |n: u64| (0..n).map(Counted::new).collect::<Vec<_>>();
    let expected: Vec<u64> = (0..2_000).map(|x| x * 2).collect();
    // The first call profiles (on the pool); the next ones are loops, run in slices here.
    assert_eq!(
        poll_here(par_unwrap_tracked_async(tracked(2_000))).0,
        expected
    );
    let (from_vec, polls) = poll_here(par_unwrap_tracked_async(tracked(2_000)));
    assert_eq!(from_vec, expected);
    assert!(polls > 1, "{polls} poll(s)");
    let boxed = tracked(2_000).into_boxed_slice();
    assert_eq!(poll_here(par_unwrap_tracked_async(boxed)).0, expected);
    assert_eq!(Counted::live(), 0);
    // A panic in a slice drops the values made and the items not run, once each (the
    // first call profiles on the pool; the next ones run in slices here).
    for _ in 0..3 {
        let panicked = std::panic::catch_unwind(|| {
            poll_here(par_tracked_until_1500_async(tracked(2_000)));
        });
        assert!(panicked.is_err());
        assert_eq!(Counted::live(), 0);
    }
    // Dropped between slices: the items not run yet are dropped with it.
    let waker = nobody();
    let mut cx = Context::from_waker(&waker);
    let mut future = Box::pin(par_unwrap_tracked_async(tracked(10_000)));
    for _ in 0..3 {
        assert!(future.as_mut().poll(&mut cx).is_pending());
    }
    drop(future);
    // Here, or on the pool if a preempted slice sent the rest there: dropped soon either way.
    let start = Instant::now();
    while Counted::live() > 0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(Counted::live(), 0);
}
