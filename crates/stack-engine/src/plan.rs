//! A plan: the operations that take the host from what is observed to what
//! the stack file asks for, each with the resource it acts on, why, and what
//! must be done before it. Plans print deterministically, one line each.

use std::fmt;

use stack_spec::DependsOnCondition;

use crate::plan_graph::{Dag, NodeId};

/// Index of an operation in its plan.
pub type OpId = usize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Network(String),
    Volume(String),
    Image(String),
    /// The image a service's `build:` section makes.
    Build {
        service: String,
        image: String,
    },
    Container {
        service: String,
        number: u32,
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Pull,
    /// Build a service's image from its `build:` section.
    Build,
    Start,
    /// Stop, remove, and create again under the same name; for a network or
    /// a volume: remove it and make it again from its new configuration.
    Recreate,
    /// Restart in place (a `depends_on` with `restart: true` was restarted).
    Restart,
    /// Stop if running, then remove.
    Remove,
    /// Stop, keeping the container; `timeout` seconds before SIGKILL
    /// instead of the service's grace period.
    Stop {
        timeout: Option<u64>,
    },
    /// Send a signal.
    Kill {
        signal: i32,
    },
    /// Freeze its processes.
    Pause,
    /// Thaw its processes.
    Unpause,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    NotFound,
    ConfigChanged(Vec<String>),
    ImageUpdated,
    ForceRecreate,
    /// `--always-recreate-deps`: a dependency of a named service.
    AlwaysRecreateDeps,
    HashVersionChanged,
    /// The container exists but is not running.
    NotRunning,
    /// A service whose namespaces it shares, or that it restarts with, changed.
    DependencyChanged(String),
    /// A network it is attached to is recreated (its configuration changed).
    NetworkChanged(String),
    /// A volume it mounts is recreated (its configuration changed).
    VolumeChanged(String),
    ScaleDown,
    Orphan,
    PullAlways,
    Down,
    /// A command asked for it (`stack stop`, `start`, `rm`, ...).
    Requested,
    /// A service with `build:` has no image yet.
    BuildNotFound,
    /// `--build` (or `pull_policy: build`) and what the build reads changed.
    BuildContextChanged,
    /// The service's image is being built again.
    ImageRebuilt,
    /// The last single container of the root is gone: its default bridge
    /// goes with it (`single::plan_retire`).
    LastContainerGone,
}

/// A condition a start waits for before running: `depends_on` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub service: String,
    pub condition: DependsOnCondition,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub action: Action,
    pub resource: Resource,
    pub cause: Cause,
    /// Operations of this plan that must be done first.
    pub after: Vec<OpId>,
    /// For starts: the conditions to wait for.
    pub waits: Vec<Wait>,
    /// For a container's recreate: new anonymous volumes (`up -V`) rather
    /// than its predecessor's.
    pub renew_anon_volumes: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub operations: Vec<Operation>,
    /// Things worth telling the user that are not operations (orphans kept).
    pub notes: Vec<String>,
}

impl Plan {
    pub fn push(&mut self, action: Action, resource: Resource, cause: Cause) -> OpId {
        self.operations.push(Operation {
            action,
            resource,
            cause,
            after: Vec::new(),
            waits: Vec::new(),
            renew_anon_volumes: false,
        });
        self.operations.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The plan as a graph for the executor.
    pub fn to_dag(&self) -> (Dag<OpId>, Vec<NodeId>) {
        let mut dag = Dag::new();
        let nodes: Vec<NodeId> = (0..self.operations.len()).map(|i| dag.add(i)).collect();
        for (i, op) in self.operations.iter().enumerate() {
            for &dep in &op.after {
                dag.depend(nodes[i], nodes[dep]);
            }
        }
        (dag, nodes)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Create => "create",
            Action::Pull => "pull",
            Action::Build => "build",
            Action::Start => "start",
            Action::Recreate => "recreate",
            Action::Restart => "restart",
            Action::Remove => "remove",
            Action::Stop { .. } => "stop",
            Action::Kill { .. } => "kill",
            Action::Pause => "pause",
            Action::Unpause => "unpause",
        })
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Network(name) => write!(f, "network {name}"),
            Resource::Volume(name) => write!(f, "volume {name}"),
            Resource::Image(name) | Resource::Build { image: name, .. } => {
                write!(f, "image {name}")
            }
            Resource::Container { name, .. } => write!(f, "container {name}"),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::NotFound => f.write_str("not found"),
            Cause::ConfigChanged(paths) => write!(f, "config changed: {}", paths.join(", ")),
            Cause::ImageUpdated => f.write_str("image updated"),
            Cause::ForceRecreate => f.write_str("--force-recreate"),
            Cause::AlwaysRecreateDeps => f.write_str("--always-recreate-deps"),
            Cause::HashVersionChanged => f.write_str("made by another stack version"),
            Cause::NotRunning => f.write_str("not running"),
            Cause::DependencyChanged(s) => write!(f, "dependency {s} changed"),
            Cause::NetworkChanged(n) => write!(f, "network {n} changed"),
            Cause::VolumeChanged(v) => write!(f, "volume {v} changed"),
            Cause::ScaleDown => f.write_str("scale down"),
            Cause::Orphan => f.write_str("orphan"),
            Cause::PullAlways => f.write_str("pull_policy: always"),
            Cause::Down => f.write_str("down"),
            Cause::Requested => f.write_str("requested"),
            Cause::LastContainerGone => f.write_str("last container gone"),
            Cause::BuildNotFound => f.write_str("build: image not found"),
            Cause::BuildContextChanged => f.write_str("build: context changed"),
            Cause::ImageRebuilt => f.write_str("image rebuilt"),
        }
    }
}

fn condition_word(c: DependsOnCondition) -> &'static str {
    match c {
        DependsOnCondition::ServiceStarted => "started",
        DependsOnCondition::ServiceHealthy => "healthy",
        DependsOnCondition::ServiceCompletedSuccessfully => "completed successfully",
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, op) in self.operations.iter().enumerate() {
            write!(f, "#{} {} {} ({})", i + 1, op.action, op.resource, op.cause)?;
            if op.renew_anon_volumes {
                f.write_str(" with new anonymous volumes")?;
            }
            if !op.after.is_empty() {
                f.write_str(" after")?;
                for dep in &op.after {
                    write!(f, " #{}", dep + 1)?;
                }
            }
            if !op.waits.is_empty() {
                f.write_str("; waits for")?;
                for (n, w) in op.waits.iter().enumerate() {
                    let sep = if n == 0 { " " } else { ", " };
                    let optional = if w.required { "" } else { " (optional)" };
                    write!(
                        f,
                        "{sep}{} {}{optional}",
                        w.service,
                        condition_word(w.condition)
                    )?;
                }
            }
            writeln!(f)?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}
