//! Registry pushes over the OCI distribution API (via `oci-client`): an
//! image of the store goes up as the very bytes it is stored as (layer
//! blobs, config, manifest), so its manifest digest is the same on both
//! sides. Blobs the registry has already are not sent again. Also the one
//! question asked of a registry without pulling: a tag's current digest.

use std::time::Duration;

use oci_client::RegistryOperation;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use reqwest::header::HeaderValue;

use crate::digest::Digest;
use crate::model::Manifest;
use crate::pull::PullOptions;
use crate::reference::Reference;
use crate::registry_config::{RegistryConfigError, docker_credentials};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("push {reference} to {registry}: {source}")]
    Registry {
        reference: String,
        registry: String,
        source: OciDistributionError,
    },
    #[error("push {reference}: manifest {digest}: invalid JSON: {source}")]
    Json {
        reference: String,
        digest: Digest,
        source: serde_json::Error,
    },
    #[error("{reference}: the registry answered with an invalid digest {digest:?}")]
    BadDigest { reference: String, digest: String },
    #[error(transparent)]
    Config(#[from] RegistryConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a push did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PushReport {
    pub reference: String,
    pub manifest: Digest,
    /// Blobs sent (the others were in the registry already).
    pub blobs_sent: usize,
}

/// A client for the registry `reference` names, the reference as
/// `oci-client` takes it (a tag, `latest` when none), and the credentials.
fn session(
    reference: &Reference,
    opts: &PullOptions,
) -> Result<(oci_client::Client, oci_client::Reference, RegistryAuth), PushError> {
    let host = reference.registry.clone();
    let config = ClientConfig {
        protocol: if opts.registries.is_insecure(&host) {
            ClientProtocol::HttpsExcept(vec![host.clone()])
        } else {
            ClientProtocol::Https
        },
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let oref = oci_client::Reference::with_tag(
        host.clone(),
        reference.repository.clone(),
        reference.tag.clone().unwrap_or_else(|| "latest".into()),
    );
    let creds = match &opts.credentials {
        Some(c) => Some(c.clone()),
        None => match &opts.docker_config {
            Some(p) => docker_credentials(p, &host)?,
            None => None,
        },
    };
    let auth = creds.map_or(RegistryAuth::Anonymous, |(u, p)| RegistryAuth::Basic(u, p));
    Ok((oci_client::Client::new(config), oref, auth))
}

/// The digest the registry serves for `reference`'s tag now (an index's
/// for a multi-platform image), asked with one request, nothing pulled:
/// what `config --resolve-image-digests` pins an image to.
pub async fn remote_digest(reference: &Reference, opts: &PullOptions) -> Result<Digest, PushError> {
    if let Some(d) = &reference.digest {
        return Ok(d.clone());
    }
    let (client, oref, auth) = session(reference, opts)?;
    let digest = client
        .fetch_manifest_digest(&oref, &auth)
        .await
        .map_err(|source| PushError::Registry {
            reference: reference.to_string(),
            registry: reference.registry.clone(),
            source,
        })?;
    Digest::parse(&digest).map_err(|_| PushError::BadDigest {
        reference: reference.to_string(),
        digest,
    })
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

impl Store {
    /// Pushes the image `reference` names in this store to the registry
    /// it names (plain HTTP for loopback and insecure registries, as pulls).
    /// Credentials and registries come from `opts`, as for a pull.
    pub async fn push(
        &self,
        reference: &Reference,
        opts: &PullOptions,
    ) -> Result<PushReport, PushError> {
        let label = reference.to_string();
        let details = self.inspect(&label)?;
        let manifest_bytes = self.read_blob(&details.manifest)?;
        let manifest: Manifest =
            serde_json::from_slice(&manifest_bytes).map_err(|source| PushError::Json {
                reference: label.clone(),
                digest: details.manifest.clone(),
                source,
            })?;
        let host = reference.registry.clone();
        let registry_err = |source| PushError::Registry {
            reference: label.clone(),
            registry: host.clone(),
            source,
        };
        let (client, oref, auth) = session(reference, opts)?;
        client
            .auth(&oref, &auth, RegistryOperation::Push)
            .await
            .map_err(registry_err)?;
        let mut blobs_sent = 0;
        for blob in manifest.layers.iter().chain([&manifest.config]) {
            let digest = blob.digest.to_string();
            if client
                .blob_exists(&oref, &digest)
                .await
                .map_err(registry_err)?
            {
                continue;
            }
            let bytes = self.read_blob(&blob.digest)?;
            client
                .push_blob(&oref, bytes, &digest)
                .await
                .map_err(registry_err)?;
            blobs_sent += 1;
        }
        let media_type = manifest.media_type.as_deref().unwrap_or(OCI_MANIFEST);
        let content_type = HeaderValue::from_str(media_type)
            .unwrap_or_else(|_| HeaderValue::from_static(OCI_MANIFEST));
        client
            .push_manifest_raw(&oref, manifest_bytes, content_type)
            .await
            .map_err(registry_err)?;
        Ok(PushReport {
            reference: label,
            manifest: details.manifest,
            blobs_sent,
        })
    }
}
