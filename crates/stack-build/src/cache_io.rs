//! `cache_to: type=local,dest=DIR` and `cache_from: type=local,src=DIR`: the
//! step cache of a build written out as an OCI image layout and read back
//! into another root's cache, so a second machine or a CI job starts from
//! what a first one built. The layout's index names one manifest whose
//! config (media type [`CONFIG_MEDIA_TYPE`]) maps step keys to their entries
//! and whose layers are those entries' layer blobs, as they are in the
//! store; any OCI tool can copy the directory.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use stack_image::{Digest, Store};

use crate::cache::{Cache, Entry, Key};

/// The media type of the manifest's config: the step keys and entries.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.stack.build.cache.v1+json";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[derive(Debug, thiserror::Error)]
pub enum CacheIoError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a build cache exported by stack: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] stack_image::StoreError),
    #[error("{path}: {source}")]
    Unpack {
        path: PathBuf,
        source: stack_image::unpack::UnpackError,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> CacheIoError + '_ {
    move |source| CacheIoError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The manifest's config.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    /// Step key (hex) → what the step made.
    entries: BTreeMap<String, Entry>,
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.hex())
}

/// Writes `entries` (and their layers) as an OCI layout at `dest`, made
/// aside and renamed into place so that a reader sees the old cache or the
/// new one, never half of one. Blobs `dest` had already are reused.
pub fn export(store: &Store, entries: &[(Key, Entry)], dest: &Path) -> Result<(), CacheIoError> {
    let parent = dest.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(parent).map_err(io_at(parent))?;
    let tmp = parent.join(format!(
        ".{}.new-{}",
        dest.file_name()
            .map_or("cache".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&tmp);
    let blobs = tmp.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_at(&blobs))?;
    let result = (|| {
        let mut record = Record::default();
        let mut layers = Vec::new();
        for (key, entry) in entries {
            if record.entries.insert(key.hex(), entry.clone()).is_some() {
                continue;
            }
            let to = blob_path(&tmp, &entry.digest);
            if to.exists() {
                continue;
            }
            // A hard link when the store is on the same file system.
            let old = blob_path(dest, &entry.digest);
            let from = if old.is_file() {
                old
            } else {
                store.blob_path(&entry.digest)
            };
            if fs::hard_link(&from, &to).is_err() {
                fs::copy(&from, &to).map_err(io_at(&from))?;
            }
            let size = fs::metadata(&to).map_err(io_at(&to))?.len();
            layers.push(json!({
                "mediaType": LAYER_MEDIA_TYPE,
                "digest": entry.digest.to_string(),
                "size": size,
            }));
        }
        let config = serde_json::to_vec(&record).expect("a record serialises");
        let config_digest = write_blob(&tmp, &config)?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": CONFIG_MEDIA_TYPE,
            "config": {
                "mediaType": CONFIG_MEDIA_TYPE,
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": layers,
        }))
        .expect("a manifest serialises");
        let manifest_digest = write_blob(&tmp, &manifest)?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": MANIFEST_MEDIA_TYPE,
                "artifactType": CONFIG_MEDIA_TYPE,
                "digest": manifest_digest.to_string(),
                "size": manifest.len(),
            }],
        });
        for (name, bytes) in [
            (
                "index.json",
                serde_json::to_vec_pretty(&index).expect("serialises"),
            ),
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ] {
            let path = tmp.join(name);
            fs::write(&path, bytes).map_err(io_at(&path))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    // The old directory goes only once the new one is whole.
    let old = parent.join(format!(
        ".{}.old-{}",
        dest.file_name()
            .map_or("cache".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let had = dest.exists();
    if had {
        fs::rename(dest, &old).map_err(io_at(dest))?;
    }
    fs::rename(&tmp, dest).map_err(io_at(dest))?;
    if had {
        let _ = fs::remove_dir_all(&old);
    }
    Ok(())
}

fn write_blob(dir: &Path, bytes: &[u8]) -> Result<Digest, CacheIoError> {
    let digest = Digest::of(bytes);
    let path = blob_path(dir, &digest);
    fs::write(&path, bytes).map_err(io_at(&path))?;
    Ok(digest)
}

/// Reads a blob of the layout at `src`, checked against its digest.
fn read_blob(src: &Path, digest: &Digest) -> Result<Vec<u8>, CacheIoError> {
    let path = blob_path(src, digest);
    let bytes = fs::read(&path).map_err(io_at(&path))?;
    if Digest::of(&bytes) != *digest {
        return Err(CacheIoError::Invalid {
            path,
            message: "the blob does not match its digest".into(),
        });
    }
    Ok(bytes)
}

/// Puts the entries of the layout at `src` into `cache`, their layers into
/// `store` (unpacked, pinned like the cache's own); entries the cache has
/// already are left. Returns how many were added.
pub fn import(store: &Store, cache: &Cache, src: &Path) -> Result<usize, CacheIoError> {
    let invalid = |path: &Path, message: &str| CacheIoError::Invalid {
        path: path.to_owned(),
        message: message.to_owned(),
    };
    let index_path = src.join("index.json");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(&index_path).map_err(io_at(&index_path))?)
            .map_err(|e| invalid(&index_path, &e.to_string()))?;
    let manifest_digest = index["manifests"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|d| d["artifactType"] == CONFIG_MEDIA_TYPE)
                .and_then(|d| d["digest"].as_str())
        })
        .and_then(|d| d.parse::<Digest>().ok())
        .ok_or_else(|| invalid(&index_path, "no manifest of a build cache in index.json"))?;
    let manifest: serde_json::Value = serde_json::from_slice(&read_blob(src, &manifest_digest)?)
        .map_err(|e| invalid(&blob_path(src, &manifest_digest), &e.to_string()))?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .and_then(|d| d.parse::<Digest>().ok())
        .ok_or_else(|| invalid(&blob_path(src, &manifest_digest), "no config"))?;
    let record: Record = serde_json::from_slice(&read_blob(src, &config_digest)?)
        .map_err(|e| invalid(&blob_path(src, &config_digest), &e.to_string()))?;
    let tmp_dir = store.dir().join("tmp");
    fs::create_dir_all(&tmp_dir).map_err(io_at(&tmp_dir))?;
    let mut added = 0;
    for (hex_key, entry) in &record.entries {
        let key = hex::decode(hex_key)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .map(Key)
            .ok_or_else(|| {
                invalid(
                    &blob_path(src, &config_digest),
                    "a key is not 64 hex digits",
                )
            })?;
        if cache.get(&key, store).is_some() {
            continue;
        }
        if !store.has_blob(&entry.digest) {
            let from = blob_path(src, &entry.digest);
            let tmp = tmp_dir.join(format!(
                "cache-import-{}-{}",
                entry.digest.hex(),
                std::process::id()
            ));
            fs::copy(&from, &tmp).map_err(io_at(&from))?;
            store.import_blob_file(&tmp, Some(&entry.digest))?;
        }
        let layer = store.layer_path(&entry.digest);
        if !layer.is_dir() {
            stack_image::unpack::unpack_layer(
                &store.blob_path(&entry.digest),
                &layer,
                &tmp_dir,
                Some(&entry.diff_id),
            )
            .or_else(|e| {
                if layer.is_dir() {
                    Ok(entry.diff_id.clone())
                } else {
                    Err(e)
                }
            })
            .map_err(|source| CacheIoError::Unpack {
                path: blob_path(src, &entry.digest),
                source,
            })?;
        }
        store.pin(&entry.digest)?;
        cache.put(&key, entry).map_err(io_at(store.dir()))?;
        added += 1;
    }
    Ok(added)
}
