//! The cgroup v2 code path, forced onto a real cgroup2 hierarchy: on this
//! hybrid host the one at /sys/fs/cgroup/unified, which has no controllers
//! (they are bound to v1) but real `cgroup.procs`, `cgroup.freeze`,
//! `cgroup.kill`, `cgroup.events` and `cpu.stat`. So placement, freezing,
//! killing, removal and CPU/task stats are checked for real here; limits are
//! checked only for failing clearly when their controller is missing.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Bundle, Guard, create_opts};
use stack_runtime::cgroups::{CgroupError, Version};
use stack_runtime::{Error, Status};

/// The cgroup2 mount: the hybrid one, or /sys/fs/cgroup on a pure v2 host.
fn v2_mount() -> PathBuf {
    let is_v2 =
        |p: &str| nix::sys::statfs::statfs(p).is_ok_and(|s| s.filesystem_type().0 == 0x6367_7270);
    for p in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        if is_v2(p) {
            return PathBuf::from(p);
        }
    }
    panic!("no cgroup2 hierarchy mounted at /sys/fs/cgroup/unified or /sys/fs/cgroup");
}

fn create_v2(b: &Bundle, prefix: &str) -> Result<Guard, Error> {
    create_opts(b, prefix, |o| o.cgroup_v2_mount = Some(v2_mount()))
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_process_is_placed_in_its_v2_cgroup_and_delete_removes_it() {
    stack_testing::require_root!();
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let g = create_v2(&b, "rt2-v2place").unwrap();
    let mut c = g.container();
    let cg = c.cgroup().clone();
    assert_eq!(cg.version, Version::V2);
    let dir = v2_mount().join(format!("stack/{}", g.id));
    assert_eq!(cg.dirs(), std::slice::from_ref(&dir));
    let pid = c.pid();
    // Its unified-hierarchy line names the container's cgroup...
    let own = read(PathBuf::from(format!("/proc/{pid}/cgroup")));
    assert!(
        own.lines().any(|l| l == format!("0::/stack/{}", g.id)),
        "{own}"
    );
    // ...and the cgroup lists it.
    assert_eq!(read(dir.join("cgroup.procs")).trim(), pid.to_string());
    c.start().unwrap();
    c.delete(true).unwrap();
    assert!(!dir.exists(), "cgroup {} left behind", dir.display());
}

#[test]
fn pause_freezes_through_cgroup_freeze_and_resume_thaws() {
    stack_testing::require_root!();
    // A counter the host reads through /proc/<pid>/root.
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; done",
        ],
        |_| {},
    );
    let g = create_v2(&b, "rt2-v2pause").unwrap();
    let mut c = g.container();
    c.start().unwrap();
    let counter = PathBuf::from(format!("/proc/{}/root/tmp/n", c.pid()));
    // Raw content: frozen between truncate and write it stays empty, and
    // must stay whatever it is.
    let snap = || std::fs::read_to_string(&counter).unwrap_or_default();
    let value = |s: &str| s.trim().parse::<u64>().unwrap_or(0);
    std::thread::sleep(Duration::from_millis(200));
    c.pause().unwrap();
    assert_eq!(c.status(), Status::Paused);
    let dir = c.cgroup().dirs()[0].clone();
    assert!(read(dir.join("cgroup.events")).contains("frozen 1"));
    assert_eq!(read(dir.join("cgroup.freeze")).trim(), "1");
    let (a, cpu_a) = (snap(), c.stats().unwrap().cpu_usage_ns);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(snap(), a, "a frozen container made progress");
    // Its CPU time may grow by the kernel's own work, not by its program's:
    // a controller enabled above it for another container (these tests run
    // in parallel) moves its tasks to the controller's new state, and the
    // kernel wakes a frozen task for that, which freezes again at once.
    // Running, the loop would have taken most of the 300 ms.
    let used = c.stats().unwrap().cpu_usage_ns - cpu_a;
    assert!(
        used < 50_000_000,
        "a frozen container used {} ms of CPU",
        used / 1_000_000
    );
    c.resume().unwrap();
    assert_eq!(c.status(), Status::Running);
    assert!(read(dir.join("cgroup.events")).contains("frozen 0"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while value(&snap()) <= value(&a) {
        assert!(
            std::time::Instant::now() < deadline,
            "no progress after resume"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Deleting a paused container kills it through cgroup.kill.
    c.pause().unwrap();
    c.delete(true).unwrap();
    assert!(!dir.exists());
}

#[test]
fn stats_read_what_the_hierarchy_has() {
    stack_testing::require_root!();
    let b = Bundle::new(&["sh", "-c", "sleep 100 & while :; do :; done"], |_| {});
    let g = create_v2(&b, "rt2-v2stats").unwrap();
    let mut c = g.container();
    c.start().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let s = c.stats().unwrap();
    // cpu.stat is core on v2: real usage, about the 300 ms of spinning.
    assert!(s.cpu_usage_ns > 50_000_000, "{s:?}");
    // From pids.current, or without the pids controller counted from
    // cgroup.threads (sh, sleep).
    assert_eq!(s.pids_current, 2, "{s:?}");
    let controllers = read(v2_mount().join("cgroup.controllers"));
    if controllers.split_whitespace().any(|c| c == "memory") {
        // A pure v2 host: real usage, no limit ("max").
        assert!(s.memory_usage > 0, "{s:?}");
    } else {
        // No memory controller: nothing made up.
        assert_eq!(s.memory_usage, 0);
    }
    assert_eq!(s.memory_limit, None);
    assert_eq!(s.pids_limit, None);
}

#[test]
fn limits_without_their_controller_fail_clearly_and_leave_nothing() {
    stack_testing::require_root!();
    let cases: [(&str, serde_json::Value, &str); 3] = [
        (
            "memory",
            serde_json::json!({"memory": {"limit": 64 << 20}}),
            "memory",
        ),
        ("pids", serde_json::json!({"pids": {"limit": 10}}), "pids"),
        (
            "cpu",
            serde_json::json!({"cpu": {"quota": 50000, "period": 100000}}),
            "cpu",
        ),
    ];
    let available = read(v2_mount().join("cgroup.controllers"));
    for (name, resources, want) in cases {
        let b = Bundle::new(&["true"], |v| v["linux"]["resources"] = resources.clone());
        let prefix = format!("rt2-v2lim{name}");
        if available.split_whitespace().any(|c| c == want) {
            // A pure v2 host has the controller: the limit applies.
            let g = create_v2(&b, &prefix).unwrap_or_else(|e| panic!("{name}: {e}"));
            drop(g);
            continue;
        }
        match create_v2(&b, &prefix) {
            Err(Error::Cgroup(CgroupError::MissingController { controller, .. })) => {
                assert_eq!(controller, want)
            }
            other => panic!(
                "{name}: expected a missing controller, got {:?}",
                other.map(|g| g.id.clone())
            ),
        }
        let stack = v2_mount().join("stack");
        let left: Vec<_> = std::fs::read_dir(&stack)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .collect();
        assert!(left.is_empty(), "{name}: cgroup left behind: {left:?}");
    }
    // A setting v2 has no equivalent for only warns.
    let b = Bundle::new(&["true"], |v| {
        v["linux"]["resources"] = serde_json::json!({"memory": {"disableOOMKiller": true}})
    });
    create_v2(&b, "rt2-v2oom").expect("disableOOMKiller alone is only a warning");
}

#[test]
fn a_mount_that_is_not_cgroup2_is_refused() {
    stack_testing::require_root!();
    let b = Bundle::new(&["true"], |_| {});
    match create_opts(&b, "rt2-v2bad", |o| o.cgroup_v2_mount = Some("/tmp".into())) {
        Err(Error::Cgroup(CgroupError::NotCgroup2(p))) => assert_eq!(p, PathBuf::from("/tmp")),
        other => panic!("expected NotCgroup2, got {:?}", other.map(|g| g.id.clone())),
    }
}

#[test]
fn hugetlb_limits_are_written_when_the_hierarchy_has_hugetlb() {
    stack_testing::require_root!();
    let root = v2_mount();
    if !read(root.join("cgroup.controllers"))
        .split_whitespace()
        .any(|c| c == "hugetlb")
    {
        // Then the limit must fail clearly instead.
        let b = Bundle::new(
            &["true"],
            |v| {
                v["linux"]["resources"] =
                    serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]})
            },
        );
        assert!(matches!(
            create_v2(&b, "rt2-v2huge"),
            Err(Error::Cgroup(CgroupError::MissingController {
                controller: "hugetlb",
                ..
            }))
        ));
        return;
    }
    let b = Bundle::new(
        &["true"],
        |v| {
            v["linux"]["resources"] =
                serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]})
        },
    );
    let g = create_v2(&b, "rt2-v2huge").unwrap();
    let dir = g.container().cgroup().dirs()[0].clone();
    assert_eq!(
        read(dir.join("hugetlb.2MB.max")).trim(),
        (4 << 20).to_string()
    );
    let b = Bundle::new(
        &["true"],
        |v| {
            v["linux"]["resources"] =
                serde_json::json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 4 << 20}]})
        },
    );
    match create_v2(&b, "rt2-v2huge3") {
        Err(Error::Cgroup(CgroupError::HugepageSize(s))) => assert_eq!(s, "3MB"),
        other => panic!(
            "expected a bad page size, got {:?}",
            other.map(|g| g.id.clone())
        ),
    }
}

/// major:minor of the first loop device: a block device every host has
/// once `loop` is loaded, that opens without harm when nothing is attached.
fn block_device() -> (u64, u64) {
    let dev = std::fs::read_to_string("/sys/block/loop0/dev")
        .expect("no /sys/block/loop0: modprobe loop");
    let (a, b) = dev.trim().split_once(':').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[test]
fn device_rules_are_enforced_by_the_cgroup_device_program() {
    stack_testing::require_root!();
    // The container makes a node for a real disk: mknod is allowed, opening
    // it is refused unless a rule allows it; /dev/null always works.
    let (major, minor) = block_device();
    let script = format!(
        "mknod /dev/disk b {major} {minor} || exit 9; \
         head -c 1 /dev/disk 2>&1 >/dev/null && echo disk-read || echo disk-denied; \
         echo x >/dev/null && echo null-ok"
    );
    let b = Bundle::new(&["sh", "-c", &script], |_| {});
    let g = create_v2(&b, "rt2-v2dev").unwrap();
    let mut c = g.container();
    c.start().unwrap();
    let mut g = g;
    let out = g.read_output();
    assert_eq!(c.wait().unwrap().code, Some(0), "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "head: /dev/disk: Operation not permitted",
            "disk-denied",
            "null-ok"
        ],
        "{out}"
    );

    // The same with a rule that allows reading it: the program, not
    // something else, was what refused.
    let b = Bundle::new(&["sh", "-c", &script], |v| {
        v["linux"]["resources"]["devices"] = serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "b", "major": major, "minor": minor, "access": "r"},
        ]);
    });
    let mut g = create_v2(&b, "rt2-v2dev").unwrap();
    let mut c = g.container();
    c.start().unwrap();
    let out = g.read_output();
    assert_eq!(c.wait().unwrap().code, Some(0), "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["disk-read", "null-ok"],
        "{out}"
    );
}
