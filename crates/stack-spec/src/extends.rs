//! `extends` (same file or another file) and top-level `include`, resolved
//! on the node tree before files are merged.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Diagnostics, ErrorKind};
use crate::merge::{merge, prepare_service};
use crate::node::{Entry, Map, Node, Value};
use crate::normalize::absolutize;

/// Files being loaded through `extends`/`include`, to refuse cycles and bound depth.
const MAX_NESTING: usize = 16;

/// Loads one file to a single interpolated document (provided by the loader).
pub trait FileLoader {
    fn load_file(&mut self, path: &Path, diags: &mut Diagnostics) -> Option<Node>;
}

/// Make relative paths in a service absolute against `dir`, so the service
/// can move to a document from another directory.
pub fn rebase_service(svc: &mut Node, dir: &Path) {
    let Some(m) = svc.as_map_mut() else { return };
    let fix = |n: &mut Node| {
        if let Value::Str(s) = &mut n.value
            && !s.contains("://")
        {
            *s = absolutize(dir, s);
        }
    };
    if let Some(e) = m.get_mut("build") {
        match &mut e.node.value {
            Value::Str(_) => fix(&mut e.node),
            Value::Map(_) => {
                if let Some(c) = e.node.get_mut("context") {
                    fix(c);
                }
            }
            _ => {}
        }
    }
    for key in ["env_file", "label_file"] {
        if let Some(e) = m.get_mut(key) {
            match &mut e.node.value {
                Value::Str(_) => fix(&mut e.node),
                Value::Seq(items) => {
                    for it in items {
                        match &it.value {
                            Value::Str(_) => fix(it),
                            Value::Map(_) => {
                                if let Some(p) = it.get_mut("path") {
                                    fix(p);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(Entry {
        node: Node {
            value: Value::Seq(vols),
            ..
        },
        ..
    }) = m.get_mut("volumes")
    {
        for v in vols {
            match &mut v.value {
                Value::Str(s) if s.starts_with('.') || s.starts_with('~') => {
                    if let Some((src, rest)) = s.split_once(':') {
                        *s = format!("{}:{rest}", absolutize(dir, src));
                    }
                }
                Value::Map(_) => {
                    let bind = v.get("type").and_then(Node::as_str) == Some("bind");
                    if bind && let Some(src) = v.get_mut("source") {
                        fix(src);
                    }
                }
                _ => {}
            }
        }
    }
}

pub fn resolve_extends(
    doc: &mut Node,
    dir: &Path,
    loader: &mut dyn FileLoader,
    diags: &mut Diagnostics,
    depth: usize,
) {
    let names: Vec<String> = match doc.get("services").and_then(Node::as_map) {
        Some(m) => m.keys().cloned().collect(),
        None => return,
    };
    for name in names {
        let mut visiting = Vec::new();
        resolve_one(doc, &name, dir, loader, diags, &mut visiting, depth);
    }
}

fn resolve_one(
    doc: &mut Node,
    name: &str,
    dir: &Path,
    loader: &mut dyn FileLoader,
    diags: &mut Diagnostics,
    visiting: &mut Vec<String>,
    depth: usize,
) {
    let Some(svc) = doc.get("services").and_then(|s| s.get(name)) else {
        return;
    };
    let Some(ext) = svc.get("extends").cloned() else {
        return;
    };
    let path = format!("services.{name}.extends");
    if visiting.iter().any(|v| v == name) {
        visiting.push(name.to_string());
        diags.error(
            ErrorKind::Cycle,
            &ext.span,
            &path,
            format!("extends cycle: {}", visiting.join(" -> ")),
        );
        return;
    }
    let (base_name, file) = match &ext.value {
        Value::Str(s) => (Some(s.clone()), None),
        Value::Map(_) => (
            ext.get("service")
                .and_then(Node::as_str)
                .map(str::to_string),
            ext.get("file").and_then(Node::as_str).map(str::to_string),
        ),
        _ => (None, None),
    };
    let Some(base_name) = base_name else {
        diags.error(
            ErrorKind::Extends,
            &ext.span,
            &path,
            "extends needs `service`: the name of the service to extend",
        );
        return;
    };
    let base = match file {
        Some(f) => {
            if depth >= MAX_NESTING {
                diags.error(
                    ErrorKind::Cycle,
                    &ext.span,
                    &path,
                    "extends nested too deeply (a cycle between files?)",
                );
                return;
            }
            let p = PathBuf::from(absolutize(dir, &f));
            let Some(mut other) = loader.load_file(&p, diags) else {
                return;
            };
            let odir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            let mut v = Vec::new();
            resolve_one(
                &mut other,
                &base_name,
                &odir,
                loader,
                diags,
                &mut v,
                depth + 1,
            );
            match other.get("services").and_then(|s| s.get(&base_name)) {
                Some(b) => {
                    let mut b = b.clone();
                    rebase_service(&mut b, &odir);
                    b
                }
                None => {
                    diags.error(
                        ErrorKind::Extends,
                        &ext.span,
                        &path,
                        format!("service {base_name:?} not found in {}", p.display()),
                    );
                    return;
                }
            }
        }
        None => {
            visiting.push(name.to_string());
            resolve_one(doc, &base_name, dir, loader, diags, visiting, depth);
            visiting.pop();
            match doc.get("services").and_then(|s| s.get(&base_name)) {
                Some(b) => b.clone(),
                None => {
                    diags.error(
                        ErrorKind::Extends,
                        &ext.span,
                        &path,
                        format!("cannot extend undefined service {base_name:?}"),
                    );
                    return;
                }
            }
        }
    };
    let Some(services) = doc.get_mut("services") else {
        return;
    };
    let Some(svc) = services.get_mut(name) else {
        return;
    };
    let mut over = svc.clone();
    if let Some(m) = over.as_map_mut() {
        m.shift_remove("extends");
    }
    let mut merged = base;
    if let Some(m) = merged.as_map_mut() {
        m.shift_remove("extends");
    }
    prepare_service(&mut merged);
    prepare_service(&mut over);
    merge(&mut merged, over, &format!("services.{name}"));
    merged.span = svc.span.clone();
    *svc = merged;
}

/// Resolve top-level `include`: each included project's resources are added
/// unless this document defines them itself.
pub fn resolve_include(
    doc: &mut Node,
    dir: &Path,
    loader: &mut dyn IncludeLoader,
    diags: &mut Diagnostics,
    stack: &mut HashSet<PathBuf>,
) {
    let Some(map) = doc.as_map_mut() else { return };
    let Some(inc) = map.shift_remove("include") else {
        return;
    };
    let Value::Seq(items) = inc.node.value else {
        return;
    };
    for item in items {
        let (paths, env_files, project_dir) = match &item.value {
            Value::Str(s) => (vec![s.clone()], Vec::new(), None),
            Value::Map(_) => {
                let list = |k: &str| -> Vec<String> {
                    match item.get(k).map(|n| &n.value) {
                        Some(Value::Str(s)) => vec![s.clone()],
                        Some(Value::Seq(v)) => v
                            .iter()
                            .filter_map(|n| n.as_str().map(str::to_string))
                            .collect(),
                        _ => Vec::new(),
                    }
                };
                (
                    list("path"),
                    list("env_file"),
                    item.get("project_directory")
                        .and_then(Node::as_str)
                        .map(str::to_string),
                )
            }
            _ => continue,
        };
        let paths: Vec<PathBuf> = paths
            .iter()
            .map(|p| PathBuf::from(absolutize(dir, p)))
            .collect();
        if paths.is_empty() {
            continue;
        }
        if paths.iter().any(|p| stack.contains(p)) || stack.len() >= MAX_NESTING {
            diags.error(ErrorKind::Cycle, &item.span, "include", "include cycle");
            continue;
        }
        let env_files: Vec<PathBuf> = env_files
            .iter()
            .map(|p| PathBuf::from(absolutize(dir, p)))
            .collect();
        let pdir = project_dir.map(|d| PathBuf::from(absolutize(dir, &d)));
        stack.extend(paths.iter().cloned());
        let included = loader.load_included(&paths, &env_files, pdir.as_deref(), diags, stack);
        for p in &paths {
            stack.remove(p);
        }
        let Some(included) = included else { continue };
        let Some(inc_map) = included.as_map() else {
            continue;
        };
        for kind in ["services", "networks", "volumes", "secrets", "configs"] {
            let Some(src) = inc_map.get(kind).and_then(|e| e.node.as_map()) else {
                continue;
            };
            let dst = map.entry(kind.to_string()).or_insert_with(|| Entry {
                key_span: item.span.clone(),
                node: Node::new(Value::Map(Map::new()), item.span.clone()),
            });
            if matches!(dst.node.value, Value::Null) {
                dst.node.value = Value::Map(Map::new());
            }
            if let Some(dm) = dst.node.as_map_mut() {
                for (k, v) in src {
                    if dm.contains_key(k) {
                        if kind == "services" {
                            diags.error(ErrorKind::Reference, &v.key_span, &format!("services.{k}"), format!("included service {k:?} conflicts with a service of the same name"));
                        }
                        continue;
                    }
                    dm.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// Loads an included project to one merged document with absolute paths.
pub trait IncludeLoader {
    fn load_included(
        &mut self,
        paths: &[PathBuf],
        env_files: &[PathBuf],
        project_dir: Option<&Path>,
        diags: &mut Diagnostics,
        stack: &mut HashSet<PathBuf>,
    ) -> Option<Node>;
}
