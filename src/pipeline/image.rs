//! From layers to images: per-platform configs, content digests and tags
//! of each product (the main image and its variants), checked for
//! collisions; then manifests and an index in the media type family a
//! destination stores (Docker types mapped to OCI ones for OCI layouts:
//! config bytes unchanged, so content digests and tags stay the same).

use std::collections::BTreeMap;

use super::bases::Bases;
use super::layers::Compressed;
use super::plan::Plan;
use super::project::Project;
use super::{
    BaseReport, IgnoredReport, LayerReport, MavenReport, PlatformReport, Report, VariantReport, BASE_DIGEST, BASE_NAME,
    PROFILE_LABEL, VARIANT_LABEL,
};
use crate::config::{expand_tag, TagValues};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::mutate::{self, AppendedLayer, ConfigChanges};
use crate::image::{Blob, Descriptor, Image, ImageSet, MediaFamily, Platform};
use crate::transport::destination::Planned;
use crate::wso2;

/// What composing images reads: the project, the plan, the bases and the
/// labels every image gets.
pub(super) struct Composing<'a> {
    pub(super) project: &'a Project,
    pub(super) plan: &'a Plan,
    pub(super) bases: &'a Bases,
    pub(super) labels: &'a BTreeMap<String, String>,
}

/// A product with its configs, content digest and tags computed.
pub(super) struct Composed {
    pub(super) configs: Vec<Vec<u8>>,
    pub(super) content: Digest,
    pub(super) tags: Vec<String>,
}

impl Composing<'_> {
    /// Every product's per-platform configs, content digest and tags, from
    /// the layers' diff_ids.
    pub(super) fn compose_all(&self, diff_ids: &[Digest]) -> Result<Vec<Composed>> {
        (0..self.plan.products.len()).map(|pi| self.compose(pi, diff_ids)).collect()
    }

    /// Product `pi`'s per-platform configs, content digest and tags.
    fn compose(&self, pi: usize, diff_ids: &[Digest]) -> Result<Composed> {
        let (config, product, base) = (&self.project.config, &self.plan.products[pi], self.bases.of(pi));
        let mut configs = Vec::new();
        for plat in &product.platforms {
            let img = &base.images[plat.image];
            let mut volumes: Vec<String> =
                config.image.volumes.iter().map(|v| wso2::volume_path(&plat.facts, v)).collect();
            volumes.sort();
            volumes.dedup();
            let mut labels = self.labels.clone();
            labels.insert(BASE_NAME.into(), base.name.clone());
            if let Some(d) = base.digest {
                labels.insert(BASE_DIGEST.into(), d.to_string());
            }
            if let Some(t) = plat.truststore.as_ref().filter(|t| !t.added.is_empty()) {
                labels.insert(wso2::truststore::LABEL.into(), wso2::truststore::label_value(&t.added));
            }
            if let Some(v) = &product.variant {
                labels.insert(VARIANT_LABEL.into(), v.name.clone());
                if let Some(profile) = &v.profile {
                    labels.insert(PROFILE_LABEL.into(), profile.clone());
                }
            }
            let layers = plat.layers.iter().map(|&i| AppendedLayer {
                diff_id: diff_ids[i],
                created_by: self.plan.layers[i].summary.description.clone(),
            });
            let mut env = config.image.env.clone();
            // `default` is the start without a profile: no PROFILE_NAME.
            let profile = product.variant.as_ref().and_then(|v| v.profile.as_ref());
            if let Some(profile) = profile.filter(|p| *p != wso2::profiles::DEFAULT) {
                env.insert(wso2::PROFILE_ENV.into(), profile.clone());
            }
            let changes = ConfigChanges {
                layers: layers.collect(),
                labels,
                env,
                volumes,
                created: self.plan.created.clone(),
                cmd: None,
            };
            configs.push(mutate::apply_config(&img.config, &changes)?);
        }
        let entries: Vec<(Platform, Digest)> = product
            .platforms
            .iter()
            .zip(&configs)
            .map(|(pl, c)| (base.images[pl.image].platform.clone(), Digest::of(c)))
            .collect();
        let content = mutate::content_digest(&entries);
        let tags = self.tags(pi, &content)?;
        Ok(Composed { configs, content, tags })
    }

    fn tags(&self, pi: usize, content: &Digest) -> Result<Vec<String>> {
        let (target, product) = (&self.project.config.target, &self.plan.products[pi]);
        let hex = content.hex();
        let version = product.platforms[0].facts.version.as_deref();
        let kind = product.platforms[0].facts.kind.map(|k| k.name());
        let mut v = TagValues { base_tag: &self.bases.of(pi).tag, digest_hex: &hex, version, variant: None, kind };
        if let Some(var) = &product.variant {
            v.variant = Some(&var.name);
            let template = var.tag.clone().unwrap_or_else(|| format!("{}-{{variant}}", target.tag));
            return Ok(vec![expand_tag(&template, &v)?]);
        }
        let mut out = vec![expand_tag(&target.tag, &v)?];
        for t in &target.extra_tags {
            let t = expand_tag(t, &v)?;
            if !out.contains(&t) {
                out.push(t);
            }
        }
        Ok(out)
    }

    fn platform_reports(&self, pi: usize, c: &Composed) -> Vec<PlatformReport> {
        let base = self.bases.of(pi);
        self.plan.products[pi]
            .platforms
            .iter()
            .zip(&c.configs)
            .map(|(pl, cfg)| PlatformReport {
                platform: base.images[pl.image].platform.to_string(),
                config_digest: Digest::of(cfg),
                manifest_digest: None,
                detected: pl.facts.clone(),
                layers: pl.layers.clone(),
                truststore: pl.truststore.clone(),
            })
            .collect()
    }

    /// The report of a run (no destination written yet).
    pub(super) fn report(
        &self,
        inputs: &super::inputs::Inputs,
        keystores_baked: bool,
        composed: &[Composed],
        layers: Vec<LayerReport>,
    ) -> Report {
        let main = &composed[0];
        Report {
            content_digest: main.content,
            tag: main.tags[0].clone(),
            tags: main.tags.clone(),
            base: base_report(self.bases.main()),
            platforms: self.platform_reports(0, main),
            layers,
            outputs: Vec::new(),
            uploaded_bytes: None,
            keystores_baked,
            variants: self.plan.products[1..]
                .iter()
                .zip(&composed[1..])
                .enumerate()
                .map(|(k, (prod, c))| {
                    let pi = k + 1;
                    let v = prod.variant.as_ref().expect("a variant");
                    let bi = self.bases.of_product[pi];
                    VariantReport {
                        name: v.name.clone(),
                        profile: v.profile.clone(),
                        base: (bi != 0).then(|| base_report(&self.bases.list[bi])),
                        content_digest: c.content,
                        tag: c.tags[0].clone(),
                        platforms: self.platform_reports(pi, c),
                        outputs: Vec::new(),
                    }
                })
                .collect(),
            ignored: ignored_report(inputs),
            maven: maven_report(inputs),
        }
    }

    /// What each destination is asked about: the products as planned images.
    pub(super) fn planned(&self, composed: &[Composed]) -> Vec<Planned> {
        self.plan
            .products
            .iter()
            .zip(composed)
            .enumerate()
            .map(|(pi, (prod, c))| Planned {
                content: c.content,
                tags: c.tags.clone(),
                main: pi == 0,
                configs: prod
                    .platforms
                    .iter()
                    .zip(&c.configs)
                    .map(|(pl, cfg)| (self.bases.of(pi).images[pl.image].platform.clone(), Digest::of(cfg)))
                    .collect(),
            })
            .collect()
    }

    /// Refuses tags given to two images (main, variants, a destination's own
    /// tag): every destination would keep only the last one written.
    pub(super) fn check_collisions(&self, composed: &[Composed]) -> Result<()> {
        let name = |pi: usize| match &self.plan.products[pi].variant {
            Some(v) => format!("variant {}", v.name),
            None => "the main image".to_string(),
        };
        let mut seen: Vec<(String, usize)> = Vec::new();
        let own = self.project.outputs.iter().filter_map(|o| crate::transport::of(o).own_tag());
        let all = composed
            .iter()
            .enumerate()
            .flat_map(|(pi, c)| c.tags.iter().map(move |t| (t.clone(), pi)))
            .chain(own.map(|t| (t, 0)));
        for (tag, pi) in all {
            if let Some((_, other)) = seen.iter().find(|(t, o)| *t == tag && *o != pi) {
                return Err(Error::config(format!(
                    "{}: tag `{tag}` is given to both {} and {}; give each image its own tag ([target] tag/extra_tags, [[variant]] tag, or the --to tag)",
                    self.project.config.path.display(),
                    name(*other),
                    name(pi)
                )));
            }
            seen.push((tag, pi));
        }
        Ok(())
    }

    /// The image set of product `pi` in `family`; `None` as family means "as the
    /// daemon takes it": the base's family, plain-tar base layers left as they are.
    pub(super) fn image_set(
        &self,
        pi: usize,
        composed: &Composed,
        compressed: &Compressed,
        family: Option<MediaFamily>,
    ) -> Result<ImageSet> {
        let base = self.bases.of(pi);
        let fam = family.unwrap_or(base.family);
        let annotations = annotations(base);
        let prod = &self.plan.products[pi];
        let mut images = Vec::new();
        for (plat, config) in prod.platforms.iter().zip(&composed.configs) {
            let img = &base.images[plat.image];
            let mut layers = Vec::new();
            for l in &img.layers {
                let blob = match (l.is_plain_tar(), family) {
                    (true, Some(f)) => {
                        compressed.base_blob(&l.diff_id, f).ok_or_else(|| missing("base", &l.diff_id))?
                    }
                    (true, None) => l.blob.clone(),
                    (false, _) => Blob {
                        desc: Descriptor { media_type: fam.layer(&l.blob.desc.media_type), ..l.blob.desc.clone() },
                        ..l.blob.clone()
                    },
                };
                layers.push(blob);
            }
            for &i in &plat.layers {
                let name = &self.plan.layers[i].summary.name;
                layers.push(compressed.layer_blob(i, fam).ok_or_else(|| missing(name, &composed.content))?);
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

    /// Fills the report's per-platform manifest digests for `family` (the
    /// family of the first destination that stores manifests), when every
    /// layer they need was compressed.
    pub(super) fn report_manifests(
        &self,
        rep: &mut Report,
        composed: &[Composed],
        compressed: &Compressed,
        family: Option<MediaFamily>,
    ) {
        let Some(family) = family else { return };
        for (pi, c) in composed.iter().enumerate() {
            let Ok(set) = self.image_set(pi, c, compressed, Some(family)) else { continue };
            let platforms = if pi == 0 { &mut rep.platforms } else { &mut rep.variants[pi - 1].platforms };
            for (pr, img) in platforms.iter_mut().zip(&set.images) {
                pr.manifest_digest = Some(img.manifest.desc.digest);
            }
        }
    }
}

fn base_report(base: &crate::transport::Base) -> BaseReport {
    BaseReport {
        location: base.location.to_string(),
        name: base.name.clone(),
        digest: base.digest,
        media_types: base.family,
    }
}

/// The Maven jars of the run, as reported.
pub(super) fn maven_report(inputs: &super::inputs::Inputs) -> Vec<MavenReport> {
    inputs
        .gathered
        .maven
        .iter()
        .map(|r| MavenReport {
            coordinates: r.coords.to_string(),
            purl: r.coords.purl(),
            sha256: r.sha256,
            layer: r.kind.name().to_string(),
        })
        .collect()
}

/// What the ignore rules left out, per rule.
pub(super) fn ignored_report(inputs: &super::inputs::Inputs) -> Vec<IgnoredReport> {
    crate::layer::ignore::totals(&inputs.gathered.excluded)
        .into_iter()
        .map(|(rule, files)| IgnoredReport { rule, files })
        .collect()
}

fn missing(what: &str, d: &Digest) -> Error {
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
