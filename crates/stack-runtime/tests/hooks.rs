//! createContainer and startContainer hooks: where and when they run, and
//! what a failing one does to the lifecycle.

mod common;

use common::{Bundle, create};
use stack_runtime::{Status, Step};

fn ns(pid: impl std::fmt::Display, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn container_hooks_run_inside_in_order_with_the_state() {
    stack_testing::require_root!();
    let b = Bundle::new(&["echo", "program"], |v| {
        v["hostname"] = "hooked".into();
        v["hooks"] = serde_json::json!({
            // Resolved on the host (before pivot_root): the host's /bin/sh.
            "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
                "echo create $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/uts) $(cat)"]}],
            // Resolved in the container, after start, before the program.
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
                "echo start $(hostname) $(readlink /proc/self/ns/mnt) $(cat)"]}],
        });
    });
    let mut g = create(&b, "rt2-hooks").unwrap();
    let mut c = g.container();
    let pid = c.pid();
    let (mnt, uts) = (ns(pid, "mnt"), ns(pid, "uts"));
    assert_ne!(mnt, ns("self", "mnt"));
    c.start().unwrap();
    let out = g.read_output();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let create: Vec<&str> = lines[0].splitn(4, ' ').collect();
    assert_eq!(create[..3], ["create", mnt.as_str(), uts.as_str()], "{out}");
    let state: serde_json::Value = serde_json::from_str(create[3]).unwrap();
    assert_eq!(state["id"], g.id.as_str());
    assert_eq!(state["pid"], pid);
    assert_eq!(state["status"], "created");
    let start: Vec<&str> = lines[1].splitn(4, ' ').collect();
    assert_eq!(start[..3], ["start", "hooked", mnt.as_str()], "{out}");
    let state: serde_json::Value = serde_json::from_str(start[3]).unwrap();
    assert_eq!(state["pid"], pid);
    assert_eq!(lines[2], "program");
    assert_eq!(c.wait().unwrap().code, Some(0));
}

#[test]
fn start_hook_runs_only_after_start() {
    stack_testing::require_root!();
    let b = Bundle::new(&["true"], |v| {
        v["hooks"] = serde_json::json!({
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo start"]}],
        });
    });
    let mut g = create(&b, "rt2-hooklate").unwrap();
    let mut c = g.container();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Nothing ran yet: the container's output pipe stays empty.
    let fd = g.output.as_ref().unwrap();
    let mut pfd = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(fd),
        nix::poll::PollFlags::POLLIN,
    )];
    assert_eq!(
        nix::poll::poll(&mut pfd, nix::poll::PollTimeout::ZERO).unwrap(),
        0
    );
    c.start().unwrap();
    assert_eq!(g.read_output(), "start\n");
}

#[test]
fn failing_start_hook_fails_start_and_the_program_never_runs() {
    stack_testing::require_root!();
    let b = Bundle::new(&["echo", "program"], |v| {
        v["hooks"] = serde_json::json!({
            "startContainer": [{"path": "/bin/false"}],
        });
    });
    let mut g = create(&b, "rt2-hookfail").unwrap();
    let mut c = g.container();
    match c.start() {
        Err(stack_runtime::Error::Init { step, .. }) => assert_eq!(step, Step::Hooks),
        other => panic!("expected a hook failure, got {other:?}"),
    }
    let out = g.read_output();
    assert!(!out.contains("program"), "{out}");
    let _ = c.wait();
    assert_eq!(g.container().status(), Status::Stopped);
}

#[test]
fn failing_create_hook_fails_create() {
    stack_testing::require_root!();
    let b = Bundle::new(&["true"], |v| {
        v["hooks"] = serde_json::json!({
            "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}],
        });
    });
    match create(&b, "rt2-hookcfail") {
        Err(stack_runtime::Error::Init { step, message, .. }) => {
            assert_eq!(step, Step::Hooks);
            assert!(message.contains("createContainer"), "{message}");
        }
        other => panic!(
            "expected a hook failure, got {:?}",
            other.map(|g| g.id.clone())
        ),
    }
}
