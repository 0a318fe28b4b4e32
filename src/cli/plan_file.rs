//! Saved plan files on disk (`plan --out`, `apply FILE`): reading, writing (never half-written) and the
//! digests of the desired state's files that a saved plan records.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::plan::saved::{FORMAT, SavedPlan};

#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{0} is not a converge plan file ({1})")]
    Format(String, String),
}

/// sha256 of every file below `dir`, by path relative to it (sorted; `/` separators).
pub fn digest_dir(dir: &Path) -> Result<BTreeMap<String, String>, PlanFileError> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<(), PlanFileError> {
        let io = |e: std::io::Error| PlanFileError::Io { path: dir.display().to_string(), message: e.to_string() };
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if dir == root && path.file_name().is_some_and(|n| n == crate::lock::LOCAL_FILE) {
                // The local apply lock changes with every apply: it is not the desired state.
            } else {
                let bytes = std::fs::read(&path).map_err(io)?;
                let rel = path.strip_prefix(root).unwrap_or(&path).components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                out.insert(rel, hex::encode(Sha256::digest(&bytes)));
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

pub fn read(path: &Path) -> Result<SavedPlan, PlanFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| PlanFileError::Io { path: path.display().to_string(), message: e.to_string() })?;
    let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| PlanFileError::Format(path.display().to_string(), e.to_string()))?;
    if saved.format != FORMAT {
        return Err(PlanFileError::Format(path.display().to_string(), format!("format {}, expected {FORMAT}", saved.format)));
    }
    Ok(saved)
}

pub fn write(saved: &SavedPlan, path: &Path) -> Result<(), PlanFileError> {
    let mut text = serde_json::to_string_pretty(saved).expect("plans serialise");
    text.push('\n');
    // Write beside, then rename: a plan file is never half-written.
    let tmp = path.with_extension("json.tmp");
    let io = |e: std::io::Error| PlanFileError::Io { path: path.display().to_string(), message: e.to_string() };
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
