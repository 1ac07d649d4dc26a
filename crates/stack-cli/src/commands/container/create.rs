//! From `container run` flags to the compose [`Service`] a stack file would
//! declare, so that the engine makes the container exactly as it does for a
//! stack file. Everything is checked here, before anything is made.

use anyhow::{Context, bail};
use indexmap::IndexMap;
use stack_engine::spec;
use stack_spec::units::{parse_bytes, parse_duration};
use stack_spec::{
    ByteSize, GoDuration, Healthcheck, MountType, NetworkMode, Service, ServiceVolume,
};

use super::names::NetworkKind;
use super::run::RunArgs;

/// Where the runtime keeps its state (the engine's containers share it).
pub fn runtime_root(root: &std::path::Path) -> std::path::PathBuf {
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
    // On the host's network the container shows the host's name, as it
    // would share its UTS namespace in Docker.
    let hostname = match (&args.hostname, args.network) {
        (None, NetworkKind::Host) => Some(
            nix::unistd::gethostname()
                .context("cannot read the host name")?
                .to_string_lossy()
                .into_owned(),
        ),
        (given, _) => given.clone(),
    };
    let mut service = Service {
        image: Some(args.image.clone()),
        user: args.user.clone(),
        hostname,
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
    service.entrypoint = args.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            Vec::new()
        } else {
            vec![e.clone()]
        }
    });
    service.command = (!args.command.is_empty()).then(|| args.command.clone());
    service.restart = args.restart;
    service.healthcheck = healthcheck(args)?;
    // Checked here so that a bad name fails before anything is made.
    spec::capabilities(&service)?;
    Ok(service)
}

/// `--health-*` as a stack file's `healthcheck:`; `None` leaves the
/// image's.
fn healthcheck(args: &RunArgs) -> anyhow::Result<Option<Healthcheck>> {
    let duration = |flag: &str, value: &Option<String>| -> anyhow::Result<Option<GoDuration>> {
        value
            .as_deref()
            .map(|v| {
                parse_duration(v)
                    .map(GoDuration)
                    .map_err(|e| anyhow::anyhow!("invalid --{flag} {v:?}: {e}"))
            })
            .transpose()
    };
    let check = Healthcheck {
        test: args
            .health_cmd
            .as_ref()
            .map(|c| vec!["CMD-SHELL".to_owned(), c.clone()]),
        interval: duration("health-interval", &args.health_interval)?,
        timeout: duration("health-timeout", &args.health_timeout)?,
        retries: args.health_retries,
        start_period: duration("health-start-period", &args.health_start_period)?,
        start_interval: duration("health-start-interval", &args.health_start_interval)?,
        disable: args.no_healthcheck,
    };
    if args.no_healthcheck && check.test.is_some() {
        bail!("conflicting options: --no-healthcheck and --health-cmd");
    }
    Ok((check != Healthcheck::default()).then_some(check))
}
