//! `inspect`: what an image at a location holds — top digest, platforms,
//! layers with their history, labels and the WSO2 facts detected.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::Result;
use crate::image::{mutate, MediaFamily};
use crate::reference::{Location, Reference};
use crate::sign::attach::{self, AttestationInfo, SignatureInfo};
use crate::sign::PublicKey;
use crate::transport::registry::Registries;
use crate::transport::{self, archive, Base};
use crate::wso2::{self, Facts};

/// One layer of an inspected image.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// Stored blob digest.
    pub digest: Digest,
    /// Stored size.
    pub size: u64,
    /// Media type.
    pub media_type: String,
    /// Uncompressed digest.
    pub diff_id: Digest,
    /// History line, when the config has one for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// One platform of an inspected image.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformInfo {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Manifest digest, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<Digest>,
    /// Config digest (the image ID).
    pub config_digest: Digest,
    /// Layers, base first.
    pub layers: Vec<LayerInfo>,
    /// Config labels.
    pub labels: Value,
    /// Runtime user.
    pub user: String,
    /// WSO2 facts, when it is a WSO2 image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected: Option<Facts>,
}

/// What `inspect` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The location inspected.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Top-level manifest or index digest, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// The content digest, as `build` computes it: the config digest for one
    /// platform, else the digest of the sorted (platform, config digest) list.
    pub content_digest: Digest,
    /// The tag the location names (or the layout's or archive's only tag);
    /// `null` when there is none, e.g. a reference by digest.
    pub tag: Option<String>,
    /// Always empty: `inspect` writes nothing (the field keeps the output
    /// contract of `build`, `tag` and `copy`).
    pub outputs: Vec<crate::pipeline::OutputReport>,
    /// Media type family.
    pub media_types: MediaFamily,
    /// Whether it is a multi-platform index.
    pub multi_platform: bool,
    /// Per platform.
    pub platforms: Vec<PlatformInfo>,
    /// cosign signatures of the top digest (`sha256-….sig`), for an image in
    /// a registry (absent elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signatures: Option<Vec<SignatureInfo>>,
    /// Attestations of the top digest (`sha256-….att` and OCI referrers), for
    /// an image in a registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestations: Option<Vec<AttestationInfo>>,
}

/// Inspects the image at `location`.
pub fn inspect(location: &Location, registries: &Arc<Registries>) -> Result<Inspection> {
    inspect_with(location, registries, None)
}

/// Inspects the image at `location`; its signatures are checked with `key`
/// when one is given.
pub fn inspect_with(location: &Location, registries: &Arc<Registries>, key: Option<&PublicKey>) -> Result<Inspection> {
    let base = transport::open_base(location, std::path::Path::new("."), registries)?;
    let mut digest = base.digest;
    if let (None, Location::DockerArchive { path, .. }) = (digest, location) {
        if let Some(index) = archive::read_member(path, &location.to_string(), "index.json")? {
            let v: Value = serde_json::from_slice(&index).unwrap_or(Value::Null);
            digest = v["manifests"][0]["digest"].as_str().and_then(|s| s.parse().ok());
        }
    }
    let mut platforms = Vec::new();
    for img in &base.images {
        let history: Vec<&Value> = img.config_json["history"]
            .as_array()
            .map(|h| h.iter().filter(|e| !e["empty_layer"].as_bool().unwrap_or(false)).collect())
            .unwrap_or_default();
        let layers = img
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerInfo {
                digest: l.blob.desc.digest,
                size: l.blob.desc.size,
                media_type: l.blob.desc.media_type.clone(),
                diff_id: l.diff_id,
                created_by: history.get(i).and_then(|h| h["created_by"].as_str()).map(str::to_string),
            })
            .collect();
        let detected = wso2::detect(&img.config_json, None, &mut transport::LayerFs(img)).ok();
        platforms.push(PlatformInfo {
            platform: img.platform.to_string(),
            manifest_digest: img.manifest_digest.or(if base.images.len() == 1 { digest } else { None }),
            config_digest: Digest::of(&img.config),
            layers,
            labels: img.config_json["config"]["Labels"].clone(),
            user: img.config_json["config"]["User"].as_str().unwrap_or("").to_string(),
            detected,
        });
    }
    let (signatures, attestations) = match (location, digest) {
        (Location::Registry(r), Some(d)) => {
            let repo = Reference { tag: None, digest: None, ..r.clone() };
            let a = attach::attached(registries, &repo, &d, key)?;
            (Some(a.signatures), Some(a.attestations))
        }
        _ => (None, None),
    };
    Ok(Inspection {
        signatures,
        attestations,
        reference: location.to_string(),
        digest,
        content_digest: content_digest(&base),
        tag: location_tag(location, &base),
        media_types: base.family,
        multi_platform: base.multi_platform,
        platforms,
        outputs: Vec::new(),
    })
}

/// The content digest of an image read as a base: its config digest when it
/// has one platform, else the multi-platform content digest `build` computes.
pub fn content_digest(base: &Base) -> Digest {
    match base.images.as_slice() {
        [one] => Digest::of(&one.config),
        many => mutate::multi_platform_content_digest(
            &many.iter().map(|i| (i.platform.clone(), Digest::of(&i.config))).collect::<Vec<_>>(),
        ),
    }
}

/// The tag a location names; for a layout, an archive or a built-in sample
/// without one, the tag the image was found under.
fn location_tag(location: &Location, base: &Base) -> Option<String> {
    match location {
        Location::Registry(r) | Location::Daemon(r) => r.tag.clone(),
        Location::Oci { tag: Some(t), .. } => Some(t.clone()),
        Location::DockerArchive { reference: Some(r), .. } => r.tag.clone(),
        _ => Some(base.tag.clone()).filter(|t| !t.is_empty()),
    }
}
