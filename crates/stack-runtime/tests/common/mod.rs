//! Shared test harness: the busybox fixture rootfs, bundles, and a drop guard
//! that kills and deletes each container even when a test panics.
#![allow(dead_code)]

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use stack_runtime::{Container, CreateOptions, ExitInfo, Stdio};

pub const INIT: &str = env!("CARGO_BIN_EXE_stack-runtime");

pub fn require_root() {
    assert!(
        stack_testing::is_root(),
        "these tests create namespaces and cgroups: run them as root"
    );
}

/// The busybox rootfs, built once per test binary by the project's fixture script.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("busybox-rootfs-{}", std::process::id()));
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/busybox-rootfs.sh");
        let st = std::process::Command::new("sh")
            .arg(&script)
            .arg(&out)
            .status()
            .expect("run busybox-rootfs.sh");
        assert!(
            st.success(),
            "busybox-rootfs.sh failed: apt-get install busybox-static"
        );
        out
    })
}

pub fn unique_id(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A bundle directory with config.json built from the default spec, then `edit`.
pub struct Bundle {
    pub dir: tempfile::TempDir,
}

impl Bundle {
    pub fn new(args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        let spec = stack_runtime::default_spec(rootfs().to_str().unwrap(), args);
        let mut v = serde_json::to_value(&spec).unwrap();
        // The fixture rootfs is shared by parallel tests: keep it read-only.
        v["root"]["readonly"] = serde_json::json!(true);
        v["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}));
        edit(&mut v);
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec_pretty(&v).unwrap(),
        )
        .unwrap();
        Bundle { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A container created by a test; killed and deleted on drop.
pub struct Guard {
    pub root: tempfile::TempDir,
    pub id: String,
    pub output: Option<OwnedFd>,
}

impl Guard {
    pub fn container(&self) -> Container {
        Container::load(self.root.path(), &self.id).unwrap()
    }

    /// Reads everything the container wrote to stdout/stderr (until it exits).
    pub fn read_output(&mut self) -> String {
        let fd = self.output.take().expect("output already read");
        let mut s = String::new();
        std::fs::File::from(fd).read_to_string(&mut s).unwrap();
        s
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Container::discard(self.root.path(), &self.id);
    }
}

pub fn create(bundle: &Bundle, prefix: &str) -> Result<Guard, stack_runtime::Error> {
    create_with(bundle, prefix, false)
}

pub fn create_with(
    bundle: &Bundle,
    prefix: &str,
    default_seccomp: bool,
) -> Result<Guard, stack_runtime::Error> {
    create_opts(bundle, prefix, |o| o.default_seccomp = default_seccomp)
}

/// Creates with the container's stdout and stderr on a pipe, after `edit`
/// has adjusted the options.
pub fn create_opts(
    bundle: &Bundle,
    prefix: &str,
    edit: impl FnOnce(&mut CreateOptions),
) -> Result<Guard, stack_runtime::Error> {
    require_root();
    let root = tempfile::tempdir().unwrap();
    let id = unique_id(prefix);
    let (r, w) = nix::unistd::pipe().unwrap();
    let w2 = w.try_clone().unwrap();
    let mut opts = CreateOptions::new(&id, bundle.path(), root.path());
    opts.init_binary = INIT.into();
    opts.stdio = Stdio {
        stdin: None,
        stdout: Some(w),
        stderr: Some(w2),
    };
    edit(&mut opts);
    Container::create(opts)?;
    Ok(Guard {
        root,
        id,
        output: Some(r),
    })
}

/// Creates, starts, collects output and the exit of a container.
pub fn run(bundle: &Bundle, prefix: &str, default_seccomp: bool) -> (String, ExitInfo, Guard) {
    let mut g = create_with(bundle, prefix, default_seccomp).expect("create");
    let mut c = g.container();
    c.start().expect("start");
    let out = g.read_output();
    let info = c.wait().expect("wait");
    (out, info, g)
}
