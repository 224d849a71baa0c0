//! An experiment, as a TOML file: data, windows, model, training. Every field has a default, so
//! an empty file (or none) is the default experiment: an LSTM forecasting the bundled hourly
//! traffic volume 24 hours ahead.

use serde::{Deserialize, Serialize};

use gatecast_data::{Calendar, DuplicatePolicy, GapPolicy, MissingPolicy, ScalerKind};
use gatecast_model::forecast::{CellType, SegCell};

pub use crate::choice::Choice;
use crate::choice::{as_name, as_names};

/// The whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Experiment {
    /// Where the series comes from and how it is cleaned.
    pub data: DataConfig,
    /// Look-back, horizon, stride.
    pub window: WindowSection,
    /// The network.
    pub model: ModelSection,
    /// Optimisation.
    pub train: TrainSection,
    /// A single-series run's prediction intervals.
    pub intervals: IntervalsSection,
}

/// `[intervals]`: a single-series run's split-conformal prediction intervals, and whether a
/// panel run's intervals are scaled to cover their levels on the validation horizons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntervalsSection {
    /// Central levels, increasing, each in (0, 1): 0.8 gives the columns `lo80` and `hi80`.
    pub levels: Vec<f64>,
    /// How many of the latest windows whose actual values are known at a forecast's origin
    /// calibrate its intervals (Darts' `cal_length`).
    pub calibration: usize,
    /// Adaptive conformal inference (Gibbs and Candès, 2021): the step size γ by which each
    /// level's miscoverage rate α moves as windows' actual values become known, α ← α + γ(α₀ −
    /// missed share), so intervals widen after misses and narrow after hits where the errors
    /// drift; 0 keeps each level's α fixed. Default 0.005 (docs/benchmarks.md, "Adaptive
    /// conformal intervals").
    pub adapt: f64,
    /// Panel runs: stretch (or shrink) each central interval of the model's quantiles about
    /// the median by one factor fitted on the validation horizons, so that it covers its
    /// level there (split conformal prediction; the factors are kept in `calibration.toml`).
    /// Levels reported without their mirror (`q` without `1 − q`) are left as they are.
    pub panel_conformal: bool,
}

impl Default for IntervalsSection {
    fn default() -> Self {
        Self {
            levels: vec![0.8, 0.95],
            calibration: 1000,
            adapt: 0.005,
            panel_conformal: false,
        }
    }
}

impl IntervalsSection {
    fn validate(&self) -> Result<(), String> {
        if self.calibration == 0 {
            return Err("intervals.calibration = 0: must be at least 1".into());
        }
        if !(self.adapt.is_finite() && (0.0..=0.5).contains(&self.adapt)) {
            return Err(format!(
                "intervals.adapt = {}: a step size in [0, 0.5] (0.005 is usual; 0 for none)",
                self.adapt
            ));
        }
        let l = &self.levels;
        if l.is_empty()
            || l.iter().any(|v| !(*v > 0.0 && *v < 1.0))
            || l.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(format!(
                "intervals.levels = {l:?}: central levels in (0, 1), increasing, such as [0.8, 0.95]"
            ));
        }
        Ok(())
    }
}

/// `[data]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// CSV file.
    pub path: String,
    /// Timestamp column.
    pub time_column: String,
    /// chrono format of the timestamps; empty detects ISO-like formats.
    pub time_format: String,
    /// Columns to forecast.
    pub targets: Vec<String>,
    /// Extra past covariates fed to the encoder besides the targets.
    pub covariates: Vec<String>,
    /// Columns whose values are known ahead (a promotion planned, a holiday, a weather
    /// forecast): read over the look-back as inputs and over the horizon as known-future
    /// covariates, beside the calendar features. `gatecast forecast` then needs their values for
    /// the steps it forecasts (`--future FILE`). Darts' `future_covariates`, GluonTS's
    /// `feat_dynamic_real`.
    pub future_covariates: Vec<String>,
    /// Calendar features used as known-future covariates: `hour_of_day`, `day_of_week`,
    /// `month_of_year`.
    #[serde(with = "as_names")]
    pub calendar: Vec<Calendar>,
    /// `error`, `interpolate` or `forward_fill`.
    pub missing: MissingPolicy,
    /// `error`, `first`, `mean` or `sum`.
    pub duplicates: DuplicatePolicy,
    /// `error`, `interpolate` or `keep`.
    pub gaps: GapPolicy,
    /// Train / validation / test fractions.
    pub split: [f64; 3],
    /// Row boundaries instead of `split`: validation from row `a`, test from row `b` to row `c`
    /// (exclusive), training the rows before `a`. `gatecast backtest` writes these into each
    /// fold's run, so `evaluate` on a fold re-tests that fold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_rows: Option<[usize; 3]>,
    /// `standard`, `min_max`, `mean_abs` or `none`, fitted on the training rows only (each
    /// series' own in a panel run). Unset: `standard` for one series, `mean_abs` (DeepAR's
    /// scale) for a panel; see [`Experiment::scaler_kind`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaler: Option<ScalerKind>,
    /// Panel runs: scale each window by the mean absolute value of its own look-back (DeepAR's
    /// `MeanScaler`), the series' training scale (`mean_abs`) where the look-back is all zero,
    /// rather than every window of a series by that training scale. Unset: on with the
    /// `mean_abs` scaler ([`Experiment::window_scale`]); a run's `config.toml` records what it
    /// used, and one that names nothing predates the option (off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_scale: Option<bool>,
    /// Seasonal period in steps for the seasonal-naive baseline and MASE (24 for hourly data);
    /// 0, the default, infers it from the sampling step ([`DataConfig::season_for`]; a panel's
    /// from its longest series').
    pub season: usize,
    /// More seasonal-naive baselines for the test table (e.g. 168 for weekly on hourly data);
    /// each needs `window.lookback >= period`.
    pub baseline_seasons: Vec<usize>,
    /// Aggregate to a coarser step after loading, e.g. `1d` (empty: keep the file's step).
    pub resample: String,
    /// How rows are combined when resampling: `sum` (empty periods are 0) or `mean` (empty
    /// periods are gaps).
    pub aggregate: gatecast_data::Aggregation,
    /// Field delimiter: one character, `,` by default (`;`, `|`, or `\t` for tabs).
    pub delimiter: String,
    /// The numbers' decimal mark: `.` (the default) or `,` (`12,5`, as spreadsheets in much
    /// of Europe write them; the delimiter must then be another character).
    pub decimal: String,
    /// Long format: the column naming each row's series. One model is then trained over every
    /// series of the file (a global model with a series-id embedding and a distribution head),
    /// each scaled by the mean absolute value of its own training rows. Empty: one series.
    pub id_column: String,
    /// Panel runs: columns holding one category per series (a store's region), each level a
    /// learned vector; every row of a series repeats its value.
    pub static_categorical: Vec<String>,
    /// Panel runs: columns holding one number per series (a store's size), standardized over
    /// the training series.
    pub static_real: Vec<String>,
}

impl DataConfig {
    /// `season`, or where it is 0 the period of the sampling step `step`: a day of sub-daily
    /// steps that divide one (24 hourly, 96 for 15 minutes), a week of days (7), a year of
    /// weeks (52), of months (12), of quarters (4) or of any whole number of months that divides
    /// one (6 for two months); 1 (the previous value) for any other step.
    pub fn season_for(&self, step: Option<gatecast_data::Frequency>) -> usize {
        if self.season > 0 {
            return self.season;
        }
        const DAY: i64 = 86_400;
        match step {
            Some(gatecast_data::Frequency::Months { months, .. })
                if months > 0 && 12 % months == 0 =>
            {
                (12 / months) as usize
            }
            Some(gatecast_data::Frequency::Fixed(step)) => match step.num_seconds() {
                s if s > 0 && s < DAY && DAY % s == 0 => (DAY / s) as usize,
                DAY => 7,
                s if s == 7 * DAY => 52,
                _ => 1,
            },
            _ => 1,
        }
    }

    /// The calendar features a step can tell apart, as GluonTS chooses them by frequency: the
    /// hour of the day and the day of the week below a day; the day of the week and the month
    /// below a week; the month below a year; none for yearly or longer steps, or no step.
    pub fn calendar_for(step: Option<gatecast_data::Frequency>) -> Vec<Calendar> {
        const DAY: i64 = 86_400;
        let Some(step) = step else {
            return Vec::new();
        };
        match step.nominal().num_seconds() {
            s if s < DAY => vec![Calendar::HourOfDay, Calendar::DayOfWeek],
            s if s < 7 * DAY => vec![Calendar::DayOfWeek, Calendar::MonthOfYear],
            _ if step.months().is_some_and(|m| m >= 12) => Vec::new(),
            s if s < 365 * DAY => vec![Calendar::MonthOfYear],
            _ => Vec::new(),
        }
    }

    /// The M4 competition's forecast horizon for a sampling step of a day or more (Makridakis
    /// et al. 2020): 14 days, 13 weeks, 18 months, 8 quarters, 6 years; `None` for other steps.
    /// A user's own file with no `--horizon` forecasts this far, from three times as far back.
    pub fn horizon_for(step: Option<gatecast_data::Frequency>) -> Option<usize> {
        use gatecast_data::Frequency;
        match step? {
            Frequency::Fixed(d) if d == chrono::TimeDelta::days(1) => Some(14),
            Frequency::Fixed(d) if d == chrono::TimeDelta::days(7) => Some(13),
            Frequency::Months { months: 1, .. } => Some(18),
            Frequency::Months { months: 3, .. } => Some(8),
            Frequency::Months { months: 12, .. } => Some(6),
            _ => None,
        }
    }

    /// Whether the run names any static columns (`static_categorical` or `static_real`).
    pub fn has_statics(&self) -> bool {
        !(self.static_categorical.is_empty() && self.static_real.is_empty())
    }

    /// `delimiter` as the byte the CSV reader splits on.
    pub fn delimiter_byte(&self) -> Result<u8, String> {
        match self.delimiter.as_str() {
            "\\t" | "\t" | "tab" => Ok(b'\t'),
            d if d.len() == 1 && d.is_ascii() && !matches!(d, "\"" | "\n" | "\r") => {
                Ok(d.as_bytes()[0])
            }
            d => Err(format!(
                "data.delimiter = {d:?}: must be one ASCII character such as \",\", \";\" or \"\\t\""
            )),
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            path: "datasets/hourly_traffic_volume.csv".into(),
            time_column: "date_time".into(),
            time_format: String::new(),
            targets: vec!["traffic_volume".into()],
            covariates: vec!["temp".into(), "clouds_all".into()],
            future_covariates: Vec::new(),
            calendar: vec![Calendar::HourOfDay, Calendar::DayOfWeek],
            missing: MissingPolicy::Interpolate,
            duplicates: DuplicatePolicy::First,
            gaps: GapPolicy::Keep,
            split: [0.7, 0.1, 0.2],
            split_rows: None,
            scaler: None,
            season: 0,
            baseline_seasons: Vec::new(),
            resample: String::new(),
            aggregate: gatecast_data::Aggregation::Sum,
            delimiter: ",".into(),
            decimal: ".".into(),
            id_column: String::new(),
            window_scale: None,
            static_categorical: Vec::new(),
            static_real: Vec::new(),
        }
    }
}

/// `[window]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowSection {
    /// Look-back steps.
    pub lookback: usize,
    /// Steps forecast.
    pub horizon: usize,
    /// Rows between training windows (validation and test use every window).
    pub stride: usize,
}

impl Default for WindowSection {
    fn default() -> Self {
        Self {
            lookback: 168,
            horizon: 24,
            stride: 4,
        }
    }
}

/// `[model]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// `rnn`, `gru`, `lstm` (a recurrent encoder and a direct or autoregressive head) or `segrnn`
    /// (segment-recurrent: GRU over look-back segments, parallel decoding of output segments,
    /// channel-independent; forecasts every input channel, needs no covariates).
    #[serde(with = "as_name")]
    pub cell: Cell,
    /// Hidden size.
    pub hidden_size: usize,
    /// Stacked layers.
    pub num_layers: usize,
    /// Dropout between layers, in `[0, 1)`.
    pub dropout: f64,
    /// Bidirectional encoder.
    pub bidirectional: bool,
    /// `direct` (one linear map to every horizon step) or `autoregressive` (a decoder steps
    /// through the horizon, feeding its forecasts back).
    #[serde(with = "as_name")]
    pub decoder: Decoder,
    /// Subtract the last look-back value per channel and add it back to the forecast.
    pub last_value_norm: bool,
    /// `segrnn` only: segment length in steps (the look-back must be a multiple).
    pub segment: usize,
    /// Reversible instance normalisation (RevIN) instead of `last_value_norm`: each window's
    /// channels standardised by their own look-back mean and deviation, the forecast scaled
    /// back (affine weights for `segrnn`, none for the recurrent cells).
    pub revin: bool,
    /// Choose the window normalisation on the validation split: train one model with none,
    /// one with `last_value_norm` and one with `revin`, and keep the one whose kept epoch has
    /// the lowest validation figure (`train.monitor`). The run's `config.toml` records the one
    /// kept; `norm_choice.csv` lists all three. Single-series runs only; costs three trainings.
    pub auto_norm: bool,
    /// `segrnn` only: the length in steps of a learned per-channel cycle taken out of each
    /// window before the network and put back into its forecast (CycleNet's residual cycle
    /// forecasting), its phase read from the timestamps, e.g. 24 for a daily cycle in hourly
    /// data or 168 for a weekly one; 0 for none. Needs a regularly sampled file.
    pub cycle: usize,
    /// `segrnn` only: let each channel's forecast read the other channels' look-backs through
    /// a learned `[channels, channels]` mix of the channels' final states (zero at the start,
    /// so training begins channel-independent).
    pub channel_mix: bool,
    /// `segrnn` only: the recurrent cell over the segments, `gru` (SegRNN's) or `slstm`
    /// (xLSTM's sLSTM: exponential input gates with a normaliser state, as in P-sLSTM).
    #[serde(with = "as_name")]
    pub segment_cell: SegCell,
    /// `segrnn` only (GRU): a second, reversed view of the look-back. The GRU also reads the
    /// segments newest-first, and that pass's final state is added to the forward pass's
    /// through a learned map that starts at zero (after xLSTM-Mixer's reversed view).
    pub reverse_view: bool,
    /// What a panel model (`data.id_column`) forecasts per step: `gaussian`, `student_t`,
    /// `negative_binomial` (counts) or `quantile` (the pinball loss at `model.quantiles`);
    /// `auto` is `student_t` for panels (DeepAR's default) and a point forecast for one series.
    #[serde(with = "as_name")]
    pub likelihood: LikelihoodKind,
    /// Quantile levels reported in forecasts and metrics (and trained, for `quantile`).
    pub quantiles: Vec<f64>,
    /// Panel models: width of the learned series-id embedding (0: none).
    pub embedding_size: usize,
    /// Draws per forecast step from which Student-t and negative-binomial quantiles are read
    /// (Gaussian and quantile heads answer exactly).
    pub samples: usize,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            cell: Cell::Lstm,
            hidden_size: 64,
            num_layers: 1,
            dropout: 0.0,
            bidirectional: false,
            decoder: Decoder::Direct,
            last_value_norm: false,
            segment: 24,
            revin: false,
            auto_norm: false,
            cycle: 0,
            channel_mix: false,
            segment_cell: SegCell::Gru,
            reverse_view: false,
            likelihood: LikelihoodKind::Auto,
            quantiles: gatecast_model::forecast::DEFAULT_QUANTILES.to_vec(),
            embedding_size: 8,
            samples: 200,
        }
    }
}

impl ModelSection {
    /// The recurrent cell of a `rnn`, `gru` or `lstm` model; `None` for `segrnn`.
    pub fn cell_type(&self) -> Option<CellType> {
        match self.cell {
            Cell::Rnn => Some(CellType::Rnn),
            Cell::Gru => Some(CellType::Gru),
            Cell::Lstm => Some(CellType::Lstm),
            Cell::Segrnn => None,
        }
    }

    /// Whether the model is the segment-recurrent one.
    pub fn is_segrnn(&self) -> bool {
        self.cell == Cell::Segrnn
    }
}

/// `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSection {
    /// Maximum epochs.
    pub epochs: usize,
    /// Windows per batch.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// `adam`, `adamw` or `sgd` (with momentum).
    #[serde(with = "as_name")]
    pub optimizer: Optimizer,
    /// Training loss on the scaled values: `mse`, `mae` (L1, as SegRNN trains) or `huber`
    /// (PyTorch's `HuberLoss`: squared below `huber_delta`, linear above it).
    #[serde(with = "as_name")]
    pub loss: Loss,
    /// `loss = "huber"` only: the error at which the loss turns from squared to linear, in
    /// scaled units (PyTorch's `delta`, default 1).
    pub huber_delta: f64,
    /// Weight in `[0, 1]` of FreDF's frequency-domain term (Wang et al., ICLR 2025): the loss is
    /// `(1 - freq_loss) * loss + freq_loss * F`, where `F` is the mean modulus of the real DFT
    /// of each window's forecast error along the horizon (`gatecast_trainer::model::FreqLoss`).
    /// 0 (the default) trains on `loss` alone; FreDF's runs use weights such as 0.8 or 1.
    pub freq_loss: f64,
    /// Weight decay (L2 for adam/sgd, decoupled for adamw).
    pub weight_decay: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// `global_norm` (PyTorch's `clip_grad_norm_`), `norm` (per tensor), `value`, or `none`.
    /// Panel runs clip per tensor under `global_norm` too (docs/benchmarks.md, "Panels of few
    /// series", says why).
    #[serde(with = "as_name")]
    pub clip: ClipMode,
    /// Threshold for clipping.
    pub clip_value: f64,
    /// Stop after this many epochs without a better validation loss (or `monitor`).
    pub patience: usize,
    /// What early stopping and the kept epoch read on the validation split (Keras' `monitor`):
    /// `loss` (the training loss, the default), `mse` or `mae` of the scaled forecasts.
    #[serde(with = "as_name")]
    pub monitor: Monitor,
    /// Panel runs: the fewest validation windows early stopping reads across the panel. Each
    /// series validates on the horizon before its test horizon, and where the panel has fewer
    /// series than this, on up to `⌈valid_windows / series⌉` origins (a span of up to
    /// `data.split`'s validation share of its rows); 1, the default, is one horizon per
    /// series (docs/benchmarks.md, "Panels of few series", says why).
    pub valid_windows: usize,
    /// Panel runs: the fewest batches an epoch runs (GluonTS's `num_batches_per_epoch`). Where
    /// one pass over the training windows is shorter, an epoch passes over them again,
    /// reshuffled, until it has run this many; 0 is one pass. Default 50 (docs/benchmarks.md,
    /// "Panels of few series").
    pub epoch_batches: usize,
    /// Seed for initialisation, shuffling and dropout.
    pub seed: u64,
    /// Learning-rate schedule over the run, e.g. `{ kind = "warmup_cosine", warmup_epochs = 1,
    /// min_lr = 1e-5 }`; kinds: constant, step, exponential, cosine, warmup_cosine. Unset:
    /// cosine to 1e-5 for one series, constant for a panel ([`Experiment::schedule`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::schedule::Schedule>,
    /// Reduce-on-plateau: epochs without a better validation loss (or `monitor`) before the
    /// rate is multiplied by `plateau_factor` (0 = off).
    pub plateau_patience: usize,
    /// Reduce-on-plateau multiplier.
    pub plateau_factor: f64,
    /// Exponential moving average of the weights (PyTorch's `AveragedModel`, Keras'
    /// `use_ema`): 0 is off; a decay in (0, 1), e.g. 0.99, validates, keeps and tests the average
    /// of the weights instead of the last step's (see `gatecast_trainer::ema`).
    pub ema_decay: f64,
    /// Refuse a model whose training would need more memory than this many MiB (weights,
    /// gradients, Adam's state and one step's activations, estimated before anything is
    /// allocated); 0: the memory the system reports available.
    pub memory_limit_mb: u64,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 64,
            lr: 3e-3,
            optimizer: Optimizer::Adam,
            loss: Loss::Mse,
            huber_delta: 1.0,
            freq_loss: 0.0,
            weight_decay: 0.0,
            momentum: 0.9,
            clip: ClipMode::GlobalNorm,
            clip_value: 1.0,
            patience: 4,
            monitor: Monitor::Loss,
            valid_windows: 1,
            epoch_batches: 50,
            seed: 42,
            schedule: None,
            plateau_patience: 0,
            plateau_factor: 0.5,
            ema_decay: 0.0,
            memory_limit_mb: 0,
        }
    }
}

impl Experiment {
    /// Parses a TOML experiment; unknown keys are errors (a typo must not be silently ignored).
    pub fn from_toml(text: &str, source: &str) -> Result<Self, String> {
        let e = Self::parse_toml(text, source)?;
        e.validate()?;
        Ok(e)
    }

    /// Parses an experiment without checking its values (for callers that change some first
    /// and validate after).
    pub fn parse_toml(text: &str, source: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("{source}: {e}"))
    }

    /// The experiment as TOML (what a run saves as `config.toml`).
    pub fn to_toml(&self) -> String {
        // The schedule the run follows, so that the file says it whatever the default.
        let mut resolved = self.clone();
        resolved.train.schedule = Some(self.schedule());
        toml::to_string_pretty(&resolved).expect("an experiment serializes")
    }

    /// Checks every value, naming the option that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("window.lookback", self.window.lookback),
            ("window.horizon", self.window.horizon),
            ("window.stride", self.window.stride),
            ("model.hidden_size", self.model.hidden_size),
            ("model.num_layers", self.model.num_layers),
            ("train.epochs", self.train.epochs),
            ("train.batch_size", self.train.batch_size),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} = 0: must be at least 1"));
            }
        }
        self.train.validate()?;
        self.intervals.validate()?;
        self.validate_model()?;
        self.data.validate()
    }

    /// `[model]`, with what it needs of the window and the data.
    fn validate_model(&self) -> Result<(), String> {
        let m = &self.model;
        if m.revin && m.last_value_norm {
            return Err("model.revin = true: choose one window normalisation, model.revin or model.last_value_norm (--revin or --last-value-norm)".into());
        }
        if m.auto_norm && (m.revin || m.last_value_norm) {
            return Err(format!(
                "model.auto_norm = true chooses the window normalisation itself: leave model.{} unset (or --norm auto with no --revin or --last-value-norm)",
                if m.revin { "revin" } else { "last_value_norm" }
            ));
        }
        if !(m.dropout.is_finite() && (0.0..1.0).contains(&m.dropout)) {
            return Err(format!("model.dropout = {}: must be in [0, 1)", m.dropout));
        }
        self.validate_panel()?;
        if !m.is_segrnn() {
            if m.cycle > 0 {
                return Err(format!(
                    "model.cycle = {}: only model.cell = \"segrnn\" has a learned cycle (set model.cycle = 0)",
                    m.cycle
                ));
            }
            if m.channel_mix {
                return Err(
                    "model.channel_mix = true: only model.cell = \"segrnn\" mixes channels (set model.channel_mix = false)"
                        .to_string(),
                );
            }
            if m.reverse_view {
                return Err(
                    "model.reverse_view = true: only model.cell = \"segrnn\" has a reversed view (set model.reverse_view = false)"
                        .to_string(),
                );
            }
            if m.segment_cell != SegCell::Gru {
                return Err(format!(
                    "model.segment_cell = \"{}\": only model.cell = \"segrnn\" has a segment cell (remove model.segment_cell)",
                    m.segment_cell.name()
                ));
            }
            return Ok(());
        }
        if m.segment_cell == SegCell::SLstm {
            for (option, on) in [
                ("channel_mix", m.channel_mix),
                ("reverse_view", m.reverse_view),
            ] {
                if on {
                    return Err(format!(
                        "model.{option} = true acts on GRU states: not with model.segment_cell = \"slstm\" (set model.{option} = false)"
                    ));
                }
            }
        }
        if m.segment == 0 || !self.window.lookback.is_multiple_of(m.segment) {
            return Err(format!(
                "model.segment = {}: must divide window.lookback = {}",
                m.segment, self.window.lookback
            ));
        }
        if !m.hidden_size.is_multiple_of(2) {
            return Err(format!(
                "model.hidden_size = {}: segrnn needs an even size",
                m.hidden_size
            ));
        }
        if !self.data.calendar.is_empty() {
            return Err(
                "data.calendar: model.cell = segrnn takes no known-future covariates (set data.calendar = [], or --calendar none)".into(),
            );
        }
        if !self.data.future_covariates.is_empty() {
            return Err(
                "data.future_covariates: model.cell = segrnn takes no known-future covariates"
                    .into(),
            );
        }
        Ok(())
    }
}

impl Experiment {
    /// Whether this is a panel run: one global model over the series of `data.id_column`, or,
    /// where `model.likelihood` asks for a distribution head without an id column, over the
    /// file's target columns, each a series (DeepAR on a single series, or on series side by
    /// side).
    pub fn is_panel(&self) -> bool {
        !self.data.id_column.is_empty() || self.model.likelihood != LikelihoodKind::Auto
    }

    /// What makes this a panel run, as its errors name it: `data.id_column`, or
    /// `model.likelihood` for a file whose target columns are the series.
    fn panel_option(&self) -> &'static str {
        if self.data.id_column.is_empty() {
            "model.likelihood (a distribution head: a panel run whose series are the file's target columns)"
        } else {
            "data.id_column"
        }
    }

    /// The learning-rate schedule a run follows: `train.schedule`, or by default cosine decay
    /// to 1e-5 for one series and a constant rate for a panel (docs/benchmarks.md, "Panels of
    /// few series", says why).
    pub fn schedule(&self) -> crate::schedule::Schedule {
        self.train.schedule.clone().unwrap_or(if self.is_panel() {
            crate::schedule::Schedule::Constant
        } else {
            crate::schedule::Schedule::default()
        })
    }

    /// Whether a panel run scales each window by its own look-back: `data.window_scale`, by
    /// default where the scaler is `mean_abs` (the panel default; docs/benchmarks.md, "Panels
    /// of few series", says why).
    pub fn window_scale(&self) -> bool {
        self.is_panel()
            && self
                .data
                .window_scale
                .unwrap_or(self.scaler_kind() == ScalerKind::MeanAbs)
    }

    /// The scaler a run uses: `data.scaler`, or by default `standard` for one series and
    /// `mean_abs` (DeepAR's) for a panel run ([`Experiment::is_panel`]).
    pub fn scaler_kind(&self) -> ScalerKind {
        self.data.scaler.unwrap_or(if self.is_panel() {
            ScalerKind::MeanAbs
        } else {
            ScalerKind::Standard
        })
    }

    /// The likelihood and quantile options, and what a panel run supports.
    fn validate_panel(&self) -> Result<(), String> {
        let m = &self.model;
        gatecast_model::forecast::Likelihood::Quantiles(m.quantiles.clone())
            .validate()
            .map_err(|e| format!("model.quantiles: {e}"))?;
        if !self.is_panel() {
            if self.data.window_scale == Some(true) {
                return Err("data.window_scale: scales the windows of a panel run (data.id_column or model.likelihood); a single-series run normalises its windows with model.last_value_norm or model.revin".into());
            }
            if self.data.has_statics() {
                return Err("data.static_categorical / data.static_real: static columns hold one value per series of a panel; set data.id_column".into());
            }
            if self.intervals.panel_conformal {
                return Err("intervals.panel_conformal = true: scales a panel run's intervals (data.id_column or model.likelihood); a single-series run's intervals are split conformal already".into());
            }
            return Ok(());
        }
        if m.samples == 0 {
            return Err("model.samples = 0: must be at least 1".into());
        }
        if self.window_scale() && self.scaler_kind() != ScalerKind::MeanAbs {
            return Err(format!(
                "data.window_scale: a window's scale is its look-back's mean absolute value, with no offset; it takes data.scaler = \"mean_abs\" (the panel default), not {}",
                scaler_name(self.scaler_kind())
            ));
        }
        if self.train.valid_windows == 0 {
            return Err("train.valid_windows = 0: early stopping needs at least 1".into());
        }
        if self.train.loss != Loss::Mse {
            return Err(format!(
                "train.loss = {}: panel runs train on their likelihood (model.likelihood); leave train.loss unset",
                self.train.loss.name()
            ));
        }
        if self.train.freq_loss > 0.0 {
            return Err(format!(
                "train.freq_loss = {}: panel runs train on their likelihood (model.likelihood); leave train.freq_loss unset",
                self.train.freq_loss
            ));
        }
        if self.train.monitor != Monitor::Loss {
            return Err(format!(
                "train.monitor = {}: panel runs stop early on the validation loss (their likelihood); set train.monitor = \"loss\"",
                self.train.monitor.name()
            ));
        }
        if m.is_segrnn() {
            return Err(format!(
                "model.cell = segrnn: a panel run ({}) needs rnn, gru or lstm",
                self.panel_option()
            ));
        }
        if m.bidirectional || m.last_value_norm || m.revin || m.auto_norm {
            return Err(format!("{}: panel runs need a forward encoder (model.bidirectional = false) and no last_value_norm, revin or auto_norm (each series is scaled instead)", self.panel_option()));
        }
        // Without an id column each target column is a series of its own.
        let one_target = self.data.targets.len() == 1 || self.data.id_column.is_empty();
        if self.data.id_column.is_empty() && self.data.has_statics() {
            return Err("data.static_categorical / data.static_real: static columns hold one value per series of a long-format file; set data.id_column".into());
        }
        if !self.data.covariates.is_empty() || !one_target || self.data.targets.is_empty() {
            return Err(format!("{}: a panel run forecasts one target column per series (data.targets = [one]) and takes no data.covariates (calendar features are known-future covariates)", self.panel_option()));
        }
        if self.scaler_kind() != ScalerKind::MeanAbs
            && self.scaler_kind() != ScalerKind::None
            && m.likelihood == LikelihoodKind::NegativeBinomial
        {
            return Err(format!(
                "data.scaler = {}: model.likelihood = negative_binomial models counts, which an offset would shift below 0; use data.scaler = \"mean_abs\" (the default for panels) or \"none\"",
                scaler_name(self.scaler_kind())
            ));
        }
        if self.data.split_rows.is_some() {
            return Err("data.split_rows: panel runs hold out each series' last horizons (validation, then test); row boundaries are for single-series runs".into());
        }
        Ok(())
    }
}

impl TrainSection {
    /// `loss` with its parameter (`huber_delta`), as the training step applies it.
    pub fn point_loss(&self) -> crate::model::PointLoss {
        use crate::model::PointLoss;
        match self.loss {
            Loss::Mse => PointLoss::Mse,
            Loss::Mae => PointLoss::Mae,
            Loss::Huber => PointLoss::Huber(self.huber_delta),
        }
    }

    /// The training loss as the loss plot names it: `MAE`, or `0.2 MAE + 0.8 frequency (FreDF)`
    /// with `freq_loss`.
    pub fn loss_name(&self) -> String {
        self.mixed_name(&self.point_loss().to_string())
    }

    /// `point`, the point loss's name, as mixed with the frequency term: `point` alone without
    /// it, `0.2 point + 0.8 frequency (FreDF)` with `freq_loss = 0.8` (the point weight rounded
    /// to 6 decimals, so it reads 0.2 rather than 0.19999999999999996).
    pub fn mixed_name(&self, point: &str) -> String {
        match self.freq_loss {
            w if w > 0.0 => {
                let rest = ((1.0 - w) * 1e6).round() / 1e6;
                format!("{rest} {point} + {w} frequency (FreDF)")
            }
            _ => point.to_string(),
        }
    }

    /// Checks the rates, clipping, schedule and plateau settings.
    fn validate(&self) -> Result<(), String> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("train.lr = {}: must be a positive number", self.lr));
        }
        if self.clip != ClipMode::None && (self.clip_value.is_nan() || self.clip_value <= 0.0) {
            return Err(format!(
                "train.clip_value = {}: must be positive",
                self.clip_value
            ));
        }
        if !(self.huber_delta.is_finite() && self.huber_delta > 0.0) {
            return Err(format!(
                "train.huber_delta = {}: must be a positive number",
                self.huber_delta
            ));
        }
        if !(0.0..=1.0).contains(&self.freq_loss) {
            return Err(format!(
                "train.freq_loss = {}: must be a weight in [0, 1] (0 = off)",
                self.freq_loss
            ));
        }
        if let Some(schedule) = &self.schedule {
            schedule.validate()?;
        }
        if self.plateau_patience > 0 && !(self.plateau_factor > 0.0 && self.plateau_factor < 1.0) {
            return Err(format!(
                "train.plateau_factor = {}: must be in (0, 1)",
                self.plateau_factor
            ));
        }
        if !(self.ema_decay >= 0.0 && self.ema_decay < 1.0) {
            return Err(format!(
                "train.ema_decay = {}: must be 0 (off) or in (0, 1), e.g. 0.99",
                self.ema_decay
            ));
        }
        Ok(())
    }
}

impl DataConfig {
    /// Checks resampling, baselines, the delimiter, the targets and the split.
    fn validate(&self) -> Result<(), String> {
        if !self.resample.is_empty() {
            gatecast_data::parse_frequency(&self.resample)
                .map_err(|e| format!("data.resample: {e}"))?;
        }
        if self.baseline_seasons.contains(&0) {
            return Err("data.baseline_seasons: periods must be at least 1".into());
        }
        let delimiter = self.delimiter_byte()?;
        match (self.decimal.as_str(), delimiter) {
            (".", _) => {}
            (",", b',') => {
                return Err(
                    "data.decimal = \",\" needs another delimiter: set data.delimiter (e.g. \";\")"
                        .into(),
                )
            }
            (",", _) => {}
            (d, _) => {
                return Err(format!(
                    "data.decimal = {d:?}: the decimal mark is \".\" or \",\""
                ))
            }
        }
        if self.targets.is_empty() {
            return Err("data.targets is empty: name at least one column to forecast".into());
        }
        for (option, list) in [
            ("data.targets", &self.targets),
            ("data.covariates", &self.covariates),
            ("data.future_covariates", &self.future_covariates),
        ] {
            for (i, c) in list.iter().enumerate() {
                if let Some(first) = list[..i].iter().position(|x| x == c) {
                    return Err(format!(
                        "{option}: '{c}' is listed twice (entries {} and {})",
                        first + 1,
                        i + 1
                    ));
                }
            }
        }
        if let Some(c) = self.covariates.iter().find(|c| self.targets.contains(c)) {
            return Err(format!(
                "data.covariates: '{c}' is also in data.targets; a target's own past is read over the look-back already"
            ));
        }
        for c in &self.future_covariates {
            if self.targets.contains(c) || self.covariates.contains(c) {
                return Err(format!(
                    "data.future_covariates: '{c}' is also in data.{}; a column is a target, a past covariate or a known-future one",
                    if self.targets.contains(c) { "targets" } else { "covariates" }
                ));
            }
        }
        let [a, b, c] = self.split;
        if [a, b, c].iter().any(|r| !(*r > 0.0 && *r < 1.0)) || ((a + b + c) - 1.0).abs() > 1e-9 {
            return Err(format!(
                "data.split = [{a}, {b}, {c}]: three fractions in (0, 1) summing to 1"
            ));
        }
        if let Some([a, b, c]) = self.split_rows {
            if !(a < b && b < c) {
                return Err(format!(
                    "data.split_rows = [{a}, {b}, {c}]: validation start < test start < end"
                ));
            }
        }
        Ok(())
    }
}

/// `model.cell`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Elman RNN encoder (`rnn`; `elman` is accepted too).
    Rnn,
    /// GRU encoder.
    Gru,
    /// LSTM encoder.
    Lstm,
    /// The segment-recurrent model.
    Segrnn,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Choice for SegCell {
    const OPTION: &'static str = "model.segment_cell";
    const VALUES: &'static [(&'static str, Self)] =
        &[("gru", SegCell::Gru), ("slstm", SegCell::SLstm)];
}

impl Choice for Cell {
    const OPTION: &'static str = "model.cell";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("rnn", Cell::Rnn),
        ("gru", Cell::Gru),
        ("lstm", Cell::Lstm),
        ("segrnn", Cell::Segrnn),
    ];
    const ALIASES: &'static [(&'static str, Self)] = &[("elman", Cell::Rnn)];
}

/// `model.likelihood`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LikelihoodKind {
    /// Student-t for panels, a point forecast for one series.
    Auto,
    /// Normal.
    Gaussian,
    /// Student's t (heavy tails).
    StudentT,
    /// Negative binomial (non-negative counts).
    NegativeBinomial,
    /// Quantiles trained with the pinball loss.
    Quantile,
}

impl Choice for LikelihoodKind {
    const OPTION: &'static str = "model.likelihood";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("auto", LikelihoodKind::Auto),
        ("gaussian", LikelihoodKind::Gaussian),
        ("student_t", LikelihoodKind::StudentT),
        ("negative_binomial", LikelihoodKind::NegativeBinomial),
        ("quantile", LikelihoodKind::Quantile),
    ];
    const ALIASES: &'static [(&'static str, Self)] = &[
        ("normal", LikelihoodKind::Gaussian),
        ("studentt", LikelihoodKind::StudentT),
        ("negbin", LikelihoodKind::NegativeBinomial),
    ];
}

impl ModelSection {
    /// The distribution head of a panel model: `auto` is Student-t.
    pub fn panel_likelihood(&self) -> gatecast_model::forecast::Likelihood {
        use gatecast_model::forecast::Likelihood;
        match self.likelihood {
            LikelihoodKind::Auto | LikelihoodKind::StudentT => Likelihood::StudentT,
            LikelihoodKind::Gaussian => Likelihood::Gaussian,
            LikelihoodKind::NegativeBinomial => Likelihood::NegativeBinomial,
            LikelihoodKind::Quantile => Likelihood::Quantiles(self.quantiles.clone()),
        }
    }
}

/// `model.decoder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// One linear map from the encoder's last state to every horizon step.
    Direct,
    /// A decoder cell steps through the horizon, feeding its forecasts back.
    Autoregressive,
}

impl Choice for Decoder {
    const OPTION: &'static str = "model.decoder";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("direct", Decoder::Direct),
        ("autoregressive", Decoder::Autoregressive),
    ];
}

/// `train.optimizer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Optimizer {
    /// Adam, with L2 weight decay.
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
    /// SGD with momentum.
    Sgd,
}

impl Choice for Optimizer {
    const OPTION: &'static str = "train.optimizer";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("adam", Optimizer::Adam),
        ("adamw", Optimizer::Adamw),
        ("sgd", Optimizer::Sgd),
    ];
}

/// `train.loss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Mean squared error.
    Mse,
    /// Mean absolute error (L1).
    Mae,
    /// Huber's loss (PyTorch's `HuberLoss`): `0.5 e²` where `|e| ≤ delta`, `delta (|e| - delta / 2)`
    /// beyond, so large errors weigh as in the MAE and small ones as in the MSE.
    Huber,
}

impl Choice for Loss {
    const OPTION: &'static str = "train.loss";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("mse", Loss::Mse),
        ("mae", Loss::Mae),
        ("huber", Loss::Huber),
    ];
}

/// `train.monitor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Monitor {
    /// The validation loss (`train.loss`).
    Loss,
    /// Mean squared error on the validation split.
    Mse,
    /// Mean absolute error on the validation split.
    Mae,
}

impl Choice for Monitor {
    const OPTION: &'static str = "train.monitor";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("loss", Monitor::Loss),
        ("mse", Monitor::Mse),
        ("mae", Monitor::Mae),
    ];
}

/// `train.clip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipMode {
    /// PyTorch's `clip_grad_norm_`: one factor for every gradient.
    GlobalNorm,
    /// Each parameter tensor's norm on its own (Burn's `GradientClippingConfig::Norm`).
    Norm,
    /// Each value (Burn's `GradientClippingConfig::Value`).
    Value,
    /// No clipping.
    None,
}

impl Choice for ClipMode {
    const OPTION: &'static str = "train.clip";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("global_norm", ClipMode::GlobalNorm),
        ("norm", ClipMode::Norm),
        ("value", ClipMode::Value),
        ("none", ClipMode::None),
    ];
}

impl Choice for Calendar {
    const OPTION: &'static str = "data.calendar";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("hour_of_day", Calendar::HourOfDay),
        ("day_of_week", Calendar::DayOfWeek),
        ("month_of_year", Calendar::MonthOfYear),
    ];
}

const SCALERS: [(&str, ScalerKind); 4] = [
    ("standard", ScalerKind::Standard),
    ("min_max", ScalerKind::MinMax),
    ("mean_abs", ScalerKind::MeanAbs),
    ("none", ScalerKind::None),
];

/// `kind` as `data.scaler` spells it.
fn scaler_name(kind: ScalerKind) -> &'static str {
    SCALERS
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or("?", |(name, _)| name)
}

/// A `data.scaler` name: `standard`, `min_max`, `mean_abs` or `none`.
pub fn parse_scaler(name: &str) -> Result<ScalerKind, String> {
    SCALERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
        .ok_or_else(|| format!("{name}: expected standard, min_max, mean_abs or none"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inferred_season_is_the_sampling_steps_cycle() {
        let d = |season| DataConfig {
            season,
            ..DataConfig::default()
        };
        let at = |secs: i64| d(0).season_for(Some(chrono::TimeDelta::seconds(secs).into()));
        let day = 86_400;
        assert_eq!(at(3600), 24);
        assert_eq!(at(900), 96);
        assert_eq!(at(day), 7);
        assert_eq!(at(7 * day), 52);
        assert_eq!(at(30 * day), 1, "30 days are not a month");
        let months = |months| {
            d(0).season_for(Some(gatecast_data::Frequency::Months {
                months,
                end: false,
            }))
        };
        assert_eq!(months(1), 12);
        assert_eq!(months(3), 4);
        assert_eq!(months(2), 6);
        assert_eq!(months(12), 1);
        assert_eq!(months(5), 1, "5 months do not divide a year");
        assert_eq!(at(7 * 3600), 1, "7 hours do not divide a day");
        assert_eq!(d(0).season_for(None), 1);
        // A season given is kept, whatever the step.
        assert_eq!(
            d(12).season_for(Some(chrono::TimeDelta::seconds(3600).into())),
            12
        );
    }

    #[test]
    fn empty_file_is_the_default_experiment_and_round_trips() {
        let e = Experiment::from_toml("", "x.toml").unwrap();
        assert_eq!(e, Experiment::default());
        let back = Experiment::from_toml(&e.to_toml(), "y.toml").unwrap();
        // The saved file names the schedule the default resolves to.
        let mut resolved = e.clone();
        resolved.train.schedule = Some(e.schedule());
        assert_eq!(back, resolved);
        assert_eq!(
            Experiment::from_toml(&back.to_toml(), "z.toml").unwrap(),
            back
        );
    }

    #[test]
    fn errors_name_the_option() {
        let cases = [
            ("[train]\nlr = 0.0", "train.lr"),
            ("[train]\nlr = -1.0", "train.lr"),
            ("[model]\ndropout = 1.0", "model.dropout"),
            ("[model]\ncell = \"transformer\"", "model.cell"),
            ("[model]\ndecoder = \"seq2seq\"", "model.decoder"),
            ("[window]\nhorizon = 0", "window.horizon"),
            ("[train]\nbatchsize = 3", "batchsize"),
            ("[data]\nmissing = \"guess\"", "missing"),
            ("[data]\ncalendar = [\"moon\"]", "data.calendar"),
            ("[data]\nsplit = [0.5, 0.5, 0.5]", "data.split"),
            ("[train]\nclip = \"sometimes\"", "train.clip"),
            ("[model]\ncycle = 24", "model.cycle"),
            ("[model]\nchannel_mix = true", "model.channel_mix"),
            ("[model]\nsegment_cell = \"slstm\"", "model.segment_cell"),
            ("[model]\nreverse_view = true", "model.reverse_view"),
            ("[intervals]\npanel_conformal = true", "intervals.panel_conformal"),
            ("[model]\nsegment_cell = \"mlstm\"", "model.segment_cell"),
            (
                "[data]\ncalendar = []\n[window]\nlookback = 48\n[model]\ncell = \"segrnn\"\nsegment_cell = \"slstm\"\nchannel_mix = true",
                "model.segment_cell",
            ),
            (
                "[data]\ncalendar = []\n[window]\nlookback = 48\n[model]\ncell = \"segrnn\"\nsegment_cell = \"slstm\"\nreverse_view = true",
                "model.reverse_view",
            ),
            (
                "[model]\nrevin = true\nlast_value_norm = true",
                "model.revin",
            ),
            ("[train]\nfreq_loss = 1.5", "train.freq_loss"),
            ("[train]\nfreq_loss = -0.1", "train.freq_loss"),
            ("[train]\nfreq_loss = nan", "train.freq_loss"),
        ];
        for (text, option) in cases {
            let err = Experiment::from_toml(text, "x.toml").unwrap_err();
            assert!(err.contains(option), "{text}: {err}");
        }
    }

    /// The shipped experiment files are what the docs' commands read: each must parse and
    /// validate (an unknown or renamed key is an error, so a file cannot silently rot).
    #[test]
    fn every_example_experiment_file_is_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let e = Experiment::from_toml(&text, &path.display().to_string())
                    .unwrap_or_else(|err| panic!("{err}"));
                assert!(e.train.epochs > 0, "{}", path.display());
                checked += 1;
            }
        }
        assert!(checked >= 5, "{checked} files in {}", dir.display());
    }
}
