//! The container core: OCI bundles to processes in namespaces and cgroups, with
//! a runc-compatible CLI (`stack-runtime`).
//!
//! The library is what `stack-engine` calls in-process: [`Container::create`]
//! re-executes an init-stage binary (one whose `main` calls [`init_main`]
//! first) rather than forking the caller, so it is safe from a multi-threaded
//! tokio program. See [`protocol`] for the setup handshake.

pub mod cgroups;
mod container;
pub mod defaults;
pub mod fault;
mod halfmade;
pub mod hooks;
mod init;
pub mod plan;
pub mod protocol;
pub mod seccomp;
pub mod state;

pub use cgroups::Stats;
pub use container::{
    Container, CreateOptions, Error, ExecOptions, ExitInfo, Stdio, write_pid_file,
};
pub use defaults::default_spec;
pub use halfmade::recover;
pub use init::init_main;
pub use protocol::Step;
pub use state::Status;
