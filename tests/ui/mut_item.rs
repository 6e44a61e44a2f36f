#[amorsize::parallel]
fn bump(x: &mut u64) {
    *x += 1;
}

fn main() {}
