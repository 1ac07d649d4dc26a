//! The monitor of one container: start it, wait for its exit, decide with
//! the restart policy, wait the backoff, start it again; obey stop and kill
//! from the user at any point. Time comes from tokio's clock, so tests can
//! pause and drive it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::monitoring::events::{Event, EventKind};
use crate::observed::ContainerState;
use crate::pidfd::{ExitStatus, PidFd};
use crate::restart::{Backoff, Decision, Exit, RestartPolicy, RestartState, decide};

/// What actually starts and signals a container: the runtime in production,
/// plain processes in the monitor's own tests.
pub trait Launcher: Send + Sync + 'static {
    type Error: std::fmt::Display + Send;

    /// Starts the container's main process and returns its pid.
    fn start(&self, container: &str) -> impl Future<Output = Result<i32, Self::Error>> + Send;

    /// Sends `signal` to the container's main process.
    fn signal(&self, container: &str, pid: i32, signal: i32) -> Result<(), Self::Error>;

    /// Turns a raw exit into Docker's terms; this is where an OOM kill
    /// reported by the cgroup is recognised.
    fn classify(&self, container: &str, status: ExitStatus) -> Exit;

    /// Docker's status for a start that failed because the program could
    /// not be executed: 127 when it is not found, 126 when it cannot run.
    fn exec_status(&self, _error: &Self::Error) -> Option<u8> {
        None
    }

    /// Keeps what the monitor knows (state, restart count, backoff, the next
    /// attempt) where a later supervisor finds it; called on every change.
    fn remember(&self, _container: &str, _snapshot: &Snapshot, _restart: &RestartState) {}
}

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub container: String,
    pub policy: RestartPolicy,
    pub backoff: Backoff,
    pub stop_signal: i32,
    pub stop_grace: Duration,
    /// Where the policy stands, from the record of an earlier supervisor.
    pub restart: RestartState,
    /// `x-stack.restart_on_unhealthy`: an unhealthy container is stopped and
    /// started again with the policy's backoff.
    pub restart_on_unhealthy: bool,
}

/// How a monitor takes up its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Start it now.
    Start,
    /// Watch this process, already running (after a supervisor restart).
    Adopt(i32),
    /// It ended while no supervisor watched it: record an exit whose status
    /// is unknown and let the policy decide, as after any exit.
    ExitedUnseen { ran_for: Duration },
    /// It was waiting for a restart when its supervisor went away.
    RestartAt(Instant),
    /// Leave it down until `Start`.
    Idle,
}

/// The monitor's current view, for `ps` and `inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub state: ContainerState,
    pub pid: Option<i32>,
    pub restart_count: u32,
    pub last_exit: Option<Exit>,
    /// When the next restart is due, while `Restarting`.
    pub next_attempt: Option<Instant>,
    pub stopped_by_user: bool,
}

#[derive(Debug)]
pub enum Command {
    /// `stack stop`: the stop signal, then SIGKILL after the grace period.
    /// Answers once the container is down. `grace` overrides the
    /// configured grace period (`stop -t`).
    Stop {
        done: oneshot::Sender<()>,
        grace: Option<Duration>,
    },
    /// `stack kill -s SIG`.
    Kill { signal: i32 },
    /// `stack start` after a stop.
    Start,
    /// Its health check turned unhealthy.
    Unhealthy,
}

#[derive(Debug, Clone)]
pub struct MonitorHandle {
    pub commands: mpsc::Sender<Command>,
    pub snapshot: watch::Receiver<Snapshot>,
}

struct Monitor<L: Launcher> {
    launcher: Arc<L>,
    config: MonitorConfig,
    events: broadcast::Sender<Event>,
    epoch: Instant,
    snapshot: watch::Sender<Snapshot>,
    restart: RestartState,
    /// The current run is being stopped because it turned unhealthy.
    unhealthy_kill: bool,
}

/// Starts monitoring, beginning as `begin` says.
pub fn spawn_monitor<L: Launcher>(
    launcher: Arc<L>,
    config: MonitorConfig,
    events: broadcast::Sender<Event>,
    epoch: Instant,
    begin: Begin,
) -> MonitorHandle {
    let (commands, rx) = mpsc::channel(16);
    let restart = config.restart;
    let (snapshot, snapshot_rx) = watch::channel(Snapshot {
        state: if begin == Begin::Idle {
            ContainerState::Exited
        } else {
            ContainerState::Created
        },
        pid: None,
        restart_count: restart.restart_count,
        last_exit: None,
        next_attempt: None,
        stopped_by_user: restart.stopped_by_user,
    });
    let monitor = Monitor {
        launcher,
        config,
        events,
        epoch,
        snapshot,
        restart,
        unhealthy_kill: false,
    };
    tokio::spawn(monitor.run(rx, begin));
    MonitorHandle {
        commands,
        snapshot: snapshot_rx,
    }
}

enum Next {
    Start,
    Idle,
    Finished,
}

impl<L: Launcher> Monitor<L> {
    fn emit(&self, kind: EventKind) {
        let at_ms = Instant::now().duration_since(self.epoch).as_millis() as u64;
        // Nobody listening is fine: events are also a log, not a protocol.
        let _ = self.events.send(Event {
            container: self.config.container.clone(),
            at_ms,
            time_ns: super::events::unix_ns(),
            kind,
        });
    }

    fn set(&self, f: impl FnOnce(&mut Snapshot)) {
        self.snapshot.send_modify(f);
        self.launcher.remember(
            &self.config.container,
            &self.snapshot.borrow(),
            &self.restart,
        );
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>, begin: Begin) {
        let mut next = match begin {
            Begin::Start => Next::Start,
            Begin::Adopt(pid) => self.watch(pid, &mut commands).await,
            Begin::ExitedUnseen { ran_for } => {
                self.after_exit(Exit::Unknown, ran_for, &mut commands).await
            }
            Begin::RestartAt(due) => {
                let (decision, next_state) = decide(
                    self.config.policy,
                    &self.config.backoff,
                    &self.restart,
                    Exit::Unknown,
                    Duration::ZERO,
                );
                if let Decision::Restart { .. } = decision {
                    // The delay was decided by the previous supervisor; keep
                    // it, so the next one doubles from there.
                    let next_state = RestartState {
                        last_delay: self.restart.last_delay.or(next_state.last_delay),
                        ..next_state
                    };
                    self.wait_restart(due, next_state, &mut commands).await
                } else {
                    self.set(|s| s.state = ContainerState::Exited);
                    Next::Idle
                }
            }
            Begin::Idle => Next::Idle,
        };
        loop {
            next = match next {
                Next::Start => self.start_and_watch(&mut commands).await,
                Next::Idle => match commands.recv().await {
                    Some(Command::Start) => {
                        self.restart.stopped_by_user = false;
                        self.set(|s| s.stopped_by_user = false);
                        Next::Start
                    }
                    Some(Command::Stop { done, .. }) => {
                        let _ = done.send(());
                        Next::Idle
                    }
                    Some(Command::Kill { .. }) | Some(Command::Unhealthy) => Next::Idle,
                    None => Next::Finished,
                },
                Next::Finished => return,
            }
        }
    }

    async fn start_and_watch(&mut self, commands: &mut mpsc::Receiver<Command>) -> Next {
        match self.launcher.start(&self.config.container).await {
            Ok(pid) => self.watch(pid, commands).await,
            Err(err) => {
                self.emit(EventKind::StartFailed {
                    exec_status: self.launcher.exec_status(&err),
                    error: err.to_string(),
                });
                self.set(|s| {
                    s.state = ContainerState::Exited;
                    s.pid = None;
                });
                Next::Idle
            }
        }
    }

    /// Starts the stop of a running container: its stop signal now, SIGKILL
    /// at the returned time.
    /// Sends the stop signal; returns when SIGKILL is due (`grace`, else
    /// the service's stop grace period).
    fn begin_stop(&mut self, pid: i32, grace: Option<Duration>) -> Instant {
        let _ = self
            .launcher
            .signal(&self.config.container, pid, self.config.stop_signal);
        Instant::now() + grace.unwrap_or(self.config.stop_grace)
    }

    /// Watches `pid` until it exits, then decides what comes next.
    async fn watch(&mut self, pid: i32, commands: &mut mpsc::Receiver<Command>) -> Next {
        let started = Instant::now();
        let pidfd = match PidFd::open(pid) {
            Ok(fd) => fd,
            // Gone before we could watch it: an exit whose status is lost.
            Err(_) => {
                return self
                    .after_exit(Exit::Unknown, Duration::ZERO, commands)
                    .await;
            }
        };
        // The state first: whoever waits for the start event (`start`,
        // `up`) may act on the state at once.
        self.set(|s| {
            s.state = ContainerState::Running;
            s.pid = Some(pid);
            s.next_attempt = None;
        });
        self.emit(EventKind::Start { pid });
        let mut stopping: Option<oneshot::Sender<()>> = None;
        let mut kill_at: Option<Instant> = None;
        let status = loop {
            tokio::select! {
                status = pidfd.exited() => break status.unwrap_or(ExitStatus::Unknown),
                cmd = commands.recv(), if stopping.is_none() => match cmd {
                    Some(Command::Stop { done, grace }) => {
                        self.restart.stopped_by_user = true;
                        self.set(|s| s.stopped_by_user = true);
                        self.emit(EventKind::Stop);
                        kill_at = Some(self.begin_stop(pid, grace));
                        stopping = Some(done);
                    }
                    Some(Command::Kill { signal }) => {
                        // A user kill counts as a user stop, as in Docker.
                        self.restart.stopped_by_user = true;
                        self.set(|s| s.stopped_by_user = true);
                        self.emit(EventKind::Kill { signal });
                        let _ = self.launcher.signal(&self.config.container, pid, signal);
                    }
                    Some(Command::Start) => {}
                    Some(Command::Unhealthy) => {
                        if self.config.restart_on_unhealthy && kill_at.is_none() {
                            self.unhealthy_kill = true;
                            kill_at = Some(self.begin_stop(pid, None));
                        }
                    }
                    None => {
                        // The supervisor is going away; the container keeps
                        // running and will be adopted by the next one.
                        return Next::Finished;
                    }
                },
                () = sleep_until_opt(kill_at) => {
                    let _ = self.launcher.signal(&self.config.container, pid, libc::SIGKILL);
                    kill_at = None;
                }
            }
        };
        let exit = self.launcher.classify(&self.config.container, status);
        let next = self
            .after_exit(exit, Instant::now().duration_since(started), commands)
            .await;
        if let Some(done) = stopping {
            let _ = done.send(());
        }
        next
    }

    async fn after_exit(
        &mut self,
        exit: Exit,
        ran_for: Duration,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Next {
        let (exit_code, signal) = match exit {
            Exit::Code(c) => (Some(c), None),
            Exit::Signal(s) => (None, Some(s)),
            Exit::OomKilled => (None, Some(libc::SIGKILL)),
            Exit::Unknown => (None, None),
        };
        if exit == Exit::OomKilled {
            self.emit(EventKind::Oom);
        }
        self.emit(EventKind::Die { exit_code, signal });
        self.set(|s| {
            s.pid = None;
            s.last_exit = Some(exit);
        });
        // A container stopped for being unhealthy is restarted even under
        // `restart: no` (that is what the user opted in to), with the backoff.
        let policy = match (std::mem::take(&mut self.unhealthy_kill), self.config.policy) {
            (true, RestartPolicy::No) => RestartPolicy::Always,
            (_, policy) => policy,
        };
        let (decision, next_state) =
            decide(policy, &self.config.backoff, &self.restart, exit, ran_for);
        let Decision::Restart { after } = decision else {
            self.set(|s| s.state = ContainerState::Exited);
            return Next::Idle;
        };
        let due = Instant::now() + after;
        self.emit(EventKind::Restarting {
            delay_ms: after.as_millis() as u64,
            attempt: next_state.restart_count,
        });
        self.wait_restart(due, next_state, commands).await
    }

    /// Waits until `due` (a user stop cancels), then starts again.
    async fn wait_restart(
        &mut self,
        due: Instant,
        next_state: RestartState,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Next {
        // Kept before the wait, so that a supervisor that dies meanwhile
        // leaves the backoff for the next one to continue.
        self.restart.last_delay = next_state.last_delay;
        self.set(|s| {
            s.state = ContainerState::Restarting;
            s.next_attempt = Some(due);
        });
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(due) => break,
                cmd = commands.recv() => match cmd {
                    Some(Command::Stop { done, .. }) => {
                        // Stopping a container that waits to restart: it
                        // stays down.
                        self.restart.stopped_by_user = true;
                        self.set(|s| {
                            s.stopped_by_user = true;
                            s.state = ContainerState::Exited;
                            s.next_attempt = None;
                        });
                        let _ = done.send(());
                        return Next::Idle;
                    }
                    Some(Command::Kill { .. } | Command::Start | Command::Unhealthy) => {}
                    None => return Next::Finished,
                },
            }
        }
        self.restart = next_state;
        self.set(|s| {
            s.restart_count = next_state.restart_count;
            s.next_attempt = None;
        });
        self.emit(EventKind::Restart);
        Next::Start
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
