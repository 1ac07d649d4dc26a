//! `stack container rm`, and taking a container's pieces away: the runtime's
//! state and cgroup, the network namespace and veth, the overlay root and the
//! record. Each step tolerates what is already gone, so it also cleans up
//! after a failed run or a crash.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use nix::sys::signal::Signal;
use stack_net::NetworkManager;

use super::create::runtime_root;
use super::net;
use super::record::{Record, Records, State};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container before removing it.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Removes everything of `record`; also used to undo a failed create.
pub fn teardown(
    global: &GlobalArgs,
    record: &Record,
    rt: &tokio::runtime::Runtime,
    manager: &NetworkManager,
) -> anyhow::Result<()> {
    let mut first: Option<anyhow::Error> = None;
    if let Err(e) = stack_runtime::Container::discard(&runtime_root(&global.root), &record.id) {
        first.get_or_insert(
            anyhow::Error::new(e).context("removing the container's process and cgroup"),
        );
    }
    if let Err(e) = rt.block_on(net::forget(manager, &record.id)) {
        first.get_or_insert(e);
    }
    if let Err(e) = rt.block_on(net::release_unused(manager, &global.root)) {
        first.get_or_insert(e);
    }
    let released = stack_image::store::Store::open(&global.root)
        .and_then(|images| images.release_rootfs(&record.id))
        .context("removing the root filesystem");
    if let Err(e) = released {
        first.get_or_insert(e);
    }
    if let Err(e) = Records::new(&global.root).remove(record) {
        first.get_or_insert(e);
    }
    first.map_or(Ok(()), Err)
}

/// Waits until the container's process is gone and, for a detached one,
/// its monitor has recorded the exit.
pub fn wait_stopped(global: &GlobalArgs, id: &str, timeout: Duration) -> bool {
    let records = Records::new(&global.root);
    let deadline = Instant::now() + timeout;
    loop {
        match records.load(id) {
            Ok(Some(r)) if r.is_alive() || r.monitor_alive() => {}
            _ => return true,
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn run(global: &GlobalArgs, args: RmArgs) -> anyhow::Result<ExitCode> {
    let records = Records::new(&global.root);
    let rt = net::runtime()?;
    let manager = net::manager(global)?;
    let mut code = ExitCode::SUCCESS;
    for key in &args.containers {
        let result = (|| -> anyhow::Result<()> {
            let record = records.find(key)?;
            let state = record.live_state(&runtime_root(&global.root));
            if matches!(state, State::Running | State::Paused) {
                if !args.force {
                    anyhow::bail!(
                        "cannot remove container {key}: it is {}; stop it first or use -f",
                        state.as_str()
                    );
                }
                if let Ok(c) =
                    stack_runtime::Container::load(&runtime_root(&global.root), &record.id)
                {
                    if state == State::Paused {
                        let _ = c.cgroup().freeze(false);
                    }
                    let _ = c.kill_all(Signal::SIGKILL);
                }
            }
            // The monitor records the exit (and may remove an --rm container
            // itself); let it finish before taking the directory away.
            wait_stopped(global, &record.id, Duration::from_secs(10));
            if let Some(record) = records.load(&record.id)? {
                teardown(global, &record, &rt, &manager)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => println!("{key}"),
            Err(e) => {
                eprintln!("error: {e:#}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
