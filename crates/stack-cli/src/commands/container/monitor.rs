//! The monitor of a detached container (`stack container __monitor ID`, in a
//! session of its own, like podman's conmon): it starts the prepared
//! container as its child, writes the container's output to its log, holds
//! its published host ports, and waits, so that the exit code is recorded
//! (and `--rm` honoured) with no daemon. It reports on file descriptor
//! [`READY_FD`] once the container runs, or why it could not.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;
use stack_engine::log_files::{LogWriter, Rotation, Stream};
use stack_runtime::{Container, CreateOptions};

use super::create::{load_spec, runtime_root};
use super::net;
use super::record::{Record, Records, now_ms};
use super::remove;
use super::run::finish;
use super::tty;
use crate::cli::GlobalArgs;

/// Where the monitor finds the pipe to the `run -d` that started it.
pub const READY_FD: i32 = 3;

#[derive(Debug, Args)]
pub struct MonitorArgs {
    pub id: String,
}

pub fn log_path(global: &GlobalArgs, id: &str) -> std::path::PathBuf {
    Records::new(&global.root).dir(id).join("container.log")
}

/// The published ports of a record, from its `-p` flags.
fn mappings(record: &Record) -> anyhow::Result<Vec<stack_net::PortMapping>> {
    let mut service = stack_spec::Service::default();
    for p in &record.port_specs {
        service.ports.extend(
            stack_spec::ports::parse_port_spec(p).map_err(|e| anyhow::anyhow!("-p {p:?}: {e}"))?,
        );
    }
    Ok(stack_engine::host::port_mappings(&service)?)
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")
}

pub fn run(global: &GlobalArgs, args: MonitorArgs) -> anyhow::Result<ExitCode> {
    // SAFETY: `run -d` put the write end of its pipe at READY_FD for us and
    // nothing else in this process uses that number.
    let mut ready = unsafe { File::from_raw_fd(READY_FD) };
    let records = Records::new(&global.root);
    let rt = net::runtime()?;
    let manager = net::manager(global)?;
    let Some(mut record) = records.load(&args.id)? else {
        let _ = writeln!(ready, "error: no such container: {}", args.id);
        return Ok(ExitCode::FAILURE);
    };
    #[allow(clippy::type_complexity)]
    let started =
        (|| -> anyhow::Result<(Container, Vec<std::thread::JoinHandle<()>>, Option<OwnedFd>)> {
            rt.block_on(net::publish(&manager, &record.id, &mappings(&record)?))?;
            let mut options = CreateOptions::new(
                record.id.clone(),
                records.dir(&record.id),
                runtime_root(&global.root),
            );
            options.spec = Some(load_spec(&global.root, &record.id)?);
            options.init_binary = crate::helper::init_binary()?;
            options.default_seccomp = true;
            // `-i`: standard input stays open (this process holds the other
            // end) instead of reading as empty.
            let mut stdin_writer = None;
            options.stdio.stdin = Some(if record.interactive && !record.tty {
                let (r, w) = pipe()?;
                stdin_writer = Some(w);
                r
            } else {
                File::open("/dev/null")?.into()
            });
            let mut outputs = Vec::new();
            let console = if record.tty {
                let path = global
                    .run_dir
                    .join("console")
                    .join(format!("{}.sock", record.short_id()));
                let console = tty::Console::listen(&path)?;
                options.console_socket = Some(console.path().to_owned());
                Some(console)
            } else {
                let (out_r, out_w) = pipe()?;
                let (err_r, err_w) = pipe()?;
                options.stdio.stdout = Some(out_w);
                options.stdio.stderr = Some(err_w);
                outputs.push((out_r, Stream::Stdout));
                outputs.push((err_r, Stream::Stderr));
                None
            };
            let mut container = Container::create(options).context("creating the container")?;
            if let Some(console) = console {
                // A pty has one stream; the master stays open while we read it,
                // so the program keeps its terminal.
                outputs.push((console.master()?.into(), Stream::Stdout));
            }
            let writer = LogWriter::open(&log_path(global, &record.id), Rotation::default())
                .context("opening the container's log")?;
            let writer = Arc::new(Mutex::new(writer));
            let pumps = outputs
                .into_iter()
                .map(|(fd, stream)| {
                    let writer = writer.clone();
                    std::thread::spawn(move || pump(fd, stream, &writer))
                })
                .collect();
            container.start().context("starting the container")?;
            Ok((container, pumps, stdin_writer))
        })();
    let (container, pumps, _stdin) = match started {
        Ok(started) => started,
        Err(e) => {
            let _ = writeln!(ready, "error: {e:#}");
            if let Err(undo) = remove::teardown(global, &record, &rt, &manager) {
                eprintln!("cleaning up after the failure: {undo:#}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let me = std::process::id() as i32;
    record.pid = Some(container.pid());
    record.pid_start_time = Some(container.start_time());
    record.started_ms = Some(now_ms());
    record.monitor_pid = Some(me);
    record.monitor_start_time = stack_runtime::state::proc_stat(me).map(|s| s.start_time);
    records.save(&record, false)?;
    let _ = writeln!(ready, "ok");
    drop(ready);

    let exit = container.wait().context("waiting for the container")?;
    for p in pumps {
        let _ = p.join();
    }
    // `rm -f` may have taken the record away meanwhile.
    let Some(mut current) = records.load(&record.id)? else {
        return Ok(ExitCode::SUCCESS);
    };
    current.monitor_pid = None;
    current.monitor_start_time = None;
    finish(global, &mut current, exit, &rt, &manager)?;
    Ok(ExitCode::SUCCESS)
}

/// Copies one output stream into the log, line by line with a timestamp.
fn pump(fd: OwnedFd, stream: Stream, writer: &Mutex<LogWriter>) {
    let mut reader = BufReader::new(File::from(fd));
    let mut line = Vec::new();
    loop {
        line.clear();
        // A pty master ends with EIO rather than EOF; what came before counts.
        let end = !matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0);
        if !line.is_empty() {
            let text = String::from_utf8_lossy(&line);
            let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = w.write(stream, &text, SystemTime::now()) {
                eprintln!("writing the log: {e}");
            }
        }
        if end {
            return;
        }
    }
}
