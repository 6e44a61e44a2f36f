//! A long, fallible batch job: importing a product catalogue.
//!
//! Run: `cargo run --release --example batch_job --features progress` (several seconds, with a
//! progress bar on a terminal; without the feature, the same job with no bar). `-- --quick`
//! runs a small catalogue in well under a second.
//!
//! The job generates 200 000 catalogue lines (`sku|title|price|stock|description`) with a fixed
//! seed, then:
//! 1. imports them with `try_par_import`: each line is parsed and validated, and the batch
//!    stops at the first bad line (a `Result<Vec<Product>, ImportError>`);
//! 2. imports a second feed with one corrupt line, to show how soon a failing batch returns;
//! 3. scores every product against a search query with `par_relevance` (tens of µs a product:
//!    the stage a progress bar is for);
//! 4. prints the best matches and `amorsize::report()`.

use std::fmt;
use std::time::Instant;

/// One imported product.
#[derive(Clone, Debug, PartialEq)]
pub struct Product {
    pub sku: String,
    pub title: String,
    pub price_cents: u64,
    pub stock: u32,
    pub description: String,
}

/// Why a line was refused, with where it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportError {
    pub sku: String,
    pub reason: &'static str,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "product {:?}: {}", self.sku, self.reason)
    }
}

impl std::error::Error for ImportError {}

/// Stage 1: parse and validate one catalogue line. A failure stops the whole import.
#[amorsize::parallel]
pub fn import(line: &str) -> Result<Product, ImportError> {
    let mut fields = line.split('|');
    let sku = fields.next().unwrap_or_default().to_owned();
    let fail = |reason| ImportError {
        sku: sku.clone(),
        reason,
    };
    if sku.len() != 10 || !sku.starts_with("SKU-") {
        return Err(fail("the SKU is not SKU- and six digits"));
    }
    let title = fields.next().ok_or_else(|| fail("no title"))?.trim();
    if title.is_empty() {
        return Err(fail("an empty title"));
    }
    let price_cents = parse_price(fields.next().ok_or_else(|| fail("no price"))?)
        .ok_or_else(|| fail("a price that is not like 12.34"))?;
    let stock = fields
        .next()
        .ok_or_else(|| fail("no stock"))?
        .parse()
        .map_err(|_| fail("a stock that is not a count"))?;
    let description = fields.next().ok_or_else(|| fail("no description"))?;
    if description.len() < 20 {
        return Err(fail("a description under 20 characters"));
    }
    Ok(Product {
        title: title.to_owned(),
        sku,
        price_cents,
        stock,
        description: description.to_owned(),
    })
}

fn parse_price(text: &str) -> Option<u64> {
    let (units, cents) = text.split_once('.')?;
    if cents.len() != 2 {
        return None;
    }
    Some(units.parse::<u64>().ok()? * 100 + cents.parse::<u64>().ok()?)
}

/// Dimensions of the hashed text vectors.
const DIMS: usize = 256;
/// How many hashes of each trigram go into a vector.
const SEEDS: u64 = 80;

/// A search query, as a hashed vector of its character trigrams.
pub struct Query {
    vector: Vec<f32>,
}

impl Query {
    pub fn new(text: &str) -> Query {
        Query {
            vector: embed(text),
        }
    }
}

/// Stage 3: how well a product matches the query (cosine of hashed trigram vectors of its
/// title and description, with a little weight for price and stock).
#[amorsize::parallel]
pub fn relevance(product: &Product, query: &Query) -> f32 {
    let text = format!("{} {}", product.title, product.description);
    let vector = embed(&text);
    let dot: f32 = vector.iter().zip(&query.vector).map(|(a, b)| a * b).sum();
    let in_stock = if product.stock > 0 { 0.05 } else { -0.2 };
    let cheap = 0.05 / (1.0 + product.price_cents as f32 / 10_000.0);
    dot + in_stock + cheap
}

/// A unit vector of hashed character trigrams, each hashed with a few seeds.
fn embed(text: &str) -> Vec<f32> {
    let bytes = text.as_bytes();
    let mut vector = vec![0f32; DIMS];
    for window in bytes.windows(3) {
        for seed in 0..SEEDS {
            let mut h = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for &b in window {
                h = (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x100_0000_01B3);
            }
            let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
            vector[(h % DIMS as u64) as usize] += sign;
        }
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    vector.iter_mut().for_each(|x| *x /= norm);
    vector
}

/// The generated catalogue: `n` lines from a fixed seed.
fn catalogue(n: usize, description_words: usize) -> Vec<String> {
    const ADJECTIVES: [&str; 8] = [
        "durable",
        "compact",
        "wireless",
        "organic",
        "vintage",
        "ergonomic",
        "waterproof",
        "smart",
    ];
    const NOUNS: [&str; 8] = [
        "kettle",
        "headphones",
        "backpack",
        "lamp",
        "keyboard",
        "blender",
        "jacket",
        "tent",
    ];
    const WORDS: [&str; 16] = [
        "steel", "cotton", "battery", "travel", "kitchen", "office", "outdoor", "warranty",
        "quiet", "fast", "light", "strong", "gift", "classic", "modern", "eco",
    ];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let adjective = ADJECTIVES[(next() % 8) as usize];
            let noun = NOUNS[(next() % 8) as usize];
            let description: Vec<&str> = (0..description_words)
                .map(|_| WORDS[(next() % 16) as usize])
                .collect();
            format!(
                "SKU-{i:06}|{adjective} {noun}|{}.{:02}|{}|{}",
                5 + next() % 500,
                next() % 100,
                next() % 50,
                description.join(" ")
            )
        })
        .collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, words) = if quick { (20_000, 8) } else { (200_000, 40) };
    let mut lines = catalogue(n, words);
    println!("Importing {n} catalogue lines.");

    // 1. A clean feed: every line imports.
    let start = Instant::now();
    let products = match try_par_import(&lines) {
        Ok(products) => products,
        Err(e) => {
            eprintln!("the generated feed should import: {e}");
            std::process::exit(1);
        }
    };
    let clean = start.elapsed();
    println!(
        "  clean feed:   {} products in {:.1} ms",
        products.len(),
        clean.as_secs_f64() * 1e3
    );

    // 2. The same feed with one corrupt line a third of the way in: the import stops there,
    //    on every thread, and returns that line's error.
    let bad = n / 3;
    let corrupt = lines[bad].replace('.', ",");
    let good = std::mem::replace(&mut lines[bad], corrupt);
    let start = Instant::now();
    let result = try_par_import(&lines);
    let failed = start.elapsed();
    lines[bad] = good;
    match result {
        Ok(_) => {
            eprintln!("the corrupt line should have been refused");
            std::process::exit(1);
        }
        Err(e) => println!(
            "  corrupt feed: refused in {:.1} ms ({e})",
            failed.as_secs_f64() * 1e3
        ),
    }

    // 3. Scoring: the long stage. With `--features progress` on a terminal, a bar counts it.
    let query = Query::new("waterproof travel backpack, light and strong");
    let start = Instant::now();
    let scores = par_relevance(&products, &query);
    let scoring = start.elapsed();
    println!(
        "  relevance:    {} products scored in {:.2} s ({:.1} µs a product of work)",
        scores.len(),
        scoring.as_secs_f64(),
        amorsize::report()
            .site("relevance")
            .and_then(|s| s.per_item)
            .map_or(f64::NAN, |c| c.as_nanos() / 1e3)
    );

    // 4. The best matches.
    let mut ranked: Vec<(f32, &Product)> = scores.iter().copied().zip(&products).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("\nBest matches for {:?}:", "waterproof travel backpack");
    for (score, p) in ranked.iter().take(5) {
        println!(
            "  {score:.3}  {}  {:<22} {:>8.2}  stock {}",
            p.sku,
            p.title,
            p.price_cents as f64 / 100.0,
            p.stock
        );
    }

    println!("\n{}", amorsize::report());
    if !cfg!(feature = "progress") && !quick {
        println!("(Run with `--features progress` to see a progress bar for the scoring stage.)");
    }
}
