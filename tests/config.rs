//! The environment: `AMORSIZE` (valid values force a mode, anything else warns once and means
//! `auto`) and `RAYON_NUM_THREADS` (a pool larger than the machine). Each case runs this test
//! binary again as a child with the variable set.

use std::process::Command;

#[amorsize::parallel]
fn probe(x: &u64) -> u64 {
    x + 1
}

/// Prints the mode the process runs in and the report's reason for a function it called;
/// the parent reads them from the child's output. Run only as that child (`--ignored`): on
/// its own it would check nothing.
#[test]
#[ignore = "a child process of the tests below, not a test of its own"]
fn child_reports_mode() {
    assert_eq!(par_probe(&[1, 2, 3]), vec![2, 3, 4]);
    println!("mode={}", amorsize::mode());
    println!(
        "reason={}",
        amorsize::report().site("probe").unwrap().reason
    );
}

fn run_child(value: &str) -> (String, String) {
    run_child_with(&[("AMORSIZE", value)])
}

fn run_child_with(env: &[(&str, &str)]) -> (String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_reports_mode",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("AMORSIZE")
        .env_remove(amorsize::PROGRESS_ENV)
        .envs(env.iter().copied())
        .output()
        .expect("the test binary runs");
    assert!(out.status.success(), "child failed with {env:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child ran nothing"
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn valid_values_force_the_mode() {
    for (value, mode) in [
        ("serial", "serial"),
        ("PARALLEL", "parallel"),
        (" auto ", "auto"),
    ] {
        let (stdout, stderr) = run_child(value);
        assert!(
            stdout.contains(&format!("mode={mode}")),
            "{value}: {stdout}"
        );
        assert!(!stderr.contains("warning"), "{value}: {stderr}");
    }
}

#[test]
fn a_mode_forced_by_the_environment_is_named_in_the_report() {
    let (stdout, _) = run_child("serial");
    assert!(
        stdout.contains(
            "reason=forced process-wide (`AMORSIZE=serial` or `set_mode(Mode::Serial)`): every call is a loop"
        ),
        "{stdout}"
    );
    let (stdout, _) = run_child("parallel");
    assert!(
        stdout.contains("reason=forced process-wide (`AMORSIZE=parallel`"),
        "{stdout}"
    );
}

#[test]
fn bad_values_warn_once_and_mean_auto() {
    for value in ["fast", "2", "serial,parallel"] {
        let (stdout, stderr) = run_child(value);
        assert!(stdout.contains("mode=auto"), "{value}: {stdout}");
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("amorsize: warning"))
            .collect();
        assert_eq!(warnings.len(), 1, "{value}: {stderr}");
        assert!(
            warnings[0].contains("use one of `auto`, `serial`, `parallel`"),
            "{}",
            warnings[0]
        );
    }
}

/// Prints the model's thread count and rayon's pool size. Run only as the child of the
/// test below (`--ignored`).
#[test]
#[ignore = "a child process of the test below, not a test of its own"]
fn child_reports_threads() {
    println!(
        "threads={} pool={}",
        amorsize::machine().threads,
        rayon::current_num_threads()
    );
}

/// A pool larger than the machine (here four times its CPUs) only takes turns: the model
/// plans for the CPUs, not the pool's threads.
#[test]
fn an_oversized_pool_is_planned_as_the_cpus() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_reports_threads",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RAYON_NUM_THREADS", (4 * cpus).to_string())
        .output()
        .expect("the test binary runs");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("threads={cpus} pool={}", 4 * cpus)),
        "{stdout}"
    );
}

#[test]
fn an_unreadable_progress_value_warns_once_and_means_auto() {
    let (stdout, stderr) = run_child_with(&[(amorsize::PROGRESS_ENV, "sometimes")]);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("AMORSIZE_PROGRESS"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("`sometimes`"), "{stderr}");
    assert!(warnings[0].contains("using `auto`"), "{stderr}");
    assert!(stdout.contains("mode=auto"), "{stdout}");
    // Readable values say nothing (without the `progress` feature, `always` says it has no
    // effect).
    for value in ["never", "auto", "Never "] {
        let (_, stderr) = run_child_with(&[(amorsize::PROGRESS_ENV, value)]);
        assert!(!stderr.contains("AMORSIZE_PROGRESS"), "{value}: {stderr}");
    }
    let (_, stderr) = run_child_with(&[(amorsize::PROGRESS_ENV, "always")]);
    if cfg!(feature = "progress") {
        assert!(!stderr.contains("warning"), "{stderr}");
    } else {
        assert!(
            stderr.contains("built without its `progress` feature"),
            "{stderr}"
        );
    }
}
