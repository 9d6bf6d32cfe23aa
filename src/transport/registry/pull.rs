//! Reading a base from a registry: resolve the tag, walk an index (skipping
//! attestations), fetch and verify manifests and configs. Layers are not
//! downloaded: they become remote blobs, read only if an output needs their
//! bytes (a local output, or a push to another registry).

use std::sync::Arc;

use super::{runtime, RawManifest, Registries, RemoteRepo};
use crate::error::{Error, Result};
use crate::image::{media, Blob, BlobData, Index, Manifest, MediaFamily, RemoteBlobs};
use crate::reference::{Location, Reference};
use crate::transport::{base_image, Base, BaseImage};

/// Reads the base named by `reference`.
pub fn read_base(location: &Location, reference: &Reference, registries: &Arc<Registries>) -> Result<Base> {
    runtime().block_on(read_base_async(location, reference, registries))
}

async fn read_base_async(location: &Location, r: &Reference, registries: &Arc<Registries>) -> Result<Base> {
    let client = registries.client(&r.registry).await?;
    let wanted = r.digest.map(|d| d.to_string()).unwrap_or_else(|| r.tag_or_latest().to_string());
    let top = client
        .get_manifest(&r.repository, &wanted)
        .await?
        .ok_or_else(|| Error::source(format!("{r}: not found in the registry; check the name and tag")))?;
    let family = MediaFamily::of(&top.media_type)
        .ok_or_else(|| Error::source(format!("{r}: unsupported manifest media type {}", top.media_type)))?;
    let repo: Arc<dyn RemoteBlobs> = Arc::new(RemoteRepo { client: client.clone(), repository: r.repository.clone() });
    let shown = r.to_string();
    let (images, multi) = if top.media_type == media::OCI_INDEX || top.media_type == media::DOCKER_LIST {
        let idx: Index =
            serde_json::from_slice(&top.bytes).map_err(|e| Error::source(format!("{shown}: invalid index: {e}")))?;
        let listed: Vec<_> = idx.manifests.iter().filter(|m| !m.is_attestation()).collect();
        if let Some(m) = listed.iter().find(|m| MediaFamily::of(&m.media_type) != Some(family)) {
            return Err(Error::source(format!("{shown}: index mixes media types ({})", m.media_type)));
        }
        // Every platform's manifest and config are asked at once.
        let images = futures_util::future::try_join_all(listed.into_iter().map(|m| {
            let (client, repo, shown) = (&client, &repo, &shown);
            async move {
                let child = client.get_manifest(&r.repository, &m.digest.to_string()).await?.ok_or_else(|| {
                    Error::source(format!("{shown}: index lists {} but the registry does not have it", m.digest))
                })?;
                image(shown, client, &r.repository, repo, child, m.platform.clone()).await
            }
        }))
        .await?;
        if images.is_empty() {
            return Err(Error::source(format!("{shown}: the index lists no images")));
        }
        (images, true)
    } else {
        (vec![image(&shown, &client, &r.repository, &repo, top.clone(), None).await?], false)
    };
    let name = match (&r.tag, &r.digest) {
        (None, Some(_)) => r.to_string(),
        _ => r.with_tag(r.tag_or_latest()).to_string(),
    };
    Ok(Base {
        location: location.clone(),
        name,
        tag: r.tag_or_latest().to_string(),
        digest: Some(top.digest),
        family,
        multi_platform: multi,
        images,
        _keep: None,
    })
}

async fn image(
    shown: &str,
    client: &super::Client,
    repository: &str,
    repo: &Arc<dyn RemoteBlobs>,
    raw: RawManifest,
    platform: Option<crate::image::Platform>,
) -> Result<BaseImage> {
    let m: Manifest = serde_json::from_slice(&raw.bytes)
        .map_err(|e| Error::source(format!("{shown}: manifest {} is invalid: {e}", raw.digest)))?;
    let config = client.get_small_blob(repository, &m.config).await?;
    let layers = m.layers.iter().map(|l| Blob { desc: l.clone(), data: BlobData::Remote(repo.clone()) }).collect();
    base_image(shown, Some(raw.digest), config, layers, platform)
}
