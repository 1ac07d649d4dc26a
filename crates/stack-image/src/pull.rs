//! Registry pulls over the OCI distribution API (via `oci-client`, which does
//! the bearer-token flow): Docker v2 schema 2 and OCI manifests, indexes
//! resolved to one platform, layers downloaded in parallel and unpacked as they
//! arrive. A blob becomes visible only after its digest is verified; partial
//! downloads stay in `tmp/` and a later pull resumes them with a Range request.

use std::fs::{self, File};
use std::io::{self, Seek, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;

use crate::digest::{Digest, HashingWriter};
use crate::model::{self, Descriptor, ImageConfigFile, Index, Manifest, Platform};
use crate::progress::{LayerProgress, Progress, ProgressMode};
use crate::reference::Reference;
use crate::registry_config::{
    RegistriesConfig, RegistryConfigError, docker_config_path, docker_credentials,
};
use crate::store::{ImageId, Store, StoreError, io_at};
use crate::unpack::unpack_layer;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("pull {reference} from {registry}: {source}")]
    Registry {
        reference: String,
        registry: String,
        source: OciDistributionError,
    },
    #[error("pull {reference}: downloading {digest}: {source}")]
    Download {
        reference: String,
        digest: Digest,
        source: io::Error,
    },
    #[error("pull {reference}: {what} has digest {actual}, expected {expected}")]
    DigestMismatch {
        reference: String,
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("pull {reference}: {what}: invalid JSON: {source}")]
    Json {
        reference: String,
        what: String,
        source: serde_json::Error,
    },
    #[error("pull {reference}: no manifest for platform {platform}")]
    NoPlatform { reference: String, platform: String },
    #[error("pull {reference}: background task failed: {source}")]
    Task {
        reference: String,
        source: tokio::task::JoinError,
    },
    #[error(transparent)]
    Config(#[from] RegistryConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PullError {
    /// Whether the registry answered that the image (its name or its tag)
    /// does not exist, as opposed to failing to serve it.
    pub fn is_not_found(&self) -> bool {
        use oci_client::errors::OciErrorCode;
        match self {
            PullError::Registry { source, .. } => match source {
                OciDistributionError::ImageManifestNotFoundError(_) => true,
                OciDistributionError::RegistryError { envelope, .. } => {
                    envelope.errors.iter().any(|e| {
                        matches!(
                            e.code,
                            OciErrorCode::ManifestUnknown
                                | OciErrorCode::NameUnknown
                                | OciErrorCode::NotFound
                        )
                    })
                }
                OciDistributionError::ServerError { code, .. } => *code == 404,
                _ => false,
            },
            _ => false,
        }
    }
}

/// How to pull.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// `os/arch[/variant]` to pick from an index; the host's by default.
    pub platform: Option<Platform>,
    pub registries: RegistriesConfig,
    /// Explicit basic credentials; otherwise the docker config file's.
    pub credentials: Option<(String, String)>,
    pub docker_config: Option<PathBuf>,
    pub progress: ProgressMode,
    pub max_concurrent_downloads: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            platform: None,
            registries: RegistriesConfig::default(),
            credentials: None,
            docker_config: docker_config_path(),
            progress: ProgressMode::Auto,
            max_concurrent_downloads: 3,
        }
    }
}

/// What a pull did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PullReport {
    pub id: ImageId,
    pub reference: String,
    pub manifest: Digest,
    /// The registry (or mirror) that served it.
    pub source: String,
    /// Blobs actually transferred (0 when everything was already in the store).
    pub blobs_fetched: usize,
    pub bytes_fetched: u64,
}

struct Session<'a> {
    store: &'a Store,
    client: oci_client::Client,
    oref: oci_client::Reference,
    auth: RegistryAuth,
    label: String,
    source: String,
    progress: Progress,
    blobs: AtomicUsize,
    bytes: AtomicU64,
}

impl Store {
    /// Pulls `reference` (from a mirror first when one is configured for its
    /// registry) and returns the image's id once all layers are unpacked.
    pub async fn pull(
        &self,
        reference: &Reference,
        opts: &PullOptions,
    ) -> Result<PullReport, PullError> {
        let mirrors = opts.registries.mirrors_for(&reference.registry);
        for (host, http) in &mirrors {
            match self.pull_from(reference, Some(host), *http, opts).await {
                Ok(r) => return Ok(r),
                Err(e @ (PullError::Store(_) | PullError::DigestMismatch { .. })) => return Err(e),
                Err(e) => tracing::warn!("mirror {host} failed, trying the next source: {e}"),
            }
        }
        let http = opts.registries.is_insecure(&reference.registry);
        self.pull_from(reference, None, http, opts).await
    }

    /// Pulls while holding the store's shared GC lock (see [`Store::prune`]).
    async fn pull_from(
        &self,
        reference: &Reference,
        mirror: Option<&str>,
        http: bool,
        opts: &PullOptions,
    ) -> Result<PullReport, PullError> {
        let store = self.clone();
        let _gc = tokio::task::spawn_blocking(move || store.gc_lock(false))
            .await
            .map_err(|source| PullError::Task {
                reference: reference.to_string(),
                source,
            })??;
        self.pull_locked(reference, mirror, http, opts).await
    }

    async fn pull_locked(
        &self,
        reference: &Reference,
        mirror: Option<&str>,
        http: bool,
        opts: &PullOptions,
    ) -> Result<PullReport, PullError> {
        let host = mirror.unwrap_or(&reference.registry).to_owned();
        let config = ClientConfig {
            protocol: if http {
                ClientProtocol::HttpsExcept(vec![host.clone()])
            } else {
                ClientProtocol::Https
            },
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            max_concurrent_download: opts.max_concurrent_downloads.max(1),
            ..Default::default()
        };
        let mut oref = match (&reference.tag, &reference.digest) {
            (_, Some(d)) => oci_client::Reference::with_digest(
                reference.registry.clone(),
                reference.repository.clone(),
                d.to_string(),
            ),
            (Some(t), None) => oci_client::Reference::with_tag(
                reference.registry.clone(),
                reference.repository.clone(),
                t.clone(),
            ),
            (None, None) => unreachable!("Reference::parse always sets a tag or a digest"),
        };
        if let Some(m) = mirror {
            oref.set_mirror_registry(m.to_owned());
        }
        let creds = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => match &opts.docker_config {
                Some(p) => docker_credentials(p, &host)?,
                None => None,
            },
        };
        let auth = creds.map_or(RegistryAuth::Anonymous, |(u, p)| RegistryAuth::Basic(u, p));
        let s = Session {
            store: self,
            client: oci_client::Client::new(config),
            oref,
            auth,
            label: reference.to_string(),
            source: host,
            progress: Progress::new(opts.progress),
            blobs: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
        };
        let platform = opts.platform.clone().unwrap_or_else(Platform::host);
        let (manifest_digest, manifest) = s.manifest(reference, &platform).await?;
        let config = s.config(&manifest).await?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(StoreError::LayerCount {
                image: s.label.clone(),
                diff_ids: config.rootfs.diff_ids.len(),
                layers: manifest.layers.len(),
            }
            .into());
        }
        let s = &s;
        futures::stream::iter(manifest.layers.iter().zip(config.rootfs.diff_ids.iter()))
            .map(|(layer, diff_id)| s.layer(layer, diff_id))
            .buffer_unordered(opts.max_concurrent_downloads.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        let store = self.clone();
        let tags: Vec<Reference> = reference
            .tag
            .is_some()
            .then(|| Reference {
                digest: None,
                ..reference.clone()
            })
            .into_iter()
            .collect();
        let repo = reference.clone();
        let md = manifest_digest.clone();
        let id = tokio::task::spawn_blocking(move || store.commit_image(&md, &tags, Some(&repo)))
            .await
            .map_err(|source| PullError::Task {
                reference: s.label.clone(),
                source,
            })??;
        s.progress.line(&format!(
            "{}: pulled {} ({})",
            s.label,
            id.short(),
            manifest_digest
        ));
        Ok(PullReport {
            id,
            reference: reference.to_string(),
            manifest: manifest_digest,
            source: s.source.clone(),
            blobs_fetched: s.blobs.load(Ordering::Relaxed),
            bytes_fetched: s.bytes.load(Ordering::Relaxed),
        })
    }
}

impl Session<'_> {
    fn registry_err(&self, source: OciDistributionError) -> PullError {
        PullError::Registry {
            reference: self.label.clone(),
            registry: self.source.clone(),
            source,
        }
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        bytes: &[u8],
    ) -> Result<T, PullError> {
        serde_json::from_slice(bytes).map_err(|source| PullError::Json {
            reference: self.label.clone(),
            what: what.to_owned(),
            source,
        })
    }

    fn check(&self, what: &str, expected: &Digest, bytes: &[u8]) -> Result<(), PullError> {
        let actual = Digest::of(bytes);
        if actual != *expected {
            return Err(PullError::DigestMismatch {
                reference: self.label.clone(),
                what: what.to_owned(),
                expected: expected.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Fetches the image manifest, resolving an index to `platform`.
    async fn manifest(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<(Digest, Manifest), PullError> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&self.oref, &self.auth, model::ACCEPTED_MANIFESTS)
            .await
            .map_err(|e| self.registry_err(e))?;
        if let Some(d) = &reference.digest {
            self.check("manifest", d, &bytes)?;
        }
        let probe: serde_json::Value = self.json("manifest", &bytes)?;
        let bytes = if probe.get("manifests").is_some() {
            let index: Index = self.json("image index", &bytes)?;
            let chosen =
                model::select_platform(&index, platform).ok_or_else(|| PullError::NoPlatform {
                    reference: self.label.clone(),
                    platform: platform.to_string(),
                })?;
            let by_digest = self.oref.clone_with_digest(chosen.digest.to_string());
            let (bytes, _) = self
                .client
                .pull_manifest_raw(&by_digest, &self.auth, model::ACCEPTED_MANIFESTS)
                .await
                .map_err(|e| self.registry_err(e))?;
            self.check("platform manifest", &chosen.digest, &bytes)?;
            bytes
        } else {
            bytes
        };
        let manifest: Manifest = self.json("manifest", &bytes)?;
        let digest = self.store.put_blob(&bytes, None)?;
        Ok((digest, manifest))
    }

    async fn config(&self, manifest: &Manifest) -> Result<ImageConfigFile, PullError> {
        let d = &manifest.config.digest;
        if !self.store.has_blob(d) {
            let mut buf = Vec::new();
            self.client
                .pull_blob(&self.oref, d.as_str(), &mut buf)
                .await
                .map_err(|e| self.registry_err(e))?;
            self.check("config", d, &buf)?;
            self.store.put_blob(&buf, Some(d))?;
            self.blobs.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        Ok(self.store.read_json(d)?)
    }

    /// Makes sure one layer is downloaded and unpacked.
    async fn layer(&self, layer: &Descriptor, diff_id: &Digest) -> Result<(), PullError> {
        let progress = self.progress.layer(&layer.digest, layer.size);
        let dest = self.store.layer_path(&layer.digest);
        if dest.is_dir() {
            progress.finish("already exists");
            return Ok(());
        }
        if !self.store.has_blob(&layer.digest) {
            self.download(layer, &progress).await?;
        }
        progress.finish("unpacking");
        let (blob, tmp, diff_id) = (
            self.store.blob_path(&layer.digest),
            self.store.tmp_dir(),
            diff_id.clone(),
        );
        tokio::task::spawn_blocking(move || unpack_layer(&blob, &dest, &tmp, Some(&diff_id)))
            .await
            .map_err(|source| PullError::Task {
                reference: self.label.clone(),
                source,
            })?
            .map_err(StoreError::from)?;
        progress.finish("done");
        Ok(())
    }

    /// Downloads a blob into `tmp/<hex>.partial`, resuming what an earlier
    /// attempt left, and moves it into the store once its digest checks out.
    async fn download(
        &self,
        layer: &Descriptor,
        progress: &LayerProgress,
    ) -> Result<(), PullError> {
        let digest = &layer.digest;
        let dl_err = |source| PullError::Download {
            reference: self.label.clone(),
            digest: digest.clone(),
            source,
        };
        let partial = self
            .store
            .tmp_dir()
            .join(format!("{}.partial", digest.hex()));
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&partial)
            .map_err(dl_err)?;
        // One downloader per blob, also across processes.
        let lock = tokio::task::spawn_blocking(move || {
            nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        })
        .await
        .map_err(|source| PullError::Task {
            reference: self.label.clone(),
            source,
        })?
        .map_err(|(_, e)| dl_err(e.into()))?;
        if self.store.has_blob(digest) {
            return Ok(());
        }
        let mut file: &File = &lock;
        let mut offset = file.metadata().map_err(dl_err)?.len();
        if offset > layer.size {
            file.set_len(0).map_err(dl_err)?;
            offset = 0;
        }
        file.seek(io::SeekFrom::Start(0)).map_err(dl_err)?;
        let mut prefix = io::Read::take(file, offset);
        let mut writer = HashingWriter::resume(file, &mut prefix).map_err(dl_err)?;
        if offset < layer.size {
            let stream = if offset > 0 {
                match self
                    .client
                    .pull_blob_stream_partial(&self.oref, digest.as_str(), offset, None)
                    .await
                    .map_err(|e| self.registry_err(e))?
                {
                    BlobResponse::Partial(s) => s,
                    BlobResponse::Full(s) => {
                        // The registry ignored the Range header: start over.
                        file.set_len(0).map_err(dl_err)?;
                        file.seek(io::SeekFrom::Start(0)).map_err(dl_err)?;
                        offset = 0;
                        writer = HashingWriter::new(file);
                        s
                    }
                }
            } else {
                self.client
                    .pull_blob_stream(&self.oref, digest.as_str())
                    .await
                    .map_err(|e| self.registry_err(e))?
            };
            progress.start(offset);
            let mut stream = stream.stream;
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    // All bytes arrived but the client's own check failed: judge
                    // (and discard) them below like any other mismatch.
                    Err(_) if writer.count() >= layer.size => break,
                    Err(e) => return Err(dl_err(e)),
                };
                writer.write_all(&chunk).map_err(dl_err)?;
                progress.inc(chunk.len() as u64);
                self.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            self.blobs.fetch_add(1, Ordering::Relaxed);
        }
        let (file, actual, _) = writer.finish();
        if actual != *digest {
            let _ = fs::remove_file(&partial);
            return Err(PullError::DigestMismatch {
                reference: self.label.clone(),
                what: "layer".into(),
                expected: digest.clone(),
                actual,
            });
        }
        file.sync_all().map_err(io_at(&partial))?;
        self.store.commit_blob_file(&partial, digest)?;
        drop(lock);
        Ok(())
    }
}
