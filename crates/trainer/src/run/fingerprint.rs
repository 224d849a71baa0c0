//! What a run's data was when it trained (`data.toml`), so that `evaluate` and `--resume` can
//! tell when the file has changed since and refuse to report numbers on other data as if it
//! were the same.

use std::path::Path;

use anyhow::{bail, Context, Result};
use gatecast_data::{Frequency, Series};
use serde::{Deserialize, Serialize};

use crate::artifacts::write_atomic;

/// The file a run trained on, as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// `data.path`.
    pub path: String,
    /// The file's size in bytes.
    pub bytes: u64,
    /// FNV-1a (64-bit) of the file's bytes, in hex: any edit changes it.
    pub hash: String,
    /// Rows of the series after loading and preparation.
    pub rows: usize,
    /// Its first timestamp.
    pub first: String,
    /// Its last timestamp.
    pub last: String,
    /// Its sampling step (`1h`, `1 month`; empty where unknown, and in runs older than this
    /// field): a forecast's input must have the same.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
    /// The timestamp of the last row the model trained on (the training split's last). Only
    /// windows whose forecast steps all lie after it calibrate a forecast's intervals: on the
    /// rows it was fitted to the model's errors are smaller than on rows to come. Empty for
    /// panels and in runs older than this field.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trained_until: String,
}

/// The run directory's record of its data.
const FILE: &str = "data.toml";

impl DataFingerprint {
    /// The fingerprint of the file at `path`, whose prepared series is `series`.
    pub fn of(path: &str, series: &Series) -> Result<Self> {
        Self::of_rows(
            path,
            series.rows(),
            series.timestamps.first(),
            series.timestamps.last(),
            series.frequency,
        )
    }

    /// The fingerprint of the file at `path`, prepared into `rows` rows from `first` to `last`
    /// at sampling step `step` (a panel: all its series).
    pub fn of_rows(
        path: &str,
        rows: usize,
        first: Option<&chrono::NaiveDateTime>,
        last: Option<&chrono::NaiveDateTime>,
        step: Option<Frequency>,
    ) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("{path}: cannot read"))?;
        let stamp =
            |t: Option<&chrono::NaiveDateTime>| t.map(|t| t.to_string()).unwrap_or_default();
        Ok(Self {
            path: path.to_string(),
            bytes: bytes.len() as u64,
            hash: format!("{:016x}", fnv1a(&bytes)),
            rows,
            first: stamp(first),
            last: stamp(last),
            step: step.map(|s| s.to_string()).unwrap_or_default(),
            trained_until: String::new(),
        })
    }

    /// The run's [`DataFingerprint::trained_until`], `None` where it recorded none.
    pub(crate) fn trained_until(dir: &Path) -> Result<Option<chrono::NaiveDateTime>> {
        let Some(saved) = Self::load(dir)? else {
            return Ok(None);
        };
        if saved.trained_until.is_empty() {
            return Ok(None);
        }
        chrono::NaiveDateTime::parse_from_str(&saved.trained_until, "%Y-%m-%d %H:%M:%S%.f")
            .map(Some)
            .with_context(|| {
                format!(
                    "{}: trained_until = '{}' is not a timestamp",
                    dir.join(FILE).display(),
                    saved.trained_until
                )
            })
    }

    /// What differs from `now`, one item each: `rows 1000 → 990`, ...
    pub fn changes(&self, now: &Self) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |what: &str, was: String, is: String| {
            if was != is {
                out.push(format!("{what} {was} → {is}"));
            }
        };
        differ("path", self.path.clone(), now.path.clone());
        differ(
            "size (bytes)",
            self.bytes.to_string(),
            now.bytes.to_string(),
        );
        differ("rows", self.rows.to_string(), now.rows.to_string());
        differ("first timestamp", self.first.clone(), now.first.clone());
        differ("last timestamp", self.last.clone(), now.last.clone());
        if !self.step.is_empty() && !now.step.is_empty() {
            differ("sampling step", self.step.clone(), now.step.clone());
        }
        if out.is_empty() && self.hash != now.hash {
            out.push("content (same size, rows and span; values edited)".into());
        }
        out
    }

    /// Writes `data.toml` into the run directory.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(FILE), toml::to_string_pretty(self)?.as_bytes())
    }

    /// The run's `data.toml`, or `None` for a run trained before gatecast recorded one.
    pub(crate) fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(FILE);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        toml::from_str(&text)
            .map(Some)
            .with_context(|| format!("{}: not a data fingerprint", path.display()))
    }

    /// Refuses a forecast input whose sampling step `step` is not the one the run in `dir`
    /// trained on: the model would read its look-back, and stamp its forecast, at another step.
    /// Silent for runs that recorded no step, and for inputs too short to have one.
    pub(crate) fn check_step(dir: &Path, input: &Path, step: Option<Frequency>) -> Result<()> {
        let (Some(saved), Some(step)) = (Self::load(dir)?, step) else {
            return Ok(());
        };
        if saved.step.is_empty() || saved.step == step.to_string() {
            return Ok(());
        }
        bail!(
            "{}: its rows are {step} apart, but the run in {} trained on rows {} apart ({FILE}): the model would read the look-back, and date the forecast, at the wrong step; give the input at the run's step (the run's config.toml applies its data.resample to inputs)",
            input.display(),
            dir.display(),
            saved.step
        )
    }

    /// Refuses (or, with `allow`, warns about) data that differs from the run's record; `what`
    /// names the command for the message.
    pub(crate) fn check(dir: &Path, now: &Self, allow: bool, what: &str) -> Result<()> {
        let Some(saved) = Self::load(dir)? else {
            crate::tell!(
                "warning: {} has no {FILE} (trained by an older gatecast): cannot tell whether {} changed since training",
                dir.display(),
                now.path
            );
            return Ok(());
        };
        let changes = saved.changes(now);
        if changes.is_empty() {
            return Ok(());
        }
        let message = format!(
            "{}: the data differs from what the run in {} trained on: {}",
            now.path,
            dir.display(),
            changes.join(", ")
        );
        if !allow {
            bail!(
                "{what}: {message}; pass --allow-changed-data to go on with the data as it is now"
            );
        }
        crate::tell!("warning: {what} with --allow-changed-data: {message}");
        Ok(())
    }
}

/// 64-bit FNV-1a: a fast, stable, dependency-free content hash (for change detection, not
/// security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        // From the FNV reference (Fowler/Noll/Vo): "" and "a".
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn changes_name_what_changed() {
        let a = DataFingerprint {
            path: "x.csv".into(),
            bytes: 100,
            hash: "1".into(),
            rows: 10,
            first: "2020-01-01 00:00:00".into(),
            last: "2020-01-01 09:00:00".into(),
            step: "1h".into(),
            trained_until: "2020-01-01 06:00:00".into(),
        };
        assert!(a.changes(&a).is_empty());
        // Where training ended says nothing of the file: a fingerprint taken now has none.
        let now = DataFingerprint {
            trained_until: String::new(),
            ..a.clone()
        };
        assert!(a.changes(&now).is_empty());
        let edited = DataFingerprint {
            hash: "2".into(),
            ..a.clone()
        };
        assert_eq!(a.changes(&edited).len(), 1);
        assert!(a.changes(&edited)[0].contains("values edited"));
        let shorter = DataFingerprint {
            bytes: 90,
            hash: "3".into(),
            rows: 9,
            last: "2020-01-01 08:00:00".into(),
            ..a.clone()
        };
        let c = a.changes(&shorter).join(", ");
        assert!(
            c.contains("rows 10 → 9") && c.contains("size (bytes) 100 → 90"),
            "{c}"
        );
        assert!(c.contains("last timestamp"), "{c}");
        let daily = DataFingerprint {
            step: "1d".into(),
            ..a.clone()
        };
        assert_eq!(a.changes(&daily), ["sampling step 1h → 1d"]);
        let unknown = DataFingerprint {
            step: String::new(),
            ..a.clone()
        };
        assert!(a.changes(&unknown).is_empty(), "an older run's record");
    }
}
