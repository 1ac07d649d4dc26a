//! `stack image build` (a Dockerfile and its context, like `docker build`)
//! and `stack build` (the stack file's `build:` services): images into the
//! store, with BuildKit-style plain progress (`[2/5] RUN ...`, CACHED, the
//! time of each step).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use stack_build::dockerfile::RunNetwork;
use stack_build::secret::Secret;
use stack_build::{BuildOptions, Event};
use stack_image::reference::Reference;

use crate::cli::GlobalArgs;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Services to build (default: every service with `build:`).
    pub services: Vec<String>,
    /// Run every step, ignoring the step cache.
    #[arg(long)]
    pub no_cache: bool,
    /// A build argument for every service, `KEY=VALUE`, over the file's `args`.
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE` or `id=ID,env=VAR`.
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    pub secrets: Vec<String>,
    /// Print only the image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Push each built image that `image:` names to its registry.
    #[arg(long)]
    pub push: bool,
    /// How the build's steps are shown: plain lines (auto, plain; tty and
    /// json are warned about and shown plain too) or nothing but errors (quiet).
    #[arg(long, value_enum, value_name = "MODE")]
    pub progress: Option<crate::global_options::Progress>,
}

#[derive(Debug, Args)]
pub struct ImageBuildArgs {
    /// Name (and tag) of the image; repeat for several.
    #[arg(short, long = "tag")]
    pub tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// Build up to this stage.
    #[arg(long)]
    pub target: Option<String>,
    /// A build argument, `KEY=VALUE` (or `KEY` to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE` or `id=ID,env=VAR`.
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    pub secrets: Vec<String>,
    /// A named context, `NAME=DIR` or `NAME=docker-image://IMAGE`, read by
    /// `FROM NAME`, `COPY --from=NAME` and `RUN --mount=from=NAME`.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// A name for `RUN` steps' `/etc/hosts`, `HOST:IP`.
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_hosts: Vec<String>,
    /// The network of `RUN` steps that name none: default (a bridge with
    /// NAT made for the build), none or host.
    #[arg(long, value_name = "default|none|host", default_value = "default", value_parser = ["default", "none", "host"])]
    pub network: String,
    /// The size of `/dev/shm` in `RUN` steps (such as 256m).
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Run every step, ignoring the step cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Read an exported step cache into the cache first.
    #[arg(long = "cache-from", value_name = "type=local,src=DIR")]
    pub cache_from: Vec<String>,
    /// Export the build's steps and their layers as an OCI layout.
    #[arg(long = "cache-to", value_name = "type=local,dest=DIR")]
    pub cache_to: Option<String>,
    /// Print only the image id.
    #[arg(short, long)]
    pub quiet: bool,
    /// The build context directory.
    pub context: PathBuf,
}

pub fn image_build(global: &GlobalArgs, a: ImageBuildArgs) -> anyhow::Result<ExitCode> {
    let mut tags = Vec::new();
    for t in &a.tags {
        tags.push(Reference::parse(t).with_context(|| format!("--tag {t}"))?);
    }
    let opts = BuildOptions {
        root: global.root.clone(),
        context: a.context.clone(),
        dockerfile: a.file.clone(),
        tags,
        target: a.target.clone(),
        build_args: build_args(&a.build_args),
        labels: BTreeMap::new(),
        no_cache: a.no_cache,
        network: match a.network.as_str() {
            "none" => RunNetwork::None,
            "host" => RunNetwork::Host,
            _ => RunNetwork::Default,
        },
        net: net_config(global)?,
        cache_from: a
            .cache_from
            .iter()
            .map(|c| cache_dir(c, false))
            .collect::<anyhow::Result<_>>()?,
        cache_to: a
            .cache_to
            .as_deref()
            .map(|c| cache_dir(c, true))
            .transpose()?,
        init_binary: crate::helper::init_binary()?,
        source_date_epoch: source_date_epoch()?,
        secrets: secrets(&a.secrets)?,
        extra_hosts: add_hosts(&a.add_hosts)?,
        named_contexts: build_contexts(&a.build_contexts)?,
        shm_size: match &a.shm_size {
            None => None,
            Some(s) => Some(
                stack_spec::units::parse_bytes(s)
                    .ok()
                    .filter(|b| *b > 0)
                    .with_context(|| format!("--shm-size {s}: expected a size such as 256m"))?
                    as u64,
            ),
        },
    };
    run_build(&opts, a.quiet)
}

/// `stack build`: each selected service's `build:` section as a build.
pub fn run(global: &GlobalArgs, a: BuildArgs) -> anyhow::Result<ExitCode> {
    use crate::global_options::Progress;
    let Some(loaded) = a.project.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    if let Some(p @ (Progress::Tty | Progress::Json)) = a.progress {
        eprintln!("warning: --progress {p:?}: build steps are shown as plain lines");
    }
    let quiet = a.quiet || a.progress == Some(Progress::Quiet);
    let project = &loaded.project;
    for name in &a.services {
        anyhow::ensure!(
            project.services.contains_key(name),
            "no such service: {name}"
        );
    }
    let inv = stack_build::service::Invocation {
        root: global.root.clone(),
        extra_args: build_args(&a.build_args),
        no_cache: a.no_cache,
        init_binary: crate::helper::init_binary()?,
        net: net_config(global)?,
        source_date_epoch: source_date_epoch()?,
        secrets: secrets(&a.secrets)?,
        defined_secrets: project.secrets.clone(),
    };
    for (name, service) in &project.services {
        if service.build.is_none() || (!a.services.is_empty() && !a.services.contains(name)) {
            continue;
        }
        let opts = stack_build::service::options(&project.name, name, service, &inv)?;
        let image = stack_build::service::image_name(&project.name, name, service)
            .unwrap_or_else(|| opts.tags[0].to_string());
        if !quiet {
            eprintln!("building {name} as {image}");
        }
        // Taken before building, as `up` does: `up --build` then knows
        // this image is current.
        let fingerprint = stack_build::service::fingerprint(&opts).ok();
        run_build(&opts, quiet).with_context(|| format!("service {name:?}"))?;
        if let Some(f) = fingerprint {
            stack_build::service::record_built(&global.root, &image, &f)
                .with_context(|| format!("recording the build of {image}"))?;
        }
        if a.push
            && let Some(target) = &service.image
        {
            super::transfer::line(quiet, name, "Pushing");
            let store = stack_image::Store::open(&global.root)?;
            let reference = super::transfer::reference(target)?;
            super::transfer::runtime()?
                .block_on(store.push(&reference, &super::transfer::options()?))
                .with_context(|| format!("service {name:?}: pushing {target}"))?;
            super::transfer::line(quiet, name, "Pushed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--build-arg` values; a bare KEY comes from the environment, or is left
/// out when unset (Docker's rule).
fn build_args(list: &[String]) -> BTreeMap<String, String> {
    let mut build_args = BTreeMap::new();
    for kv in list {
        match kv.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_owned(), v.to_owned());
            }
            None => {
                // Docker takes a bare KEY from the environment, or leaves it out.
                if let Ok(v) = std::env::var(kv) {
                    build_args.insert(kv.clone(), v);
                }
            }
        }
    }
    build_args
}

/// `--build-context NAME=VALUE` flags; a relative directory is taken from
/// the current one.
fn build_contexts(
    list: &[String],
) -> anyhow::Result<BTreeMap<String, stack_build::context::Named>> {
    let mut out = BTreeMap::new();
    for flag in list {
        let (name, value) = flag
            .split_once('=')
            .with_context(|| format!("--build-context {flag}: expected NAME=VALUE"))?;
        let value = if value.contains("://") || Path::new(value).is_absolute() {
            value.to_owned()
        } else {
            std::path::absolute(value)
                .with_context(|| format!("--build-context {flag}"))?
                .display()
                .to_string()
        };
        let named = stack_build::context::Named::parse(&value)
            .map_err(|e| anyhow::anyhow!("--build-context {name}: {e}"))?;
        out.insert(name.to_owned(), named);
    }
    Ok(out)
}

/// `--add-host HOST:IP` flags, as `docker build` takes them.
fn add_hosts(list: &[String]) -> anyhow::Result<Vec<(String, std::net::IpAddr)>> {
    let mut out = Vec::new();
    for entry in list {
        let (host, ip) = entry
            .split_once('=')
            .or_else(|| entry.split_once(':'))
            .with_context(|| format!("--add-host {entry}: expected HOST:IP"))?;
        match stack_spec::settings::extra_host(&format!("{host}={ip}")) {
            Ok(Some(pair)) => out.push(pair),
            Ok(None) => anyhow::bail!("--add-host {entry}: host-gateway is not provided to builds"),
            Err(e) => anyhow::bail!("--add-host {entry}: {e}"),
        }
    }
    Ok(out)
}

/// `--secret` flags, env sources read from this process's environment.
fn secrets(list: &[String]) -> anyhow::Result<BTreeMap<String, Secret>> {
    let mut out = BTreeMap::new();
    for flag in list {
        let (id, secret) = stack_build::secret::parse_flag(flag, |v| std::env::var(v).ok())?;
        out.insert(id, secret);
    }
    Ok(out)
}

/// `--cache-from` / `--cache-to`: a local directory, relative to here.
fn cache_dir(entry: &str, export: bool) -> anyhow::Result<PathBuf> {
    let here = std::env::current_dir().context("the working directory")?;
    stack_build::service::local_cache_dir(entry, export, Some(&here))
        .map_err(|m| anyhow::anyhow!("--cache-{}: {m}", if export { "to" } else { "from" }))
}

/// The build network's run directory and subnet pool, as the engine's
/// builds have them (`--run-dir`, `STACK_BUILD_SUBNET_POOL`).
fn net_config(global: &GlobalArgs) -> anyhow::Result<stack_build::network::NetConfig> {
    let host = crate::client::host_config(global)?;
    Ok(stack_build::network::NetConfig {
        run_dir: host.run_dir,
        options: host.build_net,
    })
}

fn source_date_epoch() -> anyhow::Result<Option<u64>> {
    Ok(match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => Some(
            v.parse::<u64>()
                .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?,
        ),
        _ => None,
    })
}

fn run_build(opts: &BuildOptions, quiet: bool) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let mut progress = |e: Event<'_>| {
        if quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = match e {
            Event::Step {
                n,
                total,
                stage,
                text,
            } => match stage {
                Some(s) => writeln!(err, "[{s} {n}/{total}] {text}"),
                None => writeln!(err, "[{n}/{total}] {text}"),
            },
            Event::Cached { n } => writeln!(err, "#{n} CACHED"),
            Event::Done { n, elapsed } => {
                writeln!(err, "#{n} DONE {:.3}s", elapsed.as_secs_f64())
            }
        };
    };
    let built = stack_build::build(opts, &mut progress)?;
    if quiet {
        println!("{}", built.id);
    } else {
        eprintln!(
            "built {} in {:.3}s ({} steps run, {} cached)",
            built.id.short(),
            started.elapsed().as_secs_f64(),
            built.steps_run,
            built.steps_cached
        );
        println!("{}", built.id);
    }
    Ok(ExitCode::SUCCESS)
}
