//! The container monitor against real processes, on tokio's paused clock so
//! that backoff delays (up to the 60 s cap) and the 10 s reset are checked
//! exactly and quickly.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stack_engine::monitoring::{
    Begin, Command, Event, EventKind, ExitStatus, Launcher, MonitorConfig, MonitorHandle,
    spawn_monitor,
};
use stack_engine::observed::ContainerState;
use stack_engine::restart::{Backoff, Exit, RestartPolicy};
use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;

/// Runs each "container" as `sh -c SCRIPT`; with a sequence, the n-th start
/// runs the n-th script (the last one repeats).
struct Shell {
    scripts: Mutex<HashMap<String, (Vec<String>, usize)>>,
}

impl Shell {
    fn new(name: &str, script: &str) -> Arc<Self> {
        Self::sequence(name, vec![script.to_owned()])
    }

    fn sequence(name: &str, scripts: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            scripts: Mutex::new(HashMap::from([(name.to_owned(), (scripts, 0))])),
        })
    }
}

impl Launcher for Shell {
    type Error = std::io::Error;

    async fn start(&self, container: &str) -> Result<i32, Self::Error> {
        let script = {
            let mut scripts = self.scripts.lock().unwrap();
            let (list, next) = scripts.get_mut(container).expect("known container");
            let script = list[(*next).min(list.len() - 1)].clone();
            *next += 1;
            script
        };
        let child = Process::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()?;
        // The monitor's pidfd reaps it.
        Ok(child.id() as i32)
    }

    fn signal(&self, _: &str, pid: i32, signal: i32) -> Result<(), Self::Error> {
        // SAFETY: kill(2) with a pid and a signal number touches no memory.
        if unsafe { libc::kill(pid, signal) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn classify(&self, _: &str, status: ExitStatus) -> Exit {
        match status {
            ExitStatus::Exited(code) => Exit::Code(code),
            ExitStatus::Signaled(sig) => Exit::Signal(sig),
            ExitStatus::Unknown => Exit::Unknown,
        }
    }
}

fn config(name: &str, policy: RestartPolicy) -> MonitorConfig {
    MonitorConfig {
        container: name.to_owned(),
        policy,
        backoff: Backoff::default(),
        stop_signal: libc::SIGTERM,
        stop_grace: Duration::from_secs(10),
        restart: Default::default(),
        restart_on_unhealthy: false,
    }
}

fn start(launcher: Arc<Shell>, cfg: MonitorConfig) -> (MonitorHandle, broadcast::Receiver<Event>) {
    let (tx, rx) = broadcast::channel(1024);
    let handle = spawn_monitor(launcher, cfg, tx, Instant::now(), Begin::Start);
    (handle, rx)
}

async fn wait_state(handle: &mut MonitorHandle, state: ContainerState) {
    handle
        .snapshot
        .wait_for(|s| s.state == state)
        .await
        .expect("monitor alive");
}

async fn next_matching(
    rx: &mut broadcast::Receiver<Event>,
    f: impl Fn(&EventKind) -> bool,
) -> Event {
    loop {
        let event = rx.recv().await.expect("events flow");
        if f(&event.kind) {
            return event;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn always_restarts_with_doubling_backoff_capped_at_sixty_seconds() {
    let (_handle, mut rx) = start(
        Shell::new("c", "exit 3"),
        config("c", RestartPolicy::Always),
    );
    let mut delays = Vec::new();
    let mut last_die = 0;
    for _ in 0..13 {
        let die = next_matching(&mut rx, |k| matches!(k, EventKind::Die { .. })).await;
        assert_eq!(
            die.kind,
            EventKind::Die {
                exit_code: Some(3),
                signal: None
            }
        );
        if !delays.is_empty() {
            // The restarted process started exactly one delay after the die.
            assert!(die.at_ms >= last_die + delays.last().copied().unwrap_or(0));
        }
        last_die = die.at_ms;
        match next_matching(&mut rx, |k| matches!(k, EventKind::Restarting { .. }))
            .await
            .kind
        {
            EventKind::Restarting { delay_ms, .. } => delays.push(delay_ms),
            _ => unreachable!(),
        }
        let started = next_matching(&mut rx, |k| matches!(k, EventKind::Start { .. })).await;
        assert_eq!(started.at_ms - last_die, *delays.last().unwrap());
    }
    assert_eq!(
        delays,
        [
            100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000, 60000
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn on_failure_gives_up_after_max_retries_and_ignores_success() {
    let policy = RestartPolicy::OnFailure {
        max_retries: Some(2),
    };
    let (mut handle, mut rx) = start(Shell::new("c", "exit 3"), config("c", policy));
    wait_state(&mut handle, ContainerState::Exited).await;
    let snap = handle.snapshot.borrow().clone();
    assert_eq!(snap.restart_count, 2);
    assert_eq!(snap.last_exit, Some(Exit::Code(3)));
    let mut dies = 0;
    while let Ok(event) = rx.try_recv() {
        dies += matches!(event.kind, EventKind::Die { .. }) as u32;
    }
    assert_eq!(dies, 3, "first run plus two restarts");

    let (mut handle, _rx) = start(Shell::new("ok", "exit 0"), config("ok", policy));
    wait_state(&mut handle, ContainerState::Exited).await;
    assert_eq!(handle.snapshot.borrow().restart_count, 0);
}

#[tokio::test(start_paused = true)]
async fn ten_seconds_of_running_resets_the_backoff() {
    // Runs 1-3 crash at once; run 4 blocks reading a fifo until the test has
    // moved the clock 11 s, then crashes too.
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    nix::unistd::mkfifo(&gate, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let quick = "exit 1".to_owned();
    let slow = format!("cat {} >/dev/null; exit 1", gate.display());
    let shell = Shell::sequence("c", vec![quick.clone(), quick.clone(), quick, slow]);
    let (mut handle, mut rx) = start(shell, config("c", RestartPolicy::Always));
    for expected in [100, 200, 400] {
        match next_matching(&mut rx, |k| matches!(k, EventKind::Restarting { .. }))
            .await
            .kind
        {
            EventKind::Restarting { delay_ms, .. } => assert_eq!(delay_ms, expected),
            _ => unreachable!(),
        }
    }
    next_matching(&mut rx, |k| matches!(k, EventKind::Start { .. })).await;
    tokio::time::advance(Duration::from_secs(11)).await;
    // Open the fifo for writing once `cat` has it open for reading.
    let writer = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&gate)
        {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    };
    drop(writer);
    match next_matching(&mut rx, |k| matches!(k, EventKind::Restarting { .. }))
        .await
        .kind
    {
        EventKind::Restarting { delay_ms, .. } => assert_eq!(delay_ms, 100, "reset after 10 s"),
        _ => unreachable!(),
    }
    wait_state(&mut handle, ContainerState::Restarting).await;
}

#[tokio::test(start_paused = true)]
async fn stop_uses_the_stop_signal_then_sigkill_and_is_not_restarted() {
    // Ignores SIGTERM, so only the SIGKILL after the grace period ends it;
    // it says when the trap is in place, so the stop cannot come before it.
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!(
        "trap '' TERM; touch {}; while :; do sleep 1; done",
        ready.display()
    );
    let shell = Shell::new("c", &script);
    let (mut handle, mut rx) = start(shell, config("c", RestartPolicy::Always));
    wait_state(&mut handle, ContainerState::Running).await;
    for _ in 0..500 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(ready.exists(), "the process never installed its trap");
    let (done, stopped) = oneshot::channel();
    let asked = Instant::now();
    handle
        .commands
        .send(Command::Stop { done, grace: None })
        .await
        .unwrap();
    stopped.await.unwrap();
    assert!(Instant::now().duration_since(asked) >= Duration::from_secs(10));
    let snap = handle.snapshot.borrow().clone();
    assert_eq!(snap.state, ContainerState::Exited);
    assert!(snap.stopped_by_user);
    assert_eq!(snap.last_exit, Some(Exit::Signal(libc::SIGKILL)));
    let die = next_matching(&mut rx, |k| matches!(k, EventKind::Die { .. })).await;
    assert_eq!(
        die.kind,
        EventKind::Die {
            exit_code: None,
            signal: Some(libc::SIGKILL)
        }
    );
    // No restart follows a user stop.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(handle.snapshot.borrow().state, ContainerState::Exited);
    assert_eq!(handle.snapshot.borrow().restart_count, 0);

    // `start` brings it back.
    handle.commands.send(Command::Start).await.unwrap();
    wait_state(&mut handle, ContainerState::Running).await;
    let (done, stopped) = oneshot::channel();
    handle
        .commands
        .send(Command::Stop { done, grace: None })
        .await
        .unwrap();
    stopped.await.unwrap();
}

// The monitor's pidfd reaps the adopted child.
#[allow(clippy::zombie_processes)]
#[tokio::test(start_paused = true)]
async fn an_adopted_process_is_not_restarted_until_it_exits() {
    let shell = Shell::new("c", "exit 5");
    let adopted = Process::new("sh")
        .args(["-c", "sleep 0.2; exit 7"])
        .spawn()
        .unwrap();
    let (tx, mut rx) = broadcast::channel(64);
    let policy = RestartPolicy::OnFailure {
        max_retries: Some(1),
    };
    let mut handle = spawn_monitor(
        shell,
        config("c", policy),
        tx,
        Instant::now(),
        Begin::Adopt(adopted.id() as i32),
    );
    let first = next_matching(&mut rx, |k| matches!(k, EventKind::Start { .. })).await;
    assert_eq!(
        first.kind,
        EventKind::Start {
            pid: adopted.id() as i32
        }
    );
    let die = next_matching(&mut rx, |k| matches!(k, EventKind::Die { .. })).await;
    assert_eq!(
        die.kind,
        EventKind::Die {
            exit_code: Some(7),
            signal: None
        }
    );
    wait_state(&mut handle, ContainerState::Exited).await;
    assert_eq!(handle.snapshot.borrow().last_exit, Some(Exit::Code(5)));
    assert_eq!(handle.snapshot.borrow().restart_count, 1);
}

#[tokio::test(start_paused = true)]
async fn unhealthy_restarts_only_when_opted_in_with_the_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!(
        "trap 'exit 0' TERM; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut cfg = config("c", RestartPolicy::No);
    cfg.restart_on_unhealthy = true;
    // Short enough that a run stays under the 10 s that reset the backoff.
    cfg.stop_grace = Duration::from_secs(1);
    let (mut handle, mut rx) = start(Shell::new("c", &script), cfg);
    for round in 0..2u64 {
        wait_state(&mut handle, ContainerState::Running).await;
        for _ in 0..500 {
            if ready.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::remove_file(&ready).unwrap();
        handle.commands.send(Command::Unhealthy).await.unwrap();
        // The stop signal, then SIGKILL after the grace period (which the
        // paused clock may reach before the shell runs its trap).
        next_matching(&mut rx, |k| matches!(k, EventKind::Die { .. })).await;
        match next_matching(&mut rx, |k| matches!(k, EventKind::Restarting { .. }))
            .await
            .kind
        {
            EventKind::Restarting { delay_ms, attempt } => {
                assert_eq!(delay_ms, 100 << round, "doubling backoff");
                assert_eq!(attempt as u64, round + 1);
            }
            _ => unreachable!(),
        }
    }

    wait_state(&mut handle, ContainerState::Running).await;
    let (done, stopped) = oneshot::channel();
    handle
        .commands
        .send(Command::Stop { done, grace: None })
        .await
        .unwrap();
    stopped.await.unwrap();

    // Without the opt-in, an unhealthy container is left alone.
    let (mut handle, mut rx) = start(Shell::new("d", "sleep 30"), config("d", RestartPolicy::No));
    wait_state(&mut handle, ContainerState::Running).await;
    handle.commands.send(Command::Unhealthy).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(handle.snapshot.borrow().state, ContainerState::Running);
    assert!(
        rx.try_recv()
            .map(|e| !matches!(e.kind, EventKind::Die { .. }))
            .unwrap_or(true)
    );
    let (done, stopped) = oneshot::channel();
    handle
        .commands
        .send(Command::Stop { done, grace: None })
        .await
        .unwrap();
    stopped.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_pending_restart_taken_over_keeps_doubling() {
    // The previous supervisor waited 800 ms after the fourth restart's exit
    // when it died; the new monitor starts at the due time, and the next
    // exit waits 1600 ms.
    let cfg = MonitorConfig {
        restart: stack_engine::restart::RestartState {
            restart_count: 4,
            failure_count: 0,
            last_delay: Some(Duration::from_millis(800)),
            stopped_by_user: false,
        },
        ..config("c", RestartPolicy::Always)
    };
    let (tx, mut rx) = broadcast::channel(64);
    let due = Instant::now() + Duration::from_millis(300);
    let handle = spawn_monitor(
        Shell::new("c", "exit 3"),
        cfg,
        tx,
        Instant::now(),
        Begin::RestartAt(due),
    );
    let started = next_matching(&mut rx, |k| matches!(k, EventKind::Start { .. })).await;
    assert_eq!(started.at_ms, 300);
    assert_eq!(handle.snapshot.borrow().restart_count, 5);
    match next_matching(&mut rx, |k| matches!(k, EventKind::Restarting { .. }))
        .await
        .kind
    {
        EventKind::Restarting { delay_ms, attempt } => {
            assert_eq!((delay_ms, attempt), (1600, 6));
        }
        _ => unreachable!(),
    }
}

#[tokio::test(start_paused = true)]
async fn an_exit_nobody_saw_is_unknown_and_the_policy_applies() {
    let policy = RestartPolicy::OnFailure {
        max_retries: Some(1),
    };
    let (tx, mut rx) = broadcast::channel(64);
    let mut handle = spawn_monitor(
        Shell::new("c", "exit 0"),
        config("c", policy),
        tx,
        Instant::now(),
        Begin::ExitedUnseen {
            ran_for: Duration::from_secs(1),
        },
    );
    let die = next_matching(&mut rx, |k| matches!(k, EventKind::Die { .. })).await;
    assert_eq!(
        die.kind,
        EventKind::Die {
            exit_code: None,
            signal: None
        }
    );
    // Unknown counts as a failure: on-failure restarts it once.
    next_matching(&mut rx, |k| matches!(k, EventKind::Start { .. })).await;
    wait_state(&mut handle, ContainerState::Exited).await;
    let snap = handle.snapshot.borrow().clone();
    assert_eq!(snap.restart_count, 1);
    assert_eq!(snap.last_exit, Some(Exit::Code(0)));
}
