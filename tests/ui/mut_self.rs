struct Counter {
    seen: u64,
}

impl Counter {
    #[amorsize::parallel]
    fn count(&mut self, x: &u64) -> u64 {
        self.seen += 1;
        *x
    }
}

fn main() {}
