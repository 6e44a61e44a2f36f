//! Units: the cost of one item ([`PerItem`]) and durations printed for people ([`Nanos`]).
//!
//! Every per-item cost in the crate is a `PerItem`; it converts itself, so no code scales
//! picoseconds to nanoseconds by hand.

use std::fmt;
use std::time::Duration;

/// The cost of running a function on one item.
///
/// Kept in whole picoseconds: cheap items cost a fraction of a nanosecond, and a total
/// (`n × cost`) must stay exact enough to compare with a break-even point on the hot path.
/// Its `Display` picks a fitting unit (`2.5 ns`, `1.2 ms`).
///
/// ```
/// use amorsize_core::PerItem;
///
/// let cost = PerItem::from_nanos(2.5);
/// assert_eq!(cost.as_picos(), 2_500);
/// assert_eq!(cost.work(1_000).as_nanos(), 2_500);
/// assert_eq!(cost.to_string(), "2.5 ns");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PerItem(u64);

impl PerItem {
    /// No cost at all.
    pub const ZERO: PerItem = PerItem(0);

    /// A cost of `ps` picoseconds per item.
    pub const fn from_picos(ps: u64) -> PerItem {
        PerItem(ps)
    }

    /// A cost of `ns` nanoseconds per item; negative or NaN means zero, and anything too
    /// large to count saturates.
    pub fn from_nanos(ns: f64) -> PerItem {
        // `as` saturates, and turns NaN into 0.
        PerItem((ns * 1000.0).max(0.0) as u64)
    }

    /// The average cost of `items` items that took `total` in all (`total` itself for
    /// zero items).
    pub fn average(total: Duration, items: usize) -> PerItem {
        let ps = total.as_nanos().saturating_mul(1000) / items.max(1) as u128;
        PerItem(u64::try_from(ps).unwrap_or(u64::MAX))
    }

    /// The cost in picoseconds.
    pub const fn as_picos(self) -> u64 {
        self.0
    }

    /// The cost in (fractional) nanoseconds.
    pub fn as_nanos(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// The cost as a `Duration` (whole nanoseconds, rounded down).
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0 / 1000)
    }

    /// The time `n` items take at this cost, saturating.
    pub fn work(self, n: usize) -> Duration {
        let ps = u128::from(self.0) * n as u128;
        let ns = u64::try_from(ps / 1000).unwrap_or(u64::MAX);
        Duration::from_nanos(ns)
    }

    /// The time `n` items take at this cost in picoseconds, saturating: the hot path's
    /// integer comparison with a break-even point.
    #[inline(always)]
    pub(crate) fn work_ps(self, n: usize) -> u64 {
        (n as u64).saturating_mul(self.0)
    }

    /// The time `n` items take at this cost in (fractional) nanoseconds, for the model.
    pub(crate) fn work_ns(self, n: usize) -> f64 {
        n as f64 * self.as_nanos()
    }
}

/// With the `serde` feature, a cost serializes as its nanoseconds (a float: `2.5`).
#[cfg(feature = "serde")]
impl serde::Serialize for PerItem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_nanos())
    }
}

impl fmt::Display for PerItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Nanos(self.as_nanos()), f)
    }
}

/// A duration in nanoseconds, printed with a fitting unit (`12.0 µs`, `1.5 ms`, `3.0 ps`
/// below a tenth of a nanosecond; `?` for a value that is not finite).
#[derive(Clone, Copy, Debug)]
pub struct Nanos(pub f64);

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if !ns.is_finite() {
            f.pad("?")
        } else if ns > 0.0 && ns < 0.1 {
            // What a loop the compiler folded costs per item: not `0.0 ns` beside the
            // milliseconds a billion of them take.
            f.pad(&format!("{:.1} ps", ns * 1e3))
        } else if ns < 1_000.0 {
            f.pad(&format!("{ns:.1} ns"))
        } else if ns < 1_000_000.0 {
            f.pad(&format!("{:.1} µs", ns / 1e3))
        } else if ns < 1_000_000_000.0 {
            f.pad(&format!("{:.1} ms", ns / 1e6))
        } else {
            f.pad(&format!("{:.2} s", ns / 1e9))
        }
    }
}

/// Nanoseconds since `start`, saturating (a `u64` of nanoseconds spans 584 years).
pub(crate) fn elapsed_ns(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_pick_units() {
        assert_eq!(Nanos(2.0).to_string(), "2.0 ns");
        assert_eq!(Nanos(12_000.0).to_string(), "12.0 µs");
        assert_eq!(Nanos(1.5e6).to_string(), "1.5 ms");
        assert_eq!(Nanos(3e9).to_string(), "3.00 s");
        assert_eq!(Nanos(f64::NAN).to_string(), "?");
        assert_eq!(Nanos(0.0).to_string(), "0.0 ns");
        assert_eq!(Nanos(0.001).to_string(), "1.0 ps");
        assert_eq!(Nanos(0.099).to_string(), "99.0 ps");
        assert_eq!(Nanos(0.1).to_string(), "0.1 ns");
    }

    #[test]
    fn per_item_converts_itself_and_saturates() {
        assert_eq!(PerItem::from_nanos(1.5).as_picos(), 1_500);
        assert_eq!(PerItem::from_nanos(f64::NAN), PerItem::ZERO);
        assert_eq!(PerItem::from_nanos(-3.0), PerItem::ZERO);
        assert_eq!(PerItem::from_nanos(f64::INFINITY).as_picos(), u64::MAX);
        assert_eq!(PerItem::from_picos(2_500).as_nanos(), 2.5);
        assert_eq!(
            PerItem::from_picos(1_234_567).as_duration(),
            Duration::from_nanos(1_234)
        );
        assert_eq!(
            PerItem::average(Duration::from_micros(1), 4).as_picos(),
            250_000
        );
        assert_eq!(
            PerItem::average(Duration::from_micros(1), 0).as_picos(),
            1_000_000
        );
        assert_eq!(PerItem::from_picos(3).work_ps(usize::MAX), u64::MAX);
        assert_eq!(
            PerItem::from_picos(u64::MAX).work(usize::MAX),
            Duration::from_nanos(u64::MAX)
        );
        assert_eq!(PerItem::from_picos(300).to_string(), "0.3 ns");
    }
}
