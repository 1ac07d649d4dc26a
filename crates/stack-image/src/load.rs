//! `stack image load`: `docker save` archives and OCI image-layout archives
//! (plain, gzip or zstd). The archive is streamed once; every regular file goes
//! to a temporary file while being hashed, so nothing from the archive is ever
//! unpacked onto the host by name and every blob is checked against its digest.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::digest::{Digest, HashingWriter};
use crate::model::{self, Descriptor, Index, Manifest, Platform};
use crate::reference::Reference;
use crate::store::{ImageId, Store, StoreError, io_at};
use crate::unpack::decompress;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{archive}: neither a docker save archive (manifest.json) nor an OCI layout (index.json)"
    )]
    NotAnImage { archive: PathBuf },
    #[error("{archive}: {file} is referenced but not in the archive")]
    Missing { archive: PathBuf, file: String },
    #[error("{archive}: {file}: invalid JSON: {source}")]
    Json {
        archive: PathBuf,
        file: String,
        source: serde_json::Error,
    },
    #[error("{archive}: {file} has digest {actual}, its name says otherwise")]
    BlobName {
        archive: PathBuf,
        file: String,
        actual: Digest,
    },
    #[error("{archive}: no manifest for platform {platform}")]
    NoPlatform { archive: PathBuf, platform: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An image the archive contained.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LoadedImage {
    pub id: ImageId,
    pub tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Files of the archive, each already in a temporary file with its digest.
struct Staged {
    archive: PathBuf,
    dir: PathBuf,
    files: HashMap<String, (PathBuf, Digest, u64)>,
    links: HashMap<String, String>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Staged {
    fn get(&self, name: &str) -> Result<&(PathBuf, Digest, u64), LoadError> {
        let mut name = normalise(name);
        for _ in 0..16 {
            if let Some(f) = self.files.get(&name) {
                return Ok(f);
            }
            match self.links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        Err(LoadError::Missing {
            archive: self.archive.clone(),
            file: name,
        })
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, LoadError> {
        let (path, _, _) = self.get(name)?;
        let bytes = fs::read(path).map_err(|source| LoadError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| LoadError::Json {
            archive: self.archive.clone(),
            file: name.to_owned(),
            source,
        })
    }

    /// Moves a staged file into the blob store (a copy stays for other references).
    fn import(&self, store: &Store, name: &str) -> Result<(Digest, u64), LoadError> {
        let (path, digest, size) = self.get(name)?;
        if !store.has_blob(digest) {
            let tmp = store.temp_path("load-blob");
            fs::hard_link(path, &tmp)
                .or_else(|_| fs::copy(path, &tmp).map(drop))
                .map_err(io_at(&tmp))?;
            store.import_blob_file(&tmp, Some(digest))?;
        }
        Ok((digest.clone(), *size))
    }
}

fn normalise(name: &str) -> String {
    name.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

impl Store {
    /// Loads every image in a `docker save` or OCI layout archive.
    pub fn load_archive(&self, archive: &Path) -> Result<Vec<LoadedImage>, LoadError> {
        let f = File::open(archive).map_err(|source| LoadError::Io {
            path: archive.to_owned(),
            source,
        })?;
        self.load_reader(f, archive)
    }

    /// Like [`Store::load_archive`] for an archive read from a stream (`-i -`).
    pub fn load_reader(
        &self,
        input: impl Read,
        label: &Path,
    ) -> Result<Vec<LoadedImage>, LoadError> {
        let _gc = self.gc_lock(false)?;
        let staged = self.stage(input, label)?;
        if staged.files.contains_key("index.json") && staged.files.contains_key("oci-layout") {
            self.load_oci(&staged)
        } else if staged.files.contains_key("manifest.json") {
            self.load_docker(&staged)
        } else {
            Err(LoadError::NotAnImage {
                archive: label.to_owned(),
            })
        }
    }

    fn stage(&self, input: impl Read, label: &Path) -> Result<Staged, LoadError> {
        let dir = self.temp_path("load");
        fs::create_dir(&dir).map_err(io_at(&dir))?;
        let mut staged = Staged {
            archive: label.to_owned(),
            dir,
            files: HashMap::new(),
            links: HashMap::new(),
        };
        let io = |source| LoadError::Io {
            path: label.to_owned(),
            source,
        };
        let mut tar = tar::Archive::new(decompress(input).map_err(io)?);
        for (n, entry) in tar.entries().map_err(io)?.enumerate() {
            let mut entry = entry.map_err(io)?;
            let name = normalise(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let path = staged.dir.join(n.to_string());
                    let mut w = HashingWriter::new(File::create(&path).map_err(io_at(&path))?);
                    io::copy(&mut entry, &mut w).map_err(io_at(&path))?;
                    let (_, digest, size) = w.finish();
                    staged.files.insert(name, (path, digest, size));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target =
                        String::from_utf8_lossy(&entry.link_name_bytes().unwrap_or_default())
                            .into_owned();
                    let resolved = if entry.header().entry_type() == tar::EntryType::Symlink {
                        let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
                        normalise(&format!("{parent}/{target}"))
                    } else {
                        normalise(&target)
                    };
                    staged.links.insert(name, resolved);
                }
                _ => {}
            }
        }
        Ok(staged)
    }

    fn load_docker(&self, s: &Staged) -> Result<Vec<LoadedImage>, LoadError> {
        let entries: Vec<SaveEntry> = s.json("manifest.json")?;
        let mut out = Vec::new();
        for e in entries {
            let (config, config_size) = s.import(self, &e.config)?;
            let mut layers = Vec::new();
            for l in &e.layers {
                let (digest, size) = s.import(self, l)?;
                layers.push(Descriptor {
                    media_type: model::DOCKER_LAYER_TAR.into(),
                    digest,
                    size,
                    platform: None,
                    annotations: Default::default(),
                });
            }
            let manifest = Manifest {
                schema_version: 2,
                media_type: Some(model::DOCKER_MANIFEST.into()),
                config: Descriptor {
                    media_type: model::DOCKER_CONFIG.into(),
                    digest: config,
                    size: config_size,
                    platform: None,
                    annotations: Default::default(),
                },
                layers,
            };
            let bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
            let manifest_digest = self.put_blob(&bytes, None)?;
            let tags = parse_tags(e.repo_tags.unwrap_or_default().iter().map(String::as_str));
            let id = self.commit_image(&manifest_digest, &tags, None)?;
            out.push(LoadedImage {
                id,
                tags: tags.iter().map(Reference::familiar).collect(),
            });
        }
        Ok(out)
    }

    fn load_oci(&self, s: &Staged) -> Result<Vec<LoadedImage>, LoadError> {
        // Every blob is checked against its name before anything is imported.
        for (name, (_, digest, _)) in &s.files {
            if let Some(hex) = name.strip_prefix("blobs/sha256/")
                && hex != digest.hex()
            {
                return Err(LoadError::BlobName {
                    archive: s.archive.clone(),
                    file: name.clone(),
                    actual: digest.clone(),
                });
            }
        }
        let index: Index = s.json("index.json")?;
        let mut out = Vec::new();
        for desc in &index.manifests {
            let manifest_desc = if model::is_index(&desc.media_type) {
                let nested: Index = s.json(&blob_name(&desc.digest))?;
                let want = Platform::host();
                model::select_platform(&nested, &want)
                    .cloned()
                    .ok_or_else(|| LoadError::NoPlatform {
                        archive: s.archive.clone(),
                        platform: want.to_string(),
                    })?
            } else {
                desc.clone()
            };
            let manifest: Manifest = s.json(&blob_name(&manifest_desc.digest))?;
            s.import(self, &blob_name(&manifest.config.digest))?;
            for l in &manifest.layers {
                s.import(self, &blob_name(&l.digest))?;
            }
            let (manifest_digest, _) = s.import(self, &blob_name(&manifest_desc.digest))?;
            let name = desc
                .annotations
                .get("io.containerd.image.name")
                .or_else(|| {
                    desc.annotations
                        .get("org.opencontainers.image.ref.name")
                        .filter(|n| n.contains(['/', ':']))
                });
            let tags = parse_tags(name.map(String::as_str));
            let id = self.commit_image(&manifest_digest, &tags, None)?;
            out.push(LoadedImage {
                id,
                tags: tags.iter().map(Reference::familiar).collect(),
            });
        }
        Ok(out)
    }
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn parse_tags<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Reference> {
    names
        .into_iter()
        .filter_map(|t| match Reference::parse(t) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!("ignoring tag {t:?} in archive: {e}");
                None
            }
        })
        .collect()
}
