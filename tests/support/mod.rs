//! Helpers shared by the integration tests (each test file is a crate of its own, and
//! includes this module with `mod support;`).

#![allow(dead_code)] // Each test file uses some of them.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// Keeps this thread busy for `d`: work measured in time, the same on any machine.
pub fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Keeps this thread busy for `d` and returns a value that depends on `x`, so that the work
/// cannot be optimised away or mistaken for another item's.
pub fn spin_from(x: u64, d: Duration) -> u64 {
    let start = Instant::now();
    let mut acc = x;
    while start.elapsed() < d {
        acc = std::hint::black_box(acc.wrapping_mul(31).wrapping_add(1));
    }
    acc
}

/// Polls `future` on this thread until it is ready, parking while it waits on the pool:
/// its output, and how many times it was polled.
pub fn poll_here<F: Future>(future: F) -> (F::Output, usize) {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return (value, polls);
        }
        // A future that woke itself unparked this thread already: this returns at once.
        std::thread::park();
    }
}

/// A waker that wakes nobody: for polling a future by hand a set number of times.
pub fn nobody() -> Waker {
    struct Nobody;
    impl Wake for Nobody {
        fn wake(self: Arc<Self>) {}
    }
    Waker::from(Arc::new(Nobody))
}

/// Values of [`Counted`] alive now (in this test binary: one test each uses it).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// A value that counts itself alive, to check that every one made is dropped once.
#[derive(Debug)]
pub struct Counted(pub u64);

impl Counted {
    pub fn new(x: u64) -> Counted {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Counted(x)
    }

    /// How many are alive now.
    pub fn live() -> usize {
        LIVE.load(Ordering::SeqCst)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}
