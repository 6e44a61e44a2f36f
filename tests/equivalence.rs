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

// Owned values smaller than the items: loops write a new `Vec`.
#[amorsize::parallel]
fn auto_narrow(x: u64) -> u32 {
    (h(x) >> 32) as u32
}
#[amorsize::parallel(mode = "serial")]
fn serial_narrow(x: u64) -> u32 {
    (h(x) >> 32) as u32
}
#[amorsize::parallel(mode = "parallel")]
fn parallel_narrow(x: u64) -> u32 {
    (h(x) >> 32) as u32
}

/// `items` in a `VecDeque` whose buffer wraps around: the last `front` of them pushed at
/// the front.
fn wrapped(items: &[u64], front: usize) -> std::collections::VecDeque<u64> {
    let front = front.min(items.len());
    let (head, tail) = items.split_at(front);
    let mut deque = std::collections::VecDeque::with_capacity(items.len());
    deque.extend(tail);
    for &x in head.iter().rev() {
        deque.push_front(x);
    }
    deque
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
    fn inclusive_ranges(start in any::<u64>(), len in 0u64..=50_000, to_the_end in any::<bool>()) {
        // Half of them end at `u64::MAX`, which a `Range` cannot.
        let start = if to_the_end { u64::MAX - len } else { start };
        let last = start.saturating_add(len);
        let expected: Vec<u64> = (start..=last).map(h).collect();
        prop_assert_eq!(&par_auto_val(start..=last), &expected);
        prop_assert_eq!(&par_serial_val(start..=last), &expected);
        prop_assert_eq!(&par_parallel_val(start..=last), &expected);
    }

    #[test]
    fn owned_narrowed_and_deques(
        items in prop::collection::vec(any::<u64>(), 0..=50_000),
        front in any::<usize>(),
    ) {
        let expected: Vec<u32> = items.iter().map(|&x| (h(x) >> 32) as u32).collect();
        prop_assert_eq!(&par_auto_narrow(items.clone()), &expected);
        prop_assert_eq!(&par_serial_narrow(items.clone()), &expected);
        prop_assert_eq!(&par_parallel_narrow(items.clone()), &expected);
        let front = front % (items.len() + 1);
        let wide: Vec<u64> = items.iter().map(|&x| h(x)).collect();
        prop_assert_eq!(&par_auto_narrow(wrapped(&items, front)), &expected);
        prop_assert_eq!(&par_serial_val(wrapped(&items, front)), &wide);
        prop_assert_eq!(&par_parallel_val(wrapped(&items, front)), &wide);
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
