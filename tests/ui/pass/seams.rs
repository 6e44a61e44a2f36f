//! Shapes that once failed: raw identifiers, parameters named like their function, a
//! turbofish with only the user's own generics, forwarded attributes, `crate = path`, an
//! associated function recognised by its body, parenthesized trait objects (no
//! `unused_parens` warning on the user's needed parentheses), `?Sized` generic items.

#![deny(unused_parens)]

mod reexport {
    pub use amorsize as engine;
}

#[amorsize::parallel]
fn r#match(x: &u64, r#type: u64) -> u64 {
    x + r#type
}

#[inline(always)]
#[amorsize::parallel]
fn scale(x: &u64, scale: u64) -> u64 {
    x * scale
}

#[amorsize::parallel]
fn shifted<const K: u64>(x: &u64) -> u64 {
    x << K
}

#[amorsize::parallel]
fn widened<T: Copy + Into<u64>>(x: T) -> u64 {
    x.into()
}

#[deprecated(note = "use `fresh`")]
#[amorsize::parallel]
fn stale(x: &u32) -> u32 {
    *x
}

#[must_use]
#[no_mangle]
#[amorsize::parallel]
fn exported(x: &u32) -> u32 {
    x + 1
}

#[cfg(all())]
#[allow(clippy::ptr_arg)]
#[amorsize::parallel(crate = crate::reexport::engine)]
fn through_reexport(x: &Vec<u8>) -> usize {
    x.len()
}

#[amorsize::parallel(crate = "::amorsize")]
fn through_string_path(x: u8) -> u8 {
    x
}

struct Table;

impl Table {
    const BASE: u64 = 10;

    #[amorsize::parallel]
    fn offset(x: &u64) -> u64 {
        x + Self::BASE
    }
}

pub trait Shape {
    fn area(&self) -> f64;
}

struct Square(f64);

impl Shape for Square {
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

#[amorsize::parallel]
fn area(s: &(dyn Shape + Sync), then: &(dyn Fn(f64) -> f64 + Sync)) -> f64 {
    then(s.area())
}

#[amorsize::parallel]
fn weight<T: ?Sized + AsRef<[u8]> + Sync>(x: &T, extra: &u64) -> u64 {
    x.as_ref().len() as u64 + extra
}

#[amorsize::parallel]
fn weight_where<T>(x: &T) -> usize
where
    T: AsRef<[u8]> + Sync + ?Sized,
{
    x.as_ref().len()
}

fn main() {
    let xs: Vec<u64> = (0..10).collect();
    assert_eq!(par_match(&xs, 1)[9], 10);
    assert_eq!(par_scale(&xs, 3)[9], 27);
    assert_eq!(par_shifted::<3>(&xs)[1], 8);
    assert_eq!(par_widened::<u8>(vec![1u8, 2])[1], 2);
    #[allow(deprecated)]
    let stale = par_stale(&[1, 2]);
    assert_eq!(stale, vec![1, 2]);
    let _ = par_exported(&[1]);
    assert_eq!(through_reexport_len(), 2);
    assert_eq!(par_through_string_path(0..3u8), vec![0, 1, 2]);
    assert_eq!(Table::par_offset(&xs)[0], 10);
    let shapes: Vec<Box<dyn Shape + Sync>> = vec![Box::new(Square(2.0)), Box::new(Square(3.0))];
    assert_eq!(par_area(&shapes, &|a| a + 1.0), vec![5.0, 10.0]);
    let words = vec!["ab".to_string(), "c".to_string()];
    assert_eq!(par_weight::<str>(&words, &1), vec![3, 2]);
    assert_eq!(par_weight::<[u8]>(&[vec![1u8, 2, 3]], &0), vec![3]);
    assert_eq!(par_weight_where::<str>(&words), vec![2, 1]);
}

fn through_reexport_len() -> usize {
    par_through_reexport(&[vec![1u8], vec![2, 3]])[1]
}
