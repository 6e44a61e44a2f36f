#[amorsize::parallel]
fn seed() -> u64 {
    42
}

fn main() {}
