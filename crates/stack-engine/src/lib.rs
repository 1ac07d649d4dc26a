//! The engine: turns a desired stack and what is observed on the host into a
//! plan, executes that plan over its dependency graph, and supervises what
//! runs (restart policies with backoff).

pub mod control;
pub mod error;
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
pub mod plan_graph;
pub mod progress;
pub mod reconcile;
pub mod restart;
pub mod service_graph;
pub mod spec;
pub mod stats;
pub mod store;
pub mod supervisor;
pub mod watch;
