//! `stack watch` (and the watching half of `stack up --watch`): follow the
//! stack's files and the services' `develop.watch` paths and apply every
//! burst of changes: reconcile through the supervisor, sync files into the
//! running containers, restart them, run a command in them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use stack_engine::api::Records;
use stack_engine::api::{ContainerExec, Request, UpOptions};
use stack_engine::watch::{
    ContainerFs, Effects, Session, Snapshot, Trigger, WatchSet, Watcher, is_editor_temp, sync_paths,
};
use stack_spec::{Loaded, Project};
use tokio::sync::mpsc;

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

/// How long a burst of changes must pause before it is applied.
#[derive(Debug, Clone, Args)]
pub struct DebounceArg {
    /// Milliseconds without a change before a burst of changes is applied.
    #[arg(
        long = "debounce",
        value_name = "MS",
        env = "STACK_WATCH_DEBOUNCE",
        default_value_t = 100
    )]
    pub debounce_ms: u64,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub debounce: DebounceArg,
    /// Do not bring the stack up first; only watch.
    #[arg(long)]
    pub no_up: bool,
}

pub fn run(global: &GlobalArgs, args: WatchArgs) -> anyhow::Result<ExitCode> {
    let Some(loaded) = args.project.load()? else {
        return Ok(ExitCode::FAILURE);
    };
    check_watchable(&loaded)?;
    let rt = client::runtime()?;
    if !args.no_up {
        let request = Request::Up {
            project: Box::new(loaded.project.clone()),
            options: UpOptions {
                config_files: loaded.files.clone(),
                ..watch_up_options()
            },
        };
        rt.block_on(client::call(global, &loaded.project.name, &request))?;
    }
    let quiet = Duration::from_millis(args.debounce.debounce_ms);
    rt.block_on(async {
        tokio::select! {
            r = watch(global, &args.project, loaded, quiet) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Watch mode removes the containers of services that left the file.
fn watch_up_options() -> UpOptions {
    UpOptions {
        remove_orphans: true,
        ..UpOptions::default()
    }
}

/// A stack read from standard input has no file to watch.
pub fn check_watchable(loaded: &Loaded) -> anyhow::Result<()> {
    if loaded.files.is_empty() {
        bail!("cannot watch a stack file read from standard input");
    }
    stack_engine::watch::triggers(&loaded.project, &loaded.project_directory)?;
    Ok(())
}

fn snapshot(loaded: Loaded) -> Snapshot {
    Snapshot {
        project: loaded.project,
        inputs: loaded.inputs,
        project_dir: loaded.project_directory,
    }
}

/// Watches until the future is dropped.
pub async fn watch(
    global: &GlobalArgs,
    args: &ProjectArgs,
    loaded: Loaded,
    quiet: Duration,
) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let what = format!(
        "{} files of the stack and {} develop.watch paths",
        loaded.inputs.len(),
        stack_engine::watch::triggers(&loaded.project, &loaded.project_directory)?.len()
    );
    let effects = Live {
        global,
        args,
        project: loaded.project.name.clone(),
        watcher: Watcher::new(tx)?,
        store: Records::new(&global.root),
        exec: None,
    };
    // The project's own state is never a change, wherever it lives.
    let ignored: Vec<PathBuf> = [&global.root, &global.run_dir]
        .iter()
        .filter_map(|p| std::path::absolute(p).ok())
        .collect();
    let mut session = Session::new(effects, snapshot(loaded), ignored, quiet)?;
    session.start().await.map_err(anyhow::Error::msg)?;
    eprintln!(
        "watching {what} (debounce {} ms; Ctrl-C to stop)",
        quiet.as_millis()
    );
    session.run(&mut rx).await;
    Ok(())
}

/// The real effects: the supervisor for reconciles and restarts, the
/// containers' file systems for syncs, the runtime for execs.
struct Live<'a> {
    global: &'a GlobalArgs,
    args: &'a ProjectArgs,
    project: String,
    watcher: Watcher,
    store: Records,
    /// For execs, made when first needed.
    exec: Option<Arc<ContainerExec>>,
}

impl Live<'_> {
    /// The running containers of `service`.
    fn running(&self, project: &str, service: &str) -> Vec<String> {
        self.store
            .containers(project)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.service == service && r.is_alive())
            .map(|r| r.name)
            .collect()
    }

    /// Sends `request`, printing its progress as it comes.
    async fn call(&self, project: &str, request: &Request) -> Result<Vec<String>, String> {
        let mut channel = client::connect(self.global, project)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let mut lines = Vec::new();
        let answer = channel
            .call(request, |line| {
                eprintln!("{line}");
                lines.push(line.to_owned());
            })
            .await
            .map_err(|e| e.to_string())?;
        // Watch reports a failed change and goes on watching; it needs
        // the words only.
        answer.map(|_| lines).map_err(|e| e.message)
    }
}

impl Effects for Live<'_> {
    fn load(&mut self) -> Result<Snapshot, Vec<String>> {
        let options = self
            .args
            .load_options()
            .map_err(|e| vec![format!("{e:#}")])?;
        match stack_spec::load(&options) {
            Ok(loaded) => Ok(snapshot(loaded)),
            Err(errors) => Err(errors.errors.iter().map(ToString::to_string).collect()),
        }
    }

    async fn up(&mut self, project: &Project) -> Result<Vec<String>, String> {
        let request = Request::Up {
            project: Box::new(project.clone()),
            options: watch_up_options(),
        };
        let project = self.project.clone();
        self.call(&project, &request).await
    }

    async fn sync(&mut self, trigger: &Trigger, paths: &[PathBuf]) -> Result<usize, String> {
        let Some(target) = &trigger.target else {
            return Ok(0);
        };
        let project = self.project.clone();
        let keep = |rel: &Path| !is_editor_temp(rel) && trigger.wants(&trigger.path.join(rel));
        let running = self.running(&project, &trigger.service);
        if running.is_empty() {
            return Err("no running container to sync into; `stack up` starts it".to_owned());
        }
        let mut files = 0;
        for name in running {
            let bundle = self.store.container_dir(&project, &name);
            let fs = ContainerFs::from_bundle(&bundle).map_err(|e| e.to_string())?;
            let report = sync_paths(&fs, &trigger.path, target, paths, &keep)
                .map_err(|e| format!("{name}: {e}"))?;
            files = files.max(report.files());
        }
        Ok(files)
    }

    async fn restart(&mut self, services: &[String]) -> Result<Vec<String>, String> {
        let request = Request::Restart {
            services: services.to_vec(),
            timeout: None,
            no_deps: true,
        };
        let project = self.project.clone();
        self.call(&project, &request).await
    }

    async fn rebuild(
        &mut self,
        project: &Project,
        services: &[String],
    ) -> Result<Vec<String>, String> {
        let request = Request::Up {
            project: Box::new(project.clone()),
            options: UpOptions {
                services: services.to_vec(),
                no_deps: true,
                build: true,
                ..UpOptions::default()
            },
        };
        let name = self.project.clone();
        self.call(&name, &request).await
    }

    async fn exec(&mut self, service: &str, command: &[String]) -> Result<(), String> {
        let project = self.project.clone();
        let exec = match &self.exec {
            Some(exec) => exec.clone(),
            None => {
                // Exec needs only the project's name (its records), not
                // the file, which may be broken just now.
                let config = client::host_config(self.global).map_err(|e| format!("{e:#}"))?;
                let exec = ContainerExec::new(config, &project).map_err(|e| e.to_string())?;
                let exec = Arc::new(exec);
                self.exec = Some(exec.clone());
                exec
            }
        };
        for name in self.running(&project, service) {
            let (code, output) = exec
                .capture(&name, command, Duration::from_secs(60))
                .await?;
            // -1: the runtime's process was not ours to reap, its code unknown.
            if code != 0 && code != -1 {
                return Err(format!("{name}: exit code {code}: {}", output.trim_end()));
            }
        }
        Ok(())
    }

    fn watch(&mut self, set: &WatchSet) -> Result<(), String> {
        self.watcher.set(set).map_err(|e| e.to_string())
    }

    fn print(&mut self, line: &str) {
        eprintln!("{line}");
    }
}
