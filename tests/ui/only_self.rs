struct Model;

impl Model {
    #[amorsize::parallel]
    fn bias(&self) -> f64 {
        0.5
    }
}

fn main() {}
