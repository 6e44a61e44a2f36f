#[amorsize::parallel(name = "par_score")]
fn score(x: &u64) -> u64 {
    *x
}

#[amorsize::parallel(name = 7)]
fn rank(x: &u64) -> u64 {
    *x
}

fn main() {}
