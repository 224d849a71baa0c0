//! The experiment a `gatecast train` (or `backtest`, `benchmark`) command line asks for: a
//! config file or the defaults, the flags laid over it, and for a user's own file (`--data`
//! without `--config`) what its sampling step calls for (calendar features, season, window).

use anyhow::{bail, Context, Result};
use gatecast_model::forecast::SegCell;
use gatecast_trainer::config::{
    Cell, Choice, ClipMode, DataConfig, Decoder, Experiment, Loss, Monitor,
};

use crate::TrainArgs;

/// The experiment of `args`; `benchmark` clears calendar covariates and, without `--config`,
/// sets the look-back to 96 and the stride to 1 before validating.
pub(crate) fn experiment(args: &TrainArgs, benchmark: bool) -> Result<Experiment> {
    // Resuming continues the run's own experiment unless another file is given.
    let saved = args
        .out
        .as_ref()
        .filter(|_| args.resume && args.config.is_none())
        .map(|dir| dir.join("config.toml"));
    let mut e = match args.config.as_ref().or(saved.as_ref()) {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--config {}: cannot read", path.display()))?;
            // Validated below, after the flags and the benchmark's own settings.
            Experiment::parse_toml(&text, &path.display().to_string())
                .map_err(anyhow::Error::msg)?
        }
        None => Experiment::default(),
    };
    if let Some(v) = &args.data {
        e.data.path = v.clone();
    }
    apply_data_flags(args, &mut e, benchmark)?;
    if let Some(v) = &args.cell {
        e.model.cell = Cell::parse(v).map_err(anyhow::Error::msg)?;
    }
    if let Some(v) = args.hidden {
        e.model.hidden_size = v;
    }
    if let Some(v) = args.layers {
        e.model.num_layers = v;
    }
    if let Some(v) = args.dropout {
        e.model.dropout = v;
    }
    if let Some(v) = &args.decoder {
        e.model.decoder = Decoder::parse(v).map_err(anyhow::Error::msg)?;
    }
    if args.last_value_norm {
        e.model.last_value_norm = true;
    }
    if let Some(v) = args.segment {
        e.model.segment = v;
    }
    if args.revin {
        e.model.revin = true;
    }
    if let Some(v) = &args.norm {
        apply_norm(v, args, &mut e)?;
    }
    let own_file = args.config.is_none() && !args.resume && args.data.is_some();
    let norm_given = args.norm.is_some() || args.last_value_norm || args.revin;
    if own_file && !benchmark && !e.is_panel() && !panel_asked(args) && !norm_given {
        // No one normalisation suits every file (a trend needs one, a stationary cycle can be
        // hurt by it): docs/benchmarks.md, "Which normalisation for an own file".
        e.model.auto_norm = true;
    }
    if let Some(v) = args.cycle {
        e.model.cycle = v;
    }
    if args.channel_mix {
        e.model.channel_mix = true;
    }
    if args.reverse_view {
        e.model.reverse_view = true;
    }
    if let Some(v) = &args.segment_cell {
        e.model.segment_cell = SegCell::parse(v).map_err(anyhow::Error::msg)?;
    }
    if benchmark {
        e.data.calendar.clear();
        if args.config.is_none() {
            // The LTSF protocol: a look-back of 96, every training window. An experiment file's
            // own stride is kept (the table says so) rather than silently replaced.
            e.window.lookback = 96;
            e.window.stride = 1;
        }
    }
    if let Some(v) = args.lookback {
        e.window.lookback = v;
    }
    if let Some(v) = args.horizon {
        e.window.horizon = v;
    }
    if let Some(v) = args.stride {
        e.window.stride = v;
    }
    if let Some(v) = args.epochs {
        e.train.epochs = v;
    }
    if let Some(v) = args.lr {
        e.train.lr = v;
    }
    if let Some(v) = args.ema_decay {
        e.train.ema_decay = v;
    }
    if let Some(v) = &args.clip {
        e.train.clip = ClipMode::parse(v).map_err(anyhow::Error::msg)?;
    }
    if let Some(v) = &args.loss {
        e.train.loss = Loss::parse(v).map_err(anyhow::Error::msg)?;
    }
    if let Some(v) = args.huber_delta {
        e.train.huber_delta = v;
    }
    if let Some(v) = args.freq_loss {
        e.train.freq_loss = v;
    }
    if let Some(v) = &args.monitor {
        e.train.monitor = Monitor::parse(v).map_err(anyhow::Error::msg)?;
    }
    if let Some(v) = args.seed {
        e.train.seed = v;
    }
    if let Some(v) = &args.levels {
        e.intervals.levels = v.clone();
    }
    if let Some(v) = args.calibration {
        e.intervals.calibration = v;
    }
    if let Some(v) = args.adapt {
        e.intervals.adapt = v;
    }
    if args.panel_conformal {
        e.intervals.panel_conformal = true;
    }
    if let Some(v) = args.valid_windows {
        e.train.valid_windows = v;
    }
    if own_file && !benchmark && e.model.is_segrnn() {
        fit_segrnn(args, &mut e);
    }
    e.validate().map_err(anyhow::Error::msg)?;
    Ok(e)
}

/// `--cell segrnn` on an own file: no calendar features (the segment model reads the look-back
/// alone) unless `--calendar` names some, and where `--segment` is not given and the default
/// does not divide the look-back, the longest segment that does, with a note.
fn fit_segrnn(args: &TrainArgs, e: &mut Experiment) {
    if args.calendar.is_none() {
        e.data.calendar.clear();
    }
    let (l, segment) = (e.window.lookback, e.model.segment);
    if args.segment.is_some() || segment == 0 || l % segment == 0 {
        return;
    }
    let fits = (1..=segment.min(l)).rev().find(|d| l % d == 0).unwrap_or(1);
    gatecast_trainer::tell!(
        "note: {}: segments of {fits} steps, the longest up to {segment} that divides the look-back of {l} (--segment chooses another)",
        e.data.path
    );
    e.model.segment = fits;
}

/// `--norm`: one window normalisation, replacing the config's; with --revin or
/// --last-value-norm as well, they must agree.
fn apply_norm(value: &str, args: &TrainArgs, e: &mut Experiment) -> Result<()> {
    let (last_value, revin, auto) = match value.to_ascii_lowercase().as_str() {
        "none" => (false, false, false),
        "last-value" | "last_value" => (true, false, false),
        "revin" => (false, true, false),
        "auto" => (false, false, true),
        _ => bail!("--norm {value}: expected none, last-value, revin or auto"),
    };
    for (flag, given, wanted) in [
        ("--last-value-norm", args.last_value_norm, last_value),
        ("--revin", args.revin, revin),
    ] {
        if given && !wanted {
            bail!("--norm {value} and {flag}: choose one window normalisation");
        }
    }
    e.model.last_value_norm = last_value;
    e.model.revin = revin;
    e.model.auto_norm = auto;
    Ok(())
}

/// `--time-column`, `--time-format`, `--delimiter`, `--decimal`, `--target`, `--covariates`,
/// `--future-covariates`, `--id-column`, `--calendar`, `--missing`, `--duplicates`, `--gaps`,
/// `--resample`, `--aggregate`, `--likelihood`, `--samples`,
/// `--scaler`, `--static-categorical`, `--static-real`: a user's own CSV
/// with no config file. A file given without --config is read as a user's own: the bundled
/// default's covariates and calendar (hour of day) are dropped unless flags or a file say so,
/// and without `--target` (outside `benchmark`) its one column of numbers is the target.
fn apply_data_flags(args: &TrainArgs, e: &mut Experiment, benchmark: bool) -> Result<()> {
    let own_file = args.config.is_none() && !args.resume && args.data.is_some();
    if let Some(v) = &args.time_column {
        e.data.time_column = v.clone();
    }
    if let Some(v) = &args.time_format {
        e.data.time_format = v.clone();
    }
    if let Some(v) = &args.delimiter {
        e.data.delimiter = v.clone();
    }
    if let Some(v) = &args.decimal {
        e.data.decimal = v.clone();
    }
    if own_file && args.time_column.is_none() {
        find_time_column(e);
    }
    // Before the own file's window, which is fitted to the split.
    if let Some(v) = &args.split_fractions {
        e.data.split = match v[..] {
            [a, b, c] => [a, b, c],
            _ => bail!(
                "--split-fractions {}: three fractions, for training, validation and test (e.g. 0.7,0.1,0.2)",
                v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
            ),
        };
    }
    let target = match &args.target {
        // The benchmark reads ETT's own columns.
        None if own_file && !benchmark => find_target(args, e)?,
        // `--target a,` means a: an empty name is no column.
        given => given
            .as_ref()
            .map(|v| v.iter().filter(|t| !t.trim().is_empty()).cloned().collect()),
    };
    if let Some(v) = target {
        e.data.targets = v;
        if own_file {
            e.data.covariates.clear();
            // The bundled default's 24 is an hourly file's day; a user's file may be daily.
            e.data.season = 0;
        }
    }
    if let Some(v) = &args.id_column {
        e.data.id_column = v.clone();
    }
    if panel_asked(args) && own_file {
        // A panel's season and calendar features follow its step (below); a daily panel's
        // seasonal naive and MASE compare with last week.
        e.data.covariates.clear();
        e.data.season = 7;
        e.data.gaps = gatecast_data::GapPolicy::Interpolate;
        e.window.lookback = 4 * args.horizon.unwrap_or(e.window.horizon).max(7);
    }
    if let Some(v) = args.season {
        e.data.season = v;
    }
    if let Some(v) = &args.missing {
        e.data.missing = policy("--missing", v, "error, interpolate or forward_fill")?;
    }
    if let Some(v) = &args.duplicates {
        e.data.duplicates = policy("--duplicates", v, "error, first, mean or sum")?;
    }
    if let Some(v) = &args.gaps {
        e.data.gaps = policy("--gaps", v, "error, interpolate or keep")?;
    }
    if let Some(v) = &args.resample {
        gatecast_data::parse_frequency(v).map_err(|e| anyhow::anyhow!("--resample: {e}"))?;
        e.data.resample = v.clone();
    }
    if let Some(v) = &args.aggregate {
        e.data.aggregate = match v.to_ascii_lowercase().as_str() {
            "sum" => gatecast_data::Aggregation::Sum,
            "mean" => gatecast_data::Aggregation::Mean,
            _ => bail!("--aggregate '{v}': expected sum or mean (data.aggregate)"),
        };
    }
    // After --target and --id-column, which clear a user's own file's covariates.
    if let Some(v) = &args.covariates {
        e.data.covariates = if v.iter().all(|c| c == "none") {
            Vec::new()
        } else {
            v.clone()
        };
    }
    if let Some(v) = &args.future_covariates {
        e.data.future_covariates = v.clone();
    }
    if let Some(names) = &args.calendar {
        e.data.calendar = match names.as_slice() {
            [one] if one.eq_ignore_ascii_case("none") || one.is_empty() => Vec::new(),
            _ => names
                .iter()
                .map(|n| gatecast_data::Calendar::parse(n.trim()))
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("--calendar: {e}, or none"))?,
        };
    }
    if own_file {
        fit_own_file(args, e);
    }
    if let Some(v) = &args.likelihood {
        e.model.likelihood =
            gatecast_trainer::config::LikelihoodKind::parse(v).map_err(anyhow::Error::msg)?;
    }
    if let Some(v) = args.samples {
        e.model.samples = v;
    }
    if !args.static_categorical.is_empty() {
        e.data.static_categorical = args.static_categorical.clone();
    }
    if !args.static_real.is_empty() {
        e.data.static_real = args.static_real.clone();
    }
    if let Some(v) = &args.scaler {
        e.data.scaler = Some(
            gatecast_trainer::config::parse_scaler(v)
                .map_err(|e| anyhow::anyhow!("--scaler {e}"))?,
        );
    }
    Ok(())
}

/// A user's own file without `--time-column` whose header lacks the default's: its first
/// column whose values read as times, said in a note; where no column reads so, the default is
/// left (and named by the error that follows) beside a note on the flags that name it.
fn find_time_column(e: &mut Experiment) {
    let Ok(found) = gatecast_data::time_columns(&e.data.path, &first_row_options(e)) else {
        return;
    };
    if found.contains(&e.data.time_column) {
        return;
    }
    match found.first() {
        Some(column) => {
            gatecast_trainer::tell!(
                "note: {}: time column '{column}', the first whose values read as times (--time-column chooses another)",
                e.data.path
            );
            e.data.time_column = column.clone();
        }
        None => gatecast_trainer::tell!(
            "note: {}: no column's first value reads as a time in a format gatecast detects: name the time column with --time-column and its format with --time-format (e.g. '%Y%m%d' for 19580329)",
            e.data.path
        ),
    }
}

/// Whether the flags ask for a panel run: an id column, or a distribution head (`--likelihood`
/// other than `auto`), which on a file of one series trains a panel of that one series.
fn panel_asked(args: &TrainArgs) -> bool {
    args.id_column.is_some()
        || args
            .likelihood
            .as_deref()
            .is_some_and(|l| !l.eq_ignore_ascii_case("auto"))
}

/// How an own file's header and first row are read to find its time column and its target:
/// the experiment's time column and format, delimiter and decimal mark.
fn first_row_options(e: &Experiment) -> gatecast_data::CsvOptions {
    let mut options = gatecast_data::CsvOptions::new(e.data.time_column.clone());
    options.delimiter = e.data.delimiter_byte().unwrap_or(b',');
    options.time_format = (!e.data.time_format.is_empty()).then(|| e.data.time_format.clone());
    options.decimal_comma = e.data.decimal == ",";
    options
}

/// An own file's targets where `--target` names none: the one column that reads as a number
/// (besides the time column and the columns other flags name), with a note; with
/// `--likelihood` and no id column, every such column, each a series of the panel (a file of
/// series side by side). `None` where the file has the experiment's own targets or cannot be
/// read (the loader then says why); an error listing the candidates where there are several
/// (for a point forecast) or none.
fn find_target(args: &TrainArgs, e: &Experiment) -> Result<Option<Vec<String>>> {
    let Ok(numbers) = gatecast_data::number_columns(&e.data.path, &first_row_options(e)) else {
        return Ok(None);
    };
    if e.data.targets.iter().all(|t| numbers.contains(t)) {
        return Ok(None);
    }
    let named: Vec<&String> = args
        .id_column
        .iter()
        .chain(args.covariates.iter().flatten())
        .chain(args.future_covariates.iter().flatten())
        .chain(&args.static_real)
        .chain(&args.static_categorical)
        .collect();
    let left: Vec<&String> = numbers.iter().filter(|c| !named.contains(c)).collect();
    match left[..] {
        [_, _, ..] if panel_asked(args) && args.id_column.is_none() => {
            gatecast_trainer::tell!(
                "note: {}: forecasting its {} columns of numbers as the series of one panel ({}; --target chooses others)",
                e.data.path,
                left.len(),
                left.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            );
            Ok(Some(left.into_iter().cloned().collect()))
        }
        [one] => {
            let others = if named.is_empty() { "" } else { " and those the flags name" };
            gatecast_trainer::tell!(
                "note: {}: forecasting '{one}', the one column of numbers besides the time column{others} (--target chooses another)",
                e.data.path
            );
            Ok(Some(vec![one.clone()]))
        }
        [] => bail!(
            "{}: no column besides the time column '{}' holds numbers in its first row to forecast; name it with --target",
            e.data.path,
            e.data.time_column
        ),
        _ => bail!(
            "{}: which column to forecast? name it with --target, or several comma-separated (columns of numbers: {}; the others can be --covariates); with --likelihood each is a series of one panel",
            e.data.path,
            left.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A user's own file (no `--config`) gets what its sampling step calls for, where no flag says
/// otherwise: the calendar features, a panel's season, every window of a file of days or
/// more, and M4's horizon for days to years (the bundled default's week of hours back and a
/// day ahead would not fit a monthly file).
fn fit_own_file(args: &TrainArgs, e: &mut Experiment) {
    let shape = gatecast_trainer::run::file_step(&e.data);
    let step = shape.map(|s| s.0);
    if args.calendar.is_none() {
        // A daily file's hour of day is constant, a monthly file's day of week noise.
        e.data.calendar = DataConfig::calendar_for(step);
    }
    let panel = panel_asked(args);
    if panel && args.season.is_none() && step.is_some() {
        // 0 asks season_for for the step's own period.
        e.data.season = 0;
        e.data.season = e.data.season_for(step);
    }
    if step.is_some_and(|s| s.nominal() >= chrono::TimeDelta::days(1)) {
        e.window.stride = 1;
    }
    let (Some(m4), Some((_, rows))) = (DataConfig::horizon_for(step), shape) else {
        return;
    };
    let season = e.data.season_for(step);
    let (horizon, lookback) = own_window(m4, rows, e.data.split, season, args);
    if args.horizon.is_none() && horizon < m4 {
        let (rows_of, need) = if panel {
            (
                " in its longest series",
                "series with the look-back and three horizons a panel run needs",
            )
        } else {
            ("", "validation or training window")
        };
        gatecast_trainer::tell!(
            "note: {}: {rows} rows{rows_of}: forecasting {horizon} steps from {lookback}, as M4's horizon of {m4} would leave no {need} (--horizon and --lookback choose them)",
            e.data.path
        );
    }
    e.window.horizon = horizon;
    e.window.lookback = lookback;
}

/// The window of a user's own file of days to years with `rows` rows (a panel: its longest
/// series') split by `split`: M4's horizon `m4` (or `--horizon`) from three times as far back
/// (a panel: four times, at least 28; at least a season; or `--lookback`), the horizon shortened where the file
/// is too short for it to leave a validation window (which needs the horizon's rows) and a
/// training window (the look-back's and the horizon's; a panel series the look-back and three
/// horizons), to whole seasons where that leaves at least one.
fn own_window(
    m4: usize,
    rows: usize,
    split: [f64; 3],
    season: usize,
    args: &TrainArgs,
) -> (usize, usize) {
    let panel = panel_asked(args);
    // At least a season back, so the seasonal naive has its last season to repeat.
    let lookback = |h: usize| {
        args.lookback
            .unwrap_or(if panel { 4 * h.max(7) } else { 3 * h }.max(season))
    };
    let train = (rows as f64 * split[0]) as usize;
    let valid = rows - train - (rows as f64 * split[2]) as usize;
    let fits = |h: usize| {
        if panel {
            lookback(h) + 3 * h <= rows
        } else {
            h <= valid && lookback(h) + h <= train
        }
    };
    let horizon = match args.horizon {
        Some(h) => h,
        None if fits(m4) => m4,
        None => match (1..m4).rev().find(|&h| fits(h)) {
            Some(h) if season > 1 && h >= season => h / season * season,
            Some(h) => h,
            None => m4,
        },
    };
    (horizon, lookback(horizon))
}

/// A loader policy named on the command line as `[data]` names it (`forward_fill`, `keep`).
fn policy<T: serde::de::DeserializeOwned>(flag: &str, value: &str, choices: &str) -> Result<T> {
    let option = format!("data.{}", flag.trim_start_matches('-'));
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(value))
        .map_err(|_| anyhow::anyhow!("{flag} '{value}': expected {choices} ({option})"))
}
