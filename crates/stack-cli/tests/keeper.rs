//! Logs never kill containers: with the log keeper killed while a service
//! prints about 1,000 lines a second, the service keeps running (its pipe
//! never loses its last reader, so no `SIGPIPE`), a new keeper is started
//! and the lines flow into the log again within about a second; also when
//! the supervisor was itself killed and started again before (it takes
//! the pipes back from the running keeper when it adopts the containers).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Env;

/// The highest `line N` in the log file at `path`.
fn last_line(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .rsplit("line ")
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

fn holder_pid(env: &Env, lock: &str) -> i32 {
    let lock = env.run_dir().join("locks").join(format!("{lock}.lock"));
    let holder: serde_json::Value = serde_json::from_slice(&std::fs::read(lock).unwrap()).unwrap();
    holder["pid"].as_i64().unwrap() as i32
}

fn keeper_pid(env: &Env) -> i32 {
    holder_pid(env, &format!("{}.logs", env.project))
}

#[test]
fn a_killed_keeper_is_replaced_and_the_service_keeps_running() {
    keeper_killed(Env::new("cr-keeper", 186), false);
}

#[test]
fn a_keeper_killed_after_a_supervisor_restart_is_replaced_too() {
    keeper_killed(Env::new("cr-keeper2", 244), true);
}

fn keeper_killed(env: Env, supervisor_restarted: bool) {
    // `init: true` makes the printing shell pid 2, which SIGPIPE would kill
    // (pid 1 of a namespace ignores it).
    env.write(
        r#"
services:
  loud:
    image: busybox
    init: true
    logging:
      options: {max-size: 100m}
    command: ["sh", "-c", "i=0; while :; do j=0; while [ $$j -lt 100 ]; do i=$$((i+1)); j=$$((j+1)); echo line $$i; done; sleep 0.1; done"]
"#,
    );
    env.ok(&["up", "-d"]);
    let (name, _, pid) = env.containers().pop().unwrap();
    let log = env
        .root()
        .join("projects")
        .join(&env.project)
        .join("containers")
        .join(&name)
        .join("container.log");
    let started = Instant::now();
    while last_line(&log) < 1000 {
        assert!(started.elapsed() < Duration::from_secs(20), "no output");
        std::thread::sleep(Duration::from_millis(50));
    }

    if supervisor_restarted {
        let supervisor = holder_pid(&env, &env.project);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(supervisor),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        common::wait_gone(supervisor);
        // A new supervisor adopts the service before it answers.
        env.ok(&["ps"]);
        assert_ne!(holder_pid(&env, &env.project), supervisor);
    }
    let keeper = keeper_pid(&env);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(keeper),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let killed = Instant::now();
    let at_kill = last_line(&log);
    // Flowing again: well past what the pipe held when the keeper died.
    while last_line(&log) < at_kill + 500 {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "logs stopped at {} after the keeper was killed at {at_kill}",
            last_line(&log)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let resumed = killed.elapsed();
    eprintln!("logs flowed again {resumed:?} after the keeper was killed");
    assert_ne!(keeper_pid(&env), keeper, "a new keeper took over");
    // A second is the goal; the margin is for a loaded CI host.
    assert!(resumed < Duration::from_secs(2), "{resumed:?}");

    std::thread::sleep(Duration::from_millis(500));
    let (_, _, pid_after) = env.containers().pop().unwrap();
    assert_eq!(pid_after, pid, "the service was restarted");
    let ps = env.ok(&["ps", "--format", "json"]);
    assert!(ps.contains("running"), "the service is not running: {ps}");
}
