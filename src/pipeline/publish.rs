//! The destinations of a build: opened once from the locations, asked what
//! they hold, offered layers as they are compressed, written, and reported.
//! Each destination answers for itself ([`Destination`]); nothing here asks
//! where an image goes.

use std::sync::Arc;

use super::bases::Bases;
use super::image::{Composed, Composing};
use super::layers::{Compressed, Hashed, Need};
use super::plan::Plan;
use super::project::Project;
use super::{Options, OutputReport, Report};
use crate::cache::Cache;
use crate::digest::Digest;
use crate::error::Result;
use crate::image::{Blob, Descriptor, MediaFamily};
use crate::layer::CompressedLayer;
use crate::reference::Reference;
use crate::transport::destination::{Early, Held, Planned, Status};
use crate::transport::{self, daemon, Connections, Destination, Opening};

/// The destinations of a build, in output order.
pub(super) struct Destinations(Vec<Box<dyn Destination>>);

/// Per output: whether it certainly holds nothing yet and what the image its
/// tag names holds, for the outputs that answer early
/// ([`transport::Transport::ask_early`]) and that the config does not count
/// as public (baked keystores bound for a public registry are refused before
/// any request reaches it).
pub(super) fn ask_early(opts: &Options, project: &Project, connections: &Connections) -> Vec<Option<Early>> {
    project
        .outputs
        .iter()
        .map(|o| match project.is_public(o) {
            true => None,
            false => transport::of(o).ask_early(connections, opts.via),
        })
        .collect()
}

/// Whether some output is reached through the Docker daemon.
pub(super) fn needs_daemon(opts: &Options, project: &Project) -> bool {
    project.outputs.iter().any(|o| transport::of(o).through_daemon(opts.via))
}

/// One destination per output location.
pub(super) fn open(
    opts: &Options,
    project: &Project,
    bases: &Bases,
    connections: &Connections,
    cache: &Arc<Cache>,
    early: &[Option<Early>],
) -> Result<Destinations> {
    let hints = daemon_hints(bases);
    let repository = archive_repo(project, bases)?;
    let mut out = Vec::new();
    for (i, loc) in project.outputs.iter().enumerate() {
        let opening = Opening {
            connections,
            cache,
            via: opts.via,
            force: opts.force,
            platforms: &opts.platforms,
            repository: repository.clone(),
            daemon_hints: &hints,
            early: early.get(i).cloned().flatten(),
        };
        out.push(transport::of(loc).open_destination(&opening)?);
    }
    Ok(Destinations(out))
}

impl Destinations {
    /// Whether there are destinations and each surely holds nothing yet.
    pub(super) fn surely_empty(&mut self) -> bool {
        !self.0.is_empty() && self.0.iter_mut().all(|d| d.surely_empty())
    }

    /// What destinations that hold nothing hold: no image, for each.
    pub(super) fn nothing_held(&self, plan: &Plan) -> Vec<Held> {
        self.0.iter().map(|_| vec![None; plan.products.len()]).collect()
    }

    /// Asks every destination which images it holds.
    pub(super) fn ask(&mut self, planned: &[Planned]) -> Result<Vec<Held>> {
        self.0.iter_mut().map(|d| d.holds(planned)).collect()
    }

    /// What must be compressed: customer layers of images some destination
    /// lacks, and the plain-tar base layers when such a destination stores
    /// manifests; less every layer whose compressed blob each destination
    /// that wants it already holds — a blob known from an earlier build (the
    /// digest cache) or from an image the destination held before this build
    /// (a fresh runner), checked there, all at once — so a changed image
    /// compresses only its changed layers.
    pub(super) fn needs(
        &mut self,
        plan: &Plan,
        bases: &Bases,
        held: &[Held],
        hashed: &Hashed,
        cache: &Cache,
    ) -> Result<Need> {
        let mut need =
            Need { layers: vec![false; plan.layers.len()], base_gzip: false, held: vec![None; plan.layers.len()] };
        for (d, h) in self.0.iter().zip(held) {
            for (pi, (prod, held)) in plan.products.iter().zip(h).enumerate() {
                if held.is_some() {
                    continue;
                }
                let base = bases.of(pi);
                let plain_base = base.images.iter().any(|i| i.layers.iter().any(|l| l.is_plain_tar()));
                for plat in &prod.platforms {
                    for &i in &plat.layers {
                        need.layers[i] = true;
                    }
                }
                need.base_gzip |= plain_base && d.manifests(base.family).is_some();
            }
        }
        // Per layer still to make: the blob it would be, if known.
        let known: Vec<Option<(Digest, u64)>> = hashed
            .diff_ids()
            .iter()
            .enumerate()
            .map(|(i, diff_id)| {
                (need.layers[i] && !hashed.made(i))
                    .then(|| cache.gzip(diff_id).or_else(|| self.0.iter().find_map(|d| d.known_layer(diff_id))))
                    .flatten()
            })
            .collect();
        let mut everywhere: Vec<bool> = known.iter().map(Option::is_some).collect();
        for (d, h) in self.0.iter_mut().zip(held) {
            let asked: Vec<usize> =
                (0..known.len()).filter(|&i| everywhere[i]).filter(|&i| wanting(plan, h, i).is_some()).collect();
            if asked.is_empty() {
                continue;
            }
            if asked.iter().any(|&i| d.manifests(bases.of(wanting(plan, h, i).expect("wanted")).family).is_none()) {
                asked.iter().for_each(|&i| everywhere[i] = false);
                continue;
            }
            let digests: Vec<Digest> = asked.iter().map(|&i| known[i].expect("known").0).collect();
            for (&i, has) in asked.iter().zip(d.has_blobs(&digests)?) {
                everywhere[i] &= has;
            }
        }
        for (i, k) in known.iter().enumerate() {
            if let (true, Some(k)) = (everywhere[i], k) {
                need.layers[i] = false;
                need.held[i] = Some(*k);
            }
        }
        Ok(need)
    }

    /// Offers customer layer `i`, just compressed, to every destination that
    /// will write an image holding it, so a registry starts uploading it while
    /// the next layer is compressed.
    pub(super) fn offer(&mut self, plan: &Plan, bases: &Bases, held: &[Held], i: usize, c: &CompressedLayer) {
        for (d, h) in self.0.iter_mut().zip(held) {
            if let Some(pi) = wanting(plan, h, i) {
                if let Some(family) = d.manifests(bases.of(pi).family) {
                    let desc = Descriptor::new(family.layer_gzip(), c.digest, c.size);
                    d.offer(&Blob::staged(desc, c.path.clone()));
                }
            }
        }
    }

    /// The media type family whose manifest digests the report shows: that of
    /// the first destination that stores manifests.
    pub(super) fn reported_family(&self, bases: &Bases) -> Option<MediaFamily> {
        self.0.iter().find_map(|d| d.manifests(bases.main().family))
    }

    /// Writes every image each destination does not hold, reports each
    /// image, then finishes every destination.
    pub(super) fn write(
        &mut self,
        images: &Composing<'_>,
        planned: &[Planned],
        held: &[Held],
        composed: &[Composed],
        compressed: &Compressed,
        rep: &mut Report,
    ) -> Result<()> {
        for (dest, held) in self.0.iter_mut().zip(held) {
            for (pi, (image, held)) in planned.iter().zip(held).enumerate() {
                let family = dest.manifests(images.bases.of(pi).family);
                let (digest, status) = match held {
                    Some(d) => (*d, Status::UpToDate),
                    None => {
                        let set = images.image_set(pi, &composed[pi], compressed, family)?;
                        let w = dest.write(image, &set)?;
                        crate::progress::message(&format!("{} {} ({})", w.status.as_str(), dest.name(), w.digest));
                        (w.digest, w.status)
                    }
                };
                let slot = if pi == 0 { &mut rep.outputs } else { &mut rep.variants[pi - 1].outputs };
                slot.push(OutputReport::new(dest.name(), digest, status.as_str(), dest.pinned(image, &digest)));
            }
        }
        for dest in self.0.iter_mut() {
            dest.finish()?;
        }
        Ok(())
    }
}

/// The first image that a destination holding `h` still has to write and
/// that contains customer layer `i`.
fn wanting(plan: &Plan, h: &Held, i: usize) -> Option<usize> {
    plan.products
        .iter()
        .zip(h)
        .position(|(prod, held)| held.is_none() && prod.platforms.iter().any(|plat| plat.layers.contains(&i)))
}

/// The repository naming images in a docker-archive: `[target] repository`,
/// else `localhost/<base repository's last part>`.
fn archive_repo(project: &Project, bases: &Bases) -> Result<Option<Reference>> {
    if let Some(r) = &project.config.target.repository {
        return Reference::parse(r).map(Some);
    }
    let last = bases
        .main()
        .name
        .parse::<Reference>()
        .ok()
        .and_then(|r| r.repository.rsplit('/').next().map(str::to_string))
        .unwrap_or_else(|| "wso2am".into());
    Reference::parse(&format!("localhost/{last}")).map(Some)
}

/// Daemon images that may share the base layers: the base itself.
fn daemon_hints(bases: &Bases) -> Vec<String> {
    let base = bases.main();
    let mut hints = Vec::new();
    if let Some(r) = transport::of(&base.location).daemon_image() {
        hints.push(daemon::daemon_name(&r));
    }
    // A base named by its digest (a layout or archive that carries no reference) names no daemon image.
    if let Some(r) = Reference::parse(&base.name).ok().filter(|_| base.name.parse::<crate::digest::Digest>().is_err()) {
        hints.push(daemon::daemon_name(&r));
    }
    hints
}

/// What was written to destination `reference` for product `pi`, as reported.
pub(super) fn written<'a>(rep: &'a mut Report, pi: usize, reference: &str) -> Option<&'a mut OutputReport> {
    let outputs = if pi == 0 { &mut rep.outputs } else { &mut rep.variants[pi - 1].outputs };
    outputs.iter_mut().find(|o| o.reference == reference)
}
