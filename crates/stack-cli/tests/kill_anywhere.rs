//! Kill anything anywhere: for each named step of `up`, `down`, `run`,
//! `restart` and adoption, the process that reaches it (the supervisor) is
//! stopped there (`STACK_FAULT`, test builds only); then either it is
//! killed, or the client and the log keeper are killed and it goes on.
//! Either way one `up` brings the stack back and `down -v` leaves nothing
//! (see `common::leaks`). A randomized run adds kills at random moments of
//! random commands; it prints its seed (`STACK_CHAOS_SEED` replays one).

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::leaks::assert_nothing_left;
use common::{Env, wait_gone};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// One service that writes to its log, stops at once on `SIGTERM` and
/// keeps a named volume.
const STACK: &str = "services:\n  web:\n    image: busybox\n    command: [sh, -c, 'trap \"exit 0\" TERM; while :; do echo tick; sleep 0.2; done']\n    volumes: [data:/data]\nvolumes:\n  data:\n";

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
    Supervisor,
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

/// The pid of whoever holds `locks/<name>.lock`, if it is alive.
fn holder(env: &Env, name: &str) -> Option<i32> {
    let lock = env.run_dir().join("locks").join(format!("{name}.lock"));
    let holder: serde_json::Value = serde_json::from_slice(&std::fs::read(lock).ok()?).ok()?;
    let pid = holder["pid"].as_i64()? as i32;
    kill(Pid::from_raw(pid), None).ok().map(|()| pid)
}

fn sigkill(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// Waits for `child` to end, killing it after `limit`.
fn finish(mut child: Child, limit: Duration) -> bool {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the client did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Continues a stopped process, also when the test panics (a process
/// stopped for good would hang the cleanup).
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGCONT);
    }
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
        let supervisor = holder(env, &env.project).expect("a supervisor");
        sigkill(supervisor);
        wait_gone(supervisor);
    }
    let client = spawn(env, args, Some((point, &faults)));
    let marker = faults.join(point);
    let started = Instant::now();
    let stopped = loop {
        // The pid may not be written yet.
        if let Some(pid) = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|pid| pid.parse::<i32>().ok())
        {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: the step was never reached"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let reached = started.elapsed();
    let _resume = Resume(stopped);
    match victim {
        Victim::Supervisor => {
            sigkill(stopped);
            wait_gone(stopped);
            finish(client, Duration::from_secs(30));
        }
        Victim::ClientAndKeeper => {
            let mut client = client;
            let _ = client.kill();
            let _ = client.wait();
            if let Some(keeper) = holder(env, &format!("{}.logs", env.project)) {
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
    every_step(Victim::Supervisor, "ka-s", 241);
}

#[test]
fn a_client_and_a_keeper_killed_at_any_step_leave_nothing_behind() {
    every_step(Victim::ClientAndKeeper, "ka-c", 242);
}

#[test]
fn random_kills_leave_nothing_behind() {
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
                if let Some(pid) = holder(&env, &env.project) {
                    sigkill(pid);
                    wait_gone(pid);
                }
                finish(client, Duration::from_secs(30));
            }
            _ => {
                if let Some(pid) = holder(&env, &format!("{}.logs", env.project)) {
                    sigkill(pid);
                }
                finish(client, Duration::from_secs(30));
            }
        }
        assert_recovers(&env, &what);
    }
    eprintln!("{kills} kills in {:?}", started.elapsed());
    env.ok(&["down", "-v"]);
    assert_nothing_left(&env);
}
