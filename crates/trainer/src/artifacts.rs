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

/// Writes `value` as TOML to `file` in the run directory `dir`, atomically.
pub fn save_toml<T: serde::Serialize>(dir: &Path, file: &str, value: &T) -> Result<()> {
    write_atomic(&dir.join(file), toml::to_string_pretty(value)?.as_bytes())
}

/// `file` in the run directory `dir` read back as TOML, or `None` where the run has none;
/// `what` names it in the error for a file that is there but unreadable.
pub fn load_toml<T: serde::de::DeserializeOwned>(
    dir: &Path,
    file: &str,
    what: &str,
) -> Result<Option<T>> {
    let path = dir.join(file);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text)
        .map(Some)
        .with_context(|| format!("{}: not {what}", path.display()))
}
