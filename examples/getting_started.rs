//! Getting started: why "just use `par_iter`" is not enough, and what one attribute does.
//!
//! Run: `cargo run --release --example getting_started` (about 10–20 s; `-- --quick` for a
//! short run).
//!
//! For a tiny (~1 ns), a medium (~1 µs) and a heavy (~1 ms) per-item function it times a
//! plain loop, rayon's default `par_iter().map().collect()` and the generated `par_` companion
//! side by side: medians of interleaved repetitions, so machine noise hits all three alike.
//! Expect rayon to lose badly on small inputs of tiny work, and amorsize to track the better
//! of the two everywhere. It ends with `amorsize::report()`: what each function chose, and why.

use rayon::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A few nanoseconds: one multiply-xor-shift.
#[amorsize::parallel]
fn tiny(x: &u64) -> u64 {
    let y = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    y ^ (y >> 29)
}

/// About a microsecond of arithmetic.
#[amorsize::parallel]
fn medium(x: &u64) -> u64 {
    (0..300u64).fold(*x, |acc, i| {
        black_box(acc.rotate_left(7) ^ i).wrapping_mul(3)
    })
}

/// About a millisecond of arithmetic.
#[amorsize::parallel]
fn heavy(x: &u64) -> u64 {
    (0..800_000u64).fold(*x, |acc, i| {
        black_box(acc.rotate_left(7) ^ i).wrapping_mul(3)
    })
}

struct Row {
    workload: &'static str,
    n: usize,
    plain_ns: f64,
    rayon_ns: f64,
    first_ns: Option<f64>,
    amorsize_ns: f64,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 9 };
    println!(
        "amorsize getting started: {} rayon threads, {} repetitions per cell (medians)\n",
        rayon::current_num_threads(),
        reps
    );

    let mut rows = Vec::new();
    let tiny_sizes: &[usize] = if quick {
        &[100, 100_000]
    } else {
        &[100, 10_000, 1_000_000]
    };
    let medium_sizes: &[usize] = if quick {
        &[100, 10_000]
    } else {
        &[100, 10_000, 100_000]
    };
    let heavy_sizes: &[usize] = if quick { &[4, 16] } else { &[4, 64] };
    compare("tiny", tiny_sizes, reps, tiny, par_tiny, &mut rows);
    compare("medium", medium_sizes, reps, medium, par_medium, &mut rows);
    compare("heavy", heavy_sizes, reps, heavy, par_heavy, &mut rows);

    println!(
        "{:<8} {:>9} {:>11} {:>11} {:>11} {:>11} {:>9}  what amorsize chose",
        "work", "n", "plain loop", "rayon", "par_ first", "par_", "vs best"
    );
    let report = amorsize::report();
    for row in &rows {
        let best = row.plain_ns.min(row.rayon_ns);
        let plan = report
            .site(row.workload)
            .and_then(|s| s.plan_for(row.n, &report.machine))
            .map_or("-".to_string(), |p| match p {
                amorsize::Plan::Serial => "plain loop".to_string(),
                amorsize::Plan::Parallel { min_len, threads } => {
                    format!("parallel, {threads} threads, min_len {min_len}")
                }
            });
        println!(
            "{:<8} {:>9} {:>11} {:>11} {:>11} {:>11} {:>8.2}×  {}",
            row.workload,
            row.n,
            amorsize::Nanos(row.plain_ns).to_string(),
            amorsize::Nanos(row.rayon_ns).to_string(),
            row.first_ns
                .map_or("".to_string(), |t| amorsize::Nanos(t).to_string()),
            amorsize::Nanos(row.amorsize_ns).to_string(),
            row.amorsize_ns / best,
            plan
        );
    }
    println!("\n\"vs best\" is par_ / min(plain loop, rayon): below 1.00× beats both.");
    println!("\n{report}");
}

/// Times plain loop, rayon default and the companion on each size, interleaved.
fn compare<F, P>(
    workload: &'static str,
    sizes: &[usize],
    reps: usize,
    f: F,
    par_f: P,
    rows: &mut Vec<Row>,
) where
    F: Fn(&u64) -> u64 + Sync + Send + Copy,
    P: Fn(&[u64]) -> Vec<u64>,
{
    for (i, &n) in sizes.iter().enumerate() {
        let items: Vec<u64> = (0..n as u64).collect();
        // The very first call of the companion profiles; time it once, separately.
        let first_ns = (i == 0).then(|| time(|| par_f(&items)).as_nanos() as f64);
        let (mut plain, mut rayon, mut ours) = (Vec::new(), Vec::new(), Vec::new());
        for rep in 0..reps {
            // Rotate the order: whatever runs right after a rayon call shares the cores
            // with rayon's still-spinning workers, so no strategy may always go there.
            for turn in 0..3 {
                match (rep + turn) % 3 {
                    0 => plain.push(time(|| items.iter().map(f).collect::<Vec<_>>())),
                    1 => rayon.push(time(|| items.par_iter().map(f).collect::<Vec<_>>())),
                    _ => ours.push(time(|| par_f(&items))),
                }
            }
        }
        rows.push(Row {
            workload,
            n,
            plain_ns: median(plain),
            rayon_ns: median(rayon),
            first_ns,
            amorsize_ns: median(ours),
        });
    }
}

fn time<R>(run: impl FnOnce() -> R) -> Duration {
    let start = Instant::now();
    black_box(run());
    start.elapsed()
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_nanos() as f64
}
