//! Policies and modes as enums, read from and printed as Compose's strings.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::values::GoDuration;
use crate::units::parse_duration;

/// Implement serde and JSON schema for a type through its `FromStr`/`Display`.
macro_rules! string_serde {
    ($ty:ident, $desc:expr) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "description": $desc })
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {found:?}: expected {expected}")]
pub struct PolicyError {
    pub what: &'static str,
    pub found: String,
    pub expected: &'static str,
}

/// Docker's restart policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    /// Restart after a non-zero exit, at most `max_retries` times when given.
    OnFailure {
        max_retries: Option<u32>,
    },
    UnlessStopped,
}

impl FromStr for RestartPolicy {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PolicyError {
            what: "restart policy",
            found: s.into(),
            expected: "no, always, on-failure[:N] or unless-stopped",
        };
        match s {
            "no" | "" => Ok(Self::No),
            "always" => Ok(Self::Always),
            "unless-stopped" => Ok(Self::UnlessStopped),
            "on-failure" => Ok(Self::OnFailure { max_retries: None }),
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => n
                    .parse()
                    .map(|n| Self::OnFailure {
                        max_retries: Some(n),
                    })
                    .map_err(|_| err()),
                None => Err(err()),
            },
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::No => f.write_str("no"),
            Self::Always => f.write_str("always"),
            Self::OnFailure { max_retries: None } => f.write_str("on-failure"),
            Self::OnFailure {
                max_retries: Some(n),
            } => write!(f, "on-failure:{n}"),
            Self::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}
string_serde!(
    RestartPolicy,
    "no, always, on-failure[:N] or unless-stopped"
);

/// How a service joins the network.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NetworkMode {
    Bridge,
    Host,
    None,
    /// Share the network namespace of another service's container.
    Service(String),
    /// Share the network namespace of a container by name or id.
    Container(String),
    /// A network by name (Docker accepts a network name here).
    Network(String),
}

impl FromStr for NetworkMode {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "bridge" | "default" => Self::Bridge,
            "host" => Self::Host,
            "none" => Self::None,
            _ => {
                if let Some(n) = s.strip_prefix("service:") {
                    Self::Service(n.into())
                } else if let Some(n) = s.strip_prefix("container:") {
                    Self::Container(n.into())
                } else if s.is_empty() {
                    return Err(PolicyError {
                        what: "network_mode",
                        found: s.into(),
                        expected: "bridge, host, none, service:NAME or container:NAME",
                    });
                } else {
                    Self::Network(s.into())
                }
            }
        })
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bridge => f.write_str("bridge"),
            Self::Host => f.write_str("host"),
            Self::None => f.write_str("none"),
            Self::Service(n) => write!(f, "service:{n}"),
            Self::Container(n) => write!(f, "container:{n}"),
            Self::Network(n) => f.write_str(n),
        }
    }
}
string_serde!(
    NetworkMode,
    "bridge, host, none, service:NAME or container:NAME"
);

/// When to pull the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PullPolicy {
    Always,
    Never,
    #[default]
    Missing,
    Build,
    /// Pull again when the local copy is older than this.
    Every(GoDuration),
}

impl FromStr for PullPolicy {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PolicyError {
            what: "pull_policy",
            found: s.into(),
            expected: "always, never, missing, build, daily, weekly or every_<duration>",
        };
        Ok(match s {
            "always" => Self::Always,
            "never" => Self::Never,
            "missing" | "if_not_present" => Self::Missing,
            "build" => Self::Build,
            "daily" => Self::Every(GoDuration(std::time::Duration::from_secs(86_400))),
            "weekly" => Self::Every(GoDuration(std::time::Duration::from_secs(7 * 86_400))),
            _ => match s.strip_prefix("every_") {
                Some(d) => Self::Every(GoDuration(parse_duration(d).map_err(|_| err())?)),
                None => return Err(err()),
            },
        })
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Never => f.write_str("never"),
            Self::Missing => f.write_str("missing"),
            Self::Build => f.write_str("build"),
            Self::Every(d) => write!(f, "every_{d}"),
        }
    }
}
string_serde!(
    PullPolicy,
    "always, never, missing, build, daily, weekly or every_<duration>"
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DependsOnCondition {
    #[default]
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PortMode {
    #[default]
    Ingress,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MountType {
    Bind,
    Volume,
    Tmpfs,
    Image,
    Npipe,
    Cluster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WatchAction {
    Sync,
    Rebuild,
    Restart,
    #[serde(rename = "sync+restart")]
    SyncRestart,
    #[serde(rename = "sync+exec")]
    SyncExec,
}

impl WatchAction {
    pub fn needs_target(self) -> bool {
        !matches!(self, Self::Rebuild | Self::Restart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_round_trip() {
        for s in [
            "no",
            "always",
            "on-failure",
            "on-failure:3",
            "unless-stopped",
        ] {
            assert_eq!(s.parse::<RestartPolicy>().unwrap().to_string(), s);
        }
        assert!("sometimes".parse::<RestartPolicy>().is_err());
    }

    #[test]
    fn network_modes() {
        assert_eq!(
            "service:db".parse::<NetworkMode>().unwrap(),
            NetworkMode::Service("db".into())
        );
        assert_eq!("host".parse::<NetworkMode>().unwrap(), NetworkMode::Host);
    }
}
