//! Named network namespaces: an nsfs file bind-mounted under the run dir, as
//! `ip netns add` does, so the namespace outlives every process in it and the
//! container runtime can join it by path.
//!
//! Namespace switches happen on short-lived dedicated threads: `unshare` and
//! `setns` of the network namespace affect only the calling thread, and a
//! thread of the async runtime must never change namespace.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use crate::error::{NetError, Result};

fn err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> NetError + 'a {
    move |source| NetError::Netns {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Creates a new network namespace and pins it at `path`.
pub fn create(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(err(path, "create directory"))?;
    }
    File::create(path).map_err(err(path, "create mount point"))?;
    let target = path.to_path_buf();
    let res = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    });
    if let Err(e) = res {
        let _ = fs::remove_file(path);
        return Err(NetError::Netns {
            path: target,
            op: "unshare and bind mount",
            source: e,
        });
    }
    Ok(())
}

/// Unmounts and removes a pinned namespace; missing ones are not an error.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(NetError::Netns {
                path: path.to_path_buf(),
                op: "unmount",
                source: e.into(),
            });
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::Netns {
            path: path.to_path_buf(),
            op: "remove",
            source: e,
        }),
    }
}

/// Runs `f` on a fresh thread that has joined the namespace at `path`.
pub fn run_in<R: Send>(path: &Path, f: impl FnOnce() -> R + Send) -> Result<R> {
    let file = File::open(path).map_err(err(path, "open"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| NetError::Netns {
                path: path.to_path_buf(),
                op: "setns",
                source: e.into(),
            })?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| {
            Err(NetError::Thread {
                what: "namespace worker panicked",
                source: io::Error::other("panic"),
            })
        })
    })
}

/// Pinned namespace files under `dir` whose name starts with `prefix`.
pub fn list(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect()
}
