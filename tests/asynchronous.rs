//! `par_<name>_async`: the map runs on rayon's pool while the executor keeps running other
//! tasks. Checked with tokio: a one-thread runtime keeps ticking while a long map runs,
//! concurrent maps from spawned tasks, a drop that stops the map, panics, and equality with
//! the serial map.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::spin;

#[amorsize::parallel]
fn heavy(x: &u64) -> u64 {
    spin(Duration::from_micros(50));
    x * 2
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
        let ticker = tokio::spawn(async {
            let mut longest = Duration::ZERO;
            let mut last = Instant::now();
            let start = last;
            while start.elapsed() < Duration::from_millis(150) {
                tokio::time::sleep(Duration::from_millis(1)).await;
                longest = longest.max(last.elapsed());
                last = Instant::now();
            }
            longest
        });
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

#[tokio::test]
async fn every_length_matches_the_serial_map() {
    for n in [0u32, 1, 2, 10, 1_000, 100_000] {
        let got = par_tiny_async((0..n).collect::<Vec<_>>()).await;
        assert_eq!(got, (0..n).map(|x| x + 1).collect::<Vec<_>>(), "n={n}");
    }
}
