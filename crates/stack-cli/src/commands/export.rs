//! `stack export kubernetes|swarm`: the loaded stack as Kubernetes manifests
//! or a compose file for `docker stack deploy`, with a warning on standard
//! error for every key the target cannot carry as written. `stack export
//! SERVICE` is compose's: the container's root filesystem as a tar archive.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use stack_export::{Warning, kubernetes, swarm};

use crate::cli::GlobalArgs;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub command: Option<ExportCommand>,
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Write the archive to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Which replica of the service.
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// The service whose container's filesystem is archived.
    pub service: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Kubernetes manifests (Deployments, Services, claims, NetworkPolicies ...).
    Kubernetes(KubernetesArgs),
    /// A compose file `docker stack deploy` accepts.
    Swarm(SwarmArgs),
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Publish {
    #[default]
    Nodeport,
    Loadbalancer,
}

#[derive(Debug, Args)]
pub struct KubernetesArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Write one file per object into DIR (replacing an earlier export
    /// there); `-` or nothing prints one stream.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Put every object in this namespace.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The Kubernetes version to write for (1.25 or later).
    #[arg(long, value_name = "1.NN", default_value = "1.25")]
    pub k8s_version: String,
    /// The Service type published ports get.
    #[arg(long, value_enum, default_value_t = Publish::Nodeport)]
    pub publish: Publish,
    /// Claim size of a volume without a `stack.size` label.
    #[arg(long, value_name = "SIZE", default_value = kubernetes::DEFAULT_VOLUME_SIZE)]
    pub volume_size: String,
}

#[derive(Debug, Args)]
pub struct SwarmArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Write the file here; `-` or nothing prints it.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(global: &GlobalArgs, args: ExportArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(ExportCommand::Kubernetes(args)) => kube(args),
        Some(ExportCommand::Swarm(args)) => swarm_file(args),
        None => container_fs(global, args),
    }
}

/// `export SERVICE`: the container's overlay (not its volumes, bind mounts
/// or `/proc`), as `docker export` writes it.
fn container_fs(global: &GlobalArgs, args: ExportArgs) -> anyhow::Result<ExitCode> {
    use std::io::{IsTerminal, Write};
    let Some(service) = &args.service else {
        bail!("name a service, or `kubernetes` or `swarm`");
    };
    let Some(project) = crate::client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let record = stack_engine::api::Records::new(&global.root)
        .containers(&project)?
        .into_iter()
        .find(|r| r.service == *service && r.number == args.index && !r.one_off)
        .with_context(|| {
            format!(
                "service {service} has no container number {} in project {project}",
                args.index
            )
        })?;
    let container = stack_runtime::Container::load(
        &stack_fs::Layout::of_root(&global.root).runtime(),
        &record.id,
    )
    .with_context(|| format!("container {}", record.name))?;
    let tree = stack_engine::api::Tree::overlay(&container.state.rootfs, &record.name)?;
    if is_stdout(&args.output) {
        if std::io::stdout().is_terminal() {
            bail!("refusing to write an archive to a terminal: use -o FILE or a redirection");
        }
        let mut out = std::io::stdout().lock();
        tree.archive("/", None, false, &mut out)?;
        out.flush()?;
    } else if let Some(path) = &args.output {
        // Written beside, renamed into place: no half archive under the name.
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("creating a file in {}", dir.display()))?;
        tree.archive(
            "/",
            None,
            false,
            &mut std::io::BufWriter::new(tmp.as_file_mut()),
        )?;
        tmp.persist(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_warnings(warnings: &[Warning]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn is_stdout(p: &Option<PathBuf>) -> bool {
    p.as_ref().is_none_or(|p| p.as_os_str() == "-")
}

fn kube(args: KubernetesArgs) -> anyhow::Result<ExitCode> {
    let version = kubernetes::parse_version(&args.k8s_version)?;
    if !stack_export::kubernetes::is_size(&args.volume_size) {
        bail!(
            "--volume-size: {:?} is not a size such as 10Gi or 500M",
            args.volume_size
        );
    }
    let Some(loaded) = args.project.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    let opts = kubernetes::Options {
        namespace: args.namespace,
        publish_as: match args.publish {
            Publish::Nodeport => kubernetes::PublishAs::NodePort,
            Publish::Loadbalancer => kubernetes::PublishAs::LoadBalancer,
        },
        default_volume_size: args.volume_size,
        version,
        environment: std::env::vars().collect(),
    };
    let manifests = kubernetes::export(&loaded.project, &opts)?;
    print_warnings(&manifests.warnings);
    if is_stdout(&args.output) {
        print!("{}", manifests.to_yaml()?);
    } else if let Some(dir) = &args.output {
        write_dir(dir, &manifests.files()?)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn swarm_file(args: SwarmArgs) -> anyhow::Result<ExitCode> {
    let Some(loaded) = args.project.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    let file = swarm::export(&loaded.project)?;
    print_warnings(&file.warnings);
    let yaml = file.to_yaml()?;
    match &args.output {
        Some(p) if p.as_os_str() != "-" => stack_fs::write(p, yaml.as_bytes())
            .with_context(|| format!("writing {}", p.display()))?,
        _ => print!("{yaml}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Write the files into a fresh directory next to `dir`, then put it in
/// place of `dir`: a reader sees the old export or the new one, never a
/// mix, and no file of a removed service stays behind. An existing `dir`
/// is replaced only when it holds nothing but YAML files.
fn write_dir(dir: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    if dir.exists() {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "yaml") || !path.is_file() {
                bail!(
                    "{} holds {}, which is not an exported manifest; choose an empty or new directory",
                    dir.display(),
                    path.display()
                );
            }
        }
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for (name, content) in files {
        std::fs::write(tmp.join(name), content)
            .with_context(|| format!("writing {}", tmp.join(name).display()))?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).with_context(|| format!("renaming into {}", dir.display()))?;
    Ok(())
}
