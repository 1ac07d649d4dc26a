//! Reading the files a stack names (stack files, `.env` and env files,
//! label files, standard input): only regular files, under a size limit,
//! so that a FIFO, a device or a huge file is a clear error at once rather
//! than a hang or an allocation failure.

use std::path::Path;

/// The largest stack file read (also from standard input).
pub const MAX_STACK_FILE: u64 = 16 << 20;
/// The largest `.env`, `env_file` or `label_file` read.
pub const MAX_ENV_FILE: u64 = 4 << 20;
/// The largest config or secret file: what a Kubernetes ConfigMap or
/// Secret holds, so that an exported stack carries it too.
pub const MAX_CONFIG_FILE: u64 = 1 << 20;

/// Reads `path` as text; the error names the path and why.
pub fn read_text(path: &Path, limit: u64) -> Result<String, stack_fs::ReadError> {
    stack_fs::read_regular_to_string(path, limit)
}

/// Reads a stack file from standard input (`-f -`), up to [`MAX_STACK_FILE`].
pub fn read_stdin() -> Result<String, stack_fs::ReadError> {
    let name = Path::new("<stdin>");
    let bytes = stack_fs::read_bounded(std::io::stdin().lock(), name, MAX_STACK_FILE, 0)?;
    String::from_utf8(bytes).map_err(|e| stack_fs::ReadError::Io {
        op: "read",
        path: name.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
    })
}
