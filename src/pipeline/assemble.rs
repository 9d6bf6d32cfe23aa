//! From configs and compressed layers to image sets: manifests and an index
//! in the media type family a destination stores (Docker types mapped to OCI
//! ones for OCI layouts: config bytes unchanged, so content digests and tags
//! stay the same).

use std::collections::BTreeMap;

use super::compose::Composed;
use super::layers::Compressed;
use super::prepare::Prepared;
use super::{Report, BASE_DIGEST, BASE_NAME};
use crate::error::{Error, Result};
use crate::image::mutate;
use crate::image::{Blob, Descriptor, Image, ImageSet, MediaFamily};

/// The image set of product `pi` in `family`; `None` as family means "as the
/// daemon takes it": the base's family, plain-tar base layers left as they are.
pub(super) fn image_set(
    p: &Prepared,
    pi: usize,
    composed: &Composed,
    compressed: &Compressed,
    family: Option<MediaFamily>,
) -> Result<ImageSet> {
    let base = p.base_of(pi);
    let fam = family.unwrap_or(base.family);
    let annotations = annotations(base);
    let prod = &p.products[pi];
    let mut images = Vec::new();
    for (plat, config) in prod.platforms.iter().zip(&composed.configs) {
        let img = &base.images[plat.image];
        let mut layers = Vec::new();
        for l in &img.layers {
            let blob = match (l.is_plain_tar(), family) {
                (true, Some(f)) => compressed.base_blob(&l.diff_id, f).ok_or_else(|| missing("base", &l.diff_id))?,
                (true, None) => l.blob.clone(),
                (false, _) => Blob {
                    desc: Descriptor { media_type: fam.layer(&l.blob.desc.media_type), ..l.blob.desc.clone() },
                    ..l.blob.clone()
                },
            };
            layers.push(blob);
        }
        for &i in &plat.layers {
            layers.push(
                compressed.layer_blob(i, fam).ok_or_else(|| missing(&p.layers[i].summary.name, &composed.content))?,
            );
        }
        let config = Blob::bytes(fam.config(), config.clone());
        let descs: Vec<Descriptor> = layers.iter().map(|b| b.desc.clone()).collect();
        let manifest = Blob::bytes(fam.manifest(), mutate::manifest(fam, &config.desc, &descs, &annotations));
        images.push(Image { platform: img.platform.clone(), manifest, config, layers });
    }
    let index = (images.len() > 1).then(|| {
        let entries: Vec<Descriptor> = images
            .iter()
            .map(|i| Descriptor { platform: Some(i.platform.clone()), ..i.manifest.desc.clone() })
            .collect();
        Blob::bytes(fam.index(), mutate::index(fam, &entries, &annotations))
    });
    Ok(ImageSet { family: fam, images, index, attachments: Vec::new() })
}

fn missing(what: &str, d: &crate::digest::Digest) -> Error {
    Error::new(crate::error::Kind::Io, format!("layer {what} ({d}) was not compressed; this is a wso2img bug"))
}

/// The base name and digest annotations of manifests and indexes.
fn annotations(base: &crate::transport::Base) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert(BASE_NAME.to_string(), base.name.clone());
    if let Some(d) = base.digest {
        a.insert(BASE_DIGEST.to_string(), d.to_string());
    }
    a
}

/// Fills the report's per-platform manifest digests for `family` (the
/// family of the first destination that stores manifests), when every
/// layer they need was compressed.
pub(super) fn report_manifests(
    rep: &mut Report,
    p: &Prepared,
    composed: &[Composed],
    compressed: &Compressed,
    family: Option<MediaFamily>,
) {
    let Some(family) = family else { return };
    for (pi, c) in composed.iter().enumerate() {
        let Ok(set) = image_set(p, pi, c, compressed, Some(family)) else { continue };
        let platforms = if pi == 0 { &mut rep.platforms } else { &mut rep.variants[pi - 1].platforms };
        for (pr, img) in platforms.iter_mut().zip(&set.images) {
            pr.manifest_digest = Some(img.manifest.desc.digest);
        }
    }
}
