//! The output half of every transport: one interface, asked the same
//! questions in the same order by the pipeline.
//!
//! 1. [`Destination::manifests`]: does it store manifests of ours, and in
//!    which media type family? (An OCI layout always wants OCI types; a
//!    registry keeps the base's family; the Docker daemon makes its own.)
//! 2. [`Destination::holds`]: does it already hold these images? Asked once,
//!    with every image of the build, before anything is compressed; what it
//!    holds is reported `up-to-date` and never written again.
//! 3. [`Destination::write`]: for each image it does not hold.
//! 4. [`Destination::finish`]: completes the writes (an archive is written
//!    here, whole).
//!
//! Adding an output is adding one implementation of this trait; the pipeline
//! never asks where an image goes.

use std::collections::HashMap;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{Blob, Image, ImageSet, MediaFamily, Platform};

/// One image of a build as known before anything is compressed: its
/// content digest, names and per-platform configs.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The content digest (the config digest for one platform, else the
    /// digest of the sorted platform/config-digest list).
    pub content: Digest,
    /// Its tags, the content tag first.
    pub tags: Vec<String>,
    /// Whether it is the main image (a destination named with its own tag,
    /// `oci:DIR:TAG` or `docker://HOST/REPO:TAG`, gives that tag to the main
    /// image only).
    pub main: bool,
    /// Platform and config digest of each of its images, in index order.
    pub configs: Vec<(Platform, Digest)>,
}

/// What a destination did with one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Written into a local file or folder.
    Written,
    /// Pushed to a registry.
    Pushed,
    /// Loaded into the Docker daemon.
    Loaded,
    /// Already there: nothing written, missing tags set.
    UpToDate,
}

impl Status {
    /// The word used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Written => "written",
            Status::Pushed => "pushed",
            Status::Loaded => "loaded",
            Status::UpToDate => "up-to-date",
        }
    }
}

/// The answer of [`Destination::write`] (and of `holds` for what is there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The manifest or index digest there (for the Docker daemon: the image ID).
    pub digest: Digest,
    /// What happened.
    pub status: Status,
}

/// What a destination answered before anything was built
/// ([`crate::transport::Transport::ask_early`]).
#[derive(Debug, Clone, Default)]
pub struct Early {
    /// It certainly holds no image yet.
    pub empty: bool,
    /// Tags asked about, and the manifest (or index) digest each names
    /// (`None`: it names nothing).
    pub tags: HashMap<String, Option<Digest>>,
    /// Gzip layer blobs of the images seen, by diff_id: digest and size.
    /// Unverified: a blob is asked for ([`Destination::has_blobs`]) before
    /// it is relied on.
    pub layers: HashMap<Digest, (Digest, u64)>,
}

/// What a destination already holds, per planned image (same order).
pub type Held = Vec<Option<Digest>>;

/// A place images are written to.
pub trait Destination {
    /// How it is named in reports and messages (`oci:out`, `docker://HOST/REPO`).
    fn name(&self) -> String;
    /// The reference that names `image` stored here as `digest`, the line
    /// `build` prints: `HOST/REPO@sha256:…` for a registry (what `docker
    /// pull` takes), otherwise the location with `@digest` appended
    /// (`oci:DIR:TAG@sha256:…`).
    fn pinned(&self, _image: &Planned, digest: &Digest) -> String {
        format!("{}@{digest}", self.name())
    }
    /// The media type family of the manifests it stores for a base of
    /// family `base`, or `None` when it stores no manifests of ours.
    fn manifests(&self, base: MediaFamily) -> Option<MediaFamily>;
    /// Which of `images` it already holds under all their tags, answered
    /// before anything is compressed. For what it holds it may set missing
    /// tags. A tag that names different content may be refused here.
    fn holds(&mut self, images: &[Planned]) -> Result<Held>;
    /// Writes one image (`set` is in the family [`Destination::manifests`]
    /// asked for, or the base's when it stores none).
    fn write(&mut self, image: &Planned, set: &ImageSet) -> Result<Written>;
    /// A layer blob that a later [`Destination::write`] will include is
    /// ready (compressed, in the family [`Destination::manifests`] asked
    /// for): the destination may start sending it now, so that sending
    /// overlaps the compression of the next layer. A failure surfaces in
    /// that `write`. The default waits for `write`.
    fn offer(&mut self, _blob: &Blob) {}
    /// Whether it already holds each of `digests` (asked before compressing
    /// layers whose compressed digest is known — from an earlier build, or
    /// from an image the destination holds — so an unchanged layer of a
    /// changed image is never compressed again). The default says no, and
    /// the layers are made.
    fn has_blobs(&mut self, digests: &[Digest]) -> Result<Vec<bool>> {
        Ok(vec![false; digests.len()])
    }
    /// The compressed blob (digest, size) of a layer with `diff_id` that an
    /// image it holds has, as seen before anything was built; unverified.
    fn known_layer(&self, _diff_id: &Digest) -> Option<(Digest, u64)> {
        None
    }
    /// Whether it certainly holds no image yet (a registry repository
    /// without tags, a layout not written yet): every layer of the build
    /// will go there, so layers may be compressed while they are hashed. A
    /// hint: when unsure (the default), no.
    fn surely_empty(&mut self) -> bool {
        false
    }
    /// Completes the writes.
    fn finish(&mut self) -> Result<()>;
}

/// The platform a one-platform destination (`what`) takes from `platforms`:
/// the only one, the first of `filter`, else the host's.
pub fn pick_index(platforms: &[&Platform], filter: &[Platform], what: &str) -> Result<usize> {
    if platforms.len() == 1 {
        return Ok(0);
    }
    let want = filter.first().cloned().unwrap_or_else(Platform::host);
    platforms.iter().position(|p| p.matches(&want)).ok_or_else(|| {
        Error::usage(format!(
            "{what} holds one platform and the image has {}; pick one with --platform",
            platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// The image of `set` a one-platform destination takes (see [`pick_index`]).
pub fn pick_image<'a>(set: &'a ImageSet, filter: &[Platform], what: &str) -> Result<&'a Image> {
    let platforms: Vec<&Platform> = set.images.iter().map(|i| &i.platform).collect();
    Ok(&set.images[pick_index(&platforms, filter, what)?])
}

/// The config digest a one-platform destination takes from `image`.
pub fn pick_config(image: &Planned, filter: &[Platform], what: &str) -> Result<Digest> {
    let platforms: Vec<&Platform> = image.configs.iter().map(|(p, _)| p).collect();
    Ok(image.configs[pick_index(&platforms, filter, what)?].1)
}

/// `tags` plus `own` (a destination's own tag) when not already in it.
pub fn with_own_tag(tags: &[String], own: Option<&String>) -> Vec<String> {
    let mut all = tags.to_vec();
    if let Some(t) = own {
        if !all.contains(t) {
            all.push(t.clone());
        }
    }
    all
}
