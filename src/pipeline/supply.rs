//! The supply-chain step of a build, after the pushes: every image and
//! index pushed to a registry signed, with the SBOM and the SLSA provenance
//! attached as signed attestations. (The bases' signatures are checked
//! before anything is built: [`super::bases`].)

use std::fs::File;
use std::io;
use std::path::Path;

use serde_json::json;

use super::bases::Bases;
use super::inputs::Inputs;
use super::plan::Plan;
use super::project::Project;
use super::{publish, Report};
use crate::digest::{Digest, HashReader};
use crate::error::{io_reason, Error, Kind, Result};
use crate::reference::Reference;
use crate::sign::provenance::{self, Material};
use crate::sign::{self, attach, format, SigningKey};
use crate::transport::destination::with_own_tag;
use crate::transport::{self, Connections, Planned};

/// What signing reads: the run's stages and their report.
pub(super) struct Signing<'a> {
    pub(super) project: &'a Project,
    pub(super) inputs: &'a Inputs,
    pub(super) bases: &'a Bases,
    pub(super) plan: &'a Plan,
    pub(super) keystores_baked: bool,
    pub(super) connections: &'a Connections,
    /// The SBOM of the main image, attached as an attestation.
    pub(super) sbom: Option<&'a [u8]>,
}

impl Signing<'_> {
    /// Signs every image pushed to a registry destination (its index and each
    /// manifest, once per tag it was pushed with) and attaches the SBOM (main
    /// image) and provenance (every image) to its top digest.
    pub(super) fn sign_pushed(&self, key: &SigningKey, planned: &[Planned], rep: &mut Report) -> Result<()> {
        let creator = sign::creator();
        let materials = inputs(self.inputs)?;
        let registries = &self.connections.registries;
        for loc in &self.project.outputs {
            let Some(target) = transport::of(loc).registry_reference() else { continue };
            let repo = Reference { tag: None, digest: None, ..target.clone() };
            for (pi, image) in planned.iter().enumerate() {
                let Some(output) = publish::written(rep, pi, &loc.to_string()) else { continue };
                let digest = &output.digest.clone();
                let tags = with_own_tag(&image.tags, target.tag.as_ref().filter(|_| image.main));
                let identities: Vec<String> = tags.iter().map(|t| repo.with_tag(t).to_string()).collect();
                let signed = attach::sign_tree(registries, &repo, digest, &identities, key, &creator)?;
                let added = signed.added;
                let mut attestations = Vec::new();
                for (predicate_type, statement) in self.statements(pi, &repo, digest, &tags, &materials)? {
                    attestations.push(attach::attest(registries, &repo, digest, predicate_type, &statement, key)?);
                }
                let attested: Vec<String> =
                    attestations.iter().filter(|a| a.added).map(|a| a.predicate_type.clone()).collect();
                output.signatures = Some(signed);
                output.attestations = attestations;
                crate::progress::message(&format!(
                    "signed {}@{} ({} new signature{}{})",
                    repo.name(),
                    digest,
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
        &self,
        pi: usize,
        repo: &Reference,
        digest: &Digest,
        tags: &[String],
        inputs: &[Material],
    ) -> Result<Vec<(&'static str, Vec<u8>)>> {
        let base = self.bases.of(pi);
        let config = &self.project.config;
        let config_name = config.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let product = &self.plan.products[pi];
        let build = provenance::Build {
            // A registry base by the reference the user wrote; a layout or
            // archive by its name alone (its path is this machine's).
            base: Material {
                name: base.name.clone(),
                uri: transport::of(&base.location).registry_reference().map(|_| base.location.to_string()),
                sha256: base.digest,
            },
            config: Material {
                name: config_name.clone(),
                uri: None,
                sha256: Some(hash_file(&config.path, &config_name)?),
            },
            inputs: inputs.to_vec(),
            parameters: json!({
                "config": config_name,
                "tags": tags,
                "platforms": product.platforms.iter().map(|pl| base.images[pl.image].platform.to_string()).collect::<Vec<_>>(),
                "keystoresBaked": self.keystores_baked,
                "variant": product.variant.as_ref().map(|v| v.name.clone()),
            }),
            started: self.plan.created.clone(),
        };
        let mut out = Vec::new();
        if let (0, Some(sbom)) = (pi, self.sbom) {
            let sbom: serde_json::Value = serde_json::from_slice(sbom)
                .map_err(|e| Error::new(Kind::Io, format!("the SBOM does not parse back: {e}")))?;
            out.push((
                sign::CYCLONEDX_PREDICATE,
                format::statement(&repo.name(), digest, sign::CYCLONEDX_PREDICATE, sbom),
            ));
        }
        let predicate = provenance::predicate(&build);
        out.push((sign::SLSA_PREDICATE, format::statement(&repo.name(), digest, sign::SLSA_PREDICATE, predicate)));
        Ok(out)
    }
}

/// Every input file, as the user names it, with its sha256 (keystores without).
fn inputs(inputs: &Inputs) -> Result<Vec<Material>> {
    let mut out = Vec::new();
    for f in &inputs.every_input() {
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
