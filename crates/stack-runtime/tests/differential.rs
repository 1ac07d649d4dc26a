//! The same bundle through runc, crun and stack-runtime: the container's own
//! observations must match. Needs the Debian packages `runc` and `crun`.

mod common;

use std::path::Path;
use std::process::Command;

use common::Bundle;

const CHECKS: &str = r#"
echo "pid1=$$"
echo "hostname=$(hostname)"
echo "ifaces=$(ls /sys/class/net | tr '\n' ' ')"
m=$(ls /proc | grep -E '^[0-9]+$' | sort -n | tail -n 1); [ "$m" -lt 20 ] && echo "fewpids=yes" || echo "fewpids=no"
test -e /work && echo "hostfs=visible" || echo "hostfs=hidden"
echo "id=$(id)"
(echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo "procsys=rw" || echo "procsys=ro"
(touch /sys/stack-test) 2>/dev/null && echo "sys=rw" || echo "sys=ro"
(touch /stack-test) 2>/dev/null && echo "root=rw" || echo "root=ro"
echo "masked=$(cat /proc/timer_list /proc/keys | wc -c)"
echo "firmware=$(ls /sys/firmware | wc -l)"
grep -E 'CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp:' /proc/self/status | tr -d '\t' | sed 's/:/=/'
unshare -n true 2>/dev/null && echo "unshare=allowed" || echo "unshare=denied"
mount -t tmpfs none /tmp 2>/dev/null && echo "mount=allowed" || echo "mount=denied"
echo "nofile=$(ulimit -n)"
echo "devs=$(ls /dev | sort | tr '\n' ' ')"
echo "mounts=$(awk '{print $2}' /proc/mounts | sort | tr '\n' ' ')"
"#;

fn bundle() -> Bundle {
    Bundle::new(&["sh", "-c", CHECKS], |v| {
        v["hostname"] = "difftest".into();
        let caps: Vec<&str> = stack_runtime::plan::DEFAULT_CAPS.to_vec();
        v["linux"]["seccomp"] =
            serde_json::to_value(stack_runtime::seccomp::docker_default(&caps)).unwrap();
    })
}

fn need(bin: &str) {
    let ok = Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "{bin} not found: apt-get install {bin}");
}

fn run_cli(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn runtime");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn ours(b: &Path) -> String {
    let root = tempfile::tempdir().unwrap();
    let id = common::unique_id("diff");
    run_cli(
        Command::new(common::INIT)
            .args(["--root"])
            .arg(root.path())
            .args(["run", "--bundle"])
            .arg(b)
            .arg(&id),
    )
}

fn runc(b: &Path) -> String {
    need("runc");
    let root = tempfile::tempdir().unwrap();
    let id = common::unique_id("diff-runc");
    run_cli(
        Command::new("runc")
            .arg("--root")
            .arg(root.path())
            .args(["run", "--bundle"])
            .arg(b)
            .arg(&id),
    )
}

/// crun 1.8 refuses the hybrid cgroup layout; in a private mount namespace
/// without the (empty) unified hierarchy it sees a plain v1 host.
fn crun(b: &Path) -> String {
    need("crun");
    let root = tempfile::tempdir().unwrap();
    let id = common::unique_id("diff-crun");
    let script = format!(
        "umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --root {} run --bundle {} {id}",
        root.path().display(),
        b.display()
    );
    run_cli(Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]))
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.is_empty()).collect()
}

const USER_CHECKS: &str = r#"
id; pwd; echo "FOO=$FOO"; umask
grep -E 'CapEff|CapBnd|CapPrm|CapInh|CapAmb|NoNewPrivs' /proc/self/status | tr -d '\t'
echo "nofile=$(ulimit -n) core=$(ulimit -c) nproc=$(ulimit -u)"
cat /proc/self/oom_score_adj
"#;

fn user_bundle() -> Bundle {
    Bundle::new(&["sh", "-c", USER_CHECKS], |v| {
        v["process"]["user"] =
            serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [100, 1], "umask": 23});
        v["process"]["cwd"] = "/home/app".into();
        v["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push("FOO=bar baz".into());
        v["process"]["oomScoreAdj"] = 200.into();
        v["process"]["capabilities"]["inheritable"] = serde_json::json!(["CAP_NET_BIND_SERVICE"]);
        v["process"]["capabilities"]["ambient"] = serde_json::json!(["CAP_NET_BIND_SERVICE"]);
        v["process"]["rlimits"] = serde_json::json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
            {"type": "RLIMIT_NPROC", "soft": 300, "hard": 300}
        ]);
    })
}

#[test]
fn same_user_and_process_setup_as_runc_and_crun() {
    stack_testing::require_root!();
    let b = user_bundle();
    let a = ours(b.path());
    assert!(
        a.contains("uid=1000(app) gid=1000(app) groups=1(daemon),100(users)"),
        "{a}"
    );
    assert_eq!(lines(&a), lines(&runc(b.path())), "stack-runtime vs runc");
    assert_eq!(lines(&a), lines(&crun(b.path())), "stack-runtime vs crun");
}

#[test]
fn same_observations_as_runc() {
    stack_testing::require_root!();
    let b = bundle();
    let (a, r) = (ours(b.path()), runc(b.path()));
    // The one known difference: like crun, we add the /dev/core -> /proc/kcore
    // link that runc 1.1 leaves out.
    let a = a.replace("devs=core ", "devs=");
    assert_eq!(lines(&a), lines(&r), "stack-runtime vs runc");
}

#[test]
fn same_observations_as_crun() {
    stack_testing::require_root!();
    let b = bundle();
    let (a, c) = (ours(b.path()), crun(b.path()));
    assert_eq!(lines(&a), lines(&c), "stack-runtime vs crun");
}

/// A profile that allows everything but makes `mkdir` fail with EPERM and
/// `chmod` with EACCES: the errno a filter returns must be the same everywhere.
fn seccomp_bundle() -> Bundle {
    const SCRIPT: &str = "mkdir /tmp/d 2>&1; echo mkdir=$?; chmod 700 /tmp 2>&1; echo chmod=$?; \
                          touch /tmp/f && echo touch=$?; ls /tmp";
    Bundle::new(&["sh", "-c", SCRIPT], |v| {
        v["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["chmod", "fchmod", "fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
            ]
        });
    })
}

#[test]
fn same_seccomp_errnos_as_runc_and_crun() {
    stack_testing::require_root!();
    let b = seccomp_bundle();
    let a = ours(b.path());
    assert!(
        a.contains("Operation not permitted") && a.contains("Permission denied"),
        "{a}"
    );
    assert!(a.contains("mkdir=1") && a.contains("touch=0"), "{a}");
    assert_eq!(lines(&a), lines(&runc(b.path())), "stack-runtime vs runc");
    assert_eq!(lines(&a), lines(&crun(b.path())), "stack-runtime vs crun");
}
