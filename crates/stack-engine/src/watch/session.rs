//! The watch loop: changed paths come in, are coalesced into batches, and
//! each batch is applied at once — reload, validate and reconcile when a
//! file of the stack changed, then the services' sync, restart and exec
//! triggers. Changes that arrive while a batch is applied wait in the
//! channel and make the next batch: none is lost.
//!
//! What is done to the host is behind [`Effects`], so that the loop's
//! decisions are tested with a fake and the real thing by the CLI's tests.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stack_spec::Project;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::debounce::Debouncer;
use super::rules::{RulesError, Trigger, classify, triggers};
use super::watcher::WatchSet;
use crate::hash::config_hash;

/// A successful load of the stack files.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub project: Project,
    /// Every file it was made from (`stack_spec::Loaded::inputs`).
    pub inputs: Vec<PathBuf>,
    pub project_dir: PathBuf,
}

/// What the loop does to the world.
pub trait Effects {
    /// Loads the stack files again; the errors as they should be printed.
    fn load(&mut self) -> Result<Snapshot, Vec<String>>;
    /// Makes the host match `project` (the plan of `stack up`, orphans
    /// removed), printing each action as it is done (a reconcile may wait
    /// on health checks); returns those lines, or what failed.
    fn up(&mut self, project: &Project) -> impl Future<Output = Result<Vec<String>, String>>;
    /// Copies `paths` (under the trigger's path) into the trigger's target
    /// in every running container of its service; how many files.
    fn sync(
        &mut self,
        trigger: &Trigger,
        paths: &[PathBuf],
    ) -> impl Future<Output = Result<usize, String>>;
    /// Restarts the containers of `services`, printing each as it is done;
    /// returns those lines.
    fn restart(&mut self, services: &[String])
    -> impl Future<Output = Result<Vec<String>, String>>;
    /// Builds the images of `services` again where what their builds read
    /// changed, and recreates their containers (`up --build` of just
    /// them), printing each action; returns those lines.
    fn rebuild(
        &mut self,
        project: &Project,
        services: &[String],
    ) -> impl Future<Output = Result<Vec<String>, String>>;
    /// Runs `command` in every running container of `service`.
    fn exec(
        &mut self,
        service: &str,
        command: &[String],
    ) -> impl Future<Output = Result<(), String>>;
    /// Watches `set` from now on.
    fn watch(&mut self, set: &WatchSet) -> Result<(), String>;
    /// One line for the user.
    fn print(&mut self, line: &str);
}

/// What to watch for a loaded stack.
pub fn watch_set(snapshot: &Snapshot, triggers: &[Trigger]) -> WatchSet {
    WatchSet {
        files: snapshot.inputs.iter().cloned().collect(),
        trees: triggers.iter().map(|t| t.path.clone()).collect(),
    }
}

pub struct Session<E> {
    effects: E,
    snapshot: Snapshot,
    inputs: HashSet<PathBuf>,
    triggers: Vec<Trigger>,
    /// The project's own state (root, run directory): never a change.
    ignored: Vec<PathBuf>,
    quiet: Duration,
}

impl<E: Effects> Session<E> {
    /// Refuses what it cannot do (`rebuild` of a service that does not
    /// build) before watching anything.
    pub fn new(
        effects: E,
        snapshot: Snapshot,
        ignored: Vec<PathBuf>,
        quiet: Duration,
    ) -> Result<Self, RulesError> {
        let triggers = triggers(&snapshot.project, &snapshot.project_dir)?;
        Ok(Self {
            inputs: snapshot.inputs.iter().cloned().collect(),
            effects,
            snapshot,
            triggers,
            ignored,
            quiet,
        })
    }

    pub fn effects(&self) -> &E {
        &self.effects
    }

    /// Starts watching and performs the `initial_sync` of the triggers
    /// that ask for it.
    pub async fn start(&mut self) -> Result<(), String> {
        let set = watch_set(&self.snapshot, &self.triggers);
        self.effects.watch(&set)?;
        let initial: Vec<Trigger> = self
            .triggers
            .iter()
            .filter(|t| t.initial_sync && t.syncs() && t.path.exists())
            .cloned()
            .collect();
        for trigger in initial {
            let started = Instant::now();
            match self
                .effects
                .sync(&trigger, std::slice::from_ref(&trigger.path))
                .await
            {
                Ok(n) => self.effects.print(&format!(
                    "{}: synced {n} files (initial sync) {} ms",
                    trigger.service,
                    started.elapsed().as_millis()
                )),
                Err(e) => self
                    .effects
                    .print(&format!("{}: sync failed: {e}", trigger.service)),
            }
        }
        Ok(())
    }

    /// Runs until the channel closes (the caller stops it by dropping the
    /// future or the sender).
    pub async fn run(&mut self, events: &mut mpsc::UnboundedReceiver<PathBuf>) {
        let mut debouncer = Debouncer::new(self.quiet);
        loop {
            let deadline = debouncer.deadline();
            tokio::select! {
                event = events.recv() => match event {
                    Some(path) => debouncer.push(path, Instant::now()),
                    None => return,
                },
                _ = sleep_until(deadline), if deadline.is_some() => {
                    // Whatever already waits in the channel joins this batch.
                    while let Ok(path) = events.try_recv() {
                        debouncer.push(path, Instant::now());
                    }
                    if let Some(batch) = debouncer.take_due(Instant::now()) {
                        self.apply(&batch).await;
                    }
                }
            }
        }
    }

    /// Applies one batch of changed paths.
    pub async fn apply(&mut self, batch: &[PathBuf]) {
        let started = Instant::now();
        let changes = classify(batch, &self.inputs, &self.triggers, &self.ignored);
        if changes.is_empty() {
            return;
        }
        let mut summary = Vec::new();
        let before = self.snapshot.project.clone();
        if !changes.inputs.is_empty() {
            summary.push(self.reload(&changes.inputs).await);
        }
        // A service the reload recreated runs the new files already.
        let recreated = recreated(&before, &self.snapshot.project);

        let mut synced = 0;
        let mut restart: BTreeSet<String> = BTreeSet::new();
        let mut rebuild: BTreeSet<String> = BTreeSet::new();
        let mut execs: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        for (index, paths) in &changes.triggered {
            let Some(trigger) = self.triggers.get(*index).cloned() else {
                continue;
            };
            if trigger.syncs() {
                let paths: Vec<PathBuf> = paths.iter().cloned().collect();
                let t = Instant::now();
                match self.effects.sync(&trigger, &paths).await {
                    Ok(n) => {
                        synced += n;
                        self.effects.print(&format!(
                            "{}: synced {n} files {} ms",
                            trigger.service,
                            t.elapsed().as_millis()
                        ));
                    }
                    Err(e) => {
                        self.effects
                            .print(&format!("{}: sync failed: {e}", trigger.service));
                        continue;
                    }
                }
            }
            if trigger.rebuilds() {
                rebuild.insert(trigger.service.clone());
            }
            if trigger.restarts() && !recreated.contains(&trigger.service) {
                restart.insert(trigger.service.clone());
            }
            if let Some(command) = &trigger.exec {
                let list = execs.entry(trigger.service.clone()).or_default();
                if !list.contains(command) {
                    list.push(command.clone());
                }
            }
        }
        if synced > 0 {
            summary.push(format!("{synced} files synced"));
        }
        if !changes.triggered.is_empty() {
            // A watched tree made since (or made again) is watched itself
            // from now on.
            let set = watch_set(&self.snapshot, &self.triggers);
            if let Err(e) = self.effects.watch(&set) {
                self.effects.print(&format!("warning: {e}"));
            }
        }
        if !rebuild.is_empty() {
            let services: Vec<String> = rebuild.iter().cloned().collect();
            let t = Instant::now();
            let project = self.snapshot.project.clone();
            match self.effects.rebuild(&project, &services).await {
                Ok(lines) => summary.push(format!(
                    "{} rebuilt ({} actions) in {} ms",
                    services.join(", "),
                    lines.len(),
                    t.elapsed().as_millis()
                )),
                Err(e) => self
                    .effects
                    .print(&format!("{}: rebuild failed: {e}", services.join(", "))),
            }
        }
        // A rebuilt service runs in new containers already.
        restart.retain(|s| !rebuild.contains(s));
        if !restart.is_empty() {
            let services: Vec<String> = restart.into_iter().collect();
            let t = Instant::now();
            match self.effects.restart(&services).await {
                Ok(_) => {
                    summary.push(format!(
                        "{} restarted in {} ms",
                        services.join(", "),
                        t.elapsed().as_millis()
                    ));
                }
                Err(e) => self
                    .effects
                    .print(&format!("{}: restart failed: {e}", services.join(", "))),
            }
        }
        for (service, commands) in execs {
            for command in commands {
                let t = Instant::now();
                match self.effects.exec(&service, &command).await {
                    Ok(()) => self.effects.print(&format!(
                        "{service}: ran {} {} ms",
                        command.join(" "),
                        t.elapsed().as_millis()
                    )),
                    Err(e) => self
                        .effects
                        .print(&format!("{service}: exec {}: {e}", command.join(" "))),
                }
            }
        }
        if summary.is_empty() {
            // Each batch ends with a summary line, also when every step
            // failed or found nothing to do.
            summary.push("nothing applied".to_owned());
        }
        self.effects.print(&format!(
            "watch: {} in {} ms",
            summary.join(", "),
            started.elapsed().as_millis()
        ));
    }

    /// Reloads after a change of the stack's files: an invalid file changes
    /// nothing; a valid one is reconciled. Returns the summary's part.
    async fn reload(&mut self, changed: &BTreeSet<PathBuf>) -> String {
        let names: Vec<String> = changed.iter().map(|p| display_name(p)).collect();
        let names = names.join(", ");
        let snapshot = match self.effects.load() {
            Ok(snapshot) => snapshot,
            Err(errors) => {
                for e in errors {
                    self.effects.print(&format!("error: {e}"));
                }
                return format!("{names} is invalid, nothing changed (fix it to apply)");
            }
        };
        let triggers = match triggers(&snapshot.project, &snapshot.project_dir) {
            Ok(t) => t,
            Err(e) => {
                self.effects.print(&format!("error: {e}"));
                return format!("{names} is not applied, nothing changed");
            }
        };
        let set = watch_set(&snapshot, &triggers);
        if let Err(e) = self.effects.watch(&set) {
            self.effects.print(&format!("warning: {e}"));
        }
        // Watching follows the new file even when applying it fails, so
        // that fixing it is seen.
        self.inputs = snapshot.inputs.iter().cloned().collect();
        self.triggers = triggers;
        let result = self.effects.up(&snapshot.project).await;
        self.snapshot = snapshot;
        match result {
            Ok(lines) => {
                let actions = lines.iter().filter(|l| !l.starts_with("warning")).count();
                if actions == 0 {
                    format!("{names} reloaded, nothing to do")
                } else {
                    format!("{names} reloaded, {actions} actions")
                }
            }
            Err(e) => {
                self.effects.print(&format!("error: {e}"));
                format!("{names} reloaded, applying it failed")
            }
        }
    }
}

/// The services of `after` whose container a reconcile from `before`
/// makes anew (new or changed configuration).
fn recreated(before: &Project, after: &Project) -> BTreeSet<String> {
    after
        .services
        .iter()
        .filter(|(name, service)| {
            before.services.get(*name).map(config_hash) != Some(config_hash(service))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
