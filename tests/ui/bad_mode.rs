#[amorsize::parallel(mode = "fast")]
fn score(x: &u64) -> u64 {
    *x
}

#[amorsize::parallel(mode = serial)]
fn rank(x: &u64) -> u64 {
    *x
}

fn main() {}
