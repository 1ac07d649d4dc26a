//! The library API: create/start/state/kill/delete/pause/resume/exec/stats/wait.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

use crate::cgroups::{self, Cgroup, CgroupError, Stats};
use crate::halfmade;
use crate::hooks::{self, HookError};
use crate::init::{INIT_ENV, InitConfig, Mode};
use crate::plan::{self, PlanError};
use crate::protocol::{self, FromInit, ProtocolError, Step, ToInit};
use crate::seccomp::{self, SeccompError};
use crate::state::{self, State, StateError, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("loading {path}: {source}")]
    Spec {
        path: PathBuf,
        source: oci_spec::OciSpecError,
    },
    #[error("invalid spec: {0}")]
    InvalidSpec(&'static str),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spawning init stage {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("container init failed at step {step}: {message}")]
    Init {
        step: Step,
        errno: Option<i32>,
        message: String,
    },
    #[error("init stage: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("container {id} is {status}, cannot {op}")]
    BadState {
        id: String,
        status: Status,
        op: &'static str,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cgroup: {0}")]
    Cgroup(#[from] CgroupError),
    #[error("seccomp: {0}")]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        source: nix::Error,
    },
    #[error("{first}; cleanup also failed: {cleanup}")]
    WithCleanup {
        first: Box<Error>,
        cleanup: Box<Error>,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Standard streams for the container process; `None` inherits the caller's.
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Inputs of [`Container::create`].
#[derive(Debug)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    /// State root (`<root>/<id>/state.json`).
    pub root: PathBuf,
    /// The spec to run; `None` reads `<bundle>/config.json`.
    pub spec: Option<Spec>,
    /// A binary whose `main` calls [`crate::init_main`] first (e.g. `stack-runtime`).
    pub init_binary: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub stdio: Stdio,
    /// Apply Docker's default seccomp profile when the spec has none.
    pub default_seccomp: bool,
    /// Fork the init stage instead of re-executing `init_binary`, when the
    /// calling process has a single thread (checked; otherwise re-exec). For
    /// the CLI; a tokio program always gets the re-exec.
    pub fork_init: bool,
    /// Use the cgroup v2 hierarchy mounted here instead of whatever
    /// `/sys/fs/cgroup` is (e.g. `/sys/fs/cgroup/unified` on a hybrid host).
    pub cgroup_v2_mount: Option<PathBuf>,
    /// Run a minimal init as the container's pid 1 (Docker's `--init`): it
    /// reaps orphaned zombies, forwards signals to the program (pid 2) and
    /// exits with the program's status (128 + signal if it was killed).
    pub init: bool,
}

impl CreateOptions {
    pub fn new(
        id: impl Into<String>,
        bundle: impl Into<PathBuf>,
        root: impl Into<PathBuf>,
    ) -> Self {
        CreateOptions {
            id: id.into(),
            bundle: bundle.into(),
            root: root.into(),
            spec: None,
            init_binary: PathBuf::from("/proc/self/exe"),
            console_socket: None,
            pid_file: None,
            stdio: Stdio::default(),
            default_seccomp: false,
            fork_init: false,
            cgroup_v2_mount: None,
            init: false,
        }
    }
}

/// Inputs of [`Container::exec`].
#[derive(Debug)]
pub struct ExecOptions {
    pub init_binary: PathBuf,
    pub stdio: Stdio,
    pub console_socket: Option<PathBuf>,
}

/// How a container process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// The kernel OOM killer killed a process in the container's cgroup.
    pub oom_killed: bool,
}

impl ExitInfo {
    /// The shell-style status: the code, or 128 + signal.
    pub fn status(&self) -> i32 {
        self.code.unwrap_or_else(|| 128 + self.signal.unwrap_or(0))
    }
}

/// A container known to the runtime (its state directory exists).
#[derive(Debug)]
pub struct Container {
    pub state: State,
    dir: PathBuf,
}

/// What the init stage handshake produced.
struct Launched {
    pid: i32,
}

/// The descriptor number the init stage finds its end of the channel at.
const INIT_FD: i32 = 3;

/// Starts `init_binary` as the init stage with `posix_spawn`, which glibc
/// runs as `clone(CLONE_VM | CLONE_VFORK)`: no copy of the caller's page
/// tables, which for a large multi-threaded caller (the supervisor, per
/// probe) costs more than the exec itself. The channel is handed over as a
/// `dup2` onto [`INIT_FD`] (which also clears its close-on-exec flag in the
/// child only), so no other process started meanwhile inherits it.
fn spawn_init(init_binary: &Path, stdio: Stdio) -> Result<(Pid, UnixStream), Error> {
    use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let spawn_err = |e: nix::Error| Error::Spawn {
        path: init_binary.to_path_buf(),
        source: std::io::Error::from(e),
    };
    let (ours, theirs) = UnixStream::pair().map_err(io_err("socketpair", Path::new("")))?;
    let mut actions = PosixSpawnFileActions::init().map_err(spawn_err)?;
    // The standard streams first: their sources are open descriptors of
    // this process, so none of them is the channel's target number.
    for (fd, target) in [(&stdio.stdin, 0), (&stdio.stdout, 1), (&stdio.stderr, 2)] {
        if let Some(f) = fd {
            actions.add_dup2(f.as_raw_fd(), target).map_err(spawn_err)?;
        }
    }
    actions
        .add_dup2(theirs.as_raw_fd(), INIT_FD)
        .map_err(spawn_err)?;
    let mut attr = PosixSpawnAttr::init().map_err(spawn_err)?;
    // Signals blocked in the calling thread stay blocked across exec:
    // the init stage starts with none blocked, as a fresh process would.
    attr.set_sigmask(&nix::sys::signal::SigSet::empty())
        .map_err(spawn_err)?;
    attr.set_flags(PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK)
        .map_err(spawn_err)?;
    let path = CString::new(init_binary.as_os_str().as_bytes()).map_err(|_| Error::Spawn {
        path: init_binary.to_path_buf(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    let args = [c"stack-runtime-init"];
    let env = [CString::new(format!("{INIT_ENV}={INIT_FD}")).expect("no NUL in the variable")];
    let pid = posix_spawn(path.as_c_str(), &actions, &attr, &args, &env).map_err(spawn_err)?;
    drop(theirs);
    Ok((pid, ours))
}

fn write_id_maps(pid: u32, spec: &Spec) -> Result<(), Error> {
    let linux = spec.linux().clone().unwrap_or_default();
    for (file, maps) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let body: String = maps
            .iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        if body.is_empty() {
            continue;
        }
        let p = PathBuf::from(format!("/proc/{pid}/{file}"));
        fs::write(&p, body).map_err(io_err("write", &p))?;
    }
    Ok(())
}

/// The init stage process, spawned (always safe) or forked (single-threaded
/// callers): a child of this process either way, reaped at most once so
/// that a later kill never reaches a recycled pid.
struct InitProc {
    pid: Pid,
    status: Option<Option<String>>,
}

impl InitProc {
    fn new(pid: Pid) -> Self {
        InitProc { pid, status: None }
    }
    fn id(&self) -> u32 {
        self.pid.as_raw() as u32
    }
    fn wait(&mut self) -> Option<String> {
        let pid = self.pid;
        self.status
            .get_or_insert_with(|| waitpid(pid, None).ok().map(|s| format!("{s:?}")))
            .clone()
    }
    fn kill(&mut self) {
        if self.status.is_none() {
            let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        }
    }
}

fn single_threaded() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim() == "1"))
        })
        .unwrap_or(false)
}

/// Starts the init stage: by fork when allowed and the caller has one thread
/// (saves an exec), otherwise by re-exec of `init_binary`.
fn start_init(
    init_binary: &Path,
    stdio: Stdio,
    fork: bool,
    create_lock: Option<std::os::fd::RawFd>,
) -> Result<(InitProc, UnixStream), Error> {
    if !(fork && single_threaded()) {
        let (child, sock) = spawn_init(init_binary, stdio)?;
        return Ok((InitProc::new(child), sock));
    }
    let (ours, theirs) = UnixStream::pair().map_err(io_err("socketpair", Path::new("")))?;
    // SAFETY: the process has a single thread (checked above), so the child
    // may run arbitrary code until it execs or exits.
    match unsafe { nix::unistd::fork() }.map_err(|source| Error::Sys { op: "fork", source })? {
        nix::unistd::ForkResult::Child => {
            drop(ours);
            // The forked init may never exec (a minimal init as pid 1), and
            // the create lock must end with the create, not with it.
            if let Some(fd) = create_lock {
                // SAFETY: closes the child's copy of a descriptor it does not use.
                unsafe { libc::close(fd) };
            }
            for (fd, target) in [(stdio.stdin, 0), (stdio.stdout, 1), (stdio.stderr, 2)] {
                if let Some(f) = fd {
                    // SAFETY: dup2 onto a stdio number in the child.
                    unsafe { libc::dup2(f.as_raw_fd(), target) };
                }
            }
            let code = crate::init::run(theirs);
            // SAFETY: leave without running the parent's atexit handlers or destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            Ok((InitProc::new(child), ours))
        }
    }
}

/// What the caller does at the container init's hook point: runs the
/// prestart and createRuntime hooks for the container whose pid is given and
/// returns the OCI state JSON for the hooks that run inside the container.
type HookPoint<'a> = &'a dyn Fn(i32) -> Result<String, Error>;

/// Puts the init stage, by pid, into the container's cgroup.
type Enter<'a> = &'a dyn Fn(i32) -> Result<(), CgroupError>;

/// Runs the handshake up to `Ready`; on failure kills what was started.
fn handshake(
    mut child: InitProc,
    mut sock: UnixStream,
    cfg: InitConfig,
    cgroup: Option<Enter<'_>>,
    hook_point: Option<HookPoint<'_>>,
) -> Result<Launched, Error> {
    let spec = cfg.spec.clone();
    // An exec has no `start` to wait for: it returns once the program is
    // exec'd (the socket is close-on-exec, so its end is the sign) or
    // failed, so that the caller never sees the runtime's own process.
    let exec = matches!(cfg.mode, Mode::Exec { .. });
    let mut ready = false;
    let mut pid: Option<i32> = None;
    let result = (|| -> Result<(), Error> {
        protocol::send(&mut sock, &ToInit::Create(Box::new(cfg)))?;
        if let Some(enter) = cgroup {
            let t = Instant::now();
            enter(child.id() as i32)?;
            tracing::debug!(elapsed = ?t.elapsed(), "init stage moved into the cgroup");
        }
        // If the init stage already failed, its report is read below.
        let _ = protocol::send(&mut sock, &ToInit::CgroupJoined);
        loop {
            match protocol::recv::<FromInit>(&mut sock) {
                Ok(FromInit::MapsReq) => {
                    write_id_maps(child.id(), &spec)?;
                    protocol::send(&mut sock, &ToInit::MapsDone)?;
                }
                Ok(FromInit::Pid(p)) => {
                    tracing::debug!("container init cloned");
                    pid = Some(p);
                    let _ = child.wait();
                }
                Ok(FromInit::Hooks) => {
                    let (Some(run), Some(p)) = (hook_point, pid) else {
                        return Err(Error::Protocol(ProtocolError::Unexpected(
                            "hook point before pid, or in exec".into(),
                        )));
                    };
                    let state = run(p)?;
                    protocol::send(&mut sock, &ToInit::HooksDone { state })?;
                }
                // An exec's warnings (a clamped rlimit) repeat what its
                // container's create already logged: not for the exec's user.
                Ok(FromInit::Warning(w)) if exec => tracing::debug!(container = true, "{w}"),
                Ok(FromInit::Warning(w)) => tracing::warn!(container = true, "{w}"),
                Ok(FromInit::Ready) if exec => ready = true,
                Ok(FromInit::Ready) => return Ok(()),
                Ok(FromInit::Failed {
                    step,
                    errno,
                    message,
                }) => {
                    return Err(Error::Init {
                        step,
                        errno,
                        message,
                    });
                }
                Err(ProtocolError::Closed) if ready => return Ok(()),
                Err(ProtocolError::Closed) => {
                    let status = child.wait();
                    return Err(Error::Init {
                        step: Step::ReadConfig,
                        errno: None,
                        message: format!("init stage exited without reporting ({status:?})"),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    })();
    match (result, pid) {
        (Ok(()), Some(pid)) => Ok(Launched { pid }),
        (Ok(()), None) => Err(Error::Protocol(ProtocolError::Unexpected(
            "ready before pid".into(),
        ))),
        (Err(e), pid) => {
            child.kill();
            let _ = child.wait();
            if let Some(p) = pid {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(p), None);
            }
            Err(e)
        }
    }
}

fn caps_of(process: &Process) -> Vec<String> {
    process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().clone())
        .into_iter()
        .flatten()
        .filter_map(|c| {
            serde_json::to_value(c)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
        })
        .collect()
}

fn seccomp_for(
    spec: &Spec,
    process: &Process,
    root: &Path,
    default: bool,
) -> Result<Option<Vec<u8>>, Error> {
    let cache = root.join(".seccomp-cache");
    let profile = match spec.linux().as_ref().and_then(|l| l.seccomp().clone()) {
        Some(p) => p,
        None if default => seccomp::docker_default(&caps_of(process)),
        None => return Ok(None),
    };
    Ok(Some(seccomp::compile_cached(&profile, &cache)?))
}

impl Container {
    fn dir_of(root: &Path, id: &str) -> PathBuf {
        root.join(id)
    }

    /// Creates the container: namespaces, cgroup and root filesystem are set
    /// up and the init waits for [`Container::start`] before running the program.
    pub fn create(opts: CreateOptions) -> Result<Container, Error> {
        plan::validate_id(&opts.id)?;
        let bundle =
            fs::canonicalize(&opts.bundle).map_err(io_err("resolve bundle", &opts.bundle))?;
        let spec = match opts.spec {
            Some(s) => s,
            None => {
                let p = bundle.join("config.json");
                Spec::load(&p).map_err(|source| Error::Spec { path: p, source })?
            }
        };
        if !spec.version().starts_with("1.") {
            return Err(Error::InvalidSpec("unsupported ociVersion"));
        }
        let process = spec
            .process()
            .clone()
            .ok_or(Error::InvalidSpec("spec has no process"))?;
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(Error::InvalidSpec("process.args is empty"));
        }
        let root_path = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .ok_or(Error::InvalidSpec("spec has no root"))?;
        let rootfs = if root_path.is_absolute() {
            root_path
        } else {
            bundle.join(root_path)
        };
        let rootfs = fs::canonicalize(&rootfs).map_err(io_err("resolve rootfs", &rootfs))?;
        let linux = spec.linux().clone().unwrap_or_default();
        plan::namespace_plan(linux.namespaces().as_deref().unwrap_or(&[]))?;
        if process.terminal() == Some(true) && opts.console_socket.is_none() {
            return Err(Error::InvalidSpec(
                "process.terminal needs a console socket",
            ));
        }
        if process.apparmor_profile().is_some() || process.selinux_label().is_some() {
            // Neither LSM is supported; the label is ignored rather than refused.
            tracing::warn!("apparmor/selinux labels are not supported and are ignored");
        }

        fs::create_dir_all(&opts.root).map_err(io_err("mkdir", &opts.root))?;
        // A container of this id whose creator crashed is rolled back first,
        // so that its cgroup is not taken over as someone else's.
        if halfmade::roll_back(&Self::dir_of(&opts.root, &opts.id), &opts.id)?
            == halfmade::Found::Committed
        {
            return Err(Error::Exists(opts.id));
        }
        let cg = match &opts.cgroup_v2_mount {
            Some(mount) => Cgroup::v2_at(
                mount,
                cgroups::container_path(linux.cgroups_path().as_deref(), &opts.id),
            )?,
            None => Cgroup::for_container(linux.cgroups_path().as_deref(), &opts.id)?,
        };
        let owned = !cg.exists();
        let intent = halfmade::Intent {
            cgroup: cg.clone(),
            cgroup_owned: owned,
        };
        let (dir, lock) = halfmade::begin(&opts.root, &opts.id, &intent)?;
        let mut owned_cgroup = None;
        let t0 = Instant::now();
        let result = (|| -> Result<Container, Error> {
            let fifo = dir.join("exec.fifo");
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622)).map_err(
                |source| Error::Sys {
                    op: "mkfifo",
                    source,
                },
            )?;
            // Writable by others despite the umask: a container root in a user
            // namespace is an unprivileged host uid.
            fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
                .map_err(io_err("chmod", &fifo))?;
            let seccomp = seccomp_for(&spec, &process, &opts.root, opts.default_seccomp)?;

            if owned {
                owned_cgroup = Some(cg.clone());
            }
            cg.create(
                linux.resources().as_ref(),
                linux.devices().as_deref().unwrap_or(&[]),
            )?;
            crate::fault::point("create-after-cgroup");

            tracing::debug!(elapsed = ?t0.elapsed(), "cgroup ready");
            let (child, sock) = start_init(
                &opts.init_binary,
                opts.stdio,
                opts.fork_init,
                Some(lock.as_raw_fd()),
            )?;
            tracing::debug!(elapsed = ?t0.elapsed(), "init stage spawned");
            let cfg = InitConfig {
                mode: Mode::Create,
                spec: spec.clone(),
                bundle: bundle.clone(),
                rootfs: rootfs.clone(),
                fifo: Some(fifo),
                seccomp,
                cgroup: Some(cg.clone()),
                console_socket: opts.console_socket.clone(),
                init: opts.init,
            };
            let mut state = State {
                oci_version: spec.version().clone(),
                id: opts.id.clone(),
                status: Status::Created,
                pid: 0,
                start_time: 0,
                bundle: bundle.clone(),
                rootfs: rootfs.clone(),
                annotations: spec.annotations().clone().unwrap_or_default(),
                cgroup: cg.clone(),
                cgroup_owned: owned,
                default_seccomp: opts.default_seccomp,
                created: state::now_rfc3339(),
                config: Box::new(spec.clone()),
            };
            // prestart and createRuntime hooks run while the container init
            // waits before pivot_root, so that its createContainer hooks come
            // after them, as the spec orders.
            let run_hooks = |pid: i32| -> Result<String, Error> {
                let mut s = state.clone();
                s.pid = pid;
                let json = s.oci_json(Status::Created).to_string();
                if let Some(h) = spec.hooks() {
                    let mut list = h.prestart().clone().unwrap_or_default();
                    list.extend(h.create_runtime().clone().unwrap_or_default());
                    hooks::run(&list, &json)?;
                }
                Ok(json)
            };
            let enter = |pid: i32| {
                cg.enter(
                    pid,
                    linux.resources().as_ref(),
                    linux.devices().as_deref().unwrap_or(&[]),
                )
            };
            let launched = handshake(child, sock, cfg, Some(&enter), Some(&run_hooks))?;
            tracing::debug!(elapsed = ?t0.elapsed(), "container init ready");
            state.pid = launched.pid;
            state.start_time = state::proc_stat(launched.pid)
                .map(|s| s.start_time)
                .unwrap_or(0);
            crate::fault::point("create-before-commit");
            // The commit point: from here on the container exists.
            state.save(&dir)?;
            if let Some(pf) = &opts.pid_file {
                write_pid_file(pf, launched.pid)?;
            }
            Ok(Container {
                state,
                dir: dir.clone(),
            })
        })();
        match result {
            Ok(c) => Ok(c),
            Err(e) => {
                if let Ok(s) = State::load(&dir) {
                    let _ = nix::sys::signal::kill(Pid::from_raw(s.pid), Signal::SIGKILL);
                    let _ = waitpid(Pid::from_raw(s.pid), None);
                }
                let mut cleanup = None;
                if let Some(cg) = owned_cgroup
                    && let Err(ce) =
                        kill_cgroup(&cg).and_then(|()| cg.remove().map_err(Error::from))
                {
                    cleanup = Some(ce);
                }
                let _ = fs::remove_dir_all(&dir);
                Err(match cleanup {
                    Some(c) => Error::WithCleanup {
                        first: Box::new(e),
                        cleanup: Box::new(c),
                    },
                    None => e,
                })
            }
        }
    }

    /// Loads a container's state from `<root>/<id>`.
    pub fn load(root: &Path, id: &str) -> Result<Container, Error> {
        plan::validate_id(id)?;
        let dir = Self::dir_of(root, id);
        if !State::path(&dir).exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(Container {
            state: State::load(&dir)?,
            dir,
        })
    }

    /// Removes container `id` in whatever state it is: a committed one is
    /// deleted (killed first), one whose create crashed is rolled back.
    /// Nothing there is not an error; a create in progress is `Exists`.
    pub fn discard(root: &Path, id: &str) -> Result<(), Error> {
        plan::validate_id(id)?;
        match Self::load(root, id) {
            Ok(c) => c.delete(true),
            Err(Error::NotFound(_)) => halfmade::roll_back(&Self::dir_of(root, id), id).map(|_| ()),
            Err(e) => Err(e),
        }
    }

    /// All containers under `root`.
    pub fn list(root: &Path) -> Result<Vec<Container>, Error> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(root) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            if let Some(id) = e.file_name().to_str()
                && !id.starts_with('.')
                && let Ok(c) = Self::load(root, id)
            {
                out.push(c);
            }
        }
        out.sort_by(|a, b| a.state.id.cmp(&b.state.id));
        Ok(out)
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }
    pub fn pid(&self) -> i32 {
        self.state.pid
    }
    pub fn start_time(&self) -> u64 {
        self.state.start_time
    }
    pub fn cgroup(&self) -> &Cgroup {
        &self.state.cgroup
    }

    /// The live status, from the process and the cgroup rather than the file.
    pub fn status(&self) -> Status {
        if !state::is_alive(self.state.pid, self.state.start_time) {
            return Status::Stopped;
        }
        if self.dir.join("exec.fifo").exists() {
            return Status::Created;
        }
        if self.state.cgroup.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state document.
    pub fn oci_state(&self) -> serde_json::Value {
        self.state.oci_json(self.status())
    }

    fn require(&self, ok: bool, op: &'static str) -> Result<(), Error> {
        if ok {
            Ok(())
        } else {
            Err(Error::BadState {
                id: self.state.id.clone(),
                status: self.status(),
                op,
            })
        }
    }

    /// Lets the created container run its program.
    pub fn start(&mut self) -> Result<(), Error> {
        self.require(self.status().can_start(), "start")?;
        let fifo = self.dir.join("exec.fifo");
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .map_err(io_err("open", &fifo))?;
        let mut buf = [0u8; 1];
        loop {
            let mut pfd = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&f),
                nix::poll::PollFlags::POLLIN,
            )];
            let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(10u8));
            match nix::unistd::read(&f, &mut buf) {
                Ok(n) if n > 0 => break,
                _ => {}
            }
            if !state::is_alive(self.state.pid, self.state.start_time) {
                let _ = fs::remove_file(&fifo);
                return Err(Error::BadState {
                    id: self.state.id.clone(),
                    status: Status::Stopped,
                    op: "start",
                });
            }
        }
        if buf[0] == b'0' {
            // The write end is close-on-exec: end of file means the program
            // has been exec'd (or the init died), so poststart hooks and the
            // caller see a program that has started, not one about to.
            loop {
                let mut pfd = [nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&f),
                    nix::poll::PollFlags::POLLIN,
                )];
                let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(10u8));
                match nix::unistd::read(&f, &mut buf) {
                    Ok(0) => break,
                    Ok(_) | Err(nix::Error::EAGAIN | nix::Error::EINTR) => {}
                    Err(_) => break,
                }
            }
        }
        fs::remove_file(&fifo).map_err(io_err("remove", &fifo))?;
        if buf[0] == b'h' {
            // The container init reported a failed startContainer hook and exits.
            let _ = nix::sys::signal::kill(Pid::from_raw(self.state.pid), Signal::SIGKILL);
            return Err(Error::Init {
                step: Step::Hooks,
                errno: None,
                message: "a startContainer hook failed (its error is on the container's stderr)"
                    .into(),
            });
        }
        self.state.status = Status::Running;
        self.state.save(&self.dir)?;
        // The state the program started in, even if it has already exited:
        // the hook learns what was started, not what is left.
        if let Some(h) = self.state.config.hooks().clone()
            && let Some(list) = h.poststart()
        {
            let json = self.state.oci_json(Status::Running).to_string();
            for e in hooks::run_all(list, &json) {
                tracing::warn!("poststart hook failed: {e}");
                warn_stderr(&e);
            }
        }
        Ok(())
    }

    /// Sends `signal` to the container's init.
    pub fn kill(&self, signal: Signal) -> Result<(), Error> {
        self.require(self.status().can_kill(), "kill")?;
        nix::sys::signal::kill(Pid::from_raw(self.state.pid), signal)
            .map_err(|source| Error::Sys { op: "kill", source })
    }

    /// Sends `signal` to every process in the container's cgroup.
    pub fn kill_all(&self, signal: Signal) -> Result<(), Error> {
        self.require(self.status().can_kill(), "kill")?;
        for p in self.state.cgroup.pids()? {
            let _ = nix::sys::signal::kill(Pid::from_raw(p), signal);
        }
        Ok(())
    }

    pub fn pause(&mut self) -> Result<(), Error> {
        self.require(self.status().can_pause(), "pause")?;
        self.state.cgroup.freeze(true)?;
        self.state.status = Status::Paused;
        Ok(self.state.save(&self.dir)?)
    }

    pub fn resume(&mut self) -> Result<(), Error> {
        self.require(self.status().can_resume(), "resume")?;
        self.state.cgroup.freeze(false)?;
        self.state.status = Status::Running;
        Ok(self.state.save(&self.dir)?)
    }

    pub fn stats(&self) -> Result<Stats, Error> {
        Ok(self.state.cgroup.stats()?)
    }

    /// Pids of every process in the container (host pid namespace).
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        Ok(self.state.cgroup.pids()?)
    }

    /// Waits for the container's init to exit. Only the process that created
    /// the container (its parent) can wait; others see `ECHILD`.
    pub fn wait(&self) -> Result<ExitInfo, Error> {
        let st = loop {
            match waitpid(Pid::from_raw(self.state.pid), None) {
                Err(nix::Error::EINTR) => continue,
                r => {
                    break r.map_err(|source| Error::Sys {
                        op: "waitpid",
                        source,
                    })?;
                }
            }
        };
        Ok(self.exit_info(st))
    }

    /// Interprets a wait status for this container (OOM from the cgroup counters).
    pub fn exit_info(&self, st: WaitStatus) -> ExitInfo {
        let (code, signal) = match st {
            WaitStatus::Exited(_, c) => (Some(c), None),
            WaitStatus::Signaled(_, s, _) => (None, Some(s as i32)),
            _ => (None, None),
        };
        // With an init as pid 1, a program killed by SIGKILL shows as code 137.
        let killed = signal == Some(libc::SIGKILL) || code == Some(128 + libc::SIGKILL);
        let oom_killed = killed && self.state.cgroup.oom_kills() > 0;
        ExitInfo {
            code,
            signal,
            oom_killed,
        }
    }

    /// Runs another process inside the running container. The process is a
    /// child of the caller; wait for it with `waitpid` on the returned pid.
    pub fn exec(&self, process: Process, opts: ExecOptions) -> Result<i32, Error> {
        self.exec_filtered(process, opts, true)
    }

    /// [`Container::exec`] without the container's seccomp filter (`exec
    /// --privileged`); the process's capabilities are the caller's to set.
    pub fn exec_unfiltered(&self, process: Process, opts: ExecOptions) -> Result<i32, Error> {
        self.exec_filtered(process, opts, false)
    }

    fn exec_filtered(
        &self,
        process: Process,
        opts: ExecOptions,
        filtered: bool,
    ) -> Result<i32, Error> {
        self.require(
            matches!(self.status(), Status::Running | Status::Created),
            "exec",
        )?;
        if process.terminal() == Some(true) && opts.console_socket.is_none() {
            return Err(Error::InvalidSpec(
                "process.terminal needs a console socket",
            ));
        }
        let root = self.dir.parent().unwrap_or(Path::new("/"));
        let mut spec = (*self.state.config).clone();
        let seccomp = if filtered {
            seccomp_for(&spec, &process, root, self.state.default_seccomp)?
        } else {
            None
        };
        spec.set_process(Some(process));
        let (child, sock) = start_init(&opts.init_binary, opts.stdio, false, None)?;
        let cfg = InitConfig {
            mode: Mode::Exec {
                pid: self.state.pid,
            },
            spec,
            bundle: self.state.bundle.clone(),
            rootfs: self.state.rootfs.clone(),
            fifo: None,
            seccomp,
            cgroup: None,
            console_socket: opts.console_socket,
            init: false,
        };
        let enter = |pid: i32| self.state.cgroup.add_pid(pid);
        let launched = handshake(child, sock, cfg, Some(&enter), None)?;
        Ok(launched.pid)
    }

    /// Deletes the container: refused while it runs unless `force`, which kills it.
    /// Removes the cgroup the runtime created and the state directory.
    pub fn delete(self, force: bool) -> Result<(), Error> {
        let status = self.status();
        self.require(
            status.can_delete(force) || status == Status::Created && force,
            "delete",
        )?;
        if status != Status::Stopped {
            let pid = Pid::from_raw(self.state.pid);
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            if status == Status::Paused {
                let _ = self.state.cgroup.freeze(false);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while state::is_alive(self.state.pid, self.state.start_time)
                && Instant::now() < deadline
            {
                let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Reap it if it is our child (library callers), so no zombie is left.
        let _ = waitpid(Pid::from_raw(self.state.pid), Some(WaitPidFlag::WNOHANG));
        if self.state.cgroup_owned {
            kill_cgroup(&self.state.cgroup)?;
            self.state.cgroup.remove()?;
        }
        let json = self.state.oci_json(Status::Stopped).to_string();
        fs::remove_dir_all(&self.dir).map_err(io_err("remove", &self.dir))?;
        if let Some(h) = self.state.config.hooks().clone()
            && let Some(list) = h.poststop()
        {
            for e in hooks::run_all(list, &json) {
                tracing::warn!("poststop hook failed: {e}");
                warn_stderr(&e);
            }
        }
        Ok(())
    }
}

/// Writes a pid file as runc does: the bare number (no newline) into a
/// temporary `.<name>` next to it, then renamed over `path`, so a reader never
/// sees a partial file.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    stack_fs::write_with(
        path,
        pid.to_string().as_bytes(),
        stack_fs::Durability::Unsynced,
    )
    .map_err(|e| Error::Io {
        op: e.op,
        path: e.path,
        source: e.source,
    })
}

/// A hook's failure on stderr too (runc's CLI users read it there),
/// ignoring a closed or full stderr: a warning never becomes a panic.
fn warn_stderr(e: &HookError) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "stack-runtime: warning: {e}");
}

/// Kills whatever is left in a cgroup (processes that escaped a shared pid ns).
pub(crate) fn kill_cgroup(cg: &Cgroup) -> Result<(), Error> {
    if !cg.exists() {
        return Ok(());
    }
    let frozen = cg.is_frozen();
    cg.kill_all();
    if frozen {
        cg.freeze(false)?;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cg.pids().unwrap_or_default().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;
