//! Planning: from the inputs and the bases to the layers of every image —
//! one layer spec per customer folder (jars and dropins split into shares)
//! and platform, shared across platforms and variants when equal, and the
//! `arbitrary-uid` layer. An unchanged folder's layers come from the plan
//! memo ([`memo`]) and are planned in full only when their bytes are needed
//! ([`Plan::spec`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::bases::Bases;
use super::inputs::{artifact_keys, Inputs};
use super::memo::{self, Planned, Recipe};
use super::profile;
use super::{Options, DEFAULT_MTIME};
use crate::cache::Cache;
use crate::config::{Config, LayerKind, LayerSource, VariantSection};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::mutate;
use crate::inputs::FolderPrint;
use crate::layer::{self, split, LayerSpec, Placement, SourceEntry};
use crate::transport::{self, Base};
use crate::wso2::truststore::{self, Merged};
use crate::wso2::{self, Facts};

/// One platform of a product: its base image, what was detected in it, and
/// its customer layers (indexes into [`Plan::layers`]), bottom first.
pub(super) struct PlatformPlan {
    pub(super) image: usize,
    pub(super) facts: Facts,
    pub(super) layers: Vec<usize>,
    /// The base's truststore with the `[truststore]` certificates merged in.
    pub(super) truststore: Option<Merged>,
}

/// One image to produce: the main customization, or a variant of it.
pub(super) struct Product {
    pub(super) variant: Option<VariantSection>,
    pub(super) platforms: Vec<PlatformPlan>,
}

/// The plan of a run.
pub(super) struct Plan {
    /// The customer layers, each planned or from the plan memo.
    pub(super) layers: Vec<Planned>,
    /// The main image first, then each variant.
    pub(super) products: Vec<Product>,
    /// The mtime of every layer entry.
    pub(super) mtime: u64,
    /// The `created` time of every image (SOURCE_DATE_EPOCH), when set.
    pub(super) created: Option<String>,
    /// Memo entries to record once the layers' fingerprints are known: the
    /// key, the layers planned, the folder's print.
    pub(super) memo_pending: Vec<(Digest, Vec<usize>, FolderPrint)>,
    /// Which layers came from which walked folder.
    pub(super) folders: Vec<FolderLayers>,
    /// Where a merged truststore holding a private key goes (it is a
    /// keystore, and keeps every keystore rule), when one does.
    pub(super) truststore_key: Option<String>,
    /// Base folders read from the layers because the lock records none for
    /// that image (by config digest), to record in the lock.
    pub(super) learnt_folders: Vec<Learnt>,
    /// Base files copied out for the `arbitrary-uid` layer; they live as long as the plan.
    _extracted: Option<crate::files::TempDir>,
    /// The merged truststores' files; they live as long as the plan.
    _truststores: Option<crate::files::TempDir>,
}

impl Plan {
    /// The main image.
    pub(super) fn main(&self) -> &Product {
        &self.products[0]
    }

    /// Whether every layer has its full spec.
    pub(super) fn all_planned(&self) -> bool {
        self.layers.iter().all(|l| l.spec().is_some())
    }

    /// Plans the full specs of customer layers `which` (see [`Plan::spec`]).
    pub(super) fn plan(&self, which: &[usize], inputs: &Inputs, cache: &Cache) -> Result<()> {
        for &i in which {
            self.spec(i, inputs, cache)?;
        }
        Ok(())
    }

    /// How many of folder `folder`'s files and symlinks (of the main walk,
    /// or of variant `walk`'s) were read when the layers `hashed` were
    /// hashed: those of one platform's layers from the folder, all hashed.
    pub(super) fn files_read(&self, walk: Option<usize>, folder: usize, hashed: &[usize]) -> usize {
        self.folders
            .iter()
            .filter(|l| l.walk == walk && l.folder == folder && l.layers.iter().all(|i| hashed.contains(i)))
            .map(|l| l.files)
            .max()
            .unwrap_or(0)
    }

    /// The full spec of customer layer `i`: a layer from the plan memo is
    /// planned again — its folder, once for all the folder's layers — and
    /// its fingerprint must be the memo's, else the memo is dropped and the
    /// run fails, naming the layer.
    pub(super) fn spec(&self, i: usize, inputs: &Inputs, cache: &Cache) -> Result<&LayerSpec> {
        let l = &self.layers[i];
        if let Some(spec) = l.spec() {
            return Ok(spec);
        }
        let r = l.recipe.as_ref().expect("a layer without a spec came from the memo");
        let (src, entries) = inputs.walks().folder(r.walk, r.folder);
        let keys = artifact_keys(&inputs.checked);
        let cx = Planning {
            keys: &keys,
            facts: &r.facts,
            mtime: self.mtime,
            arbitrary: r.arbitrary,
            variant: r.variant.as_deref(),
        };
        let mut specs = cx.layer_specs(src, entries)?;
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
type MemoKey = (Digest, FolderPrint);

/// Plans the layers of every kind and platform, each product (main image,
/// variants) on its own base; an unchanged folder's layers come from the
/// plan memo ([`memo`]).
pub(super) fn plan(opts: &Options, config: &Config, bases: &Bases, inputs: &Inputs, cache: &Cache) -> Result<Plan> {
    let mtime = opts.source_date_epoch.unwrap_or(DEFAULT_MTIME).max(0) as u64;
    let owner = config.owner()?;
    let arbitrary = config.image.arbitrary_uid;
    let extracted = if arbitrary { Some(crate::files::TempDir::new("arbitrary-uid")?) } else { None };
    let (trust_main, trust_variants) = &inputs.truststore;
    let merges = std::iter::once(trust_main).chain(trust_variants).any(|w| !w.certs.is_empty());
    let trust_dir = if merges { Some(crate::files::TempDir::new("truststore")?) } else { None };
    let mut truststore_key = None;
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
    let detecting = Detecting { config, owner, arbitrary, cache, locked: &bases.locked_folders };
    let mut learnt_folders = Vec::new();
    let keys = artifact_keys(&inputs.checked);
    let walks = inputs.walks();
    let variants = std::iter::once(None).chain(config.variants.iter().map(Some));
    let variant_walks =
        std::iter::once(None).chain(walks.variants.iter().zip(&inputs.variant_prints).enumerate().map(Some));
    let mut products = Vec::new();
    for (pi, (variant, walk)) in variants.zip(variant_walks).enumerate() {
        let bi = bases.of_product[pi];
        let base = &bases.list[bi];
        let mut platforms = Vec::new();
        for (i, img) in base.images.iter().enumerate() {
            let facts = match facts_of.get(&(bi, i)) {
                Some(f) => f.clone(),
                None => {
                    let (f, learnt) = detecting.facts(base, img, variant.filter(|_| bi != 0))?;
                    learnt_folders.extend(learnt);
                    facts_of.insert((bi, i), f.clone());
                    f
                }
            };
            // Before any layer of the product is planned: a profile the base
            // does not start in is a configuration error.
            if let Some((v, profile)) = variant.and_then(|v| Some((v, v.profile.as_deref()?))) {
                check_profile(config, v, profile, &facts)?;
            }
            let mut ids = Vec::new();
            // Below the customer layers, so a customer file replaces the base's copy.
            if let Some(dir) = &extracted {
                take((vec![Planned::full(runtime_layer(&facts, img, mtime, dir.path())?)], None), &mut ids, None);
            }
            let main = Planning { keys: &keys, facts: &facts, mtime, arbitrary, variant: None };
            for (fi, (src, entries)) in walks.main.iter().enumerate() {
                if !variant.is_none_or(|v| Config::variant_takes(v, src.kind)) {
                    continue;
                }
                let planned = main.folder(None, fi, (src, entries), inputs.prints[fi].as_ref(), cache).map_err(
                    |e| match variant {
                        Some(v) => e.context(format!("[[variant]] {}", v.name)),
                        None => e,
                    },
                )?;
                take(planned, &mut ids, Some((None, fi)));
            }
            if let (Some(v), Some((vi, (w, prints)))) = (variant, walk) {
                let own = Planning { variant: Some(&v.name), ..main };
                for (fi, (src, entries)) in w.iter().enumerate() {
                    let planned = own.folder(Some(vi), fi, (src, entries), prints[fi].as_ref(), cache)?;
                    take(planned, &mut ids, Some((Some(vi), fi)));
                }
            }
            // Last: the customer's deployment.toml where the variant's profile takes its template from.
            if let Some(v) = variant {
                let own = walk.map_or(&[][..], |(_, (w, _))| w.as_slice());
                let folders = profile::Folders { main: &walks.main, own };
                let placement = placement(&facts, None, arbitrary);
                if let Some(spec) = profile::layer(v, &facts, &folders, &placement, mtime)? {
                    take((vec![Planned::full(spec)], None), &mut ids, None);
                }
            }
            let want = if pi == 0 { trust_main } else { &trust_variants[pi - 1] };
            let mut truststore = None;
            if let (false, Some(dir)) = (want.certs.is_empty(), &trust_dir) {
                let own = variant.is_some_and(|v| v.truststore.as_ref().is_some_and(|t| !t.is_empty()));
                let name = match variant.filter(|_| own) {
                    Some(v) => format!("{}:truststore", v.name),
                    None => "truststore".to_string(),
                };
                let t = Trusting { facts: &facts, mtime, arbitrary, name: &name, dir: dir.path() };
                let (spec, merged) = t.layer(base, img, want, i == 0)?;
                if merged.private_key && !merged.added.is_empty() {
                    truststore_key
                        .get_or_insert_with(|| format!("{} ({}) {}", base.location, img.platform, merged.path));
                }
                // Nothing new (every certificate already there): the base's store stays.
                if !merged.added.is_empty() {
                    take((vec![Planned::full(spec)], None), &mut ids, None);
                }
                truststore = Some(merged);
            }
            platforms.push(PlatformPlan { image: i, facts, layers: ids, truststore });
        }
        products.push(Product { variant: variant.cloned(), platforms });
    }
    Ok(Plan {
        layers,
        products,
        mtime,
        created: opts.source_date_epoch.map(mutate::rfc3339),
        memo_pending: pending,
        folders,
        truststore_key,
        learnt_folders,
        _extracted: extracted,
        _truststores: trust_dir,
    })
}

/// The layers a folder's entries go to, with the names the image's layers
/// carry: one layer, or for jars and dropins one per share of [`split`]
/// (`jars.07`); a variant's are prefixed with its name (`gw:jars.07`).
/// `keys` are the artifact keys known from the jars' Maven coordinates.
pub(super) fn shares<'a>(
    kind: LayerKind,
    variant: Option<&str>,
    entries: &'a [SourceEntry],
    keys: &'a HashMap<&Path, String>,
) -> Vec<(String, Vec<&'a SourceEntry>)> {
    let name = match variant {
        Some(v) => format!("{v}:{}", kind.name()),
        None => kind.name().to_string(),
    };
    match kind {
        LayerKind::Jars | LayerKind::Dropins => split::split(entries, |e| match keys.get(e.path.as_path()) {
            Some(k) => Cow::Borrowed(k.as_str()),
            None => Cow::Borrowed(split::artifact_key(&e.rel)),
        })
        .into_iter()
        .map(|s| (format!("{name}.{}", s.suffix), s.entries))
        .collect(),
        _ => vec![(name, entries.iter().collect())],
    }
}

/// What planning a customer folder reads besides the folder itself: the
/// artifact keys known from the jars' Maven coordinates, the base's facts,
/// the mtime, the arbitrary-UID setting and the variant whose folder it is.
#[derive(Clone, Copy)]
struct Planning<'a> {
    keys: &'a HashMap<&'a Path, String>,
    facts: &'a Facts,
    mtime: u64,
    arbitrary: bool,
    variant: Option<&'a str>,
}

impl Planning<'_> {
    /// The non-empty layers of one folder (`folder` of the main walk, or of
    /// variant `walk`'s): from the memo when it knows the folder as it is
    /// (by its `print`), else planned entry by entry — then with the memo
    /// key to record them under, and the print.
    fn folder(
        &self,
        walk: Option<usize>,
        folder: usize,
        (src, entries): (&LayerSource, &Vec<SourceEntry>),
        print: Option<&FolderPrint>,
        cache: &Cache,
    ) -> Result<(Vec<Planned>, Option<MemoKey>)> {
        let cx = memo::Context {
            kind: src.kind,
            label: &src.label,
            dir: &src.dir,
            facts: self.facts,
            mtime: self.mtime,
            variant: self.variant,
            arbitrary_uid: self.arbitrary,
        };
        let key = print.and_then(|p| Some((memo::key(p, &cx)?, *p)));
        if let Some((key, _)) = key {
            if let Some(summaries) = memo::get(cache, &key) {
                let recipe = Recipe {
                    key,
                    walk,
                    folder,
                    facts: self.facts.clone(),
                    variant: self.variant.map(str::to_string),
                    arbitrary: self.arbitrary,
                };
                return Ok((summaries.into_iter().map(|s| Planned::from_memo(s, recipe.clone())).collect(), None));
            }
        }
        let specs = self.layer_specs(src, entries)?;
        Ok((specs.into_iter().filter(|s| !s.is_empty()).map(Planned::full).collect(), key))
    }

    /// The layers of one folder: one layer, or for jars and dropins one per
    /// share of [`split`].
    fn layer_specs(&self, src: &LayerSource, entries: &[SourceEntry]) -> Result<Vec<LayerSpec>> {
        let shares = shares(src.kind, self.variant, entries, self.keys);
        shares.into_iter().map(|(name, entries)| self.layer_spec(src, &name, &entries)).collect()
    }

    fn layer_spec(&self, src: &LayerSource, name: &str, entries: &[&SourceEntry]) -> Result<LayerSpec> {
        let (kind, label, facts) = (src.kind, src.label.as_str(), self.facts);
        let placement = placement(facts, (kind == LayerKind::Keystores).then_some(0o640), self.arbitrary);
        let root = match kind {
            LayerKind::Overlays => facts.product_home.clone(),
            k => format!("{}/{}", facts.product_home, wso2::kind_root(k)),
        };
        let mut spec = LayerSpec::collect(name, self.mtime, entries, |spec, e| {
            let Some(dest) = wso2::destination(kind, &e.rel, facts)? else { return Ok(()) };
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
}

/// What merging a base's truststore reads besides the base: its facts, the
/// mtime (also the date of the entries added), the arbitrary-UID setting,
/// the layer's name and where the merged files go.
struct Trusting<'a> {
    facts: &'a Facts,
    mtime: u64,
    arbitrary: bool,
    name: &'a str,
    dir: &'a Path,
}

impl Trusting<'_> {
    /// The layer holding the base's truststore with `want`'s certificates
    /// merged in, and what the merge did (said once per product, `tell`).
    fn layer(
        &self,
        base: &Base,
        img: &transport::BaseImage,
        want: &truststore::Wanted,
        tell: bool,
    ) -> Result<(LayerSpec, Merged)> {
        let facts = self.facts;
        let path = format!("{}/{}", facts.product_home, truststore::FILE);
        let shown = format!("{} ({}) {path}", base.location, img.platform);
        let bytes = transport::read_base_file(img, path.trim_start_matches('/'))?.ok_or_else(|| {
            Error::source(format!(
                "{shown}: the base has no truststore there; [truststore] adds certificates to the base's own {}",
                truststore::FILE_NAME
            ))
        })?;
        let merged = truststore::merge(&bytes, &path, &shown, want, self.mtime as i64)?;
        let digest = crate::digest::Digest::of(&merged.bytes);
        let local = self.dir.join(format!("{}.jks", digest.hex()));
        if !local.exists() {
            std::fs::write(&local, &merged.bytes).map_err(|e| Error::io("writing the merged truststore", &local, e))?;
        }
        let placement = placement(facts, merged.private_key.then_some(0o640), self.arbitrary);
        let entry = SourceEntry {
            rel: truststore::FILE.to_string(),
            path: local,
            kind: layer::SourceKind::File { size: merged.bytes.len() as u64, executable: false },
            origin: Some("[truststore]".into()),
            key: None,
            head: None,
        };
        let mut spec = LayerSpec::new(self.name, self.mtime);
        spec.add(path.clone(), &entry, &placement)?;
        let n = merged.added.len();
        let shipped = truststore::shipped_format(facts.version.as_deref())
            .filter(|f| *f != merged.format)
            .map(|f| format!("; API Manager {} ships it as {}", facts.version.as_deref().unwrap_or("?"), f.name()))
            .unwrap_or_default();
        spec.description = format!(
            "wso2img {}: {n} certificate{} added to {} ({}, {} entries from the base), owner {}",
            self.name,
            if n == 1 { "" } else { "s" },
            truststore::FILE_NAME,
            merged.format.name(),
            merged.base_entries,
            facts.owner
        );
        if tell {
            crate::progress::message(&format!(
                "truststore: {n} certificate{} added to {} of {} ({} content, {} base entries kept{shipped})",
                if n == 1 { "" } else { "s" },
                truststore::FILE_NAME,
                base.location,
                merged.format.name(),
                merged.base_entries
            ));
            for p in &merged.already_present {
                crate::progress::message(&format!(
                    "truststore: {} is already in {} as {}; nothing added for it",
                    p.source,
                    truststore::FILE_NAME,
                    p.base_alias
                ));
            }
        }
        Ok((spec, merged))
    }
}

/// Base folders read from an image's layers, by its config digest, as the
/// lock records them.
pub(super) type Learnt = (Digest, BTreeMap<String, String>);

/// What detecting a base's facts reads besides the base: the config, the
/// `owner` setting, the arbitrary-UID setting, the digest cache (its facts
/// memo) and the base folders the lock records.
struct Detecting<'a> {
    config: &'a Config,
    owner: Option<layer::Owner>,
    arbitrary: bool,
    cache: &'a Cache,
    locked: &'a HashMap<Digest, BTreeMap<String, String>>,
}

impl Detecting<'_> {
    /// What one platform of a base holds, from the facts memo when this
    /// build of the program detected it before, with its folders from the
    /// lock or else read from its layers (then also returned, for the lock);
    /// a variant's own base that is not WSO2 API Manager is a configuration
    /// error (exit 2).
    fn facts(
        &self,
        base: &Base,
        img: &transport::BaseImage,
        variant: Option<&VariantSection>,
    ) -> Result<(Facts, Option<Learnt>)> {
        let config_digest = Digest::of(&img.config);
        let key = memo::facts_key(&img.config, self.owner);
        let mut facts = match key.as_ref().and_then(|k| memo::facts(self.cache, k)) {
            Some(f) => f,
            None => {
                let mut fs = transport::LayerFs(img);
                let mut f = wso2::detect(&img.config_json, self.owner, &mut fs).map_err(|e| match variant {
                    Some(v) => Error::config(format!(
                        "{}: [[variant]] {}: base {} is not a WSO2 API Manager image ({}); name a wso2am, wso2am-acp, wso2am-tm or wso2am-universal-gw image",
                        self.config.path.display(),
                        v.name,
                        base.location,
                        e.message()
                    )),
                    None => e.context(format!("{} ({})", base.location, img.platform)),
                })?;
                f.folders = match self.locked.get(&config_digest) {
                    Some(m) => parse_folders(m, &crate::lock::path_for(&self.config.path))?,
                    None => wso2::base_folders(&f.product_home, &f.user_home, &mut fs)
                        .map_err(|e| e.context(format!("{} ({})", base.location, img.platform)))?,
                };
                if let Some(k) = key {
                    memo::put_facts(self.cache, k, &f);
                }
                f
            }
        };
        let learnt =
            (!self.locked.contains_key(&config_digest)).then(|| (config_digest, render_folders(&facts.folders)));
        if self.arbitrary {
            facts.owner.gid = 0;
        }
        Ok((facts, learnt))
    }
}

/// Base folders as the lock records them: `0750 10001:10001` by path.
fn render_folders(folders: &BTreeMap<String, (u32, layer::Owner)>) -> BTreeMap<String, String> {
    folders.iter().map(|(p, (mode, o))| (p.clone(), format!("{mode:04o} {}:{}", o.uid, o.gid))).collect()
}

/// The base folders a lock records; a value that is not `MODE UID:GID` is a
/// configuration error naming the lock.
fn parse_folders(folders: &BTreeMap<String, String>, lock: &Path) -> Result<BTreeMap<String, (u32, layer::Owner)>> {
    folders
        .iter()
        .map(|(path, v)| {
            let parsed = (|| {
                let (mode, owner) = v.split_once(' ')?;
                let (uid, gid) = owner.split_once(':')?;
                let mode = u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777)?;
                Some((mode, layer::Owner { uid: uid.parse().ok()?, gid: gid.parse().ok()? }))
            })();
            let meta = parsed.ok_or_else(|| {
                Error::config(format!(
                    "{}: base folder {path} = {v:?} is not \"MODE UID:GID\"; delete that [base.platform.folders] table and build again to record it anew",
                    lock.display()
                ))
            })?;
            Ok((path.clone(), meta))
        })
        .collect()
}

/// Where a layer on a base with `facts` puts files: owned by the runtime
/// user at and below its home, with `file_mode` for every file (`None`: 0644
/// or 0755), group permissions like the owner's for an arbitrary UID, parent
/// folders the base has as the base has them.
fn placement(facts: &Facts, file_mode: Option<u32>, group_like_owner: bool) -> Placement {
    Placement {
        owner: facts.owner,
        owned_root: facts.user_home.clone(),
        file_mode,
        group_like_owner,
        base_folders: facts.folders.clone(),
    }
}

/// The `arbitrary-uid` layer: the folders the product writes at run time,
/// re-added without their files, and the base files it rewrites in place
/// (config mapper output, OSGi state, H2 databases, keystores) re-added with
/// their bytes (copied into `into`) — each with the base's mode and owner
/// made group 0 with group permissions = owner permissions (`chgrp 0`,
/// `chmod g=u`); a folder the base lacks is the runtime user's. The user home
/// is among them (a random UID must enter it); nothing above it is.
fn runtime_layer(facts: &Facts, img: &transport::BaseImage, mtime: u64, into: &Path) -> Result<LayerSpec> {
    let files = wso2::runtime_rewritten_files(facts, &mut transport::LayerFs(img), into)?;
    let home = facts.product_home.trim_start_matches('/');
    let mut parents = std::collections::BTreeSet::new();
    for f in &files {
        let mut d = f.path.as_str();
        while let Some((p, _)) = d.rsplit_once('/').filter(|(p, _)| p.len() > home.len() && p.starts_with(home)) {
            parents.insert(p.to_string());
            d = p;
        }
    }
    let parents: Vec<String> = parents.into_iter().collect();
    let dirs = wso2::runtime_write_dirs(facts, &mut transport::LayerFs(img), &parents)?;
    let group_0 = |o: layer::Owner| layer::Owner { uid: o.uid, gid: 0 };
    let mut spec = LayerSpec::new("arbitrary-uid", mtime);
    for d in &dirs {
        let (mode, owner) = d.meta.map_or((0o755, facts.owner), |(m, o)| (m, group_0(o)));
        spec.set_dir(&d.path, layer::group_like_owner(mode), owner)?;
    }
    let mut placement = placement(facts, None, true);
    for f in &files {
        let entry = SourceEntry {
            rel: f.path.clone(),
            path: f.local.clone(),
            kind: layer::SourceKind::File { size: f.size, executable: f.mode & 0o111 != 0 },
            origin: Some(format!("base /{}", f.path)),
            key: None,
            head: None,
        };
        placement.owner = group_0(f.owner);
        placement.file_mode = Some(f.mode);
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
