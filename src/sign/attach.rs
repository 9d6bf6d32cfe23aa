//! Signatures and attestations in a registry, stored the way cosign stores
//! them: the `sha256-<hex>.sig` tag of the image's repository is an OCI
//! manifest whose layers are simple-signing payloads (the signature in the
//! `dev.cosignproject.cosign/signature` annotation); attestations are DSSE
//! envelopes, pushed as OCI 1.1 referrers (a manifest with a `subject`) when
//! the registry answers the referrers API, else as layers of the
//! `sha256-<hex>.att` tag (with a `predicateType` annotation). New layers
//! are appended to what a tag already holds, and a layer already there is
//! not added again, so signing the same image twice changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

use super::format::{self, Claim};
use super::key::{PublicKey, SigningKey};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::json::{canonical, canonical_of};
use crate::image::{media, Blob, Descriptor, Index, Manifest};
use crate::reference::Reference;
use crate::transport::registry::{push, runtime, Client, Registries};

/// Media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation carrying the base64 DER signature of the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Media type of a DSSE envelope layer.
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
/// Annotation naming an attestation's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";
/// The empty config of an OCI 1.1 artifact manifest.
const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";

/// The tag cosign's schema gives an image's `suffix` (`sig`, `att`) attachments.
pub fn attachment_tag(image: &Digest, suffix: &str) -> String {
    format!("sha256-{}.{suffix}", image.hex())
}

/// One signature found on an image.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureInfo {
    /// The identity it signs (`HOST/REPO:TAG`, or `HOST/REPO` from cosign).
    pub docker_reference: String,
    /// The tool that says it made it, when the payload says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// Whether the given key verified it (`null` without a key).
    pub verified: Option<bool>,
}

/// One attestation found on an image.
#[derive(Debug, Clone, Serialize)]
pub struct AttestationInfo {
    /// Its predicate type (`https://slsa.dev/provenance/v1`, `https://cyclonedx.org/bom`).
    pub predicate_type: String,
    /// Where it is stored: `tag` (`sha256-….att`) or `referrer`.
    pub stored: &'static str,
    /// Digest of the DSSE envelope.
    pub digest: Digest,
}

/// What is attached to one image.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Attached {
    /// Signatures under the `.sig` tag whose payload names this digest.
    pub signatures: Vec<SignatureInfo>,
    /// Attestations (`.att` tag and referrers).
    pub attestations: Vec<AttestationInfo>,
}

/// Signs `image` in `repo`'s repository once per identity in
/// `docker_references`; returns how many signatures were added (0 when all
/// were there already).
pub fn sign(
    registries: &Arc<Registries>,
    repo: &Reference,
    image: &Digest,
    docker_references: &[String],
    key: &SigningKey,
    creator: &str,
) -> Result<usize> {
    let public = key.public();
    let tag = attachment_tag(image, "sig");
    let mut layers = Vec::new();
    for identity in docker_references {
        let payload = format::simple_signing(image, identity, creator);
        let sig = STANDARD.encode(key.sign(&payload));
        let public = public.clone();
        layers.push(NewLayer {
            blob: Blob::bytes(SIMPLE_SIGNING, payload.clone()),
            annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), sig)]),
            present: Box::new(move |d: &Descriptor| {
                d.digest == Digest::of(&payload)
                    && d.annotations
                        .get(SIGNATURE_ANNOTATION)
                        .and_then(|s| STANDARD.decode(s).ok())
                        .is_some_and(|s| public.verifies(&payload, &s))
            }),
        });
    }
    append(registries, repo, &tag, layers)
}

/// Signs `image` and, when it is an index, each of its manifests, once per
/// identity; returns how many signatures were added.
pub fn sign_tree(
    registries: &Arc<Registries>,
    repo: &Reference,
    image: &Digest,
    docker_references: &[String],
    key: &SigningKey,
    creator: &str,
) -> Result<usize> {
    let children = runtime().block_on(async {
        let client = registries.client(&repo.registry).await?;
        let Some(raw) = client.get_manifest(&repo.repository, &image.to_string()).await? else {
            return Err(Error::source(format!("{}@{image}: not in the registry; nothing to sign", repo.name())));
        };
        if raw.media_type != media::OCI_INDEX && raw.media_type != media::DOCKER_LIST {
            return Ok(Vec::new());
        }
        let idx: Index = serde_json::from_slice(&raw.bytes)
            .map_err(|e| Error::source(format!("{}@{image}: invalid index: {e}", repo.name())))?;
        Ok(idx.manifests.iter().filter(|m| !m.is_attestation()).map(|m| m.digest).collect::<Vec<_>>())
    })?;
    let mut added = 0;
    for d in std::iter::once(*image).chain(children) {
        added += sign(registries, repo, &d, docker_references, key, creator)?;
    }
    Ok(added)
}

/// Attaches `statement` (an in-toto statement about `image`) as a DSSE
/// envelope signed with `key`; returns whether anything was added.
pub fn attest(
    registries: &Arc<Registries>,
    repo: &Reference,
    image: &Digest,
    predicate_type: &str,
    statement: &[u8],
    key: &SigningKey,
) -> Result<bool> {
    let envelope = format::envelope(key, format::IN_TOTO_PAYLOAD_TYPE, statement);
    let annotations = BTreeMap::from([(PREDICATE_TYPE_ANNOTATION.to_string(), predicate_type.to_string())]);
    if let Some(subject) = referrers_subject(registries, repo, image)? {
        return put_referrer(registries, repo, subject, envelope, annotations);
    }
    let digest = Digest::of(&envelope);
    let layer = NewLayer {
        blob: Blob::bytes(DSSE, envelope),
        annotations,
        present: Box::new(move |d: &Descriptor| d.digest == digest),
    };
    Ok(append(registries, repo, &attachment_tag(image, "att"), vec![layer])? > 0)
}

/// A layer to add to an attachment tag, and how to recognise it already there.
struct NewLayer {
    blob: Blob,
    annotations: BTreeMap<String, String>,
    present: Box<dyn Fn(&Descriptor) -> bool>,
}

/// Appends the layers not yet present to the OCI manifest under `tag`
/// (creating it), like containers/image and cosign: the config's
/// `rootfs.diff_ids` follow the layers. Returns how many were added.
fn append(registries: &Arc<Registries>, repo: &Reference, tag: &str, layers: Vec<NewLayer>) -> Result<usize> {
    let shown = format!("{}:{tag}", repo.name());
    let (mut manifest, mut config) = runtime().block_on(async {
        let client = registries.client(&repo.registry).await?;
        let Some(raw) = client.get_manifest(&repo.repository, tag).await? else {
            let config =
                json!({"architecture": "", "config": {}, "os": "", "rootfs": {"diff_ids": [], "type": "layers"}});
            let manifest = json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "layers": []});
            return Ok::<_, Error>((manifest, config));
        };
        if raw.media_type != media::OCI_MANIFEST {
            return Err(Error::source(format!(
                "{shown}: holds a {} where cosign's tag schema keeps an OCI manifest; remove that tag",
                raw.media_type
            )));
        }
        let manifest: Value = serde_json::from_slice(&raw.bytes)
            .map_err(|e| Error::source(format!("{shown}: invalid manifest ({e}); remove that tag")))?;
        let config_desc: Descriptor = serde_json::from_value(manifest["config"].clone())
            .map_err(|e| Error::source(format!("{shown}: invalid config descriptor ({e}); remove that tag")))?;
        let bytes = client.get_small_blob(&repo.repository, &config_desc).await?;
        let config: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::source(format!("{shown}: invalid config ({e}); remove that tag")))?;
        Ok((manifest, config))
    })?;
    let existing: Vec<Descriptor> = serde_json::from_value(manifest["layers"].clone())
        .map_err(|e| Error::source(format!("{shown}: invalid layers ({e}); remove that tag")))?;
    let mut blobs = Vec::new();
    for l in layers {
        if existing.iter().any(|d| (l.present)(d)) {
            continue;
        }
        let mut desc = l.blob.desc.clone();
        desc.annotations = l.annotations;
        push_json(&mut manifest["layers"], serde_json::to_value(&desc).expect("descriptors serialize"));
        push_json(&mut config["rootfs"]["diff_ids"], json!(desc.digest.to_string()));
        blobs.push(l.blob);
    }
    if blobs.is_empty() {
        return Ok(0);
    }
    let added = blobs.len();
    let config_blob = Blob::bytes(media::OCI_CONFIG, canonical(&config));
    manifest["config"] = serde_json::to_value(&config_blob.desc).expect("descriptors serialize");
    let top = Blob::bytes(media::OCI_MANIFEST, canonical(&manifest));
    blobs.push(config_blob);
    let tags = [tag.to_string()];
    push::push_graph(registries, repo, &push::Graph { blobs: &blobs, children: &[], top: &top, tags: &tags })?;
    Ok(added)
}

fn push_json(array: &mut Value, item: Value) {
    match array.as_array_mut() {
        Some(a) => a.push(item),
        None => *array = json!([item]),
    }
}

/// When the registry answers the OCI 1.1 referrers API for `image`, the
/// descriptor of `image` (for a `subject`); `None` when it does not.
fn referrers_subject(registries: &Arc<Registries>, repo: &Reference, image: &Digest) -> Result<Option<Descriptor>> {
    runtime().block_on(async {
        let client = registries.client(&repo.registry).await?;
        if !referrers_supported(&client, &repo.repository, image).await? {
            return Ok(None);
        }
        let raw = client
            .get_manifest(&repo.repository, &image.to_string())
            .await?
            .ok_or_else(|| Error::source(format!("{}@{image}: not in the registry; nothing to attest", repo.name())))?;
        Ok(Some(Descriptor::new(&raw.media_type, raw.digest, raw.bytes.len() as u64)))
    })
}

/// Whether `GET /v2/<repo>/referrers/<digest>` answers with an index.
async fn referrers_supported(client: &Client, repo: &str, image: &Digest) -> Result<bool> {
    Ok(referrers(client, repo, image).await?.is_some())
}

/// The referrers index of `image`, when the registry has the API.
async fn referrers(client: &Client, repo: &str, image: &Digest) -> Result<Option<Value>> {
    let path = format!("{repo}/referrers/{image}");
    let scopes = vec![format!("repository:{repo}:pull")];
    let resp =
        client.send(&scopes, &|h| client.request(h, Method::GET, &path).header("Accept", media::OCI_INDEX)).await?;
    if resp.status() != StatusCode::OK {
        return Ok(None);
    }
    let is_index = resp
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with(media::OCI_INDEX));
    if !is_index {
        return Ok(None);
    }
    let bytes = client
        .read_body(resp, crate::bounded::MANIFEST_MAX, &format!("referrers of {repo}@{image}"))
        .await
        .map_err(|(e, _)| e)?;
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Pushes one DSSE envelope as an OCI 1.1 artifact manifest referring to `subject`.
fn put_referrer(
    registries: &Arc<Registries>,
    repo: &Reference,
    subject: Descriptor,
    envelope: Vec<u8>,
    annotations: BTreeMap<String, String>,
) -> Result<bool> {
    let empty = Blob::bytes(EMPTY_CONFIG, b"{}".to_vec());
    let layer = Blob::bytes(DSSE, envelope);
    let mut layer_desc = layer.desc.clone();
    layer_desc.annotations = annotations.clone();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: Some(DSSE.into()),
        config: empty.desc.clone(),
        layers: vec![layer_desc],
        subject: Some(subject),
        annotations,
    };
    let top = Blob::bytes(media::OCI_MANIFEST, canonical_of(&manifest));
    let there = runtime().block_on(async {
        let client = registries.client(&repo.registry).await?;
        client.get_manifest(&repo.repository, &top.desc.digest.to_string()).await.map(|m| m.is_some())
    })?;
    if there {
        return Ok(false);
    }
    push::push_graph(registries, repo, &push::Graph { blobs: &[empty, layer], children: &[], top: &top, tags: &[] })?;
    Ok(true)
}

/// The signatures and attestations attached to `image` in `repo`'s
/// repository; signatures are checked with `key` when one is given.
pub fn attached(
    registries: &Arc<Registries>,
    repo: &Reference,
    image: &Digest,
    key: Option<&PublicKey>,
) -> Result<Attached> {
    runtime().block_on(async {
        let client = registries.client(&repo.registry).await?;
        let r = &repo.repository;
        let mut out = Attached::default();
        for (desc, payload) in signature_layers(&client, r, image).await? {
            let Some(claim) = payload.as_deref().and_then(format::parse_simple_signing) else { continue };
            if claim.image != *image {
                continue;
            }
            let verified = key.map(|k| signature_verifies(k, &desc, payload.as_deref().unwrap_or_default()));
            out.signatures.push(SignatureInfo {
                docker_reference: claim.docker_reference,
                creator: claim.creator,
                verified,
            });
        }
        if let Some(raw) = client.get_manifest(r, &attachment_tag(image, "att")).await? {
            let layers: Vec<Descriptor> = serde_json::from_slice::<Value>(&raw.bytes)
                .ok()
                .and_then(|m| serde_json::from_value(m["layers"].clone()).ok())
                .unwrap_or_default();
            for l in layers.iter().filter(|l| l.media_type == DSSE) {
                out.attestations.push(AttestationInfo {
                    predicate_type: l.annotations.get(PREDICATE_TYPE_ANNOTATION).cloned().unwrap_or_default(),
                    stored: "tag",
                    digest: l.digest,
                });
            }
        }
        if let Some(index) = referrers(&client, r, image).await? {
            let entries: Vec<Descriptor> = serde_json::from_value(index["manifests"].clone()).unwrap_or_default();
            for m in entries {
                let Some(a) = m.annotations.get(PREDICATE_TYPE_ANNOTATION) else { continue };
                out.attestations.push(AttestationInfo {
                    predicate_type: a.clone(),
                    stored: "referrer",
                    digest: m.digest,
                });
            }
        }
        Ok(out)
    })
}

/// Checks that `image` in `repo` carries a signature made with `key`: a
/// simple-signing payload naming exactly this digest, whose signature
/// verifies. Like `cosign verify --key`, the signed identity is reported,
/// not compared (a mirror keeps the original repository's name). Returns the
/// accepted claim; a missing or bad signature is an error of kind `Source`.
pub fn verify(registries: &Arc<Registries>, repo: &Reference, image: &Digest, key: &PublicKey) -> Result<Claim> {
    let shown = format!("{}@{image}", repo.name());
    let layers = runtime().block_on(async {
        let client = registries.client(&repo.registry).await?;
        signature_layers(&client, &repo.repository, image).await
    })?;
    if layers.is_empty() {
        return Err(Error::source(format!(
            "{shown}: has no signature (no {} tag); the base must be signed with the key in verify_key",
            attachment_tag(image, "sig")
        )));
    }
    let mut other_digest = false;
    for (desc, payload) in &layers {
        let Some(payload) = payload else { continue };
        if !signature_verifies(key, desc, payload) {
            continue;
        }
        match format::parse_simple_signing(payload) {
            Some(claim) if claim.image == *image => return Ok(claim),
            Some(_) => other_digest = true,
            None => {}
        }
    }
    Err(Error::source(if other_digest {
        format!("{shown}: its signature names another digest; refusing the base")
    } else {
        format!(
            "{shown}: none of its {} signature{} verifies with the key in verify_key; refusing the base",
            layers.len(),
            if layers.len() == 1 { "" } else { "s" }
        )
    }))
}

fn signature_verifies(key: &PublicKey, desc: &Descriptor, payload: &[u8]) -> bool {
    desc.annotations
        .get(SIGNATURE_ANNOTATION)
        .and_then(|s| STANDARD.decode(s.trim()).ok())
        .is_some_and(|sig| key.verifies(payload, &sig))
}

/// The simple-signing layers under `image`'s `.sig` tag with their payloads
/// (`None` when a payload could not be read).
async fn signature_layers(client: &Client, repo: &str, image: &Digest) -> Result<Vec<(Descriptor, Option<Vec<u8>>)>> {
    let Some(raw) = client.get_manifest(repo, &attachment_tag(image, "sig")).await? else { return Ok(Vec::new()) };
    let layers: Vec<Descriptor> = serde_json::from_slice::<Value>(&raw.bytes)
        .ok()
        .and_then(|m| serde_json::from_value(m["layers"].clone()).ok())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut budget = crate::bounded::Budget::new(crate::bounded::SIGNATURES_TOTAL);
    for l in layers.into_iter().filter(|l| l.media_type == SIMPLE_SIGNING) {
        let payload = if l.size <= crate::bounded::SIGNATURE_BLOB.max {
            budget.take(l.size).map_err(|e| {
                Error::source(format!(
                    "{repo}:{}: {}; refusing its signatures",
                    attachment_tag(image, "sig"),
                    crate::bounded::read_error(&e)
                ))
            })?;
            client.get_small_blob(repo, &l).await.ok()
        } else {
            None
        };
        out.push((l, payload));
    }
    Ok(out)
}
