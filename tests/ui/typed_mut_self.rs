struct Counter {
    seen: u64,
}

impl Counter {
    // The long form of `&mut self` is refused the same way.
    #[amorsize::parallel]
    fn count(self: &mut Self, x: &u64) -> u64 {
        self.seen += 1;
        *x
    }
}

fn main() {}
