//! Events as `stack events` streams them.

use serde::Serialize;

use crate::health::Status as HealthStatus;

/// Now, as nanoseconds since the Unix epoch.
pub fn unix_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

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
    /// `stack kill`: a signal from the user.
    Kill {
        signal: i32,
    },
    /// The policy's wait is over; the container starts again.
    Restart,
    HealthStatus {
        status: HealthStatus,
    },
    /// Starting failed before the program ran.
    StartFailed {
        error: String,
        /// Set when the program could not be executed (see
        /// `Launcher::exec_status`).
        exec_status: Option<u8>,
    },
    /// Its log could not be written (a full disk): lines are read and
    /// dropped until writing works again; the container runs on.
    LogPaused {
        error: String,
    },
    /// Its log is written again, `dropped` lines after it paused.
    LogResumed {
        dropped: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub container: String,
    /// Milliseconds since the supervisor's clock started (the tokio clock, so
    /// tests can drive it).
    pub at_ms: u64,
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub time_ns: u128,
    #[serde(flatten)]
    pub kind: EventKind,
}
