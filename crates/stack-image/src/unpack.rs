//! Layer unpacking: a (gzip, zstd or plain) tar layer becomes a directory that
//! overlayfs can use as a lowerdir.
//!
//! Safety against hostile layers does not rely on the tar crate: every entry's
//! path is checked lexically (no `..`, not absolute) and its parent directory is
//! opened with `openat2(RESOLVE_BENEATH)`, so a symlink planted by an earlier
//! entry can never redirect a write outside the layer. The final component is
//! created with `*at` calls that do not follow symlinks. Any escape refuses the
//! whole layer; the layer is built in a temporary directory and renamed into
//! place only when complete, so nothing half-unpacked is ever visible.

use std::ffi::{CString, OsStr};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens, makedev,
    mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};

use crate::digest::{Digest, HashingReader};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escape {
    Absolute,
    ParentComponent,
    ThroughSymlink,
    HardlinkTarget(String),
}

impl fmt::Display for Escape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Escape::Absolute => f.write_str("is an absolute path"),
            Escape::ParentComponent => f.write_str("contains a '..' component"),
            Escape::ThroughSymlink => {
                f.write_str("would be written through a symlink leading outside the layer")
            }
            Escape::HardlinkTarget(t) => write!(f, "is a hard link to {t:?} outside the layer"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("refusing hostile layer {layer}: entry {entry:?} {reason}")]
    Escape {
        layer: String,
        entry: String,
        reason: Escape,
    },
    #[error("layer {layer}: entry {entry:?}: {source}")]
    Entry {
        layer: String,
        entry: String,
        source: io::Error,
    },
    #[error("layer {layer}: {source}")]
    Io { layer: String, source: io::Error },
    #[error(
        "layer {layer}: uncompressed content has digest {actual}, the image config says {expected}"
    )]
    DiffIdMismatch {
        layer: String,
        expected: Digest,
        actual: Digest,
    },
}

/// Unpacks `blob` into the directory `dest` (which must not exist yet), building
/// it under `tmp_parent` first. Returns the digest of the uncompressed tar (the
/// layer's diff id), checked against `expected_diff_id` when given.
pub fn unpack_layer(
    blob: &Path,
    dest: &Path,
    tmp_parent: &Path,
    expected_diff_id: Option<&Digest>,
) -> Result<Digest, UnpackError> {
    let layer = blob.file_name().map_or_else(
        || blob.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let io_err = |source| UnpackError::Io {
        layer: layer.clone(),
        source,
    };
    let tmp = tmp_parent.join(format!(
        "unpack-{}-{}-{}",
        layer.chars().take(16).collect::<String>(),
        std::process::id(),
        crate::store::unique()
    ));
    std::fs::create_dir(&tmp).map_err(io_err)?;
    // The layer root becomes the container's `/` unless the layer says otherwise.
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(io_err)?;
    let result = File::open(blob)
        .map_err(io_err)
        .and_then(|f| unpack_into(f, &tmp, &layer))
        .and_then(|diff_id| match expected_diff_id {
            Some(expected) if *expected != diff_id => Err(UnpackError::DiffIdMismatch {
                layer: layer.clone(),
                expected: expected.clone(),
                actual: diff_id,
            }),
            _ => Ok(diff_id),
        });
    match result {
        Ok(diff_id) => match std::fs::rename(&tmp, dest) {
            Ok(()) => Ok(diff_id),
            // Another unpack of the same layer won the race; its result is identical.
            Err(_) if dest.is_dir() => {
                let _ = std::fs::remove_dir_all(&tmp);
                Ok(diff_id)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(io_err(e))
            }
        },
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Wraps `raw` in the decompressor its magic bytes call for.
pub fn decompress<'a, R: Read + 'a>(raw: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(256 * 1024, raw);
    let head = buf.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(buf))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(buf)?)
    } else {
        Box::new(buf)
    })
}

/// Unpacks a layer stream into the existing, empty directory `root`.
pub fn unpack_into(raw: impl Read, root: &Path, layer: &str) -> Result<Digest, UnpackError> {
    let io_err = |source| UnpackError::Io {
        layer: layer.to_owned(),
        source,
    };
    let root_fd = openat(
        nix::fcntl::AT_FDCWD,
        root,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(e.into()))?;
    let mut archive = tar::Archive::new(HashingReader::new(decompress(raw).map_err(io_err)?));
    let mut dir_times: Vec<DirTime> = Vec::new();
    for entry in archive.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let raw_path = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_path).into_owned();
        let escape = |reason| UnpackError::Escape {
            layer: layer.to_owned(),
            entry: name.clone(),
            reason,
        };
        let comps = clean_path(&raw_path).map_err(escape)?;
        let ctx = EntryCtx {
            root: root_fd.as_fd(),
            layer,
            entry: &name,
        };
        if let Some(d) = ctx.apply(&mut entry, &comps)? {
            dir_times.push(d);
        }
    }
    // Directory mtimes last: creating children changes them.
    for (comps, mtime) in dir_times.iter().rev() {
        let fd = if comps.is_empty() {
            root_fd.try_clone().map_err(io_err)?
        } else {
            open_beneath(
                root_fd.as_fd(),
                &join(comps),
                OFlag::O_DIRECTORY | OFlag::O_RDONLY,
            )
            .map_err(|e| io_err(e.into()))?
        };
        let t = TimeSpec::new(*mtime, 0);
        futimens(&fd, &t, &t).map_err(|e| io_err(e.into()))?;
    }
    archive
        .into_inner()
        .finish()
        .map(|(d, _)| d)
        .map_err(io_err)
}

/// Splits an entry path into components, dropping `.` and empty ones.
pub fn clean_path(raw: &[u8]) -> Result<Vec<Vec<u8>>, Escape> {
    if raw.first() == Some(&b'/') {
        return Err(Escape::Absolute);
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(Escape::ParentComponent),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

/// What a tar entry's final path component means to overlayfs.
#[derive(Debug, PartialEq, Eq)]
pub enum EntryKind<'a> {
    Normal,
    /// `.wh..wh..opq`: the parent directory hides everything below it.
    Opaque,
    /// `.wh.NAME`: NAME from lower layers is deleted.
    Whiteout(&'a [u8]),
    /// Other `.wh..wh.*` metadata (aufs hard-link bookkeeping): ignored.
    Meta,
}

pub fn classify(name: &[u8]) -> EntryKind<'_> {
    if name == OPAQUE_MARKER.as_bytes() {
        EntryKind::Opaque
    } else if name.starts_with(b".wh..wh.") {
        EntryKind::Meta
    } else if let Some(rest) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        EntryKind::Whiteout(rest)
    } else {
        EntryKind::Normal
    }
}

fn join(comps: &[Vec<u8>]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&comps.join(&b'/')))
}

fn open_beneath(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    openat2(
        root,
        path,
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS),
    )
}

/// A directory (as path components) and the mtime to give it once the layer is complete.
type DirTime = (Vec<Vec<u8>>, i64);

struct EntryCtx<'a> {
    root: BorrowedFd<'a>,
    layer: &'a str,
    entry: &'a str,
}

impl EntryCtx<'_> {
    fn err(&self, source: impl Into<io::Error>) -> UnpackError {
        UnpackError::Entry {
            layer: self.layer.to_owned(),
            entry: self.entry.to_owned(),
            source: source.into(),
        }
    }

    fn escape(&self, reason: Escape) -> UnpackError {
        UnpackError::Escape {
            layer: self.layer.to_owned(),
            entry: self.entry.to_owned(),
            reason,
        }
    }

    fn nix(&self, e: Errno) -> UnpackError {
        match e {
            Errno::EXDEV | Errno::ELOOP => self.escape(Escape::ThroughSymlink),
            e => self.err(e),
        }
    }

    /// Opens (creating as needed) the directory `comps` beneath the root.
    fn dir(&self, comps: &[Vec<u8>]) -> Result<OwnedFd, UnpackError> {
        if comps.is_empty() {
            return self.root.try_clone_to_owned().map_err(|e| self.err(e));
        }
        let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY;
        match open_beneath(self.root, &join(comps), flags) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(self.nix(e)),
        }
        let parent = self.dir(&comps[..comps.len() - 1])?;
        let last = OsStr::from_bytes(&comps[comps.len() - 1]);
        match mkdirat(&parent, last, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(self.nix(e)),
        }
        open_beneath(parent.as_fd(), Path::new(last), flags).map_err(|e| self.nix(e))
    }

    /// Removes whatever is at `name` unless both it and the new entry are directories.
    fn clear(&self, parent: &OwnedFd, name: &OsStr, new_is_dir: bool) -> Result<bool, UnpackError> {
        match fstatat(parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(self.err(e)),
            Ok(st) => {
                let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                if is_dir && new_is_dir {
                    return Ok(true);
                }
                let flag = if is_dir {
                    UnlinkatFlags::RemoveDir
                } else {
                    UnlinkatFlags::NoRemoveDir
                };
                unlinkat(parent, name, flag).map_err(|e| self.err(e))?;
                Ok(false)
            }
        }
    }

    /// Creates one entry; returns a directory whose mtime must be set at the end.
    fn apply<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        comps: &[Vec<u8>],
    ) -> Result<Option<DirTime>, UnpackError> {
        let header = entry.header().clone();
        let kind = header.entry_type();
        let mode = Mode::from_bits_truncate(header.mode().map_err(|e| self.err(e))? & 0o7777);
        let uid = Uid::from_raw(header.uid().map_err(|e| self.err(e))? as u32);
        let gid = Gid::from_raw(header.gid().map_err(|e| self.err(e))? as u32);
        let mtime = header.mtime().map_err(|e| self.err(e))? as i64;
        let times = TimeSpec::new(mtime, 0);
        let Some((last, parent_comps)) = comps.split_last() else {
            // The layer root itself (`./`): keep owner and mode, ignore the rest.
            if kind.is_dir() {
                fchown(self.root, Some(uid), Some(gid)).map_err(|e| self.err(e))?;
                fchmod(self.root, mode).map_err(|e| self.err(e))?;
                return Ok(Some((Vec::new(), mtime)));
            }
            return Ok(None);
        };
        match classify(last) {
            EntryKind::Meta => return Ok(None),
            EntryKind::Opaque => {
                let dir = self.dir(parent_comps)?;
                set_xattr(&dir, OPAQUE_XATTR, b"y").map_err(|e| self.err(e))?;
                return Ok(None);
            }
            EntryKind::Whiteout(target) => {
                if target.is_empty() {
                    return Ok(None);
                }
                let parent = self.dir(parent_comps)?;
                let name = OsStr::from_bytes(target);
                self.clear(&parent, name, false)?;
                mknodat(&parent, name, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                    .map_err(|e| self.err(e))?;
                return Ok(None);
            }
            EntryKind::Normal => {}
        }
        let xattrs = pax_xattrs(entry).map_err(|e| self.err(e))?;
        let parent = self.dir(parent_comps)?;
        let name = OsStr::from_bytes(last);
        let exists_as_dir = self.clear(&parent, name, kind.is_dir())?;
        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => {
                let fd = openat(
                    &parent,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| self.err(e))?;
                let mut file = File::from(fd);
                io::copy(entry, &mut file).map_err(|e| self.err(e))?;
                self.finish_fd(file.as_fd(), uid, gid, mode, &xattrs)?;
                futimens(&file, &times, &times).map_err(|e| self.err(e))?;
            }
            T::Directory => {
                if !exists_as_dir {
                    mkdirat(&parent, name, Mode::from_bits_truncate(0o700))
                        .map_err(|e| self.err(e))?;
                }
                let fd = open_beneath(
                    parent.as_fd(),
                    Path::new(name),
                    OFlag::O_DIRECTORY | OFlag::O_RDONLY,
                )
                .map_err(|e| self.nix(e))?;
                self.finish_fd(fd.as_fd(), uid, gid, mode, &xattrs)?;
                return Ok(Some((comps.to_vec(), mtime)));
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.err(io::Error::other("symlink without target")))?;
                symlinkat(OsStr::from_bytes(&target), &parent, name).map_err(|e| self.err(e))?;
                fchownat(
                    &parent,
                    name,
                    Some(uid),
                    Some(gid),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.err(e))?;
                utimensat(
                    &parent,
                    name,
                    &times,
                    &times,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| self.err(e))?;
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.err(io::Error::other("hard link without target")))?;
                let shown = String::from_utf8_lossy(&target).into_owned();
                let tcomps = clean_path(&target)
                    .map_err(|_| self.escape(Escape::HardlinkTarget(shown.clone())))?;
                let Some((tlast, tparent)) = tcomps.split_last() else {
                    return Err(self.escape(Escape::HardlinkTarget(shown)));
                };
                let tdir = match open_beneath(
                    self.root,
                    &join(tparent),
                    OFlag::O_DIRECTORY | OFlag::O_RDONLY,
                ) {
                    Ok(fd) => fd,
                    Err(Errno::EXDEV | Errno::ELOOP) => {
                        return Err(self.escape(Escape::HardlinkTarget(shown)));
                    }
                    Err(e) => return Err(self.err(e)),
                };
                // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
                linkat(
                    &tdir,
                    OsStr::from_bytes(tlast),
                    &parent,
                    name,
                    nix::fcntl::AtFlags::empty(),
                )
                .map_err(|e| self.err(e))?;
            }
            T::Char | T::Block | T::Fifo => {
                let sflag = match kind {
                    T::Char => SFlag::S_IFCHR,
                    T::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                // FIFOs often leave the device fields blank.
                let (major, minor) = if kind == T::Fifo {
                    (0, 0)
                } else {
                    (
                        header.device_major().map_err(|e| self.err(e))?.unwrap_or(0),
                        header.device_minor().map_err(|e| self.err(e))?.unwrap_or(0),
                    )
                };
                mknodat(
                    &parent,
                    name,
                    sflag,
                    mode,
                    makedev(major.into(), minor.into()),
                )
                .map_err(|e| self.err(e))?;
                fchownat(
                    &parent,
                    name,
                    Some(uid),
                    Some(gid),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.err(e))?;
                fchmodat(&parent, name, mode, FchmodatFlags::FollowSymlink)
                    .map_err(|e| self.err(e))?;
                utimensat(
                    &parent,
                    name,
                    &times,
                    &times,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| self.err(e))?;
            }
            other => tracing::debug!(
                layer = self.layer,
                entry = self.entry,
                ?other,
                "skipping tar entry type"
            ),
        }
        Ok(None)
    }

    fn finish_fd(
        &self,
        fd: BorrowedFd<'_>,
        uid: Uid,
        gid: Gid,
        mode: Mode,
        xattrs: &[(String, Vec<u8>)],
    ) -> Result<(), UnpackError> {
        // chown before chmod: chown clears setuid/setgid bits.
        fchown(fd, Some(uid), Some(gid)).map_err(|e| self.err(e))?;
        fchmod(fd, mode).map_err(|e| self.err(e))?;
        for (k, v) in xattrs {
            set_xattr(&fd, k, v).map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Ok(key) = ext.key()
                && let Some(name) = key.strip_prefix("SCHILY.xattr.")
            {
                out.push((name.to_owned(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

fn set_xattr(fd: &impl AsRawFd, name: &str, value: &[u8]) -> io::Result<()> {
    let cname = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: fd is open, cname is NUL-terminated, value is a valid slice.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_refuses_escapes() {
        assert_eq!(
            clean_path(b"./a//b/./c").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(clean_path(b"./").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(clean_path(b"/etc/passwd"), Err(Escape::Absolute));
        assert_eq!(clean_path(b"../x"), Err(Escape::ParentComponent));
        assert_eq!(clean_path(b"a/../../x"), Err(Escape::ParentComponent));
        assert_eq!(clean_path(b"a/..b/x").unwrap().len(), 3);
    }

    #[test]
    fn classifies_whiteouts() {
        assert_eq!(classify(b".wh..wh..opq"), EntryKind::Opaque);
        assert_eq!(classify(b".wh.foo"), EntryKind::Whiteout(b"foo"));
        assert_eq!(classify(b".wh..wh.plnk"), EntryKind::Meta);
        assert_eq!(classify(b"foo.wh."), EntryKind::Normal);
    }
}
