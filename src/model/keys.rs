//! Where each key of a TOML file is written, by its full path. The TOML parser reports a key defined twice in
//! one file at the second place only; this finds the first, so that the diagnostic names both.
//!
//! A light lexer, not a parser: it never fails (a file with syntax errors gets a best-effort answer) and only
//! tracks what makes a key's path: table headers, dotted keys, inline tables and arrays.

use std::collections::BTreeMap;

/// One written key: its full path (`pool.web.min`, `load_balancer.shared.listeners[1].port`) and offset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    path: String,
    start: usize,
    end: usize,
}

struct Lexer<'t> {
    text: &'t [u8],
    at: usize,
    keys: Vec<Key>,
    /// How many times each array of tables (`[[x]]`) has been opened.
    arrays: BTreeMap<String, usize>,
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn starts(&self, s: &str) -> bool {
        self.text[self.at..].starts_with(s.as_bytes())
    }

    /// Spaces and tabs; with `newlines`, also line breaks and comments.
    fn blank(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' => self.at += 1,
                b'\n' if newlines => self.at += 1,
                b'#' if newlines => self.rest_of_line(),
                _ => break,
            }
        }
    }

    fn rest_of_line(&mut self) {
        while let Some(c) = self.peek() {
            if c == b'\n' {
                break;
            }
            self.at += 1;
        }
    }

    /// A string of any of TOML's four kinds, returning its (unescaped enough for keys) text.
    fn string(&mut self) -> String {
        let quote = self.text[self.at];
        let triple = if quote == b'"' { "\"\"\"" } else { "'''" };
        let multi = self.starts(triple);
        self.at += if multi { 3 } else { 1 };
        let start = self.at;
        while self.at < self.text.len() {
            if multi && self.starts(triple) {
                let s = String::from_utf8_lossy(&self.text[start..self.at]).into_owned();
                self.at += 3;
                // A multi-line string may end in up to two more quotes.
                while self.peek() == Some(quote) {
                    self.at += 1;
                }
                return s;
            }
            let c = self.text[self.at];
            if !multi && c == b'\n' {
                break;
            }
            if c == b'\\' && quote == b'"' {
                self.at += 2;
                continue;
            }
            if !multi && c == quote {
                let s = String::from_utf8_lossy(&self.text[start..self.at]).into_owned();
                self.at += 1;
                return s;
            }
            self.at += 1;
        }
        self.at = self.at.min(self.text.len());
        String::from_utf8_lossy(&self.text[start..self.at]).into_owned()
    }

    /// One key segment, bare or quoted, with where it is written.
    fn segment(&mut self) -> Option<(String, usize, usize)> {
        let start = self.at;
        match self.peek()? {
            b'"' | b'\'' => {
                let s = self.string();
                Some((s, start, self.at))
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
                    self.at += 1;
                }
                Some((String::from_utf8_lossy(&self.text[start..self.at]).into_owned(), start, self.at))
            }
            _ => None,
        }
    }

    /// A dotted key under `prefix`: every segment is recorded (an implicit table counts as a definition of its
    /// path), and the full path returned.
    fn key(&mut self, prefix: &str) -> Option<String> {
        let mut path = prefix.to_string();
        loop {
            self.blank(false);
            let (segment, start, end) = self.segment()?;
            path = join(&path, &segment);
            self.keys.push(Key { path: path.clone(), start, end });
            self.blank(false);
            if self.peek() == Some(b'.') {
                self.at += 1;
            } else {
                return Some(path);
            }
        }
    }

    /// A value whose own keys (in inline tables) live under `path`.
    fn value(&mut self, path: &str) {
        self.blank(false);
        match self.peek() {
            Some(b'"' | b'\'') => {
                self.string();
            }
            Some(b'[') => {
                self.at += 1;
                let mut i = 0;
                loop {
                    self.blank(true);
                    match self.peek() {
                        None => return,
                        Some(b']') => {
                            self.at += 1;
                            return;
                        }
                        Some(b',') => {
                            self.at += 1;
                            i += 1;
                        }
                        Some(_) => {
                            let before = self.at;
                            self.value(&format!("{path}[{i}]"));
                            if self.at == before {
                                self.at += 1;
                            }
                        }
                    }
                }
            }
            Some(b'{') => {
                self.at += 1;
                loop {
                    self.blank(true);
                    match self.peek() {
                        None => return,
                        Some(b'}') => {
                            self.at += 1;
                            return;
                        }
                        Some(b',') => self.at += 1,
                        Some(_) => {
                            let before = self.at;
                            if let Some(key) = self.key(path) {
                                self.blank(false);
                                if self.peek() == Some(b'=') {
                                    self.at += 1;
                                    self.value(&key);
                                }
                            }
                            if self.at == before {
                                self.at += 1;
                            }
                        }
                    }
                }
            }
            _ => {
                // A number, date, boolean or something broken: up to the next delimiter.
                while self.peek().is_some_and(|c| !matches!(c, b',' | b']' | b'}' | b'\n' | b'#')) {
                    self.at += 1;
                }
            }
        }
    }

    fn document(&mut self) {
        let mut table = String::new();
        loop {
            self.blank(true);
            let Some(c) = self.peek() else { return };
            let before = self.at;
            if c == b'[' {
                let array = self.starts("[[");
                self.at += if array { 2 } else { 1 };
                if let Some(path) = self.key("") {
                    table = path;
                    if array {
                        let n = self.arrays.entry(table.clone()).or_insert(0);
                        table = format!("{table}[{n}]");
                        *n += 1;
                    }
                }
                self.rest_of_line();
            } else if let Some(key) = self.key(&table) {
                self.blank(false);
                if self.peek() == Some(b'=') {
                    self.at += 1;
                    self.value(&key);
                }
                self.rest_of_line();
            } else {
                self.rest_of_line();
            }
            if self.at == before {
                self.at += 1;
            }
        }
    }
}

/// The offset of the first definition of the key written at `offset`, if it was defined before.
pub(super) fn first_definition(text: &str, offset: usize) -> Option<usize> {
    let mut lexer = Lexer { text: text.as_bytes(), at: 0, keys: Vec::new(), arrays: BTreeMap::new() };
    lexer.document();
    let dup = lexer.keys.iter().rfind(|k| k.start <= offset && offset < k.end.max(k.start + 1))?;
    lexer.keys.iter().find(|k| k.path == dup.path && k.start < dup.start).map(|k| k.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str, dup: &str) -> Option<usize> {
        let at = text.rfind(dup).expect("the duplicate is in the text");
        first_definition(text, at)
    }

    #[test]
    fn finds_the_first_of_two_definitions() {
        let text = "[fleet]\nname = \"a\"\n\n[fleet]\nregion = \"b\"\n";
        assert_eq!(first(text, "fleet"), Some(1));
        let text = "[pool.web]\nmin = 1 # one\nmin = 2\n";
        assert_eq!(first(text, "min"), Some(11));
        let text = "[site.a]\ndomain = \"x\"\n[site]\na = { domain = \"y\" }\n";
        assert_eq!(first(text, "a ="), Some(6));
        let text = "fleet = { name = \"a\" }\n[fleet]\nregion = \"b\"\n";
        assert_eq!(first(text, "fleet]"), Some(0));
        let text = "[pool.web]\nhealth_check = { type = \"ELB\" }\n[pool.web.health_check]\ngrace_seconds = 1\n";
        assert_eq!(first(text, "health_check]"), Some(11));
        let text = "[load_balancer.a]\nlisteners = [\n  { port = 80 },\n  { port = 443, port = 444 },\n]\n";
        assert_eq!(first(text, "port = 444"), Some(text.find("port = 443").unwrap()));
        let text = "[\"quoted key\"]\nx = 1\n['quoted key']\n";
        assert_eq!(first(text, "'quoted key'"), Some(1));
    }

    #[test]
    fn other_keys_and_broken_text_are_not_duplicates() {
        let text = "[pool.web]\nmin = 1\n[pool.api]\nmin = 2\n";
        assert_eq!(first(text, "min"), None);
        let text = "[a]\ns = \"\"\"\nmin = 1\n\"\"\"\nmin = 2\n";
        assert_eq!(first(text, "min = 2"), None, "text in a multi-line string is not a key");
        let text = "[[x]]\nk = 1\n[[x]]\nk = 2\n";
        assert_eq!(first(text, "k = 2"), None, "each [[x]] is a table of its own");
        for broken in ["[a", "a = [1, {", "a = \"unterminated\nb = 1", "= = =", "[a]\nb = { c = [ \n"] {
            let _ = first_definition(broken, broken.len() / 2);
        }
    }
}
