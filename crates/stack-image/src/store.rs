//! The content-addressed store under `<root>/images`:
//!
//! ```text
//! blobs/sha256/<hex>     manifests, configs and layer blobs, verified on arrival
//! layers/<hex>/          unpacked layer (keyed by its blob digest), shared read-only
//! rootfs/<container>/    per-container upper/, work/, merged/ and the image id it uses
//! tmp/                   partial downloads and unpacks; renamed into place when complete
//! index.json             images and tags, rewritten atomically under `lock`
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, HashingReader};
use crate::model::{ImageConfigFile, Manifest};
use crate::reference::{Reference, ReferenceError};
use crate::unpack::{UnpackError, unpack_layer};

/// An image is named by the digest of its config, as in Docker.
pub type ImageId = Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{what}: content has digest {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image reference {0:?} is ambiguous")]
    Ambiguous(String),
    #[error("image {image} is used by container(s) {containers}")]
    InUse { image: String, containers: String },
    #[error("image {image}: config lists {diff_ids} layers but the manifest has {layers}")]
    LayerCount {
        image: String,
        diff_ids: usize,
        layers: usize,
    },
    #[error(
        "overlay mount options for container {0} exceed the kernel's page-size limit (too many layers)"
    )]
    MountOptionsTooLong(String),
    #[error("invalid container id {0:?}")]
    ContainerId(String),
    #[error("mount overlay at {path}: {source}")]
    Mount { path: PathBuf, source: nix::Error },
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}

/// What the index keeps per image.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: ImageId,
    pub manifest: Digest,
    pub layers: Vec<Digest>,
    #[serde(default)]
    pub repo_digests: BTreeSet<String>,
    /// Sum of the layer blobs' sizes (compressed, as registries report them).
    pub size: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    images: BTreeMap<ImageId, ImageRecord>,
    /// Full reference (`docker.io/library/busybox:latest`) to image id.
    tags: BTreeMap<String, ImageId>,
}

/// One row of `stack image ls`.
#[derive(Clone, Debug, Serialize)]
pub struct ImageSummary {
    pub id: ImageId,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: Option<String>,
    pub size: u64,
}

/// `stack image inspect`.
#[derive(Clone, Debug, Serialize)]
pub struct ImageDetails {
    pub id: ImageId,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub manifest: Digest,
    pub layers: Vec<Digest>,
    pub size: u64,
    #[serde(flatten)]
    pub config: ImageConfigFile,
}

/// What `prune` removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub images: Vec<ImageId>,
    pub blobs: usize,
    pub layers: usize,
    pub bytes: u64,
}

/// An overlay root filesystem mounted for one container.
#[derive(Clone, Debug)]
pub struct RootfsMount {
    pub container_id: String,
    pub image: ImageId,
    /// The merged view: the container's root.
    pub path: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// Handle to the store; cheap to clone, safe to use from several processes.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `<root>/images`.
    pub fn open(root: &Path) -> Result<Self> {
        let store = Self {
            dir: stack_fs::Layout::of_root(root).images(),
        };
        for d in [
            store.dir.join("blobs/sha256"),
            store.layers_dir(),
            store.tmp_dir(),
            store.rootfs_dir(),
        ] {
            fs::create_dir_all(&d).map_err(io_at(&d))?;
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    fn layers_dir(&self) -> PathBuf {
        self.dir.join("layers")
    }

    fn rootfs_dir(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(d.hex())
    }

    pub fn layer_path(&self, d: &Digest) -> PathBuf {
        self.layers_dir().join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Exclusive lock over index changes, prune and rootfs bookkeeping.
    pub(crate) fn lock(&self) -> Result<nix::fcntl::Flock<File>> {
        let path = self.dir.join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_at(&path))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
            StoreError::Io {
                path,
                source: e.into(),
            }
        })
    }

    /// Held (shared) by pulls and loads for their whole run, and exclusively by
    /// garbage collection, so blobs that are downloaded but not yet referenced
    /// by an image are never collected under a running pull.
    pub(crate) fn gc_lock(&self, exclusive: bool) -> Result<nix::fcntl::Flock<File>> {
        let path = self.dir.join("gc.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_at(&path))?;
        let arg = if exclusive {
            nix::fcntl::FlockArg::LockExclusive
        } else {
            nix::fcntl::FlockArg::LockShared
        };
        nix::fcntl::Flock::lock(f, arg).map_err(|(_, e)| StoreError::Io {
            path,
            source: e.into(),
        })
    }

    pub(crate) fn temp_path(&self, label: &str) -> PathBuf {
        self.tmp_dir()
            .join(format!("{label}.{}.{}", std::process::id(), unique()))
    }

    /// Stores bytes as a blob, checking them against `expected` when given.
    pub fn put_blob(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let actual = Digest::of(bytes);
        if let Some(e) = expected
            && *e != actual
        {
            return Err(StoreError::DigestMismatch {
                what: "blob".into(),
                expected: e.clone(),
                actual,
            });
        }
        if !self.has_blob(&actual) {
            let tmp = self.temp_path("blob");
            write_file(&tmp, bytes)?;
            self.commit_blob_file(&tmp, &actual)?;
        }
        Ok(actual)
    }

    /// Hashes a finished temporary file and moves it into the blob store if it matches.
    pub fn import_blob_file(&self, tmp: &Path, expected: Option<&Digest>) -> Result<Digest> {
        let f = File::open(tmp).map_err(io_at(tmp))?;
        let (actual, _) = HashingReader::new(f).finish().map_err(io_at(tmp))?;
        if let Some(e) = expected
            && *e != actual
        {
            let _ = fs::remove_file(tmp);
            return Err(StoreError::DigestMismatch {
                what: tmp.display().to_string(),
                expected: e.clone(),
                actual,
            });
        }
        self.commit_blob_file(tmp, &actual)?;
        Ok(actual)
    }

    /// Renames a verified temporary file to its digest's name.
    pub(crate) fn commit_blob_file(&self, tmp: &Path, digest: &Digest) -> Result<()> {
        let dest = self.blob_path(digest);
        fs::rename(tmp, &dest).map_err(io_at(&dest))
    }

    /// Reads a (small) blob and verifies it against its name.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(d);
        let bytes = fs::read(&path).map_err(io_at(&path))?;
        let actual = Digest::of(&bytes);
        if actual != *d {
            return Err(StoreError::DigestMismatch {
                what: path.display().to_string(),
                expected: d.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    pub(crate) fn read_json<T: serde::de::DeserializeOwned>(&self, d: &Digest) -> Result<T> {
        let bytes = self.read_blob(d)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            path: self.blob_path(d),
            source,
        })
    }

    fn read_index(&self) -> Result<Index> {
        let path = self.dir.join("index.json");
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| StoreError::Json { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(io_at(path)(e)),
        }
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        let path = self.dir.join("index.json");
        let bytes = serde_json::to_vec_pretty(index).expect("index serialises");
        atomic_write(&path, &bytes)
    }

    /// Unpacks every layer of an image that is not unpacked yet.
    pub fn ensure_layers(
        &self,
        manifest: &Manifest,
        config: &ImageConfigFile,
        image: &str,
    ) -> Result<()> {
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(StoreError::LayerCount {
                image: image.to_owned(),
                diff_ids: config.rootfs.diff_ids.len(),
                layers: manifest.layers.len(),
            });
        }
        for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            let dest = self.layer_path(&layer.digest);
            if dest.is_dir() {
                continue;
            }
            let started = std::time::Instant::now();
            unpack_layer(
                &self.blob_path(&layer.digest),
                &dest,
                &self.tmp_dir(),
                Some(diff_id),
            )?;
            tracing::info!(layer = %layer.digest.short(), elapsed = ?started.elapsed(), "unpacked layer");
        }
        Ok(())
    }

    /// Records an image whose manifest, config and layer blobs are all in the
    /// store: unpacks its layers, then points `tags` at it.
    pub fn commit_image(
        &self,
        manifest_digest: &Digest,
        tags: &[Reference],
        repo_digest: Option<&Reference>,
    ) -> Result<ImageId> {
        let manifest: Manifest = self.read_json(manifest_digest)?;
        let config: ImageConfigFile = self.read_json(&manifest.config.digest)?;
        self.ensure_layers(&manifest, &config, manifest_digest.as_str())?;
        let id = manifest.config.digest.clone();
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let record = index
            .images
            .entry(id.clone())
            .or_insert_with(|| ImageRecord {
                id: id.clone(),
                manifest: manifest_digest.clone(),
                layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
                repo_digests: BTreeSet::new(),
                size: manifest.layers.iter().map(|l| l.size).sum(),
            });
        if let Some(r) = repo_digest {
            record
                .repo_digests
                .insert(r.with_digest(manifest_digest.clone()).to_string());
        }
        for t in tags {
            index.tags.insert(t.to_string(), id.clone());
        }
        self.write_index(&index)?;
        Ok(id)
    }

    /// Finds an image by reference, `name@digest`, full id or unique id prefix.
    pub fn resolve(&self, name: &str) -> Result<ImageId> {
        let index = self.read_index()?;
        resolve_in(&index, name)
    }

    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let index = self.read_index()?;
        let mut out = Vec::new();
        for rec in index.images.values() {
            let created = self
                .read_json::<ImageConfigFile>(&rec.id)
                .ok()
                .and_then(|c| c.created);
            out.push(ImageSummary {
                id: rec.id.clone(),
                repo_tags: tags_of(&index, &rec.id),
                repo_digests: rec.repo_digests.iter().cloned().collect(),
                created,
                size: rec.size,
            });
        }
        Ok(out)
    }

    /// The image config (Entrypoint, Cmd, Env, ... and the rootfs diff ids).
    pub fn config(&self, id: &ImageId) -> Result<ImageConfigFile> {
        self.read_json(id)
    }

    pub fn inspect(&self, name: &str) -> Result<ImageDetails> {
        let index = self.read_index()?;
        let id = resolve_in(&index, name)?;
        let rec = &index.images[&id];
        Ok(ImageDetails {
            id: id.clone(),
            repo_tags: tags_of(&index, &id),
            repo_digests: rec.repo_digests.iter().cloned().collect(),
            manifest: rec.manifest.clone(),
            layers: rec.layers.clone(),
            size: rec.size,
            config: self.read_json(&id)?,
        })
    }

    /// Points `target` at the image `source` names.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<ImageId> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let id = resolve_in(&index, source)?;
        index.tags.insert(target.to_string(), id.clone());
        self.write_index(&index)?;
        Ok(id)
    }

    /// Removes a tag; the image goes too when it has no tag left (or `name` is
    /// an id). Refuses an image a container root filesystem still uses.
    /// Returns the removed image's id, if it was removed.
    pub fn remove(&self, name: &str) -> Result<Option<ImageId>> {
        let _gc = self.gc_lock(true)?;
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let id = resolve_in(&index, name)?;
        let by_tag = Reference::parse(name)
            .ok()
            .map(|r| r.to_string())
            .filter(|t| index.tags.contains_key(t));
        if let Some(tag) = &by_tag {
            index.tags.remove(tag);
            if index.tags.values().any(|v| *v == id) {
                self.write_index(&index)?;
                return Ok(None);
            }
        }
        let users = self.containers_using(&id)?;
        if !users.is_empty() {
            return Err(StoreError::InUse {
                image: name.to_owned(),
                containers: users.join(", "),
            });
        }
        index.tags.retain(|_, v| *v != id);
        index.images.remove(&id);
        self.write_index(&index)?;
        self.collect_garbage(&index)?;
        Ok(Some(id))
    }

    /// Removes untagged images (all unused images with `all`) except those in
    /// `in_use` or under a container's root filesystem, then every blob and
    /// unpacked layer no remaining image references.
    pub fn prune(&self, in_use: &HashSet<ImageId>, all: bool) -> Result<PruneReport> {
        let _gc = self.gc_lock(true)?;
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let mounted: HashSet<ImageId> = self
            .rootfs_images()?
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let tagged: HashSet<ImageId> = index.tags.values().cloned().collect();
        let doomed: Vec<ImageId> = index
            .images
            .keys()
            .filter(|id| {
                !in_use.contains(*id) && !mounted.contains(*id) && (all || !tagged.contains(*id))
            })
            .cloned()
            .collect();
        for id in &doomed {
            index.images.remove(id);
        }
        index.tags.retain(|_, v| !doomed.contains(v));
        self.write_index(&index)?;
        let mut report = self.collect_garbage(&index)?;
        report.images = doomed;
        Ok(report)
    }

    /// Deletes blobs and layers no image in `index` references. Caller holds the lock.
    fn collect_garbage(&self, index: &Index) -> Result<PruneReport> {
        let mut keep: HashSet<String> = HashSet::new();
        for rec in index.images.values() {
            keep.insert(rec.id.hex().to_owned());
            keep.insert(rec.manifest.hex().to_owned());
            keep.extend(rec.layers.iter().map(|l| l.hex().to_owned()));
        }
        let mut report = PruneReport::default();
        let blobs = self.dir.join("blobs/sha256");
        for e in fs::read_dir(&blobs).map_err(io_at(&blobs))? {
            let e = e.map_err(io_at(&blobs))?;
            if !keep.contains(&*e.file_name().to_string_lossy()) {
                report.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(e.path()).map_err(io_at(e.path()))?;
                report.blobs += 1;
            }
        }
        let layers = self.layers_dir();
        for e in fs::read_dir(&layers).map_err(io_at(&layers))? {
            let e = e.map_err(io_at(&layers))?;
            if !keep.contains(&*e.file_name().to_string_lossy()) {
                fs::remove_dir_all(e.path()).map_err(io_at(e.path()))?;
                report.layers += 1;
            }
        }
        self.sweep_tmp()?;
        Ok(report)
    }

    /// Removes leftovers of killed pulls and loads. Partial downloads are kept
    /// for a day so an interrupted pull can resume them.
    fn sweep_tmp(&self) -> Result<()> {
        let tmp = self.tmp_dir();
        let now = std::time::SystemTime::now();
        for e in fs::read_dir(&tmp).map_err(io_at(&tmp))? {
            let e = e.map_err(io_at(&tmp))?;
            let keep_for = if e.file_name().to_string_lossy().ends_with(".partial") {
                std::time::Duration::from_secs(24 * 3600)
            } else {
                std::time::Duration::from_secs(3600)
            };
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age > keep_for);
            if old {
                let p = e.path();
                let r = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
                r.map_err(io_at(p))?;
            }
        }
        Ok(())
    }

    /// Container id → image id for every prepared root filesystem.
    pub fn rootfs_images(&self) -> Result<Vec<(String, ImageId)>> {
        let dir = self.rootfs_dir();
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_at(&dir))? {
            let e = e.map_err(io_at(&dir))?;
            let marker = e.path().join("image");
            if let Ok(s) = fs::read_to_string(&marker)
                && let Ok(d) = Digest::parse(s.trim())
            {
                out.push((e.file_name().to_string_lossy().into_owned(), d));
            }
        }
        Ok(out)
    }

    fn containers_using(&self, id: &ImageId) -> Result<Vec<String>> {
        Ok(self
            .rootfs_images()?
            .into_iter()
            .filter(|(_, i)| i == id)
            .map(|(c, _)| c)
            .collect())
    }

    pub(crate) fn rootfs_base(&self, container_id: &str) -> Result<PathBuf> {
        let ok = !container_id.is_empty()
            && container_id.len() <= 128
            && container_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !container_id.starts_with('.');
        if !ok {
            return Err(StoreError::ContainerId(container_id.to_owned()));
        }
        Ok(self.rootfs_dir().join(container_id))
    }

    /// The image's layer directories, lowest first, unpacking any that are missing.
    pub(crate) fn layer_dirs(&self, id: &ImageId) -> Result<Vec<PathBuf>> {
        let index = self.read_index()?;
        let rec = index
            .images
            .get(id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let manifest: Manifest = self.read_json(&rec.manifest)?;
        let config: ImageConfigFile = self.read_json(id)?;
        self.ensure_layers(&manifest, &config, id.as_str())?;
        Ok(manifest
            .layers
            .iter()
            .map(|l| self.layer_path(&l.digest))
            .collect())
    }
}

fn tags_of(index: &Index, id: &ImageId) -> Vec<String> {
    index
        .tags
        .iter()
        .filter(|(_, v)| *v == id)
        .map(|(k, _)| Reference::parse(k).map_or_else(|_| k.clone(), |r| r.familiar()))
        .collect()
}

fn resolve_in(index: &Index, name: &str) -> Result<ImageId> {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hits: Vec<&ImageId> = index
            .images
            .keys()
            .filter(|id| id.hex().starts_with(hex))
            .collect();
        match hits.as_slice() {
            [one] => return Ok((*one).clone()),
            [] => {}
            _ => return Err(StoreError::Ambiguous(name.to_owned())),
        }
    }
    let r = Reference::parse(name)?;
    if let Some(d) = &r.digest {
        let full = r.with_digest(d.clone()).to_string();
        if let Some(rec) = index
            .images
            .values()
            .find(|rec| rec.repo_digests.contains(&full) || rec.manifest == *d)
        {
            return Ok(rec.id.clone());
        }
        return Err(StoreError::NotFound(name.to_owned()));
    }
    index
        .tags
        .get(&r.to_string())
        .cloned()
        .ok_or_else(|| StoreError::NotFound(name.to_owned()))
}

pub(crate) fn unique() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    t ^ (u128::from(N.fetch_add(1, Ordering::Relaxed)) << 64)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(io_at(path))?;
    f.write_all(bytes).map_err(io_at(path))?;
    f.sync_all().map_err(io_at(path))
}

/// Writes `path` via a temporary sibling and a rename, so readers see the old or the new file.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    stack_fs::write(path, bytes).map_err(|e| io_at(e.path)(e.source))
}
