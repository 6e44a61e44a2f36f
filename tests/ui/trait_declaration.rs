trait Scorer {
    #[amorsize::parallel]
    fn score(&self, x: &u64) -> u64;
}

fn main() {}
