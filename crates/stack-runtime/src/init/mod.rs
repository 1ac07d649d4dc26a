//! The init stage: `init_main` in a freshly exec'd, single-threaded process.
//! See [`crate::protocol`] for the message flow.

mod process;
mod reaper;
mod rootfs;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sched::{CloneFlags, setns, unshare};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::plan;
use crate::protocol::{self, FromInit, Step, ToInit};

/// Environment variable carrying the channel's fd number to the init stage.
pub const INIT_ENV: &str = "_STACK_RUNTIME_INIT";

#[derive(Debug, Serialize, Deserialize)]
pub enum Mode {
    /// A new container from `spec`.
    Create,
    /// `spec.process` inside the running container whose init is `pid`.
    Exec { pid: i32 },
}

/// Everything the init stage needs; sent as the first message.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitConfig {
    pub mode: Mode,
    pub spec: Spec,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// `exec.fifo` the container init blocks on until `start` (create only).
    pub fifo: Option<PathBuf>,
    /// Compiled seccomp filter to install right before `execve`.
    pub seccomp: Option<Vec<u8>>,
    pub cgroup: Option<Cgroup>,
    /// Where to send the pty master when `process.terminal` is true.
    pub console_socket: Option<PathBuf>,
    /// Stay as pid 1 (reaping, forwarding signals) and run the program as
    /// its child instead of exec'ing it (create only).
    #[serde(default)]
    pub init: bool,
}

static WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Queues a warning for the caller; the container's own stderr stays clean.
pub(crate) fn warn(msg: String) {
    if let Ok(mut w) = WARNINGS.lock() {
        w.push(msg);
    }
}

/// A setup failure: the step and the OS error.
#[derive(Debug)]
pub(crate) struct StepError {
    pub step: Step,
    pub errno: Option<i32>,
    pub message: String,
}

pub(crate) fn fail(step: Step) -> impl Fn(nix::Error) -> StepError {
    move |e| StepError {
        step,
        errno: Some(e as i32),
        message: e.desc().to_string(),
    }
}

pub(crate) fn fail_io(step: Step, what: String) -> impl Fn(std::io::Error) -> StepError {
    move |e| StepError {
        step,
        errno: e.raw_os_error(),
        message: format!("{what}: {e}"),
    }
}

pub(crate) fn fail_msg(step: Step, message: String) -> StepError {
    StepError {
        step,
        errno: None,
        message,
    }
}

/// Call first thing in `main` of any binary used as the init stage. Returns
/// at once unless this process was started as an init stage; then it never returns.
pub fn init_main() {
    let Ok(fd) = std::env::var(INIT_ENV) else {
        return;
    };
    let Ok(fd) = fd.parse::<RawFd>() else {
        std::process::exit(120)
    };
    reset_ignored_signals();
    // SAFETY: the runtime passed this fd to us for exactly this purpose.
    let sock = unsafe { UnixStream::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(
        &sock,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    std::process::exit(run(sock))
}

/// An ignored signal stays ignored across execve, and Rust starts every
/// program with SIGPIPE ignored (the caller may ignore others): the
/// container's program starts with every disposition at its default, as a
/// container does under Docker (`yes | head` ends by SIGPIPE).
fn reset_ignored_signals() {
    // The raw syscall, because glibc refuses to touch the two real-time
    // signals it reserves (32 and 33), which a caller may still ignore.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    for sig in 1..=64 {
        let mut old = KernelSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: rt_sigaction with a null new action only reads the
        // current one into `old`, whose layout is the kernel's.
        let got = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<KernelSigaction>(),
                &mut old as *mut KernelSigaction,
                8usize,
            )
        };
        if got == 0 && old.handler == libc::SIG_IGN {
            let default = KernelSigaction {
                handler: libc::SIG_DFL,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            // SAFETY: installs the default disposition; no handler runs.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &default as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                )
            };
        }
    }
}

fn report(sock: &mut UnixStream, e: StepError) -> i32 {
    let _ = protocol::send(
        sock,
        &FromInit::Failed {
            step: e.step,
            errno: e.errno,
            message: e.message,
        },
    );
    1
}

pub(crate) fn run(mut sock: UnixStream) -> i32 {
    let cfg = match protocol::recv::<ToInit>(&mut sock) {
        Ok(ToInit::Create(cfg)) => *cfg,
        Ok(other) => {
            return report(
                &mut sock,
                fail_msg(Step::ReadConfig, format!("unexpected {other:?}")),
            );
        }
        Err(e) => return report(&mut sock, fail_msg(Step::ReadConfig, e.to_string())),
    };
    // The console socket path is a host path: connect before joining or
    // making any namespace (an exec joins the container's mounts at once).
    let console = match connect_console(&cfg) {
        Ok(console) => console,
        Err(e) => return report(&mut sock, e),
    };
    match stage_one(&mut sock, &cfg) {
        Ok(Some(gate)) => match container_init(&mut sock, &cfg, gate, console) {
            Ok(never) => match never {},
            Err(e) => report(&mut sock, e),
        },
        Ok(None) => 0,
        Err(e) => report(&mut sock, e),
    }
}

fn open_ns(path: &std::path::Path) -> Result<OwnedFd, StepError> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(fail_io(
            Step::JoinNamespace,
            format!("open {}", path.display()),
        ))
}

/// Joins/creates namespaces and clones the container init. Returns in the child
/// (with the read end of the gate pipe) or `None` in the init stage, which exits.
fn stage_one(sock: &mut UnixStream, cfg: &InitConfig) -> Result<Option<OwnedFd>, StepError> {
    let mut joined = false;
    match cfg.mode {
        Mode::Create => {
            let list = cfg
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.namespaces().clone())
                .unwrap_or_default();
            let plan = plan::namespace_plan(&list)
                .map_err(|e| fail_msg(Step::JoinNamespace, e.to_string()))?;
            for (t, path) in &plan.join {
                let fd = open_ns(path)?;
                setns(&fd, plan::ns_flag(*t)).map_err(|e| StepError {
                    step: Step::JoinNamespace,
                    errno: Some(e as i32),
                    message: format!(
                        "setns {} ({}): {}",
                        path.display(),
                        plan::ns_proc_name(*t),
                        e.desc()
                    ),
                })?;
            }
            if plan.new_user {
                unshare(CloneFlags::CLONE_NEWUSER).map_err(fail(Step::Unshare))?;
                protocol::send(sock, &FromInit::MapsReq)
                    .map_err(|e| fail_msg(Step::UserMappings, e.to_string()))?;
                loop {
                    match protocol::recv::<ToInit>(sock) {
                        Ok(ToInit::MapsDone) => break,
                        // The caller sends this unprompted; it may come first.
                        Ok(ToInit::CgroupJoined) => joined = true,
                        other => {
                            return Err(fail_msg(
                                Step::UserMappings,
                                format!("unexpected {other:?}"),
                            ));
                        }
                    }
                }
                become_root();
            } else if plan
                .join
                .iter()
                .any(|(t, _)| *t == LinuxNamespaceType::User)
            {
                become_root();
            }
            unshare(plan.unshare - CloneFlags::CLONE_NEWCGROUP).map_err(fail(Step::Unshare))?;
            wait_cgroup_joined(sock, joined)?;
            if plan.unshare.contains(CloneFlags::CLONE_NEWCGROUP) {
                unshare(CloneFlags::CLONE_NEWCGROUP).map_err(fail(Step::Unshare))?;
            }
        }
        Mode::Exec { pid } => {
            // The user namespace first: it grants the rights to join the others.
            let order = [
                LinuxNamespaceType::User,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Uts,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Cgroup,
                LinuxNamespaceType::Mount,
            ];
            for t in order {
                let name = plan::ns_proc_name(t);
                let theirs = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
                let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
                let same = match (std::fs::read_link(&theirs), std::fs::read_link(&ours)) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => true,
                };
                if same {
                    continue;
                }
                let fd = open_ns(&theirs)?;
                setns(&fd, plan::ns_flag(t)).map_err(fail(Step::JoinNamespace))?;
                if t == LinuxNamespaceType::User {
                    become_root();
                }
            }
            wait_cgroup_joined(sock, joined)?;
        }
    }

    let (gate_r, gate_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(fail(Step::Clone))?;
    // SAFETY: this process is single-threaded (a fresh exec of the init stage),
    // so a fork-like clone is safe. CLONE_PARENT makes the container init a
    // child of the runtime's caller, which can then wait for it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if rc < 0 {
        return Err(fail(Step::Clone)(nix::Error::last()));
    }
    if rc == 0 {
        drop(gate_w);
        return Ok(Some(gate_r));
    }
    drop(gate_r);
    protocol::send(sock, &FromInit::Pid(rc as i32))
        .map_err(|e| fail_msg(Step::Clone, e.to_string()))?;
    // Only now may the child talk: the caller reads Pid before anything else.
    let mut w = std::fs::File::from(gate_w);
    let _ = w.write_all(&[1]);
    Ok(None)
}

/// The container's processes must start inside its cgroup: wait until the
/// caller has moved us there.
fn wait_cgroup_joined(sock: &mut UnixStream, already: bool) -> Result<(), StepError> {
    if already {
        return Ok(());
    }
    match protocol::recv::<ToInit>(sock) {
        Ok(ToInit::CgroupJoined) => Ok(()),
        other => Err(fail_msg(
            Step::Clone,
            format!("waiting for the cgroup: unexpected {other:?}"),
        )),
    }
}

/// Whether the spec has hooks that run while the container is created or started.
pub(crate) fn has_container_hooks(spec: &Spec) -> bool {
    spec.hooks().as_ref().is_some_and(|h| {
        [
            h.prestart(),
            h.create_runtime(),
            h.create_container(),
            h.start_container(),
        ]
        .iter()
        .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
    })
}

/// The point in the container init after mounts and devices, before
/// pivot_root: the caller runs prestart and createRuntime hooks, then the
/// createContainer hooks run here, in the container's namespaces with the
/// host's filesystem still visible. Returns the state JSON for later hooks.
fn hook_point(sock: &mut UnixStream, cfg: &InitConfig) -> Result<Option<String>, StepError> {
    if !has_container_hooks(&cfg.spec) {
        return Ok(None);
    }
    protocol::send(sock, &FromInit::Hooks).map_err(|e| fail_msg(Step::Hooks, e.to_string()))?;
    let state = match protocol::recv::<ToInit>(sock) {
        Ok(ToInit::HooksDone { state }) => state,
        other => {
            return Err(fail_msg(
                Step::Hooks,
                format!("waiting for createRuntime hooks: unexpected {other:?}"),
            ));
        }
    };
    let list = cfg
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
        .unwrap_or_default();
    crate::hooks::run(&list, &state)
        .map_err(|e| fail_msg(Step::Hooks, format!("createContainer {e}")))?;
    Ok(Some(state))
}

fn o_path() -> nix::fcntl::OFlag {
    nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC
}

/// `/proc` as seen now (the host's before pivot_root, the container's after).
fn open_proc() -> Result<OwnedFd, StepError> {
    nix::fcntl::open(
        "/proc",
        o_path() | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(fail_io_nix(Step::Fifo, "open /proc"))
}

fn fail_io_nix(step: Step, what: &'static str) -> impl Fn(nix::Error) -> StepError {
    move |e| StepError {
        step,
        errno: Some(e as i32),
        message: format!("{what}: {}", e.desc()),
    }
}

fn has_mount_ns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|l| l.iter().any(|n| n.typ() == LinuxNamespaceType::Mount))
}

fn become_root() {
    let _ = nix::unistd::setresgid(0.into(), 0.into(), 0.into());
    let _ = nix::unistd::setresuid(0.into(), 0.into(), 0.into());
}

/// A connection to the console socket when the process wants a terminal.
fn connect_console(cfg: &InitConfig) -> Result<Option<UnixStream>, StepError> {
    let terminal = cfg.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    match (&cfg.console_socket, terminal) {
        (Some(path), true) => UnixStream::connect(path).map(Some).map_err(fail_io(
            Step::Terminal,
            format!("connect {}", path.display()),
        )),
        _ => Ok(None),
    }
}

/// Runs in the container init (or the exec'd process) until `execve`.
fn container_init(
    sock: &mut UnixStream,
    cfg: &InitConfig,
    gate: OwnedFd,
    console: Option<UnixStream>,
) -> Result<std::convert::Infallible, StepError> {
    let mut b = [0u8; 1];
    let _ = std::fs::File::from(gate).read(&mut b);
    let process = cfg
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| fail_msg(Step::Exec, "spec has no process".into()))?;

    if process.terminal() == Some(true) || matches!(cfg.mode, Mode::Create) {
        let _ = nix::unistd::setsid();
    }
    let mut fifo = None;
    let mut hook_state = None;
    if let Mode::Create = cfg.mode {
        if let Some(path) = &cfg.fifo {
            // O_PATH now, reopened for writing after pivot_root through
            // /proc/self/fd. Without a mount namespace the chroot has no /proc:
            // keep a handle on the host's (it shares the host's mounts anyway).
            // With one, the container's own /proc is used, so no handle on the
            // host's procfs is held while the container waits for `start`.
            let fd = nix::fcntl::open(path, o_path(), nix::sys::stat::Mode::empty())
                .map_err(fail(Step::Fifo))?;
            let host_proc = if has_mount_ns(&cfg.spec) {
                None
            } else {
                Some(open_proc()?)
            };
            fifo = Some((fd, host_proc));
        }
        rootfs::setup(cfg, &mut || {
            hook_state = hook_point(sock, cfg)?;
            Ok(())
        })?;
    }
    if process.terminal() == Some(true) {
        let console = console.ok_or_else(|| {
            fail_msg(
                Step::Terminal,
                "process.terminal is set but no console socket was given".into(),
            )
        })?;
        process::setup_terminal(cfg, &console)?;
    }
    let exe = process::prepare(cfg, process)?;

    let warnings = WARNINGS
        .lock()
        .map(|mut w| std::mem::take(&mut *w))
        .unwrap_or_default();
    for w in warnings {
        let _ = protocol::send(sock, &FromInit::Warning(w));
    }
    protocol::send(sock, &FromInit::Ready).map_err(|e| fail_msg(Step::Fifo, e.to_string()))?;
    let init_mask = if cfg.init && matches!(cfg.mode, Mode::Create) {
        Some(reaper::block_signals()?)
    } else {
        None
    };
    if let Some((fd, host_proc)) = fifo {
        let proc = match host_proc {
            Some(p) => p,
            None => open_proc()?,
        };
        let path = format!("self/fd/{}", fd.as_raw_fd());
        // Blocks until `start` opens the fifo for reading.
        let w = nix::fcntl::openat(
            &proc,
            path.as_str(),
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(fail(Step::Fifo))?;
        drop(proc);
        drop(fd);
        let mut w = std::fs::File::from(w);
        let start_hooks = cfg
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.start_container().clone())
            .unwrap_or_default();
        if let Err(e) = crate::hooks::run(&start_hooks, hook_state.as_deref().unwrap_or("{}")) {
            // `start` reads the "h" and reports the failure; the program never runs.
            // Not eprintln!: the container's stderr may be a pipe nobody reads.
            let _ = writeln!(std::io::stderr(), "stack-runtime: startContainer {e}");
            let _ = w.write_all(b"h");
            std::process::exit(1);
        }
        let _ = w.write_all(b"0");
    }
    if let Some(old) = init_mask {
        return reaper::run(cfg, process, &exe, old);
    }
    process::exec(cfg, process, &exe)
}
