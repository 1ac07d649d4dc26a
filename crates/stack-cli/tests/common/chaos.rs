//! What the crash tests share: finding the supervisor and the log keeper
//! of a project by their locks, killing and continuing processes, a root
//! on a small tmpfs to fill, and reading how far a container's log got.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::Env;

/// The pid of whoever holds `locks/<name>.lock`, if it is alive.
pub fn lock_holder(env: &Env, name: &str) -> Option<i32> {
    let lock = env.run_dir().join("locks").join(format!("{name}.lock"));
    let holder: serde_json::Value = serde_json::from_slice(&std::fs::read(lock).ok()?).ok()?;
    let pid = holder["pid"].as_i64()? as i32;
    kill(Pid::from_raw(pid), None).ok().map(|()| pid)
}

/// The pid of the project's supervisor, if one runs.
pub fn supervisor_pid(env: &Env) -> Option<i32> {
    lock_holder(env, &env.project)
}

/// The pid of the project's log keeper, if one runs.
pub fn keeper_pid(env: &Env) -> Option<i32> {
    lock_holder(env, &format!("{}.logs", env.project))
}

/// Waits up to `limit` for a log keeper other than `old` to run.
pub fn new_keeper(env: &Env, old: i32, limit: Duration) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(pid) = keeper_pid(env).filter(|&pid| pid != old) {
            return pid;
        }
        assert!(
            started.elapsed() < limit,
            "no new log keeper within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn sigkill(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// Continues a stopped process, also when the test panics (a process
/// stopped for good would hang the cleanup).
pub struct Resume(pub i32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGCONT);
    }
}

/// The pid a process stopped at a fault point (`STACK_FAULT_PAUSE=dir`)
/// wrote into `dir/point`, waiting up to `limit` for it.
pub fn stopped_at(dir: &Path, point: &str, limit: Duration) -> i32 {
    let marker = dir.join(point);
    let started = Instant::now();
    loop {
        // The pid may not be written yet.
        if let Some(pid) = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|pid| pid.parse::<i32>().ok())
        {
            return pid;
        }
        assert!(
            started.elapsed() < limit,
            "the step {point} was never reached"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The log file of container `name`.
pub fn container_log(env: &Env, name: &str) -> PathBuf {
    env.root()
        .join("projects")
        .join(&env.project)
        .join("containers")
        .join(name)
        .join("container.log")
}

/// The highest `line N` in the log file at `path`.
pub fn last_line(path: &Path) -> u64 {
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

/// Waits up to `limit` for the log at `path` to reach `line N`.
pub fn wait_line(path: &Path, n: u64, limit: Duration) {
    let started = Instant::now();
    while last_line(path) < n {
        assert!(
            started.elapsed() < limit,
            "{} stopped at line {} before {n}",
            path.display(),
            last_line(path)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tmpfs mounted at a path, unmounted even when the test panics.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`1m`, `64m`) at `path`, made if missing.
    pub fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size}").as_str()),
        )
        .unwrap();
        Self(path.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// An [`Env`] whose root is a small tmpfs. Dropped in field order: the
/// project is taken down first, then the tmpfs unmounted.
pub struct SmallRoot {
    pub env: Env,
    _fs: Tmpfs,
}

impl SmallRoot {
    /// A root of `size` with the busybox image loaded.
    pub fn new(project: &str, subnet: u8, size: &str) -> Self {
        let env = Env::empty(project, subnet);
        let fs = Tmpfs::mount(&env.root(), size);
        env.load(&super::busybox_archive());
        Self { env, _fs: fs }
    }
}

/// Fills the filesystem of `dir` to the last byte with a file there;
/// removing the file returns the space.
pub fn fill(dir: &Path) -> Filler {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 1 << 20];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    while std::io::Write::write_all(&mut file, &chunk[..4096]).is_ok() {}
    while std::io::Write::write_all(&mut file, &chunk[..1]).is_ok() {}
    Filler(path)
}

/// The file that fills a disk; removed when dropped (also on panic).
pub struct Filler(pub PathBuf);

impl Filler {
    pub fn remove(self) {}
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
