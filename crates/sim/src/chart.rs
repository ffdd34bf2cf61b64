//! Why one policy wins, as one SVG: deals over the whole run, the share of
//! refresh runs each policy served on time, and the server balance over the
//! first hours (where the policies' shapes are visible), one colour per
//! policy.
//!
//! Built without a font backend (plotters' SVG backend writes text as SVG
//! `<text>`), so axis labels are drawn by hand.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::engine::Run;
use crate::SimError;

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

const DAY_MS: f64 = 86_400_000.0;
const HOUR_MS: f64 = 3_600_000.0;
/// How much of the start the balance panel shows.
const ZOOM_HOURS: f64 = 12.0;
const WIDTH: u32 = 1000;

fn err(e: impl std::fmt::Display) -> SimError {
    SimError::Chart(e.to_string())
}

/// Draws `runs` (one per policy, same workload) into an SVG at `path`.
pub fn write_svg(runs: &[Run], path: impl AsRef<Path>) -> Result<(), SimError> {
    let svg = render_svg(runs)?;
    std::fs::write(path.as_ref(), svg).map_err(err)
}

/// Like [`write_svg`], returning the SVG text. Each policy gets exactly two
/// lines (deals over time, balance over the first hours) and one bar.
pub fn render_svg(runs: &[Run]) -> Result<String, SimError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, 760)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let title = runs
            .first()
            .map(|r| r.report.workload.clone())
            .unwrap_or_default();
        let (top, rest) = root.split_vertically(300);
        let (middle, bottom) = rest.split_vertically(170);
        deals_panel(&top, runs, &title)?;
        refresh_panel(&middle, runs)?;
        balance_panel(&bottom, runs)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

fn text_style(size: i32) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).color(&BLACK)
}

fn label(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    s: String,
    at: (i32, i32),
) -> Result<(), SimError> {
    area.draw(&Text::new(s, at, text_style(13))).map_err(err)
}

fn deals_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    runs: &[Run],
    title: &str,
) -> Result<(), SimError> {
    let t_end = runs
        .iter()
        .filter_map(|r| r.trace.last().map(|s| s.t))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        / DAY_MS;
    let dmax = runs
        .iter()
        .flat_map(|r| r.trace.iter().map(|s| s.deals))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    area.draw(&Text::new(
        format!("{title}: deals done over days"),
        (70, 8),
        text_style(15),
    ))
    .map_err(err)?;
    let inner = area.margin(30, 25, 70, 20);
    let mut chart = ChartBuilder::on(&inner)
        .build_cartesian_2d(0f64..t_end, 0f64..dmax * 1.02)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .x_labels(0)
        .y_labels(0)
        .draw()
        .map_err(err)?;
    label(area, format!("{dmax:.0}"), (5, 30))?;
    label(area, "0".into(), (5, 270))?;
    label(area, "0 d".into(), (70, 280))?;
    label(area, format!("{t_end:.2} d"), (WIDTH as i32 - 70, 280))?;
    for (i, r) in runs.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let pts = r
            .trace
            .iter()
            .map(|s| (s.t as f64 / DAY_MS, s.deals as f64));
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(err)?;
        let days = r
            .report
            .days_to_target
            .map_or("not finished".to_string(), |d| format!("{d:.2} days"));
        area.draw(&Text::new(
            format!("{}: {days}", r.report.policy),
            (100, 40 + 18 * i as i32),
            text_style(14).color(&c),
        ))
        .map_err(err)?;
    }
    Ok(())
}

fn refresh_panel(area: &DrawingArea<SVGBackend<'_>, Shift>, runs: &[Run]) -> Result<(), SimError> {
    area.draw(&Text::new(
        "refresh runs served on time (of those due)",
        (70, 8),
        text_style(15),
    ))
    .map_err(err)?;
    let left = 250;
    let right = WIDTH as i32 - 250;
    for (i, r) in runs.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let y = 35 + 32 * i as i32;
        let due = r.report.refresh_runs_due;
        let share = if due == 0 {
            1.0
        } else {
            r.report.refresh_runs_on_time as f64 / due as f64
        };
        area.draw(&Text::new(
            r.report.policy.clone(),
            (70, y + 4),
            text_style(14).color(&c),
        ))
        .map_err(err)?;
        area.draw(&Rectangle::new(
            [(left, y), (right, y + 20)],
            RGBColor(230, 230, 230).filled(),
        ))
        .map_err(err)?;
        let w = left + ((right - left) as f64 * share).round() as i32;
        area.draw(&Rectangle::new([(left, y), (w, y + 20)], c.filled()))
            .map_err(err)?;
        let text = if due == 0 {
            "no refresh job".to_string()
        } else {
            format!(
                "{:.1} % ({} of {})",
                share * 100.0,
                r.report.refresh_runs_on_time,
                due
            )
        };
        label(area, text, (right + 8, y + 4))?;
    }
    Ok(())
}

fn balance_panel(area: &DrawingArea<SVGBackend<'_>, Shift>, runs: &[Run]) -> Result<(), SimError> {
    let horizon_ms = (ZOOM_HOURS * HOUR_MS) as i64;
    let in_zoom = |r: &Run| -> Vec<(f64, f64)> {
        r.trace
            .iter()
            .take_while(|s| s.t <= horizon_ms)
            .map(|s| (s.t as f64 / HOUR_MS, s.balance as f64))
            .collect()
    };
    let series: Vec<Vec<(f64, f64)>> = runs.iter().map(in_zoom).collect();
    let (lo, hi) = series
        .iter()
        .flatten()
        .fold((0f64, 1f64), |(lo, hi), &(_, b)| (lo.min(b), hi.max(b)));
    area.draw(&Text::new(
        format!(
            "server balance (tokens), first {ZOOM_HOURS:.0} hours; below 0 = spent ahead of refill"
        ),
        (70, 8),
        text_style(15),
    ))
    .map_err(err)?;
    let inner = area.margin(30, 25, 70, 20);
    let pad = (hi - lo) * 0.03 + 1.0;
    let mut chart = ChartBuilder::on(&inner)
        .build_cartesian_2d(0f64..ZOOM_HOURS, (lo - pad)..(hi + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .x_labels(0)
        .y_labels(0)
        .draw()
        .map_err(err)?;
    // The zero line: at or below it Keepa answers 429.
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (ZOOM_HOURS, 0.0)],
            BLACK.mix(0.4).stroke_width(1),
        )))
        .map_err(err)?;
    let (_, h) = area.dim_in_pixel();
    label(area, format!("{hi:.0}"), (5, 30))?;
    label(area, format!("{lo:.0}"), (5, h as i32 - 40))?;
    label(area, "0 h".into(), (70, h as i32 - 20))?;
    label(
        area,
        format!("{ZOOM_HOURS:.0} h"),
        (WIDTH as i32 - 50, h as i32 - 20),
    )?;
    for (i, pts) in series.into_iter().enumerate().rev() {
        let c = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts, c.mix(0.85).stroke_width(1)))
            .map_err(err)?;
    }
    Ok(())
}
