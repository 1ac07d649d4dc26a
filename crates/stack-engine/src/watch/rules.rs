//! Which changed paths matter, and to what: the `develop.watch` triggers of
//! each service with their `.dockerignore`-style patterns, the files editors
//! leave behind, and the files the stack itself was loaded from.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Component, Path, PathBuf};

use stack_spec::{Project, WatchAction};

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(
        "service {service:?}: develop.watch[{index}]: action `rebuild` needs a build section to build the image from"
    )]
    RebuildWithoutBuild { service: String, index: usize },
    #[error("service {service:?}: develop.watch[{index}]: pattern {pattern:?}: {source}")]
    Pattern {
        service: String,
        index: usize,
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error(
        "service {service:?}: develop.watch[{index}]: exec.command must be a string or a list of strings"
    )]
    ExecCommand { service: String, index: usize },
    #[error("service {service:?}: develop.watch[{index}]: action sync+exec needs exec.command")]
    MissingExec { service: String, index: usize },
}

/// Files that editors write next to the one being saved, never the user's
/// content: vim's swap files and its `4913` probe, backups ending in `~`,
/// emacs' lock and autosave files.
pub fn is_editor_temp(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name == "4913"
        || name.ends_with('~')
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#') && name.len() > 1)
        || [".swp", ".swo", ".swx", ".swpx"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// `.dockerignore` patterns, shared with the build context.
pub use stack_build::ignore::Patterns;

/// One `develop.watch` entry of one service, with its path made absolute.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub service: String,
    pub action: WatchAction,
    pub path: PathBuf,
    /// Where the files go in the container (sync actions).
    pub target: Option<String>,
    pub ignore: Patterns,
    /// When not empty, only matching paths count.
    pub include: Patterns,
    pub initial_sync: bool,
    /// The command of `sync+exec`.
    pub exec: Option<Vec<String>>,
}

impl Trigger {
    pub fn syncs(&self) -> bool {
        matches!(
            self.action,
            WatchAction::Sync | WatchAction::SyncRestart | WatchAction::SyncExec
        )
    }

    /// `rebuild`: build the service's image again, then recreate it.
    pub fn rebuilds(&self) -> bool {
        self.action == WatchAction::Rebuild
    }

    pub fn restarts(&self) -> bool {
        matches!(self.action, WatchAction::Restart | WatchAction::SyncRestart)
    }

    /// Whether a change of `path` concerns this trigger.
    pub fn wants(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.path) else {
            return false;
        };
        if rel.as_os_str().is_empty() {
            return true;
        }
        if self.ignore.matches(rel) {
            return false;
        }
        self.include.is_empty() || self.include.matches(rel)
    }
}

/// Lexically normalised absolute path (no `.` or `..`), without touching
/// the file system: what the user wrote, relative to the project directory.
pub fn absolute(base: &Path, path: &Path) -> PathBuf {
    let joined = base.join(path);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// The triggers of every service, in file order. A `rebuild` without a
/// `build:` section is refused here, when watching starts or the file is
/// reloaded, not when a file changes.
pub fn triggers(project: &Project, project_dir: &Path) -> Result<Vec<Trigger>, RulesError> {
    let mut out = Vec::new();
    for (name, service) in &project.services {
        let Some(develop) = &service.develop else {
            continue;
        };
        for (index, w) in develop.watch.iter().enumerate() {
            if w.action == WatchAction::Rebuild && service.build.is_none() {
                return Err(RulesError::RebuildWithoutBuild {
                    service: name.clone(),
                    index,
                });
            }
            let patterns = |list: &[String]| {
                Patterns::new(list).map_err(|(pattern, source)| RulesError::Pattern {
                    service: name.clone(),
                    index,
                    pattern,
                    source,
                })
            };
            let exec = match (&w.exec, w.action) {
                (Some(exec), _) => Some(exec_command(exec).ok_or(RulesError::ExecCommand {
                    service: name.clone(),
                    index,
                })?),
                (None, WatchAction::SyncExec) => {
                    return Err(RulesError::MissingExec {
                        service: name.clone(),
                        index,
                    });
                }
                (None, _) => None,
            };
            out.push(Trigger {
                service: name.clone(),
                action: w.action,
                path: absolute(project_dir, Path::new(&w.path)),
                target: w.target.clone(),
                ignore: patterns(&w.ignore)?,
                include: patterns(&w.include)?,
                initial_sync: w.initial_sync,
                exec,
            });
        }
    }
    Ok(out)
}

/// `exec.command` as an argv: a list as is, a string through `sh -c` as
/// compose does.
fn exec_command(exec: &serde_json::Value) -> Option<Vec<String>> {
    match exec.get("command")? {
        serde_json::Value::String(s) => Some(vec!["/bin/sh".into(), "-c".into(), s.clone()]),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .filter(|v| !v.is_empty()),
        _ => None,
    }
}

/// What a batch of changed paths asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Files the stack was loaded from that changed: reload and reconcile.
    pub inputs: BTreeSet<PathBuf>,
    /// Per trigger (index into the triggers), the changed paths under it.
    pub triggered: BTreeMap<usize, BTreeSet<PathBuf>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.triggered.is_empty()
    }
}

/// Sorts changed paths into reloads and triggers; drops editors' temporary
/// files and anything under `ignored` (the project's own state).
pub fn classify<'a>(
    paths: impl IntoIterator<Item = &'a PathBuf>,
    inputs: &HashSet<PathBuf>,
    triggers: &[Trigger],
    ignored: &[PathBuf],
) -> Changes {
    let mut changes = Changes::default();
    for path in paths {
        if is_editor_temp(path) || ignored.iter().any(|i| path.starts_with(i)) {
            continue;
        }
        if inputs.contains(path) {
            changes.inputs.insert(path.clone());
        }
        for (i, trigger) in triggers.iter().enumerate() {
            if trigger.wants(path) {
                changes.triggered.entry(i).or_default().insert(path.clone());
            }
        }
    }
    changes
}
