#[amorsize::parallel]
fn score(x: &u64) -> u64 {
    x + 1
}

fn par_score(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

fn main() {}
