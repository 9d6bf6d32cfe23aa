//! The layer builder: turns customer files into deterministic tar layers and
//! compresses them, computing the uncompressed digest (diff_id) and the
//! compressed digest while streaming.
//!
//! A [`LayerSpec`] is the pure description of a layer (sorted entries with
//! their final paths, modes and owners); [`LayerSpec::stream`] is its tar,
//! pulled a buffer at a time. [`hash::hash_all`] hashes many layers' tars
//! without compressing (for `plan` and up-to-date checks); [`build`] writes
//! the gzip blob to a folder.

pub mod gzip;
pub mod hash;
pub mod ignore;
pub mod prefetch;
pub mod split;
pub mod stream;
pub mod tar;
pub mod walk;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::cache::StatKey;
use crate::digest::{Digest, HashWriter};
use crate::error::{io_reason, Error, Result};
pub use walk::{read_heads, walk, walk_filtered, Head, SourceEntry, SourceKind};

/// Numeric owner of the files in a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// What a layer entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A file whose bytes come from `source`.
    File {
        /// The file on disk.
        source: PathBuf,
        /// Its size when planned.
        size: u64,
    },
    /// A symbolic link.
    Symlink {
        /// Its target.
        target: String,
    },
}

/// One entry of a layer, with its final metadata (its path in the image,
/// relative to `/` and without a trailing slash, is its key in the layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub owner: Owner,
    /// A regular file's `stat` key when it was walked, if known.
    pub key: Option<StatKey>,
}

/// How customer entries are placed: who owns them and which modes they get.
#[derive(Debug, Clone)]
pub struct Placement {
    /// Owner of the customer files and of directories at or below `owned_root`.
    pub owner: Owner,
    /// Absolute path at and below which parent directories belong to `owner`;
    /// parents above it are root-owned (as `/` and `/home` are in the base).
    pub owned_root: String,
    /// Mode for every regular file (keystores: 0640); `None` means 0644, or
    /// 0755 when the source has an execute bit.
    pub file_mode: Option<u32>,
    /// Give the group the owner's permissions (0644 → 0664, 0755 → 0775) on
    /// every entry `owner` owns, for an arbitrary UID running with group 0.
    pub group_like_owner: bool,
    /// Mode and owner of folders the image below already has (paths relative
    /// to `/`): a parent folder re-added here keeps its mode (at or below
    /// `owned_root`: owned by `owner`, group like owner when asked) and,
    /// above `owned_root`, its owner — instead of becoming a 0755 folder.
    pub base_folders: std::collections::BTreeMap<String, (u32, Owner)>,
}

impl Placement {
    fn mode(&self, mode: u32) -> u32 {
        if self.group_like_owner {
            group_like_owner(mode)
        } else {
            mode
        }
    }
}

/// `mode` with the group's permissions made the owner's (`chmod g=u`:
/// 0644 → 0664, 0750 → 0770); the other bits stay.
pub fn group_like_owner(mode: u32) -> u32 {
    (mode & !0o070) | ((mode & 0o700) >> 3)
}

/// Whether `path` is a non-empty relative path of plain components: none
/// empty, `.` or `..`.
fn plain_path(path: &str) -> bool {
    !path.is_empty() && path.as_bytes().split(|&b| b == b'/').all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// A layer described entry by entry, ready to be written.
#[derive(Debug, Clone)]
pub struct LayerSpec {
    /// Short name (`jars`, `themes`, …).
    pub name: String,
    /// What the layer holds, for the image history.
    pub description: String,
    /// The modification time of every entry.
    pub mtime: u64,
    entries: BTreeMap<String, LayerEntry>,
    /// The parent folder of the last entry added, known to be a folder
    /// entry already (files of one folder arrive together).
    last_parent: String,
}

impl PartialEq for LayerSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.description == other.description
            && self.mtime == other.mtime
            && self.entries == other.entries
    }
}

impl Eq for LayerSpec {}

impl LayerSpec {
    /// An empty layer.
    pub fn new(name: &str, mtime: u64) -> Self {
        LayerSpec {
            name: name.into(),
            description: String::new(),
            mtime,
            entries: BTreeMap::new(),
            last_parent: String::new(),
        }
    }

    /// The layer of `items`, each added by `add` — on every core for many
    /// items: consecutive runs of them are planned as layers of their own
    /// and merged. The result is the layer adding them one after the other
    /// gives, and so is any error: when a run fails, or two runs place
    /// different things at one path, they are added one after the other
    /// again to fail as that would.
    pub fn collect<T: Sync>(
        name: &str,
        mtime: u64,
        items: &[T],
        add: impl Fn(&mut LayerSpec, &T) -> Result<()> + Sync,
    ) -> Result<LayerSpec> {
        Self::collect_in(threads(), name, mtime, items, add)
    }

    fn collect_in<T: Sync>(
        runs: usize,
        name: &str,
        mtime: u64,
        items: &[T],
        add: impl Fn(&mut LayerSpec, &T) -> Result<()> + Sync,
    ) -> Result<LayerSpec> {
        let one_by_one = |items: &[T]| {
            let mut spec = LayerSpec::new(name, mtime);
            for item in items {
                add(&mut spec, item)?;
            }
            Ok(spec)
        };
        if runs < 2 || items.len() < COLLECT_RUN {
            return one_by_one(items);
        }
        let chunk = items.len().div_ceil(runs).max(COLLECT_RUN / 2);
        let mut parts = map_chunks(items, chunk, one_by_one).into_iter();
        let mut spec = parts.next().expect("at least one run")?;
        for part in parts {
            if !part.is_ok_and(|part| spec.merge(part)) {
                return one_by_one(items);
            }
        }
        Ok(spec)
    }

    /// Moves the entries of `later` (planned after this layer's) into it;
    /// `false`, leaving it part-merged, when both place something at one
    /// path that is not a folder in both (a folder in both stays as this
    /// layer has it, as adding it again would leave it).
    fn merge(&mut self, mut later: LayerSpec) -> bool {
        let Some(last) = self.entries.keys().next_back().cloned() else {
            self.entries = later.entries;
            self.last_parent = later.last_parent;
            return true;
        };
        let mut both = Vec::new();
        for (path, e) in
            later.entries.range::<str, _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(last.as_str())))
        {
            match self.entries.get(path) {
                Some(mine) if mine.kind == EntryKind::Dir && e.kind == EntryKind::Dir => both.push(path.clone()),
                Some(_) => return false,
                None => {}
            }
        }
        for path in both {
            later.entries.remove(&path);
        }
        self.entries.append(&mut later.entries);
        self.last_parent = later.last_parent;
        true
    }

    /// Adds `src` at absolute image path `dest`, with explicit entries for
    /// every parent directory.
    pub fn add(&mut self, dest: String, src: &SourceEntry, placement: &Placement) -> Result<()> {
        let mut path = dest;
        path.truncate(path.trim_end_matches('/').len());
        path.drain(..path.len() - path.trim_start_matches('/').len());
        if !plain_path(&path) {
            return Err(Error::input(format!("{}: cannot be placed at /{path}", src.path.display())));
        }
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        if parent != self.last_parent {
            for (i, _) in parent.match_indices('/').chain(std::iter::once((parent.len(), ""))) {
                if i > 0 {
                    self.ensure_dir(&parent[..i], placement, &src.path)?;
                }
            }
            self.last_parent.clear();
            self.last_parent.push_str(parent);
        }
        let (kind, mode) = match &src.kind {
            SourceKind::Dir => {
                return self.ensure_dir(&path, placement, &src.path);
            }
            SourceKind::File { size, executable } => (
                EntryKind::File { source: src.path.clone(), size: *size },
                placement.mode(placement.file_mode.unwrap_or(if *executable { 0o755 } else { 0o644 })),
            ),
            SourceKind::Symlink { target } => (EntryKind::Symlink { target: target.clone() }, 0o777),
        };
        match self.entries.entry(path) {
            std::collections::btree_map::Entry::Occupied(o) => Err(Error::input(format!(
                "{}: lands on /{}, where {} already goes; keep only one of them",
                src.path.display(),
                o.key(),
                describe(o.get())
            ))),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(LayerEntry { kind, mode, owner: placement.owner, key: src.key });
                Ok(())
            }
        }
    }

    fn ensure_dir(&mut self, path: &str, placement: &Placement, from: &Path) -> Result<()> {
        match self.entries.get(path) {
            Some(e) if e.kind == EntryKind::Dir => Ok(()),
            Some(e) => Err(Error::input(format!(
                "{}: needs /{path} to be a folder, but {} goes there",
                from.display(),
                describe(e)
            ))),
            None => {
                let abs = format!("/{path}");
                let root = placement.owned_root.trim_end_matches('/');
                let owned = abs == root || abs.starts_with(&format!("{root}/"));
                let (owner, mode) = match placement.base_folders.get(path) {
                    Some(&(mode, _)) if owned => (placement.owner, placement.mode(mode)),
                    Some(&(mode, owner)) => (owner, mode),
                    None if owned => (placement.owner, placement.mode(0o755)),
                    None => (Owner { uid: 0, gid: 0 }, 0o755),
                };
                self.entries.insert(path.to_string(), LayerEntry { kind: EntryKind::Dir, mode, owner, key: None });
                Ok(())
            }
        }
    }

    /// Adds folder `dest` (an absolute image path) and its parents as entries
    /// without any file: re-adding a base folder this way changes only its
    /// owner and mode.
    pub fn add_dir(&mut self, dest: &str, placement: &Placement) -> Result<()> {
        let path = dest.trim_start_matches('/').trim_end_matches('/');
        let mut parent = String::new();
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            if comp == "." || comp == ".." {
                return Err(Error::input(format!("{dest}: not a plain folder path")));
            }
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(comp);
            self.ensure_dir(&parent, placement, Path::new(dest))?;
        }
        Ok(())
    }

    /// Sets folder `dest` (an absolute image path) to exactly `mode` and
    /// `owner`, without adding its parents: for a folder whose mode and
    /// owner are known (a base folder re-added with group permissions).
    pub fn set_dir(&mut self, dest: &str, mode: u32, owner: Owner) -> Result<()> {
        let path = dest.trim_start_matches('/').trim_end_matches('/');
        if !plain_path(path) {
            return Err(Error::input(format!("{dest}: not a plain folder path")));
        }
        if let Some(e) = self.entries.get(path).filter(|e| e.kind != EntryKind::Dir) {
            return Err(Error::input(format!("{dest}: needs to be a folder, but {} goes there", describe(e))));
        }
        self.entries.insert(path.to_string(), LayerEntry { kind: EntryKind::Dir, mode, owner, key: None });
        Ok(())
    }

    /// Number of entries, folders included.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Entries in archive order, each with its path in the image.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &LayerEntry)> {
        self.entries.iter().map(|(p, e)| (p.as_str(), e))
    }

    /// Number of regular files and symlinks.
    pub fn file_count(&self) -> usize {
        self.entries.values().filter(|e| e.kind != EntryKind::Dir).count()
    }

    /// Total size of the regular files.
    pub fn content_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|e| match e.kind {
                EntryKind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }

    /// Whether the layer has no files.
    pub fn is_empty(&self) -> bool {
        self.file_count() == 0
    }

    /// Writes the uncompressed tar to `out`.
    pub fn write_tar(&self, out: &mut impl Write) -> Result<()> {
        self.write_tar_inner(out, None, None)
    }

    /// Writes the uncompressed tar to `out`, and the sha256 of every regular
    /// file's content, in [`LayerSpec::files`] order, to `digests`.
    pub fn write_tar_digesting(&self, out: &mut impl Write, digests: &mut Vec<Digest>) -> Result<()> {
        self.write_tar_inner(out, Some(digests), None)
    }

    /// The regular files, in archive order: source path and planned size.
    pub fn files(&self) -> impl Iterator<Item = (&Path, u64)> {
        self.entries.values().filter_map(|e| match &e.kind {
            EntryKind::File { source, size } => Some((source.as_path(), *size)),
            _ => None,
        })
    }

    /// The `stat` keys taken when the regular files were walked, in
    /// [`LayerSpec::files`] order (`None` for a file not walked from disk).
    pub fn walked_keys(&self) -> impl Iterator<Item = Option<StatKey>> + '_ {
        self.entries.values().filter(|e| matches!(e.kind, EntryKind::File { .. })).map(|e| e.key)
    }

    /// A digest of everything that decides this layer's tar bytes except
    /// the files' content — the tar writer's own fingerprint, every entry's
    /// path, kind, mode, owner, size and link target, the mtime — together
    /// with `keys`, the [`StatKey`]s of [`LayerSpec::files`] in order. Equal
    /// fingerprints mean equal tars as long as the keys vouch for the content.
    pub fn fingerprint(&self, keys: &[StatKey]) -> Digest {
        let mut keys = keys.iter();
        let entries: Vec<(&str, &LayerEntry, Option<&StatKey>)> = self
            .entries
            .iter()
            .map(|(path, e)| {
                (path.as_str(), e, if matches!(e.kind, EntryKind::File { .. }) { keys.next() } else { None })
            })
            .collect();
        // Runs of entries digested on every core; the runs do not depend on
        // the number of cores.
        let runs = map_chunks(&entries, FINGERPRINT_RUN, |run| {
            let mut h = crate::digest::Blocks::new();
            for &(path, e, key) in run {
                h.field(path.as_bytes());
                h.update(&e.mode.to_le_bytes());
                h.update(&e.owner.uid.to_le_bytes());
                h.update(&e.owner.gid.to_le_bytes());
                match &e.kind {
                    EntryKind::Dir => h.update(b"d"),
                    EntryKind::Symlink { target } => {
                        h.update(b"l");
                        h.field(target.as_bytes());
                    }
                    EntryKind::File { source, size } => {
                        h.update(b"f");
                        h.update(&size.to_le_bytes());
                        h.field(source.as_os_str().as_encoded_bytes());
                        match key {
                            Some(k) => h.with(|buf| k.encode(buf)),
                            None => h.update(b"no key"),
                        }
                    }
                }
            }
            h.finish()
        });
        let mut h = crate::digest::Blocks::new();
        h.update(b"wso2img layer fingerprint 2\0");
        h.update(tar::writer_fingerprint().bytes());
        h.update(&self.mtime.to_le_bytes());
        h.update(&(self.entries.len() as u64).to_le_bytes());
        for run in runs {
            h.update(run.bytes());
        }
        h.finish()
    }

    /// Writes the tar (see [`LayerSpec::stream`]); with `digests`, appends
    /// the sha256 of every regular file to it.
    fn write_tar_inner(
        &self,
        out: &mut impl Write,
        digests: Option<&mut Vec<Digest>>,
        look: Option<Look<'_>>,
    ) -> Result<()> {
        std::thread::scope(|scope| {
            let mut stream = self.stream(scope, digests.is_some(), look);
            loop {
                let piece = stream.pull()?;
                if piece.is_empty() {
                    break;
                }
                out.write_all(piece).map_err(|e| {
                    Error::new(crate::error::Kind::Io, format!("writing layer {}: {}", self.name, io_reason(&e)))
                })?;
            }
            if let Some(d) = digests {
                d.extend(stream.take_digests());
            }
            Ok(())
        })
    }
}

/// Runs of at least half this many items are planned on a core of their
/// own ([`LayerSpec::collect`]); fewer items are not worth a thread.
const COLLECT_RUN: usize = 4096;

/// Entries per run of a layer's fingerprint, each run digested on its own.
const FINGERPRINT_RUN: usize = 8192;

/// How much of a layer's tar is pulled at a time.
pub const STREAM_BUFFER: usize = 256 << 10;

fn describe(e: &LayerEntry) -> String {
    match &e.kind {
        EntryKind::Dir => "a folder".into(),
        EntryKind::File { source, .. } => source.display().to_string(),
        EntryKind::Symlink { target } => format!("a symlink to {target}"),
    }
}

/// A layer source file that cannot be opened or read.
fn cannot_read(source: &Path, e: &io::Error) -> Error {
    Error::input(format!("{}: cannot read ({})", source.display(), io_reason(e)))
}

/// A layer source file whose size is no longer the `planned` one.
/// What tells a file's content changed on disk while it was read: size,
/// modification and change times, inode and device (git's racy-clean rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    dev: u64,
}

impl Stamp {
    /// The stamp of the open file `f`.
    fn of(f: &File) -> io::Result<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = f.metadata()?;
        Ok(Stamp {
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        })
    }

    /// Fails naming `source` when `f` no longer has this stamp.
    fn check(&self, f: &File, source: &Path) -> Result<()> {
        let now = Stamp::of(f).map_err(|e| cannot_read(source, &e))?;
        if now.size != self.size {
            return Err(changed_size(source, self.size, now.size));
        }
        if now != *self {
            return Err(Error::input(format!(
                "{}: changed while it was read into the image (same size, new modification time); run again once nothing writes to it",
                source.display()
            )));
        }
        Ok(())
    }
}

fn changed_size(source: &Path, planned: u64, now: impl std::fmt::Display) -> Error {
    Error::input(format!(
        "{}: changed while the image was being built ({planned} bytes planned, {now} now); run again",
        source.display()
    ))
}

/// A layer's uncompressed identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarDigest {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Its length.
    pub size: u64,
}

/// What sees each regular file's source path and first bytes (at least
/// [`HEAD`] of them, or all of a shorter file) as a layer's tar is written.
pub type Look<'a> = &'a (dyn Fn(&Path, &[u8]) + Sync);

/// Bytes of a file's start a [`Look`] is sure to see.
pub const HEAD: usize = 64;

/// A compressed layer written to disk.
#[derive(Debug, Clone)]
pub struct CompressedLayer {
    /// Uncompressed identity.
    pub tar: TarDigest,
    /// sha256 of the gzip bytes.
    pub digest: Digest,
    /// Length of the gzip bytes.
    pub size: u64,
    /// Where the gzip bytes are.
    pub path: PathBuf,
}

/// Number of worker threads for hashing, reading and deflating: every core
/// (asked once: the answer reads cgroup files).
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// `f` of each `chunk`-long piece of `items` (the last may be shorter), in
/// order, the pieces shared out over every core. The pieces do not depend on
/// the number of cores, so neither do the results.
pub fn map_chunks<T: Sync, R: Send>(items: &[T], chunk: usize, f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    use rayon::prelude::*;
    items.par_chunks(chunk.max(1)).with_max_len(1).map(&f).collect()
}

/// Builds the layer's gzip blob as a new file in `dir`.
pub fn build(spec: &LayerSpec, dir: &Path) -> Result<CompressedLayer> {
    let task = crate::progress::Task::start(&format!("compress {}", spec.name), Some(spec.content_bytes()));
    let c = compress_with(dir, |w| spec.write_tar(&mut crate::progress::Counting { inner: w, task: &task }))?;
    crate::progress::name_blob(&c.digest.to_string(), &spec.name);
    Ok(c)
}

/// Like [`build`], also returning the sha256 of every regular file's
/// content, in [`LayerSpec::files`] order.
pub fn build_digesting(spec: &LayerSpec, dir: &Path) -> Result<(CompressedLayer, Vec<Digest>)> {
    let task = crate::progress::Task::start(&format!("compress {}", spec.name), Some(spec.content_bytes()));
    let mut digests = Vec::new();
    let c = compress_with(dir, |w| {
        spec.write_tar_digesting(&mut crate::progress::Counting { inner: w, task: &task }, &mut digests)
    })?;
    crate::progress::name_blob(&c.digest.to_string(), &spec.name);
    Ok((c, digests))
}

/// Compresses an existing uncompressed tar stream (a layer of a `docker save`
/// archive) into a new file in `dir`.
pub fn compress_reader(mut src: impl Read, dir: &Path, what: &str) -> Result<CompressedLayer> {
    let task = crate::progress::Task::start("compress base layer", None);
    compress_with(dir, |w| {
        io::copy(&mut src, &mut crate::progress::Counting { inner: w, task: &task })
            .map(|_| ())
            .map_err(|e| Error::source(format!("{what}: {}", io_reason(&e))))
    })
}

fn compress_with(
    dir: &Path,
    fill: impl FnOnce(&mut HashWriter<gzip::ParallelGzip<HashWriter<BufWriter<File>>>>) -> Result<()>,
) -> Result<CompressedLayer> {
    let tmp = tempfile::Builder::new()
        .prefix(".layer-")
        .tempfile_in(dir)
        .map_err(|e| Error::io("creating a layer file", dir, e))?;
    let (file, tmp_path) = tmp.keep().map_err(|e| Error::io("creating a layer file", dir, e.error))?;
    let result = (|| {
        let out = HashWriter::new(BufWriter::with_capacity(1 << 20, file));
        let mut w = HashWriter::new(gzip::ParallelGzip::new(out, threads()));
        fill(&mut w)?;
        let (gz, diff_id, tar_size) = w.finish();
        let out = gz.finish().map_err(|e| Error::io("writing layer", &tmp_path, e))?;
        let (buf, digest, size) = out.finish();
        let file = buf.into_inner().map_err(|e| Error::io("writing layer", &tmp_path, e.into_error()))?;
        crate::files::readable(&file, &tmp_path)?;
        Ok(CompressedLayer { tar: TarDigest { diff_id, size: tar_size }, digest, size, path: tmp_path.clone() })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(i: usize, rel: String) -> SourceEntry {
        SourceEntry {
            path: PathBuf::from(format!("/src/{rel}")),
            rel,
            kind: SourceKind::File { size: i as u64, executable: i.is_multiple_of(5) },
            origin: None,
            key: None,
            head: None,
        }
    }

    fn placement() -> Placement {
        Placement {
            owner: Owner { uid: 7, gid: 7 },
            owned_root: "/opt".into(),
            file_mode: None,
            group_like_owner: false,
            base_folders: Default::default(),
        }
    }

    #[test]
    fn parents_the_base_has_keep_its_mode_and_owner() {
        let mut p = placement();
        p.owned_root = "/home/u".into();
        p.base_folders.insert("home".into(), (0o755, Owner { uid: 0, gid: 0 }));
        p.base_folders.insert("home/u".into(), (0o750, Owner { uid: 7, gid: 9 }));
        let mut spec = LayerSpec::new("t", 1);
        spec.add("/home/u/app/x.jar".into(), &file(1, "x.jar".into()), &p).unwrap();
        let meta = |s: &LayerSpec, path: &str| s.entries.get(path).map(|e| (e.mode, e.owner));
        assert_eq!(meta(&spec, "home"), Some((0o755, Owner { uid: 0, gid: 0 })));
        assert_eq!(meta(&spec, "home/u"), Some((0o750, Owner { uid: 7, gid: 7 })));
        assert_eq!(meta(&spec, "home/u/app"), Some((0o755, Owner { uid: 7, gid: 7 })));
        p.group_like_owner = true;
        p.owner = Owner { uid: 7, gid: 0 };
        let mut spec = LayerSpec::new("t", 1);
        spec.add("/home/u/app/x.jar".into(), &file(1, "x.jar".into()), &p).unwrap();
        assert_eq!(meta(&spec, "home"), Some((0o755, Owner { uid: 0, gid: 0 })));
        assert_eq!(meta(&spec, "home/u"), Some((0o770, Owner { uid: 7, gid: 0 })));
    }

    /// Where item `e` goes: folder by folder, except that every third
    /// item lands in a tree that sorts before the others (as tenant themes
    /// do), so runs interleave.
    fn dest(e: &SourceEntry) -> String {
        match e.kind {
            SourceKind::File { size, .. } if size % 3 == 0 => format!("/opt/a/{}", e.rel),
            _ => format!("/opt/z/{}", e.rel),
        }
    }

    /// Planned in runs on every core (and merged), a layer is the one the
    /// items make added one by one: entries, modes, owners, folders.
    #[test]
    fn collected_in_runs_the_layer_is_the_one_added_one_by_one() {
        let mut items: Vec<SourceEntry> = (0..10_000).map(|i| file(i, format!("d{:03}/f{i:05}", i / 40))).collect();
        items.push(SourceEntry { kind: SourceKind::Dir, ..file(1, "empty".into()) });
        items
            .push(SourceEntry { kind: SourceKind::Symlink { target: "d000/f00001".into() }, ..file(1, "link".into()) });
        let p = placement();
        let add = |s: &mut LayerSpec, e: &SourceEntry| s.add(dest(e), e, &p);
        let one = LayerSpec::collect_in(1, "t", 9, &items, add).unwrap();
        assert_eq!(one.file_count(), 10_001);
        for runs in [2, 3, 7] {
            let spec = LayerSpec::collect_in(runs, "t", 9, &items, add).unwrap();
            assert!(spec == one, "{runs} runs");
            assert_eq!(spec.entries().map(|(p, _)| p.to_string()).collect::<Vec<_>>().len(), one.entry_count());
        }
    }

    /// A big file rewritten in place (same size) while its layer is being
    /// written: no piece the writer holds changes under it, and the write
    /// fails naming the file (its stat moved while it was read).
    #[test]
    fn a_file_rewritten_while_written_fails_and_no_piece_changes_under_the_writer() {
        struct Rewriting(PathBuf, u8);
        impl Write for Rewriting {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let before = buf.to_vec();
                self.1 = self.1.wrapping_add(1);
                std::fs::OpenOptions::new().write(true).open(&self.0)?.write_all(&vec![self.1; 1 << 20])?;
                assert!(buf == before.as_slice(), "a piece changed while the writer held it");
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let d = tempfile::tempdir().unwrap();
        let spec = hash::tests::spec(d.path(), "w", &[("big.jar", 1 << 20)]);
        let Err(e) = spec.write_tar(&mut Rewriting(d.path().join("big.jar"), 0)) else {
            panic!("a file rewritten while it is read fails the write")
        };
        assert!(e.to_string().contains("changed while it was read"), "{e}");
    }

    /// Two runs placing different things at one path, or one run failing,
    /// fail with the error adding the items one by one gives.
    #[test]
    fn conflicts_between_runs_fail_as_adding_one_by_one_does() {
        let p = placement();
        let add = |s: &mut LayerSpec, e: &SourceEntry| {
            let dest = match e.rel.as_str() {
                "d225/f09000" => "/opt/z/d000/f00001".to_string(),
                "d225/f09001" => "/opt/z/d000/f00002/under".to_string(),
                "d225/f09002" => "/opt/../escape".to_string(),
                _ => format!("/opt/z/{}", e.rel),
            };
            s.add(dest, e, &p)
        };
        let all: Vec<SourceEntry> = (0..10_000).map(|i| file(i, format!("d{:03}/f{i:05}", i / 40))).collect();
        let without = |skip: &[usize]| -> Vec<SourceEntry> {
            all.iter().enumerate().filter(|(i, _)| !skip.contains(i)).map(|(_, e)| e.clone()).collect()
        };
        // A file where an earlier run put one; a file under an earlier file;
        // a path that leaves the image.
        for items in [without(&[9001, 9002]), without(&[9000, 9002]), without(&[9000, 9001])] {
            let want = LayerSpec::collect_in(1, "t", 9, &items, add).unwrap_err().to_string();
            let got = LayerSpec::collect_in(2, "t", 9, &items, add).unwrap_err().to_string();
            assert_eq!(got, want);
        }
        let one = LayerSpec::collect_in(1, "t", 9, &without(&[9001, 9002]), add).unwrap_err().to_string();
        assert!(one.contains("lands on /opt/z/d000/f00001"), "{one}");
    }
}
