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

#[derive(Debug, thiserror::Error)]
pub enum ServiceBuildError {
    #[error("service {service:?} has no build section")]
    NoBuild { service: String },
    #[error("service {service:?}: build.{key} is not supported by stack's builder yet")]
    Unsupported { service: String, key: String },
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
    if let Some(key) = b.other.keys().next() {
        return Err(ServiceBuildError::Unsupported {
            service: name.to_owned(),
            key: key.clone(),
        });
    }
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
    let tag = Reference::parse(&image).map_err(|source| ServiceBuildError::Reference {
        service: name.to_owned(),
        image: image.clone(),
        source,
    })?;
    Ok(BuildOptions {
        root: inv.root.clone(),
        context,
        dockerfile,
        tags: vec![tag],
        target: b.target.clone(),
        build_args,
        labels: b
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        no_cache: inv.no_cache,
        init_binary: inv.init_binary.clone(),
        source_date_epoch: inv.source_date_epoch,
    })
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

        let s = service(r#"{"build": {"context": "/ctx", "ssh": ["default"]}}"#);
        let e = options("p", "web", &s, &inv(dir.path())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "service \"web\": build.ssh is not supported by stack's builder yet"
        );
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
