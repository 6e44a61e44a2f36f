//! The cost model's price: `decide` runs on every call long enough to be worth planning, and
//! the hot-path limit is computed once. Run: `cargo bench --bench model`.

use amorsize::{Costs, Machine, PerItem};
use amorsize_core::model::{decide, serial_work_limit_ps};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn model(c: &mut Criterion) {
    let machine = Machine {
        threads: 2,
        overhead_ns: 15_000.0,
        cold_overhead_ns: 150_000.0,
        per_piece_ns: 100.0,
    };
    c.bench_function("decide (parallel answer)", |b| {
        b.iter(|| {
            decide(
                black_box(1_000_000),
                black_box(Costs::uniform(PerItem::from_nanos(2.5))),
                black_box(&machine),
            )
        })
    });
    c.bench_function("decide (serial answer)", |b| {
        b.iter(|| {
            decide(
                black_box(100),
                black_box(Costs::uniform(PerItem::from_nanos(2.5))),
                black_box(&machine),
            )
        })
    });
    c.bench_function("serial_work_limit_ps", |b| {
        b.iter(|| serial_work_limit_ps(black_box(&machine)))
    });
}

criterion_group!(benches, model);
criterion_main!(benches);
