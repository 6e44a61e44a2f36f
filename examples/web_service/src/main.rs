//! A real HTTP service that scores batches of records, and a real client that loads it.
//!
//! Run: `cargo run --release -p web_service` (about a minute), or `-- --quick` (a few
//! seconds; what CI runs). `--rounds N` and `--connections N` change the full run's load.
//! The program:
//! 1. starts an axum server on tokio (two worker threads) on a free port of 127.0.0.1, with a
//!    `GET /health` endpoint and five `POST /score/<variant>` endpoints that score a JSON batch
//!    of records with the same annotated function, four ways, and a fifth for reference:
//!    - `serial`: a loop in the handler;
//!    - `rayon`: `par_iter()` in the handler;
//!    - `blocking`: `tokio::task::spawn_blocking` and a loop;
//!    - `async`: `par_score_async(records).await` (tuned; never blocks the executor);
//!    - `yielding`: the loop in the handler, written to yield to the executor before its
//!      time since the last yield would pass `amorsize::future::SLICE` (50 µs), the bound
//!      `par_score_async`'s slices keep: what that bound costs a hand-written loop;
//! 2. drives the variants in interleaved rounds (each round runs every variant once, in an
//!    order rotated from round to round) with hyper's HTTP/1.1 client from several concurrent
//!    connections (mostly small batches, some large), for a bounded number of requests,
//!    while `GET /health` is asked every 5 ms, on a schedule, each time on a new connection:
//!    the stall other requests see;
//! 3. prints, per variant, the median of the rounds' requests per second (and their range),
//!    the program's CPU time per request (on Linux), the latency of the batches (p50, p99,
//!    max over all rounds) and of the health checks, then shuts the server down.
//!
//! All traffic is on loopback, bounded in count and time.

use amorsize::future::SLICE;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// One record to score.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Record {
    pub id: u64,
    pub text: String,
}

/// A batch's scores.
#[derive(Debug, Deserialize, Serialize)]
struct Scores {
    scores: Vec<u64>,
}

/// The CPU-heavy part: tens of µs per record.
#[amorsize::parallel]
pub fn score(record: &Record) -> u64 {
    let mut h = record.id ^ 0x9E37_79B9_7F4A_7C15;
    for round in 0..120u64 {
        for b in record.text.bytes() {
            h = (h ^ u64::from(b) ^ round).wrapping_mul(0x100_0000_01B3);
        }
    }
    h
}

async fn serial(Json(records): Json<Vec<Record>>) -> Json<Scores> {
    Json(Scores {
        scores: records.iter().map(score).collect(),
    })
}

async fn in_rayon(Json(records): Json<Vec<Record>>) -> Json<Scores> {
    Json(Scores {
        scores: records.par_iter().map(score).collect(),
    })
}

async fn blocking(Json(records): Json<Vec<Record>>) -> Json<Scores> {
    let scores = tokio::task::spawn_blocking(move || records.iter().map(score).collect())
        .await
        .expect("the scoring task");
    Json(Scores { scores })
}

async fn amorsize_async(Json(records): Json<Vec<Record>>) -> Json<Scores> {
    Json(Scores {
        scores: par_score_async(records).await,
    })
}

/// The loop in the handler, yielding to the executor whenever the next record would take it
/// past [`SLICE`] since the last yield (judged by the mean of the records since then).
async fn yielding(Json(records): Json<Vec<Record>>) -> Json<Scores> {
    let mut scores = Vec::with_capacity(records.len());
    let mut since = Instant::now();
    let mut ran: u32 = 0;
    for (i, record) in records.iter().enumerate() {
        scores.push(score(record));
        ran += 1;
        let spent = since.elapsed();
        if spent + spent / ran > SLICE && i + 1 < records.len() {
            tokio::task::yield_now().await;
            since = Instant::now();
            ran = 0;
        }
    }
    Json(Scores { scores })
}

async fn health(State(started): State<Arc<Instant>>) -> String {
    format!("ok {}", started.elapsed().as_millis())
}

/// How often the health endpoint is checked during a load.
const HEALTH_EVERY: Duration = Duration::from_millis(5);

/// The load: how many connections, requests and records.
#[derive(Clone, Copy)]
struct Load {
    connections: usize,
    requests_per_connection: usize,
    small: usize,
    large: usize,
    /// One request in this many is large.
    large_every: usize,
    /// No variant runs longer than this.
    limit: Duration,
}

fn records(n: usize, seed: u64) -> Vec<Record> {
    (0..n as u64)
        .map(|i| Record {
            id: seed * 100_000 + i,
            text: format!("record {i} of batch {seed}: lorem ipsum dolor sit amet, consectetur"),
        })
        .collect()
}

/// One HTTP/1.1 connection to the server, kept alive.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        Connection { sender }
    }

    /// Sends a request and returns the body once read whole.
    async fn send(&mut self, method: &str, path: &str, body: Bytes) -> Bytes {
        self.sender.ready().await.expect("connection ready");
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(Full::new(body))
            .expect("a request");
        let response = self.sender.send_request(request).await.expect("a response");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response
            .into_body()
            .collect()
            .await
            .expect("the body")
            .to_bytes()
    }
}

/// What one run of a variant measured.
struct Measured {
    requests: usize,
    seconds: f64,
    /// The CPU time the whole program (server, client and prober) used meanwhile.
    cpu: Option<Duration>,
    latencies: Vec<Duration>,
    health: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Drives `variant` with `load` and probes the health endpoint meanwhile.
async fn drive(addr: SocketAddr, variant: &'static str, load: Load) -> Measured {
    let small_records = records(load.small, 1);
    let small = Bytes::from(serde_json::to_vec(&small_records).expect("json"));
    let large = Bytes::from(serde_json::to_vec(&records(load.large, 2)).expect("json"));
    let expected_small = small_records.iter().map(score).collect::<Vec<_>>();
    let path = format!("/score/{variant}");
    let start = Instant::now();
    let cpu_before = process_cpu();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Health checks on a fixed schedule, each on a connection of its own (as a load
    // balancer's), timed from when it was due: a stalled server delays them all, and a slow
    // answer does not hold the next check back.
    let prober = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut checks = Vec::new();
            let mut due = tokio::time::Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep_until(due).await;
                checks.push(tokio::spawn(async move {
                    let mut connection = Connection::open(addr).await;
                    connection.send("GET", "/health", Bytes::new()).await;
                    due.elapsed()
                }));
                due += HEALTH_EVERY;
            }
            let mut latencies = Vec::new();
            for check in checks {
                latencies.push(check.await.expect("a health check"));
            }
            latencies
        })
    };
    let clients: Vec<_> = (0..load.connections)
        .map(|c| {
            let (small, large, path) = (small.clone(), large.clone(), path.clone());
            let expected_small = expected_small.clone();
            tokio::spawn(async move {
                let mut connection = Connection::open(addr).await;
                let mut latencies = Vec::new();
                for r in 0..load.requests_per_connection {
                    if start.elapsed() > load.limit {
                        break;
                    }
                    let is_large = (r + c) % load.large_every == 0;
                    let body = if is_large {
                        large.clone()
                    } else {
                        small.clone()
                    };
                    let sent = Instant::now();
                    let reply = connection.send("POST", &path, body).await;
                    latencies.push(sent.elapsed());
                    let scores: Scores = serde_json::from_slice(&reply).expect("scores");
                    if !is_large {
                        assert_eq!(scores.scores, expected_small, "wrong scores");
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.expect("a client"));
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let health = prober.await.expect("the prober");
    Measured {
        requests: latencies.len(),
        seconds,
        cpu,
        latencies,
        health,
    }
}

/// The least CPU time over which a CPU time per request is shown: 200 ticks of 10 ms, so
/// that a tick is at most 0.5 % of it.
const CPU_MEASURED_FROM: Duration = Duration::from_secs(2);

/// The CPU time this process has used (all its threads, user and system), where the OS
/// tells it: on Linux, from `/proc/self/stat`, in clock ticks of 10 ms (`USER_HZ` is 100).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces,
    // start at the third: `utime` and `stime` are the 14th and 15th.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    let user: u64 = fields.nth(11)?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// What the command line asks for.
struct Args {
    quick: bool,
    rounds: Option<usize>,
    connections: Option<usize>,
}

fn args() -> Args {
    let mut args = Args {
        quick: false,
        rounds: None,
        connections: None,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let mut number = |flag: &str| -> usize {
            words
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| usage(&format!("{flag} takes a positive number")))
        };
        match word.as_str() {
            "--quick" => args.quick = true,
            "--rounds" => args.rounds = Some(number("--rounds")),
            "--connections" => args.connections = Some(number("--connections")),
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    args
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "web_service: {problem}\nusage: web_service [--quick] [--rounds N] [--connections N]"
    );
    std::process::exit(2)
}

/// The median of `sorted` (not empty).
fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The variants, in the table's order: the four, then the reference.
const VARIANTS: [&str; 5] = ["serial", "rayon", "blocking", "async", "yielding"];

/// Drives every variant with `load` in `rounds` interleaved rounds and prints their table.
fn measure(client: &tokio::runtime::Runtime, addr: SocketAddr, load: Load, rounds: usize) {
    println!(
        "{rounds} round(s) of every variant, each {} connection(s) × {} requests (1 in {} of {} records, the rest of {}), health checked every {} ms:\n",
        load.connections,
        load.requests_per_connection,
        load.large_every,
        load.large,
        load.small,
        HEALTH_EVERY.as_millis()
    );
    let mut results: Vec<Vec<Measured>> = VARIANTS.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..VARIANTS.len() {
            let v = (round + k) % VARIANTS.len();
            results[v].push(client.block_on(drive(addr, VARIANTS[v], load)));
        }
    }
    println!(
        "{:<10} {:>6} {:>8} {:>15} {:>9}  {:>8} {:>8} {:>8}   {:>8} {:>8} {:>8}",
        "variant",
        "req",
        "req/s",
        "rounds' range",
        "CPU/req",
        "p50",
        "p99",
        "max",
        "health50",
        "health99",
        "healthmax"
    );
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    let mut medians = Vec::new();
    for (variant, measured) in VARIANTS.iter().zip(&results) {
        let mut rates: Vec<f64> = measured
            .iter()
            .map(|m| m.requests as f64 / m.seconds)
            .collect();
        let mut latencies: Vec<Duration> =
            measured.iter().flat_map(|m| m.latencies.clone()).collect();
        let mut health: Vec<Duration> = measured.iter().flat_map(|m| m.health.clone()).collect();
        latencies.sort();
        health.sort();
        rates.sort_by(f64::total_cmp);
        let rate = median(&rates);
        medians.push(rate);
        let cpu: Option<Duration> = measured.iter().map(|m| m.cpu).sum();
        let cpu_per_request = match cpu {
            Some(cpu) if cpu >= CPU_MEASURED_FROM => format!(
                "{:.2} ms",
                cpu.as_secs_f64() * 1e3 / latencies.len().max(1) as f64
            ),
            _ => "-".to_string(),
        };
        println!(
            "{:<10} {:>6} {:>8.1} {:>15} {:>9}  {:>8} {:>8} {:>8}   {:>8} {:>8} {:>8}",
            variant,
            latencies.len(),
            rate,
            format!("{:.0}-{:.0}", rates[0], rates[rates.len() - 1]),
            cpu_per_request,
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            ms(percentile(&latencies, 1.0)),
            ms(percentile(&health, 0.5)),
            ms(percentile(&health, 0.99)),
            ms(percentile(&health, 1.0)),
        );
    }
    println!(
        "\nCPU/req: the whole program's CPU time (server, client and prober) per request, \
         on Linux; `-` where less than {} s of it was measured (it is counted in 10 ms ticks).",
        CPU_MEASURED_FROM.as_secs()
    );
    let best_other = medians[..3].iter().copied().fold(f64::MIN, f64::max);
    println!(
        "\nasync's median throughput: {:.3}x the best other variant's; {:.3}x the loop that \
         yields as often (`yielding`)\n",
        medians[3] / best_other,
        medians[3] / medians[4]
    );
}

fn main() {
    let args = args();
    // (load, rounds) pairs: a short one for CI; for the full run, a load that keeps both
    // cores busy, then one connection at a time, where a parallel map has idle cores to use.
    let batches = Load {
        connections: 8,
        requests_per_connection: 100,
        small: 20,
        large: 2_000,
        large_every: 10,
        limit: Duration::from_secs(30),
    };
    let mut loads = if args.quick {
        let quick = Load {
            connections: 4,
            requests_per_connection: 25,
            large: 1_000,
            limit: Duration::from_secs(10),
            ..batches
        };
        vec![(quick, 1)]
    } else {
        let one = Load {
            connections: 1,
            requests_per_connection: 100,
            ..batches
        };
        vec![(batches, 5), (one, 3)]
    };
    if let Some(connections) = args.connections {
        loads.truncate(1);
        loads[0].0.connections = connections;
    }
    if let Some(rounds) = args.rounds {
        for (_, r) in &mut loads {
            *r = rounds;
        }
    }

    // The server: tokio with two worker threads, as on a 2-core host.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the server's runtime");
    let started = Arc::new(Instant::now());
    let app = Router::new()
        .route("/health", get(health))
        .route("/score/serial", post(serial))
        .route("/score/rayon", post(in_rayon))
        .route("/score/blocking", post(blocking))
        .route("/score/async", post(amorsize_async))
        .route("/score/yielding", post(yielding))
        .with_state(started);
    let listener = server
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("a free port on loopback");
    let addr = listener.local_addr().expect("the address");
    let (shutdown, shut) = tokio::sync::oneshot::channel::<()>();
    let serving = server.spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = shut.await;
            })
            .await
    });
    println!("serving on http://{addr}\n");

    // The client: a runtime of its own, on its own thread.
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the client's runtime");
    for variant in VARIANTS {
        // Warm-up: a few requests (amorsize's first call profiles; connections open).
        let warm_up = Load {
            connections: 1,
            requests_per_connection: 3,
            large_every: 1,
            ..loads[0].0
        };
        client.block_on(drive(addr, variant, warm_up));
    }
    for (load, rounds) in loads {
        measure(&client, addr, load, rounds);
    }

    let _ = shutdown.send(());
    server
        .block_on(serving)
        .expect("the server task")
        .expect("the server");
    println!("server shut down; {}", amorsize::report());
}
