//! What each site chose and why: [`report`] returns plain data with an aligned `Display`.

use crate::machine::machine;
use crate::model::{Machine, Plan, MIN_SPEEDUP};
use crate::site::all_sites;
use crate::units::{Nanos, PerItem};
use std::fmt;

/// A snapshot of every site called so far and the machine facts they decided from.
#[derive(Clone, Debug)]
pub struct Report {
    /// The machine facts the decisions were made from.
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
    /// Learned cost of one item, once measured.
    pub per_item: Option<PerItem>,
    /// Length of the most recent call that was planned (not every short call is recorded).
    pub last_n: Option<u64>,
    /// The plan of that call.
    pub plan: Option<Plan>,
    /// The speedup over a plain loop the model predicted for it.
    pub predicted_speedup: Option<f64>,
    /// The speedup a timed parallel call achieved against the predicted loop time.
    pub observed_speedup: Option<f64>,
    /// One sentence saying why.
    pub reason: String,
}

impl SiteReport {
    /// The plan a call of `n` items would get from this site's learned cost on `machine`
    /// (pass the report's [`Report::machine`]); `None` while the cost is unknown.
    pub fn plan_for(&self, n: usize, machine: &Machine) -> Option<Plan> {
        self.per_item
            .map(|c| crate::model::decide(n, c, machine).plan)
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

/// Collects a [`Report`]. Cheap, and safe to call from any thread at any time.
pub fn report() -> Report {
    let machine = machine();
    let sites = all_sites()
        .into_iter()
        .map(|site| {
            let per_item = site.per_item();
            let last = site.last_decision();
            let reason = reason(per_item, last.map(|l| (l.0, l.1)), &machine);
            SiteReport {
                name: site.name(),
                calls: site.calls(),
                items: site.items(),
                per_item,
                last_n: last.map(|l| l.0),
                plan: last.map(|l| l.1),
                predicted_speedup: last.map(|l| l.2),
                observed_speedup: last.and_then(|l| l.3),
                reason,
            }
        })
        .collect();
    Report { machine, sites }
}

fn reason(per_item: Option<PerItem>, last: Option<(u64, Plan)>, machine: &Machine) -> String {
    let Some(c) = per_item else {
        return "not measured yet: the next call profiles its first items".to_owned();
    };
    let Some((n, plan)) = last else {
        return format!(
            "{} per item; every call so far was far below the {} cost of going parallel: serial",
            c,
            Nanos(machine.overhead_ns)
        );
    };
    let work = Nanos(c.work_ns(n as usize));
    match plan {
        Plan::Serial => format!(
            "{n} items × {} = {work}, not {MIN_SPEEDUP}× more than the {} cost of going parallel: serial",
            c,
            Nanos(machine.overhead_ns)
        ),
        Plan::Parallel { min_len, threads } => format!(
            "{n} items × {} = {work}, well above the {} cost of going parallel: {threads} threads, pieces of ≥ {min_len} items",
            c,
            Nanos(machine.overhead_ns)
        ),
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "amorsize: {} threads; going parallel costs {} with the pool awake, {} after it idled; {} per extra piece",
            self.machine.threads,
            Nanos(self.machine.overhead_ns),
            Nanos(self.machine.cold_overhead_ns),
            Nanos(self.machine.per_piece_ns)
        )?;
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
                (Some(Plan::Serial), Some(n)) => format!("serial (n={n})"),
                (Some(Plan::Parallel { min_len, threads }), Some(n)) => {
                    format!("{threads} thr, min_len {min_len} (n={n})")
                }
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
            "{:<name_w$}  {:>8}  {:>10}  {:>10}  {:<plan_w$}  {:>9}  {:>8}",
            "site", "calls", "items", "per item", "last plan", "predicted", "observed"
        )?;
        for (s, plan) in self.sites.iter().zip(&plans) {
            let speedup = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.2}×"));
            writeln!(
                f,
                "{:<name_w$}  {:>8}  {:>10}  {:>10}  {:<plan_w$}  {:>9}  {:>8}",
                s.name,
                s.calls,
                s.items,
                s.per_item.map_or("-".to_owned(), |c| c.to_string()),
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

    #[test]
    fn reasons_name_the_numbers() {
        let m = Machine {
            threads: 2,
            overhead_ns: 12_000.0,
            cold_overhead_ns: 120_000.0,
            per_piece_ns: 100.0,
        };
        let r = reason(
            Some(PerItem::from_nanos(2.0)),
            Some((100, Plan::Serial)),
            &m,
        );
        assert!(r.starts_with("100 items × 2.0 ns = 200.0 ns"), "{r}");
        assert!(r.ends_with("12.0 µs cost of going parallel: serial"), "{r}");
        let r = reason(
            Some(PerItem::from_nanos(1e6)),
            Some((
                64,
                Plan::Parallel {
                    min_len: 8,
                    threads: 2,
                },
            )),
            &m,
        );
        assert!(r.contains("64 items × 1.0 ms = 64.0 ms"), "{r}");
        assert!(r.contains("2 threads"), "{r}");
    }
}
