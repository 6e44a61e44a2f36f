//! One annotated function's cached state: its learned per-item costs (in a loop and in
//! parallel pieces), how its parallel runs went, its last decision, its counters, and the
//! registry that lets [`report`](crate::report()) find every site.
//!
//! The hot path loads one atomic word (the loop's cost, see `cost`); everything else is read
//! and written on cold paths, the outcome and the last decision under the site's own lock.
//! No user code runs under any lock, and a panic in user code can leave nothing
//! half-written: costs change by compare-and-swap of one word.

use crate::cause::Cause;
use crate::config::Mode;
use crate::cost::{Basis, CostWord, LearnedCost};
use crate::model::{Costs, Decision, Machine, Plan};
use crate::outcome::Outcome;
use crate::units::PerItem;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Low bits of the packed counter: items.
const ITEM_BITS: u32 = 40;
const ITEM_MASK: u64 = (1 << ITEM_BITS) - 1;
const ONE_CALL: u64 = 1 << ITEM_BITS;
/// Spill once either field is half full: the other half absorbs concurrent adds.
const SPILL_CALLS: u64 = 1 << 22;
const SPILL_ITEMS: u64 = 1 << 38;
/// Calls this long count their items in the spill counter directly.
const MAX_PACKED_ITEMS_PER_CALL: u64 = 1 << 32;

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
    /// At most this many threads per call; 0 for no cap.
    max_threads: usize,
    /// What one item costs in a plain loop (profiles, timed loops).
    serial: LearnedCost,
    /// What one item costs inside a parallel call's pieces.
    parallel: LearnedCost,
    /// Calls (the bits above [`ITEM_BITS`]) and items (the low [`ITEM_BITS`]) packed, so that counting a
    /// call is one atomic add; moved into the spill counters long before either overflows.
    counts: AtomicU64,
    /// The calls and items of one thread, the counter's owner, packed the same way. Only
    /// that thread writes them, with a plain load and store rather than an atomic add
    /// (which cost 7 ns, half of a settled short call's whole overhead, measured here);
    /// every other thread counts in [`counts`](Self::counts). The first thread to call
    /// owns it; when the owner ends, it moves its counts into the spill counters and the
    /// next thread to call takes the counter over.
    owned: AtomicU64,
    /// The owner's [`thread_token`] (0 for none).
    owner: AtomicUsize,
    calls_spilled: AtomicU64,
    items_spilled: AtomicU64,
    learned: Mutex<Learned>,
    /// Whether the last of the site's streams that measured both ways got its results to
    /// its caller faster from a loop one by one than from batches in parallel (see
    /// [`crate::stream`]): read by every stream as it starts, so an atomic, not in
    /// [`Learned`]'s lock.
    stream_verdict: AtomicU8,
    /// The caller's wall time per item (an `f64`'s bits; 0 for none) over the judged
    /// batches in parallel of the site's last stream that had any: a stream too short to
    /// measure both ways (a loop is tried after two such batches) starts from it.
    stream_batched_ns: AtomicU64,
    /// Whether the loop's cost was last learned from a loop run in place (over an owned
    /// `Vec` whose values took its items' places, see `dispatch::map_owned`), which pays for
    /// no new memory, where the parallel pieces write a new `Vec`: the two costs then differ
    /// by that memory's cost, and a change in one is not read as a change in the work.
    loop_in_place: AtomicBool,
    registered: AtomicBool,
    instances: OnceLock<Box<Instances>>,
}

/// `stream_verdict` values: none yet, the loop faster, batches faster.
const NO_VERDICT: u8 = 0;
const LOOP_FASTER: u8 = 1;
const BATCHES_FASTER: u8 = 2;

/// What a site's planned calls have taught it beyond its costs; read and written on cold
/// paths only.
#[derive(Debug)]
pub(crate) struct Learned {
    /// How its parallel runs went.
    pub(crate) outcome: Outcome,
    /// The most recent planned call.
    pub(crate) last: Option<LastDecision>,
    /// The most recent plan (and its cause) for each class of call lengths (see
    /// [`length_class`]): what a plan change is told against.
    pub(crate) by_length: [Option<(Plan, Cause)>; LENGTH_CLASSES],
}

/// Classes of call lengths whose plans are told apart: lengths within a factor of 8.
pub(crate) const LENGTH_CLASSES: usize = 8;

/// The class of calls of `n` items: 1-7, 8-63, 64-511… up to 2 097 152 and more.
pub(crate) fn length_class(n: usize) -> usize {
    ((usize::BITS - n.leading_zeros()).saturating_sub(1) as usize / 3).min(LENGTH_CLASSES - 1)
}

impl LastDecision {
    pub(crate) fn new(n: usize, decision: &Decision, cause: Cause, machine: Machine) -> Self {
        LastDecision {
            n,
            planned: n,
            plan: decision.plan,
            predicted_speedup: decision.predicted_speedup(),
            parallel_speedup: decision.serial_ns / decision.parallel_ns,
            costs: None,
            cause,
            machine,
        }
    }

    /// The same, with the costs it was planned on.
    pub(crate) fn with_costs(mut self, costs: Costs) -> Self {
        self.costs = Some(costs);
        self
    }

    /// The same, for a plan that covered only the `remaining` items left after profiling
    /// the call's head.
    pub(crate) fn of_rest(mut self, remaining: usize) -> Self {
        self.planned = remaining;
        self
    }
}

/// What the most recent planned call chose, and why.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LastDecision {
    /// The call's length.
    pub(crate) n: usize,
    /// The items its plan covered and its predictions are for: `n`, or fewer for the rest
    /// of a call that profiled its head first.
    pub(crate) planned: usize,
    /// What it ran.
    pub(crate) plan: Plan,
    /// The model's predicted speedup over the loop for what it ran (1 for a loop).
    pub(crate) predicted_speedup: f64,
    /// What the best parallel split was predicted to give, chosen or not (0 when no split
    /// was possible).
    pub(crate) parallel_speedup: f64,
    /// The per-item costs it was planned on, when known.
    pub(crate) costs: Option<Costs>,
    /// What decided it.
    pub(crate) cause: Cause,
    /// The figures of the pool it was planned for.
    pub(crate) machine: Machine,
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
            max_threads: 0,
            serial: LearnedCost::new(),
            parallel: LearnedCost::new(),
            counts: AtomicU64::new(0),
            owned: AtomicU64::new(0),
            owner: AtomicUsize::new(0),
            calls_spilled: AtomicU64::new(0),
            items_spilled: AtomicU64::new(0),
            learned: Mutex::new(Learned {
                outcome: Outcome::NEW,
                last: None,
                by_length: [None; LENGTH_CLASSES],
            }),
            stream_verdict: AtomicU8::new(NO_VERDICT),
            stream_batched_ns: AtomicU64::new(0),
            loop_in_place: AtomicBool::new(false),
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

    /// The same site with each call limited to `max_threads` threads (the calling thread
    /// included), for services that must leave cores to other work. `0` means no cap (the
    /// default); `1` keeps every call a loop.
    ///
    /// ```
    /// use amorsize_core::{map, Site};
    ///
    /// static CAPPED: Site = Site::new("capped").with_max_threads(2);
    /// assert_eq!(map(&CAPPED, 0..1000u64, |x| x * 2)[999], 1998);
    /// assert_eq!(CAPPED.max_threads(), Some(2));
    /// ```
    pub const fn with_max_threads(mut self, max_threads: usize) -> Site {
        self.max_threads = max_threads;
        self
    }

    /// The thread cap given with [`with_max_threads`](Site::with_max_threads), if any.
    pub fn max_threads(&self) -> Option<usize> {
        (self.max_threads != 0).then_some(self.max_threads)
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
        let owned = self.owned.load(Ordering::Relaxed);
        self.calls_spilled
            .load(Ordering::Relaxed)
            .saturating_add(packed >> ITEM_BITS)
            .saturating_add(owned >> ITEM_BITS)
    }

    /// How many items those calls processed in all (`u64::MAX` once they reach it: calls
    /// of a range such as `0..u64::MAX` count as many).
    pub fn items(&self) -> u64 {
        let packed = self.counts.load(Ordering::Relaxed);
        let owned = self.owned.load(Ordering::Relaxed);
        self.items_spilled
            .load(Ordering::Relaxed)
            .saturating_add(packed & ITEM_MASK)
            .saturating_add(owned & ITEM_MASK)
    }

    /// The learned cost of one item in a plain loop, once a call has measured it.
    pub fn per_item(&self) -> Option<PerItem> {
        self.serial.load().per_item()
    }

    /// The learned cost of one item inside a parallel call's pieces, once two parallel
    /// calls have measured it (allocation or memory contention can make it dearer than in a
    /// loop). The model plans with it from then on.
    pub fn per_item_in_parallel(&self) -> Option<PerItem> {
        let word = self.parallel.load();
        match word.basis() {
            Basis::Tuned => word.per_item(),
            _ => None,
        }
    }

    /// The model's plan for a call of `n` items made now from the calling thread (in its
    /// pool, under the site's thread cap), from the learned costs. `None` while the cost is
    /// unknown (such a call profiles first). Measures the pool if nothing has.
    pub fn plan_for(&self, n: usize) -> Option<Decision> {
        let costs = self.costs()?;
        let mut machine = crate::pool::machine();
        if let Some(cap) = self.max_threads() {
            machine.threads = machine.threads.min(cap);
        }
        Some(crate::model::decide(n, costs, &machine))
    }

    /// The site for the instantiation of a generic function named by `key` (typically
    /// [`std::any::type_name`] of its type parameters): each gets its own learned cost,
    /// since different types cost differently. Created on first use and kept for the life
    /// of the process; the same `key` always gives the same site, named `name::<key>` in
    /// reports.
    pub fn instance(&'static self, key: &'static str) -> &'static Site {
        self.instance_named(key, None, &[key])
    }

    /// [`instance`](Site::instance), named as the user wrote the function: `Type::method`
    /// for a method or associated function of `self_type`, with `::<A, B>` for the type
    /// arguments (given as [`std::any::type_name`]s, shortened to their last path segments).
    /// What `#[amorsize::parallel]` calls; `key` alone identifies the instance.
    #[doc(hidden)]
    pub fn instance_named(
        &'static self,
        key: &'static str,
        self_type: Option<&'static str>,
        type_args: &[&'static str],
    ) -> &'static Site {
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
                None => *slot.get_or_init(|| (key, self.new_instance(self_type, type_args))),
            };
            // The key's pointer is a constant of the caller's instantiation: usually equal.
            if std::ptr::eq(slot_key, key) || slot_key == key {
                return site;
            }
        }
        self.overflow_instance(instances, key, self_type, type_args)
    }

    #[cold]
    fn overflow_instance(
        &'static self,
        instances: &Instances,
        key: &'static str,
        self_type: Option<&'static str>,
        type_args: &[&'static str],
    ) -> &'static Site {
        let mut overflow = crate::lock(&instances.overflow);
        if let Some((_, site)) = overflow.iter().find(|(k, _)| *k == key) {
            return site;
        }
        let site = self.new_instance(self_type, type_args);
        overflow.push((key, site));
        site
    }

    #[cold]
    fn new_instance(
        &'static self,
        self_type: Option<&'static str>,
        type_args: &[&'static str],
    ) -> &'static Site {
        let name: &'static str =
            Box::leak(instance_name(self.name, self_type, type_args).into_boxed_str());
        Box::leak(Box::new(
            Site::new(name)
                .with_mode(self.mode)
                .with_max_threads(self.max_threads),
        ))
    }

    /// Counts a call of `n` items and returns its index (0 for the first call).
    #[inline]
    pub(crate) fn begin_call(&'static self, n: usize) -> u64 {
        let n = n as u64;
        if n >= MAX_PACKED_ITEMS_PER_CALL {
            return self.begin_huge_call(n);
        }
        let token = thread_token();
        let owner = self.owner.load(Ordering::Relaxed);
        if owner != token {
            if owner == 0 && self.claim(token) {
                return self.begin_call(n as usize);
            }
            return self.begin_shared_call(n);
        }
        // The owner's own counter: no other thread writes it.
        let old = self.owned.load(Ordering::Relaxed);
        self.owned.store(old + (ONE_CALL | n), Ordering::Relaxed);
        if old >> ITEM_BITS >= SPILL_CALLS || old & ITEM_MASK >= SPILL_ITEMS {
            self.spill_owned();
        }
        // The calls before this one, as far as this thread can tell: its own and the
        // others' (the index paces sampling and backoff; it need not be exact).
        (old >> ITEM_BITS) + (self.counts.load(Ordering::Relaxed) >> ITEM_BITS)
    }

    /// [`begin_call`](Self::begin_call) on a thread that does not own the site's counter,
    /// which another thread does: an atomic add to the shared one.
    #[inline(always)]
    fn begin_shared_call(&'static self, n: u64) -> u64 {
        let old = self.counts.fetch_add(ONE_CALL | n, Ordering::Relaxed);
        let index = old >> ITEM_BITS;
        if index >= SPILL_CALLS || old & ITEM_MASK >= SPILL_ITEMS {
            self.spill();
        }
        index + (self.owned.load(Ordering::Relaxed) >> ITEM_BITS)
    }

    #[cold]
    fn begin_huge_call(&'static self, n: u64) -> u64 {
        self.spill_items(n);
        let old = self.counts.fetch_add(ONE_CALL, Ordering::Relaxed);
        self.register();
        old >> ITEM_BITS
    }

    /// What the site's last stream that measured both ways found: whether the loop one by
    /// one got results to its caller faster than batches in parallel.
    pub(crate) fn stream_loop_faster(&self) -> Option<bool> {
        match self.stream_verdict.load(Ordering::Relaxed) {
            LOOP_FASTER => Some(true),
            BATCHES_FASTER => Some(false),
            _ => None,
        }
    }

    /// Keeps a stream's verdict (see [`stream_loop_faster`](Self::stream_loop_faster)).
    pub(crate) fn set_stream_loop_faster(&self, verdict: Option<bool>) {
        let value = match verdict {
            Some(true) => LOOP_FASTER,
            Some(false) => BATCHES_FASTER,
            None => NO_VERDICT,
        };
        self.stream_verdict.store(value, Ordering::Relaxed);
    }

    /// What the caller of the site's last stream saw per item of its judged batches in
    /// parallel (see the field), if any stream measured it.
    pub(crate) fn stream_batched_ns(&self) -> Option<f64> {
        let bits = self.stream_batched_ns.load(Ordering::Relaxed);
        (bits != 0).then(|| f64::from_bits(bits))
    }

    /// Keeps a stream's figure for its judged batches in parallel.
    pub(crate) fn set_stream_batched_ns(&self, per_item_ns: f64) {
        self.stream_batched_ns
            .store(per_item_ns.to_bits(), Ordering::Relaxed);
    }

    /// Whether the loop's cost was last learned from a loop run in place (see the field).
    pub(crate) fn loop_in_place(&self) -> bool {
        self.loop_in_place.load(Ordering::Relaxed)
    }

    /// Records whether the loop's cost was last learned from a loop run in place.
    pub(crate) fn set_loop_in_place(&self, in_place: bool) {
        self.loop_in_place.store(in_place, Ordering::Relaxed);
    }

    /// Counts `n` items mapped outside any call (a stream's items mapped one by one).
    pub(crate) fn count_items(&self, n: usize) {
        self.spill_items(n as u64);
    }

    /// Adds `n` to the spilled items, up to `u64::MAX`, where the count then stays.
    fn spill_items(&self, n: u64) {
        let _ = self
            .items_spilled
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_add(n))
            });
    }

    /// Takes back `n` that [`spill_items`](Self::spill_items) added, unless the count has
    /// reached `u64::MAX`.
    fn unspill_items(&self, n: u64) {
        let _ = self
            .items_spilled
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                (v != u64::MAX).then(|| v.saturating_sub(n))
            });
    }

    /// Makes the calling thread (`token`) the owner of the counter, if no thread is; its
    /// counts go to the spill counters when it ends ([`OwnedCounters`]). `false` if another
    /// thread claimed it first, or this one is ending.
    #[cold]
    fn claim(&'static self, token: usize) -> bool {
        // Acquire: the counts a previous owner zeroed before it let go are seen as zero.
        if self
            .owner
            .compare_exchange(0, token, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.register();
        let held = OWNED_COUNTERS.try_with(|owned| owned.0.borrow_mut().push(self));
        if held.is_err() {
            // The thread is ending: it could not let go, so it does not hold on.
            self.owner.store(0, Ordering::Release);
            return false;
        }
        true
    }

    /// The owner lets go of the counter as its thread ends: its counts move into the spill
    /// counters, and the next thread to call takes the counter over.
    fn release(&self) {
        self.spill_owned();
        self.owner.store(0, Ordering::Release);
    }

    /// Moves the owner's packed counts into the spill counters; called by the owner only,
    /// the counter's one writer (readers may see the moved amount twice for an instant,
    /// never lose it).
    #[cold]
    fn spill_owned(&self) {
        let packed = self.owned.load(Ordering::Relaxed);
        self.calls_spilled
            .fetch_add(packed >> ITEM_BITS, Ordering::Relaxed);
        self.spill_items(packed & ITEM_MASK);
        self.owned.store(0, Ordering::Relaxed);
    }

    /// Moves the packed counts into the spill counters (readers may see the moved amount
    /// twice for an instant, never lose it).
    #[cold]
    fn spill(&self) {
        let mut packed = self.counts.load(Ordering::Relaxed);
        while packed >> ITEM_BITS >= SPILL_CALLS || packed & ITEM_MASK >= SPILL_ITEMS {
            self.calls_spilled
                .fetch_add(packed >> ITEM_BITS, Ordering::Relaxed);
            self.spill_items(packed & ITEM_MASK);
            match self
                .counts
                .compare_exchange(packed, 0, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(current) => {
                    // Someone counted meanwhile: take the additions back and retry.
                    self.calls_spilled
                        .fetch_sub(packed >> ITEM_BITS, Ordering::Relaxed);
                    self.unspill_items(packed & ITEM_MASK);
                    packed = current;
                }
            }
        }
    }

    /// The loop's per-item cost as one word: the hot path's only read.
    #[inline(always)]
    pub(crate) fn serial_word(&self) -> CostWord {
        self.serial.load()
    }

    /// The loop's learned cost.
    pub(crate) fn serial_cost(&self) -> &LearnedCost {
        &self.serial
    }

    /// The pieces' learned cost.
    pub(crate) fn parallel_cost(&self) -> &LearnedCost {
        &self.parallel
    }

    /// Both costs, for the model: the pieces' cost is the loop's until two parallel calls
    /// have measured it.
    pub(crate) fn costs(&self) -> Option<Costs> {
        let serial = self.per_item()?;
        Some(Costs {
            serial,
            parallel: self.per_item_in_parallel().unwrap_or(serial),
        })
    }

    /// Publishes the cost measured by a profiling run. A `strong` estimate (from well-timed
    /// blocks) replaces anything; a weak one never replaces a strong one. `head` when the
    /// call went on past the profiled items.
    #[cold]
    pub(crate) fn publish_profile(&self, estimate: PerItem, strong: bool, head: bool) {
        log::debug!(
            target: "amorsize",
            "{}: profiled {} per item ({})",
            self.name,
            estimate,
            if strong { "well timed" } else { "short call, provisional" }
        );
        self.serial
            .update(|word| word.after_profile(estimate, strong, head).map(|w| (w, ())));
        crate::observe::profiled(self.name, estimate, strong);
    }

    /// The costs to plan a call with: the learned ones, or while the loop's cost drifts,
    /// its latest drifted sample (the pieces' cost scaled along), so that a changed cost is
    /// acted on by the next call. Not scaled along when the loop ran in place: its drift is
    /// confirmed by loops only (pieces cost more than it whatever it does), so the pieces
    /// may have measured the change meanwhile, and scaling their new cost again would plan
    /// them at the change squared (1.1 µs items planned at 1.8 ms in parallel, measured).
    pub(crate) fn planning_costs(&self) -> Option<Costs> {
        let learned = self.costs()?;
        let Some(speculative) = self.serial.speculative() else {
            return Some(learned);
        };
        if self.loop_in_place() {
            return Some(Costs {
                serial: speculative,
                parallel: learned.parallel,
            });
        }
        let factor = speculative.as_picos() as f64 / learned.serial.as_picos().max(1) as f64;
        Some(Costs {
            serial: speculative,
            parallel: PerItem::from_picos((learned.parallel.as_picos() as f64 * factor) as u64),
        })
    }

    /// The site's outcome and last decision, locked (cold paths only; no user code runs
    /// while it is held).
    pub(crate) fn learned(&self) -> MutexGuard<'_, Learned> {
        crate::lock(&self.learned)
    }

    /// Remembers what a planned call chose and why, for reports.
    pub(crate) fn note_decision_with(
        &self,
        n: usize,
        decision: &Decision,
        costs: Costs,
        cause: Cause,
        machine: Machine,
    ) {
        self.note(LastDecision::new(n, decision, cause, machine).with_costs(costs));
    }

    /// Remembers what a planned call chose and why, for reports, with no costs to show.
    pub(crate) fn note_decision(
        &self,
        n: usize,
        decision: &Decision,
        cause: Cause,
        machine: Machine,
    ) {
        self.note(LastDecision::new(n, decision, cause, machine));
    }

    /// Sets both of the site's costs, in a loop and in parallel pieces, to `per_item`, as if
    /// well timed over whole calls: a test's site whose plans follow from known costs.
    #[cfg(test)]
    pub(crate) fn assume_cost(&self, per_item: PerItem) {
        for cost in [&self.serial, &self.parallel] {
            cost.update(|word| word.after_profile(per_item, true, false).map(|w| (w, ())));
        }
    }

    /// Remembers `last`, a planned call's decision, for reports.
    pub(crate) fn note(&self, last: LastDecision) {
        self.remember(self.learned(), last);
    }

    /// Records `last` as the site's most recent planned call, then (with the lock released:
    /// an observer is user code) tells an observer if the plan changed.
    pub(crate) fn remember(&self, mut learned: MutexGuard<'_, Learned>, last: LastDecision) {
        learned.last = Some(last);
        let previous = learned.by_length[length_class(last.n)].replace((last.plan, last.cause));
        drop(learned);
        crate::observe::planned(
            self.name,
            last.n,
            last.plan,
            last.cause,
            last.predicted_speedup,
            previous,
        );
    }

    #[cold]
    fn register(&'static self) {
        if !self.registered.swap(true, Ordering::AcqRel) {
            registry().push(self);
        }
    }
}

thread_local! {
    /// This thread's [`thread_token`], once it has asked for one.
    static TOKEN: Cell<usize> = const { Cell::new(0) };
}

/// The sites whose counter this thread owns: let go when the thread ends.
struct OwnedCounters(std::cell::RefCell<Vec<&'static Site>>);

impl Drop for OwnedCounters {
    fn drop(&mut self) {
        for site in self.0.get_mut().drain(..) {
            site.release();
        }
    }
}

thread_local! {
    static OWNED_COUNTERS: OwnedCounters = const {
        OwnedCounters(std::cell::RefCell::new(Vec::new()))
    };
}

/// The tokens given out so far.
static TOKENS: AtomicUsize = AtomicUsize::new(0);

/// A number that names the calling thread, never given to another thread, even after this
/// one ends (a thread-local's address may be): a site's owned counter has one writer.
#[inline(always)]
fn thread_token() -> usize {
    match TOKEN.with(Cell::get) {
        0 => new_thread_token(),
        token => token,
    }
}

#[cold]
fn new_thread_token() -> usize {
    let token = TOKENS.fetch_add(1, Ordering::Relaxed) + 1;
    TOKEN.with(|t| t.set(token));
    token
}

/// How an instance reads in reports: `module::function::<u32>`, or for a method or associated
/// function `Type::method` (with `::<u32>` if generic), type paths shortened as written.
fn instance_name(base: &str, self_type: Option<&str>, type_args: &[&str]) -> String {
    let mut name = match self_type {
        Some(ty) => {
            let function = base.rsplit("::").next().unwrap_or(base);
            format!("{}::{function}", short_type_name(ty))
        }
        None => base.to_owned(),
    };
    if !type_args.is_empty() {
        let args: Vec<String> = type_args.iter().map(|a| short_type_name(a)).collect();
        name.push_str(&format!("::<{}>", args.join(", ")));
    }
    name
}

/// A type name as a user writes it: every path cut to its last segment (`Vec<Point>` for
/// `alloc::vec::Vec<shapes::Point>`), and the macro's keys for const parameters
/// (`ConstU32<3>`, `[(); 3]`) back to their value (`3`).
pub(crate) fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    let flush = |segment: &mut String, out: &mut String| {
        out.push_str(segment.rsplit("::").next().unwrap_or(segment));
        segment.clear();
    };
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            flush(&mut segment, &mut out);
            out.push(c);
        }
    }
    flush(&mut segment, &mut out);
    unwrap_const_keys(&out)
}

/// `ConstU32<3>` → `3`, `[(); 3]` → `3`: the keys `#[amorsize::parallel]` builds for const
/// generic parameters.
fn unwrap_const_keys(name: &str) -> String {
    if let Some(value) = name.strip_prefix("[(); ").and_then(|v| v.strip_suffix(']')) {
        return value.to_owned();
    }
    if let Some(rest) = name.strip_prefix("Const") {
        if let Some(open) = rest.find('<') {
            let kind = &rest[..open];
            let known = [
                "U8", "U16", "U32", "U64", "U128", "I8", "I16", "I32", "I64", "I128", "Isize",
                "Bool", "Char",
            ];
            if known.contains(&kind) {
                if let Some(value) = rest[open + 1..].strip_suffix('>') {
                    return value.to_owned();
                }
            }
        }
    }
    name.to_owned()
}

fn registry() -> std::sync::MutexGuard<'static, Vec<&'static Site>> {
    crate::lock(&REGISTRY)
}

/// Every site that has been called at least once, in order of first call.
pub(crate) fn all_sites() -> Vec<&'static Site> {
    registry().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weak_profile_never_overwrites_a_strong_one() {
        static SITE: Site = Site::new("refine");
        assert_eq!(SITE.per_item(), None);
        SITE.publish_profile(PerItem::from_picos(10_000), false, false);
        assert_eq!(SITE.per_item(), Some(PerItem::from_picos(10_000)));
        SITE.publish_profile(PerItem::from_picos(20_000), true, false);
        SITE.publish_profile(PerItem::from_picos(1), false, false);
        assert_eq!(SITE.per_item(), Some(PerItem::from_picos(20_000)));
        // No parallel call yet: the pieces are assumed to cost what the loop does.
        let costs = SITE.costs().unwrap();
        assert_eq!(costs.parallel, costs.serial);
    }

    #[test]
    fn call_lengths_fall_in_classes_a_factor_of_8_wide() {
        let classes: Vec<usize> = [0, 1, 7, 8, 63, 64, 511, 512, 2_000, 1 << 21, usize::MAX]
            .iter()
            .map(|&n| length_class(n))
            .collect();
        assert_eq!(classes, [0, 0, 0, 1, 1, 2, 2, 3, 3, 7, 7]);
    }

    #[test]
    fn a_call_of_u64_max_items_saturates_the_count_instead_of_wrapping_it() {
        static HUGE: Site = Site::new("huge_counts");
        HUGE.begin_call(10);
        HUGE.begin_call(usize::MAX);
        HUGE.begin_call(usize::MAX);
        HUGE.begin_call(10);
        assert_eq!(HUGE.calls(), 4);
        assert_eq!(HUGE.items(), u64::MAX);
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
        assert!(COUNTED.owned.load(Ordering::Relaxed) & ITEM_MASK < SPILL_ITEMS);
        // The same on a thread that does not own the counter: it spills the shared one.
        std::thread::spawn(move || {
            for _ in 0..rounds {
                COUNTED.begin_call(big);
            }
        })
        .join()
        .unwrap();
        assert_eq!(COUNTED.calls(), 3 + 2 * rounds as u64);
        assert_eq!(
            COUNTED.items(),
            2 * huge as u64 + 5 + 2 * rounds as u64 * big as u64
        );
        assert!(COUNTED.counts.load(Ordering::Relaxed) & ITEM_MASK < SPILL_ITEMS);
    }

    #[test]
    fn the_owner_of_the_counter_and_other_threads_count_exactly_together() {
        let _serial = crate::timing_test();
        static MIXED: Site = Site::new("mixed_counts");
        // This thread calls first and owns the counter.
        assert_eq!(MIXED.begin_call(3), 0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..10_000 {
                        MIXED.begin_call(i % 5);
                    }
                });
            }
            for i in 0..10_000 {
                MIXED.begin_call(i % 5);
            }
        });
        let per_thread: u64 = (0..10_000u64).map(|i| i % 5).sum();
        assert_eq!(MIXED.calls(), 1 + 5 * 10_000);
        assert_eq!(MIXED.items(), 3 + 5 * per_thread);
        // An owner that ends moves its counts to the spill counters and lets go; the next
        // thread to call takes over, and threads come and go without losing a count.
        static LEFT: Site = Site::new("left_counts");
        std::thread::spawn(|| LEFT.begin_call(1)).join().unwrap();
        assert_eq!(LEFT.owner.load(Ordering::Relaxed), 0);
        assert_eq!(LEFT.owned.load(Ordering::Relaxed), 0);
        assert_eq!((LEFT.calls(), LEFT.items()), (1, 1));
        for _ in 0..3 {
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        for _ in 0..1_000 {
                            LEFT.begin_call(2);
                        }
                    });
                }
            });
        }
        // (A scoped thread's thread-locals may still be dropping: the counts are exact
        // whoever owns the counter.)
        assert_eq!(LEFT.calls(), 12_001);
        assert_eq!(LEFT.items(), 24_001);
        assert!(registry().iter().any(|site| std::ptr::eq(*site, &LEFT)));
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
    fn instances_read_as_the_user_wrote_them() {
        assert_eq!(
            instance_name("shapes::grade", Some("shapes::Scorer"), &[]),
            "Scorer::grade"
        );
        assert_eq!(
            instance_name("shapes::scale", Some("shapes::Scorer"), &["u8"]),
            "Scorer::scale::<u8>"
        );
        assert_eq!(
            instance_name("shapes::hashed", None, &["alloc::string::String"]),
            "shapes::hashed::<String>"
        );
        assert_eq!(
            short_type_name("alloc::vec::Vec<(shapes::Point, &str)>"),
            "Vec<(Point, &str)>"
        );
        assert_eq!(
            instance_name(
                "shapes::shifted",
                None,
                &[
                    "amorsize::__private::ConstU32<1>",
                    "[(); 3]",
                    "amorsize::__private::ConstBool<true>"
                ]
            ),
            "shapes::shifted::<1, 3, true>"
        );
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
