//! Rolling-origin backtests of a panel run: `K` folds of one horizon each at the end of the
//! data, `stride` steps apart (the last fold ends with the data). The model trains on what lies
//! before the first fold's origin (or, with `refit`, before each fold's own), early-stopping on
//! the rows just before it; each series' scale comes from its training rows only (and each
//! window's, by default, from its own look-back). Every fold
//! is then forecast from the history up to its origin and scored beside the seasonal naive.

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use gatecast_data::probabilistic::seasonal_naive_quantiles;
use gatecast_data::ScalerKind;

use super::data::{self, Origin, Panel, PanelSeries};
use super::fit::fit;
use super::report::{
    fit_calibration, label, levels, model_quantiles, score, Floored, PanelRow, Quantiles,
};
use crate::artifacts::{write_atomic, write_csv};
use crate::config::Experiment;

/// Where the folds are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Folds {
    /// Number of folds `K`.
    pub count: usize,
    /// Steps between two folds' origins.
    pub stride: usize,
    /// Retrain before every fold (on the rows before its origin), not once before the first.
    pub refit: bool,
}

impl Folds {
    /// Fold `k`'s origin (its first forecast row) in a series of `rows` rows with horizon `h`:
    /// the last fold's horizon ends at the last row.
    pub fn origin(&self, rows: usize, h: usize, k: usize) -> usize {
        rows - h - (self.count - 1 - k) * self.stride
    }

    /// Rows a series needs: one training window and the validation horizon before the first
    /// origin, then the folds.
    pub fn rows_needed(&self, lookback: usize, h: usize) -> usize {
        lookback + 3 * h + (self.count - 1) * self.stride
    }
}

/// `s` as training sees it for a fold whose origin is `origin`: the rows before `origin + h`
/// (the loader holds out that last horizon as test and the `valid` rows before it as
/// validation, and trains on the rest), its offset and scale (of `kind`) from those training
/// rows alone.
pub fn cut(
    s: &PanelSeries,
    origin: usize,
    h: usize,
    valid: usize,
    kind: ScalerKind,
) -> PanelSeries {
    let end = origin + h;
    let c = s.calendar.len() / s.times.len().max(1);
    let (offset, scale) = data::training_scaling(kind, &s.y[..end - h - valid]);
    PanelSeries {
        id: s.id.clone(),
        index: s.index,
        times: s.times[..end].to_vec(),
        y: s.y[..end].to_vec(),
        offset,
        scale,
        calendar: s.calendar[..end * c].to_vec(),
        valid,
    }
}

/// One fold's scores: the model's, then the seasonal naive's.
#[derive(Debug, Clone)]
pub struct FoldScores {
    /// 1-based fold number.
    pub fold: usize,
    /// The first forecast timestamp (of the first series).
    pub origin: String,
    /// `gatecast`, then `seasonal_naive(season)`.
    pub rows: Vec<PanelRow>,
}

/// Another toolkit's mean row over the same folds (from `scripts/bench/gluonts_deepar.py
/// --row FILE`), shown beside gatecast's.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRow {
    /// Who, e.g. `GluonTS DeepAR`.
    pub name: String,
    /// Mean over the folds of `mean_wQuantileLoss`, 80% and 95% coverage, and MASE.
    pub wql: f64,
    /// 80% interval coverage.
    pub coverage80: f64,
    /// 95% interval coverage.
    pub coverage95: f64,
    /// MASE of the median.
    pub mase: f64,
    /// Its wall seconds, end to end.
    pub seconds: f64,
}

impl PeerRow {
    /// Reads the CSV `name,mean_wql,coverage80,coverage95,mase,seconds` (a header, one row).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--peer: cannot read {}", path.display()))?;
        let bad = || {
            format!(
                "--peer {}: line 2: not `name,mean_wql,coverage80,coverage95,mase,seconds` (write it with scripts/bench/gluonts_deepar.py --row)",
                path.display()
            )
        };
        let line = text.lines().nth(1).with_context(bad)?;
        let f: Vec<&str> = line.split(',').collect();
        let [name, rest @ ..] = &f[..] else {
            bail!(bad());
        };
        let v: Vec<f64> = rest
            .iter()
            .map(|x| x.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .with_context(bad)?;
        let [wql, coverage80, coverage95, mase, seconds] = v[..] else {
            bail!(bad());
        };
        Ok(Self {
            name: name.to_string(),
            wql,
            coverage80,
            coverage95,
            mase,
            seconds,
        })
    }
}

/// What a backtest measured.
#[derive(Debug, Clone)]
pub struct Backtest {
    /// Per fold.
    pub folds: Vec<FoldScores>,
    /// Series backtested.
    pub series: usize,
    /// Models trained (1, or one per fold with refit).
    pub fits: usize,
    /// Wall seconds.
    pub seconds: f64,
    /// Another toolkit's mean row, to show beside.
    pub peer: Option<PeerRow>,
}

impl Backtest {
    /// The per-fold and mean table as Markdown.
    pub fn markdown(&self) -> String {
        let f = |v: Option<f64>, d: usize| v.map_or("n/a".into(), |v| format!("{v:.d$}"));
        let mut s = format!(
            "backtest: {} folds over {} series, {} model(s) trained\n\n| fold | origin | model | mean wQL | 80% coverage | 95% coverage | MASE | MAE |\n|---|---|---|---|---|---|---|---|\n",
            self.folds.len(),
            self.series,
            self.fits
        );
        for fold in &self.folds {
            for r in &fold.rows {
                s += &format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                    fold.fold,
                    fold.origin,
                    r.name,
                    f(r.wql, 4),
                    f(r.coverage80, 3),
                    f(r.coverage95, 3),
                    f(r.mase, 3),
                    f(r.mae, 2)
                );
            }
        }
        let names: Vec<&str> = self.folds[0].rows.iter().map(|r| r.name.as_str()).collect();
        for (i, name) in names.iter().enumerate() {
            let mean = |get: fn(&PanelRow) -> Option<f64>| {
                let v: Vec<f64> = self.folds.iter().filter_map(|f| get(&f.rows[i])).collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            };
            s += &format!(
                "| mean | | {name} | {} | {} | {} | {} | {} |\n",
                f(mean(|r| r.wql), 4),
                f(mean(|r| r.coverage80), 3),
                f(mean(|r| r.coverage95), 3),
                f(mean(|r| r.mase), 3),
                f(mean(|r| r.mae), 2)
            );
        }
        if let Some(p) = &self.peer {
            s += &format!(
                "| mean | | {} | {:.4} | {:.3} | {:.3} | {:.3} | n/a |\n\nwall time, end to end: gatecast {:.0} s, {} {:.0} s ({:.2}x)\n",
                p.name,
                p.wql,
                p.coverage80,
                p.coverage95,
                p.mase,
                self.seconds,
                p.name,
                p.seconds,
                self.seconds / p.seconds
            );
        }
        s
    }

    /// The mean of a fold metric of row `name` over the folds.
    pub fn mean(&self, name: &str, get: fn(&PanelRow) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self
            .folds
            .iter()
            .filter_map(|f| f.rows.iter().find(|r| r.name == name).and_then(get))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }
}

/// Runs the backtest of `exp` (a panel experiment) into `dir`: `historical_forecasts.csv` (fold,
/// series, timestamp, actual and one column per level), `backtest.md` (with `peer`'s mean row
/// beside gatecast's), `backtest.png` (the folds
/// of the four largest series), and each model's
/// `metrics.csv` and `model.bpk` (in `fold<k>/` with refit).
pub fn backtest_panel(
    exp: &Experiment,
    folds: Folds,
    dir: &Path,
    device: &Device,
    quiet: bool,
    peer: Option<PeerRow>,
) -> Result<Backtest> {
    let start = std::time::Instant::now();
    if folds.count == 0 || folds.stride == 0 {
        bail!("--folds and --stride must be at least 1");
    }
    let full = data::load(exp)?;
    let exp = &data::with_season(exp, &full);
    let h = full.horizon;
    let need = folds.rows_needed(full.lookback, h);
    let (long, short): (Vec<PanelSeries>, Vec<PanelSeries>) =
        full.series.into_iter().partition(|s| s.rows() >= need);
    if long.is_empty() {
        bail!(
            "{}: no series has the {need} rows {} folds need (window.lookback + 3 x window.horizon + (folds - 1) x stride)",
            exp.data.path,
            folds.count
        );
    }
    if !short.is_empty() && !quiet {
        crate::sayln!(
            "{} series too short for {} folds (fewer than {need} rows) left out: {}",
            short.len(),
            folds.count,
            short
                .iter()
                .take(10)
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    // Embedding ids 0..n over the series backtested.
    let series: Vec<PanelSeries> = long
        .into_iter()
        .enumerate()
        .map(|(k, mut s)| {
            s.index = k;
            s
        })
        .collect();
    let panel_like = |series: Vec<PanelSeries>| Panel {
        series,
        too_short: Vec::new(),
        calendar: full.calendar.clone(),
        lookback: full.lookback,
        horizon: h,
        window_scale: full.window_scale,
    };
    std::fs::create_dir_all(dir)?;
    write_atomic(&dir.join("config.toml"), exp.to_toml().as_bytes())?;
    let levels = levels(exp);
    let season = exp.data.season;
    let counts = panel_like(series.clone()).is_counts();
    let mut scored = Vec::new();
    let mut rows_csv = Vec::new();
    let mut model = None;
    let mut fits = 0;
    let (mut all_origins, mut all_q) = (Vec::new(), Vec::new());
    let mut floored = Floored::default();
    for k in 0..folds.count {
        let origin_of = |s: &PanelSeries| folds.origin(s.rows(), h, k);
        if model.is_none() || folds.refit {
            let kind = exp.scaler_kind();
            let valid = |s: &PanelSeries| data::valid_span(exp, origin_of(s) + h, series.len());
            let train = panel_like(
                series
                    .iter()
                    .map(|s| cut(s, origin_of(s), h, valid(s), kind))
                    .collect(),
            );
            let fold_dir = if folds.refit {
                dir.join(format!("fold{}", k + 1))
            } else {
                dir.to_path_buf()
            };
            std::fs::create_dir_all(&fold_dir)?;
            if !quiet {
                crate::sayln!(
                    "fold {}: training on the rows before {} (the {} rows before it validate)",
                    k + 1,
                    series[0].times[origin_of(&series[0])],
                    valid(&series[0])
                );
            }
            let options = super::FitOptions {
                quiet,
                ..Default::default()
            };
            let fitted = fit(exp, &train, device, &fold_dir, options)?;
            fits += 1;
            // The fold's interval factors, from its own validation horizons.
            let calibration = if exp.intervals.panel_conformal {
                let c = fit_calibration(exp, &train, &fitted.model)?;
                c.save(&fold_dir)?;
                if !quiet {
                    crate::sayln!("fold {}: {}", k + 1, c.describe());
                }
                Some(c)
            } else {
                None
            };
            // Forecasts read the full history up to each origin, scaled as in training.
            let scales: Vec<(f32, f32)> =
                train.series.iter().map(|s| (s.offset, s.scale)).collect();
            model = Some((fitted.model, scales, calibration));
        }
        let (m, scales, calibration) = model.as_ref().expect("trained above");
        let history = panel_like(
            series
                .iter()
                .zip(scales)
                .map(|(s, &(offset, scale))| PanelSeries {
                    offset,
                    scale,
                    ..s.clone()
                })
                .collect(),
        );
        let origins: Vec<Origin> = history
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| Origin {
                series: i,
                origin: origin_of(s),
            })
            .collect();
        let mut model_q =
            model_quantiles(exp, &history, m, &levels, &origins, (counts, &mut floored))?;
        if let Some(c) = calibration {
            c.apply(&levels, &mut model_q, counts);
        }
        let naive: Quantiles = history
            .series
            .iter()
            .map(|s| {
                seasonal_naive_quantiles(&s.y[..origin_of(s)], season, h, &levels, counts)
                    .expect("a series has more rows than a season")
            })
            .collect();
        let at: Vec<(usize, usize)> = (0..history.series.len())
            .map(|i| (i, origin_of(&history.series[i])))
            .collect();
        let rows = vec![
            score(
                "gatecast",
                at.iter()
                    .map(|&(i, o)| (&history.series[i], o, &model_q[i])),
                h,
                &levels,
                season,
            ),
            score(
                &format!("seasonal_naive({season})"),
                at.iter().map(|&(i, o)| (&history.series[i], o, &naive[i])),
                h,
                &levels,
                season,
            ),
        ];
        for &(i, o) in &at {
            let s = &history.series[i];
            for step in 0..h {
                let mut r = vec![
                    (k + 1).to_string(),
                    s.id.clone(),
                    s.times[o + step].format("%Y-%m-%d %H:%M:%S").to_string(),
                    s.y[o + step].to_string(),
                ];
                r.extend(model_q[i].iter().map(|lv| format!("{:.4}", lv[step])));
                rows_csv.push(r);
            }
        }
        all_origins.push(at.iter().map(|&(_, o)| o).collect::<Vec<_>>());
        all_q.push(model_q);
        scored.push(FoldScores {
            fold: k + 1,
            origin: history.series[0].times[origin_of(&history.series[0])].to_string(),
            rows,
        });
    }
    floored.note();
    let mut header = vec![
        "fold".to_string(),
        "series".into(),
        "timestamp".into(),
        "actual".into(),
    ];
    header.extend(levels.iter().map(|l| label(*l)));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write_csv(&dir.join("historical_forecasts.csv"), &header, &rows_csv)?;
    crate::plots::backtest_folds(
        &dir.join("backtest.png"),
        &panel_like(series.clone()),
        &levels,
        &all_origins,
        &all_q,
    )?;
    let report = Backtest {
        folds: scored,
        series: series.len(),
        fits,
        seconds: start.elapsed().as_secs_f64(),
        peer,
    };
    write_atomic(&dir.join("backtest.md"), report.markdown().as_bytes())?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_origins_by_hand() {
        let f = Folds {
            count: 3,
            stride: 7,
            refit: false,
        };
        // 100 rows, horizon 7: the folds forecast rows 79..86, 86..93, 93..100.
        assert_eq!(
            (0..3).map(|k| f.origin(100, 7, k)).collect::<Vec<_>>(),
            [79, 86, 93]
        );
        assert_eq!(f.rows_needed(28, 7), 28 + 21 + 14);
        let g = Folds { stride: 3, ..f };
        assert_eq!(
            (0..3).map(|k| g.origin(100, 7, k)).collect::<Vec<_>>(),
            [87, 90, 93]
        );
    }

    /// What training sees of a fold: no row from the validation horizon on enters the scale, and
    /// no training window's targets reach the validation horizon, which ends at the origin.
    #[test]
    fn a_fold_trains_on_nothing_after_its_origin() {
        let rows = 60;
        let times: Vec<_> = (0..rows)
            .map(|d| {
                chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
                    + chrono::TimeDelta::days(d as i64)
            })
            .collect();
        let (h, origin) = (5, 40);
        // Rows from the validation horizon on are huge: any of them in the scale shows.
        let y: Vec<f32> = (0..rows)
            .map(|t| if t >= origin - h { 1e6 } else { 2.0 })
            .collect();
        let s = PanelSeries {
            id: "a".into(),
            index: 0,
            times,
            y,
            offset: 0.0,
            scale: 0.0,
            calendar: vec![0.5; rows * 2],
            valid: h,
        };
        let c = cut(&s, origin, h, h, ScalerKind::MeanAbs);
        assert_eq!(c.scale, 2.0, "the scale saw rows after the training rows");
        assert_eq!(c.rows(), origin + h);
        assert_eq!(c.calendar.len(), (origin + h) * 2);
        assert_eq!(c.train_end(h), origin - h);
        // A longer validation span moves the training rows' end back with it.
        let longer = cut(&s, origin, h, h + 3, ScalerKind::MeanAbs);
        assert_eq!(longer.train_end(h), origin - h - 3);
        let panel = Panel {
            series: vec![c],
            too_short: Vec::new(),
            calendar: vec!["x".into(), "y".into()],
            lookback: 10,
            horizon: h,
            window_scale: false,
        };
        for o in panel.train_origins(1) {
            assert!(
                o.origin + h <= origin - h,
                "window {o:?} reaches the validation horizon"
            );
        }
    }
}
