//! A time limit on every `stack` command a test runs: a hang in the
//! product must fail the test that met it, naming the command, rather
//! than hang the whole suite. The command runs in a process group of its
//! own, which is killed when the limit passes; a supervisor or log keeper
//! it started is in a session of its own and is left to the test's drop
//! guards (`down`), which clean up as after any other failure.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The limit when a call names none: generous, as a loaded CI host runs
/// an `up` that pulls and unpacks an image in seconds, not minutes.
/// `STACK_TEST_COMMAND_LIMIT` (seconds) sets another.
pub fn default_limit() -> Duration {
    std::env::var("STACK_TEST_COMMAND_LIMIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(120), Duration::from_secs)
}

/// A command that ran past its limit and was killed with its group.
#[derive(Debug)]
pub struct TimedOut {
    pub command: String,
    pub limit: Duration,
}

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` did not end within {:?}; its process group was killed",
            self.command, self.limit
        )
    }
}

/// The command line of `command`, for messages.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Starts `command` in a process group of its own, so that a limit can
/// kill it with whatever it forked. Its input is empty, as with
/// [`Command::output`]: a process group in the background that read the
/// terminal would be stopped.
pub fn spawn(mut command: Command) -> Child {
    command
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", describe(&command)))
}

/// Runs `command` with its output captured, killing its process group
/// after `limit`.
pub fn try_output(mut command: Command, limit: Duration) -> Result<Output, TimedOut> {
    let described = describe(&command);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = spawn(command);
    wait_output(child, &described, limit)
}

/// Like [`try_output`], failing the test when the limit passes.
pub fn output(command: Command, limit: Duration) -> Output {
    try_output(command, limit).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits for a child started by [`spawn`] with piped output, killing its
/// process group after `limit`.
pub fn wait_output(mut child: Child, described: &str, limit: Duration) -> Result<Output, TimedOut> {
    let group = Pid::from_raw(child.id() as i32);
    let fired = Arc::new(AtomicBool::new(false));
    let (done, ended) = mpsc::channel::<()>();
    let watchdog = {
        let fired = fired.clone();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = ended.recv_timeout(limit) {
                fired.store(true, Ordering::SeqCst);
                let _ = killpg(group, Signal::SIGKILL);
            }
        })
    };
    // Both pipes are drained at once, so a chatty command never blocks on
    // a full one.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = child.wait().expect("waiting for a child");
    drop(done);
    let _ = watchdog.join();
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if fired.load(Ordering::SeqCst) {
        return Err(TimedOut {
            command: described.to_owned(),
            limit,
        });
    }
    Ok(output)
}

/// Waits for a child started by [`spawn`] (output not captured) and says
/// whether it succeeded, failing the test after `limit`.
pub fn finish(mut child: Child, described: &str, limit: Duration) -> bool {
    child.stdout = None;
    child.stderr = None;
    match wait_output(child, described, limit) {
        Ok(output) => output.status.success(),
        Err(e) => panic!("{e}"),
    }
}
