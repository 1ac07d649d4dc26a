//! The loaded stack taken beyond one host: Kubernetes manifests
//! ([`kubernetes`]) and a compose file `docker stack deploy` accepts
//! ([`swarm`]). Both work on the same interpolated, merged, normalised
//! [`stack_spec::Project`] that `stack up` runs, and both return a
//! [`Warning`] for every key they cannot carry as it is, so nothing is
//! dropped silently.

pub mod kubernetes;
mod names;
pub mod swarm;
mod warning;

pub use warning::{Warning, Warnings};

/// A stack that cannot be exported as asked; nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A value the target cannot represent at all (a name Kubernetes refuses,
    /// a size that is not a quantity ...).
    #[error("{path}: {message}")]
    Value { path: String, message: String },
    /// A secret or config whose content cannot be read.
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: stack_fs::ReadError,
    },
    #[error("serialising the output: {0}")]
    Serialize(#[from] serde_saphyr::SerializeError),
}

impl ExportError {
    pub(crate) fn value(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Value {
            path: path.into(),
            message: message.into(),
        }
    }
}
