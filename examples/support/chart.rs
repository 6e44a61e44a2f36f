//! Line charts as SVG files, shared by the chart-writing examples and `tests/charts.rs`.
//! Uses plotters' SVG backend only: no system fonts or C libraries (text is left to the
//! SVG viewer).

// Each example uses part of this shared module.
#![allow(dead_code)]

use plotters::prelude::*;
use std::error::Error;
use std::path::{Path, PathBuf};

/// One line of a chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A vertical line at `x` with a label, e.g. where amorsize switches to parallel.
pub struct Marker {
    pub x: f64,
    pub label: String,
}

/// What to draw.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Logarithmic x axis (input lengths, split lengths).
    pub log_x: bool,
    pub series: &'a [Series],
    pub markers: &'a [Marker],
}

/// Where the examples write their charts: `target/amorsize/` (under `CARGO_TARGET_DIR` when
/// set), created if needed.
pub fn output_dir() -> std::io::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("amorsize");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

const COLORS: [RGBColor; 6] = [
    RGBColor(90, 90, 90),
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
];

/// Draws `chart` into `file_name` under [`output_dir`] and prints where it went.
pub fn write_to_output(file_name: &str, chart: &Chart) -> Result<PathBuf, Box<dyn Error>> {
    let path = output_dir()?.join(file_name);
    write_svg(&path, chart)?;
    println!("wrote {}", path.display());
    Ok(path)
}

/// Draws `chart` into the SVG file at `path`.
pub fn write_svg(path: &Path, chart: &Chart) -> Result<(), Box<dyn Error>> {
    let points = chart.series.iter().flat_map(|s| s.points.iter());
    let (mut x_min, mut x_max, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for &(x, y) in points {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_max = y_max.max(y);
    }
    if !x_min.is_finite() || !x_max.is_finite() {
        return Err("a chart needs at least one point".into());
    }
    if x_max <= x_min {
        x_max = x_min + 1.0;
    }
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(chart.title, ("sans-serif", 22))
        .margin(16)
        .margin_right(48)
        .x_label_area_size(48)
        .y_label_area_size(64);
    if chart.log_x {
        let mut ctx = builder.build_cartesian_2d((x_min..x_max).log_scale(), 0.0..y_max)?;
        draw(&mut ctx, chart, y_max)?;
    } else {
        let mut ctx = builder.build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
        draw(&mut ctx, chart, y_max)?;
    }
    root.present()?;
    Ok(())
}

fn draw<'a, X>(
    ctx: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<X, plotters::coord::types::RangedCoordf64>,
    >,
    chart: &Chart,
    y_max: f64,
) -> Result<(), Box<dyn Error>>
where
    X: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let whole = |v: &f64| {
        if v.fract() == 0.0 || v.abs() >= 10.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    ctx.configure_mesh()
        .x_label_formatter(&whole)
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, series) in chart.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        ctx.draw_series(LineSeries::new(
            series.points.iter().copied(),
            color.stroke_width(2),
        ))?
        .label(series.name.as_str())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        ctx.draw_series(
            series
                .points
                .iter()
                .map(|&p| Circle::new(p, 3, color.filled())),
        )?;
    }
    for marker in chart.markers {
        let style = BLACK.mix(0.6).stroke_width(1);
        ctx.draw_series(LineSeries::new(
            vec![(marker.x, 0.0), (marker.x, y_max)],
            style,
        ))?;
        ctx.draw_series(std::iter::once(Text::new(
            marker.label.clone(),
            (marker.x, y_max * 0.97),
            ("sans-serif", 14),
        )))?;
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}
