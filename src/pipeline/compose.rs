//! From diff_ids to images: per-platform configs, content digests, tags and
//! the report of each product (the main image and its variants).

use super::prepare::{Prepared, Product};
use super::{
    BaseReport, IgnoredReport, LayerReport, MavenReport, PlatformReport, Report, VariantReport, BASE_DIGEST, BASE_NAME,
    PROFILE_LABEL, VARIANT_LABEL,
};
use crate::config::{expand_tag, TagValues};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::mutate::{self, AppendedLayer, ConfigChanges};
use crate::image::Platform;
use crate::transport::destination::Planned;
use crate::wso2;

/// A product with its configs, content digest and tags computed.
pub(super) struct Composed {
    pub(super) configs: Vec<Vec<u8>>,
    pub(super) content: Digest,
    pub(super) tags: Vec<String>,
}

/// A product's per-platform configs, content digest and tags, from the
/// layers' diff_ids.
pub(super) fn compose(p: &Prepared, product: &Product, diff_ids: &[Digest]) -> Result<Composed> {
    let base = &p.bases[product.base];
    let mut configs = Vec::new();
    for plat in &product.platforms {
        let img = &base.images[plat.image];
        let mut volumes: Vec<String> =
            p.config.image.volumes.iter().map(|v| wso2::volume_path(&plat.facts, v)).collect();
        volumes.sort();
        volumes.dedup();
        let mut labels = p.labels.clone();
        labels.insert(BASE_NAME.into(), base.name.clone());
        if let Some(d) = base.digest {
            labels.insert(BASE_DIGEST.into(), d.to_string());
        }
        if let Some(v) = &product.variant {
            labels.insert(VARIANT_LABEL.into(), v.name.clone());
            if let Some(profile) = &v.profile {
                labels.insert(PROFILE_LABEL.into(), profile.clone());
            }
        }
        let changes = ConfigChanges {
            layers: plat
                .layers
                .iter()
                .map(|&i| AppendedLayer { diff_id: diff_ids[i], created_by: p.layers[i].summary.description.clone() })
                .collect(),
            labels,
            env: match product.variant.as_ref().and_then(|v| v.profile.as_ref()) {
                Some(profile) => {
                    let mut env = p.config.image.env.clone();
                    env.insert(wso2::PROFILE_ENV.into(), profile.clone());
                    env
                }
                None => p.config.image.env.clone(),
            },
            volumes,
            created: p.created.clone(),
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
    let tags = tags(p, product, &content)?;
    Ok(Composed { configs, content, tags })
}

fn tags(p: &Prepared, product: &Product, content: &Digest) -> Result<Vec<String>> {
    let hex = content.hex();
    let version = product.platforms[0].facts.version.as_deref();
    let kind = product.platforms[0].facts.kind.map(|k| k.name());
    let mut v = TagValues { base_tag: &p.bases[product.base].tag, digest_hex: &hex, version, variant: None, kind };
    if let Some(var) = &product.variant {
        v.variant = Some(&var.name);
        let template = var.tag.clone().unwrap_or_else(|| format!("{}-{{variant}}", p.config.target.tag));
        return Ok(vec![expand_tag(&template, &v)?]);
    }
    let mut out = vec![expand_tag(&p.config.target.tag, &v)?];
    for t in &p.config.target.extra_tags {
        let t = expand_tag(t, &v)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn platform_reports(p: &Prepared, product: &Product, c: &Composed) -> Vec<PlatformReport> {
    product
        .platforms
        .iter()
        .zip(&c.configs)
        .map(|(pl, cfg)| PlatformReport {
            platform: p.bases[product.base].images[pl.image].platform.to_string(),
            config_digest: Digest::of(cfg),
            manifest_digest: None,
            detected: pl.facts.clone(),
            layers: pl.layers.clone(),
        })
        .collect()
}

fn base_report(base: &crate::transport::Base) -> BaseReport {
    BaseReport {
        location: base.location.to_string(),
        name: base.name.clone(),
        digest: base.digest,
        media_types: base.family,
    }
}

pub(super) fn report(p: &Prepared, composed: &[Composed], layers: Vec<LayerReport>) -> Report {
    let main = &composed[0];
    Report {
        content_digest: main.content,
        tag: main.tags[0].clone(),
        tags: main.tags.clone(),
        base: base_report(p.base()),
        platforms: platform_reports(p, p.main(), main),
        layers,
        outputs: Vec::new(),
        uploaded_bytes: None,
        keystores_baked: p.keystores_baked,
        variants: p.products[1..]
            .iter()
            .zip(&composed[1..])
            .map(|(prod, c)| {
                let v = prod.variant.as_ref().expect("a variant");
                VariantReport {
                    name: v.name.clone(),
                    profile: v.profile.clone(),
                    base: (prod.base != 0).then(|| base_report(&p.bases[prod.base])),
                    content_digest: c.content,
                    tag: c.tags[0].clone(),
                    platforms: platform_reports(p, prod, c),
                    outputs: Vec::new(),
                }
            })
            .collect(),
        ignored: ignored_report(p),
        maven: maven_report(p),
    }
}

pub(super) fn maven_report(p: &Prepared) -> Vec<MavenReport> {
    p.gathered
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

pub(super) fn ignored_report(p: &Prepared) -> Vec<IgnoredReport> {
    crate::layer::ignore::totals(&p.gathered.excluded)
        .into_iter()
        .map(|(rule, files)| IgnoredReport { rule, files })
        .collect()
}

pub(super) fn compose_all(p: &Prepared, diff_ids: &[Digest]) -> Result<Vec<Composed>> {
    p.products.iter().map(|prod| compose(p, prod, diff_ids)).collect()
}

/// What each destination is asked about: the products as planned images.
pub(super) fn planned(p: &Prepared, composed: &[Composed]) -> Vec<Planned> {
    p.products
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
                .map(|(pl, cfg)| (p.bases[prod.base].images[pl.image].platform.clone(), Digest::of(cfg)))
                .collect(),
        })
        .collect()
}

/// Refuses tags given to two images (main, variants, a destination's own
/// tag): every destination would keep only the last one written.
pub(super) fn check_collisions(p: &Prepared, composed: &[Composed]) -> Result<()> {
    let name = |pi: usize| match &p.products[pi].variant {
        Some(v) => format!("variant {}", v.name),
        None => "the main image".to_string(),
    };
    let mut seen: Vec<(String, usize)> = Vec::new();
    let own = p.outputs.iter().filter_map(|o| match o {
        crate::reference::Location::Oci { tag, .. } => tag.clone(),
        crate::reference::Location::Registry(r) | crate::reference::Location::Daemon(r) => r.tag.clone(),
        _ => None,
    });
    let all = composed
        .iter()
        .enumerate()
        .flat_map(|(pi, c)| c.tags.iter().map(move |t| (t.clone(), pi)))
        .chain(own.map(|t| (t, 0)));
    for (tag, pi) in all {
        if let Some((_, other)) = seen.iter().find(|(t, o)| *t == tag && *o != pi) {
            return Err(Error::config(format!(
                "{}: tag `{tag}` is given to both {} and {}; give each image its own tag ([target] tag/extra_tags, [[variant]] tag, or the --to tag)",
                p.config.path.display(),
                name(*other),
                name(pi)
            )));
        }
        seen.push((tag, pi));
    }
    Ok(())
}
