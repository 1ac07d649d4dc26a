//! The engine's boundary with the `stack` command, as compose's `pkg/api`:
//! the typed requests a command sends to a project's supervisor, the
//! progress events it gets back while a plan runs, and the typed errors it
//! turns into words, exit codes and JSON (in `stack-cli/src/failure.rs`
//! only); what a command may read without asking (the state store's
//! records, logs, health, stats, the plan a request would run); and the
//! entry points of the engine's own processes (the supervisor, the log
//! keeper). A command talks to the engine through these names only: the
//! modules that define them are private to the crate.

pub use crate::container_exec::ContainerExec;
pub use crate::control::{
    Channel, ControlError, Progress, Reply, Request, RunOptions, RunStdio, UpOptions, socket_path,
};
pub use crate::copy::{CopyError, Kind as PathKind, Landing, Source, Tree, landing};
pub use crate::error::{EngineError, ErrorKind};
pub use crate::host::HostConfig;
pub use crate::leftover::remove_volumes;
pub use crate::observed::ContainerState;
pub use crate::plan::{Action, Cause, Plan};
pub use crate::progress::{Step, StepKind, StepPhase};
pub use crate::query::{Records, kill_now, plan_lifecycle, plan_up};
pub use crate::store::{ContainerRecord, LastExit, new_container_id};
pub use crate::supervisor::serve as serve_supervisor;

/// A container's health as its supervisor writes it.
pub mod health {
    pub use crate::health::{Health, Status};
}

/// A container's log file: its entries, oldest first.
pub mod logs {
    pub use crate::log_files::{Entry, Stream, read_all, tail};
}

/// A running container's counters from its cgroup and network namespace.
pub mod stats {
    pub use crate::stats::{Sample, cpu_percent, sample};
}

/// The per-project lock that makes one writer (and one log keeper).
pub mod lock {
    pub use crate::lock::{LockError, ProjectLock, is_held};
}

/// The log keeper's process (`stack __logs`): where it listens, and its
/// loop.
pub mod log_keeper {
    pub use crate::log_keeper::{serve, socket_path};
}

/// The console socket that carries a container's pty master to whoever
/// shows it.
pub mod console {
    pub use crate::console::{ConsoleSocket, receive_pty};
}
