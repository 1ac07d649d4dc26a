//! Crash consistency end to end: what a supervisor killed at the wrong
//! moment leaves is taken up by the next `up` and removed by `down`, which
//! leaves nothing (runtime state, cgroups in every hierarchy, mounts,
//! project records, sockets).

mod common;

use std::path::Path;

use common::Env;
use common::leaks::assert_nothing_left;
use common::limit;

#[test]
fn a_container_without_state_is_rolled_back_by_up_and_down_leaves_nothing() {
    stack_testing::require_root!();
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
    stack_testing::require_root!();
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
    stack_testing::require_root!();
    let env = Env::new("cr-meet", 190);
    env.write(
        "services:\n  web:\n    image: busybox\n    command: [sh, -c, 'trap \"\" TERM; sleep 1000']\n    stop_grace_period: 2s\n",
    );
    env.ok(&["up", "-d"]);
    let file = env.file();
    let file = file.to_str().unwrap();
    let mut down = env.command(&["down", "-f", file, "-p", &env.project]);
    down.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let down = limit::spawn(down);
    // The down waits out the grace period; this up is queued behind it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let up = env.stack(&["up", "-d", "-f", file, "-p", &env.project]);
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(limit::finish(down, "stack down", limit::default_limit()));
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
    stack_testing::require_root!();
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

#[test]
fn a_supervisor_killed_while_creating_a_container_is_recovered_by_the_next_up() {
    stack_testing::require_root!();
    for (i, point) in ["create-after-cgroup", "create-before-commit"]
        .into_iter()
        .enumerate()
    {
        let env = Env::new(&format!("cr-kill{i}"), 181 - i as u8);
        env.write("services:\n  web:\n    image: busybox\n    command: [sleep, '1000']\n");
        let file = env.file();
        let file = file.to_str().unwrap();
        let mut command = env.command(&["up", "-d", "-f", file, "-p", &env.project]);
        command.env("STACK_FAULT", point);
        let crashed = limit::output(command, limit::default_limit());
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
