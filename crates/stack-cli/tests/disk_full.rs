//! A full disk: `up` refuses a root without room; under a running stack
//! logging pauses (a warning and an event) and nothing dies; and at the
//! worst moments of `up` and `down` — the root is a small tmpfs, the
//! supervisor is stopped at a named step (`STACK_FAULT`
//! with `STACK_FAULT_PAUSE`), the test fills the disk to the last byte
//! and lets it go on. Each command then either succeeds or fails with one
//! clear error that names the path and what was being done to it (no
//! panic, no bare OS error, no cause printed twice), and once the space
//! is back one `up` brings the stack up and `down -v` leaves nothing.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::chaos::{
    Resume, SmallRoot, Tmpfs, container_log, fill, last_line, sigkill, stopped_at, supervisor_pid,
    wait_line,
};
use common::leaks::assert_nothing_left;
use common::{Env, limit, wait_gone};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// One service that writes to its log and keeps a named volume.
const STACK: &str = "services:\n  web:\n    image: busybox\n    command: [sh, -c, 'trap \"exit 0\" TERM; while :; do echo tick; sleep 0.1; done']\n    volumes: [data:/data]\nvolumes:\n  data:\n";

/// Runs `args` with the supervisor stopped at `point`, fills the disk
/// there, lets it go on, and checks what the command said; the space
/// comes back before this returns.
fn full_at(env: &Env, args: &[&str], point: &str) {
    let faults = env.dir.path().join("faults");
    std::fs::create_dir_all(&faults).unwrap();
    let file = env.file();
    let mut all: Vec<&str> = vec![args[0], "-f", file.to_str().unwrap(), "-p", &env.project];
    all.extend(&args[1..]);
    let mut command = env.command(&all);
    command
        .env("STACK_FAULT", point)
        .env("STACK_FAULT_PAUSE", &faults)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let described = format!("stack {args:?} stopped at {point}");
    let client = limit::spawn(command);
    let stopped = stopped_at(&faults, point, Duration::from_secs(30));
    let resume = Resume(stopped);
    let filler = fill(&env.root());
    let _ = kill(Pid::from_raw(stopped), Signal::SIGCONT);
    let out = limit::wait_output(client, &described, limit::default_limit())
        .unwrap_or_else(|e| panic!("{e}"));
    drop(resume);
    filler.remove();

    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "{described}: {}\n{stderr}",
        if out.status.success() {
            "succeeded"
        } else {
            "failed"
        }
    );
    assert!(!stderr.contains("panicked"), "{described}:\n{stderr}");
    if !out.status.success() {
        assert_eq!(
            stderr.matches("No space left on device").count(),
            1,
            "{described}: the cause once:\n{stderr}"
        );
        assert!(
            stderr.matches("os error").count() <= 1,
            "{described}: the OS error once:\n{stderr}"
        );
        let root = env.root();
        assert!(
            stderr.contains(root.to_str().unwrap()),
            "{described}: the error names no path under the root:\n{stderr}"
        );
    }
}

/// One `up` brings the stack back, and `down -v` leaves nothing.
fn recovers(env: &Env, what: &str) {
    env.ok(&["up", "-d"]);
    let states = env.states(&env.project);
    assert!(
        states
            .iter()
            .any(|(s, state, _)| s == "web" && state == "running"),
        "{what}: web is not running after one up: {states:?}"
    );
    env.ok(&["down", "-v"]);
    assert_nothing_left(env);
}

#[test]
fn a_disk_filling_during_up_ends_in_one_clear_error_or_a_running_stack() {
    stack_testing::require_root!();
    for (i, point) in [
        "up-after-project-saved",
        "create-after-record",
        "create-after-config",
        "start-after-exec",
    ]
    .into_iter()
    .enumerate()
    {
        let small = SmallRoot::new(&format!("df-up{i}"), 211, "48m");
        let env = &small.env;
        env.write(STACK);
        full_at(env, &["up", "-d"], point);
        recovers(env, point);
    }
}

#[test]
fn a_disk_filling_during_down_ends_in_one_clear_error_and_leaves_nothing() {
    stack_testing::require_root!();
    for (i, point) in [
        "down-after-stop",
        "destroy-after-discard",
        "down-after-plan",
    ]
    .into_iter()
    .enumerate()
    {
        let small = SmallRoot::new(&format!("df-down{i}"), 212, "48m");
        let env = &small.env;
        env.write(STACK);
        env.ok(&["up", "-d"]);
        // The next command starts a supervisor that carries the fault.
        let supervisor = supervisor_pid(env).expect("a supervisor");
        sigkill(supervisor);
        wait_gone(supervisor);
        full_at(env, &["down"], point);
        // With the space back, `down` finishes whatever is left.
        env.ok(&["down", "-v"]);
        assert_nothing_left(env);
        recovers(env, point);
    }
}

#[test]
fn up_refuses_a_root_without_room_and_says_how_much_it_needs() {
    stack_testing::require_root!();
    let env = Env::empty("cr-full", 183);
    env.write("services:\n  web:\n    image: busybox\n");
    let small = env.dir.path().join("small");
    let _fs = Tmpfs::mount(&small, "1m");
    let mut command = std::process::Command::new(common::stack_bin());
    command
        .arg("--root")
        .arg(small.join("root"))
        .arg("--run-dir")
        .arg(env.run_dir())
        .args([
            "up",
            "-d",
            "-f",
            env.file().to_str().unwrap(),
            "-p",
            &env.project,
        ]);
    let out = limit::output(command, limit::default_limit());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "not enough space under {}: up needs at least 32 MiB free",
            small.join("root").display()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error").count(), 1, "{stderr}");
    assert!(!small.join("root").exists(), "something was written");
    assert!(!env.run_dir().join("supervisors").exists());
}

#[test]
fn a_full_disk_under_a_running_stack_pauses_its_logs_and_kills_nothing() {
    stack_testing::require_root!();
    let small = SmallRoot::new("cr-disk", 245, "64m");
    let env = &small.env;
    env.write(
        "services:\n  loud:\n    image: busybox\n    init: true\n    command: [sh, -c, 'i=0; while :; do j=0; while [ $$j -lt 10 ]; do i=$$((i+1)); j=$$((j+1)); echo line $$i; done; sleep 0.05; done']\n",
    );
    env.ok(&["up", "-d"]);
    let (name, _, pid) = env.containers().pop().unwrap();
    let pid = pid.expect("running") as i32;
    let log = container_log(env, &name);
    wait_line(&log, 10, Duration::from_secs(20));

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    // Fill the root to the last byte.
    let filler = fill(&env.root());
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok(),
        "the service died on a full disk"
    );

    filler.remove();
    let freed = Instant::now();
    let at_freed = last_line(&log);
    while last_line(&log) < at_freed + 20 {
        assert!(
            freed.elapsed() < Duration::from_secs(5),
            "logs did not resume after space returned: {at_freed} then {}",
            last_line(&log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, _, pid_after) = env.containers().pop().unwrap();
    assert_eq!(pid_after, Some(i64::from(pid)), "the service was restarted");
    // The warning that writing paused is lost with the full disk; the one
    // that it resumed says how much was dropped.
    let supervisor_log = std::fs::read_to_string(
        env.root()
            .join("projects")
            .join(&env.project)
            .join("supervisor.log"),
    )
    .unwrap_or_default();
    assert!(
        supervisor_log.contains("writing resumed") && supervisor_log.contains("lines dropped"),
        "{supervisor_log}"
    );
    assert!(!supervisor_log.contains("panicked"), "{supervisor_log}");
    // Both are events too, shaped as the others, found by `--since` once
    // the journal can be written again.
    let events = env.ok(&[
        "events",
        "--format",
        "json",
        "--since",
        &before.to_string(),
        "--until",
        "0s",
    ]);
    let actions: Vec<serde_json::Value> = events
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["Action"].as_str().is_some_and(|a| a.starts_with("log_")))
        .collect();
    assert_eq!(actions.len(), 2, "{events}");
    let (paused, resumed) = (&actions[0], &actions[1]);
    assert_eq!(paused["Action"], "log_paused", "{events}");
    assert_eq!(paused["Type"], "container", "{events}");
    assert_eq!(
        paused["Actor"]["Attributes"]["name"],
        name.as_str(),
        "{events}"
    );
    assert!(
        paused["Actor"]["Attributes"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left")),
        "{events}"
    );
    assert_eq!(resumed["Action"], "log_resumed", "{events}");
    let dropped: u64 = resumed["Actor"]["Attributes"]["droppedLines"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(dropped > 0, "{events}");
    env.ok(&["down", "-v"]);
}
