//! `CreateOptions::init` (Docker's `--init`): a minimal init is pid 1, the
//! program pid 2; orphans are reaped, signals forwarded, the status passed on.

mod common;

use std::time::{Duration, Instant};

use common::{Bundle, Guard, create_opts};
use nix::sys::signal::Signal;

fn create(b: &Bundle, prefix: &str, init: bool) -> Guard {
    create_opts(b, prefix, |o| o.init = init).expect("create")
}

/// The children of host pid `parent` with their state letter (`Z`: zombie).
fn children_of(parent: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name: state, ppid, ...
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let mut f = rest.split(' ');
        let state = f.next().unwrap().chars().next().unwrap();
        if f.next().unwrap().parse::<i32>().unwrap() == parent {
            out.push((pid, state));
        }
    }
    out
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Two background sleeps whose parent subshells exit at once: orphans,
/// reparented to pid 1, which by then is `sleep 5` (it never waits) or the init.
const ORPHANS: &str = "(sleep 0.5 &); (sleep 0.5 &); exec sleep 5";

#[test]
fn orphans_are_left_as_zombies_without_init() {
    stack_testing::require_root!();
    let b = Bundle::new(&["sh", "-c", ORPHANS], |_| {});
    let g = create(&b, "rt2-noinit", false);
    let mut c = g.container();
    c.start().unwrap();
    let pid1 = c.pid();
    wait_for("two zombies under pid 1", || {
        children_of(pid1).iter().filter(|(_, s)| *s == 'Z').count() == 2
    });
}

#[test]
fn orphans_are_reaped_by_init() {
    stack_testing::require_root!();
    let b = Bundle::new(&["sh", "-c", ORPHANS], |_| {});
    let g = create(&b, "rt2-init", true);
    let mut c = g.container();
    c.start().unwrap();
    let init = c.pid();
    // The program and both orphans under the init...
    wait_for("three children of the init", || {
        children_of(init).len() == 3
    });
    // ...then only the program: the orphans exited and were reaped.
    wait_for("the orphans reaped", || {
        let kids = children_of(init);
        kids.len() == 1 && kids[0].1 != 'Z'
    });
}

#[test]
fn init_is_pid_1_and_the_program_pid_2() {
    stack_testing::require_root!();
    let b = Bundle::new(
        &["sh", "-c", "echo self=$$; echo one=$(cat /proc/1/comm)"],
        |_| {},
    );
    let mut g = create(&b, "rt2-initpid", true);
    let mut c = g.container();
    c.start().unwrap();
    let out = g.read_output();
    assert_eq!(out, "self=2\none=stack-init\n");
    assert_eq!(c.wait().unwrap().code, Some(0));
}

#[test]
fn sigterm_reaches_the_program_and_its_status_comes_back() {
    stack_testing::require_root!();
    let script = "trap 'echo got-term; exit 42' TERM; echo up; while :; do sleep 0.05; done";
    let b = Bundle::new(&["sh", "-c", script], |_| {});
    let mut g = create(&b, "rt2-initterm", true);
    let mut c = g.container();
    c.start().unwrap();
    // Wait for the trap to be in place.
    let fd = g.output.take().unwrap();
    let mut f = std::io::BufReader::new(std::fs::File::from(fd));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut f, &mut line).unwrap();
    assert_eq!(line, "up\n");
    c.kill(Signal::SIGTERM).unwrap();
    let info = c.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut f, &mut rest).unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(info.code, Some(42));
}

#[test]
fn a_program_killed_by_a_signal_gives_128_plus_it() {
    stack_testing::require_root!();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let g = create(&b, "rt2-initkill", true);
    let mut c = g.container();
    c.start().unwrap();
    // Right after start: the init queues what it cannot forward yet.
    c.kill(Signal::SIGUSR1).unwrap();
    let info = c.wait().unwrap();
    assert_eq!(info.code, Some(128 + libc::SIGUSR1), "{info:?}");
}

#[test]
fn an_oom_killed_program_is_reported_as_oom_through_the_init() {
    stack_testing::require_root!();
    let b = Bundle::new(&["awk", "BEGIN { s = \"x\"; while (1) s = s s }"], |v| {
        v["linux"]["resources"]["memory"] =
            serde_json::json!({"limit": 32 << 20, "swap": 32 << 20});
    });
    let g = create(&b, "rt2-initoom", true);
    let mut c = g.container();
    c.start().unwrap();
    let info = c.wait().unwrap();
    assert_eq!(info.code, Some(137), "{info:?}");
    assert!(info.oom_killed, "{info:?}");
}
