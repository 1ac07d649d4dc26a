//! Logs never kill containers: with the log keeper killed while a service
//! prints about 1,000 lines a second, the service keeps running (its pipe
//! never loses its last reader, so no `SIGPIPE`), a new keeper is started
//! and the lines flow into the log again within about a second; also when
//! the supervisor was itself killed and started again before (it takes
//! the pipes back from the running keeper when it adopts the containers).

mod common;

use std::time::{Duration, Instant};

use common::Env;
use common::chaos::{container_log, keeper_pid, last_line, sigkill, supervisor_pid, wait_line};

#[test]
fn a_killed_keeper_is_replaced_and_the_service_keeps_running() {
    stack_testing::require_root!();
    keeper_killed(Env::new("cr-keeper", 186), false);
}

#[test]
fn a_keeper_killed_after_a_supervisor_restart_is_replaced_too() {
    stack_testing::require_root!();
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
    let log = container_log(&env, &name);
    wait_line(&log, 1000, Duration::from_secs(20));

    if supervisor_restarted {
        let supervisor = supervisor_pid(&env).expect("a supervisor");
        sigkill(supervisor);
        common::wait_gone(supervisor);
        // A new supervisor adopts the service before it answers.
        env.ok(&["ps"]);
        assert_ne!(supervisor_pid(&env), Some(supervisor));
    }
    let keeper = keeper_pid(&env).expect("a log keeper");
    sigkill(keeper);
    let killed = Instant::now();
    let at_kill = last_line(&log);
    // Flowing again: well past what the pipe held when the keeper died.
    wait_line(&log, at_kill + 500, Duration::from_secs(5));
    let resumed = killed.elapsed();
    eprintln!("logs flowed again {resumed:?} after the keeper was killed");
    assert_ne!(keeper_pid(&env), Some(keeper), "a new keeper took over");
    // A second is the goal; the margin is for a loaded CI host.
    assert!(resumed < Duration::from_secs(2), "{resumed:?}");

    std::thread::sleep(Duration::from_millis(500));
    let (_, _, pid_after) = env.containers().pop().unwrap();
    assert_eq!(pid_after, pid, "the service was restarted");
    let ps = env.ok(&["ps", "--format", "json"]);
    assert!(ps.contains("running"), "the service is not running: {ps}");
}
