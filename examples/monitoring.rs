//! Watching the runtime from a program: an [`Observer`] that counts what every function's
//! calls did and writes a JSON line each time a function's plan changes, as a dashboard or a
//! log shipper would take them.
//!
//! Run: `cargo run --release --example monitoring --features serde` (under a second; `-- --quick`
//! for a shorter run). The JSON lines go to stdout, one per plan change, each a serialized
//! `amorsize::observe::PlanChange`; the summary at the end comes from the observer's counts.
//!
//! The workload has four functions whose plans differ and change: a cheap checksum (a loop
//! throughout), an image-like blur (parallel from its first call), a tokenizer whose inputs
//! grow fifty-fold halfway through (a loop, then parallel), and a validator that fails on a
//! bad batch. One call runs under `with_max_threads(1, ..)`, which is a plan change too.

use amorsize::observe::{CallEnd, Ending, PlanChange, Profiled};
use amorsize::Observer;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// What the observer keeps per function.
#[derive(Default)]
struct Stats {
    calls: u64,
    items: u64,
    elapsed: Duration,
    longest: Duration,
    parallel_calls: u64,
    failed: u64,
    panicked: u64,
    plan_changes: u64,
    profiled_ns: Option<f64>,
}

/// Counts every call by function and prints plan changes as JSON lines.
#[derive(Default)]
struct Monitor {
    by_function: Mutex<BTreeMap<&'static str, Stats>>,
}

impl Monitor {
    fn with<T>(&self, site: &'static str, f: impl FnOnce(&mut Stats) -> T) -> T {
        let mut by_function = self.by_function.lock().unwrap_or_else(|p| p.into_inner());
        f(by_function.entry(site).or_default())
    }
}

impl Observer for Monitor {
    fn call_ended(&self, call: &CallEnd) {
        self.with(call.site, |s| {
            s.calls += 1;
            s.items += call.n as u64;
            s.elapsed += call.elapsed;
            s.longest = s.longest.max(call.elapsed);
            s.parallel_calls += u64::from(call.plan.is_some_and(|p| p.is_parallel()));
            match call.ending {
                Ending::Failed => s.failed += 1,
                Ending::Panicked => s.panicked += 1,
                _ => {}
            }
        });
    }

    fn profiled(&self, profiled: &Profiled) {
        self.with(profiled.site, |s| {
            s.profiled_ns.get_or_insert(profiled.per_item.as_nanos());
        });
    }

    fn plan_changed(&self, change: &PlanChange) {
        self.with(change.site, |s| s.plan_changes += 1);
        match serde_json::to_string(change) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("a plan change did not serialize: {e}"),
        }
    }
}

static MONITOR: std::sync::OnceLock<Monitor> = std::sync::OnceLock::new();

fn work(x: u64, rounds: u32) -> u64 {
    (0..rounds).fold(x, |acc, i| {
        (acc ^ u64::from(i))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17)
    })
}

/// Cheap: a few ns an item.
#[amorsize::parallel]
fn checksum(x: &u64) -> u64 {
    work(*x, 4)
}

/// Heavy: a 3 × 3 blur of a 64 × 64 tile, tens of µs an item.
#[amorsize::parallel]
fn blur(tile: &[u8]) -> Vec<u8> {
    const SIDE: usize = 64;
    let mut out = vec![0u8; SIDE * SIDE];
    for y in 1..SIDE - 1 {
        for x in 1..SIDE - 1 {
            let mut sum = 0u32;
            for dy in 0..3 {
                for dx in 0..3 {
                    sum += u32::from(tile[(y + dy - 1) * SIDE + x + dx - 1]);
                }
            }
            out[y * SIDE + x] = (sum / 9) as u8;
        }
    }
    out
}

/// Costs what its document's length says: the inputs grow halfway through the run.
#[amorsize::parallel]
fn tokenize(doc: &str) -> usize {
    doc.split_whitespace()
        .map(|w| work(w.len() as u64, 20) as usize % 7)
        .sum()
}

/// Fails on a record it cannot read.
#[amorsize::parallel]
fn validate(record: &str) -> Result<u64, String> {
    record
        .parse::<u64>()
        .map(|v| work(v, 200))
        .map_err(|_| format!("unreadable record {record:?}"))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 4 } else { 40 };
    let monitor = MONITOR.get_or_init(Monitor::default);
    amorsize::set_observer(monitor).expect("the only observer");

    let numbers: Vec<u64> = (0..2_000).collect();
    let tiles: Vec<Vec<u8>> = (0..if quick { 200 } else { 800 })
        .map(|i| {
            (0..64 * 64)
                .map(|p| ((p * 7 + i * 13) % 251) as u8)
                .collect()
        })
        .collect();
    let short_docs: Vec<String> = (0..200).map(|i| format!("doc {i} is short")).collect();
    let long_docs: Vec<String> = short_docs
        .iter()
        .map(|d| format!("{d} ").repeat(50))
        .collect();
    let records: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    let mut bad_records = records.clone();
    bad_records[15_000] = "15k".to_owned();

    println!("Plan changes, as JSON lines:");
    let mut sink = 0usize;
    for round in 0..rounds {
        sink += par_checksum(&numbers).len();
        sink += par_blur(&tiles).len();
        let docs = if round < rounds / 2 {
            &short_docs
        } else {
            &long_docs
        };
        sink += par_tokenize(docs).iter().sum::<usize>();
        let batch = if round % 4 == 3 {
            &bad_records
        } else {
            &records
        };
        sink += try_par_validate(batch).map_or(0, |v| v.len());
    }
    // A call under a cap: planned for one thread.
    sink += amorsize::with_max_threads(1, || par_blur(&tiles).len());
    std::hint::black_box(sink);

    println!("\nWhat the observer counted:");
    println!(
        "{:<22} {:>6} {:>9} {:>10} {:>10} {:>9} {:>7} {:>8} {:>12}",
        "function",
        "calls",
        "items",
        "total",
        "longest",
        "parallel",
        "failed",
        "changes",
        "profiled at"
    );
    let by_function = monitor
        .by_function
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    for (site, s) in by_function.iter() {
        println!(
            "{:<22} {:>6} {:>9} {:>8.1}ms {:>8.2}ms {:>9} {:>7} {:>8} {:>12}",
            site,
            s.calls,
            s.items,
            s.elapsed.as_secs_f64() * 1e3,
            s.longest.as_secs_f64() * 1e3,
            s.parallel_calls,
            s.failed,
            s.plan_changes,
            s.profiled_ns
                .map_or("-".to_owned(), |ns| format!("{}", amorsize::Nanos(ns))),
        );
        assert_eq!(s.panicked, 0);
    }
    drop(by_function);
    println!("\n{}", amorsize::report());
}
