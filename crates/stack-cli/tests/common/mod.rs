//! A fresh `--root` and run directory per test, the busybox fixture image
//! loaded into it, and a guard that takes the project down even when the
//! test panics.

#![allow(dead_code)]

pub mod chaos;
pub mod leaks;
pub mod limit;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn stack_bin() -> &'static str {
    env!("CARGO_BIN_EXE_stack")
}

/// The fixture image as an OCI archive, built once per test binary.
pub fn busybox_archive() -> PathBuf {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE
        .get_or_init(|| {
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("fixtures-{}", std::process::id()));
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images/build.py");
            let status = Command::new("python3")
                .arg(&script)
                .arg(&out)
                .output()
                .expect("python3 runs the fixture script (apt-get install python3 busybox-static)");
            assert!(
                status.status.success(),
                "fixture script failed: {}",
                String::from_utf8_lossy(&status.stderr)
            );
            out.join("busybox-oci.tar")
        })
        .clone()
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub project: String,
    /// The subnets this test's networks come from, its own so that tests
    /// running in parallel never pick the same one.
    pub pool: String,
}

impl Env {
    /// A new root with the busybox image loaded, for project `project`,
    /// whose networks take subnets from `10.220.<subnet>.0/24`.
    pub fn new(project: &str, subnet: u8) -> Self {
        let env = Self::empty(project, subnet);
        env.load(&busybox_archive());
        env
    }

    /// Like [`Env::new`] with an empty image store.
    pub fn empty(project: &str, subnet: u8) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stack-e2e-")
            .tempdir()
            .unwrap();
        Self {
            dir,
            project: project.to_owned(),
            pool: format!("10.220.{subnet}.0/24"),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("stack.yaml")
    }

    pub fn write(&self, yaml: &str) {
        std::fs::write(self.file(), yaml).unwrap();
    }

    /// Runs `stack ARGS`, failing the test when it does not end within
    /// [`limit::default_limit`].
    pub fn stack(&self, args: &[&str]) -> Output {
        self.stack_within(args, limit::default_limit())
    }

    /// Like [`Env::stack`] with a limit of its own.
    pub fn stack_within(&self, args: &[&str], within: std::time::Duration) -> Output {
        limit::output(self.command(args), within)
    }

    /// Like [`Env::stack`] for drop guards: a command past its limit is
    /// killed and reported, not a panic (which would abort a test already
    /// unwinding).
    pub fn stack_quiet(&self, args: &[&str]) {
        if let Err(e) = limit::try_output(self.command(args), limit::default_limit()) {
            eprintln!("cleanup: {e}");
        }
    }

    /// `stack --root ... --run-dir ... ARGS`, to add environment to.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(stack_bin());
        command
            .arg("--root")
            .arg(self.root())
            .arg("--run-dir")
            .arg(self.run_dir())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("STACK_ROOT")
            .env_remove("STACK_RUN")
            .env("STACK_SUBNET_POOL", &self.pool)
            // Build networks: the same third octet under 10.219.
            .env(
                "STACK_BUILD_SUBNET_POOL",
                self.pool.replacen("10.220.", "10.219.", 1),
            );
        command
    }

    /// `stack ARGS -f stack.yaml -p PROJECT`, asserting success.
    pub fn ok(&self, args: &[&str]) -> String {
        let file = self.file();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--file", file.to_str().unwrap(), "-p", &self.project]);
        let out = self.stack(&all);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "stack {args:?} failed:\n{text}");
        text
    }

    /// Container records: name → (id, pid).
    pub fn containers(&self) -> Vec<(String, String, Option<i64>)> {
        let dir = self
            .root()
            .join("projects")
            .join(&self.project)
            .join("containers");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            // A container being removed may have lost its record already.
            let Ok(bytes) = std::fs::read(entry.path().join("record.json")) else {
                continue;
            };
            let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            out.push((
                record["name"].as_str().unwrap().to_owned(),
                record["id"].as_str().unwrap().to_owned(),
                record["pid"].as_i64(),
            ));
        }
        out.sort();
        out
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let file = self.file();
        if file.exists() {
            self.stack_quiet(&[
                "down",
                "-v",
                "-f",
                file.to_str().unwrap(),
                "-p",
                &self.project,
            ]);
        } else {
            self.stack_quiet(&["down", "-v", "-p", &self.project]);
        }
        // Whatever is still mounted under the root (a failed test's leftovers).
        let root = self.root();
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            for line in mounts.lines() {
                if let Some(target) = line.split(' ').nth(1)
                    && target.starts_with(root.to_str().unwrap())
                {
                    let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
    }
}

/// The redis image built from Debian's packages (tests/fixtures/images/redis.py),
/// cached under the target directory across runs, keyed on package versions.
pub fn redis_archive() -> PathBuf {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE
        .get_or_init(|| {
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("redis-image");
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images/redis.py");
            let built = Command::new("python3")
                .arg(&script)
                .arg(&out)
                .output()
                .expect("python3 runs the redis fixture script");
            assert!(
                built.status.success(),
                "redis fixture script failed: {}",
                String::from_utf8_lossy(&built.stderr)
            );
            PathBuf::from(String::from_utf8(built.stdout).unwrap().trim())
        })
        .clone()
}

/// `debian:bookworm` built from Debian's packages and a local apt
/// repository holding gcc and libc6-dev (tests/fixtures/images/debian.py),
/// cached under the target directory across runs: (OCI archive, repository
/// directory).
pub fn debian_fixture() -> (PathBuf, PathBuf) {
    static FIXTURE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("debian-image");
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/images/debian.py");
            let built = Command::new("python3")
                .arg(&script)
                .arg(&out)
                .output()
                .expect("python3 runs the debian fixture script");
            assert!(
                built.status.success(),
                "debian fixture script failed: {}",
                String::from_utf8_lossy(&built.stderr)
            );
            let text = String::from_utf8(built.stdout).unwrap();
            let mut lines = text.lines().map(PathBuf::from);
            (lines.next().unwrap(), lines.next().unwrap())
        })
        .clone()
}

impl Env {
    /// Loads one more image archive into this root.
    pub fn load(&self, archive: &Path) {
        let out = self.stack(&["image", "load", "-i", archive.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `stack ARGS -f stack.yaml -p PROJECT` for another project in the same root.
    pub fn run_as(&self, project: &str, args: &[&str]) -> Output {
        let file = self.file();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--file", file.to_str().unwrap(), "-p", project]);
        self.stack(&all)
    }

    /// Like [`Env::ok`] for another project in the same root.
    pub fn ok_as(&self, project: &str, args: &[&str]) -> String {
        let out = self.run_as(project, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "stack {args:?} -p {project} failed:\n{text}"
        );
        text
    }

    /// `stack ps -a --format json`: (service, state, exit code) per container.
    pub fn states(&self, project: &str) -> Vec<(String, String, i64)> {
        let ps = self.ok_as(project, &["ps", "-a", "--format", "json"]);
        let mut out: Vec<_> = ps
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["Service"].as_str().unwrap().to_owned(),
                    v["State"].as_str().unwrap().to_owned(),
                    v["ExitCode"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        out.sort();
        out
    }
}

/// Takes a second project of an [`Env`] down, also when the test panics.
pub struct ProjectGuard<'a> {
    pub env: &'a Env,
    pub project: String,
}

impl Drop for ProjectGuard<'_> {
    fn drop(&mut self) {
        let file = self.env.file();
        self.env.stack_quiet(&[
            "down",
            "-v",
            "--file",
            file.to_str().unwrap(),
            "-p",
            &self.project,
        ]);
    }
}

/// The non-empty content of a file a container writes; `up -d` returns once
/// the processes run, so it may still be on its way.
pub fn wait_file(path: &Path) -> String {
    for _ in 0..400 {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.trim().is_empty()
        {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} never arrived", path.display());
}

/// The first host uptime (seconds, 10 ms resolution) a container wrote into
/// `path`, one reading per line.
pub fn first_uptime(path: &Path) -> f64 {
    let text = wait_file(path);
    text.lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}: {text:?}", path.display()))
}

/// Whether a network link whose name starts with `prefix` exists.
pub fn link_exists(prefix: &str) -> bool {
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&links.stdout)
        .lines()
        .any(|l| l.split(": ").nth(1).is_some_and(|n| n.starts_with(prefix)))
}

/// Waits for `pid` to be gone (it may not be our child).
pub fn wait_gone(pid: i32) {
    let started = std::time::Instant::now();
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // A zombie is gone for our purposes.
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
        {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{pid} lives on"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
