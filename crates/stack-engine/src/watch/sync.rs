//! `sync`: copy changed files from the host into a running container, the
//! way `docker cp` does, through the container's root filesystem as the
//! host sees it (the overlay's merged directory) or, for a target on a bind
//! mount or a volume, through the mount's source directory. No exec, no
//! tar: a file is written beside its destination and renamed over it, so a
//! process in the container never reads half a file.
//!
//! Paths in the container are resolved with its symlinks read as the
//! container would (an absolute link points into the container's root,
//! never the host's): by the kernel (`openat2` with `RESOLVE_IN_ROOT`),
//! and every write is relative to a directory opened that way, so a process
//! in the container swapping a directory for a symlink meanwhile cannot
//! make a write land outside.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, symlinkat, unlinkat};
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

    /// The directory `target` (absolute, in the container) is resolved in
    /// (the root, or the source of the mount it is on) and its path there.
    fn locate(&self, target: &Path) -> Result<(PathBuf, PathBuf), SyncError> {
        let target = lexical(target);
        for (dest, source, kind) in &self.mounts {
            let Ok(rest) = target.strip_prefix(dest) else {
                continue;
            };
            return match source {
                Some(source) => Ok((source.clone(), rest.to_owned())),
                None => Err(SyncError::Unreachable {
                    target: target.display().to_string(),
                    kind: kind.clone(),
                }),
            };
        }
        let inside = target.strip_prefix("/").unwrap_or(&target).to_owned();
        Ok((self.root.clone(), inside))
    }

    /// Where `target` (absolute, in the container) is on the host.
    pub fn host_path(&self, target: &Path) -> Result<PathBuf, SyncError> {
        let (base, inside) = self.locate(target)?;
        secure_join(&base, &inside)
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
        let (base, inside) = container.locate(&Path::new(target).join(rel))?;
        let parent_rel = inside.parent().unwrap_or(Path::new(""));
        let parent = open_dir_in(&base, parent_rel)?;
        let at = At {
            dir: &parent,
            shown: base.join(parent_rel),
        };
        match inside.file_name() {
            Some(name) => at.copy_or_remove(path, name, rel, keep, &mut report)?,
            // The target is the root or a mount point itself: what is in
            // the source directory goes into it.
            None => {
                if let Ok(entries) = fs::read_dir(path) {
                    for entry in entries {
                        let entry = entry.map_err(io_err("read", path))?;
                        let rel = rel.join(entry.file_name());
                        if keep(&rel) {
                            let name = entry.file_name();
                            at.copy_or_remove(&entry.path(), &name, &rel, keep, &mut report)?;
                        }
                    }
                }
            }
        }
    }
    Ok(report)
}

/// Opens `rel` under `base` as a directory, resolved by the kernel as if
/// `base` were `/`, making the directories that are missing.
fn open_dir_in(base: &Path, rel: &Path) -> Result<OwnedFd, SyncError> {
    let dir_flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let root = nix::fcntl::open(base, dir_flags, Mode::empty())
        .map_err(|e| io_err("open", base)(e.into()))?;
    let how = || {
        OpenHow::new()
            .flags(dir_flags)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    };
    let mut current = root.try_clone().map_err(io_err("open", base))?;
    let mut prefix = PathBuf::new();
    for part in rel.components() {
        let Component::Normal(name) = part else {
            continue;
        };
        prefix.push(name);
        let shown = base.join(&prefix);
        current = match openat2(&root, &prefix, how()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                // Made in the directory resolved so far; mkdirat never
                // follows a symlink in the name it makes.
                match mkdirat(&current, name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(io_err("create", &shown)(e.into())),
                }
                openat2(&root, &prefix, how()).map_err(|e| io_err("open", &shown)(e.into()))?
            }
            Err(e) => return Err(io_err("open", &shown)(e.into())),
        };
    }
    Ok(current)
}

/// A directory in the container, open, and its host path for messages.
struct At<'a> {
    dir: &'a OwnedFd,
    shown: PathBuf,
}

fn mode_of(meta: &fs::Metadata) -> Mode {
    Mode::from_bits_truncate(meta.mode() & 0o7777)
}

fn is_dir(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

impl At<'_> {
    fn err(&self, what: &'static str, name: &OsStr) -> impl FnOnce(Errno) -> SyncError + '_ {
        let path = self.shown.join(name);
        move |e| SyncError::Io {
            what,
            path,
            source: e.into(),
        }
    }

    fn stat(&self, name: &OsStr) -> Option<FileStat> {
        fstatat(self.dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).ok()
    }

    fn copy_or_remove(
        &self,
        from: &Path,
        name: &OsStr,
        rel: &Path,
        keep: &dyn Fn(&Path) -> bool,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let meta = match fs::symlink_metadata(from) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.remove(name, report),
            Err(e) => return Err(io_err("read", from)(e)),
        };
        let existing = self.stat(name);
        // A target on a bind mount of the watched tree itself is the very
        // same file: nothing to copy (and writing it would be another change).
        if let Some(st) = &existing
            && st.st_dev == meta.dev()
            && st.st_ino == meta.ino()
        {
            return Ok(());
        }
        let (uid, gid) = (
            Some(Uid::from_raw(meta.uid())),
            Some(Gid::from_raw(meta.gid())),
        );
        let kind = meta.file_type();
        if kind.is_dir() {
            if existing.as_ref().is_some_and(|st| !is_dir(st)) {
                self.remove(name, report)?;
            }
            match mkdirat(self.dir, name, mode_of(&meta)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(self.err("create", name)(e)),
            }
            let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let child =
                openat(self.dir, name, flags, Mode::empty()).map_err(self.err("open", name))?;
            fchmod(&child, mode_of(&meta)).map_err(self.err("set the mode of", name))?;
            let _ = fchown(&child, uid, gid);
            let inner = At {
                dir: &child,
                shown: self.shown.join(name),
            };
            for entry in fs::read_dir(from).map_err(io_err("read", from))? {
                let entry = entry.map_err(io_err("read", from))?;
                let rel = rel.join(entry.file_name());
                if keep(&rel) {
                    inner.copy_or_remove(&entry.path(), &entry.file_name(), &rel, keep, report)?;
                }
            }
            return Ok(());
        }
        if existing.as_ref().is_some_and(is_dir) {
            self.remove(name, report)?;
        }
        let mut temp = OsString::from(".");
        temp.push(name);
        temp.push(format!(".stack-sync.{}", std::process::id()));
        let temp = temp.as_os_str();
        let _ = unlinkat(self.dir, temp, UnlinkatFlags::NoRemoveDir);
        if kind.is_symlink() {
            let link = fs::read_link(from).map_err(io_err("read link", from))?;
            symlinkat(link.as_os_str(), self.dir, temp).map_err(self.err("create", temp))?;
            let _ = fchownat(
                self.dir,
                temp,
                uid,
                gid,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            );
        } else if kind.is_file() {
            let flags = OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_WRONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC;
            let fd =
                openat(self.dir, temp, flags, mode_of(&meta)).map_err(self.err("create", temp))?;
            let mut out = fs::File::from(fd);
            let copied = fs::File::open(from).and_then(|mut input| io::copy(&mut input, &mut out));
            if let Err(e) = copied {
                let _ = unlinkat(self.dir, temp, UnlinkatFlags::NoRemoveDir);
                return Err(io_err("copy", from)(e));
            }
            // The umask took bits the source has.
            fchmod(&out, mode_of(&meta)).map_err(self.err("set the mode of", temp))?;
            let _ = fchown(&out, uid, gid);
        } else {
            // Sockets, fifos, devices: not content to sync.
            return Ok(());
        }
        renameat(self.dir, temp, self.dir, name).map_err(self.err("rename into", name))?;
        report.copied += 1;
        Ok(())
    }

    fn remove(&self, name: &OsStr, report: &mut SyncReport) -> Result<(), SyncError> {
        let Some(stat) = self.stat(name) else {
            return Ok(());
        };
        if is_dir(&stat) {
            self.remove_tree(name)?;
        } else {
            match unlinkat(self.dir, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(self.err("remove", name)(e)),
            }
        }
        report.removed += 1;
        Ok(())
    }

    /// Removes a directory and what is in it, never following a symlink.
    fn remove_tree(&self, name: &OsStr) -> Result<(), SyncError> {
        let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let child = openat(self.dir, name, flags, Mode::empty()).map_err(self.err("open", name))?;
        let listing = child.try_clone().map_err(|e| SyncError::Io {
            what: "open",
            path: self.shown.join(name),
            source: e,
        })?;
        let mut dir = nix::dir::Dir::from_fd(listing).map_err(self.err("read", name))?;
        let names: Vec<OsString> = dir
            .iter()
            .filter_map(Result::ok)
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
            .filter(|n| n != "." && n != "..")
            .collect();
        let inner = At {
            dir: &child,
            shown: self.shown.join(name),
        };
        for n in names {
            match inner.stat(&n) {
                Some(st) if is_dir(&st) => inner.remove_tree(&n)?,
                _ => match unlinkat(&child, n.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(e) => return Err(inner.err("remove", &n)(e)),
                },
            }
        }
        match unlinkat(self.dir, name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(self.err("remove", name)(e)),
        }
    }
}
