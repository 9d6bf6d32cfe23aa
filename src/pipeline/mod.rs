//! Plan and build: the pipeline from `wso2img.toml` to written images, one
//! stage after the other, each a module that imports only earlier ones.
//!
//! ```text
//! project    config → base location, destinations checked, verify key
//! inputs     customer folders walked and checked, Maven jars resolved
//!            (while the base is read and registries are asked whether
//!            they are empty)
//! bases      every base, checked against the lock, signatures verified
//! plan       layer specs per platform (shared when equal; an unchanged
//!            folder's from the plan memo, planned in full only when its
//!            bytes are needed)
//! keystores  baked or not, refused where they must not go
//! layers     diff_ids, without compressing (a cold build, whose
//!            destinations surely hold nothing, compresses in the same pass
//!            and starts uploading at once); later, only what a destination
//!            still needs is compressed
//! image      configs → content digests → tags (checked for collisions);
//!            manifests and indexes in each destination's media types
//! publish    every destination asked what it holds, then written
//! supply     signatures and attestations of what was pushed
//! ```
//! The content digest depends only on uncompressed content, so `plan` and
//! `build` always agree and a compressor change can never move a tag. The
//! digest cache is saved once, when a run ends.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cache::Cache;
use crate::error::Result;
use crate::image::Platform;
use crate::reference::Location;
use crate::sign::SigningKey;
use crate::transport::{registry, Connections};

mod bases;
mod image;
mod inputs;
mod keystores;
mod layers;
mod memo;
mod plan;
mod profile;
mod project;
mod publish;
mod report;
mod sbom;
mod supply;
#[cfg(test)]
mod tests;

pub use crate::transport::Via;
pub use report::*;

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
    /// The file `sign_key` was read from (refused inside a customer folder).
    pub sign_key_file: Option<PathBuf>,
    /// Files the caller writes after the build (`--digest-file`,
    /// `--metadata-file`), as named to the user: checked with the outputs.
    pub output_files: Vec<(String, PathBuf)>,
    /// `--verify-base-key`: check the base's signature with this public key
    /// (instead of `[base] verify_key`).
    pub verify_base_key: Option<PathBuf>,
    /// `--no-cache`: neither read nor write the digest cache ([`crate::cache`]).
    pub no_cache: bool,
}

/// The default output folder, relative to the config file.
pub const DEFAULT_OUTPUT: &str = "out";

/// Label naming the variant of a variant image.
pub const VARIANT_LABEL: &str = "io.wso2img.variant";
/// Label naming the deployment profile of a variant image.
pub const PROFILE_LABEL: &str = "io.wso2img.profile";

/// Computes what `build` would produce (content digest, tag, layers, variants)
/// without compressing anything or writing anywhere.
pub fn plan(opts: &Options) -> Result<Report> {
    // Opened first: its stamp must precede every `stat` the walk takes.
    let cache = layers::open_cache(opts.no_cache, &opts.config);
    let report = plan_with(opts, &cache);
    cache.save();
    report
}

fn plan_with(opts: &Options, cache: &Cache) -> Result<Report> {
    let mut run = Run::prepare(opts, cache, false)?;
    let (mut hashed, settled) = run.hash_settling(cache)?;
    let lock = run.lock.take();
    let images =
        image::Composing { project: &run.project, plan: &run.plan, bases: &run.bases, labels: &settled.labels };
    let composed = images.compose_all(&hashed.diff_ids())?;
    images.check_collisions(&composed)?;
    if let Some(l) = lock {
        l.save()?;
    }
    let report = images.report(&run.inputs, settled.baked, &composed, std::mem::take(&mut hashed.reports));
    run.free(hashed);
    Ok(report)
}

/// Runs every input check `plan` and `build` run — ignore rules, configuration
/// files, jars (Maven jars resolved and verified), keystores, themes against
/// the base's version — reading only the base's manifests and configs, and
/// writing nothing (not even the lock or the digest cache).
pub fn check(opts: &Options) -> Result<CheckReport> {
    let opts = Options { outputs: Vec::new(), push: false, pull: false, sbom: None, sign_key: None, ..opts.clone() };
    let cache = layers::open_cache(opts.no_cache, &opts.config);
    let mut run = Run::prepare(&opts, &cache, false)?;
    if run.inputs.keystores.is_some() {
        keystores::settle(&mut run.inputs, &run.project, None, &|_, _| 0, &cache)?;
    }
    let inputs = &run.inputs;
    Ok(CheckReport {
        base: run.bases.main().name.clone(),
        files: inputs.files,
        jars: inputs.checked.iter().filter(|f| f.coords.is_some()).count(),
        config_files: inputs.gathered.config_files,
        ignored: image::ignored_report(inputs),
        maven: image::maven_report(inputs),
        warnings: inputs.gathered.warnings.clone(),
    })
}

/// Builds the image (and its variants) and writes them to every destination.
pub fn build(opts: &Options) -> Result<Report> {
    let cache = Arc::new(layers::open_cache(opts.no_cache, &opts.config));
    let report = build_with(opts, &cache);
    cache.save();
    report
}

fn build_with(opts: &Options, cache: &Arc<Cache>) -> Result<Report> {
    let mut run = Run::prepare(opts, cache, true)?;
    let mut dests = publish::open(opts, &run.project, &run.bases, &run.connections, cache, &run.early)?;
    let (mut hashed, settled) = if dests.surely_empty() {
        // A cold build: every layer will be needed, so each is compressed
        // as it is hashed and its upload starts right away. Its uploads
        // start before the last layer is hashed: the keystore questions are
        // settled first.
        let settled = run.settle_keystores(None, &[], cache)?;
        let nothing = dests.nothing_held(&run.plan);
        let (plan, bases) = (&run.plan, &run.bases);
        let offer = &mut |i: usize, c: &crate::layer::CompressedLayer| dests.offer(plan, bases, &nothing, i, c);
        let hashed = layers::hash_compressing(&run.layering(cache), offer)?;
        run.release_walks();
        (hashed, settled)
    } else {
        run.hash_settling(cache)?
    };
    let lock = run.lock.take();
    let images =
        image::Composing { project: &run.project, plan: &run.plan, bases: &run.bases, labels: &settled.labels };
    let composed = images.compose_all(&hashed.diff_ids())?;
    images.check_collisions(&composed)?;
    if let Some(l) = lock {
        l.save()?;
    }
    let planned = images.planned(&composed);
    let held = dests.ask(&planned)?;
    let need = dests.needs(&run.plan, &run.bases, &held, &hashed, cache)?;
    let (plan, bases) = (&run.plan, &run.bases);
    let offer = &mut |i: usize, c: &crate::layer::CompressedLayer| dests.offer(plan, bases, &held, i, c);
    let compressed = layers::compress(&run.layering(cache), &need, &mut hashed, &run.bases, offer)?;
    release_walks(&mut run.inputs, &run.plan, run.keep_walks);
    let mut rep = images.report(&run.inputs, settled.baked, &composed, compressed.reports(&hashed.reports));
    images.report_manifests(&mut rep, &composed, &compressed, dests.reported_family(&run.bases));
    dests.write(&images, &planned, &held, &composed, &compressed, &mut rep)?;
    let sbom = match opts.sbom.is_some() || opts.sign_key.is_some() {
        true => Some(sbom::bytes(&run.project, &run.plan, &run.bases, &run.inputs, &rep)?),
        false => None,
    };
    if let Some(key) = &opts.sign_key {
        let signing = supply::Signing {
            project: &run.project,
            inputs: &run.inputs,
            bases: &run.bases,
            plan: &run.plan,
            keystores_baked: settled.baked,
            connections: &run.connections,
            sbom: sbom.as_deref(),
        };
        signing.sign_pushed(key, &planned, &mut rep)?;
    }
    // The staged layers go first: they share inodes with the blobs just
    // written, whose keys the cache takes when it saves.
    drop(compressed);
    rep.uploaded_bytes = Some(run.connections.registries.uploaded_bytes());
    sbom::write(opts, sbom.as_deref())?;
    drop(dests);
    run.free(hashed);
    Ok(rep)
}

/// `wso2img update`: resolves every base again (the main one and the
/// variants' own) and records those that moved in `wso2img.lock`.
pub fn update(opts: &Options) -> Result<Vec<crate::lock::Comparison>> {
    let (config, bases) = resolve_bases(opts)?;
    crate::lock::update(&config, &bases.iter().map(|(w, b)| (w.clone(), b)).collect::<Vec<_>>())
}

/// `wso2img outdated`: resolves every base again and compares each with
/// `wso2img.lock`, writing nothing.
pub fn outdated(opts: &Options) -> Result<Vec<crate::lock::Comparison>> {
    let (config, bases) = resolve_bases(opts)?;
    crate::lock::outdated(&config, &bases.iter().map(|(w, b)| (w.clone(), b)).collect::<Vec<_>>())
}

/// The config and every base read again with its location as written: the
/// main base first, then each `[[variant]]`'s own base (each once).
fn resolve_bases(opts: &Options) -> Result<(crate::config::Config, Vec<(String, crate::transport::Base)>)> {
    let config = crate::config::Config::load(&opts.config)?;
    let (location, dir) = config.base_location(opts.base.as_ref())?;
    let connections = Connections::new(opts.registry.clone());
    let main = crate::transport::open_base(&location, &dir, &connections)?;
    let mut bases = vec![(crate::lock::written_location(&config, opts.base.as_ref()), main)];
    for v in &config.variants {
        let Some(w) = v.base.as_ref().filter(|w| !bases.iter().any(|(x, _)| x == *w)) else { continue };
        let shown = format!("{}: [[variant]] {}", config.path.display(), v.name);
        let location: Location = w.parse().map_err(|e: crate::error::Error| e.context(&shown))?;
        let base = crate::transport::open_base(&location, &config.dir, &connections)?;
        bases.push((w.clone(), base));
    }
    Ok((config, bases))
}

/// One run's stages up to the plan: the project, the connections, the
/// inputs, the bases, the plan, the lock refresh and the early answers of
/// the destinations.
struct Run {
    project: project::Project,
    connections: Connections,
    inputs: inputs::Inputs,
    bases: bases::Bases,
    plan: plan::Plan,
    lock: Option<crate::lock::Pending>,
    /// Per output: what it answered while the folders were walked
    /// (whether it is empty, what its tag names).
    early: Vec<Option<crate::transport::destination::Early>>,
    /// Every input file will be listed (SBOM, provenance): keep the walks.
    keep_walks: bool,
    /// The keystore questions, when they were settled before hashing.
    settled: Option<keystores::Settled>,
}

impl Run {
    /// Loads the project, walks and checks the inputs, opens the bases and
    /// plans the layers. With `asks_outputs` (a build), the registry outputs
    /// are asked whether they are empty while the folders are walked.
    fn prepare(opts: &Options, cache: &Cache, asks_outputs: bool) -> Result<Run> {
        let started = std::time::Instant::now();
        let project = project::load(opts)?;
        let connections = Connections::new(opts.registry.clone());
        // The base is read, and the registry outputs asked whether they are
        // empty, while the folders are walked (unless the daemon must pull
        // the base first); the walk's errors still come first.
        let (gathered, opened, early) = std::thread::scope(|scope| {
            let opening = (!opts.pull)
                .then(|| scope.spawn(|| crate::transport::open_base(&project.base, &project.base_dir, &connections)));
            let asking = asks_outputs.then(|| scope.spawn(|| publish::ask_early(opts, &project, &connections)));
            let gathered = inputs::gather(opts, &project.config, cache);
            let opened = opening.map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            let early = asking.map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            (gathered, opened, early.unwrap_or_default())
        });
        let mut inputs = gathered?;
        let walked = started.elapsed().as_secs_f64();
        // A folder no note answered is inspected once its files are read (by
        // hashing, most often) — unless the answer may refuse a public
        // destination, which must be before any request; otherwise the
        // keystores are settled here.
        let questions = inputs.keystores.as_ref().expect("open questions");
        let settled = match questions.pending() && !questions.may_refuse(&project) {
            true => None,
            false => Some(keystores::settle(&mut inputs, &project, None, &|_, _| 0, cache)?),
        };
        if publish::needs_daemon(opts, &project) || opts.pull {
            connections.daemon()?;
        }
        if let (true, Some(r)) = (opts.pull, crate::transport::of(&project.base).daemon_image()) {
            connections.daemon()?.pull(&r)?;
        }
        let main = match opened {
            Some(opened) => opened?,
            None => crate::transport::open_base(&project.base, &project.base_dir, &connections)?,
        };
        let (bases, lock) = bases::complete(opts, &project, &connections, main, &inputs)?;
        let planning = std::time::Instant::now();
        let plan = plan::plan(opts, &project.config, &bases, &inputs, cache)?;
        let lock = if opts.locked {
            if !plan.learnt_folders.is_empty() {
                crate::progress::message(&format!(
                    "{}: records no folder modes for this base; they were read from its layers (a build without --locked records them, so that CI needs no base layer)",
                    crate::lock::path_for(&project.config.path).display()
                ));
            }
            lock
        } else {
            crate::lock::record_folders(&project.config, lock, &plan.learnt_folders)?
        };
        if let Some(shown) = &plan.truststore_key {
            let bakes = project.config.bakes_keystores(opts.bake_keystores);
            keystores::check_truststore_key(&project, bakes, opts.allow_public_keystores, shown)?;
        }
        crate::progress::detail(&format!(
            "inputs: {} files walked and checked in {walked:.3} s; {} layers planned in {:.3} s ({} from the plan memo)",
            inputs.files,
            plan.layers.len(),
            planning.elapsed().as_secs_f64(),
            plan.layers.iter().filter(|l| l.is_memo()).count()
        ));
        let keep_walks = opts.sbom.is_some() || opts.sign_key.is_some();
        let mut run = Run { project, connections, inputs, bases, plan, lock, early, keep_walks, settled };
        run.release_walks();
        for base in &run.bases.list {
            crate::progress::message(&format!(
                "base {} ({}, {} platform{})",
                base.name,
                base.images.iter().map(|i| i.platform.to_string()).collect::<Vec<_>>().join(", "),
                base.images.len(),
                if base.images.len() == 1 { "" } else { "s" }
            ));
        }
        Ok(run)
    }

    /// What making layers reads.
    fn layering<'a>(&'a self, cache: &'a Cache) -> layers::Layering<'a> {
        layers::Layering {
            plan: &self.plan,
            inputs: &self.inputs,
            cache,
            staging: layers::staging_parent(&self.project.outputs),
        }
    }

    /// See [`release_walks`].
    fn release_walks(&mut self) {
        release_walks(&mut self.inputs, &self.plan, self.keep_walks);
    }

    /// Settles the keystore questions (see [`keystores::settle`]) unless
    /// that was done before hashing; `seen` holds what hashing recognised in
    /// the layers `hashed`.
    fn settle_keystores(
        &mut self,
        seen: Option<&crate::wso2::keystore::Seen>,
        hashed: &[usize],
        cache: &Cache,
    ) -> Result<keystores::Settled> {
        let key = self.plan.truststore_key.is_some();
        if let Some(s) = self.settled.take() {
            return Ok(keystores::with_truststore_key(s, &self.project, key));
        }
        let plan = &self.plan;
        let read = |walk: Option<usize>, folder: usize| plan.files_read(walk, folder, hashed);
        let settled = keystores::settle(&mut self.inputs, &self.project, seen, &read, cache);
        self.release_walks();
        settled.map(|s| keystores::with_truststore_key(s, &self.project, key))
    }

    /// Hashes the layers, then settles the keystore questions with what
    /// hashing read.
    fn hash_settling(&mut self, cache: &Cache) -> Result<(layers::Hashed, keystores::Settled)> {
        let seen = crate::wso2::keystore::Seen::default();
        let pending = self.settled.is_none();
        let hashed = layers::hash(&self.layering(cache), pending.then_some(&seen))?;
        let settled = self.settle_keystores(Some(&seen), &hashed.hashed, cache)?;
        Ok((hashed, settled))
    }

    /// Frees the run's per-file structures on another thread: tens of
    /// thousands of small allocations take tens of milliseconds to free,
    /// and nothing waits for them. What has to be released in order (the
    /// base files extracted for planning, connections) is dropped here.
    fn free(self, hashed: layers::Hashed) {
        let Run { inputs, mut plan, .. } = self;
        free_later((inputs, std::mem::take(&mut plan.layers), hashed.into_stats()));
    }
}

/// Lets the walked folders go once nothing needs them: every input is not
/// to be listed (`keep` off), every layer has its full spec and the keystores
/// are settled.
fn release_walks(inputs: &mut inputs::Inputs, plan: &plan::Plan, keep: bool) {
    if !keep && inputs.keystores.is_none() && plan.all_planned() {
        inputs.release();
    }
}

/// Drops `t` on another thread.
fn free_later<T: Send + 'static>(t: T) {
    std::thread::spawn(move || drop(t));
}
