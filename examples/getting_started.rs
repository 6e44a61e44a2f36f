//! Getting started: why "just use `par_iter`" is not enough, and what one attribute does.
//!
//! Run: `cargo run --release --example getting_started` (about 20 s; `-- --quick` for a
//! few seconds).
//!
//! The story in three steps, for a tiny (~1 ns), a medium (~1 µs) and a heavy (~1 ms)
//! per-item function at a few input lengths:
//! 1. a plain loop, `items.iter().map(f).collect()`;
//! 2. rayon everywhere, `items.par_iter().map(f).collect()`: faster on big work, and many
//!    times *slower* on small work;
//! 3. `#[amorsize::parallel]` on the function and a call to `par_f(&items)`: the better of the
//!    two, chosen per call from measured costs, first call included.
//!
//! Times are medians of repetitions that run the three strategies in a shuffled order. It
//! ends with `amorsize::report()`: what each function chose, and why.

use rayon::prelude::*;
use std::hint::black_box;
use std::time::Instant;

/// A few nanoseconds: one multiply-xor-shift.
#[amorsize::parallel]
fn tiny(x: &u64) -> u64 {
    let y = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    y ^ (y >> 29)
}

/// About a microsecond of arithmetic.
#[amorsize::parallel]
fn medium(x: &u64) -> u64 {
    rounds(*x, 1_000)
}

/// About a millisecond of arithmetic.
#[amorsize::parallel]
fn heavy(x: &u64) -> u64 {
    rounds(*x, 800_000)
}

/// Not inlined, so that the loop, rayon and amorsize all run the same machine code.
#[inline(never)]
fn rounds(seed: u64, n: u64) -> u64 {
    (0..n).fold(seed, |acc, i| {
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
        "amorsize, getting started: {} rayon threads, medians of {reps} shuffled repetitions\n",
        rayon::current_num_threads()
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
    let t = |ns: f64| amorsize::Nanos(ns).to_string();

    println!("Step 1: a plain loop, `items.iter().map(f).collect()`");
    for r in &rows {
        println!("  {:<7} n = {:>9}: {:>10}", r.workload, r.n, t(r.plain_ns));
    }

    println!("\nStep 2: rayon everywhere, `items.par_iter().map(f).collect()`");
    for r in &rows {
        let ratio = r.plain_ns / r.rayon_ns;
        // Two decimals near 1 (where one would print "1.0× SLOWER"), one above 10.
        let times = |x: f64| {
            if x < 10.0 {
                format!("{x:.2}×")
            } else {
                format!("{x:.1}×")
            }
        };
        let verdict = if ratio >= 1.0 {
            format!("{} faster", times(ratio))
        } else {
            format!("{} SLOWER", times(1.0 / ratio))
        };
        println!(
            "  {:<7} n = {:>9}: {:>10}  {verdict} than the loop",
            r.workload,
            r.n,
            t(r.rayon_ns)
        );
    }
    println!(
        "  Parallelism has a price (waking threads, splitting, joining); small work cannot pay it."
    );

    println!("\nStep 3: `#[amorsize::parallel]` on the function, `par_f(&items)` to call it");
    let report = amorsize::report();
    for r in &rows {
        let best = r.plain_ns.min(r.rayon_ns);
        let plan = report
            .site(r.workload)
            .and_then(|s| s.plan_for(r.n, &report.machine))
            .map_or("-".to_string(), |p| match p {
                amorsize::Plan::Serial => "plans the loop".to_string(),
                amorsize::Plan::Parallel { min_len, threads } => {
                    format!("plans {threads} threads, pieces ≥ {min_len}")
                }
            });
        let first = r
            .first_ns
            .map_or(String::new(), |f| format!("  (first call {})", t(f)));
        println!(
            "  {:<7} n = {:>9}: {:>10}  {:>5.2}× the better of loop and rayon; {plan}{first}",
            r.workload,
            r.n,
            t(r.amorsize_ns),
            r.amorsize_ns / best,
        );
    }
    println!("  (below 1.00× beats both; the first call of each function includes its profiling;");
    println!("  on a parallel plan this thread works too, and pool threads join in as they wake)");
    println!("\nWhat amorsize decided, and why:\n{report}");
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
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    for (i, &n) in sizes.iter().enumerate() {
        let items: Vec<u64> = (0..n as u64).collect();
        // Warm the allocator for this output size, then time the companion's very first
        // call (it profiles) once, separately.
        black_box(items.iter().map(f).collect::<Vec<_>>());
        black_box(items.iter().map(f).collect::<Vec<_>>());
        let first_ns = (i == 0).then(|| time(|| par_f(&items)));
        let mut samples = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..reps {
            // A fresh order each repetition: a parallel run right after a serial one pays for
            // waking idle cores, so no strategy may always go after the same one.
            let mut order = [0, 1, 2];
            for k in (1..3).rev() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                order.swap(k, (rng % (k as u64 + 1)) as usize);
            }
            for strategy in order {
                samples[strategy].push(match strategy {
                    0 => time(|| items.iter().map(f).collect::<Vec<_>>()),
                    1 => time(|| items.par_iter().map(f).collect::<Vec<_>>()),
                    _ => time(|| par_f(&items)),
                });
            }
        }
        let [plain, rayon, ours] = samples;
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

fn time<R>(run: impl FnOnce() -> R) -> f64 {
    let start = Instant::now();
    black_box(run());
    start.elapsed().as_nanos() as f64
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
