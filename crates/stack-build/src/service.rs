//! A stack file's `build:` section as a build: the image it makes, the
//! options it gives, and a fingerprint of everything the build reads, kept
//! beside the image, so that `up --build` rebuilds (and recreates) only the
//! services whose Dockerfile, arguments or context changed.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use stack_image::Reference;
use stack_spec::Service;

use crate::build::BuildOptions;
use crate::context::{Context, ContextError, Matched};
use crate::dockerfile::RunNetwork;

#[derive(Debug, thiserror::Error)]
pub enum ServiceBuildError {
    #[error("service {service:?} has no build section")]
    NoBuild { service: String },
    #[error("service {service:?}: build.{key} is not supported by stack's builder yet")]
    Unsupported { service: String, key: String },
    #[error("service {service:?}: build.{key}: {message}")]
    Invalid {
        service: String,
        key: String,
        message: String,
    },
    #[error("service {service:?}: image {image:?}: {source}")]
    Reference {
        service: String,
        image: String,
        source: stack_image::reference::ReferenceError,
    },
    #[error("service {service:?}: {path}: {source}")]
    Io {
        service: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("service {service:?}: {source}")]
    Context {
        service: String,
        source: ContextError,
    },
}

/// The image a service runs: its `image:`, else `<project>-<service>` when
/// it has a `build:` section; `None` when it has neither.
pub fn image_name(project: &str, name: &str, service: &Service) -> Option<String> {
    match (&service.image, &service.build) {
        (Some(image), _) => Some(image.clone()),
        (None, Some(_)) => Some(format!("{project}-{name}")),
        (None, None) => None,
    }
}

/// What differs from build to build of one service beyond its stack file.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The stack root: store, cache and inline Dockerfiles live there.
    pub root: PathBuf,
    /// `--build-arg` values, over the file's `args`.
    pub extra_args: BTreeMap<String, String>,
    pub no_cache: bool,
    pub init_binary: PathBuf,
    pub source_date_epoch: Option<u64>,
}

/// The build `service`'s `build:` section describes, tagged with its image
/// name. Its context is absolute already (the loader made it so). Every key
/// is honoured or refused: nothing is silently dropped.
pub fn options(
    project: &str,
    name: &str,
    service: &Service,
    inv: &Invocation,
) -> Result<BuildOptions, ServiceBuildError> {
    let b = service
        .build
        .as_ref()
        .ok_or_else(|| ServiceBuildError::NoBuild {
            service: name.to_owned(),
        })?;
    let extra = Extra::read(name, &b.other)?;
    let context = PathBuf::from(b.context.as_deref().unwrap_or("."));
    let io_err = |path: &Path| {
        let path = path.to_owned();
        let service = name.to_owned();
        move |source| ServiceBuildError::Io {
            service,
            path,
            source,
        }
    };
    let dockerfile = match (&b.dockerfile_inline, &b.dockerfile) {
        (Some(text), _) => {
            // Written under the root, outside any context, so no COPY sees it.
            let dir = inv.root.join("build/inline");
            let path = dir.join(format!("{project}-{name}.Dockerfile"));
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            stack_fs::write(&path, text.as_bytes()).map_err(|e| ServiceBuildError::Io {
                service: name.to_owned(),
                path: path.clone(),
                source: e.source,
            })?;
            Some(path)
        }
        (None, Some(f)) => Some(context.join(f)),
        (None, None) => None,
    };
    let mut build_args = BTreeMap::new();
    for (k, v) in &b.args {
        // `args: [KEY]` takes the value from the environment, as compose does.
        match v {
            Some(v) => {
                build_args.insert(k.clone(), v.clone());
            }
            None => {
                if let Ok(v) = std::env::var(k) {
                    build_args.insert(k.clone(), v);
                }
            }
        }
    }
    build_args.extend(inv.extra_args.clone());
    let image = image_name(project, name, service).unwrap_or_default();
    let mut tags = Vec::new();
    for image in std::iter::once(&image).chain(&extra.tags) {
        tags.push(
            Reference::parse(image).map_err(|source| ServiceBuildError::Reference {
                service: name.to_owned(),
                image: image.clone(),
                source,
            })?,
        );
    }
    Ok(BuildOptions {
        root: inv.root.clone(),
        context,
        dockerfile,
        tags,
        target: b.target.clone(),
        build_args,
        labels: b
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        no_cache: inv.no_cache || extra.no_cache,
        network: extra.network,
        init_binary: inv.init_binary.clone(),
        source_date_epoch: inv.source_date_epoch,
    })
}

/// The `build:` keys beyond the typed ones, each honoured or refused.
#[derive(Debug, Default)]
struct Extra {
    no_cache: bool,
    tags: Vec<String>,
    network: RunNetwork,
}

impl Extra {
    fn read(
        service: &str,
        other: &indexmap::IndexMap<String, serde_json::Value>,
    ) -> Result<Self, ServiceBuildError> {
        let invalid = |key: &str, message: String| ServiceBuildError::Invalid {
            service: service.to_owned(),
            key: key.to_owned(),
            message,
        };
        let strings =
            |key: &str, v: &serde_json::Value| -> Result<Vec<String>, ServiceBuildError> {
                v.as_array()
                    .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect())
                    .ok_or_else(|| invalid(key, "expected a list of strings".into()))
            };
        let flag = |key: &str, v: &serde_json::Value| match v {
            serde_json::Value::Bool(b) => Ok(*b),
            serde_json::Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            _ => Err(invalid(key, "expected true or false".into())),
        };
        let mut extra = Self::default();
        for (key, v) in other {
            match key.as_str() {
                "no_cache" => extra.no_cache = flag(key, v)?,
                "tags" => extra.tags = strings(key, v)?,
                "platforms" => {
                    let host = stack_image::Platform::host().to_string();
                    for p in strings(key, v)? {
                        if p != host {
                            return Err(invalid(
                                key,
                                format!("{p}: only this host's platform ({host}) is built"),
                            ));
                        }
                    }
                }
                "network" => {
                    extra.network = match v.as_str() {
                        Some("default") => RunNetwork::Default,
                        Some("host") => RunNetwork::Host,
                        Some("none") => RunNetwork::None,
                        _ => {
                            return Err(invalid(
                                key,
                                format!("{v}: expected default, host or none"),
                            ));
                        }
                    }
                }
                "pull" => {
                    if flag(key, v)? {
                        return Err(invalid(
                            key,
                            "base images are taken from the image store, never pulled by a build; pull them with `stack image pull` and leave out `pull: true`".into(),
                        ));
                    }
                }
                "ssh" => {
                    return Err(invalid(
                        key,
                        "forwarding SSH agents or keys into builds is not supported".into(),
                    ));
                }
                _ => {
                    return Err(ServiceBuildError::Unsupported {
                        service: service.to_owned(),
                        key: key.clone(),
                    });
                }
            }
        }
        Ok(extra)
    }
}

/// A digest of what a build reads: the Dockerfile, the target, the build
/// args and labels, and every file of the context its `.dockerignore` lets
/// through (names, modes, link targets, contents; not mtimes).
pub fn fingerprint(opts: &BuildOptions) -> Result<String, ContextError> {
    let dockerfile = opts
        .dockerfile
        .clone()
        .unwrap_or_else(|| opts.context.join("Dockerfile"));
    let text = fs::read(&dockerfile).map_err(|source| ContextError::Io {
        path: dockerfile.clone(),
        source,
    })?;
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part(b"stack-build-fingerprint-1");
    part(&text);
    part(opts.target.as_deref().unwrap_or("").as_bytes());
    for (k, v) in opts.build_args.iter().chain(opts.labels.iter()) {
        part(k.as_bytes());
        part(v.as_bytes());
    }
    let context = Context::open(&opts.context, Some(&dockerfile))?;
    context.hash(
        &Matched {
            path: context.root().to_owned(),
            rel: PathBuf::new(),
        },
        &mut h,
    )?;
    Ok(hex::encode(h.finalize()))
}

/// Where the fingerprint an image was built from is kept.
fn fingerprint_path(root: &Path, image: &str) -> PathBuf {
    let name = hex::encode(Sha256::digest(image.as_bytes()));
    root.join("build-cache/built").join(name)
}

/// The fingerprint `image` was last built from, if it was built here.
pub fn built_from(root: &Path, image: &str) -> Option<String> {
    fs::read_to_string(fingerprint_path(root, image)).ok()
}

/// Records that `image` was built from `fingerprint` (atomically).
pub fn record_built(root: &Path, image: &str, fingerprint: &str) -> io::Result<()> {
    let path = fingerprint_path(root, image);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    stack_fs::write(&path, fingerprint.as_bytes()).map_err(|e| e.source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(json: &str) -> Service {
        serde_json::from_str(json).unwrap()
    }

    fn inv(root: &Path) -> Invocation {
        Invocation {
            root: root.to_owned(),
            extra_args: BTreeMap::from([("B".into(), "cli".into())]),
            no_cache: false,
            init_binary: PathBuf::from("/bin/true"),
            source_date_epoch: None,
        }
    }

    #[test]
    fn the_image_is_named_after_the_project_unless_given() {
        let s = service(r#"{"build": {"context": "/x"}}"#);
        assert_eq!(image_name("p", "web", &s).as_deref(), Some("p-web"));
        let s = service(r#"{"build": {"context": "/x"}, "image": "reg/app:1"}"#);
        assert_eq!(image_name("p", "web", &s).as_deref(), Some("reg/app:1"));
        assert_eq!(image_name("p", "web", &service("{}")), None);
    }

    #[test]
    fn options_carry_the_section_and_refuse_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let s = service(
            r#"{"build": {"context": "/ctx", "dockerfile": "d/Dockerfile", "target": "t",
                "args": {"A": "a", "B": "file"}, "labels": {"l": "v"}}}"#,
        );
        let o = options("p", "web", &s, &inv(dir.path())).unwrap();
        assert_eq!(o.dockerfile, Some(PathBuf::from("/ctx/d/Dockerfile")));
        assert_eq!(o.target.as_deref(), Some("t"));
        assert_eq!(o.build_args["A"], "a");
        assert_eq!(o.build_args["B"], "cli");
        assert_eq!(o.labels["l"], "v");
        assert_eq!(o.tags[0].to_string(), "docker.io/library/p-web:latest");

        let refused = |json: &str| {
            options("p", "web", &service(json), &inv(dir.path()))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused(r#"{"build": {"context": "/ctx", "shm_size": "1g"}}"#),
            "service \"web\": build.shm_size is not supported by stack's builder yet"
        );
        assert!(
            refused(r#"{"build": {"context": "/ctx", "ssh": ["default"]}}"#)
                .starts_with("service \"web\": build.ssh: forwarding SSH agents")
        );
        assert!(
            refused(r#"{"build": {"context": "/ctx", "platforms": ["linux/s390x"]}}"#)
                .contains("build.platforms: linux/s390x: only this host's platform")
        );
        assert!(
            refused(r#"{"build": {"context": "/ctx", "pull": true}}"#)
                .contains("build.pull: base images are taken from the image store")
        );
        assert!(
            refused(r#"{"build": {"context": "/ctx", "network": "bridge"}}"#)
                .contains("build.network: \"bridge\": expected default, host or none")
        );
        let host = stack_image::Platform::host().to_string();
        let s = service(&format!(
            r#"{{"build": {{"context": "/ctx", "no_cache": true, "pull": false, "network": "none",
                "tags": ["reg/x:2"], "platforms": ["{host}"]}}}}"#
        ));
        let o = options("p", "web", &s, &inv(dir.path())).unwrap();
        assert!(o.no_cache);
        assert_eq!(o.network, RunNetwork::None);
        assert_eq!(o.tags.len(), 2);
        assert_eq!(o.tags[1].to_string(), "docker.io/reg/x:2");
    }

    #[test]
    fn the_fingerprint_follows_content_not_ignored_files() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir(&ctx).unwrap();
        fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY a /\n").unwrap();
        fs::write(ctx.join("a"), "1").unwrap();
        fs::write(ctx.join(".dockerignore"), "junk\n").unwrap();
        let s = service(&format!(
            r#"{{"build": {{"context": "{}"}}}}"#,
            ctx.display()
        ));
        let o = options("p", "web", &s, &inv(dir.path())).unwrap();
        let first = fingerprint(&o).unwrap();
        fs::write(ctx.join("junk"), "ignored").unwrap();
        assert_eq!(fingerprint(&o).unwrap(), first);
        fs::write(ctx.join("a"), "2").unwrap();
        let second = fingerprint(&o).unwrap();
        assert_ne!(second, first);

        assert_eq!(built_from(dir.path(), "p-web"), None);
        record_built(dir.path(), "p-web", &second).unwrap();
        assert_eq!(built_from(dir.path(), "p-web"), Some(second));
    }
}
