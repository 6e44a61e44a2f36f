//! Speedup charts: where parallelism pays, and where amorsize switches it on.
//!
//! Run: `cargo run --release --example speedup_chart` (about half a minute; `-- --quick`
//! for a few seconds). For three per-item costs (~10 ns, ~1 µs, ~50 µs) it sweeps the input
//! length and times a plain loop, rayon's default `par_iter` and the amorsize companion
//! (medians of shuffled, interleaved runs), prints a table and writes one SVG chart per
//! cost to `target/amorsize/` — speedup over the loop against n, one line per strategy, and
//! a vertical line where amorsize's plan turns parallel. Expect rayon below 1.0 on the left
//! of each chart, above it on the right, and amorsize on the better of the two.

#[path = "support/chart.rs"]
mod chart;
#[path = "support/sweep.rs"]
mod sweep;

use amorsize::Nanos;
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let size = sweep::Size::from_args();
    let sweeps = sweep::speedup_sweep(size);
    println!(
        "{:<16} {:>9} {:>11} {:>11} {:>11} {:>9} {:>9}  amorsize plan",
        "per item", "n", "loop", "rayon", "amorsize", "rayon ×", "amors. ×"
    );
    for s in &sweeps {
        for p in &s.points {
            println!(
                "{:<16} {:>9} {:>11} {:>11} {:>11} {:>8.2}× {:>8.2}×  {}",
                s.label,
                p.n,
                Nanos(p.loop_ns).to_string(),
                Nanos(p.rayon_ns).to_string(),
                Nanos(p.amorsize_ns).to_string(),
                p.loop_ns / p.rayon_ns,
                p.loop_ns / p.amorsize_ns,
                if p.parallel { "parallel" } else { "loop" }
            );
        }
    }
    println!("(× = speedup over the plain loop; above 1 is faster)\n");
    for s in &sweeps {
        let (series, markers) = s.chart_data();
        chart::write_to_output(
            &format!("speedup_{}.svg", s.site),
            &chart::Chart {
                title: &format!("Speedup over a plain loop, {}", s.label),
                x_label: "items per call (n)",
                y_label: "speedup over the loop",
                log_x: true,
                series: &series,
                markers: &markers,
            },
        )?;
    }
    Ok(())
}
