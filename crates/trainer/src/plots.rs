//! PNG plots of a run: loss curves, and forecast against actual on the test split.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::renderer::EpochRow;

static FONT: Once = Once::new();

/// Plot text uses an embedded DejaVu Sans, so no system font is needed.
fn register_font() {
    FONT.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| ())
            .expect("the embedded DejaVu font parses");
    });
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

/// Train and validation loss per epoch.
pub fn loss_curves(path: &Path, rows: &[EpochRow]) -> Result<()> {
    let pick = |f: fn(&EpochRow) -> f64| rows.iter().map(|r| (r.epoch as f64, f(r))).collect();
    curves(
        path,
        "Loss (MSE, scaled units)",
        "loss",
        &[
            ("train", pick(|r| r.train_loss)),
            ("valid", pick(|r| r.valid_loss)),
        ],
    )
}

/// Lines of `(epoch, value)` points on one linear chart, one colour per named series.
pub fn curves(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<()> {
    lines(path, (900, 540), title, "epoch", y_desc, series)
}

/// Lines of `(x, y)` points on one linear chart of `size` pixels, one colour per named series.
fn lines(
    path: &Path,
    size: (u32, u32),
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let xs = || series.iter().flat_map(|(_, v)| v.iter().map(|p| p.0));
    let first = xs().fold(f64::INFINITY, f64::min);
    let last = xs().fold(f64::NEG_INFINITY, f64::max);
    let (first, last) = if first.is_finite() {
        (first, last.max(first + 1.0))
    } else {
        (0.0, 1.0)
    };
    let (lo, hi) = range(series.iter().flat_map(|(_, v)| v.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(first..last, lo..hi)
        .map_err(|e| anyhow!("{e:?}"))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    let colors = [BLUE, RED, GREEN, MAGENTA, BLACK];
    for (i, (name, points)) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e:?}"))?
            .label(*name)
            .legend(legend_line(color));
    }
    legend_box(&mut chart, SeriesLabelPosition::MiddleRight)?;
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

/// A series' legend entry: a short line in its colour.
fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
}

/// The legend of every labelled series, in a box at `position`.
fn legend_box<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("{e:?}"))
}

/// Forecast against actual over consecutive test steps (`actual[i]`, `forecast[i]` at step i).
pub fn forecast_vs_actual(
    path: &Path,
    title: &str,
    actual: &[f64],
    forecast: &[f64],
    horizon: usize,
) -> Result<()> {
    let indexed = |v: &[f64]| v.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect();
    lines(
        path,
        (1200, 540),
        title,
        &format!("test step (forecasts issued every {horizon} steps)"),
        "",
        &[("actual", indexed(actual)), ("forecast", indexed(forecast))],
    )
}

/// `‖∂L/∂h_t‖` against the time step, log scale, one line per named series.
pub fn gradient_flow(path: &Path, series: &[(String, Vec<f64>)]) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let steps = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(2)
        .max(2);
    let positive = || {
        series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| *v > 0.0)
    };
    let lo = positive().fold(f64::INFINITY, f64::min).max(1e-38);
    let hi = positive().fold(0.0, f64::max).max(lo * 10.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Gradient flow: ||dL/dh_t||, L at the last step",
            ("sans-serif", 24),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(1f64..steps as f64, (lo..hi).log_scale())
        .map_err(|e| anyhow!("{e:?}"))?;
    chart
        .configure_mesh()
        .x_desc("time step t")
        .y_desc("norm (log)")
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    let colors = [RED, BLUE, GREEN, MAGENTA, BLACK, CYAN];
    for (i, (name, values)) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(
                values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v > 0.0)
                    .map(|(t, v)| ((t + 1) as f64, *v)),
                color.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e:?}"))?
            .label(name.clone())
            .legend(legend_line(color));
    }
    legend_box(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}
