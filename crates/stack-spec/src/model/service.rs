//! One service, in Compose's normalised (long) form.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::policy::{
    DependsOnCondition, MountType, NetworkMode, PortMode, PortProtocol, PullPolicy, RestartPolicy,
    WatchAction,
};
use super::values::{ByteSize, GoDuration, flex};

/// Keys the schema accepts that `stack` keeps but does not act on; the loader
/// warns about each one.
pub type Unsupported = IndexMap<String, serde_json::Value>;

fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Service {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `None` for a variable named without a value that is not set anywhere.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub environment: IndexMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<EnvFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ServiceVolume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub depends_on: IndexMap<String, DependsOn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_u32"
    )]
    pub scale: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_f64"
    )]
    pub cpus: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_i64"
    )]
    pub cpu_shares: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_i64"
    )]
    pub cpu_quota: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_i64"
    )]
    pub cpu_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_reservation: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memswap_limit: Option<ByteSize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_i64"
    )]
    pub mem_swappiness: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_i64"
    )]
    pub pids_limit: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_bool"
    )]
    pub oom_kill_disable: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_i64"
    )]
    pub oom_score_adj: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blkio_config: Option<BlkioConfig>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub ulimits: IndexMap<String, Ulimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Networks to join; `None` values mean "no per-network settings".
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub networks: IndexMap<String, Option<ServiceNetwork>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    /// `host=ip` entries, one per address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "flex::bool"
    )]
    pub read_only: bool,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "flex::bool"
    )]
    pub privileged: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_bool"
    )]
    pub init: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "flex::bool"
    )]
    pub tty: bool,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "flex::bool"
    )]
    pub stdin_open: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub sysctls: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub annotations: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub develop: Option<Develop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceFileRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ServiceFileRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    /// `x-stack:`, settings only `stack` understands.
    #[serde(rename = "x-stack", default, skip_serializing_if = "Option::is_none")]
    pub x_stack: Option<StackExtension>,
    /// Schema-valid keys `stack` does not act on (kept for `stack config`).
    #[serde(flatten)]
    pub unsupported: Unsupported,
}

/// A service's `x-stack:` block; an unknown key in it is an error, since a
/// misspelt opt-in would otherwise be silently ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackExtension {
    /// Restart the container (with the restart policy's backoff) when its
    /// health check turns unhealthy.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "flex::bool"
    )]
    pub restart_on_unhealthy: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Build {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub args: IndexMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Remaining build options, kept as given until building is implemented.
    #[serde(flatten)]
    pub other: IndexMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnvFile {
    pub path: String,
    #[serde(default = "yes", deserialize_with = "flex::bool")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServicePort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub mode: PortMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    pub target: u16,
    /// A port (`"8080"`) or a range (`"8000-8010"`); absent for an ephemeral port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default)]
    pub protocol: PortProtocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: MountType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "flex::bool"
    )]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageOptions>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct BindOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    #[serde(default = "yes", deserialize_with = "flex::bool")]
    pub create_host_path: bool,
    /// `z` (shared) or `Z` (private) SELinux relabelling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct VolumeOptions {
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "flex::bool"
    )]
    pub nocopy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TmpfsOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_u32"
    )]
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ImageOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DependsOn {
    #[serde(default)]
    pub condition: DependsOnCondition,
    #[serde(default, deserialize_with = "flex::bool")]
    pub restart: bool,
    #[serde(default = "yes", deserialize_with = "flex::bool")]
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_u32"
    )]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<GoDuration>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "flex::bool"
    )]
    pub disable: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Deploy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_u32"
    )]
    pub replicas: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<DeployRestartPolicy>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Swarm-only settings (update_config, placement ...), kept as given.
    #[serde(flatten)]
    pub other: IndexMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<ResourceLimits>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ResourceLimits {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_f64"
    )]
    pub cpus: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_i64"
    )]
    pub pids: Option<i64>,
    /// Device reservations (GPUs ...), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic_resources: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct DeployRestartPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<GoDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_u32"
    )]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<GoDuration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct BlkioConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<ThrottleDevice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ThrottleDevice {
    pub path: String,
    /// Bytes (or operations) per second.
    pub rate: ByteSize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ServiceNetwork {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw_priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub driver_opts: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceMapping {
    pub source: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Develop {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<Watch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Watch {
    pub path: String,
    pub action: WatchAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "flex::bool"
    )]
    pub initial_sync: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Logging {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub options: IndexMap<String, Option<String>>,
}

/// A service's use of a top-level secret or config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceFileRef {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flex::opt_u32"
    )]
    pub mode: Option<u32>,
}
