//! `stack port SERVICE PORT`: the host address a container port is
//! published on, including the host port picked when the file gives none.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use stack_engine::store::Store;
use stack_net::{NetOptions, NetworkManager, Protocol, PublishedPort};

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Proto {
    Tcp,
    Udp,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    pub service: String,
    /// The container port.
    pub port: u16,
    #[arg(long, value_enum, default_value = "tcp")]
    pub protocol: Proto,
    /// Which replica, from 1.
    #[arg(long, default_value_t = 1)]
    pub index: u32,
}

/// Every published port of the container with this id.
pub fn published(global: &GlobalArgs, id: &str) -> Vec<PublishedPort> {
    let net = NetworkManager::new(&global.root, &global.run_dir, NetOptions::default());
    client::runtime()
        .ok()
        .and_then(|rt| rt.block_on(net.published(id)).ok())
        .unwrap_or_default()
}

pub fn run(global: &GlobalArgs, args: PortArgs) -> anyhow::Result<ExitCode> {
    let Some(project) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let record = Store::new(&global.root)
        .containers(&project)?
        .into_iter()
        .find(|r| r.service == args.service && r.number == args.index);
    let Some(record) = record else {
        anyhow::bail!(
            "no container {} of service {} in {project}",
            args.index,
            args.service
        );
    };
    let protocol = match args.protocol {
        Proto::Tcp => Protocol::Tcp,
        Proto::Udp => Protocol::Udp,
    };
    let found = published(global, &record.id)
        .into_iter()
        .find(|p| p.container_port == args.port && p.protocol == protocol);
    match found {
        Some(p) => {
            let ip = p.host_ip.map_or("0.0.0.0".to_owned(), |ip| ip.to_string());
            println!("{ip}:{}", p.host_port);
            Ok(ExitCode::SUCCESS)
        }
        None => anyhow::bail!(
            "{}/{} of {} is not published",
            args.port,
            protocol.as_str(),
            record.name
        ),
    }
}
