//! `cp` and `export`: files out of and into a container as tar streams, the
//! way `docker cp` moves them.
//!
//! A container's tree is reached through a directory descriptor for its
//! root: `/proc/<pid>/root` of its init for a running container (so its
//! volumes, bind mounts and tmpfs mounts are seen as its processes see
//! them), or its overlay's merged directory for a stopped one. Every path
//! the user names inside it is resolved by the kernel with `openat2`
//! (`RESOLVE_IN_ROOT`): `..` stops at the container's root and a symlink
//! pointing to `/etc` means the container's `/etc`, never the host's. Below
//! the named path the walk and the extraction go one name at a time with
//! `O_NOFOLLOW`, relative to directories already opened, so a process in
//! the container swapping a directory for a symlink meanwhile cannot make
//! a read or a write leave the tree.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat, mknodat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("no such file or directory: {0}")]
    NotFound(String),
    #[error("not a directory: {0}")]
    NotADirectory(String),
    #[error("cannot copy a directory to a file: {0}")]
    DirectoryOntoFile(String),
    #[error("cannot overwrite directory {0} with a non-directory")]
    FileOntoDirectory(String),
    #[error("archive entry {0} leaves the destination")]
    Escape(String),
    #[error("archive entry {entry}: {what}")]
    Malformed { entry: String, what: &'static str },
    #[error("container {name} is not running and its root filesystem {root} is not mounted")]
    NotMounted { name: String, root: PathBuf },
    #[error("container {0} stopped while being opened")]
    Gone(String),
}

fn io(what: &'static str, path: impl AsRef<Path>) -> impl FnOnce(Errno) -> CopyError {
    let path = path.as_ref().display().to_string();
    move |e| CopyError::Io {
        what,
        path,
        source: e.into(),
    }
}

fn io_std(what: &'static str, path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> CopyError {
    let path = path.as_ref().display().to_string();
    move |source| CopyError::Io { what, path, source }
}

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// Anything else: a file, a symlink (not followed), a device.
    NotDir,
}

/// A directory tree files are read from or written into, with the way
/// paths are resolved in it.
#[derive(Debug)]
pub struct Tree {
    root: OwnedFd,
    resolve: ResolveFlag,
    /// Shown in messages before a path (`web-1:/etc`).
    label: String,
}

const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_RDONLY)
    .union(OFlag::O_CLOEXEC);

fn is(stat: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == kind
}

/// `path` as plain names: `..` taken away lexically (at the root it stays
/// there, as the kernel does), `.` and repeated slashes dropped.
pub fn clean(path: &str) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n.to_owned()),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn join(names: &[OsString]) -> PathBuf {
    let mut p = PathBuf::from(".");
    for n in names {
        p.push(n);
    }
    p
}

impl Tree {
    /// A running container's tree as its processes see it, through its
    /// init's root. `still_alive` is asked after opening, so that a pid
    /// reused by another process in between is never read from.
    pub fn running(
        pid: i32,
        name: &str,
        still_alive: impl FnOnce() -> bool,
    ) -> Result<Self, CopyError> {
        let path = format!("/proc/{pid}/root");
        let root = nix::fcntl::open(path.as_str(), DIR_FLAGS, Mode::empty())
            .map_err(|_| CopyError::Gone(name.to_owned()))?;
        if !still_alive() {
            return Err(CopyError::Gone(name.to_owned()));
        }
        Ok(Self::contained(root, name))
    }

    /// A container's root filesystem alone (a stopped container's tree, or
    /// what `export` archives): its overlay's merged directory, which must be
    /// the overlay mounted there (never the empty directory below it).
    pub fn overlay(rootfs: &Path, name: &str) -> Result<Self, CopyError> {
        let not_mounted = || CopyError::NotMounted {
            name: name.to_owned(),
            root: rootfs.to_owned(),
        };
        let root = nix::fcntl::open(rootfs, DIR_FLAGS, Mode::empty()).map_err(|_| not_mounted())?;
        let parent = rootfs.parent().ok_or_else(not_mounted)?;
        let here = fstat(&root).map_err(io("stat", rootfs))?;
        let up = nix::sys::stat::stat(parent).map_err(io("stat", parent))?;
        if here.st_dev == up.st_dev {
            return Err(not_mounted());
        }
        Ok(Self::contained(root, name))
    }

    fn contained(root: OwnedFd, name: &str) -> Self {
        Self {
            root,
            resolve: ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            label: format!("{name}:"),
        }
    }

    /// The host's own tree, with paths as the user typed them (relative
    /// ones from the current directory).
    pub fn host() -> Result<Self, CopyError> {
        let root = nix::fcntl::open("/", DIR_FLAGS, Mode::empty()).map_err(io("open", "/"))?;
        Ok(Self {
            root,
            resolve: ResolveFlag::RESOLVE_IN_ROOT,
            label: String::new(),
        })
    }

    /// Host paths are absolute from here on; relative ones are taken from
    /// the current directory.
    fn names(&self, path: &str) -> Vec<OsString> {
        if self.label.is_empty() && !path.starts_with('/') {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            return clean(&format!("{}/{path}", cwd.display()));
        }
        clean(path)
    }

    fn shown(&self, names: &[OsString]) -> String {
        let mut s = self.label.clone();
        for n in names {
            s.push('/');
            s.push_str(&n.to_string_lossy());
        }
        if names.is_empty() {
            s.push('/');
        }
        s
    }

    fn open(&self, names: &[OsString], flags: OFlag) -> Result<OwnedFd, Errno> {
        openat2(
            &self.root,
            &join(names),
            OpenHow::new()
                .flags(flags | OFlag::O_CLOEXEC)
                .resolve(self.resolve),
        )
    }

    /// The directory holding the last name of `names`, and that name (`None`
    /// for the root itself).
    fn parent(&self, names: &[OsString]) -> Result<(OwnedFd, Option<OsString>), CopyError> {
        let Some((last, up)) = names.split_last() else {
            return Ok((self.open(&[], DIR_FLAGS).map_err(io("open", "/"))?, None));
        };
        let dir = self.open(up, DIR_FLAGS).map_err(|e| self.missing(up, e))?;
        Ok((dir, Some(last.clone())))
    }

    fn missing(&self, names: &[OsString], e: Errno) -> CopyError {
        match e {
            Errno::ENOENT => CopyError::NotFound(self.shown(names)),
            Errno::ENOTDIR => CopyError::NotADirectory(self.shown(names)),
            e => io("open", self.shown(names))(e),
        }
    }

    /// What `path` is, or `None` when it does not exist. `follow`: a
    /// symlink as its target (within the tree).
    pub fn kind(&self, path: &str, follow: bool) -> Result<Option<Kind>, CopyError> {
        let names = self.names(path);
        let stat = if follow {
            match self.open(&names, OFlag::O_PATH) {
                Ok(fd) => fstat(&fd).map_err(io("stat", self.shown(&names)))?,
                Err(Errno::ENOENT) => return Ok(None),
                Err(e) => return Err(self.missing(&names, e)),
            }
        } else {
            let (dir, last) = match self.parent(&names) {
                Ok(p) => p,
                Err(CopyError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let Some(last) = last else {
                return Ok(Some(Kind::Dir));
            };
            match fstatat(&dir, last.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::ENOENT) => return Ok(None),
                Err(e) => return Err(io("stat", self.shown(&names))(e)),
            }
        };
        Ok(Some(if is(&stat, SFlag::S_IFDIR) {
            Kind::Dir
        } else {
            Kind::NotDir
        }))
    }

    /// Writes `path` as a tar stream to `out`, its entries under `name`
    /// (`None`: the directory's contents at the top, as `SRC/.` copies).
    /// `follow`: when `path` itself is a symlink, its target is archived.
    pub fn archive(
        &self,
        path: &str,
        name: Option<&str>,
        follow: bool,
        out: impl Write,
    ) -> Result<(), CopyError> {
        let names = self.names(path);
        let mut builder = tar::Builder::new(out);
        builder.follow_symlinks(false);
        let top = name.map(PathBuf::from).unwrap_or_default();
        let node = if follow {
            let fd = self
                .open(&names, OFlag::O_PATH)
                .map_err(|e| self.missing(&names, e))?;
            let st = fstat(&fd).map_err(io("stat", self.shown(&names)))?;
            // Opened again for reading, resolved in the tree again.
            let flags = if is(&st, SFlag::S_IFDIR) {
                DIR_FLAGS
            } else {
                OFlag::O_RDONLY | OFlag::O_NONBLOCK
            };
            if is(&st, SFlag::S_IFDIR) || is(&st, SFlag::S_IFREG) {
                let fd = self
                    .open(&names, flags)
                    .map_err(|e| self.missing(&names, e))?;
                let st = fstat(&fd).map_err(io("stat", self.shown(&names)))?;
                Node::Open(fd, st)
            } else {
                Node::Other(st, None)
            }
        } else {
            let (dir, last) = self.parent(&names)?;
            match last {
                None => {
                    let st = fstat(&dir).map_err(io("stat", self.shown(&names)))?;
                    Node::Open(dir, st)
                }
                Some(last) => open_node(&dir, &last).map_err(|e| self.missing(&names, e))?,
            }
        };
        let mut walk = Walk {
            builder: &mut builder,
            shown: self.shown(&names),
        };
        walk.add(node, &top, name.is_none())?;
        builder.finish().map_err(io_std("write", "the archive"))?;
        Ok(())
    }

    /// Extracts a tar stream into the directory `dest` (which must exist).
    /// `keep_owner`: entries keep their uid and gid (`cp -a`); otherwise
    /// they belong to root.
    pub fn extract(&self, dest: &str, input: impl Read, keep_owner: bool) -> Result<(), CopyError> {
        let base = self.names(dest);
        let dir = self
            .open(&base, DIR_FLAGS)
            .map_err(|e| self.missing(&base, e))?;
        drop(dir);
        let mut archive = tar::Archive::new(input);
        let entries = archive.entries().map_err(io_std("read", "the archive"))?;
        for entry in entries {
            let mut entry = entry.map_err(io_std("read", "the archive"))?;
            let raw = entry.path_bytes().into_owned();
            let shown_entry = String::from_utf8_lossy(&raw).into_owned();
            let mut rel = Vec::new();
            for c in Path::new(OsStr::from_bytes(&raw)).components() {
                match c {
                    Component::Normal(n) => rel.push(n.to_owned()),
                    Component::CurDir | Component::RootDir => {}
                    Component::ParentDir | Component::Prefix(_) => {
                        return Err(CopyError::Escape(shown_entry));
                    }
                }
            }
            let Some((last, up)) = rel.split_last() else {
                // The top directory itself (`./`): it exists already.
                continue;
            };
            let mut parent_names = base.clone();
            parent_names.extend(up.iter().cloned());
            let parent = self.dir_made(&parent_names)?;
            let at = At {
                dir: &parent,
                name: last,
                shown: self.shown(&[parent_names.as_slice(), std::slice::from_ref(last)].concat()),
            };
            let header = entry.header();
            let mode = Mode::from_bits_truncate(header.mode().unwrap_or(0o644) & 0o7777);
            let owner = keep_owner.then(|| {
                (
                    Uid::from_raw(header.uid().unwrap_or(0) as u32),
                    Gid::from_raw(header.gid().unwrap_or(0) as u32),
                )
            });
            let kind = header.entry_type();
            match kind {
                tar::EntryType::Directory => at.directory(mode, owner)?,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    at.file(&mut entry, mode, owner)?
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|t| OsStr::from_bytes(&t).to_owned())
                        .ok_or_else(|| CopyError::Malformed {
                            entry: shown_entry.clone(),
                            what: "a symbolic link without a target",
                        })?;
                    at.replace_non_dir()?;
                    symlinkat(target.as_os_str(), &parent, last.as_os_str())
                        .map_err(io("create", &at.shown))?;
                    if let Some((u, g)) = owner {
                        fchownat(
                            &parent,
                            last.as_os_str(),
                            Some(u),
                            Some(g),
                            AtFlags::AT_SYMLINK_NOFOLLOW,
                        )
                        .map_err(io("chown", &at.shown))?;
                    }
                }
                tar::EntryType::Link => {
                    let target =
                        entry
                            .link_name_bytes()
                            .map(|t| t.into_owned())
                            .ok_or_else(|| CopyError::Malformed {
                                entry: shown_entry.clone(),
                                what: "a hard link without a target",
                            })?;
                    let mut tnames = base.clone();
                    tnames.extend(clean(&String::from_utf8_lossy(&target)));
                    let (tdir, tlast) = self.parent(&tnames)?;
                    let tlast = tlast.ok_or_else(|| CopyError::Escape(shown_entry.clone()))?;
                    at.replace_non_dir()?;
                    linkat(
                        &tdir,
                        tlast.as_os_str(),
                        &parent,
                        last.as_os_str(),
                        AtFlags::empty(),
                    )
                    .map_err(io("link", &at.shown))?;
                }
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                    let flag = match kind {
                        tar::EntryType::Char => SFlag::S_IFCHR,
                        tar::EntryType::Block => SFlag::S_IFBLK,
                        _ => SFlag::S_IFIFO,
                    };
                    // A FIFO has no device numbers; a device node must.
                    let number = |n: io::Result<Option<u32>>| match (kind, n) {
                        (tar::EntryType::Fifo, _) => Ok(0),
                        (_, Ok(Some(n))) => Ok(u64::from(n)),
                        _ => Err(CopyError::Malformed {
                            entry: shown_entry.clone(),
                            what: "a device node without readable device numbers",
                        }),
                    };
                    let dev = nix::sys::stat::makedev(
                        number(header.device_major())?,
                        number(header.device_minor())?,
                    );
                    at.replace_non_dir()?;
                    mknodat(&parent, last.as_os_str(), flag, mode, dev)
                        .map_err(io("create", &at.shown))?;
                    if let Some((u, g)) = owner {
                        fchownat(
                            &parent,
                            last.as_os_str(),
                            Some(u),
                            Some(g),
                            AtFlags::AT_SYMLINK_NOFOLLOW,
                        )
                        .map_err(io("chown", &at.shown))?;
                    }
                }
                // Extended headers are read by the tar crate itself; what
                // is left (sparse files, volume labels) has no place here.
                _ => {}
            }
        }
        Ok(())
    }

    /// Opens the directory `names`, making the missing ones (mode 0755)
    /// one name at a time in the directory opened before it.
    fn dir_made(&self, names: &[OsString]) -> Result<OwnedFd, CopyError> {
        match self.open(names, DIR_FLAGS) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(self.missing(names, e)),
        }
        let Some((last, up)) = names.split_last() else {
            return Err(CopyError::NotFound(self.shown(names)));
        };
        let parent = self.dir_made(up)?;
        match mkdirat(&parent, last.as_os_str(), Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(io("create", self.shown(names))(e)),
        }
        self.open(names, DIR_FLAGS)
            .map_err(|e| self.missing(names, e))
    }
}

/// One thing found while walking: opened (a directory or a regular file),
/// or only stat'ed (a symlink with its target, a device, a fifo).
enum Node {
    Open(OwnedFd, FileStat),
    Other(FileStat, Option<OsString>),
}

/// Opens `name` in `dir` without following a symlink there.
fn open_node(dir: &impl AsFd, name: &OsStr) -> Result<Node, Errno> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if is(&st, SFlag::S_IFDIR) || is(&st, SFlag::S_IFREG) {
        let flags = if is(&st, SFlag::S_IFDIR) {
            DIR_FLAGS | OFlag::O_NOFOLLOW
        } else {
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC
        };
        let fd = openat(dir, name, flags, Mode::empty())?;
        // What was opened, not what was looked at before (it may have
        // been swapped in between).
        let st = fstat(&fd)?;
        Ok(Node::Open(fd, st))
    } else if is(&st, SFlag::S_IFLNK) {
        Ok(Node::Other(st, Some(readlinkat(dir, name)?)))
    } else {
        Ok(Node::Other(st, None))
    }
}

struct Walk<'a, W: Write> {
    builder: &'a mut tar::Builder<W>,
    shown: String,
}

impl<W: Write> Walk<'_, W> {
    fn header(&self, st: &FileStat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(0);
        h
    }

    fn err(&self) -> impl FnOnce(io::Error) -> CopyError + '_ {
        io_std("archive", &self.shown)
    }

    /// Adds `node` as `path`; `contents_only`: a directory's entries go
    /// at the top of the archive, without one for the directory itself.
    fn add(&mut self, node: Node, path: &Path, contents_only: bool) -> Result<(), CopyError> {
        match node {
            Node::Open(fd, st) if is(&st, SFlag::S_IFDIR) => {
                if !contents_only {
                    let mut h = self.header(&st, tar::EntryType::Directory);
                    self.builder
                        .append_data(&mut h, path, io::empty())
                        .map_err(self.err())?;
                }
                let dup = fd.try_clone().map_err(self.err())?;
                let mut names: Vec<OsString> = nix::dir::Dir::from_fd(dup)
                    .map_err(io("read", &self.shown))?
                    .iter()
                    .filter_map(Result::ok)
                    .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
                    .filter(|n| n != "." && n != "..")
                    .collect();
                names.sort();
                for n in names {
                    let child = match open_node(&fd, &n) {
                        Ok(c) => c,
                        // Gone since it was listed: a live tree changes.
                        Err(Errno::ENOENT) => continue,
                        Err(e) => {
                            return Err(io(
                                "open",
                                format!("{}/{}", self.shown, n.to_string_lossy()),
                            )(e));
                        }
                    };
                    self.add(child, &path.join(&n), false)?;
                }
            }
            Node::Open(fd, st) => {
                let mut h = self.header(&st, tar::EntryType::Regular);
                h.set_size(u64::try_from(st.st_size).unwrap_or(0));
                // Exactly the size announced, even if the file grows or
                // shrinks while it is read.
                let file = File::from(fd)
                    .chain(io::repeat(0))
                    .take(u64::try_from(st.st_size).unwrap_or(0));
                self.builder
                    .append_data(&mut h, path, file)
                    .map_err(self.err())?;
            }
            Node::Other(st, Some(target)) => {
                let mut h = self.header(&st, tar::EntryType::Symlink);
                self.builder
                    .append_link(&mut h, path, Path::new(&target))
                    .map_err(self.err())?;
            }
            Node::Other(st, None) => {
                let kind = if is(&st, SFlag::S_IFCHR) {
                    tar::EntryType::Char
                } else if is(&st, SFlag::S_IFBLK) {
                    tar::EntryType::Block
                } else if is(&st, SFlag::S_IFIFO) {
                    tar::EntryType::Fifo
                } else {
                    // A socket: tar has no type for it, and docker cp
                    // leaves it out too.
                    return Ok(());
                };
                let mut h = self.header(&st, kind);
                let major = nix::sys::stat::major(st.st_rdev) as u32;
                let minor = nix::sys::stat::minor(st.st_rdev) as u32;
                h.set_device_major(major).map_err(self.err())?;
                h.set_device_minor(minor).map_err(self.err())?;
                self.builder
                    .append_data(&mut h, path, io::empty())
                    .map_err(self.err())?;
            }
        }
        Ok(())
    }
}

/// A name in an open directory being written.
struct At<'a> {
    dir: &'a OwnedFd,
    name: &'a OsString,
    shown: String,
}

impl At<'_> {
    fn existing(&self) -> Option<FileStat> {
        fstatat(
            self.dir,
            self.name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ok()
    }

    /// Makes room for a non-directory: an existing one is removed, a
    /// directory is refused.
    fn replace_non_dir(&self) -> Result<(), CopyError> {
        match self.existing() {
            Some(st) if is(&st, SFlag::S_IFDIR) => {
                Err(CopyError::FileOntoDirectory(self.shown.clone()))
            }
            Some(_) => unlinkat(self.dir, self.name.as_os_str(), UnlinkatFlags::NoRemoveDir)
                .map_err(io("remove", &self.shown)),
            None => Ok(()),
        }
    }

    fn directory(&self, mode: Mode, owner: Option<(Uid, Gid)>) -> Result<(), CopyError> {
        match self.existing() {
            Some(st) if is(&st, SFlag::S_IFDIR) => {}
            Some(_) => return Err(CopyError::DirectoryOntoFile(self.shown.clone())),
            None => {
                mkdirat(self.dir, self.name.as_os_str(), mode).map_err(io("create", &self.shown))?
            }
        }
        let fd = openat(
            self.dir,
            self.name.as_os_str(),
            DIR_FLAGS | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .map_err(io("open", &self.shown))?;
        fchmod(&fd, mode).map_err(io("chmod", &self.shown))?;
        self.chown(&fd, owner)
    }

    fn file(
        &self,
        data: &mut impl Read,
        mode: Mode,
        owner: Option<(Uid, Gid)>,
    ) -> Result<(), CopyError> {
        self.replace_non_dir()?;
        let fd = openat(
            self.dir,
            self.name.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(io("create", &self.shown))?;
        let mut file = File::from(fd);
        io::copy(data, &mut file).map_err(io_std("write", &self.shown))?;
        // After the owner, since chown clears the set-id bits.
        self.chown(&file, owner)?;
        fchmod(&file, mode).map_err(io("chmod", &self.shown))?;
        Ok(())
    }

    fn chown(&self, fd: &impl AsFd, owner: Option<(Uid, Gid)>) -> Result<(), CopyError> {
        let (u, g) = owner.unwrap_or((Uid::from_raw(0), Gid::from_raw(0)));
        fchown(fd, Some(u), Some(g)).map_err(io("chown", &self.shown))
    }
}

/// Where a copy lands, decided as `docker cp` decides it from what exists
/// at the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landing {
    /// The directory the archive is extracted into.
    pub into: String,
    /// The name the source gets there; `None`: a directory's contents go
    /// into `into` itself.
    pub name: Option<String>,
}

/// The source: is it a directory, does its path end in `/.` (its contents,
/// not itself), and its last name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub dir: bool,
    pub contents: bool,
    pub name: String,
}

impl Source {
    pub fn new(path: &str, kind: Kind) -> Self {
        let names = clean(path);
        Self {
            dir: kind == Kind::Dir,
            contents: kind == Kind::Dir && (path.ends_with("/.") || path == "."),
            name: names
                .last()
                .map_or_else(|| "/".into(), |n| n.to_string_lossy().into_owned()),
        }
    }
}

/// `docker cp`'s rules: into an existing directory under the source's
/// name (or its contents with `SRC/.`); onto a missing path or an
/// existing file under the destination's name (a directory onto a file is
/// refused, as is a missing directory for a `DEST/` a file is copied to).
pub fn landing(src: &Source, dest: &str, dest_kind: Option<Kind>) -> Result<Landing, CopyError> {
    let names = clean(dest);
    let whole = |n: &[OsString]| {
        let mut s = String::from("/");
        s.push_str(
            &n.iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/"),
        );
        s
    };
    let (up, last) = match names.split_last() {
        Some((last, up)) => (whole(up), Some(last.to_string_lossy().into_owned())),
        None => ("/".to_owned(), None),
    };
    match dest_kind {
        Some(Kind::Dir) => Ok(Landing {
            into: whole(&names),
            name: (!src.contents).then(|| src.name.clone()),
        }),
        Some(Kind::NotDir) if src.dir => Err(CopyError::DirectoryOntoFile(dest.to_owned())),
        Some(Kind::NotDir) => Ok(Landing {
            into: up,
            name: last,
        }),
        None if dest.ends_with('/') && !src.dir => Err(CopyError::NotADirectory(dest.to_owned())),
        None => Ok(Landing {
            into: up,
            name: Some(last.ok_or_else(|| CopyError::NotFound(dest.to_owned()))?),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(dir: bool, contents: bool, name: &str) -> Source {
        Source {
            dir,
            contents,
            name: name.into(),
        }
    }

    fn land(into: &str, name: Option<&str>) -> Landing {
        Landing {
            into: into.into(),
            name: name.map(Into::into),
        }
    }

    #[test]
    fn paths_clean_inside_the_root() {
        assert_eq!(clean("/a/../../etc/./x//y"), ["etc", "x", "y"]);
        assert!(clean("/..").is_empty());
    }

    #[test]
    fn sources_know_contents_copies() {
        assert_eq!(Source::new("/etc/.", Kind::Dir), src(true, true, "etc"));
        assert_eq!(Source::new("/etc/", Kind::Dir), src(true, false, "etc"));
        assert_eq!(Source::new("/a/f", Kind::NotDir), src(false, false, "f"));
    }

    #[test]
    fn landings_follow_docker_cp() {
        let file = src(false, false, "f");
        let dir = src(true, false, "d");
        let contents = src(true, true, "d");
        // Into an existing directory, under the source's name.
        assert_eq!(
            landing(&file, "/tmp", Some(Kind::Dir)).unwrap(),
            land("/tmp", Some("f"))
        );
        assert_eq!(
            landing(&dir, "/tmp/", Some(Kind::Dir)).unwrap(),
            land("/tmp", Some("d"))
        );
        assert_eq!(
            landing(&contents, "/tmp", Some(Kind::Dir)).unwrap(),
            land("/tmp", None)
        );
        // Onto a file or a missing path: the destination's name.
        assert_eq!(
            landing(&file, "/tmp/g", Some(Kind::NotDir)).unwrap(),
            land("/tmp", Some("g"))
        );
        assert_eq!(
            landing(&file, "/tmp/new", None).unwrap(),
            land("/tmp", Some("new"))
        );
        assert_eq!(
            landing(&dir, "/tmp/new", None).unwrap(),
            land("/tmp", Some("new"))
        );
        assert_eq!(
            landing(&contents, "/tmp/new", None).unwrap(),
            land("/tmp", Some("new"))
        );
        // Refused.
        assert!(matches!(
            landing(&dir, "/tmp/g", Some(Kind::NotDir)),
            Err(CopyError::DirectoryOntoFile(_))
        ));
        assert!(matches!(
            landing(&file, "/tmp/new/", None),
            Err(CopyError::NotADirectory(_))
        ));
    }
}
