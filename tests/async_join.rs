//! Many async calls joined on one thread: calls planned as loops run in slices on the
//! polling thread only while that thread is the only free core; a free thread of the pool
//! takes the rest of a call. A test binary of its own, so that no other test's calls keep
//! the pool busy meanwhile.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod support;
use support::spin;

static ON_POOL: AtomicUsize = AtomicUsize::new(0);

#[amorsize::parallel]
fn work(x: &u64) -> u64 {
    if rayon::current_thread_index().is_some() {
        ON_POOL.fetch_add(1, Ordering::SeqCst);
    }
    spin(Duration::from_micros(2));
    x ^ 0x55
}

#[test]
fn futures_joined_on_one_thread_share_the_work_with_a_free_thread_of_the_pool() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let items: Vec<u64> = (0..2_000).collect();
    let expected: Vec<u64> = items.iter().map(|x| x ^ 0x55).collect();
    // The cost is learned first (the first call profiles on the pool).
    for _ in 0..2 {
        assert_eq!(runtime.block_on(par_work_async(items.clone())), expected);
    }
    ON_POOL.store(0, Ordering::SeqCst);
    // 16 calls of 2 000 items of at least 2 µs, started together on the runtime's thread.
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|_| tokio::spawn(par_work_async(items.clone())))
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    assert!(results.iter().all(|r| *r == expected));
    let on_pool = ON_POOL.load(Ordering::SeqCst);
    if rayon::current_num_threads().min(std::thread::available_parallelism().unwrap().get()) < 2 {
        // One CPU: no core to gain, so no call leaves the polling thread.
        assert_eq!(on_pool, 0, "items went to a pool with no core to spare");
    } else {
        // A second core: at most one call (2 000 items) could have gone to the pool at its
        // first poll; the pool's free thread takes the rest of call after call.
        assert!(
            on_pool > 2_000,
            "only {on_pool} of 32 000 items ran on the pool: its free thread sat idle"
        );
    }
}
