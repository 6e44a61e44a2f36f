//! `amorsize::report()` after real calls, and forced modes. One test function: the forced
//! mode is process-wide, so nothing else in this binary may run beside it.

use amorsize::{Mode, Plan};
use std::time::{Duration, Instant};

#[amorsize::parallel]
fn tiny_work(x: &u32) -> u32 {
    x.wrapping_mul(3)
}

#[amorsize::parallel]
fn heavy_work(x: &u32) -> u32 {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(500) {
        std::hint::spin_loop();
    }
    x + 1
}

#[test]
fn report_names_each_site_with_its_plan_and_forced_modes_override() {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global();
    let small: Vec<u32> = (0..100).collect();
    let batch: Vec<u32> = (0..40).collect();
    let tiny_expected: Vec<u32> = small.iter().map(tiny_work).collect();
    let heavy_expected: Vec<u32> = batch.iter().map(heavy_work).collect();

    assert_eq!(par_tiny_work(&small), tiny_expected);
    assert_eq!(par_heavy_work(&batch), heavy_expected);
    let report = amorsize::report();
    let tiny = report.site("tiny_work").expect("tiny_work is reported");
    let heavy = report.site("heavy_work").expect("heavy_work is reported");
    assert_eq!(tiny.plan, Some(Plan::Serial));
    assert!(tiny.reason.ends_with("serial"), "{}", tiny.reason);
    // 40 items of 500 µs go parallel wherever a second CPU is usable.
    let parallel_possible = report.machine.threads >= 2;
    if parallel_possible {
        assert!(
            matches!(heavy.plan, Some(Plan::Parallel { .. })),
            "{report}"
        );
        assert!(heavy.reason.contains("threads"), "{}", heavy.reason);
    } else {
        eprintln!("one usable CPU here: checking the serial plans instead of a parallel one");
        assert_eq!(heavy.plan, Some(Plan::Serial), "{report}");
        assert!(
            heavy.reason.contains("nothing to split"),
            "{}",
            heavy.reason
        );
    }
    let text = report.to_string();
    assert!(
        text.contains("report::tiny_work") && text.contains("report::heavy_work"),
        "{text}"
    );
    assert!(text.contains(" ns") && text.contains(" µs"), "{text}");
    let threads = match report.machine.threads {
        1 => "1 thread".to_owned(),
        n => format!("{n} threads"),
    };
    assert!(text.contains(&threads), "{text}");

    // Forced serial: the heavy function runs as a loop; results unchanged. The forced mode
    // is process-wide: put back even if an assertion fails.
    struct BackToAuto;
    impl Drop for BackToAuto {
        fn drop(&mut self) {
            amorsize::set_mode(Mode::Auto);
        }
    }
    let _back_to_auto = BackToAuto;
    amorsize::set_mode(Mode::Serial);
    assert_eq!(amorsize::mode(), Mode::Serial);
    assert_eq!(par_heavy_work(&batch), heavy_expected);
    // Forced parallel: the tiny function is split; results unchanged.
    amorsize::set_mode(Mode::Parallel);
    assert_eq!(par_tiny_work(&small), tiny_expected);
    let report = amorsize::report();
    assert!(
        matches!(
            report.site("tiny_work").unwrap().plan,
            Some(Plan::Parallel { .. })
        ),
        "{report}"
    );
    amorsize::set_mode(Mode::Auto);
    assert_eq!(par_heavy_work(&batch), heavy_expected);
    assert_eq!(
        matches!(
            amorsize::report().site("heavy_work").unwrap().plan,
            Some(Plan::Parallel { .. })
        ),
        parallel_possible
    );
}
