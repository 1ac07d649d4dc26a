//! The control socket between the `stack` command and a project's
//! supervisor: one JSON object per line, each request answered by progress
//! lines and one final reply. Versioned so that a newer `stack` talking to
//! an older supervisor gets a clear error rather than a misreading.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stack_spec::Project;

use crate::error::EngineError;
use crate::progress::{Step, StepPhase};
use crate::reconcile::ReconcileOptions;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// Bumped on any incompatible change of [`Request`] or [`Reply`].
pub const PROTOCOL_VERSION: u32 = 6;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpOptions {
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    pub scale: std::collections::BTreeMap<String, u32>,
    /// `up SERVICE...`: only these (and, unless `no_deps`, what they
    /// depend on); empty means every service.
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub no_deps: bool,
    /// `--wait`: answer once every service is running, healthy or done.
    #[serde(default)]
    pub wait: bool,
    /// `--wait-timeout` in seconds.
    #[serde(default)]
    pub wait_timeout: Option<u64>,
    /// The stack files, for `stack ls`.
    #[serde(default)]
    pub config_files: Vec<PathBuf>,
    /// `--yes`: recreate volumes whose configuration changed.
    #[serde(default)]
    pub recreate_volumes: bool,
    /// `--build`: build again what changed.
    #[serde(default)]
    pub build: bool,
    /// `--no-build`: never build.
    #[serde(default)]
    pub no_build: bool,
    /// `--no-start` (and `stack create`): make the containers, start none.
    #[serde(default)]
    pub no_start: bool,
    /// `-V`: a recreated container gets new anonymous volumes instead of
    /// its predecessor's.
    #[serde(default)]
    pub renew_anon_volumes: bool,
    /// `--always-recreate-deps`: recreate what the named services depend
    /// on even when it did not change.
    #[serde(default)]
    pub always_recreate_deps: bool,
    /// `COMPOSE_IGNORE_ORPHANS`: say nothing of orphan containers.
    #[serde(default)]
    pub ignore_orphans: bool,
}

impl UpOptions {
    /// What the reconciler is told for these options: the services named
    /// and, unless `no_deps`, what they depend on.
    pub fn reconcile_options(&self, project: &Project) -> Result<ReconcileOptions, EngineError> {
        let named: Option<std::collections::BTreeSet<String>> =
            (!self.services.is_empty()).then(|| self.services.iter().cloned().collect());
        if let Some(s) = self
            .services
            .iter()
            .find(|s| !project.services.contains_key(s.as_str()))
        {
            return Err(EngineError::no_such_service(s));
        }
        let services = match &named {
            Some(named) if self.no_deps => Some(named.clone()),
            Some(_) => Some(crate::service_graph::with_dependencies(
                project,
                &self.services,
            )),
            None => None,
        };
        Ok(ReconcileOptions {
            force_recreate: self.force_recreate,
            no_recreate: self.no_recreate,
            remove_orphans: self.remove_orphans,
            scale: self.scale.clone(),
            services,
            named,
            recreate_volumes: self.recreate_volumes,
            build: self.build,
            no_build: self.no_build,
            no_start: self.no_start,
            renew_anon_volumes: self.renew_anon_volumes,
            always_recreate_deps: self.always_recreate_deps,
            ignore_orphans: self.ignore_orphans,
        })
    }
}

/// `stack run`: a one-off container of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    pub service: String,
    /// Replaces the service's command when given.
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `-e K=V`, over the service's environment.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// `--name`; `<project>-<service>-run-<id>` otherwise.
    pub name: Option<String>,
    pub no_deps: bool,
    pub detach: bool,
    /// Remove the container once it exits.
    pub remove: bool,
    pub stdio: RunStdio,
    /// `stack container run`: the service is the container itself (see
    /// `single`), joining the project's other containers; it keeps its
    /// published ports, restart policy and health check, and the project
    /// ends with its last container.
    #[serde(default)]
    pub container: bool,
    /// `--build`: build the service's image again if what it reads changed.
    #[serde(default)]
    pub build: bool,
    /// `--service-ports`: publish the service's own ports (a one-off
    /// publishes none otherwise, as they would clash with its containers').
    #[serde(default)]
    pub service_ports: bool,
    /// `-p`: publish these ports instead.
    #[serde(default)]
    pub publish: Vec<stack_spec::ServicePort>,
    /// `-v`: mounted besides the service's volumes.
    #[serde(default)]
    pub volumes: Vec<stack_spec::ServiceVolume>,
    /// `-l KEY=VALUE`: labels over the service's.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--cap-add`, `--cap-drop`: over the service's `cap_add`/`cap_drop`.
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// `--use-aliases`: the container answers to the service's name and
    /// network aliases too (a one-off is otherwise found by its own name
    /// only).
    #[serde(default)]
    pub use_aliases: bool,
    /// `--remove-orphans`: containers of services no longer in the file go
    /// when the dependencies are brought up.
    #[serde(default)]
    pub remove_orphans: bool,
    /// `COMPOSE_IGNORE_ORPHANS`: say nothing of them.
    #[serde(default)]
    pub ignore_orphans: bool,
}

/// Where a one-off container's input and output go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStdio {
    /// Into its log, like a service's.
    #[default]
    Log,
    /// The caller's own standard input, output and error (taken from the
    /// connected process with pidfd_getfd).
    Inherit,
    /// A terminal whose master goes to this socket (runc's console socket),
    /// sized `rows` x `cols`.
    Terminal {
        console_socket: PathBuf,
        rows: u16,
        cols: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    Up {
        project: Box<Project>,
        options: UpOptions,
    },
    Down {
        remove_volumes: bool,
        /// Seconds to wait for each container to stop before SIGKILL.
        #[serde(default)]
        timeout: Option<u64>,
    },
    /// Start the stopped containers (of `services`, or all), dependencies
    /// first.
    Start {
        services: Vec<String>,
    },
    /// Stop every container (or those of `services`), keeping them;
    /// `timeout` seconds before SIGKILL instead of `stop_grace_period`.
    Stop {
        services: Vec<String>,
        #[serde(default)]
        timeout: Option<u64>,
    },
    /// Stop then start every container of `services` (all when empty);
    /// `timeout` (seconds) overrides the services' stop grace period.
    Restart {
        services: Vec<String>,
        timeout: Option<u64>,
        /// Only `services`, not the services that restart with them
        /// (`depends_on` with `restart: true`, shared namespaces).
        #[serde(default)]
        no_deps: bool,
    },
    /// Signal the running containers of `services` (all when empty);
    /// containers of services no longer in the file only with
    /// `remove_orphans`, as compose.
    Kill {
        services: Vec<String>,
        signal: i32,
        #[serde(default)]
        remove_orphans: bool,
    },
    Pause {
        services: Vec<String>,
    },
    Unpause {
        services: Vec<String>,
    },
    /// Remove stopped containers (`stop`: stop them first).
    Remove {
        services: Vec<String>,
        stop: bool,
        volumes: bool,
    },
    /// A one-off container; attached runs answer with [`Reply::Exit`]
    /// once it ends.
    Run {
        project: Box<Project>,
        options: Box<RunOptions>,
    },
    Ping,
    /// Stream events (`stack events`): the journal from `since_ns`, then
    /// live ones until `until_ns`, each as a progress line.
    /// (Nanoseconds as u64: the tagged enum cannot carry u128.)
    Events {
        since_ns: Option<u64>,
        until_ns: Option<u64>,
    },
    /// From the log keeper: a container's log paused or resumed (an
    /// event for `stack events`). Not answered.
    LogState {
        container: String,
        notice: crate::log_keeper::LogNotice,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// One line of progress ("web-1: stopped").
    Progress { line: String },
    /// An operation of a plan began, ended or failed.
    Step { step: Step },
    /// The request succeeded; `message` is its last word (may be empty).
    Done { message: String },
    /// The request failed.
    Failed { error: EngineError },
    /// An attached one-off container ended with this exit code (before
    /// `Done` or `Failed`).
    Exit { code: i32 },
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope<T> {
    version: u32,
    #[serde(flatten)]
    body: T,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("supervisor socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the supervisor speaks protocol {theirs}, this stack speaks {PROTOCOL_VERSION}; run `stack down` with the stack that started it"
    )]
    Version { theirs: u32 },
    #[error("malformed message from the supervisor: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("the supervisor closed the connection before answering")]
    Closed,
}

/// The socket of a project's supervisor.
pub fn socket_path(run_dir: &Path, project: &str) -> PathBuf {
    stack_fs::Layout::new(PathBuf::new(), run_dir).supervisor_socket(project)
}

/// What a request says before its final reply.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    Line(&'a str),
    Step(&'a Step),
}

/// One side of a connection.
pub struct Channel {
    reader: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    path: PathBuf,
    peer_pid: Option<i32>,
}

impl Channel {
    pub fn new(stream: UnixStream, path: &Path) -> Self {
        let peer_pid = stream.peer_cred().ok().and_then(|c| c.pid());
        let (r, w) = stream.into_split();
        Self {
            reader: BufReader::new(r).lines(),
            writer: w,
            path: path.to_owned(),
            peer_pid,
        }
    }

    /// The process on the other end, as the kernel saw it connect.
    pub fn peer_pid(&self) -> Option<i32> {
        self.peer_pid
    }

    pub async fn connect(path: &Path) -> Result<Self, ControlError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ControlError::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self::new(stream, path))
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> ControlError + '_ {
        move |source| ControlError::Io {
            path: self.path.clone(),
            source,
        }
    }

    pub async fn send<T: Serialize>(&mut self, body: &T) -> Result<(), ControlError> {
        let mut line = serde_json::to_vec(&Envelope {
            version: PROTOCOL_VERSION,
            body,
        })?;
        line.push(b'\n');
        let result = self.writer.write_all(&line).await;
        result.map_err(self.io())
    }

    /// The next message, or `None` at the end of the stream.
    pub async fn recv<T: for<'de> Deserialize<'de>>(&mut self) -> Result<Option<T>, ControlError> {
        let next = self.reader.next_line().await;
        let Some(line) = next.map_err(self.io())? else {
            return Ok(None);
        };
        let value: serde_json::Value = serde_json::from_str(&line)?;
        let theirs = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if theirs != PROTOCOL_VERSION {
            return Err(ControlError::Version { theirs });
        }
        let envelope: Envelope<T> = serde_json::from_value(value)?;
        Ok(Some(envelope.body))
    }

    /// Answers a request: `Done` with its message or `Failed` with its
    /// error.
    pub async fn answer(
        &mut self,
        outcome: Result<String, EngineError>,
    ) -> Result<(), ControlError> {
        match outcome {
            Ok(message) => self.send(&Reply::Done { message }).await,
            Err(error) => self.send(&Reply::Failed { error }).await,
        }
    }

    /// Sends `request` and calls `progress` for each progress line (an
    /// operation that ended as its one-line form); returns the final reply:
    /// the success message or the engine's error.
    pub async fn call(
        &mut self,
        request: &Request,
        mut progress: impl FnMut(&str),
    ) -> Result<Result<String, EngineError>, ControlError> {
        self.call_steps(request, |event| match event {
            Progress::Line(line) => progress(line),
            Progress::Step(step) if step.phase != StepPhase::Working => progress(&step.to_string()),
            Progress::Step(_) => {}
        })
        .await
    }

    /// As [`Channel::call`], with each operation's steps as they come.
    pub async fn call_steps(
        &mut self,
        request: &Request,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<Result<String, EngineError>, ControlError> {
        self.send(request).await?;
        loop {
            match self.recv::<Reply>().await? {
                Some(Reply::Progress { line }) => progress(Progress::Line(&line)),
                Some(Reply::Step { step }) => progress(Progress::Step(&step)),
                Some(Reply::Done { message }) => return Ok(Ok(message)),
                Some(Reply::Failed { error }) => return Ok(Err(error)),
                Some(Reply::Exit { .. }) => {}
                None => return Err(ControlError::Closed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_round_trip_with_the_project() {
        let mut options = stack_spec::LoadOptions::new("/tmp").with_content(
            "stack.yaml",
            "services:\n  web:\n    image: busybox\n    ports: ['8080:80']\n    healthcheck:\n      test: wget -q localhost\n      interval: 2s\n    deploy:\n      resources:\n        limits: {cpus: '0.5', memory: 64m}\n",
        );
        options.project_name = Some("p".into());
        let project = stack_spec::load(&options).unwrap().project;
        let (a, b) = UnixStream::pair().unwrap();
        let (mut a, mut b) = (
            Channel::new(a, Path::new("a")),
            Channel::new(b, Path::new("b")),
        );
        let request = Request::Up {
            project: Box::new(project),
            options: UpOptions::default(),
        };
        a.send(&request).await.unwrap();
        let got: Request = b.recv().await.unwrap().unwrap();
        assert_eq!(got, request);
    }

    #[tokio::test]
    async fn a_different_version_is_refused_clearly() {
        let (a, b) = UnixStream::pair().unwrap();
        let (_, mut w) = a.into_split();
        w.write_all(b"{\"version\":99,\"reply\":\"done\",\"message\":\"\"}\n")
            .await
            .unwrap();
        let mut b = Channel::new(b, Path::new("b"));
        let err = b.recv::<Reply>().await.unwrap_err();
        assert!(err.to_string().contains("protocol 99"), "{err}");
    }

    #[tokio::test]
    async fn a_failure_arrives_with_its_kind() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut a, mut b) = (
            Channel::new(a, Path::new("a")),
            Channel::new(b, Path::new("b")),
        );
        let error = EngineError::no_such_service("web");
        let server = async {
            let _: Request = a.recv().await.unwrap().unwrap();
            a.send(&Reply::Progress { line: "x".into() }).await.unwrap();
            a.answer(Err(error.clone())).await.unwrap();
        };
        let mut lines = Vec::new();
        let (_, got) = tokio::join!(server, b.call(&Request::Ping, |l| lines.push(l.to_owned())));
        assert_eq!(got.unwrap(), Err(error));
        assert_eq!(lines, ["x"]);
    }
}
