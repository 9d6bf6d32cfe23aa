//! The destinations of a build: made once from the `--to` locations, asked
//! what they hold, written, and reported; plus the SBOM.

use std::sync::Arc;

use super::assemble::image_set;
use super::compose::Composed;
use super::layers::Compressed;
use super::prepare::{destination, Prepared};
use super::{Destinations, Options, OutputReport, Report, Via};
use crate::cache::Cache;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{Blob, Descriptor, MediaFamily};
use crate::layer::CompressedLayer;
use crate::reference::{Location, Reference};
use crate::sbom;
use crate::transport::archive::ArchiveDestination;
use crate::transport::daemon::{self, Daemon, DaemonDestination, ViaDaemon};
use crate::transport::destination::{Held, Planned, Status};
use crate::transport::oci::LayoutDestination;
use crate::transport::registry::destination::RegistryDestination;
use crate::transport::{resolve, Destination};

/// Whether a destination is reached through the Docker daemon.
pub(super) fn through_daemon(out: &Location, via: Via) -> bool {
    matches!(out, Location::Daemon(_)) || (via == Via::Docker && matches!(out, Location::Registry(_)))
}

/// One destination per output location.
pub(super) fn open(p: &Prepared, opts: &Options, cache: &Arc<Cache>) -> Result<Destinations> {
    let daemon = || -> Result<Daemon> {
        p.daemon.clone().ok_or_else(|| Error::new(crate::error::Kind::Io, "the Docker daemon was not connected"))
    };
    let platforms = opts.platforms.clone();
    let mut out: Destinations = Vec::new();
    for (i, loc) in p.outputs.iter().enumerate() {
        let d: Box<dyn Destination> = match loc {
            Location::Oci { dir, tag } => Box::new(LayoutDestination::new(dir, tag.clone()).with_cache(cache.clone())),
            Location::DockerArchive { path, reference } => {
                Box::new(ArchiveDestination::new(path, reference.clone(), archive_repo(p)?, platforms.clone()))
            }
            Location::Registry(r) if opts.via == Via::Docker => {
                Box::new(ViaDaemon::new(daemon()?, r.clone(), platforms.clone(), daemon_hints(p)))
            }
            Location::Registry(r) => Box::new(
                RegistryDestination::new(p.registries.clone(), r.clone(), opts.force)
                    .knowing_empty(p.empty_outputs.get(i).copied().flatten()),
            ),
            Location::Daemon(r) => {
                Box::new(DaemonDestination::new(daemon()?, r.clone(), platforms.clone(), daemon_hints(p)))
            }
            Location::Builtin(_) => return Err(Error::usage(format!("{loc}: not available as a destination"))),
        };
        out.push(d);
    }
    Ok(out)
}

/// Asks every destination which images it holds.
pub(super) fn ask(dests: &mut Destinations, planned: &[Planned]) -> Result<Vec<Held>> {
    dests.iter_mut().map(|d| d.holds(planned)).collect()
}

/// What must be compressed: customer layers of images some destination
/// lacks, and the plain-tar base layers when such a destination stores manifests.
pub(super) struct Need {
    pub(super) layers: Vec<bool>,
    pub(super) base_gzip: bool,
    /// Per customer layer: its compressed digest and size when every
    /// destination that wants it already holds that blob (then it is not in
    /// `layers`).
    pub(super) held: Vec<Option<(Digest, u64)>>,
}

pub(super) fn needs(p: &Prepared, dests: &Destinations, held: &[Held]) -> Need {
    let mut need = Need { layers: vec![false; p.layers.len()], base_gzip: false, held: vec![None; p.layers.len()] };
    for (d, h) in dests.iter().zip(held) {
        for (pi, (prod, held)) in p.products.iter().zip(h).enumerate() {
            if held.is_some() {
                continue;
            }
            let base = p.base_of(pi);
            let plain_base = base.images.iter().any(|i| i.layers.iter().any(|l| l.is_plain_tar()));
            for plat in &prod.platforms {
                for &i in &plat.layers {
                    need.layers[i] = true;
                }
            }
            need.base_gzip |= plain_base && d.manifests(base.family).is_some();
        }
    }
    need
}

/// Leaves out of `need` every layer whose compressed blob, known from an
/// earlier build, each destination that wants it already holds: a changed
/// image then compresses only its changed layers.
pub(super) fn skip_held(
    p: &Prepared,
    dests: &mut Destinations,
    held: &[Held],
    need: &mut Need,
    diff_ids: &[Digest],
    cache: &Cache,
    made: impl Fn(usize) -> bool,
) -> Result<()> {
    for (i, diff_id) in diff_ids.iter().enumerate() {
        let Some((digest, size)) = (need.layers[i] && !made(i)).then(|| cache.gzip(diff_id)).flatten() else {
            continue;
        };
        let mut everywhere = true;
        for (d, h) in dests.iter_mut().zip(held) {
            let Some(pi) = wanting(p, h, i) else { continue };
            if d.manifests(p.base_of(pi).family).is_none() || !d.has_blob(&digest)? {
                everywhere = false;
                break;
            }
        }
        if everywhere {
            need.layers[i] = false;
            need.held[i] = Some((digest, size));
        }
    }
    Ok(())
}

/// The first image that a destination holding `h` still has to write and
/// that contains customer layer `i`.
fn wanting(p: &Prepared, h: &Held, i: usize) -> Option<usize> {
    p.products
        .iter()
        .zip(h)
        .position(|(prod, held)| held.is_none() && prod.platforms.iter().any(|plat| plat.layers.contains(&i)))
}

/// Whether there are destinations and each surely holds nothing yet.
pub(super) fn surely_empty(dests: &mut Destinations) -> bool {
    !dests.is_empty() && dests.iter_mut().all(|d| d.surely_empty())
}

/// What destinations that hold nothing hold: no image, for each.
pub(super) fn nothing_held(p: &Prepared, dests: &Destinations) -> Vec<Held> {
    dests.iter().map(|_| vec![None; p.products.len()]).collect()
}

/// Offers customer layer `i`, just compressed, to every destination that
/// will write an image holding it, so a registry starts uploading it while
/// the next layer is compressed.
pub(super) fn offer(p: &Prepared, dests: &mut Destinations, held: &[Held], i: usize, c: &CompressedLayer) {
    for (d, h) in dests.iter_mut().zip(held) {
        if let Some(pi) = wanting(p, h, i) {
            if let Some(family) = d.manifests(p.base_of(pi).family) {
                let desc = Descriptor::new(family.layer_gzip(), c.digest, c.size);
                d.offer(&Blob::staged(desc, c.path.clone()));
            }
        }
    }
}

/// The media type family whose manifest digests the report shows: that of
/// the first destination that stores manifests.
pub(super) fn reported_family(p: &Prepared, dests: &Destinations) -> Option<MediaFamily> {
    dests.iter().find_map(|d| d.manifests(p.base().family))
}

/// Writes every image `dest` does not hold and reports each image.
#[allow(clippy::too_many_arguments)]
pub(super) fn write(
    dest: &mut dyn Destination,
    p: &Prepared,
    planned: &[Planned],
    held: &Held,
    composed: &[Composed],
    compressed: &Compressed,
    rep: &mut Report,
) -> Result<()> {
    for (pi, (image, held)) in planned.iter().zip(held).enumerate() {
        let family = dest.manifests(p.base_of(pi).family);
        let (digest, status) = match held {
            Some(d) => (*d, Status::UpToDate),
            None => {
                let set = image_set(p, pi, &composed[pi], compressed, family)?;
                let w = dest.write(image, &set)?;
                crate::progress::message(&format!("{} {} ({})", w.status.as_str(), dest.name(), w.digest));
                (w.digest, w.status)
            }
        };
        let slot = if pi == 0 { &mut rep.outputs } else { &mut rep.variants[pi - 1].outputs };
        slot.push(OutputReport { reference: dest.name(), digest, status: status.as_str().into() });
    }
    Ok(())
}

/// The repository naming images in a docker-archive: `[target] repository`,
/// else `localhost/<base repository's last part>`.
fn archive_repo(p: &Prepared) -> Result<Option<Reference>> {
    if let Some(r) = &p.config.target.repository {
        return Reference::parse(r).map(Some);
    }
    let last = p
        .base()
        .name
        .parse::<Reference>()
        .ok()
        .and_then(|r| r.repository.rsplit('/').next().map(str::to_string))
        .unwrap_or_else(|| "wso2am".into());
    Reference::parse(&format!("localhost/{last}")).map(Some)
}

/// Daemon images that may share the base layers: the base itself.
fn daemon_hints(p: &Prepared) -> Vec<String> {
    let mut hints = Vec::new();
    if let Location::Daemon(r) = &p.base().location {
        hints.push(daemon::daemon_name(r));
    }
    if let Ok(r) = Reference::parse(&p.base().name) {
        hints.push(daemon::daemon_name(&r));
    }
    hints
}

/// Writes the CycloneDX SBOM of the main image when `--sbom` asks for it.
pub(super) fn write_sbom(p: &Prepared, opts: &Options, rep: &Report) -> Result<()> {
    let Some(path) = &opts.sbom else { return Ok(()) };
    let bytes = sbom_bytes(p, rep)?;
    crate::files::write_output(&resolve(std::path::Path::new("."), path), &bytes)
}

/// The CycloneDX SBOM of the main image.
pub(super) fn sbom_bytes(p: &Prepared, rep: &Report) -> Result<Vec<u8>> {
    let facts = &p.main().platforms[0].facts;
    let mut placed = Vec::new();
    let inputs = p.every_input();
    for f in &inputs {
        if let Some(dest) = destination(f.kind, &f.rel, facts)? {
            placed.push(sbom::Placed { file: f, dest });
        }
    }
    let name = p.config.target.repository.clone().unwrap_or_else(|| "wso2img-image".into());
    let subject = sbom::Subject {
        name: &name,
        tag: &rep.tag,
        content_digest: &rep.content_digest,
        base_name: &p.base().name,
        base_digest: p.base().digest.as_ref(),
    };
    sbom::cyclonedx(&subject, &placed)
}
