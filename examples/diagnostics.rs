//! Diagnostics: reading `amorsize::report()` for a few workloads.
//!
//! Run: `cargo run --release --example diagnostics` (a few seconds; `-- --quick` is the same
//! run, kept for CI symmetry). A ten-line logger at the top shows the debug lines amorsize
//! sends through the `log` facade (machine measured, a site profiled or re-tuned); in your own
//! program, your usual logger shows them once debug is enabled for the target `amorsize`.
//!
//! Expect: `checksum` (nanoseconds per item) stays a plain loop on short calls; `render`
//! (allocation per item) goes parallel on long calls if its items do not slow each other
//! down in parallel, and back to the loop if they do; `simulate` (half a millisecond) goes
//! parallel even for a handful of items; `audit` is pinned to the loop by its attribute.
//! Each row ends with the sentence saying why. A second report, taken with the loop forced
//! on the whole process (`set_mode`, as `AMORSIZE=serial` would), names the force.

use std::hint::black_box;

/// Prints every `amorsize` debug record to stderr.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.target() == "amorsize"
    }
    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            eprintln!("[{} {}] {}", record.level(), record.target(), record.args());
        }
    }
    fn flush(&self) {}
}

#[amorsize::parallel]
fn checksum(x: &u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7
}

#[amorsize::parallel]
fn render(row: &u32) -> String {
    (0..40)
        .map(|i| char::from(b'a' + ((row + i) % 26) as u8))
        .collect()
}

#[amorsize::parallel]
fn simulate(seed: u64) -> u64 {
    (0..400_000u64).fold(seed, |a, i| black_box(a.rotate_left(9) ^ i).wrapping_mul(5))
}

/// Pinned to the loop (say, it writes to a log in order): whatever the cost, every call is a
/// plain loop, and the report says it is the pin.
#[amorsize::parallel(mode = "serial")]
fn audit(x: &u64) -> u64 {
    (0..2_000u64).fold(*x, |a, i| black_box(a ^ i).rotate_left(3))
}

fn main() {
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    let ids: Vec<u64> = (0..1_000).collect();
    let rows: Vec<u32> = (0..50_000).collect();

    black_box(par_checksum(&ids));
    black_box(par_render(&rows[..100]));
    for _ in 0..4 {
        black_box(par_render(&rows));
    }
    black_box(par_simulate(0..8u64));
    black_box(par_audit(&ids));

    let report = amorsize::report();
    println!("{report}");

    println!("The same facts as data:");
    for site in &report.sites {
        println!(
            "  {:<24} per item {:>10}  cause {:<36}  plan for 10 items: {:<40}  plan for 1M items: {:?}",
            site.name,
            site.per_item.map_or("-".into(), |c| c.to_string()),
            format!("{:?}", site.cause),
            format!("{:?}", site.plan_for(10, &report.machine)),
            site.plan_for(1_000_000, &report.machine),
        );
    }

    // The loop forced on the whole process, as `AMORSIZE=serial` would: every reason says so.
    amorsize::set_mode(amorsize::Mode::Serial);
    black_box(par_simulate(0..8u64));
    println!(
        "\nWith `amorsize::set_mode(Mode::Serial)`:\n{}",
        amorsize::report()
    );
    amorsize::set_mode(amorsize::Mode::Auto);
}
