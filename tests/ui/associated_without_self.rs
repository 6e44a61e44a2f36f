// An associated function whose signature never mentions `Self` cannot be told apart from a
// free function, so its companion calls it as one; rustc's own error suggests `Self::`.
// Use a free function, a `&self` method, or mention `Self` in the signature.
struct Stats;

impl Stats {
    #[amorsize::parallel]
    fn square(x: &u64) -> u64 {
        x * x
    }
}

fn main() {}
