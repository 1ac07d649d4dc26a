//! `sync`: copy changed files from the host into a running container, the
//! way `docker cp` does, through the container's root filesystem as the
//! host sees it (the overlay's merged directory) or, for a target on a bind
//! mount or a volume, through the mount's source directory. No exec, no
//! tar: a file is written beside its destination and renamed over it, so a
//! process in the container never reads half a file.
//!
//! Paths in the container are resolved with its symlinks read as the
//! container would (an absolute link points into the container's root,
//! never the host's).

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Spec;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot read the runtime spec {path}: {message}")]
    Spec { path: PathBuf, message: String },
    #[error(
        "target {target} is on a {kind} mount in the container, which sync cannot reach from the host"
    )]
    Unreachable { target: String, kind: String },
    #[error("too many levels of symbolic links resolving {0} in the container")]
    Loop(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SyncError + 'a {
    move |source| SyncError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// A container's file system as seen from the host.
#[derive(Debug, Clone)]
pub struct ContainerFs {
    root: PathBuf,
    /// Mount destinations with their host source (bind mounts and volumes)
    /// or `None` (anything else), longest destination first.
    mounts: Vec<(PathBuf, Option<PathBuf>, String)>,
}

impl ContainerFs {
    /// From the container's runtime spec (`config.json` in `bundle`).
    pub fn from_bundle(bundle: &Path) -> Result<Self, SyncError> {
        let path = bundle.join("config.json");
        let spec = fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Spec>(&b).map_err(|e| e.to_string()))
            .map_err(|message| SyncError::Spec {
                path: path.clone(),
                message,
            })?;
        Ok(Self::from_spec(&spec, bundle))
    }

    pub fn from_spec(spec: &Spec, bundle: &Path) -> Self {
        let root = spec
            .root()
            .as_ref()
            .map(|r| bundle.join(r.path()))
            .unwrap_or_else(|| bundle.join("rootfs"));
        let mut mounts: Vec<(PathBuf, Option<PathBuf>, String)> = spec
            .mounts()
            .iter()
            .flatten()
            .map(|m| {
                let kind = m.typ().clone().unwrap_or_default();
                let bind = kind == "bind"
                    || m.options()
                        .iter()
                        .flatten()
                        .any(|o| o == "bind" || o == "rbind");
                let source = m.source().clone().filter(|_| bind);
                let kind = if bind { "bind".to_owned() } else { kind };
                (lexical(m.destination()), source, kind)
            })
            .collect();
        mounts.sort_by_key(|(dest, _, _)| std::cmp::Reverse(dest.components().count()));
        Self { root, mounts }
    }

    /// Where `target` (absolute, in the container) is on the host.
    pub fn host_path(&self, target: &Path) -> Result<PathBuf, SyncError> {
        let target = lexical(target);
        for (dest, source, kind) in &self.mounts {
            let Ok(rest) = target.strip_prefix(dest) else {
                continue;
            };
            return match source {
                Some(source) => secure_join(source, rest),
                None => Err(SyncError::Unreachable {
                    target: target.display().to_string(),
                    kind: kind.clone(),
                }),
            };
        }
        secure_join(&self.root, &target)
    }
}

/// `/a/./b/../c` → `/a/c`, always absolute.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// `root` joined with `path` as if `root` were `/`: `..` stops at the root
/// and symlinks on the way are followed inside it (an absolute link starts
/// again at `root`). Missing components are kept as written.
pub fn secure_join(root: &Path, path: &Path) -> Result<PathBuf, SyncError> {
    let mut pending: Vec<PathBuf> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    let mut resolved = PathBuf::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part.as_os_str() == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(&resolved).join(&part);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err(SyncError::Loop(path.display().to_string()));
                }
                let link = fs::read_link(&candidate).map_err(io_err("read link", &candidate))?;
                if link.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in link.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(PathBuf::from(n)),
                        Component::ParentDir => pending.push(PathBuf::from("..")),
                        _ => {}
                    }
                }
            }
            _ => resolved.push(part),
        }
    }
    Ok(root.join(resolved))
}

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub copied: usize,
    pub removed: usize,
}

impl SyncReport {
    pub fn files(&self) -> usize {
        self.copied + self.removed
    }
}

/// Brings each of `changed` (host paths under `source`) to `target` in the
/// container: copied (directories with what is in them) when it exists on
/// the host, removed from the container when it does not. `keep` filters
/// paths relative to `source` (the trigger's ignore patterns).
pub fn sync_paths(
    container: &ContainerFs,
    source: &Path,
    target: &str,
    changed: &[PathBuf],
    keep: &dyn Fn(&Path) -> bool,
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    for path in changed {
        let Ok(rel) = path.strip_prefix(source) else {
            continue;
        };
        let dest = container.host_path(&Path::new(target).join(rel))?;
        copy_or_remove(path, &dest, rel, keep, &mut report)?;
    }
    Ok(report)
}

fn copy_or_remove(
    from: &Path,
    to: &Path,
    rel: &Path,
    keep: &dyn Fn(&Path) -> bool,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let meta = match fs::symlink_metadata(from) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return remove(to, report);
        }
        Err(e) => return Err(io_err("read", from)(e)),
    };
    // A target on a bind mount of the watched tree itself is the very same
    // file: nothing to copy (and writing it would trigger another change).
    if let Ok(dest) = fs::symlink_metadata(to)
        && dest.dev() == meta.dev()
        && dest.ino() == meta.ino()
    {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    }
    let kind = meta.file_type();
    if kind.is_dir() {
        if fs::symlink_metadata(to).is_ok_and(|m| !m.is_dir()) {
            remove(to, report)?;
        }
        match fs::create_dir(to) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(io_err("create", to)(e));
            }
            _ => {}
        }
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io_err("set the mode of", to))?;
        let _ = std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()));
        let entries = fs::read_dir(from).map_err(io_err("read", from))?;
        for entry in entries {
            let entry = entry.map_err(io_err("read", from))?;
            let rel = rel.join(entry.file_name());
            if keep(&rel) {
                copy_or_remove(
                    &entry.path(),
                    &to.join(entry.file_name()),
                    &rel,
                    keep,
                    report,
                )?;
            }
        }
        return Ok(());
    }
    if fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
        remove(to, report)?;
    }
    let name = to.file_name().unwrap_or_default().to_string_lossy();
    let temp = to.with_file_name(format!(".{name}.stack-sync.{}", std::process::id()));
    let _ = fs::remove_file(&temp);
    if kind.is_symlink() {
        let link = fs::read_link(from).map_err(io_err("read link", from))?;
        symlink(&link, &temp).map_err(io_err("create", &temp))?;
    } else if kind.is_file() {
        fs::copy(from, &temp).map_err(io_err("copy to", &temp))?;
        fs::set_permissions(&temp, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io_err("set the mode of", &temp))?;
    } else {
        // Sockets, fifos, devices: not content to sync.
        return Ok(());
    }
    let _ = std::os::unix::fs::lchown(&temp, Some(meta.uid()), Some(meta.gid()));
    fs::rename(&temp, to).map_err(io_err("rename into", to))?;
    report.copied += 1;
    Ok(())
}

fn remove(path: &Path, report: &mut SyncReport) -> Result<(), SyncError> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            report.removed += 1;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}
