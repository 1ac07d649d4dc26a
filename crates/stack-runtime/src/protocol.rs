//! The setup protocol between the caller (library or CLI) and the init stage.
//!
//! ```text
//!  caller (library, may be multi-threaded)   init stage I (re-exec'd binary)      container init C
//!  ───────────────────────────────────────   ────────────────────────────────     ────────────────
//!  socketpair(); spawn I (fd in env) ──────► init_main() sees the fd
//!  create cgroup
//!  send Config ────────────────────────────► setns(joined namespaces)
//!  write I's pid into the cgroup
//!                                            unshare(CLONE_NEWUSER)      (user ns only)
//!  ◄──────────────────────────── MapsReq     (user ns only)
//!  write /proc/I/{uid,gid}_map
//!  send MapsDone ──────────────────────────►
//!                                            unshare(other new namespaces but cgroup)
//!  send CgroupJoined ──────────────────────► unshare(CLONE_NEWCGROUP)
//!                                            clone(CLONE_PARENT) ─────────────────► pid 1 of the new pid ns,
//!  ◄──────────────────────────── Pid(C)      exit(0)                                 child of the caller
//!  reap I                                                                            mounts, /dev, pivot_root,
//!                                                                                    hostname, sysctl, masks,
//!                                                                                    rlimits, user, caps, ...
//!  ◄──────────────────────────────────────────────────────────────────────────── Hooks   (if any hooks)
//!  prestart, createRuntime hooks                                                      (before pivot_root)
//!  send HooksDone{state} ───────────────────────────────────────────────────────────► createContainer hooks
//!  ◄──────────────────────────────────────────────────────────────────────────── Ready | Failed{step}
//!  write state.json (created)
//!
//!  start: open exec.fifo for reading ──────────────────────────────────────────────► open(fifo, O_WRONLY)
//!                                                                                    startContainer hooks
//!         read one byte ◄─────────────────────────────────────────────────────────── write "0" ("h": a hook failed)
//!         read to end of file ◄──────────────────────────────────────────────────────── seccomp; execve(args)
//!         state: running, poststart hooks                                            (closes the fifo: CLOEXEC)
//! ```
//!
//! Any failure before `Ready` comes back as `Failed` naming the [`Step`], so the
//! caller returns a typed error instead of guessing from an exit code. `exec`
//! uses the same channel with `ExecConfig`: I joins every namespace of the
//! running container (the caller has already put I into its cgroup), clones,
//! and the child reports `Ready` right before `execve`.
//!
//! Frames are a 4-byte little-endian length followed by one JSON message.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use serde::{Deserialize, Serialize};

/// A setup step of the container init; names where a failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    ReadConfig,
    JoinNamespace,
    Unshare,
    UserMappings,
    Clone,
    RootfsPropagation,
    Mounts,
    Devices,
    PivotRoot,
    ReadonlyRoot,
    Hostname,
    Sysctl,
    MaskedPaths,
    ReadonlyPaths,
    OomScoreAdj,
    Rlimits,
    Terminal,
    Cwd,
    Executable,
    User,
    Capabilities,
    NoNewPrivileges,
    Seccomp,
    Fifo,
    /// A createContainer hook failed (or the caller's createRuntime ones did).
    Hooks,
    Exec,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self).ok();
        let name = s.as_ref().and_then(|v| v.as_str()).unwrap_or("unknown");
        f.write_str(name)
    }
}

/// Messages from the caller to the init stage.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToInit {
    Create(Box<crate::init::InitConfig>),
    /// The init stage is now in the container's cgroup (sent right after
    /// `Create`, so the cgroup migration overlaps namespace creation).
    CgroupJoined,
    MapsDone,
    /// The prestart and createRuntime hooks ran; the OCI state the container
    /// init hands its createContainer and startContainer hooks.
    HooksDone {
        state: String,
    },
}

/// Messages from the init stage (or the container init) to the caller.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromInit {
    MapsReq,
    Pid(i32),
    /// The container init has its mounts and devices and waits, before
    /// pivot_root, for the caller to run prestart and createRuntime hooks
    /// (sent only when the spec has hooks that run at create or start).
    Hooks,
    /// Something the caller should log (e.g. a clamped rlimit); setup goes on.
    Warning(String),
    Ready,
    Failed {
        step: Step,
        errno: Option<i32>,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("channel i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed message: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("peer closed the channel")]
    Closed,
    #[error("unexpected message {0}")]
    Unexpected(String),
}

pub fn send<T: Serialize>(sock: &mut UnixStream, msg: &T) -> Result<(), ProtocolError> {
    let body = serde_json::to_vec(msg)?;
    let len = u32::try_from(body.len()).map_err(|_| std::io::Error::other("message too large"))?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    sock.write_all(&frame)?;
    Ok(())
}

pub fn recv<T: for<'de> Deserialize<'de>>(sock: &mut UnixStream) -> Result<T, ProtocolError> {
    let mut len = [0u8; 4];
    if let Err(e) = sock.read_exact(&mut len) {
        return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ProtocolError::Closed
        } else {
            ProtocolError::Io(e)
        });
    }
    let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
    sock.read_exact(&mut body).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ProtocolError::Closed
        } else {
            ProtocolError::Io(e)
        }
    })?;
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        send(
            &mut a,
            &FromInit::Failed {
                step: Step::PivotRoot,
                errno: Some(22),
                message: "x".into(),
            },
        )
        .unwrap();
        send(&mut a, &FromInit::Pid(42)).unwrap();
        drop(a);
        match recv::<FromInit>(&mut b).unwrap() {
            FromInit::Failed { step, errno, .. } => {
                assert_eq!(step, Step::PivotRoot);
                assert_eq!(errno, Some(22));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            recv::<FromInit>(&mut b).unwrap(),
            FromInit::Pid(42)
        ));
        assert!(matches!(
            recv::<FromInit>(&mut b),
            Err(ProtocolError::Closed)
        ));
    }

    #[test]
    fn step_displays_snake_case() {
        assert_eq!(Step::PivotRoot.to_string(), "pivot_root");
    }
}
