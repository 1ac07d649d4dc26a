//! Bounded reads of files a user names (stack files, env files, configs,
//! secrets). A FIFO would block forever, `/dev/zero` or a huge sparse file
//! would grow memory until the allocator aborts, and a directory gives an
//! unhelpful `EISDIR` late: each is refused up front from `fstat`, before a
//! byte is read, and a file that grows while read is cut at the limit.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a user's file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is a {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{} is larger than the limit of {}{}", path.display(), human(*limit), size.map(|s| format!(" ({})", human(s))).unwrap_or_default())]
    TooLarge {
        path: PathBuf,
        /// The size `fstat` reported, when that is how it was found.
        size: Option<u64>,
        limit: u64,
    },
}

impl ReadError {
    /// The message without the path, for callers whose error already
    /// names the file (a diagnostic at `file:line:column`).
    pub fn reason(&self) -> String {
        match self {
            ReadError::Io { op, source, .. } => format!("{op}: {source}"),
            ReadError::NotRegular { kind, .. } => format!("it is a {kind}, not a regular file"),
            ReadError::TooLarge { size, limit, .. } => format!(
                "it is larger than the limit of {}{}",
                human(*limit),
                size.map(|s| format!(" ({})", human(s))).unwrap_or_default()
            ),
        }
    }

    /// The file does not exist (callers with optional files skip it).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Bytes as a person reads them: whole MiB or KiB when exact, else bytes.
fn human(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const KIB: u64 = 1 << 10;
    match bytes {
        b if b >= MIB && b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b >= KIB && b % KIB == 0 => format!("{} KiB", b / KIB),
        b => format!("{b} bytes"),
    }
}

fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// Reads `path` if it is a regular file (symlinks followed) of at most
/// `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io = |op| {
        move |source| ReadError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io("open"))?;
    let meta = file.metadata().map_err(io("stat"))?;
    let size = regular_within(path, &meta, limit)?;
    read_bounded(file, path, limit, size)
}

/// Checks, without opening it, that `path` is a regular file (symlinks
/// followed) of at most `limit` bytes, for files read later or by another
/// program (configs and secrets); returns its size.
pub fn check_regular(path: &Path, limit: u64) -> Result<u64, ReadError> {
    let meta = std::fs::metadata(path).map_err(|source| ReadError::Io {
        op: "stat",
        path: path.to_path_buf(),
        source,
    })?;
    regular_within(path, &meta, limit)
}

/// The one check of both: a regular file of at most `limit` bytes; its size.
fn regular_within(path: &Path, meta: &std::fs::Metadata, limit: u64) -> Result<u64, ReadError> {
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(meta.file_type()),
        });
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            size: Some(meta.len()),
            limit,
        });
    }
    Ok(meta.len())
}

/// [`read_regular`] for text: invalid UTF-8 is an error naming the path.
pub fn read_regular_to_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    let bytes = read_regular(path, limit)?;
    String::from_utf8(bytes).map_err(|e| ReadError::Io {
        op: "read",
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
    })
}

/// Reads at most `limit` bytes from `reader` (stdin as `-`, a file whose
/// size changed since `fstat`), refusing more.
pub fn read_bounded(
    reader: impl Read,
    name: &Path,
    limit: u64,
    size_hint: u64,
) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::with_capacity(size_hint.min(limit) as usize);
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| ReadError::Io {
            op: "read",
            path: name.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            path: name.to_path_buf(),
            size: None,
            limit,
        });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::time::{Duration, Instant};

    #[test]
    fn a_regular_file_under_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.env");
        std::fs::write(&p, "A=1\n").unwrap();
        assert_eq!(read_regular_to_string(&p, 100).unwrap(), "A=1\n");
    }

    #[test]
    fn special_files_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let started = Instant::now();
        for (path, kind) in [
            (fifo.as_path(), "FIFO"),
            (Path::new("/dev/zero"), "character device"),
            (dir.path(), "directory"),
        ] {
            match read_regular(path, 1 << 20) {
                Err(ReadError::NotRegular { kind: k, .. }) => assert_eq!(k, kind),
                other => panic!("{}: {other:?}", path.display()),
            }
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_huge_sparse_file_is_refused_by_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.env");
        let f = File::create(&p).unwrap();
        f.set_len(2 << 30).unwrap();
        let err = read_regular(&p, 1 << 20).unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { size: Some(s), limit: 1_048_576, .. } if s == 2 << 30)
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{} is larger than the limit of 1 MiB (2048 MiB)",
                p.display()
            )
        );
    }

    #[test]
    fn a_stream_longer_than_the_limit_is_cut_and_refused() {
        let err = read_bounded(std::io::repeat(b'x'), Path::new("-"), 10, 0).unwrap_err();
        assert!(matches!(
            err,
            ReadError::TooLarge {
                size: None,
                limit: 10,
                ..
            }
        ));
        assert_eq!(
            read_bounded(&b"0123456789"[..], Path::new("-"), 10, 0)
                .unwrap()
                .len(),
            10
        );
    }

    #[test]
    fn a_missing_file_is_told_apart() {
        assert!(
            read_regular(Path::new("/nonexistent/x"), 10)
                .unwrap_err()
                .is_not_found()
        );
    }
}
