//! Typed reads of the keys of one configuration section. Every read that fails adds a
//! problem and returns `None`, so one pass over a file finds every problem. Keys left
//! unread at the end are reported as unknown.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use config::{Value, ValueKind};

use super::duration::parse_duration;
use super::problems::{from_environment, Problem};

/// The keys of one section, taken out one by one as they are read.
pub struct Section<'a> {
    name: &'static str,
    entries: HashMap<String, Value>,
    /// The keys this section takes, in the order they are read, for the unknown-key message.
    known: Vec<&'static str>,
    /// The keys read so far whose value came from an environment variable.
    from_env: HashSet<&'static str>,
    problems: &'a mut Vec<Problem>,
}

impl<'a> Section<'a> {
    /// Takes section `name` out of the root table. A missing section reads as empty; a value
    /// that is not a table adds a problem and reads as empty.
    pub fn take(root: &mut HashMap<String, Value>, name: &'static str, problems: &'a mut Vec<Problem>) -> Section<'a> {
        let entries = match root.remove(name) {
            None => HashMap::new(),
            Some(Value { kind: ValueKind::Table(table), .. }) => table.into_iter().collect(),
            Some(value) => {
                let message = format!("expected a table [{name}], found {}", describe(&value));
                problems.push(Problem { key: name.to_owned(), from_env: from_environment(value.origin()), message });
                HashMap::new()
            }
        };
        Section { name, entries, known: Vec::new(), from_env: HashSet::new(), problems }
    }

    /// Returns `section.key`.
    pub fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }

    /// Adds a problem on `key` (read before), naming the environment variable when the
    /// value came from it.
    pub fn problem(&mut self, key: &str, message: String) {
        let from_env = self.from_env.contains(key);
        self.problems.push(Problem { key: self.key(key), from_env, message });
    }

    /// Returns whether the value of `key`, read before, came from an environment variable.
    pub fn is_from_env(&self, key: &str) -> bool {
        self.from_env.contains(key)
    }

    /// Returns whether a problem on `key` was added already.
    pub fn has_problem(&self, key: &str) -> bool {
        let full = self.key(key);
        self.problems.iter().any(|problem| problem.key == full)
    }

    /// Takes the raw value of `key`.
    fn value(&mut self, key: &'static str) -> Option<Value> {
        self.known.push(key);
        let value = self.entries.remove(key)?;
        if from_environment(value.origin()) {
            self.from_env.insert(key);
        }
        Some(value)
    }

    /// Takes the raw value of `key`, for a value with a structure of its own.
    pub fn raw(&mut self, key: &'static str) -> Option<Value> {
        self.value(key)
    }

    /// Reads a string.
    pub fn string(&mut self, key: &'static str) -> Option<String> {
        let value = self.value(key)?;
        match value.kind {
            ValueKind::String(text) => Some(text),
            _ => {
                let message = format!("expected a string, found {}", describe(&value));
                self.problem(key, message);
                None
            }
        }
    }

    /// Reads a path: a non-empty string.
    pub fn path(&mut self, key: &'static str) -> Option<PathBuf> {
        let text = self.string(key)?;
        if text.is_empty() {
            self.problem(key, "invalid empty path: give a path or leave the key out".into());
            return None;
        }
        Some(PathBuf::from(text))
    }

    /// Reads a boolean: `true` or `false`, also as a string from the environment.
    pub fn bool(&mut self, key: &'static str) -> Option<bool> {
        let value = self.value(key)?;
        match &value.kind {
            ValueKind::Boolean(flag) => Some(*flag),
            ValueKind::String(text) if text == "true" => Some(true),
            ValueKind::String(text) if text == "false" => Some(false),
            _ => {
                let message = format!("expected true or false, found {}", describe(&value));
                self.problem(key, message);
                None
            }
        }
    }

    /// Reads a whole number from `min` to `max`, also as a string of digits.
    pub fn number(&mut self, key: &'static str, min: u64, max: u64) -> Option<u64> {
        let value = self.value(key)?;
        let number = match &value.kind {
            ValueKind::I64(number) => u64::try_from(*number).ok(),
            ValueKind::U64(number) => Some(*number),
            ValueKind::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
            _ => None,
        };
        match number {
            Some(number) if (min..=max).contains(&number) => Some(number),
            _ => {
                let message = format!("invalid value {}: give a whole number from {min} to {max}", describe(&value));
                self.problem(key, message);
                None
            }
        }
    }

    /// Reads a number with or without a fraction, also as a string such as `"2.5"`. The
    /// caller checks its range, which may exclude NaN and the infinities.
    pub fn float(&mut self, key: &'static str) -> Option<f64> {
        let value = self.value(key)?;
        let number = match &value.kind {
            ValueKind::Float(number) => Some(*number),
            ValueKind::I64(number) => Some(*number as f64),
            ValueKind::U64(number) => Some(*number as f64),
            ValueKind::String(text) => text.trim().parse().ok(),
            _ => None,
        };
        if number.is_none() {
            let message = format!("expected a number such as 1 or 2.5, found {}", describe(&value));
            self.problem(key, message);
        }
        number
    }

    /// Reads a duration such as `"300s"` or `"5m"`.
    pub fn duration(&mut self, key: &'static str) -> Option<Duration> {
        let value = self.value(key)?;
        let parsed = match &value.kind {
            ValueKind::String(text) => parse_duration(text),
            _ => Err(format!(
                "expected a duration string with a unit, e.g. \"300s\" or \"5m\", found {}",
                describe(&value)
            )),
        };
        parsed.map_err(|message| self.problem(key, message)).ok()
    }

    /// Reads a list of strings: a TOML array, or one string of comma-separated items (the
    /// form an environment variable takes).
    pub fn list(&mut self, key: &'static str) -> Option<Vec<String>> {
        let value = self.value(key)?;
        let items = match value.kind {
            ValueKind::String(text) => Some(split_list(&text)),
            ValueKind::Array(items) => items
                .into_iter()
                .map(|item| match item.kind {
                    ValueKind::String(text) => Some(text),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        if items.is_none() {
            self.problem(key, "expected a list of strings, e.g. [\"a\", \"b\"]".into());
        }
        items
    }

    /// Takes the table `key` as the subsection `name` (`section.key`), e.g. `[cluster.tls]`.
    /// Returns `None` when the key is absent; a value that is not a table adds a problem and
    /// reads as an empty subsection.
    pub fn table(&mut self, key: &'static str, name: &'static str) -> Option<Section<'_>> {
        let value = self.value(key)?;
        let mut root = HashMap::from([(name.to_owned(), value)]);
        Some(Section::take(&mut root, name, self.problems))
    }

    /// Reports every key that no read took as unknown, naming the keys the section takes.
    pub fn finish(mut self) {
        let mut unknown: Vec<(String, Value)> = self.entries.drain().collect();
        unknown.sort_by(|a, b| a.0.cmp(&b.0));
        let takes = self.known.join(", ");
        for (key, value) in unknown {
            let message = format!("unknown key; [{}] takes {takes}", self.name);
            let from_env = from_environment(value.origin());
            self.problems.push(Problem { key: format!("{}.{key}", self.name), from_env, message });
        }
    }
}

/// Splits `a, b,c` into trimmed, non-empty items.
fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

/// Describes a value for a message: strings quoted, tables and arrays by kind.
pub fn describe(value: &Value) -> String {
    match &value.kind {
        ValueKind::Nil => "nothing".to_owned(),
        ValueKind::Boolean(flag) => flag.to_string(),
        ValueKind::I64(number) => number.to_string(),
        ValueKind::I128(number) => number.to_string(),
        ValueKind::U64(number) => number.to_string(),
        ValueKind::U128(number) => number.to_string(),
        ValueKind::Float(number) => number.to_string(),
        ValueKind::String(text) => format!("{text:?}"),
        ValueKind::Table(_) => "a table".to_owned(),
        ValueKind::Array(_) => "a list".to_owned(),
    }
}
