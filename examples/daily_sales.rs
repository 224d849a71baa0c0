//! A basic (Elman) RNN forecasting one shop's daily revenue 7 days ahead, against the weekly
//! seasonal-naive forecast (MASE with m = 7).
//!
//! ```text
//! cargo run --release --example daily_sales
//! ```
//!
//! Data: `datasets/online_retail_daily.csv` (UCI Online Retail II, gross daily sales). The shop's
//! closed days have no row; summing into calendar days (`resample = "1d"`, `aggregate = "sum"`)
//! makes them zero-revenue days. Writes `runs/daily_sales/`.

use burn::tensor::Device;
use gatecast_data::Calendar;
use gatecast_trainer::config::{Cell, Experiment};
use gatecast_trainer::run;

fn main() -> anyhow::Result<()> {
    let mut e = Experiment::default();
    e.data.path = "datasets/online_retail_daily.csv".into();
    e.data.time_column = "date".into();
    e.data.targets = vec!["revenue".into()];
    e.data.covariates = vec!["orders".into(), "customers".into()];
    e.data.calendar = vec![Calendar::DayOfWeek, Calendar::MonthOfYear];
    e.data.gaps = gatecast_data::GapPolicy::Keep;
    e.data.resample = "1d".into();
    e.data.season = 7;
    e.window.lookback = 28;
    e.window.horizon = 7;
    e.window.stride = 1;
    e.model.cell = Cell::Rnn;
    e.model.hidden_size = 32;
    e.train.epochs = 60;
    e.train.batch_size = 32;
    e.train.patience = 10;
    e.train.lr = 3e-3;
    e.validate().map_err(anyhow::Error::msg)?;
    let report = run::train(
        &e,
        std::path::Path::new("runs/daily_sales"),
        &[Device::flex()],
        false,
        true,
    )?;
    let best = report
        .epochs
        .iter()
        .min_by(|a, b| a.valid_loss.total_cmp(&b.valid_loss))
        .map(|r| r.epoch)
        .unwrap_or(0);
    println!(
        "daily_sales: Elman RNN (hidden 32), look-back 28 days, 7 days ahead; {} epochs (best valid at {best}), {:.0} s\n",
        report.epochs.len(),
        report.seconds
    );
    println!("{}", report.test.markdown());
    println!("run directory: runs/daily_sales (loss.png, forecast.png, forecast.csv, ...)");
    // For examples/tests/claims.rs: the RNN beats the weekly seasonal-naive forecast on MAE and
    // MASE.
    let row = |name: &str| {
        report
            .test
            .rows
            .iter()
            .find(|r| r.name == name)
            .expect(name)
    };
    let (model, seasonal) = (row("model (rnn)"), row("seasonal_naive(7)"));
    println!(
        "check: model_mae={} seasonal_mae={} model_mase={} seasonal_mase={}",
        model.mae, seasonal.mae, model.mase, seasonal.mase
    );
    Ok(())
}
