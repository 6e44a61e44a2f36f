use std::cell::Cell;

#[amorsize::parallel]
fn tally(x: &u32, total: &Cell<u32>) -> u32 {
    total.set(total.get() + x);
    *x
}

fn main() {}
