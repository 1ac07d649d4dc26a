//! `stack images`: the images the project's containers were made from.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;
use stack_engine::api::Records;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImagesFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ImagesFormat,
    /// Only image ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Only these services.
    pub services: Vec<String>,
}

/// One container's image, with `docker compose images --format json`'s
/// field names.
#[derive(Debug, Serialize)]
pub struct ImageEntry {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ContainerName")]
    pub container_name: String,
    #[serde(rename = "Repository")]
    pub repository: String,
    #[serde(rename = "Tag")]
    pub tag: String,
    #[serde(rename = "Size")]
    pub size: u64,
}

/// `registry:5000/app:1` → (`registry:5000/app`, `1`); no tag → `latest`.
pub fn split_reference(image: &str) -> (String, String) {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), tag.to_owned()),
        _ => (without_digest.to_owned(), "latest".to_owned()),
    }
}

pub fn run(global: &GlobalArgs, args: ImagesArgs) -> anyhow::Result<ExitCode> {
    let Some(project) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let images = stack_image::store::Store::open(&global.root)?;
    let summaries = images.list()?;
    let mut list = Vec::new();
    for record in Records::new(&global.root).containers(&project)? {
        if !args.services.is_empty() && !args.services.contains(&record.service) {
            continue;
        }
        let id = record
            .image_digest
            .clone()
            .or_else(|| {
                images
                    .resolve(&record.image)
                    .ok()
                    .map(|i| i.as_str().to_owned())
            })
            .unwrap_or_default();
        let size = summaries
            .iter()
            .find(|s| s.id.as_str() == id)
            .map_or(0, |s| s.size);
        let (repository, tag) = split_reference(&record.image);
        list.push(ImageEntry {
            id,
            container_name: record.name,
            repository,
            tag,
            size,
        });
    }
    if args.quiet {
        let mut ids: Vec<&str> = list.iter().map(|e| e.id.as_str()).collect();
        ids.dedup();
        for id in ids {
            println!("{id}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        ImagesFormat::Json => println!("{}", serde_json::to_string(&list)?),
        ImagesFormat::Table => {
            let mut rows = vec![[
                "CONTAINER".to_owned(),
                "REPOSITORY".into(),
                "TAG".into(),
                "IMAGE ID".into(),
                "SIZE".into(),
            ]];
            for e in &list {
                let short =
                    e.id.trim_start_matches("sha256:")
                        .chars()
                        .take(12)
                        .collect();
                rows.push([
                    e.container_name.clone(),
                    e.repository.clone(),
                    e.tag.clone(),
                    short,
                    crate::table::human_size(e.size),
                ]);
            }
            crate::table::print(&rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_reference("localhost:5000/app:1.2"),
            ("localhost:5000/app".into(), "1.2".into())
        );
        assert_eq!(
            split_reference("localhost:5000/app"),
            ("localhost:5000/app".into(), "latest".into())
        );
    }
}
