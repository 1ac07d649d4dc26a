//! `STACK_CGROUP_MANAGER` is honoured by a project's supervisor, which may
//! already run with the environment of an earlier command; a value that
//! cannot be honoured is refused by the command the user typed, before it
//! talks to any supervisor. Needs no root: nothing is created.

use std::process::Command;

#[test]
fn a_bad_cgroup_manager_is_refused_by_the_command_itself() {
    let dir = tempfile::tempdir().unwrap();
    let run = |value: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_stack"))
            .env("STACK_CGROUP_MANAGER", value)
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--run-dir")
            .arg(dir.path().join("run"))
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        &["ps"][..],
        &["container", "run", "--rm", "busybox", "true"],
    ] {
        let out = run("bogus", args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("STACK_CGROUP_MANAGER=bogus: expected systemd or cgroupfs"),
            "{args:?}: {err}"
        );
        assert!(
            !dir.path().join("run").exists(),
            "{args:?} started something"
        );
    }
    let out = run("cgroupfs", &["version"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
