//! The engine's error as the `stack` command receives it: a kind the
//! command can act on (an exit code, a JSON field) and the message a user
//! reads. It crosses the control socket as it is, so the kind is decided
//! once, here, where the typed errors of the layers below are still at hand,
//! and never recovered from a string.

use serde::{Deserialize, Serialize};

use crate::execute::Failure;
use crate::host::HostError;
use crate::host::create::CreateError;
use crate::host::driver::DriverError;
use crate::host::ops::OpsError;
use crate::lock::LockError;
use crate::spec::SpecError;
use crate::store::StoreError;

/// What went wrong, with the facts a caller may act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ErrorKind {
    /// The stack file (or a project sent with the request) is invalid.
    FileInvalid,
    /// A service named in the request is not in the stack file.
    NoSuchService { service: String },
    /// A container, record or network the request needs does not exist.
    NotFound,
    /// The registry has no such image (name or tag).
    ImageNotFound { image: String },
    /// A dependency did not reach its `depends_on` condition; `exit_code`
    /// when it exited.
    DependencyFailed {
        service: String,
        exit_code: Option<i32>,
    },
    /// A service awaited by `up --wait` failed; `exit_code` when it exited.
    ServiceFailed {
        service: String,
        exit_code: Option<i32>,
    },
    /// The container's program could not be executed: Docker's `status`,
    /// 127 when it is not found, 126 when it is not executable.
    CannotExecute { status: u8 },
    /// A published host port is taken.
    PortInUse { port: u16 },
    /// Another `stack` process holds the project's lock.
    LockHeld { pid: Option<u32> },
    /// The thing exists but is in a state that forbids the request (paused,
    /// already there, attached elsewhere, configured differently).
    Conflict,
    /// A wait ran out of time.
    Timeout,
    /// A feature the engine does not have (building images).
    Unsupported,
    /// The kernel, the file system or the registry connection failed.
    Host,
    /// The request could not be read or answered (control socket).
    Protocol,
}

/// An error as it reaches the `stack` command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    #[serde(flatten)]
    pub kind: ErrorKind,
    pub message: String,
}

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn no_such_service(service: &str) -> Self {
        Self::new(
            ErrorKind::NoSuchService {
                service: service.to_owned(),
            },
            format!("no such service: {service}"),
        )
    }

    /// The same error, its message prefixed by what was being done
    /// (`stop web-1: ...`).
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        Self {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
        }
    }

    /// Several independent failures as one: the kind of the first, the
    /// messages joined; `None` when there were none.
    pub fn several(errors: Vec<EngineError>) -> Option<Self> {
        let mut errors = errors.into_iter();
        let first = errors.next()?;
        Some(errors.fold(first, |mut all, e| {
            all.message.push_str("; ");
            all.message.push_str(&e.message);
            all
        }))
    }

    /// Whether one of `earlier` already says this error (a cleanup pass
    /// meeting the same full disk again), so that a cause is printed once.
    pub fn said_by(&self, earlier: &[EngineError]) -> bool {
        earlier.iter().any(|e| e.message.contains(&self.message))
    }
}

fn net_kind(e: &stack_net::NetError) -> ErrorKind {
    use stack_net::NetError as N;
    match e {
        N::PortUnavailable { port, .. } => ErrorKind::PortInUse { port: *port },
        N::UnknownNetwork { .. }
        | N::UnknownExternalNetwork(_)
        | N::NotAttached(_)
        | N::LinkNotFound(_) => ErrorKind::NotFound,
        N::NetworkChanged(_)
        | N::NetworkInUse(_)
        | N::AlreadyAttached(_)
        | N::AddressInUse { .. }
        | N::SubnetOverlap { .. } => ErrorKind::Conflict,
        N::InvalidSubnet(_)
        | N::GatewayOutsideSubnet { .. }
        | N::AddressOutsideSubnet { .. }
        | N::InvalidPort(..)
        | N::NothingToPublish(_) => ErrorKind::FileInvalid,
        _ => ErrorKind::Host,
    }
}

fn create_kind(e: &CreateError) -> ErrorKind {
    match e {
        CreateError::NoService(service) => ErrorKind::NoSuchService {
            service: service.clone(),
        },
        CreateError::NoRecord(_) => ErrorKind::NotFound,
        CreateError::NoImage(_) => ErrorKind::Unsupported,
        CreateError::Image {
            image,
            source: stack_image::store::StoreError::NotFound(_),
        } => ErrorKind::ImageNotFound {
            image: image.clone(),
        },
        CreateError::Net(n) => net_kind(n),
        CreateError::Spec(SpecError::UnsupportedMode { .. }) => ErrorKind::Unsupported,
        CreateError::Spec(
            SpecError::Setting { .. }
            | SpecError::UnknownUser(_)
            | SpecError::UnknownGroup(_)
            | SpecError::UnknownCapability(_)
            | SpecError::BadTmpfs(_),
        ) => ErrorKind::FileInvalid,
        CreateError::Spec(SpecError::NotADevice(_) | SpecError::UnknownVolume(_)) => {
            ErrorKind::NotFound
        }
        CreateError::Address(_) | CreateError::Setting { .. } => ErrorKind::FileInvalid,
        _ => ErrorKind::Host,
    }
}

fn driver_kind(e: &DriverError) -> ErrorKind {
    let dependency = |service: &String, exit_code| ErrorKind::DependencyFailed {
        service: service.clone(),
        exit_code,
    };
    match e {
        DriverError::Create(c) => create_kind(c),
        DriverError::Net(n) => net_kind(n),
        DriverError::UnknownNetwork(_) => ErrorKind::NotFound,
        DriverError::StopSignal(_) => ErrorKind::FileInvalid,
        DriverError::Ipam { .. } => ErrorKind::Unsupported,
        DriverError::ServiceBuild(stack_build::service::ServiceBuildError::Unsupported {
            ..
        }) => ErrorKind::Unsupported,
        DriverError::ServiceBuild(_) => ErrorKind::FileInvalid,
        // What the Dockerfile or the context asked for failed, not the host.
        DriverError::Build(
            stack_build::BuildError::Parse(_)
            | stack_build::BuildError::At { .. }
            | stack_build::BuildError::StepFailed { .. }
            | stack_build::BuildError::NoTarget(_)
            | stack_build::BuildError::Context(_),
        ) => ErrorKind::FileInvalid,
        DriverError::Build(_) => ErrorKind::Host,
        DriverError::Pull {
            reference,
            not_found: true,
            ..
        } => ErrorKind::ImageNotFound {
            image: reference.clone(),
        },
        DriverError::Execute { status, .. } => ErrorKind::CannotExecute { status: *status },
        DriverError::Pull { .. } | DriverError::Io { .. } | DriverError::Start(_) => {
            ErrorKind::Host
        }
        DriverError::MissingDependency { service }
        | DriverError::NoHealthCheck { service }
        | DriverError::Unhealthy { service }
        | DriverError::DependencyNotStarted { service } => dependency(service, None),
        DriverError::DependencyExited { service, code } => dependency(service, Some(*code)),
        DriverError::Ops(o) => ops_kind(o),
    }
}

fn ops_kind(e: &OpsError) -> ErrorKind {
    let service_failed = |service: &String, exit_code| ErrorKind::ServiceFailed {
        service: service.clone(),
        exit_code,
    };
    match e {
        OpsError::Create(c) => create_kind(c),
        OpsError::Driver(d) => driver_kind(d),
        OpsError::Paused(_) | OpsError::NotRunning(_) => ErrorKind::Conflict,
        OpsError::Unhealthy(service) | OpsError::NotStarted(service) => {
            service_failed(service, None)
        }
        OpsError::Exited { service, code } => service_failed(service, Some(*code)),
        OpsError::Timeout { .. } => ErrorKind::Timeout,
        OpsError::Store(_) | OpsError::Runtime { .. } | OpsError::Stdio { .. } => ErrorKind::Host,
    }
}

/// Each typed error of the layers below keeps its message and gets its kind.
macro_rules! classify {
    ($($error:ty => $kind:expr),* $(,)?) => {$(
        impl From<$error> for EngineError {
            fn from(e: $error) -> Self {
                let kind: fn(&$error) -> ErrorKind = $kind;
                EngineError::new(kind(&e), e.to_string())
            }
        }
    )*};
}

classify! {
    DriverError => driver_kind,
    OpsError => ops_kind,
    CreateError => create_kind,
    stack_net::NetError => net_kind,
    StoreError => |_| ErrorKind::Host,
    HostError => |_| ErrorKind::Host,
    std::io::Error => |_| ErrorKind::Host,
    stack_fs::Error => |_| ErrorKind::Host,
    crate::control::ControlError => |_| ErrorKind::Protocol,
    LockError => |e| match e {
        LockError::Held { holder, .. } => ErrorKind::LockHeld {
            pid: Some(holder.pid),
        },
        LockError::HeldByUnknown { .. } => ErrorKind::LockHeld { pid: None },
        LockError::Io { .. } => ErrorKind::Host,
    },
}

/// A plan's failed operation: `create container web-1 failed: ...`.
impl From<Failure<DriverError>> for EngineError {
    fn from(f: Failure<DriverError>) -> Self {
        EngineError::new(driver_kind(&f.error), f.to_string())
    }
}

impl From<crate::lifecycle_plan::LifecycleError> for EngineError {
    fn from(e: crate::lifecycle_plan::LifecycleError) -> Self {
        use crate::lifecycle_plan::LifecycleError;
        match e {
            LifecycleError::NoSuchService(s) => EngineError::no_such_service(&s),
            LifecycleError::NothingToStart => EngineError::new(ErrorKind::NotFound, e.to_string()),
        }
    }
}

impl From<crate::reconcile::ReconcileError> for EngineError {
    fn from(e: crate::reconcile::ReconcileError) -> Self {
        use crate::reconcile::ReconcileError;
        let kind = match e {
            ReconcileError::VolumeChanged { .. } => ErrorKind::Conflict,
            ReconcileError::ImageMissing { .. } => ErrorKind::NotFound,
        };
        EngineError::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_and_message_cross_the_wire_as_json() {
        let e = EngineError::from(DriverError::DependencyExited {
            service: "db".into(),
            code: 3,
        })
        .context("start web-1");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "dependency_failed",
                "service": "db",
                "exit_code": 3,
                "message": "start web-1: dependency db exited with code 3",
            })
        );
        assert_eq!(serde_json::from_value::<EngineError>(json).unwrap(), e);
    }

    #[test]
    fn a_taken_port_is_port_in_use() {
        let e = EngineError::from(stack_net::NetError::PortUnavailable {
            host_ip: std::net::Ipv4Addr::UNSPECIFIED,
            port: 8080,
            protocol: "tcp",
            source: std::io::ErrorKind::AddrInUse.into(),
        });
        assert_eq!(e.kind, ErrorKind::PortInUse { port: 8080 });
        assert!(e.message.starts_with("host port 0.0.0.0:8080/tcp"), "{e}");
    }

    #[test]
    fn a_held_lock_names_its_holder() {
        let e = EngineError::from(LockError::Held {
            project: "p".into(),
            holder: crate::lock::Holder {
                pid: 42,
                command: "stack up".into(),
            },
        });
        assert_eq!(e.kind, ErrorKind::LockHeld { pid: Some(42) });
        assert_eq!(
            e.to_string(),
            "project p is locked by pid 42 (stack up); wait for it or stop it"
        );
    }

    #[test]
    fn several_failures_keep_the_first_kind_and_every_message() {
        let all = EngineError::several(vec![
            EngineError::new(ErrorKind::Conflict, "pause a: paused"),
            EngineError::new(ErrorKind::Host, "pause b: EIO"),
        ])
        .unwrap();
        assert_eq!(all.kind, ErrorKind::Conflict);
        assert_eq!(all.message, "pause a: paused; pause b: EIO");
        assert!(EngineError::several(Vec::new()).is_none());
    }

    #[test]
    fn a_cause_met_again_is_said_once() {
        let full = "network state: write /r/net/state.json: No space left on device";
        let first = EngineError::new(ErrorKind::Host, format!("remove web-1: {full}"));
        assert!(EngineError::new(ErrorKind::Host, full).said_by(std::slice::from_ref(&first)));
        assert!(!EngineError::new(ErrorKind::Host, "remove db-1: EIO").said_by(&[first]));
    }
}
