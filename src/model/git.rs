//! The desired state as it was at a git revision, for offline diffs in review.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Diagnostics, Fleet, load_dir};

#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    #[error("git: {0}")]
    Git(String),
    #[error("the desired state at {rev} is invalid:\n{diags}")]
    Invalid { rev: String, diags: Diagnostics },
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, RevisionError> {
    let out =
        Command::new("git").arg("-C").arg(dir).args(args).stderr(Stdio::piped()).output().map_err(|e| RevisionError::Git(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(RevisionError::Git(format!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(out.stdout)
}

/// Loads the desired-state folder `dir` as it is at `rev` (any revision git understands), through a
/// temporary copy of the files git has there. Nothing in the work tree is touched.
pub fn load_at_revision(dir: &Path, rev: &str) -> Result<Fleet, RevisionError> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let top = String::from_utf8_lossy(&git(dir, &["rev-parse", "--show-toplevel"])?).trim().to_string();
    let prefix = String::from_utf8_lossy(&git(dir, &["rev-parse", "--show-prefix"])?).trim().to_string();
    let files = git(Path::new(&top), &["ls-tree", "-r", "-z", "--name-only", rev, "--", &prefix])?;
    let copy = tempfile::tempdir().map_err(|e| RevisionError::Git(format!("cannot make a temporary folder: {e}")))?;
    for path in files.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let path = String::from_utf8_lossy(path).to_string();
        let content = git(Path::new(&top), &["show", &format!("{rev}:{path}")])?;
        let relative = path.strip_prefix(&prefix).unwrap_or(&path);
        let target: PathBuf = copy.path().join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| RevisionError::Git(e.to_string()))?;
        }
        std::fs::write(&target, content).map_err(|e| RevisionError::Git(e.to_string()))?;
    }
    let mut fleet = load_dir(copy.path()).map_err(|mut diags| {
        // Point at `REV:path`, not at the temporary copy.
        for d in &mut diags.0 {
            if let Ok(rel) = d.loc.file.strip_prefix(copy.path()) {
                d.loc.file = std::sync::Arc::from(Path::new(&format!("{rev}:{prefix}{}", rel.display())));
            }
        }
        RevisionError::Invalid { rev: rev.to_string(), diags }
    })?;
    fleet.dir = dir.to_path_buf();
    Ok(fleet)
}
