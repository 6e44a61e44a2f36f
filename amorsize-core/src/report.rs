//! What each site chose and why: [`report`] returns plain data with an aligned `Display`.

use crate::cause::Cause;
use crate::config::Mode;
use crate::model::{Costs, Machine, Plan, MIN_SPEEDUP};
use crate::site::{all_sites, LastDecision, Site};
use crate::units::{Nanos, PerItem};
use std::fmt;

/// A snapshot of every site called so far and the figures they decided from.
#[derive(Clone, Debug)]
pub struct Report {
    /// The figures of the calling thread's pool (rayon's global pool unless the report is
    /// taken inside `pool.install(..)`), as far as they have been measured: taking a
    /// report never measures anything.
    pub machine: Machine,
    /// One entry per site, in order of first call.
    pub sites: Vec<SiteReport>,
}

/// What one site has learned and decided.
#[derive(Clone, Debug)]
pub struct SiteReport {
    /// The site's name (for annotated functions, the function's path).
    pub name: &'static str,
    /// Calls so far.
    pub calls: u64,
    /// Items processed by those calls.
    pub items: u64,
    /// Learned cost of one item in a plain loop, once measured.
    pub per_item: Option<PerItem>,
    /// Learned cost of one item inside a parallel call's pieces, once a parallel call has
    /// measured it.
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
    /// The speedup over a plain loop the model predicted for what it ran.
    pub predicted_speedup: Option<f64>,
    /// The speedup the last parallel call measured: its wall time against the time a loop
    /// over its items takes at the site's measured loop cost.
    pub observed_speedup: Option<f64>,
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
    let machine = crate::pool::machine_if_known();
    let sites = all_sites()
        .into_iter()
        .map(|site| site_report(site, &machine))
        .collect();
    Report { machine, sites }
}

fn site_report(site: &Site, machine: &Machine) -> SiteReport {
    let per_item = site.per_item();
    let (last, observed) = {
        let learned = site.learned();
        (learned.last, learned.outcome.measured)
    };
    SiteReport {
        name: site.name(),
        calls: site.calls(),
        items: site.items(),
        per_item,
        per_item_in_parallel: site.per_item_in_parallel(),
        last_n: last.map(|l| l.n),
        plan: last.map(|l| l.plan),
        cause: last.map(|l| l.cause),
        pool: last.map(|l| l.machine),
        predicted_speedup: last.map(|l| l.predicted_speedup),
        observed_speedup: observed,
        reason: reason(per_item, last.as_ref(), machine),
    }
}

fn reason(per_item: Option<PerItem>, last: Option<&LastDecision>, machine: &Machine) -> String {
    let Some(c) = per_item else {
        return "not measured yet: the next call profiles its first items".to_owned();
    };
    let Some(last) = last else {
        return format!(
            "{c} per item; every call so far was far below the {} cost of going parallel: serial",
            Nanos(machine.overhead_ns)
        );
    };
    let n = last.n;
    let m = &last.machine;
    let work = Nanos(c.work_ns(n));
    let plan = plan_words(last.plan);
    match last.cause {
        Cause::Pinned(mode) => format!(
            "pinned by `mode = \"{mode}\"` on the function: {plan}"
        ),
        Cause::Forced(mode) => format!(
            "forced process-wide (`{}={mode}` or `set_mode(Mode::{})`): {plan}",
            crate::config::MODE_ENV,
            mode_variant(mode)
        ),
        Cause::OneThread => {
            format!("{n} items × {c} = {work}, but the pool has 1 usable thread: nothing to split: serial")
        }
        Cause::Outcome { measured } => format!(
            "the model planned parallel for {n} items × {c} = {work}, but parallel measured {measured:.2}× the loop here: serial, parallel tried again later"
        ),
        Cause::Shared { other_calls } => format!(
            "{n} items × {c} = {work} while {other_calls} other planned call{} ran in the pool: planned for its share of the threads: {plan}",
            if other_calls == 1 { "" } else { "s" }
        ),
        Cause::MeasureLoop => format!(
            "{n} items × {c} = {work}: a loop this once, to measure the loop over a whole call before judging parallel runs against it"
        ),
        Cause::Retry => format!(
            "{n} items × {c} = {work}: parallel again, to check whether it pays now: {plan}"
        ),
        Cause::Capped { max_threads } => format!(
            "{n} items × {c} = {work} against the {} cost of going parallel, capped at {max_threads} thread{}: {plan}",
            Nanos(m.overhead_ns),
            if max_threads == 1 { "" } else { "s" }
        ),
        // `Model` and anything added later.
        _ => match last.plan {
            Plan::Serial => format!(
                "{n} items × {c} = {work}, not {MIN_SPEEDUP}× more than the {} cost of going parallel: serial",
                Nanos(m.overhead_ns)
            ),
            Plan::Parallel { .. } => format!(
                "{n} items × {c} = {work}, well above the {} cost of going parallel: {plan}",
                Nanos(m.overhead_ns)
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
        Plan::Parallel { min_len, threads } => {
            format!("parallel: {threads} threads, pieces ≥ {min_len}")
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.machine;
        if m.threads < 2 {
            writeln!(f, "amorsize: 1 thread in this pool: nothing to split")?;
        } else {
            writeln!(
                f,
                "amorsize: {} threads; going parallel costs {} with the pool awake, {} after it idled; {} per extra piece",
                m.threads,
                Nanos(m.overhead_ns),
                Nanos(m.cold_overhead_ns),
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

    #[test]
    fn reasons_name_the_numbers() {
        let m = two_cores();
        let c = Some(PerItem::from_nanos(2.0));
        let r = reason(c, Some(&last(100, 2.0, Cause::Model, m)), &m);
        assert!(r.starts_with("100 items × 2.0 ns = 200.0 ns"), "{r}");
        assert!(r.ends_with("12.0 µs cost of going parallel: serial"), "{r}");
        let c = Some(PerItem::from_nanos(1e6));
        let r = reason(c, Some(&last(64, 1e6, Cause::Model, m)), &m);
        assert!(r.contains("64 items × 1.0 ms = 64.0 ms"), "{r}");
        assert!(r.ends_with("parallel: 2 threads, pieces ≥ 2"), "{r}");
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
        let r = reason(
            c,
            Some(&last(20_000, 1_000.0, Cause::Pinned(Mode::Serial), m)),
            &m,
        );
        assert!(r.starts_with("pinned by `mode = \"serial\"`"), "{r}");
    }
}
