//! The companion equals the serial map, for random inputs, in every shape and mode.

use proptest::prelude::*;

fn h(x: u64) -> u64 {
    let y = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    y ^ (y >> 31)
}

#[amorsize::parallel]
fn auto_ref(x: &u64) -> u64 {
    h(*x)
}
#[amorsize::parallel(mode = "serial")]
fn serial_ref(x: &u64) -> u64 {
    h(*x)
}
#[amorsize::parallel(mode = "parallel")]
fn parallel_ref(x: &u64) -> u64 {
    h(*x)
}
#[amorsize::parallel]
fn auto_val(x: u64) -> u64 {
    h(x)
}
#[amorsize::parallel(mode = "serial")]
fn serial_val(x: u64) -> u64 {
    h(x)
}
#[amorsize::parallel(mode = "parallel")]
fn parallel_val(x: u64) -> u64 {
    h(x)
}
#[amorsize::parallel(mode = "parallel")]
fn parallel_str(s: &str) -> usize {
    s.bytes().filter(|b| b.is_ascii_digit()).count()
}

fn shout(s: String) -> String {
    let mut s = s.to_uppercase();
    s.push('!');
    s
}
// Owned values of the items' own size: loops write them in place.
#[amorsize::parallel]
fn auto_shout(s: String) -> String {
    shout(s)
}
#[amorsize::parallel(mode = "serial")]
fn serial_shout(s: String) -> String {
    shout(s)
}
#[amorsize::parallel(mode = "parallel")]
fn parallel_shout(s: String) -> String {
    shout(s)
}

fn checked(x: u64) -> Result<u64, u64> {
    if x % 1_000 == 999 {
        Err(x)
    } else {
        Ok(h(x))
    }
}
#[amorsize::parallel]
fn auto_checked(x: u64) -> Result<u64, u64> {
    checked(x)
}
#[amorsize::parallel(mode = "serial")]
fn serial_checked(x: u64) -> Result<u64, u64> {
    checked(x)
}
#[amorsize::parallel(mode = "parallel")]
fn parallel_checked(x: u64) -> Result<u64, u64> {
    checked(x)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn by_reference(items in prop::collection::vec(any::<u64>(), 0..=50_000)) {
        let expected: Vec<u64> = items.iter().map(|&x| h(x)).collect();
        prop_assert_eq!(&par_auto_ref(&items), &expected);
        prop_assert_eq!(&par_serial_ref(&items), &expected);
        prop_assert_eq!(&par_parallel_ref(&items), &expected);
    }

    #[test]
    fn by_value(items in prop::collection::vec(any::<u64>(), 0..=50_000)) {
        let expected: Vec<u64> = items.iter().map(|&x| h(x)).collect();
        prop_assert_eq!(&par_auto_val(items.clone()), &expected);
        prop_assert_eq!(&par_serial_val(items.clone()), &expected);
        prop_assert_eq!(&par_parallel_val(items), &expected);
    }

    #[test]
    fn ranges(start in any::<u64>(), len in 0u64..=50_000) {
        let end = start.saturating_add(len);
        let expected: Vec<u64> = (start..end).map(h).collect();
        prop_assert_eq!(&par_auto_val(start..end), &expected);
        prop_assert_eq!(&par_serial_val(start..end), &expected);
        prop_assert_eq!(&par_parallel_val(start..end), &expected);
    }

    #[test]
    fn strings(lines in prop::collection::vec(".{0,12}", 0..=2_000)) {
        let expected: Vec<usize> = lines
            .iter()
            .map(|s| s.bytes().filter(|b| b.is_ascii_digit()).count())
            .collect();
        prop_assert_eq!(&par_parallel_str(&lines), &expected);
    }

    #[test]
    fn owned_strings(lines in prop::collection::vec(".{0,12}", 0..=2_000)) {
        let expected: Vec<String> = lines.iter().cloned().map(shout).collect();
        prop_assert_eq!(&par_auto_shout(lines.clone()), &expected);
        prop_assert_eq!(&par_serial_shout(lines.clone().into_boxed_slice()), &expected);
        prop_assert_eq!(&par_parallel_shout(lines), &expected);
    }

    #[test]
    fn owned_and_fallible(items in prop::collection::vec(any::<u64>(), 0..=20_000)) {
        let expected: Result<Vec<u64>, u64> = items.iter().map(|&x| checked(x)).collect();
        prop_assert_eq!(&try_par_serial_checked(items.clone()), &expected);
        // In parallel, the failure of the earliest item among those that ran.
        for got in [try_par_auto_checked(items.clone()), try_par_parallel_checked(items)] {
            match &expected {
                Ok(values) => prop_assert_eq!(got.as_ref(), Ok(values)),
                Err(_) => prop_assert!(got.is_err_and(|x| x % 1_000 == 999)),
            }
        }
    }
}
