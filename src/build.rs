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

struct PlatformPrep {
    image: usize,
    facts: Facts,
    layers: Vec<usize>,
}

/// One image to produce: the main customization, or a variant of it.
struct Product {
    variant: Option<VariantSection>,
    platforms: Vec<PlatformPrep>,
}

/// A product with its configs, content digest and tags computed.
struct Composed {
    configs: Vec<Vec<u8>>,
    content: Digest,
    tags: Vec<String>,
}

struct Prepared {
    registries: Arc<Registries>,
    daemon: Option<Daemon>,
    outputs: Vec<Location>,
    config: Config,
    base: Base,
    specs: Vec<LayerSpec>,
    products: Vec<Product>,
    labels: BTreeMap<String, String>,
    created: Option<String>,
    checked: Vec<CheckedFile>,
    keystores_baked: bool,
}

impl Prepared {
    fn main(&self) -> &Product {
        &self.products[0]
    }
}

fn prepare(opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Prepared> {
    let config = Config::load(&opts.config)?;
    let (location, rel_dir) = match &opts.base {
        Some(l) => (l.clone(), PathBuf::from(".")),
        None => {
            (config.base.image.parse::<Location>().map_err(|e| e.context(config.path.display()))?, config.dir.clone())
        }
    };
    let mut outputs = opts.outputs.clone();
    if opts.push {
        let repo = config.target.repository.as_ref().ok_or_else(|| {
            Error::usage(format!(
                "--push: set [target] repository in {} or use --to docker://HOST/REPO",
                config.path.display()
            ))
        })?;
        outputs.push(Location::Registry(Reference::parse(repo)?));
    }
    for out in &outputs {
        check_output(out)?;
    }
    if opts.pull && !matches!(location, Location::Daemon(_)) {
        return Err(Error::usage(format!("--pull: applies to a docker-daemon: base; {location} is read directly")));
    }
    let walk = |sources: Vec<LayerSource>| -> Result<Vec<(LayerSource, Vec<SourceEntry>)>> {
        sources.into_iter().map(|s| layer::walk(&s.dir, &s.label).map(|e| (s, e))).collect()
    };
    let walked = walk(config.layer_sources(opts.bake_keystores)?)?;
    let mut variant_walks = Vec::new();
    for v in &config.variants {
        variant_walks.push(walk(config.variant_sources(v, opts.bake_keystores)?)?);
    }
    let has_keystores = |w: &[(LayerSource, Vec<SourceEntry>)]| {
        w.iter()
            .any(|(s, e)| s.kind == LayerKind::Keystores && e.iter().any(|e| !matches!(e.kind, layer::SourceKind::Dir)))
    };
    let keystores_baked = has_keystores(&walked) || variant_walks.iter().any(|w| has_keystores(w));
    if keystores_baked && !opts.allow_public_keystores {
        for out in &outputs {
            if let Location::Registry(r) = out {
                if r.is_docker_hub() || config.target.public_registries.iter().any(|h| h == &r.registry) {
                    return Err(Error::usage(format!(
                        "{out}: refusing to push baked keystores to {}, a public registry; mount the keystores at run time, or pass --allow-public-keystores",
                        r.registry
                    )));
                }
            }
        }
    }
    let checked = wso2::checks::check(&walked)?;
    for w in &variant_walks {
        let both: Vec<(LayerSource, Vec<SourceEntry>)> = walked.iter().cloned().chain(w.iter().cloned()).collect();
        wso2::checks::check(&both)?;
    }
    let needs_daemon = outputs.iter().any(|o| through_daemon(o, opts.via)) || opts.pull;
    let daemon = if needs_daemon { Some(Daemon::connect()?) } else { None };
    let registries = Registries::new(opts.registry.clone());
    if let (true, Location::Daemon(r), Some(d)) = (opts.pull, &location, &daemon) {
        d.pull(r, log)?;
    }
    let mut base = transport::open_base(&location, &rel_dir, &registries)?;
    let lock = crate::lock::check(&config, opts.base.as_ref(), &base, opts.locked)?;
    base.select_platforms(&opts.platforms)?;
    let mtime = opts.source_date_epoch.unwrap_or(DEFAULT_MTIME).max(0) as u64;
    let owner = config.owner()?;
    let mut specs: Vec<LayerSpec> = Vec::new();
    let mut intern = |spec: LayerSpec| match specs.iter().position(|s| *s == spec) {
        Some(id) => id,
        None => {
            specs.push(spec);
            specs.len() - 1
        }
    };
    let mut products: Vec<Product> = std::iter::once(None)
        .chain(config.variants.iter().cloned().map(Some))
        .map(|variant| Product { variant, platforms: Vec::new() })
        .collect();
    for (i, img) in base.images.iter().enumerate() {
        let facts = wso2::detect(&img.config_json, owner, &mut transport::LayerFs(img))
            .map_err(|e| e.context(format!("{} ({})", base.location, img.platform)))?;
        let mut ids = Vec::new();
        for (src, entries) in &walked {
            let spec = layer_spec(src.kind, &src.label, entries, &facts, mtime, None)?;
            if !spec.is_empty() {
                ids.push(intern(spec));
            }
        }
        for (v, w) in config.variants.iter().zip(&variant_walks) {
            let allowed = wso2::profiles(facts.version.as_deref());
            if !allowed.contains(&v.profile.as_str()) {
                return Err(Error::config(format!(
                    "{}: [[variant]] {}: profile `{}` is not a profile of API Manager {} (use one of {})",
                    config.path.display(),
                    v.name,
                    v.profile,
                    facts.version.as_deref().unwrap_or("(unknown version)"),
                    allowed.join(", ")
                )));
            }
            let mut vids = ids.clone();
            for (src, entries) in w {
                let spec = layer_spec(src.kind, &src.label, entries, &facts, mtime, Some(&v.name))?;
                if !spec.is_empty() {
                    vids.push(intern(spec));
                }
            }
            let product = products
                .iter_mut()
                .find(|p| p.variant.as_ref().is_some_and(|pv| pv.name == v.name))
                .expect("variant product");
            product.platforms.push(PlatformPrep { image: i, facts: facts.clone(), layers: vids });
        }
        products[0].platforms.push(PlatformPrep { image: i, facts, layers: ids });
    }
    let mut labels = config.image.labels.clone();
    labels.insert(BASE_NAME.into(), base.name.clone());
    if let Some(d) = base.digest {
        labels.insert(BASE_DIGEST.into(), d.to_string());
    }
    if keystores_baked {
        labels.insert(KEYSTORES_LABEL.into(), "baked".into());
        log("keystores are baked into the image (label io.wso2img.keystores=baked); keep it in a private registry");
    }
    log(&format!(
        "base {} ({}, {} platform{})",
        base.name,
        base.images.iter().map(|i| i.platform.to_string()).collect::<Vec<_>>().join(", "),
        base.images.len(),
        if base.images.len() == 1 { "" } else { "s" }
    ));
    let created = opts.source_date_epoch.map(mutate::rfc3339);
    if let Some(l) = lock {
        l.save(log)?;
    }
    Ok(Prepared {
        registries,
        daemon,
        outputs,
        config,
        base,
        specs,
        products,
        labels,
        created,
        checked,
        keystores_baked,
    })
}

/// Where a file of a customer folder goes in the image (`None`: nowhere,
/// e.g. the portal folders of `themes/` themselves).
fn destination(kind: LayerKind, rel: &str, facts: &Facts) -> Result<Option<String>> {
    match kind {
        LayerKind::Themes => wso2::theme_destination(facts, rel),
        LayerKind::Overlays => Ok(Some(format!("{}/{rel}", facts.product_home))),
        k => Ok(Some(format!("{}/{}/{rel}", facts.product_home, wso2::kind_root(k)))),
    }
}

/// Builds the layer of one kind for one base's facts (and a variant's extra folder).
fn layer_spec(
    kind: LayerKind,
    label: &str,
    entries: &[SourceEntry],
    facts: &Facts,
    mtime: u64,
    variant: Option<&str>,
) -> Result<LayerSpec> {
    let name = match variant {
        Some(v) => format!("{v}:{}", kind.name()),
        None => kind.name().to_string(),
    };
    let mut spec = LayerSpec::new(&name, mtime);
    let placement = Placement {
        owner: facts.owner,
        owned_root: facts.user_home.clone(),
        file_mode: (kind == LayerKind::Keystores).then_some(0o640),
    };
    let root = match kind {
        LayerKind::Overlays => facts.product_home.clone(),
        k => format!("{}/{}", facts.product_home, wso2::kind_root(k)),
    };
    for e in entries {
        let Some(dest) = destination(kind, &e.rel, facts)? else { continue };
        spec.add(&dest, e, &placement).map_err(|err| err.context(label))?;
    }
    spec.description = format!(
        "wso2img {}: {} file{} from {label}/ into {root} (owner {})",
        name,
        spec.file_count(),
        if spec.file_count() == 1 { "" } else { "s" },
        facts.owner
    );
    Ok(spec)
}

fn check_output(out: &Location) -> Result<()> {
    match out {
        Location::Oci { dir, .. } => {
            if dir.exists() && !dir.is_dir() {
                return Err(Error::usage(format!("{out}: {} exists and is not a folder", dir.display())));
            }
            let index = dir.join("index.json");
            if index.exists() {
                let bytes = std::fs::read(&index).map_err(|e| Error::io("reading", &index, e))?;
                serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|_| {
                    Error::usage(format!(
                        "{out}: {} is not valid JSON; move it away or pick another folder",
                        index.display()
                    ))
                })?;
            }
            Ok(())
        }
        Location::DockerArchive { path, .. } => {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            if !parent.is_dir() {
                return Err(Error::usage(format!(
                    "{out}: folder {} does not exist; create it first",
                    parent.display()
                )));
            }
            if path.is_dir() {
                return Err(Error::usage(format!("{out}: {} is a folder; name a file", path.display())));
            }
            Ok(())
        }
        Location::Registry(r) => match r.digest {
            Some(_) => Err(Error::usage(format!("{out}: a destination takes a tag, not a digest"))),
            None => Ok(()),
        },
        Location::Daemon(_) => Ok(()),
        Location::Builtin(_) => {
            Err(Error::usage(format!("{out}: builtin: is a source only; pick oci:DIR or docker-archive:FILE")))
        }
    }
}

/// A product's per-platform configs, content digest and tags, from the
/// layers' diff_ids.
fn compose(p: &Prepared, product: &Product, diff_ids: &[Digest]) -> Result<Composed> {
    let mut configs = Vec::new();
    for plat in &product.platforms {
        let img = &p.base.images[plat.image];
        let mut volumes: Vec<String> =
            p.config.image.volumes.iter().map(|v| wso2::volume_path(&plat.facts, v)).collect();
        volumes.sort();
        volumes.dedup();
        let mut labels = p.labels.clone();
        if let Some(v) = &product.variant {
            labels.insert(VARIANT_LABEL.into(), v.name.clone());
            labels.insert(PROFILE_LABEL.into(), v.profile.clone());
        }
        let changes = ConfigChanges {
            layers: plat
                .layers
                .iter()
                .map(|&i| AppendedLayer { diff_id: diff_ids[i], created_by: p.specs[i].description.clone() })
                .collect(),
            labels,
            env: p.config.image.env.clone(),
            volumes,
            created: p.created.clone(),
            cmd: product.variant.as_ref().map(|v| vec![format!("-Dprofile={}", v.profile)]),
        };
        configs.push(mutate::apply_config(&img.config, &changes)?);
    }
    let content = if configs.len() == 1 {
        Digest::of(&configs[0])
    } else {
        let entries: Vec<(Platform, Digest)> = product
            .platforms
            .iter()
            .zip(&configs)
            .map(|(pl, c)| (p.base.images[pl.image].platform.clone(), Digest::of(c)))
            .collect();
        mutate::multi_platform_content_digest(&entries)
    };
    let tags = tags(p, product, &content)?;
    Ok(Composed { configs, content, tags })
}

fn tags(p: &Prepared, product: &Product, content: &Digest) -> Result<Vec<String>> {
    let hex = content.hex();
    let version = product.platforms[0].facts.version.as_deref();
    let mut v = TagValues { base_tag: &p.base.tag, digest_hex: &hex, version, variant: None };
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
            platform: p.base.images[pl.image].platform.to_string(),
            config_digest: Digest::of(cfg),
            manifest_digest: None,
            detected: pl.facts.clone(),
            layers: pl.layers.clone(),
        })
        .collect()
}

fn report(p: &Prepared, composed: &[Composed], layers: Vec<LayerReport>) -> Report {
    let main = &composed[0];
    Report {
        content_digest: main.content,
        tag: main.tags[0].clone(),
        tags: main.tags.clone(),
        base: BaseReport {
            location: p.base.location.to_string(),
            name: p.base.name.clone(),
            digest: p.base.digest,
            media_types: p.base.family,
        },
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
                    content_digest: c.content,
                    tag: c.tags[0].clone(),
                    platforms: platform_reports(p, prod, c),
                    outputs: Vec::new(),
                }
            })
            .collect(),
    }
}

fn compose_all(p: &Prepared, diff_ids: &[Digest]) -> Result<Vec<Composed>> {
    p.products.iter().map(|prod| compose(p, prod, diff_ids)).collect()
}

/// Computes what `build` would produce (content digest, tag, layers, variants)
/// without compressing anything or writing anywhere.
pub fn plan(opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Report> {
    let p = prepare(opts, log)?;
    let layers = hash_layers(&p)?;
    let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
    let composed = compose_all(&p, &diff_ids)?;
    Ok(report(&p, &composed, layers))
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

/// Where the outputs of product `pi` are reported.
fn output_slot(rep: &mut Report, pi: usize) -> &mut Vec<OutputReport> {
    if pi == 0 {
        &mut rep.outputs
    } else {
        &mut rep.variants[pi - 1].outputs
    }
}

/// The tag a destination names itself (`docker://HOST/REPO:TAG`), added to the
/// main image's tags.
fn out_tag(out: &Location) -> Option<String> {
    match out {
        Location::Registry(r) | Location::Daemon(r) => r.tag.clone(),
        _ => None,
    }
}

/// The repository naming images in a docker-archive: `[target] repository`,
/// else `localhost/<base repository's last part>`.
fn archive_repo(p: &Prepared) -> Result<Option<Reference>> {
    if let Some(r) = &p.config.target.repository {
        return Reference::parse(r).map(Some);
    }
    let last = p
        .base
        .name
        .parse::<Reference>()
        .ok()
        .and_then(|r| r.repository.rsplit('/').next().map(str::to_string))
        .unwrap_or_else(|| "wso2am".into());
    Reference::parse(&format!("localhost/{last}")).map(Some)
}

/// Whether a registry or daemon destination already holds product `c`
/// (checked before anything is compressed); refuses to move a content tag
/// that names different content unless `--force`.
fn already_there(
    p: &Prepared,
    opts: &Options,
    out: &Location,
    prod: &Product,
    c: &Composed,
    main: bool,
    log: &mut dyn FnMut(&str),
) -> Result<Option<Digest>> {
    let r = match out {
        Location::Registry(r) if opts.via == Via::Registry => r,
        Location::Daemon(r) => {
            let platforms: Vec<&Platform> = prod.platforms.iter().map(|pl| &p.base.images[pl.image].platform).collect();
            let id = Digest::of(&c.configs[pick_index(&platforms, &opts.platforms, "the Docker daemon")?]);
            let d = daemon_of(p)?;
            if d.image_id(&id.to_string())?.is_some() {
                let mut tags = c.tags.clone();
                tags.extend(if main { r.tag.clone() } else { None }.filter(|t| !c.tags.contains(t)));
                d.tag_all(&id.to_string(), &daemon_tags(r, &tags))?;
                log(&format!("{out}: the daemon already has {} ({id}); nothing to load", c.tags[0]));
                return Ok(Some(id));
            }
            return Ok(None);
        }
        _ => return Ok(None),
    };
    match push::tag_state(&p.registries, r, &c.tags[0], &c.content)? {
        TagState::Same(top) => {
            let extra: Vec<String> = c.tags[1..].iter().cloned().chain(if main { r.tag.clone() } else { None }).collect();
            push::retag_missing(&p.registries, r, &top, &extra)?;
            log(&format!("{out}: {} already holds this content ({top}); nothing to push", c.tags[0]));
            Ok(Some(top))
        }
        TagState::Different(top) if !opts.force => Err(Error::new(
            crate::error::Kind::Source,
            format!(
                "{}:{} already names different content ({top}); tags are immutable here — change [target] tag or pass --force",
                r.name(),
                c.tags[0]
            ),
        )),
        _ => Ok(None),
    }
}

/// Writes the CycloneDX SBOM of the main image when `--sbom` asks for it.
fn write_sbom(p: &Prepared, opts: &Options, rep: &Report) -> Result<()> {
    let Some(path) = &opts.sbom else { return Ok(()) };
    let facts = &p.main().platforms[0].facts;
    let mut placed = Vec::new();
    for f in &p.checked {
        if let Some(dest) = destination(f.kind, &f.rel, facts)? {
            placed.push(sbom::Placed { file: f, dest });
        }
    }
    let name = p.config.target.repository.clone().unwrap_or_else(|| "wso2img-image".into());
    let subject = sbom::Subject {
        name: &name,
        tag: &rep.tag,
        content_digest: &rep.content_digest,
        base_name: &p.base.name,
        base_digest: p.base.digest.as_ref(),
    };
    let bytes = sbom::cyclonedx(&subject, &placed)?;
    oci::write_atomic(path, &bytes)?;
    Ok(())
}

fn hash_layers(p: &Prepared) -> Result<Vec<LayerReport>> {
    p.specs
        .iter()
        .map(|spec| {
            let t = layer::diff_id(spec)?;
            Ok(LayerReport {
                name: spec.name.clone(),
                diff_id: t.diff_id,
                files: spec.file_count(),
                bytes: spec.content_bytes(),
                tar_size: t.size,
                digest: None,
                size: None,
                description: spec.description.clone(),
            })
        })
        .collect()
}

/// Whether a destination is reached through the Docker daemon.
fn through_daemon(out: &Location, via: Via) -> bool {
    matches!(out, Location::Daemon(_)) || (via == Via::Docker && matches!(out, Location::Registry(_)))
}

fn daemon_of(p: &Prepared) -> Result<&Daemon> {
    p.daemon.as_ref().ok_or_else(|| Error::new(crate::error::Kind::Io, "the Docker daemon was not connected"))
}

/// The daemon tags of a destination: the content tag, the extra tags and
/// the destination's own tag.
fn daemon_tags(r: &Reference, tags: &[String]) -> Vec<Reference> {
    let mut all: Vec<String> = tags.to_vec();
    all.extend(r.tag.clone().filter(|t| !tags.contains(t)));
    all.iter().map(|t| r.with_tag(t)).collect()
}

/// Daemon images that may share the base layers: the base itself.
fn daemon_hints(p: &Prepared) -> Vec<String> {
    let mut hints = Vec::new();
    if let Location::Daemon(r) = &p.base.location {
        hints.push(daemon::daemon_name(r));
    }
    if let Ok(r) = Reference::parse(&p.base.name) {
        hints.push(daemon::daemon_name(&r));
    }
    hints
}

/// `--via docker`: loads the image into the daemon, tags it in `r`'s
/// repository and has the daemon push every tag. Returns the manifest digest
/// the daemon pushed for the content tag.
fn push_via_daemon(
    p: &Prepared,
    set: &ImageSet,
    r: &Reference,
    tags: &[String],
    filter: &[Platform],
    log: &mut dyn FnMut(&str),
) -> Result<Digest> {
    let d = daemon_of(p)?;
    let image = pick_platform(set, filter, "the Docker daemon")?;
    if set.images.len() > 1 {
        log(&format!("docker://{r}: the Docker daemon holds one platform; pushing {} only", image.platform));
    }
    let refs = daemon_tags(r, tags);
    let loaded = d.load(image, &refs, &daemon_hints(p), log)?;
    let mut pushed = None;
    for t in &refs {
        let digest = d.push(t, log)?;
        pushed.get_or_insert(digest);
    }
    let digest = pushed.ok_or_else(|| Error::usage(format!("docker://{r}: no tag to push")))?;
    log(&format!(
        "docker://{r}: the daemon compressed the layers itself, so the manifest ({digest}) differs from a direct push; the image ID {} is the same",
        loaded.id
    ));
    Ok(digest)
}

fn pick_platform<'a>(set: &'a ImageSet, filter: &[Platform], what: &str) -> Result<&'a Image> {
    let platforms: Vec<&Platform> = set.images.iter().map(|i| &i.platform).collect();
    Ok(&set.images[pick_index(&platforms, filter, what)?])
}

/// The platform a one-platform destination (`what`) takes: the only one, the
/// first `--platform`, else the host's.
fn pick_index(platforms: &[&Platform], filter: &[Platform], what: &str) -> Result<usize> {
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
