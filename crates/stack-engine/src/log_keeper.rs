//! The project's log keeper: a small process of its own (like conmon, but
//! one per project rather than one per container) that holds the read ends
//! of the containers' output pipes and writes their logs. The supervisor
//! hands it each new pair of pipes over a Unix socket (`SCM_RIGHTS`), so a
//! container never notices when its supervisor dies or restarts: its output
//! keeps being read and written to the log, and it can neither block on a
//! full pipe nor die of `SIGPIPE` in the meantime.
//!
//! It ends by itself once the project's state directory is gone (`down`).
//! When a log cannot be written (a full disk) it keeps reading and drops
//! lines, and tells the supervisor over its control socket that writing
//! paused and, later, resumed: the supervisor owns the event journal and
//! the live feed of `stack events`, so that is where such an event must
//! go; a report is never waited for, as the supervisor may be busy or
//! gone.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader, Interest};
use tokio::net::{UnixListener, UnixStream};

use crate::control::{Channel, Request};
use crate::log_files::{LogWriter, Rotation, Stream};
use crate::monitoring::EventKind;

/// One container run's output, as the supervisor hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    pub container: String,
    pub path: PathBuf,
    pub max_size: u64,
    pub max_file: u32,
}

/// What the keeper tells the supervisor about a container's log, so that
/// `stack events` shows it (the keeper has no event journal of its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum LogNotice {
    /// Writing failed; lines are dropped until it works again.
    Paused { error: String },
    /// Writing works again after `dropped` lines were lost.
    Resumed { dropped: u64 },
}

impl From<LogNotice> for EventKind {
    fn from(notice: LogNotice) -> Self {
        match notice {
            LogNotice::Paused { error } => EventKind::LogPaused { error },
            LogNotice::Resumed { dropped } => EventKind::LogResumed { dropped },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoggerError {
    #[error("log keeper socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How long a keeper has to acknowledge a handover.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// The log keeper's socket.
pub fn socket_path(run_dir: &Path, project: &str) -> PathBuf {
    stack_fs::Layout::new(PathBuf::new(), run_dir).log_keeper_socket(project)
}

/// Hands `stdout` and `stderr` (read ends) to the keeper at `socket`.
pub fn hand_over(
    socket: &Path,
    handover: &Handover,
    stdout: &OwnedFd,
    stderr: &OwnedFd,
) -> std::io::Result<()> {
    let stream = StdUnixStream::connect(socket)?;
    // A keeper that hangs (stopped, or stuck) is treated as gone rather
    // than holding up the container's start.
    stream.set_read_timeout(Some(HANDOVER_TIMEOUT))?;
    let header = serde_json::to_vec(handover).map_err(std::io::Error::other)?;
    let fds = [stdout.as_raw_fd(), stderr.as_raw_fd()];
    let iov = [IoSlice::new(&header)];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    if sent != header.len() {
        return Err(std::io::Error::other("short write to the log keeper"));
    }
    // One byte back says the pipes are in its hands.
    let mut ack = [0u8; 1];
    std::io::Read::read_exact(&mut &stream, &mut ack)
}

/// Runs the keeper of `project` until its state directory goes away,
/// telling the supervisor at `supervisor` when a log pauses or resumes.
pub async fn serve(
    socket: PathBuf,
    project_dir: PathBuf,
    supervisor: PathBuf,
) -> Result<(), LoggerError> {
    let supervisor = Arc::new(supervisor);
    let err = |source| LoggerError::Io {
        path: socket.clone(),
        source,
    };
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    // The caller holds the keeper's lock: a socket file here is stale.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(err)?;
    let mut check = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let supervisor = supervisor.clone();
                    tokio::spawn(async move {
                        if let Err(e) = receive(stream, supervisor).await {
                            tracing::warn!("log handover: {e}");
                        }
                    });
                }
            }
            _ = check.tick() => {
                if !project_dir.exists() {
                    let _ = std::fs::remove_file(&socket);
                    return Ok(());
                }
            }
        }
    }
}

async fn receive(stream: UnixStream, supervisor: Arc<PathBuf>) -> std::io::Result<()> {
    let (header, fds) = stream
        .async_io(Interest::READABLE, || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut space = nix::cmsg_space!([RawFd; 2]);
            let (len, fds) = {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let msg = recvmsg::<()>(
                    stream.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
                )?;
                let mut fds = Vec::new();
                for c in msg.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(list) = c {
                        // SAFETY: the kernel just installed these
                        // descriptors for us; nothing else owns them.
                        fds.extend(
                            list.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                (msg.bytes, fds)
            };
            buf.truncate(len);
            Ok((buf, fds))
        })
        .await?;
    let handover: Handover = serde_json::from_slice(&header).map_err(std::io::Error::other)?;
    let [stdout, stderr]: [OwnedFd; 2] = fds
        .try_into()
        .map_err(|_| std::io::Error::other("expected two pipes"))?;
    let rotation = Rotation {
        max_size: handover.max_size,
        max_file: handover.max_file,
    };
    let writer = Arc::new(Mutex::new(LogWriter::open(&handover.path, rotation)?));
    // The pipes are here but not yet acknowledged: the supervisor still
    // holds its own ends and hands them to the next keeper.
    stack_runtime::fault::point("keeper-after-receive");
    for (fd, stream) in [(stdout, Stream::Stdout), (stderr, Stream::Stderr)] {
        let (supervisor, container) = (supervisor.clone(), handover.container.clone());
        pump(
            fd,
            stream,
            handover.container.clone(),
            writer.clone(),
            |_| {},
            move |notice| report(&supervisor, &container, notice),
        );
    }
    stream
        .async_io(Interest::WRITABLE, || {
            nix::unistd::write(&stream, b"k").map_err(std::io::Error::from)
        })
        .await?;
    Ok(())
}

/// Tells the supervisor of a log's pause or resumption, without waiting
/// for it (it may be busy with a plan, or not running: then the keeper's
/// warning is all that says it).
fn report(supervisor: &Path, container: &str, notice: LogNotice) {
    let request = Request::LogState {
        container: container.to_owned(),
        notice,
    };
    let supervisor = supervisor.to_owned();
    tokio::spawn(async move {
        let sent = async {
            let mut channel = Channel::connect(&supervisor).await?;
            channel.send(&request).await
        };
        match tokio::time::timeout(REPORT_TIMEOUT, sent).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("cannot report a log pause to the supervisor: {e}"),
            Err(_) => tracing::warn!("the supervisor did not take a log pause report in time"),
        }
    });
}

/// How long a report of a log pause may wait for the supervisor.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Docker's json-file driver cuts lines at 16 KiB; so do we, so that a
/// process that never writes a newline cannot grow a buffer without end.
pub const MAX_LINE: usize = 16 * 1024;

/// What one pipe's reader holds between reads.
const READ_BUFFER: usize = 2048;

fn is_fifo(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO)
        .unwrap_or(false)
}

/// Copies one output stream of a container into its log, line by line with
/// a timestamp (bytes that are not UTF-8 are replaced, never a reason to
/// stop reading); `each` sees every line too, and `notify` hears when
/// writing pauses and resumes.
pub fn pump(
    fd: OwnedFd,
    stream: Stream,
    container: String,
    writer: Arc<Mutex<LogWriter>>,
    each: impl Fn(&str) + Send + Sync + 'static,
    notify: impl Fn(LogNotice) + Send + Sync + 'static,
) {
    let source: Box<dyn AsyncRead + Send + Unpin> = if is_fifo(&fd) {
        match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
            Ok(pipe) => Box::new(pipe),
            Err(_) => return,
        }
    } else {
        // A detached container's terminal (a pty master), which epoll
        // cannot follow as a pipe: read on a blocking thread. Once the
        // container's side is closed, a read fails with EIO, which ends
        // it as the end of a pipe does.
        Box::new(tokio::fs::File::from_std(std::fs::File::from(fd)))
    };
    tokio::spawn(async move {
        // A small buffer: most containers are quiet, and a long line grows
        // `line` only while it lasts.
        let mut reader = BufReader::with_capacity(READ_BUFFER, source);
        let mut line: Vec<u8> = Vec::new();
        // Lines that could not be written since the last that could (a
        // full disk): the pipe is still read, so the container never
        // blocks or dies, and one warning says when writing paused and
        // one when it resumed.
        let mut dropped: u64 = 0;
        let mut write = |line: &[u8]| {
            let text = String::from_utf8_lossy(line);
            match writer.lock().unwrap_or_else(|e| e.into_inner()).write(
                stream,
                &text,
                SystemTime::now(),
            ) {
                Err(e) => {
                    if dropped == 0 {
                        tracing::warn!("log of {container}: {e}; writing paused, lines dropped");
                        notify(LogNotice::Paused {
                            error: e.to_string(),
                        });
                    }
                    dropped += 1;
                }
                Ok(()) if dropped > 0 => {
                    tracing::warn!("log of {container}: writing resumed, {dropped} lines dropped");
                    notify(LogNotice::Resumed { dropped });
                    dropped = 0;
                }
                Ok(()) => {}
            }
            stack_runtime::fault::point("keeper-after-write");
            each(text.trim_end_matches('\n'));
        };
        loop {
            let buf = match reader.fill_buf().await {
                Ok([]) | Err(_) => break,
                Ok(buf) => buf,
            };
            let (taken, complete) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            line.extend_from_slice(&buf[..taken]);
            reader.consume(taken);
            if complete || line.len() >= MAX_LINE {
                write(&line);
                line.clear();
                line.shrink_to(READ_BUFFER);
            }
        }
        if !line.is_empty() {
            write(&line);
        }
    });
}
