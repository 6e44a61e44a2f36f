//! Streams across item costs: where a loop one by one beats batches in parallel, and where
//! it does not.
//!
//! Run: `cargo run --release --example stream_costs` (about ten seconds; `-- --quick` for
//! one). For functions of about 0.5, 3, 5, 40 and 270 ns per item, it maps a generated range
//! with `par_<name>_iter` and with a plain `map`, read two ways: a `for` loop (each result
//! through `next()`) and `fold`. The four are timed in turn, five rounds; it prints the
//! medians and the stream's time over the loop's (under 1: the stream is faster). Then the
//! same for many short streams (1 to 1 000 items each, ranges, whose length is known) of the
//! 0.5 ns and 40 ns functions, in time per stream.

use std::hint::black_box;
use std::time::Instant;

/// `rounds` rounds of `x`'s hash: a few ns per round.
fn spin(x: u64, rounds: u64) -> u64 {
    (0..rounds).fold(x, |h, r| (h ^ r).wrapping_mul(0x100_0000_01B3))
}

#[amorsize::parallel]
fn mix(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(7)
}

/// Annotated functions of `rounds` rounds of [`spin`] each. (Companions made inside a
/// `macro_rules!` expansion get dead-code warnings for those left unused, which the
/// forwarded `allow` silences; made directly in a file they get none.)
macro_rules! spinners {
    ($($name:ident: $rounds:literal),*) => {$(
        #[allow(dead_code)]
        #[amorsize::parallel]
        fn $name(x: u64) -> u64 {
            spin(x, black_box($rounds))
        }
    )*};
}

spinners!(spin4: 4, spin16: 16, spin64: 64, spin256: 256);

/// The median of `times` (seconds).
fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Times `run` once, in seconds, checking its result against `expected`.
fn timed(expected: u64, run: impl FnOnce() -> u64) -> f64 {
    let start = Instant::now();
    let got = run();
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(got, expected, "a stream's result differs from the loop's");
    seconds
}

/// One row: `f` over `0..n`, as a stream (`stream`) and as a plain `map`, each read by a
/// `for` loop and by `fold`, in turn for `rounds` rounds.
fn row<I: Iterator<Item = u64>>(
    name: &str,
    n: u64,
    rounds: usize,
    f: fn(u64) -> u64,
    stream: impl Fn(std::ops::Range<u64>) -> I,
) {
    let add = |sum: u64, x: u64| sum.wrapping_add(black_box(x));
    let expected = (0..n).map(f).fold(0, add);
    let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..rounds {
        t[0].push(timed(expected, || {
            let mut sum = 0;
            for x in (0..n).map(f) {
                sum = add(sum, x);
            }
            sum
        }));
        t[1].push(timed(expected, || {
            let mut sum = 0;
            for x in stream(0..n) {
                sum = add(sum, x);
            }
            sum
        }));
        t[2].push(timed(expected, || (0..n).map(f).fold(0, add)));
        t[3].push(timed(expected, || stream(0..n).fold(0, add)));
    }
    let [for_loop, for_stream, fold_loop, fold_stream] = t.map(median);
    println!(
        "{name:<8} {n:>9} {:>7.2} ns {:>9.2} ms {:>9.2} ms {:>6.2}x {:>9.2} ms {:>9.2} ms {:>6.2}x",
        fold_loop * 1e9 / n as f64,
        for_loop * 1e3,
        for_stream * 1e3,
        for_stream / for_loop,
        fold_loop * 1e3,
        fold_stream * 1e3,
        fold_stream / fold_loop,
    );
}

/// One row of short streams: `streams` streams of `f` over `0..n` each, as in [`row`]; the
/// times are per stream.
fn short_row<I: Iterator<Item = u64>>(
    name: &str,
    n: u64,
    streams: u64,
    rounds: usize,
    f: fn(u64) -> u64,
    stream: impl Fn(std::ops::Range<u64>) -> I,
) {
    let add = |sum: u64, x: u64| sum.wrapping_add(black_box(x));
    let each = (0..n).map(f).fold(0, add);
    let expected = (0..streams).fold(0, |sum: u64, _| sum.wrapping_add(each));
    let many = |one: &dyn Fn() -> u64| (0..streams).fold(0, |sum: u64, _| sum.wrapping_add(one()));
    let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..rounds {
        t[0].push(timed(expected, || {
            many(&|| {
                let mut sum = 0;
                for x in (0..black_box(n)).map(f) {
                    sum = add(sum, x);
                }
                sum
            })
        }));
        t[1].push(timed(expected, || {
            many(&|| {
                let mut sum = 0;
                for x in stream(0..black_box(n)) {
                    sum = add(sum, x);
                }
                sum
            })
        }));
        t[2].push(timed(expected, || {
            many(&|| (0..black_box(n)).map(f).fold(0, add))
        }));
        t[3].push(timed(expected, || {
            many(&|| stream(0..black_box(n)).fold(0, add))
        }));
    }
    let [for_loop, for_stream, fold_loop, fold_stream] =
        t.map(|times| median(times) * 1e9 / streams as f64);
    println!(
        "{name:<8} {n:>9} {for_loop:>9.1} ns {for_stream:>9.1} ns {:>6.2}x {fold_loop:>9.1} ns {fold_stream:>9.1} ns {:>6.2}x",
        for_stream / for_loop,
        fold_stream / fold_loop,
    );
}

fn main() {
    let (scale, rounds) = match std::env::args().nth(1).as_deref() {
        None => (1, 5),
        Some("--quick") => (20, 1),
        Some(other) => {
            eprintln!("unknown argument {other:?}; usage: stream_costs [--quick]");
            std::process::exit(2);
        }
    };
    println!(
        "{:<8} {:>9} {:>10} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7}",
        "fn", "items", "per item", "for: loop", "stream", "ratio", "fold: loop", "stream", "ratio"
    );
    row("mix", 20_000_000 / scale, rounds, mix, par_mix_iter);
    row("spin4", 10_000_000 / scale, rounds, spin4, par_spin4_iter);
    row("spin16", 5_000_000 / scale, rounds, spin16, par_spin16_iter);
    row("spin64", 1_250_000 / scale, rounds, spin64, par_spin64_iter);
    row(
        "spin256",
        312_500 / scale,
        rounds,
        spin256,
        par_spin256_iter,
    );
    println!(
        "\n(medians of {rounds} round(s), the four in turn; per item: the loop's fold; ratio: the stream's time over the loop's)"
    );
    println!(
        "\nshort streams, time per stream:\n{:<8} {:>9} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7}",
        "fn", "items", "for: loop", "stream", "ratio", "fold: loop", "stream", "ratio"
    );
    for n in [1, 10, 100, 1_000] {
        short_row("mix", n, 2_000_000 / n / scale, rounds, mix, par_mix_iter);
    }
    for n in [1, 10, 100, 1_000] {
        short_row(
            "spin64",
            n,
            200_000 / n / scale,
            rounds,
            spin64,
            par_spin64_iter,
        );
    }
}
