//! A small schema walker over spanned TOML: typed field access that records every problem (unknown field,
//! wrong type, missing field, out-of-range number) with its location instead of stopping at the first.

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::{Diagnostic, Loc, Located, SourceFile, did_you_mean};

pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

pub(crate) struct Walker<'s> {
    pub src: &'s SourceFile,
    pub diags: &'s mut Vec<Diagnostic>,
    /// Reading a second definition of a table (itself reported): what it has is checked, what it lacks is
    /// not (the first definition is the one that counts).
    pub second_definition: bool,
}

/// The fields of one TOML table, checked against the names a schema knows.
pub(crate) struct Fields<'a, 'i> {
    pub path: String,
    pub loc: Loc,
    entries: Vec<(&'a str, &'a Value<'i>)>,
}

impl<'a, 'i> Fields<'a, 'i> {
    pub fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    pub fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&'a str, &'a Value<'i>)> + '_ {
        self.entries.iter().copied()
    }
}

fn article(ty: &str) -> &'static str {
    match ty.as_bytes().first() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => "an",
        _ => "a",
    }
}

impl<'s> Walker<'s> {
    pub fn loc(&self, v: &Value<'_>) -> Loc {
        self.src.loc(v.span().start)
    }

    /// Records a problem; the returned diagnostic can take a `help` line.
    pub fn error(&mut self, loc: Loc, field: impl Into<String>, message: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::new(loc, field, message));
        self.diags.last_mut().expect("just pushed")
    }

    fn wrong_type(&mut self, v: &Value<'_>, field: &str, expected: &str) {
        let found = v.get_ref().type_str();
        let loc = self.loc(v);
        self.error(loc, field, format!("expected {expected}, found {} {found}", article(found)));
    }

    /// Opens `v` as a table whose fields must be among `known`; unknown fields are reported (with a suggestion).
    pub fn fields<'a, 'i>(&mut self, v: &'a Value<'i>, path: &str, known: &[&str]) -> Option<Fields<'a, 'i>> {
        let Some(table) = v.get_ref().as_table() else {
            self.wrong_type(v, path, "a table");
            return None;
        };
        Some(self.table_fields(table, self.loc(v), path, known))
    }

    pub fn table_fields<'a, 'i>(&mut self, table: &'a DeTable<'i>, loc: Loc, path: &str, known: &[&str]) -> Fields<'a, 'i> {
        let mut entries = Vec::new();
        for (k, v) in table.iter() {
            let key: &'a str = k.get_ref().as_ref();
            if !known.is_empty() && !known.contains(&key) {
                let mut d = Diagnostic::new(self.src.loc(k.span().start), format!("{path}.{key}"), "unknown field");
                d = match did_you_mean(key, known.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("expected one of: {}", known.join(", "))),
                };
                self.diags.push(d);
                continue;
            }
            entries.push((key, v));
        }
        Fields { path: path.to_string(), loc, entries }
    }

    pub fn required<'a, 'i>(&mut self, f: &Fields<'a, 'i>, key: &str) -> Option<&'a Value<'i>> {
        let v = f.get(key);
        if v.is_none() && !self.second_definition {
            self.error(f.loc.clone(), f.field(key), "missing required field");
        }
        v
    }

    pub fn string(&mut self, v: &Value<'_>, field: &str) -> Option<Located<String>> {
        match v.get_ref().as_str() {
            Some(s) => Some(Located { value: s.to_string(), loc: self.loc(v) }),
            None => {
                self.wrong_type(v, field, "a string");
                None
            }
        }
    }

    pub fn opt_string(&mut self, f: &Fields<'_, '_>, key: &str) -> Option<Located<String>> {
        let v = f.get(key)?;
        self.string(v, &f.field(key))
    }

    pub fn req_string(&mut self, f: &Fields<'_, '_>, key: &str) -> Option<Located<String>> {
        let v = self.required(f, key)?;
        self.string(v, &f.field(key))
    }

    pub fn int(&mut self, v: &Value<'_>, field: &str, range: std::ops::RangeInclusive<i64>) -> Option<Located<i64>> {
        let Some(i) = v.get_ref().as_integer() else {
            self.wrong_type(v, field, "an integer");
            return None;
        };
        let loc = self.loc(v);
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if range.contains(&n) => Some(Located { value: n, loc }),
            _ => {
                let msg = format!("{} is out of range: expected {} to {}", i.as_str(), range.start(), range.end());
                self.error(loc, field, msg);
                None
            }
        }
    }

    pub fn opt_int(&mut self, f: &Fields<'_, '_>, key: &str, range: std::ops::RangeInclusive<i64>) -> Option<Located<i64>> {
        let v = f.get(key)?;
        self.int(v, &f.field(key), range)
    }

    pub fn req_int(&mut self, f: &Fields<'_, '_>, key: &str, range: std::ops::RangeInclusive<i64>) -> Option<Located<i64>> {
        let v = self.required(f, key)?;
        self.int(v, &f.field(key), range)
    }

    pub fn opt_bool(&mut self, f: &Fields<'_, '_>, key: &str) -> Option<bool> {
        let v = f.get(key)?;
        match v.get_ref().as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong_type(v, &f.field(key), "a boolean");
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a list of one when `single_ok`.
    pub fn strings(&mut self, v: &Value<'_>, field: &str, single_ok: bool) -> Vec<Located<String>> {
        if single_ok && v.get_ref().is_str() {
            return self.string(v, field).into_iter().collect();
        }
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(v, field, if single_ok { "a string or an array of strings" } else { "an array of strings" });
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(s) = self.string(item, &format!("{field}[{i}]")) {
                out.push(s);
            }
        }
        out
    }

    pub fn opt_strings(&mut self, f: &Fields<'_, '_>, key: &str) -> Vec<Located<String>> {
        match f.get(key) {
            Some(v) => self.strings(v, &f.field(key), false),
            None => Vec::new(),
        }
    }

    /// An array whose elements are tables, each handed to `each` with its index path.
    pub fn tables<'a, 'i>(&mut self, v: &'a Value<'i>, field: &str) -> Vec<(String, &'a Value<'i>)> {
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(v, field, "an array of tables");
            return Vec::new();
        };
        items.iter().enumerate().map(|(i, item)| (format!("{field}[{i}]"), item)).collect()
    }

    /// A table of string values (tags); integers and booleans are accepted and kept as written.
    pub fn string_map(&mut self, v: &Value<'_>, field: &str) -> BTreeMap<String, Located<String>> {
        let mut out = BTreeMap::new();
        let Some(table) = v.get_ref().as_table() else {
            self.wrong_type(v, field, "a table");
            return out;
        };
        for (k, item) in table.iter() {
            let key = k.get_ref().to_string();
            if let Some(value) = self.scalar(item, &format!("{field}.{key}")) {
                out.insert(key, value);
            }
        }
        out
    }

    /// A string, or an integer, boolean or float kept as written.
    pub fn scalar(&mut self, v: &Value<'_>, field: &str) -> Option<Located<String>> {
        let value = match v.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(i) => i.as_str().to_string(),
            DeValue::Boolean(b) => b.to_string(),
            DeValue::Float(x) => x.as_str().to_string(),
            _ => {
                self.wrong_type(v, field, "a string");
                return None;
            }
        };
        Some(Located { value, loc: self.loc(v) })
    }
}
