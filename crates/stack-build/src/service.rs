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
use crate::secret::Secret;

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
    /// Where the build network is recorded and takes its subnet from.
    pub net: crate::network::NetConfig,
    pub source_date_epoch: Option<u64>,
    /// `--secret` values, over the ones `build.secrets` names.
    pub secrets: BTreeMap<String, Secret>,
    /// The stack file's top-level `secrets:`, which `build.secrets` names.
    pub defined_secrets: indexmap::IndexMap<String, stack_spec::model::FileObject>,
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
    let mut secrets = BTreeMap::new();
    for (id, source) in &extra.secrets {
        let invalid = |message: String| ServiceBuildError::Invalid {
            service: name.to_owned(),
            key: "secrets".into(),
            message,
        };
        let def = inv
            .defined_secrets
            .get(source)
            .ok_or_else(|| invalid(format!("{source:?} is not a top-level secret")))?;
        let secret = match (&def.file, &def.environment, &def.content) {
            (Some(f), _, _) => Secret::File(PathBuf::from(f)),
            (_, Some(var), _) => Secret::Value(
                std::env::var(var)
                    .map_err(|_| {
                        invalid(format!("{source:?}: environment variable {var} is not set"))
                    })?
                    .into_bytes(),
            ),
            (_, _, Some(c)) => Secret::Value(c.clone().into_bytes()),
            _ => {
                return Err(invalid(format!(
                    "{source:?}: an external secret cannot be given to a build (it needs file, environment or content)"
                )));
            }
        };
        secrets.insert(id.clone(), secret);
    }
    secrets.extend(inv.secrets.clone());
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
    // A bare `args: [KEY]` was given its value from the environment of the
    // command typed by the loader; one that is still unset keeps the
    // Dockerfile's default, as with compose.
    for (k, v) in &b.args {
        if let Some(v) = v {
            build_args.insert(k.clone(), v.clone());
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
        net: inv.net.clone(),
        cache_from: extra.cache_from,
        cache_to: extra.cache_to,
        init_binary: inv.init_binary.clone(),
        source_date_epoch: inv.source_date_epoch,
        secrets,
        extra_hosts: extra.extra_hosts,
        shm_size: extra.shm_size,
        named_contexts: extra.contexts,
    })
}

/// The `build:` keys beyond the typed ones, each honoured or refused.
#[derive(Debug, Default)]
struct Extra {
    no_cache: bool,
    tags: Vec<String>,
    network: RunNetwork,
    /// `secrets`: id in the build -> top-level secret name.
    secrets: Vec<(String, String)>,
    extra_hosts: Vec<(String, std::net::IpAddr)>,
    shm_size: Option<u64>,
    contexts: BTreeMap<String, crate::context::Named>,
    cache_from: Vec<PathBuf>,
    cache_to: Option<PathBuf>,
}

/// The directory of a `type=local,src=DIR` (`cache_from`) or
/// `type=local,dest=DIR` (`cache_to`) entry; any other kind of cache, or
/// an attribute that cannot be honoured, is refused naming it. A relative
/// DIR is taken from `base` (the command line's working directory), and
/// refused without one (a stack file's caches are absolute).
pub fn local_cache_dir(entry: &str, export: bool, base: Option<&Path>) -> Result<PathBuf, String> {
    let dir_key = if export { "dest" } else { "src" };
    let kind = entry.split(',').find_map(|attr| attr.strip_prefix("type="));
    if kind != Some("local") {
        return Err(format!(
            "{entry:?}: only type=local,{dir_key}=DIR is supported (registry, inline, gha and s3 caches are not)"
        ));
    }
    let mut dir = None;
    for attr in entry.split(',') {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        match k {
            "type" => {}
            k if k == dir_key => dir = Some(PathBuf::from(v)),
            // Every step is exported either way (as BuildKit's max).
            "mode" if export && (v == "min" || v == "max") => {}
            _ => return Err(format!("{entry:?}: {attr:?} is not supported")),
        }
    }
    match dir {
        Some(d) if d.is_absolute() => Ok(d),
        Some(d) if base.is_some() && !d.as_os_str().is_empty() => {
            Ok(base.expect("checked").join(d))
        }
        Some(d) => Err(format!("{entry:?}: {} must be absolute", d.display())),
        None => Err(format!("{entry:?}: expected {dir_key}=DIR")),
    }
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
                "secrets" => {
                    let list = v
                        .as_array()
                        .ok_or_else(|| invalid(key, "expected a list".into()))?;
                    for item in list {
                        let (source, target) = match item {
                            serde_json::Value::String(s) => (s.clone(), None),
                            serde_json::Value::Object(o) => {
                                for k in o.keys() {
                                    if !matches!(k.as_str(), "source" | "target") {
                                        return Err(invalid(
                                            key,
                                            format!(
                                                "{k}: a build secret has only source and target"
                                            ),
                                        ));
                                    }
                                }
                                let field =
                                    |f: &str| o.get(f).and_then(|v| v.as_str()).map(str::to_owned);
                                (
                                    field("source").ok_or_else(|| {
                                        invalid(key, "an entry without a source".into())
                                    })?,
                                    field("target"),
                                )
                            }
                            _ => {
                                return Err(invalid(
                                    key,
                                    format!("{item}: expected a name or {{source, target}}"),
                                ));
                            }
                        };
                        // compose: the id a Dockerfile mounts is the target
                        // when one is given, else the secret's name.
                        extra
                            .secrets
                            .push((target.unwrap_or_else(|| source.clone()), source));
                    }
                }
                "extra_hosts" => {
                    // A list of `host:ip` / `host=ip`, or a map host -> ip(s).
                    let mut entries: Vec<(String, String)> = Vec::new();
                    match v {
                        serde_json::Value::Array(_) => {
                            for e in strings(key, v)? {
                                let (h, ip) = e
                                    .split_once('=')
                                    .or_else(|| e.split_once(':'))
                                    .ok_or_else(|| invalid(key, format!("{e:?} is not HOST:IP")))?;
                                entries.push((h.to_owned(), ip.to_owned()));
                            }
                        }
                        serde_json::Value::Object(map) => {
                            for (h, ips) in map {
                                let ips = match ips {
                                    serde_json::Value::String(s) => vec![s.clone()],
                                    other => strings(key, other)?,
                                };
                                entries.extend(ips.into_iter().map(|ip| (h.clone(), ip)));
                            }
                        }
                        _ => return Err(invalid(key, "expected a list or a map".into())),
                    }
                    for (h, ip) in entries {
                        match stack_spec::settings::extra_host(&format!("{h}={ip}")) {
                            Ok(Some(pair)) => extra.extra_hosts.push(pair),
                            Ok(None) => {
                                return Err(invalid(
                                    key,
                                    format!(
                                        "{h}: host-gateway is not provided to builds; name the host's address"
                                    ),
                                ));
                            }
                            Err(e) => return Err(invalid(key, e)),
                        }
                    }
                }
                "additional_contexts" => {
                    let map = v
                        .as_object()
                        .ok_or_else(|| invalid(key, "expected a map of name to path".into()))?;
                    for (name, value) in map {
                        let value = value
                            .as_str()
                            .ok_or_else(|| invalid(key, format!("{name}: expected a string")))?;
                        let named = crate::context::Named::parse(value)
                            .map_err(|e| invalid(key, format!("{name}: {e}")))?;
                        extra.contexts.insert(name.clone(), named);
                    }
                }
                "shm_size" => {
                    let bytes = match v {
                        serde_json::Value::Number(n) => n.as_i64().ok_or(()),
                        serde_json::Value::String(s) => {
                            stack_spec::units::parse_bytes(s).map_err(|_| ())
                        }
                        _ => Err(()),
                    };
                    match bytes {
                        Ok(b) if b > 0 => extra.shm_size = Some(b as u64),
                        _ => {
                            return Err(invalid(
                                key,
                                format!("{v}: expected a size such as 256m or 1g"),
                            ));
                        }
                    }
                }
                "cache_from" | "cache_to" => {
                    let export = key == "cache_to";
                    for entry in strings(key, v)? {
                        let dir =
                            local_cache_dir(&entry, export, None).map_err(|m| invalid(key, m))?;
                        if export {
                            extra.cache_to = Some(dir);
                        } else {
                            extra.cache_from.push(dir);
                        }
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
    // Named contexts: an image by its name, a directory by its files.
    for (name, named) in &opts.named_contexts {
        h.update(name.as_bytes());
        match named {
            crate::context::Named::Image(image) => h.update(image.as_bytes()),
            crate::context::Named::Dir(dir) => {
                let c = Context::open(dir, None)?;
                c.hash(
                    &Matched {
                        path: c.root().to_owned(),
                        rel: PathBuf::new(),
                    },
                    &mut h,
                )?;
            }
        }
    }
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
            net: Default::default(),
            source_date_epoch: None,
            secrets: BTreeMap::new(),
            defined_secrets: indexmap::IndexMap::from([(
                "tok".to_owned(),
                stack_spec::model::FileObject {
                    content: Some("s3cret".into()),
                    ..Default::default()
                },
            )]),
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
            refused(r#"{"build": {"context": "/ctx", "isolation": "hyperv"}}"#),
            "service \"web\": build.isolation is not supported by stack's builder yet"
        );
        assert!(
            refused(r#"{"build": {"context": "/ctx", "shm_size": "lots"}}"#)
                .contains("build.shm_size: \"lots\": expected a size")
        );
        assert!(
            refused(r#"{"build": {"context": "/ctx", "extra_hosts": ["gw:host-gateway"]}}"#)
                .contains("build.extra_hosts: gw: host-gateway is not provided")
        );
        let s = service(
            r#"{"build": {"context": "/ctx", "shm_size": "2m", "extra_hosts": ["a:10.0.0.1", "b=::1"]}}"#,
        );
        let o = options("p", "web", &s, &inv(dir.path())).unwrap();
        assert_eq!(o.shm_size, Some(2 * 1024 * 1024));
        assert_eq!(o.extra_hosts.len(), 2);
        assert_eq!(o.extra_hosts[1].1.to_string(), "::1");
        let s = service(
            r#"{"build": {"context": "/ctx", "additional_contexts": {"lib": "/x/lib", "base": "docker-image://busybox:1"}}}"#,
        );
        let o = options("p", "web", &s, &inv(dir.path())).unwrap();
        assert_eq!(
            o.named_contexts["lib"],
            crate::context::Named::Dir("/x/lib".into())
        );
        assert_eq!(
            o.named_contexts["base"],
            crate::context::Named::Image("busybox:1".into())
        );
        assert!(
            refused(
                r#"{"build": {"context": "/ctx", "additional_contexts": {"a": "https://h/x.git"}}}"#
            )
            .contains("build.additional_contexts: a: https://h/x.git: only local directories")
        );
        let s = service(r#"{"build": {"context": "/ctx", "extra_hosts": {"c": "10.0.0.3"}}}"#);
        assert_eq!(
            options("p", "web", &s, &inv(dir.path()))
                .unwrap()
                .extra_hosts[0]
                .0,
            "c"
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

        let s = service(
            r#"{"build": {"context": "/ctx", "secrets": ["tok", {"source": "tok", "target": "npm"}]}}"#,
        );
        let o = options("p", "web", &s, &inv(dir.path())).unwrap();
        assert_eq!(o.secrets["tok"], Secret::Value(b"s3cret".to_vec()));
        assert_eq!(o.secrets["npm"], Secret::Value(b"s3cret".to_vec()));
        assert!(
            refused(r#"{"build": {"context": "/ctx", "secrets": ["nope"]}}"#)
                .contains("build.secrets: \"nope\" is not a top-level secret")
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

    #[test]
    fn caches_are_local_directories_or_refused_naming_what() {
        assert_eq!(
            local_cache_dir("type=local,src=/c", false, None),
            Ok(PathBuf::from("/c"))
        );
        assert_eq!(
            local_cache_dir("type=local,dest=/c,mode=max", true, None),
            Ok(PathBuf::from("/c"))
        );
        let err = local_cache_dir("type=registry,ref=r/x:cache", false, None).unwrap_err();
        assert!(err.contains("only type=local,src=DIR"), "{err}");
        let err = local_cache_dir("user/app:cache", false, None).unwrap_err();
        assert!(err.contains("\"user/app:cache\""), "{err}");
        let err = local_cache_dir("type=local,src=rel", false, None).unwrap_err();
        assert!(err.contains("rel must be absolute"), "{err}");
        assert_eq!(
            local_cache_dir("type=local,src=rel", false, Some(Path::new("/w"))),
            Ok(PathBuf::from("/w/rel"))
        );
        let err = local_cache_dir("type=local,dest=/c,compression=zstd", true, None).unwrap_err();
        assert!(
            err.contains("\"compression=zstd\" is not supported"),
            "{err}"
        );
        let err = local_cache_dir("type=local,src=/c", true, None).unwrap_err();
        assert!(err.contains("\"src=/c\" is not supported"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let refused = options(
            "p",
            "web",
            &service(r#"{"build": {"context": "/ctx", "cache_to": ["type=inline"]}}"#),
            &inv(dir.path()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            refused.contains("build.cache_to: \"type=inline\": only type=local,dest=DIR"),
            "{refused}"
        );
    }
}
