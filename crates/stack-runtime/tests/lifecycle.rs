//! Lifecycle and isolation, checked from inside the container by its own output.

mod common;

use common::{Bundle, create, run};
use nix::sys::signal::Signal;
use stack_runtime::{Status, Step};

const CHECKS: &str = r#"
echo "pid1=$$"
echo "hostname=$(hostname)"
echo "ifaces=$(ls /sys/class/net | tr '\n' ' ')"
echo "maxpid=$(ls /proc | grep -E '^[0-9]+$' | sort -n | tail -n 1)"
test -e /work && echo "hostfs=visible" || echo "hostfs=hidden"
echo "id=$(id)"
(echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo "procsys=rw" || echo "procsys=ro"
(touch /sys/stack-test) 2>/dev/null && echo "sys=rw" || echo "sys=ro"
echo "masked=$(cat /proc/timer_list /proc/keys | wc -c)"
echo "firmware=$(ls /sys/firmware | wc -l)"
grep CapEff /proc/self/status | tr -d '\t' | sed 's/:/=/'
unshare -n true 2>/dev/null && echo "unshare=allowed" || echo "unshare=denied"
mount -t tmpfs none /tmp 2>/dev/null && echo "mount=allowed" || echo "mount=denied"
"#;

fn kv(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in output:\n{out}"))
        .trim()
        .to_string()
}

#[test]
fn isolation_as_seen_from_inside() {
    stack_testing::require_root!();
    let b = Bundle::new(&["sh", "-c", CHECKS], |v| v["hostname"] = "isolated".into());
    let (out, info, _g) = run(&b, "iso", true);
    assert_eq!(info.code, Some(0), "{out}");
    assert_eq!(kv(&out, "pid1"), "1");
    assert_eq!(kv(&out, "hostname"), "isolated");
    assert_eq!(kv(&out, "ifaces"), "lo");
    // Only the container's own few processes, numbered from 1, are visible.
    let maxpid: u32 = kv(&out, "maxpid").parse().unwrap();
    assert!(maxpid < 20, "{out}");
    assert_eq!(kv(&out, "hostfs"), "hidden");
    assert_eq!(kv(&out, "id"), "uid=0(root) gid=0(root)");
    assert_eq!(kv(&out, "procsys"), "ro");
    assert_eq!(kv(&out, "sys"), "ro");
    assert_eq!(kv(&out, "masked"), "0");
    assert_eq!(kv(&out, "firmware"), "0");
    // Docker's 14 default capabilities.
    assert_eq!(kv(&out, "CapEff"), "00000000a80425fb");
    assert_eq!(kv(&out, "unshare"), "denied");
    assert_eq!(kv(&out, "mount"), "denied");
}

#[test]
fn the_program_starts_with_no_signal_ignored() {
    stack_testing::require_root!();
    // The program itself reads its status: nothing the runtime ignores
    // (SIGPIPE in a Rust process) may be inherited.
    let b = Bundle::new(&["grep", "SigIgn", "/proc/self/status"], |_| {});
    let (out, info, _g) = run(&b, "sigign", true);
    assert_eq!(info.code, Some(0), "{out}");
    assert_eq!(out.trim(), "SigIgn:\t0000000000000000");
}

#[test]
fn user_and_cwd_and_env() {
    stack_testing::require_root!();
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "id; pwd; echo FOO=$FOO; grep CapEff /proc/self/status",
        ],
        |v| {
            v["process"]["user"] =
                serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [100]});
            v["process"]["cwd"] = "/home/app".into();
            v["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push("FOO=bar".into());
        },
    );
    let (out, info, _g) = run(&b, "user", false);
    assert_eq!(info.code, Some(0), "{out}");
    assert!(
        out.contains("uid=1000(app) gid=1000(app) groups=100(users)"),
        "{out}"
    );
    assert!(out.contains("/home/app\n"), "{out}");
    assert!(out.contains("FOO=bar"), "{out}");
    // Non-root: the effective set is emptied by setuid, as with runc.
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
}

#[test]
fn create_start_kill_delete() {
    stack_testing::require_root!();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let g = create(&b, "life").unwrap();
    let mut c = g.container();
    assert_eq!(c.status(), Status::Created);
    assert_eq!(c.oci_state()["status"], "created");
    // The program has not started: the init still waits on the fifo.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", c.pid())).unwrap();
    assert!(!cmdline.starts_with(b"sleep"), "program ran before start");
    c.start().unwrap();
    assert_eq!(c.status(), Status::Running);
    assert!(matches!(
        c.start(),
        Err(stack_runtime::Error::BadState { .. })
    ));
    let cg_dirs = c.cgroup().dirs();
    assert!(cg_dirs.iter().all(|d| d.exists()));
    c.kill(Signal::SIGKILL).unwrap();
    let info = c.wait().unwrap();
    assert_eq!(info.signal, Some(libc::SIGKILL));
    assert!(!info.oom_killed);
    assert_eq!(c.status(), Status::Stopped);
    assert!(
        c.kill(Signal::SIGKILL).is_err(),
        "kill of a stopped container must fail"
    );
    c.delete(false).unwrap();
    assert!(!g.root.path().join(&g.id).exists(), "state left behind");
    assert!(cg_dirs.iter().all(|d| !d.exists()), "cgroup left behind");
}

/// Parents under the runtime's own `/stack` go with the last container in
/// them, and not before.
#[test]
fn delete_prunes_empty_parents_under_stack_only_when_unused() {
    stack_testing::require_root!();
    let parent = format!("/stack/prune-{}", std::process::id());
    let bundle = |leaf: &str| {
        let path = format!("{parent}/{leaf}");
        Bundle::new(&["sleep", "100"], move |v| {
            v["linux"]["cgroupsPath"] = path.clone().into();
        })
    };
    let (ba, bb) = (bundle("a"), bundle("b"));
    let ga = create(&ba, "prune-a").unwrap();
    let gb = create(&bb, "prune-b").unwrap();
    let parent_dirs: Vec<_> = ga
        .container()
        .cgroup()
        .dirs()
        .iter()
        .map(|d| d.parent().unwrap().to_path_buf())
        .collect();
    assert!(parent_dirs.iter().all(|d| d.exists()));
    ga.container().delete(true).unwrap();
    assert!(
        parent_dirs.iter().all(|d| d.exists()),
        "a parent still used by b was removed"
    );
    gb.container().delete(true).unwrap();
    assert!(
        parent_dirs.iter().all(|d| !d.exists()),
        "an empty parent was left behind"
    );
}

#[test]
fn delete_of_running_needs_force() {
    stack_testing::require_root!();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let g = create(&b, "force").unwrap();
    let mut c = g.container();
    c.start().unwrap();
    assert!(matches!(
        g.container().delete(false),
        Err(stack_runtime::Error::BadState { .. })
    ));
    assert_eq!(c.status(), Status::Running);
    let pid = c.pid();
    g.container().delete(true).unwrap();
    assert!(!stack_runtime::state::is_alive(pid, c.start_time()));
}

#[test]
fn stopped_after_exiting_by_itself() {
    stack_testing::require_root!();
    let b = Bundle::new(&["sh", "-c", "exit 3"], |_| {});
    let (_out, info, g) = run(&b, "exit", false);
    assert_eq!(info.code, Some(3));
    assert_eq!(g.container().status(), Status::Stopped);
    assert_eq!(g.container().oci_state()["status"], "stopped");
}

#[test]
fn setup_errors_name_the_step() {
    stack_testing::require_root!();
    let b = Bundle::new(&["/no/such/program"], |_| {});
    match create(&b, "badexe") {
        Err(stack_runtime::Error::Init { step, .. }) => assert_eq!(step, Step::Executable),
        other => panic!(
            "expected an init error, got {:?}",
            other.map(|g| g.id.clone())
        ),
    }
    // A file that exists but is not executable is EACCES, as in execvp.
    let b = Bundle::new(&["/etc/passwd"], |_| {});
    match create(&b, "noexec") {
        Err(stack_runtime::Error::Init { step, errno, .. }) => {
            assert_eq!(step, Step::Executable);
            assert_eq!(errno, Some(libc::EACCES));
        }
        other => panic!(
            "expected an init error, got {:?}",
            other.map(|g| g.id.clone())
        ),
    }
    let b = Bundle::new(&["true"], |v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "network");
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "network", "path": "/proc/self/ns/uts"}));
    });
    match create(&b, "badns") {
        Err(stack_runtime::Error::Init { step, .. }) => assert_eq!(step, Step::JoinNamespace),
        other => panic!(
            "expected an init error, got {:?}",
            other.map(|g| g.id.clone())
        ),
    }
}

#[test]
fn exec_joins_the_same_namespaces() {
    stack_testing::require_root!();
    let b = Bundle::new(&["sleep", "100"], |v| v["hostname"] = "execbox".into());
    let g = create(&b, "exec").unwrap();
    let mut c = g.container();
    c.start().unwrap();
    let mut p = c.state.config.process().clone().unwrap();
    p.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "hostname; for n in pid net uts ipc mnt; do readlink /proc/self/ns/$n; done".into(),
    ]));
    let (r, w) = nix::unistd::pipe().unwrap();
    let pid = c
        .exec(
            p,
            stack_runtime::ExecOptions {
                init_binary: common::INIT.into(),
                stdio: stack_runtime::Stdio {
                    stdin: None,
                    stdout: Some(w),
                    stderr: None,
                },
                console_socket: None,
            },
        )
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
    let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    assert_eq!(
        st,
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 0)
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("execbox"));
    for (n, got) in ["pid", "net", "uts", "ipc", "mnt"].iter().zip(lines) {
        let want = std::fs::read_link(format!("/proc/{}/ns/{n}", c.pid())).unwrap();
        assert_eq!(got, want.to_str().unwrap(), "namespace {n}");
    }
}

#[test]
fn pause_stops_progress_and_resume_continues() {
    stack_testing::require_root!();
    let b = Bundle::new(&["sh", "-c", "while :; do :; done"], |_| {});
    let g = create(&b, "pause").unwrap();
    let mut c = g.container();
    c.start().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.pause().unwrap();
    assert_eq!(c.status(), Status::Paused);
    let a = c.stats().unwrap().cpu_usage_ns;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let b2 = c.stats().unwrap().cpu_usage_ns;
    assert_eq!(a, b2, "a paused container made progress");
    c.resume().unwrap();
    assert_eq!(c.status(), Status::Running);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        c.stats().unwrap().cpu_usage_ns > b2 + 50_000_000,
        "no progress after resume"
    );
}

#[test]
fn joins_network_namespace_by_path() {
    stack_testing::require_root!();
    let name = format!("stk-rt{}", std::process::id() % 100_000);
    struct NetnsGuard(String);
    impl Drop for NetnsGuard {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .expect("ip (apt-get install iproute2)");
    assert!(ok.success());
    let _ns = NetnsGuard(name.clone());
    let ok = std::process::Command::new("ip")
        .args([
            "-n", &name, "link", "add", "stkva0", "type", "veth", "peer", "name", "stkvb0",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let b = Bundle::new(&["sh", "-c", "ls /sys/class/net | tr '\\n' ' '"], |v| {
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(serde_json::json!({"type": "network", "path": format!("/run/netns/{name}")}));
    });
    let (out, info, _g) = run(&b, "netns", false);
    assert_eq!(info.code, Some(0), "{out}");
    assert!(out.contains("stkva0") && out.contains("lo"), "{out}");
}

#[test]
fn user_namespace_with_id_maps() {
    stack_testing::require_root!();
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; ls -ln /bin/busybox",
        ],
        |v| {
            let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
            ns.push(serde_json::json!({"type": "user"}));
            v["linux"]["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            v["linux"]["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        },
    );
    let (out, info, _g) = run(&b, "userns", false);
    assert_eq!(info.code, Some(0), "{out}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        &words[..7],
        &["0", "200000", "65536", "0", "200000", "65536", "0"],
        "{out}"
    );
    // Files owned by host root are unmapped in the container: the overflow id.
    assert!(out.contains(" 65534 "), "{out}");
}

#[test]
fn seccomp_profile_from_the_spec() {
    stack_testing::require_root!();
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "mkdir /tmp/x && echo made; grep Seccomp: /proc/self/status",
        ],
        |v| {
            v["linux"]["seccomp"] = serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
            });
        },
    );
    let (out, info, _g) = run(&b, "seccomp", false);
    assert_eq!(info.code, Some(0), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(!out.contains("made"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
}
