//! The chart examples' SVG output: each file written by the same code the examples run
//! (`examples/support/`) parses as XML, has an `<svg>` root, and contains every plotted series
//! (a line per series, its legend text) and the amorsize marker.
//!
//! roxmltree is a dev-dependency for this check only: a small, pure-Rust XML parser.

#[path = "../examples/support/chart.rs"]
mod chart;
#[path = "../examples/support/sweep.rs"]
mod sweep;

use std::path::{Path, PathBuf};

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("amorsize-charts-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Parses `path` and returns (number of polylines, all text content).
fn check_svg(path: &Path) -> (usize, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", path.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{}", path.display());
    let polylines = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline")
        .count();
    let words: String = doc
        .descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ");
    (polylines, words)
}

fn write(
    dir: &Path,
    name: &str,
    title: &str,
    data: (Vec<chart::Series>, Vec<chart::Marker>),
) -> PathBuf {
    let (series, markers) = data;
    let path = dir.join(name);
    chart::write_svg(
        &path,
        &chart::Chart {
            title,
            x_label: "x",
            y_label: "y",
            log_x: true,
            series: &series,
            markers: &markers,
        },
    )
    .unwrap();
    path
}

#[test]
fn speedup_charts_are_well_formed_and_show_every_strategy() {
    let dir = scratch_dir("speedup");
    let sweeps = sweep::speedup_sweep(sweep::Size::Tiny);
    assert_eq!(sweeps.len(), 3);
    for s in &sweeps {
        let data = s.chart_data();
        let names: Vec<String> = data.0.iter().map(|s| s.name.clone()).collect();
        let markers: Vec<String> = data.1.iter().map(|m| m.label.clone()).collect();
        let path = write(&dir, &format!("speedup_{}.svg", s.site), s.label, data);
        let (polylines, text) = check_svg(&path);
        // One line per strategy (plus the legend's sample lines and any marker).
        assert!(
            polylines >= names.len(),
            "{polylines} lines in {}",
            path.display()
        );
        for name in names.iter().chain(&markers) {
            assert!(
                text.contains(name.as_str()),
                "{name:?} missing from {}",
                path.display()
            );
        }
        assert!(text.contains(s.label));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn worker_sweep_chart_is_well_formed_and_marks_amorsize() {
    let dir = scratch_dir("workers");
    let sweep = sweep::worker_sweep(sweep::Size::Tiny).unwrap();
    assert_eq!(sweep.times_ns.len(), sweep.threads.len());
    assert!(sweep
        .times_ns
        .iter()
        .all(|row| row.len() == sweep.min_lens.len()));
    let data = sweep.chart_data();
    let names: Vec<String> = data.0.iter().map(|s| s.name.clone()).collect();
    let markers: Vec<String> = data.1.iter().map(|m| m.label.clone()).collect();
    let path = write(&dir, "worker_sweep.svg", "worker sweep", data);
    let (polylines, text) = check_svg(&path);
    assert!(polylines >= names.len());
    for name in names.iter().chain(&markers) {
        assert!(text.contains(name.as_str()), "{name:?} missing");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_chart_without_points_is_an_error_not_a_panic() {
    let dir = scratch_dir("empty");
    let result = chart::write_svg(
        &dir.join("empty.svg"),
        &chart::Chart {
            title: "empty",
            x_label: "x",
            y_label: "y",
            log_x: true,
            series: &[],
            markers: &[],
        },
    );
    assert!(result.is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
