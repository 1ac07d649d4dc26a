//! The runc-compatible command line, driven the way the OCI validation suite
//! drives it: argument forms, exit codes, the state JSON, hooks.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::Bundle;

struct Cli {
    root: tempfile::TempDir,
    ids: Vec<String>,
}

impl Cli {
    fn new() -> Cli {
        common::require_root();
        Cli {
            root: tempfile::tempdir().unwrap(),
            ids: Vec::new(),
        }
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(common::INIT)
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .output()
            .unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }
    fn fails(&self, args: &[&str]) {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{args:?} should fail: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    fn state(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }
    /// `create` with stdio detached: the container keeps the stdio it is given,
    /// so captured pipes would stay open for as long as it runs.
    fn create(&mut self, bundle: &Path, extra: &[&str]) -> String {
        let id = common::unique_id("cli");
        let mut args = vec!["create", "--bundle", bundle.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(&id);
        let st = Command::new(common::INIT)
            .arg("--root")
            .arg(self.root.path())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{args:?} failed");
        self.ids.push(id.clone());
        id
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.run(&["delete", "--force", id]);
        }
    }
}

#[test]
fn create_state_kill_delete() {
    stack_testing::require_root!();
    let mut cli = Cli::new();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    cli.fails(&["create", "--bundle", b.path().to_str().unwrap()]);
    let pidfile = b.path().join("pid");
    let id = cli.create(b.path(), &["--pid-file", pidfile.to_str().unwrap()]);
    let st = cli.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["ociVersion"], "1.0.2");
    assert_eq!(
        st["bundle"],
        b.path().canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        st["pid"].to_string()
    );
    // A duplicate id is refused and the first container is untouched.
    cli.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(cli.state(&id)["status"], "created");
    // delete of a created container needs --force (as runc).
    cli.fails(&["delete", &id]);
    cli.ok(&["kill", &id, "KILL"]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(cli.state(&id)["status"], "stopped");
    cli.fails(&["kill", &id, "KILL"]);
    cli.ok(&["delete", &id]);
    cli.fails(&["state", &id]);
    cli.fails(&["start", &id]);
    cli.fails(&["kill", &id]);
    cli.fails(&["delete", &id]);
}

#[test]
fn start_runs_the_config_of_create_and_delete_needs_force() {
    stack_testing::require_root!();
    let mut cli = Cli::new();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let id = cli.create(b.path(), &[]);
    // Editing config.json after create has no effect on the container.
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.path().join("config.json")).unwrap()).unwrap();
    v["process"]["args"] = serde_json::json!(["false"]);
    std::fs::write(b.path().join("config.json"), v.to_string()).unwrap();
    cli.ok(&["start", &id]);
    let st = cli.state(&id);
    assert_eq!(st["status"], "running");
    let pid = st["pid"].as_i64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with(b"sleep\x00100"), "{cmdline:?}");
    cli.fails(&["start", &id]);
    cli.fails(&["delete", &id]);
    assert_eq!(cli.state(&id)["status"], "running");
    cli.ok(&["kill", &id, "SIGUSR1"]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    // pid 1 without a handler ignores SIGUSR1.
    assert_eq!(cli.state(&id)["status"], "running");
    cli.ok(&["delete", "--force", &id]);
    cli.fails(&["state", &id]);
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    stack_testing::require_root!();
    let mut cli = Cli::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let log_path = log.path().to_str().unwrap().to_string();
    let hook = |name: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} $(cat) >> {log_path}")]});
    let b = Bundle::new(&["sleep", "100"], |v| {
        v["hooks"] = serde_json::json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
    });
    let id = cli.create(b.path(), &[]);
    let read = || std::fs::read_to_string(&log_path).unwrap();
    assert!(!read().contains("poststart"));
    cli.ok(&["start", &id]);
    cli.ok(&["delete", "--force", &id]);
    let lines: Vec<String> = read().lines().map(str::to_string).collect();
    let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        ["prestart", "createRuntime", "poststart", "poststop"],
        "{lines:?}"
    );
    let state: serde_json::Value =
        serde_json::from_str(lines[0].split_once(' ').unwrap().1).unwrap();
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["status"], "created");
    assert!(state["pid"].as_i64().unwrap() > 0);
}

#[test]
fn failing_prestart_hook_fails_create_and_leaves_nothing() {
    stack_testing::require_root!();
    let cli = Cli::new();
    let b = Bundle::new(&["true"], |v| {
        v["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/false"}]});
    });
    let id = common::unique_id("cli-hookfail");
    cli.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    cli.fails(&["state", &id]);
    assert!(!cli.root.path().join(&id).exists());
}

#[test]
fn run_returns_the_exit_status_and_spec_writes_a_config() {
    stack_testing::require_root!();
    let cli = Cli::new();
    let b = Bundle::new(&["sh", "-c", "exit 7"], |_| {});
    let o = cli.run(&[
        "run",
        "--bundle",
        b.path().to_str().unwrap(),
        &common::unique_id("cli-run"),
    ]);
    assert_eq!(o.status.code(), Some(7));
    let dir = tempfile::tempdir().unwrap();
    cli.ok(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(v["root"]["path"], "rootfs");
    cli.fails(&["spec", "--bundle", dir.path().to_str().unwrap()]);
}

#[test]
fn exec_and_ps_through_the_cli() {
    stack_testing::require_root!();
    let mut cli = Cli::new();
    let b = Bundle::new(&["sleep", "100"], |v| v["hostname"] = "clibox".into());
    let id = cli.create(b.path(), &[]);
    cli.ok(&["start", &id]);
    let out = cli.ok(&["exec", &id, "hostname"]);
    assert_eq!(out.trim(), "clibox");
    let o = cli.run(&["exec", &id, "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5));
    let ps: Vec<i32> = serde_json::from_str(&cli.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(ps.len(), 1);
    cli.ok(&["pause", &id]);
    assert_eq!(cli.state(&id)["status"], "paused");
    cli.ok(&["resume", &id]);
    assert_eq!(cli.state(&id)["status"], "running");
    let list = cli.ok(&["list", "-q"]);
    assert!(list.lines().any(|l| l == id));
}

#[test]
fn pid_file_holds_the_state_pid_as_runc_writes_it() {
    stack_testing::require_root!();
    let mut cli = Cli::new();
    let dir = tempfile::tempdir().unwrap();
    let pf = dir.path().join("pidfile");
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let id = cli.create(b.path(), &["--pid-file", pf.to_str().unwrap()]);
    // The bare number, no newline, and no temporary file left beside it.
    let body = std::fs::read_to_string(&pf).unwrap();
    assert_eq!(body, cli.state(&id)["pid"].to_string());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["pidfile"]);
}

#[test]
fn no_namespaces_listed_means_the_runtimes_own() {
    stack_testing::require_root!();
    let mut cli = Cli::new();
    let b = Bundle::new(&["sleep", "100"], |v| {
        v["linux"]["namespaces"] = serde_json::json!([]);
        v.as_object_mut().unwrap().remove("hostname");
    });
    let id = cli.create(b.path(), &[]);
    let pid = cli.state(&id)["pid"].as_i64().unwrap();
    assert!(pid > 0);
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_eq!(theirs, ours, "{ns}");
    }
    cli.ok(&["start", &id]);
    assert_eq!(cli.state(&id)["status"], "running");
}

#[test]
fn a_failing_poststart_or_poststop_hook_only_warns_and_the_rest_run() {
    stack_testing::require_root!();
    let mut cli = Cli::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let log_path = log.path().to_str().unwrap().to_string();
    let echo = |name: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} >> {log_path}")]});
    let b = Bundle::new(&["sleep", "100"], |v| {
        v["hooks"] = serde_json::json!({
            "poststart": [{"path": "/bin/false"}, echo("poststart")],
            "poststop": [{"path": "/bin/false"}, echo("poststop")],
        });
    });
    let id = cli.create(b.path(), &[]);
    let start = cli.run(&["start", &id]);
    assert!(start.status.success());
    assert!(String::from_utf8_lossy(&start.stderr).contains("warning"));
    assert_eq!(cli.state(&id)["status"], "running");
    let delete = cli.run(&["delete", "--force", &id]);
    assert!(delete.status.success());
    assert!(String::from_utf8_lossy(&delete.stderr).contains("warning"));
    assert_eq!(
        std::fs::read_to_string(&log_path).unwrap(),
        "poststart\npoststop\n"
    );
}
