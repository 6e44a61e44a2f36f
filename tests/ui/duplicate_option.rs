#[amorsize::parallel(name = par_a, name = par_b)]
fn score(x: &u64) -> u64 {
    *x
}

fn main() {}
