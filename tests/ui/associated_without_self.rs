// An associated function whose signature never mentions `Self` cannot be told apart from a
// free function, so its companion calls it as one and rustc cannot find it. Write
// `#[amorsize::parallel(associated)]` (tests/shapes.rs), or use a free function.
struct Stats;

impl Stats {
    #[amorsize::parallel]
    fn square(x: &u64) -> u64 {
        x * x
    }
}

fn main() {}
