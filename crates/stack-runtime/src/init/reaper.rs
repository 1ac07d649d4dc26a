//! A minimal init (Docker's `--init`): the container init forks the program
//! and stays as pid 1, reaping every orphan that the kernel reparents to it,
//! forwarding signals to the program and exiting with its status.
//!
//! The container's rootfs may have no libc and no init binary, so this runs
//! in the runtime's own code, already loaded. Everything the child needs is
//! prepared before `fork`; between `fork` and `execve` the child makes only
//! async-signal-safe calls (sigaction, sigprocmask, setpgid, tcsetpgrp,
//! seccomp, close_range, execve, write, _exit).

use std::ffi::CString;

use oci_spec::runtime::Process;

use super::process::{argv_envp, cloexec_from_3, late_seccomp};
use super::{InitConfig, StepError, fail};
use crate::protocol::Step;

/// Signals the init leaves alone: faults are its own, and background
/// terminal reads/writes must not stop it.
const NOT_FORWARDED: [libc::c_int; 7] = [
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
];

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; the sig*set calls initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for s in NOT_FORWARDED {
            libc::sigdelset(&mut set, s);
        }
        set
    }
}

/// Blocks the signals the init will wait for; returns the previous mask for
/// the program. Called before the container init lets `start` return, so
/// that no signal sent from then on is lost: signals from outside the pid
/// namespace reach a pid 1 without handlers only if blocked (then queued),
/// and SIGCHLD cannot slip in between fork and the wait loop.
pub(super) fn block_signals() -> Result<libc::sigset_t, StepError> {
    let set = forwarded_set();
    // SAFETY: plain data out-parameter.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers.
    if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old) } != 0 {
        return Err(fail(Step::Exec)(nix::Error::last()));
    }
    Ok(old)
}

/// Forks the program and supervises it; never returns on success. The
/// signals must already be blocked by [`block_signals`], which gave `old`.
pub(super) fn run(
    cfg: &InitConfig,
    process: &Process,
    exe: &CString,
    old: libc::sigset_t,
) -> Result<std::convert::Infallible, StepError> {
    // All of this is allocated before fork: the child must not allocate.
    let (args, env) = argv_envp(process);
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let seccomp = late_seccomp(cfg, process);
    let tty = process.terminal() == Some(true);

    let set = forwarded_set();
    // SAFETY: the container init is single-threaded; the child only makes
    // async-signal-safe calls until execve or _exit.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(fail(Step::Exec)(nix::Error::last()));
    }
    if child == 0 {
        // SAFETY: async-signal-safe calls on data prepared before fork.
        unsafe { exec_child(&old, tty, seccomp, exe, &argv, &envp) }
    }
    // pid 1 keeps nothing of the runtime's open (the setup channel, fifo).
    // SAFETY: plain syscall.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    let _ = nix::sys::prctl::set_name(c"stack-init");
    std::process::exit(supervise(child, &set))
}

/// The child between fork and exec: restores what the init changed, then
/// execs the program. Only async-signal-safe calls.
unsafe fn exec_child(
    old_mask: &libc::sigset_t,
    tty: bool,
    seccomp: Option<&[u8]>,
    exe: &CString,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    // SAFETY (whole body): each call is async-signal-safe and its pointers
    // were made before fork and stay valid.
    unsafe {
        if tty {
            // Own foreground process group on the terminal, as tini does, so
            // ^C reaches the program's group. SIGTTOU is still blocked here.
            libc::setpgid(0, 0);
            libc::tcsetpgrp(0, libc::getpid());
        }
        libc::sigprocmask(libc::SIG_SETMASK, old_mask, std::ptr::null_mut());
        if let Some(bpf) = seccomp
            && crate::seccomp::load(bpf, false).is_err()
        {
            die(b"stack-init: installing the seccomp filter failed\n");
        }
        cloexec_from_3();
        libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
        die(b"stack-init: execve of the program failed\n")
    }
}

fn die(msg: &[u8]) -> ! {
    // SAFETY: write and _exit are async-signal-safe.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(127)
    }
}

/// Waits for signals: reaps on SIGCHLD, forwards everything else to the
/// program. Returns the exit status once the program has exited.
fn supervise(child: libc::pid_t, set: &libc::sigset_t) -> i32 {
    loop {
        // SAFETY: valid sigset; no siginfo wanted.
        let sig = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
        if sig < 0 {
            continue; // EINTR
        }
        if sig != libc::SIGCHLD {
            // SAFETY: plain syscall.
            unsafe { libc::kill(child, sig) };
            continue;
        }
        // One SIGCHLD may stand for many exits: reap until none is left.
        loop {
            let mut status = 0;
            // SAFETY: valid out-pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                return exit_status(status);
            }
        }
    }
}

/// The shell's convention, as Docker reports it: the code, or 128 + signal.
fn exit_status(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_shell_convention() {
        assert_eq!(exit_status(7 << 8), 7);
        assert_eq!(exit_status(libc::SIGTERM), 143);
        assert_eq!(exit_status(libc::SIGKILL), 137);
    }

    #[test]
    fn faults_are_not_forwarded_but_term_is() {
        let set = forwarded_set();
        // SAFETY: valid sigset.
        unsafe {
            assert_eq!(libc::sigismember(&set, libc::SIGTERM), 1);
            assert_eq!(libc::sigismember(&set, libc::SIGCHLD), 1);
            assert_eq!(libc::sigismember(&set, libc::SIGSEGV), 0);
        }
    }
}
