// `associated` is a flag: it takes no value, and is given once.
#[amorsize::parallel(associated = true)]
fn with_value(x: &u64) -> u64 {
    *x
}

#[amorsize::parallel(associated, associated)]
fn twice(x: &u64) -> u64 {
    *x
}

fn main() {}
