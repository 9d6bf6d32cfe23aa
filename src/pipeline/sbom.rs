//! The CycloneDX SBOM of the main image: what the customization adds, each
//! file where it lands in the image and in which of its layers, the image
//! named as it was written.

use std::collections::HashMap;

use super::bases::Bases;
use super::inputs::{artifact_keys, Inputs};
use super::plan::{shares, Plan};
use super::project::Project;
use super::{Options, Report};
use crate::error::Result;
use crate::sbom;
use crate::transport::{self, resolve};
use crate::wso2;

/// The CycloneDX SBOM of the main image.
pub(super) fn bytes(project: &Project, plan: &Plan, bases: &Bases, inputs: &Inputs, rep: &Report) -> Result<Vec<u8>> {
    let facts = &plan.main().platforms[0].facts;
    let keys = artifact_keys(&inputs.checked);
    let mut layer_of = HashMap::new();
    for (src, entries) in &inputs.walks().main {
        for (name, entries) in shares(src.kind, None, entries, &keys) {
            for e in entries {
                layer_of.insert(e.path.as_path(), name.clone());
            }
        }
    }
    let mut placed = Vec::new();
    let every = inputs.every_input();
    for f in &every {
        if let Some(dest) = wso2::destination(f.kind, &f.rel, facts)? {
            let layer = layer_of.get(f.path.as_path()).cloned().unwrap_or_else(|| f.kind.name().to_string());
            placed.push(sbom::Placed { file: f, dest, layer });
        }
    }
    let (name, also) = names(project);
    let subject = sbom::Subject {
        name: &name,
        also: &also,
        tag: &rep.tag,
        content_digest: &rep.content_digest,
        base_name: &bases.main().name,
        base_digest: bases.main().digest.as_ref(),
    };
    let trusted: Vec<sbom::Trusted<'_>> = plan.main().platforms[0]
        .truststore
        .iter()
        .flat_map(|t| t.added.iter().map(|cert| sbom::Trusted { path: &t.path, cert }))
        .collect();
    sbom::cyclonedx(&subject, &placed, &trusted)
}

/// The image's name in its SBOM, and the other names it was written under:
/// the first registry output's repository (`--to docker://…` in the order
/// given, then `[target] repository` with `--push`), else the first daemon
/// output's name, else `[target] repository`, else `wso2img-image`. Local
/// layouts and archives are not named (their paths differ between machines).
fn names(project: &Project) -> (String, Vec<String>) {
    let registry = project.outputs.iter().filter_map(|o| transport::of(o).registry_reference()).map(|r| r.name());
    let daemon = project.outputs.iter().filter_map(|o| transport::of(o).daemon_image()).map(|r| r.name());
    let mut all: Vec<String> = Vec::new();
    for n in registry.chain(daemon) {
        if !all.contains(&n) {
            all.push(n);
        }
    }
    if all.is_empty() {
        all.push(project.config.target.repository.clone().unwrap_or_else(|| "wso2img-image".into()));
    }
    let name = all.remove(0);
    (name, all)
}

/// Writes the SBOM where `--sbom` asks for it.
pub(super) fn write(opts: &Options, sbom: Option<&[u8]>) -> Result<()> {
    let (Some(path), Some(bytes)) = (&opts.sbom, sbom) else { return Ok(()) };
    crate::files::write_output(&resolve(std::path::Path::new("."), path), bytes)
}
