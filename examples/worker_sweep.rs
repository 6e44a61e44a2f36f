//! Worker sweep: how thread count and `with_min_len` change one workload's time, and where
//! amorsize's own choice lands.
//!
//! Run: `cargo run --release --example worker_sweep` (about ten seconds; `-- --quick` for a
//! second or two). The workload is ~1 µs per item over 20 000 items. For 1..=available threads
//! (a rayon pool of each size) it times every split length in a sweep plus rayon's default,
//! prints the table with amorsize's choice marked `◀`, and writes
//! `target/amorsize/worker_sweep.svg`: time against `with_min_len`, one line per thread
//! count, with amorsize's choice as a vertical line. Expect more threads to help until
//! pieces get too few to balance (the right end of each line).

#[path = "support/chart.rs"]
mod chart;
#[path = "support/sweep.rs"]
mod sweep;

use amorsize::Nanos;
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let size = sweep::Size::from_args();
    let sweep = sweep::worker_sweep(size)?;
    println!("cost_1us over {} items; median times\n", sweep.n);
    print!("{:>10}", "min_len");
    for t in &sweep.threads {
        print!(
            " {:>12}",
            format!("{t} thread{}", if *t == 1 { "" } else { "s" })
        );
    }
    println!();
    for (m_index, m) in sweep.min_lens.iter().enumerate() {
        print!("{m:>10}");
        for (t_index, t) in sweep.threads.iter().enumerate() {
            let mark = if sweep.amorsize_choice == Some((*t, *m)) {
                " ◀"
            } else {
                "  "
            };
            print!(
                " {:>10}{mark}",
                Nanos(sweep.times_ns[t_index][m_index]).to_string()
            );
        }
        println!();
    }
    print!("{:>10}", "default");
    for d in &sweep.default_ns {
        print!(" {:>10}  ", Nanos(*d).to_string());
    }
    println!();
    match sweep.amorsize_choice {
        Some((t, m)) => println!(
            "\n◀ amorsize's choice: {t} threads, min_len {m} ({} measured on the global pool; rayon's \
             adaptive splitting may still cut pieces finer than min_len when threads steal)",
            Nanos(sweep.amorsize_ns)
        ),
        None => println!("\namorsize's choice: the plain loop ({})", Nanos(sweep.amorsize_ns)),
    }

    let (series, markers) = sweep.chart_data();
    chart::write_to_output(
        "worker_sweep.svg",
        &chart::Chart {
            title: &format!("cost_1us × {} items: time by threads and min_len", sweep.n),
            x_label: "with_min_len (items per piece, at least)",
            y_label: "time (ms)",
            log_x: true,
            series: &series,
            markers: &markers,
        },
    )?;
    Ok(())
}
