//! The CycloneDX SBOM of the main image: what the customization adds, each
//! file where it lands in the image.

use super::bases::Bases;
use super::inputs::Inputs;
use super::plan::Plan;
use super::project::Project;
use super::{Options, Report};
use crate::error::Result;
use crate::sbom;
use crate::transport::resolve;
use crate::wso2;

/// The CycloneDX SBOM of the main image.
pub(super) fn bytes(project: &Project, plan: &Plan, bases: &Bases, inputs: &Inputs, rep: &Report) -> Result<Vec<u8>> {
    let facts = &plan.main().platforms[0].facts;
    let mut placed = Vec::new();
    let every = inputs.every_input();
    for f in &every {
        if let Some(dest) = wso2::destination(f.kind, &f.rel, facts)? {
            placed.push(sbom::Placed { file: f, dest });
        }
    }
    let name = project.config.target.repository.clone().unwrap_or_else(|| "wso2img-image".into());
    let subject = sbom::Subject {
        name: &name,
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

/// Writes the SBOM where `--sbom` asks for it.
pub(super) fn write(opts: &Options, sbom: Option<&[u8]>) -> Result<()> {
    let (Some(path), Some(bytes)) = (&opts.sbom, sbom) else { return Ok(()) };
    crate::files::write_output(&resolve(std::path::Path::new("."), path), bytes)
}
