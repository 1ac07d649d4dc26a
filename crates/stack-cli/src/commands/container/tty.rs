//! `-t`: the container's program runs on a pty whose master the runtime
//! sends to a console socket; this side puts the user's terminal in raw mode
//! and copies bytes both ways, so line editing, Ctrl-C and job control happen
//! inside the container, as with `docker run -it`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use anyhow::Context;

use crate::terminal::receive_pty;

/// A console socket waiting for the pty master.
pub struct Console {
    path: PathBuf,
    receiver: JoinHandle<anyhow::Result<OwnedFd>>,
}

impl Console {
    /// Listens at `path` (short: socket paths have a 108-byte limit).
    pub fn listen(path: &Path) -> anyhow::Result<Self> {
        let _ = std::fs::remove_file(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        let receiver = std::thread::spawn(move || receive_pty(&listener));
        Ok(Self {
            path: path.to_owned(),
            receiver,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master, once the container's init has sent it.
    pub fn master(self) -> anyhow::Result<File> {
        let fd = self
            .receiver
            .join()
            .map_err(|_| anyhow::anyhow!("the console socket thread panicked"))??;
        let _ = std::fs::remove_file(&self.path);
        Ok(File::from(fd))
    }
}

/// Copies the pty's output to stdout until the container side closes (EIO),
/// and, with `-i`, stdin to the pty.
pub fn relay(master: &File, interactive: bool) -> anyhow::Result<JoinHandle<()>> {
    let mut from = master.try_clone().context("duplicating the pty")?;
    let output = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut out = std::io::stdout().lock();
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).is_err() {
                break;
            }
            let _ = out.flush();
        }
    });
    if interactive {
        let mut to = master.try_clone().context("duplicating the pty")?;
        // Left running: a read of stdin cannot be interrupted, and the
        // process exits with the container anyway.
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            let mut stdin = std::io::stdin().lock();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    Ok(output)
}
