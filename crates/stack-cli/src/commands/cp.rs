//! `stack cp`: files between a service's container and the host, as
//! `docker compose cp` copies them (`SERVICE:SRC DEST`, `SRC SERVICE:DEST`,
//! `-` for a tar stream on standard input or output). The copy itself,
//! resolved inside the container's root, is `stack_engine::api::Tree`.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use stack_engine::api::{ContainerRecord, Records};
use stack_engine::api::{PathKind, Source, Tree, landing};

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct CpArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Only this replica of the service (default: the first when copying
    /// out of it, every one when copying into it).
    #[arg(long)]
    pub index: Option<u32>,
    /// Also the service's one-off containers (`stack run`).
    #[arg(long)]
    pub all: bool,
    /// Keep the files' uid and gid (otherwise they belong to root).
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Follow a symlink named as the source.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// `SERVICE:SRC_PATH` or a host path (`-`: a tar stream on standard input).
    pub source: String,
    /// `SERVICE:DEST_PATH` or a host path (`-`: a tar stream on standard output).
    pub destination: String,
}

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    Container { service: String, path: String },
    Host(String),
    Stream,
}

/// `-`, a host path (absolute, relative with `.`, or without a colon), or
/// `SERVICE:PATH`, as compose splits them.
pub fn side(arg: &str) -> Side {
    if arg == "-" {
        return Side::Stream;
    }
    if arg.starts_with('/') || arg.starts_with('.') {
        return Side::Host(arg.to_owned());
    }
    match arg.split_once(':') {
        Some((service, path)) if !service.is_empty() && !service.contains('/') => Side::Container {
            service: service.to_owned(),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        },
        _ => Side::Host(arg.to_owned()),
    }
}

fn containers(
    store: &Records,
    project: &str,
    service: &str,
    args: &CpArgs,
) -> anyhow::Result<Vec<ContainerRecord>> {
    let mut found: Vec<ContainerRecord> = store
        .containers(project)?
        .into_iter()
        .filter(|r| r.service == service && (args.all || !r.one_off))
        .filter(|r| args.index.is_none_or(|i| r.number == i && !r.one_off))
        .collect();
    found.sort_by_key(|r| (r.one_off, r.number));
    if found.is_empty() {
        match args.index {
            Some(i) => bail!("service {service} has no container number {i} in project {project}"),
            None => bail!("service {service} has no container in project {project}"),
        }
    }
    Ok(found)
}

/// The container's tree: through its init while it runs, its overlay when
/// it is stopped.
fn tree(global: &GlobalArgs, record: &ContainerRecord) -> anyhow::Result<Tree> {
    if let (true, Some(pid)) = (record.is_alive(), record.pid) {
        return Ok(Tree::running(pid, &record.name, || record.is_alive())?);
    }
    let container = stack_runtime::Container::load(
        &stack_fs::Layout::of_root(&global.root).runtime(),
        &record.id,
    )
    .with_context(|| format!("container {}", record.name))?;
    Ok(Tree::overlay(&container.state.rootfs, &record.name)?)
}

/// Copies `path` of `from` into `dest` of `to`: an archive written by one
/// thread, extracted by this one.
fn copy(
    from: Tree,
    path: &str,
    follow: bool,
    to: &Tree,
    dest: &str,
    keep_owner: bool,
) -> anyhow::Result<()> {
    let kind = from
        .kind(path, follow)?
        .with_context(|| format!("no such file or directory: {path}"))?;
    let src = Source::new(path, kind);
    let target = landing(&src, dest, to.kind(dest, true)?)?;
    let (reader, writer) = std::io::pipe().context("making a pipe")?;
    let path = path.to_owned();
    let name = target.name.clone();
    let writer_thread =
        std::thread::spawn(move || from.archive(&path, name.as_deref(), follow, writer));
    let extracted = to.extract(&target.into, reader, keep_owner);
    let archived = writer_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the archiving thread panicked"))?;
    // The reader's failure first: a writer stopped by a closed pipe says less.
    extracted?;
    archived?;
    Ok(())
}

pub fn run(global: &GlobalArgs, args: CpArgs) -> anyhow::Result<ExitCode> {
    let Some(project) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let store = Records::new(&global.root);
    match (side(&args.source), side(&args.destination)) {
        (Side::Container { service, path }, to) => {
            let record = containers(&store, &project, &service, &args)?.remove(0);
            let from = tree(global, &record)?;
            match to {
                Side::Stream => {
                    let kind = from
                        .kind(&path, args.follow_link)?
                        .with_context(|| format!("no such file or directory: {service}:{path}"))?;
                    let src = Source::new(&path, kind);
                    let mut out = std::io::stdout().lock();
                    from.archive(&path, Some(&src.name), args.follow_link, &mut out)?;
                    out.flush()?;
                }
                Side::Host(dest) => copy(
                    from,
                    &path,
                    args.follow_link,
                    &Tree::host()?,
                    &dest,
                    args.archive,
                )?,
                Side::Container { .. } => bail!("copying between containers is not supported"),
            }
        }
        (from, Side::Container { service, path }) => {
            let records = containers(&store, &project, &service, &args)?;
            // Standard input is read once; several containers get it from memory.
            let stream = match (&from, records.len()) {
                (Side::Stream, n) if n > 1 => {
                    let mut buf = Vec::new();
                    std::io::stdin().lock().read_to_end(&mut buf)?;
                    Some(buf)
                }
                _ => None,
            };
            for record in records {
                let to = tree(global, &record)?;
                match &from {
                    Side::Stream => {
                        if to.kind(&path, true)? != Some(PathKind::Dir) {
                            bail!("destination {service}:{path} must be a directory");
                        }
                        match &stream {
                            Some(buf) => to.extract(&path, buf.as_slice(), args.archive)?,
                            None => to.extract(&path, std::io::stdin().lock(), args.archive)?,
                        }
                    }
                    Side::Host(src) => copy(
                        Tree::host()?,
                        src,
                        args.follow_link,
                        &to,
                        &path,
                        args.archive,
                    )?,
                    Side::Container { .. } => unreachable!("matched above"),
                }
            }
        }
        _ => bail!("one of source and destination must be SERVICE:PATH"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_split_as_compose() {
        assert_eq!(side("-"), Side::Stream);
        assert_eq!(side("./a:b"), Side::Host("./a:b".into()));
        assert_eq!(side("/x"), Side::Host("/x".into()));
        assert_eq!(side("file"), Side::Host("file".into()));
        assert_eq!(
            side("web:/etc/hosts"),
            Side::Container {
                service: "web".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(
            side("web:"),
            Side::Container {
                service: "web".into(),
                path: "/".into()
            }
        );
        assert_eq!(side("dir/x:y"), Side::Host("dir/x:y".into()));
    }
}
