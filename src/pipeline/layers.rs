//! Hashing the customer layers (always) and compressing them (only what a
//! destination still needs), plus gzipping base layers stored as plain tars
//! (`docker save`) for destinations that store manifests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::bases::Bases;
use super::inputs::Inputs;
use super::memo::{self, Summary};
use super::plan::Plan;
use super::LayerReport;
use crate::cache::{Cache, LayerHit, StatKey};
use crate::digest::Digest;
use crate::error::{io_reason, Error, Result};
use crate::files::{self, TempDir};
use crate::fmt::human;
use crate::image::{Blob, BlobData, Descriptor, MediaFamily};
use crate::layer::{self, CompressedLayer, LayerSpec};
use crate::reference::Location;
use crate::wso2::keystore::Seen;

/// What hashing learnt that producing layer bytes needs, per layer: its
/// files' absolute paths and [`StatKey`]s (taken before any byte was read),
/// its fingerprint, and whether its diff_id came from the cache (a layer
/// from the plan memo: its fingerprint only, until its spec is planned).
/// Empty when the cache is off.
pub(super) struct Stats {
    layers: Vec<Option<LayerStats>>,
    /// What relative source paths are relative to.
    cwd: PathBuf,
}

impl Stats {
    /// Layer `i`'s regular files: absolute path and key, in archive order.
    fn files<'a>(&'a self, spec: &'a LayerSpec, st: &'a LayerStats) -> impl Iterator<Item = (PathBuf, StatKey)> + 'a {
        spec.files().zip(&st.keys).map(|((p, _), k)| (absolute(&self.cwd, p), *k))
    }

    /// The reports of the layers whose diff_id the cache knows (by
    /// fingerprint), and the others, biggest first.
    fn known(&self, lx: &Layering<'_>) -> (Vec<Option<LayerReport>>, Vec<usize>) {
        let mut known: Vec<Option<LayerReport>> = lx.plan.layers.iter().map(|_| None).collect();
        let mut todo = Vec::new();
        for (i, l) in lx.plan.layers.iter().enumerate() {
            match self.layers[i].as_ref().and_then(|s| lx.cache.layer(&s.fingerprint)) {
                Some(hit) => {
                    known[i] = Some(report(&l.summary, layer::TarDigest { diff_id: hit.diff_id, size: hit.size }))
                }
                None => todo.push(i),
            }
        }
        biggest_first(lx.plan, &mut todo);
        (known, todo)
    }

    /// The stats of every layer (recording the folders planned in full in
    /// the plan memo), the reports of those the cache knows, and the others
    /// — biggest first, planned in full with their stats complete, ready to
    /// be read.
    fn start(lx: &Layering<'_>) -> Result<(Stats, Vec<Option<LayerReport>>, Vec<usize>)> {
        let mut stats = stat_layers(lx)?;
        stats.record_memo(lx);
        let (known, todo) = stats.known(lx);
        lx.plan.plan(&todo, lx.inputs, lx.cache)?;
        for &i in &todo {
            stats.complete(i, lx.spec(i)?);
        }
        Ok((stats, known, todo))
    }

    /// Completes the stats of layer `i` when they came from the plan memo,
    /// now that its spec is planned: every file of it was walked, so its keys
    /// are the walked ones.
    fn complete(&mut self, i: usize, spec: &LayerSpec) {
        if let Some(st) = self.layers[i].as_mut().filter(|st| !st.full) {
            let keys: Vec<StatKey> = spec.walked_keys().flatten().collect();
            st.settled_after = keys.iter().map(StatKey::settled_after).max().unwrap_or(i64::MIN);
            st.keys = keys;
            st.full = true;
        }
    }

    /// Records in the plan memo the folders planned in full this run, now
    /// that their layers' fingerprints are known.
    fn record_memo(&self, lx: &Layering<'_>) {
        for (key, ids, print) in &lx.plan.memo_pending {
            let summaries: Option<Vec<Summary>> = ids
                .iter()
                .map(|&i| {
                    let st = self.layers[i].as_ref()?;
                    Some(Summary { fingerprint: st.fingerprint, ..lx.plan.layers[i].summary.clone() })
                })
                .collect();
            if let Some(summaries) = summaries {
                memo::put(lx.cache, *key, &summaries, print);
            }
        }
    }

    /// Records in the cache what producing layer `spec`'s bytes found: its
    /// diff_id and size, and the digests of its files (`digests`, in
    /// archive order; empty when they were not taken).
    fn remember(&self, spec: &LayerSpec, st: &LayerStats, t: &layer::TarDigest, digests: &[Digest], cache: &Cache) {
        cache.put_layer(st.fingerprint, LayerHit { diff_id: t.diff_id, size: t.size }, st.settled_after);
        for ((path, key), d) in self.files(spec, st).zip(digests) {
            cache.put_file(&path, key, *d);
        }
    }

    /// Once every layer has its diff_id: marks which came from the cache
    /// (all but `hashed`), keeps every layer's files in the cache (all of
    /// them while a layer from the memo is not planned: its files are those
    /// of the run that recorded it); the caller saves it.
    fn settle(&mut self, lx: &Layering<'_>, hashed: &[usize]) {
        let cache = lx.cache;
        for (i, s) in self.layers.iter_mut().enumerate() {
            if let Some(s) = s {
                s.cached = !hashed.contains(&i);
            }
        }
        for (l, st) in lx.plan.layers.iter().zip(&self.layers) {
            match (l.spec(), st) {
                (Some(spec), Some(st)) if st.full => cache.keep_files(self.files(spec, st)),
                (_, Some(_)) => cache.keep_every_file(),
                _ => {}
            }
        }
    }
}

struct LayerStats {
    /// The keys of the layer's regular files, in archive order.
    keys: Vec<StatKey>,
    fingerprint: Digest,
    /// The latest [`StatKey::settled_after`] of its files.
    settled_after: i64,
    /// Its diff_id was taken from the cache, not from its bytes.
    cached: bool,
    /// Its keys are known (else only its fingerprint, from the plan memo).
    full: bool,
}

/// Layers with at most this much content record their files' digests while
/// they are hashed (cheap, and lets a later mismatch name the file).
const DIGEST_FILES_BYTES: u64 = 8 << 20;

/// Whether producing `spec`'s bytes records its files' digests: only with
/// the cache on (`st`), and only for a small layer — a big one should not
/// have every byte hashed twice.
fn records_file_digests(spec: &LayerSpec, st: Option<&LayerStats>) -> bool {
    st.is_some() && spec.content_bytes() <= DIGEST_FILES_BYTES
}

/// Every customer layer's diff_id and sizes, from its tar stream, nothing
/// compressed — or, with the cache on, from the cache when the `stat` keys
/// of its files (taken on every core) say nothing changed. Layers still to
/// hash are hashed on every core, two at a time on each
/// ([`layer::hash::hash_all`]), the biggest first. `seen` looks at the name
/// and first bytes of every file read; the layers hashed (not known from
/// the cache) come back with the reports.
pub(super) fn hash(lx: &Layering<'_>, seen: Option<&Seen>) -> Result<Hashed> {
    let (p, cache) = (lx.plan, lx.cache);
    let started = std::time::Instant::now();
    let (mut stats, known, todo) = Stats::start(lx)?;
    let stat_secs = started.elapsed().as_secs_f64();
    let mut slots: Vec<Option<Result<LayerReport>>> = known.into_iter().map(|r| r.map(Ok)).collect();
    let look_at = |path: &Path, first: &[u8]| {
        if let Some(s) = seen {
            s.look(path, first);
        }
    };
    let look: Option<layer::Look<'_>> = seen.is_some().then_some(&look_at);
    let specs: Vec<&LayerSpec> = todo.iter().map(|&i| p.layers[i].spec().expect("completed above")).collect();
    let done: Vec<Mutex<Option<Result<LayerReport>>>> = todo.iter().map(|_| Mutex::new(None)).collect();
    let digests = |k: usize| records_file_digests(specs[k], stats.layers[todo[k]].as_ref());
    layer::hash::hash_all(&specs, &digests, look, &|k, hashed| {
        let i = todo[k];
        let r = hashed.and_then(|h| {
            if let Some(st) = stats.layers[i].as_ref() {
                check_file_digests(specs[k], &stats, st, &h.digests, cache)?;
                stats.remember(specs[k], st, &h.tar, &h.digests, cache);
            }
            Ok(report(&p.layers[i].summary, h.tar))
        });
        *done[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    });
    for (k, d) in done.into_iter().enumerate() {
        slots[todo[k]] = d.into_inner().unwrap_or_else(|e| e.into_inner());
    }
    stats.settle(lx, &todo);
    let reports = slots.into_iter().map(|s| s.expect("every layer was hashed")).collect::<Result<Vec<_>>>()?;
    crate::progress::detail(&format!(
        "layers: {} hashed, {} from the digest cache{} ({:.3} s stat, {:.3} s in all)",
        todo.len(),
        p.layers.len() - todo.len(),
        if cache.enabled() { "" } else { " (off)" },
        stat_secs,
        started.elapsed().as_secs_f64()
    ));
    Ok(Hashed { reports, stats, hashed: todo, made: None })
}

/// Like [`hash`], compressing while hashing: every layer the cache does not
/// know is made into its gzip blob in the same pass (its diff_id taken from
/// those bytes), biggest first, and `ready` hears of each as soon as it is
/// made. For destinations that surely hold nothing yet (a cold push), where
/// every layer is needed and a separate hashing pass would only hold back
/// the uploads.
pub(super) fn hash_compressing(lx: &Layering<'_>, ready: &mut dyn FnMut(usize, &CompressedLayer)) -> Result<Hashed> {
    let (p, cache) = (lx.plan, lx.cache);
    let started = std::time::Instant::now();
    let (mut stats, mut slots, todo) = Stats::start(lx)?;
    let mut out = Compressed::none(p.layers.len());
    if !todo.is_empty() {
        out._staging = Some(lx.staging()?);
    }
    for &i in &todo {
        let spec = p.layers[i].spec().expect("completed above");
        let dir = out._staging.as_ref().expect("made above").path();
        let st = stats.layers[i].as_ref();
        let (c, digests) = if records_file_digests(spec, st) {
            layer::build_digesting(spec, dir)?
        } else {
            (layer::build(spec, dir)?, Vec::new())
        };
        if let Some(st) = st {
            check_file_digests(spec, &stats, st, &digests, cache)?;
            stats.remember(spec, st, &c.tar, &digests, cache);
        }
        cache.put_gzip(c.tar.diff_id, c.digest, c.size);
        log_layer(&p.layers[i].summary, &c);
        ready(i, &c);
        slots[i] = Some(report(&p.layers[i].summary, layer::TarDigest { diff_id: c.tar.diff_id, size: c.tar.size }));
        out.layers[i] = Some(c);
    }
    stats.settle(lx, &todo);
    crate::progress::detail(&format!(
        "layers: {} hashed and compressed in one pass, {} from the digest cache{} ({:.3} s)",
        todo.len(),
        p.layers.len() - todo.len(),
        if cache.enabled() { "" } else { " (off)" },
        started.elapsed().as_secs_f64()
    ));
    let reports = slots.into_iter().map(|s| s.expect("every layer was hashed")).collect();
    Ok(Hashed { reports, stats, hashed: todo, made: Some(out) })
}

/// Layers `idx`, biggest first: hashed side by side, the longest job starts
/// first; uploaded as they are made, the longest uploads start first and
/// the last layer made — whose upload nothing overlaps — is a small one.
fn biggest_first(p: &Plan, idx: &mut [usize]) {
    idx.sort_by_key(|&i| std::cmp::Reverse(p.layers[i].summary.bytes));
}

/// A layer's report before compression.
fn report(l: &Summary, t: layer::TarDigest) -> LayerReport {
    LayerReport {
        name: l.name.clone(),
        diff_id: t.diff_id,
        files: l.files,
        bytes: l.bytes,
        tar_size: t.size,
        digest: None,
        size: None,
        description: l.description.clone(),
    }
}

fn log_layer(l: &Summary, c: &CompressedLayer) {
    crate::progress::message(&format!(
        "layer {}: {}, tar {} -> {} gzip, {}",
        l.name,
        crate::fmt::count(l.files, "file"),
        human(c.tar.size),
        human(c.size),
        c.tar.diff_id
    ));
}

/// Whether the file at `path` no longer has `key`: it changed during this
/// run, which is not the cache's fault.
fn moved(path: &Path, key: &StatKey) -> bool {
    StatKey::stat(path).map_or(true, |now| now != *key)
}

fn layer_changed(spec: &LayerSpec) -> Error {
    Error::input(format!("layer {}: its files changed while the image was being built; run again", spec.name))
}

fn file_changed(path: &Path) -> Error {
    Error::input(format!("{}: changed while the image was being built; run again", path.display()))
}

/// Checks the digests of files just read (in archive order) against the
/// cache: a file whose recorded digest (for the key it still has) the bytes
/// contradict drops its entry and the layer's, and fails naming the file.
fn check_file_digests(
    spec: &LayerSpec,
    stats: &Stats,
    st: &LayerStats,
    digests: &[Digest],
    cache: &Cache,
) -> Result<()> {
    let contradicted =
        stats.files(spec, st).zip(digests).find(|((path, key), d)| cache.file(path, key).is_some_and(|r| r != **d));
    let Some(((path, key), _)) = contradicted else { return Ok(()) };
    if moved(&path, &key) {
        return Err(file_changed(&path));
    }
    cache.drop_file(&path);
    cache.drop_layer(&st.fingerprint);
    Err(Error::input(format!(
        "{}: its content is not what the digest cache recorded for it (same size, times and inode); the entry was dropped — run again, or use --no-cache",
        path.display()
    )))
}

/// The `stat` keys of every planned layer's files, taken on every core, and
/// each layer's fingerprint (a memo layer's is the memo's); nothing when the
/// cache is off.
fn stat_layers(lx: &Layering<'_>) -> Result<Stats> {
    let (p, cache) = (lx.plan, lx.cache);
    if !cache.enabled() {
        return Ok(Stats { layers: p.layers.iter().map(|_| None).collect(), cwd: PathBuf::new() });
    }
    let specs: Vec<&LayerSpec> = p.layers.iter().filter_map(|l| l.spec()).collect();
    let cwd = std::env::current_dir().map_err(|e| Error::io("reading", Path::new("."), e))?;
    let paths: Vec<&Path> = specs.iter().flat_map(|s| s.files().map(|(p, _)| p)).collect();
    // The keys the walk took; files it did not walk are stat-ed on every core.
    let mut keys: Vec<Option<Result<StatKey>>> =
        specs.iter().flat_map(|s| s.walked_keys().map(|k| k.map(Ok))).collect();
    let chunk = paths.len().div_ceil(layer::threads()).max(1);
    std::thread::scope(|scope| {
        for (ps, ks) in paths.chunks(chunk).zip(keys.chunks_mut(chunk)) {
            if ks.iter().all(Option::is_some) {
                continue;
            }
            scope.spawn(move || {
                for (p, k) in ps.iter().zip(ks).filter(|(_, k)| k.is_none()) {
                    *k = Some(StatKey::stat(p).map_err(|e| {
                        Error::input(format!("{}: cannot stat ({}); run again", p.display(), io_reason(&e)))
                    }));
                }
            });
        }
    });
    let mut keys = keys.into_iter();
    let mut layers = Vec::with_capacity(p.layers.len());
    for l in &p.layers {
        let Some(spec) = l.spec() else {
            let fingerprint = l.summary.fingerprint;
            layers.push(Some(LayerStats {
                keys: Vec::new(),
                fingerprint,
                settled_after: i64::MAX,
                cached: false,
                full: false,
            }));
            continue;
        };
        let keys = keys
            .by_ref()
            .take(spec.files().count())
            .map(|k| k.expect("every file was stat-ed"))
            .collect::<Result<Vec<StatKey>>>()?;
        let fingerprint = spec.fingerprint(&keys);
        let settled_after = keys.iter().map(StatKey::settled_after).max().unwrap_or(i64::MIN);
        layers.push(Some(LayerStats { keys, fingerprint, settled_after, cached: false, full: true }));
    }
    Ok(Stats { layers, cwd })
}

/// `p` made absolute against `cwd` (a leading `./` dropped).
fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p.strip_prefix(".").unwrap_or(p))
    }
}

/// The compressed layers of a build, in a staging folder that lives as long as this.
pub(super) struct Compressed {
    /// Per spec: its gzip file, when some destination needed it.
    pub(super) layers: Vec<Option<CompressedLayer>>,
    /// Base layers stored as plain tars, gzipped: diff_id → gzip file.
    pub(super) base: HashMap<Digest, CompressedLayer>,
    /// Per spec: its compressed digest and size when not made because every
    /// destination wanting it holds it already.
    held: Vec<Option<(Digest, u64)>>,
    _staging: Option<TempDir>,
}

impl Compressed {
    /// Nothing compressed yet, for `n` customer layers.
    fn none(n: usize) -> Compressed {
        Compressed { layers: vec![None; n], base: HashMap::new(), held: vec![None; n], _staging: None }
    }

    /// Whether customer layer `i` is compressed already.
    pub(super) fn has(&self, i: usize) -> bool {
        self.layers[i].is_some()
    }

    /// The layer reports with compressed digests and sizes filled in.
    pub(super) fn reports(&self, hashed: &[LayerReport]) -> Vec<LayerReport> {
        hashed
            .iter()
            .zip(self.layers.iter().zip(&self.held))
            .map(|(h, (c, held))| LayerReport {
                digest: c.as_ref().map(|c| c.digest).or(held.map(|k| k.0)),
                size: c.as_ref().map(|c| c.size).or(held.map(|k| k.1)),
                ..h.clone()
            })
            .collect()
    }

    /// The blob of customer layer `i` in `family`.
    pub(super) fn layer_blob(&self, i: usize, family: MediaFamily) -> Option<Blob> {
        match (&self.layers[i], self.held[i]) {
            (Some(c), _) => Some(Blob::staged(Descriptor::new(family.layer_gzip(), c.digest, c.size), c.path.clone())),
            (None, Some((digest, size))) => {
                Some(Blob { desc: Descriptor::new(family.layer_gzip(), digest, size), data: BlobData::Held })
            }
            (None, None) => None,
        }
    }

    /// The gzipped blob of the plain-tar base layer `diff_id` in `family`.
    pub(super) fn base_blob(&self, diff_id: &Digest, family: MediaFamily) -> Option<Blob> {
        let c = self.base.get(diff_id)?;
        Some(Blob::staged(Descriptor::new(family.layer_gzip(), c.digest, c.size), c.path.clone()))
    }
}

/// What must be compressed: customer layers of images some destination
/// lacks, and the plain-tar base layers when such a destination stores manifests.
pub(super) struct Need {
    pub(super) layers: Vec<bool>,
    pub(super) base_gzip: bool,
    /// Per customer layer: its compressed digest and size when every
    /// destination that wants it already holds that blob (then it is not in
    /// `layers`).
    pub(super) held: Vec<Option<(Digest, u64)>>,
}

/// Compresses the layers in `need` that `hashed` did not make while hashing
/// (see [`hash_compressing`]): the customer layers it lists (checked against
/// the diff_ids hashed before, so a file changed meanwhile is caught, and
/// against the digest cache) and the plain-tar base layers of `bases` when
/// it asks for them. `ready` hears of each customer layer as soon as it is
/// compressed.
pub(super) fn compress(
    lx: &Layering<'_>,
    need: &Need,
    hashed: &mut Hashed,
    bases: &Bases,
    ready: &mut dyn FnMut(usize, &CompressedLayer),
) -> Result<Compressed> {
    let (p, cache) = (lx.plan, lx.cache);
    let mut out = hashed.made.take().unwrap_or_else(|| Compressed::none(p.layers.len()));
    out.held = need.held.clone();
    for (i, held) in need.held.iter().enumerate() {
        if held.is_some() {
            out.layers[i] = None;
        }
    }
    let todo = |i: usize, out: &Compressed| need.layers[i] && !out.has(i);
    if (0..p.layers.len()).all(|i| !todo(i, &out)) && !need.base_gzip {
        return Ok(out);
    }
    let staging = match out._staging.take() {
        Some(s) => s,
        None => lx.staging()?,
    };
    let mut order: Vec<usize> = (0..p.layers.len()).filter(|&i| todo(i, &out)).collect();
    biggest_first(p, &mut order);
    p.plan(&order, lx.inputs, cache)?;
    let stats = &mut hashed.stats;
    for i in order {
        let spec = lx.spec(i)?;
        stats.complete(i, spec);
        let c = produce(spec, staging.path(), &hashed.reports[i], stats, stats.layers[i].as_ref(), cache)?;
        log_layer(&p.layers[i].summary, &c);
        cache.put_gzip(c.tar.diff_id, c.digest, c.size);
        ready(i, &c);
        out.layers[i] = Some(c);
    }
    if need.base_gzip {
        for (base, img) in bases.list.iter().flat_map(|b| b.images.iter().map(move |i| (b, i))) {
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

/// Builds one customer layer and checks the bytes produced: their diff_id
/// must be the one hashed (or taken from the cache), and, with the cache
/// on, every file's digest must be the one the cache holds for its `stat`
/// key. The bytes are what count: a contradiction drops the cache's entries
/// and fails naming the file (or, when no file entry says which, the layer).
/// Agreement records the files' digests for the next run.
fn produce(
    spec: &LayerSpec,
    dir: &Path,
    hashed: &LayerReport,
    stats: &Stats,
    st: Option<&LayerStats>,
    cache: &Cache,
) -> Result<CompressedLayer> {
    let Some(st) = st else {
        let c = layer::build(spec, dir)?;
        if c.tar.diff_id != hashed.diff_id {
            return Err(layer_changed(spec));
        }
        return Ok(c);
    };
    let (c, digests) = layer::build_digesting(spec, dir)?;
    check_file_digests(spec, stats, st, &digests, cache)?;
    if c.tar.diff_id != hashed.diff_id {
        if let Some((path, _)) = stats.files(spec, st).find(|(p, k)| moved(p, k)) {
            return Err(file_changed(&path));
        }
        if !st.cached {
            return Err(layer_changed(spec));
        }
        cache.drop_layer(&st.fingerprint);
        for (path, _) in stats.files(spec, st) {
            cache.drop_file(&path);
        }
        return Err(Error::input(format!(
            "layer {}: its files make {}, not {} as the digest cache recorded (same sizes, times and inodes); the entries were dropped — run again, or use --no-cache",
            spec.name, c.tar.diff_id, hashed.diff_id
        )));
    }
    stats.remember(spec, st, &c.tar, &digests, cache);
    Ok(c)
}

/// The digest cache a run uses: the project's, unless `--no-cache`.
pub(super) fn open_cache(no_cache: bool, config: &Path) -> Cache {
    if no_cache {
        Cache::disabled()
    } else {
        Cache::for_project(config)
    }
}

/// Where compressed layers are staged: beside the first local output (so
/// writing it is a hard link), else the temporary folder.
pub(super) fn staging_parent(outputs: &[Location]) -> PathBuf {
    outputs
        .iter()
        .filter_map(Location::local_path)
        .filter(|p| matches!(files::Target::of(p), files::Target::Replace(_)))
        .map(|p| files::parent_of(p).to_path_buf())
        .find(|d| d.is_dir() && files::dir_writable(d))
        .unwrap_or_else(|| Path::new(&std::env::temp_dir()).to_path_buf())
}

/// What making layers reads: the plan, the inputs its layers are planned
/// from, the digest cache, and where compressed layers are staged.
pub(super) struct Layering<'a> {
    pub(super) plan: &'a Plan,
    pub(super) inputs: &'a Inputs,
    pub(super) cache: &'a Cache,
    /// The folder staging folders are made in ([`staging_parent`]).
    pub(super) staging: PathBuf,
}

impl Layering<'_> {
    /// The full spec of layer `i` ([`Plan::spec`]).
    fn spec(&self, i: usize) -> Result<&LayerSpec> {
        self.plan.spec(i, self.inputs, self.cache)
    }

    /// A fresh staging folder (leftovers of killed runs swept first).
    fn staging(&self) -> Result<TempDir> {
        files::sweep(&self.staging);
        TempDir::new_in(&self.staging, "staging")
    }
}

/// What hashing gave: every layer's report (diff_id, sizes), what producing
/// bytes needs of the cache's view, which layers were hashed (not known from
/// the cache) and, when hashing compressed too, the compressed layers.
pub(super) struct Hashed {
    pub(super) reports: Vec<LayerReport>,
    stats: Stats,
    pub(super) hashed: Vec<usize>,
    made: Option<Compressed>,
}

impl Hashed {
    /// The diff_ids of the layers, in order.
    pub(super) fn diff_ids(&self) -> Vec<Digest> {
        self.reports.iter().map(|l| l.diff_id).collect()
    }

    /// What is left to free once the layers are written: the cache's view of
    /// every file.
    pub(super) fn into_stats(self) -> Stats {
        self.stats
    }

    /// Whether hashing made customer layer `i`'s compressed blob already.
    pub(super) fn made(&self, i: usize) -> bool {
        self.made.as_ref().is_some_and(|m| m.has(i))
    }
}
