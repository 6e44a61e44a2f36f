//! Less common shapes users write: methods of generic impls, `impl Trait` results, `const fn`,
//! `_` and `mut` patterns, array items, functions declared inside a function body, and
//! elided lifetimes in item, context and result types, associated functions that mention
//! `Self`, `self: &Self` receivers.

use std::collections::HashMap;

pub struct Wrapper<T>(pub T);

impl<T: Sync + Copy + Into<u64>> Wrapper<T> {
    #[amorsize::parallel]
    pub fn plus(&self, x: &u32) -> u64 {
        self.0.into() + *x as u64
    }

    /// The long form of `&self`.
    #[amorsize::parallel]
    pub fn minus(self: &Self, x: &u32) -> u64 {
        self.0.into() - *x as u64
    }
}

#[amorsize::parallel]
fn evens(x: &u8) -> impl Iterator<Item = u8> + Send {
    (0..*x).filter(|v| v % 2 == 0)
}

#[amorsize::parallel]
const fn twice(x: &u64) -> u64 {
    *x * 2
}

#[amorsize::parallel]
fn underscore(_: &u64) -> u8 {
    1
}

#[amorsize::parallel]
fn mutable(mut x: u64) -> u64 {
    x += 1;
    x
}

#[amorsize::parallel]
fn arrays(x: &[u64; 4]) -> u64 {
    x.iter().sum()
}

#[amorsize::parallel]
fn sizes(m: &HashMap<String, u32>) -> usize {
    m.len()
}

pub struct Tagged<'a>(pub &'a str);

#[amorsize::parallel]
fn tag_len(t: &Tagged<'_>, extra: &Tagged<'_>) -> usize {
    t.0.len() + extra.0.len()
}

#[amorsize::parallel]
fn first_char(s: &str) -> &str {
    &s[..1]
}

#[derive(Debug, PartialEq)]
pub struct Point(u32);

impl Point {
    /// Associated functions without `self` work when their signature mentions `Self`.
    #[amorsize::parallel]
    pub fn new(x: &u32) -> Self {
        Point(*x)
    }

    #[amorsize::parallel]
    fn doubled(p: &Self) -> u32 {
        p.0 * 2
    }
}

fn main() {
    assert_eq!(Point::par_new(&[1, 2]), vec![Point(1), Point(2)]);
    assert_eq!(Point::par_doubled(&[Point(3)]), vec![6]);
    fn local_scope() -> Vec<u64> {
        #[amorsize::parallel]
        fn local(x: &u64) -> u64 {
            x + 100
        }
        par_local(&[1, 2])
    }
    assert_eq!(Wrapper(5u32).par_plus(&[1, 2]), vec![6, 7]);
    assert_eq!(Wrapper(1u8).par_plus(&[1]), vec![2]);
    assert_eq!(Wrapper(9u8).par_minus(&[1, 2]), vec![8, 7]);
    let minus: Vec<u64> = Wrapper(9u8).par_minus_iter(&[3]).collect();
    assert_eq!(minus, vec![6]);
    let evens: Vec<Vec<u8>> = par_evens(&[5u8]).into_iter().map(|i| i.collect()).collect();
    assert_eq!(evens, vec![vec![0, 2, 4]]);
    assert_eq!(par_twice(&[1]), vec![2]);
    assert_eq!(par_underscore(&[1u64, 2]), vec![1, 1]);
    assert_eq!(par_mutable(0..3u64), vec![1, 2, 3]);
    assert_eq!(par_arrays(&[[1, 2, 3, 4]]), vec![10]);
    assert_eq!(par_sizes(&vec![HashMap::new()]), vec![0]);
    assert_eq!(local_scope(), vec![101, 102]);
    let words = ["ab".to_string(), "c".to_string()];
    let tags: Vec<Tagged> = words.iter().map(|w| Tagged(w)).collect();
    assert_eq!(par_tag_len(&tags, &Tagged("xyz")), vec![5, 4]);
    assert_eq!(par_first_char(&words), vec!["a", "c"]);
}
