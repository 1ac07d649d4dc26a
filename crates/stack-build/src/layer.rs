//! A directory of changes (an overlay upper dir, or the files a `COPY`
//! staged) as an OCI layer: overlay whiteouts (0/0 character devices) become
//! `.wh.NAME` entries, opaque directories get `.wh..wh..opq`, hard links stay
//! links, modes, owners and file capabilities are kept. Entries are sorted and
//! times clamped to `SOURCE_DATE_EPOCH` when set, so equal trees give equal
//! digests. The directory itself then becomes the unpacked layer in the store
//! (it already has the overlay layout), so nothing is unpacked twice.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use stack_image::Digest;
use stack_image::digest::HashingWriter;

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Extended attributes carried into layers (file capabilities, SELinux
/// labels are the host's business).
const KEPT_XATTRS: &[&str] = &["security.capability"];

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A written layer blob.
#[derive(Debug, Clone)]
pub struct Written {
    /// Digest of the compressed blob (its name in the store).
    pub digest: Digest,
    /// Digest of the uncompressed tar (the config's diff id).
    pub diff_id: Digest,
    pub size: u64,
}

/// Writes `dir` as a gzip-compressed layer tar to `out`.
pub fn write_layer(dir: &Path, out: &Path, epoch: Option<u64>) -> Result<Written, LayerError> {
    let file = File::create(out).map_err(io_at(out))?;
    let compressed = HashingWriter::new(BufWriter::new(file));
    let gz = GzEncoder::new(compressed, Compression::fast());
    let plain = HashingWriter::new(gz);
    let mut builder = tar::Builder::new(plain);
    builder.mode(tar::HeaderMode::Complete);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    append_dir(&mut builder, dir, Path::new(""), epoch, &mut links)?;
    let plain = builder.into_inner().map_err(io_at(out))?;
    let (gz, diff_id, _) = plain.finish();
    let compressed = gz.finish().map_err(io_at(out))?;
    let (mut w, digest, size) = compressed.finish();
    w.flush().map_err(io_at(out))?;
    Ok(Written {
        digest,
        diff_id,
        size,
    })
}

fn append_dir<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    epoch: Option<u64>,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), LayerError> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(io_at(&dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_at(&dir))?;
    names.sort();
    for name in names {
        let child = rel.join(&name);
        let path = root.join(&child);
        let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            // An overlay whiteout: the lower file is deleted.
            let mut wh = name.clone();
            wh.clear();
            wh.push(".wh.");
            wh.push(&name);
            let mut h = header(&meta, tar::EntryType::Regular, epoch);
            h.set_size(0);
            h.set_mode(0o644);
            b.append_data(&mut h, rel.join(wh), io::empty())
                .map_err(io_at(&path))?;
            continue;
        }
        if ft.is_dir() {
            let mut h = header(&meta, tar::EntryType::Directory, epoch);
            h.set_size(0);
            append_xattrs(b, &path)?;
            b.append_data(&mut h, &child, io::empty())
                .map_err(io_at(&path))?;
            if xattr(&path, OPAQUE_XATTR).as_deref() == Some(b"y") {
                let mut h = header(&meta, tar::EntryType::Regular, epoch);
                h.set_size(0);
                h.set_mode(0o644);
                b.append_data(&mut h, child.join(".wh..wh..opq"), io::empty())
                    .map_err(io_at(&path))?;
            }
            append_dir(b, root, &child, epoch, links)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(io_at(&path))?;
            let mut h = header(&meta, tar::EntryType::Symlink, epoch);
            h.set_size(0);
            b.append_link(&mut h, &child, &target)
                .map_err(io_at(&path))?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = links.get(&key) {
                    let mut h = header(&meta, tar::EntryType::Link, epoch);
                    h.set_size(0);
                    b.append_link(&mut h, &child, first).map_err(io_at(&path))?;
                    continue;
                }
                links.insert(key, child.clone());
            }
            let mut h = header(&meta, tar::EntryType::Regular, epoch);
            h.set_size(meta.len());
            append_xattrs(b, &path)?;
            let f = File::open(&path).map_err(io_at(&path))?;
            b.append_data(&mut h, &child, f).map_err(io_at(&path))?;
        } else {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else if ft.is_fifo() {
                tar::EntryType::Fifo
            } else {
                // Sockets do not go into layers (Docker leaves them out too).
                continue;
            };
            let mut h = header(&meta, kind, epoch);
            h.set_size(0);
            let dev = meta.rdev();
            h.set_device_major(libc::major(dev)).map_err(io_at(&path))?;
            h.set_device_minor(libc::minor(dev)).map_err(io_at(&path))?;
            b.append_data(&mut h, &child, io::empty())
                .map_err(io_at(&path))?;
        }
    }
    Ok(())
}

fn header(meta: &fs::Metadata, kind: tar::EntryType, epoch: Option<u64>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
    h.set_mtime(epoch.map_or(mtime, |e| mtime.min(e)));
    h
}

/// PAX records for the kept extended attributes of `path`, before its entry.
fn append_xattrs<W: Write>(b: &mut tar::Builder<W>, path: &Path) -> Result<(), LayerError> {
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    for name in KEPT_XATTRS {
        if let Some(v) = xattr(path, name) {
            records.push((format!("SCHILY.xattr.{name}"), v));
        }
    }
    if records.is_empty() {
        return Ok(());
    }
    b.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
        .map_err(io_at(path))
}

/// One extended attribute of `path` (not following a symlink).
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and `buf` is valid for its length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return None;
    }
    buf.truncate(usize::try_from(len).ok()?);
    Some(buf)
}
