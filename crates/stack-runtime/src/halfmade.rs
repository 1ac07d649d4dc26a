//! Crash consistency of `create`: a container directory appears with a
//! write-ahead record of the kernel objects create is about to make, and
//! `state.json` (one atomic rename) is the commit point. A directory without
//! `state.json` is therefore a create in progress or a crashed one; the two
//! are told apart by an exclusive `flock` on the record that only the
//! creating process holds (the kernel drops it when that process dies), and
//! a crashed one is rolled back by what the record names.
//!
//! Layout of `<root>/<id>/` while and after a create:
//!
//! ```text
//!   .<id>.creating.<pid>.<n>/intent.json  (staged, locked)
//!     ── renameat2(NOREPLACE) ──►  <id>/intent.json   (visible, still locked)
//!        cgroup, exec.fifo, init process ...
//!     ── rename state.json into place ──►  committed; lock released
//! ```

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg, RenameFlags};
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::container::{Error, kill_cgroup};
use crate::state::State;

const INTENT: &str = "intent.json";
const STAGING: &str = ".creating.";

/// What a create is about to make outside its directory.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Intent {
    pub cgroup: Cgroup,
    /// The cgroup did not exist before, so a rollback removes it.
    pub cgroup_owned: bool,
}

/// Held by the creating process until `state.json` is written.
pub(crate) struct CreateLock {
    _lock: Flock<File>,
}

impl CreateLock {
    pub(crate) fn as_raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&*self._lock)
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn sys_err(op: &'static str) -> impl FnOnce(nix::Error) -> Error {
    move |source| Error::Sys { op, source }
}

/// Makes `<root>/<id>` appear, atomically, already holding a locked
/// `intent.json`: no other process ever sees the directory without it.
pub(crate) fn begin(
    root: &Path,
    id: &str,
    intent: &Intent,
) -> Result<(PathBuf, CreateLock), Error> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let staged = root.join(format!(
        ".{id}{STAGING}{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir(&staged).map_err(io_err("mkdir", &staged))?;
    let result = (|| {
        let path = staged.join(INTENT);
        let body = serde_json::to_vec(intent).expect("intent serialises");
        stack_fs::write_with(&path, &body, stack_fs::Durability::Unsynced).map_err(|e| {
            Error::Io {
                op: e.op,
                path: e.path,
                source: e.source,
            }
        })?;
        let file = File::open(&path).map_err(io_err("open", &path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| sys_err("flock")(e))?;
        let dir = root.join(id);
        match nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &staged,
            nix::fcntl::AT_FDCWD,
            &dir,
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => Ok((dir, CreateLock { _lock: lock })),
            Err(nix::Error::EEXIST | nix::Error::ENOTEMPTY) => Err(Error::Exists(id.to_owned())),
            Err(e) => Err(sys_err("rename the new container directory into place")(e)),
        }
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staged);
    }
    result
}

/// What [`roll_back`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Nothing at that path.
    Nothing,
    /// A committed container (it has `state.json`): left alone.
    Committed,
    /// A half-made container, now removed.
    RolledBack,
}

/// Rolls back the container directory `dir` if it is half-made and its
/// creator is gone. A create still in progress is `Exists`.
pub(crate) fn roll_back(dir: &Path, id: &str) -> Result<Found, Error> {
    if !dir.exists() {
        return Ok(Found::Nothing);
    }
    if State::path(dir).exists() {
        return Ok(Found::Committed);
    }
    let intent_path = dir.join(INTENT);
    let intent = match File::open(&intent_path) {
        Ok(file) => {
            let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                Err((_, nix::Error::EWOULDBLOCK)) => return Err(Error::Exists(id.to_owned())),
                Err((_, e)) => return Err(sys_err("flock")(e)),
            };
            // The creator may have committed between the check above and the lock.
            if State::path(dir).exists() {
                return Ok(Found::Committed);
            }
            let body = fs::read(&intent_path).map_err(io_err("read", &intent_path))?;
            drop(lock);
            serde_json::from_slice::<Intent>(&body).ok()
        }
        // A directory from before intents were written: nothing to go by
        // but the directory itself.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("open", &intent_path)(e)),
    };
    if let Some(intent) = intent {
        // The container's processes are all in its cgroup (the init stage
        // joins it before it clones); an init stage that had not joined yet
        // exits by itself once its creator's end of the socket is closed.
        kill_cgroup(&intent.cgroup)?;
        if intent.cgroup_owned {
            intent.cgroup.remove()?;
        }
    }
    fs::remove_dir_all(dir).map_err(io_err("remove", dir))?;
    Ok(Found::RolledBack)
}

/// Rolls back every half-made container under `root` whose creator is
/// gone, and staging directories of crashed creates; returns their ids.
/// Committed containers and creates in progress are left alone.
pub fn recover(root: &Path) -> Result<Vec<String>, Error> {
    let mut rolled_back = Vec::new();
    let entries = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(rolled_back),
        Err(e) => return Err(io_err("list", root)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("list", root))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Some(rest) = name.strip_prefix('.') {
            // A staged directory never has kernel objects: they are made
            // only once it is renamed into place.
            if let Some((id, _)) = rest.split_once(STAGING)
                && unlocked(&entry.path().join(INTENT))
            {
                let _ = fs::remove_dir_all(entry.path());
                tracing::debug!("removed the staging directory of {id}");
            }
            continue;
        }
        match roll_back(&entry.path(), &name) {
            Ok(Found::RolledBack) => rolled_back.push(name),
            Ok(_) | Err(Error::Exists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(rolled_back)
}

fn unlocked(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok(),
        Err(_) => true,
    }
}
