//! One writer per project: an advisory lock on a file under the run
//! directory, which also names its holder so a second writer can say who.
//!
//! The kernel drops the lock when the holder dies, so a crash never leaves a
//! project locked.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// Who holds a project's lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// What the holder is doing, e.g. `stack up`.
    pub command: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("project {project} is locked by pid {} ({}); wait for it or stop it", .holder.pid, .holder.command)]
    Held { project: String, holder: Holder },
    #[error("project {project} is locked by another stack process")]
    HeldByUnknown { project: String },
    #[error("cannot use lock file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while it lives; dropping it releases the lock.
#[derive(Debug)]
pub struct ProjectLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl ProjectLock {
    /// Takes the lock for `project`, waiting up to `wait` for another holder
    /// to finish; `Duration::ZERO` does not wait.
    pub fn acquire(
        run_dir: &Path,
        project: &str,
        command: &str,
        wait: Duration,
    ) -> Result<Self, LockError> {
        let dir = run_dir.join("locks");
        let path = dir.join(format!("{project}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io)?;
        let deadline = Instant::now() + wait;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut lock) => {
                    let holder = Holder {
                        pid: std::process::id(),
                        command: command.to_owned(),
                    };
                    let text = serde_json::to_string(&holder).expect("holder serialises");
                    lock.set_len(0).map_err(io)?;
                    lock.seek(SeekFrom::Start(0)).map_err(io)?;
                    lock.write_all(text.as_bytes()).map_err(io)?;
                    return Ok(Self { _lock: lock, path });
                }
                Err((returned, errno)) if errno == nix::errno::Errno::EWOULDBLOCK => {
                    file = returned;
                    if Instant::now() >= deadline {
                        return Err(held(project, &mut file));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err((_, errno)) => return Err(io(errno.into())),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether a live process holds the lock `name` (a project, or its log
/// keeper's `<project>.logs`) under `run_dir`, without taking it.
pub fn is_held(run_dir: &Path, name: &str) -> bool {
    let path = run_dir.join("locks").join(format!("{name}.lock"));
    match File::open(&path) {
        Ok(file) => Flock::lock(file, FlockArg::LockSharedNonblock).is_err(),
        Err(_) => false,
    }
}

fn held(project: &str, file: &mut File) -> LockError {
    let mut text = String::new();
    let holder = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text))
        .ok()
        .and_then(|_| serde_json::from_str::<Holder>(&text).ok());
    match holder {
        Some(holder) => LockError::Held {
            project: project.to_owned(),
            holder,
        },
        None => LockError::HeldByUnknown {
            project: project.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let first = ProjectLock::acquire(dir.path(), "shop", "stack up", Duration::ZERO).unwrap();
        let err =
            ProjectLock::acquire(dir.path(), "shop", "stack down", Duration::ZERO).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("project shop is locked by pid"), "{msg}");
        assert!(msg.contains("stack up"), "{msg}");
        // Other projects are independent.
        ProjectLock::acquire(dir.path(), "blog", "stack up", Duration::ZERO).unwrap();
        drop(first);
        ProjectLock::acquire(dir.path(), "shop", "stack down", Duration::ZERO).unwrap();
    }

    #[test]
    fn waits_for_the_holder_to_finish() {
        let dir = tempfile::tempdir().unwrap();
        let first = ProjectLock::acquire(dir.path(), "p", "stack up", Duration::ZERO).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(first);
        });
        let asked = Instant::now();
        ProjectLock::acquire(dir.path(), "p", "stack ps", Duration::from_secs(5)).unwrap();
        assert!(
            asked.elapsed() >= Duration::from_millis(80),
            "got the lock while the first holder still had it"
        );
        releaser.join().unwrap();
    }
}
