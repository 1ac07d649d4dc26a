//! Exit watching without polling: a pidfd becomes readable when its process
//! exits, so the supervisor sleeps in epoll (tokio's `AsyncFd`) until then.
//!
//! A pidfd refers to one process for its whole life, so a recycled pid can
//! never be mistaken for the container. The exit status itself can only be
//! collected by the parent (or subreaper); a process adopted after a
//! supervisor restart reports its exit without a status.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub use rustix::process::PidfdFlags;
use rustix::process::{Pid, PidfdGetfdFlags};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// How a watched process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
    /// It exited, but it was not our child, so its status is gone.
    Unknown,
}

/// A pidfd for `pid` (`pidfd_open`): the one place this process opens one.
pub fn open_pidfd(pid: i32, flags: PidfdFlags) -> io::Result<OwnedFd> {
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    Ok(rustix::process::pidfd_open(pid, flags)?)
}

/// A copy of descriptor `fd` of the process behind `pidfd`
/// (`pidfd_getfd`, Linux 5.6), close-on-exec.
pub fn take_fd(pidfd: &OwnedFd, fd: RawFd) -> io::Result<OwnedFd> {
    Ok(rustix::process::pidfd_getfd(
        pidfd,
        fd,
        PidfdGetfdFlags::empty(),
    )?)
}

/// An open pidfd registered with the tokio reactor.
#[derive(Debug)]
pub struct PidFd {
    fd: AsyncFd<OwnedFd>,
}

impl PidFd {
    /// Opens a pidfd for `pid`. Fails with ESRCH when the process is gone.
    /// Must be called inside a tokio runtime.
    pub fn open(pid: i32) -> io::Result<Self> {
        let owned = open_pidfd(pid, PidfdFlags::NONBLOCK)?;
        // SAFETY: `owned` is a valid open fd that the AsyncFd owns until it
        // is dropped, and its raw fd never changes.
        let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }?;
        Ok(Self { fd })
    }

    /// Sends `signal` to exactly this process (never to a later owner of
    /// its pid).
    pub fn send_signal(&self, signal: i32) -> io::Result<()> {
        // SAFETY: the fd is a valid pidfd for the life of `self`; a null
        // siginfo and no flags are what pidfd_send_signal(2) documents.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.get_ref().as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits until the process exits and returns how, reaping it when it is
    /// our child.
    pub async fn exited(&self) -> io::Result<ExitStatus> {
        loop {
            let mut guard = self.fd.readable().await?;
            match self.try_reap()? {
                Some(status) => return Ok(status),
                // Readable means exited; a not-yet-reapable child is a race
                // with the kernel's bookkeeping: wait for the next wakeup.
                None => guard.clear_ready(),
            }
        }
    }

    fn try_reap(&self) -> io::Result<Option<ExitStatus>> {
        // SAFETY: an all-zero siginfo_t is a valid value for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t; the fd is open.
        let rc = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                self.fd.get_ref().as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            // Not our child: readable already told us it is gone.
            return if err.raw_os_error() == Some(libc::ECHILD) {
                Ok(Some(ExitStatus::Unknown))
            } else {
                Err(err)
            };
        }
        // SAFETY: waitid filled `info` for a CLD_* event when si_pid != 0.
        let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        Ok(Some(match code {
            libc::CLD_EXITED => ExitStatus::Exited(status),
            _ => ExitStatus::Signaled(status),
        }))
    }
}

/// Makes this process the reaper of its orphaned descendants, so container
/// processes whose parent stage exits are still ours to wait for.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
// The pidfd under test reaps these children, not `Child::wait`.
#[allow(clippy::zombie_processes)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn child_exit_code_is_reported() {
        let child = Command::new("sh")
            .args(["-c", "sleep 0.05; exit 3"])
            .spawn()
            .unwrap();
        let pidfd = PidFd::open(child.id() as i32).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(5), pidfd.exited())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, ExitStatus::Exited(3));
    }

    #[tokio::test]
    async fn signal_is_reported() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pidfd = PidFd::open(child.id() as i32).unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let status = pidfd.exited().await.unwrap();
        assert_eq!(status, ExitStatus::Signaled(libc::SIGKILL));
    }

    #[tokio::test]
    async fn a_process_that_is_not_our_child_reports_unknown() {
        // `sh` starts `sleep` in the background and prints its pid; the
        // sleep's parent is the shell, not us.
        let out = Command::new("sh")
            .args(["-c", "sleep 0.2 >/dev/null 2>&1 & echo $!"])
            .output()
            .unwrap();
        let pid: i32 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let pidfd = PidFd::open(pid).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(5), pidfd.exited())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, ExitStatus::Unknown);
    }

    #[tokio::test]
    async fn a_gone_pid_cannot_be_opened() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert_eq!(
            PidFd::open(pid).unwrap_err().raw_os_error(),
            Some(libc::ESRCH)
        );
    }

    #[test]
    fn a_descriptor_is_copied_through_a_pidfd() {
        use std::io::{Read, Write};
        let (mut reader, writer) = std::io::pipe().unwrap();
        let me = std::process::id() as i32;
        let pidfd = open_pidfd(me, PidfdFlags::empty()).unwrap();
        let copy = take_fd(&pidfd, writer.as_raw_fd()).unwrap();
        drop(writer);
        std::fs::File::from(copy).write_all(b"hi").unwrap();
        let mut got = String::new();
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hi");
        assert!(open_pidfd(0, PidfdFlags::empty()).is_err());
    }
}
