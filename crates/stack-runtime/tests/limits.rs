//! Cgroup limits, observed through the kernel: OOM, pids, CPU quota, blkio.

mod common;

use std::time::{Duration, Instant};

use common::{Bundle, create, run};
use nix::sys::signal::Signal;

#[test]
fn memory_limit_oom_kill_is_reported() {
    stack_testing::require_root!();
    let b = Bundle::new(&["awk", "BEGIN { s = \"x\"; while (1) s = s s }"], |v| {
        v["linux"]["resources"]["memory"] =
            serde_json::json!({"limit": 32 << 20, "swap": 32 << 20});
    });
    let (out, info, g) = run(&b, "oom", false);
    assert_eq!(info.signal, Some(libc::SIGKILL), "{out}");
    assert!(
        info.oom_killed,
        "the kill was not reported as OOM: {info:?}"
    );
    let cg = g.container().cgroup().clone();
    let limit_file = match cg.version {
        stack_runtime::cgroups::Version::V1 => "memory.limit_in_bytes",
        stack_runtime::cgroups::Version::V2 => "memory.max",
    };
    if cg.systemd_scope.is_some() {
        // systemd removed the scope's cgroup with its last process: the
        // OOM kill above is what shows its memory.max (vm-e2e reads the
        // file of a running one).
        return;
    }
    let dir = cg.dir("memory").unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join(limit_file))
            .unwrap_or_default()
            .trim(),
        (32u64 << 20).to_string()
    );
}

#[test]
fn fork_bomb_stops_at_pids_max() {
    stack_testing::require_root!();
    // The bomb runs in a subshell (busybox sh gives up at the first failed
    // fork); pid 1 then execs so it needs no free pid itself.
    let script =
        "(i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; exec sleep 30";
    let b = Bundle::new(&["sh", "-c", script], |v| {
        v["linux"]["resources"]["pids"] = serde_json::json!({"limit": 16});
    });
    let g = create(&b, "pids").unwrap();
    let mut c = g.container();
    let t0 = Instant::now();
    c.start().unwrap();
    let mut max_seen = 0;
    while t0.elapsed() < Duration::from_millis(1500) {
        max_seen = max_seen.max(c.stats().unwrap().pids_current);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(max_seen >= 10, "the loop did not fork ({max_seen})");
    assert!(max_seen <= 16, "pids.max exceeded: {max_seen}");
    // The host stays responsive: a host process starts and finishes promptly.
    let t = Instant::now();
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success()
    );
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(c.stats().unwrap().pids_limit, Some(16));
    c.kill(Signal::SIGKILL).unwrap();
    c.wait().unwrap();
}

#[test]
fn half_a_cpu_gets_about_half_a_core() {
    stack_testing::require_root!();
    let b = Bundle::new(&["sh", "-c", "while :; do :; done"], |v| {
        let quota = stack_runtime::plan::cpus_to_quota(0.5, 100_000);
        v["linux"]["resources"]["cpu"] = serde_json::json!({"quota": quota, "period": 100_000});
    });
    let g = create(&b, "cpu").unwrap();
    let mut c = g.container();
    c.start().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (u0, t0) = (c.stats().unwrap().cpu_usage_ns, Instant::now());
    std::thread::sleep(Duration::from_millis(2000));
    let (u1, t1) = (c.stats().unwrap().cpu_usage_ns, Instant::now());
    let ratio = (u1 - u0) as f64 / (t1 - t0).as_nanos() as f64;
    assert!(
        (0.4..=0.6).contains(&ratio),
        "cpu share {ratio:.3} not within 0.5 ± 20%"
    );
    c.kill(Signal::SIGKILL).unwrap();
    c.wait().unwrap();
}

/// major:minor of a real block device (the one holding the rootfs fixture, or the first disk).
fn block_device() -> Option<(u64, u64)> {
    for e in std::fs::read_dir("/sys/block").ok()?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !["sd", "vd", "nvme", "xvd", "hd"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
        let (a, b) = dev.trim().split_once(':')?;
        return Some((a.parse().ok()?, b.parse().ok()?));
    }
    None
}

#[test]
fn blkio_throttles_are_written() {
    stack_testing::require_root!();
    let Some((major, minor)) = block_device() else {
        panic!("no block device under /sys/block to throttle");
    };
    let b = Bundle::new(&["true"], |v| {
        v["linux"]["resources"]["blockIO"] = serde_json::json!({
            "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 300}]
        });
    });
    let g = create(&b, "blkio").unwrap();
    let c = g.container();
    let cg = c.cgroup();
    match cg.version {
        stack_runtime::cgroups::Version::V1 => {
            let d = cg.dir("blkio").unwrap();
            let rbps = std::fs::read_to_string(d.join("blkio.throttle.read_bps_device")).unwrap();
            assert!(rbps.contains(&format!("{major}:{minor} 1048576")), "{rbps}");
            let wiops =
                std::fs::read_to_string(d.join("blkio.throttle.write_iops_device")).unwrap();
            assert!(wiops.contains(&format!("{major}:{minor} 300")), "{wiops}");
        }
        stack_runtime::cgroups::Version::V2 => {
            let d = cg.dir("io").unwrap();
            let max = std::fs::read_to_string(d.join("io.max")).unwrap();
            assert!(
                max.contains("rbps=1048576") && max.contains("wiops=300"),
                "{max}"
            );
        }
    }
}

#[test]
fn delete_removes_the_cgroup() {
    stack_testing::require_root!();
    let b = Bundle::new(&["true"], |v| {
        v["linux"]["resources"]["memory"] = serde_json::json!({"limit": 64 << 20});
    });
    let (_out, info, g) = run(&b, "cgdel", false);
    assert_eq!(info.code, Some(0));
    let c = g.container();
    let mut dirs = c.cgroup().dirs();
    match &c.cgroup().systemd_scope {
        // systemd removes a scope's cgroup with its last process; the
        // container's own slice stays until the container is deleted.
        Some(scope) if scope.own_slice => {
            let slice = dirs[0].parent().unwrap().to_path_buf();
            assert!(slice.exists(), "{}", slice.display());
            dirs.push(slice);
        }
        _ => assert!(dirs.iter().all(|d| d.exists())),
    }
    c.delete(false).unwrap();
    assert!(dirs.iter().all(|d| !d.exists()), "cgroup left behind");
}
