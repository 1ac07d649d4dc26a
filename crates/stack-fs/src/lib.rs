//! File operations every layer of `stack` needs to get exactly right, kept
//! in one place: an atomic (and, where asked, durable) replacement of a file,
//! and a bounded read of a file a user names, which refuses what is not a
//! regular file before reading a byte; and the layout of the state
//! directories, so that every path under `--root` is named once.

mod atomic;
mod bounded;
mod layout;
mod space;

pub use atomic::{Durability, write, write_with};
pub use bounded::{ReadError, check_regular, read_bounded, read_regular, read_regular_to_string};
pub use layout::Layout;
pub use space::available;

/// A failed filesystem operation, naming the operation and the path once.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct Error {
    pub op: &'static str,
    pub path: std::path::PathBuf,
    pub source: std::io::Error,
}

impl Error {
    pub(crate) fn at(
        op: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error { op, path, source }
    }

    /// The OS error, for callers that decide by its kind (`NotFound`, `StorageFull`).
    pub fn kind(&self) -> std::io::ErrorKind {
        self.source.kind()
    }
}
