//! What is on the host now, as the reconciler sees it: plain data, gathered
//! by the engine from its state store and the kernel before planning.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl ContainerState {
    /// Up, as far as `stack up` is concerned: nothing to start.
    pub fn is_up(self) -> bool {
        matches!(self, Self::Running | Self::Paused | Self::Restarting)
    }

    /// Docker's word for it, as `ps`, `ls` and `inspect` show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedContainer {
    pub name: String,
    pub service: String,
    /// The replica number, from 1.
    pub number: u32,
    /// The hash the container was created with (see `hash`).
    pub config_hash: String,
    /// The hashed form it was created from, to name what changed.
    pub config: serde_json::Value,
    /// The image digest it was created from.
    pub image_digest: Option<String>,
    pub state: ContainerState,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub containers: Vec<ObservedContainer>,
    /// One-off containers (`stack run`): never part of `up`'s plan, but
    /// stopped, killed, paused and removed with their service.
    #[serde(default)]
    pub one_offs: Vec<ObservedContainer>,
    /// Networks of this project that exist, by full name.
    pub networks: BTreeSet<String>,
    /// Named volumes that exist, by full name.
    pub volumes: BTreeSet<String>,
    /// Images in the store: reference as written in the file → digest.
    pub images: BTreeMap<String, String>,
    /// The form (see `hash::network_form`) each existing network was made
    /// from, by full name; absent for one made before forms were kept,
    /// which is then taken as unchanged.
    #[serde(default)]
    pub network_configs: BTreeMap<String, serde_json::Value>,
    /// The form (see `hash::volume_form`) each existing named volume was
    /// made from, by full name; absent as for networks.
    #[serde(default)]
    pub volume_configs: BTreeMap<String, serde_json::Value>,
    /// Services with `build:`, by name: what their build reads now and what
    /// their image was built from. Gathered only when `--build` or
    /// `pull_policy: build` asks to compare them.
    #[serde(default)]
    pub builds: BTreeMap<String, ObservedBuild>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedBuild {
    /// The fingerprint of the build's inputs now (`None`: unreadable, so
    /// the build itself says why).
    pub current: Option<String>,
    /// The fingerprint the service's image was last built from here.
    pub built: Option<String>,
}
