//! Everything decided before a byte is compressed: the config, the base, the
//! checked customer folders, and one layer spec per kind and platform (shared
//! across platforms and variants when equal).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::memo::{self, Planned, Recipe};
use super::outputs::through_daemon;
use super::{Options, DEFAULT_MTIME, DEFAULT_OUTPUT, KEYSTORES_LABEL};
use crate::cache::Cache;
use crate::config::{expand_tag, Config, LayerKind, LayerSource, TagValues, VariantSection};
use crate::error::{Error, Result};
use crate::image::mutate;
use crate::inputs::{FolderPrint, Inspection};
use crate::layer::{self, split, LayerSpec, Placement, SourceEntry};
use crate::reference::{Location, Reference};
use crate::transport::daemon::Daemon;
use crate::transport::registry::Registries;
use crate::transport::{self, Base};
use crate::wso2::checks::CheckedFile;
use crate::wso2::keystore::Seen;
use crate::wso2::{self, Facts};

pub(super) struct PlatformPrep {
    pub(super) image: usize,
    pub(super) facts: Facts,
    pub(super) layers: Vec<usize>,
}

/// One image to produce: the main customization, or a variant of it.
pub(super) struct Product {
    pub(super) variant: Option<VariantSection>,
    /// Its base, an index into [`Prepared::bases`].
    pub(super) base: usize,
    pub(super) platforms: Vec<PlatformPrep>,
}

pub(super) struct Prepared {
    pub(super) registries: Arc<Registries>,
    pub(super) daemon: Option<Daemon>,
    pub(super) outputs: Vec<Location>,
    pub(super) config: Config,
    /// The main base first, then the variants' own bases (each once).
    pub(super) bases: Vec<Base>,
    /// The customer layers, each planned or from the plan memo ([`Prepared::spec`]).
    pub(super) layers: Vec<Planned>,
    pub(super) products: Vec<Product>,
    /// The labels every image gets, once the keystores are settled.
    pub(super) labels: BTreeMap<String, String>,
    pub(super) created: Option<String>,
    /// How many regular files the main customization has, all checked.
    pub(super) input_files: usize,
    /// Its jars and keystores, as checked ([`Prepared::every_input`] gives every file).
    pub(super) checked: Vec<CheckedFile>,
    /// Keystores are baked (once the keystores are settled).
    pub(super) keystores_baked: bool,
    /// The keystore questions still open ([`Prepared::settle_keystores`]).
    keystores: Option<Keystores>,
    /// The refreshed lock, written once the tags are known to be good.
    pub(super) lock: Option<crate::lock::Pending>,
    pub(super) gathered: Gathered,
    /// The walked folders, main and per variant, for planning memo layers in
    /// full (kept only while some layer from the memo is not planned) and
    /// for listing every input file (kept when `keep_walks`).
    pub(super) walks: std::sync::Mutex<Option<Walks>>,
    /// Every input file will be listed (SBOM, provenance): keep the walks.
    keep_walks: bool,
    /// The mtime of every layer entry.
    pub(super) mtime: u64,
    /// Memo entries to record once the layers' fingerprints are known: the
    /// key, the layers planned, the folder's print.
    pub(super) memo_pending: Vec<(crate::digest::Digest, Vec<usize>, FolderPrint)>,
    /// Which layers came from which walked folder.
    folder_layers: Vec<FolderLayers>,
    /// Base files copied out for the `arbitrary-uid` layer; they live as long as the build.
    pub(super) _extracted: Option<crate::files::TempDir>,
    /// Per output: whether it is a registry repository with no tag yet, when
    /// that was asked while the folders were walked (see [`ask_empty`]).
    pub(super) empty_outputs: Vec<Option<bool>>,
}

/// The walked customer folders: the main ones and each variant's.
pub(super) struct Walks {
    pub(super) main: Vec<(LayerSource, Vec<SourceEntry>)>,
    pub(super) variants: Vec<Vec<(LayerSource, Vec<SourceEntry>)>>,
}

/// What gathering the inputs found besides the files themselves.
pub(super) struct Gathered {
    pub(super) excluded: Vec<crate::layer::ignore::Excluded>,
    pub(super) maven: Vec<crate::inputs::maven::Resolved>,
    pub(super) config_files: usize,
    pub(super) warnings: Vec<String>,
}

impl Prepared {
    pub(super) fn main(&self) -> &Product {
        &self.products[0]
    }
    /// The main base.
    pub(super) fn base(&self) -> &Base {
        &self.bases[0]
    }
    /// The base of product `pi`.
    pub(super) fn base_of(&self, pi: usize) -> &Base {
        &self.bases[self.products[pi].base]
    }

    /// Every regular file of the main customization, in folder order, with
    /// what checking learnt (for the SBOM and the provenance).
    pub(super) fn every_input(&self) -> Vec<CheckedFile> {
        let walks = self.walks.lock().unwrap_or_else(|e| e.into_inner());
        let walks = walks.as_ref().expect("kept when every input is listed");
        crate::wso2::checks::every_file(&walks.main, &self.checked)
    }

    /// Plans the full specs of customer layers `which` (see
    /// [`Prepared::spec`]), freeing the walked folders when they are no
    /// longer needed.
    pub(super) fn plan(&self, which: &[usize], cache: &Cache) -> Result<()> {
        for &i in which {
            self.spec(i, cache)?;
        }
        self.let_walks_go();
        Ok(())
    }

    /// Frees the walked folders once nothing needs them: every input is not
    /// to be listed, every layer has its full spec and the keystores are
    /// settled.
    fn let_walks_go(&self) {
        if !self.keep_walks && self.keystores.is_none() && self.layers.iter().all(|l| l.spec().is_some()) {
            if let Some(w) = self.walks.lock().unwrap_or_else(|e| e.into_inner()).take() {
                super::free_later(w);
            }
        }
    }

    /// The full spec of customer layer `i`: a layer from the plan memo is
    /// planned again — its folder, once for all the folder's layers — and
    /// its fingerprint must be the memo's, else the memo is dropped and the
    /// run fails, naming the layer.
    pub(super) fn spec(&self, i: usize, cache: &Cache) -> Result<&LayerSpec> {
        let l = &self.layers[i];
        if let Some(spec) = l.spec() {
            return Ok(spec);
        }
        let r = l.recipe.as_ref().expect("a layer without a spec came from the memo");
        let walks = self.walks.lock().unwrap_or_else(|e| e.into_inner());
        let walks = walks.as_ref().expect("kept while a layer from the memo is not planned");
        let (src, entries) = match r.walk {
            None => &walks.main[r.folder],
            Some(v) => &walks.variants[v][r.folder],
        };
        let keys = artifact_keys(&self.checked);
        let arbitrary = self.config.image.arbitrary_uid;
        let mut specs =
            layer_specs(src.kind, &keys, &src.label, entries, &r.facts, self.mtime, r.variant.as_deref(), arbitrary)?;
        let same_folder =
            self.layers.iter().filter(|o| o.spec().is_none() && o.recipe.as_ref().is_some_and(|o| o.key == r.key));
        for other in same_folder {
            let at = specs.iter().position(|s| s.name == other.summary.name);
            let spec = at.map(|at| specs.swap_remove(at));
            let keys: Option<Vec<_>> = spec.as_ref().and_then(|s| s.walked_keys().collect::<Option<Vec<_>>>());
            match (spec, keys) {
                (Some(spec), Some(keys)) if spec.fingerprint(&keys) == other.summary.fingerprint => {
                    other.set_spec(spec);
                }
                _ => {
                    cache.drop_note(&r.key);
                    cache.save();
                    return Err(Error::input(format!(
                        "layer {}: planned again, it is not what the plan memo in the digest cache recorded; the memo was dropped — run again, or use --no-cache",
                        other.summary.name
                    )));
                }
            }
        }
        Ok(l.spec().expect("planned above"))
    }
}

/// The artifact key (`group:artifact`) of every checked jar whose Maven
/// coordinates came from its POM, by path.
fn artifact_keys(checked: &[CheckedFile]) -> HashMap<&Path, String> {
    checked
        .iter()
        .filter_map(|f| {
            let c = f.coords.as_ref().filter(|c| c.from_pom)?;
            Some((f.path.as_path(), format!("{}:{}", c.group.as_ref()?, c.artifact)))
        })
        .collect()
}

/// Loads the config, walks and checks the inputs, opens the bases and plans
/// the layers. With `asks_outputs` (a build), the registry outputs are asked
/// whether they are empty while the folders are walked.
pub(super) fn prepare(opts: &Options, cache: &Cache, asks_outputs: bool) -> Result<Prepared> {
    let started = std::time::Instant::now();
    let config = Config::load(&opts.config)?;
    let (location, rel_dir) = config.base_location(opts.base.as_ref())?;
    check_templates(&config)?;
    let outputs = resolve_outputs(opts, &config)?;
    super::supply::check_sign_outputs(opts, &outputs)?;
    let base_key = super::supply::base_key(opts, &config)?;
    if opts.pull && !matches!(location, Location::Daemon(_)) {
        return Err(Error::usage(format!("--pull: applies to a docker-daemon: base; {location} is read directly")));
    }
    let registries = Registries::new(opts.registry.clone());
    // The base is read, and the registry outputs asked whether they are
    // empty, while the folders are walked (unless the daemon must pull the
    // base first); the walk's errors still come first.
    let (inputs, opened, empty_outputs) = std::thread::scope(|scope| {
        let opening = (!opts.pull).then(|| scope.spawn(|| transport::open_base(&location, &rel_dir, &registries)));
        let asking = asks_outputs.then(|| scope.spawn(|| ask_empty(opts, &config, &outputs, &registries)));
        let inputs = walk_inputs(opts, &config, cache);
        let opened = opening.map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        let empty = asking.map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        (inputs, opened, empty.unwrap_or_default())
    });
    let (mut inputs, keystores) = inputs?;
    let walked = started.elapsed().as_secs_f64();
    // A folder no note answered is inspected once its files are read (by
    // hashing, most often) — unless the answer may refuse a public
    // destination, which must be before any request; otherwise the keystores
    // are settled here.
    let (keystores, keystores_baked, labels) = if keystores.pending() && !keystores.may_refuse(&config, &outputs) {
        (Some(keystores), false, BTreeMap::new())
    } else {
        let (main, variants) = (&mut inputs.walked, &mut inputs.variant_walks);
        let (baked, labels) = keystores.settle(main, variants, &HashMap::new(), &|_, _| 0, cache, &config, &outputs)?;
        (None, baked, labels)
    };
    let needs_daemon = outputs.iter().any(|o| through_daemon(o, opts.via)) || opts.pull;
    let daemon = if needs_daemon { Some(Daemon::connect()?) } else { None };
    if let (true, Location::Daemon(r), Some(d)) = (opts.pull, &location, &daemon) {
        d.pull(r)?;
    }
    let mut base = match opened {
        Some(opened) => opened?,
        None => transport::open_base(&location, &rel_dir, &registries)?,
    };
    let mut lock = crate::lock::check(&config, opts.base.as_ref(), &base, opts.locked)?;
    if !opts.locked {
        lock = crate::lock::record_maven(&config, lock, crate::inputs::pins(&inputs.gathered.maven))?;
    }
    base.select_platforms(&opts.platforms)?;
    let written = crate::lock::written_location(&config, opts.base.as_ref());
    let (bases, base_of, lock) = open_variant_bases(opts, &config, base, written, &registries, lock)?;
    if let Some(key) = &base_key {
        for b in &bases {
            super::supply::verify_base(&registries, b, key)?;
        }
    }
    let mtime = opts.source_date_epoch.unwrap_or(DEFAULT_MTIME).max(0) as u64;
    let planning = std::time::Instant::now();
    let plan = plan_products(&config, &bases, &base_of, &inputs, mtime, cache)?;
    crate::progress::detail(&format!(
        "inputs: {} files walked and checked in {walked:.3} s; {} layers planned in {:.3} s ({} from the plan memo)",
        inputs.files,
        plan.layers.len(),
        planning.elapsed().as_secs_f64(),
        plan.layers.iter().filter(|l| l.is_memo()).count()
    ));
    let walks = Walks { main: inputs.walked, variants: inputs.variant_walks };
    let keep_walks = opts.sbom.is_some() || opts.sign_key.is_some();
    let walks = if keep_walks || keystores.is_some() || plan.layers.iter().any(Planned::is_memo) {
        Some(walks)
    } else {
        super::free_later(walks);
        None
    };
    let walks = std::sync::Mutex::new(walks);
    for base in &bases {
        crate::progress::message(&format!(
            "base {} ({}, {} platform{})",
            base.name,
            base.images.iter().map(|i| i.platform.to_string()).collect::<Vec<_>>().join(", "),
            base.images.len(),
            if base.images.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(Prepared {
        registries,
        daemon,
        outputs,
        config,
        bases,
        layers: plan.layers,
        products: plan.products,
        labels,
        created: opts.source_date_epoch.map(mutate::rfc3339),
        input_files: inputs.files,
        checked: inputs.checked,
        keystores_baked,
        keystores,
        lock,
        gathered: inputs.gathered,
        walks,
        keep_walks,
        mtime,
        memo_pending: plan.pending,
        folder_layers: plan.folders,
        _extracted: plan.extracted,
        empty_outputs,
    })
}

/// Per output: for a registry written directly (not through the daemon)
/// that the config does not count as public, whether its repository has no
/// tag yet ([`push::repository_is_empty`]); `None` for the others. A public
/// registry is not asked here: baked keystores bound for it are refused
/// before any request.
///
/// [`push::repository_is_empty`]: crate::transport::registry::push::repository_is_empty
fn ask_empty(opts: &Options, config: &Config, outputs: &[Location], registries: &Arc<Registries>) -> Vec<Option<bool>> {
    outputs
        .iter()
        .map(|o| match o {
            Location::Registry(r) if !through_daemon(o, opts.via) && !is_public(config, o) => {
                Some(crate::transport::registry::push::repository_is_empty(registries, r))
            }
            _ => None,
        })
        .collect()
}

/// Every tag template expanded with stand-in values, so a bad one is
/// refused before any work.
fn check_templates(config: &Config) -> Result<()> {
    let hex = "0".repeat(64);
    let v = TagValues {
        base_tag: "latest",
        digest_hex: &hex,
        version: Some("4.3.0"),
        variant: Some("v"),
        kind: Some("gateway"),
    };
    let templates = std::iter::once(&config.target.tag)
        .chain(&config.target.extra_tags)
        .chain(config.variants.iter().filter_map(|v| v.tag.as_ref()));
    for t in templates {
        expand_tag(t, &v).map_err(|e| e.context(config.path.display()))?;
    }
    Ok(())
}

/// The destinations (`--to`, plus `[target] repository` with `--push`),
/// each checked before any work; output files named by flags too.
fn resolve_outputs(opts: &Options, config: &Config) -> Result<Vec<Location>> {
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
    if outputs.is_empty() {
        outputs.push(Location::Oci { dir: config.dir.join(DEFAULT_OUTPUT), tag: None });
    }
    let inputs = config.input_dirs();
    for out in &outputs {
        check_output(out)?;
        if let Some(path) = out.local_path() {
            refuse_inside_inputs(path, &out.to_string(), &inputs)?;
        }
    }
    if let Some(sbom) = &opts.sbom {
        crate::files::check_output(sbom, "--sbom")?;
        refuse_inside_inputs(sbom, &format!("--sbom {}", sbom.display()), &inputs)?;
    }
    Ok(outputs)
}

/// Refuses an output at or below one of the customer folders: each rebuild
/// would pack the previous output into the image.
pub(super) fn refuse_inside_inputs(path: &Path, shown: &str, inputs: &[PathBuf]) -> Result<()> {
    let out = absolute(path);
    for dir in inputs {
        let dir = absolute(dir);
        if out.starts_with(&dir) {
            return Err(Error::usage(format!(
                "{shown}: is inside the input folder {}; each build would pack its own output — write it elsewhere",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// `p` made absolute and resolved as far as it exists.
fn absolute(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) };
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
    let mut out = existing.canonicalize().unwrap_or_else(|_| existing.to_path_buf());
    for name in rest.iter().rev() {
        out.push(name);
    }
    out
}

/// The walked customer folders (main and per variant), checked.
struct Inputs {
    walked: Vec<(LayerSource, Vec<SourceEntry>)>,
    variant_walks: Vec<Vec<(LayerSource, Vec<SourceEntry>)>>,
    prints: Vec<Option<FolderPrint>>,
    variant_prints: Vec<Vec<Option<FolderPrint>>>,
    files: usize,
    checked: Vec<CheckedFile>,
    gathered: Gathered,
}

/// Walks the customer folders through the ignore rules, checks the
/// configuration files, resolves `[maven]` jars and checks every file; with
/// the keystore questions that leaves.
fn walk_inputs(opts: &Options, config: &Config, cache: &Cache) -> Result<(Inputs, Keystores)> {
    let gopts = crate::inputs::Options {
        bake_keystores: opts.bake_keystores,
        locked: opts.locked,
        ca_certs: opts.registry.ca_certs.clone(),
    };
    let g = crate::inputs::gather(config, &gopts, cache)?;
    let has_keystores = |w: &[(LayerSource, Vec<SourceEntry>)]| {
        w.iter()
            .any(|(s, e)| s.kind == LayerKind::Keystores && e.iter().any(|e| !matches!(e.kind, layer::SourceKind::Dir)))
    };
    let keystores = Keystores {
        main: g.inspections,
        variants: g.variant_inspections,
        in_folder: has_keystores(&g.walked) || g.variant_walks.iter().any(|w| has_keystores(w)),
        bakes: config.bakes_keystores(opts.bake_keystores),
        allow_public: opts.allow_public_keystores,
    };
    let inputs = Inputs {
        walked: g.walked,
        variant_walks: g.variant_walks,
        prints: g.prints,
        variant_prints: g.variant_prints,
        files: g.files,
        checked: g.checked,
        gathered: Gathered { excluded: g.excluded, maven: g.maven, config_files: g.config_files, warnings: g.warnings },
    };
    Ok((inputs, keystores))
}

/// The keystore questions gathering leaves: what each walked folder holds
/// (known from a note, or pending until its files are read) and what decides
/// baking.
pub(super) struct Keystores {
    main: Vec<Inspection>,
    variants: Vec<Vec<Inspection>>,
    /// The keystores folders hold files.
    in_folder: bool,
    /// Baking is on (the config or `--bake-keystores`).
    bakes: bool,
    /// `--allow-public-keystores`.
    allow_public: bool,
}

impl Keystores {
    /// Whether some folder's answer waits for its files to be read.
    fn pending(&self) -> bool {
        self.main.iter().chain(self.variants.iter().flatten()).any(|i| matches!(i, Inspection::Pending(_)))
    }

    /// Whether the answers may refuse a destination: baked keystores bound
    /// for a public registry among `outputs`.
    fn may_refuse(&self, config: &Config, outputs: &[Location]) -> bool {
        self.bakes && !self.allow_public && outputs.iter().any(|o| is_public(config, o))
    }

    /// Answers every folder ([`crate::inputs::settle`]: `read(walk, folder)`
    /// is how many of a folder's files and symlinks hashing read, `seen` what
    /// it recognised), refuses a stray keystore when baking is off and baked
    /// keystores bound for a public registry among `outputs`; returns
    /// whether keystores are baked and the labels every image gets.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        self,
        main: &mut [(LayerSource, Vec<SourceEntry>)],
        variants: &mut [Vec<(LayerSource, Vec<SourceEntry>)>],
        seen: &HashMap<PathBuf, &'static str>,
        read: &dyn Fn(Option<usize>, usize) -> usize,
        cache: &Cache,
        config: &Config,
        outputs: &[Location],
    ) -> Result<(bool, BTreeMap<String, String>)> {
        let main = main.iter_mut().zip(&self.main).enumerate().map(|(f, (w, i))| (w, i, read(None, f)));
        let variants =
            variants.iter_mut().zip(&self.variants).enumerate().flat_map(|(v, (w, i))| {
                w.iter_mut().zip(i).enumerate().map(move |(f, (w, i))| (w, i, read(Some(v), f)))
            });
        let found = crate::inputs::settle(main.chain(variants), seen, cache)?;
        let stray = stray_keystores(found, self.bakes)?;
        let baked = stray.is_some() || self.in_folder;
        guard_public_keystores(self.allow_public, config, outputs, baked, stray.as_deref())?;
        Ok((baked, labels(config, baked)))
    }
}

impl Prepared {
    /// Whether [`Prepared::settle_keystores`] has questions to answer.
    pub(super) fn keystores_pending(&self) -> bool {
        self.keystores.is_some()
    }

    /// Settles the keystore questions [`prepare`] left open (a folder no
    /// note answered), before any image config is composed or anything is
    /// written: `seen` holds what hashing recognised in the layers `hashed`,
    /// and the files those did not hold are opened now (all of them without
    /// `seen`). Settled already, it does nothing.
    pub(super) fn settle_keystores(&mut self, seen: Option<&Seen>, hashed: &[usize], cache: &Cache) -> Result<()> {
        let Some(k) = self.keystores.take() else { return Ok(()) };
        let found = seen.map(Seen::found).unwrap_or_default();
        let mut kept = self.walks.lock().unwrap_or_else(|e| e.into_inner());
        let walks = kept.as_mut().ok_or_else(|| {
            Error::new(crate::error::Kind::Io, "the walked folders were let go before the keystores were settled")
        })?;
        // A folder's files hashing read: those of one platform's layers
        // from the folder, all hashed.
        let layers = &self.folder_layers;
        let read = |walk: Option<usize>, folder: usize| {
            layers
                .iter()
                .filter(|l| l.walk == walk && l.folder == folder && l.layers.iter().all(|i| hashed.contains(i)))
                .map(|l| l.files)
                .max()
                .unwrap_or(0)
        };
        let (main, variants) = (&mut walks.main, &mut walks.variants);
        let (baked, labels) = k.settle(main, variants, &found, &read, cache, &self.config, &self.outputs)?;
        drop(kept);
        self.keystores_baked = baked;
        self.labels = labels;
        self.let_walks_go();
        Ok(())
    }
}

/// Refuses to push baked keystores to a public registry among `outputs`;
/// `stray` is the keystore found outside the keystores folder, if any.
fn guard_public_keystores(
    allow: bool,
    config: &Config,
    outputs: &[Location],
    baked: bool,
    stray: Option<&str>,
) -> Result<()> {
    if !baked || allow {
        return Ok(());
    }
    let why = stray.unwrap_or("the keystores folder");
    match outputs.iter().find(|o| is_public(config, o)) {
        Some(out @ Location::Registry(r)) => Err(wso2::keystore::public_refusal(&out.to_string(), &r.registry, why)),
        _ => Ok(()),
    }
}

/// Whether `out` is a registry the config (or wso2img) counts as public.
fn is_public(config: &Config, out: &Location) -> bool {
    matches!(out, Location::Registry(r) if r.is_public(&config.target.public_registries))
}

/// The variants' own bases, opened once each (a variant naming the main
/// base's location shares it) and checked against the lock: every base, the
/// base index of each product (main first) and the lock refresh.
fn open_variant_bases(
    opts: &Options,
    config: &Config,
    main: Base,
    main_written: String,
    registries: &Arc<Registries>,
    mut lock: Option<crate::lock::Pending>,
) -> Result<(Vec<Base>, Vec<usize>, Option<crate::lock::Pending>)> {
    let mut bases = vec![main];
    let mut written = vec![main_written];
    let mut base_of = vec![0];
    for v in &config.variants {
        let Some(w) = &v.base else {
            base_of.push(0);
            continue;
        };
        if let Some(i) = written.iter().position(|x| x == w) {
            base_of.push(i);
            continue;
        }
        let shown = format!("{}: [[variant]] {}", config.path.display(), v.name);
        let location: Location = w.parse().map_err(|e: Error| e.context(&shown))?;
        let mut base = transport::open_base(&location, &config.dir, registries)?;
        lock = crate::lock::check_also(config, lock, w, &base, opts.locked)?;
        base.select_platforms(&opts.platforms)?;
        bases.push(base);
        written.push(w.clone());
        base_of.push(bases.len() - 1);
    }
    Ok((bases, base_of, lock))
}

/// What planning gave: the customer layers (shared across products and
/// platforms when equal), the products using them, the memo entries to
/// record, and the base files copied out for `arbitrary-uid`.
struct Plan {
    layers: Vec<Planned>,
    products: Vec<Product>,
    pending: Vec<(crate::digest::Digest, Vec<usize>, FolderPrint)>,
    folders: Vec<FolderLayers>,
    extracted: Option<crate::files::TempDir>,
}

/// The layers one platform of one product has from one walked folder (of
/// the main walk, or of variant `walk`'s), and how many files and symlinks
/// they hold.
pub(super) struct FolderLayers {
    walk: Option<usize>,
    folder: usize,
    layers: Vec<usize>,
    files: usize,
}

/// A memo key to record a folder's layers under, with the folder's print.
type MemoKey = (crate::digest::Digest, FolderPrint);

/// Plans the layers of every kind and platform, each product (main image,
/// variants) on its own base; an unchanged folder's layers come from the
/// plan memo ([`memo`]).
fn plan_products(
    config: &Config,
    bases: &[Base],
    base_of: &[usize],
    inputs: &Inputs,
    mtime: u64,
    cache: &Cache,
) -> Result<Plan> {
    let owner = config.owner()?;
    let arbitrary = config.image.arbitrary_uid;
    let extracted = if arbitrary { Some(crate::files::TempDir::new("arbitrary-uid")?) } else { None };
    let mut layers: Vec<Planned> = Vec::new();
    let mut pending = Vec::new();
    let mut folders = Vec::new();
    let mut intern = |l: Planned| match layers.iter().position(|s| s.same(&l)) {
        Some(id) => id,
        None => {
            layers.push(l);
            layers.len() - 1
        }
    };
    // A folder's layers, shared where equal, into `ids`; their memo entry
    // to record; which folder they came from (`None`: none).
    let mut take = |(planned, memo): (Vec<Planned>, Option<MemoKey>),
                    ids: &mut Vec<usize>,
                    from: Option<(Option<usize>, usize)>| {
        let files = planned.iter().map(|l| l.summary.files).sum();
        let here: Vec<usize> = planned.into_iter().map(&mut intern).collect();
        pending.extend(memo.map(|(key, print)| (key, here.clone(), print)));
        if let Some((walk, folder)) = from {
            folders.push(FolderLayers { walk, folder, layers: here.clone(), files });
        }
        ids.extend(here);
    };
    let mut facts_of: HashMap<(usize, usize), Facts> = HashMap::new();
    let keys = artifact_keys(&inputs.checked);
    let variants = std::iter::once(None).chain(config.variants.iter().map(Some));
    let walks =
        std::iter::once(None).chain(inputs.variant_walks.iter().zip(&inputs.variant_prints).enumerate().map(Some));
    let mut products = Vec::new();
    for (pi, (variant, walk)) in variants.zip(walks).enumerate() {
        let bi = base_of[pi];
        let base = &bases[bi];
        let mut platforms = Vec::new();
        for (i, img) in base.images.iter().enumerate() {
            let facts = match facts_of.get(&(bi, i)) {
                Some(f) => f.clone(),
                None => {
                    let f = detect(config, base, img, variant.filter(|_| bi != 0), owner, arbitrary)?;
                    facts_of.insert((bi, i), f.clone());
                    f
                }
            };
            let mut ids = Vec::new();
            // Below the customer layers, so a customer file replaces the base's copy.
            if let Some(dir) = &extracted {
                take((vec![Planned::full(runtime_layer(&facts, img, mtime, dir.path())?)], None), &mut ids, None);
            }
            let planner = Folders { keys: &keys, facts: &facts, mtime, arbitrary, cache };
            for (fi, (src, entries)) in inputs.walked.iter().enumerate() {
                if !variant.is_none_or(|v| Config::variant_takes(v, src.kind)) {
                    continue;
                }
                let planned =
                    planner.plan(None, fi, src, entries, inputs.prints[fi].as_ref(), None).map_err(
                        |e| match variant {
                            Some(v) => e.context(format!("[[variant]] {}", v.name)),
                            None => e,
                        },
                    )?;
                take(planned, &mut ids, Some((None, fi)));
            }
            if let (Some(v), Some((vi, (w, prints)))) = (variant, walk) {
                if let Some(profile) = &v.profile {
                    check_profile(config, v, profile, &facts)?;
                }
                for (fi, (src, entries)) in w.iter().enumerate() {
                    let planned = planner.plan(Some(vi), fi, src, entries, prints[fi].as_ref(), Some(&v.name))?;
                    take(planned, &mut ids, Some((Some(vi), fi)));
                }
            }
            platforms.push(PlatformPrep { image: i, facts, layers: ids });
        }
        products.push(Product { variant: variant.cloned(), base: bi, platforms });
    }
    Ok(Plan { layers, products, pending, folders, extracted })
}

/// What planning a customer folder reads besides the folder itself.
struct Folders<'a> {
    keys: &'a HashMap<&'a Path, String>,
    facts: &'a Facts,
    mtime: u64,
    arbitrary: bool,
    cache: &'a Cache,
}

impl Folders<'_> {
    /// The non-empty layers of one folder (`folder` of the main walk, or of
    /// variant `walk`'s): from the memo when it knows the folder as it is
    /// (by its `print`), else planned entry by entry — then with the memo
    /// key to record them under, and the print.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        walk: Option<usize>,
        folder: usize,
        src: &LayerSource,
        entries: &[SourceEntry],
        print: Option<&FolderPrint>,
        variant: Option<&str>,
    ) -> Result<(Vec<Planned>, Option<MemoKey>)> {
        let cx = memo::Context {
            kind: src.kind,
            label: &src.label,
            dir: &src.dir,
            facts: self.facts,
            mtime: self.mtime,
            variant,
            arbitrary_uid: self.arbitrary,
        };
        let key = print.and_then(|p| Some((memo::key(p, &cx)?, *p)));
        if let Some((key, _)) = key {
            if let Some(summaries) = memo::get(self.cache, &key) {
                let recipe =
                    Recipe { key, walk, folder, facts: self.facts.clone(), variant: variant.map(str::to_string) };
                return Ok((summaries.into_iter().map(|s| Planned::from_memo(s, recipe.clone())).collect(), None));
            }
        }
        let specs =
            layer_specs(src.kind, self.keys, &src.label, entries, self.facts, self.mtime, variant, self.arbitrary)?;
        Ok((specs.into_iter().filter(|s| !s.is_empty()).map(Planned::full).collect(), key))
    }
}

/// What one platform of a base holds; a variant's own base that is not WSO2
/// API Manager is a configuration error (exit 2).
fn detect(
    config: &Config,
    base: &Base,
    img: &transport::BaseImage,
    variant: Option<&VariantSection>,
    owner: Option<layer::Owner>,
    arbitrary: bool,
) -> Result<Facts> {
    let mut facts = wso2::detect(&img.config_json, owner, &mut transport::LayerFs(img)).map_err(|e| match variant {
        Some(v) => Error::config(format!(
            "{}: [[variant]] {}: base {} is not a WSO2 API Manager image ({}); name a wso2am, wso2am-acp, wso2am-tm or wso2am-universal-gw image",
            config.path.display(),
            v.name,
            base.location,
            e.message()
        )),
        None => e.context(format!("{} ({})", base.location, img.platform)),
    })?;
    if arbitrary {
        facts.owner.gid = 0;
    }
    Ok(facts)
}

/// The `arbitrary-uid` layer: the folders the product writes at run time,
/// re-added without their files, and the base files it rewrites in place
/// (config mapper output, OSGi state, H2 databases) re-added with their
/// bytes (copied into `into`), owned by the runtime user and group 0, group
/// permissions = owner permissions.
fn runtime_layer(facts: &Facts, img: &transport::BaseImage, mtime: u64, into: &Path) -> Result<LayerSpec> {
    let placement =
        Placement { owner: facts.owner, owned_root: facts.user_home.clone(), file_mode: None, group_like_owner: true };
    let mut spec = LayerSpec::new("arbitrary-uid", mtime);
    for d in wso2::runtime_write_dirs(facts, &mut transport::LayerFs(img))? {
        spec.add_dir(&d, &placement)?;
    }
    let files = wso2::runtime_rewritten_files(facts, &mut transport::LayerFs(img), into)?;
    for f in &files {
        let entry = SourceEntry {
            rel: f.path.clone(),
            path: f.local.clone(),
            kind: layer::SourceKind::File { size: f.size, executable: f.executable },
            origin: Some(format!("base /{}", f.path)),
            key: None,
            head: None,
        };
        spec.add(format!("/{}", f.path), &entry, &placement)?;
    }
    spec.description = format!(
        "wso2img arbitrary-uid: {} folders the product writes and {} files it rewrites at run time, group 0 writable (owner {})",
        spec.entry_count() - files.len(),
        files.len(),
        facts.owner
    );
    Ok(spec)
}

fn check_profile(config: &Config, v: &VariantSection, profile: &str, facts: &Facts) -> Result<()> {
    wso2::check_profile(facts, profile)
        .map_err(|msg| Error::config(format!("{}: [[variant]] {}: {msg}", config.path.display(), v.name)))
}

/// The labels every image gets: the config's and the keystore label when
/// keystores are baked (each image adds its own base's name and digest).
fn labels(config: &Config, keystores_baked: bool) -> BTreeMap<String, String> {
    let mut labels = config.image.labels.clone();
    if keystores_baked {
        labels.insert(KEYSTORES_LABEL.into(), "baked".into());
        crate::progress::message(
            "keystores are baked into the image (label io.wso2img.keystores=baked); keep it in a private registry",
        );
    }
    labels
}

/// The first keystore (by name or content) found in a customer folder other
/// than the keystores folder (`LABEL/PATH (TYPE)`): baked like the keystores
/// folder when baking is on, refused when it is not.
fn stray_keystores(found: Option<String>, bakes: bool) -> Result<Option<String>> {
    match found {
        Some(shown) if !bakes => Err(Error::config(format!(
            "{shown}: is a keystore, and keystores go into an image only with bake_keystores = true or \
--bake-keystores; mount it at run time instead, or put it in the keystores folder and turn baking on"
        ))),
        found => Ok(found),
    }
}

/// Where a file of a customer folder goes in the image (`None`: nowhere,
/// e.g. the portal folders of `themes/` themselves).
pub(super) fn destination(kind: LayerKind, rel: &str, facts: &Facts) -> Result<Option<String>> {
    match kind {
        LayerKind::Themes => wso2::theme_destination(facts, rel),
        LayerKind::Overlays => Ok(Some([&facts.product_home, "/", rel].concat())),
        k => Ok(Some([&facts.product_home, "/", wso2::kind_root(k), "/", rel].concat())),
    }
}

/// Builds the layers of one kind for one base's facts (and a variant's extra
/// folder): one layer, or for jars and dropins one per share of
/// [`split`], with `keys` the artifact keys known from the jars' Maven
/// coordinates.
#[allow(clippy::too_many_arguments)]
pub(super) fn layer_specs(
    kind: LayerKind,
    keys: &HashMap<&Path, String>,
    label: &str,
    entries: &[SourceEntry],
    facts: &Facts,
    mtime: u64,
    variant: Option<&str>,
    arbitrary_uid: bool,
) -> Result<Vec<LayerSpec>> {
    let name = match variant {
        Some(v) => format!("{v}:{}", kind.name()),
        None => kind.name().to_string(),
    };
    let shares: Vec<(String, Vec<&SourceEntry>)> = match kind {
        LayerKind::Jars | LayerKind::Dropins => split::split(entries, |e| match keys.get(e.path.as_path()) {
            Some(k) => Cow::Borrowed(k.as_str()),
            None => Cow::Borrowed(split::artifact_key(&e.rel)),
        })
        .into_iter()
        .map(|s| (format!("{name}.{}", s.suffix), s.entries))
        .collect(),
        _ => vec![(name, entries.iter().collect())],
    };
    shares
        .into_iter()
        .map(|(name, entries)| layer_spec(kind, label, &name, &entries, facts, mtime, arbitrary_uid))
        .collect()
}

fn layer_spec(
    kind: LayerKind,
    label: &str,
    name: &str,
    entries: &[&SourceEntry],
    facts: &Facts,
    mtime: u64,
    arbitrary_uid: bool,
) -> Result<LayerSpec> {
    let placement = Placement {
        owner: facts.owner,
        owned_root: facts.user_home.clone(),
        file_mode: (kind == LayerKind::Keystores).then_some(0o640),
        group_like_owner: arbitrary_uid,
    };
    let root = match kind {
        LayerKind::Overlays => facts.product_home.clone(),
        k => format!("{}/{}", facts.product_home, wso2::kind_root(k)),
    };
    let mut spec = LayerSpec::collect(name, mtime, entries, |spec, e| {
        let Some(dest) = destination(kind, &e.rel, facts)? else { return Ok(()) };
        spec.add(dest, e, &placement).map_err(|err| err.context(label))
    })?;
    spec.description = format!(
        "wso2img {}: {} file{} from {label}/ into {root} (owner {})",
        name,
        spec.file_count(),
        if spec.file_count() == 1 { "" } else { "s" },
        facts.owner
    );
    Ok(spec)
}

pub(super) fn check_output(out: &Location) -> Result<()> {
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
        Location::DockerArchive { path, .. } => crate::files::check_output(path, "docker-archive:"),
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
