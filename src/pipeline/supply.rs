//! The supply-chain steps of a build: the base's signature checked before
//! anything is built (`[base] verify_key`, `--verify-base-key`), and after
//! the pushes, every image and index pushed to a registry signed, with the
//! SBOM and the SLSA provenance attached as signed attestations.

use std::fs::File;
use std::io;
use std::path::Path;

use serde_json::json;

use super::prepare::Prepared;
use super::{Options, Report};
use crate::digest::{Digest, HashReader};
use crate::error::{io_reason, Error, Kind, Result};
use crate::reference::{Location, Reference};
use crate::sign::provenance::{self, Material};
use crate::sign::{self, attach, format, PublicKey};
use crate::transport::destination::with_own_tag;
use crate::transport::{Base, Planned};

/// The key that verifies the bases: `--verify-base-key`, else `[base] verify_key`.
pub(super) fn base_key(opts: &Options, config: &crate::config::Config) -> Result<Option<(PublicKey, String)>> {
    if let Some(path) = &opts.verify_base_key {
        let shown = format!("--verify-base-key {}", path.display());
        return Ok(Some((PublicKey::load(path, &shown, Kind::Usage)?, shown)));
    }
    let Some(rel) = &config.base.verify_key else { return Ok(None) };
    let path = config.dir.join(rel);
    let shown = format!("{}: [base] verify_key {}", config.path.display(), path.display());
    Ok(Some((PublicKey::load(&path, &shown, Kind::Config)?, shown)))
}

/// Checks `base`'s cosign signature with `key`; a missing or bad one is an error.
pub(super) fn verify_base(
    registries: &std::sync::Arc<crate::transport::registry::Registries>,
    base: &Base,
    key: &(PublicKey, String),
) -> Result<()> {
    let (Location::Registry(r), Some(digest)) = (&base.location, base.digest) else {
        return Err(Error::usage(format!(
            "{}: checks signatures in a registry, but the base {} is not read from one",
            key.1, base.location
        )));
    };
    let claim = attach::verify(registries, r, &digest, &key.0)?;
    crate::progress::message(&format!(
        "base {}@{digest}: signature verified (signed as {})",
        r.name(),
        claim.docker_reference
    ));
    Ok(())
}

/// Refuses `--sign-key` when no destination is a registry.
pub(super) fn check_sign_outputs(opts: &Options, outputs: &[Location]) -> Result<()> {
    if opts.sign_key.is_some() && !outputs.iter().any(|o| matches!(o, Location::Registry(_))) {
        return Err(Error::usage(
            "--sign-key: signatures live in a registry; add --push or a --to docker://HOST/REPO destination",
        ));
    }
    Ok(())
}

/// Signs every image pushed to a registry destination (its index and each
/// manifest, once per tag it was pushed with) and attaches the SBOM (main
/// image) and provenance (every image) to its top digest.
pub(super) fn sign_pushed(p: &Prepared, opts: &Options, planned: &[Planned], rep: &Report) -> Result<()> {
    let Some(key) = &opts.sign_key else { return Ok(()) };
    let creator = sign::creator();
    let materials = inputs(p)?;
    for loc in &p.outputs {
        let Location::Registry(target) = loc else { continue };
        let repo = Reference { tag: None, digest: None, ..target.clone() };
        for (pi, image) in planned.iter().enumerate() {
            let outputs = if pi == 0 { &rep.outputs } else { &rep.variants[pi - 1].outputs };
            let Some(out) = outputs.iter().find(|o| o.reference == format!("docker://{target}")) else { continue };
            let tags = with_own_tag(&image.tags, target.tag.as_ref().filter(|_| image.main));
            let identities: Vec<String> = tags.iter().map(|t| repo.with_tag(t).to_string()).collect();
            let added = attach::sign_tree(&p.registries, &repo, &out.digest, &identities, key, &creator)?;
            let mut attested = Vec::new();
            let statements = statements(p, rep, pi, &repo, &out.digest, &tags, &materials)?;
            for (predicate_type, statement) in statements {
                if attach::attest(&p.registries, &repo, &out.digest, predicate_type, &statement, key)? {
                    attested.push(predicate_type);
                }
            }
            crate::progress::message(&format!(
                "signed {}@{} ({} new signature{}{})",
                repo.name(),
                out.digest,
                added,
                if added == 1 { "" } else { "s" },
                if attested.is_empty() { String::new() } else { format!("; attested {}", attested.join(", ")) }
            ));
        }
    }
    Ok(())
}

/// The in-toto statements about image `pi` pushed as `repo@digest`.
fn statements(
    p: &Prepared,
    rep: &Report,
    pi: usize,
    repo: &Reference,
    digest: &Digest,
    tags: &[String],
    inputs: &[Material],
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let base = p.base_of(pi);
    let config_name = p.config.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let build = provenance::Build {
        base: Material { name: base.name.clone(), uri: Some(base_uri(base)), sha256: base.digest },
        config: Material {
            name: config_name.clone(),
            uri: None,
            sha256: Some(hash_file(&p.config.path, &config_name)?),
        },
        inputs: inputs.to_vec(),
        parameters: json!({
            "config": config_name,
            "tags": tags,
            "platforms": p.products[pi].platforms.iter().map(|pl| p.base_of(pi).images[pl.image].platform.to_string()).collect::<Vec<_>>(),
            "keystoresBaked": p.keystores_baked,
            "variant": p.products[pi].variant.as_ref().map(|v| v.name.clone()),
        }),
        started: p.created.clone(),
    };
    let mut out = Vec::new();
    if pi == 0 {
        let sbom: serde_json::Value = serde_json::from_slice(&super::outputs::sbom_bytes(p, rep)?)
            .map_err(|e| Error::new(Kind::Io, format!("the SBOM does not parse back: {e}")))?;
        out.push((sign::CYCLONEDX_PREDICATE, format::statement(&repo.name(), digest, sign::CYCLONEDX_PREDICATE, sbom)));
    }
    let predicate = provenance::predicate(&build);
    out.push((sign::SLSA_PREDICATE, format::statement(&repo.name(), digest, sign::SLSA_PREDICATE, predicate)));
    Ok(out)
}

/// How the provenance names where the base came from.
fn base_uri(base: &Base) -> String {
    match &base.location {
        Location::Registry(r) => format!("docker://{r}"),
        other => other.to_string(),
    }
}

/// Every input file, as the user names it, with its sha256 (keystores without).
fn inputs(p: &Prepared) -> Result<Vec<Material>> {
    let mut out = Vec::new();
    for f in &p.every_input() {
        let sha256 =
            if f.kind == crate::config::LayerKind::Keystores { None } else { Some(hash_file(&f.path, &f.label)?) };
        out.push(Material { name: f.label.clone(), uri: f.coords.as_ref().and_then(|c| c.purl()), sha256 });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn hash_file(path: &Path, shown: &str) -> Result<Digest> {
    let read = |e: io::Error| Error::input(format!("{shown}: cannot read ({})", io_reason(&e)));
    let mut r = HashReader::new(File::open(path).map_err(read)?);
    io::copy(&mut r, &mut io::sink()).map_err(read)?;
    Ok(r.finish().0)
}
