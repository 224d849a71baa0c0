//! Fuzzes the CSV loader and its validation: arbitrary bytes, parsed under every policy
//! combination the first bytes select, must give a `Series` or a `DataError` — never a panic,
//! and never a series with a non-finite value or out-of-order timestamps.
#![no_main]

use gatecast_data::{load_csv_str, CsvOptions, DuplicatePolicy, GapPolicy, MissingPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [selector, second, rest @ ..] = data else {
        return;
    };
    let (selector, second) = (*selector, *second);
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let options = CsvOptions {
        time_column: "time".into(),
        time_format: (selector & 0x40 != 0).then(|| "%Y-%m-%d %H:%M".into()),
        columns: (selector & 0x80 != 0).then(|| vec!["a".into()]),
        missing: [
            MissingPolicy::Error,
            MissingPolicy::Interpolate,
            MissingPolicy::ForwardFill,
        ][(selector % 3) as usize],
        duplicates: [
            DuplicatePolicy::Error,
            DuplicatePolicy::First,
            DuplicatePolicy::Mean,
            DuplicatePolicy::Sum,
        ][((selector >> 2) % 4) as usize],
        gaps: [GapPolicy::Error, GapPolicy::Interpolate, GapPolicy::Keep]
            [((selector >> 4) % 3) as usize],
        id_column: (second & 1 != 0).then(|| "id".into()),
        delimiter: [b',', b';', b'\t', b'|'][((second >> 1) % 4) as usize],
        decimal_comma: second & 8 != 0,
        ..CsvOptions::default()
    };
    if let Ok(panel) = load_csv_str("fuzz.csv", text, &options) {
        for series in panel {
            let rows = series.timestamps.len();
            assert_eq!(series.values.len(), rows * series.columns.len());
            assert!(
                series.values.iter().all(|v| v.is_finite()),
                "non-finite value kept"
            );
            assert!(
                series.timestamps.windows(2).all(|w| w[0] < w[1]),
                "timestamps out of order"
            );
            assert!(series
                .segments
                .iter()
                .all(|s| s.start < s.end && s.end <= rows));
        }
    }
});
