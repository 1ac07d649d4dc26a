//! One `RUN` step: the stage's layers as overlay lower dirs with a fresh
//! upper dir, a container made by the runtime on that root (the stage's user,
//! env and workdir; the build's bridge network, none or the host's), and its
//! exit. What the command
//! wrote is left in the upper dir, which becomes the step's layer.

use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use stack_runtime::{Container, CreateOptions, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("mount the step's root at {path}: {source}")]
    Mount { path: PathBuf, source: nix::Error },
    #[error("overlay options for {0} are too long (too many layers)")]
    TooManyLayers(PathBuf),
    #[error("user {0:?} not found in the image's /etc/passwd")]
    UnknownUser(String),
    #[error("the runtime: {0}")]
    Runtime(#[from] stack_runtime::Error),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A scratch directory with an overlay mounted in it; unmounted and removed
/// on drop, also when a step fails or panics.
pub struct Scratch {
    pub dir: PathBuf,
    pub merged: PathBuf,
    pub upper: PathBuf,
    mounted: bool,
}

impl Scratch {
    /// Mounts `layers` (lowest first) with a fresh upper dir under `dir`.
    pub fn mount(dir: PathBuf, layers: &[PathBuf]) -> Result<Self, RunError> {
        let mut s = Scratch {
            merged: dir.join("merged"),
            upper: dir.join("upper"),
            dir,
            mounted: false,
        };
        let work = s.dir.join("work");
        let empty = s.dir.join("empty");
        for d in [&s.merged, &s.upper, &work, &empty] {
            fs::create_dir_all(d).map_err(io_at(d))?;
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).map_err(io_at(d))?;
        }
        let mut lowers = layers.to_vec();
        if lowers.is_empty() {
            lowers.push(empty);
        }
        let data = stack_image::rootfs::overlay_options(&lowers, &s.upper, &work);
        if data.len() > 4095 {
            return Err(RunError::TooManyLayers(s.dir.clone()));
        }
        mount(
            Some("overlay"),
            &s.merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|source| RunError::Mount {
            path: s.merged.clone(),
            source,
        })?;
        s.mounted = true;
        Ok(s)
    }

    /// Unmounts, leaving the upper dir to be taken.
    pub fn unmount(&mut self) -> Result<(), RunError> {
        if self.mounted {
            umount2(&self.merged, MntFlags::MNT_DETACH).map_err(|source| RunError::Mount {
                path: self.merged.clone(),
                source,
            })?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.unmount();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// What a `RUN` runs with.
pub struct RunSpec<'a> {
    pub id: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub network: StepNetwork<'a>,
    /// `RUN --mount`s, the cache ones resolved to their host directory.
    pub mounts: Vec<StepMount>,
    /// The size of `/dev/shm` in bytes (`build.shm_size`); the runtime's
    /// default (64 MiB) when `None`.
    pub shm_size: Option<u64>,
    pub init_binary: &'a Path,
    /// The runtime's state root.
    pub runtime_root: &'a Path,
}

/// The network a step runs in.
#[derive(Debug, Clone, Copy)]
pub enum StepNetwork<'a> {
    /// Only its own loopback.
    None,
    /// The host's: it reaches what the host reaches.
    Host,
    /// A namespace on the build's bridge, with the resolver that network's
    /// DNS serves.
    Bridge {
        netns: &'a Path,
        resolv_conf: &'a str,
    },
}

/// A mount of one step: over the overlay, so nothing under it reaches the
/// layer.
#[derive(Debug, Clone)]
pub enum StepMount {
    /// A host directory or file: a cache mount's (read-write), a bind
    /// mount's or a secret's.
    Dir {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    Tmpfs {
        target: String,
    },
}

/// How a step ended: its exit status and everything it printed.
pub struct Outcome {
    pub status: i32,
    pub output: String,
}

/// Runs one step in `root` (a mounted overlay).
pub fn run_step(root: &Path, spec_in: &RunSpec<'_>) -> Result<Outcome, RunError> {
    let (uid, gid) = resolve_user(root, &spec_in.user)?;
    // The working directory exists before the step, as Docker makes it.
    let cwd = root.join(spec_in.cwd.trim_start_matches('/'));
    fs::create_dir_all(&cwd).map_err(io_at(&cwd))?;

    let args: Vec<&str> = spec_in.args.iter().map(String::as_str).collect();
    let mut spec: Spec = stack_runtime::default_spec(&root.to_string_lossy(), &args);
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_env(Some(spec_in.env.clone()));
    process.set_cwd(PathBuf::from(&spec_in.cwd));
    let mut user = process.user().clone();
    user.set_uid(uid);
    user.set_gid(gid);
    process.set_user(user);
    spec.set_process(Some(process));
    spec.set_hostname(Some("stack-build".into()));
    let resolv_conf = match spec_in.network {
        StepNetwork::None => None,
        StepNetwork::Host => {
            // The host's network: a build reaches what the host reaches,
            // and resolves names as the host does.
            set_network_namespace(&mut spec, None);
            Some(PathBuf::from("/etc/resolv.conf"))
        }
        StepNetwork::Bridge { netns, resolv_conf } => {
            set_network_namespace(&mut spec, Some(netns));
            let bundle = root.parent().unwrap_or(root);
            let path = bundle.join("resolv.conf");
            fs::write(&path, resolv_conf).map_err(io_at(&path))?;
            Some(path)
        }
    };
    // Bound over the image's own file only when it has one, so the layer
    // does not change.
    let target = root.join("etc/resolv.conf");
    if let Some(source) = resolv_conf
        && fs::symlink_metadata(&target).is_ok_and(|m| m.is_file())
        && source.is_file()
    {
        let mount = oci_spec::runtime::MountBuilder::default()
            .destination("/etc/resolv.conf")
            .typ("bind")
            .source(source)
            .options(vec!["rbind".into(), "ro".into()])
            .build()
            .expect("a complete bind mount");
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        mounts.push(mount);
        spec.set_mounts(Some(mounts));
    }

    if !spec_in.mounts.is_empty() {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for m in &spec_in.mounts {
            let built = match m {
                StepMount::Dir {
                    source,
                    target,
                    readonly,
                } => oci_spec::runtime::MountBuilder::default()
                    .destination(target)
                    .typ("bind")
                    .source(source)
                    .options(vec![
                        "rbind".into(),
                        if *readonly { "ro" } else { "rw" }.into(),
                    ])
                    .build(),
                StepMount::Tmpfs { target } => oci_spec::runtime::MountBuilder::default()
                    .destination(target)
                    .typ("tmpfs")
                    .source("tmpfs")
                    .options(vec!["nosuid".into(), "nodev".into(), "mode=755".into()])
                    .build(),
            };
            mounts.push(built.expect("a complete mount"));
        }
        spec.set_mounts(Some(mounts));
    }

    if let Some(size) = spec_in.shm_size {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for m in mounts
            .iter_mut()
            .filter(|m| m.destination() == Path::new("/dev/shm"))
        {
            let mut options: Vec<String> = m
                .options()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|o| !o.starts_with("size="))
                .collect();
            options.push(format!("size={size}"));
            m.set_options(Some(options));
        }
        spec.set_mounts(Some(mounts));
    }

    let bundle = root
        .parent()
        .map_or_else(|| PathBuf::from("/tmp"), Path::to_path_buf);
    let log_path = bundle.join("output");
    let log = File::options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&log_path)
        .map_err(io_at(&log_path))?;
    let devnull = File::open("/dev/null").map_err(io_at(Path::new("/dev/null")))?;
    let mut opts = CreateOptions::new(spec_in.id.clone(), &bundle, spec_in.runtime_root);
    opts.spec = Some(spec);
    opts.init_binary = spec_in.init_binary.to_owned();
    opts.default_seccomp = true;
    opts.stdio = Stdio {
        stdin: Some(devnull.into()),
        stdout: Some(log.try_clone().map_err(io_at(&log_path))?.into()),
        stderr: Some(log.try_clone().map_err(io_at(&log_path))?.into()),
    };
    let mut container = Container::create(opts)?;
    let result = container.start().and_then(|()| container.wait());
    let _ = container.delete(true);
    let exit = result?;
    let mut output = String::new();
    let mut log = log;
    log.rewind().map_err(io_at(&log_path))?;
    let mut bytes = Vec::new();
    log.read_to_end(&mut bytes).map_err(io_at(&log_path))?;
    output.push_str(&String::from_utf8_lossy(&bytes));
    Ok(Outcome {
        status: exit.status(),
        output,
    })
}

/// Leaves the step in the host's network namespace (`None`) or puts it in
/// the pinned one at `path`.
fn set_network_namespace(spec: &mut Spec, path: Option<&Path>) {
    let Some(ns) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    else {
        return;
    };
    match path {
        None => ns.retain(|n| n.typ() != LinuxNamespaceType::Network),
        Some(path) => {
            for n in ns
                .iter_mut()
                .filter(|n| n.typ() == LinuxNamespaceType::Network)
            {
                n.set_path(Some(path.to_owned()));
            }
        }
    }
}

/// The `/etc/hosts` of a step with `extra_hosts`: the image's own (or the
/// loopback names when it has none) and one line per extra host.
pub fn hosts_file(root: &Path, extra: &[(String, std::net::IpAddr)]) -> String {
    let mut text = fs::read_to_string(root.join("etc/hosts")).unwrap_or_else(|_| {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".to_owned()
    });
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for (host, ip) in extra {
        text.push_str(&format!("{ip}\t{host}\n"));
    }
    text
}

/// Removes what the runtime made in `upper` only to mount over (an empty
/// file or directory at a mount's target, and parents it had to make), so a
/// step's mounts leave no trace in its layer, as BuildKit does. What exists
/// in a layer below, or was written into, stays.
pub fn remove_mount_stubs(upper: &Path, lowers: &[PathBuf], mounts: &[StepMount]) {
    for m in mounts {
        let target = match m {
            StepMount::Dir { target, .. } | StepMount::Tmpfs { target } => target,
        };
        let mut rel = PathBuf::from(target.trim_start_matches('/'));
        loop {
            if rel.as_os_str().is_empty() || lowers.iter().any(|l| l.join(&rel).exists()) {
                break;
            }
            let path = upper.join(&rel);
            let Ok(meta) = fs::symlink_metadata(&path) else {
                break;
            };
            let removed = if meta.is_dir() {
                fs::remove_dir(&path).is_ok()
            } else {
                meta.is_file() && meta.len() == 0 && fs::remove_file(&path).is_ok()
            };
            if !removed {
                break;
            }
            rel.pop();
        }
    }
}

/// `user[:group]` as ids, names looked up in the root's passwd and group files.
pub fn resolve_user(root: &Path, user: &str) -> Result<(u32, u32), RunError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    let lookup = |file: &str, name: &str| -> Option<(u32, Option<u32>)> {
        file.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| {
                (
                    f.get(2).and_then(|v| v.parse().ok()).unwrap_or(0),
                    f.get(3).and_then(|v| v.parse().ok()),
                )
            })
        })
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => lookup(&passwd, u).ok_or_else(|| RunError::UnknownUser(u.to_owned()))?,
    };
    let gid = match g {
        None => primary.unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = fs::read_to_string(root.join("etc/group")).unwrap_or_default();
                lookup(&group, g)
                    .map(|(id, _)| id)
                    .ok_or_else(|| RunError::UnknownUser(user.to_owned()))?
            }
        },
    };
    Ok((uid, gid))
}
