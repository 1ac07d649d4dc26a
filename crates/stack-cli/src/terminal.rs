//! A terminal for `exec` and `run`: a console socket that receives the
//! pty master from the container's init (runc's protocol), this terminal
//! in raw mode, and the bytes copied both ways until the program ends.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Context;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

/// Whether standard input is a terminal (then `rm` asks).
pub fn stdin_is_tty() -> bool {
    nix::unistd::isatty(std::io::stdin()).unwrap_or(false)
}

/// Whether `exec` and `run` allocate a terminal by default: input and
/// output both are one (compose's `-T` defaults to "output is not a
/// terminal"; a redirected output gets the program's plain bytes).
pub fn interactive() -> bool {
    stdin_is_tty() && nix::unistd::isatty(std::io::stdout()).unwrap_or(false)
}

/// This terminal's size as (rows, columns); 24x80 when unknown.
pub fn size() -> (u16, u16) {
    known_size().unwrap_or((24, 80))
}

/// The size of the terminal on standard input, or else on standard output.
pub fn known_size() -> Option<(u16, u16)> {
    for fd in [libc::STDIN_FILENO, libc::STDOUT_FILENO] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ fills the winsize we pass.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0
            && ws.ws_row > 0
            && ws.ws_col > 0
        {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// A listening console socket under a unique name, removed when dropped.
pub struct ConsoleSocket(stack_engine::api::console::ConsoleSocket);

impl ConsoleSocket {
    pub fn bind(dir: &Path) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = dir.join(format!("console-{}-{nanos}.sock", std::process::id()));
        stack_engine::api::console::ConsoleSocket::bind(path.clone())
            .map(Self)
            .with_context(|| format!("cannot listen on {}", path.display()))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// The pty master the container's init sends.
    pub fn receive(&self) -> anyhow::Result<OwnedFd> {
        self.0
            .receive()
            .context("receiving the container's terminal")
    }
}

/// Where a run's container reads and writes: a terminal (`tty`) whose
/// pty master comes back on the console socket returned with it, the log
/// keeper (`detach`), or else this process's own stdio.
pub fn run_stdio(
    run_dir: &Path,
    tty: bool,
    detach: bool,
) -> anyhow::Result<(Option<ConsoleSocket>, stack_engine::api::RunStdio)> {
    use stack_engine::api::RunStdio;
    if tty && !detach {
        let console = ConsoleSocket::bind(&run_dir.join("consoles"))?;
        let (rows, cols) = size();
        let stdio = RunStdio::Terminal {
            console_socket: console.path().to_owned(),
            rows,
            cols,
        };
        return Ok((Some(console), stdio));
    }
    Ok((
        None,
        if detach {
            RunStdio::Log
        } else {
            RunStdio::Inherit
        },
    ))
}

/// Accepts the container init's connection on a console socket and takes
/// the pty master it passes.
pub fn receive_pty(listener: &UnixListener) -> anyhow::Result<OwnedFd> {
    stack_engine::api::console::receive_pty(listener).context("receiving the container's terminal")
}

/// This terminal in raw mode until dropped (keys go to the container as
/// typed, Ctrl-C included).
pub struct RawMode(Option<Termios>);

impl RawMode {
    pub fn enter() -> Self {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(stdin.as_fd()) else {
            return Self(None);
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        Self(Some(saved))
    }
}

impl RawMode {
    /// Keys read one by one without echo, while output lines and Ctrl-C
    /// keep working as usual (`attach` watching for its detach keys).
    pub fn keys_only() -> Self {
        use nix::sys::termios::LocalFlags;
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(stdin.as_fd()) else {
            return Self(None);
        };
        let mut keys = saved.clone();
        keys.local_flags
            .remove(LocalFlags::ICANON | LocalFlags::ECHO);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &keys);
        Self(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// The write end of the pipe the SIGWINCH handler pokes.
static WINCH: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_winch(_: libc::c_int) {
    let fd = WINCH.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops it.
        unsafe { libc::write(fd, b"w".as_ptr().cast(), 1) };
    }
}

/// Gives `master` this terminal's size now and after every resize
/// (SIGWINCH). A handler rather than a blocked signal: a blocked mask
/// would be inherited by the container's process, a handler is not.
fn follow_size(master: OwnedFd) -> anyhow::Result<()> {
    let resize = move || {
        let (rows, cols) = size();
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the winsize we pass.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    };
    resize();
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
    nix::fcntl::fcntl(
        &r,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    )?;
    WINCH.store(w.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(w);
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_winch),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only calls write(2).
    unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGWINCH, &action) }?;
    let mut pipe = std::fs::File::from(r);
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while matches!(pipe.read(&mut buf), Ok(n) if n > 0) {
            resize();
        }
    });
    Ok(())
}

/// Copies this process's stdin to `master` and `master` to stdout, and
/// passes on resizes; the returned thread ends when the container side of
/// the terminal closes (the input thread is left to the end of the
/// process).
pub fn proxy(master: OwnedFd) -> anyhow::Result<std::thread::JoinHandle<()>> {
    follow_size(master.try_clone()?)?;
    let mut input = std::fs::File::from(master.try_clone()?);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || input.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut output = std::fs::File::from(master);
    Ok(std::thread::spawn(move || {
        let mut stdout = std::io::stdout();
        let mut buf = [0u8; 4096];
        // Reading the master fails with EIO once the program is gone.
        while let Ok(n) = output.read(&mut buf) {
            if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                break;
            }
            let _ = stdout.flush();
        }
    }))
}
