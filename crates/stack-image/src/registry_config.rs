//! Where pulls go and with which credentials: registry mirrors and insecure
//! registries (Docker's `registry-mirrors` / `insecure-registries`), and basic
//! auth from `~/.docker/config.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::reference::DOCKER_HUB;

/// Default location of the mirrors/insecure config; `STACK_REGISTRIES_CONFIG` overrides.
pub const DEFAULT_REGISTRIES_CONFIG: &str = "/etc/stack/registries.json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: credentials for {registry}: auth is not base64 user:password")]
    BadAuth { path: PathBuf, registry: String },
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct RegistriesConfig {
    /// Mirrors tried, in order, before Docker Hub.
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    /// Registries reached over plain HTTP (loopback always is).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
}

impl RegistriesConfig {
    /// Reads the config file (missing is fine) and adds `STACK_REGISTRY_MIRRORS`
    /// (comma separated) in front of its mirrors.
    pub fn from_env() -> Result<Self, RegistryConfigError> {
        let path = std::env::var_os("STACK_REGISTRIES_CONFIG")
            .map_or_else(|| PathBuf::from(DEFAULT_REGISTRIES_CONFIG), PathBuf::from);
        let mut cfg = Self::read(&path)?;
        if let Ok(env) = std::env::var("STACK_REGISTRY_MIRRORS") {
            let mut mirrors: Vec<String> = env
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            mirrors.append(&mut cfg.registry_mirrors);
            cfg.registry_mirrors = mirrors;
        }
        Ok(cfg)
    }

    pub fn read(path: &Path) -> Result<Self, RegistryConfigError> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| RegistryConfigError::Json {
                path: path.into(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(RegistryConfigError::Io {
                path: path.into(),
                source,
            }),
        }
    }

    /// Plain HTTP for loopback registries and those listed as insecure.
    pub fn is_insecure(&self, host: &str) -> bool {
        is_loopback(host)
            || self
                .insecure_registries
                .iter()
                .any(|r| strip_scheme(r) == host)
    }

    /// Mirror hosts for `registry`, with whether each is plain HTTP.
    pub fn mirrors_for(&self, registry: &str) -> Vec<(String, bool)> {
        if registry != DOCKER_HUB {
            return Vec::new();
        }
        self.registry_mirrors
            .iter()
            .map(|m| {
                let host = strip_scheme(m).to_owned();
                let http = m.starts_with("http://") || self.is_insecure(&host);
                (host, http)
            })
            .collect()
    }
}

fn strip_scheme(s: &str) -> &str {
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    s.trim_end_matches('/')
}

/// `localhost`, `127.x.x.x` and `[::1]`, with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The docker config file: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Basic credentials for `registry` from a docker config file, if any.
pub fn docker_credentials(
    path: &Path,
    registry: &str,
) -> Result<Option<(String, String)>, RegistryConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RegistryConfigError::Io {
                path: path.into(),
                source,
            });
        }
    };
    let cfg: DockerConfig =
        serde_json::from_slice(&bytes).map_err(|source| RegistryConfigError::Json {
            path: path.into(),
            source,
        })?;
    let keys: &[&str] = if registry == DOCKER_HUB {
        &[
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
        ]
    } else {
        &[registry]
    };
    let found = cfg.auths.iter().find(|(k, _)| {
        let k = strip_scheme(k);
        keys.iter().any(|want| {
            strip_scheme(want) == k || k.strip_suffix("/v1").or(k.strip_suffix("/v2")) == Some(want)
        })
    });
    let Some((_, auth)) = found else {
        return Ok(None);
    };
    if let (Some(u), Some(p)) = (&auth.username, &auth.password) {
        return Ok(Some((u.clone(), p.clone())));
    }
    let bad = || RegistryConfigError::BadAuth {
        path: path.into(),
        registry: registry.to_owned(),
    };
    let Some(encoded) = &auth.auth else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (u, p) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some((u.to_owned(), p.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_insecure() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["docker.io", "10.0.0.1:5000", "example.com:5000"] {
            assert!(!is_loopback(h), "{h}");
        }
        let cfg = RegistriesConfig {
            insecure_registries: vec!["http://reg.lan:5000".into()],
            ..Default::default()
        };
        assert!(cfg.is_insecure("reg.lan:5000"));
        assert!(!cfg.is_insecure("reg.lan"));
    }

    #[test]
    fn mirrors_apply_to_docker_hub_only() {
        let cfg = RegistriesConfig {
            registry_mirrors: vec![
                "https://mirror.example.com/".into(),
                "http://10.0.0.2:5000".into(),
            ],
            ..Default::default()
        };
        assert_eq!(
            cfg.mirrors_for("docker.io"),
            vec![
                ("mirror.example.com".to_owned(), false),
                ("10.0.0.2:5000".to_owned(), true)
            ]
        );
        assert!(cfg.mirrors_for("quay.io").is_empty());
    }

    #[test]
    fn reads_docker_config_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
                "127.0.0.1:5000":{"username":"a","password":"b:c"},"bad.io":{"auth":"!!"}}}"#,
        )
        .unwrap();
        assert_eq!(
            docker_credentials(&path, "docker.io").unwrap(),
            Some(("user".into(), "pass".into()))
        );
        assert_eq!(
            docker_credentials(&path, "127.0.0.1:5000").unwrap(),
            Some(("a".into(), "b:c".into()))
        );
        assert_eq!(docker_credentials(&path, "quay.io").unwrap(), None);
        assert!(docker_credentials(&path, "bad.io").is_err());
        assert_eq!(
            docker_credentials(&dir.path().join("missing"), "x").unwrap(),
            None
        );
    }
}
