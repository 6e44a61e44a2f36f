//! Calls after pauses: a thread that sleeps between its calls (a service's thread between
//! requests) and then makes a call long enough to go parallel.
//!
//! Run: `cargo run --release --example paused_calls` (about ten seconds; `-- --quick` for
//! one). Each round makes nine 20-item calls 100 µs apart (`--gap-us N` changes the pause),
//! then one 2 000-item call (1.2 ms of work on the development VM), timed, three ways in
//! turn: a loop, rayon's `par_iter`, and amorsize's companion pinned to `parallel` (so that
//! every call takes the parallel path being measured, whatever its outcomes say). It prints
//! each way's median and 90th percentile, and how many calls took longer than the loop's
//! median: a parallel call whose helper never got a core of its own.

use rayon::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[amorsize::parallel(mode = "parallel")]
fn score(x: &u64) -> u64 {
    let mut h = *x;
    for i in 0..3_000u64 {
        h = h.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    h
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut rounds = 100;
    let mut gap = Duration::from_micros(100);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => rounds = 10,
            "--gap-us" => {
                let us = args.next().and_then(|v| v.parse().ok());
                gap = Duration::from_micros(us.unwrap_or_else(|| usage()));
            }
            _ => usage(),
        }
    }
    let small: Vec<u64> = (0..20).collect();
    let large: Vec<u64> = (0..2_000).collect();
    let ways = ["loop", "par_iter", "amorsize"];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); ways.len()];
    for round in 0..rounds {
        for k in 0..ways.len() {
            let way = (round + k) % ways.len();
            for _ in 0..9 {
                black_box(small.iter().map(score).collect::<Vec<_>>());
                std::thread::sleep(gap);
            }
            let start = Instant::now();
            match way {
                0 => black_box(large.iter().map(score).collect::<Vec<_>>()),
                1 => black_box(large.par_iter().map(score).collect::<Vec<_>>()),
                _ => black_box(par_score(&large)),
            };
            times[way].push(start.elapsed());
            std::thread::sleep(gap);
        }
    }
    for t in &mut times {
        t.sort();
    }
    let loop_median = times[0][times[0].len() / 2];
    println!(
        "{rounds} rounds, calls of 2 000 items after nine 20-item calls {} µs apart:\n",
        gap.as_micros()
    );
    println!(
        "{:<10} {:>10} {:>10} {:>22}",
        "way", "median", "p90", "slower than loop's p50"
    );
    for (way, t) in ways.iter().zip(&times) {
        let slow = t.iter().filter(|&&d| d > loop_median).count();
        println!(
            "{:<10} {:>10} {:>10} {:>22}",
            way,
            format!("{:.0} µs", micros(t[t.len() / 2])),
            format!("{:.0} µs", micros(t[t.len() * 9 / 10])),
            format!("{slow} of {}", t.len())
        );
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn usage() -> ! {
    eprintln!("usage: paused_calls [--quick] [--gap-us N]");
    std::process::exit(2)
}
