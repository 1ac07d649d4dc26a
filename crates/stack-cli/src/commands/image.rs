//! `stack image ...`: the image store from the command line.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use stack_image::model::Platform;
use stack_image::progress::ProgressMode;
use stack_image::pull::PullOptions;
use stack_image::reference::Reference;
use stack_image::registry_config::RegistriesConfig;
use stack_image::store::Store;

use crate::cli::GlobalArgs;

/// `println!` that stops quietly when stdout is closed (`stack image ls | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Load images from a `docker save` or OCI layout archive (plain, gzip or zstd).
    Load(LoadArgs),
    /// List images.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Show an image's details and configuration as JSON.
    Inspect(InspectArgs),
    /// Remove images (untag only when other tags remain).
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused images and their blobs and layers.
    Prune(PruneArgs),
    /// Give an image another name.
    Tag(TagArgs),
    /// Build an image from a Dockerfile.
    Build(Box<super::build::ImageBuildArgs>),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image reference, e.g. `busybox`, `127.0.0.1:5000/app:1`, `name@sha256:...`.
    pub image: String,
    /// Platform to pick from a multi-platform image (`os/arch[/variant]`).
    #[arg(long)]
    pub platform: Option<String>,
    /// No progress output; print only the image id.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Archive to read; standard input when omitted or `-`.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only image ids.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Accepted for symmetry; inspect always prints JSON.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just untagged ones.
    #[arg(short, long)]
    pub all: bool,
    /// Accepted for compatibility; prune never asks.
    #[arg(short, long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

pub fn run(global: &GlobalArgs, cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    let store = Store::open(&global.root)
        .with_context(|| format!("opening the image store under {}", global.root.display()))?;
    match cmd {
        ImageCommand::Pull(a) => pull(&store, a),
        ImageCommand::Load(a) => load(&store, a),
        ImageCommand::Ls(a) => ls(&store, a),
        ImageCommand::Inspect(a) => inspect(&store, a),
        ImageCommand::Rm(a) => rm(&store, a),
        ImageCommand::Prune(a) => prune(&store, a),
        ImageCommand::Build(a) => super::build::image_build(global, *a),
        ImageCommand::Tag(a) => {
            let target = Reference::parse(&a.target)?;
            store.tag(&a.source, &target)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn pull(store: &Store, a: PullArgs) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&a.image)?;
    let platform = match &a.platform {
        Some(p) => Some(
            Platform::parse(p)
                .with_context(|| format!("invalid --platform {p:?}: expected os/arch[/variant]"))?,
        ),
        None => None,
    };
    let opts = PullOptions {
        platform,
        registries: RegistriesConfig::from_env()?,
        progress: if a.quiet || a.format == Format::Json {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        },
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(store.pull(&reference, &opts))?;
    match a.format {
        Format::Json => out!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table if a.quiet => out!("{}", report.id),
        Format::Table => {
            out!(
                "{}: {} ({} blobs, {} downloaded)",
                reference.familiar(),
                report.id,
                report.blobs_fetched,
                crate::table::human_size(report.bytes_fetched)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load(store: &Store, a: LoadArgs) -> anyhow::Result<ExitCode> {
    let loaded = match a.input.as_deref() {
        None => store.load_reader(std::io::stdin().lock(), std::path::Path::new("<stdin>"))?,
        Some(p) if p.as_os_str() == "-" => {
            store.load_reader(std::io::stdin().lock(), std::path::Path::new("<stdin>"))?
        }
        Some(p) => store.load_archive(p)?,
    };
    match a.format {
        Format::Json => out!("{}", serde_json::to_string_pretty(&loaded)?),
        Format::Table => {
            for img in &loaded {
                if a.quiet {
                    out!("{}", img.id);
                } else if img.tags.is_empty() {
                    out!("Loaded image ID: {}", img.id);
                } else {
                    for t in &img.tags {
                        out!("Loaded image: {t}");
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ls(store: &Store, a: LsArgs) -> anyhow::Result<ExitCode> {
    let mut images = store.list()?;
    images.sort_by(|x, y| y.created.cmp(&x.created).then(x.id.cmp(&y.id)));
    if a.format == Format::Json {
        out!("{}", serde_json::to_string_pretty(&images)?);
        return Ok(ExitCode::SUCCESS);
    }
    if a.quiet {
        for i in &images {
            out!("{}", i.id.short());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![[
        "REPOSITORY".to_owned(),
        "TAG".into(),
        "IMAGE ID".into(),
        "CREATED".into(),
        "SIZE".into(),
    ]];
    for i in &images {
        let created = i
            .created
            .clone()
            .unwrap_or_default()
            .chars()
            .take(19)
            .collect::<String>();
        let names: Vec<(String, String)> = if i.repo_tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            i.repo_tags
                .iter()
                .map(
                    |t| match t.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
                        Some((r, tag)) => (r.to_owned(), tag.to_owned()),
                        None => (t.clone(), "<none>".into()),
                    },
                )
                .collect()
        };
        for (repo, tag) in names {
            rows.push([
                repo,
                tag,
                i.id.short().to_owned(),
                created.clone(),
                crate::table::human_size(i.size),
            ]);
        }
    }
    crate::table::print(&rows);
    Ok(ExitCode::SUCCESS)
}

fn inspect(store: &Store, a: InspectArgs) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    for name in &a.images {
        out.push(store.inspect(name)?);
    }
    out!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn rm(store: &Store, a: RmArgs) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for name in &a.images {
        match store.remove(name) {
            Ok(Some(id)) => out!("Deleted: {id}"),
            Ok(None) => out!("Untagged: {name}"),
            Err(e) => {
                eprintln!("error: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

fn prune(store: &Store, a: PruneArgs) -> anyhow::Result<ExitCode> {
    // The engine's containers keep their root filesystems mounted through the
    // store, which protects their images; nothing else is known to be in use here.
    let report = store.prune(&HashSet::new(), a.all)?;
    match a.format {
        Format::Json => out!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => {
            for id in &report.images {
                out!("Deleted: {id}");
            }
            out!(
                "Total reclaimed space: {}",
                crate::table::human_size(report.bytes)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
