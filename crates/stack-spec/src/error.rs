//! Errors and warnings of the loader. Every error carries where it was found
//! (file, line, column) and the key path, so a user can go straight to it.

use std::fmt;
use std::sync::Arc;

/// A position in a source file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl Span {
    pub fn new(file: Arc<str>, line: u32, col: u32) -> Self {
        Self { file, line, col }
    }

    /// A position for values that do not come from a file (command line, defaults).
    pub fn synthetic(what: &str) -> Self {
        Self {
            file: Arc::from(what),
            line: 0,
            col: 0,
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

/// The class of a load error, so callers and tests can tell them apart
/// without matching on wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Reading a file failed, or a required file is missing.
    Io,
    /// YAML syntax, duplicate or non-string keys, alias abuse, bad merge keys.
    Yaml,
    /// A `${...}` template is malformed or a required variable is unset.
    Interpolation,
    /// The structure does not match the Compose schema (unknown key, wrong type).
    Schema,
    /// A value the schema accepts but that cannot be used (bad port, duration, size ...).
    Value,
    /// Cross references: undefined service, network, volume, secret, conflicting settings.
    Reference,
    /// A `depends_on`, `extends` or `include` cycle.
    Cycle,
    /// `extends` that cannot be resolved.
    Extends,
    /// No stack file, or a file with no content.
    Empty,
}

/// One problem found while loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub kind: ErrorKind,
    pub span: Span,
    /// Key path such as `services.web.ports[1]`; empty for the whole document.
    pub path: String,
    pub message: String,
}

impl LoadError {
    pub fn new(
        kind: ErrorKind,
        span: Span,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            span,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.span, self.message)
        } else {
            write!(f, "{}: {}: {}", self.span, self.path, self.message)
        }
    }
}

/// Every error found in one load, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors {
    pub errors: Vec<LoadError>,
}

impl LoadErrors {
    pub fn one(err: LoadError) -> Self {
        Self { errors: vec![err] }
    }

    pub fn kinds(&self) -> Vec<ErrorKind> {
        self.errors.iter().map(|e| e.kind).collect()
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Something worth telling the user that does not stop the load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub span: Span,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.span, self.message)
        } else {
            write!(f, "{}: {}: {}", self.span, self.path, self.message)
        }
    }
}

/// Collects errors and warnings while a load goes on, so that all of them
/// are reported at once.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub errors: Vec<LoadError>,
    pub warnings: Vec<Warning>,
}

impl Diagnostics {
    pub fn error(&mut self, kind: ErrorKind, span: &Span, path: &str, message: impl Into<String>) {
        self.errors
            .push(LoadError::new(kind, span.clone(), path, message));
    }

    pub fn warn(&mut self, span: &Span, path: &str, message: impl Into<String>) {
        self.warnings.push(Warning {
            span: span.clone(),
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}
