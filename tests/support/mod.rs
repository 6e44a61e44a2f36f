//! Helpers shared by the integration tests (each test file is a crate of its own, and
//! includes this module with `mod support;`).

#![allow(dead_code)] // Each test file uses some of them.

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
