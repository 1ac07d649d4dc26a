//! The process side of the container init: rlimits, cwd, user, capabilities,
//! no_new_privileges, seccomp, terminal, and finally `execve`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::str::FromStr;

use caps::Capability as Cap;
use oci_spec::runtime::{Capabilities, Process};

use super::{InitConfig, StepError, fail, fail_io, fail_msg};
use crate::plan;
use crate::protocol::Step;

fn cap_set(set: &Option<Capabilities>) -> Result<Vec<Cap>, StepError> {
    let mut out = Vec::new();
    for c in set.iter().flatten() {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match Cap::from_str(&name) {
            Ok(cap) => out.push(cap),
            // Capabilities the running kernel does not know are skipped, as runc does.
            Err(_) => super::warn(format!("unknown capability {name} ignored")),
        }
    }
    Ok(out)
}

fn mask(caps: &[Cap]) -> u64 {
    caps.iter()
        .filter(|c| c.index() < 64)
        .fold(0, |m, c| m | (1u64 << c.index()))
}

/// One capset(2) call for effective, permitted and inheritable together, so the
/// kernel's subset checks see the final sets, not an intermediate state.
fn capset(eff: u64, perm: u64, inh: u64) -> Result<(), StepError> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [
        Data {
            effective: eff as u32,
            permitted: perm as u32,
            inheritable: inh as u32,
        },
        Data {
            effective: (eff >> 32) as u32,
            permitted: (perm >> 32) as u32,
            inheritable: (inh >> 32) as u32,
        },
    ];
    // SAFETY: header and two data structs laid out as _LINUX_CAPABILITY_VERSION_3 expects.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) };
    if rc != 0 {
        return Err(fail(Step::Capabilities)(nix::Error::last()));
    }
    Ok(())
}

fn set_rlimits(process: &Process) -> Result<(), StepError> {
    for r in process.rlimits().iter().flatten() {
        let res = plan::rlimit_resource(r.typ());
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: valid out-pointer.
        unsafe { libc::getrlimit(res, &mut cur) };
        let set = |soft: u64, hard: u64| {
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            // SAFETY: valid pointer to an initialised rlimit.
            unsafe { libc::setrlimit(res, &lim) }
        };
        if set(r.soft(), r.hard()) == 0 {
            continue;
        }
        let err = nix::Error::last();
        if err != nix::Error::EPERM {
            return Err(fail(Step::Rlimits)(err));
        }
        // Without CAP_SYS_RESOURCE the hard limit cannot be raised: clamp and warn.
        let (soft, hard, _) = plan::clamp_rlimit(r.soft(), r.hard(), cur.rlim_max);
        super::warn(format!(
            "rlimit {:?} {}/{} clamped to {soft}/{hard}",
            r.typ(),
            r.soft(),
            r.hard()
        ));
        if set(soft, hard) != 0 {
            return Err(fail(Step::Rlimits)(nix::Error::last()));
        }
    }
    Ok(())
}

/// Finds the executable inside the container as execvp would.
fn find_exe(process: &Process) -> Result<CString, StepError> {
    let args = process.args().clone().unwrap_or_default();
    let prog = args
        .first()
        .ok_or_else(|| fail_msg(Step::Executable, "process.args is empty".into()))?;
    let env = process.env().clone().unwrap_or_default();
    // As execvp: a file that exists but cannot be executed makes the error
    // EACCES ("permission denied", Docker's 126) rather than ENOENT (127).
    let mut found_unexecutable = false;
    for cand in plan::exec_candidates(prog, &env) {
        let c = CString::new(cand.clone())
            .map_err(|_| fail_msg(Step::Executable, "nul in path".into()))?;
        let path = Path::new(&cand);
        if path.is_dir() || !path.exists() {
            continue;
        }
        if nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok() {
            return Ok(c);
        }
        found_unexecutable = true;
    }
    if found_unexecutable {
        return Err(StepError {
            step: Step::Executable,
            errno: Some(libc::EACCES),
            message: format!("exec: {prog:?}: permission denied"),
        });
    }
    Err(StepError {
        step: Step::Executable,
        errno: Some(libc::ENOENT),
        message: format!("exec: {prog:?}: executable file not found in $PATH"),
    })
}

/// Everything up to `execve` that does not depend on `start`.
pub(super) fn prepare(cfg: &InitConfig, process: &Process) -> Result<CString, StepError> {
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(fail_io(
            Step::OomScoreAdj,
            "/proc/self/oom_score_adj".into(),
        ))?;
    }
    set_rlimits(process)?;
    let cwd_ok = nix::unistd::chdir(process.cwd()).is_ok();
    let exe = find_exe(process)?;

    let caps = process.capabilities().clone().unwrap_or_default();
    let bounding = cap_set(caps.bounding())?;
    let nnp = process.no_new_privileges() == Some(true);
    if nnp {
        nix::sys::prctl::set_no_new_privs().map_err(fail(Step::NoNewPrivileges))?;
    } else if let Some(bpf) = &cfg.seccomp {
        // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN, which
        // is dropped below; so the filter goes in now.
        crate::seccomp::load(bpf, false)
            .map_err(fail_io(Step::Seccomp, "install filter".into()))?;
    }

    for c in caps::all() {
        if !bounding.contains(&c) && caps::has_cap(None, caps::CapSet::Bounding, c).unwrap_or(false)
        {
            caps::drop(None, caps::CapSet::Bounding, c).map_err(|e| {
                fail_msg(
                    Step::Capabilities,
                    format!("drop {c} from bounding set: {e}"),
                )
            })?;
        }
    }

    let user = process.user();
    nix::sys::prctl::set_keepcaps(true).map_err(fail(Step::User))?;
    let gids: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    let setgroups_denied =
        std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    if !setgroups_denied {
        nix::unistd::setgroups(&gids).map_err(fail(Step::User))?;
    }
    let gid = nix::unistd::Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(fail(Step::User))?;
    let uid = nix::unistd::Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(fail(Step::User))?;
    nix::sys::prctl::set_keepcaps(false).map_err(fail(Step::User))?;
    if let Some(m) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
    }

    capset(
        mask(&cap_set(caps.effective())?),
        mask(&cap_set(caps.permitted())?),
        mask(&cap_set(caps.inheritable())?),
    )?;
    let inheritable = cap_set(caps.inheritable())?;
    for c in cap_set(caps.ambient())? {
        // The kernel only allows ambient caps that are also inheritable; runc
        // skips the others silently, and so do we (with a warning).
        if !inheritable.contains(&c) {
            continue;
        }
        caps::raise(None, caps::CapSet::Ambient, c)
            .map_err(|e| fail_msg(Step::Capabilities, format!("raise ambient {c}: {e}")))?;
    }
    if !cwd_ok {
        nix::unistd::chdir(process.cwd()).map_err(|e| StepError {
            step: Step::Cwd,
            errno: Some(e as i32),
            message: format!("chdir {}: {}", process.cwd().display(), e.desc()),
        })?;
    }
    Ok(exe)
}

/// The seccomp filter still to install right before `execve`: the one
/// deferred because no_new_privs allowed it (see [`prepare`]).
pub(super) fn late_seccomp<'a>(cfg: &'a InitConfig, process: &Process) -> Option<&'a [u8]> {
    if process.no_new_privileges() == Some(true) {
        cfg.seccomp.as_deref()
    } else {
        None
    }
}

/// The program's argv and envp as C strings.
pub(super) fn argv_envp(process: &Process) -> (Vec<CString>, Vec<CString>) {
    let c = |v: &Option<Vec<String>>| -> Vec<CString> {
        v.iter()
            .flatten()
            .filter_map(|a| CString::new(a.as_bytes()).ok())
            .collect()
    };
    (c(process.args()), c(process.env()))
}

/// Marks every descriptor from 3 up close-on-exec: nothing of the runtime's
/// leaks into the container. A bare syscall, safe between fork and exec.
pub(super) fn cloexec_from_3() {
    // SAFETY: plain syscall; CLOSE_RANGE_CLOEXEC only marks descriptors.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
}

/// Installs seccomp (when no_new_privs allowed deferring it) and execs.
pub(super) fn exec(
    cfg: &InitConfig,
    process: &Process,
    exe: &CString,
) -> Result<std::convert::Infallible, StepError> {
    if let Some(bpf) = late_seccomp(cfg, process) {
        crate::seccomp::load(bpf, false)
            .map_err(fail_io(Step::Seccomp, "install filter".into()))?;
    }
    cloexec_from_3();
    let (args, env) = argv_envp(process);
    let e = nix::unistd::execve(exe, &args, &env).unwrap_err();
    Err(fail(Step::Exec)(e))
}

/// Opens a pty, sends the master to the console socket, and makes the slave
/// this process's controlling terminal and stdio.
pub(super) fn setup_terminal(
    cfg: &InitConfig,
    sock: &std::os::unix::net::UnixStream,
) -> Result<(), StepError> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let step = Step::Terminal;
    let master = posix_openpt(nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY)
        .map_err(fail(step))?;
    grantpt(&master).map_err(fail(step))?;
    unlockpt(&master).map_err(fail(step))?;
    let slave_name = ptsname_r(&master).map_err(fail(step))?;
    let slave: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&slave_name)
        .map_err(fail_io(step, slave_name.clone()))?
        .into();

    let fds = [master.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map_err(fail(step))?;
    drop(master);

    // SAFETY: TIOCSCTTY on a terminal fd we own; we are a session leader.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(fail(step)(nix::Error::last()));
    }
    for target in 0..3 {
        // SAFETY: dup2 onto stdio numbers.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(fail(step)(nix::Error::last()));
        }
    }
    if let Some(size) = cfg.spec.process().as_ref().and_then(|p| p.console_size()) {
        let ws = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: valid winsize pointer.
        unsafe { libc::ioctl(0, libc::TIOCSWINSZ, &ws) };
    }
    Ok(())
}
