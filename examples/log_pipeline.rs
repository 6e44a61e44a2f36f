//! Streaming a log file larger than you would want in memory through two annotated stages.
//!
//! Run: `cargo run --release --example log_pipeline` (a ~1 GB log is generated once under
//! `target/amorsize/`, then each variant reads it; a minute or so in all), or `-- --quick`
//! (~20 MB; `-- --mb N` for another size). Each line is parsed (`parse`) and classified (`classify`), and the results are
//! aggregated per service and class. Four variants, each in a process of its own so that its
//! peak memory (`VmHWM` from `/proc/self/status`) is its own:
//! - **loop**: `lines.map(parse).map(classify)`, one thread;
//! - **stream**: `par_classify_iter(par_parse_iter(lines).flatten())`: in order, in bounded
//!   memory, reading overlapped with mapping;
//! - **collect**: read every line into a `Vec`, then `par_parse` and `par_classify`;
//! - **par_bridge**: rayon's `lines.par_bridge()` (order lost; the aggregate does not care).
//!
//! The aggregates are checked equal; the table shows time, speedup over the loop and peak
//! memory. The stream's memory does not grow with the file; the collecting variant's does.

use rayon::prelude::*;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One parsed log line: what the aggregate needs, without allocating.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    service: u8,
    level: Level,
    status: u16,
    latency_ms: u32,
    /// The path or message holds a sign of an attack (`../`, `<script`, …).
    suspicious: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// What a line means for the on-call engineer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Routine,
    Slow,
    ClientError,
    ServerError,
    Security,
}

/// Signs of an attack, searched for in every path and message, ignoring case.
const SUSPICIOUS: [&[u8]; 6] = [
    b"../",
    b"<script",
    b"' or 1=1",
    b"/etc/passwd",
    b"%00",
    b"union select",
];

/// Whether `haystack` contains `needle` (lowercase ASCII), ignoring ASCII case.
fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| {
        w.iter()
            .zip(needle)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

/// Stage 1: a line such as
/// `2026-11-29T05:12:33.123Z WARN service=api-7 status=200 latency_ms=123 path=/v1/items/42 msg="…"`.
#[amorsize::parallel]
pub fn parse(line: &str) -> Option<Entry> {
    let mut parts = line.splitn(7, ' ');
    let _timestamp = parts.next()?;
    let level = match parts.next()? {
        "DEBUG" => Level::Debug,
        "INFO" => Level::Info,
        "WARN" => Level::Warn,
        "ERROR" => Level::Error,
        _ => return None,
    };
    fn field<'a>(part: Option<&'a str>, key: &str) -> Option<&'a str> {
        part?.strip_prefix(key)?.strip_prefix('=')
    }
    let service = field(parts.next(), "service")?
        .strip_prefix("api-")?
        .parse()
        .ok()?;
    let status = field(parts.next(), "status")?.parse().ok()?;
    let latency_ms = field(parts.next(), "latency_ms")?.parse().ok()?;
    let path = field(parts.next(), "path")?;
    let message = parts.next()?.strip_prefix("msg=\"")?.strip_suffix('"')?;
    let suspicious = SUSPICIOUS.iter().any(|sign| {
        contains_ignore_case(path.as_bytes(), sign)
            || contains_ignore_case(message.as_bytes(), sign)
    });
    Some(Entry {
        service,
        level,
        status,
        latency_ms,
        suspicious,
    })
}

/// Stage 2: the line's class, from what parsing found, its status and its latency.
#[amorsize::parallel]
pub fn classify(entry: &Entry) -> (u8, Class, u32) {
    let class = if entry.suspicious {
        Class::Security
    } else if entry.status >= 500 || entry.level == Level::Error {
        Class::ServerError
    } else if entry.status >= 400 {
        Class::ClientError
    } else if entry.latency_ms > 800 {
        Class::Slow
    } else {
        Class::Routine
    };
    (entry.service, class, entry.latency_ms)
}

/// Lines per service and class, and their summed latency.
type Aggregate = BTreeMap<(u8, Class), (u64, u64)>;

fn add(mut agg: Aggregate, (service, class, latency): (u8, Class, u32)) -> Aggregate {
    let slot = agg.entry((service, class)).or_default();
    slot.0 += 1;
    slot.1 += u64::from(latency);
    agg
}

fn merge(mut a: Aggregate, b: Aggregate) -> Aggregate {
    for (key, (n, ms)) in b {
        let slot = a.entry(key).or_default();
        slot.0 += n;
        slot.1 += ms;
    }
    a
}

/// Writes `bytes` of generated log lines to `path` (fixed seed), unless it is there already.
fn generate(path: &Path, bytes: u64) -> std::io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() >= bytes) {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().expect("a directory"))?;
    let tmp = path.with_extension("partial");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const WORDS: [&str; 12] = [
        "request",
        "served",
        "cache",
        "miss",
        "upstream",
        "retry",
        "timeout",
        "user",
        "session",
        "token",
        "refreshed",
        "ok",
    ];
    let mut written = 0u64;
    let mut line = String::new();
    while written < bytes {
        line.clear();
        let r = next();
        let level = ["DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR"][(r % 6) as usize];
        let status = [200, 200, 200, 201, 204, 304, 400, 404, 500, 503][(r >> 8) as usize % 10];
        let latency = (r >> 16) % 1_000;
        let path = if r % 997 == 0 {
            "/v1/files/../../etc/passwd".to_owned()
        } else {
            format!("/v1/items/{}", (r >> 24) % 100_000)
        };
        let words: Vec<&str> = (0..12).map(|_| WORDS[(next() % 12) as usize]).collect();
        use std::fmt::Write as _;
        let _ = writeln!(
            line,
            "2026-11-29T05:{:02}:{:02}.{:03}Z {level} service=api-{} status={status} latency_ms={latency} path={path} msg=\"{}\"",
            (r >> 32) % 60,
            (r >> 40) % 60,
            (r >> 48) % 1000,
            (r >> 12) % 8,
            words.join(" ")
        );
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(tmp, path)
}

fn lines(path: &Path) -> impl Iterator<Item = String> {
    let file = File::open(path).expect("the generated log");
    BufReader::with_capacity(1 << 20, file)
        .lines()
        .map_while(Result::ok)
}

/// Runs one variant over the file and returns its aggregate.
fn run_variant(variant: &str, path: &Path) -> Aggregate {
    match variant {
        "loop" => lines(path)
            .filter_map(|l| parse(&l))
            .map(|e| classify(&e))
            .fold(Aggregate::new(), add),
        "stream" => {
            par_classify_iter(par_parse_iter(lines(path)).flatten()).fold(Aggregate::new(), add)
        }
        "collect" => {
            let all: Vec<String> = lines(path).collect();
            let entries: Vec<Entry> = par_parse(&all).into_iter().flatten().collect();
            par_classify(&entries)
                .into_iter()
                .fold(Aggregate::new(), add)
        }
        "par_bridge" => lines(path)
            .par_bridge()
            .filter_map(|l| parse(&l))
            .map(|e| classify(&e))
            .fold(Aggregate::new, add)
            .reduce(Aggregate::new, merge),
        other => panic!("unknown variant {other}"),
    }
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // A child process runs one variant and prints its time, peak memory and a checksum.
    if let Some(i) = args.iter().position(|a| a == "--variant") {
        let (variant, path) = (&args[i + 1], PathBuf::from(&args[i + 2]));
        let start = Instant::now();
        let agg = run_variant(variant, &path);
        let secs = start.elapsed().as_secs_f64();
        let lines: u64 = agg.values().map(|(n, _)| n).sum();
        let latency: u64 = agg.values().map(|(_, ms)| ms).sum();
        println!("{secs} {} {lines} {latency} {}", peak_rss_kb(), agg.len());
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let mb: u64 = args
        .iter()
        .position(|a| a == "--mb")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(if quick { 20 } else { 1024 });
    let bytes = mb << 20;
    let path = PathBuf::from(format!(
        "target/amorsize/log_pipeline_{}mb.log",
        bytes >> 20
    ));
    let start = Instant::now();
    generate(&path, bytes).expect("the log is written");
    println!(
        "{} ({} MB; ready in {:.1} s)\n",
        path.display(),
        bytes >> 20,
        start.elapsed().as_secs_f64()
    );
    println!(
        "{:<12} {:>9} {:>8} {:>10}  lines, summed latency",
        "variant", "time", "speedup", "peak RSS"
    );
    // Rounds of the four variants, in turn, so that the machine's moods hit them alike;
    // medians.
    const VARIANTS: [&str; 4] = ["loop", "stream", "collect", "par_bridge"];
    let rounds = if quick { 1 } else { 3 };
    let mut secs: [Vec<f64>; 4] = Default::default();
    let mut rss_kb: [Vec<u64>; 4] = Default::default();
    let mut reference: Option<String> = None;
    for _ in 0..rounds {
        for (k, variant) in VARIANTS.into_iter().enumerate() {
            let out = Command::new(&args[0])
                .args(["--variant", variant, path.to_str().expect("a UTF-8 path")])
                .output()
                .expect("the variant runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let fields: Vec<&str> = text.split_whitespace().collect();
            secs[k].push(fields[0].parse().expect("seconds"));
            rss_kb[k].push(fields[1].parse().expect("kB"));
            let summary = fields[2..].join(" ");
            match &reference {
                None => reference = Some(summary),
                Some(expected) => {
                    assert_eq!(&summary, expected, "{variant} aggregated differently")
                }
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let loop_secs = median(&mut secs[0]);
    for (k, variant) in VARIANTS.into_iter().enumerate() {
        let time = median(&mut secs[k]);
        rss_kb[k].sort_unstable();
        println!(
            "{variant:<12} {:>7.2} s {:>7.2}× {:>7.1} MB  {}",
            time,
            loop_secs / time,
            rss_kb[k][rss_kb[k].len() / 2] as f64 / 1024.0,
            reference.as_deref().unwrap_or("")
        );
    }
    let rounds_said = if rounds == 1 {
        "one round".to_owned()
    } else {
        format!("medians of {rounds} rounds, the variants in turn")
    };
    println!("\n({rounds_said}; speedup over the loop; peak RSS is each variant's own process)");
}
