//! Typed progress of a plan as it runs: one [`Step`] when an operation
//! begins, ends or fails, sent to the `stack` command so that it can draw
//! compose's display (`[+] Running 2/4`, a line per resource) or print
//! plain or JSON lines, each from the same facts rather than from text.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::{Action, Operation, Resource};

/// What kind of resource an operation acts on (compose's "Container",
/// "Network" ... in front of each line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Network,
    Volume,
    Image,
    Container,
}

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepPhase {
    Working,
    Done,
    Failed,
}

/// One operation of a plan beginning, ending or failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub kind: StepKind,
    pub name: String,
    pub action: Action,
    pub phase: StepPhase,
    /// Why the plan has this operation (`config changed: environment.V`).
    pub cause: String,
    /// How long the operation took, once it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<u64>,
}

impl Step {
    pub fn new(op: &Operation, phase: StepPhase, took: Option<Duration>) -> Self {
        let (kind, name) = match &op.resource {
            Resource::Network(n) => (StepKind::Network, n),
            Resource::Volume(n) => (StepKind::Volume, n),
            Resource::Image(n) | Resource::Build { image: n, .. } => (StepKind::Image, n),
            Resource::Container { name, .. } => (StepKind::Container, name),
        };
        Self {
            kind,
            name: name.clone(),
            action: op.action,
            phase,
            cause: op.cause.to_string(),
            took_ms: took.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StepKind::Network => "network",
            StepKind::Volume => "volume",
            StepKind::Image => "image",
            StepKind::Container => "container",
        })
    }
}

/// The one-line form for readers of plain text (`stack watch`, logs of
/// tests): `container web-1: created (not found) 84 ms`.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.phase {
            StepPhase::Done => done_verb(self.action).to_owned(),
            StepPhase::Working => format!("{} begins", self.action),
            StepPhase::Failed => format!("{} failed", self.action),
        };
        write!(f, "{} {}: {verb} ({})", self.kind, self.name, self.cause)?;
        if let Some(ms) = self.took_ms {
            write!(f, " {ms} ms")?;
        }
        Ok(())
    }
}

/// What an operation that ended did, as the plain lines say it
/// (`container web-1: stopped`).
pub fn done_verb(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Pull => "pulled",
        Action::Build => "built",
        Action::Start => "started",
        Action::Recreate => "recreated",
        Action::Restart => "restarted",
        Action::Remove => "removed",
        Action::Stop { .. } => "stopped",
        Action::Kill { .. } => "killed",
        Action::Pause => "paused",
        Action::Unpause => "unpaused",
    }
}
