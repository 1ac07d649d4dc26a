//! The engine's boundary with the `stack` command, as compose's `pkg/api`:
//! the typed requests a command sends to a project's supervisor, the
//! progress events it gets back while a plan runs, and the typed errors it
//! turns into words, exit codes and JSON (in `stack-cli/src/failure.rs`
//! only). A command talks to the engine through these names, not through
//! the modules that define them.

pub use crate::control::{
    Channel, ControlError, Progress, Reply, Request, RunOptions, RunStdio, UpOptions, socket_path,
};
pub use crate::copy::{CopyError, Kind as PathKind, Landing, Source, Tree, landing};
pub use crate::error::{EngineError, ErrorKind};
pub use crate::plan::{Action, Cause, Plan};
pub use crate::progress::{Step, StepKind, StepPhase};
