//! The test harness keeps its own promises: a command that hangs is
//! killed with everything it forked once its time limit passes, and the
//! failure names the command; one that ends in time is untouched.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::limit;

#[test]
fn a_command_past_its_limit_is_killed_with_its_group_and_named() {
    let pid_file = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new("sh");
    // A child of its own that would outlive a kill of the shell alone.
    command.arg("-c").arg(format!(
        "sleep 100 & echo $! > {}; wait",
        pid_file.path().display()
    ));
    let started = Instant::now();
    let err = limit::try_output(command, Duration::from_millis(500)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let said = err.to_string();
    assert!(said.contains("sh -c sleep 100 &"), "{said}");
    assert!(said.contains("did not end within 500ms"), "{said}");
    let child: i32 = std::fs::read_to_string(pid_file.path())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    common::wait_gone(child);
}

#[test]
fn a_command_within_its_limit_gives_its_output() {
    let mut command = Command::new("sh");
    command.args(["-c", "echo out; echo err >&2; exit 3"]);
    let out = limit::output(command, Duration::from_secs(30));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status.code(), Some(3));
}
