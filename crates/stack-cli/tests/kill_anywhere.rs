//! Kill anything anywhere: for each named step of `up`, `down`, `run`,
//! `restart`, adoption and the log keeper, the process that reaches it
//! (the supervisor, or the keeper) is stopped there (`STACK_FAULT`, test builds only); then either it is
//! killed, or the client and the log keeper are killed and it goes on.
//! Either way one `up` brings the stack back and `down -v` leaves nothing
//! (see `common::leaks`). A randomized run adds kills at random moments of
//! random commands; it prints its seed (`STACK_CHAOS_SEED` replays one).

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::chaos::{Resume, keeper_pid, sigkill, stopped_at, supervisor_pid};
use common::leaks::assert_nothing_left;
use common::{Env, limit, wait_gone};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// One service that writes to its log (rotated every few lines, so that
/// the keeper's rotation is a step too), stops at once on `SIGTERM` and
/// keeps a named volume.
const STACK: &str = "services:\n  web:\n    image: busybox\n    command: [sh, -c, 'trap \"exit 0\" TERM; while :; do echo tick; sleep 0.1; done']\n    logging:\n      options: {max-size: '200', max-file: '2'}\n    volumes: [data:/data]\nvolumes:\n  data:\n";

/// What runs before the command that meets the fault.
#[derive(Clone, Copy)]
enum Before {
    Nothing,
    /// `up -d`, then the supervisor is killed, so that the command starts
    /// a new one (which adopts the containers and carries the fault).
    UpThenSupervisorKilled,
}

/// Who is killed when the step is reached.
#[derive(Clone, Copy, Debug)]
enum Victim {
    /// The process that reached it: the supervisor, or for the `keeper-`
    /// steps the log keeper.
    AtStep,
    ClientAndKeeper,
}

const SCENARIOS: &[(Before, &[&str], &str)] = &[
    (Before::Nothing, &["up", "-d"], "supervisor-after-bind"),
    (Before::Nothing, &["up", "-d"], "up-after-project-saved"),
    (Before::Nothing, &["up", "-d"], "network-after-create"),
    (Before::Nothing, &["up", "-d"], "create-after-record"),
    (Before::Nothing, &["up", "-d"], "create-after-rootfs"),
    (Before::Nothing, &["up", "-d"], "create-after-attach"),
    (Before::Nothing, &["up", "-d"], "create-after-config"),
    (Before::Nothing, &["up", "-d"], "create-after-cgroup"),
    (Before::Nothing, &["up", "-d"], "create-before-commit"),
    (Before::Nothing, &["up", "-d"], "start-after-exec"),
    (Before::Nothing, &["up", "-d"], "keeper-after-spawn"),
    (Before::Nothing, &["up", "-d"], "start-after-logs"),
    (Before::Nothing, &["up", "-d"], "up-after-plan"),
    (Before::Nothing, &["up", "-d"], "keeper-after-receive"),
    (Before::Nothing, &["up", "-d"], "keeper-after-write"),
    (Before::Nothing, &["up", "-d"], "keeper-in-rotate"),
    (
        Before::UpThenSupervisorKilled,
        &["ps"],
        "adopt-after-recover",
    ),
    (Before::UpThenSupervisorKilled, &["ps"], "adopt-after"),
    (Before::UpThenSupervisorKilled, &["down"], "down-after-stop"),
    (
        Before::UpThenSupervisorKilled,
        &["down"],
        "destroy-after-discard",
    ),
    (
        Before::UpThenSupervisorKilled,
        &["down"],
        "destroy-after-detach",
    ),
    (
        Before::UpThenSupervisorKilled,
        &["down"],
        "destroy-after-release",
    ),
    (Before::UpThenSupervisorKilled, &["down"], "down-after-plan"),
    (
        Before::UpThenSupervisorKilled,
        &["down"],
        "network-before-remove",
    ),
    (
        Before::UpThenSupervisorKilled,
        &["down"],
        "down-after-network",
    ),
    (
        Before::UpThenSupervisorKilled,
        &["down"],
        "down-after-forget",
    ),
    (
        Before::UpThenSupervisorKilled,
        &["restart"],
        "restart-after-stop",
    ),
    (
        Before::UpThenSupervisorKilled,
        &["restart"],
        "start-after-exec",
    ),
    (
        Before::UpThenSupervisorKilled,
        &["run", "-d", "web"],
        "create-before-commit",
    ),
    (
        Before::UpThenSupervisorKilled,
        &["run", "-d", "web"],
        "run-after-create",
    ),
];

/// Waits for a client started by [`spawn`], killing it after `limit`.
fn finish(client: Child, limit: Duration) -> bool {
    limit::finish(client, "the stack client", limit)
}

/// `stack ARGS -f stack.yaml -p PROJECT`, not waited for.
fn spawn(env: &Env, args: &[&str], fault: Option<(&str, &Path)>) -> Child {
    let file = env.file();
    // The file and project go before a `run`'s command.
    let mut all: Vec<&str> = vec![args[0], "-f", file.to_str().unwrap(), "-p", &env.project];
    all.extend(&args[1..]);
    let mut command = env.command(&all);
    if let Some((point, dir)) = fault {
        command
            .env("STACK_FAULT", point)
            .env("STACK_FAULT_PAUSE", dir);
    }
    command.stdout(Stdio::null()).stderr(Stdio::null());
    limit::spawn(command)
}

/// One `up` brings the whole stack back.
fn assert_recovers(env: &Env, what: &str) {
    let out = env.stack(&[
        "up",
        "-d",
        "-f",
        env.file().to_str().unwrap(),
        "-p",
        &env.project,
    ]);
    assert!(
        out.status.success(),
        "{what}: up did not recover:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let states = env.states(&env.project);
    assert!(
        states
            .iter()
            .any(|(s, state, _)| s == "web" && state == "running"),
        "{what}: web is not running after one up: {states:?}"
    );
}

fn scenario(env: &Env, before: Before, args: &[&str], point: &str, victim: Victim) {
    let what = format!("{args:?} at {point}, {victim:?} killed");
    let faults = env.dir.path().join("faults");
    std::fs::create_dir_all(&faults).unwrap();
    if let Before::UpThenSupervisorKilled = before {
        env.ok(&["up", "-d"]);
        let supervisor = supervisor_pid(env).expect("a supervisor");
        sigkill(supervisor);
        wait_gone(supervisor);
    }
    let client = spawn(env, args, Some((point, &faults)));
    let started = Instant::now();
    let stopped = stopped_at(&faults, point, Duration::from_secs(30));
    let reached = started.elapsed();
    let _resume = Resume(stopped);
    match victim {
        Victim::AtStep => {
            sigkill(stopped);
            wait_gone(stopped);
            finish(client, Duration::from_secs(30));
        }
        Victim::ClientAndKeeper => {
            let mut client = client;
            let _ = client.kill();
            let _ = client.wait();
            if let Some(keeper) = keeper_pid(env) {
                sigkill(keeper);
            }
            let _ = kill(Pid::from_raw(stopped), Signal::SIGCONT);
        }
    }
    let killed = started.elapsed();
    assert_recovers(env, &what);
    let recovered = started.elapsed();
    env.ok(&["down", "-v"]);
    assert_nothing_left(env);
    eprintln!(
        "{what}: reached {reached:?}, killed {killed:?}, recovered {recovered:?}, down {:?}",
        started.elapsed()
    );
}

fn every_step(victim: Victim, name: &str, subnet: u8) {
    for (i, (before, args, point)) in SCENARIOS.iter().enumerate() {
        let env = Env::new(&format!("{name}{i}"), subnet);
        env.write(STACK);
        scenario(&env, *before, args, point, victim);
    }
}

#[test]
fn a_supervisor_killed_at_any_step_is_recovered_by_one_up() {
    stack_testing::require_root!();
    every_step(Victim::AtStep, "ka-s", 241);
}

#[test]
fn a_client_and_a_keeper_killed_at_any_step_leave_nothing_behind() {
    stack_testing::require_root!();
    every_step(Victim::ClientAndKeeper, "ka-c", 242);
}

#[test]
fn random_kills_leave_nothing_behind() {
    stack_testing::require_root!();
    let seed = std::env::var("STACK_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let kills: usize = std::env::var("STACK_CHAOS_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    eprintln!("random kills: STACK_CHAOS_SEED={seed} STACK_CHAOS_KILLS={kills}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let env = Env::new("ka-rand", 243);
    env.write(STACK);
    env.ok(&["up", "-d"]);
    let commands: &[&[&str]] = &[
        &["up", "-d"],
        &["up", "-d", "--force-recreate"],
        &["down"],
        &["restart"],
        &["stop"],
        &["run", "-d", "web"],
    ];
    let started = Instant::now();
    for n in 0..kills {
        let args = commands[rng.usize(..commands.len())];
        let began = Instant::now();
        let client = spawn(&env, args, None);
        std::thread::sleep(Duration::from_millis(rng.u64(0..400)));
        let target = rng.u8(0..3);
        let what = format!("kill {n}: {args:?}, target {target} (seed {seed})");
        match target {
            0 => {
                let mut client = client;
                let _ = client.kill();
                let _ = client.wait();
            }
            1 => {
                if let Some(pid) = supervisor_pid(&env) {
                    sigkill(pid);
                    wait_gone(pid);
                }
                finish(client, Duration::from_secs(30));
            }
            _ => {
                if let Some(pid) = keeper_pid(&env) {
                    sigkill(pid);
                }
                finish(client, Duration::from_secs(30));
            }
        }
        let ended = began.elapsed();
        assert_recovers(&env, &what);
        eprintln!("{what}: ended {ended:?}, recovered {:?}", began.elapsed());
    }
    let took = started.elapsed();
    eprintln!("{kills} kills in {took:?}");
    // The goal is 50 kills in 60 s (1.2 s a kill: the command, its kill
    // and one `up`); a recovery that waits on a timeout (seconds) shows
    // here. The bound leaves room for a host loaded by other builds.
    let bound = Duration::from_secs(2) * kills as u32;
    assert!(took < bound, "{kills} kills took {took:?}, over {bound:?}");
    env.ok(&["down", "-v"]);
    assert_nothing_left(&env);
}
