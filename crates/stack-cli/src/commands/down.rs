//! `stack down`: stop and remove the project's containers and networks
//! (and with `-v` its named volumes).

use std::process::ExitCode;

use clap::Args;
use stack_engine::api::Request;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Rmi {
    All,
    Local,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Also remove the named volumes declared in the file.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Also remove containers of services no longer in the file (always
    /// done: `down` removes every container of the project).
    #[arg(long)]
    pub remove_orphans: bool,
    /// Also remove the images the containers ran: `all` of them, or `local`
    /// ones (named `<project>-<service>`, as compose names built images).
    #[arg(long, value_enum, value_name = "TYPE")]
    pub rmi: Option<Rmi>,
    /// Seconds to wait for each container to stop before killing it.
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(global: &GlobalArgs, args: DownArgs) -> anyhow::Result<ExitCode> {
    if args.dry_run {
        let request = Request::Down {
            remove_volumes: args.volumes,
            timeout: args.timeout,
        };
        return client::send_planned(global, &args.project, request, true);
    }
    let Some(name) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    if !stack_fs::Layout::of_root(&global.root)
        .project(&name)
        .exists()
    {
        // Already down; `-v` still removes the volumes the file names.
        if args.volumes
            && let Some(loaded) = args.project.load()?
        {
            let config = client::host_config(global)?;
            let removed = client::runtime()?
                .block_on(stack_engine::api::remove_volumes(config, loaded.project));
            return Ok(match removed {
                Ok(lines) if lines.is_empty() => {
                    eprintln!("{name}: nothing to remove");
                    ExitCode::SUCCESS
                }
                Ok(lines) => {
                    for line in lines {
                        eprintln!("{line}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            });
        }
        eprintln!("{name}: nothing to remove");
        return Ok(ExitCode::SUCCESS);
    }
    // The images are known from the containers, which `down` removes.
    let mut images: Vec<String> = Vec::new();
    if let Some(rmi) = args.rmi {
        for r in stack_engine::api::Records::new(&global.root).containers(&name)? {
            let local = r.image == format!("{name}-{}", r.service);
            if (rmi == Rmi::All || local) && !images.contains(&r.image) {
                images.push(r.image);
            }
        }
    }
    let request = Request::Down {
        remove_volumes: args.volumes,
        timeout: args.timeout,
    };
    client::runtime()?.block_on(client::call(global, &name, &request))?;
    let mut ok = true;
    if !images.is_empty() {
        let store = stack_image::store::Store::open(&global.root)?;
        for image in &images {
            match store.remove(image) {
                Ok(_) => eprintln!("Image {image} Removed"),
                Err(e) => {
                    eprintln!("error: removing image {image}: {e}");
                    ok = false;
                }
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
