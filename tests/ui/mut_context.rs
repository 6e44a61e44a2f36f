#[amorsize::parallel]
fn tally(x: &u32, total: &mut u64) -> u32 {
    *total += *x as u64;
    *x
}

fn main() {}
