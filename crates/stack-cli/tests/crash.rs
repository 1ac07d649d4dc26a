//! Crash consistency end to end: what a supervisor killed at the wrong
//! moment leaves is taken up by the next `up` and removed by `down`, which
//! leaves nothing (runtime state, cgroups in every hierarchy, mounts,
//! project records, sockets).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Env;
use common::leaks::assert_nothing_left;

#[test]
fn a_container_without_state_is_rolled_back_by_up_and_down_leaves_nothing() {
    let env = Env::new("cr-half", 187);
    env.write("services:\n  web:\n    image: busybox\n    command: [sleep, '1000']\n");
    env.ok(&["up", "-d"]);
    env.ok(&["stop"]);
    let (_, id, _) = env.containers().pop().expect("one container");
    // What a supervisor killed between making the container's cgroup and
    // recording its state leaves behind.
    let state = env.root().join("runtime").join(&id).join("state.json");
    std::fs::remove_file(&state).unwrap();

    env.ok(&["up", "-d"]);
    let ps = env.ok(&["ps"]);
    assert!(ps.contains("running") || ps.contains("Up"), "{ps}");
    assert!(Path::new(&state).exists(), "the container was made again");

    env.ok(&["down"]);
    assert_nothing_left(&env);
}

#[test]
fn down_removes_a_half_made_container_and_its_cgroups() {
    let env = Env::new("cr-down", 188);
    env.write("services:\n  web:\n    image: busybox\n    command: [sleep, '1000']\n");
    env.ok(&["up", "-d"]);
    let (_, id, _) = env.containers().pop().expect("one container");
    // Running, and its state gone: nothing but the write-ahead intent
    // tells what it holds.
    std::fs::remove_file(env.root().join("runtime").join(&id).join("state.json")).unwrap();
    env.ok(&["down"]);
    assert_nothing_left(&env);
}

#[test]
fn a_command_meeting_a_down_in_progress_waits_for_it_and_then_does_its_job() {
    let env = Env::new("cr-meet", 190);
    env.write(
        "services:\n  web:\n    image: busybox\n    command: [sh, -c, 'trap \"\" TERM; sleep 1000']\n    stop_grace_period: 2s\n",
    );
    env.ok(&["up", "-d"]);
    let file = env.file();
    let file = file.to_str().unwrap();
    let mut down = env
        .command(&["down", "-f", file, "-p", &env.project])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The down waits out the grace period; this up is queued behind it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let up = env.stack(&["up", "-d", "-f", file, "-p", &env.project]);
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(down.wait().unwrap().success());
    assert!(up.status.success(), "up after a down failed:\n{stderr}");
    assert!(stderr.contains("is finishing a down; waiting"), "{stderr}");
    assert!(!stderr.contains("reset"), "{stderr}");
    assert!(!stderr.contains("os error"), "{stderr}");
    let ps = env.ok(&["ps"]);
    assert!(ps.contains("web"), "{ps}");
    env.ok(&["down"]);
    assert_nothing_left(&env);
}

#[test]
fn down_v_after_down_removes_the_files_volumes() {
    let env = Env::new("cr-vols", 184);
    env.write(
        "services:\n  web:\n    image: busybox\n    command: [sleep, '1000']\n    volumes: [data:/data]\nvolumes:\n  data:\n",
    );
    env.ok(&["up", "-d"]);
    env.ok(&["down"]);
    let volume = env.root().join("volumes").join("cr-vols_data");
    assert!(volume.exists(), "a plain down keeps the volume");
    let said = env.ok(&["down", "-v"]);
    assert!(said.contains("removed"), "{said}");
    assert!(!volume.exists(), "down -v left the volume");
    assert_nothing_left(&env);
    assert!(env.ok(&["down", "-v"]).contains("nothing to remove"));
}

/// A small tmpfs, unmounted even when the test panics.
struct SmallFs(std::path::PathBuf);

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn up_refuses_a_root_without_room_and_says_how_much_it_needs() {
    let env = Env::empty("cr-full", 183);
    env.write("services:\n  web:\n    image: busybox\n");
    let small = env.dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &small,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    let _guard = SmallFs(small.clone());
    let out = std::process::Command::new(common::stack_bin())
        .arg("--root")
        .arg(small.join("root"))
        .arg("--run-dir")
        .arg(env.run_dir())
        .args([
            "up",
            "-d",
            "-f",
            env.file().to_str().unwrap(),
            "-p",
            &env.project,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "not enough space under {}: up needs at least 32 MiB free",
            small.join("root").display()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error").count(), 1, "{stderr}");
    assert!(!small.join("root").exists(), "something was written");
    assert!(!env.run_dir().join("supervisors").exists());
}

#[test]
fn a_supervisor_killed_while_creating_a_container_is_recovered_by_the_next_up() {
    for (i, point) in ["create-after-cgroup", "create-before-commit"]
        .into_iter()
        .enumerate()
    {
        let env = Env::new(&format!("cr-kill{i}"), 181 - i as u8);
        env.write("services:\n  web:\n    image: busybox\n    command: [sleep, '1000']\n");
        let file = env.file();
        let file = file.to_str().unwrap();
        let crashed = env
            .command(&["up", "-d", "-f", file, "-p", &env.project])
            .env("STACK_FAULT", point)
            .output()
            .unwrap();
        assert!(!crashed.status.success(), "{point}: up survived the fault");
        let half: Vec<String> = std::fs::read_dir(env.root().join("runtime"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert_eq!(half.len(), 1, "{point}: no half-made container: {half:?}");

        // One `up` recovers; `down` then leaves nothing.
        env.ok(&["up", "-d"]);
        let ps = env.ok(&["ps"]);
        assert!(ps.contains("web"), "{point}: {ps}");
        env.ok(&["down"]);
        assert_nothing_left(&env);
    }
}

/// A root on its own small tmpfs: taken down, then unmounted, also when
/// the test panics.
struct SmallRoot {
    env: Env,
}

impl SmallRoot {
    fn new(project: &str, subnet: u8, size: &str) -> Self {
        let env = Env::empty(project, subnet);
        std::fs::create_dir(env.root()).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &env.root(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size}").as_str()),
        )
        .unwrap();
        Self { env }
    }
}

impl Drop for SmallRoot {
    fn drop(&mut self) {
        let _ = self.env.stack(&[
            "down",
            "-v",
            "-f",
            self.env.file().to_str().unwrap(),
            "-p",
            &self.env.project,
        ]);
        let _ = nix::mount::umount2(&self.env.root(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The highest `line N` in the log file at `path`.
fn last_line(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .rsplit("line ")
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn a_full_disk_under_a_running_stack_pauses_its_logs_and_kills_nothing() {
    let small = SmallRoot::new("cr-disk", 245, "64m");
    let env = &small.env;
    env.load(&common::busybox_archive());
    env.write(
        "services:\n  loud:\n    image: busybox\n    init: true\n    command: [sh, -c, 'i=0; while :; do j=0; while [ $$j -lt 10 ]; do i=$$((i+1)); j=$$((j+1)); echo line $$i; done; sleep 0.05; done']\n",
    );
    env.ok(&["up", "-d"]);
    let (name, _, pid) = env.containers().pop().unwrap();
    let pid = pid.expect("running") as i32;
    let log = env
        .root()
        .join("projects")
        .join(&env.project)
        .join("containers")
        .join(&name)
        .join("container.log");
    let started = Instant::now();
    while last_line(&log) < 10 {
        assert!(started.elapsed() < Duration::from_secs(20), "no output");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Fill the root to the last byte.
    let filler = env.root().join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 1 << 20];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    while std::io::Write::write_all(&mut file, &chunk[..4096]).is_ok() {}
    drop(file);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok(),
        "the service died on a full disk"
    );

    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let at_freed = last_line(&log);
    while last_line(&log) < at_freed + 20 {
        assert!(
            freed.elapsed() < Duration::from_secs(5),
            "logs did not resume after space returned: {at_freed} then {}",
            last_line(&log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, _, pid_after) = env.containers().pop().unwrap();
    assert_eq!(pid_after, Some(i64::from(pid)), "the service was restarted");
    // The warning that writing paused is lost with the full disk; the one
    // that it resumed says how much was dropped.
    let supervisor_log = std::fs::read_to_string(
        env.root()
            .join("projects")
            .join(&env.project)
            .join("supervisor.log"),
    )
    .unwrap_or_default();
    assert!(
        supervisor_log.contains("writing resumed") && supervisor_log.contains("lines dropped"),
        "{supervisor_log}"
    );
    assert!(!supervisor_log.contains("panicked"), "{supervisor_log}");
    env.ok(&["down", "-v"]);
}
