//! Crash consistency of create: a container directory left without
//! `state.json` (its creator died between making the cgroup and the
//! commit) is rolled back by `recover`, by `discard` and by a new create of
//! the same id, with its process, cgroup (every hierarchy) and directory;
//! a create still in progress is left alone.

mod common;

use std::fs::File;

use common::*;
use nix::fcntl::{Flock, FlockArg};
use stack_runtime::{Container, Error};

/// Creates a container whose init waits in its cgroup, then takes its
/// `state.json` away: what a creator killed just before its commit leaves.
fn half_made(prefix: &str) -> (Guard, Vec<std::path::PathBuf>, i32) {
    let bundle = Bundle::new(&["sleep", "1000"], |_| {});
    let g = create(&bundle, prefix).expect("create");
    let c = g.container();
    let (dirs, pid) = (c.cgroup().dirs(), c.pid());
    assert!(dirs.iter().all(|d| d.exists()));
    std::fs::remove_file(g.root.path().join(&g.id).join("state.json")).unwrap();
    assert!(matches!(
        Container::load(g.root.path(), &g.id),
        Err(Error::NotFound(_))
    ));
    (g, dirs, pid)
}

fn gone(g: &Guard, dirs: &[std::path::PathBuf], pid: i32) {
    assert!(!g.root.path().join(&g.id).exists(), "container dir left");
    let leftover: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
    assert!(leftover.is_empty(), "cgroup left behind: {leftover:?}");
    // The init is this test's child: it must have been killed (a zombie
    // to reap), not be waiting still.
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let pid = nix::unistd::Pid::from_raw(pid);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Ok(WaitStatus::StillAlive) => panic!("init {pid} still alive"),
            _ => break,
        }
    }
}

#[test]
fn recover_rolls_back_a_half_made_container() {
    stack_testing::require_root!();
    let (g, dirs, pid) = half_made("crash-recover");
    let rolled = stack_runtime::recover(g.root.path()).unwrap();
    assert_eq!(rolled, std::slice::from_ref(&g.id));
    gone(&g, &dirs, pid);
    assert!(stack_runtime::recover(g.root.path()).unwrap().is_empty());
}

#[test]
fn discard_removes_a_half_made_container() {
    stack_testing::require_root!();
    let (g, dirs, pid) = half_made("crash-discard");
    Container::discard(g.root.path(), &g.id).unwrap();
    gone(&g, &dirs, pid);
    // Nothing there is not an error.
    Container::discard(g.root.path(), &g.id).unwrap();
}

#[test]
fn a_new_create_of_the_same_id_owns_a_fresh_cgroup() {
    stack_testing::require_root!();
    let (g, dirs, pid) = half_made("crash-reuse");
    let bundle = Bundle::new(&["true"], |_| {});
    let mut opts = stack_runtime::CreateOptions::new(&g.id, bundle.path(), g.root.path());
    opts.init_binary = INIT.into();
    let mut c = Container::create(opts).expect("create over a half-made container");
    assert!(
        c.state.cgroup_owned,
        "the leftover cgroup was joined as not owned"
    );
    c.start().unwrap();
    c.wait().unwrap();
    c.delete(false).unwrap();
    gone(&g, &dirs, pid);
}

#[test]
fn a_create_in_progress_is_left_alone() {
    stack_testing::require_root!();
    let root = tempfile::tempdir().unwrap();
    let id = unique_id("crash-busy");
    let dir = root.path().join(&id);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("intent.json"), b"{}").unwrap();
    // The creator's lock, held as a live creator holds it.
    let lock = Flock::lock(
        File::open(dir.join("intent.json")).unwrap(),
        FlockArg::LockExclusiveNonblock,
    )
    .unwrap();
    assert!(stack_runtime::recover(root.path()).unwrap().is_empty());
    assert!(matches!(
        Container::discard(root.path(), &id),
        Err(Error::Exists(_))
    ));
    let bundle = Bundle::new(&["true"], |_| {});
    let mut opts = stack_runtime::CreateOptions::new(&id, bundle.path(), root.path());
    opts.init_binary = INIT.into();
    assert!(matches!(Container::create(opts), Err(Error::Exists(_))));
    assert!(dir.exists());
    drop(lock);
    // Once the creator is gone it is rolled back (nothing was made yet).
    assert_eq!(stack_runtime::recover(root.path()).unwrap(), [id]);
    assert!(!dir.exists());
}

#[test]
fn staging_directories_of_crashed_creates_are_removed() {
    stack_testing::require_root!();
    let root = tempfile::tempdir().unwrap();
    let staged = root.path().join(".x.creating.1.0");
    std::fs::create_dir(&staged).unwrap();
    std::fs::write(staged.join("intent.json"), b"{}").unwrap();
    assert!(stack_runtime::recover(root.path()).unwrap().is_empty());
    assert!(!staged.exists());
}
