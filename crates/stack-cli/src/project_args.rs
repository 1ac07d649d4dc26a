//! The options that pick the stack file and project, shared by every command
//! that works on a project (`config`, `up`, `down`, `ps` ...) through
//! `#[command(flatten)]`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use stack_spec::{LoadOptions, Source};

#[derive(Debug, Clone, Default, Args)]
pub struct ProjectArgs {
    /// Stack file(s); later files merge over earlier ones. `-` reads standard input.
    /// Default: STACK_FILE or COMPOSE_FILE, else stack.yaml, compose.yaml ...
    /// in this directory or a parent.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name (default: STACK_PROJECT_NAME or COMPOSE_PROJECT_NAME, `name:` in the file, or the directory name).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Directory relative paths in the file are resolved against (default: the first file's).
    #[arg(long, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Enable services of this profile (repeatable; `*` enables all;
    /// default: STACK_PROFILES or COMPOSE_PROFILES).
    #[arg(long = "profile", value_name = "PROFILE", value_delimiter = ',')]
    pub profiles: Vec<String>,
    /// Read interpolation variables from this file instead of `.env`
    /// (repeatable; default: STACK_ENV_FILES or COMPOSE_ENV_FILES).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
}

impl ProjectArgs {
    /// Loader options from these arguments, the current directory and the
    /// process environment (the only place the environment is read).
    pub fn load_options(&self) -> anyhow::Result<LoadOptions> {
        let cwd = std::env::current_dir().context("cannot determine the current directory")?;
        let mut opts = LoadOptions::new(cwd).with_environment(std::env::vars());
        for f in &self.files {
            if f.as_os_str() == "-" {
                let content = stack_spec::input::read_stdin()
                    .context("reading the stack file from standard input")?;
                opts.files.push(Source::Inline {
                    name: "<stdin>".into(),
                    content,
                });
            } else {
                opts.files.push(Source::Path(f.clone()));
            }
        }
        opts.project_name = self.project_name.clone();
        opts.project_directory = self.project_directory.clone();
        opts.profiles = self
            .profiles
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect();
        opts.env_files = self.env_files.clone();
        Ok(opts)
    }

    /// Load the project; errors are printed to stderr, one per line, and
    /// turned into `Ok(None)` so the command can exit with status 1.
    pub fn load(&self) -> anyhow::Result<Option<stack_spec::Loaded>> {
        let opts = self.load_options()?;
        match stack_spec::load(&opts) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    eprintln!("warning: {w}");
                }
                Ok(Some(loaded))
            }
            Err(errors) => {
                for e in &errors.errors {
                    eprintln!("error: {e}");
                }
                Ok(None)
            }
        }
    }
}
