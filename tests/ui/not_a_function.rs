#[amorsize::parallel]
struct Scores {
    values: Vec<u64>,
}

fn main() {}
