//! Every accepted shape, called as users call them.

use std::collections::HashMap;
use std::hash::Hash;

#[amorsize::parallel]
fn by_ref(x: &u64) -> u64 {
    x + 1
}

#[amorsize::parallel]
fn by_value(x: u64) -> u64 {
    x + 1
}

#[amorsize::parallel]
fn text(s: &str) -> usize {
    s.len()
}

#[amorsize::parallel]
fn bytes(b: &[u8]) -> usize {
    b.len()
}

#[amorsize::parallel]
fn pair((a, b): (u32, u32)) -> u32 {
    a + b
}

#[amorsize::parallel]
fn with_context(x: &f64, factor: f64, offset: &f64) -> f64 {
    x * factor + offset
}

#[amorsize::parallel]
fn generic<T: Hash + Eq + Clone>(x: &T) -> HashMap<T, usize>
where
    T: std::fmt::Debug,
{
    HashMap::from([(x.clone(), format!("{x:?}").len())])
}

#[amorsize::parallel]
fn longest<'a>(x: &'a String) -> &'a str {
    x.as_str()
}

#[amorsize::parallel]
fn nothing(_x: &u8) {}

#[amorsize::parallel]
fn maybe(x: &i32) -> Option<i32> {
    (*x > 0).then_some(*x)
}

#[amorsize::parallel]
fn fallible(x: &i32) -> Result<u32, String> {
    u32::try_from(*x).map_err(|e| e.to_string())
}

#[amorsize::parallel]
fn tuple(x: &u8) -> (u8, String) {
    (*x, x.to_string())
}

#[amorsize::parallel]
fn array_len<const N: usize>(x: &[u8; N]) -> usize {
    x.len() + N
}

mod shapes {
    /// Doc comments and other attributes stay on the function.
    #[amorsize::parallel]
    #[inline]
    pub fn public(x: &u32) -> u32 {
        x * 2
    }

    #[amorsize::parallel(name = doubled_all, mode = "parallel", max_threads = 1usize)]
    pub(crate) fn doubled(x: &u32) -> u32 {
        x * 2
    }
}

struct Scorer {
    weight: u64,
}

impl Scorer {
    #[amorsize::parallel]
    fn score(&self, w: &str) -> u64 {
        w.len() as u64 * self.weight
    }

    #[amorsize::parallel(max_threads = 2)]
    pub fn scale<T: Copy + Into<u64>>(&self, x: &T) -> u64 {
        (*x).into() * self.weight
    }
}

fn main() {
    let v: Vec<u64> = (0..100).collect();
    assert_eq!(par_by_ref(&v), (1..101).collect::<Vec<_>>());
    assert_eq!(par_by_ref(&v[..10]).len(), 10);
    assert_eq!(par_by_ref(&[1u64, 2]), vec![2, 3]);
    assert_eq!(par_by_value(v.clone()), (1..101).collect::<Vec<_>>());
    assert_eq!(par_by_value(0..100), (1..101).collect::<Vec<_>>());
    assert_eq!(par_text(&vec!["ab".to_string()]), vec![2]);
    assert_eq!(par_text(&["abc"]), vec![3]);
    assert_eq!(par_bytes(&vec![vec![1u8, 2]]), vec![2]);
    assert_eq!(par_pair(vec![(1, 2), (3, 4)]), vec![3, 7]);
    assert_eq!(par_with_context(&[1.0, 2.0], 2.0, &0.5), vec![2.5, 4.5]);
    assert_eq!(par_generic(&[1u8, 2]).len(), 2);
    assert_eq!(par_generic(&["a".to_string()])[0]["a"], 3);
    let words = vec!["x".to_string(), "yy".to_string()];
    assert_eq!(par_longest(&words), vec!["x", "yy"]);
    assert_eq!(par_nothing(&[1, 2, 3]), vec![(), (), ()]);
    assert_eq!(par_maybe(&[-1, 1]), vec![None, Some(1)]);
    assert!(par_fallible(&[-1, 1])[0].is_err());
    assert_eq!(par_tuple(&[7]), vec![(7, "7".to_string())]);
    assert_eq!(par_array_len(&[[0u8; 3], [1; 3]]), vec![6, 6]);
    assert_eq!(shapes::par_public(&[1, 2]), vec![2, 4]);
    assert_eq!(shapes::doubled_all(&[1, 2]), vec![2, 4]);
    let scorer = Scorer { weight: 3 };
    assert_eq!(scorer.par_score(&["ab", "c"]), vec![6, 3]);
    assert_eq!(scorer.par_scale(&[1u8, 2]), vec![3, 6]);
    assert_eq!(scorer.par_scale(&[1u32]), vec![3]);
}
