//! The file system side: inotify (through `notify`) on directories, not on
//! single files, so that an editor replacing a file (write a temp file,
//! rename it over) or deleting and re-creating it is seen like a write.
//! Every changed path goes into a channel; deciding what it means is for
//! [`super::rules`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("cannot start the file watcher: {0}")]
    Start(#[source] notify::Error),
}

/// What to watch: single files (through their directory) and trees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSet {
    pub files: BTreeSet<PathBuf>,
    pub trees: BTreeSet<PathBuf>,
}

impl WatchSet {
    /// The directories to ask the kernel about, with how.
    fn directories(&self) -> BTreeSet<(PathBuf, bool)> {
        let mut dirs = BTreeSet::new();
        for file in &self.files {
            if let Some(parent) = file.parent() {
                dirs.insert((existing(parent), false));
            }
        }
        for tree in &self.trees {
            if tree.is_dir() {
                dirs.insert((tree.clone(), true));
            } else {
                // A single file, or a tree not made yet: its directory, so
                // that its creation is seen too.
                if let Some(parent) = tree.parent() {
                    dirs.insert((existing(parent), false));
                }
                if tree.exists() {
                    dirs.insert((tree.clone(), false));
                }
            }
        }
        // A recursive watch covers what is under it.
        let recursive: Vec<PathBuf> = dirs
            .iter()
            .filter(|(_, r)| *r)
            .map(|(d, _)| d.clone())
            .collect();
        dirs.retain(|(d, r)| *r || !recursive.iter().any(|t| d.starts_with(t)));
        dirs
    }
}

/// The nearest directory that exists, so that a file in a directory made
/// later is still found (the creation of the directory shows up).
fn existing(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| d.is_dir())
        .unwrap_or(Path::new("/"))
        .to_owned()
}

pub struct Watcher {
    inner: RecommendedWatcher,
    watching: BTreeSet<(PathBuf, bool)>,
}

impl Watcher {
    /// Sends every changed path to `tx` (a rename sends both names).
    pub fn new(tx: mpsc::UnboundedSender<PathBuf>) -> Result<Self, WatcherError> {
        let inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let event = match event {
                Ok(event) => event,
                // Typically the inotify watch limit: say so, once per error.
                Err(e) => {
                    tracing::warn!("file watcher: {e}");
                    return;
                }
            };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            for path in event.paths {
                let _ = tx.send(path);
            }
        })
        .map_err(WatcherError::Start)?;
        Ok(Self {
            inner,
            watching: BTreeSet::new(),
        })
    }

    /// Watches `set` from now on (and no longer what it does not name).
    pub fn set(&mut self, set: &WatchSet) -> Result<(), WatcherError> {
        let wanted = set.directories();
        for (dir, recursive) in self.watching.difference(&wanted) {
            let _ = self.inner.unwatch(dir);
            tracing::debug!(
                "no longer watching {} (recursive: {recursive})",
                dir.display()
            );
        }
        let added: Vec<(PathBuf, bool)> = wanted.difference(&self.watching).cloned().collect();
        for (dir, recursive) in added {
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            self.inner
                .watch(&dir, mode)
                .map_err(|source| WatcherError::Watch {
                    path: dir.clone(),
                    source,
                })?;
        }
        self.watching = wanted;
        Ok(())
    }
}
