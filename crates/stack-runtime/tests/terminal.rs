//! `process.terminal`: the pty master goes to the console socket, the program
//! runs on the slave as its controlling terminal.

mod common;

use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use common::{Bundle, Guard, INIT, unique_id};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use stack_runtime::{Container, CreateOptions};

fn receive_fd(listener: UnixListener) -> OwnedFd {
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed this descriptor for us.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received on the console socket");
}

/// Runs `script` on a terminal; returns what the master read up to `done`
/// and the exit code.
fn run_on_terminal(script: &str, init: bool) -> (String, Option<i32>) {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || receive_fd(listener));

    let b = Bundle::new(&["sh", "-c", script], |v| {
        v["process"]["terminal"] = true.into()
    });
    let root = tempfile::tempdir().unwrap();
    let id = unique_id("rt2-tty");
    let mut opts = CreateOptions::new(&id, b.path(), root.path());
    opts.init_binary = INIT.into();
    opts.console_socket = Some(sock.clone());
    opts.init = init;
    Container::create(opts).expect("create with a terminal");
    let g = Guard {
        root,
        id,
        output: None,
    };
    let master = receiver.join().unwrap();
    let mut c = g.container();
    c.start().unwrap();
    let mut out = Vec::new();
    let mut f = std::fs::File::from(master);
    let mut buf = [0u8; 256];
    // Reading the master ends with EIO once the slave side is closed.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&out).contains("done") {
            break;
        }
    }
    let code = c.wait().unwrap().code;
    (String::from_utf8_lossy(&out).into_owned(), code)
}

#[test]
fn pty_master_is_sent_to_the_console_socket() {
    stack_testing::require_root!();
    let (out, code) = run_on_terminal("tty; echo done", false);
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert_eq!(code, Some(0));
}

#[test]
fn with_init_the_program_is_the_terminals_foreground_group() {
    stack_testing::require_root!();
    // Fields 5 and 8 of /proc/self/stat: process group and the terminal's
    // foreground group. awk stays in the shell's (the program's) group.
    let (out, code) = run_on_terminal(
        "echo pid=$$; awk '{print \"pgrp=\" $5 \" fg=\" $8}' /proc/self/stat; echo done",
        true,
    );
    assert!(out.contains("pid=2"), "{out}");
    assert!(out.contains("pgrp=2 fg=2"), "{out}");
    assert_eq!(code, Some(0));
}

#[test]
fn exec_with_a_terminal_sends_its_master_from_inside_the_mounts() {
    stack_testing::require_root!();
    // The console socket is a host path the exec'd process could not see
    // once it joined the container's mount namespace.
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let g = common::create(&b, "exectty").unwrap();
    let mut c = g.container();
    c.start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || receive_fd(listener));
    let mut p = c.state.config.process().clone().unwrap();
    p.set_args(Some(vec!["sh".into(), "-c".into(), "tty; exit 3".into()]));
    p.set_terminal(Some(true));
    let pid = c
        .exec(
            p,
            stack_runtime::ExecOptions {
                init_binary: INIT.into(),
                stdio: stack_runtime::Stdio::default(),
                console_socket: Some(sock),
            },
        )
        .expect("exec with a terminal");
    let mut f = std::fs::File::from(receiver.join().unwrap());
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("/dev/pts/"), "{out}");
    let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    assert_eq!(
        st,
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 3)
    );
}
