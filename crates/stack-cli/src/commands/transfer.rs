//! What `stack pull` and `stack push` share: the services a command names
//! (with their dependencies on `--include-deps`, in the file's order), the
//! registry settings, and compose's plain progress lines.

use std::collections::BTreeSet;

use anyhow::bail;
use stack_image::progress::ProgressMode;
use stack_image::pull::PullOptions;
use stack_image::{Reference, RegistriesConfig};
use stack_spec::{Project, Service};

/// The named services (every one when none is named), in the file's order.
pub fn selected<'a>(
    project: &'a Project,
    names: &[String],
    include_deps: bool,
) -> anyhow::Result<Vec<(&'a String, &'a Service)>> {
    for n in names {
        if !project.services.contains_key(n) {
            bail!("no such service: {n}");
        }
    }
    let wanted: BTreeSet<String> = if names.is_empty() {
        project.services.keys().cloned().collect()
    } else if include_deps {
        stack_engine::service_graph::with_dependencies(project, names)
    } else {
        names.iter().cloned().collect()
    };
    Ok(project
        .services
        .iter()
        .filter(|(n, _)| wanted.contains(*n))
        .collect())
}

/// Registry options as `stack image pull` takes them, with no progress
/// bars of its own: the commands print one line per service.
pub fn options() -> anyhow::Result<PullOptions> {
    Ok(PullOptions {
        registries: RegistriesConfig::from_env()?,
        progress: ProgressMode::Quiet,
        ..Default::default()
    })
}

/// An image name of the file as a reference.
pub fn reference(image: &str) -> anyhow::Result<Reference> {
    Ok(Reference::parse(image)?)
}

/// ` SERVICE TEXT`, compose's plain progress line, on standard error
/// unless quiet.
pub fn line(quiet: bool, service: &str, text: &str) {
    if !quiet {
        eprintln!(" {service} {text}");
    }
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
