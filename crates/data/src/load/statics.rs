//! Static columns of a long-format file: one value per series (a store's region, a product's
//! size), read beside the time-varying columns and checked to be constant within each series.

use std::collections::HashMap;
use std::path::Path;

use super::parse::{csv_error, find_column, is_missing, number_hint, open, parse_number};
use super::CsvOptions;
use crate::error::DataError;

/// The static columns of a long-format file, per series.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticColumns {
    /// Categorical column names.
    pub categorical: Vec<String>,
    /// Real column names.
    pub real: Vec<String>,
    /// Per series id: its categorical values (as written, trimmed) and its real values.
    pub series: HashMap<String, (Vec<String>, Vec<f64>)>,
}

impl StaticColumns {
    /// Series `id`'s categorical and real values.
    pub fn of(&self, id: &str) -> Option<(&[String], &[f64])> {
        self.series
            .get(id)
            .map(|(c, r)| (c.as_slice(), r.as_slice()))
    }
}

/// Reads `categorical` and `real` columns of the long-format file at `path` (its id column and
/// delimiter from `options`). Every row of a series must repeat the series' value; an error names
/// the file, line and column of a missing cell, a real cell that is not a finite number, or a
/// cell that differs from the series' first (and that first row's line).
pub fn load_static_columns(
    path: impl AsRef<Path>,
    options: &CsvOptions,
    categorical: &[String],
    real: &[String],
) -> Result<StaticColumns, DataError> {
    let name = path.as_ref().display().to_string();
    let bytes = std::fs::read(path.as_ref()).map_err(|error| DataError::Io {
        path: name.clone(),
        error,
    })?;
    static_columns(&name, &bytes, options, categorical, real)
}

fn static_columns(
    path: &str,
    bytes: &[u8],
    options: &CsvOptions,
    categorical: &[String],
    real: &[String],
) -> Result<StaticColumns, DataError> {
    let Some(id_column) = &options.id_column else {
        return Err(DataError::InvalidOption {
            option: "id_column".into(),
            message:
                "static columns belong to the series of a long-format file: give its id column"
                    .into(),
        });
    };
    let (mut reader, mut lines, header) = open(path, bytes, options)?;
    let find = |name: &str, option: &str| find_column(&header, name, option, path, options);
    let id = find(id_column, "id column")?;
    let columns: Vec<usize> = categorical
        .iter()
        .map(|c| find(c, "data.static_categorical"))
        .chain(real.iter().map(|c| find(c, "data.static_real")))
        .collect::<Result<_, _>>()?;
    let n_cat = categorical.len();
    // Per series: its cells as first written, and that row's line.
    let mut first: HashMap<String, (Vec<String>, u64)> = HashMap::new();
    let mut series = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, &lines, e))?;
        let line = lines.advance_to(record.position().map_or(0, |p| p.byte() as usize));
        let id = record.get(id).unwrap_or("").trim().to_string();
        let cells: Vec<String> = columns
            .iter()
            .map(|&i| record.get(i).unwrap_or("").trim().to_string())
            .collect();
        let bad = |k: usize, message: String| DataError::BadStatic {
            path: path.into(),
            line,
            column: header[columns[k]].clone(),
            message,
        };
        if let Some(k) = cells.iter().position(|c| is_missing(c)) {
            return Err(bad(k, format!("missing value for series '{id}'")));
        }
        if let Some((was, was_line)) = first.get(&id) {
            if let Some(k) = (0..cells.len()).find(|&k| cells[k] != was[k]) {
                return Err(bad(
                    k,
                    format!(
                        "series '{id}' has '{}' here but '{}' on line {was_line}; a static column holds one value per series",
                        cells[k], was[k]
                    ),
                ));
            }
            continue;
        }
        let mut reals = Vec::with_capacity(real.len());
        for (k, cell) in cells.iter().enumerate().skip(n_cat) {
            match parse_number(cell, options) {
                Some(v) if v.is_finite() => reals.push(v),
                Some(_) => return Err(bad(k, format!("'{cell}' is not finite"))),
                None => {
                    return Err(bad(
                        k,
                        format!(
                            "'{cell}' is not a number (data.static_real){}",
                            number_hint(cell, options)
                        ),
                    ))
                }
            }
        }
        series.insert(id.clone(), (cells[..n_cat].to_vec(), reals));
        first.insert(id, (cells, line));
    }
    Ok(StaticColumns {
        categorical: categorical.to_vec(),
        real: real.to_vec(),
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<StaticColumns, DataError> {
        let options = CsvOptions {
            id_column: Some("store".into()),
            ..CsvOptions::new("date")
        };
        static_columns(
            "f.csv",
            text.as_bytes(),
            &options,
            &["region".into()],
            &["size".into()],
        )
    }

    #[test]
    fn one_value_per_series() {
        let s = read(
            "date,store,region,size,units\n2024-01-01,a,north,10.5,1\n2024-01-01,b,south,3,2\n2024-01-02,a,north,10.5,4\n",
        )
        .unwrap();
        assert_eq!(s.series.len(), 2);
        assert_eq!(
            s.of("a").unwrap(),
            (&["north".to_string()][..], &[10.5][..])
        );
        assert_eq!(s.of("b").unwrap(), (&["south".to_string()][..], &[3.0][..]));
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let changed = read(
            "date,store,region,size\n2024-01-01,a,north,1\n2024-01-01,b,south,3\n2024-01-02,a,west,1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            changed.starts_with(
                "f.csv:4: column 'region': series 'a' has 'west' here but 'north' on line 2"
            ),
            "{changed}"
        );
        let text = read("date,store,region,size\n2024-01-01,a,north,big\n")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("f.csv:2: column 'size': 'big' is not a number"),
            "{text}"
        );
        let missing = read("date,store,region,size\n2024-01-01,a,,1\n")
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("f.csv:2: column 'region': missing value"),
            "{missing}"
        );
        let inf = read("date,store,region,size\n2024-01-01,a,n,inf\n")
            .unwrap_err()
            .to_string();
        assert!(inf.contains("'inf' is not finite"), "{inf}");
        let unknown = read("date,store,area,size\n2024-01-01,a,n,1\n")
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("no column named 'region' (for data.static_categorical)"),
            "{unknown}"
        );
    }
}
