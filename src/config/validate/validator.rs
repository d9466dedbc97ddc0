//! The validator's bookkeeping: problems with their `line:column`, the environment variables a
//! file names, and small conversions every section's checks share.

use crate::backend::timestamp::TimeFormat;
use crate::config::{ConfigError, EnvVarUse, Problem};
use crate::scim::schema::ResourceKind;
use serde_json::Value;
use serde_spanned::Spanned;
use std::path::Path;

/// Collects the problems of one config file, each with its line and column.
pub(super) struct Validator<'a> {
    text: &'a str,
    /// The problems found so far.
    pub(super) problems: Vec<Problem>,
    /// The environment variables the file names, with their positions.
    pub(super) env_vars: Vec<EnvVarUse>,
    /// Whose schema field mappings and filters name attributes of (`[users]` or `[groups]`).
    pub(super) kind: ResourceKind,
}

impl<'a> Validator<'a> {
    /// A validator of `text` with nothing found yet.
    pub(super) fn new(text: &'a str) -> Self {
        Validator {
            text,
            problems: Vec::new(),
            env_vars: Vec::new(),
            kind: ResourceKind::User,
        }
    }

    /// The 1-based line and column of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
        (line, column)
    }

    pub(super) fn report(&mut self, offset: usize, message: String) {
        let (line, column) = self.position(offset);
        self.problems.push(Problem {
            line,
            column,
            message,
        });
    }

    pub(super) fn at<T>(&mut self, spanned: &Spanned<T>, message: String) {
        self.report(spanned.span().start, message);
    }

    /// The `time_format` of `section` (`users`, `groups`): RFC 3339 when absent, `None` (reported)
    /// when it does not parse.
    pub(super) fn time_format(
        &mut self,
        text: Option<&Spanned<String>>,
        section: &str,
    ) -> Option<TimeFormat> {
        match text {
            Some(t) => TimeFormat::parse(t.get_ref())
                .map_err(|e| self.at(t, format!("{section}.{e}")))
                .ok(),
            None => Some(TimeFormat::Rfc3339),
        }
    }

    /// A required, non-empty environment variable name given by `setting`, recorded with its
    /// position in [`Config::env_vars`].
    pub(super) fn env_var(&mut self, name: &Spanned<String>, setting: String) -> Option<String> {
        if name.get_ref().is_empty() {
            self.at(name, format!("{setting} must name an environment variable"));
            return None;
        }
        let (line, column) = self.position(name.span().start);
        self.env_vars.push(EnvVarUse {
            name: name.get_ref().clone(),
            setting,
            line,
            column,
        });
        Some(name.get_ref().clone())
    }

    pub(super) fn into_error(mut self, path: &Path) -> ConfigError {
        self.problems.sort_by_key(|p| (p.line, p.column));
        ConfigError {
            file: path.to_path_buf(),
            problems: self.problems,
        }
    }
}

/// A dotted native path (`profile.email`) as its keys.
pub(super) fn dotted(path: &str) -> Vec<String> {
    path.split('.').map(str::to_string).collect()
}

/// Converts a TOML value from the file into JSON.
pub(super) fn toml_to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
