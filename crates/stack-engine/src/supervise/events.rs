//! Events as `stack events` streams them.

use serde::Serialize;

use crate::health::Status as HealthStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum EventKind {
    Start {
        pid: i32,
    },
    Die {
        exit_code: Option<i32>,
        signal: Option<i32>,
    },
    Oom,
    /// The policy will start it again after `delay_ms`.
    Restarting {
        delay_ms: u64,
        attempt: u32,
    },
    Stop,
    HealthStatus {
        status: HealthStatus,
    },
    /// Starting failed before the program ran.
    StartFailed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub container: String,
    /// Milliseconds since the supervisor's clock started (the tokio clock, so
    /// tests can drive it).
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}
