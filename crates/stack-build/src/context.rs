//! The build context: the directory `COPY` and `ADD` read from, less what
//! `.dockerignore` excludes. Nothing outside it is readable: a source that
//! climbs out with `..` or through a symlink is refused, and symlinks inside
//! a copied directory are copied as links, never followed. Sources are
//! hashed by content, mode and name (not mtime) for the step cache.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use globset::GlobBuilder;
use sha2::{Digest as _, Sha256};

use crate::ignore::Patterns;

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{file}: pattern {pattern:?}: {source}")]
    Ignore {
        file: PathBuf,
        pattern: String,
        source: globset::Error,
    },
    #[error("{0:?} is outside the build context")]
    Escape(String),
    #[error("{name:?} is a symlink to {target}, outside the build context")]
    SymlinkEscape { name: String, target: PathBuf },
    #[error("{0:?} not found in the build context")]
    NotFound(String),
    #[error("{0:?} is excluded by .dockerignore")]
    Excluded(String),
    #[error("{pattern:?}: {source}")]
    Pattern {
        pattern: String,
        source: globset::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A context directory with its ignore rules.
#[derive(Debug, Clone)]
pub struct Context {
    root: PathBuf,
    ignore: Patterns,
}

/// One source matched by a `COPY` argument: where it is on the host and the
/// name it is copied under.
#[derive(Debug, Clone)]
pub struct Matched {
    pub path: PathBuf,
    /// Path relative to the context.
    pub rel: PathBuf,
}

impl Context {
    /// Opens `root`, reading `<dockerfile>.dockerignore` beside the
    /// Dockerfile when there is one, else `<root>/.dockerignore`.
    pub fn open(root: &Path, dockerfile: Option<&Path>) -> Result<Self, ContextError> {
        let root = root.canonicalize().map_err(io_at(root))?;
        let specific = dockerfile.map(|d| {
            let mut name = d.as_os_str().to_owned();
            name.push(".dockerignore");
            PathBuf::from(name)
        });
        let file = specific
            .filter(|p| p.is_file())
            .unwrap_or_else(|| root.join(".dockerignore"));
        let ignore = match fs::read_to_string(&file) {
            Ok(text) => {
                Patterns::parse_file(&text).map_err(|(pattern, source)| ContextError::Ignore {
                    file: file.clone(),
                    pattern,
                    source,
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Patterns::default(),
            Err(e) => return Err(io_at(&file)(e)),
        };
        Ok(Self { root, ignore })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn is_ignored(&self, rel: &Path) -> bool {
        self.ignore.matches(rel)
    }

    /// Whether a copy leaves `rel` out: an ignored file, or an ignored
    /// directory with no exception (`!pattern`) that could bring back
    /// something inside it (the same rule as [`Context::walk`]).
    pub fn skips(&self, rel: &Path, is_dir: bool) -> bool {
        self.is_ignored(rel) && !(is_dir && self.ignore.has_exceptions())
    }

    /// The sources one `COPY` argument names (wildcards expanded, sorted).
    pub fn resolve(&self, src: &str) -> Result<Vec<Matched>, ContextError> {
        let rel = clean(src).ok_or_else(|| ContextError::Escape(src.to_owned()))?;
        if src.contains(['*', '?', '[']) {
            let glob = GlobBuilder::new(&rel.to_string_lossy())
                .literal_separator(true)
                .build()
                .map_err(|source| ContextError::Pattern {
                    pattern: src.to_owned(),
                    source,
                })?
                .compile_matcher();
            let mut out = Vec::new();
            for entry in self.walk(Path::new(""))? {
                if glob.is_match(&entry) {
                    out.push(self.checked(src, &entry)?);
                }
            }
            if out.is_empty() {
                return Err(ContextError::NotFound(src.to_owned()));
            }
            return Ok(out);
        }
        Ok(vec![self.checked(src, &rel)?])
    }

    /// `rel` on the host, after refusing what leaves the context or is ignored.
    fn checked(&self, src: &str, rel: &Path) -> Result<Matched, ContextError> {
        let path = self.root.join(rel);
        if !rel.as_os_str().is_empty() && self.is_ignored(rel) {
            return Err(ContextError::Excluded(src.to_owned()));
        }
        let real = match path.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A dangling link may still point outside: say which.
                if let Ok(target) = fs::read_link(&path) {
                    return Err(ContextError::SymlinkEscape {
                        name: src.to_owned(),
                        target,
                    });
                }
                return Err(ContextError::NotFound(src.to_owned()));
            }
            Err(e) => return Err(io_at(&path)(e)),
        };
        if !real.starts_with(&self.root) {
            return Err(ContextError::SymlinkEscape {
                name: src.to_owned(),
                target: real,
            });
        }
        Ok(Matched {
            path: real,
            rel: rel.to_owned(),
        })
    }

    /// Every path under `rel` (relative to the root) that is not ignored,
    /// sorted; directories are listed before what is in them.
    pub fn walk(&self, rel: &Path) -> Result<Vec<PathBuf>, ContextError> {
        let mut out = Vec::new();
        self.walk_into(rel, &mut out)?;
        Ok(out)
    }

    fn walk_into(&self, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), ContextError> {
        let dir = self.root.join(rel);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(io_at(&dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_at(&dir))?;
        names.sort();
        for name in names {
            let child = rel.join(&name);
            let ignored = self.is_ignored(&child);
            if ignored && !self.ignore.has_exceptions() {
                continue;
            }
            let path = self.root.join(&child);
            let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
            if !ignored {
                out.push(child.clone());
            }
            if meta.is_dir() {
                self.walk_into(&child, out)?;
            }
        }
        Ok(())
    }

    /// A digest of what copying `m` would produce: names, types, modes,
    /// link targets and file contents, in a fixed order.
    pub fn hash(&self, m: &Matched, hasher: &mut Sha256) -> Result<(), ContextError> {
        let meta = fs::symlink_metadata(&m.path).map_err(io_at(&m.path))?;
        hash_entry(&m.path, Path::new(""), &meta, hasher)?;
        if meta.is_dir() {
            for rel in self.walk(&m.rel)? {
                let path = self.root.join(&rel);
                let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
                let inner = rel.strip_prefix(&m.rel).unwrap_or(&rel);
                hash_entry(&path, inner, &meta, hasher)?;
            }
        }
        Ok(())
    }
}

fn hash_entry(
    path: &Path,
    name: &Path,
    meta: &fs::Metadata,
    h: &mut Sha256,
) -> Result<(), ContextError> {
    h.update(name.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(meta.permissions().mode().to_le_bytes());
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).map_err(io_at(path))?;
        h.update(b"l");
        h.update(target.as_os_str().as_encoded_bytes());
    } else if meta.is_file() {
        h.update(b"f");
        h.update(meta.size().to_le_bytes());
        let mut f = fs::File::open(path).map_err(io_at(path))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(io_at(path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    } else if meta.is_dir() {
        h.update(b"d");
    }
    h.update([0]);
    Ok(())
}

/// `src` as a path relative to the context root, or `None` when `..` climbs
/// above it. A leading `/` means the context root, as in Docker.
pub fn clean(src: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(src).components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_refuses_climbing_out() {
        assert_eq!(clean("./a/../b"), Some(PathBuf::from("b")));
        assert_eq!(clean("/a"), Some(PathBuf::from("a")));
        assert_eq!(clean("."), Some(PathBuf::new()));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("a/../../x"), None);
    }
}
