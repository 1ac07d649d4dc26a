//! The lifecycle commands end to end, as root, with real containers from
//! the busybox fixture image: stop/start/restart keep what they must, kill
//! delivers its signal, pause freezes, exec and run run where they should
//! and return the exit code, rm only takes stopped containers, ls and graph
//! show the projects and the start order, `up --wait` names what fails.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Env;

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `ps -a --format json`: service → (state, status).
fn states(env: &Env) -> Vec<(String, String, String)> {
    env.ok(&["ps", "-a", "--format", "json"])
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["Name"].as_str().unwrap().to_owned(),
                v["State"].as_str().unwrap().to_owned(),
                v["Status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn state_of(env: &Env, name: &str) -> String {
    states(env)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, s, _)| s)
        .unwrap_or_else(|| "missing".into())
}

fn record(env: &Env, name: &str) -> serde_json::Value {
    let path = env
        .root()
        .join("projects")
        .join(&env.project)
        .join("containers")
        .join(name)
        .join("record.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `stack COMMAND --file stack.yaml -p PROJECT ARGS...` without asserting
/// success (the project options before a trailing command line).
fn stack(env: &Env, args: &[&str]) -> std::process::Output {
    let file = env.file();
    let mut all: Vec<&str> = vec![
        args[0],
        "--file",
        file.to_str().unwrap(),
        "-p",
        &env.project,
    ];
    all.extend(&args[1..]);
    env.stack(&all)
}

#[test]
fn stop_start_keep_id_and_volume_restart_keeps_the_address() {
    stack_testing::require_root!();
    let env = Env::new("lc-stop", 20);
    env.write(
        r#"
services:
  web:
    image: busybox
    command: ["sh", "-c", "ip -4 -o addr show eth0 | awk '{print $$4}' >> /data/ips; echo $$$$ >> /data/pids; trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    volumes: ["data:/data"]
  stubborn:
    image: busybox
    command: ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]
    restart: unless-stopped
  flaky:
    image: busybox
    command: ["sh", "-c", "exit 1"]
    restart: on-failure:2
volumes:
  data: {}
"#,
    );
    env.ok(&["up", "-d"]);
    let data = env.root().join("volumes/lc-stop_data/_data");
    wait_for("the first start", || {
        read(&data.join("ips")).lines().count() == 1
    });
    let id = record(&env, "lc-stop-web-1")["id"].clone();

    env.ok(&["stop", "web"]);
    assert_eq!(state_of(&env, "lc-stop-web-1"), "exited");
    assert_eq!(state_of(&env, "lc-stop-stubborn-1"), "running");
    assert_eq!(record(&env, "lc-stop-web-1")["stopped_by_user"], true);

    env.ok(&["start", "web"]);
    wait_for("the second start", || {
        read(&data.join("ips")).lines().count() == 2
    });
    assert_eq!(state_of(&env, "lc-stop-web-1"), "running");
    assert_eq!(
        record(&env, "lc-stop-web-1")["id"],
        id,
        "start keeps the container"
    );
    assert_eq!(record(&env, "lc-stop-web-1")["stopped_by_user"], false);

    let pid_before = record(&env, "lc-stop-web-1")["pid"].clone();
    env.ok(&["restart", "web"]);
    wait_for("the restart", || {
        read(&data.join("ips")).lines().count() == 3
    });
    let after = record(&env, "lc-stop-web-1");
    assert_ne!(after["pid"], pid_before, "restart runs a new process");
    assert_eq!(after["id"], id);
    // Only the policy's restarts count, as in Docker.
    let restarts = |name: &str| -> u64 {
        env.ok(&["ps", "-a", "--format", "json"])
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["Name"] == name)
            .and_then(|v| v["RestartCount"].as_u64())
            .unwrap()
    };
    assert_eq!(restarts("lc-stop-web-1"), 0);
    wait_for("on-failure:2 to give up", || {
        restarts("lc-stop-flaky-1") == 2 && state_of(&env, "lc-stop-flaky-1") == "exited"
    });
    let ips: Vec<String> = read(&data.join("ips")).lines().map(str::to_owned).collect();
    assert!(ips[0].starts_with("10.220.20."), "{ips:?}");
    assert!(
        ips.iter().all(|ip| *ip == ips[0]),
        "address changed: {ips:?}"
    );

    // A program that ignores SIGTERM: `stop -t 1` kills it after a second,
    // not after the default ten, and unless-stopped leaves it down.
    let started = Instant::now();
    env.ok(&["stop", "-t", "1", "stubborn"]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(state_of(&env, "lc-stop-stubborn-1"), "exited");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(state_of(&env, "lc-stop-stubborn-1"), "exited");

    // `down -t 1` likewise does not wait ten seconds for it.
    env.ok(&["start", "stubborn"]);
    let started = Instant::now();
    env.ok(&["down", "-t", "1"]);
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[test]
fn kill_delivers_the_signal_and_counts_as_a_user_stop() {
    stack_testing::require_root!();
    let env = Env::new("lc-kill", 21);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    env.write(&format!(
        r#"
services:
  app:
    image: busybox
    command: ["sh", "-c", "trap 'echo got USR1 > /out/usr1' USR1; touch /out/ready; while :; do sleep 0.1; done"]
    volumes: ["{}:/out"]
    restart: always
"#,
        out.display()
    ));
    env.ok(&["up", "-d"]);
    wait_for("the trap", || out.join("ready").exists());
    env.ok(&["kill", "-s", "USR1", "app"]);
    wait_for("the signal", || {
        read(&out.join("usr1")).contains("got USR1")
    });
    assert_eq!(state_of(&env, "lc-kill-app-1"), "running");

    env.ok(&["kill", "app"]);
    wait_for("the kill", || state_of(&env, "lc-kill-app-1") == "exited");
    // restart: always, but the user killed it: it stays down.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(state_of(&env, "lc-kill-app-1"), "exited");
    assert_eq!(record(&env, "lc-kill-app-1")["last_exit"]["code"], 137);
    // `up` brings it back and forgets the kill.
    env.ok(&["up", "-d"]);
    assert_eq!(state_of(&env, "lc-kill-app-1"), "running");
    assert_eq!(record(&env, "lc-kill-app-1")["stopped_by_user"], false);

    let bad = stack(&env, &["kill", "-s", "NOPE"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("NOPE"));
}

#[test]
fn pause_stops_progress_and_unpause_resumes() {
    stack_testing::require_root!();
    let env = Env::new("lc-pause", 22);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    env.write(&format!(
        r#"
services:
  counter:
    image: busybox
    command: ["sh", "-c", "i=0; while :; do i=$$((i+1)); echo $$i > /out/n; sleep 0.05; done"]
    volumes: ["{}:/out"]
"#,
        out.display()
    ));
    env.ok(&["up", "-d"]);
    let n = || read(&out.join("n")).trim().parse::<u64>().unwrap_or(0);
    wait_for("counting", || n() > 2);
    env.ok(&["pause"]);
    assert_eq!(state_of(&env, "lc-pause-counter-1"), "paused");
    let frozen = n();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(n(), frozen, "a paused container made progress");
    env.ok(&["unpause", "counter"]);
    wait_for("progress after unpause", || n() > frozen + 2);
    assert_eq!(state_of(&env, "lc-pause-counter-1"), "running");
    // A paused container still stops.
    env.ok(&["pause"]);
    env.ok(&["stop", "-t", "2"]);
    assert_eq!(state_of(&env, "lc-pause-counter-1"), "exited");
}

#[test]
fn exec_sees_env_and_cwd_and_returns_the_exit_code_top_and_images_list() {
    stack_testing::require_root!();
    let env = Env::new("lc-exec", 23);
    env.write(
        r#"
services:
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    environment:
      FOO: from-file
    working_dir: /etc
"#,
    );
    env.ok(&["up", "-d"]);
    let out = stack(
        &env,
        &[
            "exec",
            "-T",
            "-e",
            "BAR=given",
            "web",
            "sh",
            "-c",
            "echo $FOO $BAR; pwd; id -u; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from-file given\n/etc\n0\n"
    );

    let out = stack(
        &env,
        &[
            "exec",
            "-T",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "web",
            "sh",
            "-c",
            "pwd; id -un",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/tmp\nnobody\n");

    // The exec'd process lives in the container: its pid namespace.
    let out = stack(
        &env,
        &[
            "exec",
            "-T",
            "web",
            "sh",
            "-c",
            "echo $$$$ > /dev/null; cat /proc/1/cmdline | tr '\\0' ' '",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("sh -c trap"),
        "{out:?}"
    );

    // In the container's cgroup namespace (its cgroup is its root) ...
    let out = stack(&env, &["exec", "-T", "web", "cat", "/proc/self/cgroup"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().all(|l| l.ends_with(":/")), "{text}");

    // -d: in the background, the command returns at once.
    let started = Instant::now();
    let out = stack(
        &env,
        &["exec", "-d", "web", "sh", "-c", "sleep 2; touch /tmp/later"],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // ... and in its cgroup, where `top` finds it.
    let top = env.ok(&["top", "web"]);
    assert!(top.contains("sleep 2"), "{top}");
    wait_for("the detached exec", || {
        stack(&env, &["exec", "-T", "web", "test", "-f", "/tmp/later"])
            .status
            .success()
    });

    let missing = stack(&env, &["exec", "-T", "nope", "true"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"));

    let top = env.ok(&["top"]);
    assert!(top.contains("lc-exec-web-1"), "{top}");
    assert!(top.contains("UID") && top.contains("CMD"), "{top}");
    assert!(top.contains("sh -c trap"), "{top}");

    let images = env.ok(&["images", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(images.lines().next().unwrap()).unwrap();
    assert_eq!(list[0]["ContainerName"], "lc-exec-web-1");
    assert_eq!(list[0]["Repository"], "busybox");
    assert_eq!(list[0]["Tag"], "latest");
    assert!(list[0]["ID"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn run_rm_starts_the_dependency_first_prints_and_leaves_no_container() {
    stack_testing::require_root!();
    let env = Env::new("lc-run", 24);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    env.write(&format!(
        r#"
services:
  db:
    image: busybox
    command: ["sh", "-c", "touch /out/db.started; trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    volumes: ["{o}:/out"]
  app:
    image: busybox
    command: ["sh", "-c", "echo the service's own command"]
    volumes: ["{o}:/out"]
    environment:
      WHO: app
    depends_on: [db]
"#,
        o = out.display()
    ));
    let run = stack(
        &env,
        &[
            "run",
            "--rm",
            "-T",
            "-e",
            "EXTRA=1",
            "app",
            "sh",
            "-c",
            "echo hello $WHO $EXTRA; ls /out; exit 7",
        ],
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(7), "{run:?}");
    assert!(stdout.contains("hello app 1"), "{stdout}");
    assert!(
        stdout.contains("db.started"),
        "the dependency did not run first: {stdout}"
    );
    assert_eq!(state_of(&env, "lc-run-db-1"), "running");
    let names: Vec<String> = env.containers().into_iter().map(|c| c.0).collect();
    assert_eq!(
        names,
        ["lc-run-db-1"],
        "the service itself is not started by run"
    );

    let run = stack(
        &env,
        &[
            "run",
            "--rm",
            "-T",
            "--no-deps",
            "-w",
            "/out",
            "--entrypoint",
            "sh -c",
            "app",
            "echo via $(pwd)",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "via /out\n",
        "{run:?}"
    );

    // Without --rm it stays, named <project>-<service>-run-<id>, exited.
    let run = stack(&env, &["run", "-T", "--no-deps", "app", "true"]);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let kept: Vec<String> = env
        .containers()
        .into_iter()
        .map(|c| c.0)
        .filter(|n| n.starts_with("lc-run-app-run-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].len(), "lc-run-app-run-".len() + 12);
    assert_eq!(state_of(&env, &kept[0]), "exited");
    // -d prints the name it was given; with --rm it goes once it exits.
    let run = stack(
        &env,
        &[
            "run",
            "-d",
            "--rm",
            "--no-deps",
            "--name",
            "lc-run-custom",
            "app",
            "sleep",
            "0.5",
        ],
    );
    assert!(run.status.success(), "{run:?}");
    assert_eq!(String::from_utf8_lossy(&run.stdout), "lc-run-custom\n");
    assert_eq!(state_of(&env, "lc-run-custom"), "running");
    wait_for("the detached run to go", || {
        state_of(&env, "lc-run-custom") == "missing"
    });

    // `down` takes one-off containers too.
    env.ok(&["down"]);
    assert!(env.containers().is_empty());
}

#[test]
fn rm_removes_only_stopped_containers() {
    stack_testing::require_root!();
    let env = Env::new("lc-rm", 25);
    let loop_ = r#"["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]"#;
    env.write(&format!(
        "services:\n  a:\n    image: busybox\n    command: {loop_}\n  b:\n    image: busybox\n    command: {loop_}\n"
    ));
    env.ok(&["up", "-d"]);
    env.ok(&["stop", "a"]);
    let out = env.ok(&["rm", "-f"]);
    assert!(out.contains(" Container lc-rm-a-1 Removed\n"), "{out}");
    let names: Vec<String> = env.containers().into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["lc-rm-b-1"]);
    assert_eq!(state_of(&env, "lc-rm-b-1"), "running");
    // -s stops first.
    env.ok(&["rm", "-f", "-s", "b"]);
    assert!(env.containers().is_empty());
}

#[test]
fn ls_lists_two_projects() {
    stack_testing::require_root!();
    let mut env = Env::new("lc-ls-a", 26);
    env.pool = "10.220.26.0/24,10.220.27.0/24".into();
    env.write(
        "services:\n  a:\n    image: busybox\n    command: [sh, -c, \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]\n  b:\n    image: busybox\n    command: [sh, -c, \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]\n",
    );
    struct Second<'a>(&'a Env);
    impl Drop for Second<'_> {
        fn drop(&mut self) {
            let file = self.0.file();
            let _ = self
                .0
                .stack(&["down", "-f", file.to_str().unwrap(), "-p", "lc-ls-b"]);
        }
    }
    let file = env.file();
    let file = file.to_str().unwrap();
    env.ok(&["up", "-d"]);
    let _second = Second(&env);
    let up = env.stack(&["up", "-d", "-f", file, "-p", "lc-ls-b", "a"]);
    assert!(up.status.success(), "{up:?}");
    env.ok(&["stop", "b"]);

    let json = env.stack(&["ls", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let got: Vec<(String, String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["Name"].as_str().unwrap().to_owned(),
                p["Status"].as_str().unwrap().to_owned(),
                p["ConfigFiles"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "lc-ls-a".into(),
                "exited(1), running(1)".into(),
                file.into()
            ),
            ("lc-ls-b".into(), "running(1)".into(), file.into()),
        ]
    );
    let table = String::from_utf8_lossy(&env.stack(&["ls"]).stdout).into_owned();
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("lc-ls-b") && table.contains("running(1)"),
        "{table}"
    );

    // A project with nothing running shows with -a only.
    let stop = env.stack(&["stop", "-f", file, "-p", "lc-ls-b"]);
    assert!(stop.status.success(), "{stop:?}");
    let names = String::from_utf8_lossy(&env.stack(&["ls", "-q"]).stdout).into_owned();
    assert_eq!(names, "lc-ls-a\n");
    let all = String::from_utf8_lossy(&env.stack(&["ls", "-a"]).stdout).into_owned();
    assert!(
        all.contains("lc-ls-b") && all.contains("exited(1)"),
        "{all}"
    );
}

#[test]
fn graph_text_shows_the_start_levels() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stack.yaml");
    std::fs::write(
        &file,
        "name: lc-graph
services:
  api:
    image: busybox
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  migrate:
    image: busybox
    depends_on:
      db: {condition: service_healthy}
  db:
    image: busybox
",
    )
    .unwrap();
    let out = std::process::Command::new(common::stack_bin())
        .args(["graph", "-f", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "level 1:
  db
level 2:
  migrate (after db healthy)
level 3:
  api (after db healthy, migrate completed successfully)
"
    );
    let dot = std::process::Command::new(common::stack_bin())
        .args(["graph", "--format", "dot", "-f", file.to_str().unwrap()])
        .output()
        .unwrap();
    let dot = String::from_utf8_lossy(&dot.stdout);
    assert!(dot.starts_with("digraph \"lc-graph\" {"), "{dot}");
    assert!(
        dot.contains("\"api\" -> \"migrate\" [label=\"completed successfully\"];"),
        "{dot}"
    );
}

#[test]
fn up_wait_returns_when_ready_and_names_an_unhealthy_service() {
    stack_testing::require_root!();
    let env = Env::new("lc-wait", 28);
    let good = r#"
services:
  web:
    image: busybox
    command: ["sh", "-c", "sleep 0.3; touch /tmp/ok; trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ok"]
      interval: 5s
      start_interval: 100ms
      start_period: 20s
  job:
    image: busybox
    command: ["true"]
"#;
    env.write(good);
    env.ok(&["up", "--wait"]);
    let s = states(&env);
    assert!(
        s.contains(&("lc-wait-web-1".into(), "running".into(), s[1].2.clone())),
        "{s:?}"
    );

    env.write(&format!(
        "{good}  bad:
    image: busybox
    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]
    healthcheck:
      test: [\"CMD\", \"false\"]
      interval: 100ms
      retries: 2
"
    ));
    let out = stack(&env, &["up", "--wait", "--wait-timeout", "30"]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("service bad is unhealthy"), "{stderr}");

    // A timeout names what it waited for.
    env.write(
        &good
            .replace("sleep 0.3", "sleep 30")
            .replace("command: [\"true\"]", "command: [\"sleep\", \"30\"]"),
    );
    let out = stack(
        &env,
        &[
            "up",
            "--wait",
            "--wait-timeout",
            "1",
            "--force-recreate",
            "web",
        ],
    );
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("timed out after 1 s waiting for web"),
        "{stderr}"
    );
}

#[test]
fn up_named_services_brings_their_dependencies_only_and_no_deps_none() {
    stack_testing::require_root!();
    let env = Env::new("lc-sel", 29);
    let loop_ = r#"["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]"#;
    env.write(&format!(
        "services:
  db:
    image: busybox
    command: {loop_}
  api:
    image: busybox
    command: {loop_}
    depends_on: [db]
  worker:
    image: busybox
    command: {loop_}
    depends_on: [db]
"
    ));
    env.ok(&["up", "-d", "api"]);
    let names: Vec<String> = env.containers().into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["lc-sel-api-1", "lc-sel-db-1"]);
    env.ok(&["stop", "db"]);
    env.ok(&["up", "-d", "--no-deps", "worker"]);
    assert_eq!(state_of(&env, "lc-sel-worker-1"), "running");
    assert_eq!(state_of(&env, "lc-sel-db-1"), "exited");
    let bad = stack(&env, &["up", "-d", "nope"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no such service: nope"));
}

/// Runs `stack COMMAND --file F -p P ARGS...` with a pseudo-terminal as its
/// stdin and stdout (util-linux `script`), as at an interactive shell.
fn in_terminal(env: &Env, args: &[&str]) -> std::process::Output {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let file = env.file();
    let mut words = vec![
        common::stack_bin().to_owned(),
        "--root".into(),
        env.root().display().to_string(),
        "--run-dir".into(),
        env.run_dir().display().to_string(),
        args[0].to_owned(),
        "--file".into(),
        file.display().to_string(),
        "-p".into(),
        env.project.clone(),
    ];
    words.extend(args[1..].iter().map(|s| s.to_string()));
    let line: Vec<String> = words.iter().map(|w| quote(w)).collect();
    std::process::Command::new("script")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .env("STACK_SUBNET_POOL", &env.pool)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn exec_and_run_get_a_terminal_when_stdin_is_one() {
    stack_testing::require_root!();
    let env = Env::new("lc-tty", 30);
    env.write(
        r#"
services:
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
"#,
    );
    env.ok(&["up", "-d"]);
    let out = in_terminal(&env, &["exec", "web", "sh", "-c", "tty; exit 4"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{out:?}");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    // The terminal has a size (this one has none: 24x80).
    let out = in_terminal(&env, &["exec", "web", "stty", "size"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("24 80"),
        "{out:?}"
    );
    // -T: no terminal even so.
    let out = in_terminal(&env, &["exec", "-T", "web", "sh", "-c", "tty || true"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not a tty"),
        "{out:?}"
    );

    let out = in_terminal(&env, &["run", "--rm", "web", "sh", "-c", "tty; exit 5"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{out:?}");
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let names: Vec<String> = env.containers().into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["lc-tty-web-1"]);
}

#[test]
fn a_user_stop_outlives_the_supervisor_as_docker_policies_say() {
    stack_testing::require_root!();
    let env = Env::new("lc-boot", 31);
    let loop_ = r#"["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]"#;
    env.write(&format!(
        "services:
  keep:
    image: busybox
    command: {loop_}
    restart: unless-stopped
  back:
    image: busybox
    command: {loop_}
    restart: always
"
    ));
    env.ok(&["up", "-d"]);
    env.ok(&["stop"]);
    assert_eq!(state_of(&env, "lc-boot-keep-1"), "exited");
    assert_eq!(state_of(&env, "lc-boot-back-1"), "exited");

    // The supervisor dies; the next command starts another, which adopts
    // the project: `always` comes back even after a user stop,
    // `unless-stopped` does not.
    let lock = read(&env.run_dir().join("locks/lc-boot.lock"));
    let holder: serde_json::Value = serde_json::from_str(&lock).unwrap();
    let pid = nix::unistd::Pid::from_raw(holder["pid"].as_i64().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_for("the supervisor to die", || {
        read(Path::new(&format!("/proc/{pid}/stat")))
            .split(") ")
            .nth(1)
            .is_none_or(|s| s.starts_with('Z'))
    });
    env.ok(&["unpause"]);
    assert_eq!(state_of(&env, "lc-boot-back-1"), "running");
    assert_eq!(state_of(&env, "lc-boot-keep-1"), "exited");
    env.ok(&["start"]);
    assert_eq!(state_of(&env, "lc-boot-keep-1"), "running");
    // `up` starting a stopped container forgets the user's stop too.
    env.ok(&["stop", "keep"]);
    assert_eq!(record(&env, "lc-boot-keep-1")["stopped_by_user"], true);
    env.ok(&["up", "-d"]);
    assert_eq!(state_of(&env, "lc-boot-keep-1"), "running");
    assert_eq!(record(&env, "lc-boot-keep-1")["stopped_by_user"], false);
}

#[test]
fn a_run_whose_caller_goes_away_is_stopped_and_removed() {
    stack_testing::require_root!();
    let env = Env::new("lc-gone", 32);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    env.write(&format!(
        r#"
services:
  app:
    image: busybox
    volumes: ["{}:/out"]
    stop_grace_period: 1s
"#,
        out.display()
    ));
    let file = env.file();
    let mut child = std::process::Command::new(common::stack_bin())
        .arg("--root")
        .arg(env.root())
        .arg("--run-dir")
        .arg(env.run_dir())
        .args([
            "run",
            "--rm",
            "-T",
            "--file",
            file.to_str().unwrap(),
            "-p",
            "lc-gone",
        ])
        .args(["app", "sh", "-c", "touch /out/started; sleep 30"])
        .env("STACK_SUBNET_POOL", &env.pool)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the run to start", || out.join("started").exists());
    assert_eq!(env.containers().len(), 1);
    // As Ctrl-C would: the client dies.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    child.wait().unwrap();
    wait_for("the one-off container to go", || {
        env.containers().is_empty()
    });
}
