//! A transaction-processing batch: parse, validate, score for fraud, aggregate per account.
//!
//! Run: `cargo run --release --example transactions` (a few seconds; `-- --quick` for a
//! smaller batch). The input is generated with a fixed seed, so every run sees the same
//! 200 000 CSV records. Three stages are annotated with `#[amorsize::parallel]` and cost very
//! different amounts per record: parsing (~0.1–0.2 µs), validation (a few ns) and fraud
//! scoring against a small model (a few µs). Each stage gets its own decision; the output shows
//! each stage's time and throughput for a plain serial pipeline and for the amorsize one (the
//! results are checked equal), the riskiest accounts, and `amorsize::report()` with the reason
//! for each stage's plan. Expect validation to stay a loop and scoring to go parallel.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

/// One parsed record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: u64,
    pub account: u32,
    pub amount_cents: i64,
    pub merchant: String,
    pub country: [u8; 2],
    pub hour: u8,
}

/// Why a record was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reject {
    NonPositiveAmount,
    TooLarge,
    UnknownCountry,
}

/// A tiny fraud model: weights for hashed features.
pub struct Model {
    weights: Vec<f32>,
    known_countries: [[u8; 2]; 6],
}

/// Stage 1: parse a CSV line (`id,account,amount_cents,merchant,country,hour`).
#[amorsize::parallel]
pub fn parse(line: &str) -> Option<Record> {
    let mut fields = line.split(',');
    let id = fields.next()?.parse().ok()?;
    let account = fields.next()?.parse().ok()?;
    let amount_cents = fields.next()?.parse().ok()?;
    let merchant = fields.next()?.to_string();
    let country = fields.next()?.as_bytes().try_into().ok()?;
    let hour = fields.next()?.parse().ok()?;
    Some(Record {
        id,
        account,
        amount_cents,
        merchant,
        country,
        hour,
    })
}

/// Stage 2: cheap business rules.
#[amorsize::parallel]
pub fn validate(r: &Record, model: &Model) -> Result<(), Reject> {
    if r.amount_cents <= 0 {
        Err(Reject::NonPositiveAmount)
    } else if r.amount_cents > 5_000_000 {
        Err(Reject::TooLarge)
    } else if !model.known_countries.contains(&r.country) {
        Err(Reject::UnknownCountry)
    } else {
        Ok(())
    }
}

/// Stage 3: a fraud score in [0, 1] from hashed features (the expensive stage).
#[amorsize::parallel]
pub fn fraud_score(r: &Record, model: &Model) -> f32 {
    let mut z = -2.0f32;
    let features = [
        hash(r.merchant.as_bytes(), 1),
        hash(&r.country, 2),
        hash(&[r.hour], 3),
        hash(&r.amount_cents.to_le_bytes(), 4),
        hash(&r.account.to_le_bytes(), 5),
    ];
    // Pairwise feature crosses, as a real model would use, to give the stage its weight.
    for (i, a) in features.iter().enumerate() {
        for b in &features[i..] {
            let mut h = a ^ b.rotate_left(17);
            for _ in 0..24 {
                h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
                z += model.weights[(h % model.weights.len() as u64) as usize] * 0.05;
            }
        }
    }
    z += (r.amount_cents as f32 / 100_000.0).min(3.0);
    1.0 / (1.0 + (-z).exp())
}

fn hash(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed ^ 0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
    })
}

/// Per-account totals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub transactions: u32,
    pub total_cents: i64,
    pub flagged: u32,
    pub max_score: f32,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn generate(n: usize) -> Vec<String> {
    const MERCHANTS: [&str; 8] = [
        "grocer",
        "fuel",
        "airline",
        "casino",
        "books",
        "pharmacy",
        "electronics",
        "cafe",
    ];
    const COUNTRIES: [&str; 7] = ["US", "DE", "FR", "JP", "BR", "GB", "ZZ"];
    let mut rng = Rng(42);
    (0..n)
        .map(|id| {
            let account = rng.next() % 5_000;
            let amount = (rng.next() % 300_000) as i64 - 1_000 + (rng.next() % 97) as i64;
            let merchant = MERCHANTS[(rng.next() % 8) as usize];
            let country = COUNTRIES[(rng.next() % 7) as usize];
            let hour = rng.next() % 24;
            if rng.next() % 1000 == 0 {
                format!("{id},{account},not-a-number,{merchant},{country},{hour}")
            } else {
                format!("{id},{account},{amount},{merchant},{country},{hour}")
            }
        })
        .collect()
}

fn model() -> Model {
    let mut rng = Rng(7);
    Model {
        weights: (0..4096)
            .map(|_| (rng.next() % 2000) as f32 / 1000.0 - 1.0)
            .collect(),
        known_countries: [*b"US", *b"DE", *b"FR", *b"JP", *b"BR", *b"GB"],
    }
}

fn aggregate(
    records: &[Record],
    checks: &[Result<(), Reject>],
    scores: &[f32],
) -> HashMap<u32, Summary> {
    let mut accounts: HashMap<u32, Summary> = HashMap::new();
    for ((r, check), &score) in records.iter().zip(checks).zip(scores) {
        if check.is_err() {
            continue;
        }
        let s = accounts.entry(r.account).or_default();
        s.transactions += 1;
        s.total_cents += r.amount_cents;
        s.max_score = s.max_score.max(score);
        if score > 0.9 {
            s.flagged += 1;
        }
    }
    accounts
}

struct Timed<T> {
    value: T,
    seconds: f64,
}

fn timed<T>(run: impl FnOnce() -> T) -> Timed<T> {
    let start = Instant::now();
    let value = run();
    Timed {
        value,
        seconds: start.elapsed().as_secs_f64(),
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 20_000 } else { 200_000 };
    let lines = generate(n);
    let model = model();
    println!(
        "transactions: {n} generated CSV records (seed 42), {} rayon threads\n",
        rayon::current_num_threads()
    );

    // The plain serial pipeline, for reference.
    let s_parse = timed(|| lines.iter().map(|l| parse(l)).collect::<Vec<_>>());
    let records: Vec<Record> = s_parse.value.iter().flatten().cloned().collect();
    let s_validate = timed(|| {
        records
            .iter()
            .map(|r| validate(r, &model))
            .collect::<Vec<_>>()
    });
    let s_score = timed(|| {
        records
            .iter()
            .map(|r| fraud_score(r, &model))
            .collect::<Vec<_>>()
    });
    let serial_accounts = aggregate(&records, &s_validate.value, &s_score.value);

    // The same pipeline through the companions. The first batch teaches amorsize each
    // stage's cost; the second shows the steady state.
    let mut rows = Vec::new();
    let mut accounts = HashMap::new();
    for batch in ["first batch", "second batch"] {
        let a_parse = timed(|| par_parse(&lines));
        let parsed: Vec<Record> = a_parse.value.into_iter().flatten().collect();
        let a_validate = timed(|| par_validate(&parsed, &model));
        let a_score = timed(|| par_fraud_score(&parsed, &model));
        let agg = timed(|| aggregate(&parsed, &a_validate.value, &a_score.value));
        assert_eq!(parsed, records, "amorsize parsed differently");
        assert_eq!(a_validate.value, s_validate.value);
        assert_eq!(a_score.value, s_score.value);
        accounts = agg.value;
        rows.push((
            batch,
            a_parse.seconds,
            a_validate.seconds,
            a_score.seconds,
            agg.seconds,
        ));
    }
    assert_eq!(accounts, serial_accounts);
    black_box(&accounts);

    let rate =
        |count: usize, seconds: f64| format!("{:>7.2} M rec/s", count as f64 / seconds / 1e6);
    println!(
        "{:<14} {:>22} {:>22} {:>22}",
        "", "parse", "validate", "fraud score"
    );
    println!(
        "{:<14} {:>9.2} ms {} {:>9.2} ms {} {:>9.2} ms {}",
        "serial",
        s_parse.seconds * 1e3,
        rate(n, s_parse.seconds),
        s_validate.seconds * 1e3,
        rate(records.len(), s_validate.seconds),
        s_score.seconds * 1e3,
        rate(records.len(), s_score.seconds)
    );
    for (batch, p, v, s, _) in &rows {
        println!(
            "{:<14} {:>9.2} ms {} {:>9.2} ms {} {:>9.2} ms {}",
            format!("amorsize, {}", batch.split(' ').next().unwrap_or("")),
            p * 1e3,
            rate(n, *p),
            v * 1e3,
            rate(records.len(), *v),
            s * 1e3,
            rate(records.len(), *s)
        );
    }
    let rejected = s_validate.value.iter().filter(|c| c.is_err()).count();
    println!(
        "\n{} lines did not parse, {rejected} records rejected, {} accounts aggregated (serial and amorsize agree)",
        n - records.len(),
        accounts.len()
    );

    let mut risky: Vec<(&u32, &Summary)> = accounts.iter().collect();
    risky.sort_by(|a, b| b.1.flagged.cmp(&a.1.flagged).then(a.0.cmp(b.0)));
    println!("\nriskiest accounts (most transactions scored above 0.9):");
    for (account, s) in risky.iter().take(5) {
        println!(
            "  account {account:>5}: {:>3} flagged of {:>3}, {:>10.2} total, max score {:.3}",
            s.flagged,
            s.transactions,
            s.total_cents as f64 / 100.0,
            s.max_score
        );
    }
    println!("\n{}", amorsize::report());
}
