//! OCI image layout folders (`oci:DIR[:TAG]`): read a base from one; write
//! results into one with [`destination::LayoutDestination`], keeping the other
//! images already there.

pub mod destination;
mod location;

pub use destination::LayoutDestination;
pub use location::Layout;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{base_image, read_verified, Base, BaseImage};
use crate::digest::Digest;
use crate::error::{io_reason, Error, Result};
use crate::image::{media, Blob, Descriptor, Index, Manifest, MediaFamily, Platform};
use crate::reference::{Location, Reference};

/// The annotation that names an image in a layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
pub(crate) const LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

pub(crate) fn blob_path(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(d.hex())
}

pub(crate) fn layout_blob(dir: &Path, desc: &Descriptor) -> Blob {
    Blob::file(desc.clone(), blob_path(dir, &desc.digest), 0)
}

pub(crate) fn read_index(dir: &Path, shown: &str) -> Result<Index> {
    let path = dir.join("index.json");
    let bytes = fs::File::open(&path)
        .and_then(|f| crate::bounded::read_to_end_max(f, crate::bounded::METADATA_MAX))
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::source(format!("{shown}: no OCI image layout there (no index.json); check the path"))
            } else {
                Error::source(format!("{shown}: cannot read index.json ({})", io_reason(&e)))
            }
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::source(format!("{shown}: index.json is not a valid OCI index: {e}")))
}

/// Reads the base tagged `tag` (or the only image) from the layout at `dir`.
pub fn read_base(location: &Location, dir: &Path, tag: Option<&str>) -> Result<Base> {
    let shown = location.to_string();
    let index = read_index(dir, &shown)?;
    let tags: Vec<&str> =
        index.manifests.iter().filter_map(|m| m.annotations.get(REF_NAME).map(String::as_str)).collect();
    let entry = match tag {
        Some(t) => index.manifests.iter().find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(t)),
        None if index.manifests.len() == 1 => index.manifests.first(),
        None => {
            return Err(Error::source(format!(
                "{shown}: the layout holds {} images; name one with {shown}:TAG (tags: {})",
                index.manifests.len(),
                tags.join(", ")
            )))
        }
    };
    let entry = entry.ok_or_else(|| {
        let have = if tags.is_empty() { "none".to_string() } else { tags.join(", ") };
        Error::source(format!("{shown}: no image tagged {} in this layout (tags: {have})", tag.unwrap_or("")))
    })?;
    // The reference the layout carries (containerd's name, or a ref name that
    // is a full reference); else the manifest's digest. Never the layout's
    // location: where it sits on disk must not reach the image.
    let carried = entry
        .annotations
        .get(CONTAINERD_NAME)
        .or_else(|| entry.annotations.get(REF_NAME))
        .and_then(|n| n.contains('/').then(|| Reference::parse(n).ok()).flatten());
    let base_tag = tag
        .map(str::to_string)
        .or_else(|| carried.as_ref().and_then(|r| r.tag.clone()))
        .or_else(|| entry.annotations.get(REF_NAME).filter(|t| Reference::valid_tag(t)).cloned())
        .unwrap_or_else(|| "latest".into());
    let name = carried.map_or_else(|| entry.digest.to_string(), |r| r.to_string());
    let top = read_verified(&layout_blob(dir, entry), &shown)?;
    let media_type = entry.media_type.as_str();
    let family = MediaFamily::of(media_type)
        .ok_or_else(|| Error::source(format!("{shown}: unsupported media type {media_type}")))?;
    let (images, multi) = if media_type == media::OCI_INDEX || media_type == media::DOCKER_LIST {
        let idx: Index =
            serde_json::from_slice(&top).map_err(|e| Error::source(format!("{shown}: invalid index: {e}")))?;
        let mut images = Vec::new();
        for m in idx.manifests.iter().filter(|m| !m.is_attestation()) {
            if MediaFamily::of(&m.media_type) != Some(family) {
                return Err(Error::source(format!("{shown}: index mixes media types ({})", m.media_type)));
            }
            images.push(read_image(dir, &shown, m, m.platform.clone())?);
        }
        if images.is_empty() {
            return Err(Error::source(format!("{shown}: the index lists no images")));
        }
        (images, true)
    } else {
        (vec![read_image_bytes(dir, &shown, entry.digest, top, None)?], false)
    };
    Ok(Base {
        location: location.clone(),
        name,
        tag: base_tag,
        digest: Some(entry.digest),
        family,
        multi_platform: multi,
        images,
        _keep: None,
    })
}

fn read_image(dir: &Path, shown: &str, desc: &Descriptor, platform: Option<Platform>) -> Result<BaseImage> {
    let bytes = read_verified(&layout_blob(dir, desc), shown)?;
    read_image_bytes(dir, shown, desc.digest, bytes, platform)
}

fn read_image_bytes(
    dir: &Path,
    shown: &str,
    digest: Digest,
    bytes: Vec<u8>,
    platform: Option<Platform>,
) -> Result<BaseImage> {
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::source(format!("{shown}: manifest {digest} is invalid: {e}")))?;
    let config = read_verified(&layout_blob(dir, &m.config), shown)?;
    let layers = m.layers.iter().map(|l| layout_blob(dir, l)).collect();
    base_image(shown, Some(digest), config, layers, platform)
}
