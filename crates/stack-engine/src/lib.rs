//! The engine: turns a desired stack and what is observed on the host into a
//! plan, executes that plan over its dependency graph, and supervises what
//! runs (restart policies with backoff).
//!
//! Every command of the `stack` binary goes through [`api`]: typed requests,
//! typed progress events, typed errors. The other modules stay public for
//! what the command still reads from disk itself (the state store, logs,
//! stats, the lock) and for the integration tests.

pub mod api;
pub mod console;
pub(crate) mod control;
pub mod copy;
pub(crate) mod error;
pub mod execute;
pub mod hash;
pub mod health;
pub mod host;
pub mod leftover;
pub mod lifecycle_plan;
pub mod lock;
pub mod log_files;
pub mod log_keeper;
pub mod monitoring;
pub mod observed;
pub mod pidfd;
pub mod plan;
pub(crate) mod plan_graph;
pub(crate) mod progress;
pub mod reconcile;
pub mod restart;
pub mod service_graph;
pub mod single;
pub mod spec;
pub mod stats;
pub mod store;
pub mod supervisor;
pub mod watch;
