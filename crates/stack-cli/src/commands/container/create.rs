//! From `container run` flags to a container that is ready to start: the
//! flags become a compose [`Service`] so that the engine's spec builder turns
//! them into an OCI spec exactly as it does for a stack file; then the image
//! (pulled when missing), the overlay root, the network and the record.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indexmap::IndexMap;
use oci_spec::runtime::Spec;
use stack_engine::spec::{self, Bind, SpecInput};
use stack_image::merge::{ServiceProcess, resolve_process};
use stack_image::model::ImageConfig;
use stack_image::progress::ProgressMode;
use stack_image::pull::PullOptions;
use stack_image::reference::Reference;
use stack_image::store::{ImageId, Store};
use stack_net::{NetworkManager, PortMapping};
use stack_spec::units::parse_bytes;
use stack_spec::{ByteSize, MountType, NetworkMode, Service, ServiceVolume};

use super::net;
use super::record::{MountRecord, NetworkKind, Record, Records, generated_name, now_ms};
use super::remove;
use super::run::RunArgs;
use crate::cli::GlobalArgs;
use crate::client;

/// A created container: its record and spec, and the ports still to publish
/// (by whichever process stays alive with the container).
pub struct Prepared {
    pub record: Record,
    pub spec: Spec,
    pub mappings: Vec<PortMapping>,
}

/// Where the runtime keeps its state (the engine's containers share it).
pub fn runtime_root(root: &Path) -> PathBuf {
    root.join("runtime")
}

/// `-e KEY=VALUE`, or `-e KEY` for the caller's value (dropped when unset).
fn env_entry(raw: &str) -> Option<String> {
    if raw.contains('=') {
        return Some(raw.to_owned());
    }
    std::env::var(raw).ok().map(|v| format!("{raw}={v}"))
}

/// `-v SRC:DST[:ro|rw]`: an absolute (or `./`-relative) SRC is a host path,
/// anything else a named volume under the root.
fn volume(raw: &str) -> anyhow::Result<ServiceVolume> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (source, target, read_only) = match parts.as_slice() {
        [s, t] => (*s, *t, false),
        [s, t, "ro"] => (*s, *t, true),
        [s, t, "rw"] => (*s, *t, false),
        [_, _, mode] => bail!("invalid -v {raw:?}: unknown mode {mode:?} (expected ro or rw)"),
        _ => bail!("invalid -v {raw:?}: expected SRC:DST[:ro|rw]"),
    };
    if !target.starts_with('/') {
        bail!("invalid -v {raw:?}: the container path {target:?} must be absolute");
    }
    if source.is_empty() {
        bail!("invalid -v {raw:?}: empty source");
    }
    let host = source.starts_with('/') || source.starts_with('.');
    let source = if host {
        let cwd = std::env::current_dir().context("cannot determine the current directory")?;
        cwd.join(source).to_string_lossy().into_owned()
    } else {
        source.to_owned()
    };
    Ok(ServiceVolume {
        kind: if host {
            MountType::Bind
        } else {
            MountType::Volume
        },
        source: Some(source),
        target: target.to_owned(),
        read_only,
        consistency: None,
        bind: None,
        volume: None,
        tmpfs: None,
        image: None,
    })
}

/// The `docker run` flags as the service a stack file would declare.
pub fn service_of(args: &RunArgs) -> anyhow::Result<Service> {
    let mut service = Service {
        image: Some(args.image.clone()),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        read_only: args.read_only,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        tty: args.tty,
        stdin_open: args.interactive,
        cpus: args.cpus,
        pids_limit: args.pids_limit,
        privileged: args.privileged,
        working_dir: args.workdir.clone(),
        network_mode: Some(match args.network {
            NetworkKind::Bridge => NetworkMode::Bridge,
            NetworkKind::Host => NetworkMode::Host,
            NetworkKind::None => NetworkMode::None,
        }),
        ..Default::default()
    };
    if let Some(m) = &args.memory {
        let bytes = parse_bytes(m).map_err(|e| anyhow::anyhow!("invalid --memory {m:?}: {e}"))?;
        if bytes < 6 * 1024 * 1024 {
            bail!("invalid --memory {m:?}: the minimum is 6MB");
        }
        service.mem_limit = Some(ByteSize(bytes));
    }
    if let Some(c) = args.cpus
        && (!c.is_finite() || c <= 0.0)
    {
        bail!("invalid --cpus {c}: must be a positive number");
    }
    if let Some(w) = &args.workdir
        && !w.starts_with('/')
    {
        bail!("invalid -w {w:?}: the working directory must be an absolute path");
    }
    if let Some(e) = args.env.iter().find(|e| e.is_empty() || e.starts_with('=')) {
        bail!("invalid -e {e:?}: the variable has no name");
    }
    let mut environment = IndexMap::new();
    for e in args.env.iter().filter_map(|e| env_entry(e)) {
        let (k, v) = e.split_once('=').expect("entries have a =");
        environment.insert(k.to_owned(), Some(v.to_owned()));
    }
    service.environment = environment;
    for p in &args.publish {
        let ports = stack_spec::ports::parse_port_spec(p)
            .map_err(|e| anyhow::anyhow!("invalid -p {p:?}: {e}"))?;
        service.ports.extend(ports);
    }
    if !service.ports.is_empty() && args.network != NetworkKind::Bridge {
        bail!(
            "-p needs the bridge network: with --network {} nothing can be published",
            args.network.as_str()
        );
    }
    for v in &args.volumes {
        service.volumes.push(volume(v)?);
    }
    // Checked here so that a bad name fails before anything is made.
    spec::capabilities(&service)?;
    Ok(service)
}

/// The image's stop signal; SIGTERM when it names none. One it names
/// that is no signal is an error, as in Docker, not SIGTERM.
fn signal_number(name: Option<&str>) -> anyhow::Result<i32> {
    match name {
        None => Ok(libc::SIGTERM),
        Some(n) => stack_spec::signal::number(n).context("the image's StopSignal"),
    }
}

/// The image's id and config, pulled first when the store lacks it.
pub fn image(
    global: &GlobalArgs,
    images: &Store,
    name: &str,
) -> anyhow::Result<(ImageId, ImageConfig)> {
    let id = match images.resolve(name) {
        Ok(id) => id,
        Err(stack_image::store::StoreError::NotFound(_)) => {
            let reference = Reference::parse(name)?;
            eprintln!("Unable to find image '{}' locally", reference.familiar());
            let options = PullOptions {
                registries: client::host_config(global)?.registries,
                progress: ProgressMode::Auto,
                ..Default::default()
            };
            let rt = net::runtime()?;
            rt.block_on(images.pull(&reference, &options))
                .with_context(|| format!("pulling {name}"))?
                .id
        }
        Err(e) => return Err(e).with_context(|| format!("image {name}")),
    };
    let config = images
        .config(&id)
        .with_context(|| format!("image {name}"))?;
    Ok((id, config.config))
}

/// Validates, then makes everything but the running process. On failure,
/// whatever was made is taken away again.
pub fn prepare(
    global: &GlobalArgs,
    args: &RunArgs,
    rt: &tokio::runtime::Runtime,
    manager: &NetworkManager,
) -> anyhow::Result<Prepared> {
    let service = service_of(args)?;
    let mappings = stack_engine::host::port_mappings(&service)?;
    let images = Store::open(&global.root)
        .with_context(|| format!("opening the image store under {}", global.root.display()))?;
    let (image_id, image_config) = image(global, &images, &args.image)?;
    let process = resolve_process(
        &image_config,
        &ServiceProcess {
            entrypoint: args.entrypoint.as_ref().map(|e| {
                if e.is_empty() {
                    Vec::new()
                } else {
                    vec![e.clone()]
                }
            }),
            command: (!args.command.is_empty()).then(|| args.command.clone()),
            env: service
                .environment
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                .collect(),
            working_dir: args.workdir.clone(),
            user: args.user.clone(),
        },
    )?;

    let records = Records::new(&global.root);
    let id = stack_engine::store::new_container_id().context("cannot generate a container id")?;
    let name = match &args.name {
        Some(n) => {
            let valid = !n.is_empty()
                && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                bail!("invalid container name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
            }
            n.clone()
        }
        None => generated_name(&id),
    };
    let hostname = match (&args.hostname, args.network) {
        (Some(h), _) => h.clone(),
        (None, NetworkKind::Host) => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| id[..12].to_owned()),
        (None, _) => id[..12].to_owned(),
    };
    records.claim_name(&name, &id)?;
    let record = Record {
        id: id.clone(),
        name,
        image: args.image.clone(),
        image_id: image_id.as_str().to_owned(),
        entrypoint: match &args.entrypoint {
            Some(e) if e.is_empty() => Vec::new(),
            Some(e) => vec![e.clone()],
            None => image_config.entrypoint.clone().unwrap_or_default(),
        },
        args: process.args.clone(),
        env: process.env.clone(),
        user: process.user.clone(),
        working_dir: process.working_dir.clone(),
        hostname: hostname.clone(),
        tty: args.tty,
        interactive: args.interactive,
        detached: args.detach,
        auto_remove: args.rm,
        network: args.network,
        port_specs: args.publish.clone(),
        mounts: service
            .volumes
            .iter()
            .map(|v| MountRecord {
                source: v.source.clone().unwrap_or_default(),
                target: v.target.clone(),
                read_only: v.read_only,
                kind: if v.kind == MountType::Bind {
                    "bind".into()
                } else {
                    "volume".into()
                },
            })
            .collect(),
        memory: service.mem_limit.map(|m| m.bytes()),
        nano_cpus: args.cpus.map(|c| (c * 1e9).round() as i64),
        pids_limit: args.pids_limit,
        read_only: args.read_only,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        stop_signal: signal_number(image_config.stop_signal.as_deref())?,
        created_ms: now_ms(),
        started_ms: None,
        finished_ms: None,
        pid: None,
        pid_start_time: None,
        monitor_pid: None,
        monitor_start_time: None,
        exit_code: None,
        oom_killed: false,
        error: None,
    };
    // The record goes first, so that whatever follows can be found and
    // removed after a failure or a crash.
    let result = records.save(&record, true).and_then(|()| {
        build(
            global, &service, &process, &images, &image_id, &record, rt, manager,
        )
    });
    match result {
        Ok(spec) => Ok(Prepared {
            record,
            spec,
            mappings,
        }),
        Err(e) => {
            if let Err(undo) = remove::teardown(global, &record, rt, manager) {
                eprintln!("warning: cleaning up after the failure: {undo:#}");
            }
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    global: &GlobalArgs,
    service: &Service,
    process: &stack_image::merge::ResolvedProcess,
    images: &Store,
    image_id: &ImageId,
    record: &Record,
    rt: &tokio::runtime::Runtime,
    manager: &NetworkManager,
) -> anyhow::Result<Spec> {
    let dir = Records::new(&global.root).dir(&record.id);
    let rootfs = images
        .prepare_rootfs(image_id, &record.id)
        .with_context(|| format!("mounting the root filesystem of {}", record.name))?;
    let (netns, files) = match record.network {
        NetworkKind::Bridge => {
            let a = rt.block_on(net::attach_bridge(
                manager,
                &global.root,
                &record.id,
                &record.name,
                &record.hostname,
            ))?;
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            (
                Some(a.netns),
                vec![
                    ("resolv.conf", net::resolv_conf(&host)),
                    ("hosts", a.hosts),
                    ("hostname", a.hostname),
                ],
            )
        }
        NetworkKind::None => {
            let a = rt.block_on(net::attach_none(manager, &global.root, &record.id))?;
            (
                Some(a.netns),
                vec![
                    ("hosts", a.hosts),
                    ("hostname", format!("{}\n", record.hostname)),
                ],
            )
        }
        NetworkKind::Host => {
            let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
            (
                None,
                vec![
                    ("resolv.conf", read("/etc/resolv.conf")),
                    ("hosts", read("/etc/hosts")),
                    ("hostname", format!("{}\n", record.hostname)),
                ],
            )
        }
    };
    let mut binds = Vec::new();
    for (file, content) in files {
        let path = dir.join(file);
        std::fs::write(&path, content.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        binds.push(Bind {
            source: path,
            target: format!("/etc/{file}"),
            read_only: false,
        });
    }
    for v in &service.volumes {
        // Docker makes a missing host directory of a bind mount.
        if v.kind == MountType::Bind
            && let Some(src) = &v.source
            && !Path::new(src).exists()
        {
            std::fs::create_dir_all(src).with_context(|| format!("cannot create {src}"))?;
        }
    }
    let read = |p: &str| std::fs::read_to_string(rootfs.path.join(p)).unwrap_or_default();
    let (passwd, group) = (read("etc/passwd"), read("etc/group"));
    let volumes = global.root.join("volumes");
    let volume_dir = |source: Option<&str>, _: &str| -> Option<PathBuf> {
        let d = volumes.join(source?).join("_data");
        std::fs::create_dir_all(&d).ok()?;
        Some(d)
    };
    let spec = spec::build(&SpecInput {
        service,
        process,
        rootfs: &rootfs.path,
        hostname: &record.hostname,
        netns: netns.as_deref(),
        binds,
        cgroup_path: format!("/stack/containers/{}", record.id),
        passwd: &passwd,
        group: &group,
        volume_dir: &volume_dir,
        device: &|_| None,
    })?;
    let mut value = serde_json::to_value(&spec)?;
    // Docker's open-files limit, but no more than this host lets a process
    // have (raising a hard limit would fail).
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        && let Some(limits) = value["process"]["rlimits"].as_array_mut()
    {
        for l in limits.iter_mut().filter(|l| l["type"] == "RLIMIT_NOFILE") {
            for key in ["soft", "hard"] {
                if l[key].as_u64().is_some_and(|v| v > hard) {
                    l[key] = serde_json::json!(hard);
                }
            }
        }
    }
    if record.tty
        && let Some((rows, cols)) = crate::terminal::known_size()
    {
        value["process"]["consoleSize"] = serde_json::json!({"height": rows, "width": cols});
    }
    let spec: Spec = serde_json::from_value(value)?;
    let path = dir.join("config.json");
    super::record::replace(&path, &serde_json::to_vec(&spec)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(spec)
}

/// The spec written by [`prepare`], for the process that starts it.
pub fn load_spec(root: &Path, id: &str) -> anyhow::Result<Spec> {
    let path = Records::new(root).dir(id).join("config.json");
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("corrupt spec {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse_binds_and_named_volumes() {
        let v = volume("/srv/data:/data:ro").unwrap();
        assert_eq!(v.kind, MountType::Bind);
        assert_eq!(v.source.as_deref(), Some("/srv/data"));
        assert!(v.read_only);
        let v = volume("cache:/cache").unwrap();
        assert_eq!(v.kind, MountType::Volume);
        assert!(!v.read_only);
        for bad in ["/a", "/a:b", "/a:/b:rx", ":/b"] {
            assert!(volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(signal_number(None).unwrap(), libc::SIGTERM);
        assert_eq!(signal_number(Some("SIGQUIT")).unwrap(), libc::SIGQUIT);
        assert_eq!(signal_number(Some("usr1")).unwrap(), libc::SIGUSR1);
        assert_eq!(signal_number(Some("9")).unwrap(), 9);
        let err = signal_number(Some("NOPE")).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "the image's StopSignal: invalid signal \"NOPE\""
        );
    }
}
