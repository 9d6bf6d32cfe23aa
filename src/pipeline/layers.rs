//! Hashing the customer layers (always) and compressing them (only what a
//! destination still needs), plus gzipping base layers stored as plain tars
//! (`docker save`) for destinations that store manifests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::outputs::Need;
use super::prepare::Prepared;
use super::LayerReport;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::files::{self, TempDir};
use crate::fmt::human;
use crate::image::{Blob, Descriptor, MediaFamily};
use crate::layer::{self, CompressedLayer};
use crate::reference::Location;

/// Every customer layer's diff_id and sizes, from its tar stream, nothing
/// compressed; layers are hashed side by side on every core.
pub(super) fn hash(p: &Prepared) -> Result<Vec<LayerReport>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<LayerReport>>>> = p.specs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..layer::threads().min(p.specs.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(spec) = p.specs.get(i) else { break };
                let r = layer::diff_id(spec).map(|t| LayerReport {
                    name: spec.name.clone(),
                    diff_id: t.diff_id,
                    files: spec.file_count(),
                    bytes: spec.content_bytes(),
                    tar_size: t.size,
                    digest: None,
                    size: None,
                    description: spec.description.clone(),
                });
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()).expect("every layer was hashed"))
        .collect()
}

/// The diff_ids of `layers`, in order.
pub(super) fn diff_ids(layers: &[LayerReport]) -> Vec<Digest> {
    layers.iter().map(|l| l.diff_id).collect()
}

/// The compressed layers of a build, in a staging folder that lives as long as this.
pub(super) struct Compressed {
    /// Per spec: its gzip file, when some destination needed it.
    pub(super) layers: Vec<Option<CompressedLayer>>,
    /// Base layers stored as plain tars, gzipped: diff_id → gzip file.
    pub(super) base: HashMap<Digest, CompressedLayer>,
    _staging: Option<TempDir>,
}

impl Compressed {
    /// The layer reports with compressed digests and sizes filled in.
    pub(super) fn reports(&self, hashed: &[LayerReport]) -> Vec<LayerReport> {
        hashed
            .iter()
            .zip(&self.layers)
            .map(|(h, c)| LayerReport {
                digest: c.as_ref().map(|c| c.digest),
                size: c.as_ref().map(|c| c.size),
                ..h.clone()
            })
            .collect()
    }

    /// The blob of customer layer `i` in `family`.
    pub(super) fn layer_blob(&self, i: usize, family: MediaFamily) -> Option<Blob> {
        let c = self.layers[i].as_ref()?;
        Some(Blob::staged(Descriptor::new(family.layer_gzip(), c.digest, c.size), c.path.clone()))
    }

    /// The gzipped blob of the plain-tar base layer `diff_id` in `family`.
    pub(super) fn base_blob(&self, diff_id: &Digest, family: MediaFamily) -> Option<Blob> {
        let c = self.base.get(diff_id)?;
        Some(Blob::staged(Descriptor::new(family.layer_gzip(), c.digest, c.size), c.path.clone()))
    }
}

/// Compresses the layers in `need`: the customer layers it lists (checked
/// against the diff_ids hashed before, so a file changed meanwhile is
/// caught) and the plain-tar base layers when it asks for them.
/// `ready` hears of each customer layer as soon as it is compressed.
pub(super) fn compress(
    p: &Prepared,
    need: &Need,
    hashed: &[LayerReport],
    ready: &mut dyn FnMut(usize, &CompressedLayer),
    log: &mut dyn FnMut(&str),
) -> Result<Compressed> {
    let mut out = Compressed { layers: vec![None; p.specs.len()], base: HashMap::new(), _staging: None };
    if need.layers.iter().all(|n| !n) && !need.base_gzip {
        return Ok(out);
    }
    let parent = staging_parent(&p.outputs);
    files::sweep(&parent);
    let staging = TempDir::new_in(&parent, "staging")?;
    // Biggest first: the longest uploads start first, and the last layer
    // compressed — the one whose upload nothing overlaps — is a small one.
    let mut order: Vec<usize> = (0..p.specs.len()).filter(|&i| need.layers[i]).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(hashed[i].tar_size));
    for i in order {
        let spec = &p.specs[i];
        let c = layer::build(spec, staging.path())?;
        if c.tar.diff_id != hashed[i].diff_id {
            return Err(Error::input(format!(
                "layer {}: its files changed while the image was being built; run again",
                spec.name
            )));
        }
        log(&format!(
            "layer {}: {} files, {} -> {} gzip, {}",
            spec.name,
            spec.file_count(),
            human(c.tar.size),
            human(c.size),
            c.tar.diff_id
        ));
        ready(i, &c);
        out.layers[i] = Some(c);
    }
    if need.base_gzip {
        for (base, img) in p.bases.iter().flat_map(|b| b.images.iter().map(move |i| (b, i))) {
            for l in img.layers.iter().filter(|l| l.is_plain_tar()) {
                if out.base.contains_key(&l.diff_id) {
                    continue;
                }
                let what = format!("{} layer {}", base.location, l.diff_id);
                let reader = l.blob.open().map_err(|e| Error::source(format!("{what}: {e}")))?;
                let c = layer::compress_reader(reader, staging.path(), &what)?;
                if c.tar.diff_id != l.diff_id {
                    return Err(Error::source(format!(
                        "{what}: content has digest {}; the archive is corrupt",
                        c.tar.diff_id
                    )));
                }
                out.base.insert(l.diff_id, c);
            }
        }
    }
    out._staging = Some(staging);
    Ok(out)
}

/// Where compressed layers are staged: beside the first local output (so
/// writing it is a hard link), else the temporary folder.
fn staging_parent(outputs: &[Location]) -> PathBuf {
    outputs
        .iter()
        .filter_map(Location::local_path)
        .filter(|p| matches!(files::Target::of(p), files::Target::Replace(_)))
        .map(|p| files::parent_of(p).to_path_buf())
        .find(|d| d.is_dir() && files::dir_writable(d))
        .unwrap_or_else(|| Path::new(&std::env::temp_dir()).to_path_buf())
}
