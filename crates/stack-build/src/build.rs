//! A build: the stages a target needs, in order, each step from the cache or
//! run, and the final image (config, history, layers) committed to the store
//! under its tags.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use stack_image::model::ImageConfig;
use stack_image::{Digest, ImageId, Reference, Store};

use crate::archive;
use crate::cache::{Cache, Entry, Key};
use crate::context::{self, Context, ContextError};
use crate::dockerfile::{
    self, Command, Copy, Dockerfile, Instruction, Pos, RunMount, RunNetwork, Source, Stage, Step,
};
use crate::fetch;
use crate::ignore::Patterns;
use crate::layer::{self, LayerError};
use crate::network::{BuildNetwork, NetConfig};
use crate::run::{self, RunError, RunSpec, Scratch, StepMount, StepNetwork};
use crate::secret::Secret;
use crate::vars::{self, Scope, VarError};

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The stack root (`--root`): the image store and the cache live there.
    pub root: PathBuf,
    pub context: PathBuf,
    /// The Dockerfile; `<context>/Dockerfile` when `None`.
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<Reference>,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    /// Labels added to the image (`build.labels`), over the Dockerfile's.
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    /// The network of `RUN` steps that name none (`build.network`).
    pub network: RunNetwork,
    /// Where the build's bridge network (for `RUN --network=default`) is
    /// recorded and takes its subnet from.
    pub net: NetConfig,
    /// Exported step caches read into the cache first (`cache_from:
    /// type=local,src=DIR`).
    pub cache_from: Vec<PathBuf>,
    /// Where the build's steps are exported to (`cache_to:
    /// type=local,dest=DIR`).
    pub cache_to: Option<PathBuf>,
    /// A binary whose `main` calls `stack_runtime::init_main()` first.
    pub init_binary: PathBuf,
    /// `SOURCE_DATE_EPOCH`: the image's times, for reproducible digests.
    pub source_date_epoch: Option<u64>,
    /// Secrets `RUN --mount=type=secret` can read, by id.
    pub secrets: BTreeMap<String, Secret>,
    /// Names `RUN` steps resolve (`build.extra_hosts`, `--add-host`), in
    /// their `/etc/hosts`.
    pub extra_hosts: Vec<(String, std::net::IpAddr)>,
    /// The size of `/dev/shm` in `RUN` steps, bytes (`build.shm_size`).
    pub shm_size: Option<u64>,
    /// Named contexts (`build.additional_contexts`), over stages and images
    /// of the same name.
    pub named_contexts: BTreeMap<String, context::Named>,
}

/// Progress of a build, for the command line to print.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// `[n/total] TEXT` starts.
    Step {
        n: usize,
        total: usize,
        stage: Option<&'a str>,
        text: &'a str,
    },
    Cached {
        n: usize,
    },
    Done {
        n: usize,
        elapsed: Duration,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Parse(#[from] dockerfile::ParseErrors),
    #[error("{file}:{}:{}: {instruction}: {message}", pos.line, pos.column)]
    At {
        file: PathBuf,
        pos: Pos,
        instruction: String,
        message: String,
    },
    #[error(
        "{file}:{}:{}: `{text}` failed with exit code {status}{}",
        pos.line,
        pos.column,
        if output.is_empty() { String::new() } else { format!("; its output:\n{}", output.trim_end()) }
    )]
    StepFailed {
        file: PathBuf,
        pos: Pos,
        text: String,
        status: i32,
        output: String,
    },
    #[error("target stage {0:?} not found in the Dockerfile")]
    NoTarget(String),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Store(#[from] stack_image::StoreError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("the build network: {0}")]
    Network(#[from] stack_net::NetError),
    #[error("the exported build cache: {0}")]
    CacheIo(#[from] crate::cache_io::CacheIoError),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The result: the image and how many steps ran versus came from the cache.
#[derive(Debug, Clone)]
pub struct Built {
    pub id: ImageId,
    pub manifest: Digest,
    pub steps_run: usize,
    pub steps_cached: usize,
}

/// One source of a `COPY`/`ADD` resolved: where it is, the name it takes
/// in a destination directory, the path it keeps under it (`--parents`),
/// whether an archive is unpacked (local `ADD`) and its mode.
struct Item {
    path: PathBuf,
    name: String,
    keep: Option<PathBuf>,
    unpack: bool,
    mode: Option<u32>,
}

/// A `RUN --mount` ready before the cache is asked; the files of a copy
/// or a secret are made only when the step runs.
enum Prepared {
    Ready(StepMount),
    /// A path of the context: bound as is, or copied when something in it
    /// is ignored or the step may write to it.
    Context {
        context: Context,
        path: PathBuf,
        target: String,
        rw: bool,
        copy: bool,
    },
    Secret {
        value: Vec<u8>,
        target: String,
        owner: (u32, u32),
        mode: u32,
    },
}

/// A step's mounts, the digest of what its bind mounts show, and the other
/// stages' files those read (overlays unmounted when this goes).
struct PreparedMounts {
    mounts: Vec<Prepared>,
    hash: Vec<u8>,
    _views: Vec<Scratch>,
}

/// One layer of the image being made.
#[derive(Debug, Clone)]
struct Layer {
    digest: Digest,
    diff_id: Digest,
    size: u64,
}

/// A stage as it is being built.
#[derive(Debug, Clone)]
struct State {
    layers: Vec<Layer>,
    config: ImageConfig,
    history: Vec<Value>,
    key: Key,
    /// ARG values declared in the stage (build args win over defaults).
    args: Scope,
    shell: Vec<String>,
    created: String,
}

impl State {
    /// Variables for expansion: the stage's args, with ENV over them.
    fn scope(&self) -> Scope {
        let mut s = self.args.clone();
        for e in self.config.env.iter().flatten() {
            if let Some((k, v)) = e.split_once('=') {
                s.insert(k.to_owned(), v.to_owned());
            }
        }
        s
    }

    fn set_env(&mut self, key: &str, value: &str) {
        let env = self.config.env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').is_some_and(|(k, _)| k == key))
        {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
    }
}

fn rfc3339(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(epoch))
        .to_string()
}

struct Builder<'a> {
    opts: &'a BuildOptions,
    file: &'a Dockerfile,
    store: Store,
    cache: Cache,
    context: Context,
    /// Directory contexts by name (`build.additional_contexts`).
    named: HashMap<String, Context>,
    global: Scope,
    /// Stages built so far, for `FROM stage`, `--from` and mounts.
    built: Mutex<HashMap<usize, State>>,
    /// The number of each needed stage's `FROM` line: step numbers follow
    /// the file, whichever stage runs first.
    first_n: HashMap<usize, usize>,
    total: usize,
    run: AtomicUsize,
    cached: AtomicUsize,
    progress: Mutex<&'a mut (dyn FnMut(Event<'_>) + Send)>,
    /// The bridge of `RUN` steps on the default network, made by the first
    /// and removed when the build ends (the builder is dropped).
    network: OnceLock<BuildNetwork>,
    network_made: Mutex<()>,
    /// Every layer step's key and entry, for `cache_to`.
    entries: Mutex<Vec<(Key, Entry)>>,
}

/// Where one stage is in its steps: its name and the number of its
/// current step.
struct Cursor<'s> {
    label: Option<&'s str>,
    n: Cell<usize>,
}

/// Builds the image `opts` describe.
pub fn build(
    opts: &BuildOptions,
    progress: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Built, BuildError> {
    let dockerfile_path = opts
        .dockerfile
        .clone()
        .unwrap_or_else(|| opts.context.join("Dockerfile"));
    let text = fs::read_to_string(&dockerfile_path).map_err(io_at(&dockerfile_path))?;
    let file = dockerfile::parse(&dockerfile_path, &text)?;
    build_parsed(opts, &file, progress)
}

/// Builds an already parsed Dockerfile.
pub fn build_parsed(
    opts: &BuildOptions,
    file: &Dockerfile,
    progress: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Built, BuildError> {
    let store = Store::open(&opts.root)?;
    let cache = Cache::open(&opts.root).map_err(io_at(&opts.root))?;
    let context = Context::open(&opts.context, Some(&file.path))?;
    for src in &opts.cache_from {
        let added = crate::cache_io::import(&store, &cache, src)?;
        tracing::info!(from = %src.display(), added, "imported build cache");
    }
    let target = match &opts.target {
        Some(t) => file
            .stage_index(t)
            .ok_or_else(|| BuildError::NoTarget(t.clone()))?,
        None => file.stages.len() - 1,
    };
    let mut global = predefined();
    for (k, v) in &file.global_args {
        let value = match opts.build_args.get(k) {
            Some(v) => v.clone(),
            None => match v {
                Some(v) => vars::expand(v, &global, file.escape).map_err(|e| BuildError::At {
                    file: file.path.clone(),
                    pos: Pos::default(),
                    instruction: "ARG".into(),
                    message: e.to_string(),
                })?,
                None => String::new(),
            },
        };
        global.insert(k.clone(), value);
    }
    let needed = needed_stages(file, target, &global);
    let mut first_n = HashMap::new();
    let mut total = 0;
    for &i in &needed {
        first_n.insert(i, total + 1);
        total += 1 + file.stages[i].steps.iter().filter(|s| is_step(s)).count();
    }
    let mut named = HashMap::new();
    for (name, c) in &opts.named_contexts {
        if let context::Named::Dir(dir) = c {
            named.insert(name.clone(), Context::open(dir, None)?);
        }
    }
    let b = Builder {
        opts,
        file,
        store,
        cache,
        context,
        named,
        global,
        built: Mutex::new(HashMap::new()),
        first_n,
        total,
        run: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
        progress: Mutex::new(progress),
        network: OnceLock::new(),
        network_made: Mutex::new(()),
        entries: Mutex::new(Vec::new()),
    };
    // Stages whose inputs are built run together, each on a thread of its
    // own; the first failure (in file order) is the build's.
    let mut todo = needed.clone();
    while !todo.is_empty() {
        let built: Vec<usize> = b.built_indices();
        let (ready, later): (Vec<usize>, Vec<usize>) = todo.iter().partition(|&&i| {
            stage_deps(file, i, &b.global)
                .iter()
                .all(|d| built.contains(d) || !needed.contains(d))
        });
        // A stage that waits on nothing unbuilt always exists: dependencies
        // point to earlier stages only.
        let ready = if ready.is_empty() {
            vec![todo[0]]
        } else {
            ready
        };
        let results: Vec<(usize, Result<State, BuildError>)> = if ready.len() == 1 {
            vec![(ready[0], b.stage(ready[0]))]
        } else {
            let b = &b;
            std::thread::scope(|scope| {
                let handles: Vec<_> = ready
                    .iter()
                    .map(|&i| (i, scope.spawn(move || b.stage(i))))
                    .collect();
                handles
                    .into_iter()
                    .map(|(i, h)| (i, h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))))
                    .collect()
            })
        };
        for (i, result) in results {
            b.built
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(i, result?);
        }
        todo = later.into_iter().filter(|i| !ready.contains(i)).collect();
    }
    let mut state = b
        .built
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&target)
        .expect("the target stage was built");
    if !opts.labels.is_empty() {
        state
            .config
            .labels
            .get_or_insert_with(Default::default)
            .extend(opts.labels.clone());
    }
    let (id, manifest) = b.commit(&state)?;
    if let Some(dest) = &opts.cache_to {
        let entries = b.entries.lock().unwrap_or_else(|e| e.into_inner()).clone();
        crate::cache_io::export(&b.store, &entries, dest)?;
    }
    Ok(Built {
        id,
        manifest,
        steps_run: b.run.into_inner(),
        steps_cached: b.cached.into_inner(),
    })
}

/// The args BuildKit defines without an `ARG` default.
fn predefined() -> Scope {
    let p = stack_image::Platform::host();
    let platform = p.to_string();
    let mut s = Scope::new();
    for prefix in ["TARGET", "BUILD"] {
        s.insert(format!("{prefix}PLATFORM"), platform.clone());
        s.insert(format!("{prefix}OS"), p.os.clone());
        s.insert(format!("{prefix}ARCH"), p.architecture.clone());
        s.insert(
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        );
    }
    s
}

/// Steps that make a layer and get a progress line (as BuildKit shows them).
fn is_step(s: &Step) -> bool {
    matches!(
        s.instruction,
        Instruction::Run { .. } | Instruction::Copy(_)
    )
}

/// The stages `target` depends on (through `FROM stage`, `COPY --from` and
/// `RUN --mount=from=`), in file order, `target` last.
fn needed_stages(file: &Dockerfile, target: usize, global: &Scope) -> Vec<usize> {
    let mut need = vec![false; file.stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut need[i], true) {
            continue;
        }
        todo.extend(stage_deps(file, i, global));
    }
    (0..file.stages.len()).filter(|&i| need[i]).collect()
}

/// The earlier stages stage `i` reads.
fn stage_deps(file: &Dockerfile, i: usize, global: &Scope) -> Vec<usize> {
    let stage = &file.stages[i];
    let mut out = Vec::new();
    let base = vars::expand(&stage.base, global, file.escape).unwrap_or_default();
    if let Some(j) = file.stage_index(&base).filter(|&j| j < i) {
        out.push(j);
    }
    for step in &stage.steps {
        let froms: Vec<&String> = match &step.instruction {
            Instruction::Copy(Copy { from: Some(f), .. }) => vec![f],
            Instruction::Run { mounts, .. } => mounts
                .iter()
                .filter_map(|m| match m {
                    RunMount::Bind { from: Some(f), .. } => Some(f),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for f in froms {
            let f = vars::expand(f, global, file.escape).unwrap_or_default();
            if let Some(j) = file.stage_index(&f).filter(|&j| j < i) {
                out.push(j);
            }
        }
    }
    out
}

impl Builder<'_> {
    fn built_indices(&self) -> Vec<usize> {
        self.built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    fn built_stage(&self, j: usize) -> Option<State> {
        self.built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&j)
            .cloned()
    }

    fn report(&self, e: Event<'_>) {
        let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        (*p)(e);
    }

    fn at(&self, pos: Pos, instruction: &str, message: impl Into<String>) -> BuildError {
        BuildError::At {
            file: self.file.path.clone(),
            pos,
            instruction: instruction.to_owned(),
            message: message.into(),
        }
    }

    fn var_err(&self, pos: Pos, instruction: &str) -> impl FnOnce(VarError) -> BuildError + '_ {
        let instruction = instruction.to_owned();
        move |e| self.at(pos, &instruction, e.to_string())
    }

    fn epoch_or_now(&self) -> String {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        rfc3339(self.opts.source_date_epoch.unwrap_or(now))
    }

    fn base(&self, index: usize, stage: &Stage) -> Result<State, BuildError> {
        let name = vars::expand(&stage.base, &self.global, self.file.escape)
            .map_err(self.var_err(stage.pos, "FROM"))?;
        let (name, may_be_stage) = match self.opts.named_contexts.get(&name) {
            Some(context::Named::Image(image)) => (image.clone(), false),
            Some(context::Named::Dir(_)) => {
                return Err(self.at(
                    stage.pos,
                    "FROM",
                    format!("{name}: a directory context cannot be a base image; read it with COPY --from or RUN --mount=from"),
                ));
            }
            None => (name, true),
        };
        if let Some(p) = &stage.platform {
            let p = vars::expand(p, &self.global, self.file.escape)
                .map_err(self.var_err(stage.pos, "FROM"))?;
            if p != stack_image::Platform::host().to_string() {
                return Err(self.at(
                    stage.pos,
                    "FROM",
                    format!(
                        "--platform={p}: only the host's platform ({}) builds here",
                        stack_image::Platform::host()
                    ),
                ));
            }
        }
        let fresh = |key: Key, created: String| State {
            layers: Vec::new(),
            config: ImageConfig {
                env: Some(vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                ]),
                ..Default::default()
            },
            history: Vec::new(),
            key,
            args: Scope::new(),
            shell: vec!["/bin/sh".into(), "-c".into()],
            created,
        };
        if let Some(j) = self
            .file
            .stage_index(&name)
            .filter(|&j| j < index && may_be_stage)
        {
            let mut s = self.built_stage(j).expect("stages build in order");
            s.args = Scope::new();
            return Ok(s);
        }
        if name == "scratch" {
            return Ok(fresh(Key::base("scratch"), self.epoch_or_now()));
        }
        let id = self.store.resolve(&name).map_err(|e| {
            self.at(
                stage.pos,
                "FROM",
                format!("{e} (pull or load it first: `stack image pull {name}`)"),
            )
        })?;
        let details = self.store.inspect(id.as_str())?;
        let mut s = fresh(
            Key::base(id.as_str()),
            details
                .config
                .created
                .clone()
                .unwrap_or_else(|| self.epoch_or_now()),
        );
        s.layers = details
            .layers
            .iter()
            .zip(&details.config.rootfs.diff_ids)
            .map(|(d, diff)| Layer {
                digest: d.clone(),
                diff_id: diff.clone(),
                size: fs::metadata(self.store.blob_path(d)).map_or(0, |m| m.len()),
            })
            .collect();
        s.config = details.config.config.clone();
        if s.config.env.is_none() {
            s.config.env = fresh(Key::base(""), String::new()).config.env;
        }
        // The base's history carries over, as `docker history` shows it.
        if let Ok(bytes) = self.store.read_blob(&id)
            && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
            && let Some(h) = v.get("history").and_then(Value::as_array)
        {
            s.history = h.clone();
        }
        Ok(s)
    }

    fn stage(&self, index: usize) -> Result<State, BuildError> {
        let file = self.file;
        let stage = &file.stages[index];
        let n = self.first_n.get(&index).copied().unwrap_or_default();
        let at = Cursor {
            label: stage.name.as_deref(),
            n: Cell::new(n),
        };
        let from_text = format!("FROM {}", stage.base);
        self.report(Event::Step {
            n,
            total: self.total,
            stage: at.label,
            text: &from_text,
        });
        let started = Instant::now();
        let mut state = self.base(index, stage)?;
        self.report(Event::Done {
            n,
            elapsed: started.elapsed(),
        });
        for step in &stage.steps {
            self.step(&mut state, step, &at)?;
        }
        Ok(state)
    }

    fn step(&self, state: &mut State, step: &Step, at: &Cursor<'_>) -> Result<(), BuildError> {
        let esc = self.file.escape;
        let pos = step.pos;
        match &step.instruction {
            Instruction::Arg(list) => {
                for (k, default) in list {
                    let value = match (self.opts.build_args.get(k), default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(d)) => Some(
                            vars::expand(d, &state.scope(), esc)
                                .map_err(self.var_err(pos, "ARG"))?,
                        ),
                        (None, None) => self.global.get(k).cloned(),
                    };
                    state.args.insert(k.clone(), value.unwrap_or_default());
                }
                Ok(())
            }
            Instruction::Env(list) => {
                for (k, v) in list {
                    let v =
                        vars::expand(v, &state.scope(), esc).map_err(self.var_err(pos, "ENV"))?;
                    let k =
                        vars::expand(k, &state.scope(), esc).map_err(self.var_err(pos, "ENV"))?;
                    state.set_env(&k, &v);
                }
                self.note(state, step, true);
                Ok(())
            }
            Instruction::Label(list) => {
                for (k, v) in list {
                    let k =
                        vars::expand(k, &state.scope(), esc).map_err(self.var_err(pos, "LABEL"))?;
                    let v =
                        vars::expand(v, &state.scope(), esc).map_err(self.var_err(pos, "LABEL"))?;
                    state
                        .config
                        .labels
                        .get_or_insert_with(Default::default)
                        .insert(k, v);
                }
                self.note(state, step, true);
                Ok(())
            }
            Instruction::Expose(text) => {
                for port in vars::expand_words(text, &state.scope(), esc)
                    .map_err(self.var_err(pos, "EXPOSE"))?
                {
                    let (num, proto) = port.split_once('/').unwrap_or((&port, "tcp"));
                    if num.split('-').any(|p| p.parse::<u16>().is_err()) {
                        return Err(self.at(pos, "EXPOSE", format!("{port:?} is not a port")));
                    }
                    state
                        .config
                        .exposed_ports
                        .get_or_insert_with(Default::default)
                        .insert(format!("{num}/{}", proto.to_ascii_lowercase()), json!({}));
                }
                self.note(state, step, true);
                Ok(())
            }
            Instruction::User(u) => {
                state.config.user =
                    Some(vars::expand(u, &state.scope(), esc).map_err(self.var_err(pos, "USER"))?);
                self.note(state, step, true);
                Ok(())
            }
            Instruction::Workdir(w) => {
                let w =
                    vars::expand(w, &state.scope(), esc).map_err(self.var_err(pos, "WORKDIR"))?;
                let base = state
                    .config
                    .working_dir
                    .clone()
                    .unwrap_or_else(|| "/".into());
                state.config.working_dir = Some(join_abs(&base, &w));
                self.note(state, step, true);
                Ok(())
            }
            Instruction::Volume(list) => {
                for v in list {
                    let v = vars::expand(v, &state.scope(), esc)
                        .map_err(self.var_err(pos, "VOLUME"))?;
                    state
                        .config
                        .volumes
                        .get_or_insert_with(Default::default)
                        .insert(v, json!({}));
                }
                self.note(state, step, true);
                Ok(())
            }
            Instruction::Entrypoint(c) => {
                state.config.entrypoint = Some(self.argv(state, c));
                // Docker: a new ENTRYPOINT resets an inherited CMD.
                state.config.cmd = None;
                self.note(state, step, true);
                Ok(())
            }
            Instruction::Cmd(c) => {
                state.config.cmd = Some(self.argv(state, c));
                self.note(state, step, true);
                Ok(())
            }
            Instruction::Shell(s) => {
                state.shell = s.clone();
                self.note(state, step, true);
                Ok(())
            }
            Instruction::StopSignal(s) => {
                state.config.stop_signal = Some(
                    vars::expand(s, &state.scope(), esc)
                        .map_err(self.var_err(pos, "STOPSIGNAL"))?,
                );
                self.note(state, step, true);
                Ok(())
            }
            Instruction::Healthcheck(h) => {
                state.config.healthcheck = Some(self.healthcheck(state, pos, h)?);
                self.note(state, step, true);
                Ok(())
            }
            Instruction::Onbuild(_) | Instruction::Maintainer(_) => {
                self.note(state, step, true);
                Ok(())
            }
            Instruction::Run {
                command,
                network,
                mounts,
            } => {
                let network = match network {
                    RunNetwork::Default => &self.opts.network,
                    named => named,
                };
                let argv = self.argv(state, command);
                let scope_args: Vec<String> =
                    state.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let prepared = self.prepare_mounts(state, pos, mounts)?;
                let key = state.key.next(&[
                    b"run",
                    serde_json::to_string(&argv).unwrap_or_default().as_bytes(),
                    scope_args.join("\0").as_bytes(),
                    serde_json::to_string(&state.config.env)
                        .unwrap_or_default()
                        .as_bytes(),
                    state
                        .config
                        .working_dir
                        .as_deref()
                        .unwrap_or("/")
                        .as_bytes(),
                    state.config.user.as_deref().unwrap_or("").as_bytes(),
                    format!("{network:?}").as_bytes(),
                    // What is mounted changes the step, not what a cache
                    // mount or a secret holds (BuildKit's rule); what a
                    // bind mount shows does.
                    format!("{mounts:?}").as_bytes(),
                    &prepared.hash,
                    format!("{:?}{:?}", self.opts.extra_hosts, self.opts.shm_size).as_bytes(),
                ]);
                self.layer_step(state, step, at, key, |b, st, scratch| {
                    let mut step_mounts = b.materialize(&prepared, scratch)?;
                    if !b.opts.extra_hosts.is_empty() {
                        let hosts = scratch.dir.join("hosts");
                        let text = run::hosts_file(&scratch.merged, &b.opts.extra_hosts);
                        fs::write(&hosts, text).map_err(io_at(&hosts))?;
                        step_mounts.push(StepMount::Dir {
                            source: hosts,
                            target: "/etc/hosts".into(),
                            readonly: true,
                        });
                    }
                    let mut env = st.config.env.clone().unwrap_or_default();
                    // Build args are the step's environment, below ENV.
                    for (k, v) in &st.args {
                        if !env
                            .iter()
                            .any(|e| e.split_once('=').is_some_and(|(ek, _)| ek == k))
                        {
                            env.push(format!("{k}={v}"));
                        }
                    }
                    let runtime_root = b.opts.root.join("build/runtime");
                    let id = format!("build-{}", &scratch_id(&scratch.dir));
                    let joined = match network {
                        RunNetwork::Default => Some(b.network()?.join(&id)?),
                        RunNetwork::None | RunNetwork::Host => None,
                    };
                    let step_network = match (network, &joined) {
                        (_, Some(j)) => StepNetwork::Bridge {
                            netns: &j.netns,
                            resolv_conf: &j.resolv_conf,
                        },
                        (RunNetwork::Host, None) => StepNetwork::Host,
                        _ => StepNetwork::None,
                    };
                    let outcome = run::run_step(
                        &scratch.merged,
                        &RunSpec {
                            id,
                            args: argv.clone(),
                            env,
                            cwd: st.config.working_dir.clone().unwrap_or_else(|| "/".into()),
                            user: st.config.user.clone().unwrap_or_default(),
                            network: step_network,
                            mounts: step_mounts.clone(),
                            shm_size: b.opts.shm_size,
                            init_binary: &b.opts.init_binary,
                            runtime_root: &runtime_root,
                        },
                    )?;
                    run::remove_mount_stubs(&scratch.merged, &b.layer_dirs(st), &step_mounts);
                    if outcome.status != 0 {
                        return Err(BuildError::StepFailed {
                            file: b.file.path.clone(),
                            pos: step.pos,
                            text: step.text.clone(),
                            status: outcome.status,
                            output: outcome.output,
                        });
                    }
                    Ok(())
                })
            }
            Instruction::Copy(copy) => self.copy(state, step, at, copy),
        }
    }

    /// The host side of `RUN --mount`s, before the cache is asked: what a
    /// bind mount shows is hashed for the step's key; a cache mount's
    /// directory under `<root>/build-cache/mounts` is made with its owner and
    /// mode the first time and kept between builds (`stack builder prune`
    /// removes them); a secret is read (a required one missing fails here).
    fn prepare_mounts(
        &self,
        state: &State,
        pos: Pos,
        mounts: &[RunMount],
    ) -> Result<PreparedMounts, BuildError> {
        let mut out = PreparedMounts {
            mounts: Vec::new(),
            hash: Vec::new(),
            _views: Vec::new(),
        };
        let mut hasher = Sha256::new();
        let workdir = state.config.working_dir.as_deref().unwrap_or("/");
        for m in mounts {
            let prepared = match m {
                RunMount::Cache {
                    id,
                    target,
                    uid,
                    gid,
                    mode,
                } => {
                    if !target.starts_with('/') {
                        return Err(self.at(
                            pos,
                            "RUN",
                            format!("--mount target {target:?} must be absolute"),
                        ));
                    }
                    let name = hex::encode(Sha256::digest(id.as_bytes()));
                    let dir = self.opts.root.join("build-cache/mounts").join(name);
                    if !dir.is_dir() {
                        let parent = dir.parent().expect("under the cache");
                        fs::create_dir_all(parent).map_err(io_at(parent))?;
                        // Made aside and renamed: a concurrent build sees
                        // the directory whole, owner and mode included.
                        let tmp = parent.join(format!(".new-{}", unique()));
                        let _ = fs::remove_dir_all(&tmp);
                        fs::create_dir(&tmp).map_err(io_at(&tmp))?;
                        std::os::unix::fs::chown(&tmp, Some(*uid), Some(*gid))
                            .map_err(io_at(&tmp))?;
                        fs::set_permissions(&tmp, fs::Permissions::from_mode(*mode))
                            .map_err(io_at(&tmp))?;
                        if let Err(e) = fs::rename(&tmp, &dir) {
                            let _ = fs::remove_dir_all(&tmp);
                            if !dir.is_dir() {
                                return Err(io_at(&dir)(e));
                            }
                        }
                    }
                    Prepared::Ready(StepMount::Dir {
                        source: dir,
                        target: target.clone(),
                        readonly: false,
                    })
                }
                RunMount::Tmpfs { target } => Prepared::Ready(StepMount::Tmpfs {
                    target: target.clone(),
                }),
                RunMount::Bind {
                    target,
                    source,
                    from: Some(from),
                    rw,
                } if !self.named.contains_key(from) => {
                    // Another stage's or an image's files.
                    let files = self.source_state(state, pos, "RUN", from)?;
                    let view = Scratch::mount(self.scratch_dir(), &self.layer_dirs(&files))?;
                    let path = resolve_in_root(&view.merged, source).ok_or_else(|| {
                        self.at(
                            pos,
                            "RUN",
                            format!("--mount source {source:?} not found in {from:?}"),
                        )
                    })?;
                    hash_tree(&path, &path, &Patterns::default(), &mut hasher)
                        .map_err(io_at(&path))?;
                    out._views.push(view);
                    Prepared::Ready(StepMount::Dir {
                        source: path,
                        target: join_abs(workdir, target),
                        readonly: !rw,
                    })
                }
                RunMount::Bind {
                    target,
                    source,
                    from,
                    rw,
                } => {
                    // The build context, or a named directory context.
                    let ctx = match from {
                        Some(f) => &self.named[f],
                        None => &self.context,
                    };
                    let matched = ctx.resolve(source).map_err(|e| {
                        self.at(pos, "RUN", format!("--mount source {source:?}: {e}"))
                    })?;
                    let [m] = matched.as_slice() else {
                        return Err(self.at(
                            pos,
                            "RUN",
                            format!(
                                "--mount source {source:?} names {} paths, not one",
                                matched.len()
                            ),
                        ));
                    };
                    ctx.hash(m, &mut hasher)
                        .map_err(|e| self.at(pos, "RUN", e.to_string()))?;
                    // Bound as is when nothing under it is left out and
                    // nothing can be written; else a copy of what the
                    // context lets through.
                    let copy = *rw || (m.path.is_dir() && ctx.has_ignores());
                    Prepared::Context {
                        context: ctx.clone(),
                        path: m.path.clone(),
                        target: join_abs(workdir, target),
                        rw: *rw,
                        copy,
                    }
                }
                RunMount::Secret {
                    id,
                    target,
                    required,
                    uid,
                    gid,
                    mode,
                } => match self.opts.secrets.get(id) {
                    Some(secret) => Prepared::Secret {
                        value: secret
                            .read()
                            .map_err(|e| self.at(pos, "RUN", format!("secret {id:?}: {e}")))?,
                        target: join_abs(workdir, target),
                        owner: (*uid, *gid),
                        mode: *mode,
                    },
                    None if *required => {
                        return Err(self.at(
                            pos,
                            "RUN",
                            format!(
                                "secret {id:?} is required but was not given to the build (--secret id={id},src=FILE or build.secrets)"
                            ),
                        ));
                    }
                    // BuildKit: an optional secret that is not given is
                    // not mounted.
                    None => continue,
                },
            };
            out.mounts.push(prepared);
        }
        out.hash = hasher.finalize().to_vec();
        Ok(out)
    }

    /// The mounts of a step that runs: copies and secret files made in its
    /// scratch directory, which goes with the step.
    fn materialize(
        &self,
        prepared: &PreparedMounts,
        scratch: &Scratch,
    ) -> Result<Vec<StepMount>, BuildError> {
        let mut out = Vec::new();
        for (i, p) in prepared.mounts.iter().enumerate() {
            out.push(match p {
                Prepared::Ready(m) => m.clone(),
                Prepared::Context {
                    path,
                    target,
                    rw,
                    copy: false,
                    ..
                } => StepMount::Dir {
                    source: path.clone(),
                    target: target.clone(),
                    readonly: !rw,
                },
                Prepared::Context {
                    context,
                    path,
                    target,
                    rw,
                    copy: true,
                } => {
                    let dir = scratch.dir.join(format!("bind-{i}"));
                    let skip = move |p: &Path, is_dir: bool| {
                        p.strip_prefix(context.root())
                            .is_ok_and(|rel| context.skips(rel, is_dir))
                    };
                    let meta = fs::metadata(path).map_err(io_at(path))?;
                    copy_tree(
                        path,
                        &dir,
                        (meta.uid(), meta.gid()),
                        None,
                        &mut HashMap::new(),
                        &skip,
                    )?;
                    StepMount::Dir {
                        source: dir,
                        target: target.clone(),
                        readonly: !rw,
                    }
                }
                Prepared::Secret {
                    value,
                    target,
                    owner,
                    mode,
                } => {
                    let file = scratch.dir.join(format!("secret-{i}"));
                    fs::write(&file, value).map_err(io_at(&file))?;
                    fs::set_permissions(&file, fs::Permissions::from_mode(*mode))
                        .map_err(io_at(&file))?;
                    std::os::unix::fs::chown(&file, Some(owner.0), Some(owner.1))
                        .map_err(io_at(&file))?;
                    StepMount::Dir {
                        source: file,
                        target: target.clone(),
                        readonly: true,
                    }
                }
            });
        }
        Ok(out)
    }

    /// Records a step that changes only the config in the history.
    fn note(&self, state: &mut State, step: &Step, empty: bool) {
        state.key = state.key.next(&[b"config", step.text.as_bytes()]);
        let mut h =
            json!({"created": state.created, "created_by": step.text, "comment": "stack build"});
        if empty {
            h["empty_layer"] = json!(true);
        }
        state.history.push(h);
    }

    fn argv(&self, state: &State, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = state.shell.clone();
                v.push(s.clone());
                v
            }
        }
    }

    fn healthcheck(
        &self,
        state: &State,
        pos: Pos,
        h: &dockerfile::Healthcheck,
    ) -> Result<stack_image::model::Healthcheck, BuildError> {
        let dur = |v: &Option<String>| -> Result<Option<u64>, BuildError> {
            v.as_ref()
                .map(|s| {
                    humantime::parse_duration(s)
                        .map(|d| d.as_nanos() as u64)
                        .map_err(|e| self.at(pos, "HEALTHCHECK", format!("{s:?}: {e}")))
                })
                .transpose()
        };
        let test = match &h.command {
            None => vec!["NONE".to_owned()],
            Some(Command::Exec(v)) => std::iter::once("CMD".to_owned())
                .chain(v.iter().cloned())
                .collect(),
            Some(Command::Shell(s)) => vec!["CMD-SHELL".to_owned(), s.clone()],
        };
        let _ = state;
        Ok(stack_image::model::Healthcheck {
            test: Some(test),
            interval: dur(&h.interval)?,
            timeout: dur(&h.timeout)?,
            start_period: dur(&h.start_period)?,
            start_interval: dur(&h.start_interval)?,
            retries: h
                .retries
                .as_ref()
                .map(|r| {
                    r.parse().map_err(|_| {
                        self.at(pos, "HEALTHCHECK", format!("--retries={r}: not a number"))
                    })
                })
                .transpose()?,
        })
    }

    /// The files `--from=NAME` reads: a stage built before this one, else
    /// an image of the store, as Docker reads it.
    fn source_state(
        &self,
        state: &State,
        pos: Pos,
        kw: &str,
        f: &str,
    ) -> Result<State, BuildError> {
        // A named context wins over a stage or image of its name.
        let (f, stage) = match self.opts.named_contexts.get(f) {
            Some(context::Named::Image(image)) => (image.as_str(), None),
            Some(context::Named::Dir(_)) => {
                return Err(self.at(
                    pos,
                    kw,
                    format!(
                        "--from={f}: a directory context is read as files here, not as an image"
                    ),
                ));
            }
            None => (f, self.file.stage_index(f)),
        };
        match stage {
            Some(j) => self.built_stage(j).ok_or_else(|| {
                self.at(
                    pos,
                    kw,
                    format!("--from={f}: stage is not built before this one"),
                )
            }),
            // Not a stage: an image of the store, as Docker reads it.
            None => {
                let id = self.store.resolve(f).map_err(|e| {
                            self.at(
                                pos,
                                kw,
                                format!(
                                    "--from={f}: no such stage, and {e} (pull or load it first: `stack image pull {f}`)"
                                ),
                            )
                        })?;
                let details = self.store.inspect(id.as_str())?;
                let mut image = state.clone();
                image.layers = details
                    .layers
                    .iter()
                    .zip(&details.config.rootfs.diff_ids)
                    .map(|(d, diff)| Layer {
                        digest: d.clone(),
                        diff_id: diff.clone(),
                        size: 0,
                    })
                    .collect();
                Ok(image)
            }
        }
    }

    fn scratch_dir(&self) -> PathBuf {
        self.store.dir().join("build").join(unique())
    }

    fn layer_dirs(&self, state: &State) -> Vec<PathBuf> {
        state
            .layers
            .iter()
            .map(|l| self.store.layer_path(&l.digest))
            .collect()
    }

    /// A step that makes a layer: from the cache, or by `make` filling a
    /// scratch overlay's upper dir.
    /// The build's bridge network, made on first use.
    fn network(&self) -> Result<&BuildNetwork, BuildError> {
        if let Some(n) = self.network.get() {
            return Ok(n);
        }
        let _made = self.network_made.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = self.network.get() {
            return Ok(n);
        }
        let n = BuildNetwork::create(&self.opts.root, &self.opts.net)?;
        Ok(self.network.get_or_init(|| n))
    }

    fn layer_step(
        &self,
        state: &mut State,
        step: &Step,
        at: &Cursor<'_>,
        key: Key,
        make: impl FnOnce(&Self, &State, &Scratch) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let n = at.n.get() + 1;
        at.n.set(n);
        self.report(Event::Step {
            n,
            total: self.total,
            stage: at.label,
            text: &step.text,
        });
        let started = Instant::now();
        let entry = match (!self.opts.no_cache)
            .then(|| self.cache.get(&key, &self.store))
            .flatten()
        {
            Some(e) => {
                self.cached.fetch_add(1, Ordering::Relaxed);
                self.report(Event::Cached { n });
                e
            }
            None => {
                let mut scratch = Scratch::mount(self.scratch_dir(), &self.layer_dirs(state))?;
                make(self, state, &scratch)?;
                scratch.unmount()?;
                let e = self.commit_layer(&scratch.upper)?;
                // Pinned, so that `image rm`/`image prune` keep what the
                // entry names; `builder prune` drops entries and pins together.
                self.store.pin(&e.digest)?;
                self.cache.put(&key, &e).map_err(io_at(&self.opts.root))?;
                self.run.fetch_add(1, Ordering::Relaxed);
                e
            }
        };
        self.report(Event::Done {
            n,
            elapsed: started.elapsed(),
        });
        if self.opts.cache_to.is_some() {
            self.entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((key.clone(), entry.clone()));
        }
        state.layers.push(Layer {
            digest: entry.digest,
            diff_id: entry.diff_id,
            size: entry.size,
        });
        state.created = entry.created.clone();
        state.history.push(
            json!({"created": entry.created, "created_by": step.text, "comment": "stack build"}),
        );
        state.key = key;
        Ok(())
    }

    /// Writes `dir` as a layer blob and moves it into the store as that
    /// layer's unpacked directory.
    fn commit_layer(&self, dir: &Path) -> Result<Entry, BuildError> {
        let tmp = self
            .store
            .dir()
            .join("tmp")
            .join(format!("layer-{}", scratch_id(dir)));
        let written = layer::write_layer(dir, &tmp, self.opts.source_date_epoch)?;
        self.store.import_blob_file(&tmp, Some(&written.digest))?;
        let dest = self.store.layer_path(&written.digest);
        // Another stage may make the same layer at the same time: the
        // first one in place is kept.
        if !dest.is_dir()
            && let Err(e) = fs::rename(dir, &dest)
            && !dest.is_dir()
        {
            return Err(io_at(&dest)(e));
        }
        Ok(Entry {
            digest: written.digest,
            diff_id: written.diff_id,
            size: written.size,
            created: self.epoch_or_now(),
        })
    }

    fn copy(
        &self,
        state: &mut State,
        step: &Step,
        at: &Cursor<'_>,
        copy: &Copy,
    ) -> Result<(), BuildError> {
        let esc = self.file.escape;
        let pos = step.pos;
        let kw = if copy.add { "ADD" } else { "COPY" };
        let scope = state.scope();
        let dest = vars::expand(&copy.dest, &scope, esc).map_err(self.var_err(pos, kw))?;
        let workdir = state
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".into());
        let dest_abs = join_abs(&workdir, &dest);
        // Docker copies into a directory when the destination says so, when
        // there are several sources, or when it already is one.
        let below_is_dir = self.layer_dirs(state).iter().rev().any(|l| {
            fs::metadata(l.join(dest_abs.trim_start_matches('/'))).is_ok_and(|m| m.is_dir())
        });
        let dir_dest = dest.ends_with('/')
            || dest == "."
            || dest.ends_with("/.")
            || copy.sources.len() > 1
            || below_is_dir;
        let owner = match &copy.chown {
            None => (0, 0),
            Some(c) => {
                let c = vars::expand(c, &scope, esc).map_err(self.var_err(pos, kw))?;
                match parse_owner(&c) {
                    Some(ids) => ids,
                    None => {
                        // Names, as Docker does: from the stage's own
                        // /etc/passwd and /etc/group.
                        let view = Scratch::mount(self.scratch_dir(), &self.layer_dirs(state))?;
                        run::resolve_user(&view.merged, &c)
                            .map_err(|e| self.at(pos, kw, format!("--chown={c}: {e}")))?
                    }
                }
            }
        };
        let mode = copy
            .chmod
            .as_deref()
            .and_then(|m| u32::from_str_radix(m, 8).ok());

        // Where sources come from: the context (or a named directory
        // context), or another stage's or image's files.
        let mut ctx = &self.context;
        let from_state = match &copy.from {
            None => None,
            Some(f) => {
                let f = vars::expand(f, &scope, esc).map_err(self.var_err(pos, kw))?;
                match self.named.get(&f) {
                    Some(named) => {
                        ctx = named;
                        None
                    }
                    None => Some(self.source_state(state, pos, kw, &f)?),
                }
            }
        };
        let from_mount = match &from_state {
            Some(s) => Some(Scratch::mount(self.scratch_dir(), &self.layer_dirs(s))?),
            None => None,
        };

        // `--exclude` patterns match paths inside each source (and a
        // wildcard's matches by name).
        let mut exclude_list = Vec::new();
        for e in &copy.exclude {
            exclude_list.push(vars::expand(e, &scope, esc).map_err(self.var_err(pos, kw))?);
        }
        let excludes = Patterns::new(&exclude_list)
            .map_err(|(p, e)| self.at(pos, kw, format!("--exclude={p}: {e}")))?;

        // Resolve every source first and hash it: the cache key needs the content.
        let mut hasher = Sha256::new();
        let mut plan: Vec<Item> = Vec::new();
        let mut inline: Vec<(String, String)> = Vec::new();
        let mut fetched = Vec::new();
        for src in &copy.sources {
            match src {
                Source::Inline { name, content } => {
                    hasher.update(name.as_bytes());
                    hasher.update([0]);
                    hasher.update(content.as_bytes());
                    inline.push((name.clone(), content.clone()));
                }
                Source::Url(url) => {
                    let url = vars::expand(url, &scope, esc).map_err(self.var_err(pos, kw))?;
                    let f = fetch::fetch(
                        &url,
                        &self.store.dir().join("tmp"),
                        copy.checksum.as_deref(),
                    )
                    .map_err(|e| self.at(pos, kw, e.to_string()))?;
                    if f.name.is_empty() && dir_dest {
                        return Err(self.at(
                            pos,
                            kw,
                            format!("{url}: no file name in the URL; name the destination file"),
                        ));
                    }
                    hasher.update(url.as_bytes());
                    hasher.update([0]);
                    hasher.update(f.sha256);
                    plan.push(Item {
                        path: f.file.path().to_owned(),
                        name: f.name.clone(),
                        keep: None,
                        unpack: false,
                        // Docker: a fetched file is 0600 unless --chmod says.
                        mode: Some(mode.unwrap_or(0o600)),
                    });
                    fetched.push(f);
                }
                Source::Path(p) => {
                    let p = vars::expand(p, &scope, esc).map_err(self.var_err(pos, kw))?;
                    // `--parents` keeps the path from the root, or from a
                    // `/./` pivot in the source.
                    let pivot = p
                        .split_once("/./")
                        .and_then(|(before, _)| context::clean(before))
                        .unwrap_or_default();
                    let keep = |rel: &Path| {
                        copy.parents
                            .then(|| rel.strip_prefix(&pivot).unwrap_or(rel).to_owned())
                    };
                    match &from_mount {
                        None => {
                            let matched = ctx
                                .resolve(&p)
                                .map_err(|e| self.at(pos, kw, e.to_string()))?;
                            for m in matched {
                                if !excludes.is_empty()
                                    && excludes.matches(Path::new(&name_of(&m.rel)))
                                {
                                    continue;
                                }
                                ctx.hash_except(&m, &excludes, &mut hasher)
                                    .map_err(|e| self.at(pos, kw, e.to_string()))?;
                                plan.push(Item {
                                    path: m.path.clone(),
                                    name: name_of(&m.rel),
                                    keep: keep(&m.rel),
                                    unpack: copy.add,
                                    mode,
                                });
                            }
                        }
                        Some(mnt) => {
                            let path = resolve_in_root(&mnt.merged, &p).ok_or_else(|| {
                                self.at(
                                    pos,
                                    kw,
                                    format!(
                                        "{p:?} not found in stage {:?}",
                                        copy.from.as_deref().unwrap_or("")
                                    ),
                                )
                            })?;
                            hash_tree(&path, &path, &excludes, &mut hasher)
                                .map_err(io_at(&path))?;
                            let rel = context::clean(&p).unwrap_or_default();
                            plan.push(Item {
                                path: path.clone(),
                                name: path
                                    .file_name()
                                    .map(|n| n.to_string_lossy().into_owned())
                                    .unwrap_or_default(),
                                keep: keep(&rel),
                                unpack: copy.add,
                                mode,
                            });
                        }
                    }
                }
            }
        }
        let key = state.key.next(&[
            kw.as_bytes(),
            dest_abs.as_bytes(),
            format!("{owner:?}{mode:?}{dir_dest}{}", copy.parents).as_bytes(),
            &hasher.finalize(),
        ]);
        let lower = self.layer_dirs(state);
        // What `.dockerignore` leaves out of the context is left out of
        // copied directories too (another stage's files are all copied).
        let context = from_mount.is_none().then(|| ctx.clone());
        let result = self.layer_step(state, step, at, key, |_, _, scratch| {
            let target = scratch.upper.join(dest_abs.trim_start_matches('/'));
            let mut links = HashMap::new();
            for item in &plan {
                let src = &item.path;
                let skip = |path: &Path, is_dir: bool| {
                    let ignored = context.as_ref().is_some_and(|c| {
                        path.strip_prefix(c.root())
                            .is_ok_and(|rel| c.skips(rel, is_dir))
                    });
                    ignored
                        || (!excludes.is_empty()
                            && path
                                .strip_prefix(src)
                                .is_ok_and(|rel| excludes.matches(rel)))
                };
                let meta = fs::symlink_metadata(src).map_err(io_at(src))?;
                // `ADD` of a local tar archive unpacks it into the destination.
                if item.unpack
                    && meta.is_file()
                    && let Some(archive) = archive::open(src).map_err(io_at(src))?
                {
                    make_parents(&scratch.upper, &target.join("x"), &lower)?;
                    archive::unpack(archive, &target).map_err(io_at(src))?;
                    continue;
                }
                let to = match &item.keep {
                    Some(keep) => target.join(keep),
                    None if meta.is_dir() => target.clone(),
                    None if dir_dest => target.join(&item.name),
                    None => target.clone(),
                };
                make_parents(&scratch.upper, &to, &lower)?;
                copy_tree(src, &to, owner, item.mode, &mut links, &skip)?;
            }
            for (name, content) in &inline {
                let to = if dir_dest {
                    target.join(name)
                } else {
                    target.clone()
                };
                make_parents(&scratch.upper, &to, &lower)?;
                fs::write(&to, content).map_err(io_at(&to))?;
                fs::set_permissions(&to, fs::Permissions::from_mode(mode.unwrap_or(0o644)))
                    .map_err(io_at(&to))?;
                std::os::unix::fs::lchown(&to, Some(owner.0), Some(owner.1)).map_err(io_at(&to))?;
            }
            Ok(())
        });
        drop(fetched);
        drop(from_mount);
        result
    }

    /// Writes config and manifest and records the image under its tags.
    fn commit(&self, state: &State) -> Result<(ImageId, Digest), BuildError> {
        let p = stack_image::Platform::host();
        let config = json!({
            "architecture": p.architecture,
            "os": p.os,
            "created": state.created,
            "config": state.config,
            "rootfs": {"type": "layers", "diff_ids": state.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
            "history": state.history,
        });
        let config_bytes = serde_json::to_vec(&config).expect("config serialises");
        let config_digest = self.store.put_blob(&config_bytes, None)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config_bytes.len()},
            "layers": state.layers.iter().map(|l| json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": l.digest.to_string(),
                "size": l.size,
            })).collect::<Vec<_>>(),
        });
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        let manifest_digest = self.store.put_blob(&manifest_bytes, None)?;
        let id = self
            .store
            .commit_image(&manifest_digest, &self.opts.tags, None)?;
        Ok((id, manifest_digest))
    }
}

/// A name no other step of any build on this host uses at the same time:
/// stages of one build run on several threads.
fn unique() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

fn scratch_id(dir: &Path) -> String {
    let s = dir.to_string_lossy();
    let h = Sha256::digest(s.as_bytes());
    hex::encode(&h[..6])
}

/// The last component of a context-relative path.
fn name_of(rel: &Path) -> String {
    rel.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `path` against `base` when relative; normalised, absolute.
fn join_abs(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", base.trim_end_matches('/'))
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if path.ends_with('/') && out.len() > 1 {
        out.push('/');
    }
    out
}

fn parse_owner(s: &str) -> Option<(u32, u32)> {
    match s.split_once(':') {
        Some((u, g)) => Some((u.parse().ok()?, g.parse().ok()?)),
        None => {
            let u = s.parse().ok()?;
            Some((u, u))
        }
    }
}

/// Creates the parents of `to` inside `upper` with the mode and owner they
/// have in the layers below (0755 root when new), so a copy does not change
/// an existing directory's permissions.
fn make_parents(upper: &Path, to: &Path, lower_lowest_first: &[PathBuf]) -> Result<(), BuildError> {
    let Some(parent) = to.parent() else {
        return Ok(());
    };
    let Ok(rel) = parent.strip_prefix(upper) else {
        return Ok(());
    };
    let mut cur = upper.to_path_buf();
    let mut rel_cur = PathBuf::new();
    for c in rel.components() {
        cur.push(c);
        rel_cur.push(c);
        if cur.is_dir() {
            continue;
        }
        fs::create_dir(&cur).map_err(io_at(&cur))?;
        let below = lower_lowest_first
            .iter()
            .rev()
            .map(|l| l.join(&rel_cur))
            .find_map(|p| fs::metadata(p).ok().filter(|m| m.is_dir()));
        let (mode, uid, gid) =
            below.map_or((0o755, 0, 0), |m| (m.mode() & 0o7777, m.uid(), m.gid()));
        fs::set_permissions(&cur, fs::Permissions::from_mode(mode)).map_err(io_at(&cur))?;
        std::os::unix::fs::lchown(&cur, Some(uid), Some(gid)).map_err(io_at(&cur))?;
    }
    Ok(())
}

/// Copies a file, symlink or directory tree (symlinks as links, never
/// followed), owned by `owner`, with `mode` over the source's when given.
fn copy_tree(
    src: &Path,
    to: &Path,
    owner: (u32, u32),
    mode: Option<u32>,
    links: &mut HashMap<(u64, u64), PathBuf>,
    skip: &dyn Fn(&Path, bool) -> bool,
) -> Result<(), BuildError> {
    let meta = fs::symlink_metadata(src).map_err(io_at(src))?;
    let ft = meta.file_type();
    if ft.is_dir() {
        if !to.is_dir() {
            fs::create_dir(to).map_err(io_at(to))?;
        }
        fs::set_permissions(
            to,
            fs::Permissions::from_mode(mode.unwrap_or(meta.mode() & 0o7777)),
        )
        .map_err(io_at(to))?;
        std::os::unix::fs::lchown(to, Some(owner.0), Some(owner.1)).map_err(io_at(to))?;
        let mut names: Vec<_> = fs::read_dir(src)
            .map_err(io_at(src))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_at(src))?;
        names.sort();
        for n in names {
            let child = src.join(&n);
            let is_dir = fs::symlink_metadata(&child).is_ok_and(|m| m.is_dir());
            if skip(&child, is_dir) {
                continue;
            }
            copy_tree(&child, &to.join(&n), owner, mode, links, skip)?;
        }
    } else if ft.is_symlink() {
        let target = fs::read_link(src).map_err(io_at(src))?;
        let _ = fs::remove_file(to);
        std::os::unix::fs::symlink(&target, to).map_err(io_at(to))?;
        std::os::unix::fs::lchown(to, Some(owner.0), Some(owner.1)).map_err(io_at(to))?;
    } else if ft.is_file() {
        // Files hard-linked in the source stay one file.
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                let _ = fs::remove_file(to);
                return fs::hard_link(first, to).map_err(io_at(to));
            }
            links.insert(key, to.to_owned());
        }
        fs::copy(src, to).map_err(io_at(to))?;
        fs::set_permissions(
            to,
            fs::Permissions::from_mode(mode.unwrap_or(meta.mode() & 0o7777)),
        )
        .map_err(io_at(to))?;
        std::os::unix::fs::lchown(to, Some(owner.0), Some(owner.1)).map_err(io_at(to))?;
    }
    Ok(())
}

/// A path inside another stage's root, its symlinks resolved inside that
/// root (an absolute link means the stage's `/`, never the host's).
fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let mut todo: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                out.pop();
                continue;
            }
            _ => {}
        }
        let candidate = out.join(&part);
        let full = root.join(&candidate);
        let meta = fs::symlink_metadata(&full).ok()?;
        if meta.file_type().is_symlink() && !todo.is_empty() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = fs::read_link(&full).ok()?;
            let t = target.to_string_lossy();
            if t.starts_with('/') {
                out = PathBuf::new();
            }
            todo.extend(t.split('/').rev().map(str::to_owned));
        } else {
            out = candidate;
        }
    }
    Some(root.join(out))
}

/// Hashes a tree in another stage (names, modes, contents), less what
/// `excludes` matches (relative to `base`, the copied source).
fn hash_tree(path: &Path, base: &Path, excludes: &Patterns, h: &mut Sha256) -> io::Result<()> {
    if !excludes.is_empty()
        && path
            .strip_prefix(base)
            .is_ok_and(|rel| !rel.as_os_str().is_empty() && excludes.matches(rel))
    {
        return Ok(());
    }
    let meta = fs::symlink_metadata(path)?;
    h.update(meta.mode().to_le_bytes());
    if meta.file_type().is_symlink() {
        h.update(fs::read_link(path)?.as_os_str().as_encoded_bytes());
    } else if meta.is_file() {
        h.update(fs::read(path)?);
    } else if meta.is_dir() {
        let mut names: Vec<_> = fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for n in names {
            h.update(n.as_encoded_bytes());
            h.update([0]);
            hash_tree(&path.join(&n), base, excludes, h)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_like_workdir() {
        assert_eq!(join_abs("/", "app"), "/app");
        assert_eq!(join_abs("/app", "src/"), "/app/src/");
        assert_eq!(join_abs("/app", "/x/../y"), "/y");
        assert_eq!(join_abs("/a/b", ".."), "/a");
    }

    #[test]
    fn owners_are_numeric() {
        assert_eq!(parse_owner("1000"), Some((1000, 1000)));
        assert_eq!(parse_owner("1:2"), Some((1, 2)));
        assert_eq!(parse_owner("app"), None);
    }
}
