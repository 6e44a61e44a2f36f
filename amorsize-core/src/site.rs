//! One annotated function's cached state: what it learned of its per-item cost, its counters,
//! and the registry that lets [`report`](crate::report()) find every site.
//!
//! The hot path only loads atomics; locks guard only the registry and a generic function's
//! rare extra instantiations, and no user code runs under them. A panic in user code can
//! leave nothing half-written: a new cost is published by one store.

use crate::config::Mode;
use crate::model::{Decision, Plan};
use crate::units::PerItem;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

/// Low bits of the packed counter: items.
const ITEM_BITS: u32 = 40;
const ITEM_MASK: u64 = (1 << ITEM_BITS) - 1;
const ONE_CALL: u64 = 1 << ITEM_BITS;
/// Spill once either field is half full: the other half absorbs concurrent adds.
const SPILL_CALLS: u64 = 1 << 22;
const SPILL_ITEMS: u64 = 1 << 38;
/// Calls this long count their items in the spill counter directly.
const MAX_PACKED_ITEMS_PER_CALL: u64 = 1 << 32;

/// No cost learned yet: the next call profiles.
const UNTUNED: u8 = 0;
/// A cost learned from a call too short to time well: good enough to keep short calls
/// serial, but a call long enough to go parallel profiles again.
const WEAK: u8 = 1;
/// A cost learned from well-timed blocks of work.
const TUNED: u8 = 2;

/// A sample this far from the cached cost (either way) counts as drift…
const DRIFT_FACTOR: u64 = 3;
/// …and this many drift samples in a row replace the cached cost outright.
const DRIFT_STREAK: u32 = 3;

/// The cached state of one parallel map site: usually one annotated function, declared as a
/// `static` so that it lives as long as the process.
///
/// The `#[amorsize::parallel]` attribute declares one for you. Without the macro, declare
/// one per call site and pass it to [`map`](crate::map) or [`map_slice`](crate::map_slice):
///
/// ```
/// use amorsize_core::{map_slice, Site};
///
/// static SQUARES: Site = Site::new("squares");
///
/// let xs: Vec<u64> = (0..1000).collect();
/// let squares = map_slice(&SQUARES, &xs, |x: &u64| x * x);
/// assert_eq!(squares[999], 999 * 999);
/// assert_eq!(SQUARES.calls(), 1);
/// ```
///
/// A site learns the cost of *one* function: share a site between call sites only if they
/// run the same work. Generic code, whose cost depends on the type, uses one
/// [`instance`](Site::instance) per type.
#[derive(Debug)]
pub struct Site {
    name: &'static str,
    mode: Mode,
    state: AtomicU8,
    per_item_ps: AtomicU64,
    /// Calls (the bits above [`ITEM_BITS`]) and items (the low [`ITEM_BITS`]) packed, so that counting a
    /// call is one atomic add; moved into the spill counters long before either overflows.
    counts: AtomicU64,
    calls_spilled: AtomicU64,
    items_spilled: AtomicU64,
    drift_streak: AtomicU32,
    last: LastCall,
    registered: AtomicBool,
    instances: OnceLock<Box<Instances>>,
}

/// What the most recent call that decided anything chose, for reports.
#[derive(Debug)]
struct LastCall {
    n: AtomicU64,
    min_len: AtomicU64,
    threads: AtomicU64,
    predicted_speedup: AtomicU64,
    observed_speedup: AtomicU64,
}

/// How many instantiations of a generic site are found without a lock.
const INSTANCE_SLOTS: usize = 16;

/// A generic site's per-type instances: lock-free slots filled in order, then a locked list
/// for the rare function instantiated with more types than that.
#[derive(Debug)]
struct Instances {
    slots: [OnceLock<(&'static str, &'static Site)>; INSTANCE_SLOTS],
    overflow: Mutex<Vec<(&'static str, &'static Site)>>,
}

/// Every site that has been called, in order of first call. Locked only on a site's first
/// call and by reports; no user code ever runs under it.
static REGISTRY: Mutex<Vec<&'static Site>> = Mutex::new(Vec::new());

impl Site {
    /// A site named `name` (shown in reports; the macro uses the function's path), deciding
    /// automatically.
    pub const fn new(name: &'static str) -> Site {
        Site {
            name,
            mode: Mode::Auto,
            state: AtomicU8::new(UNTUNED),
            per_item_ps: AtomicU64::new(0),
            counts: AtomicU64::new(0),
            calls_spilled: AtomicU64::new(0),
            items_spilled: AtomicU64::new(0),
            drift_streak: AtomicU32::new(0),
            last: LastCall {
                n: AtomicU64::new(0),
                min_len: AtomicU64::new(0),
                threads: AtomicU64::new(0),
                predicted_speedup: AtomicU64::new(0),
                observed_speedup: AtomicU64::new(0),
            },
            registered: AtomicBool::new(false),
            instances: OnceLock::new(),
        }
    }

    /// The same site with its decision pinned to `mode` (a process-wide mode forced through
    /// `AMORSIZE` or [`set_mode`](crate::set_mode) still overrides it).
    pub const fn with_mode(mut self, mode: Mode) -> Site {
        self.mode = mode;
        self
    }

    /// The name given at construction.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The mode this site was pinned to ([`Mode::Auto`] unless [`with_mode`](Site::with_mode)).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// How many calls ran through this site.
    pub fn calls(&self) -> u64 {
        let packed = self.counts.load(Ordering::Relaxed);
        self.calls_spilled.load(Ordering::Relaxed) + (packed >> ITEM_BITS)
    }

    /// How many items those calls processed in all.
    pub fn items(&self) -> u64 {
        let packed = self.counts.load(Ordering::Relaxed);
        self.items_spilled.load(Ordering::Relaxed) + (packed & ITEM_MASK)
    }

    /// The learned cost of one item, once a call has measured it.
    pub fn per_item(&self) -> Option<PerItem> {
        self.cost_ps().map(PerItem::from_picos)
    }

    /// The plan a call of `n` items would get now, from the cached cost and the machine's
    /// measured overhead. `None` while the cost is unknown (such a call profiles first).
    pub fn plan_for(&self, n: usize) -> Option<Decision> {
        let per_item = self.per_item()?;
        Some(crate::model::decide(
            n,
            per_item,
            &crate::machine::machine(),
        ))
    }

    /// The site for the instantiation of a generic function named by `key` (typically
    /// [`std::any::type_name`] of its type parameters): each gets its own learned cost,
    /// since different types cost differently. Created on first use and kept for the life
    /// of the process; the same `key` always gives the same site.
    pub fn instance(&'static self, key: &'static str) -> &'static Site {
        let instances = self.instances.get_or_init(|| {
            Box::new(Instances {
                slots: [const { OnceLock::new() }; INSTANCE_SLOTS],
                overflow: Mutex::new(Vec::new()),
            })
        });
        for slot in &instances.slots {
            // Slots fill in order: the first empty one ends the search.
            let (slot_key, site) = match slot.get() {
                Some(entry) => *entry,
                None => *slot.get_or_init(|| (key, self.new_instance(key))),
            };
            // The key's pointer is a constant of the caller's instantiation: usually equal.
            if std::ptr::eq(slot_key, key) || slot_key == key {
                return site;
            }
        }
        self.overflow_instance(instances, key)
    }

    #[cold]
    fn overflow_instance(&'static self, instances: &Instances, key: &'static str) -> &'static Site {
        let mut overflow = crate::lock(&instances.overflow);
        if let Some((_, site)) = overflow.iter().find(|(k, _)| *k == key) {
            return site;
        }
        let site = self.new_instance(key);
        overflow.push((key, site));
        site
    }

    #[cold]
    fn new_instance(&'static self, key: &'static str) -> &'static Site {
        let name: &'static str = Box::leak(format!("{}::<{}>", self.name, key).into_boxed_str());
        Box::leak(Box::new(Site::new(name).with_mode(self.mode)))
    }

    /// Counts a call of `n` items and returns its index (0 for the first call).
    #[inline]
    pub(crate) fn begin_call(&'static self, n: usize) -> u64 {
        let n = n as u64;
        if n >= MAX_PACKED_ITEMS_PER_CALL {
            return self.begin_huge_call(n);
        }
        let old = self.counts.fetch_add(ONE_CALL | n, Ordering::Relaxed);
        let index = old >> ITEM_BITS;
        if index >= SPILL_CALLS || old & ITEM_MASK >= SPILL_ITEMS {
            self.spill();
        }
        if index == 0 {
            self.register();
        }
        index
    }

    #[cold]
    fn begin_huge_call(&'static self, n: u64) -> u64 {
        self.items_spilled.fetch_add(n, Ordering::Relaxed);
        let old = self.counts.fetch_add(ONE_CALL, Ordering::Relaxed);
        self.register();
        old >> ITEM_BITS
    }

    /// Moves the packed counts into the spill counters (readers may see the moved amount
    /// twice for an instant, never lose it).
    #[cold]
    fn spill(&self) {
        let mut packed = self.counts.load(Ordering::Relaxed);
        while packed >> ITEM_BITS >= SPILL_CALLS || packed & ITEM_MASK >= SPILL_ITEMS {
            self.calls_spilled
                .fetch_add(packed >> ITEM_BITS, Ordering::Relaxed);
            self.items_spilled
                .fetch_add(packed & ITEM_MASK, Ordering::Relaxed);
            match self
                .counts
                .compare_exchange(packed, 0, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(current) => {
                    // Someone counted meanwhile: take the additions back and retry.
                    self.calls_spilled
                        .fetch_sub(packed >> ITEM_BITS, Ordering::Relaxed);
                    self.items_spilled
                        .fetch_sub(packed & ITEM_MASK, Ordering::Relaxed);
                    packed = current;
                }
            }
        }
    }

    /// The cached per-item cost in picoseconds, if any.
    #[inline]
    pub(crate) fn cost_ps(&self) -> Option<u64> {
        if self.state.load(Ordering::Acquire) == UNTUNED {
            None
        } else {
            Some(self.per_item_ps.load(Ordering::Relaxed))
        }
    }

    /// `true` when the cached cost came from well-timed work.
    #[inline]
    pub(crate) fn is_tuned(&self) -> bool {
        self.state.load(Ordering::Acquire) == TUNED
    }

    /// Publishes the cost measured by a profiling run. A `strong` estimate (from well-timed
    /// blocks) replaces anything; a weak one only fills an empty cache.
    #[cold]
    pub(crate) fn publish_profile(&self, per_item_ps: u64, strong: bool) {
        let per_item_ps = per_item_ps.max(1);
        log::debug!(
            target: "amorsize",
            "{}: profiled {} per item ({})",
            self.name,
            PerItem::from_picos(per_item_ps),
            if strong { "well timed" } else { "short call, provisional" }
        );
        if strong {
            self.per_item_ps.store(per_item_ps, Ordering::Relaxed);
            self.state.store(TUNED, Ordering::Release);
            self.drift_streak.store(0, Ordering::Relaxed);
        } else if self.state.load(Ordering::Acquire) != TUNED {
            self.per_item_ps.store(per_item_ps, Ordering::Relaxed);
            let _ = self
                .state
                .compare_exchange(UNTUNED, WEAK, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Refines the cached cost with a per-item sample from a later call: a timed serial
    /// call, or the summed time of a parallel call's pieces (which, unlike the call's wall
    /// time, does not include waiting for idle threads). One sample moves the cost by at most
    /// a quarter of a factor two; a sustained drift replaces it.
    ///
    /// Samples cover the whole input, so they also correct a first estimate taken from a
    /// head that was cheaper (a skewed input) or slower (fresh memory) than the rest.
    #[cold]
    pub(crate) fn observe(&self, sample_ps: u64) {
        let sample_ps = sample_ps.max(1);
        let Some(old) = self.cost_ps() else {
            self.publish_profile(sample_ps, false);
            return;
        };
        let old = old.max(1);
        let drifted = sample_ps > old.saturating_mul(DRIFT_FACTOR)
            || sample_ps.saturating_mul(DRIFT_FACTOR) < old;
        if drifted {
            let streak = self.drift_streak.fetch_add(1, Ordering::Relaxed) + 1;
            if streak >= DRIFT_STREAK {
                log::debug!(
                    target: "amorsize",
                    "{}: re-tuned, per-item cost drifted from {} to {}",
                    self.name,
                    PerItem::from_picos(old),
                    PerItem::from_picos(sample_ps)
                );
                self.drift_streak.store(0, Ordering::Relaxed);
                self.per_item_ps.store(sample_ps, Ordering::Relaxed);
                return;
            }
        } else if self.drift_streak.load(Ordering::Relaxed) != 0 {
            self.drift_streak.store(0, Ordering::Relaxed);
        }
        let clamped = sample_ps.clamp(old / 2, old.saturating_mul(2)) as i128;
        let updated = old as i128 + (clamped - old as i128) / 4;
        self.per_item_ps
            .store(updated.max(1) as u64, Ordering::Relaxed);
    }

    /// Remembers what a call of `n` items decided, for reports. Stores only on change, so
    /// repeated identical calls do not bounce the cache line between cores.
    pub(crate) fn note_decision(&self, n: usize, decision: &Decision) {
        let (min_len, threads) = match decision.plan {
            Plan::Serial => (0, 1),
            Plan::Parallel { min_len, threads } => (min_len as u64, threads as u64),
        };
        store_if_changed(&self.last.n, n as u64);
        store_if_changed(&self.last.min_len, min_len);
        store_if_changed(&self.last.threads, threads);
        store_if_changed(
            &self.last.predicted_speedup,
            decision.predicted_speedup().to_bits(),
        );
    }

    /// Remembers the speedup a timed parallel call achieved over the predicted loop time.
    pub(crate) fn note_observed_speedup(&self, speedup: f64) {
        if speedup.is_finite() && speedup > 0.0 {
            self.last
                .observed_speedup
                .store(speedup.to_bits(), Ordering::Relaxed);
        }
    }

    /// The last decision noted: `(n, plan, predicted speedup, observed speedup)`.
    pub(crate) fn last_decision(&self) -> Option<(u64, Plan, f64, Option<f64>)> {
        let threads = self.last.threads.load(Ordering::Relaxed);
        if threads == 0 {
            return None;
        }
        let min_len = self.last.min_len.load(Ordering::Relaxed);
        let plan = if min_len == 0 {
            Plan::Serial
        } else {
            Plan::Parallel {
                min_len: min_len as usize,
                threads: threads as usize,
            }
        };
        let predicted = f64::from_bits(self.last.predicted_speedup.load(Ordering::Relaxed));
        let observed = self.last.observed_speedup.load(Ordering::Relaxed);
        let observed = (observed != 0).then(|| f64::from_bits(observed));
        Some((
            self.last.n.load(Ordering::Relaxed),
            plan,
            predicted,
            observed,
        ))
    }

    #[cold]
    fn register(&'static self) {
        if !self.registered.swap(true, Ordering::AcqRel) {
            registry().push(self);
        }
    }
}

fn registry() -> std::sync::MutexGuard<'static, Vec<&'static Site>> {
    crate::lock(&REGISTRY)
}

fn store_if_changed(cell: &AtomicU64, value: u64) {
    if cell.load(Ordering::Relaxed) != value {
        cell.store(value, Ordering::Relaxed);
    }
}

/// Every site that has been called at least once, in order of first call.
pub(crate) fn all_sites() -> Vec<&'static Site> {
    registry().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_then_refine() {
        static SITE: Site = Site::new("refine");
        assert_eq!(SITE.cost_ps(), None);
        SITE.publish_profile(10_000, false);
        assert_eq!(SITE.cost_ps(), Some(10_000));
        assert!(!SITE.is_tuned());
        // A weak estimate never overwrites a strong one.
        SITE.publish_profile(20_000, true);
        SITE.publish_profile(1, false);
        assert_eq!(SITE.cost_ps(), Some(20_000));
        assert!(SITE.is_tuned());
        // One wild sample moves the cost by at most a quarter of a factor two.
        SITE.observe(20_000_000);
        assert_eq!(SITE.cost_ps(), Some(25_000));
        SITE.observe(25_000);
        assert_eq!(SITE.cost_ps(), Some(25_000));
    }

    #[test]
    fn sustained_drift_replaces_the_cost() {
        static SITE: Site = Site::new("drift");
        SITE.publish_profile(1_000, true);
        SITE.observe(100_000);
        SITE.observe(100_000);
        assert!(SITE.cost_ps().unwrap() < 5_000);
        SITE.observe(100_000);
        assert_eq!(SITE.cost_ps(), Some(100_000));
    }

    #[test]
    fn packed_counters_spill_without_losing_counts() {
        let _serial = crate::timing_test();
        static COUNTED: Site = Site::new("counted");
        let huge = MAX_PACKED_ITEMS_PER_CALL as usize;
        COUNTED.begin_call(huge);
        COUNTED.begin_call(huge);
        COUNTED.begin_call(5);
        assert_eq!(COUNTED.calls(), 3);
        assert_eq!(COUNTED.items(), 2 * huge as u64 + 5);
        // Push the packed items past the spill point with calls just under the huge limit.
        let big = (MAX_PACKED_ITEMS_PER_CALL - 1) as usize;
        let rounds = (SPILL_ITEMS / (big as u64)) as usize + 2;
        for _ in 0..rounds {
            COUNTED.begin_call(big);
        }
        assert_eq!(COUNTED.calls(), 3 + rounds as u64);
        assert_eq!(
            COUNTED.items(),
            2 * huge as u64 + 5 + rounds as u64 * big as u64
        );
        assert!(COUNTED.counts.load(Ordering::Relaxed) & ITEM_MASK < SPILL_ITEMS);
    }

    #[test]
    fn counting_from_many_threads_is_exact() {
        let _serial = crate::timing_test();
        static SHARED: Site = Site::new("shared_counts");
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for i in 0..10_000 {
                        SHARED.begin_call(i % 7);
                    }
                });
            }
        });
        assert_eq!(SHARED.calls(), 80_000);
        let per_thread: u64 = (0..10_000u64).map(|i| i % 7).sum();
        assert_eq!(SHARED.items(), 8 * per_thread);
    }

    #[test]
    fn instances_are_per_key_and_stable() {
        static GENERIC: Site = Site::new("generic");
        let a = GENERIC.instance("u8");
        let b = GENERIC.instance("String");
        assert!(!std::ptr::eq(a, b));
        assert!(std::ptr::eq(a, GENERIC.instance("u8")));
        // Equal text at another address is the same key.
        let other: &'static str = Box::leak(String::from("u8").into_boxed_str());
        assert!(std::ptr::eq(a, GENERIC.instance(other)));
        assert_eq!(a.name(), "generic::<u8>");
    }

    #[test]
    fn registry_lists_called_sites_once() {
        static LISTED: Site = Site::new("listed");
        LISTED.begin_call(3);
        LISTED.begin_call(4);
        let count = all_sites()
            .into_iter()
            .filter(|s| std::ptr::eq(*s, &LISTED))
            .count();
        assert_eq!(count, 1);
        assert_eq!(LISTED.calls(), 2);
        assert_eq!(LISTED.items(), 7);
    }
}
