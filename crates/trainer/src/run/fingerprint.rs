//! What a run's data was when it trained (`data.toml`), so that `evaluate` and `--resume` can
//! tell when the file has changed since and refuse to report numbers on other data as if it
//! were the same.

use std::path::Path;

use anyhow::{bail, Context, Result};
use gatecast_data::Series;
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
        )
    }

    /// The fingerprint of the file at `path`, prepared into `rows` rows from `first` to `last`
    /// (a panel: all its series).
    pub fn of_rows(
        path: &str,
        rows: usize,
        first: Option<&chrono::NaiveDateTime>,
        last: Option<&chrono::NaiveDateTime>,
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
        };
        assert!(a.changes(&a).is_empty());
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
    }
}
