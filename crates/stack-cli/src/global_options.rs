//! `docker compose`'s global options and environment variables, so that a
//! compose user keeps their habits: `stack -f a.yaml -p shop up -d` takes the
//! options before the subcommand as compose does (and after it, as before),
//! and `COMPOSE_FILE`, `COMPOSE_PROJECT_NAME`, `COMPOSE_PROFILES` ... are
//! read, with the `STACK_` name of each winning when both are set.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::cli::{Cli, Command};
use crate::progress::Mode;
use crate::project_args::ProjectArgs;

/// The options `docker compose` takes before its subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct ComposeOptions {
    /// Stack file(s); later files merge over earlier ones (also after the subcommand).
    #[arg(short = 'f', long = "file", id = "global_files", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name (also after the subcommand).
    #[arg(
        short = 'p',
        long = "project-name",
        id = "global_project_name",
        value_name = "NAME"
    )]
    pub project_name: Option<String>,
    /// Directory relative paths in the file are resolved against.
    #[arg(
        long = "project-directory",
        id = "global_project_directory",
        value_name = "DIR"
    )]
    pub project_directory: Option<PathBuf>,
    /// Enable services of this profile (repeatable).
    #[arg(long = "profile", id = "global_profiles", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Read interpolation variables from this file instead of `.env` (repeatable).
    #[arg(long = "env-file", id = "global_env_files", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Most operations at once (COMPOSE_PARALLEL_LIMIT); not honoured yet:
    /// stack runs up to 16.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub parallel: Option<i64>,
    /// How progress is shown (COMPOSE_PROGRESS): auto is a redrawn display
    /// at a terminal and plain lines otherwise.
    #[arg(long, value_enum, value_name = "MODE")]
    pub progress: Option<Progress>,
    /// When to print ANSI control characters (COMPOSE_ANSI).
    #[arg(long, value_enum, value_name = "WHEN")]
    pub ansi: Option<Ansi>,
    /// Show what would be done and change nothing (`up` prints its plan).
    #[arg(long = "dry-run", id = "global_dry_run")]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    Auto,
    Tty,
    Plain,
    Json,
    Quiet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ansi {
    Never,
    Always,
    Auto,
}

/// A `STACK_<name>` variable, or else `COMPOSE_<name>`; empty counts as unset.
pub fn compose_var(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    ["STACK_", "COMPOSE_"]
        .iter()
        .filter_map(|p| lookup(&format!("{p}{name}")))
        .find(|v| !v.is_empty())
}

fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

impl Command {
    /// The project options of the subcommands that work on a project.
    fn project_args_mut(&mut self) -> Option<&mut ProjectArgs> {
        use crate::commands::export::ExportCommand;
        use crate::commands::systemd::SystemdCommand;
        Some(match self {
            Command::Config(a) => &mut a.project,
            Command::Up(a) => &mut a.project,
            Command::Create(a) => &mut a.project,
            Command::Down(a) => &mut a.project,
            Command::Ps(a) => &mut a.project,
            Command::Logs(a) => &mut a.project,
            Command::Port(a) => &mut a.project,
            Command::Start(a) => &mut a.project,
            Command::Stop(a) => &mut a.project,
            Command::Restart(a) => &mut a.project,
            Command::Kill(a) => &mut a.project,
            Command::Pause(a) | Command::Unpause(a) => &mut a.project,
            Command::Rm(a) => &mut a.project,
            Command::Exec(a) => &mut a.project,
            Command::Run(a) => &mut a.project,
            Command::Top(a) => &mut a.project,
            Command::Images(a) => &mut a.project,
            Command::Graph(a) => &mut a.project,
            Command::Watch(a) => &mut a.project,
            Command::Events(a) => &mut a.project,
            Command::Stats(a) => &mut a.project,
            Command::Inspect(a) => &mut a.project,
            Command::Wait(a) => &mut a.project,
            Command::Scale(a) => &mut a.project,
            Command::Build(a) => &mut a.project,
            Command::Export(a) => match &mut a.command {
                Some(ExportCommand::Kubernetes(a)) => &mut a.project,
                Some(ExportCommand::Swarm(a)) => &mut a.project,
                None => &mut a.project,
            },
            Command::Cp(a) => &mut a.project,
            Command::Attach(a) => &mut a.project,
            Command::Pull(a) => &mut a.project,
            Command::Push(a) => &mut a.project,
            Command::Systemd(SystemdCommand::Generate(a)) => &mut a.project,
            Command::Image(_)
            | Command::Builder(_)
            | Command::Container(_)
            | Command::Ls(_)
            | Command::Completion(_)
            | Command::DockerPlugin(_)
            | Command::Version(_)
            | Command::Man(_)
            | Command::LogKeeper(_)
            | Command::Supervise(_) => return None,
        })
    }
}

impl ProjectArgs {
    /// Options given before the subcommand come first (files, profiles,
    /// env files add up; a name or directory after the subcommand wins),
    /// then the environment fills what neither gave.
    pub fn resolve(&mut self, before: &ComposeOptions, lookup: &dyn Fn(&str) -> Option<String>) {
        self.files.splice(0..0, before.files.iter().cloned());
        self.profiles.splice(0..0, before.profiles.iter().cloned());
        self.env_files
            .splice(0..0, before.env_files.iter().cloned());
        if self.project_name.is_none() {
            self.project_name = before.project_name.clone();
        }
        if self.project_directory.is_none() {
            self.project_directory = before.project_directory.clone();
        }
        if self.files.is_empty()
            && let Some(files) = compose_var(lookup, "FILE")
        {
            let sep = compose_var(lookup, "PATH_SEPARATOR").unwrap_or_else(|| ":".into());
            self.files = files
                .split(sep.as_str())
                .filter(|f| !f.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        let list = |name: &str| -> Vec<String> {
            compose_var(lookup, name)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        if self.profiles.is_empty() {
            self.profiles = list("PROFILES");
        }
        if self.env_files.is_empty() {
            self.env_files = list("ENV_FILES").into_iter().map(PathBuf::from).collect();
        }
        if self.project_name.is_none() {
            self.project_name = compose_var(lookup, "PROJECT_NAME");
        }
    }
}

fn bad_value<V: ValueEnum>(name: &str, value: &str, variants: &[V]) -> String {
    let names: Vec<String> = variants
        .iter()
        .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
        .collect();
    format!(
        "COMPOSE_{name}={value}: expected one of {}",
        names.join(", ")
    )
}

/// The progress display `--progress` and `--ansi` ask for, as compose
/// decides it: `--ansi never` means plain lines, `--ansi always` a redrawn
/// display even when piped, and the two cannot ask for opposite things.
pub fn display_mode(progress: Option<Progress>, ansi: Option<Ansi>) -> Result<Mode, String> {
    Ok(match (progress, ansi) {
        (Some(Progress::Tty), Some(Ansi::Never)) => {
            return Err("--progress tty cannot be used with --ansi never".into());
        }
        (Some(Progress::Tty), _) => Mode::Tty,
        (Some(Progress::Plain), _) => Mode::Plain,
        (Some(Progress::Json), _) => Mode::Json,
        (Some(Progress::Quiet), _) => Mode::Quiet,
        (Some(Progress::Auto) | None, Some(Ansi::Never)) => Mode::Plain,
        (Some(Progress::Auto) | None, Some(Ansi::Always)) => Mode::Tty,
        (Some(Progress::Auto) | None, Some(Ansi::Auto) | None) => Mode::Auto,
    })
}

/// Applies the options given before the subcommand and the `COMPOSE_`/
/// `STACK_` variables to the subcommand's own options; returns the
/// warnings for what is accepted but not honoured, or an error for an
/// option the subcommand cannot take.
pub fn apply(
    cli: &mut Cli,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let before = cli.global.compose.clone();
    let mut warnings = Vec::new();
    let gave_project = !before.files.is_empty()
        || before.project_name.is_some()
        || before.project_directory.is_some()
        || !before.profiles.is_empty()
        || !before.env_files.is_empty();
    match cli.command.project_args_mut() {
        Some(p) => p.resolve(&before, lookup),
        None if gave_project => {
            return Err(
                "-f, -p, --profile, --env-file and --project-directory need a command that works on a project"
                    .into(),
            );
        }
        None => {}
    }
    if before.dry_run {
        match &mut cli.command {
            Command::Up(a) => a.dry_run = true,
            Command::Create(a) => a.dry_run = true,
            Command::Down(a) => a.dry_run = true,
            Command::Start(a) => a.dry_run = true,
            Command::Stop(a) => a.dry_run = true,
            Command::Restart(a) => a.dry_run = true,
            Command::Kill(a) => a.dry_run = true,
            Command::Pause(a) | Command::Unpause(a) => a.dry_run = true,
            Command::Rm(a) => a.dry_run = true,
            Command::Scale(a) => a.dry_run = true,
            _ => {
                return Err(
                    "--dry-run: only up, create, down, start, stop, restart, kill, pause, unpause, rm and scale show their plan without acting yet"
                        .into(),
                );
            }
        }
    }
    let remove_orphans = truthy(compose_var(lookup, "REMOVE_ORPHANS"));
    let ignore_orphans = truthy(compose_var(lookup, "IGNORE_ORPHANS"));
    match &mut cli.command {
        Command::Up(a) => {
            a.remove_orphans |= remove_orphans;
            a.ignore_orphans = ignore_orphans;
        }
        Command::Create(a) => {
            a.remove_orphans |= remove_orphans;
            a.ignore_orphans = ignore_orphans;
        }
        Command::Run(a) => {
            a.remove_orphans |= remove_orphans;
            a.ignore_orphans = ignore_orphans;
        }
        Command::Down(a) => a.remove_orphans |= remove_orphans,
        Command::Kill(a) => a.remove_orphans |= remove_orphans,
        _ => {}
    }
    let ansi = match before.ansi {
        Some(a) => Some(a),
        None => compose_var(lookup, "ANSI")
            .map(|v| {
                Ansi::from_str(&v, true).map_err(|_| bad_value("ANSI", &v, Ansi::value_variants()))
            })
            .transpose()?,
    };
    if ansi == Some(Ansi::Never)
        && let Command::Logs(a) = &mut cli.command
    {
        a.no_color = true;
    }
    if ansi == Some(Ansi::Always) && matches!(cli.command, Command::Logs(_)) {
        warnings.push("--ansi always: log colours are used only at a terminal".to_string());
    }
    let progress = match before.progress {
        Some(p) => Some(p),
        None => compose_var(lookup, "PROGRESS")
            .map(|v| {
                Progress::from_str(&v, true)
                    .map_err(|_| bad_value("PROGRESS", &v, Progress::value_variants()))
            })
            .transpose()?,
    };
    cli.global.progress = display_mode(progress, ansi)?;
    let parallel = before
        .parallel
        .or_else(|| compose_var(lookup, "PARALLEL_LIMIT").and_then(|v| v.parse().ok()));
    if parallel.is_some_and(|n| n != -1) {
        warnings.push(
            "--parallel / COMPOSE_PARALLEL_LIMIT is not honoured yet: stack runs up to 16 operations at once"
                .to_string(),
        );
    }
    if truthy(compose_var(lookup, "STATUS_STDOUT")) {
        crate::client::status_to_stdout();
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::Parser;

    use super::*;

    /// What the loader gets for a command line and an environment.
    fn resolved(argv: &str, env: &[(&str, &str)]) -> (ProjectArgs, Vec<String>, Cli) {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.get(k).cloned();
        let mut cli =
            Cli::try_parse_from(argv.split_whitespace()).unwrap_or_else(|e| panic!("{argv}: {e}"));
        let warnings = apply(&mut cli, &lookup).unwrap_or_else(|e| panic!("{argv}: {e}"));
        let p = cli.command.project_args_mut().cloned().unwrap_or_default();
        (p, warnings, cli)
    }

    fn files(p: &ProjectArgs) -> Vec<&str> {
        p.files.iter().map(|f| f.to_str().unwrap()).collect()
    }

    /// Every placement compose users type, and the variables compose reads.
    #[test]
    fn placements_and_variables() {
        type Row = (
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static [&'static str],
            Option<&'static str>,
            &'static [&'static str],
        );
        // (command line, environment, files, project name, profiles)
        let rows: &[Row] = &[
            ("stack -f a.yaml up -d", &[], &["a.yaml"], None, &[]),
            ("stack up -d -f a.yaml", &[], &["a.yaml"], None, &[]),
            (
                "stack -f a.yaml -f b.yaml ps",
                &[],
                &["a.yaml", "b.yaml"],
                None,
                &[],
            ),
            (
                "stack -f a.yaml config -f b.yaml",
                &[],
                &["a.yaml", "b.yaml"],
                None,
                &[],
            ),
            (
                "stack --file a.yaml -p shop down",
                &[],
                &["a.yaml"],
                Some("shop"),
                &[],
            ),
            ("stack -p shop logs -f", &[], &[], Some("shop"), &[]),
            ("stack -p one stop -p two", &[], &[], Some("two"), &[]),
            (
                "stack --profile x --profile y up",
                &[],
                &[],
                None,
                &["x", "y"],
            ),
            (
                "stack --profile x up --profile y",
                &[],
                &[],
                None,
                &["x", "y"],
            ),
            (
                "stack ps",
                &[("COMPOSE_FILE", "a.yaml:b.yaml")],
                &["a.yaml", "b.yaml"],
                None,
                &[],
            ),
            (
                "stack ps",
                &[
                    ("COMPOSE_FILE", "a.yaml;b.yaml"),
                    ("COMPOSE_PATH_SEPARATOR", ";"),
                ],
                &["a.yaml", "b.yaml"],
                None,
                &[],
            ),
            (
                "stack ps",
                &[("COMPOSE_FILE", "a.yaml"), ("STACK_FILE", "s.yaml")],
                &["s.yaml"],
                None,
                &[],
            ),
            (
                "stack -f c.yaml ps",
                &[("COMPOSE_FILE", "a.yaml")],
                &["c.yaml"],
                None,
                &[],
            ),
            (
                "stack ps",
                &[("COMPOSE_PROJECT_NAME", "cp")],
                &[],
                Some("cp"),
                &[],
            ),
            (
                "stack ps",
                &[("COMPOSE_PROJECT_NAME", "cp"), ("STACK_PROJECT_NAME", "sp")],
                &[],
                Some("sp"),
                &[],
            ),
            (
                "stack -p flag ps",
                &[("COMPOSE_PROJECT_NAME", "cp")],
                &[],
                Some("flag"),
                &[],
            ),
            (
                "stack up",
                &[("COMPOSE_PROFILES", "a,b")],
                &[],
                None,
                &["a", "b"],
            ),
            (
                "stack up",
                &[("COMPOSE_PROFILES", "a"), ("STACK_PROFILES", "s")],
                &[],
                None,
                &["s"],
            ),
            (
                "stack up --profile f",
                &[("COMPOSE_PROFILES", "a")],
                &[],
                None,
                &["f"],
            ),
        ];
        for (argv, env, want_files, want_name, want_profiles) in rows {
            let (p, _, _) = resolved(argv, env);
            assert_eq!(files(&p), *want_files, "{argv} {env:?}");
            assert_eq!(p.project_name.as_deref(), *want_name, "{argv} {env:?}");
            assert_eq!(p.profiles, *want_profiles, "{argv} {env:?}");
        }
    }

    #[test]
    fn env_files_directory_and_flags() {
        let (p, _, _) = resolved(
            "stack --env-file g.env --project-directory /srv config --env-file c.env",
            &[],
        );
        assert_eq!(
            p.env_files,
            [PathBuf::from("g.env"), PathBuf::from("c.env")]
        );
        assert_eq!(p.project_directory, Some(PathBuf::from("/srv")));
        let (p, _, _) = resolved("stack config", &[("COMPOSE_ENV_FILES", "a.env,b.env")]);
        assert_eq!(
            p.env_files,
            [PathBuf::from("a.env"), PathBuf::from("b.env")]
        );

        let (_, _, cli) = resolved("stack --dry-run up", &[]);
        assert!(matches!(cli.command, Command::Up(ref a) if a.dry_run));
        let (_, _, cli) = resolved("stack --dry-run stop", &[]);
        assert!(matches!(cli.command, Command::Stop(ref a) if a.dry_run));
        let (_, _, cli) = resolved("stack --dry-run down", &[]);
        assert!(matches!(cli.command, Command::Down(ref a) if a.dry_run));
        let (_, _, cli) = resolved("stack up", &[("COMPOSE_REMOVE_ORPHANS", "true")]);
        assert!(matches!(cli.command, Command::Up(ref a) if a.remove_orphans));
        let (_, _, cli) = resolved("stack kill", &[("COMPOSE_REMOVE_ORPHANS", "1")]);
        assert!(matches!(cli.command, Command::Kill(ref a) if a.remove_orphans));
        let (_, _, cli) = resolved("stack create", &[("COMPOSE_IGNORE_ORPHANS", "true")]);
        assert!(matches!(cli.command, Command::Create(ref a) if a.ignore_orphans));
        let (_, _, cli) = resolved("stack run web", &[("STACK_IGNORE_ORPHANS", "yes")]);
        assert!(matches!(cli.command, Command::Run(ref a) if a.ignore_orphans));
        let (_, _, cli) = resolved("stack --dry-run create", &[]);
        assert!(matches!(cli.command, Command::Create(ref a) if a.dry_run));
        let (_, _, cli) = resolved("stack --ansi never logs", &[]);
        assert!(matches!(cli.command, Command::Logs(ref a) if a.no_color));
        let (_, _, cli) = resolved("stack logs", &[("COMPOSE_ANSI", "never")]);
        assert!(matches!(cli.command, Command::Logs(ref a) if a.no_color));

        // Accepted but not honoured: said, not silently dropped.
        let (_, w, _) = resolved("stack --parallel 2 --progress quiet up", &[]);
        assert_eq!(w.len(), 1, "{w:?}");
        let (_, w, _) = resolved(
            "stack --parallel -1 --progress plain up",
            &[("COMPOSE_MENU", "true")],
        );
        assert!(w.is_empty(), "{w:?}");

        // --progress and --ansi, and their variables, as compose combines them.
        type Row = (&'static str, &'static [(&'static str, &'static str)], Mode);
        let rows: &[Row] = &[
            ("stack up", &[], Mode::Auto),
            ("stack --progress tty up", &[], Mode::Tty),
            ("stack --progress plain up", &[], Mode::Plain),
            ("stack --progress json up", &[], Mode::Json),
            ("stack --progress quiet up", &[], Mode::Quiet),
            ("stack --ansi never up", &[], Mode::Plain),
            ("stack --ansi always up", &[], Mode::Tty),
            ("stack --ansi always --progress plain up", &[], Mode::Plain),
            ("stack up", &[("COMPOSE_PROGRESS", "json")], Mode::Json),
            ("stack up", &[("COMPOSE_ANSI", "never")], Mode::Plain),
            (
                "stack --progress tty up",
                &[("COMPOSE_PROGRESS", "quiet")],
                Mode::Tty,
            ),
        ];
        for (argv, env, mode) in rows {
            let (_, _, cli) = resolved(argv, env);
            assert_eq!(cli.global.progress, *mode, "{argv} {env:?}");
        }
        let mut cli =
            Cli::try_parse_from(["stack", "--progress", "tty", "--ansi", "never", "up"]).unwrap();
        assert!(apply(&mut cli, &|_| None).is_err());
        let mut cli = Cli::try_parse_from(["stack", "up"]).unwrap();
        let err = apply(&mut cli, &|k| {
            (k == "COMPOSE_PROGRESS").then(|| "fancy".into())
        })
        .unwrap_err();
        assert!(
            err.contains("COMPOSE_PROGRESS=fancy") && err.contains("plain"),
            "{err}"
        );

        // An option the command cannot take is refused, not dropped.
        let mut cli = Cli::try_parse_from(["stack", "--dry-run", "ps"]).unwrap();
        assert!(apply(&mut cli, &|_| None).is_err());
        let mut cli = Cli::try_parse_from(["stack", "-f", "a.yaml", "ls"]).unwrap();
        assert!(apply(&mut cli, &|_| None).is_err());
    }
}
