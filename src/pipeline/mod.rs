//! Plan and build: the pipeline from `wso2img.toml` to written images.
//!
//! ```text
//! prepare   config → outputs checked → customer folders walked and checked
//!           → base → layer specs per platform (shared when equal; an
//!           unchanged folder's from the plan memo, planned in full only
//!           when its bytes are needed)
//! hash      diff_ids, without compressing (a cold build, whose destinations
//!           surely hold nothing, compresses in the same pass and starts
//!           uploading at once)
//! compose   configs → content digests → tags (checked for collisions)
//! ask       every destination: which images do you hold already?
//! compress  only the layers some destination still needs
//! assemble  manifests/index in the media types each destination stores
//! write     each destination, then finish
//! ```
//! The content digest depends only on uncompressed content, so `plan` and
//! `build` always agree and a compressor change can never move a tag.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::digest::Digest;
use crate::error::Result;
use crate::image::{MediaFamily, Platform};
use crate::reference::Location;
use crate::sign::SigningKey;
use crate::transport::registry;
use crate::transport::Destination;
use crate::wso2::Facts;

mod assemble;
mod compose;
mod layers;
mod memo;
mod outputs;
mod prepare;
mod supply;

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
    /// `--sign-key`: sign every image pushed to a registry and attach its
    /// SBOM and provenance (loaded and checked before anything is pushed).
    pub sign_key: Option<Arc<SigningKey>>,
    /// `--verify-base-key`: check the base's signature with this public key
    /// (instead of `[base] verify_key`).
    pub verify_base_key: Option<PathBuf>,
    /// `--no-cache`: neither read nor write the digest cache ([`crate::cache`]).
    pub no_cache: bool,
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
    /// Jars resolved from `[maven]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub maven: Vec<MavenReport>,
}

/// A jar resolved from `[maven]`.
#[derive(Debug, Clone, Serialize)]
pub struct MavenReport {
    /// `group:artifact:version`.
    pub coordinates: String,
    /// Its package URL.
    pub purl: String,
    /// Its sha256, as pinned in the lock.
    pub sha256: Digest,
    /// The layer it joins: `jars` or `dropins`.
    pub layer: String,
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
    /// Jars resolved from `[maven]`.
    pub maven: Vec<MavenReport>,
    /// Doubts that are not errors.
    pub warnings: Vec<String>,
}

/// A deployment-profile variant in a report.
#[derive(Debug, Clone, Serialize)]
pub struct VariantReport {
    /// The variant's name.
    pub name: String,
    /// The profile it starts in, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Its own base, when it is not the main base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseReport>,
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
pub fn plan(opts: &Options) -> Result<Report> {
    // Opened first: its stamp must precede every `stat` the walk takes.
    let cache = layers::open_cache(opts.no_cache, &opts.config);
    let mut p = prepare::prepare(opts, &cache, false)?;
    let (layers, stats) = hash_settling(&mut p, &cache)?;
    let composed = compose::compose_all(&p, &layers::diff_ids(&layers))?;
    compose::check_collisions(&p, &composed)?;
    if let Some(l) = p.lock.take() {
        l.save()?;
    }
    let report = compose::report(&p, &composed, layers);
    free_prepared(p, stats);
    Ok(report)
}

/// Runs every input check `plan` and `build` run — ignore rules, configuration
/// files, jars (Maven jars resolved and verified), keystores, themes against
/// the base's version — reading only the base's manifests and configs, and
/// writing nothing (not even the lock).
pub fn check(opts: &Options) -> Result<CheckReport> {
    let opts = Options { outputs: Vec::new(), push: false, pull: false, sbom: None, sign_key: None, ..opts.clone() };
    let cache = layers::open_cache(opts.no_cache, &opts.config);
    let mut p = prepare::prepare(&opts, &cache, false)?;
    p.settle_keystores(None, &[], &cache)?;
    Ok(CheckReport {
        base: p.base().name.clone(),
        files: p.input_files,
        jars: p.checked.iter().filter(|f| f.coords.is_some()).count(),
        config_files: p.gathered.config_files,
        ignored: compose::ignored_report(&p),
        maven: compose::maven_report(&p),
        warnings: p.gathered.warnings.clone(),
    })
}

/// Builds the image (and its variants) and writes them to every destination.
pub fn build(opts: &Options) -> Result<Report> {
    let cache = Arc::new(layers::open_cache(opts.no_cache, &opts.config));
    let mut p = prepare::prepare(opts, &cache, true)?;
    let mut dests = outputs::open(&p, opts, &cache)?;
    let (hashed, mut stats, made) = if outputs::surely_empty(&mut dests) {
        // A cold build: every layer will be needed, so each is compressed
        // as it is hashed and its upload starts right away.
        // Its uploads start before the last layer is hashed: the keystore
        // questions are settled first.
        p.settle_keystores(None, &[], &cache)?;
        let nothing = outputs::nothing_held(&p, &dests);
        let offer = &mut |i: usize, c: &crate::layer::CompressedLayer| outputs::offer(&p, &mut dests, &nothing, i, c);
        let (h, s, c) = layers::hash_compressing(&p, &cache, offer)?;
        (h, s, Some(c))
    } else {
        let (h, s) = hash_settling(&mut p, &cache)?;
        (h, s, None)
    };
    let composed = compose::compose_all(&p, &layers::diff_ids(&hashed))?;
    compose::check_collisions(&p, &composed)?;
    if let Some(l) = p.lock.take() {
        l.save()?;
    }
    let planned = compose::planned(&p, &composed);
    let held = outputs::ask(&mut dests, &planned)?;
    let mut need = outputs::needs(&p, &dests, &held);
    let made_already = |i: usize| made.as_ref().is_some_and(|m| m.has(i));
    outputs::skip_held(&p, &mut dests, &held, &mut need, &layers::diff_ids(&hashed), &cache, made_already)?;
    let offer = &mut |i: usize, c: &crate::layer::CompressedLayer| outputs::offer(&p, &mut dests, &held, i, c);
    let compressed = layers::compress(&p, &need, &hashed, &mut stats, &cache, made, offer)?;
    let mut rep = compose::report(&p, &composed, compressed.reports(&hashed));
    let family = outputs::reported_family(&p, &dests);
    assemble::report_manifests(&mut rep, &p, &composed, &compressed, family);
    for (dest, held) in dests.iter_mut().zip(&held) {
        outputs::write(dest.as_mut(), &p, &planned, held, &composed, &compressed, &mut rep)?;
    }
    for dest in dests.iter_mut() {
        dest.finish()?;
    }
    supply::sign_pushed(&p, opts, &planned, &rep)?;
    // The staged layers go first: they share inodes with the blobs just
    // written, whose keys the cache takes when it saves.
    drop(compressed);
    cache.save();
    rep.uploaded_bytes = Some(p.registries.uploaded_bytes());
    outputs::write_sbom(&p, opts, &rep)?;
    drop(dests);
    free_prepared(p, stats);
    Ok(rep)
}

/// Hashes the layers, settling the keystore questions with what hashing
/// read, and saves the digest cache once — what hashing learnt and the
/// answers, even when a layer or the answers fail the build.
fn hash_settling(p: &mut prepare::Prepared, cache: &crate::cache::Cache) -> Result<(Vec<LayerReport>, layers::Stats)> {
    let seen = crate::wso2::keystore::Seen::default();
    let hashed = layers::hash(p, cache, p.keystores_pending().then_some(&seen));
    let settled = match &hashed {
        Ok((_, _, which)) => p.settle_keystores(Some(&seen), which, cache),
        Err(_) => Ok(()),
    };
    cache.save();
    settled?;
    let (reports, stats, _) = hashed?;
    Ok((reports, stats))
}

/// Frees a run's per-file structures on another thread: tens of thousands
/// of small allocations take tens of milliseconds to free, and nothing
/// waits for them. What has to be released in order (the base's extracted
/// files, connections) is dropped here.
fn free_prepared(p: prepare::Prepared, stats: layers::Stats) {
    let prepare::Prepared { layers, checked, gathered, walks, .. } = p;
    free_later((layers, checked, gathered, walks.into_inner(), stats));
}

/// Drops `t` on another thread.
fn free_later<T: Send + 'static>(t: T) {
    std::thread::spawn(move || drop(t));
}

/// The destinations a build writes, in `--to` order.
pub type Destinations = Vec<Box<dyn Destination>>;
