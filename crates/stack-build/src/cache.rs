//! The step cache: a step's key is a digest of its parent's key, the
//! instruction with its variables expanded, the build args in scope and, for
//! `COPY`/`ADD`, the content of what is copied. An entry names the layer the
//! step made, shared by every build under one root.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use stack_image::{Digest, Store};

/// A chained step key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// The key of a stage's base: the image it starts from.
    pub fn base(image: &str) -> Self {
        Self(
            Sha256::new()
                .chain_update(b"base\0")
                .chain_update(image)
                .finalize()
                .into(),
        )
    }

    /// The key of the step after `self` made of `parts`.
    pub fn next(&self, parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        h.update(self.0);
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        Self(h.finalize().into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// What a cached step made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    /// When the step ran (RFC 3339), kept so a cached rebuild has the same config.
    pub created: String,
}

/// The cache directory `<root>/build-cache`.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn open(root: &Path) -> io::Result<Self> {
        let dir = root.join("build-cache");
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The entry for `key` whose layer is still in `store`.
    pub fn get(&self, key: &Key, store: &Store) -> Option<Entry> {
        let bytes = fs::read(self.dir.join(key.hex())).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        (store.has_blob(&entry.digest) && store.layer_path(&entry.digest).is_dir()).then_some(entry)
    }

    /// Records an entry (temp file and rename: a reader sees all or nothing).
    pub fn put(&self, key: &Key, entry: &Entry) -> io::Result<()> {
        let path = self.dir.join(key.hex());
        let tmp = self
            .dir
            .join(format!(".{}.{}", key.hex(), std::process::id()));
        fs::write(&tmp, serde_json::to_vec(entry).map_err(io::Error::other)?)?;
        fs::rename(&tmp, &path)
    }
}
