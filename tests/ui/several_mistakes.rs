// Every mistake is reported at once, and the function itself still compiles, so the call
// in `main` produces no follow-on error.
#[amorsize::parallel(speed = 11)]
async fn score(x: &mut u64) -> u64 {
    *x
}

fn main() {
    let _ = score;
}
