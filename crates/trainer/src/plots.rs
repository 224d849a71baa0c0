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
    // One value (a single epoch, a flat curve) still needs an axis that shows it: pad by a
    // twentieth of its size rather than by a twentieth of a zero spread.
    let spread = if hi > lo { hi - lo } else { hi.abs().max(1.0) };
    let pad = (spread * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

/// Train and validation loss per epoch; `loss` names it in the title (`MSE`, `MAE`, ...).
pub fn loss_curves(path: &Path, rows: &[EpochRow], loss: &str) -> Result<()> {
    let pick = |f: fn(&EpochRow) -> f64| rows.iter().map(|r| (r.epoch as f64, f(r))).collect();
    curves(
        path,
        &format!("Loss ({loss}, scaled units)"),
        "loss",
        &[
            ("train", pick(|r| r.train_loss)),
            ("valid", pick(|r| r.valid_loss)),
        ],
    )
}

/// Lines of `(epoch, value)` points on one linear chart, one colour per named series, each
/// epoch marked with a dot so that a run of one epoch (a line of one point) still shows.
pub fn curves(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<()> {
    let labels = Labels {
        title,
        x: "epoch",
        y: y_desc,
    };
    lines(path, (900, 540), labels, series, None, true)
}

/// Lines of `(x, y)` points on one linear chart of `size` pixels, one colour per named series;
/// `dots` also marks every point.
/// What a line plot says besides its data: the title and the axes' descriptions.
struct Labels<'a> {
    title: &'a str,
    x: &'a str,
    y: &'a str,
}

fn lines(
    path: &Path,
    size: (u32, u32),
    labels: Labels,
    series: &[(&str, Vec<(f64, f64)>)],
    band: Option<(&str, &[(f64, f64)])>,
    dots: bool,
) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    draw_lines(&root, labels, series, band, dots)?;
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

/// One chart of [`Lines`], one above another in a PNG of `width` pixels, each `height` high.
fn stacked(path: &Path, width: u32, height: u32, charts: &[Lines]) -> Result<()> {
    register_font();
    let size = (width, height * charts.len().max(1) as u32);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    for (area, c) in root.split_evenly((charts.len(), 1)).iter().zip(charts) {
        let labels = Labels {
            title: &c.title,
            x: &c.x,
            y: "",
        };
        let band = c.band.as_ref().map(|(n, o)| (n.as_str(), o.as_slice()));
        draw_lines(area, labels, &c.series, band, false)?;
    }
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

/// A chart of [`stacked`]: its title, x-axis description, lines and shaded band (name and
/// outline).
struct Lines<'a> {
    title: String,
    x: String,
    series: Vec<(&'a str, Vec<(f64, f64)>)>,
    band: Option<(String, Vec<(f64, f64)>)>,
}

/// Draws [`lines`]' chart on `root`.
fn draw_lines(
    root: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    Labels {
        title,
        x: x_desc,
        y: y_desc,
    }: Labels,
    series: &[(&str, Vec<(f64, f64)>)],
    band: Option<(&str, &[(f64, f64)])>,
    dots: bool,
) -> Result<()> {
    let xs = || series.iter().flat_map(|(_, v)| v.iter().map(|p| p.0));
    let first = xs().fold(f64::INFINITY, f64::min);
    let last = xs().fold(f64::NEG_INFINITY, f64::max);
    let (first, last) = if first.is_finite() && dots {
        // Half a step either side, so that the first and last dots (a single epoch's too) sit
        // inside the axes rather than on them.
        (first - 0.5, last + 0.5)
    } else if first.is_finite() {
        (first, last.max(first + 1.0))
    } else {
        (0.0, 1.0)
    };
    let band_ys = band
        .into_iter()
        .flat_map(|(_, outline)| outline.iter().map(|p| p.1));
    let (lo, hi) = range(
        series
            .iter()
            .flat_map(|(_, v)| v.iter().map(|p| p.1))
            .chain(band_ys),
    );
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(first..last, lo..hi)
        .map_err(|e| anyhow!("{e:?}"))?;
    // Dotted series are per epoch: label whole epochs only ("3", not "3.0" or "2.5").
    let whole = |x: &f64| {
        if (x - x.round()).abs() < 1e-9 {
            format!("{x:.0}")
        } else {
            String::new()
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc).y_desc(y_desc);
    if dots {
        mesh.x_label_formatter(&whole);
    }
    mesh.draw().map_err(|e| anyhow!("{e:?}"))?;
    // Under the lines, in the second series' colour, faint.
    if let Some((name, outline)) = band {
        let shade = RED.mix(0.15).filled();
        chart
            .draw_series(std::iter::once(Polygon::new(outline.to_vec(), shade)))
            .map_err(|e| anyhow!("{e:?}"))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], shade));
    }
    let colors = [
        BLUE,
        RED,
        GREEN,
        MAGENTA,
        BLACK,
        RGBColor(230, 120, 0),
        RGBColor(0, 160, 160),
        RGBColor(120, 60, 170),
        RGBColor(140, 90, 30),
    ];
    for (i, (name, points)) in series.iter().enumerate() {
        // The first series (the actual values, where there are any) keeps its colour to itself.
        let color = match i {
            0 => colors[0],
            i => colors[1 + (i - 1) % (colors.len() - 1)],
        };
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e:?}"))?
            .label(*name)
            .legend(legend_line(color));
        if dots {
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.1.is_finite())
                        .map(|&p| Circle::new(p, 4, color.filled())),
                )
                .map_err(|e| anyhow!("{e:?}"))?;
        }
    }
    legend_box(&mut chart, SeriesLabelPosition::MiddleRight)
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

/// One target's chart in [`forecast_vs_actual`] and [`forecast_ahead`]: its name, the actual
/// values (or the input's last ones), the forecast, and the first interval level's lower and
/// upper ends over the steps that have them.
#[derive(Debug, Clone, Default)]
pub struct TargetLines {
    /// The target column, the start of its chart's title.
    pub name: String,
    /// Actual values at the forecast's steps, or the input's last values before them.
    pub actual: Vec<f64>,
    /// The forecast.
    pub forecast: Vec<f64>,
    /// The interval's lower and upper ends, from the forecast's first step on.
    pub band: Option<(Vec<f64>, Vec<f64>)>,
}

/// The most targets a forecast plot draws, one chart each.
pub const MAX_PLOTTED_TARGETS: usize = 8;

/// Forecast against actual over consecutive test steps (`actual[i]`, `forecast[i]` at step i),
/// one chart per target (at most [`MAX_PLOTTED_TARGETS`]), one above another; each title is
/// the target's name followed by `what`, and `band` names the shaded interval.
pub fn forecast_vs_actual(
    path: &Path,
    what: &str,
    band: &str,
    targets: &[TargetLines],
    horizon: usize,
) -> Result<()> {
    let indexed = |v: &[f64]| v.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect();
    let charts: Vec<Lines> = targets
        .iter()
        .take(MAX_PLOTTED_TARGETS)
        .map(|t| Lines {
            title: format!("{}{what}", t.name),
            x: format!("test step (forecasts issued every {horizon} steps)"),
            series: vec![
                ("actual", indexed(&t.actual)),
                ("forecast", indexed(&t.forecast)),
            ],
            band: t.band.as_ref().map(|(lo, hi)| {
                // The band's outline: along the lower ends, back along the upper ones.
                let mut outline: Vec<(f64, f64)> = indexed(lo);
                outline.extend(hi.iter().enumerate().rev().map(|(i, y)| (i as f64, *y)));
                (band.to_string(), outline)
            }),
        })
        .collect();
    stacked(path, 1200, chart_height(charts.len()), &charts)
}

/// A forecast after the end of the data (`gatecast forecast --plot`), one chart per target (at
/// most [`MAX_PLOTTED_TARGETS`]), one above another: the input's last values (`actual`) at
/// steps `1 - len ..= 0`, the forecast at steps `1 ..= n`, and the first interval level's ends
/// (named `band`) shaded over the steps that have them; each title is the target's name
/// followed by `what`.
pub fn forecast_ahead(path: &Path, what: &str, band: &str, targets: &[TargetLines]) -> Result<()> {
    let ahead = |v: &[f64]| -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .map(|(i, y)| (i as f64 + 1.0, *y))
            .collect()
    };
    let charts: Vec<Lines> = targets
        .iter()
        .take(MAX_PLOTTED_TARGETS)
        .map(|t| {
            let back = t.actual.len() as f64 - 1.0;
            let history = t
                .actual
                .iter()
                .enumerate()
                .map(|(i, y)| (i as f64 - back, *y))
                .collect();
            Lines {
                title: format!("{}{what}", t.name),
                x: "steps after the input's end".into(),
                series: vec![("input", history), ("forecast", ahead(&t.forecast))],
                band: t.band.as_ref().map(|(lo, hi)| {
                    let mut outline = ahead(lo);
                    outline.extend(ahead(hi).into_iter().rev());
                    (band.to_string(), outline)
                }),
            }
        })
        .collect();
    stacked(path, 1200, chart_height(charts.len()), &charts)
}

/// Pixels per chart: one alone is as tall as every other single chart here, several are
/// shorter so that a stack stays readable.
fn chart_height(charts: usize) -> u32 {
    if charts <= 1 {
        540
    } else {
        400
    }
}

/// A single-series backtest: the actual values (row, value) and each fold's forecast as its own
/// line.
pub fn point_folds(
    path: &Path,
    title: &str,
    actual: Vec<(f64, f64)>,
    folds: Vec<Vec<(f64, f64)>>,
) -> Result<()> {
    let names: Vec<String> = (1..=folds.len()).map(|k| format!("fold {k}")).collect();
    let mut series = vec![("actual", actual)];
    series.extend(names.iter().map(String::as_str).zip(folds));
    let labels = Labels {
        title,
        x: "row",
        y: "",
    };
    lines(path, (1200, 540), labels, &series, None, false)
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

/// The test horizon of up to four series of a panel (the four with the largest volume over it):
/// the last weeks of history, the actual values, the median forecast and its 80% and 95%
/// intervals shaded, one chart each (one chart alone for a panel of one series).
/// `quantiles[k]` is series `k`'s `[level][step]` forecast. With `ahead`, the forecast follows
/// each series' last row (`gatecast forecast`: no actual values yet, the volume read over the
/// last horizon of history).
pub fn panel_intervals(
    path: &Path,
    panel: &crate::panel::Panel,
    levels: &[f64],
    quantiles: &[Vec<Vec<f32>>],
    ahead: bool,
) -> Result<()> {
    register_font();
    let h = panel.horizon;
    let pos = |q: f64| levels.iter().position(|l| (l - q).abs() < 1e-9);
    let (Some(m), Some(l80), Some(h80), Some(l95), Some(h95)) =
        (pos(0.5), pos(0.1), pos(0.9), pos(0.025), pos(0.975))
    else {
        return Err(anyhow!(
            "the interval plot needs levels 0.025, 0.1, 0.5, 0.9 and 0.975"
        ));
    };
    let mut order: Vec<usize> = (0..panel.series.len()).collect();
    let origin = |s: &crate::panel::PanelSeries| {
        if ahead {
            s.rows()
        } else {
            s.test_start(h)
        }
    };
    // Over the last horizon of the rows: the test horizon, or ahead the last of history.
    let volume = |k: usize| -> f64 {
        let s = &panel.series[k];
        s.y[s.rows().saturating_sub(h)..]
            .iter()
            .map(|v| v.abs() as f64)
            .sum()
    };
    order.sort_by(|a, b| volume(*b).total_cmp(&volume(*a)));
    order.truncate(4);
    let size = if order.len() == 1 {
        (900, 560)
    } else {
        (1400, 900)
    };
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let areas = if order.len() == 1 {
        vec![root.clone()]
    } else {
        root.split_evenly((2, 2))
    };
    for (area, &k) in areas.iter().zip(&order) {
        let s = &panel.series[k];
        let q = &quantiles[k];
        let start = origin(s);
        let from = start.saturating_sub(3 * h);
        let x = |t: usize| t as f64 - start as f64;
        let history: Vec<(f64, f64)> = (from..start).map(|t| (x(t), s.y[t] as f64)).collect();
        let actual: Vec<(f64, f64)> = (start..s.rows()).map(|t| (x(t), s.y[t] as f64)).collect();
        let line = |lv: usize| -> Vec<(f64, f64)> {
            (0..h).map(|i| (i as f64, q[lv][i] as f64)).collect()
        };
        let band = |lo: usize, hi: usize| -> Vec<(f64, f64)> {
            let mut p = line(lo);
            p.extend(line(hi).into_iter().rev());
            p
        };
        let values = history
            .iter()
            .chain(&actual)
            .map(|p| p.1)
            .chain(q[l95].iter().chain(&q[h95]).map(|v| *v as f64));
        let (lo, hi) = range(values);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("series {}", s.id), ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x(from)..h as f64, lo..hi)
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .x_desc("steps from the forecast origin")
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        let shade = |alpha: f64| BLUE.mix(alpha).filled();
        chart
            .draw_series(std::iter::once(Polygon::new(band(l95, h95), shade(0.15))))
            .map_err(|e| anyhow!("{e:?}"))?
            .label("95% interval")
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 5), (x + 20, y + 5)], BLUE.mix(0.15).filled())
            });
        chart
            .draw_series(std::iter::once(Polygon::new(band(l80, h80), shade(0.3))))
            .map_err(|e| anyhow!("{e:?}"))?
            .label("80% interval")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], BLUE.mix(0.3).filled()));
        for (name, points, color) in [
            ("history", history, BLACK),
            ("actual", actual, RED),
            ("median", line(m), BLUE),
        ] {
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| anyhow!("{e:?}"))?
                .label(name)
                .legend(legend_line(color));
        }
        legend_box(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

/// A backtest's folds on up to four series (the largest by volume over the folds): the history,
/// the actual values, and each fold's median with its 80% interval shaded. `origins[f][k]` is
/// fold `f`'s first forecast row in series `k`, `quantiles[f][k]` its `[level][step]` forecast.
pub fn backtest_folds(
    path: &Path,
    panel: &crate::panel::Panel,
    levels: &[f64],
    origins: &[Vec<usize>],
    quantiles: &[Vec<Vec<Vec<f32>>>],
) -> Result<()> {
    register_font();
    let h = panel.horizon;
    let pos = |q: f64| levels.iter().position(|l| (l - q).abs() < 1e-9);
    let (Some(m), Some(l80), Some(h80)) = (pos(0.5), pos(0.1), pos(0.9)) else {
        return Err(anyhow!("the fold plot needs levels 0.1, 0.5 and 0.9"));
    };
    let (Some(first), Some(last)) = (origins.first(), origins.last()) else {
        return Ok(());
    };
    let mut order: Vec<usize> = (0..panel.series.len()).collect();
    let volume = |k: usize| -> f64 {
        let s = &panel.series[k];
        s.y[first[k]..last[k] + h]
            .iter()
            .map(|v| v.abs() as f64)
            .sum()
    };
    order.sort_by(|a, b| volume(*b).total_cmp(&volume(*a)));
    order.truncate(4);
    let root = BitMapBackend::new(path, (1400, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let areas = root.split_evenly((2, 2));
    for (area, &k) in areas.iter().zip(&order) {
        let s = &panel.series[k];
        let from = first[k].saturating_sub(2 * h);
        let to = last[k] + h;
        let series: Vec<(f64, f64)> = (from..to).map(|t| (t as f64, s.y[t] as f64)).collect();
        let values = series.iter().map(|p| p.1).chain(
            quantiles
                .iter()
                .flat_map(|fold| fold[k][l80].iter().chain(&fold[k][h80]).map(|v| *v as f64)),
        );
        let (lo, hi) = range(values);
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("series {}: {} folds", s.id, origins.len()),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(from as f64..to as f64, lo..hi)
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .x_desc("row")
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .draw_series(LineSeries::new(series, BLACK.stroke_width(2)))
            .map_err(|e| anyhow!("{e:?}"))?
            .label("actual")
            .legend(legend_line(BLACK));
        for (f, fold) in quantiles.iter().enumerate() {
            let o = origins[f][k];
            let line = |lv: usize| -> Vec<(f64, f64)> {
                (0..h)
                    .map(|i| ((o + i) as f64, fold[k][lv][i] as f64))
                    .collect()
            };
            let mut band = line(l80);
            band.extend(line(h80).into_iter().rev());
            chart
                .draw_series(std::iter::once(Polygon::new(band, BLUE.mix(0.25).filled())))
                .map_err(|e| anyhow!("{e:?}"))?;
            let median = chart
                .draw_series(LineSeries::new(line(m), BLUE.stroke_width(2)))
                .map_err(|e| anyhow!("{e:?}"))?;
            if f == 0 {
                median
                    .label("median, 80% interval per fold")
                    .legend(legend_line(BLUE));
            }
        }
        legend_box(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixels of the plot's left 60% (the legend sits at the middle right) that are `color`.
    fn plot_pixels(path: &Path, color: [u8; 3]) -> usize {
        let img = image::open(path).unwrap().to_rgb8();
        let right = img.width() * 3 / 5;
        img.enumerate_pixels()
            .filter(|(x, _, p)| *x < right && p.0 == color)
            .count()
    }

    fn row(epoch: usize, train_loss: f64, valid_loss: f64) -> EpochRow {
        EpochRow {
            epoch,
            train_loss,
            valid_loss,
            ..EpochRow::default()
        }
    }

    /// A run of one epoch used to give a loss plot with axes and no data: a line of one point
    /// draws nothing. Each epoch is now a dot, so both series show.
    #[test]
    fn a_single_epoch_shows_in_the_loss_plot() {
        let dir = std::env::temp_dir().join(format!("gatecast-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("loss.png");
        loss_curves(&path, &[row(1, 0.8, 0.6)], "MSE").unwrap();
        let (blue, red) = (
            plot_pixels(&path, [0, 0, 255]),
            plot_pixels(&path, [255, 0, 0]),
        );
        assert!(blue > 20 && red > 20, "train {blue}, valid {red} pixels");
        // Two epochs: the lines as before, and the dots on them.
        loss_curves(&path, &[row(1, 0.8, 0.6), row(2, 0.5, 0.55)], "MSE").unwrap();
        let (blue2, red2) = (
            plot_pixels(&path, [0, 0, 255]),
            plot_pixels(&path, [255, 0, 0]),
        );
        assert!(
            blue2 > blue && red2 > red,
            "train {blue2}, valid {red2} pixels"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
