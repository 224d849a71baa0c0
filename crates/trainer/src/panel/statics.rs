//! Static covariates of a panel (`data.static_categorical`, `data.static_real`): one value per
//! series, entering the model beside the calendar features as known-future covariates that never
//! change. A categorical column becomes one indicator per level: the network's input weights
//! then learn a vector per level, an embedding in effect. A real column is standardized over
//! the training series. The encoding is fitted once, on the series a run trains on, and saved
//! (`statics.toml`), so `evaluate` and `forecast` read the columns exactly as training did.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use gatecast_data::StaticColumns;
use serde::{Deserialize, Serialize};

use crate::artifacts::{load_toml, save_toml};

const FILE: &str = "statics.toml";

/// A categorical column and its levels, in sorted order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Levels {
    /// The column.
    pub column: String,
    /// The levels the training series have.
    pub levels: Vec<String>,
}

/// A real column's mean and std over the training series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardized {
    /// The column.
    pub column: String,
    /// Mean over the series.
    pub mean: f64,
    /// Population std over the series (1 where they all agree).
    pub std: f64,
}

/// How a run turns static columns into features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaticEncoding {
    /// One indicator per level.
    pub categorical: Vec<Levels>,
    /// `(x - mean) / std`.
    pub real: Vec<Standardized>,
}

impl StaticEncoding {
    /// Fitted on the series `ids` of `columns`.
    pub fn fit(columns: &StaticColumns, ids: &[&str]) -> Self {
        let rows: Vec<(&[String], &[f64])> = ids.iter().filter_map(|id| columns.of(id)).collect();
        let categorical = columns
            .categorical
            .iter()
            .enumerate()
            .map(|(k, column)| Levels {
                column: column.clone(),
                levels: rows
                    .iter()
                    .map(|(c, _)| c[k].clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            })
            .collect();
        let real = columns
            .real
            .iter()
            .enumerate()
            .map(|(k, column)| {
                let (mean, std) = gatecast_data::fit_values(
                    gatecast_data::ScalerKind::Standard,
                    rows.iter().map(|(_, r)| r[k] as f32),
                );
                Standardized {
                    column: column.clone(),
                    mean,
                    std,
                }
            })
            .collect();
        Self { categorical, real }
    }

    /// Feature names: `column=level` per level, then the real columns.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .categorical
            .iter()
            .flat_map(|c| c.levels.iter().map(move |l| format!("{}={l}", c.column)))
            .collect();
        out.extend(self.real.iter().map(|r| r.column.clone()));
        out
    }

    /// Series `id`'s features from `columns` (read from `file`); an error names a level the
    /// training series never had.
    pub fn encode(&self, columns: &StaticColumns, id: &str, file: &str) -> Result<Vec<f32>> {
        let (cats, reals) = columns
            .of(id)
            .with_context(|| format!("{file}: series {id} has no static values"))?;
        let mut out = Vec::new();
        for (c, value) in self.categorical.iter().zip(cats) {
            let Some(k) = c.levels.iter().position(|l| l == value) else {
                bail!(
                    "{file}: series {id}: column '{}' = '{value}' is a level the training series never had ({})",
                    c.column,
                    c.levels.join(", ")
                );
            };
            out.extend((0..c.levels.len()).map(|i| if i == k { 1.0 } else { 0.0 }));
        }
        for (r, value) in self.real.iter().zip(reals) {
            out.push(((value - r.mean) / r.std) as f32);
        }
        Ok(out)
    }

    /// Writes `statics.toml`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_toml(dir, FILE, self)
    }

    /// The run's `statics.toml`, if it has one.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        load_toml(dir, FILE, "a static-column encoding")
    }
}

/// `calendar` (`[rows, width]` row-major) with `features` appended to every row.
pub fn append(calendar: &[f32], rows: usize, features: &[f32]) -> Vec<f32> {
    let width = calendar.len() / rows.max(1);
    let mut out = Vec::with_capacity(rows * (width + features.len()));
    for r in 0..rows {
        out.extend_from_slice(&calendar[r * width..(r + 1) * width]);
        out.extend_from_slice(features);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> StaticColumns {
        StaticColumns {
            categorical: vec!["region".into()],
            real: vec!["size".into()],
            series: [
                ("a", "south", 1.0),
                ("b", "north", 3.0),
                ("c", "west", 100.0),
            ]
            .into_iter()
            .map(|(id, region, size)| (id.into(), (vec![region.into()], vec![size])))
            .collect(),
        }
    }

    /// Levels sorted, one indicator each; reals standardized over the training series only.
    #[test]
    fn encoding_by_hand() {
        let cols = columns();
        let e = StaticEncoding::fit(&cols, &["a", "b"]);
        assert_eq!(e.names(), ["region=north", "region=south", "size"]);
        assert_eq!(e.encode(&cols, "a", "f").unwrap(), [0.0, 1.0, -1.0]);
        assert_eq!(e.encode(&cols, "b", "f").unwrap(), [1.0, 0.0, 1.0]);
        let err = e.encode(&cols, "c", "f").unwrap_err().to_string();
        assert!(
            err.contains(
                "'region' = 'west' is a level the training series never had (north, south)"
            ),
            "{err}"
        );
        assert_eq!(
            append(&[1.0, 2.0, 3.0, 4.0], 2, &[9.0]),
            [1.0, 2.0, 9.0, 3.0, 4.0, 9.0]
        );
        let dir = std::env::temp_dir().join(format!("gatecast-statics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        e.save(&dir).unwrap();
        assert_eq!(StaticEncoding::load(&dir).unwrap(), Some(e));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
