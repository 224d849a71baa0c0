//! Files written so that a crash never leaves a half-written one: temp file, then rename.

use std::path::Path;

use anyhow::{Context, Result};

/// Writes `bytes` to `path` atomically (a temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
}

/// Writes a CSV file atomically.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut text = header.join(",");
    text.push('\n');
    for r in rows {
        text += &r.join(",");
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}
