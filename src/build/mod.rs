//! Plan and build: the pipeline from `wso2img.toml` to written images.
//!
//! ```text
//! config → base → walk customer folders → layer specs (per platform, shared
//! when equal) → diff_ids (plan: hash only; build: hash + gzip) → configs →
//! content digest and tags → manifests/index → one writer per destination
//! ```
//! The content digest depends only on uncompressed content, so `plan` and
//! `build` always agree and a compressor change can never move a tag.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::config::{expand_tag, Config, LayerKind, LayerSource, TagValues, VariantSection};
use crate::daemon::{self, Daemon};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::mutate::{self, AppendedLayer, ConfigChanges};
use crate::image::{Blob, Descriptor, Image, ImageSet, MediaFamily, Platform};
use crate::layer::{self, LayerSpec, Placement, SourceEntry};
use crate::reference::{Location, Reference};
use crate::registry::push::{self, TagState};
use crate::registry::{self, Registries};
use crate::sbom;
use crate::transport::{self, archive, oci, Base};
use crate::wso2::checks::CheckedFile;
use crate::wso2::{self, Facts};

mod compose;
mod outputs;
mod prepare;

use compose::*;
use outputs::*;
use prepare::*;

/// File modification time in layers when SOURCE_DATE_EPOCH is not set:
/// 1980-01-01T00:00:00Z (the zip epoch; avoids tools' special cases for 0).
pub const DEFAULT_MTIME: i64 = 315_532_800;
/// Label set when keystores are baked into the image.
pub const KEYSTORES_LABEL: &str = "io.wso2img.keystores";
/// Label and annotation naming the base image.
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
/// Label and annotation with the base image's manifest (or index) digest.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Path of `wso2img.toml`.
    pub config: PathBuf,
    /// Base override (`--base`), relative paths against the working directory.
    pub base: Option<Location>,
    /// Platforms to keep (`--platform`); empty keeps all.
    pub platforms: Vec<Platform>,
    /// Destinations (`--to`); empty means the default OCI layout.
    pub outputs: Vec<Location>,
    /// `--bake-keystores`.
    pub bake_keystores: bool,
    /// SOURCE_DATE_EPOCH, when set.
    pub source_date_epoch: Option<i64>,
    /// `--push`: also push to `[target] repository`.
    pub push: bool,
    /// `--force`: move a content tag that names different content.
    pub force: bool,
    /// `--pull`: have the Docker daemon pull a `docker-daemon:` base first.
    pub pull: bool,
    /// `--via`: how registry destinations are reached.
    pub via: Via,
    /// Registry settings (TLS, insecure hosts, retries).
    pub registry: registry::Options,
    /// `--allow-public-keystores`: push baked keystores to a public registry anyway.
    pub allow_public_keystores: bool,
    /// `--sbom FILE`: write a CycloneDX SBOM of the main image there.
    pub sbom: Option<PathBuf>,
    /// `--locked`: fail when `wso2img.lock` is missing or the base moved, instead of refreshing it.
    pub locked: bool,
    /// Only check the inputs (`wso2img check`): the lock is never written.
    pub check_only: bool,
}

/// How registry destinations (`--push`, `--to docker://…`) are reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Via {
    /// Directly over the registry API (the default).
    #[default]
    Registry,
    /// Through the Docker daemon: load the image into it, tag and
    /// `docker push`, so the daemon's mirrors, proxies and credentials apply.
    Docker,
}

/// The default output folder, relative to the config file.
pub const DEFAULT_OUTPUT: &str = "out";

/// One customer layer in a report.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// Layer kind (`jars`, `themes`, …).
    pub name: String,
    /// Uncompressed digest.
    pub diff_id: Digest,
    /// Files and symlinks in it.
    pub files: usize,
    /// Bytes of file content.
    pub bytes: u64,
    /// Uncompressed tar size.
    pub tar_size: u64,
    /// Compressed digest (build only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Compressed size (build only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// What the layer holds (its history line).
    pub description: String,
}

/// One platform in a report.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformReport {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Digest of the new config (the image ID).
    pub config_digest: Digest,
    /// Digest of the new manifest (build only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<Digest>,
    /// What was detected in the base.
    pub detected: Facts,
    /// Indexes into `layers` of the customer layers of this platform.
    pub layers: Vec<usize>,
}

/// The base in a report.
#[derive(Debug, Clone, Serialize)]
pub struct BaseReport {
    /// Where it was read from.
    pub location: String,
    /// Its name (the base.name label).
    pub name: String,
    /// Its manifest or index digest, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Docker or OCI media types.
    pub media_types: MediaFamily,
}

/// A destination in a build report.
#[derive(Debug, Clone, Serialize)]
pub struct OutputReport {
    /// The destination, transport-prefixed.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Manifest or index digest written there; for `docker-daemon:` the
    /// image ID; pushed through the daemon, the manifest digest it pushed.
    pub digest: Digest,
    /// `written`, `pushed`, `loaded` (into the Docker daemon) or `up-to-date`
    /// (the registry tag or the daemon already had this content; only tags set).
    pub status: String,
}

/// What `plan` and `build` report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `sha256:<hex>`: the config digest (one platform) or the digest of the
    /// sorted (platform, config digest) list.
    pub content_digest: Digest,
    /// The content tag.
    pub tag: String,
    /// Content tag plus extra tags.
    pub tags: Vec<String>,
    /// The base.
    pub base: BaseReport,
    /// Per platform.
    pub platforms: Vec<PlatformReport>,
    /// Customer layers (shared across platforms when equal).
    pub layers: Vec<LayerReport>,
    /// Destinations written (build; empty for plan).
    pub outputs: Vec<OutputReport>,
    /// Blob bytes uploaded to registries (build only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaded_bytes: Option<u64>,
    /// Whether keystores are baked into the image.
    pub keystores_baked: bool,
    /// One image per `[[variant]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantReport>,
    /// Files the ignore rules left out, per rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<IgnoredReport>,
}

/// What one ignore rule left out.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoredReport {
    /// The rule: `built-in: .DS_Store`, `jars/.wso2imgignore: *.bak`, `[layers] exclude: *.md`.
    pub rule: String,
    /// Files it left out.
    pub files: usize,
}

/// What `wso2img check` reports.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The base the inputs were checked against.
    pub base: String,
    /// Files that would go into the image (main customization).
    pub files: usize,
    /// Jars among them, Maven jars included.
    pub jars: usize,
    /// Configuration files (`.toml`, `.json`, `.xml`) checked.
    pub config_files: usize,
    /// Files the ignore rules left out, per rule.
    pub ignored: Vec<IgnoredReport>,
    /// Doubts that are not errors.
    pub warnings: Vec<String>,
}

/// A deployment-profile variant in a report.
#[derive(Debug, Clone, Serialize)]
pub struct VariantReport {
    /// The variant's name.
    pub name: String,
    /// The profile it starts in.
    pub profile: String,
    /// Its content digest.
    pub content_digest: Digest,
    /// Its tag.
    pub tag: String,
    /// Per platform; `layers` index the main report's `layers`.
    pub platforms: Vec<PlatformReport>,
    /// Destinations written (build only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputReport>,
}

/// Label naming the variant of a variant image.
pub const VARIANT_LABEL: &str = "io.wso2img.variant";
/// Label naming the deployment profile of a variant image.
pub const PROFILE_LABEL: &str = "io.wso2img.profile";

/// Computes what `build` would produce (content digest, tag, layers, variants)
/// without compressing anything or writing anywhere.
pub fn plan(opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Report> {
    let p = prepare(opts, log)?;
    let layers = hash_layers(&p)?;
    let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
    let composed = compose_all(&p, &diff_ids)?;
    Ok(report(&p, &composed, layers))
}

/// Runs every input check `plan` and `build` run — ignore rules, configuration
/// files, jars (Maven jars resolved and verified), keystores, themes against
/// the base's version — reading only the base's manifests and configs, and
/// writing nothing (not even the lock).
pub fn check(opts: &Options, log: &mut dyn FnMut(&str)) -> Result<CheckReport> {
    let opts = Options { check_only: true, outputs: Vec::new(), push: false, pull: false, ..opts.clone() };
    let p = prepare(&opts, log)?;
    Ok(CheckReport {
        base: p.base.name.clone(),
        files: p.checked.len(),
        jars: p.checked.iter().filter(|f| f.coords.is_some()).count(),
        config_files: p.gathered.config_files,
        ignored: ignored_report(&p),
        warnings: p.gathered.warnings.clone(),
    })
}

/// Builds the image (and its variants) and writes them to every destination.
/// Registry and daemon destinations that already hold the same content are
/// reported `up-to-date` without compressing or uploading anything.
pub fn build(opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Report> {
    let p = prepare(opts, log)?;
    let outputs = if p.outputs.is_empty() {
        vec![Location::Oci { dir: p.config.dir.join(DEFAULT_OUTPUT), tag: None }]
    } else {
        p.outputs.clone()
    };
    let pairs = outputs.len() * p.products.len();
    let mut planned: Option<Vec<LayerReport>> = None;
    // (output index, product index) → digest already there.
    let mut up_to_date: HashMap<(usize, usize), Digest> = HashMap::new();
    if outputs.iter().any(|o| matches!(o, Location::Registry(_) | Location::Daemon(_))) {
        let layers = hash_layers(&p)?;
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
        let composed = compose_all(&p, &diff_ids)?;
        for (oi, out) in outputs.iter().enumerate() {
            for (pi, (prod, c)) in p.products.iter().zip(&composed).enumerate() {
                if let Some(d) = already_there(&p, opts, out, prod, c, pi == 0, log)? {
                    up_to_date.insert((oi, pi), d);
                }
            }
        }
        if up_to_date.len() == pairs {
            let mut rep = report(&p, &composed, layers);
            for (oi, out) in outputs.iter().enumerate() {
                for pi in 0..p.products.len() {
                    let o = OutputReport {
                        reference: out.to_string(),
                        digest: up_to_date[&(oi, pi)],
                        status: "up-to-date".into(),
                    };
                    output_slot(&mut rep, pi).push(o);
                }
            }
            rep.uploaded_bytes = Some(0);
            write_sbom(&p, opts, &rep)?;
            return Ok(rep);
        }
        planned = Some(layers);
    }
    let staging_parent = outputs
        .iter()
        .find_map(|o| match o {
            Location::Oci { dir, .. } => Some(dir.parent().map(Path::to_path_buf).unwrap_or_default()),
            Location::DockerArchive { path, .. } => Some(path.parent().map(Path::to_path_buf).unwrap_or_default()),
            _ => None,
        })
        .map(|d| if d.as_os_str().is_empty() { PathBuf::from(".") } else { d })
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let staging = tempfile::Builder::new()
        .prefix(".wso2img-staging-")
        .tempdir_in(&staging_parent)
        .map_err(|e| Error::io("creating a staging folder", &staging_parent, e))?;

    // Base layers stored uncompressed (`docker save`) are gzipped only for a
    // destination that stores wso2img's manifest; the Docker daemon takes
    // them as they are (and usually has them already).
    let stores_manifest = outputs.iter().enumerate().any(|(oi, o)| {
        !through_daemon(o, opts.via) && (0..p.products.len()).any(|pi| !up_to_date.contains_key(&(oi, pi)))
    });
    let family = p.base.family;
    let mut layers = Vec::new();
    let mut blobs = Vec::new();
    for spec in &p.specs {
        let c = layer::build(spec, staging.path())?;
        log(&format!(
            "layer {}: {} files, {} -> {} gzip, {}",
            spec.name,
            spec.file_count(),
            human(c.tar.size),
            human(c.size),
            c.tar.diff_id
        ));
        blobs.push(Blob::staged(Descriptor::new(family.layer_gzip(), c.digest, c.size), c.path.clone()));
        layers.push(LayerReport {
            name: spec.name.clone(),
            diff_id: c.tar.diff_id,
            files: spec.file_count(),
            bytes: spec.content_bytes(),
            tar_size: c.tar.size,
            digest: Some(c.digest),
            size: Some(c.size),
            description: spec.description.clone(),
        });
    }
    let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
    if let Some(hashed) = &planned {
        for (h, l) in hashed.iter().zip(&layers) {
            if h.diff_id != l.diff_id {
                return Err(Error::input(format!(
                    "layer {}: its files changed while the image was being built; run again",
                    l.name
                )));
            }
        }
    }
    let composed = compose_all(&p, &diff_ids)?;

    let mut annotations = BTreeMap::new();
    annotations.insert(BASE_NAME.to_string(), p.base.name.clone());
    if let Some(d) = p.base.digest {
        annotations.insert(BASE_DIGEST.to_string(), d.to_string());
    }
    let mut compressed_base: HashMap<Digest, Blob> = HashMap::new();
    let mut sets = Vec::new();
    for (prod, c) in p.products.iter().zip(&composed) {
        let mut images = Vec::new();
        for (plat, config) in prod.platforms.iter().zip(&c.configs) {
            let img = &p.base.images[plat.image];
            let mut layer_blobs = Vec::new();
            for l in &img.layers {
                if !l.is_plain_tar() || !stores_manifest {
                    layer_blobs.push(l.blob.clone());
                    continue;
                }
                if let Some(b) = compressed_base.get(&l.diff_id) {
                    layer_blobs.push(b.clone());
                    continue;
                }
                let what = format!("{} layer {}", p.base.location, l.diff_id);
                let reader = l.blob.open().map_err(|e| Error::source(format!("{what}: {e}")))?;
                let cl = layer::compress_reader(reader, staging.path(), &what)?;
                if cl.tar.diff_id != l.diff_id {
                    return Err(Error::source(format!(
                        "{what}: content has digest {}; the archive is corrupt",
                        cl.tar.diff_id
                    )));
                }
                let b = Blob::staged(Descriptor::new(family.layer_gzip(), cl.digest, cl.size), cl.path);
                compressed_base.insert(l.diff_id, b.clone());
                layer_blobs.push(b);
            }
            layer_blobs.extend(plat.layers.iter().map(|&i| blobs[i].clone()));
            let config = Blob::bytes(family.config(), config.clone());
            let descs: Vec<Descriptor> = layer_blobs.iter().map(|b| b.desc.clone()).collect();
            let manifest = Blob::bytes(family.manifest(), mutate::manifest(family, &config.desc, &descs, &annotations));
            images.push(Image { platform: img.platform.clone(), manifest, config, layers: layer_blobs });
        }
        let index = (images.len() > 1).then(|| {
            let entries: Vec<Descriptor> = images
                .iter()
                .map(|i| Descriptor { platform: Some(i.platform.clone()), ..i.manifest.desc.clone() })
                .collect();
            Blob::bytes(family.index(), mutate::index(family, &entries, &annotations))
        });
        sets.push(ImageSet { family, images, index });
    }

    let mut rep = report(&p, &composed, layers);
    for (pr, img) in rep.platforms.iter_mut().zip(&sets[0].images) {
        pr.manifest_digest = stores_manifest.then_some(img.manifest.desc.digest);
    }
    for (v, set) in rep.variants.iter_mut().zip(&sets[1..]) {
        for (pr, img) in v.platforms.iter_mut().zip(&set.images) {
            pr.manifest_digest = stores_manifest.then_some(img.manifest.desc.digest);
        }
    }
    for (oi, out) in outputs.iter().enumerate() {
        if let Location::DockerArchive { path, reference } = out {
            let mut entries = Vec::new();
            for (pi, (set, c)) in sets.iter().zip(&composed).enumerate() {
                let refs = match (reference, pi) {
                    (Some(r), 0) => vec![r.clone()],
                    _ => archive_repo(&p)?
                        .map(|repo| c.tags.iter().map(|t| repo.with_tag(t)).collect())
                        .unwrap_or_default(),
                };
                entries.push((refs, pick_platform(set, &opts.platforms, "docker-archive")?));
            }
            let borrowed: Vec<(&[Reference], &Image)> = entries.iter().map(|(r, i)| (r.as_slice(), *i)).collect();
            let digest = archive::write_many(path, &borrowed)?;
            log(&format!("written {out} ({digest})"));
            for (pi, (_, img)) in entries.iter().enumerate() {
                let d = if pi == 0 { digest } else { img.manifest.desc.digest };
                output_slot(&mut rep, pi).push(OutputReport {
                    reference: out.to_string(),
                    digest: d,
                    status: "written".into(),
                });
            }
            continue;
        }
        for (pi, (set, c)) in sets.iter().zip(&composed).enumerate() {
            if let Some(d) = up_to_date.get(&(oi, pi)) {
                output_slot(&mut rep, pi).push(OutputReport {
                    reference: out.to_string(),
                    digest: *d,
                    status: "up-to-date".into(),
                });
                continue;
            }
            let own_tag = if pi == 0 { out_tag(out) } else { None };
            let mut tags = c.tags.clone();
            tags.extend(own_tag.filter(|t| !c.tags.contains(t)));
            let (digest, status) = match out {
                Location::Registry(r) if opts.via == Via::Docker => {
                    (push_via_daemon(&p, set, r, &tags, &opts.platforms, log)?, "pushed")
                }
                Location::Registry(r) => (push::push(&p.registries, set, r, &tags, log)?, "pushed"),
                Location::Oci { dir, tag } => {
                    let t = match (tag, pi) {
                        (Some(t), 0) => vec![t.clone()],
                        _ => c.tags.clone(),
                    };
                    (oci::write(dir, &t, set)?, "written")
                }
                Location::Daemon(r) => {
                    let image = pick_platform(set, &opts.platforms, "the Docker daemon")?;
                    let loaded = daemon_of(&p)?.load(image, &daemon_tags(r, &tags), &daemon_hints(&p), log)?;
                    (loaded.id, if loaded.up_to_date { "up-to-date" } else { "loaded" })
                }
                other => return Err(Error::unsupported(format!("{other}: not available as a destination"))),
            };
            log(&format!("{status} {out} ({digest})"));
            output_slot(&mut rep, pi).push(OutputReport { reference: out.to_string(), digest, status: status.into() });
        }
    }
    rep.uploaded_bytes = Some(p.registries.uploaded_bytes());
    write_sbom(&p, opts, &rep)?;
    Ok(rep)
}

/// Bytes in a short human form (`1.2 MB`).
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
