//! `stack graph`: the services' dependency graph with its conditions;
//! as text, by start level, so the start order shows.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::project_args::ProjectArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: GraphFormat,
}

pub fn run(args: GraphArgs) -> anyhow::Result<ExitCode> {
    let Some(loaded) = args.project.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    let project = loaded.project;
    match args.format {
        GraphFormat::Text => print!("{}", stack_engine::service_graph::text(&project)),
        GraphFormat::Dot => print!("{}", stack_engine::service_graph::dot(&project)),
    }
    Ok(ExitCode::SUCCESS)
}
