//! The loader: find files, read `.env`, parse, interpolate, resolve
//! `extends`/`include`, merge, validate against the schema, apply profiles,
//! normalise, type, and check consistency. Nothing here reads the process
//! environment or prints: the environment comes in [`LoadOptions`] and
//! warnings go out in [`Loaded`].

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::dotenv;
use crate::error::{Diagnostics, ErrorKind, LoadError, LoadErrors, Span, Warning};
use crate::extends::{FileLoader, IncludeLoader, rebase_service, resolve_extends, resolve_include};
use crate::interpolate::{Vars, interpolate_tree, substitute};
use crate::merge::{merge, prepare_document, strip_resets};
use crate::model::Project;
use crate::node::{Node, SpanTable, Value};
use crate::normalize::{Ctx, absolutize, normalize_project};

/// File names looked up, in order, in the working directory and its parents.
pub const STACK_FILE_NAMES: &[&str] = &[
    "stack.yaml",
    "stack.yml",
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Where a stack file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(PathBuf),
    /// Content given directly (`-f -` reads stdin into this); `name` is shown in errors.
    Inline {
        name: String,
        content: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The files in `-f` order; empty means "look them up from `working_dir`".
    pub files: Vec<Source>,
    pub project_name: Option<String>,
    pub project_directory: Option<PathBuf>,
    /// Where relative `-f` paths and the file lookup start.
    pub working_dir: PathBuf,
    /// Active profiles (`--profile`, `STACK_PROFILES`); `*` enables all.
    pub profiles: Vec<String>,
    /// `--env-file`s; when empty, `.env` in the project directory is used if present.
    pub env_files: Vec<PathBuf>,
    /// The process environment; it wins over `.env` values.
    pub environment: IndexMap<String, String>,
}

impl LoadOptions {
    pub fn new(working_dir: impl Into<PathBuf>) -> Self {
        Self {
            working_dir: working_dir.into(),
            ..Self::default()
        }
    }

    pub fn with_environment<K: Into<String>, V: Into<String>>(
        mut self,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.environment = env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self
    }

    pub fn with_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.push(Source::Path(path.into()));
        self
    }

    pub fn with_content(mut self, name: impl Into<String>, content: impl Into<String>) -> Self {
        self.files.push(Source::Inline {
            name: name.into(),
            content: content.into(),
        });
        self
    }
}

/// A successful load.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub project: Project,
    pub warnings: Vec<Warning>,
    /// The files that were read, in merge order.
    pub files: Vec<PathBuf>,
    /// Every file whose change can change the project: `files`, `.env`
    /// (also when there is none yet) or `--env-file`, extended and included
    /// files (and their `.env`), services' `env_file`, secret and config
    /// files.
    pub inputs: Vec<PathBuf>,
    pub project_directory: PathBuf,
    /// The variables interpolation read: the environment over `.env` (or
    /// `--env-file`), with the project name (`config --environment`).
    pub environment: crate::interpolate::Vars,
}

/// Look for a stack file in `dir`, then its parents.
pub fn find_stack_file(dir: &Path) -> Option<PathBuf> {
    let mut cur = Some(dir);
    while let Some(d) = cur {
        for name in STACK_FILE_NAMES {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
        cur = d.parent();
    }
    None
}

/// Lowercase and keep `[a-z0-9_-]`, as Compose does; must start with a letter or digit.
pub fn normalize_project_name(name: &str) -> String {
    let s: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    s.trim_start_matches(['_', '-']).to_string()
}

struct Loader {
    vars: Vars,
}

impl Loader {
    fn read(&self, source: &Source, diags: &mut Diagnostics) -> Option<(Arc<str>, String)> {
        match source {
            Source::Inline { name, content } => Some((Arc::from(name.as_str()), content.clone())),
            Source::Path(p) => {
                let name: Arc<str> = Arc::from(p.display().to_string());
                match crate::input::read_text(p, crate::input::MAX_STACK_FILE) {
                    Ok(t) => Some((name, t)),
                    Err(e) => {
                        diags.error(
                            ErrorKind::Io,
                            &Span::synthetic(&name),
                            "",
                            format!("cannot read stack file: {}", e.reason()),
                        );
                        None
                    }
                }
            }
        }
    }

    /// Parse one file into its documents (empty ones dropped). Nothing is
    /// canonicalised yet: Compose interpolates the raw tree first, so that a
    /// variable in a list-form `depends_on` entry or an `environment` key is
    /// substituted before the entry becomes a mapping key.
    fn parse(&self, source: &Source, diags: &mut Diagnostics, single: bool) -> Option<Vec<Node>> {
        let (name, text) = self.read(source, diags)?;
        let docs = match crate::yaml::parse(&text, &name) {
            Ok(d) => d,
            Err(e) => {
                diags.errors.push(e);
                return None;
            }
        };
        let mut out = Vec::new();
        for doc in docs {
            match &doc.value {
                Value::Null => continue,
                Value::Map(_) => out.push(doc),
                _ => {
                    diags.error(
                        ErrorKind::Schema,
                        &doc.span,
                        "",
                        format!(
                            "the top level must be a mapping (found: {})",
                            doc.type_name()
                        ),
                    );
                    return None;
                }
            }
        }
        if out.is_empty() && single {
            diags.error(
                ErrorKind::Empty,
                &Span::new(name, 1, 1),
                "",
                "empty stack file",
            );
        }
        Some(out)
    }

    /// Interpolate each document, then canonicalise and merge them in order.
    fn combine(&self, docs: Vec<Node>, diags: &mut Diagnostics) -> Option<Node> {
        let mut out: Option<Node> = None;
        for mut doc in docs {
            self.interpolate(&mut doc, diags);
            prepare_document(&mut doc);
            match &mut out {
                None => out = Some(doc),
                Some(base) => merge(base, doc, ""),
            }
        }
        out
    }

    /// Parse, interpolate, canonicalise and merge the documents of one file.
    fn load_one(&self, source: &Source, diags: &mut Diagnostics) -> Option<Node> {
        let docs = self.parse(source, diags, true)?;
        self.combine(docs, diags)
    }

    fn interpolate(&self, doc: &mut Node, diags: &mut Diagnostics) {
        interpolate_tree(doc, &mut String::new(), &self.vars, diags);
    }
}

struct SubLoader<'a> {
    vars: &'a Vars,
    /// Every file read on the way (extended, included, their `.env`), for
    /// [`Loaded::inputs`].
    read: &'a RefCell<Vec<PathBuf>>,
}

impl FileLoader for SubLoader<'_> {
    fn load_file(&mut self, path: &Path, diags: &mut Diagnostics) -> Option<Node> {
        let l = Loader {
            vars: self.vars.clone(),
        };
        self.read.borrow_mut().push(path.to_path_buf());
        l.load_one(&Source::Path(path.to_path_buf()), diags)
    }
}

impl IncludeLoader for SubLoader<'_> {
    fn load_included(
        &mut self,
        paths: &[PathBuf],
        env_files: &[PathBuf],
        project_dir: Option<&Path>,
        diags: &mut Diagnostics,
        stack: &mut HashSet<PathBuf>,
    ) -> Option<Node> {
        let dir = project_dir
            .map(Path::to_path_buf)
            .or_else(|| paths[0].parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let env_files: Vec<PathBuf> = if env_files.is_empty() {
            vec![dir.join(".env")]
        } else {
            env_files.to_vec()
        };
        let mut vars = self.vars.clone();
        let mut dot = Vars::new();
        for f in &env_files {
            self.read.borrow_mut().push(f.clone());
            let text = match crate::input::read_text(f, crate::input::MAX_ENV_FILE) {
                Ok(text) => text,
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    let span = Span::synthetic(&f.display().to_string());
                    diags.error(
                        ErrorKind::Io,
                        &span,
                        "",
                        format!("cannot read env file: {}", e.reason()),
                    );
                    continue;
                }
            };
            if let Ok(vals) = dotenv::parse(&text, self.vars) {
                dot.extend(vals.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
            }
        }
        for (k, v) in dot {
            vars.entry(k).or_insert(v);
        }
        let l = Loader { vars: vars.clone() };
        let mut merged: Option<Node> = None;
        for p in paths {
            self.read.borrow_mut().push(p.clone());
            let Some(mut doc) = l.load_one(&Source::Path(p.clone()), diags) else {
                continue;
            };
            // Relative paths in an included file are relative to its project directory.
            let mut sub = SubLoader {
                vars: &vars,
                read: self.read,
            };
            resolve_include(&mut doc, &dir, &mut sub, diags, stack);
            resolve_extends(&mut doc, &dir, &mut sub, diags, 0);
            if let Some(services) = doc.get_mut("services").and_then(Node::as_map_mut) {
                for e in services.values_mut() {
                    rebase_service(&mut e.node, &dir);
                }
            }
            for kind in ["secrets", "configs"] {
                if let Some(items) = doc.get_mut(kind).and_then(Node::as_map_mut) {
                    for e in items.values_mut() {
                        if let Some(Node {
                            value: Value::Str(f),
                            ..
                        }) = e.node.get_mut("file")
                        {
                            *f = absolutize(&dir, f);
                        }
                    }
                }
            }
            match &mut merged {
                None => merged = Some(doc),
                Some(b) => merge(b, doc, ""),
            }
        }
        merged
    }
}

fn fail(diags: Diagnostics) -> LoadErrors {
    LoadErrors {
        errors: diags.errors,
    }
}

/// Load, validate and normalise a project. All errors found are returned together.
pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadErrors> {
    let mut diags = Diagnostics::default();
    let files: Vec<Source> = if opts.files.is_empty() {
        match find_stack_file(&opts.working_dir) {
            Some(p) => vec![Source::Path(p)],
            None => {
                return Err(LoadErrors::one(LoadError::new(
                    ErrorKind::Empty,
                    Span::synthetic(&opts.working_dir.display().to_string()),
                    "",
                    format!(
                        "no stack file found here or in a parent directory (looked for {})",
                        STACK_FILE_NAMES.join(", ")
                    ),
                )));
            }
        }
    } else {
        opts.files
            .iter()
            .map(|s| match s {
                Source::Path(p) if p.is_relative() => Source::Path(opts.working_dir.join(p)),
                other => other.clone(),
            })
            .collect()
    };
    let first_dir = match &files[0] {
        Source::Path(p) => p
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| opts.working_dir.clone()),
        Source::Inline { .. } => opts.working_dir.clone(),
    };
    let project_dir = opts
        .project_directory
        .as_ref()
        .map(|d| {
            if d.is_relative() {
                opts.working_dir.join(d)
            } else {
                d.clone()
            }
        })
        .unwrap_or(first_dir);

    // Interpolation variables: the environment wins over .env / --env-file.
    let mut vars: Vars = opts.environment.clone();
    let env_files: Vec<PathBuf> = if opts.env_files.is_empty() {
        let p = project_dir.join(".env");
        if p.is_file() { vec![p] } else { Vec::new() }
    } else {
        opts.env_files
            .iter()
            .map(|p| {
                if p.is_relative() {
                    opts.working_dir.join(p)
                } else {
                    p.clone()
                }
            })
            .collect()
    };
    for f in &env_files {
        let span = Span::synthetic(&f.display().to_string());
        match crate::input::read_text(f, crate::input::MAX_ENV_FILE) {
            Ok(text) => match dotenv::parse(&text, &opts.environment) {
                Ok(vals) => {
                    for (k, v) in vals {
                        if let Some(v) = v {
                            vars.entry(k).or_insert(v);
                        }
                    }
                }
                Err(e) => diags.error(ErrorKind::Value, &span, "", e.to_string()),
            },
            Err(e) => diags.error(
                ErrorKind::Io,
                &span,
                "",
                format!("cannot read env file: {}", e.reason()),
            ),
        }
    }

    let loader = Loader { vars: vars.clone() };
    let mut docs: Vec<(Vec<Node>, PathBuf)> = Vec::new();
    let single = files.len() == 1;
    let mut read_files = Vec::new();
    for f in &files {
        if let Source::Path(p) = f {
            read_files.push(p.clone());
        }
        if let Some(doc) = loader.parse(f, &mut diags, single) {
            let dir = match f {
                Source::Path(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
                Source::Inline { .. } => opts.working_dir.clone(),
            };
            docs.push((doc, dir));
        }
    }
    if diags.has_errors() {
        return Err(fail(diags));
    }

    // Project name: -p, then STACK_PROJECT_NAME / COMPOSE_PROJECT_NAME, then `name:`, then the directory.
    let mut name_from_file = None;
    for doc in docs.iter().flat_map(|(d, _)| d) {
        if let Some(n) = doc.get("name") {
            name_from_file = Some(n.clone());
        }
    }
    let raw_name = if let Some(n) = &opts.project_name {
        n.clone()
    } else if let Some(n) = vars
        .get("STACK_PROJECT_NAME")
        .or_else(|| vars.get("COMPOSE_PROJECT_NAME"))
        .filter(|n| !n.is_empty())
    {
        n.clone()
    } else if let Some(Node {
        value: Value::Str(s),
        ..
    }) = &name_from_file
    {
        substitute(s, &vars, &mut Vec::new()).unwrap_or_else(|_| s.clone())
    } else {
        project_dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let project_name = normalize_project_name(&raw_name);
    if project_name.is_empty() {
        diags.error(ErrorKind::Value, &Span::synthetic("project name"), "name", format!("project name {raw_name:?} has no usable character: use lowercase letters, digits, '_' or '-'"));
    }
    let mut vars = vars;
    vars.entry("COMPOSE_PROJECT_NAME".into())
        .or_insert_with(|| project_name.clone());
    vars.entry("STACK_PROJECT_NAME".into())
        .or_insert_with(|| project_name.clone());
    let loader = Loader { vars: vars.clone() };

    let read = RefCell::new(Vec::new());
    let mut merged: Option<Node> = None;
    for (file_docs, dir) in docs {
        let Some(mut doc) = loader.combine(file_docs, &mut diags) else {
            continue;
        };
        let mut sub = SubLoader {
            vars: &vars,
            read: &read,
        };
        // The top-level files count as being loaded: including one of them is a cycle.
        let mut stack: HashSet<PathBuf> = read_files.iter().cloned().collect();
        resolve_include(&mut doc, &dir, &mut sub, &mut diags, &mut stack);
        resolve_extends(&mut doc, &dir, &mut sub, &mut diags, 0);
        if dir != project_dir
            && let Some(services) = doc.get_mut("services").and_then(Node::as_map_mut)
        {
            for e in services.values_mut() {
                rebase_service(&mut e.node, &dir);
            }
        }
        prepare_document(&mut doc);
        match &mut merged {
            None => merged = Some(doc),
            Some(b) => merge(b, doc, ""),
        }
    }
    let Some(mut merged) = merged else {
        diags.error(
            ErrorKind::Empty,
            &Span::synthetic("stack file"),
            "",
            "empty stack file",
        );
        return Err(fail(diags));
    };
    strip_resets(&mut merged);

    let mut spans = SpanTable::new();
    let mut json = merged.to_json(&mut String::new(), &mut spans);
    crate::schema::validate(&json, &spans, &mut diags);
    if diags.has_errors() {
        return Err(fail(diags));
    }

    apply_profiles(&mut json, &opts.profiles);
    {
        let mut ctx = Ctx {
            spans: &spans,
            diags: &mut diags,
            vars: &vars,
            project_dir: &project_dir,
        };
        normalize_project(&mut json, &mut ctx);
    }
    if let serde_json::Value::Object(root) = &mut json {
        root.insert("name".into(), serde_json::Value::String(project_name));
    }
    if diags.has_errors() {
        return Err(fail(diags));
    }
    let accepted = json.clone();
    let project: Project = match serde_path_to_error::deserialize(json) {
        Ok(p) => p,
        Err(e) => {
            let path = e.path().to_string();
            let pointer = format!("/{}", path.replace('.', "/"));
            let span = crate::node::span_for(&spans, &pointer)
                .unwrap_or_else(|| Span::synthetic("<stack file>"));
            diags.error(ErrorKind::Value, &span, &path, e.into_inner().to_string());
            return Err(fail(diags));
        }
    };
    let mut project = project;
    apply_defaults(&mut project);
    crate::validate::check(&project, &spans, &mut diags);
    crate::names::check(&project, &spans, &mut diags);
    if diags.has_errors() {
        return Err(fail(diags));
    }
    crate::no_effect::warn(&accepted, &project, &spans, &mut diags);
    let mut inputs = read_files.clone();
    inputs.extend(env_files);
    if opts.env_files.is_empty() {
        // A `.env` written later changes the project too.
        inputs.push(project_dir.join(".env"));
    }
    inputs.extend(read.into_inner());
    inputs.extend(referenced_files(&project, &project_dir));
    let mut seen = HashSet::new();
    inputs.retain(|p| seen.insert(p.clone()));
    Ok(Loaded {
        project,
        warnings: diags.warnings,
        files: read_files,
        inputs,
        project_directory: project_dir,
        environment: vars,
    })
}

/// The files a loaded project names: services' `env_file`, secret and
/// config files.
fn referenced_files(project: &Project, project_dir: &Path) -> Vec<PathBuf> {
    let env_files = project
        .services
        .values()
        .flat_map(|s| s.env_file.iter().map(|e| e.path.as_str()));
    let files = project
        .secrets
        .values()
        .chain(project.configs.values())
        .filter_map(|f| f.file.as_deref());
    env_files
        .chain(files)
        .map(|p| project_dir.join(p))
        .collect()
}

/// What Compose fills in: the `default` network for services that name no
/// network, and the real names of networks and volumes (`<project>_<key>`,
/// or the key itself for external ones).
fn apply_defaults(project: &mut Project) {
    let mut uses_default = false;
    for svc in project.services.values_mut() {
        if svc.network_mode.is_none() && svc.networks.is_empty() {
            svc.networks.insert("default".into(), None);
        }
        uses_default |= svc.networks.contains_key("default");
    }
    if uses_default && !project.networks.contains_key("default") {
        project
            .networks
            .insert("default".into(), crate::model::Network::default());
    }
    let name = project.name.clone();
    for (key, net) in project.networks.iter_mut() {
        if net.name.is_none() {
            net.name = Some(if net.external {
                key.clone()
            } else {
                format!("{name}_{key}")
            });
        }
    }
    for (key, vol) in project.volumes.iter_mut() {
        if vol.name.is_none() {
            vol.name = Some(if vol.external {
                key.clone()
            } else {
                format!("{name}_{key}")
            });
        }
    }
}

fn apply_profiles(json: &mut serde_json::Value, active: &[String]) {
    let all = active.iter().any(|p| p == "*");
    let Some(serde_json::Value::Object(services)) = json.get_mut("services") else {
        return;
    };
    services.retain(|_, svc| {
        let Some(serde_json::Value::Array(profiles)) = svc.get("profiles") else {
            return true;
        };
        if profiles.is_empty() || all {
            return true;
        }
        profiles
            .iter()
            .any(|p| p.as_str().is_some_and(|p| active.iter().any(|a| a == p)))
    });
}
