//! Diagnostics: problems in `desired-state/`, each located at file:line:col and naming the field.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A position in a desired-state file, 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub file: Arc<Path>,
    pub line: usize,
    pub col: usize,
}

impl Loc {
    /// A location for things that do not come from a file (tests, built-in defaults).
    pub fn none() -> Loc {
        Loc { file: Arc::from(Path::new("<none>")), line: 0, col: 0 }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Located<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// One problem found while loading or validating the desired state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub loc: Loc,
    /// The dotted field path, e.g. `load_balancer.shared.listeners[1].certificate`.
    pub field: String,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(loc: Loc, field: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { loc, field: field.into(), message: message.into(), help: None }
    }

    pub fn set_help(&mut self, help: impl Into<String>) {
        self.help = Some(help.into());
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: error: {}", self.loc, self.message)?;
        } else {
            write!(f, "{}: error: {}: {}", self.loc, self.field, self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in a desired state; loading fails with all of them at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        let n = self.0.len();
        write!(f, "{n} problem{} found in the desired state", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for Diagnostics {}

/// Maps byte offsets of one file to line and column.
#[derive(Debug)]
pub struct SourceFile {
    pub path: Arc<Path>,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: PathBuf, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile { path: Arc::from(path.as_path()), text, line_starts }
    }

    pub fn loc(&self, offset: usize) -> Loc {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let col = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count()) + 1;
        Loc { file: self.path.clone(), line, col }
    }
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < c.len().max(word.len()))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let f = SourceFile::new("a.toml".into(), "x = 1\né = \"y\"\n".into());
        assert_eq!((f.loc(0).line, f.loc(0).col), (1, 1));
        let y = f.text.find('"').unwrap();
        assert_eq!((f.loc(y).line, f.loc(y).col), (2, 5));
    }

    #[test]
    fn suggests_close_names_only() {
        let fields = ["instance_type", "image", "min", "max"];
        assert_eq!(did_you_mean("instance_typ", fields), Some("instance_type"));
        assert_eq!(did_you_mean("imgae", fields), Some("image"));
        assert_eq!(did_you_mean("completely_else", fields), None);
    }
}
