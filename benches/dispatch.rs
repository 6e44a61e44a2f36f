//! Dispatch overhead: the companion against a plain loop on 10 tiny items, once the site is
//! tuned (the steady state), plus the cost of an empty call.
//!
//! Run: `cargo bench --bench dispatch`. Target (issue 4): ≤ 30 ns more than the loop.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

#[amorsize::parallel]
fn tiny(x: &u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 1
}

fn dispatch(c: &mut Criterion) {
    let items: Vec<u64> = (0..10).collect();
    // Tune the site first: the steady state is what is measured.
    for _ in 0..1_000 {
        black_box(par_tiny(&items));
    }
    let mut group = c.benchmark_group("10 tiny items");
    group.bench_function("plain loop", |b| {
        b.iter(|| black_box(&items).iter().map(tiny).collect::<Vec<_>>())
    });
    group.bench_function("par_ companion", |b| b.iter(|| par_tiny(black_box(&items))));
    group.finish();

    let empty: Vec<u64> = Vec::new();
    c.bench_function("empty call", |b| b.iter(|| par_tiny(black_box(&empty))));
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
