//! Supervision: one monitor task per container watches its exits (pidfd,
//! no polling), applies the restart policy with backoff, and reports events.

pub mod events;
pub mod journal;
pub mod monitor;

pub use crate::pidfd::ExitStatus;
pub use events::{Event, EventKind};
pub use monitor::{
    Begin, Command, Launcher, MonitorConfig, MonitorHandle, Snapshot, spawn_monitor,
};
