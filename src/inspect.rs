//! `inspect`: what an image at a location holds — top digest, platforms,
//! layers with their history, labels, the WSO2 facts detected and the
//! certificates wso2img added to its truststore.

use serde::Serialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::Result;
use crate::image::{mutate, MediaFamily};
use crate::reference::{Location, Reference};
use crate::sign::attach::{self, AttestationInfo, SignatureInfo};
use crate::sign::PublicKey;
use crate::transport::{self, Base, Connections};
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
    /// The certificates wso2img added to its truststore (alias, subject,
    /// sha256, not_after), when it added any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truststore: Option<Value>,
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
pub fn inspect(location: &Location, connections: &Connections) -> Result<Inspection> {
    inspect_with(location, connections, None)
}

/// Inspects the image at `location`; its signatures are checked with `key`
/// when one is given.
pub fn inspect_with(location: &Location, connections: &Connections, key: Option<&PublicKey>) -> Result<Inspection> {
    let transport = transport::of(location);
    let base = transport.open_base(std::path::Path::new("."), connections)?;
    let digest = match base.digest {
        Some(d) => Some(d),
        None => transport.stored_digest()?,
    };
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
            truststore: img.config_json["config"]["Labels"][wso2::truststore::LABEL]
                .as_str()
                .and_then(wso2::truststore::from_label),
            user: img.config_json["config"]["User"].as_str().unwrap_or("").to_string(),
            detected,
        });
    }
    let (signatures, attestations) = match (transport.registry_reference(), digest) {
        (Some(r), Some(d)) => {
            let repo = Reference { tag: None, digest: None, ..r };
            let a = attach::attached(&connections.registries, &repo, &d, key)?;
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
        tag: location.tag_or(&base.tag),
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
