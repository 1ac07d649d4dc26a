//! A project's supervisor: the long-lived process that owns its containers
//! (their parent and reaper), executes plans for the `stack` command over
//! the control socket, and re-adopts running containers after its own
//! crash.

mod lifecycle;
mod run;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stack_spec::Project;
use tokio::net::UnixListener;
use tokio::sync::{Notify, mpsc};

use crate::control::{Channel, Reply, Request, UpOptions, socket_path};
use crate::error::{EngineError, ErrorKind};
use crate::execute::{Phase, execute};
use crate::host::{Host, HostConfig, HostDriver, HostError};
use crate::lock::{LockError, ProjectLock};
use crate::monitoring::journal::stream_events;
use crate::plan::Plan;
use crate::progress::{Step, StepPhase};
use crate::reconcile::{plan_down, reconcile};

/// How many operations of a plan run at once.
pub const PARALLELISM: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("socket {path}: {source}")]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot become the reaper of the containers: {0}")]
    Subreaper(std::io::Error),
}

fn project_file(host: &Host, name: &str) -> PathBuf {
    host.records().project_dir(name).join("project.json")
}

/// Runs the supervisor of `project` until a `down` request ends it.
/// `ready` (a pipe's write end) is closed once the socket listens: whoever
/// started this supervisor connects then.
pub async fn serve(
    config: HostConfig,
    project: &str,
    ready: Option<std::os::fd::OwnedFd>,
) -> Result<(), SupervisorError> {
    crate::pidfd::become_subreaper().map_err(SupervisorError::Subreaper)?;
    // A moment's wait: the supervisor of single containers ends with the
    // last one, and the next `stack container run` may start this one
    // before it has let go.
    let _lock = ProjectLock::acquire(
        &config.run_dir,
        project,
        "stack supervisor",
        Duration::from_secs(5),
    )?;
    let path = socket_path(&config.run_dir, project);
    let socket_err = |source| SupervisorError::Socket {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(path.parent().expect("socket has a parent")).map_err(socket_err)?;
    // We hold the project lock, so a socket file left here is stale.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(socket_err)?;
    drop(ready);
    stack_runtime::fault::point("supervisor-after-bind");

    let empty = Project {
        name: project.to_owned(),
        ..Project::default()
    };
    let host = Host::new(config, empty)?;
    let journal = host.start_journal();
    host.recover_runtime().await;
    stack_runtime::fault::point("adopt-after-recover");
    host.watch_keeper();
    let saved = std::fs::read(project_file(&host, project))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Project>(&bytes).ok());
    if let Some(saved) = saved {
        host.set_project(saved);
        adopt(&host).await;
        stack_runtime::fault::point("adopt-after");
    }

    // Told when a removal may have taken a single container project's last
    // container (`single`), which then ends with its supervisor: after
    // `LINGER` without a new container, so that the next run of a script or
    // a loop finds the supervisor and the default bridge still there.
    let emptied = Arc::new(Notify::new());
    // A supervisor that finds its single-container project empty (the one
    // before it ended between the last removal and its retirement) still
    // retires it, as a plan like any other.
    let mut retire_at = is_empty_single(&host).then(|| tokio::time::Instant::now() + LINGER);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = emptied.notified() => {
                forget_removed(&host);
                retire_at = Some(tokio::time::Instant::now() + LINGER);
                continue;
            }
            () = tokio::time::sleep_until(retire_at.unwrap_or_else(tokio::time::Instant::now)),
                if retire_at.is_some() =>
            {
                retire_at = None;
                if retire(&host, &path).await {
                    return Ok(());
                }
                continue;
            }
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let mut channel = Channel::new(stream, &path);
        let request = match channel.recv::<Request>().await {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(e) => {
                let _ = channel.answer(Err(e.into())).await;
                continue;
            }
        };
        // An attached run answers when its container ends; it waits on its
        // own so that other requests are served meanwhile.
        if let Request::Run { project, options } = request {
            let outcome = match run::start(&host, &mut channel, *project, *options, &emptied).await
            {
                Ok(run::Started::Attached(attached)) => {
                    tokio::spawn(attached.finish(channel));
                    continue;
                }
                Ok(run::Started::Detached(name)) => Ok(name),
                Err(e) => Err(e),
            };
            let _ = channel.answer(outcome).await;
            continue;
        }
        // A stream of events lasts as long as its client: it runs aside.
        if let Request::Events { since_ns, until_ns } = request {
            let feed = journal.clone();
            tokio::spawn(stream_events(
                host.clone(),
                feed,
                channel,
                since_ns,
                until_ns,
            ));
            continue;
        }
        // The keeper's word that a log paused or resumed: an event.
        if let Request::LogState { container, notice } = request {
            host.emit(&container, notice.into());
            continue;
        }
        let finished = matches!(request, Request::Down { .. });
        let removal = matches!(request, Request::Remove { .. });
        let result = handle(&host, &mut channel, request).await;
        if removal {
            forget_removed(&host);
        }
        if removal && retire(&host, &path).await {
            let _ = channel.answer(result).await;
            return Ok(());
        }
        crate::host::give_back_memory();
        // After a `down` the socket goes before the answer, so that whoever
        // asked never finds it afterwards.
        let done = finished && result.is_ok();
        if done {
            let _ = std::fs::remove_file(&path);
        }
        let _ = channel.answer(result).await;
        if done {
            return Ok(());
        }
    }
}

/// Takes the services of removed single containers out of the project
/// this supervisor serves and its `project.json`. Done between requests,
/// so no container is being made meanwhile.
fn forget_removed(host: &Arc<Host>) {
    let project = host.project();
    if !crate::single::is_single(&project.name) {
        return;
    }
    let existing: std::collections::BTreeSet<String> =
        match host.records().containers(&project.name) {
            Ok(records) => records.into_iter().map(|r| r.service).collect(),
            Err(e) => {
                tracing::warn!("listing the containers of {}: {e}", project.name);
                return;
            }
        };
    if project.services.keys().all(|s| existing.contains(s)) {
        return;
    }
    let left = crate::single::retain_existing(&project, &existing);
    if let Err(e) = set_project(host, left) {
        tracing::warn!("forgetting removed containers of {}: {e}", project.name);
    }
}

/// How long the supervisor of single containers and its default bridge
/// stay after a `--rm` container took the last one away. Making the bridge,
/// its rules and DNS and starting a supervisor cost more than running a
/// small container, and a script runs many of them one after another.
const LINGER: Duration = Duration::from_secs(2);

/// Whether this supervisor serves a single-container project without any
/// container (not even a half-made one).
fn is_empty_single(host: &Arc<Host>) -> bool {
    let project = host.project();
    if !crate::single::is_single(&project.name) {
        return false;
    }
    match host.records().containers(&project.name) {
        Ok(left) => left.is_empty(),
        Err(e) => {
            tracing::warn!("listing the containers of {}: {e}", project.name);
            false
        }
    }
}

/// Ends a single-container project (`single`) that has no container left:
/// its networks (the default bridge, its rules and DNS) go by the plan
/// `single::plan_retire` and its socket is removed, so that its supervisor
/// can stop. Returns whether it ended. Decided between requests, so no
/// container is being made meanwhile.
async fn retire(host: &Arc<Host>, socket: &std::path::Path) -> bool {
    if !is_empty_single(host) {
        return false;
    }
    let project = host.project();
    let observed = match host.observe() {
        Ok(observed) => observed,
        Err(e) => {
            tracing::warn!("observing {}: {e}", project.name);
            return false;
        }
    };
    let plan = crate::single::plan_retire(&project.name, &observed);
    let report = execute(&plan, &HostDriver(host.clone()), PARALLELISM, |_, _| {}).await;
    if let Some(failure) = report.failure {
        tracing::warn!("{}", EngineError::from(failure));
        return false;
    }
    // What the plan cannot see (rules or DNS of a bridge whose making was
    // cut short) goes as after `down`.
    if let Err(e) = host.cleanup_network().await {
        tracing::warn!("removing the default bridge of {}: {e}", project.name);
        return false;
    }
    if let Err(e) = host.records().forget_project(&project.name) {
        tracing::warn!("forgetting {}: {e}", project.name);
    }
    host.stop_keeper().await;
    let _ = std::fs::remove_file(socket);
    true
}

/// Takes over the containers a previous supervisor started (see
/// `host::adopt`).
async fn adopt(host: &Arc<Host>) {
    host.adopt_all().await;
}

/// What a request answers: its last word, or why it failed.
type Answer = Result<String, EngineError>;

async fn handle(host: &Arc<Host>, channel: &mut Channel, request: Request) -> Answer {
    let aside = |what| Err(EngineError::new(ErrorKind::Protocol, what));
    match request {
        Request::Ping => Ok("pong".into()),
        Request::Events { .. } => aside("events are streamed aside"),
        Request::Up { project, options } => up(host, channel, *project, options).await,
        Request::Down {
            remove_volumes,
            timeout,
        } => down(host, channel, remove_volumes, timeout).await,
        Request::Start { services } => lifecycle::start(host, channel, &services).await,
        Request::Stop { services, timeout } => {
            lifecycle::stop(host, channel, &services, timeout).await
        }
        Request::Restart {
            services,
            timeout,
            no_deps,
        } => lifecycle::restart(host, channel, &services, timeout, no_deps).await,
        Request::Kill {
            services,
            signal,
            remove_orphans,
        } => lifecycle::kill(host, channel, &services, signal, remove_orphans).await,
        Request::Pause { services } => lifecycle::freeze(host, channel, &services, true).await,
        Request::Unpause { services } => lifecycle::freeze(host, channel, &services, false).await,
        Request::Remove {
            services,
            stop,
            volumes,
        } => lifecycle::remove(host, channel, &services, stop, volumes).await,
        // Answered in `serve`, which lets it outlive this request.
        Request::Run { .. } => aside("a run is not handled here"),
        Request::LogState { .. } => aside("log notices are handled aside"),
    }
}

/// Runs `plan`, each operation sent to the client as a typed [`Step`] when
/// it begins, ends or fails, from which it draws compose's display.
async fn run_plan(host: &Arc<Host>, channel: &mut Channel, plan: &Plan) -> Result<(), EngineError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Reply>();
    let driver = HostDriver(host.clone());
    let work = execute(plan, &driver, PARALLELISM, |op, phase| {
        let step = match phase {
            Phase::Began => Step::new(op, StepPhase::Working, None),
            Phase::Done(took) => Step::new(op, StepPhase::Done, Some(took)),
        };
        let _ = tx.send(Reply::Step { step });
    });
    tokio::pin!(work);
    let report = loop {
        tokio::select! {
            report = &mut work => break report,
            Some(reply) = rx.recv() => {
                let _ = channel.send(&reply).await;
            }
        }
    };
    while let Ok(reply) = rx.try_recv() {
        let _ = channel.send(&reply).await;
    }
    match report.failure {
        Some(failure) => {
            let step = Step::new(&failure.operation, StepPhase::Failed, None);
            let _ = channel.send(&Reply::Step { step }).await;
            Err(failure.into())
        }
        None => Ok(()),
    }
}

async fn up(
    host: &Arc<Host>,
    channel: &mut Channel,
    project: Project,
    options: UpOptions,
) -> Answer {
    let reconcile_options = options.reconcile_options(&project)?;
    let selection = reconcile_options.services.clone();
    lifecycle::remember_config_files(host, &project.name, &options.config_files)?;
    set_project(host, project)?;
    stack_runtime::fault::point("up-after-project-saved");
    let mut observed = host.observe()?;
    host.observe_builds(&mut observed, &reconcile_options);
    let plan = reconcile(&host.project(), &observed, &reconcile_options)?;
    for note in &plan.notes {
        let _ = channel
            .send(&Reply::Progress {
                line: format!("warning: {note}"),
            })
            .await;
    }
    run_plan(host, channel, &plan).await?;
    stack_runtime::fault::point("up-after-plan");
    if options.wait {
        lifecycle::wait_ready(host, selection.as_ref(), options.wait_timeout).await?;
    }
    Ok(if plan.is_empty() {
        "nothing to do".into()
    } else {
        format!("{} operations", plan.operations.len())
    })
}

/// Records the stack file's project as the one this supervisor serves.
fn set_project(host: &Arc<Host>, project: Project) -> Result<(), EngineError> {
    let name = project.name.clone();
    let bytes = serde_json::to_vec_pretty(&project)
        .map_err(|e| EngineError::new(ErrorKind::Host, e.to_string()))?;
    let dir = host.records().project_dir(&name);
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::from(e).context(dir.display()))?;
    stack_fs::write(&project_file(host, &name), &bytes).map_err(EngineError::from)?;
    host.set_project(project);
    Ok(())
}

async fn down(
    host: &Arc<Host>,
    channel: &mut Channel,
    remove_volumes: bool,
    timeout: Option<u64>,
) -> Answer {
    let project = host.project();
    // One-off containers are in the plan with the others (`plan_down`).
    let mut early = Vec::new();
    if timeout.is_some()
        && let Err(e) = lifecycle::stop(host, channel, &[], timeout).await
    {
        early.push(e);
    }
    stack_runtime::fault::point("down-after-stop");
    host.recover_runtime().await;
    // Containers left half-made or half-removed (a crash, a full disk) are
    // not in the plan, yet hold their networks: taken away first.
    for name in host.half_made() {
        if let Err(e) = host.remove(&name).await {
            early.push(EngineError::from(e).context(format_args!("remove container {name}")));
        }
    }
    let observed = host.observe()?;
    let plan = plan_down(Some(&project), &observed, remove_volumes);
    let planned = run_plan(host, channel, &plan).await;
    stack_runtime::fault::point("down-after-plan");
    // Whatever the plan could not take away (it stops at its first failure)
    // is removed one by one, so that `down` leaves nothing behind.
    let mut failures: Vec<EngineError> = planned.err().into_iter().collect();
    failures.extend(early);
    if !failures.is_empty() {
        for record in host.records().containers(&project.name).unwrap_or_default() {
            if let Err(e) = host.remove(&record.name).await {
                let e = EngineError::from(e);
                if !e.said_by(&failures) {
                    failures.push(e.context(format_args!("remove container {}", record.name)));
                }
            }
        }
    }
    if let Err(e) = host.cleanup_network().await {
        let e = EngineError::from(e);
        if !e.said_by(&failures) {
            failures.push(e);
        }
    }
    if let Some(failed) = EngineError::several(failures) {
        return Err(failed);
    }
    stack_runtime::fault::point("down-after-network");
    host.records().forget_project(&project.name)?;
    stack_runtime::fault::point("down-after-forget");
    host.stop_keeper().await;
    Ok(format!("{} removed", project.name))
}
