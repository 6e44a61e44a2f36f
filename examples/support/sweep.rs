//! The measurements behind the chart examples, shared with `tests/charts.rs`: a speedup
//! sweep over input length and per-item cost, and a thread-count × `with_min_len` sweep.

// Each example uses part of this shared module.
#![allow(dead_code)]

use super::chart::{Marker, Series};
use rayon::prelude::*;
use std::hint::black_box;
use std::time::Instant;

/// How much to measure.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// The full run (`cargo run --release --example …`).
    Full,
    /// `-- --quick`: seconds, for CI.
    Quick,
    /// Fractions of a second, for tests in debug builds.
    Tiny,
}

impl Size {
    pub fn from_args() -> Size {
        if std::env::args().any(|a| a == "--quick") {
            Size::Quick
        } else {
            Size::Full
        }
    }

    fn reps(self) -> usize {
        match self {
            Size::Full => 9,
            Size::Quick => 3,
            Size::Tiny => 1,
        }
    }
}

/// Never inlined, so that every strategy runs the same machine code.
#[inline(never)]
fn rounds(seed: u64, n: u64) -> u64 {
    (0..n).fold(seed, |acc, i| {
        black_box(acc.rotate_left(7) ^ i).wrapping_mul(3)
    })
}

/// About 10 ns per item.
#[amorsize::parallel]
pub fn cost_10ns(x: &u64) -> u64 {
    rounds(*x, 8)
}

/// About 1 µs per item.
#[amorsize::parallel]
pub fn cost_1us(x: &u64) -> u64 {
    rounds(*x, 1_000)
}

/// About 50 µs per item.
#[amorsize::parallel]
pub fn cost_50us(x: &u64) -> u64 {
    rounds(*x, 50_000)
}

/// One measured point of the speedup sweep (median times, nanoseconds).
pub struct Point {
    pub n: usize,
    pub loop_ns: f64,
    pub rayon_ns: f64,
    pub amorsize_ns: f64,
    /// What amorsize planned for this length.
    pub parallel: bool,
}

/// The sweep of one per-item cost.
pub struct CostSweep {
    pub label: &'static str,
    pub site: &'static str,
    pub points: Vec<Point>,
}

type PerItem = fn(&u64) -> u64;
type Companion = fn(&[u64]) -> Vec<u64>;

/// Times loop, rayon's default and amorsize for each per-item cost over growing lengths.
pub fn speedup_sweep(size: Size) -> Vec<CostSweep> {
    let workloads: [(&'static str, &'static str, PerItem, Companion, &[usize]); 3] = match size {
        Size::Full => [
            (
                "~10 ns per item",
                "cost_10ns",
                cost_10ns,
                par_cost_10ns,
                &[10, 100, 1_000, 10_000, 100_000, 1_000_000],
            ),
            (
                "~1 µs per item",
                "cost_1us",
                cost_1us,
                par_cost_1us,
                &[2, 10, 30, 100, 1_000, 10_000],
            ),
            (
                "~50 µs per item",
                "cost_50us",
                cost_50us,
                par_cost_50us,
                &[2, 4, 8, 32, 128],
            ),
        ],
        Size::Quick => [
            (
                "~10 ns per item",
                "cost_10ns",
                cost_10ns,
                par_cost_10ns,
                &[10, 1_000, 100_000],
            ),
            (
                "~1 µs per item",
                "cost_1us",
                cost_1us,
                par_cost_1us,
                &[2, 30, 1_000],
            ),
            (
                "~50 µs per item",
                "cost_50us",
                cost_50us,
                par_cost_50us,
                &[2, 8],
            ),
        ],
        Size::Tiny => [
            (
                "~10 ns per item",
                "cost_10ns",
                cost_10ns,
                par_cost_10ns,
                &[10, 1_000],
            ),
            (
                "~1 µs per item",
                "cost_1us",
                cost_1us,
                par_cost_1us,
                &[2, 30],
            ),
            (
                "~50 µs per item",
                "cost_50us",
                cost_50us,
                par_cost_50us,
                &[2, 4],
            ),
        ],
    };
    let mut sweeps = Vec::new();
    for (label, site, f, par_f, lengths) in workloads {
        let mut points = Vec::new();
        for &n in lengths {
            let items: Vec<u64> = (0..n as u64).collect();
            black_box(par_f(&items)); // let amorsize learn before timing the steady state
            let times = interleaved(
                size.reps(),
                &mut [
                    &mut || {
                        black_box(items.iter().map(f).collect::<Vec<_>>());
                    },
                    &mut || {
                        black_box(items.par_iter().map(f).collect::<Vec<_>>());
                    },
                    &mut || {
                        black_box(par_f(&items));
                    },
                ],
            );
            let report = amorsize::report();
            let parallel = report
                .site(site)
                .and_then(|s| s.plan_for(n, &report.machine))
                .is_some_and(|p| p.is_parallel());
            points.push(Point {
                n,
                loop_ns: times[0],
                rayon_ns: times[1],
                amorsize_ns: times[2],
                parallel,
            });
        }
        sweeps.push(CostSweep {
            label,
            site,
            points,
        });
    }
    sweeps
}

impl CostSweep {
    /// Speedup over the loop against n, one line per strategy, and where amorsize switches.
    pub fn chart_data(&self) -> (Vec<Series>, Vec<Marker>) {
        let line = |name: &str, t: fn(&Point) -> f64| Series {
            name: name.to_string(),
            points: self
                .points
                .iter()
                .map(|p| (p.n as f64, p.loop_ns / t(p)))
                .collect(),
        };
        let series = vec![
            line("plain loop", |p| p.loop_ns),
            line("rayon par_iter (default)", |p| p.rayon_ns),
            line("amorsize par_ companion", |p| p.amorsize_ns),
        ];
        let markers = self
            .points
            .iter()
            .find(|p| p.parallel)
            .map(|p| Marker {
                x: p.n as f64,
                label: format!("amorsize parallel from n = {}", p.n),
            })
            .into_iter()
            .collect();
        (series, markers)
    }
}

/// The worker sweep: for each thread count, the time of each `with_min_len`.
pub struct WorkerSweep {
    pub n: usize,
    pub threads: Vec<usize>,
    pub min_lens: Vec<usize>,
    /// `times_ns[t][m]`: median time with `threads[t]` threads and `min_lens[m]`.
    pub times_ns: Vec<Vec<f64>>,
    /// rayon's default split, per thread count.
    pub default_ns: Vec<f64>,
    /// What amorsize chose for this call on the global pool: (threads, min_len), or `None`
    /// for the loop.
    pub amorsize_choice: Option<(usize, usize)>,
    pub amorsize_ns: f64,
}

/// Sweeps thread counts 1..=available and split lengths for `cost_1us` over one input.
pub fn worker_sweep(size: Size) -> Result<WorkerSweep, rayon::ThreadPoolBuildError> {
    let n = match size {
        Size::Full => 20_000,
        Size::Quick => 2_000,
        Size::Tiny => 200,
    };
    let items: Vec<u64> = (0..n as u64).collect();
    let available = std::thread::available_parallelism().map_or(1, |p| p.get());
    let threads: Vec<usize> = (1..=available).collect();

    // Let amorsize learn on the global pool, then time it and read its choice.
    for _ in 0..3 {
        black_box(par_cost_1us(&items));
    }
    let amorsize_ns = interleaved(
        size.reps(),
        &mut [&mut || {
            black_box(par_cost_1us(&items));
        }],
    )[0];
    let report = amorsize::report();
    let amorsize_choice = report
        .site("cost_1us")
        .and_then(|s| s.plan_for(n, &report.machine))
        .and_then(|p| match p {
            amorsize::Plan::Serial => None,
            amorsize::Plan::Parallel { min_len, threads } => Some((threads, min_len)),
        });

    // The swept split lengths, amorsize's own among them so the table can mark it.
    let chosen = amorsize_choice.map(|(_, m)| m);
    let min_lens: Vec<usize> = [1, 4, 16, 64, 256, 1024, n / 8, n / 2]
        .into_iter()
        .chain(chosen)
        .filter(|&m| m >= 1 && m <= n)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();

    let mut times_ns = Vec::new();
    let mut default_ns = Vec::new();
    for &t in &threads {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build()?;
        let (row, default) = pool.install(|| {
            let mut configs: Vec<Box<dyn FnMut() + '_>> = min_lens
                .iter()
                .map(|&m| {
                    let items = &items;
                    Box::new(move || {
                        black_box(
                            items
                                .par_iter()
                                .with_min_len(m)
                                .map(cost_1us)
                                .collect::<Vec<_>>(),
                        );
                    }) as Box<dyn FnMut() + '_>
                })
                .collect();
            configs.push(Box::new(|| {
                black_box(items.par_iter().map(cost_1us).collect::<Vec<_>>());
            }));
            let mut refs: Vec<&mut (dyn FnMut() + '_)> =
                configs.iter_mut().map(|c| &mut **c).collect();
            let mut times = interleaved(size.reps(), &mut refs);
            let default = times.pop().unwrap_or(f64::NAN);
            (times, default)
        });
        times_ns.push(row);
        default_ns.push(default);
    }
    Ok(WorkerSweep {
        n,
        threads,
        min_lens,
        times_ns,
        default_ns,
        amorsize_choice,
        amorsize_ns,
    })
}

impl WorkerSweep {
    /// Time (ms) against `with_min_len`, one line per thread count, amorsize's choice marked.
    pub fn chart_data(&self) -> (Vec<Series>, Vec<Marker>) {
        let series = self
            .threads
            .iter()
            .zip(&self.times_ns)
            .map(|(t, row)| Series {
                name: format!("{t} thread{}", if *t == 1 { "" } else { "s" }),
                points: self
                    .min_lens
                    .iter()
                    .zip(row)
                    .map(|(&m, &ns)| (m as f64, ns / 1e6))
                    .collect(),
            })
            .collect();
        let markers = self
            .amorsize_choice
            .map(|(t, m)| Marker {
                x: m as f64,
                label: format!("amorsize: {t} threads, min_len {m}"),
            })
            .into_iter()
            .collect();
        (series, markers)
    }
}

/// Runs each configuration `reps` times in a shuffled order per repetition; medians (ns).
pub fn interleaved<'f>(reps: usize, configs: &mut [&mut (dyn FnMut() + 'f)]) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(reps); configs.len()];
    let mut order: Vec<usize> = (0..configs.len()).collect();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..reps.max(1) {
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for &c in &order {
            let start = Instant::now();
            (configs[c])();
            samples[c].push(start.elapsed().as_nanos() as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}
