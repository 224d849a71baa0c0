//! `gatecast benchmark ett`: the long-horizon (LTSF) protocol on ETTh1 — fixed splits, train-only
//! z-score per channel, every test window, MSE and MAE on the z-scored values — beside the
//! published results of other recurrent and non-recurrent models.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Result};
use burn::tensor::Device;
use gatecast_data::{load_csv, CsvOptions, Scaler, ScalerKind, TimeSplit, WindowConfig};

use crate::artifacts::write_atomic;
use crate::choice::Choice;
use crate::config::{Experiment, Loss};
use crate::run::{train_prepared, Prepared, TrainOptions};

/// One published row: model, source, mode, lookback (if fixed), horizon → (MSE, MAE).
pub struct Published {
    /// Model name.
    pub model: &'static str,
    /// Where the numbers come from.
    pub source: &'static str,
    /// `S` or `M`.
    pub mode: &'static str,
    /// (horizon, MSE, MAE).
    pub rows: &'static [(usize, f64, f64)],
}

/// Published ETTh1 results (z-scored MSE / MAE).
pub const PUBLISHED: &[Published] = &[
    Published {
        model: "LSTMa",
        source: "Informer paper (AAAI 2021), univariate",
        mode: "S",
        rows: &[
            (24, 0.114, 0.272),
            (48, 0.193, 0.358),
            (168, 0.236, 0.392),
            (336, 0.590, 0.698),
            (720, 0.683, 0.768),
        ],
    },
    Published {
        model: "DeepAR",
        source: "Informer paper (AAAI 2021), univariate",
        mode: "S",
        rows: &[
            (24, 0.107, 0.280),
            (48, 0.162, 0.327),
            (168, 0.239, 0.422),
            (336, 0.445, 0.552),
            (720, 0.658, 0.707),
        ],
    },
    Published {
        model: "Informer",
        source: "Informer paper (AAAI 2021), univariate",
        mode: "S",
        rows: &[
            (24, 0.098, 0.247),
            (48, 0.158, 0.319),
            (168, 0.183, 0.346),
            (336, 0.222, 0.387),
            (720, 0.269, 0.435),
        ],
    },
    Published {
        model: "DLinear (L=336)",
        source: "DLinear paper (AAAI 2023), multivariate",
        mode: "M",
        rows: &[
            (96, 0.375, 0.399),
            (192, 0.405, 0.416),
            (336, 0.439, 0.443),
            (720, 0.472, 0.490),
        ],
    },
    Published {
        model: "SegRNN (L=720)",
        source: "SegRNN repository's Table 2 as corrected 2025-07-28, multivariate",
        mode: "M",
        rows: &[
            (96, 0.351, 0.392),
            (192, 0.392, 0.414),
            (336, 0.423, 0.433),
            (720, 0.466, 0.472),
        ],
    },
];

/// Our result for one horizon.
#[derive(Debug, Clone)]
pub struct HorizonResult {
    /// Steps ahead.
    pub horizon: usize,
    /// Test windows evaluated.
    pub windows: usize,
    /// MSE / MAE of the model, z-scored.
    pub mse: f64,
    /// MAE of the model, z-scored.
    pub mae: f64,
    /// Repeat-last baseline, z-scored.
    pub naive_mse: f64,
    /// Repeat-last baseline MAE, z-scored.
    pub naive_mae: f64,
    /// Training wall seconds (of every member together).
    pub seconds: f64,
    /// Epochs run (by every member together).
    pub epochs: usize,
    /// With more than one member: each member's own figures, in the order given; the figures
    /// above are then those of the members' mean forecast. Empty for a single model.
    pub members: Vec<MemberResult>,
}

/// One member of an averaged forecast, scored alone on the same windows.
#[derive(Debug, Clone)]
pub struct MemberResult {
    /// Its look-back.
    pub lookback: usize,
    /// MSE, z-scored.
    pub mse: f64,
    /// MAE, z-scored.
    pub mae: f64,
    /// Training wall seconds.
    pub seconds: f64,
    /// Epochs run.
    pub epochs: usize,
}

/// One model's forecasts of every scored window, keyed by the window's first forecast row.
#[derive(Debug, Clone)]
pub struct WindowForecasts {
    /// The row of each window's first forecast step (look-back start + look-back), in order.
    pub first_rows: Vec<usize>,
    /// `[windows, horizon, targets]` row-major, original units.
    pub values: Vec<f32>,
}

/// The element-wise mean of several models' forecasts of the same windows.
///
/// Models with different look-backs forecast the same rows from windows that start at different
/// rows, so the windows are matched by their first forecast row; every model must have
/// forecast the same rows with the same `[horizon, targets]` (else an error says which did not).
pub fn mean_forecasts(members: &[WindowForecasts]) -> Result<WindowForecasts> {
    let Some(first) = members.first() else {
        bail!("no forecasts to average");
    };
    for (k, m) in members.iter().enumerate().skip(1) {
        if m.first_rows != first.first_rows || m.values.len() != first.values.len() {
            bail!(
                "member {} forecast {} windows ({} values) from row {:?}, member 1 {} ({}) from row {:?}: an average needs the same windows",
                k + 1,
                m.first_rows.len(),
                m.values.len(),
                m.first_rows.first(),
                first.first_rows.len(),
                first.values.len(),
                first.first_rows.first()
            );
        }
    }
    let n = members.len() as f64;
    let values = (0..first.values.len())
        .map(|i| (members.iter().map(|m| m.values[i] as f64).sum::<f64>() / n) as f32)
        .collect();
    Ok(WindowForecasts {
        first_rows: first.first_rows.clone(),
        values,
    })
}

/// How the rows are split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BenchSplit {
    /// ETTh's fixed 12 / 4 / 4 months of hourly rows (8640 / 2880 / 2880).
    EttHourly,
    /// `data.split` fractions of the rows (e.g. 0.7 / 0.1 / 0.2, the LTSF protocol's for the
    /// other datasets), validation and test windows reaching back one look-back.
    Ratios,
}

/// Which split a benchmark run scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scored {
    /// The test split: the reported figures, run once per final configuration.
    Test,
    /// Every validation window instead, for choosing a configuration without reading the test
    /// split (`--validate`); no published row is shown beside it.
    Validation,
}

/// Runs the protocol for each horizon with ETTh's split; `exp` gives the model and training
/// settings.
pub fn ett(
    path: &Path,
    mode: &str,
    horizons: &[usize],
    exp: &Experiment,
    out: &Path,
    device: &Device,
) -> Result<Vec<HorizonResult>> {
    run(
        path,
        mode,
        horizons,
        BenchSplit::EttHourly,
        Scored::Test,
        exp,
        out,
        device,
    )
}

/// Runs the protocol on any file shaped like ETTh1: a `date` column and value columns; the
/// target of S and MS is `OT` (or the last column), M forecasts every column. `scored` says
/// which split the figures come from.
#[allow(clippy::too_many_arguments)]
pub fn run(
    path: &Path,
    mode: &str,
    horizons: &[usize],
    split_kind: BenchSplit,
    scored: Scored,
    exp: &Experiment,
    out: &Path,
    device: &Device,
) -> Result<Vec<HorizonResult>> {
    run_members(
        path,
        mode,
        horizons,
        split_kind,
        scored,
        std::slice::from_ref(exp),
        out,
        device,
    )
}

/// [`run`] for the mean forecast of several models: at each horizon every member trains on its
/// own (with its own early stopping and kept epoch, in `{mode}-L{l}-H{h}-member{k}`), and the
/// figures are those of the element-wise mean of their forecasts, beside each member's own.
/// Members may differ in anything but the data columns, e.g. in look-back or normalisation.
#[allow(clippy::too_many_arguments)]
pub fn run_members(
    path: &Path,
    mode: &str,
    horizons: &[usize],
    split_kind: BenchSplit,
    scored: Scored,
    members: &[Experiment],
    out: &Path,
    device: &Device,
) -> Result<Vec<HorizonResult>> {
    let Some(first) = members.first() else {
        bail!("benchmark: no model to run");
    };
    let (inputs, targets) = columns(path, mode)?;
    let bases = members
        .iter()
        .map(|e| prepare(path, &inputs, &targets, split_kind, e))
        .collect::<Result<Vec<_>>>()?;
    let mut results = Vec::new();
    for &h in horizons {
        let (mut runs, mut forecasts) = (Vec::new(), Vec::new());
        for (k, (exp, base)) in members.iter().zip(&bases).enumerate() {
            let l = exp.window.lookback;
            let mut e = exp.clone();
            e.window.horizon = h;
            e.data.targets = targets.clone();
            e.data.calendar.clear();
            e.data.path = path.display().to_string();
            let mut split = base.split.clone();
            if scored == Scored::Validation {
                // The run's "test" pass reads the validation windows; the test rows stay unread.
                split.test = split.valid.clone();
            }
            let p = Prepared {
                raw: base.raw.clone(),
                scaled: base.scaled.clone(),
                scaler: base.scaler.clone(),
                split,
                window: WindowConfig::new(l, h, inputs.clone(), targets.clone()),
                targets: base.targets.clone(),
                season: base.season,
            };
            let dir = out.join(run_dir_name(mode, l, h, scored, k, members.len()));
            let options = TrainOptions {
                quiet: true,
                ..TrainOptions::default()
            };
            let report = train_prepared(&e, &p, &dir, std::slice::from_ref(device), options)?;
            let (seconds, epochs) = (report.seconds, report.epochs.len());
            let member = WindowForecasts {
                first_rows: report.test_starts.iter().map(|s| s + l).collect(),
                values: report.test_forecasts,
            };
            let r = score(&p, &member, seconds, epochs);
            if members.len() > 1 {
                crate::sayln!(
                    "H={h}, member {} of {} (look-back {l}): MSE {:.4} MAE {:.4}, {} epochs, {:.0} s",
                    k + 1,
                    members.len(),
                    r.mse,
                    r.mae,
                    r.epochs,
                    r.seconds
                );
            }
            runs.push((r, p));
            forecasts.push(member);
        }
        let r = if runs.len() == 1 {
            runs.remove(0).0
        } else {
            let mean = mean_forecasts(&forecasts)?;
            let mut r = score(
                &runs[0].1,
                &mean,
                runs.iter().map(|r| r.0.seconds).sum(),
                runs.iter().map(|r| r.0.epochs).sum(),
            );
            r.members = runs
                .iter()
                .map(|(m, p)| MemberResult {
                    lookback: p.window.lookback,
                    mse: m.mse,
                    mae: m.mae,
                    seconds: m.seconds,
                    epochs: m.epochs,
                })
                .collect();
            r
        };
        crate::sayln!(
            "H={h}: {} {} windows, MSE {:.4} MAE {:.4} (repeat-last {:.4} / {:.4}), {} epochs, {:.0} s{}",
            r.windows,
            split_name(scored),
            r.mse,
            r.mae,
            r.naive_mse,
            r.naive_mae,
            r.epochs,
            r.seconds,
            if members.len() > 1 {
                format!(", mean of {} members", members.len())
            } else {
                String::new()
            }
        );
        results.push(r);
    }
    let table = markdown(mode, members, &results, scored);
    let name = format!("ett-{mode}-L{}{}", first.window.lookback, suffix(scored));
    write_atomic(&out.join(format!("{name}.md")), table.as_bytes())?;
    write_rows(mode, members, out, &name, &results, scored)?;
    crate::say!("\n{table}");
    Ok(results)
}

/// A run's directory under the benchmark's output: `{mode}-L{l}-H{h}`, then `-valid` when
/// validating, then `-member{k}` when averaging several models.
fn run_dir_name(mode: &str, l: usize, h: usize, scored: Scored, k: usize, n: usize) -> String {
    let member = if n > 1 {
        format!("-member{}", k + 1)
    } else {
        String::new()
    };
    format!("{mode}-L{l}-H{h}{}{member}", suffix(scored))
}

/// The run directories' and tables' suffix for `scored`.
fn suffix(scored: Scored) -> &'static str {
    match scored {
        Scored::Test => "",
        Scored::Validation => "-valid",
    }
}

fn split_name(scored: Scored) -> &'static str {
    match scored {
        Scored::Test => "test",
        Scored::Validation => "validation",
    }
}

/// The input and target columns of `mode` (S: OT → OT, M: all → all, MS: all → OT) from the
/// file's header line (the loader reads and validates the rest).
fn columns(path: &Path, mode: &str) -> Result<(Vec<String>, Vec<String>)> {
    let mut header = String::new();
    std::fs::File::open(path)
        .map(std::io::BufReader::new)
        .and_then(|mut f| std::io::BufRead::read_line(&mut f, &mut header))
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    let header = header.trim_end();
    let all: Vec<String> = header
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| c != "date" && !c.is_empty())
        .collect();
    if !header
        .split(',')
        .any(|c| c.trim().trim_start_matches('\u{feff}') == "date")
    {
        bail!(
            "{}: no column named 'date' (the LTSF files' time column); the header has: {header}",
            path.display()
        );
    }
    let target = if all.iter().any(|c| c == "OT") {
        "OT".to_string()
    } else {
        all.last().cloned().unwrap_or_default()
    };
    let ot = vec![target.clone()];
    Ok(match mode {
        "S" => (ot.clone(), ot),
        "M" => (all.clone(), all),
        // Targets first among the inputs (the decoder and the normalisation rely on it).
        "MS" => {
            let mut inputs = ot.clone();
            inputs.extend(all.iter().filter(|c| **c != target).cloned());
            (inputs, ot)
        }
        other => bail!("--mode {other}: expected S, M or MS"),
    })
}

/// The file loaded, split (ETTh's months or `data.split`) and z-scored on the training rows; the
/// window is filled in per horizon.
fn prepare(
    path: &Path,
    inputs: &[String],
    targets: &[String],
    split_kind: BenchSplit,
    exp: &Experiment,
) -> Result<Prepared> {
    let mut options = CsvOptions::new("date");
    options.columns = Some(inputs.to_vec());
    let raw = load_csv(path, &options)?;
    let l = exp.window.lookback;
    let split = match split_kind {
        BenchSplit::EttHourly => TimeSplit::ett_hourly(raw.rows(), l)?,
        BenchSplit::Ratios => {
            let [a, b, c] = exp.data.split;
            TimeSplit::by_ratios(raw.rows(), (a, b, c), l)?
        }
    };
    let scaler = Scaler::fit(ScalerKind::Standard, &raw, split.train.clone());
    let scaled = Arc::new(scaler.transform(&raw));
    let targets = raw.column_indices(targets, "targets")?;
    Ok(Prepared {
        season: exp.data.season_for(raw.frequency),
        window: WindowConfig::new(l, exp.window.horizon, inputs.to_vec(), Vec::new()),
        raw,
        scaled,
        scaler,
        split,
        targets,
    })
}

/// MSE and MAE on the z-scored values over every scored window and target, beside
/// repeat-last's (the last look-back value of `p`'s windows).
fn score(p: &Prepared, forecasts: &WindowForecasts, seconds: f64, epochs: usize) -> HorizonResult {
    let h = p.window.horizon;
    let nt = p.targets.len();
    let (mut se, mut ae, mut nse, mut nae, mut n) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0usize);
    for (w, &first) in forecasts.first_rows.iter().enumerate() {
        for step in 0..h {
            for (k, &col) in p.targets.iter().enumerate() {
                let z = |v: f64| (v - p.scaler.offset[col]) / p.scaler.scale[col];
                let actual = p.scaled.row(first + step)[col] as f64;
                let pred = z(forecasts.values[(w * h + step) * nt + k] as f64);
                let last = p.scaled.row(first - 1)[col] as f64;
                se += (pred - actual).powi(2);
                ae += (pred - actual).abs();
                nse += (last - actual).powi(2);
                nae += (last - actual).abs();
                n += 1;
            }
        }
    }
    HorizonResult {
        horizon: h,
        windows: forecasts.first_rows.len(),
        mse: se / n as f64,
        mae: ae / n as f64,
        naive_mse: nse / n as f64,
        naive_mae: nae / n as f64,
        seconds,
        epochs,
        members: Vec::new(),
    }
}

/// `ett-{mode}-L{l}.csv`: one row per horizon with what reproduces it (each run directory also
/// has its config.toml); for a mean of several models, the mean's row (`member` = `mean`, the
/// first member's settings) and then one row per member.
fn write_rows(
    mode: &str,
    members: &[Experiment],
    out: &Path,
    name: &str,
    results: &[HorizonResult],
    scored: Scored,
) -> Result<()> {
    let header = [
        "dataset",
        "mode",
        "lookback",
        "horizon",
        "windows",
        "mse",
        "mae",
        "repeat_last_mse",
        "repeat_last_mae",
        "epochs",
        "seconds",
        "seed",
        "cell",
        "hidden",
        "layers",
        "lr",
        "last_value_norm",
        "run_dir",
        "member",
        "split",
    ];
    let n = members.len();
    let row = |exp: &Experiment,
               r: &HorizonResult,
               figures: [f64; 3],
               epochs: usize,
               member: String,
               dir: String| {
        let l = exp.window.lookback;
        vec![
            "ETTh1".into(),
            mode.into(),
            l.to_string(),
            r.horizon.to_string(),
            r.windows.to_string(),
            format!("{:.6}", figures[0]),
            format!("{:.6}", figures[1]),
            format!("{:.6}", r.naive_mse),
            format!("{:.6}", r.naive_mae),
            epochs.to_string(),
            format!("{:.1}", figures[2]),
            exp.train.seed.to_string(),
            exp.model.cell.to_string(),
            exp.model.hidden_size.to_string(),
            exp.model.num_layers.to_string(),
            exp.train.lr.to_string(),
            exp.model.last_value_norm.to_string(),
            dir,
            member,
            split_name(scored).into(),
        ]
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    for r in results {
        let dir = |k: usize, l: usize| {
            out.join(run_dir_name(mode, l, r.horizon, scored, k, n))
                .display()
                .to_string()
        };
        if n == 1 {
            let e = &members[0];
            let l = e.window.lookback;
            rows.push(row(
                e,
                r,
                [r.mse, r.mae, r.seconds],
                r.epochs,
                String::new(),
                dir(0, l),
            ));
            continue;
        }
        rows.push(row(
            &members[0],
            r,
            [r.mse, r.mae, r.seconds],
            r.epochs,
            "mean".into(),
            out.display().to_string(),
        ));
        for (k, (e, m)) in members.iter().zip(&r.members).enumerate() {
            rows.push(row(
                e,
                r,
                [m.mse, m.mae, m.seconds],
                m.epochs,
                (k + 1).to_string(),
                dir(k, m.lookback),
            ));
        }
    }
    crate::artifacts::write_csv(&out.join(format!("{name}.csv")), &header, &rows)
}

/// A member's settings in a line: cell, look-back, state, normalisation, cycle, channel mix,
/// loss.
fn describe(exp: &Experiment) -> String {
    let norm = if exp.model.revin {
        ", RevIN"
    } else if exp.model.last_value_norm {
        ", last-value norm"
    } else {
        ""
    };
    let cycle = match exp.model.cycle {
        0 => String::new(),
        n => format!(", learned cycle of {n} steps"),
    };
    let mix = if exp.model.channel_mix {
        ", channel mix"
    } else {
        ""
    };
    let cell = segment_options(exp);
    let loss = exp.train.mixed_name(&match exp.train.loss {
        Loss::Huber => format!("huber (delta {})", exp.train.huber_delta),
        other => other.name().to_string(),
    });
    format!(
        "{}{cell}, look-back {}, hidden {}, {} layer(s){norm}{cycle}{mix}, {loss} loss{}",
        exp.model.cell,
        exp.window.lookback,
        exp.model.hidden_size,
        exp.model.num_layers,
        strided(exp)
    )
}

/// `, sLSTM cell` and `, reversed view` for a segment model with them, nothing for plain
/// SegRNN.
fn segment_options(exp: &Experiment) -> String {
    let m = &exp.model;
    let mut out = String::new();
    if m.is_segrnn() && m.segment_cell == gatecast_model::forecast::SegCell::SLstm {
        out += ", sLSTM cell";
    }
    if m.is_segrnn() && m.reverse_view {
        out += ", reversed view";
    }
    out
}

/// `, training windows: one in k` when the experiment's stride is not the protocol's 1.
fn strided(exp: &Experiment) -> String {
    match exp.window.stride {
        1 => String::new(),
        k => format!(", training windows: one in {k}"),
    }
}

fn markdown(
    mode: &str,
    members: &[Experiment],
    results: &[HorizonResult],
    scored: Scored,
) -> String {
    let exp = &members[0];
    let what = if members.len() == 1 {
        format!(
            "look-back {}, {} (hidden {}, {} layer(s){}){}",
            exp.window.lookback,
            exp.model.cell,
            exp.model.hidden_size,
            exp.model.num_layers,
            segment_options(exp),
            strided(exp)
        )
    } else {
        format!(
            "the mean forecast of {} models ({})",
            members.len(),
            members
                .iter()
                .enumerate()
                .map(|(k, e)| format!("{}: {}", k + 1, describe(e)))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    let mut s = format!(
        "ETTh1, mode {mode}, {what}; MSE / MAE on z-scored values, every {} window\n\n| model | {} |\n|---|{}\n",
        split_name(scored),
        results.iter().map(|r| format!("H{}", r.horizon)).collect::<Vec<_>>().join(" | "),
        "---|".repeat(results.len()),
    );
    let cell = |v: Option<(f64, f64)>| {
        v.map(|(a, b)| format!("{a:.3} / {b:.3}"))
            .unwrap_or_else(|| "–".into())
    };
    let label = if members.len() == 1 {
        format!("gatecast {}", exp.model.cell)
    } else {
        format!("gatecast, mean of {} members", members.len())
    };
    s += &format!(
        "| {label} | {} |\n",
        results
            .iter()
            .map(|r| cell(Some((r.mse, r.mae))))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    if members.len() > 1 {
        for k in 0..members.len() {
            s += &format!(
                "| member {} alone | {} |\n",
                k + 1,
                results
                    .iter()
                    .map(|r| cell(r.members.get(k).map(|m| (m.mse, m.mae))))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
    }
    s += &format!(
        "| repeat-last | {} |\n",
        results
            .iter()
            .map(|r| cell(Some((r.naive_mse, r.naive_mae))))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    if scored == Scored::Validation {
        // Published rows are test figures: not comparable.
        return s;
    }
    let published_mode = if mode == "S" { "S" } else { "M" };
    for p in PUBLISHED.iter().filter(|p| p.mode == published_mode) {
        let values: Vec<String> = results
            .iter()
            .map(|r| cell(p.rows.iter().find(|x| x.0 == r.horizon).map(|x| (x.1, x.2))))
            .collect();
        s += &format!("| {} ({}) | {} |\n", p.model, p.source, values.join(" | "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_forecast_averages_the_same_windows_and_refuses_others() {
        // Two windows of horizon 2, one target: the members' values average element-wise.
        let a = WindowForecasts {
            first_rows: vec![100, 101],
            values: vec![1.0, 2.0, 3.0, 4.0],
        };
        let b = WindowForecasts {
            first_rows: vec![100, 101],
            values: vec![3.0, 2.0, -3.0, 8.0],
        };
        let c = WindowForecasts {
            first_rows: vec![100, 101],
            values: vec![2.0, 5.0, 0.0, 0.0],
        };
        let mean = mean_forecasts(&[a.clone(), b.clone(), c]).unwrap();
        assert_eq!(mean.first_rows, [100, 101]);
        assert_eq!(mean.values, [2.0, 3.0, 0.0, 4.0]);
        assert_eq!(
            mean_forecasts(std::slice::from_ref(&a)).unwrap().values,
            a.values
        );
        // Windows forecasting other rows cannot be averaged with these.
        let shifted = WindowForecasts {
            first_rows: vec![101, 102],
            ..b
        };
        let e = mean_forecasts(&[a, shifted]).unwrap_err().to_string();
        assert!(e.contains("member 2") && e.contains("same windows"), "{e}");
        assert!(mean_forecasts(&[]).is_err());
    }
}
