//! Signatures and attestations in a registry, stored the way cosign stores
//! them: the `sha256-<hex>.sig` tag of the image's repository is an OCI
//! manifest whose layers are simple-signing payloads (the signature in the
//! `dev.cosignproject.cosign/signature` annotation); attestations are DSSE
//! envelopes, pushed as OCI 1.1 referrers (a manifest with a `subject`) when
//! the registry answers the referrers API, else as layers of the
//! `sha256-<hex>.att` tag (with a `predicateType` annotation). New layers
//! are appended to what a tag already holds, and a layer already there is
//! not added again, so signing the same image twice changes nothing; an
//! attestation replaces the tag's envelopes of its predicate type.

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
    /// What checking it with the given key found (`null` without a key).
    pub verification: Option<AttestationCheck>,
}

/// What checking one attestation envelope with a key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestationCheck {
    /// A DSSE signature over its pre-authentication encoding verifies with the
    /// key, and its in-toto subject is the image's digest.
    Verified,
    /// No signature of the envelope verifies with the key (altered, or signed
    /// with another key).
    BadSignature,
    /// Signed with the key, but about another digest.
    WrongSubject,
    /// Not a DSSE envelope around an in-toto statement, or too large to read.
    Unreadable,
}

impl AttestationCheck {
    /// How reports say it: `verified`, `bad signature`, `wrong subject`, `unreadable`.
    pub fn describe(self) -> &'static str {
        match self {
            AttestationCheck::Verified => "verified",
            AttestationCheck::BadSignature => "bad signature",
            AttestationCheck::WrongSubject => "wrong subject",
            AttestationCheck::Unreadable => "unreadable",
        }
    }
}

impl Attached {
    /// The attestations a key check found wrong.
    pub fn failed_attestations(&self) -> impl Iterator<Item = &AttestationInfo> {
        self.attestations.iter().filter(|a| a.verification.is_some_and(|v| v != AttestationCheck::Verified))
    }
}

/// Checks one DSSE envelope with `key`: its signature over the
/// pre-authentication encoding, its payload an in-toto statement whose
/// subject is `image`. Returns the verdict and, when the statement verified,
/// its predicate type.
pub fn check_envelope(bytes: &[u8], key: &PublicKey, image: &Digest) -> (AttestationCheck, Option<String>) {
    let Some(opened) = format::open_envelope(bytes, Some(key)) else { return (AttestationCheck::Unreadable, None) };
    if opened.payload_type != format::IN_TOTO_PAYLOAD_TYPE {
        return (AttestationCheck::Unreadable, None);
    }
    if opened.verified != Some(true) {
        return (AttestationCheck::BadSignature, None);
    }
    let Ok(statement) = serde_json::from_slice::<Value>(&opened.body) else {
        return (AttestationCheck::Unreadable, None);
    };
    let predicate_type = statement["predicateType"].as_str().map(str::to_string);
    let about_image = statement["subject"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["digest"]["sha256"].as_str() == Some(image.hex().as_str())));
    if !about_image {
        return (AttestationCheck::WrongSubject, predicate_type);
    }
    (AttestationCheck::Verified, predicate_type)
}

/// What is attached to one image.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Attached {
    /// Signatures under the `.sig` tag whose payload names this digest.
    pub signatures: Vec<SignatureInfo>,
    /// Attestations (`.att` tag and referrers).
    pub attestations: Vec<AttestationInfo>,
}

/// The signatures of an image after signing it.
#[derive(Debug, Clone, Serialize)]
pub struct Signed {
    /// The attachment tag (`sha256-<hex>.sig`).
    pub tag: String,
    /// Digest of the `.sig` manifest holding them.
    pub manifest: Digest,
    /// The identities signed (`HOST/REPO:TAG`).
    pub identities: Vec<String>,
    /// How many signatures were added (0: all were there), the manifests of an index included.
    pub added: usize,
    /// How many manifests were signed: the image, and each manifest of an index.
    pub manifests: usize,
}

/// An attestation after attaching it.
#[derive(Debug, Clone, Serialize)]
pub struct Attested {
    /// Its predicate type.
    pub predicate_type: String,
    /// Where it is stored: `tag` (`sha256-….att`) or `referrer`.
    pub stored: &'static str,
    /// Digest of the `.att` manifest or of the referrer manifest holding it.
    pub manifest: Digest,
    /// Digest of the DSSE envelope.
    pub envelope: Digest,
    /// Whether it was added now (false: it was there already).
    pub added: bool,
}

/// Signs `image` in `repo`'s repository once per identity in
/// `docker_references`; returns how many signatures were added (0 when all
/// were there already) and the digest of the `.sig` manifest.
pub fn sign(
    registries: &Arc<Registries>,
    repo: &Reference,
    image: &Digest,
    docker_references: &[String],
    key: &SigningKey,
    creator: &str,
) -> Result<(usize, Digest)> {
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
            replaces: Box::new(|_: &Descriptor| false),
        });
    }
    append(registries, repo, &tag, layers)
}

/// Signs `image` and, when it is an index, each of its manifests, once per
/// identity.
pub fn sign_tree(
    registries: &Arc<Registries>,
    repo: &Reference,
    image: &Digest,
    docker_references: &[String],
    key: &SigningKey,
    creator: &str,
) -> Result<Signed> {
    let children = manifests_of(registries, repo, image)?;
    let manifests = 1 + children.len();
    let (mut added, manifest) = sign(registries, repo, image, docker_references, key, creator)?;
    for d in children {
        added += sign(registries, repo, &d, docker_references, key, creator)?.0;
    }
    Ok(Signed { tag: attachment_tag(image, "sig"), manifest, identities: docker_references.to_vec(), added, manifests })
}

/// The platform manifests of `image` when it is an index (attestation
/// manifests left out), else none.
fn manifests_of(registries: &Arc<Registries>, repo: &Reference, image: &Digest) -> Result<Vec<Digest>> {
    runtime().block_on(async {
        let client = registries.client(&repo.registry).await?;
        let Some(raw) = client.get_manifest(&repo.repository, &image.to_string()).await? else {
            return Err(Error::source(format!("{}@{image}: not in the registry", repo.name())));
        };
        if raw.media_type != media::OCI_INDEX && raw.media_type != media::DOCKER_LIST {
            return Ok(Vec::new());
        }
        let idx: Index = serde_json::from_slice(&raw.bytes)
            .map_err(|e| Error::source(format!("{}@{image}: invalid index: {e}", repo.name())))?;
        Ok(idx.manifests.iter().filter(|m| !m.is_attestation()).map(|m| m.digest).collect::<Vec<_>>())
    })
}

/// The digest `reference` (a tag or a digest) names in its registry.
pub fn resolve(registries: &Arc<Registries>, reference: &Reference) -> Result<Digest> {
    runtime().block_on(async {
        let client = registries.client(&reference.registry).await?;
        let wanted = reference.digest.map(|d| d.to_string()).unwrap_or_else(|| reference.tag_or_latest().to_string());
        let raw = client
            .get_manifest(&reference.repository, &wanted)
            .await?
            .ok_or_else(|| Error::source(format!("{reference}: not found in the registry")))?;
        Ok(raw.digest)
    })
}

/// What carrying an image's evidence to another repository did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Carried {
    /// Signatures added in the destination (the image's and, for an index, its manifests').
    pub signatures: usize,
    /// The attestations carried (added now or there already).
    pub attestations: Vec<Attested>,
}

/// Carries what is attached to `image` in `src`'s repository to `dst`'s, as
/// it is (the digest is the same there): the `.sig` signatures of the image
/// and of each manifest of an index and, with `attestations`, every DSSE
/// envelope (`.att` tag and referrers) — like `cosign copy`. What the
/// destination already holds is kept and not added again.
pub fn carry(
    registries: &Arc<Registries>,
    src: &Reference,
    dst: &Reference,
    image: &Digest,
    attestations: bool,
) -> Result<Carried> {
    let mut out = Carried::default();
    let shown = format!("{}@{image}", src.name());
    for d in std::iter::once(*image).chain(manifests_of(registries, src, image)?) {
        let layers = runtime().block_on(async {
            let client = registries.client(&src.registry).await?;
            signature_layers(&client, &src.repository, &d).await
        })?;
        let new: Vec<NewLayer> = layers
            .into_iter()
            .filter_map(|(desc, payload)| {
                let payload = payload?;
                let sig = desc.annotations.get(SIGNATURE_ANNOTATION).cloned();
                let digest = desc.digest;
                Some(NewLayer {
                    blob: Blob::bytes(SIMPLE_SIGNING, payload),
                    annotations: desc.annotations,
                    present: Box::new(move |l: &Descriptor| {
                        l.digest == digest && l.annotations.get(SIGNATURE_ANNOTATION) == sig.as_ref()
                    }),
                    replaces: Box::new(|_: &Descriptor| false),
                })
            })
            .collect();
        if !new.is_empty() {
            out.signatures += append(registries, dst, &attachment_tag(&d, "sig"), new)?.0;
        }
        if !attestations {
            continue;
        }
        let envelopes = runtime().block_on(async {
            let client = registries.client(&src.registry).await?;
            envelopes(&client, &src.repository, &d, &shown).await
        })?;
        for (predicate_type, bytes) in envelopes {
            out.attestations.push(store_envelope(registries, dst, &d, &predicate_type, bytes, false)?);
        }
    }
    Ok(out)
}

/// Every DSSE envelope attached to `image` (`.att` tag, then referrers) with
/// its annotated predicate type, read within the signatures' budget.
async fn envelopes(client: &Client, repo: &str, image: &Digest, shown: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut layers: Vec<Descriptor> = Vec::new();
    if let Some(raw) = client.get_manifest(repo, &attachment_tag(image, "att")).await? {
        let found: Vec<Descriptor> = serde_json::from_slice::<Value>(&raw.bytes)
            .ok()
            .and_then(|m| serde_json::from_value(m["layers"].clone()).ok())
            .unwrap_or_default();
        layers.extend(found.into_iter().filter(|l| l.media_type == DSSE));
    }
    if let Some(index) = referrers(client, repo, image).await? {
        let entries: Vec<Descriptor> = serde_json::from_value(index["manifests"].clone()).unwrap_or_default();
        for m in entries.iter().filter(|m| m.annotations.contains_key(PREDICATE_TYPE_ANNOTATION)) {
            if let Some(mut l) = referrer_layer(client, repo, m).await? {
                if !l.annotations.contains_key(PREDICATE_TYPE_ANNOTATION) {
                    l.annotations = m.annotations.clone();
                }
                layers.push(l);
            }
        }
    }
    let mut budget = crate::bounded::Budget::new(crate::bounded::SIGNATURES_TOTAL);
    let mut out = Vec::new();
    for l in layers {
        let refuse = |what: String| Error::source(format!("{shown}: attestation {}: {what}", l.digest));
        if l.size > crate::bounded::SIGNATURE_BLOB.max {
            return Err(refuse(format!(
                "larger than {}, the limit for one attestation",
                crate::fmt::human(crate::bounded::SIGNATURE_BLOB.max)
            )));
        }
        budget.take(l.size).map_err(|e| refuse(crate::bounded::read_error(&e)))?;
        let bytes = client.get_small_blob(repo, &l).await?;
        let predicate_type = l.annotations.get(PREDICATE_TYPE_ANNOTATION).cloned().unwrap_or_default();
        out.push((predicate_type, bytes));
    }
    Ok(out)
}

/// Attaches `statement` (an in-toto statement about `image`) as a DSSE
/// envelope signed with `key`.
pub fn attest(
    registries: &Arc<Registries>,
    repo: &Reference,
    image: &Digest,
    predicate_type: &str,
    statement: &[u8],
    key: &SigningKey,
) -> Result<Attested> {
    let envelope = format::envelope(key, format::IN_TOTO_PAYLOAD_TYPE, statement);
    store_envelope(registries, repo, image, predicate_type, envelope, true)
}

/// Stores a DSSE envelope about `image`: as a referrer when the registry
/// has the API, else in the `.att` tag — replacing the tag's envelopes of
/// the same predicate type when `replace`.
fn store_envelope(
    registries: &Arc<Registries>,
    repo: &Reference,
    image: &Digest,
    predicate_type: &str,
    envelope: Vec<u8>,
    replace: bool,
) -> Result<Attested> {
    let digest = Digest::of(&envelope);
    let annotations = BTreeMap::from([(PREDICATE_TYPE_ANNOTATION.to_string(), predicate_type.to_string())]);
    let attested = |stored, (changes, manifest)| Attested {
        predicate_type: predicate_type.to_string(),
        stored,
        manifest,
        envelope: digest,
        added: changes,
    };
    if let Some(subject) = referrers_subject(registries, repo, image)? {
        return put_referrer(registries, repo, subject, envelope, annotations).map(|r| attested("referrer", r));
    }
    let predicate_type_owned = predicate_type.to_string();
    let layer = NewLayer {
        blob: Blob::bytes(DSSE, envelope),
        annotations,
        present: Box::new(move |d: &Descriptor| d.digest == digest),
        // Like `cosign attest --replace`: one envelope per predicate type, so a
        // rebuild replaces an altered or outdated one instead of adding beside it.
        replaces: Box::new(move |d: &Descriptor| {
            replace
                && d.media_type == DSSE
                && d.annotations.get(PREDICATE_TYPE_ANNOTATION) == Some(&predicate_type_owned)
        }),
    };
    let (changes, manifest) = append(registries, repo, &attachment_tag(image, "att"), vec![layer])?;
    Ok(attested("tag", (changes > 0, manifest)))
}

/// A layer to add to an attachment tag, how to recognise it already there,
/// and which layers it replaces.
struct NewLayer {
    blob: Blob,
    annotations: BTreeMap<String, String>,
    present: Box<dyn Fn(&Descriptor) -> bool>,
    replaces: Box<dyn Fn(&Descriptor) -> bool>,
}

/// Adds the layers not yet present to the OCI manifest under `tag`
/// (creating it), like containers/image and cosign, dropping the layers they
/// replace: the config's `rootfs.diff_ids` follow the layers. Returns how
/// many layers were added or removed (0: nothing pushed) and the digest of
/// the manifest the tag then holds.
fn append(registries: &Arc<Registries>, repo: &Reference, tag: &str, layers: Vec<NewLayer>) -> Result<(usize, Digest)> {
    let shown = format!("{}:{tag}", repo.name());
    let (mut manifest, mut config, existing) = runtime().block_on(async {
        let client = registries.client(&repo.registry).await?;
        let Some(raw) = client.get_manifest(&repo.repository, tag).await? else {
            let config =
                json!({"architecture": "", "config": {}, "os": "", "rootfs": {"diff_ids": [], "type": "layers"}});
            let manifest = json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "layers": []});
            return Ok::<_, Error>((manifest, config, None));
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
        Ok((manifest, config, Some(raw.digest)))
    })?;
    let mut kept: Vec<Descriptor> = serde_json::from_value(manifest["layers"].clone())
        .map_err(|e| Error::source(format!("{shown}: invalid layers ({e}); remove that tag")))?;
    let mut blobs = Vec::new();
    let mut changes = 0;
    for l in layers {
        let before = kept.len();
        kept.retain(|d| (l.present)(d) || !(l.replaces)(d));
        changes += before - kept.len();
        if kept.iter().any(|d| (l.present)(d)) {
            continue;
        }
        let mut desc = l.blob.desc.clone();
        desc.annotations = l.annotations;
        kept.push(desc);
        blobs.push(l.blob);
        changes += 1;
    }
    if let (0, Some(existing)) = (changes, existing) {
        return Ok((0, existing));
    }
    manifest["layers"] = serde_json::to_value(&kept).expect("descriptors serialize");
    config["rootfs"]["diff_ids"] = json!(kept.iter().map(|d| d.digest.to_string()).collect::<Vec<_>>());
    let added = changes;
    let config_blob = Blob::bytes(media::OCI_CONFIG, canonical(&config));
    manifest["config"] = serde_json::to_value(&config_blob.desc).expect("descriptors serialize");
    let top = Blob::bytes(media::OCI_MANIFEST, canonical(&manifest));
    blobs.push(config_blob);
    let tags = [tag.to_string()];
    push::push_graph(registries, repo, &push::Graph { blobs: &blobs, children: &[], top: &top, tags: &tags })?;
    Ok((added, top.desc.digest))
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
) -> Result<(bool, Digest)> {
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
        return Ok((false, top.desc.digest));
    }
    push::push_graph(registries, repo, &push::Graph { blobs: &[empty, layer], children: &[], top: &top, tags: &[] })?;
    Ok((true, top.desc.digest))
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
        let mut budget = crate::bounded::Budget::new(crate::bounded::SIGNATURES_TOTAL);
        let shown = format!("{}@{image}", repo.name());
        if let Some(raw) = client.get_manifest(r, &attachment_tag(image, "att")).await? {
            let layers: Vec<Descriptor> = serde_json::from_slice::<Value>(&raw.bytes)
                .ok()
                .and_then(|m| serde_json::from_value(m["layers"].clone()).ok())
                .unwrap_or_default();
            for l in layers.iter().filter(|l| l.media_type == DSSE) {
                let annotated = l.annotations.get(PREDICATE_TYPE_ANNOTATION).cloned().unwrap_or_default();
                let (verification, predicate_type) = match key {
                    Some(k) => check_layer(&client, r, l, k, image, &mut budget, &shown).await?,
                    None => (None, None),
                };
                out.attestations.push(AttestationInfo {
                    predicate_type: predicate_type.unwrap_or(annotated),
                    stored: "tag",
                    digest: l.digest,
                    verification,
                });
            }
        }
        if let Some(index) = referrers(&client, r, image).await? {
            let entries: Vec<Descriptor> = serde_json::from_value(index["manifests"].clone()).unwrap_or_default();
            for m in entries {
                let Some(a) = m.annotations.get(PREDICATE_TYPE_ANNOTATION) else { continue };
                let (verification, predicate_type) = match key {
                    Some(k) => {
                        let layer = referrer_layer(&client, r, &m).await?;
                        match layer {
                            Some(l) => check_layer(&client, r, &l, k, image, &mut budget, &shown).await?,
                            None => (Some(AttestationCheck::Unreadable), None),
                        }
                    }
                    None => (None, None),
                };
                out.attestations.push(AttestationInfo {
                    predicate_type: predicate_type.unwrap_or_else(|| a.clone()),
                    stored: "referrer",
                    digest: m.digest,
                    verification,
                });
            }
        }
        Ok(out)
    })
}

/// Reads one DSSE layer (bounded) and checks it with `key`.
async fn check_layer(
    client: &Client,
    repo: &str,
    layer: &Descriptor,
    key: &PublicKey,
    image: &Digest,
    budget: &mut crate::bounded::Budget,
    shown: &str,
) -> Result<(Option<AttestationCheck>, Option<String>)> {
    if layer.size > crate::bounded::SIGNATURE_BLOB.max {
        return Ok((Some(AttestationCheck::Unreadable), None));
    }
    budget.take(layer.size).map_err(|e| {
        Error::source(format!("{shown}: {}; refusing its attestations", crate::bounded::read_error(&e)))
    })?;
    let Ok(bytes) = client.get_small_blob(repo, layer).await else {
        return Ok((Some(AttestationCheck::Unreadable), None));
    };
    let (check, predicate_type) = check_envelope(&bytes, key, image);
    Ok((Some(check), predicate_type))
}

/// The DSSE layer of the referrer manifest `m`, when it has one.
async fn referrer_layer(client: &Client, repo: &str, m: &Descriptor) -> Result<Option<Descriptor>> {
    let Some(raw) = client.get_manifest(repo, &m.digest.to_string()).await? else { return Ok(None) };
    let layers: Vec<Descriptor> = serde_json::from_slice::<Value>(&raw.bytes)
        .ok()
        .and_then(|v| serde_json::from_value(v["layers"].clone()).ok())
        .unwrap_or_default();
    Ok(layers.into_iter().find(|l| l.media_type == DSSE))
}

/// Checks that `image` in `repo` carries a signature made with `key`: a
/// simple-signing payload naming exactly this digest, whose signature
/// verifies. Like `cosign verify --key`, the signed identity is reported,
/// not compared (a mirror keeps the original repository's name). Returns the
/// accepted claim; a missing or bad signature is an error of kind `Source`
/// saying it refuses `refusing` (`the base`, `to promote it`).
pub fn verify(
    registries: &Arc<Registries>,
    repo: &Reference,
    image: &Digest,
    key: &PublicKey,
    refusing: &str,
) -> Result<Claim> {
    let shown = format!("{}@{image}", repo.name());
    let layers = runtime().block_on(async {
        let client = registries.client(&repo.registry).await?;
        signature_layers(&client, &repo.repository, image).await
    })?;
    if layers.is_empty() {
        return Err(Error::source(format!(
            "{shown}: has no signature (no {} tag); refusing {refusing}",
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
        format!("{shown}: its signature names another digest; refusing {refusing}")
    } else {
        format!(
            "{shown}: none of its {} signature{} verifies with the key; refusing {refusing}",
            layers.len(),
            if layers.len() == 1 { "" } else { "s" }
        )
    }))
}

/// Checks every attestation of `image` with `key` (named `key_name` in the
/// error); returns how many verified. One that does not (bad signature,
/// another subject, unreadable) is an error of kind `Source` naming its
/// predicate type.
pub fn verify_attestations(
    registries: &Arc<Registries>,
    repo: &Reference,
    image: &Digest,
    key: &PublicKey,
    key_name: &str,
) -> Result<usize> {
    let attached = attached(registries, repo, image, Some(key))?;
    let failed: Vec<String> = attached
        .failed_attestations()
        .map(|a| format!("{} ({})", a.predicate_type, a.verification.map(|v| v.describe()).unwrap_or_default()))
        .collect();
    if !failed.is_empty() {
        return Err(Error::source(format!(
            "{}@{image}: attestation {} does not verify with {key_name}",
            repo.name(),
            failed.join(", ")
        )));
    }
    Ok(attached.attestations.len())
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
