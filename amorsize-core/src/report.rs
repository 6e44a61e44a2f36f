//! What each site chose and why: [`report`] returns plain data with an aligned `Display`.

use crate::cause::Cause;
use crate::config::Mode;
use crate::model::{Costs, Machine, Plan, MIN_SPEEDUP};
use crate::site::{all_sites, LastDecision, Site};
use crate::units::{Nanos, PerItem};
use std::fmt;

/// A snapshot of every site called so far and the figures they decided from.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Report {
    /// The figures of the calling thread's pool (rayon's global pool unless the report is
    /// taken inside `pool.install(..)`), as far as they have been measured: taking a
    /// report never measures anything.
    pub machine: Machine,
    /// `false` while those figures are stand-ins (no call long enough to need them has run
    /// in that pool yet).
    pub machine_measured: bool,
    /// `false` while the cost of going parallel after the pool idled
    /// ([`Machine::cold_overhead_ns`], which holds the awake cost until then) is not
    /// measured: it is measured on a thread of its own, in the millisecond or so after the
    /// pool's first figures (or not, if the program's own calls never leave the pool idle
    /// that long meanwhile).
    pub cold_measured: bool,
    /// The mode forced on the whole process (`AMORSIZE` or [`set_mode`](crate::set_mode)),
    /// [`Mode::Auto`] when none is.
    pub forced: Mode,
    /// One entry per site, in order of first call.
    pub sites: Vec<SiteReport>,
}

/// What one site has learned and decided.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SiteReport {
    /// The site's name: for annotated functions, `module::function`, `Type::method`, with
    /// `::<u32>` for an instance of a generic one.
    pub name: &'static str,
    /// The site's own mode: `mode = "…"` on the attribute, or
    /// [`Site::with_mode`](crate::Site::with_mode) ([`Mode::Auto`] unless pinned).
    pub mode: Mode,
    /// Calls so far. A stream (`map_iter`, `par_<name>_iter`) counts each batch it maps as
    /// a call, and the items it maps one by one (a short rest) as one more.
    pub calls: u64,
    /// Items in those calls: all of a call's items, counted when it starts, also for a
    /// fallible call that stopped at a failure or an async call dropped after it started; for
    /// a stream, the items it mapped.
    pub items: u64,
    /// Learned cost of one item in a plain loop, once measured.
    #[cfg_attr(feature = "serde", serde(rename = "per_item_ns"))]
    pub per_item: Option<PerItem>,
    /// Learned cost of one item inside a parallel call's pieces, once a parallel call has
    /// measured it.
    #[cfg_attr(feature = "serde", serde(rename = "per_item_in_parallel_ns"))]
    pub per_item_in_parallel: Option<PerItem>,
    /// Length of the most recent call that was planned (short calls served by the fast path
    /// are counted, not recorded one by one).
    pub last_n: Option<usize>,
    /// What that call ran.
    pub plan: Option<Plan>,
    /// What decided it.
    pub cause: Option<Cause>,
    /// The figures of the pool that call was planned for.
    pub pool: Option<Machine>,
    /// The speedup over a plain loop the model predicted for what it ran; `None` before a
    /// planned call, and for a call planned without a known cost (the first call of a
    /// function pinned to `parallel`).
    pub predicted_speedup: Option<f64>,
    /// The speedup the recent parallel calls measured, averaged: each call's wall time
    /// against the time a loop over its items takes at the site's measured loop cost (never
    /// against a prediction). `None` before a parallel call that could be judged.
    pub observed_speedup: Option<f64>,
    /// How many parallel calls `observed_speedup` rests on (the first ones are judged only
    /// once the loop's cost has been measured over a whole call or confirmed).
    pub observed_calls: u32,
    /// One sentence saying why.
    pub reason: String,
}

impl SiteReport {
    /// The plan a call of `n` items would get from this site's learned costs on `machine`
    /// (pass [`Report::machine`] or [`SiteReport::pool`]); `None` while the cost is unknown.
    pub fn plan_for(&self, n: usize, machine: &Machine) -> Option<Plan> {
        let serial = self.per_item?;
        let costs = Costs {
            serial,
            parallel: self.per_item_in_parallel.unwrap_or(serial),
        };
        Some(crate::model::decide(n, costs, machine).plan)
    }
}

impl Report {
    /// The entry of the site whose name is `name`, or failing that, the first whose name
    /// ends with `::name` (so a function can be found by its bare name).
    pub fn site(&self, name: &str) -> Option<&SiteReport> {
        self.sites.iter().find(|s| s.name == name).or_else(|| {
            self.sites.iter().find(|s| {
                s.name
                    .strip_suffix(name)
                    .is_some_and(|prefix| prefix.ends_with("::"))
            })
        })
    }
}

/// Collects a [`Report`]: a few locks and loads per site, never a measurement. Safe to
/// call from any thread at any time.
pub fn report() -> Report {
    let (machine, machine_measured, cold_measured) = crate::pool::machine_if_known_and_measured();
    let forced = crate::config::mode();
    let sites = all_sites()
        .into_iter()
        .map(|site| site_report(site, &machine, forced))
        .collect();
    Report {
        machine,
        machine_measured,
        cold_measured,
        forced,
        sites,
    }
}

fn site_report(site: &Site, machine: &Machine, forced: Mode) -> SiteReport {
    let per_item = site.per_item();
    let (last, observed) = {
        let learned = site.learned();
        (learned.last, learned.outcome.observed())
    };
    let facts = Facts {
        per_item,
        last: last.as_ref(),
        pinned: site.mode(),
        forced,
        observed,
        machine,
    };
    SiteReport {
        name: site.name(),
        mode: site.mode(),
        calls: site.calls(),
        items: site.items(),
        per_item,
        per_item_in_parallel: site.per_item_in_parallel(),
        last_n: last.map(|l| l.n),
        plan: last.map(|l| l.plan),
        cause: last.map(|l| l.cause),
        pool: last.map(|l| l.machine),
        predicted_speedup: last
            .map(|l| l.predicted_speedup)
            .filter(|speedup| speedup.is_finite()),
        observed_speedup: observed.map(|(speedup, _)| speedup),
        observed_calls: observed.map_or(0, |(_, calls)| calls),
        reason: facts.reason(),
    }
}

/// What a site's reason is written from.
struct Facts<'a> {
    per_item: Option<PerItem>,
    last: Option<&'a LastDecision>,
    pinned: Mode,
    forced: Mode,
    /// The averaged observed speedup and how many calls it rests on.
    observed: Option<(f64, u32)>,
    /// The report's pool, for a site with no planned call to name its own.
    machine: &'a Machine,
}

impl Facts<'_> {
    /// The sentence: the cause of what the site does now, then what its parallel runs
    /// measured, with how far to trust it.
    fn reason(&self) -> String {
        let mut reason = self.cause();
        if let Some(note) = self.observed_note() {
            reason.push_str("; ");
            reason.push_str(&note);
        }
        reason
    }

    fn cause(&self) -> String {
        // A mode forced on the process, or pinned on the function, decides every call,
        // whatever the last planned call was.
        if self.forced != Mode::Auto {
            return format!(
                "forced process-wide (`{}={}` or `set_mode(Mode::{})`): {}",
                crate::config::MODE_ENV,
                self.forced,
                mode_variant(self.forced),
                mode_plan(self.forced)
            );
        }
        if self.pinned != Mode::Auto {
            return format!(
                "pinned by `mode = \"{}\"` on the function: {}",
                self.pinned,
                mode_plan(self.pinned)
            );
        }
        let Some(c) = self.per_item else {
            return "not measured yet: the next call profiles its first items".to_owned();
        };
        match self.last {
            Some(last) => last_reason(c, last, self.machine),
            None if self.machine.threads < 2 => format!(
                "{c} per item; 1 thread in this pool: nothing to split: serial"
            ),
            None => format!(
                "{c} per item; every call so far was below the break-even point ({} × {MIN_SPEEDUP}): serial",
                overhead(self.machine)
            ),
        }
    }

    /// How far to trust the observed speedup: few calls, or more than the threads could
    /// give. The threads are those of the last plan when it is parallel; after a loop (a
    /// cap, an outcome), the speedup was measured by earlier calls with threads of their own,
    /// and the loop's one thread says nothing about it.
    fn observed_note(&self) -> Option<String> {
        let (observed, calls) = self.observed?;
        let threads = match self.last.map(|l| l.plan) {
            Some(Plan::Parallel { threads, .. }) => Some(threads.max(1)),
            Some(Plan::Serial) => None,
            None => Some(self.machine.threads.max(1)),
        };
        let mut notes = Vec::new();
        if calls < 3 {
            notes.push(format!(
                "observed {observed:.2}× over {calls} parallel call{} only",
                if calls == 1 { "" } else { "s" }
            ));
        }
        let slower = "the loop's cost was measured slower than the items run now (a cold start or a busy moment)";
        match threads.filter(|&t| observed > t as f64 * 1.05) {
            // One thread has no other thread's caches to gain from.
            Some(1) => notes.push(format!(
                "observed {observed:.2}× on 1 thread: {slower}"
            )),
            Some(threads) => notes.push(format!(
                "observed {observed:.2}× is above the {threads} threads: {slower}, or {threads} threads' caches hold what one thread's could not"
            )),
            None => {}
        }
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

/// What a planned call weighed, in words (`100 items × 2.0 ns = 200.0 ns`): at the cost
/// it was planned on where known (`c`, the site's cost now, where not), and for the items
/// its plan covered, which are fewer than the call's for the rest of a call that profiled
/// its head first.
fn weighed(now: PerItem, last: &LastDecision) -> String {
    let c = last.costs.map_or(now, |costs| costs.serial);
    let work = Nanos(c.work_ns(last.planned));
    // The plan stands until a call re-plans: a cost that has moved far since is told, so
    // that the sentence is not read as today's figures.
    let cost = if moved_far(c.as_nanos(), now.as_nanos().max(1e-6)) {
        format!("{c} (the cost when it was planned; {now} now)")
    } else {
        c.to_string()
    };
    if last.planned == last.n {
        format!("{} items × {cost} = {work}", last.n)
    } else {
        format!(
            "the {} items left of {} after profiling × {cost} = {work}",
            last.planned, last.n
        )
    }
}

/// A figure this many times the one a plan was made with (or less than its inverse) is
/// said beside the plan's.
const MOVED_SINCE: f64 = 2.0;

/// Whether a plan's figure `then` is [`MOVED_SINCE`] or more away from `now`, either way.
fn moved_far(then: f64, now: f64) -> bool {
    !(1.0 / MOVED_SINCE..=MOVED_SINCE).contains(&(then / now))
}

/// The pool's cost of going parallel in figures `m`, in words: `the 12.0 µs cost of going
/// parallel`, said to be assumed while the pool's own is not measured yet.
fn overhead(m: &Machine) -> String {
    let cost = Nanos(m.overhead_ns);
    if crate::pool::is_provisional(m) {
        format!("the {cost} cost of going parallel assumed until it is measured")
    } else {
        format!("the {cost} cost of going parallel")
    }
}

/// [`overhead`] in the figures a plan was made with (`then`), with the pool's figures now
/// (`now`, both awake and after idling) when the plan's is far from either, or when the
/// plan assumed a cost that has been measured since: the plan stands until a call
/// re-plans, and the report's header gives today's.
fn overhead_then(then: &Machine, now: &Machine) -> String {
    let assumed = crate::pool::is_provisional(then);
    if assumed && !crate::pool::is_provisional(now) {
        return format!(
            "the {} cost of going parallel assumed when it was planned, before it was measured ({})",
            Nanos(then.overhead_ns),
            figures_now(now)
        );
    }
    let words = overhead(then);
    let moved = |now_ns: f64| moved_far(then.overhead_ns, now_ns.max(1e-3));
    if !assumed && moved(now.overhead_ns) && moved(now.cold_overhead_ns) {
        format!("{words} (when it was planned; {})", figures_now(now))
    } else {
        words
    }
}

/// The pool's cost of going parallel now, in words: `12.0 µs now`, with the cost after
/// idling where it is known (equal to the awake one until it is measured: see
/// `Report::cold_measured`).
fn figures_now(now: &Machine) -> String {
    if now.cold_overhead_ns == now.overhead_ns {
        format!("{} now", Nanos(now.overhead_ns))
    } else {
        format!(
            "{} now, {} after idling",
            Nanos(now.overhead_ns),
            Nanos(now.cold_overhead_ns)
        )
    }
}

/// The fewest items a piece may hold and an item's cost in pieces, for a plan at `costs`
/// whose call had the work to pay for going parallel but made one piece only: items so
/// cheap that a piece worth its scheduling cost holds them all. `None` for any other plan.
fn one_piece(costs: Costs, last: &LastDecision) -> Option<(f64, PerItem)> {
    let m = &last.machine;
    let n = last.planned;
    let above_break_even = costs.serial.work_ns(n) >= MIN_SPEEDUP * m.overhead_ns;
    let in_pieces = crate::model::in_pieces(costs);
    let least = crate::model::piece_floor(in_pieces.as_nanos(), m);
    (above_break_even && m.threads >= 2 && n >= 2 && least >= n as f64)
        .then_some((least, in_pieces))
}

/// Why the model kept a call a loop, in the terms that decided it: too little work for the
/// cost of going parallel, or items that cost more in parallel pieces than in the loop.
fn model_serial_reason(c: PerItem, last: &LastDecision, now: &Machine) -> String {
    let weighed = weighed(c, last);
    let overhead = overhead_then(&last.machine, now);
    let split = last.parallel_speedup;
    let dearer = last
        .costs
        .map(|costs| costs.parallel.as_nanos() / costs.serial.as_nanos().max(1e-3))
        .filter(|ratio| *ratio >= 1.2);
    match dearer {
        Some(ratio) if split.is_finite() && split > 0.0 => format!(
            "{weighed}, but each costs {} in parallel ({ratio:.1}× the loop's): parallel predicted {split:.2}×, under {MIN_SPEEDUP}×: serial",
            last.costs.map_or(c, |costs| costs.parallel)
        ),
        _ if split.is_finite() && split > 0.0 => format!(
            "{weighed}: after {overhead}, parallel predicted {split:.2}×, under {MIN_SPEEDUP}×: serial"
        ),
        _ => match last.costs.and_then(|costs| one_piece(costs, last)) {
            Some((least, in_pieces)) => format!(
                "{weighed}, but at {in_pieces} each in parallel a piece must hold {least:.0} items or more to keep its {} of scheduling under {:.0}% of it, so the call makes one piece: serial",
                Nanos(last.machine.per_piece_ns),
                crate::model::MAX_PIECE_OVERHEAD_SHARE * 100.0
            ),
            None => format!("{weighed}, not {MIN_SPEEDUP}× more than {overhead}: serial"),
        },
    }
}

/// `serial` or `parallel`, for a mode that decides every call.
fn mode_plan(mode: Mode) -> &'static str {
    match mode {
        Mode::Serial => "every call is a loop",
        Mode::Parallel => "every call of two items or more is split",
        Mode::Auto => "decided by measurement",
    }
}

fn last_reason(c: PerItem, last: &LastDecision, now: &Machine) -> String {
    let m = &last.machine;
    let weighed = weighed(c, last);
    let plan = plan_words(last.plan);
    match last.cause {
        // A pin or a force no longer in effect (the report checks those first).
        Cause::Pinned(mode) | Cause::Forced(mode) => format!(
            "{weighed}, run as {mode} by a mode since lifted: {plan}"
        ),
        Cause::OneThread => {
            format!("{weighed}, but the pool has 1 usable thread: nothing to split: serial")
        }
        Cause::Outcome { measured } => format!(
            "the model planned parallel for {weighed}, but parallel measured {measured:.2}× the loop here: serial, parallel tried again later"
        ),
        Cause::Shared { other_calls } => format!(
            "{weighed} while {other_calls} other planned call{} ran in the pool: planned for its share of the threads: {plan}",
            if other_calls == 1 { "" } else { "s" }
        ),
        Cause::Overlapping { calls } => format!(
            "{weighed}, an async call while up to {calls} async calls had run at once in the pool in the last {} ms: planned for its share beside them, as the next is likely to overlap it: {plan}",
            crate::pool::OVERLAPS_REMEMBERED.as_millis()
        ),
        Cause::MeasureLoop => format!(
            "{weighed}: a loop this once, to measure the loop over a whole call before judging parallel runs against it"
        ),
        Cause::Retry => format!(
            "{weighed}: parallel again, to check whether it pays now: {plan}"
        ),
        Cause::Capped { max_threads } => format!(
            "{weighed} against {}, capped at {max_threads} thread{}: {plan}",
            overhead_then(m, now),
            if max_threads == 1 { "" } else { "s" }
        ),
        // `Model` and anything added later.
        _ => match last.plan {
            Plan::Serial => model_serial_reason(c, last, now),
            Plan::Parallel { .. } => format!(
                "{weighed}, well above {}: {plan}",
                overhead_then(m, now)
            ),
        },
    }
}

fn mode_variant(mode: Mode) -> &'static str {
    match mode {
        Mode::Auto => "Auto",
        Mode::Serial => "Serial",
        Mode::Parallel => "Parallel",
    }
}

/// A plan in words: `serial`, or `parallel: 2 threads, pieces ≥ 64`.
fn plan_words(plan: Plan) -> String {
    match plan {
        Plan::Serial => "serial".to_owned(),
        Plan::Parallel { min_len, threads } => format!(
            "parallel: {threads} thread{}, pieces ≥ {min_len}",
            if threads == 1 { "" } else { "s" }
        ),
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.machine;
        if self.forced != Mode::Auto {
            writeln!(
                f,
                "amorsize: mode forced to `{}` for the whole process",
                self.forced
            )?;
        }
        if m.threads < 2 {
            writeln!(f, "amorsize: 1 thread in this pool: nothing to split")?;
        } else if !self.machine_measured {
            writeln!(
                f,
                "amorsize: {} threads; the cost of going parallel is not measured yet (no call in this pool has needed it)",
                m.threads
            )?;
        } else {
            let after_idling = if self.cold_measured {
                format!("{} after it idled", Nanos(m.cold_overhead_ns))
            } else {
                "not measured yet after it idled".to_string()
            };
            writeln!(
                f,
                "amorsize: {} threads; going parallel costs {} with the pool awake, {after_idling}; {} per extra piece",
                m.threads,
                Nanos(m.overhead_ns),
                Nanos(m.per_piece_ns)
            )?;
        }
        let name_w = self
            .sites
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        let plans: Vec<String> = self
            .sites
            .iter()
            .map(|s| match (s.plan, s.last_n) {
                (Some(plan), Some(n)) => format!("{} (n={n})", plan_words(plan)),
                _ => "serial".to_owned(),
            })
            .collect();
        let plan_w = plans
            .iter()
            .map(|p| p.chars().count())
            .max()
            .unwrap_or(9)
            .max(9);
        writeln!(
            f,
            "{:<name_w$}  {:>8}  {:>10}  {:>10}  {:>11}  {:<plan_w$}  {:>9}  {:>8}",
            "site",
            "calls",
            "items",
            "per item",
            "in parallel",
            "last plan",
            "predicted",
            "observed"
        )?;
        for (s, plan) in self.sites.iter().zip(&plans) {
            let speedup = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.2}×"));
            writeln!(
                f,
                "{:<name_w$}  {:>8}  {:>10}  {:>10}  {:>11}  {:<plan_w$}  {:>9}  {:>8}",
                s.name,
                s.calls,
                s.items,
                s.per_item.map_or("-".to_owned(), |c| c.to_string()),
                s.per_item_in_parallel
                    .map_or("-".to_owned(), |c| c.to_string()),
                plan,
                speedup(s.predicted_speedup),
                speedup(s.observed_speedup),
            )?;
            writeln!(f, "{:<name_w$}  └ {}", "", s.reason)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{decide, Decision};

    fn two_cores() -> Machine {
        Machine {
            threads: 2,
            overhead_ns: 12_000.0,
            cold_overhead_ns: 120_000.0,
            per_piece_ns: 100.0,
        }
    }

    fn last(n: usize, per_item_ns: f64, cause: Cause, m: Machine) -> LastDecision {
        let decision = decide(n, Costs::uniform(PerItem::from_nanos(per_item_ns)), &m);
        LastDecision::new(n, &decision, cause, m)
    }

    fn reason(per_item: Option<PerItem>, last: Option<&LastDecision>, m: &Machine) -> String {
        Facts {
            per_item,
            last,
            pinned: Mode::Auto,
            forced: Mode::Auto,
            observed: None,
            machine: m,
        }
        .reason()
    }

    #[test]
    fn the_header_says_when_the_cost_after_idling_is_not_measured() {
        let report = |cold_measured| Report {
            machine: two_cores(),
            machine_measured: true,
            cold_measured,
            forced: Mode::Auto,
            sites: Vec::new(),
        };
        let header = report(false).to_string();
        assert!(
            header.contains("12.0 µs with the pool awake, not measured yet after it idled;"),
            "{header}"
        );
        let header = report(true).to_string();
        assert!(
            header.contains("12.0 µs with the pool awake, 120.0 µs after it idled;"),
            "{header}"
        );
    }

    #[test]
    fn reasons_name_the_numbers() {
        let m = two_cores();
        let c = Some(PerItem::from_nanos(2.0));
        let r = reason(c, Some(&last(100, 2.0, Cause::Model, m)), &m);
        assert!(r.starts_with("100 items × 2.0 ns = 200.0 ns"), "{r}");
        assert!(r.ends_with("12.0 µs cost of going parallel: serial"), "{r}");
        // A call long enough, turned down because its items cost 2.5× as much in parallel.
        let contended = Costs {
            serial: PerItem::from_nanos(700.0),
            parallel: PerItem::from_nanos(1_750.0),
        };
        let run = LastDecision::new(10_000, &decide(10_000, contended, &m), Cause::Model, m)
            .with_costs(contended);
        let r = reason(Some(contended.serial), Some(&run), &m);
        assert!(
            r.starts_with("10000 items × 700.0 ns = 7.0 ms, but each costs 1.8 µs in parallel (2.5× the loop's): parallel predicted 0.80×"),
            "{r}"
        );
        let c = Some(PerItem::from_nanos(1e6));
        let r = reason(c, Some(&last(64, 1e6, Cause::Model, m)), &m);
        assert!(r.contains("64 items × 1.0 ms = 64.0 ms"), "{r}");
        assert!(r.ends_with("parallel: 2 threads, pieces ≥ 2"), "{r}");
    }

    #[test]
    fn a_plan_capped_to_one_thread_says_thread() {
        let one = Plan::Parallel {
            min_len: 125,
            threads: 1,
        };
        assert_eq!(plan_words(one), "parallel: 1 thread, pieces ≥ 125");
        let two = Plan::Parallel {
            min_len: 63,
            threads: 2,
        };
        assert_eq!(plan_words(two), "parallel: 2 threads, pieces ≥ 63");
    }

    #[test]
    fn a_call_too_cheap_to_split_says_so_not_that_it_is_below_the_break_even_point() {
        // Pieces cost 637.3 ns to schedule: a piece worth it holds 12 746 ns of items,
        // 21 244 at 0.6 ns in parallel, so a call of 10 000 makes one piece, though its
        // 29.0 µs of loop are well above 1.25 × 10.7 µs.
        let m = Machine {
            threads: 2,
            overhead_ns: 10_700.0,
            cold_overhead_ns: 10_700.0,
            per_piece_ns: 637.3,
        };
        let costs = Costs {
            serial: PerItem::from_nanos(2.9),
            parallel: PerItem::from_nanos(0.6),
        };
        let decision = decide(10_000, costs, &m);
        assert_eq!(decision.plan, Plan::Serial);
        let last = LastDecision::new(10_000, &decision, Cause::Model, m).with_costs(costs);
        let r = reason(Some(costs.serial), Some(&last), &m);
        assert_eq!(
            r,
            "10000 items × 2.9 ns = 29.0 µs, but at 0.6 ns each in parallel a piece must hold 21244 items or more to keep its 637.3 ns of scheduling under 5% of it, so the call makes one piece: serial"
        );
        // Below the break-even point, that is what is said.
        let short =
            LastDecision::new(1_000, &decide(1_000, costs, &m), Cause::Model, m).with_costs(costs);
        let r = reason(Some(costs.serial), Some(&short), &m);
        assert!(
            r.ends_with("not 1.25× more than the 10.7 µs cost of going parallel: serial"),
            "{r}"
        );
    }

    #[test]
    fn a_cost_of_going_parallel_not_measured_yet_is_said_to_be_assumed() {
        let assumed = crate::pool::provisional_machine(2);
        let r = reason(
            Some(PerItem::from_nanos(2.0)),
            Some(&last(100, 2.0, Cause::Model, assumed)),
            &assumed,
        );
        assert!(
            r.ends_with("the 20.0 µs cost of going parallel assumed until it is measured: serial"),
            "{r}"
        );
        // Measured since the plan was made: the plan's basis, and today's figures.
        let r = reason(
            Some(PerItem::from_nanos(2.0)),
            Some(&last(100, 2.0, Cause::Model, assumed)),
            &two_cores(),
        );
        assert!(
            r.ends_with("the 20.0 µs cost of going parallel assumed when it was planned, before it was measured (12.0 µs now, 120.0 µs after idling): serial"),
            "{r}"
        );
        // Measured figures are stated as they are.
        let m = two_cores();
        let r = reason(
            Some(PerItem::from_nanos(2.0)),
            Some(&last(100, 2.0, Cause::Model, m)),
            &m,
        );
        assert!(
            r.ends_with("the 12.0 µs cost of going parallel: serial"),
            "{r}"
        );
    }

    #[test]
    fn reasons_weigh_what_the_plan_weighed() {
        let m = two_cores();
        // The rest of a profiled call: 37 items left of 100, planned at 400 ns each.
        let planned_at = Costs::uniform(PerItem::from_nanos(400.0));
        let rest = LastDecision::new(100, &decide(37, planned_at, &m), Cause::Model, m)
            .with_costs(planned_at)
            .of_rest(37);
        // The site's cost has moved since; the sentence keeps the plan's numbers.
        let r = reason(Some(PerItem::from_nanos(390.0)), Some(&rest), &m);
        let split = rest.parallel_speedup;
        assert!(split > 0.0 && split < MIN_SPEEDUP, "{split}");
        assert_eq!(
            r,
            format!(
                "the 37 items left of 100 after profiling × 400.0 ns = 14.8 µs: after the 12.0 µs cost of going parallel, parallel predicted {split:.2}×, under 1.25×: serial"
            )
        );
        // A cost that has moved far since the plan is told beside it.
        let r = reason(Some(PerItem::from_nanos(100.0)), Some(&rest), &m);
        assert!(
            r.starts_with("the 37 items left of 100 after profiling × 400.0 ns (the cost when it was planned; 100.0 ns now) = 14.8 µs: "),
            "{r}"
        );
        // The prediction is for those 14.8 µs: 12 µs, then half of them on each thread in 4
        // pieces (of at least 5 items, the least that keeps a piece's cost under 5 %).
        let expected = 14_800.0 / (12_000.0 + 4.0 * 100.0 + 18.5 * 400.0);
        assert!((split - expected).abs() < 0.01, "{split} vs {expected}");
    }

    #[test]
    fn a_plan_made_on_a_far_other_cost_of_going_parallel_says_today_s() {
        let then = Machine {
            overhead_ns: 30_700.0,
            ..two_cores()
        };
        let planned = last(1_000_000, 0.6, Cause::Model, then);
        let now = Machine {
            overhead_ns: 7_400.0,
            cold_overhead_ns: 14_500.0,
            ..two_cores()
        };
        let r = reason(Some(PerItem::from_nanos(0.6)), Some(&planned), &now);
        assert!(
            r.contains("well above the 30.7 µs cost of going parallel (when it was planned; 7.4 µs now, 14.5 µs after idling): parallel"),
            "{r}"
        );
        // Within 2× of either of today's figures, the plan's alone.
        let near = Machine {
            overhead_ns: 20_000.0,
            ..now
        };
        let r = reason(Some(PerItem::from_nanos(0.6)), Some(&planned), &near);
        assert!(
            r.contains("the 30.7 µs cost of going parallel: parallel"),
            "{r}"
        );
    }

    #[test]
    fn reasons_name_the_pool_the_cap_and_the_outcome() {
        let m = two_cores();
        let c = Some(PerItem::from_nanos(1_000.0));
        let one = Machine {
            threads: 1,
            overhead_ns: 0.0,
            cold_overhead_ns: 0.0,
            per_piece_ns: 0.0,
        };
        let r = reason(c, Some(&last(20_000, 1_000.0, Cause::OneThread, one)), &m);
        assert!(
            r.contains("1 usable thread: nothing to split: serial"),
            "{r}"
        );
        assert!(!r.contains("0.0 ns"), "{r}");

        let outcome = LastDecision::new(
            50_000,
            &Decision {
                plan: Plan::Serial,
                serial_ns: 5e7,
                parallel_ns: 2.5e7,
            },
            Cause::Outcome { measured: 0.86 },
            m,
        );
        let r = reason(c, Some(&outcome), &m);
        assert!(
            r.contains("parallel measured 0.86× the loop here: serial"),
            "{r}"
        );

        let capped = Cause::Capped { max_threads: 1 };
        let r = reason(c, Some(&last(20_000, 1_000.0, capped, one)), &m);
        assert!(r.contains("capped at 1 thread: serial"), "{r}");
        // A pin recorded on a call, since lifted: the reason says so.
        let r = reason(
            c,
            Some(&last(20_000, 1_000.0, Cause::Pinned(Mode::Serial), m)),
            &m,
        );
        assert!(r.contains("run as serial by a mode since lifted"), "{r}");
    }

    /// The case: a pinned function after 200 000-item calls of ~500 ns each.
    #[test]
    fn a_pin_or_a_force_is_named_whatever_the_calls_were() {
        let m = two_cores();
        let c = Some(PerItem::from_nanos(500.0));
        let long = last(200_000, 500.0, Cause::Pinned(Mode::Serial), m);
        let pinned = Facts {
            per_item: c,
            last: Some(&long),
            pinned: Mode::Serial,
            forced: Mode::Auto,
            observed: None,
            machine: &m,
        };
        assert_eq!(
            pinned.reason(),
            "pinned by `mode = \"serial\"` on the function: every call is a loop"
        );
        // Even before any call long enough to be recorded.
        let pinned = Facts {
            last: None,
            ..pinned
        };
        assert!(
            pinned.reason().starts_with("pinned by"),
            "{}",
            pinned.reason()
        );
        let forced = Facts {
            forced: Mode::Serial,
            pinned: Mode::Auto,
            ..pinned
        };
        assert_eq!(
            forced.reason(),
            "forced process-wide (`AMORSIZE=serial` or `set_mode(Mode::Serial)`): every call is a loop"
        );
    }

    #[test]
    fn calls_below_the_break_even_point_say_so_and_one_thread_says_nothing_to_split() {
        let m = two_cores();
        let c = Some(PerItem::from_nanos(2.0));
        let r = reason(c, None, &m);
        assert!(
            r.contains("every call so far was below the break-even point"),
            "{r}"
        );
        assert!(r.contains("12.0 µs"), "{r}");
        let one = Machine { threads: 1, ..m };
        let r = reason(c, None, &one);
        assert!(
            r.ends_with("1 thread in this pool: nothing to split: serial"),
            "{r}"
        );
    }

    #[test]
    fn an_observed_speedup_says_how_far_to_trust_it() {
        let m = two_cores();
        let c = Some(PerItem::from_nanos(1_000.0));
        let run = last(100_000, 1_000.0, Cause::Model, m);
        let facts = |observed| Facts {
            per_item: c,
            last: Some(&run),
            pinned: Mode::Auto,
            forced: Mode::Auto,
            observed,
            machine: &m,
        };
        let settled = facts(Some((1.9, 12))).reason();
        assert!(!settled.contains("observed"), "{settled}");
        let early = facts(Some((1.9, 1))).reason();
        assert!(
            early.ends_with("observed 1.90× over 1 parallel call only"),
            "{early}"
        );
        let above = facts(Some((2.4, 9))).reason();
        assert!(
            above.contains("observed 2.40× is above the 2 threads"),
            "{above}"
        );
        // A loop under a cap of one thread after parallel calls measured 1.9×: their
        // speedup is not held against the loop's one thread.
        let one = Machine { threads: 1, ..m };
        let capped = last(100_000, 1_000.0, Cause::Capped { max_threads: 1 }, one);
        assert_eq!(capped.plan, Plan::Serial);
        let r = Facts {
            last: Some(&capped),
            observed: Some((1.9, 12)),
            ..facts(None)
        }
        .reason();
        assert!(!r.contains("is above"), "{r}");
        // A parallel plan on one thread (a forced mode under a cap of one) that measured
        // above the loop has no second thread's caches to explain it.
        let one_thread = LastDecision {
            plan: Plan::Parallel {
                min_len: 125,
                threads: 1,
            },
            ..capped
        };
        let r = Facts {
            last: Some(&one_thread),
            observed: Some((1.3, 12)),
            ..facts(None)
        }
        .reason();
        assert!(r.ends_with("observed 1.30× on 1 thread: the loop's cost was measured slower than the items run now (a cold start or a busy moment)"), "{r}");
    }
}
