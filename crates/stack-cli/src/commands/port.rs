//! `stack port SERVICE PORT`: the host address a container port is
//! published on, including the host port picked when the file gives none.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use stack_engine::api::Records;
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

/// The published ports of each container id, read in one go.
pub fn published(global: &GlobalArgs, ids: &[&str]) -> Vec<Vec<PublishedPort>> {
    let net = NetworkManager::new(&global.root, &global.run_dir, NetOptions::default());
    let Ok(rt) = client::runtime() else {
        return vec![Vec::new(); ids.len()];
    };
    rt.block_on(async {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(net.published(id).await.unwrap_or_default());
        }
        out
    })
}

pub fn run(global: &GlobalArgs, args: PortArgs) -> anyhow::Result<ExitCode> {
    let Some(project) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let record = Records::new(&global.root)
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
    let found = published(global, &[record.id.as_str()])
        .remove(0)
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
