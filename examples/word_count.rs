//! Reductions without a `Vec`: a word count and a few totals over generated text.
//!
//! Run: `cargo run --release --example word_count` (about a second; `-- --quick` for a small
//! text). It generates 200 000 lines of eight words each (a vocabulary of 5 000, fixed seed)
//! and computes, each with an annotated function and checked against a plain loop:
//! - the longest line and the total length, with `par_<name>_reduce` (the results combined
//!   with an associative `op`, starting from `identity()`);
//! - the count of every word, with `par_<name>_fold` (each result folded into a `HashMap`,
//!   the maps of the parallel pieces merged), against rayon's idiomatic `fold` + `reduce`.
//!
//! Then the most frequent words and `amorsize::report()`.

use rayon::prelude::*;
use std::collections::HashMap;
use std::time::Instant;

/// One line's length and text, for the longest line.
#[amorsize::parallel]
fn measure(line: &str) -> (usize, String) {
    (line.len(), line.to_owned())
}

/// The longer of two lines; the earlier one on a tie, so that the result is the loop's.
fn longer(a: (usize, String), b: (usize, String)) -> (usize, String) {
    if b.0 > a.0 {
        b
    } else {
        a
    }
}

/// The characters of a line, summed.
#[amorsize::parallel]
fn chars(line: &str) -> usize {
    line.chars().count()
}

/// The words of a line, borrowed from it.
#[amorsize::parallel]
fn words<'a>(line: &'a str) -> std::str::SplitWhitespace<'a> {
    line.split_whitespace()
}

type Counts<'a> = HashMap<&'a str, u32>;

fn count<'a>(mut counts: Counts<'a>, words: std::str::SplitWhitespace<'a>) -> Counts<'a> {
    for w in words {
        *counts.entry(w).or_default() += 1;
    }
    counts
}

fn merge<'a>(mut a: Counts<'a>, b: Counts<'a>) -> Counts<'a> {
    if a.len() < b.len() {
        return merge(b, a);
    }
    for (w, n) in b {
        *a.entry(w).or_default() += n;
    }
    a
}

fn generate(n: usize) -> Vec<String> {
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

/// The median of `runs` timings of `f`, in milliseconds, and its last result.
fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        last = Some(f());
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], last.expect("at least one run"))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, runs) = if quick { (20_000, 3) } else { (200_000, 7) };
    let lines = generate(n);
    println!("{n} lines, {} words; medians of {runs} runs\n", n * 8);

    let (loop_ms, longest) = timed(runs, || {
        lines
            .iter()
            .map(|l| measure(l))
            .fold((0, String::new()), longer)
    });
    let (amorsize_ms, found) = timed(runs, || {
        par_measure_reduce(&lines, || (0, String::new()), longer)
    });
    assert_eq!(found, longest);
    println!(
        "longest line ({} chars), par_measure_reduce: loop {loop_ms:6.2} ms, amorsize {amorsize_ms:6.2} ms",
        longest.0
    );

    let (loop_ms, total) = timed(runs, || lines.iter().map(|l| chars(l)).sum::<usize>());
    let (amorsize_ms, found) = timed(runs, || par_chars_reduce(&lines, || 0, |a, b| a + b));
    assert_eq!(found, total);
    println!(
        "total characters ({total}), par_chars_reduce: loop {loop_ms:6.2} ms, amorsize {amorsize_ms:6.2} ms"
    );

    let (loop_ms, expected) = timed(runs, || {
        lines.iter().map(|l| words(l)).fold(Counts::new(), count)
    });
    let (rayon_ms, by_rayon) = timed(runs, || {
        lines
            .par_iter()
            .fold(Counts::new, |c, l| count(c, words(l)))
            .reduce(Counts::new, merge)
    });
    let (amorsize_ms, counts) = timed(runs, || par_words_fold(&lines, Counts::new, count, merge));
    assert_eq!(counts, expected);
    assert_eq!(by_rayon, expected);
    println!(
        "word count ({} distinct), par_words_fold: loop {loop_ms:6.2} ms, rayon fold + reduce {rayon_ms:6.2} ms, amorsize {amorsize_ms:6.2} ms",
        counts.len()
    );

    let mut top: Vec<(&str, u32)> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = top
        .iter()
        .take(5)
        .map(|(w, c)| format!("{w} ×{c}"))
        .collect();
    println!("most frequent: {}", shown.join(", "));

    println!("\n{}", amorsize::report());
}
