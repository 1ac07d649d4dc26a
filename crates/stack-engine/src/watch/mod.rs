//! Watch mode (`stack watch`, `stack up --watch`): follow the stack's files
//! and the services' `develop.watch` paths, and apply each burst of changes
//! at once — reconcile through the same plan as `stack up`, or sync files
//! into running containers, restart them, run a command in them.
//!
//! One file per idea: [`watcher`] (inotify on directories), [`debounce`]
//! (bursts into batches), [`rules`] (what a changed path means), [`sync`]
//! (copying into a container), [`session`] (the loop).

pub mod debounce;
pub mod rules;
pub mod session;
pub mod sync;
pub mod watcher;

pub use debounce::{DEFAULT_QUIET, Debouncer};
pub use rules::{Changes, Patterns, RulesError, Trigger, classify, is_editor_temp, triggers};
pub use session::{Effects, Session, Snapshot, watch_set};
pub use sync::{ContainerFs, SyncError, SyncReport, secure_join, sync_paths};
pub use watcher::{WatchSet, Watcher, WatcherError};
