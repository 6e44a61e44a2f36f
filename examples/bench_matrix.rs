//! The benchmark matrix: amorsize against a plain loop, rayon's default and the best
//! hand-tuned `with_min_len` (the "oracle"), over workloads and input lengths.
//!
//! Run: `cargo run --release --example bench_matrix` (a few minutes on 2 cores), or
//! `-- --quick` for a smoke run of a few seconds (what CI runs). `-- --reps N` sets the
//! repetitions per configuration (default 11, quick 3); `-- --only strings` runs one
//! workload's cells (`base`, `context`, `reduce`, `owned` and `by-value` run one group; `fail-fast`,
//! `stream` and `progress` one line each); `-- --report` ends with amorsize's report on every
//! site it used. With `--features progress` it also measures what watching calls costs (bars
//! on, an observer installed), in child processes.
//!
//! Two groups of cells, each with its own summary: the base matrix (workloads × lengths)
//! and the context cells, where what a call should do changes with its context:
//! allocation-heavy and memory-bound items, a cost that drifts up and down between calls,
//! an input whose head is cheaper than the rest, a one-thread pool, several OS threads
//! calling at once, and a site whose first call ran in a one-thread pool.
//!
//! Every configuration of a cell runs inside one loop, in an order shuffled each repetition,
//! so machine noise hits all of them alike; times are medians. Each cell gets a
//! fresh `Site`, so "first" is a true first call (profiling included; the median over 5
//! fresh sites). The machine's parallel
//! overhead is measured once before the matrix, as in any process that has made one long call.
//!
//! Columns: loop, rayon (default `par_iter`), oracle (the best of the loop and a sweep of
//! `with_min_len` values, with the length it used: what a careful hand-tuner would pick), first and steady amorsize calls, steady / best(loop, rayon), steady /
//! oracle, and amorsize's predicted speedup over the loop against the observed one
//! (loop / steady). A summary with the geometric means and worst cells follows.

use amorsize::{Nanos, Plan, Site};
use rayon::prelude::*;
use std::hint::black_box;
use std::time::Instant;

fn cheap(x: &u64) -> u64 {
    let y = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    y ^ (y >> 29)
}

/// Never inlined: every strategy then runs the very same machine code. (Inlined, this loop
/// compiled differently at each call site, and one copy ran 1.5× faster than another.)
#[inline(never)]
fn rounds(seed: u64, n: u64) -> u64 {
    (0..n).fold(seed, |acc, i| {
        black_box(acc.rotate_left(7) ^ i).wrapping_mul(3)
    })
}

fn medium(x: &u64) -> u64 {
    rounds(*x, 1_000)
}

fn heavy(x: &u64) -> u64 {
    rounds(*x, 800_000)
}

/// The item's value is its cost in rounds: sorted by cost, so cost grows along the input.
fn skewed(x: &u64) -> u64 {
    rounds(*x, *x)
}

/// Never inlined, like `rounds` (see the strings row in docs/PERFORMANCE.md).
#[inline(never)]
fn vowels(s: &str) -> usize {
    s.bytes()
        .filter(|b| matches!(b, b'a' | b'e' | b'i' | b'o' | b'u'))
        .count()
}

/// Never inlined, like `rounds`: inlined, each strategy got its own copy, and at n=100 000
/// amorsize's ran at 8.9–10.1 ms against 7.3–7.9 ms for rayon's (same plan, same work);
/// not inlined, 7.5–7.8 ms against 7.4 ms.
#[inline(never)]
fn collatz(x: u64) -> u32 {
    let (mut x, mut steps) = (x.max(1), 0u32);
    while x != 1 && steps < 1_000 {
        x = if x % 2 == 0 { x / 2 } else { 3 * x + 1 };
        steps += 1;
    }
    steps
}

/// Allocation-heavy: a few small allocations and a formatted `String` per item (as in
/// `examples/diagnostics.rs`'s `render`), freed by whoever drops the output.
#[inline(never)]
fn render(x: &u64) -> String {
    let digits: Vec<u64> = (0..24)
        .map(|i| x.wrapping_mul(31).wrapping_add(i) % 97)
        .collect();
    let mut out = String::with_capacity(8);
    for d in digits {
        out.push_str(&d.to_string());
        out.push(',');
    }
    out
}

/// The table `streamed` reads: 64 MB, far more than any cache here.
const TABLE_WORDS: usize = 8 << 20;
/// Words `streamed` reads per item (16 KB).
const STRIDE_WORDS: usize = 2_048;

/// Memory-bound: sums 16 KB of a 64 MB table per item, at a place set by the item, so
/// that every item streams from memory and the threads share the memory bus.
#[inline(never)]
fn streamed(table: &[u64], x: u64) -> u64 {
    let blocks = table.len() / STRIDE_WORDS;
    let start = (x.wrapping_mul(0x9E37_79B9) as usize % blocks) * STRIDE_WORDS;
    table[start..start + STRIDE_WORDS]
        .iter()
        .fold(0u64, |a, &b| a.wrapping_add(b))
}

/// Rounds per item of `phased`: switched between calls by the drift cell.
static PHASE_ROUNDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(2);

/// A cost that changes between calls: `PHASE_ROUNDS` rounds (2 rounds is ~2 ns, 700 ~0.7
/// µs).
fn phased(x: &u64) -> u64 {
    rounds(*x, PHASE_ROUNDS.load(std::sync::atomic::Ordering::Relaxed))
}

#[amorsize::parallel]
fn inner(x: &u64) -> u64 {
    rounds(*x, 1_000)
}

fn inner_items(x: u64) -> Vec<u64> {
    (x..x + 64).collect()
}

/// One cell: the same work through each strategy.
struct Cell<'a> {
    workload: &'static str,
    label: String,
    n: usize,
    group: Group,
    /// Every configuration (and the plan reported) runs inside this pool, if any.
    pool: Option<&'a rayon::ThreadPool>,
    plain: Box<dyn Fn() + Sync + 'a>,
    rayon: Box<dyn Fn() + Sync + 'a>,
    min_len: Box<dyn Fn(usize) + Sync + 'a>,
    amorsize: Box<dyn Fn(&'static Site) + Sync + 'a>,
}

/// Which targets a cell counts toward.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    /// The matrix as it was before the closed-loop work (issue 4's targets).
    Base,
    /// Cells where the context changes: pools, drift, contention (issue 11's targets).
    Context,
    /// Reductions and folds, against a loop's fold and rayon's `reduce` / `fold` (issue 15).
    Reduce,
    /// Owned `Vec`s mapped into values of their items' size, which a loop writes in place.
    Owned,
    /// Cheap items by value from a range (mapped, or streamed), or from an owned `Vec` into
    /// smaller values: loops into a new `Vec`.
    ByValue,
}

impl<'a> Cell<'a> {
    fn in_group(mut self, group: Group) -> Self {
        self.group = group;
        self
    }

    fn in_pool(mut self, pool: &'a rayon::ThreadPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Runs `f` inside the cell's pool, if it has one.
    fn inside<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }
}

struct Row {
    workload: &'static str,
    label: String,
    n: usize,
    plain: f64,
    rayon: f64,
    oracle: f64,
    /// `None` when the loop beat every swept length.
    oracle_len: Option<usize>,
    first: f64,
    steady: f64,
    plan: Option<Plan>,
    predicted: Option<f64>,
    group: Group,
}

impl Row {
    fn best(&self) -> f64 {
        self.plain.min(self.rayon)
    }
    fn observed(&self) -> f64 {
        self.plain / self.steady
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 3 } else { 11 });
    if args.iter().any(|a| a == PROGRESS_CHILD) {
        progress_child(reps);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == STREAM_CHILD) {
        stream_child(
            args.get(i + 1).map_or("loop", String::as_str),
            args.get(i + 2)
                .and_then(|n| n.parse().ok())
                .unwrap_or(20_000_000),
        );
        return;
    }

    let start = Instant::now();
    let machine = amorsize::machine();
    println!(
        "bench_matrix: {} threads; machine measured in {} ({} to go parallel, {} after idling, {} per extra piece); {} reps, medians\n",
        machine.threads,
        Nanos(start.elapsed().as_nanos() as f64),
        Nanos(machine.overhead_ns),
        Nanos(machine.cold_overhead_ns),
        Nanos(machine.per_piece_ns),
        reps
    );

    let sizes = |full: &[usize], quick_sizes: &[usize]| -> Vec<usize> {
        if quick {
            quick_sizes.to_vec()
        } else {
            full.to_vec()
        }
    };

    // Inputs live for the whole run.
    let max_n = if quick { 100_000 } else { 1_000_000 };
    let numbers: Vec<u64> = (0..max_n as u64).collect();
    let strings: Vec<String> = (0..max_n)
        .map(|i| format!("item {i} lorem ipsum dolor sit amet"))
        .collect();
    let skew_inputs: Vec<Vec<u64>> = sizes(&[1_000, 10_000, 50_000], &[1_000])
        .into_iter()
        .map(|n| (0..n as u64).map(|i| i * 4_000 / n as u64).collect())
        .collect();

    // Inputs of the context cells, declared before the cells that borrow them.
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let table: Vec<u64> = (0..TABLE_WORDS as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let context_n = if quick { 10_000 } else { 50_000 };
    let head_items: Vec<u64> = (0..context_n as u64)
        .map(|i| if i < context_n as u64 / 20 { 0 } else { 2_000 })
        .collect();

    let text: Vec<String> = generated_lines(if quick { 20_000 } else { 200_000 });

    let mut cells: Vec<Cell> = Vec::new();
    for n in sizes(&[10, 100, 1_000, 10_000, 100_000, 1_000_000], &[10, 10_000]) {
        cells.push(slice_cell("cheap", &numbers[..n], cheap));
    }
    for n in sizes(&[10, 100, 1_000, 10_000, 100_000], &[100]) {
        cells.push(slice_cell("medium", &numbers[..n], medium));
    }
    for n in sizes(&[2, 8, 64], &[4]) {
        cells.push(slice_cell("heavy", &numbers[..n], heavy));
    }
    for items in &skew_inputs {
        cells.push(slice_cell("skewed", items, skewed));
    }
    for n in sizes(&[100, 10_000, 1_000_000], &[10_000]) {
        cells.push(string_cell(&strings[..n]));
    }
    for n in sizes(&[1_000, 100_000], &[1_000]) {
        cells.push(range_cell(n));
    }
    for n in sizes(&[16, 256], &[16]) {
        cells.push(nested_cell(&numbers[..n]));
    }
    let (small, large) = if quick { (100, 10_000) } else { (100, 100_000) };
    cells.push(alternating_cell(&numbers[..small], &numbers[..large]));

    // The context changes (issue 11): these count toward their own summary line.
    cells.push(slice_cell("alloc", &numbers[..context_n], render).in_group(Group::Context));
    cells.push(memory_cell(&table, if quick { 2_000 } else { 10_000 }));
    cells.push(drift_cell(&numbers[..4_000]));
    cells.push(slice_cell("cheap-head", &head_items, skewed).in_group(Group::Context));
    cells.push(
        slice_cell("one-pool", &numbers[..context_n], medium)
            .in_group(Group::Context)
            .in_pool(&one_thread),
    );
    cells.push(threads_cell(&numbers[..context_n], 4));
    cells.push(first_in_one_pool_cell(&numbers[..context_n], &one_thread));

    // Owned `Vec`s, copied for every call, mapped in place by a loop.
    for n in sizes(&[10_000, 100_000, 1_000_000], &[10_000]) {
        cells.push(owned_cell(
            "owned",
            Group::Owned,
            &numbers[..n],
            cheap_value,
        ));
    }

    // Cheap items by value into a new `Vec`: from a range, from an owned `Vec` (a copy).
    for n in sizes(&[10_000, 1_000_000], &[10_000]) {
        cells.push(cheap_range_cell(n));
        cells.push(owned_cell(
            "owned-narrowed",
            Group::ByValue,
            &numbers[..n],
            narrowed,
        ));
        cells.push(cheap_stream_cell(n));
    }

    // Reductions (issue 15): sums over ranges (no input in memory), a word count.
    for n in sizes(&[100, 10_000_000], &[100, 1_000_000]) {
        cells.push(sum_cell(n));
    }
    cells.push(word_count_cell(&text));

    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    if let Some(only) = only {
        cells.retain(|cell| match only {
            "base" => cell.group == Group::Base,
            "context" => cell.group == Group::Context,
            "reduce" => cell.group == Group::Reduce,
            "owned" => cell.group == Group::Owned,
            "by-value" => cell.group == Group::ByValue,
            workload => cell.workload == workload,
        });
    }
    let rows: Vec<Row> = cells.iter().map(|cell| run(cell, reps)).collect();
    print_table(&rows);
    summarize(&rows);
    if only.is_none() || only == Some("fail-fast") {
        fail_fast(if quick { 20_000 } else { 100_000 }, reps);
    }
    if only.is_none() || only == Some("stream") {
        stream_overhead(
            if quick { 2_000_000 } else { 20_000_000 },
            if quick { 1 } else { 3 },
        );
    }
    if only.is_none() || only == Some("progress") {
        progress_overhead(if quick { 2 } else { 6 }, reps);
    }
    if args.iter().any(|a| a == "--report") {
        println!("\n{}", amorsize::report());
    }
    let machine = amorsize::machine();
    println!(
        "\nmachine after the run (learned from the parallel calls): {} to go parallel, {} after idling",
        Nanos(machine.overhead_ns),
        Nanos(machine.cold_overhead_ns)
    );
    println!("total time {}", Nanos(start.elapsed().as_nanos() as f64));
}

/// `f` is generic (a function item, zero-sized) rather than a `fn` pointer, as in real use:
/// through a pointer the loop could still inline it but the runtime could not.
fn slice_cell<'a, F, R>(workload: &'static str, items: &'a [u64], f: F) -> Cell<'a>
where
    F: Fn(&u64) -> R + Sync + Send + Copy + 'a,
    R: Send + 'a,
{
    Cell {
        workload,
        label: items.len().to_string(),
        n: items.len(),
        group: Group::Base,
        pool: None,
        plain: Box::new(move || {
            black_box(items.iter().map(f).collect::<Vec<_>>());
        }),
        rayon: Box::new(move || {
            black_box(items.par_iter().map(f).collect::<Vec<_>>());
        }),
        min_len: Box::new(move |m| {
            black_box(items.par_iter().with_min_len(m).map(f).collect::<Vec<_>>());
        }),
        amorsize: Box::new(move |site| {
            black_box(amorsize::map_slice(site, items, f));
        }),
    }
}

fn string_cell(items: &[String]) -> Cell<'_> {
    Cell {
        workload: "strings",
        label: items.len().to_string(),
        n: items.len(),
        group: Group::Base,
        pool: None,
        plain: Box::new(move || {
            black_box(items.iter().map(|s| vowels(s)).collect::<Vec<_>>());
        }),
        rayon: Box::new(move || {
            black_box(items.par_iter().map(|s| vowels(s)).collect::<Vec<_>>());
        }),
        min_len: Box::new(move |m| {
            black_box(
                items
                    .par_iter()
                    .with_min_len(m)
                    .map(|s| vowels(s))
                    .collect::<Vec<_>>(),
            );
        }),
        amorsize: Box::new(move |site| {
            black_box(amorsize::map_slice(site, items, |s: &String| vowels(s)));
        }),
    }
}

fn range_cell<'a>(n: usize) -> Cell<'a> {
    u64_range_cell("range", Group::Base, 1, n, collatz)
}

/// `f` over the `n` `u64`s from `start` on, every configuration from the range itself (no
/// input in memory). Generic over `f`, so each cell calls its kernel directly.
fn u64_range_cell<'a, R, F>(
    workload: &'static str,
    group: Group,
    start: u64,
    n: usize,
    f: F,
) -> Cell<'a>
where
    R: Send + 'static,
    F: Fn(u64) -> R + Copy + Send + Sync + 'static,
{
    let end = start + n as u64;
    Cell {
        workload,
        label: n.to_string(),
        n,
        group,
        pool: None,
        plain: Box::new(move || {
            black_box((start..end).map(f).collect::<Vec<_>>());
        }),
        rayon: Box::new(move || {
            // rayon cannot index a u64 range; its default is the unindexed collect.
            black_box((start..end).into_par_iter().map(f).collect::<Vec<_>>());
        }),
        min_len: Box::new(move |m| {
            let from = start as usize;
            black_box(
                (from..from + n)
                    .into_par_iter()
                    .with_min_len(m)
                    .map(|x| f(x as u64))
                    .collect::<Vec<_>>(),
            );
        }),
        amorsize: Box::new(move |site| {
            black_box(amorsize::map(site, start..end, f));
        }),
    }
}

/// `cheap` by value.
fn cheap_value(x: u64) -> u64 {
    cheap(&x)
}

/// An owned `Vec` mapped by value by `f`: every configuration maps a copy of `items` made in
/// the call (as a caller passing `v.clone()` would), and the loop is
/// `into_iter().map(f).collect()`, which std runs in place when `R` is a `u64`. (`f` a
/// function item, not a pointer: every configuration calls it directly.)
// The copy is the point: each configuration maps a `Vec` of its own, as a caller would.
#[allow(clippy::unnecessary_to_owned)]
fn owned_cell<'a, R: Send + 'static>(
    workload: &'static str,
    group: Group,
    items: &'a [u64],
    f: impl Fn(u64) -> R + Copy + Send + Sync + 'static,
) -> Cell<'a> {
    Cell {
        workload,
        label: items.len().to_string(),
        n: items.len(),
        group,
        pool: None,
        plain: Box::new(move || {
            black_box(items.to_vec().into_iter().map(f).collect::<Vec<_>>());
        }),
        rayon: Box::new(move || {
            black_box(items.to_vec().into_par_iter().map(f).collect::<Vec<_>>());
        }),
        min_len: Box::new(move |m| {
            black_box(
                items
                    .to_vec()
                    .into_par_iter()
                    .with_min_len(m)
                    .map(f)
                    .collect::<Vec<_>>(),
            );
        }),
        amorsize: Box::new(move |site| {
            black_box(amorsize::map(site, items.to_vec(), f));
        }),
    }
}

/// `cheap` over a range of `n` `u64`s.
fn cheap_range_cell<'a>(n: usize) -> Cell<'a> {
    u64_range_cell("range-cheap", Group::ByValue, 0, n, cheap_value)
}

/// `cheap` over a range of `n` items as a stream (`map_iter`), summed as its results come
/// (see [`fold_cell`]).
fn cheap_stream_cell<'a>(n: usize) -> Cell<'a> {
    let add = |a: u64, b: u64| a.wrapping_add(b);
    fold_cell(
        "stream-cheap",
        Group::ByValue,
        n,
        Box::new(move |site| {
            black_box(amorsize::map_iter(site, 0..n as u64, cheap_value).fold(0, add));
        }),
    )
}

/// `cheap`, cut to a `u32`: values of another size than the items'.
fn narrowed(x: u64) -> u32 {
    cheap(&x) as u32
}

fn nested_cell(items: &[u64]) -> Cell<'_> {
    Cell {
        workload: "nested",
        label: format!("{}×64", items.len()),
        n: items.len(),
        group: Group::Base,
        pool: None,
        plain: Box::new(move || {
            let out: Vec<u64> = items
                .iter()
                .map(|&x| inner_items(x).iter().map(inner).fold(0, |a, b| a ^ b))
                .collect();
            black_box(out);
        }),
        rayon: Box::new(move || {
            let out: Vec<u64> = items
                .par_iter()
                .map(|&x| {
                    inner_items(x)
                        .par_iter()
                        .map(inner)
                        .reduce(|| 0, |a, b| a ^ b)
                })
                .collect();
            black_box(out);
        }),
        min_len: Box::new(move |m| {
            let out: Vec<u64> = items
                .par_iter()
                .with_min_len(m)
                .map(|&x| inner_items(x).iter().map(inner).fold(0, |a, b| a ^ b))
                .collect();
            black_box(out);
        }),
        amorsize: Box::new(move |site| {
            black_box(amorsize::map_slice(site, items, |&x: &u64| {
                par_inner(&inner_items(x)).iter().fold(0, |a, b| a ^ b)
            }));
        }),
    }
}

fn alternating_cell<'a>(small: &'a [u64], large: &'a [u64]) -> Cell<'a> {
    Cell {
        workload: "alternating",
        label: format!("{}+{}", small.len(), large.len()),
        n: large.len(),
        group: Group::Base,
        pool: None,
        plain: Box::new(move || {
            black_box(small.iter().map(medium).collect::<Vec<_>>());
            black_box(large.iter().map(medium).collect::<Vec<_>>());
        }),
        rayon: Box::new(move || {
            black_box(small.par_iter().map(medium).collect::<Vec<_>>());
            black_box(large.par_iter().map(medium).collect::<Vec<_>>());
        }),
        min_len: Box::new(move |m| {
            // Hand-tuned: the loop for the small call, the swept length for the large one.
            black_box(small.iter().map(medium).collect::<Vec<_>>());
            black_box(
                large
                    .par_iter()
                    .with_min_len(m)
                    .map(medium)
                    .collect::<Vec<_>>(),
            );
        }),
        amorsize: Box::new(move |site| {
            black_box(amorsize::map_slice(site, small, medium));
            black_box(amorsize::map_slice(site, large, medium));
        }),
    }
}

/// Memory-bound items: `n` items each streaming 16 KB of the table.
fn memory_cell(table: &[u64], n: usize) -> Cell<'_> {
    let f = move |x: u64| streamed(table, x);
    Cell {
        workload: "memory",
        label: n.to_string(),
        n,
        group: Group::Context,
        pool: None,
        plain: Box::new(move || {
            black_box((0..n as u64).map(f).collect::<Vec<_>>());
        }),
        rayon: Box::new(move || {
            black_box((0..n as u64).into_par_iter().map(f).collect::<Vec<_>>());
        }),
        min_len: Box::new(move |m| {
            black_box(
                (0..n)
                    .into_par_iter()
                    .with_min_len(m)
                    .map(|x| f(x as u64))
                    .collect::<Vec<_>>(),
            );
        }),
        amorsize: Box::new(move |site| {
            black_box(amorsize::map(site, 0..n as u64, f));
        }),
    }
}

/// A cost that drifts up and down between calls: each sample is 4 calls at ~2 ns per item
/// (the loop's ground) then 4 at ~0.7 µs (parallel's), over the same 4 000 items.
fn drift_cell(items: &[u64]) -> Cell<'_> {
    use std::sync::atomic::Ordering::Relaxed;
    fn phases(mut call: impl FnMut(bool)) {
        for expensive in [false, false, false, false, true, true, true, true] {
            PHASE_ROUNDS.store(if expensive { 700 } else { 2 }, Relaxed);
            call(expensive);
        }
    }
    Cell {
        workload: "drift",
        label: format!("8×{}", items.len()),
        n: items.len(),
        group: Group::Context,
        pool: None,
        plain: Box::new(move || {
            phases(|_| {
                black_box(items.iter().map(phased).collect::<Vec<_>>());
            })
        }),
        rayon: Box::new(move || {
            phases(|_| {
                black_box(items.par_iter().map(phased).collect::<Vec<_>>());
            })
        }),
        min_len: Box::new(move |m| {
            // Hand-tuned: the loop for the cheap calls, the swept length for the others.
            phases(|expensive| {
                if expensive {
                    black_box(
                        items
                            .par_iter()
                            .with_min_len(m)
                            .map(phased)
                            .collect::<Vec<_>>(),
                    );
                } else {
                    black_box(items.iter().map(phased).collect::<Vec<_>>());
                }
            })
        }),
        amorsize: Box::new(move |site| {
            phases(|_| {
                black_box(amorsize::map_slice(site, items, phased));
            })
        }),
    }
}

/// Several OS threads calling at once: `callers` threads, each mapping its own share of
/// `items` (medium work), started together; a sample is the time until all are done.
fn threads_cell(items: &[u64], callers: usize) -> Cell<'_> {
    let share = items.len() / callers;
    fn together(items: &[u64], share: usize, work: &(dyn Fn(&[u64]) + Sync)) {
        std::thread::scope(|s| {
            for part in items.chunks(share) {
                s.spawn(move || work(part));
            }
        });
    }
    Cell {
        workload: "os-threads",
        label: format!("{callers}×{share}"),
        n: share,
        group: Group::Context,
        pool: None,
        plain: Box::new(move || {
            together(items, share, &|part| {
                black_box(part.iter().map(medium).collect::<Vec<_>>());
            })
        }),
        rayon: Box::new(move || {
            together(items, share, &|part| {
                black_box(part.par_iter().map(medium).collect::<Vec<_>>());
            })
        }),
        min_len: Box::new(move |m| {
            together(items, share, &|part| {
                black_box(
                    part.par_iter()
                        .with_min_len(m)
                        .map(medium)
                        .collect::<Vec<_>>(),
                );
            })
        }),
        amorsize: Box::new(move |site| {
            together(items, share, &|part| {
                black_box(amorsize::map_slice(site, part, medium));
            })
        }),
    }
}

/// A site whose first call is made inside a one-thread pool (a library pooling on its
/// own, a test harness), and every later call on the global pool: "first" is that call,
/// "steady" the global ones.
fn first_in_one_pool_cell<'a>(items: &'a [u64], one: &'a rayon::ThreadPool) -> Cell<'a> {
    let mut cell = slice_cell("first-in-1", items, medium).in_group(Group::Context);
    cell.amorsize = Box::new(move |site| {
        if site.calls() == 0 {
            black_box(one.install(|| amorsize::map_slice(site, items, medium)));
        } else {
            black_box(amorsize::map_slice(site, items, medium));
        }
    });
    cell
}

/// ~30 µs of work, failing only at item 300.
#[inline(never)]
fn checked(x: u64) -> Result<u64, u64> {
    let start = Instant::now();
    while start.elapsed().as_micros() < 30 {
        std::hint::spin_loop();
    }
    if x == 300 {
        Err(x)
    } else {
        Ok(x)
    }
}

/// Fail fast (issue 14): `n` items of ~30 µs whose only failure is at item 300, through a
/// loop's `collect::<Result<Vec<_>, _>>()`, rayon's, and `try_map` (a first call on a fresh
/// site, then a steady one). The whole batch would take `n × 30 µs`.
fn fail_fast(n: u64, reps: usize) {
    let mut loop_ns = Vec::new();
    let mut rayon_ns = Vec::new();
    let mut first_ns = Vec::new();
    let mut steady_ns = Vec::new();
    for k in 0..reps.clamp(1, 5) {
        loop_ns.push(time(|| {
            let r: Result<Vec<u64>, u64> = (0..n).map(checked).collect();
            assert_eq!(r, Err(300));
        }));
        rayon_ns.push(time(|| {
            let r: Result<Vec<u64>, u64> = (0..n).into_par_iter().map(checked).collect();
            assert!(r.is_err());
        }));
        let name: &'static str = Box::leak(format!("fail-fast#{k}").into_boxed_str());
        let site: &'static Site = Box::leak(Box::new(Site::new(name)));
        first_ns.push(time(|| {
            assert!(amorsize::try_map(site, 0..n, checked).is_err());
        }));
        steady_ns.push(time(|| {
            assert!(amorsize::try_map(site, 0..n, checked).is_err());
        }));
    }
    println!(
        "  fail fast, {n} items of ~30 µs ({} in all), only failure at item 300: loop {}, rayon {}, amorsize first call {}, steady {} [well under 100 ms]",
        Nanos(n as f64 * 30_000.0),
        Nanos(median(loop_ns)),
        Nanos(median(rayon_ns)),
        Nanos(median(first_ns)),
        Nanos(median(steady_ns)),
    );
}

/// A sum of `cheap` over `0..n` by amorsize's `map_reduce` (see [`fold_cell`]).
fn sum_cell<'a>(n: usize) -> Cell<'a> {
    let f = |x: usize| cheap(&(x as u64));
    let add = |a: u64, b: u64| a.wrapping_add(b);
    fold_cell(
        "sum",
        Group::Reduce,
        n,
        Box::new(move |site| {
            black_box(amorsize::map_reduce(site, 0..n, f, || 0, add));
        }),
    )
}

/// A sum of `cheap` over `0..n` (a `usize` range: rayon indexes those, not `u64` ones): a
/// loop's fold, rayon's `map().reduce()`, and `amorsize`'s way. A range, so that 10 M items
/// take no memory.
fn fold_cell<'a>(
    workload: &'static str,
    group: Group,
    n: usize,
    amorsize: Box<dyn Fn(&'static Site) + Sync + 'a>,
) -> Cell<'a> {
    let f = |x: usize| cheap(&(x as u64));
    let add = |a: u64, b: u64| a.wrapping_add(b);
    Cell {
        workload,
        label: n.to_string(),
        n,
        group,
        pool: None,
        plain: Box::new(move || {
            black_box((0..n).map(f).fold(0, add));
        }),
        rayon: Box::new(move || {
            black_box((0..n).into_par_iter().map(f).reduce(|| 0, add));
        }),
        min_len: Box::new(move |m| {
            black_box(
                (0..n)
                    .into_par_iter()
                    .with_min_len(m)
                    .map(f)
                    .reduce(|| 0, add),
            );
        }),
        amorsize,
    }
}

/// `n` lines of eight words drawn from a vocabulary of 5 000, with a fixed seed.
fn generated_lines(n: usize) -> Vec<String> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            (0..8)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    format!("w{}", state % 5_000)
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

type Counts<'a> = std::collections::HashMap<&'a str, u32>;

fn count_words<'a>(mut counts: Counts<'a>, words: std::str::SplitWhitespace<'a>) -> Counts<'a> {
    for w in words {
        *counts.entry(w).or_default() += 1;
    }
    counts
}

fn merge_counts<'a>(mut a: Counts<'a>, b: Counts<'a>) -> Counts<'a> {
    if a.len() < b.len() {
        return merge_counts(b, a);
    }
    for (w, n) in b {
        *a.entry(w).or_default() += n;
    }
    a
}

/// A word count: a loop's fold into one map, rayon's idiomatic `fold` + `reduce`, and
/// amorsize's `map_fold` with the same fold and merge.
fn word_count_cell(lines: &[String]) -> Cell<'_> {
    // `&String`: the items are `String`s, and the strategies share this one function.
    #[allow(clippy::ptr_arg)]
    fn split(line: &String) -> std::str::SplitWhitespace<'_> {
        line.split_whitespace()
    }
    Cell {
        workload: "word-count",
        label: lines.len().to_string(),
        n: lines.len(),
        group: Group::Reduce,
        pool: None,
        plain: Box::new(move || {
            black_box(lines.iter().map(split).fold(Counts::new(), count_words));
        }),
        rayon: Box::new(move || {
            black_box(
                lines
                    .par_iter()
                    .fold(Counts::new, |c, l| count_words(c, split(l)))
                    .reduce(Counts::new, merge_counts),
            );
        }),
        min_len: Box::new(move |m| {
            black_box(
                lines
                    .par_iter()
                    .with_min_len(m)
                    .fold(Counts::new, |c, l| count_words(c, split(l)))
                    .reduce(Counts::new, merge_counts),
            );
        }),
        amorsize: Box::new(move |site| {
            black_box(amorsize::map_fold(
                site,
                lines,
                split,
                Counts::new,
                count_words,
                merge_counts,
            ));
        }),
    }
}

/// This program, to run again as a child measuring one configuration in its own process.
fn self_command() -> std::process::Command {
    std::process::Command::new(std::env::current_exe().expect("this program"))
}

/// What a child printed, once it has succeeded.
fn child_output(child: &mut std::process::Command) -> String {
    let out = child.output().expect("the child runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The argument that makes this program a child of [`stream_overhead`].
const STREAM_CHILD: &str = "--stream-child";

/// About 50 ns of work on one item.
#[inline(never)]
fn fifty(x: u64) -> u64 {
    (0..50).fold(x, |acc, i| {
        (acc ^ i)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(13)
    })
}

/// Streams (issue 16): `n` lazily generated items of ~50 ns, each configuration in a child
/// process of its own so that its peak memory (`VmHWM`) is its own: a plain loop over the
/// iterator, `map_iter` (a stream), and collecting the input then `map` (what a companion
/// without streams needs). `rounds` rounds, alternated; medians.
fn stream_overhead(n: usize, rounds: usize) {
    let kinds = ["loop", "stream", "collect"];
    let mut times: [Vec<f64>; 3] = Default::default();
    let mut peaks: [Vec<f64>; 3] = Default::default();
    for _ in 0..rounds {
        for (k, kind) in kinds.into_iter().enumerate() {
            let text = child_output(self_command().args([STREAM_CHILD, kind, &n.to_string()]));
            let mut fields = text.split_whitespace();
            let (Some(ns), Some(kb)) = (fields.next(), fields.next()) else {
                panic!("the child printed {text:?}");
            };
            times[k].push(ns.parse().expect("a time"));
            peaks[k].push(kb.parse().expect("a size"));
        }
    }
    let [loop_ns, stream_ns, collect_ns] = times.map(median);
    let [loop_kb, stream_kb, collect_kb] = peaks.map(median);
    println!(
        "  stream, {n} generated items of ~50 ns: loop {} ({:.0} MB peak), par_<name>_iter {} ({:.2}× the loop; {:.0} MB peak) [≤ 0.8×, < 100 MB], collect then par_<name> {} ({:.0} MB peak)",
        Nanos(loop_ns),
        loop_kb / 1024.0,
        Nanos(stream_ns),
        stream_ns / loop_ns,
        stream_kb / 1024.0,
        Nanos(collect_ns),
        collect_kb / 1024.0,
    );
}

/// The child of [`stream_overhead`]: prints `ns peak_kB` for one configuration.
fn stream_child(kind: &str, n: usize) {
    let input = || (0..n as u64).map(|i| i.wrapping_mul(0x2545_F491_4F6C_DD1D));
    static STREAM: Site = Site::new("stream");
    let start = Instant::now();
    let checksum = match kind {
        "loop" => input().map(fifty).fold(0, |a, b| a ^ b),
        "stream" => amorsize::map_iter(&STREAM, input(), fifty).fold(0, |a, b| a ^ b),
        _ => {
            let all: Vec<u64> = input().collect();
            amorsize::map(&STREAM, all, fifty)
                .into_iter()
                .fold(0, |a, b| a ^ b)
        }
    };
    let ns = start.elapsed().as_nanos();
    black_box(checksum);
    let peak_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "0".to_owned());
    println!("{ns} {peak_kb}");
}

/// The argument that makes this program the child of [`progress_overhead`].
const PROGRESS_CHILD: &str = "--progress-child";

/// What watching calls costs (issue 14): the same cheap cells timed in child processes of
/// three kinds, alternating `rounds` times: nothing listening (`AMORSIZE_PROGRESS=never`),
/// progress bars on (`always`: calls that may need a bar are watched; these are too short to
/// need one), and a no-op observer installed as well (every call watched: numbered, its
/// pieces counted, each event sent to the observer and the bars). Medians of the children's
/// medians, and their ratios to the first.
fn progress_overhead(rounds: usize, reps: usize) {
    if !cfg!(feature = "progress") {
        println!("  progress overhead: run with `--features progress` to measure it");
        return;
    }
    const KINDS: [(&str, &str); 3] = [
        ("never", "nothing listening"),
        ("always", "bars on"),
        ("always", "bars and an observer"),
    ];
    let mut samples: Vec<(String, [Vec<f64>; 3])> = Vec::new();
    for _ in 0..rounds {
        for (k, (when, _)) in KINDS.into_iter().enumerate() {
            let mut child = self_command();
            child
                .args([PROGRESS_CHILD, "--reps", &reps.to_string()])
                .env(amorsize::PROGRESS_ENV, when);
            if k == 2 {
                child.arg("--observer");
            }
            let text = child_output(&mut child);
            for line in text.lines() {
                let mut fields = line.split('\t');
                let (Some(label), Some(ns)) = (fields.next(), fields.next()) else {
                    continue;
                };
                let ns: f64 = ns.parse().expect("a time");
                match samples.iter_mut().find(|(l, _)| l == label) {
                    Some((_, kinds)) => kinds[k].push(ns),
                    None => {
                        let mut kinds: [Vec<f64>; 3] = Default::default();
                        kinds[k].push(ns);
                        samples.push((label.to_owned(), kinds));
                    }
                }
            }
        }
    }
    for (label, [off, bars, observed]) in samples {
        let (off, bars, observed) = (median(off), median(bars), median(observed));
        println!(
            "  watching calls, {label}: {} {}, {} {} ({:.3}×), {} {} ({:.3}×)",
            Nanos(off),
            KINDS[0].1,
            Nanos(bars),
            KINDS[1].1,
            bars / off,
            Nanos(observed),
            KINDS[2].1,
            observed / off
        );
    }
}

/// The child of [`progress_overhead`]: prints `label\tmedian ns` per cell.
fn progress_child(reps: usize) {
    struct Nothing;
    impl amorsize::Observer for Nothing {}
    if std::env::args().any(|a| a == "--observer") {
        amorsize::set_observer(Nothing).expect("the only observer");
    }
    let numbers: Vec<u64> = (0..2_000_000).collect();
    for (label, n, calls) in [
        ("cheap n=1000 (a loop)", 1_000, 50),
        ("cheap n=100000 (parallel)", 100_000, 2),
        ("cheap n=2000000 (parallel, 32 pieces)", 2_000_000, 1),
    ] {
        let site: &'static Site = Box::leak(Box::new(Site::new(label)));
        for _ in 0..5 {
            black_box(amorsize::map(site, &numbers[..n], cheap));
        }
        let samples: Vec<f64> = (0..reps.max(5) * 4)
            .map(|_| {
                time(|| {
                    for _ in 0..calls {
                        black_box(amorsize::map(site, &numbers[..n], cheap));
                    }
                }) / calls as f64
            })
            .collect();
        println!("{label}\t{}", median(samples));
    }
}

/// How many fresh sites each cell's first call is measured on (the median is reported).
const FIRST_CALL_SITES: usize = 5;

/// The `with_min_len` values the oracle sweeps for `n` items.
fn sweep(n: usize, threads: usize) -> Vec<usize> {
    let mut lens: Vec<usize> = [1, n / 256, n / 64, n / 16, n / (4 * threads), n / threads]
        .into_iter()
        .map(|m| m.max(1))
        .collect();
    lens.sort_unstable();
    lens.dedup();
    lens
}

fn run(cell: &Cell, reps: usize) -> Row {
    // "first" is the median over several fresh sites (one sample is at the mercy of the
    // machine's phase); the last of them is the one measured in the steady state.
    let mut firsts = Vec::new();
    let mut site = None;
    for k in 0..reps.clamp(1, FIRST_CALL_SITES) {
        let name: &'static str =
            Box::leak(format!("{}/{}#{k}", cell.workload, cell.label).into_boxed_str());
        let fresh: &'static Site = Box::leak(Box::new(Site::new(name)));
        // Warm the allocator and caches with two untimed loops (the first output of a new
        // size is mmapped and returned on free; the second comes from the heap and stays),
        // so that "first" measures the profiling call, not the process's first touch of
        // fresh pages.
        cell.inside(|| (cell.plain)());
        cell.inside(|| (cell.plain)());
        firsts.push(cell.inside(|| time(|| (cell.amorsize)(fresh))));
        site = Some(fresh);
    }
    let site = site.expect("at least one fresh site");
    let first = median(firsts);

    // Short configurations repeat inside one timed sample (at least ~20 µs of loop time),
    // so that clock granularity and interrupts do not swamp nanosecond-scale calls.
    let batch = {
        let once = cell.inside(|| time(|| (cell.plain)())).max(1.0);
        ((20_000.0 / once).ceil() as usize).clamp(1, 10_000)
    };
    let lens = sweep(cell.n, cell.inside(rayon::current_num_threads));
    // Configurations: 0 loop, 1 rayon, 2 amorsize, 3.. one per swept length.
    let configs = 3 + lens.len();
    let mut samples = vec![Vec::with_capacity(reps); configs];
    let mut order: Vec<usize> = (0..configs).collect();
    let mut rng = 0x2545_F491_4F6C_DD1D_u64 ^ cell.n as u64;
    for _ in 0..reps {
        // A fresh order every repetition. Rotating is not enough: it keeps each
        // configuration behind the same predecessor, and a parallel run right after a
        // serial one pays for waking idle cores (measured here: up to 1.5× slower).
        for i in (1..configs).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for &config in &order {
            let t = cell.inside(|| {
                time(|| {
                    for _ in 0..batch {
                        match config {
                            0 => (cell.plain)(),
                            1 => (cell.rayon)(),
                            2 => (cell.amorsize)(site),
                            k => (cell.min_len)(lens[k - 3]),
                        }
                    }
                })
            });
            samples[config].push(t / batch as f64);
        }
    }
    let medians: Vec<f64> = samples.into_iter().map(median).collect();
    // The oracle is what a hand-tuner would pick: the loop, or the best swept length.
    let (oracle_len, oracle) = medians[3..]
        .iter()
        .copied()
        .zip(lens.iter().map(|&m| Some(m)))
        .fold(
            (None, medians[0]),
            |best, (t, m)| if t < best.1 { (m, t) } else { best },
        );
    // What the site's last planned call of the cell's length ran, as the report records it
    // (it knows the context the call ran in: other callers, the pool); else what a call
    // made now would get.
    let report = amorsize::report();
    let last = report
        .site(site.name())
        .filter(|s| s.last_n == Some(cell.n))
        .and_then(|s| Some((s.plan?, s.predicted_speedup?)));
    let decision = last.or_else(|| {
        cell.inside(|| site.plan_for(cell.n))
            .map(|d| (d.plan, d.predicted_speedup()))
    });
    Row {
        workload: cell.workload,
        label: cell.label.clone(),
        n: cell.n,
        plain: medians[0],
        rayon: medians[1],
        oracle,
        oracle_len,
        first,
        steady: medians[2],
        plan: decision.map(|d| d.0),
        predicted: decision.map(|d| d.1),
        group: cell.group,
    }
}

fn time(run: impl FnOnce()) -> f64 {
    let start = Instant::now();
    run();
    start.elapsed().as_nanos() as f64
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<12} {:>12} {:>10} {:>10} {:>18} {:>10} {:>10} {:>8} {:>8} {:>16} {:>9} {:>9}",
        "workload",
        "n",
        "loop",
        "rayon",
        "oracle (min_len)",
        "first",
        "steady",
        "/best",
        "/oracle",
        "plan",
        "predicted",
        "observed"
    );
    for r in rows {
        let plan = match r.plan {
            Some(Plan::Serial) => "serial".to_string(),
            Some(Plan::Parallel { min_len, threads }) => format!("{threads}t ml={min_len}"),
            None => "-".to_string(),
        };
        println!(
            "{:<12} {:>12} {:>10} {:>10} {:>18} {:>10} {:>10} {:>7.2}× {:>7.2}× {:>16} {:>8.2}× {:>8.2}×",
            r.workload,
            r.label,
            Nanos(r.plain).to_string(),
            Nanos(r.rayon).to_string(),
            format!(
                "{} ({})",
                Nanos(r.oracle),
                r.oracle_len.map_or("loop".to_string(), |m| m.to_string())
            ),
            Nanos(r.first).to_string(),
            Nanos(r.steady).to_string(),
            r.steady / r.best(),
            r.steady / r.oracle,
            plan,
            r.predicted.unwrap_or(f64::NAN),
            r.observed(),
        );
    }
}

fn geomean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v.ln(), c + 1));
    (sum / count.max(1) as f64).exp()
}

fn summarize(rows: &[Row]) {
    println!("\nsummary (targets in brackets)");
    let base: Vec<&Row> = rows.iter().filter(|r| r.group == Group::Base).collect();
    if !base.is_empty() {
        println!("the base matrix:");
        summarize_group(&base, 1.15);
        println!(
            "  amorsize / oracle:            geomean {:.3} [≤ 1.10]",
            geomean(base.iter().map(|r| r.steady / r.oracle))
        );
        println!(
            "  bound: oracle / best(loop, rayon) geomean {:.3} (what a perfect choice among these strategies reaches)",
            geomean(base.iter().map(|r| r.oracle / r.best()))
        );
        let first_worst = base
            .iter()
            .filter(|r| r.n >= 10_000)
            .map(|r| (r, r.first / r.best()))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((r, ratio)) = first_worst {
            println!(
                "  first call / best, n ≥ 10 000: worst {ratio:.3} at {} n={} [≤ 1.5]",
                r.workload, r.label
            );
        }
    }
    let reduce: Vec<&Row> = rows.iter().filter(|r| r.group == Group::Reduce).collect();
    for r in &reduce {
        let (what, target) = match (r.workload, r.n) {
            ("sum", n) if n <= 1_000 => (
                format!("{} over the loop", Nanos(r.steady - r.plain)),
                "within a few ns of the loop",
            ),
            ("sum", _) => (
                format!("{:.3}× best(loop fold, rayon reduce)", r.steady / r.best()),
                "≤ 1.05",
            ),
            _ => (
                format!("{:.3}× rayon fold + reduce", r.steady / r.rayon),
                "≤ 1.10",
            ),
        };
        println!(
            "  reduction {} n={}: {what} [{target}]",
            r.workload, r.label
        );
    }
    let owned: Vec<&Row> = rows.iter().filter(|r| r.group == Group::Owned).collect();
    if !owned.is_empty() {
        println!("owned Vecs (a copy made in every call; the loop writes in place):");
        summarize_group(&owned, 1.15);
    }
    let by_value: Vec<&Row> = rows.iter().filter(|r| r.group == Group::ByValue).collect();
    if !by_value.is_empty() {
        println!("cheap items by value into a new Vec (ranges, mapped or streamed; owned Vecs into smaller values):");
        summarize_group(&by_value, 1.15);
    }
    let context: Vec<&Row> = rows.iter().filter(|r| r.group == Group::Context).collect();
    if !context.is_empty() {
        println!("the context cells (pools, drift, contention):");
        summarize_group(&context, 1.20);
        if let Some(r) = context.iter().find(|r| r.workload == "first-in-1") {
            println!(
                "  global pool after a first call in a one-thread pool: {:.2}× faster than the loop [≥ 1.4]",
                r.observed()
            );
        }
    }
}

/// The lines every group shares: against the better of loop and rayon, and predictions.
fn summarize_group(rows: &[&Row], worst_target: f64) {
    let worst = rows
        .iter()
        .map(|r| (r, r.steady / r.best()))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("at least one cell");
    println!(
        "  amorsize / best(loop, rayon): geomean {:.3} [≤ 0.95], worst {:.3} at {} n={} [≤ {worst_target:.2}]",
        geomean(rows.iter().map(|r| r.steady / r.best())),
        worst.1,
        worst.0.workload,
        worst.0.label
    );
    let parallel: Vec<(&Row, f64)> = rows
        .iter()
        .filter(|r| matches!(r.plan, Some(Plan::Parallel { .. })))
        .filter_map(|r| r.predicted.map(|p| (*r, p / r.observed() - 1.0)))
        .collect();
    if let Some((r, err)) = parallel
        .iter()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
    {
        let within = parallel.iter().filter(|(_, e)| e.abs() <= 0.25).count();
        println!(
            "  predicted vs observed speedup, parallel cells: {within} of {} within ±25 %, worst {:+.0} % at {} n={} [all within ±25 %]",
            parallel.len(),
            err * 100.0,
            r.workload,
            r.label
        );
    }
}
