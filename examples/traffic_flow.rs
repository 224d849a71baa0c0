//! LSTM against GRU on the hourly traffic volume, 24 h ahead, with calendar covariates, beside the
//! daily and weekly seasonal-naive forecasts.
//!
//! ```text
//! cargo run --release --example traffic_flow
//! ```
//!
//! Writes `runs/traffic_flow/{lstm,gru}/`.

use burn::tensor::Device;
use gatecast_trainer::config::{Cell, Experiment};
use gatecast_trainer::run;

fn main() -> anyhow::Result<()> {
    let mut tables = Vec::new();
    for cell in [Cell::Lstm, Cell::Gru] {
        let mut e = Experiment::default(); // traffic_volume, look-back 168 h, horizon 24 h
        e.model.cell = cell;
        e.data.baseline_seasons = vec![168];
        e.validate().map_err(anyhow::Error::msg)?;
        let dir = std::path::PathBuf::from("runs/traffic_flow").join(cell.to_string());
        let report = run::train(&e, &dir, &[Device::flex()], false, true)?;
        println!(
            "{cell}: {} epochs, {:.0} s",
            report.epochs.len(),
            report.seconds
        );
        tables.push(report.test);
    }
    println!(
        "\ntest split: {} windows, errors in vehicles per hour\n",
        tables[0].windows
    );
    println!("| forecaster | MSE | MAE | RMSE | sMAPE % | MASE (m = 24) |");
    println!("|---|---|---|---|---|---|");
    let rows = tables[0]
        .rows
        .iter()
        .take(1)
        .chain(tables[1].rows.iter().take(1))
        .chain(tables[0].rows.iter().skip(1));
    for r in rows {
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.2} | {:.4} |",
            r.name, r.mse, r.mae, r.rmse, r.smape, r.mase
        );
    }
    // For examples/tests/claims.rs: both cells beat the daily and the weekly seasonal naive.
    let mase = |t: usize, name: &str| {
        tables[t]
            .rows
            .iter()
            .find(|r| r.name == name)
            .expect(name)
            .mase
    };
    println!(
        "check: lstm_mase={} gru_mase={} seasonal24_mase={} seasonal168_mase={}",
        mase(0, "model (lstm)"),
        mase(1, "model (gru)"),
        mase(0, "seasonal_naive(24)"),
        mase(0, "seasonal_naive(168)")
    );
    Ok(())
}
