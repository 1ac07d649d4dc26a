//! The engine: turns a desired stack and what is observed on the host into a
//! plan, executes that plan over its dependency graph, and supervises what
//! runs (restart policies with backoff).
//!
//! Every command of the `stack` binary goes through [`api`]: typed requests,
//! typed progress events, typed errors, read-only queries of the state, and
//! the entry points of the engine's processes. The modules that touch the
//! kernel or the state on disk (the store, the host, the executor, the
//! supervisor, locks, logs, stats, pidfds) are private behind it. The pure
//! decisions (reconcile, plans, config hashes, restart policy, health,
//! watch rules) stay public for their golden and property tests.

pub mod api;
mod console;
mod container_exec;
mod control;
pub mod copy;
mod error;
mod execute;
pub mod hash;
pub mod health;
mod host;
mod leftover;
pub mod lifecycle_plan;
mod lock;
mod log_files;
mod log_keeper;
pub mod monitoring;
pub mod observed;
mod pidfd;
pub mod plan;
mod plan_graph;
mod progress;
mod query;
pub mod reconcile;
pub mod restart;
pub mod service_graph;
pub mod single;
pub mod spec;
mod stats;
mod store;
mod supervisor;
pub mod watch;
