//! The engine: turns a desired stack and what is observed on the host into a
//! plan, executes that plan over its dependency graph, and supervises what
//! runs (restart policies with backoff).

pub mod console;
pub mod control;
pub mod dag;
pub mod error;
pub mod execute;
pub mod graph;
pub mod hash;
pub mod health;
pub mod host;
pub mod leftover;
pub mod lifecycle_plan;
pub mod lock;
pub mod logger;
pub mod logs;
pub mod observed;
pub mod pidfd;
pub mod plan;
pub mod progress;
pub mod reconcile;
pub mod restart;
pub mod single;
pub mod spec;
pub mod stats;
pub mod store;
pub mod supervise;
pub mod supervisor;
pub mod watch;
