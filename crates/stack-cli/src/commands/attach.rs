//! `stack attach SERVICE`: a running container's output, as `docker compose
//! attach` shows it, from the log the project's log keeper writes (its
//! standard output here, its standard error on ours), until the container
//! exits (with its exit code) or the detach keys are typed. With
//! `--sig-proxy` (the default) a signal to this command goes to the
//! container. The container's standard input is not kept by the log keeper
//! (stack starts containers with `/dev/null` there), so nothing typed
//! reaches it: said once when the service asks for `stdin_open`.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use stack_engine::api::logs::{Stream, read_all};
use stack_engine::api::{ContainerRecord, Records};

use super::logs::Mark;
use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct AttachArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Which replica of the service.
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Do not read standard input (no detach keys).
    #[arg(long)]
    pub no_stdin: bool,
    /// Pass the signals this command gets on to the container.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// The keys that detach, as Docker writes them (`ctrl-p,ctrl-q`).
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    pub service: String,
}

/// `ctrl-p,ctrl-q` → `[0x10, 0x11]`, as Docker parses `--detach-keys`:
/// `ctrl-<letter>`, `ctrl-@ [ \ ] ^ _`, or a single character.
pub fn detach_keys(spec: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for key in spec.split(',') {
        let key = key.trim();
        if let Some(c) = key.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b] if b.is_ascii_alphabetic() => b.to_ascii_lowercase() - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => bail!("--detach-keys: unknown key {key:?}"),
            };
            out.push(b);
        } else if key.len() == 1 {
            out.push(key.as_bytes()[0]);
        } else {
            bail!("--detach-keys: unknown key {key:?}");
        }
    }
    Ok(out)
}

fn find(store: &Records, project: &str, args: &AttachArgs) -> anyhow::Result<ContainerRecord> {
    store
        .containers(project)?
        .into_iter()
        .find(|r| r.service == args.service && r.number == args.index && !r.one_off)
        .with_context(|| {
            format!(
                "service {} has no container number {} in project {project}",
                args.service, args.index
            )
        })
}

/// Signals passed on with `--sig-proxy`; SIGKILL and SIGSTOP cannot be caught.
const PROXIED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

pub fn run(global: &GlobalArgs, args: AttachArgs) -> anyhow::Result<ExitCode> {
    let keys = detach_keys(&args.detach_keys)?;
    let Some(project) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let store = Records::new(&global.root);
    let record = find(&store, &project, &args)?;
    if !record.is_alive() {
        bail!("container {} is not running", record.name);
    }
    if let Ok(Some(loaded)) = args.project.load()
        && loaded
            .project
            .services
            .get(&args.service)
            .is_some_and(|s| s.stdin_open)
        && !args.no_stdin
    {
        eprintln!(
            "warning: {}: standard input is not attached (stack does not keep a container's stdin open)",
            record.name
        );
    }
    let log = store
        .container_dir(&project, &record.name)
        .join("container.log");

    // Signals are counted by a handler thread and passed on from the loop,
    // which checks that the pid is still the container's.
    let pending = Arc::new(AtomicI32::new(0));
    if args.sig_proxy {
        let mut signals = proxied_signals(&PROXIED)?;
        let pending = Arc::clone(&pending);
        std::thread::spawn(move || {
            for sig in signals.by_ref() {
                pending.store(sig, Ordering::SeqCst);
            }
        });
    }
    let detached = Arc::new(AtomicBool::new(false));
    let mut _keys_mode = None;
    if !args.no_stdin && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        _keys_mode = Some(crate::terminal::RawMode::keys_only());
        let detached = Arc::clone(&detached);
        std::thread::spawn(move || {
            let mut matched = 0;
            let mut byte = [0u8; 1];
            while std::io::stdin().read(&mut byte).is_ok_and(|n| n == 1) {
                matched = if byte[0] == keys[matched] {
                    matched + 1
                } else {
                    usize::from(byte[0] == keys[0])
                };
                if matched == keys.len() {
                    detached.store(true, Ordering::SeqCst);
                    return;
                }
            }
        });
    }

    // `kill_now`'s pidfd registers with a runtime.
    let rt = client::runtime()?;
    let _runtime = rt.enter();
    // Followed as `logs -f` follows: by time, so that rotation does not
    // repeat or skip lines.
    let mut mark = Mark::after(&read_all(&log).unwrap_or_default());
    loop {
        let alive = find(&store, &project, &args).is_ok_and(|r| r.id == record.id && r.is_alive());
        let entries = read_all(&log).unwrap_or_default();
        {
            let mut out = std::io::stdout().lock();
            let mut err = std::io::stderr().lock();
            for e in mark.unseen(&entries) {
                let _ = match e.stream {
                    Stream::Stdout => out.write_all(e.log.as_bytes()),
                    Stream::Stderr => err.write_all(e.log.as_bytes()),
                };
            }
            let _ = out.flush();
        }
        mark = Mark::after(&entries);
        if detached.load(Ordering::SeqCst) {
            eprintln!("\r\nread escape sequence");
            return Ok(ExitCode::SUCCESS);
        }
        if !alive {
            let code = find(&store, &project, &args)
                .ok()
                .and_then(|r| r.last_exit)
                .and_then(|e| e.code)
                .unwrap_or(0);
            return Ok(ExitCode::from(code.clamp(0, 255) as u8));
        }
        let sig = pending.swap(0, Ordering::SeqCst);
        if sig != 0 {
            // Through a pidfd: never a process that reused the pid.
            // A container that exits meanwhile (ESRCH) is seen next round.
            match stack_engine::api::kill_now(&record, sig) {
                Err(e) if e.raw_os_error() != Some(libc::ESRCH) => return Err(e.into()),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The proxied signals, blocked in every thread and taken one at a time
/// from a `signalfd`.
fn proxied_signals(signals: &[i32]) -> anyhow::Result<impl Iterator<Item = i32> + Send> {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let mut set = SigSet::empty();
    for s in signals {
        set.add(Signal::try_from(*s)?);
    }
    // Before any other thread exists that could take them instead.
    set.thread_block()?;
    let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)?;
    Ok(std::iter::from_fn(move || {
        fd.read_signal().ok().flatten().map(|s| s.ssi_signo as i32)
    }))
}

#[cfg(test)]
mod tests {
    use super::detach_keys;

    #[test]
    fn detach_keys_as_docker_writes_them() {
        assert_eq!(detach_keys("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(detach_keys("ctrl-a,x").unwrap(), [1, b'x']);
        assert!(detach_keys("ctrl-1").is_err());
        assert!(detach_keys("alt-x").is_err());
    }
}
