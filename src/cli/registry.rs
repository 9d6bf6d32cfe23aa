//! `tag` and `copy`: release operations on images already in a registry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use serde::Serialize;

use super::{print_json, print_line, Global};
use wso2img::config::Config;
use wso2img::digest::Digest;
use wso2img::error::Kind;
use wso2img::pipeline::{OutputReport, KEYSTORES_LABEL};
use wso2img::reference::{Location, Reference};
use wso2img::sign::{attach, PublicKey, SigningKey};
use wso2img::transport;
use wso2img::transport::registry::{push, Registries};
use wso2img::transport::Connections;
use wso2img::wso2::keystore::public_refusal;
use wso2img::{Error, Result};

/// `tag` flags.
#[derive(Args)]
pub struct TagArgs {
    /// The image, by tag or digest: HOST/REPO:TAG, HOST/REPO@sha256:… (docker:// optional).
    src: String,
    /// Tags to add in the same repository (a bare tag, or HOST/REPO:TAG of the same repository).
    #[arg(required = true)]
    tags: Vec<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Tag an image with baked keystores on a public registry (Docker Hub, [target] public_registries) anyway.
    #[arg(long)]
    allow_public_keystores: bool,
    /// Sign the image under each new tag with this key (ECDSA P-256/P-384/P-521, RSA or Ed25519; PEM or cosign key).
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// Tag only an image whose signatures and attestations verify with this public key (PEM); else exit 1,
    /// nothing tagged.
    #[arg(long, value_name = "FILE")]
    verify_key: Option<PathBuf>,
}

/// `copy` flags.
#[derive(Args)]
pub struct CopyArgs {
    /// The image: HOST/REPO:TAG or HOST/REPO@sha256:….
    src: String,
    /// The destination: HOST/REPO[:TAG] (the source tag when none is given).
    dst: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Copy an image with baked keystores to a public registry (Docker Hub, [target] public_registries) anyway.
    #[arg(long)]
    allow_public_keystores: bool,
    /// Sign the copy (and each manifest of an index) under its new name with this key (ECDSA P-256/P-384/P-521, RSA
    /// or Ed25519; PEM or cosign key), beside the signatures carried from the source.
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// Copy only an image whose signatures and attestations verify with this public key (PEM); else exit 1,
    /// nothing pushed.
    #[arg(long, value_name = "FILE")]
    verify_key: Option<PathBuf>,
    /// Leave the source's attestations (SBOM, provenance) behind; its signatures are still carried.
    #[arg(long)]
    no_attestations: bool,
}

/// What `tag` and `copy` print with `--json`.
#[derive(Serialize)]
struct Outcome {
    /// The image's content digest, as `build` computes it.
    content_digest: Digest,
    /// `tag`: the first tag added; `copy`: the destination's tag (`null` when copied by digest).
    tag: Option<String>,
    /// The manifest or index digest (unchanged by `tag` and `copy`).
    digest: Digest,
    outputs: Vec<OutputReport>,
}

/// The content digest of the image `r@digest`, read back (manifests and configs only).
fn content_digest(c: &Connections, r: &Reference, digest: Digest) -> Result<Digest> {
    let base = transport::open_base(&r.with_digest(digest).into(), Path::new("."), c)?;
    Ok(wso2img::inspect::content_digest(&base))
}

/// `[target] public_registries` of the config, when there is one.
fn public_registries(g: &Global) -> Result<Vec<String>> {
    if !g.config.exists() {
        return Ok(Vec::new());
    }
    Ok(Config::load(&g.config)?.target.public_registries)
}

/// Refuses to put `src` on `dest`'s registry when that registry is public and
/// the image says it has baked keystores (label `io.wso2img.keystores=baked`
/// on any platform). The label is read from `src` before anything is written.
fn guard_public(g: &Global, c: &Connections, src: &Reference, dest: &Reference, allow: bool) -> Result<()> {
    if allow || !dest.is_public(&public_registries(g)?) {
        return Ok(());
    }
    let base = transport::open_base(&src.clone().into(), Path::new("."), c)?;
    let baked =
        base.images.iter().any(|i| i.config_json["config"]["Labels"][KEYSTORES_LABEL].as_str() == Some("baked"));
    if baked {
        return Err(public_refusal(
            &dest.to_string(),
            &dest.registry,
            &format!("{src} is labelled {KEYSTORES_LABEL}=baked"),
        ));
    }
    Ok(())
}

/// Loads `--sign-key FILE` (a bad key is a usage error, before anything is pushed).
pub(super) fn load_sign_key(path: &Path) -> Result<Arc<SigningKey>> {
    SigningKey::load(path, &format!("--sign-key {}", path.display()), Kind::Usage).map(Arc::new)
}

/// Signs `repo@digest` (and its manifests) as `repo:TAG` for each of `tags`.
fn sign_as(
    regs: &Arc<Registries>,
    key: &SigningKey,
    repo: &Reference,
    digest: Digest,
    tags: &[String],
) -> Result<attach::Signed> {
    let repo = Reference { tag: None, digest: None, ..repo.clone() };
    let mut identities: Vec<String> = tags.iter().map(|t| repo.with_tag(t).to_string()).collect();
    if identities.is_empty() {
        identities.push(repo.name());
    }
    let signed = attach::sign_tree(regs, &repo, &digest, &identities, key, &wso2img::sign::creator())?;
    let added = signed.added;
    wso2img::progress::message(&format!(
        "signed {}@{digest} ({added} new signature{})",
        repo.name(),
        if added == 1 { "" } else { "s" }
    ));
    Ok(signed)
}

/// Loads `--verify-key FILE` (a bad key is a usage error).
fn load_verify_key(path: &Path) -> Result<(PublicKey, String)> {
    let shown = format!("--verify-key {}", path.display());
    Ok((PublicKey::load(path, &shown, Kind::Usage)?, path.display().to_string()))
}

/// Refuses `src` (exit 1, before anything is pushed) unless a signature of
/// the digest it names verifies with `key`, and each of its attestations
/// (unless they are left behind). Returns the digest.
fn verify_source(
    regs: &Arc<Registries>,
    src: &Reference,
    key: &(PublicKey, String),
    attestations: bool,
) -> Result<Digest> {
    let digest = attach::resolve(regs, src)?;
    let repo = Reference { tag: None, digest: None, ..src.clone() };
    attach::verify(regs, &repo, &digest, &key.0, &format!("to promote it (--verify-key {})", key.1))?;
    if attestations {
        attach::verify_attestations(regs, &repo, &digest, &key.0, &key.1)?;
    }
    wso2img::progress::message(&format!("{}@{digest}: signatures verified with {}", repo.name(), key.1));
    Ok(digest)
}

fn registry_ref(s: &str, what: &str) -> Result<Reference> {
    let loc: Location = s.parse()?;
    let r = transport::of(&loc).registry_reference();
    r.ok_or_else(|| Error::usage(format!("{what} {loc}: must be a registry reference (HOST/REPO:TAG)")))
}

/// Runs `tag`.
pub fn tag(g: &Global, a: TagArgs) -> Result<()> {
    let src = registry_ref(&a.src, "tag")?;
    let mut tags = Vec::new();
    for t in &a.tags {
        if Reference::valid_tag(t) {
            tags.push(t.clone());
            continue;
        }
        let r = registry_ref(t, "tag")?;
        if r.registry != src.registry || r.repository != src.repository {
            return Err(Error::usage(format!(
                "tag {t}: is in another repository than {}; use `wso2img copy` to promote an image",
                src.name()
            )));
        }
        tags.push(r.tag.ok_or_else(|| Error::usage(format!("tag {t}: has no tag")))?);
    }
    let key = a.sign_key.as_deref().map(load_sign_key).transpose()?;
    let verify_key = a.verify_key.as_deref().map(load_verify_key).transpose()?;
    let c = Connections::new(g.registry());
    let regs = &c.registries;
    guard_public(g, &c, &src, &src, a.allow_public_keystores)?;
    // The same repository: the digest's `.sig` and `.att` stay where they are.
    let src = match &verify_key {
        Some(k) => src.with_digest(verify_source(regs, &src, k, true)?),
        None => src,
    };
    let digest = push::tag(regs, &src, &tags)?;
    wso2img::progress::message(&format!("tagged {}@{digest} as {}", src.name(), tags.join(", ")));
    let signed = key.as_ref().map(|key| sign_as(regs, key, &src, digest, &tags)).transpose()?;
    let outputs = tags
        .iter()
        .map(|t| {
            let mut o = OutputReport::new(
                format!("docker://{}", src.with_tag(t)),
                digest,
                "pushed",
                format!("{}@{digest}", src.name()),
            );
            o.signatures = signed.clone();
            o
        })
        .collect();
    if !a.json {
        return print_line(&format!("{}@{digest}", src.name()));
    }
    let content_digest = content_digest(&c, &src, digest)?;
    print_json(&Outcome { content_digest, tag: tags.first().cloned(), digest, outputs })
}

/// Runs `copy`.
pub fn copy(g: &Global, a: CopyArgs) -> Result<()> {
    let src = registry_ref(&a.src, "copy")?;
    let dst = registry_ref(&a.dst, "copy")?;
    if dst.digest.is_some() {
        return Err(Error::usage(format!("copy {}: the destination takes a tag, not a digest", a.dst)));
    }
    let key = a.sign_key.as_deref().map(load_sign_key).transpose()?;
    let verify_key = a.verify_key.as_deref().map(load_verify_key).transpose()?;
    let c = Connections::new(g.registry());
    let regs = &c.registries;
    guard_public(g, &c, &src, &dst, a.allow_public_keystores)?;
    // Verified, the copy is of the digest that verified (a tag moving meanwhile changes nothing).
    let src = match &verify_key {
        Some(k) => {
            let d = verify_source(regs, &src, k, !a.no_attestations)?;
            Reference { tag: src.tag.clone(), digest: Some(d), ..src }
        }
        None => src,
    };
    let digest = push::copy(regs, &src, &dst)?;
    let out = match (&dst.tag, &src.tag) {
        (Some(t), _) | (None, Some(t)) => dst.with_tag(t),
        _ => dst.with_digest(digest),
    };
    let (src_repo, dst_repo) =
        (Reference { tag: None, digest: None, ..src.clone() }, Reference { tag: None, digest: None, ..dst.clone() });
    let carried = attach::carry(regs, &src_repo, &dst_repo, &digest, !a.no_attestations)?;
    wso2img::progress::message(&format!(
        "carried to {}@{digest}: {} signature{}, {} attestation{}",
        dst_repo.name(),
        carried.signatures,
        if carried.signatures == 1 { "" } else { "s" },
        carried.attestations.len(),
        if carried.attestations.len() == 1 { "" } else { "s" },
    ));
    let signed = key.as_ref().map(|key| sign_as(regs, key, &dst, digest, out.tag.as_slice())).transpose()?;
    let mut output = OutputReport::new(format!("docker://{out}"), digest, "pushed", format!("{}@{digest}", out.name()));
    output.signatures = signed;
    output.attestations = carried.attestations;
    let outputs = vec![output];
    if !a.json {
        return print_line(&format!("{}@{digest}", dst.name()));
    }
    let content_digest = content_digest(&c, &dst, digest)?;
    print_json(&Outcome { content_digest, tag: out.tag.clone(), digest, outputs })
}
