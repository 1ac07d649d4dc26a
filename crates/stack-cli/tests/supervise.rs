//! Supervision end to end, as root, with real containers: restart policies
//! against real exits and OOM kills (backoff read from the event journal),
//! user stops surviving a supervisor kill, adoption without restarts,
//! unknown exits, restart on unhealthy, logs that survive restarts and a
//! dead supervisor, the cost of a crash loop, and `events`, `inspect`,
//! `stats`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Env, stack_bin};
use serde_json::Value;

const LOOP: &str = "trap 'exit 0' TERM; while :; do sleep 0.1; done";

fn unix_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// `ps -a --format json`, by service.
fn ps(env: &Env) -> HashMap<String, Value> {
    json_lines(&env.ok(&["ps", "-a", "--format", "json"]))
        .into_iter()
        .map(|v| (v["Service"].as_str().unwrap().to_owned(), v))
        .collect()
}

/// The journal between two Unix times (seconds).
fn events(env: &Env, since: f64, until: f64) -> Vec<Value> {
    json_lines(&env.ok(&[
        "events",
        "--format",
        "json",
        "--since",
        &format!("{since:.3}"),
        "--until",
        &format!("{until:.3}"),
    ]))
}

fn of<'a>(events: &'a [Value], service: &str, action: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["Actor"]["Attributes"]["com.docker.compose.service"] == service)
        .filter(|e| e["Action"] == action)
        .collect()
}

fn ms(e: &Value) -> f64 {
    e["timeNano"].as_u64().unwrap() as f64 / 1e6
}

/// Die → next start gaps of a service, in milliseconds.
fn restart_gaps(events: &[Value], service: &str) -> Vec<f64> {
    let mine: Vec<&Value> = events
        .iter()
        .filter(|e| e["Actor"]["Attributes"]["com.docker.compose.service"] == service)
        .collect();
    let mut gaps = Vec::new();
    let mut died = None;
    for e in mine {
        match e["Action"].as_str().unwrap() {
            "die" => died = Some(ms(e)),
            // `restart` is emitted when the policy's wait is over, before
            // the container is made again: the gap is the backoff itself,
            // not how long a loaded host takes to start a process.
            "restart" => {
                if let Some(d) = died.take() {
                    gaps.push(ms(e) - d);
                }
            }
            _ => {}
        }
    }
    gaps
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// The pid of this test's supervisor, from its socket's peer credentials.
fn supervisor_pid(env: &Env) -> i32 {
    let path = env
        .run_dir()
        .join("supervisors")
        .join(format!("{}.sock", env.project));
    let stream = UnixStream::connect(&path).unwrap();
    let cred =
        nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).unwrap();
    cred.pid()
}

fn kill9(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}/stat")).exists() && Instant::now() < deadline {
        // A zombie until its parent (the test's `stack up`, gone) is reaped
        // by init; its state says so.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.contains(") Z") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends a request straight to the supervisor (for `stop`, whose command
/// belongs to the lifecycle commands).
fn request(env: &Env, request: &stack_engine::api::Request) {
    let path = env
        .run_dir()
        .join("supervisors")
        .join(format!("{}.sock", env.project));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut channel = stack_engine::api::Channel::connect(&path).await.unwrap();
        let answer = channel.call(request, |_| {}).await.unwrap();
        if let Err(e) = answer {
            panic!("{e}");
        }
    });
}

#[test]
fn restart_policies_against_exit_0_exit_3_and_oom() {
    stack_testing::require_root!();
    let env = Env::new("sv-policy", 70);
    let policies = [
        ("no", "no"),
        ("always", "always"),
        ("onfail", "on-failure"),
        ("onfail2", "on-failure:2"),
        ("unless", "unless-stopped"),
    ];
    let behaviours = [
        ("ok", r#"["sh", "-c", "exit 0"]"#, ""),
        ("fail", r#"["sh", "-c", "exit 3"]"#, ""),
        (
            "oom",
            r#"["awk", "BEGIN { s = \"x\"; while (1) s = s s }"]"#,
            "\n    mem_limit: 32m\n    memswap_limit: 32m",
        ),
    ];
    let mut yaml = String::from("services:\n");
    for (p, policy) in policies {
        for (b, command, extra) in behaviours {
            yaml.push_str(&format!(
                "  {p}-{b}:\n    image: busybox\n    restart: \"{policy}\"\n    command: {command}{extra}\n"
            ));
        }
    }
    env.write(&yaml);
    let since = unix_secs();
    env.ok(&["up", "-d"]);
    // Long enough for 100 + 200 + 400 + 800 ms of backoff, and for
    // on-failure:2 to give up.
    std::thread::sleep(Duration::from_secs(4));
    let until = unix_secs();
    let list = ps(&env);
    let journal = events(&env, since, until);
    let count = |s: &str| list[s]["RestartCount"].as_u64().unwrap();
    let state = |s: &str| list[s]["State"].as_str().unwrap().to_owned();

    // Never restarted: policy no; on-failure after success.
    for s in ["no-ok", "no-fail", "no-oom", "onfail-ok", "onfail2-ok"] {
        assert_eq!(count(s), 0, "{s}: {:?}", list[s]);
        assert_eq!(state(s), "exited", "{s}");
        assert_eq!(of(&journal, s, "start").len(), 1, "{s}");
    }
    assert_eq!(list["no-fail"]["ExitCode"], 3);
    assert_eq!(list["no-ok"]["ExitCode"], 0);
    // The OOM kill is seen as one: event, exit code 137, inspect.
    assert_eq!(list["no-oom"]["ExitCode"], 137, "{:?}", list["no-oom"]);
    assert_eq!(of(&journal, "no-oom", "oom").len(), 1);
    let inspect: Value = serde_json::from_str(&env.ok(&["inspect", "no-oom"])).unwrap();
    assert_eq!(inspect[0]["State"]["OOMKilled"], true, "{inspect}");
    assert!(
        list["no-fail"]["Status"]
            .as_str()
            .unwrap()
            .starts_with("Exited (3) "),
        "{:?}",
        list["no-fail"]
    );

    // on-failure:2 restarts twice, then stays down.
    for s in ["onfail2-fail", "onfail2-oom"] {
        assert_eq!(count(s), 2, "{s}: {:?}", list[s]);
        assert_eq!(state(s), "exited", "{s}");
        assert_eq!(of(&journal, s, "die").len(), 3, "{s}");
    }

    // The rest keep restarting with Docker's doubling backoff.
    for s in [
        "always-ok",
        "always-fail",
        "always-oom",
        "onfail-fail",
        "onfail-oom",
        "unless-ok",
        "unless-fail",
        "unless-oom",
    ] {
        assert!(count(s) >= 3, "{s} restarted {} times", count(s));
        let gaps = restart_gaps(&journal, s);
        assert!(gaps.len() >= 3, "{s}: {gaps:?}");
        for (i, gap) in gaps.iter().enumerate() {
            let delay = 100.0 * f64::from(1u32 << i);
            // The policy's delay, plus timer slack on a busy host.
            assert!(
                *gap >= delay - 5.0 && *gap < delay + 250.0,
                "{s}: restart {i} after {gap:.0} ms, expected {delay} ms: {gaps:?}"
            );
        }
    }
    for s in ["always-oom", "onfail-oom", "unless-oom"] {
        let dies = of(&journal, s, "die");
        assert!(
            dies.iter()
                .all(|d| d["Actor"]["Attributes"]["exitCode"] == "137"),
            "{s}"
        );
        assert_eq!(of(&journal, s, "oom").len(), dies.len(), "{s}");
    }
}

#[test]
fn a_stopped_unless_stopped_service_stays_down_across_a_supervisor_kill() {
    stack_testing::require_root!();
    let env = Env::new("sv-stop", 71);
    env.write(&format!(
        "services:\n  web:\n    image: busybox\n    restart: unless-stopped\n    command: [\"sh\", \"-c\", \"{LOOP}\"]\n  other:\n    image: busybox\n    restart: unless-stopped\n    command: [\"sh\", \"-c\", \"{LOOP}\"]\n"
    ));
    env.ok(&["up", "-d"]);
    request(
        &env,
        &stack_engine::api::Request::Stop {
            services: vec!["web".into()],
            timeout: None,
        },
    );
    let list = ps(&env);
    assert_eq!(list["web"]["State"], "exited", "{:?}", list["web"]);
    let other_pid = env
        .containers()
        .into_iter()
        .find(|c| c.0 == "sv-stop-other-1")
        .unwrap()
        .2;

    kill9(supervisor_pid(&env));
    // The next command starts a supervisor, which adopts the project.
    let list = ps(&env);
    let new_pid = supervisor_pid(&env);
    assert!(new_pid > 0);
    std::thread::sleep(Duration::from_secs(2));
    let list2 = ps(&env);
    for l in [&list, &list2] {
        assert_eq!(l["web"]["State"], "exited", "{:?}", l["web"]);
        assert_eq!(l["web"]["RestartCount"], 0);
        assert_eq!(l["other"]["State"], "running");
    }
    let after = env
        .containers()
        .into_iter()
        .find(|c| c.0 == "sv-stop-other-1")
        .unwrap()
        .2;
    assert_eq!(other_pid, after, "the running service was not touched");
}

#[test]
fn a_killed_supervisor_is_replaced_without_restarting_anything_but_the_crash_loop() {
    stack_testing::require_root!();
    let env = Env::new("sv-adopt", 72);
    let mut yaml = String::from("services:\n");
    for i in 0..10 {
        yaml.push_str(&format!(
            "  s{i}:\n    image: busybox\n    restart: always\n    command: [\"sh\", \"-c\", \"{LOOP}\"]\n"
        ));
    }
    yaml.push_str(
        "  crash:\n    image: busybox\n    restart: always\n    command: [\"sh\", \"-c\", \"exit 3\"]\n",
    );
    // Killed below while the supervisor is away: its exit cannot be known.
    // (Killed by the test, not timed by itself: under load its own timer
    // could run out while the old supervisor still watched it.)
    yaml.push_str(
        "  once:\n    image: busybox\n    restart: on-failure\n    command: [\"sleep\", \"1000\"]\n",
    );
    env.write(&yaml);
    let since = unix_secs();
    env.ok(&["up", "-d"]);
    wait_until(
        "four restarts of the crash loop",
        Duration::from_secs(20),
        || ps(&env)["crash"]["RestartCount"].as_u64().unwrap() >= 4,
    );
    let before: HashMap<String, Option<i64>> = env
        .containers()
        .into_iter()
        .map(|(name, _, pid)| (name, pid))
        .collect();
    let old = supervisor_pid(&env);
    let count_before = ps(&env)["crash"]["RestartCount"].as_u64().unwrap();
    kill9(old);
    kill9(before["sv-adopt-once-1"].expect("once runs") as i32);
    std::thread::sleep(Duration::from_secs(2));
    // `ps` starts the new supervisor and shows what it adopted.
    let list = ps(&env);
    assert_ne!(supervisor_pid(&env), old);
    let after: HashMap<String, Option<i64>> = env
        .containers()
        .into_iter()
        .map(|(name, _, pid)| (name, pid))
        .collect();
    for i in 0..10 {
        let name = format!("sv-adopt-s{i}-1");
        assert!(before[&name].is_some());
        assert_eq!(before[&name], after[&name], "{name} was restarted");
        assert_eq!(list[&format!("s{i}")]["RestartCount"], 0);
    }
    // The crash loop goes on where it was: more restarts, longer waits.
    wait_until("two more restarts", Duration::from_secs(30), || {
        ps(&env)["crash"]["RestartCount"].as_u64().unwrap() >= count_before + 2
    });
    let journal = events(&env, since, unix_secs());
    let delays: Vec<u64> = of(&journal, "crash", "restarting")
        .iter()
        .map(|e| {
            e["Actor"]["Attributes"]["delayMs"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    // Docker's doubling, uninterrupted by the change of supervisor.
    let expected: Vec<u64> = (0..delays.len()).map(|i| 100 << i).collect();
    assert!(delays.len() >= 5, "{delays:?}");
    assert_eq!(delays, expected);
    // And each restart really waited its delay.
    let gaps = restart_gaps(&journal, "crash");
    for (gap, delay) in gaps.iter().zip(&delays) {
        assert!(*gap >= *delay as f64 - 5.0, "{gaps:?} {delays:?}");
    }

    // `once` ended unwatched: unknown exit, and on-failure restarted it.
    let inspect: Value = serde_json::from_str(&env.ok(&["inspect", "once"])).unwrap();
    let history = inspect[0]["RestartHistory"].as_array().unwrap();
    assert!(
        history.iter().any(|h| h["ExitUnknown"] == true),
        "{inspect:#}"
    );
    assert!(
        inspect[0]["RestartCount"].as_u64().unwrap() >= 1,
        "{inspect:#}"
    );
}

#[test]
fn an_unhealthy_container_is_restarted_when_opted_in_and_inspect_shows_why() {
    stack_testing::require_root!();
    let env = Env::new("sv-health", 73);
    let check = r#"
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ok"]
      interval: 200ms
      retries: 2
"#;
    // Healthy for a second, then unhealthy for good.
    let command = r#"["sh", "-c", "touch /tmp/ok; echo up; sleep 1; rm /tmp/ok; trap 'exit 0' TERM; while :; do sleep 0.1; done"]"#;
    env.write(&format!(
        "services:\n  opted:\n    image: busybox\n    command: {command}\n    stop_grace_period: 1s\n    x-stack:\n      restart_on_unhealthy: true{check}  plain:\n    image: busybox\n    command: {command}{check}"
    ));
    let since = unix_secs();
    env.ok(&["up", "-d"]);
    wait_until("a restart on unhealthy", Duration::from_secs(20), || {
        ps(&env)["opted"]["RestartCount"].as_u64().unwrap() >= 1
    });
    let list = ps(&env);
    assert_eq!(list["plain"]["RestartCount"], 0);
    assert_eq!(list["plain"]["Health"], "unhealthy", "{:?}", list["plain"]);
    assert!(
        list["plain"]["Status"]
            .as_str()
            .unwrap()
            .ends_with("(unhealthy)"),
        "{:?}",
        list["plain"]
    );
    let journal = events(&env, since, unix_secs());
    assert!(!of(&journal, "opted", "health_status: healthy").is_empty());
    assert!(!of(&journal, "opted", "health_status: unhealthy").is_empty());
    assert!(!of(&journal, "opted", "restart").is_empty());
    assert!(of(&journal, "plain", "restart").is_empty());

    let inspect: Value = serde_json::from_str(&env.ok(&["inspect", "plain"])).unwrap();
    let health = &inspect[0]["State"]["Health"];
    assert_eq!(health["Status"], "unhealthy", "{inspect:#}");
    let log = health["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5);
    assert_eq!(log.last().unwrap()["ExitCode"], 1);
    assert_eq!(inspect[0]["State"]["Running"], true);
    assert!(
        inspect[0]["NetworkSettings"]["Networks"]
            .as_object()
            .unwrap()
            .values()
            .any(|n| n["IPAddress"].as_str().unwrap().starts_with("10.220.73.")),
        "{inspect:#}"
    );

    // `stats` sees both running containers.
    let stats = json_lines(&env.ok(&["stats", "--no-stream", "--format", "json"]));
    assert_eq!(stats.len(), 2, "{stats:?}");
    for s in &stats {
        assert!(s["CPUPerc"].as_str().unwrap().ends_with('%'));
        assert!(s["MemUsage"].as_str().unwrap().contains(" / "));
        assert!(s["PIDs"].as_str().unwrap().parse::<u32>().unwrap() >= 1);
    }
}

#[test]
fn a_hundred_thousand_lines_are_all_kept_in_order_with_rotation() {
    stack_testing::require_root!();
    let env = Env::new("sv-logs", 74);
    env.write(
        r#"
services:
  chatty:
    image: busybox
    command: ["sh", "-c", "seq 1 100000"]
    logging:
      driver: json-file
      options: {max-size: 1m, max-file: "12"}
"#,
    );
    env.ok(&["up", "-d"]);
    let dir = env
        .root()
        .join("projects/sv-logs/containers/sv-logs-chatty-1");
    let mut text = String::new();
    // Read once it has all been written (a read during rotation may be
    // missing the file that was being renamed).
    wait_until("the container to end", Duration::from_secs(60), || {
        ps(&env)["chatty"]["State"] == "exited"
    });
    wait_until("the last line", Duration::from_secs(60), || {
        let out = env.stack(&[
            "logs",
            "--no-color",
            "--file",
            env.file().to_str().unwrap(),
            "-p",
            "sv-logs",
        ]);
        text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.ends_with("| 100000\n")
    });
    let numbers: Vec<u64> = text
        .lines()
        .map(|l| l.rsplit("| ").next().unwrap().parse().unwrap())
        .collect();
    let gaps: Vec<(usize, u64)> = numbers
        .iter()
        .enumerate()
        .filter(|(i, n)| *i > 0 && **n != numbers[i - 1] + 1)
        .map(|(i, n)| (i, *n))
        .take(5)
        .collect();
    assert_eq!(
        numbers.len(),
        100_000,
        "first {:?}, jumps {gaps:?}",
        &numbers[..3]
    );
    assert!(numbers.iter().enumerate().all(|(i, n)| *n == i as u64 + 1));
    // Rotation: no file over max-size, no more than max-file files.
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("container.log"))
        .collect();
    assert!(
        files.len() > 1 && files.len() <= 12,
        "{} files",
        files.len()
    );
    for f in &files {
        assert!(f.metadata().unwrap().len() <= 1 << 20);
    }
    let tail = env.ok(&["logs", "--no-color", "--tail", "2", "chatty"]);
    assert_eq!(tail, "chatty-1  | 99999\nchatty-1  | 100000\n");
}

#[test]
fn logs_follow_restarts_and_keep_flowing_while_the_supervisor_is_dead() {
    stack_testing::require_root!();
    let env = Env::new("sv-follow", 75);
    env.write(
        r#"
services:
  beat:
    image: busybox
    command: ["sh", "-c", "i=0; while :; do i=$$((i+1)); echo beat $$i; sleep 0.05; done"]
  short:
    image: busybox
    restart: always
    command: ["sh", "-c", "echo run; sleep 0.5; exit 1"]
"#,
    );
    env.ok(&["up", "-d"]);
    let file = env.file();
    let mut follower = Command::new(stack_bin())
        .arg("--root")
        .arg(env.root())
        .arg("--run-dir")
        .arg(env.run_dir())
        .args(["logs", "-f", "--no-color", "--file"])
        .arg(&file)
        .args(["-p", "sv-follow", "short"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let mut runs = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs < 3 && Instant::now() < deadline {
        if lines.next().unwrap().unwrap() == "short-1  | run" {
            runs += 1;
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(runs, 3, "logs -f saw every run");

    // The supervisor dies; `beat` keeps writing and its lines keep being
    // logged, because the pipes are held by the log keeper.
    let beats = |env: &Env| -> Vec<u64> {
        env.ok(&["logs", "--no-color", "beat"])
            .lines()
            .filter_map(|l| l.rsplit("beat ").next()?.parse().ok())
            .collect()
    };
    let pid_before = env
        .containers()
        .into_iter()
        .find(|c| c.0.contains("beat"))
        .unwrap()
        .2;
    kill9(supervisor_pid(&env));
    let at_kill = *beats(&env).last().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let later = beats(&env);
    assert!(
        *later.last().unwrap() >= at_kill + 10,
        "logs stopped while the supervisor was dead: {at_kill} then {}",
        later.last().unwrap()
    );
    assert!(
        !env.run_dir().join("supervisors/sv-follow.sock").exists()
            || UnixStream::connect(env.run_dir().join("supervisors/sv-follow.sock")).is_err(),
        "the supervisor is really gone"
    );
    // The new supervisor adopts it; the log has no gap.
    let list = ps(&env);
    assert_eq!(list["beat"]["State"], "running");
    let pid_after = env
        .containers()
        .into_iter()
        .find(|c| c.0.contains("beat"))
        .unwrap()
        .2;
    assert_eq!(pid_before, pid_after);
    let all = beats(&env);
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "a gap in the log");
}

/// CPU time (user + system, ticks) of a process and of the children it
/// reaped.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = after.split(' ').map(|f| f.parse().unwrap_or(0)).collect();
    // utime, stime, cutime, cstime: fields 14-17, here 11-14 from 0.
    fields[11] + fields[12] + fields[13] + fields[14]
}

fn keeper_pid(env: &Env) -> i32 {
    let path = env
        .run_dir()
        .join("supervisors")
        .join(format!("{}.logs.sock", env.project));
    let stream = UnixStream::connect(&path).unwrap();
    nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .unwrap()
        .pid()
}

#[test]
fn a_crash_loop_costs_the_host_almost_nothing() {
    stack_testing::require_root!();
    const WINDOW: Duration = Duration::from_secs(20);
    let env = Env::new("sv-cpu", 76);
    env.write(
        "services:\n  crash:\n    image: busybox\n    restart: always\n    command: [\"sh\", \"-c\", \"exit 1\"]\n",
    );
    env.ok(&["up", "-d"]);
    let supervisor = supervisor_pid(&env);
    let keeper = keeper_pid(&env);
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let before = cpu_ticks(supervisor) + cpu_ticks(keeper);
    let started = Instant::now();
    std::thread::sleep(WINDOW);
    let used = (cpu_ticks(supervisor) + cpu_ticks(keeper) - before) as f64 / hz;
    let share = used / started.elapsed().as_secs_f64();
    let restarts = ps(&env)["crash"]["RestartCount"].as_u64().unwrap();
    eprintln!(
        "crash loop: {restarts} restarts, {used:.3} s CPU in {:.1} s = {:.2} % of a core",
        started.elapsed().as_secs_f64(),
        share * 100.0
    );
    assert!(restarts >= 6, "{restarts}");
    assert!(share < 0.05, "{:.2} % of a core", share * 100.0);
}

#[test]
fn a_container_that_lost_its_bundle_is_dead_and_inspect_says_why() {
    stack_testing::require_root!();
    let env = Env::new("sv-dead", 77);
    env.write(
        "services:\n  c:\n    image: busybox\n    restart: always\n    command: [\"sh\", \"-c\", \"sleep 0.5; exit 1\"]\n",
    );
    env.ok(&["up", "-d"]);
    let config = env
        .root()
        .join("projects/sv-dead/containers/sv-dead-c-1/config.json");
    std::fs::remove_file(&config).unwrap();
    wait_until("the container to be dead", Duration::from_secs(20), || {
        ps(&env)["c"]["State"] == "dead"
    });
    assert_eq!(ps(&env)["c"]["Status"], "Dead");
    let inspect: Value = serde_json::from_str(&env.ok(&["inspect", "sv-dead-c-1"])).unwrap();
    let state = &inspect[0]["State"];
    assert_eq!(state["Dead"], true, "{inspect:#}");
    assert!(
        state["DeadReason"]
            .as_str()
            .unwrap()
            .contains("its bundle is gone"),
        "{inspect:#}"
    );
    assert!(state["Error"].as_str().unwrap().contains("config.json"));
    // Still taken away cleanly.
    env.ok(&["down"]);
    assert!(!env.root().join("projects/sv-dead").exists());
}
