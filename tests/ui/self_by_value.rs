struct Model;

impl Model {
    #[amorsize::parallel]
    fn score(self, x: &u64) -> u64 {
        *x
    }
}

fn main() {}
