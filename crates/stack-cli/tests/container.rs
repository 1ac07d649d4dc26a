//! `stack container ...` end to end, as root, with real containers from the
//! busybox fixture image: a pull from a real registry then `run`, the flags
//! seen from inside, exit codes, detached containers with logs, stop, pause
//! and exec, published ports, restart policies and health checks, the
//! supervisor's return, and nothing left behind after `rm`.
//!
//! Each test has its own root, run directory and /24 of 10.221.0.0/16.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::registry::Registry;
use common::{busybox_archive, stack_bin};

/// A root of our own, cleaned up on drop (also when the test panics): every
/// container force-removed, the default bridge and its rules deleted,
/// leftover mounts detached.
struct Ctr {
    dir: tempfile::TempDir,
    pool: String,
}

impl Ctr {
    /// A fresh root whose default bridge takes `10.221.<subnet>.0/24`.
    fn new(subnet: u8) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stack-ctr-")
            .tempdir()
            .unwrap();
        Self {
            dir,
            pool: format!("10.221.{subnet}.0/24"),
        }
    }

    /// Same, with the busybox fixture loaded as `busybox:latest`.
    fn with_busybox(subnet: u8) -> Self {
        let ctr = Self::new(subnet);
        ctr.ok(&["image", "load", "-i", busybox_archive().to_str().unwrap()]);
        ctr
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(stack_bin());
        c.arg("--root")
            .arg(self.root())
            .arg("--run-dir")
            .arg(self.run_dir())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("STACK_ROOT")
            .env_remove("STACK_RUN")
            .env("STACK_SUBNET_POOL", &self.pool);
        c
    }

    fn stack(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs `stack ARGS`, asserts success, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.stack(args);
        assert!(
            out.status.success(),
            "stack {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `stack container ARGS`, asserting success.
    fn ctr(&self, args: &[&str]) -> String {
        let mut all = vec!["container"];
        all.extend(args);
        self.ok(&all)
    }

    fn inspect(&self, name: &str) -> serde_json::Value {
        let text = self.ctr(&["inspect", name]);
        let list: serde_json::Value = serde_json::from_str(&text).unwrap();
        list[0].clone()
    }

    /// The networking project and tag of this root's default bridge.
    fn net_tag(&self) -> Option<String> {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.root().join("net/state.json")).ok()?)
                .ok()?;
        state["projects"]
            .as_object()?
            .iter()
            .find(|(k, _)| k.starts_with("_ctr-"))
            .and_then(|(_, p)| p["tag"].as_str().map(str::to_owned))
    }

    /// Ids of the containers whose addresses the network state keeps for
    /// their return.
    fn kept_addresses(&self) -> Vec<String> {
        std::fs::read(self.root().join("net/state.json"))
            .ok()
            .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
            .and_then(|s| {
                s["previous"]
                    .as_object()
                    .map(|p| p.keys().cloned().collect())
            })
            .unwrap_or_default()
    }

    /// Asserts that nothing of the container whose id starts with `id` (the
    /// full id or the 12-digit short one) is left: record, runtime state,
    /// overlay mount, cgroup, network namespace, veth.
    fn assert_gone(&self, id: &str) {
        assert!(id.len() == 64 || id.len() == 12, "{id}");
        let starts = |dir: PathBuf| -> Vec<String> {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(id))
                .collect()
        };
        let listed = self.stack(&["container", "ls", "-aq"]);
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(
            !listed.lines().any(|l| id.starts_with(l.trim())),
            "{id} is still listed: {listed}"
        );
        for dir in ["runtime", "images/rootfs"] {
            let left = starts(self.root().join(dir));
            assert!(left.is_empty(), "{dir}: {left:?} is left");
        }
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        assert!(
            !mounts.lines().any(|l| l.contains(id)),
            "a mount of {id} is left"
        );
        for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let left = starts(entry.path().join("stack/containers"));
            assert!(
                left.is_empty(),
                "cgroup {:?}: {left:?} is left",
                entry.path()
            );
        }
        let netns: Vec<String> = std::fs::read_dir(self.run_dir().join("netns"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !netns.iter().any(|n| n.contains(id.get(..32).unwrap_or(id))),
            "netns left: {netns:?}"
        );
        let kept = self.kept_addresses();
        assert!(
            !kept.iter().any(|k| k.starts_with(id)),
            "addresses kept: {kept:?}"
        );
        if let Some(tag) = self.net_tag() {
            let links = Command::new("ip").args(["-br", "link"]).output().unwrap();
            let links = String::from_utf8_lossy(&links.stdout);
            let veths: Vec<&str> = links
                .lines()
                .filter(|l| l.starts_with(&format!("stk-{tag}v")))
                .collect();
            assert!(veths.is_empty(), "veths left: {veths:?}");
        }
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let ids = self.stack(&["container", "ls", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.stack(&["container", "rm", "-f", id]);
        }
        // The default bridge goes with its last container; a test that
        // failed half-way may still have one, which goes with the test.
        let root = self.root();
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            let manager = stack_net::NetworkManager::new(
                &root,
                &self.run_dir(),
                stack_net::NetOptions::default(),
            );
            if let Ok(text) = std::fs::read(root.join("net/state.json"))
                && let Ok(state) = serde_json::from_slice::<serde_json::Value>(&text)
                && let Some(projects) = state["projects"].as_object()
            {
                for project in projects.keys() {
                    let _ = rt.block_on(manager.cleanup_project(project));
                }
            }
        }
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            for line in mounts.lines() {
                if let Some(target) = line.split(' ').nth(1)
                    && target.starts_with(root.to_str().unwrap())
                {
                    let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `f` until it is true or `secs` pass.
fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn pull_then_run_prints_hi_and_leaves_nothing() {
    stack_testing::require_root!();
    let registry = Registry::start();
    registry.push(&busybox_archive(), "busybox:latest");
    registry.push(&busybox_archive(), "other:1");
    let ctr = Ctr::new(1);
    let image = format!("{}/busybox:latest", registry.host());
    ctr.ok(&["image", "pull", "-q", &image]);
    let again: serde_json::Value =
        serde_json::from_str(&ctr.ok(&["image", "pull", "--format", "json", &image])).unwrap();
    assert_eq!(again["blobs_fetched"], 0, "{again}");

    let short = format!("{}/busybox", registry.host());
    let out = ctr.ctr(&["run", "--rm", &short, "echo", "hi"]);
    assert_eq!(out, "hi\n");
    // An image the store lacks is pulled first.
    let other = format!("{}/other:1", registry.host());
    let out = ctr.stack(&["container", "run", "--rm", &other, "echo", "pulled"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pulled\n");
    assert!(
        text(&out).contains("Unable to find image"),
        "{}",
        text(&out)
    );

    assert_eq!(ctr.ctr(&["ls", "-aq"]), "");
    // The last container takes its project (store, supervisor) with it,
    // once its supervisor has seen it go.
    eventually(10, "the single-container project to go", || {
        std::fs::read_dir(ctr.root().join("projects"))
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    });
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(ctr.root().join("images/rootfs").to_str().unwrap()));
}

#[test]
fn removed_containers_leave_no_kept_address() {
    stack_testing::require_root!();
    let mut ctr = Ctr::with_busybox(0);
    ctr.pool = "10.222.1.0/24".into();
    for _ in 0..2 {
        ctr.ctr(&["run", "--rm", "busybox", "true"]);
    }
    assert_eq!(ctr.kept_addresses(), Vec::<String>::new());
    let id = ctr.ctr(&["run", "-d", "busybox", "sleep", "60"]);
    let id = id.trim();
    ctr.ctr(&["stop", "-t", "0", id]);
    let tag = ctr.net_tag().expect("the default bridge exists");
    ctr.ctr(&["rm", id]);
    ctr.assert_gone(id);
    assert_eq!(ctr.kept_addresses(), Vec::<String>::new());
    // The last container took the default bridge and its project with it.
    assert_eq!(ctr.net_tag(), None);
    let links = Command::new("ip").args(["-br", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.lines().any(|l| l.starts_with(&format!("stk-{tag}"))),
        "{links}"
    );
}

#[test]
fn kill_returns_once_the_exit_is_recorded() {
    stack_testing::require_root!();
    let mut ctr = Ctr::with_busybox(0);
    ctr.pool = "10.222.3.0/24".into();
    for _ in 0..3 {
        let id = ctr.ctr(&["run", "-d", "busybox", "sleep", "60"]);
        let id = id.trim();
        ctr.ctr(&["kill", id]);
        let state = &ctr.inspect(id)["State"];
        assert_eq!(state["Status"], "exited", "{state}");
        assert_eq!(state["ExitCode"], 137, "{state}");
        let ls = ctr.ctr(&["ls", "-a"]);
        assert!(ls.contains("Exited (137)"), "{ls}");
        // No -f needed right after a kill.
        ctr.ctr(&["rm", id]);
        ctr.assert_gone(id);
    }
}

#[test]
fn exit_codes_and_private_writes() {
    stack_testing::require_root!();
    let ctr = Ctr::with_busybox(2);
    let out = ctr.stack(&["container", "run", "--rm", "busybox", "sh", "-c", "exit 42"]);
    assert_eq!(out.status.code(), Some(42), "{}", text(&out));
    // Docker's status for a program that is not there.
    let out = ctr.stack(&["container", "run", "--rm", "busybox", "no-such-program"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
    assert!(text(&out).contains("not found"), "{}", text(&out));

    ctr.ctr(&[
        "run",
        "--name",
        "ctr-writer",
        "busybox",
        "sh",
        "-c",
        "echo mine > /etc/written",
    ]);
    let out = ctr.stack(&[
        "container",
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "test ! -e /etc/written",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the write leaked: {}",
        text(&out)
    );
    let writer = ctr.inspect("ctr-writer");
    assert_eq!(writer["State"]["Status"], "exited");
    assert_eq!(writer["State"]["ExitCode"], 0);
    let upper = ctr
        .root()
        .join("images/rootfs")
        .join(writer["Id"].as_str().unwrap())
        .join("upper/etc/written");
    assert_eq!(std::fs::read_to_string(upper).unwrap(), "mine\n");

    // The foreground run is the container's parent: a kill from elsewhere
    // ends it with 128 + signal, and a signal to `stack` reaches the program.
    let child = ctr
        .command(&[
            "container",
            "run",
            "--name",
            "ctr-fg",
            "busybox",
            "sleep",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(20, "ctr-fg to run", || {
        ctr.ctr(&["ls", "--format", "json"]).contains("ctr-fg")
    });
    ctr.ctr(&["kill", "ctr-fg"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137), "{}", text(&out));
    assert_eq!(ctr.inspect("ctr-fg")["State"]["ExitCode"], 137);

    let child = ctr
        .command(&[
            "container",
            "run",
            "--rm",
            "--name",
            "ctr-int",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 9' INT; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(20, "ctr-int to run", || {
        ctr.ctr(&["ls", "--format", "json"]).contains("ctr-int")
    });
    // The trap is set by the first line of the script.
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(9), "{}", text(&out));

    let id = writer["Id"].as_str().unwrap().to_owned();
    let fg = ctr.inspect("ctr-fg")["Id"].as_str().unwrap().to_owned();
    ctr.ctr(&["rm", "ctr-writer", "ctr-fg"]);
    ctr.assert_gone(&id);
    ctr.assert_gone(&fg);
}

#[test]
fn flags_are_visible_inside() {
    stack_testing::require_root!();
    let ctr = Ctr::with_busybox(3);
    let script = "echo FOO=$FOO; id -u; id -g; hostname; \
        touch /probe 2>/dev/null && echo writable || echo read-only; \
        cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null \
          || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; \
        grep CapBnd /proc/self/status";
    let out = ctr.ctr(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-u",
        "1000:1000",
        "--hostname",
        "ctr-host",
        "--read-only",
        "--memory",
        "64m",
        "--pids-limit",
        "33",
        "--cap-drop",
        "NET_RAW",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..7],
        [
            "FOO=bar",
            "1000",
            "1000",
            "ctr-host",
            "read-only",
            "67108864",
            "33"
        ],
        "{out}"
    );
    let bounding = u64::from_str_radix(lines[7].split_whitespace().nth(1).unwrap(), 16).unwrap();
    const NET_RAW: u64 = 1 << 13;
    const CHOWN: u64 = 1;
    assert_eq!(bounding & NET_RAW, 0, "{out}");
    assert_ne!(bounding & CHOWN, 0, "{out}");

    // Root keeps Docker's default set in its effective capabilities.
    let out = ctr.ctr(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(out.contains("00000000a80425fb"), "{out}");
    // Bad input is named before anything is made.
    let out = ctr.stack(&["container", "run", "--cap-add", "FLY", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out).contains("FLY"), "{}", text(&out));
    let out = ctr.stack(&["container", "run", "--memory", "lots", "busybox", "true"]);
    assert!(text(&out).contains("--memory"), "{}", text(&out));
    assert_eq!(ctr.ctr(&["ls", "-aq"]), "");
}

#[test]
fn bind_mounts_read_write_and_read_only() {
    stack_testing::require_root!();
    let ctr = Ctr::with_busybox(4);
    let rw = ctr.dir.path().join("rw");
    let ro = ctr.dir.path().join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(ro.join("given"), "from host\n").unwrap();
    let out = ctr.ctr(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/rw", rw.display()),
        "-v",
        &format!("{}:/ro:ro", ro.display()),
        "busybox",
        "sh",
        "-c",
        "echo from container > /rw/made; cat /ro/given; touch /ro/nope 2>/dev/null && echo wrote || echo refused",
    ]);
    assert_eq!(out, "from host\nrefused\n");
    assert_eq!(
        std::fs::read_to_string(rw.join("made")).unwrap(),
        "from container\n"
    );
    assert!(!ro.join("nope").exists());
}

#[test]
fn detached_logs_stop_and_rm() {
    stack_testing::require_root!();
    let ctr = Ctr::with_busybox(5);
    let id = ctr
        .ctr(&[
            "run",
            "-d",
            "--name",
            "ctr-logs",
            "busybox",
            "sh",
            "-c",
            "trap 'echo bye; exit 3' TERM; echo one; echo two >&2; while :; do sleep 0.05; done",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    // Names are unique.
    let out = ctr.stack(&[
        "container",
        "run",
        "-d",
        "--name",
        "ctr-logs",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("already in use"), "{}", text(&out));

    eventually(10, "the output in the log", || {
        let out = ctr.stack(&["container", "logs", "ctr-logs"]);
        String::from_utf8_lossy(&out.stdout) == "one\n"
            && String::from_utf8_lossy(&out.stderr) == "two\n"
    });
    let ls: serde_json::Value =
        serde_json::from_str(ctr.ctr(&["ls", "--format", "json"]).trim()).unwrap();
    assert_eq!(ls["ID"], &id[..12]);
    assert_eq!(ls["Names"], "ctr-logs");
    assert_eq!(ls["State"], "running");
    assert!(ls["Status"].as_str().unwrap().starts_with("Up "), "{ls}");
    let stats: serde_json::Value = serde_json::from_str(
        ctr.ctr(&["stats", "--no-stream", "--format", "json", "ctr-logs"])
            .trim(),
    )
    .unwrap();
    assert_eq!(stats["Name"], "ctr-logs");
    assert!(stats["PIDs"].as_str().unwrap().parse::<u32>().unwrap() >= 1);

    // A running container is not removed without -f.
    let out = ctr.stack(&["container", "rm", "ctr-logs"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("running"), "{}", text(&out));

    // `logs -f` follows until the container ends.
    let follower = ctr
        .command(&["container", "logs", "-f", "ctr-logs"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ctr.ctr(&["stop", "-t", "5", "ctr-logs"]);
    let followed = follower.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&followed.stdout), "one\nbye\n");

    let doc = ctr.inspect(&id[..12]);
    assert_eq!(doc["State"]["Status"], "exited");
    assert_eq!(doc["State"]["ExitCode"], 3);
    assert_eq!(doc["Name"], "/ctr-logs");
    assert!(ctr.ctr(&["ls"]).lines().count() == 1, "only the header");
    assert!(ctr.ctr(&["ls", "-a"]).contains("Exited (3)"));

    ctr.ctr(&["rm", "ctr-logs"]);
    ctr.assert_gone(&id);
    // The name is free again.
    let id2 = ctr
        .ctr(&[
            "run", "-d", "--rm", "--name", "ctr-logs", "busybox", "sleep", "30",
        ])
        .trim()
        .to_owned();
    ctr.ctr(&["kill", "ctr-logs"]);
    // --rm: the supervisor takes it away once it has ended.
    eventually(10, "the --rm container to go", || {
        !ctr.ctr(&["ls", "-aq"]).contains(&id2[..12])
    });
    ctr.assert_gone(&id2);

    // A detached container: `exec` reaches it, without a terminal.
    let id3 = ctr
        .ctr(&["run", "-d", "--name", "ctr-d", "busybox", "sleep", "60"])
        .trim()
        .to_owned();
    let out = ctr.stack(&["container", "exec", "ctr-d", "tty"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "not a tty\n");
    assert_eq!(out.status.code(), Some(1));
    ctr.ctr(&["rm", "-f", "ctr-d"]);
    ctr.assert_gone(&id3);
}

/// The counter a container writes to its log every 20 ms.
fn last_count(ctr: &Ctr, name: &str) -> u64 {
    let out = ctr.ctr(&["logs", "--tail", "1", name]);
    out.trim().parse().unwrap_or(0)
}

#[test]
fn pause_stops_progress_and_exec_runs_inside() {
    stack_testing::require_root!();
    let ctr = Ctr::with_busybox(6);
    let id = ctr
        .ctr(&[
            "run",
            "-d",
            "-e",
            "BASE=in-container",
            "--name",
            "ctr-pause",
            "busybox",
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done",
        ])
        .trim()
        .to_owned();
    eventually(10, "the counter", || last_count(&ctr, "ctr-pause") > 2);
    ctr.ctr(&["pause", "ctr-pause"]);
    assert_eq!(ctr.inspect("ctr-pause")["State"]["Status"], "paused");
    let frozen = last_count(&ctr, "ctr-pause");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(last_count(&ctr, "ctr-pause"), frozen, "it ran while paused");
    let out = ctr.stack(&["container", "exec", "ctr-pause", "true"]);
    assert!(!out.status.success(), "exec into a paused container");
    ctr.ctr(&["unpause", "ctr-pause"]);
    eventually(10, "progress after unpause", || {
        last_count(&ctr, "ctr-pause") > frozen + 2
    });

    let out = ctr.stack(&[
        "container",
        "exec",
        "-e",
        "EXTRA=1",
        "-w",
        "/tmp",
        "ctr-pause",
        "sh",
        "-c",
        "echo $BASE $EXTRA $(pwd) $(id -u); exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "in-container 1 /tmp 0\n"
    );
    let out = ctr.ctr(&["exec", "-u", "app", "ctr-pause", "id", "-un"]);
    assert_eq!(out, "app\n");
    // The exec'd process is in the container's pid namespace.
    let out = ctr.ctr(&[
        "exec",
        "ctr-pause",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert!(out.starts_with("sh -c i=0"), "{out}");

    // The leak check sees a live container (so its passing below means
    // something).
    let live = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ctr.assert_gone(&id)));
    assert!(live.is_err(), "assert_gone missed a running container");
    ctr.ctr(&["rm", "-f", "ctr-pause"]);
    ctr.assert_gone(&id);
}

#[test]
fn published_port_answers_on_loopback() {
    stack_testing::require_root!();
    let ctr = Ctr::with_busybox(7);
    let port = free_port();
    let id = ctr
        .ctr(&[
            "run",
            "-d",
            "--name",
            "ctr-web",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "busybox",
            "sh",
            "-c",
            "mkdir -p /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 80 -h /www",
        ])
        .trim()
        .to_owned();
    let ls = ctr.ctr(&["ls"]);
    assert!(ls.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ls}");
    let doc = ctr.inspect("ctr-web");
    assert_eq!(
        doc["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        port.to_string()
    );
    let ip = doc["NetworkSettings"]["IPAddress"].as_str().unwrap();
    assert!(ip.starts_with("10.221.7."), "{doc}");
    let mut body = String::new();
    eventually(10, "httpd to answer", || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        body.clear();
        let _ = s.read_to_string(&mut body);
        body.contains("hello-from-httpd")
    });
    ctr.ctr(&["rm", "-f", "ctr-web"]);
    ctr.assert_gone(&id);
    // The port is free again.
    TcpListener::bind(("127.0.0.1", port)).unwrap();
}

#[test]
fn network_none_and_host() {
    stack_testing::require_root!();
    let ctr = Ctr::with_busybox(8);
    let out = ctr.ctr(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(out, "lo\n");
    let out = ctr.ctr(&["run", "--rm", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(out, "eth0\nlo\n");
    // --rm in the foreground: the host name is the short id, and nothing
    // of that container is left once `run` returns.
    let short = ctr.ctr(&["run", "--rm", "busybox", "hostname"]);
    ctr.assert_gone(short.trim());
    let host = nix::unistd::gethostname().unwrap();
    let out = ctr.ctr(&["run", "--rm", "--network", "host", "busybox", "hostname"]);
    assert_eq!(out.trim(), host.to_string_lossy());
    // The default bridge answers from the container to its gateway.
    let out = ctr.ctr(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip route | grep default | cut -d' ' -f3",
    ]);
    assert_eq!(out.trim(), "10.221.8.1");
}

/// The pid of the supervisor of this root's single containers, from the
/// socket's peer.
fn supervisor_pid(ctr: &Ctr) -> i32 {
    let dir = ctr.run_dir().join("supervisors");
    let socket = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("_ctr-"))
        .expect("a supervisor socket")
        .path();
    let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .unwrap()
        .pid()
}

#[test]
fn restart_policy_health_check_and_adoption() {
    stack_testing::require_root!();
    let ctr = Ctr::with_busybox(9);
    // Refused before anything is made, as Docker refuses them.
    let out = ctr.stack(&["container", "run", "--rm", "--restart", "always", "busybox"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    assert!(text(&out).contains("--restart and --rm"), "{}", text(&out));
    let out = ctr.stack(&[
        "container",
        "run",
        "-d",
        "--restart",
        "sometimes",
        "busybox",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("on-failure"), "{}", text(&out));

    let id = ctr
        .ctr(&[
            "run",
            "-d",
            "--name",
            "ctr-again",
            "--restart",
            "always",
            "--health-cmd",
            "test -e /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            "busybox",
            "sh",
            "-c",
            "touch /tmp/ok; exec sleep 600",
        ])
        .trim()
        .to_owned();
    eventually(30, "healthy in ls", || {
        ctr.ctr(&["ls"]).contains("(healthy)")
    });
    let doc = ctr.inspect("ctr-again");
    assert_eq!(doc["State"]["Health"]["Status"], "healthy", "{doc}");
    assert_eq!(doc["HostConfig"]["RestartPolicy"]["Name"], "always");
    assert_eq!(doc["RestartCount"], 0);
    let pid = doc["State"]["Pid"].as_i64().unwrap() as i32;
    assert!(pid > 0, "{doc}");

    // Killed behind the engine's back: the policy brings it back.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually(30, "the restart", || {
        let doc = ctr.inspect("ctr-again");
        doc["RestartCount"].as_u64() >= Some(1)
            && doc["State"]["Status"] == "running"
            && doc["State"]["Pid"]
                .as_i64()
                .is_some_and(|p| p > 0 && p != i64::from(pid))
    });

    // The supervisor dies: the container runs on, and the next command's
    // supervisor adopts it without restarting it.
    let before = ctr.inspect("ctr-again")["State"]["Pid"].as_i64().unwrap();
    let supervisor = supervisor_pid(&ctr);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually(10, "the supervisor to end", || {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(supervisor), None).is_err()
    });
    ctr.ctr(&["pause", "ctr-again"]);
    ctr.ctr(&["unpause", "ctr-again"]);
    let doc = ctr.inspect("ctr-again");
    assert_eq!(doc["State"]["Status"], "running", "{doc}");
    assert_eq!(doc["State"]["Pid"].as_i64(), Some(before), "{doc}");

    // Health follows the probe: unhealthy once its file is gone.
    ctr.ctr(&["exec", "ctr-again", "rm", "/tmp/ok"]);
    eventually(30, "unhealthy in inspect", || {
        ctr.inspect("ctr-again")["State"]["Health"]["Status"] == "unhealthy"
    });
    assert!(ctr.ctr(&["ls"]).contains("(unhealthy)"));

    // A user's stop is not undone by the policy.
    ctr.ctr(&["stop", "-t", "1", "ctr-again"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ctr.inspect("ctr-again")["State"]["Status"], "exited");
    ctr.ctr(&["rm", "ctr-again"]);
    ctr.assert_gone(&id);
    // The last container took the supervisor with it.
    eventually(10, "the supervisor socket to go", || {
        std::fs::read_dir(ctr.run_dir().join("supervisors"))
            .map(|d| {
                !d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("_ctr-"))
            })
            .unwrap_or(true)
    });
}

/// The veths of this root's default bridge.
fn veths(ctr: &Ctr) -> Vec<String> {
    let Some(tag) = ctr.net_tag() else {
        return Vec::new();
    };
    let links = Command::new("ip").args(["-br", "link"]).output().unwrap();
    String::from_utf8_lossy(&links.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("stk-{tag}v")))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .collect()
}

/// The services of the root's single-container project, as its
/// supervisor keeps them.
fn project_services(ctr: &Ctr) -> Vec<String> {
    let projects = std::fs::read_dir(ctr.root().join("projects")).unwrap();
    let dir = projects.flatten().next().expect("the project").path();
    let text = std::fs::read(dir.join("project.json")).unwrap();
    let project: serde_json::Value = serde_json::from_slice(&text).unwrap();
    project["services"]
        .as_object()
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn detached_terminal_is_logged_and_ended_containers_let_go() {
    stack_testing::require_root!();
    let ctr = Ctr::with_busybox(10);
    // `-dit`: the shell's terminal goes to the log; with -i it waits on it.
    let id = ctr
        .ctr(&[
            "run",
            "-dit",
            "--name",
            "ctr-tty",
            "busybox",
            "sh",
            "-c",
            "tty; echo ready; exec sh",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    eventually(10, "the terminal's output in the log", || {
        let out = ctr.stack(&["container", "logs", "ctr-tty"]);
        let log = String::from_utf8_lossy(&out.stdout);
        log.starts_with("/dev/pts/0\r\nready\r\n")
    });
    assert_eq!(ctr.inspect("ctr-tty")["State"]["Status"], "running");
    assert_eq!(veths(&ctr).len(), 1, "{:?}", veths(&ctr));

    // A container that ended (no restart policy) keeps its record and log,
    // not its veth; once removed, its service leaves the project.
    ctr.ctr(&["run", "-d", "--name", "ctr-done", "busybox", "echo", "done"]);
    eventually(10, "ctr-done to end and let its veth go", || {
        ctr.inspect("ctr-done")["State"]["Status"] == "exited" && veths(&ctr).len() == 1
    });
    let out = ctr.stack(&["container", "logs", "ctr-done"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
    assert_eq!(project_services(&ctr), ["ctr-tty", "ctr-done"]);
    ctr.ctr(&["rm", "ctr-done"]);
    assert_eq!(project_services(&ctr), ["ctr-tty"]);
    // The same for a foreground one.
    assert_eq!(ctr.ctr(&["run", "--name", "ctr-fg", "busybox", "true"]), "");
    assert_eq!(ctr.inspect("ctr-fg")["State"]["Status"], "exited");
    assert_eq!(veths(&ctr).len(), 1, "{:?}", veths(&ctr));
    ctr.ctr(&["rm", "ctr-fg"]);

    ctr.ctr(&["rm", "-f", "ctr-tty"]);
    ctr.assert_gone(&id);
}

/// The name of this root's single-container project, from its directory.
fn single_project(ctr: &Ctr) -> String {
    std::fs::read_dir(ctr.root().join("projects"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("_ctr-"))
        .expect("a single-container project")
}

/// The default bridge goes by a plan: `rm --dry-run` prints it for the
/// last container, and a supervisor that died between the last removal
/// and that plan leaves it to the next one, which carries it out.
#[test]
fn the_bridge_goes_by_a_plan_also_after_a_crash() {
    stack_testing::require_root!();
    let ctr = Ctr::with_busybox(11);
    let id = ctr.ctr(&["run", "-d", "--name", "last", "busybox", "sleep", "60"]);
    let plan = ctr.ctr(&["rm", "--dry-run", "-f", "last"]);
    assert!(plan.contains("container last"), "{plan}");
    assert!(
        plan.contains("remove network") && plan.contains("last container gone"),
        "{plan}"
    );
    // Nothing changed.
    assert_eq!(ctr.inspect("last")["State"]["Running"], true);
    let project = single_project(&ctr);
    let tag = ctr.net_tag().expect("the default bridge exists");
    ctr.ctr(&["rm", "-f", "last"]);
    ctr.assert_gone(&id.trim()[..12]);
    assert_eq!(
        ctr.net_tag(),
        None,
        "the bridge went with the last container"
    );

    // A `--rm` run leaves its supervisor lingering with the bridge; it dies
    // there, before it retired the project.
    ctr.ctr(&["run", "--rm", "busybox", "true"]);
    let tag = ctr.net_tag().unwrap_or(tag);
    let pid = supervisor_pid(&ctr);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually(5, "the supervisor is gone", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(ctr.net_tag().is_some(), "the crash left the bridge");
    // The next supervisor finds nothing to serve and retires the project
    // by its plan, then ends.
    let mut next = ctr
        .command(&["__supervise", &project])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = next.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = next.kill();
            panic!("the new supervisor did not end");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert_eq!(ctr.net_tag(), None, "the next supervisor took the bridge");
    let links = Command::new("ip").args(["-br", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.lines().any(|l| l.starts_with(&format!("stk-{tag}"))),
        "{links}"
    );
}
