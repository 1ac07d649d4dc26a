//! OCI hooks: each runs with the container's state JSON on stdin.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hook {path}: spawn: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("hook {path}: exited with {status}")]
    Failed {
        path: PathBuf,
        status: std::process::ExitStatus,
    },
    #[error("hook {path}: timed out after {secs}s")]
    Timeout { path: PathBuf, secs: i64 },
}

/// Runs `hooks` in order; stops at the first failure.
pub fn run(hooks: &[Hook], state_json: &str) -> Result<(), HookError> {
    for h in hooks {
        run_one(h, state_json)?;
    }
    Ok(())
}

/// Runs every hook in `hooks`, even after one fails (poststart, poststop:
/// a failure is only a warning and the rest go on); returns the failures.
pub fn run_all(hooks: &[Hook], state_json: &str) -> Vec<HookError> {
    hooks
        .iter()
        .filter_map(|h| run_one(h, state_json).err())
        .collect()
}

fn run_one(h: &Hook, state_json: &str) -> Result<(), HookError> {
    let path = h.path().clone();
    let mut cmd = Command::new(&path);
    let args = h.args().clone().unwrap_or_default();
    if let Some(a0) = args.first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, a0);
        cmd.args(&args[1..]);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that ignores stdin may close it early; that is not an error.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| (t, Instant::now() + Duration::from_secs(t as u64)));
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(HookError::Failed { path, status }),
            Ok(None) => {}
            Err(source) => return Err(HookError::Spawn { path, source }),
        }
        if let Some((secs, d)) = deadline
            && Instant::now() > d
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout { path, secs });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
