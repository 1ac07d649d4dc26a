//! `stack config`: load, validate and print the normalised project.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::cli::GlobalArgs;
use crate::project_args::ProjectArgs;

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Format {
    #[default]
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    pub format: Format,
    /// Print the service names, one per line.
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line.
    #[arg(long)]
    pub volumes: bool,
    /// Print the profile names used by services, one per line.
    #[arg(long = "profiles", id = "list_profiles")]
    pub list_profiles: bool,
    /// Print the network names, one per line.
    #[arg(long)]
    pub networks: bool,
    /// Print the image each service runs, one per line (a built one is
    /// named `<project>-<service>`, as compose names it).
    #[arg(long)]
    pub images: bool,
    /// Print `SERVICE HASH` for these services (comma-separated, `*` for
    /// all): the configuration hash a change of which recreates a container.
    #[arg(long, value_name = "SERVICES")]
    pub hash: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Print the variables interpolation read (`KEY=VALUE`, sorted).
    #[arg(long)]
    pub environment: bool,
    /// Print the variables the files use, with their defaults (a table;
    /// `--format json` for JSON).
    #[arg(long)]
    pub variables: bool,
    /// Pin each service's image to the digest its registry serves now.
    #[arg(long)]
    pub resolve_image_digests: bool,
    /// Only validate: print nothing, exit 0 when valid and 1 when not.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(_global: &GlobalArgs, args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let mut project_args = args.project.clone();
    if args.list_profiles {
        // Every profile in the file, whichever are active.
        project_args.profiles = vec!["*".into()];
    }
    let Some(loaded) = project_args.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    let mut project = loaded.project.clone();
    if args.resolve_image_digests {
        pin_digests(&mut project)?;
    }
    let project = &project;
    let mut out = String::new();
    if args.environment {
        let mut vars: Vec<_> = loaded.environment.iter().collect();
        vars.sort();
        for (k, v) in vars {
            out.push_str(&format!("{k}={v}\n"));
        }
    } else if args.variables {
        let mut all = std::collections::BTreeMap::new();
        for f in &loaded.files {
            let text = stack_spec::input::read_text(f, stack_spec::input::MAX_STACK_FILE)
                .map_err(|e| anyhow::anyhow!("{}: {}", f.display(), e.reason()))?;
            for (name, v) in stack_spec::variables::extract(&text) {
                all.entry(name).or_insert(v);
            }
        }
        match args.format {
            Format::Json => out = serde_json::to_string_pretty(&all)? + "\n",
            Format::Yaml => {
                let mut rows = vec![
                    ["NAME", "REQUIRED", "DEFAULT VALUE", "ALTERNATE VALUE"].map(str::to_owned),
                ];
                for v in all.values() {
                    rows.push([
                        v.name.clone(),
                        v.required.to_string(),
                        v.default_value.clone().unwrap_or_default(),
                        v.alternate_value.clone().unwrap_or_default(),
                    ]);
                }
                out = crate::table::render(&rows).join("\n") + "\n";
            }
        }
    } else if let Some(which) = &args.hash {
        let wanted: Vec<&str> = which.split(',').map(str::trim).collect();
        for name in &wanted {
            if *name != "*" && !project.services.contains_key(*name) {
                eprintln!("error: no such service: {name}");
                return Ok(ExitCode::FAILURE);
            }
        }
        for (name, svc) in &project.services {
            if wanted.contains(&"*") || wanted.contains(&name.as_str()) {
                out.push_str(&format!(
                    "{name} {}\n",
                    stack_engine::hash::config_hash(svc)
                ));
            }
        }
    } else if args.services || args.volumes || args.list_profiles || args.networks || args.images {
        if args.services {
            for name in project.services.keys() {
                out.push_str(name);
                out.push('\n');
            }
        }
        if args.volumes {
            for name in project.volumes.keys() {
                out.push_str(name);
                out.push('\n');
            }
        }
        if args.networks {
            for name in project.networks.keys() {
                out.push_str(name);
                out.push('\n');
            }
        }
        if args.images {
            for (name, svc) in &project.services {
                let image = svc
                    .image
                    .clone()
                    .unwrap_or_else(|| format!("{}-{name}", project.name));
                out.push_str(&image);
                out.push('\n');
            }
        }
        if args.list_profiles {
            let all: BTreeSet<&str> = project
                .services
                .values()
                .flat_map(|s| s.profiles.iter().map(String::as_str))
                .collect();
            for p in all {
                out.push_str(p);
                out.push('\n');
            }
        }
    } else {
        out = match args.format {
            Format::Json => serde_json::to_string_pretty(project)? + "\n",
            Format::Yaml => serde_saphyr::to_string(project)?,
        };
    }
    match &args.output {
        Some(path) => std::fs::write(path, out)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?,
        None => print!("{out}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `image: NAME@DIGEST` for every service with an image, the digest asked
/// of its registry (one request each, nothing pulled).
fn pin_digests(project: &mut stack_spec::Project) -> anyhow::Result<()> {
    let opts = super::transfer::options()?;
    let rt = super::transfer::runtime()?;
    for (name, svc) in project.services.iter_mut() {
        let Some(image) = &svc.image else { continue };
        let reference = stack_image::Reference::parse(image)?;
        let digest = rt
            .block_on(stack_image::push::remote_digest(&reference, &opts))
            .with_context(|| format!("service {name}: resolving {image}"))?;
        svc.image = Some(format!(
            "{}@{digest}",
            image.split('@').next().unwrap_or(image)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::cli::{Cli, Command};

    #[test]
    fn arguments_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn project_arguments_parse() {
        let cli = Cli::try_parse_from([
            "stack",
            "config",
            "-f",
            "a.yaml",
            "-f",
            "b.yaml",
            "-p",
            "demo",
            "--profile",
            "x",
            "--profiles",
            "-q",
        ])
        .unwrap();
        let Command::Config(args) = cli.command else {
            panic!("not config")
        };
        assert_eq!(args.project.files.len(), 2);
        assert_eq!(args.project.project_name.as_deref(), Some("demo"));
        assert_eq!(args.project.profiles, ["x"]);
        assert!(args.list_profiles && args.quiet);
    }
}
