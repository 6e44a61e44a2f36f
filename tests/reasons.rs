//! Every sentence of the report is true: each cause named as what it is, on controlled
//! inputs. (The outcome's reason is checked on made-up numbers in `report`'s unit tests; a
//! forced mode from the environment in tests/config.rs, whose children may set variables.)

use amorsize::{Cause, Mode, Plan};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// One test at a time: `forced_by_set_mode` changes the process-wide mode.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

mod support;
use support::spin;

#[amorsize::parallel(mode = "serial")]
fn pinned(x: &u64) -> u64 {
    spin(Duration::from_micros(50));
    x + 1
}

#[test]
fn a_pinned_function_says_it_is_pinned() {
    let _serial = one_at_a_time();
    // 400 items of 50 µs: 20 ms, far above any break-even point, run as a loop by the pin.
    let items: Vec<u64> = (0..400).collect();
    assert_eq!(pinned(&items[0]), 1);
    for _ in 0..2 {
        assert_eq!(par_pinned(&items).len(), 400);
    }
    let report = amorsize::report();
    let site = report.site("pinned").unwrap();
    assert_eq!(site.mode, Mode::Serial);
    if report.machine.threads >= 2 {
        // Long enough to be planned: recorded with its cause.
        assert_eq!(site.plan, Some(Plan::Serial), "{report}");
        assert_eq!(site.cause, Some(Cause::Pinned(Mode::Serial)), "{report}");
    }
    assert_eq!(
        site.reason, "pinned by `mode = \"serial\"` on the function: every call is a loop",
        "{report}"
    );
    // The cost was measured by the loops themselves, never as a "short call".
    assert!(site.per_item.unwrap().as_nanos() >= 50_000.0, "{report}");
}

#[amorsize::parallel(mode = "parallel")]
fn pinned_parallel(x: &u64) -> u64 {
    x + 1
}

#[test]
fn a_call_split_before_its_cost_is_known_predicts_nothing() {
    let _serial = one_at_a_time();
    // The pin splits the first call before anything is measured: no cost, no prediction.
    let items: Vec<u64> = (0..64).collect();
    assert_eq!(par_pinned_parallel(&items)[63], 64);
    let report = amorsize::report();
    let site = report.site("pinned_parallel").unwrap();
    assert_eq!(site.predicted_speedup, None, "{report}");
    let row = report
        .to_string()
        .lines()
        .find(|line| line.starts_with("reasons::pinned_parallel"))
        .map(str::to_owned)
        .unwrap();
    assert!(row.trim_end().ends_with("-         -"), "{row}");
}

#[amorsize::parallel]
fn overridden(x: &u64) -> u64 {
    spin(Duration::from_micros(50));
    x * 2
}

#[test]
fn forced_by_set_mode_says_so_and_lifts() {
    let _serial = one_at_a_time();
    struct BackToAuto;
    impl Drop for BackToAuto {
        fn drop(&mut self) {
            amorsize::set_mode(Mode::Auto);
        }
    }
    let _back = BackToAuto;
    let items: Vec<u64> = (0..400).collect();
    amorsize::set_mode(Mode::Serial);
    assert_eq!(par_overridden(&items).len(), 400);
    let report = amorsize::report();
    assert_eq!(report.forced, Mode::Serial);
    let site = report.site("overridden").unwrap();
    assert_eq!(
        site.reason,
        "forced process-wide (`AMORSIZE=serial` or `set_mode(Mode::Serial)`): every call is a loop",
        "{report}"
    );
    assert!(
        report.to_string().contains("mode forced to `serial`"),
        "{report}"
    );
    amorsize::set_mode(Mode::Auto);
    assert_eq!(par_overridden(&items).len(), 400);
    let report = amorsize::report();
    assert_eq!(report.forced, Mode::Auto);
    assert!(
        !report.site("overridden").unwrap().reason.contains("forced"),
        "{report}"
    );
}

#[amorsize::parallel]
fn cheap(x: &u64) -> u64 {
    x ^ 0x5555
}

#[test]
fn short_calls_name_the_break_even_point_or_the_numbers() {
    let _serial = one_at_a_time();
    let items: Vec<u64> = (0..100).collect();
    for _ in 0..3 {
        assert_eq!(par_cheap(&items).len(), 100);
    }
    let report = amorsize::report();
    let site = report.site("cheap").unwrap();
    assert_eq!(site.plan, Some(Plan::Serial), "{report}");
    // The first call was profiled whole and its plan recorded with the numbers; a machine
    // with one usable thread says that instead.
    if report.machine.threads >= 2 {
        assert_eq!(site.cause, Some(Cause::Model), "{report}");
        assert!(site.reason.starts_with("100 items × "), "{report}");
        // Measured by then, or (no call has needed it: short calls never pay for it) the
        // stand-in, said to be one: while the pool is not measured, or with the figures
        // measured since (another test's calls measure the pool this one shares).
        let assumed = "cost of going parallel assumed until it is measured: serial";
        let since = "cost of going parallel assumed when it was planned, before it was measured (";
        let r = &site.reason;
        assert!(
            r.ends_with("cost of going parallel: serial")
                || (r.ends_with(assumed) && !report.machine_measured)
                || (r.contains(since) && r.ends_with(" now): serial") && report.machine_measured)
                || (r.contains(since)
                    && r.ends_with(" after idling): serial")
                    && report.cold_measured),
            "{report}"
        );
    } else {
        assert!(site.reason.contains("nothing to split"), "{report}");
    }
}

#[amorsize::parallel]
fn spun(x: &u64) -> u64 {
    spin(Duration::from_micros(200));
    *x
}

/// The observed figure compares wall time with the loop at its measured cost, and says how
/// far to trust it; it never exceeds the thread count without saying why.
#[test]
fn the_observed_speedup_says_what_it_rests_on() {
    let _serial = one_at_a_time();
    let items: Vec<u64> = (0..64).collect();
    for _ in 0..6 {
        assert_eq!(par_spun(&items), items);
    }
    let report = amorsize::report();
    let site = report.site("spun").unwrap();
    let threads = site.pool.map_or(report.machine.threads, |m| m.threads);
    if threads < 2 {
        eprintln!("one usable CPU: no parallel call, so no observed speedup to check");
        assert_eq!(site.observed_speedup, None, "{report}");
        return;
    }
    let Some(observed) = site.observed_speedup else {
        // On a loaded machine the first call's parallel pieces can measure the items
        // dearer than the loop (a thread descheduled mid-item), and the model then keeps
        // the loop, so no parallel call is judged: the report must say that instead.
        eprintln!("note: no parallel call was judged; checked that the reason says why");
        assert_eq!(site.plan, Some(amorsize::Plan::Serial), "{report}");
        assert!(site.reason.contains("in parallel"), "{report}");
        return;
    };
    assert!(site.observed_calls >= 1, "{report}");
    if site.observed_calls < 3 {
        assert!(site.reason.contains("parallel call"), "{report}");
    }
    if observed > threads as f64 * 1.05 {
        assert!(site.reason.contains("is above the"), "{report}");
    }
}
