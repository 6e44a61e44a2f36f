#[amorsize::parallel(max_threads = 0)]
fn none(x: &u64) -> u64 {
    *x
}

#[amorsize::parallel(max_threads = "4")]
fn quoted(x: &u64) -> u64 {
    *x
}

#[amorsize::parallel(max_threads = 4u8)]
fn suffixed(x: &u64) -> u64 {
    *x
}

#[amorsize::parallel(max_threads = 2, max_threads = 3)]
fn twice(x: &u64) -> u64 {
    *x
}

fn main() {}
