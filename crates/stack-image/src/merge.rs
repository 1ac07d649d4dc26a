//! Combining an image's config with a service's keys the way Docker does.
//! Pure: no I/O, unit-tested exhaustively.

use std::collections::BTreeMap;

use crate::model::{Healthcheck, ImageConfig};

/// The PATH Docker gives a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a service (or `container run`) says about its process. `None` means
/// "not given": the image's value applies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceProcess {
    /// `entrypoint:`; `Some(vec![])` (or `[""]`) clears the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// `command:`; replaces the image's Cmd.
    pub command: Option<Vec<String>>,
    /// `KEY=VALUE` overrides by key; a bare `KEY` removes the key.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// The process a container runs, after defaults are applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedProcess {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// `None` means root, as an empty `User` does in Docker.
    pub user: Option<String>,
    pub exposed_ports: Vec<String>,
    pub healthcheck: Option<Healthcheck>,
    pub stop_signal: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    #[error("no command specified: the image has no Entrypoint or Cmd and the service gives none")]
    NoCommand,
}

/// Combines image defaults with service keys:
/// - `entrypoint` replaces Entrypoint and resets the image's Cmd;
/// - `command` replaces Cmd;
/// - env is merged by key, service last, and PATH is added when missing;
/// - `working_dir` and `user` replace the image's when given.
pub fn resolve_process(
    image: &ImageConfig,
    service: &ServiceProcess,
) -> Result<ResolvedProcess, MergeError> {
    let (entrypoint, image_cmd) = match &service.entrypoint {
        Some(ep) => (normalise_empty(ep.clone()), Vec::new()),
        None => (
            image.entrypoint.clone().unwrap_or_default(),
            image.cmd.clone().unwrap_or_default(),
        ),
    };
    let cmd = service.command.clone().unwrap_or(image_cmd);
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(MergeError::NoCommand);
    }
    Ok(ResolvedProcess {
        args,
        env: merge_env(image.env.as_deref().unwrap_or_default(), &service.env),
        working_dir: service
            .working_dir
            .clone()
            .or_else(|| image.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_owned()),
        user: service
            .user
            .clone()
            .or_else(|| image.user.clone())
            .filter(|u| !u.is_empty()),
        exposed_ports: image
            .exposed_ports
            .as_ref()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default(),
        healthcheck: image.healthcheck.clone(),
        stop_signal: image.stop_signal.clone(),
    })
}

fn normalise_empty(v: Vec<String>) -> Vec<String> {
    if v.len() == 1 && v[0].is_empty() {
        Vec::new()
    } else {
        v
    }
}

/// Merges `KEY=VALUE` lists by key, keeping first-seen order; `extra` wins.
pub fn merge_env(base: &[String], extra: &[String]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut values: BTreeMap<String, Option<String>> = BTreeMap::new();
    for entry in base.iter().chain(extra) {
        let (k, v) = match entry.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (entry.as_str(), None),
        };
        if !values.contains_key(k) {
            order.push(k.to_owned());
        }
        values.insert(k.to_owned(), v);
    }
    if !values.contains_key("PATH") {
        order.insert(0, "PATH".to_owned());
        values.insert("PATH".to_owned(), Some(DEFAULT_PATH.to_owned()));
    }
    order
        .into_iter()
        .filter_map(|k| values[&k].as_ref().map(|v| format!("{k}={v}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: Some(v(&["/entry.sh"])),
            cmd: Some(v(&["serve", "--port", "80"])),
            env: Some(v(&["PATH=/usr/bin:/bin", "A=1", "B=2"])),
            working_dir: Some("/app".into()),
            user: Some("app".into()),
            stop_signal: Some("SIGQUIT".into()),
            ..Default::default()
        }
    }

    #[test]
    fn image_defaults_apply_when_service_is_silent() {
        let r = resolve_process(&image(), &ServiceProcess::default()).unwrap();
        assert_eq!(r.args, v(&["/entry.sh", "serve", "--port", "80"]));
        assert_eq!(r.env, v(&["PATH=/usr/bin:/bin", "A=1", "B=2"]));
        assert_eq!(r.working_dir, "/app");
        assert_eq!(r.user.as_deref(), Some("app"));
        assert_eq!(r.stop_signal.as_deref(), Some("SIGQUIT"));
    }

    #[test]
    fn command_replaces_cmd_only() {
        let s = ServiceProcess {
            command: Some(v(&["debug"])),
            ..Default::default()
        };
        assert_eq!(
            resolve_process(&image(), &s).unwrap().args,
            v(&["/entry.sh", "debug"])
        );
    }

    #[test]
    fn entrypoint_resets_cmd() {
        let s = ServiceProcess {
            entrypoint: Some(v(&["/bin/sh", "-c"])),
            ..Default::default()
        };
        assert_eq!(
            resolve_process(&image(), &s).unwrap().args,
            v(&["/bin/sh", "-c"])
        );
        let s = ServiceProcess {
            entrypoint: Some(v(&["/bin/sh", "-c"])),
            command: Some(v(&["echo hi"])),
            ..Default::default()
        };
        assert_eq!(
            resolve_process(&image(), &s).unwrap().args,
            v(&["/bin/sh", "-c", "echo hi"])
        );
    }

    #[test]
    fn empty_entrypoint_clears_it() {
        for ep in [v(&[]), v(&[""])] {
            let s = ServiceProcess {
                entrypoint: Some(ep),
                command: Some(v(&["ls"])),
                ..Default::default()
            };
            assert_eq!(resolve_process(&image(), &s).unwrap().args, v(&["ls"]));
        }
        let s = ServiceProcess {
            entrypoint: Some(v(&[])),
            ..Default::default()
        };
        assert_eq!(resolve_process(&image(), &s), Err(MergeError::NoCommand));
    }

    #[test]
    fn env_merges_by_key_and_adds_path() {
        let s = ServiceProcess {
            env: v(&["B=3", "C=4", "A"]),
            ..Default::default()
        };
        assert_eq!(
            resolve_process(&image(), &s).unwrap().env,
            v(&["PATH=/usr/bin:/bin", "B=3", "C=4"])
        );
        let bare = ImageConfig {
            cmd: Some(v(&["x"])),
            ..Default::default()
        };
        let r = resolve_process(&bare, &ServiceProcess::default()).unwrap();
        assert_eq!(r.env, vec![format!("PATH={DEFAULT_PATH}")]);
        assert_eq!(r.working_dir, "/");
        assert_eq!(r.user, None);
    }

    #[test]
    fn working_dir_and_user_override() {
        let s = ServiceProcess {
            working_dir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            ..Default::default()
        };
        let r = resolve_process(&image(), &s).unwrap();
        assert_eq!(r.working_dir, "/srv");
        assert_eq!(r.user.as_deref(), Some("1000:1000"));
    }

    #[test]
    fn no_command_is_an_error() {
        assert_eq!(
            resolve_process(&ImageConfig::default(), &ServiceProcess::default()),
            Err(MergeError::NoCommand)
        );
    }
}
