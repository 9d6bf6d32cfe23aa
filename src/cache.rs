//! The warm cache of file digests: what wso2img learnt about files from
//! earlier runs, keyed as git's index keys its entries, so that an unchanged
//! tree is recognised by `stat` alone.
//!
//! - A [`StatKey`] is a file's device, inode, size, mtime and ctime in
//!   nanoseconds, and mode. A file whose key is unchanged is taken to hold
//!   the bytes it held when the key was recorded.
//! - Five tables: **files** (absolute path + key → sha256 of the content),
//!   **layers** (fingerprint of a layer's metadata and of its files' keys →
//!   diff_id and tar size), **gzips** (diff_id → digest and size of the gzip
//!   blob we made of that tar, so a destination can be asked for it before
//!   compressing), **notes** (fingerprint of a set of files' names and keys →
//!   a short text a caller derived from them, such as which of a folder's
//!   files is a keystore, or the layers planned from a folder — the plan
//!   memo) and **blobs** (absolute path of a blob in
//!   an OCI layout + key → the digest it was verified to have, by us).
//! - The files table is the big one and is stored last, with its own
//!   checksum: it is read only when a run asks for a file (an unchanged tree
//!   needs only the small tables).
//! - git's racy rule: an entry is kept only when the file's mtime and ctime
//!   are strictly older than a moment taken, on the filesystem's own clock
//!   (the mtime of a new file in the cache folder), before its key was
//!   taken: a file changed within the same timestamp tick could otherwise
//!   keep its key. Such entries are not stored, so the next run reads the
//!   file again. Timestamps without a sub-second part (coarse filesystems)
//!   must be two seconds older. Blobs this program wrote are recorded once
//!   the clock has moved past their last change (a few milliseconds).
//! - One file per project: `$XDG_CACHE_HOME/wso2img/digests/<key>.bin`
//!   (else `~/.cache/…`), where `<key>` is derived from the canonical path of
//!   `wso2img.toml`. A compact binary file with a version and a checksum,
//!   written atomically (last writer wins); a missing, unreadable, corrupt
//!   or foreign-version file is ignored, never an error. Deleting it at any
//!   time is safe. A run keeps only what it saw, so the file stays as big as
//!   the project.
//! - The cache only ever saves reading: whoever produces bytes checks them
//!   against it, and a contradiction is an error (see the pipeline).
//!
//! This is a bottom module: it knows files, keys and digests, nothing of
//! layers or destinations.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::digest::Digest;
use crate::files::{self, TempFile};

/// First bytes of a cache file.
const MAGIC: &[u8; 16] = b"wso2img-digests\n";
/// Format version; a file of another version is ignored.
const VERSION: u32 = 4;
/// A file larger than this is not read (and will be replaced).
const MAX_FILE: u64 = 1 << 30;
/// How much older than the snapshot a coarse (whole-second) timestamp must be.
const COARSE_SLACK_NS: i64 = 2_000_000_000;

/// A file's identity as `stat` tells it, in the fields git's index keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatKey {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the epoch.
    pub ctime_ns: i64,
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
}

impl StatKey {
    /// The key of `md`.
    pub fn of(md: &fs::Metadata) -> StatKey {
        StatKey {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_ns: nanos(md.mtime(), md.mtime_nsec()),
            ctime_ns: nanos(md.ctime(), md.ctime_nsec()),
            mode: md.mode(),
        }
    }

    /// The key of a raw `stat` result (as `fstatat` fills it in).
    #[allow(clippy::unnecessary_cast)] // the fields' types differ between targets
    pub fn of_stat(st: &rustix::fs::Stat) -> StatKey {
        StatKey {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as u64,
            mtime_ns: nanos(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime_ns: nanos(st.st_ctime as i64, st.st_ctime_nsec as i64),
            mode: st.st_mode as u32,
        }
    }

    /// The key of the file at `path` (not following a final symlink).
    pub fn stat(path: &Path) -> io::Result<StatKey> {
        fs::symlink_metadata(path).map(|m| StatKey::of(&m))
    }

    /// The time the snapshot must be later than for this key to be trusted:
    /// the newer of mtime and ctime, plus a slack when both look coarse.
    pub fn settled_after(&self) -> i64 {
        let newest = self.mtime_ns.max(self.ctime_ns);
        let coarse = self.mtime_ns % 1_000_000_000 == 0 && self.ctime_ns % 1_000_000_000 == 0;
        if coarse {
            newest.saturating_add(COARSE_SLACK_NS)
        } else {
            newest
        }
    }

    /// Whether a snapshot taken at `stamp` (nanoseconds) may keep this key.
    pub fn is_racy(&self, stamp: i64) -> bool {
        self.settled_after() >= stamp
    }

    /// Appends the key's fields, little-endian, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.dev.to_le_bytes());
        out.extend_from_slice(&self.ino.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.mtime_ns.to_le_bytes());
        out.extend_from_slice(&self.ctime_ns.to_le_bytes());
        out.extend_from_slice(&self.mode.to_le_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Option<StatKey> {
        Some(StatKey {
            dev: r.u64()?,
            ino: r.u64()?,
            size: r.u64()?,
            mtime_ns: r.u64()? as i64,
            ctime_ns: r.u64()? as i64,
            mode: r.u32()?,
        })
    }
}

/// Seconds and nanoseconds as nanoseconds since the epoch (saturating).
fn nanos(secs: i64, ns: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(ns)
}

/// What the cache knows of a layer: its uncompressed identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerHit {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Its length.
    pub size: u64,
}

#[derive(Debug, Clone)]
struct FileEntry {
    key: StatKey,
    digest: Digest,
    /// A moment (filesystem clock) before the key was taken; the entry is
    /// saved only if the key is not racy against it.
    stamp: i64,
    seen: bool,
}

/// An entry derived from a set of files (a layer, a note), kept under a
/// fingerprint of their names and keys.
#[derive(Debug, Clone)]
struct Derived<T> {
    value: T,
    /// The latest [`StatKey::settled_after`] of its files.
    settled_after: i64,
    /// As [`FileEntry::stamp`].
    stamp: i64,
    seen: bool,
}

impl<T: Clone + PartialEq> Derived<T> {
    /// As read from a cache file: not seen yet, and not racy.
    fn loaded(value: T, settled_after: i64) -> Self {
        Derived { value, settled_after, stamp: i64::MAX, seen: false }
    }

    /// Whether it is written back: seen (or kept by `keep`) and not racy.
    fn saved(&self, keep: impl Fn(bool) -> bool) -> bool {
        keep(self.seen) && self.settled_after < self.stamp
    }

    /// The value under `fp` in `table`, marked as seen.
    fn get(table: &mut HashMap<Digest, Self>, fp: &Digest) -> Option<T> {
        let e = table.get_mut(fp)?;
        e.seen = true;
        Some(e.value.clone())
    }

    /// Puts `value` under `fp` in `table`; whether that changed the table.
    fn put(table: &mut HashMap<Digest, Self>, fp: Digest, value: T, settled_after: i64, stamp: i64) -> bool {
        let changed = table.get(&fp).is_none_or(|old| old.value != value || old.settled_after != settled_after);
        table.insert(fp, Derived { value, settled_after, stamp, seen: true });
        changed
    }
}

#[derive(Default)]
struct State {
    files: HashMap<Box<Path>, FileEntry>,
    /// Where the files table is in the cache file, not read yet.
    files_raw: Option<FilesSection>,
    /// Files to keep when saving (see [`Cache::keep_files`]).
    kept: Vec<(PathBuf, StatKey)>,
    /// The cache was read from a file (so it may hold entries of earlier runs).
    loaded: bool,
    /// Keep every file entry when saving (see [`Cache::keep_every_file`]).
    keep_every_file: bool,
    notes: HashMap<Digest, Derived<String>>,
    layers: HashMap<Digest, Derived<LayerHit>>,
    blobs: HashMap<Box<Path>, FileEntry>,
    /// diff_id → the digest and size of the gzip wso2img made of that tar.
    gzips: HashMap<Digest, (Digest, u64, bool)>,
    /// Whether this run consulted blobs (else unseen blob entries are kept).
    blobs_used: bool,
    /// A moment before this run took any key: entries it adds are saved
    /// only if their keys are not racy against it.
    stamp: i64,
    /// Blobs written by this run, recorded when saving.
    written: Vec<(PathBuf, Digest)>,
    /// Whether anything changed since loading.
    dirty: bool,
    /// Drop entries this run did not see when saving.
    prune: bool,
}

impl State {
    /// The files table, parsed on first use (a damaged one counts as empty).
    fn files(&mut self) -> &mut HashMap<Box<Path>, FileEntry> {
        if let Some(raw) = self.files_raw.take() {
            match raw.read().as_deref().and_then(parse_files) {
                Some(t) => self.files = t,
                None => self.dirty = true,
            }
        }
        &mut self.files
    }
}

/// The cache of one project, or a disabled one (`--no-cache`) that knows
/// nothing and remembers nothing. Shared between threads.
pub struct Cache {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("path", &self.path).finish_non_exhaustive()
    }
}

/// The folder of the digest caches: `$XDG_CACHE_HOME/wso2img/digests`, else
/// `$HOME/.cache/wso2img/digests`; `None` when neither is set.
pub fn dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wso2img").join("digests"))
}

/// The cache file of the project whose config is `config`.
pub fn file_for(config: &Path) -> Option<PathBuf> {
    let abs = fs::canonicalize(config)
        .or_else(|_| std::env::current_dir().map(|d| d.join(config)))
        .unwrap_or_else(|_| config.to_path_buf());
    let d = Digest::of(abs.as_os_str().as_bytes());
    Some(dir()?.join(format!("{}.bin", d.short(32))))
}

impl Cache {
    /// A cache that knows nothing and saves nothing.
    pub fn disabled() -> Cache {
        Cache { path: None, state: Mutex::new(State::default()) }
    }

    /// The cache of the project whose config is `config`, loaded (an
    /// unusable file is ignored). Entries this run does not see are dropped
    /// when it saves.
    pub fn for_project(config: &Path) -> Cache {
        match file_for(config) {
            Some(p) => {
                let c = Cache::load(&p);
                c.lock().prune = true;
                c
            }
            None => Cache::disabled(),
        }
    }

    /// The cache stored at `path` (an unusable file is ignored). Saving keeps
    /// every entry.
    pub fn load(path: &Path) -> Cache {
        let stamp = fs_now(files::parent_of(path));
        let mut state = match read_state(path) {
            Ok(Some(s)) => s,
            Ok(None) => State::default(),
            Err(why) => {
                crate::progress::detail(&format!("{}: ignoring the digest cache ({why})", path.display()));
                State { dirty: true, ..State::default() }
            }
        };
        state.stamp = stamp;
        Cache { path: Some(path.to_path_buf()), state: Mutex::new(state) }
    }

    /// Whether this cache is used at all.
    pub fn enabled(&self) -> bool {
        self.path.is_some()
    }

    /// Where it is stored.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The layer with fingerprint `fp`, when known.
    pub fn layer(&self, fp: &Digest) -> Option<LayerHit> {
        Derived::get(&mut self.lock().layers, fp)
    }

    /// Remembers a layer; `settled_after` is the latest
    /// [`StatKey::settled_after`] of its files (the entry is not saved while
    /// any of them is racy).
    pub fn put_layer(&self, fp: Digest, hit: LayerHit, settled_after: i64) {
        if !self.enabled() {
            return;
        }
        let mut s = self.lock();
        let stamp = s.stamp;
        if Derived::put(&mut s.layers, fp, hit, settled_after, stamp) {
            s.dirty = true;
        }
    }

    /// The digest and size of the gzip blob wso2img made of the tar with
    /// `diff_id` (the compression is a pinned function of the tar), so a
    /// destination can be asked whether it has that blob before anything is
    /// compressed.
    pub fn gzip(&self, diff_id: &Digest) -> Option<(Digest, u64)> {
        let mut s = self.lock();
        let e = s.gzips.get_mut(diff_id)?;
        e.2 = true;
        Some((e.0, e.1))
    }

    /// Remembers the gzip blob made of the tar with `diff_id`.
    pub fn put_gzip(&self, diff_id: Digest, digest: Digest, size: u64) {
        if !self.enabled() {
            return;
        }
        let mut s = self.lock();
        if s.gzips.get(&diff_id).is_none_or(|e| (e.0, e.1) != (digest, size)) {
            s.dirty = true;
        }
        s.gzips.insert(diff_id, (digest, size, true));
    }

    /// Forgets a layer.
    pub fn drop_layer(&self, fp: &Digest) {
        let mut s = self.lock();
        if s.layers.remove(fp).is_some() {
            s.dirty = true;
        }
    }

    /// The recorded digest of the file at absolute `path`, when its key is
    /// still `key`. Marks the entry as seen.
    pub fn file(&self, path: &Path, key: &StatKey) -> Option<Digest> {
        let mut s = self.lock();
        let e = s.files().get_mut(path)?;
        if e.key != *key {
            return None;
        }
        e.seen = true;
        Some(e.digest)
    }

    /// Keeps the entries of these files (absolute paths) whose keys still
    /// match, without looking at their digests, when the cache is saved.
    pub fn keep_files(&self, files: impl IntoIterator<Item = (PathBuf, StatKey)>) {
        if !self.enabled() {
            return;
        }
        let mut s = self.lock();
        // Only entries of earlier runs can be left out when saving: a fresh
        // cache keeps every entry this run adds anyway.
        if s.loaded {
            s.kept.extend(files);
        }
    }

    /// Keeps every file entry when the cache is saved: for a run that knows
    /// its files to be those of an earlier run without listing them.
    pub fn keep_every_file(&self) {
        self.lock().keep_every_file = true;
    }

    /// The note recorded under fingerprint `fp`, when known.
    pub fn note(&self, fp: &Digest) -> Option<String> {
        Derived::get(&mut self.lock().notes, fp)
    }

    /// Remembers `text` under `fp`, a fingerprint of the names and
    /// [`StatKey`]s of the files it was derived from; `settled_after` is the
    /// latest [`StatKey::settled_after`] of those files (the note is not
    /// saved while any of them is racy).
    pub fn put_note(&self, fp: Digest, text: String, settled_after: i64) {
        if !self.enabled() {
            return;
        }
        let mut s = self.lock();
        let stamp = s.stamp;
        if Derived::put(&mut s.notes, fp, text, settled_after, stamp) {
            s.dirty = true;
        }
    }

    /// Forgets a note.
    pub fn drop_note(&self, fp: &Digest) {
        let mut s = self.lock();
        if s.notes.remove(fp).is_some() {
            s.dirty = true;
        }
    }

    /// Remembers that the file at absolute `path`, whose key was `key` before
    /// it was read, holds bytes with `digest`.
    pub fn put_file(&self, path: &Path, key: StatKey, digest: Digest) {
        if !self.enabled() {
            return;
        }
        let mut s = self.lock();
        let stamp = s.stamp;
        match s.files().get_mut(path) {
            Some(e) if e.key == key && e.digest == digest => e.seen = true,
            _ => {
                s.files().insert(path.into(), FileEntry { key, digest, stamp, seen: true });
                s.dirty = true;
            }
        }
    }

    /// Forgets a file.
    pub fn drop_file(&self, path: &Path) {
        let mut s = self.lock();
        if s.files().remove(path).is_some() {
            s.dirty = true;
        }
    }

    /// Whether the blob at absolute `path` with key `key` was verified, by
    /// this program, to have `digest`.
    pub fn blob_verified(&self, path: &Path, key: &StatKey, digest: &Digest) -> bool {
        let mut s = self.lock();
        s.blobs_used = true;
        match s.blobs.get_mut(path) {
            Some(e) if e.key == *key && e.digest == *digest => {
                e.seen = true;
                true
            }
            _ => false,
        }
    }

    /// Remembers that the blob at absolute `path`, with key `key` (taken
    /// before it was read), has `digest`.
    pub fn put_blob(&self, path: &Path, key: StatKey, digest: Digest) {
        if !self.enabled() {
            return;
        }
        let mut s = self.lock();
        s.blobs_used = true;
        let stamp = s.stamp;
        s.blobs.insert(path.into(), FileEntry { key, digest, stamp, seen: true });
        s.dirty = true;
    }

    /// Remembers that this program just wrote the blob at absolute `path`
    /// with bytes it verified to have `digest`. Its key is taken when
    /// saving, once the filesystem's clock has moved past the blob's last
    /// change (so that the key is not racy); whoever still holds a link to
    /// it (a staging folder) should be gone by then.
    pub fn wrote_blob(&self, path: &Path, digest: Digest) {
        if !self.enabled() {
            return;
        }
        let mut s = self.lock();
        s.blobs_used = true;
        s.written.push((path.to_path_buf(), digest));
        s.dirty = true;
    }

    /// Forgets a blob.
    pub fn drop_blob(&self, path: &Path) {
        let mut s = self.lock();
        s.blobs_used = true;
        if s.blobs.remove(path).is_some() {
            s.dirty = true;
        }
    }

    /// Every file entry: absolute path, key, digest (for tests and tools).
    pub fn file_entries(&self) -> Vec<(PathBuf, StatKey, Digest)> {
        let mut s = self.lock();
        let mut v: Vec<_> = s.files().iter().map(|(p, e)| (p.to_path_buf(), e.key, e.digest)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Every blob entry: absolute path, key, digest (for tests and tools).
    pub fn blob_entries(&self) -> Vec<(PathBuf, StatKey, Digest)> {
        let s = self.lock();
        let mut v: Vec<_> = s.blobs.iter().map(|(p, e)| (p.to_path_buf(), e.key, e.digest)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Every note: fingerprint and text (for tests and tools).
    pub fn note_entries(&self) -> Vec<(Digest, String)> {
        let s = self.lock();
        let mut v: Vec<_> = s.notes.iter().map(|(f, e)| (*f, e.value.clone())).collect();
        v.sort_by_key(|(f, _)| *f);
        v
    }

    /// Every layer entry: fingerprint and what is known of the layer.
    pub fn layer_entries(&self) -> Vec<(Digest, LayerHit)> {
        let s = self.lock();
        let mut v: Vec<_> = s.layers.iter().map(|(f, e)| (*f, e.value)).collect();
        v.sort_by_key(|(f, _)| *f);
        v
    }

    /// Writes the cache back when something changed, atomically, leaving out
    /// racy entries (and, for a project cache, what this run did not see).
    /// Best effort: a cache that cannot be written is left as it was.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        let mut s = self.lock();
        if !s.dirty {
            return;
        }
        let kept = std::mem::take(&mut s.kept);
        let files = s.files();
        for (p, k) in kept {
            if let Some(e) = files.get_mut(p.as_path()) {
                if e.key == k {
                    e.seen = true;
                }
            }
        }
        if !s.written.is_empty() {
            let written = std::mem::take(&mut s.written);
            record_written(&mut s, files::parent_of(path), written);
        }
        match write_state(path, &s) {
            Ok(()) => s.dirty = false,
            Err(why) => crate::progress::detail(&format!("{}: digest cache not saved ({why})", path.display())),
        }
    }
}

/// Now, on the clock of the filesystem that holds `dir` (the mtime of a new
/// file there); the system clock when no file can be made there.
fn fs_now(dir: &Path) -> i64 {
    let made = fs::create_dir_all(dir).ok().and_then(|_| TempFile::new_in(dir, "stamp", "").ok());
    if let Some(mut t) = made {
        if let Ok(m) = t.file().metadata() {
            return StatKey::of(&m).mtime_ns;
        }
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_nanos()).unwrap_or(i64::MAX)
}

/// Records the blobs this run wrote: waits (a few milliseconds at most) for
/// the filesystem's clock to pass their last change, so that their keys,
/// taken after that moment, are not racy.
fn record_written(s: &mut State, dir: &Path, written: Vec<(PathBuf, Digest)>) {
    let newest = written.iter().filter_map(|(p, _)| StatKey::stat(p).ok()).map(|k| k.settled_after()).max();
    let Some(newest) = newest else { return };
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
    let mut stamp = fs_now(dir);
    while stamp <= newest && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
        stamp = fs_now(dir);
    }
    for (p, digest) in written {
        if let Ok(key) = StatKey::stat(&p) {
            s.blobs.insert(p.into(), FileEntry { key, digest, stamp, seen: true });
        }
    }
}

fn write_state(path: &Path, s: &State) -> Result<(), String> {
    let parent = files::parent_of(path);
    fs::create_dir_all(parent).map_err(|e| crate::error::io_reason(&e))?;
    files::sweep(parent);
    let mut tmp = TempFile::new_in(parent, "digests", ".bin").map_err(|e| e.message().to_string())?;
    let keep = |seen: bool| seen || !s.prune;
    let keep_blobs = |seen: bool| seen || !s.prune || !s.blobs_used;
    let keep_files = |seen: bool| keep(seen) || s.keep_every_file;
    let ioerr = |e: io::Error| crate::error::io_reason(&e);
    let mut head = Vec::with_capacity(64 * 1024);
    let layers: Vec<_> = s.layers.iter().filter(|(_, e)| e.saved(keep)).collect();
    head.extend_from_slice(&(layers.len() as u64).to_le_bytes());
    for (fp, e) in layers {
        head.extend_from_slice(fp.bytes());
        head.extend_from_slice(e.value.diff_id.bytes());
        head.extend_from_slice(&e.value.size.to_le_bytes());
        head.extend_from_slice(&e.settled_after.to_le_bytes());
    }
    let gzips: Vec<_> = s.gzips.iter().filter(|(_, e)| keep(e.2)).collect();
    head.extend_from_slice(&(gzips.len() as u64).to_le_bytes());
    for (diff_id, (digest, size, _)) in gzips {
        head.extend_from_slice(diff_id.bytes());
        head.extend_from_slice(digest.bytes());
        head.extend_from_slice(&size.to_le_bytes());
    }
    let notes: Vec<_> = s.notes.iter().filter(|(_, e)| e.saved(keep)).collect();
    head.extend_from_slice(&(notes.len() as u64).to_le_bytes());
    for (fp, e) in notes {
        head.extend_from_slice(fp.bytes());
        head.extend_from_slice(&e.settled_after.to_le_bytes());
        head.extend_from_slice(&(e.value.len() as u32).to_le_bytes());
        head.extend_from_slice(e.value.as_bytes());
    }
    put_table(&mut head, &s.blobs, &keep_blobs).map_err(ioerr)?;
    let file = tmp.file().try_clone().map_err(|e| crate::error::io_reason(&e))?;
    let mut w = io::BufWriter::with_capacity(256 * 1024, file);
    w.write_all(MAGIC).map_err(ioerr)?;
    w.write_all(&VERSION.to_le_bytes()).map_err(ioerr)?;
    w.write_all(&(head.len() as u64).to_le_bytes()).map_err(ioerr)?;
    w.write_all(&head).map_err(ioerr)?;
    w.write_all(&crc32fast::hash(&head).to_le_bytes()).map_err(ioerr)?;
    let mut out = Crc(w, crc32fast::Hasher::new());
    put_table(&mut out, &s.files, &keep_files).map_err(ioerr)?;
    let Crc(mut w, crc) = out;
    w.write_all(&crc.finalize().to_le_bytes()).and_then(|_| w.flush()).map_err(ioerr)?;
    drop(w);
    tmp.persist(path).map_err(|e| e.message().to_string())
}

/// Writes a table of path + key → digest: its live entries (kept, and not racy).
fn put_table(
    out: &mut impl Write,
    table: &HashMap<Box<Path>, FileEntry>,
    keep: &dyn Fn(bool) -> bool,
) -> io::Result<()> {
    let live = |e: &FileEntry| keep(e.seen) && !e.key.is_racy(e.stamp);
    out.write_all(&(table.values().filter(|e| live(e)).count() as u64).to_le_bytes())?;
    let mut rec = Vec::with_capacity(4096);
    for (p, e) in table.iter().filter(|(_, e)| live(e)) {
        let b = p.as_os_str().as_bytes();
        rec.clear();
        rec.extend_from_slice(&(b.len() as u32).to_le_bytes());
        rec.extend_from_slice(b);
        e.key.encode(&mut rec);
        rec.extend_from_slice(e.digest.bytes());
        out.write_all(&rec)?;
    }
    Ok(())
}

/// A writer that keeps the crc32 of what passes through it.
struct Crc<W>(W, crc32fast::Hasher);

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.0.write(b)?;
        self.1.update(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Reads a cache file: `Ok(None)` when there is none, `Err` with a reason
/// when it cannot be used. Only the small tables are read; the files table
/// is read (and checked) when a run first asks for a file.
///
/// Layout: magic, version, the length of the small tables, the small tables
/// (layers, gzips, notes, blobs) and their crc32, then the files table and
/// its crc32.
fn read_state(path: &Path) -> Result<Option<State>, String> {
    let mut f = match crate::bounded::open_file(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if crate::bounded::refusal(&e).is_some() => return Err(crate::bounded::read_error(&e)),
        Err(e) => return Err(crate::error::io_reason(&e)),
    };
    let meta = f.metadata().map_err(|e| crate::error::io_reason(&e))?;
    if std::os::unix::fs::MetadataExt::uid(&meta) != rustix::process::geteuid().as_raw() {
        return Err("owned by another user".into());
    }
    let len = meta.len();
    if len > MAX_FILE {
        return Err("too large".into());
    }
    let damaged = || "not a digest cache of this version, or damaged".to_string();
    let mut top = [0u8; 16 + 4 + 8];
    f.read_exact(&mut top).map_err(|_| damaged())?;
    let mut r = Reader(&top);
    if r.take(MAGIC.len()) != Some(MAGIC.as_slice()) || r.u32() != Some(VERSION) {
        return Err(damaged());
    }
    let head_len = r.u64().filter(|&n| n.saturating_add(top.len() as u64 + 4 + 12) <= len).ok_or_else(damaged)?;
    let mut head = vec![0u8; head_len as usize + 4];
    f.read_exact(&mut head).map_err(|_| damaged())?;
    let mut s = parse_head(&head).ok_or_else(damaged)?;
    let offset = top.len() as u64 + head.len() as u64;
    s.files_raw = Some(FilesSection { file: f, offset, len: len - offset });
    s.loaded = true;
    Ok(Some(s))
}

/// The files table's place in an open cache file.
struct FilesSection {
    file: File,
    offset: u64,
    /// Its length, crc32 included.
    len: u64,
}

impl FilesSection {
    /// Its bytes, when they can be read and their crc32 matches.
    fn read(&self) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut bytes = vec![0u8; usize::try_from(self.len).ok()?];
        self.file.read_exact_at(&mut bytes, self.offset).ok()?;
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        (crc32fast::hash(body).to_le_bytes() == crc).then_some(())?;
        bytes.truncate(bytes.len() - 4);
        Some(bytes)
    }
}

/// The small tables of a cache file, with their crc32 last.
fn parse_head(bytes: &[u8]) -> Option<State> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let mut r = Reader(body);
    let mut s = State::default();
    let n = r.count(32 + 32 + 8 + 8)?;
    for _ in 0..n {
        let fp = r.digest()?;
        let diff_id = r.digest()?;
        let size = r.u64()?;
        let settled_after = r.u64()? as i64;
        s.layers.insert(fp, Derived::loaded(LayerHit { diff_id, size }, settled_after));
    }
    let n = r.count(32 + 32 + 8)?;
    for _ in 0..n {
        let diff_id = r.digest()?;
        let digest = r.digest()?;
        let size = r.u64()?;
        s.gzips.insert(diff_id, (digest, size, false));
    }
    let n = r.count(32 + 8 + 4)?;
    for _ in 0..n {
        let fp = r.digest()?;
        let settled_after = r.u64()? as i64;
        let len = r.u32()? as usize;
        let text = std::str::from_utf8(r.take(len)?).ok()?.to_string();
        s.notes.insert(fp, Derived::loaded(text, settled_after));
    }
    s.blobs = file_table(&mut r)?;
    r.0.is_empty().then_some(s)
}

/// The files table stored last in a cache file (its crc32 checked).
fn parse_files(raw: &[u8]) -> Option<HashMap<Box<Path>, FileEntry>> {
    let mut r = Reader(raw);
    let t = file_table(&mut r)?;
    r.0.is_empty().then_some(t)
}

/// A table of path + key → digest.
fn file_table(r: &mut Reader<'_>) -> Option<HashMap<Box<Path>, FileEntry>> {
    let n = r.count(4 + 44 + 32)?;
    let mut table = HashMap::with_capacity(n);
    for _ in 0..n {
        let len = r.u32()? as usize;
        let p: Box<Path> = Path::new(std::ffi::OsStr::from_bytes(r.take(len)?)).into();
        let key = StatKey::decode(r)?;
        let digest = r.digest()?;
        table.insert(p, FileEntry { key, digest, stamp: i64::MAX, seen: false });
    }
    Some(table)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.0.split_at_checked(n)?;
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn digest(&mut self) -> Option<Digest> {
        let b: [u8; 32] = self.take(32)?.try_into().ok()?;
        Some(Digest::from_bytes(b))
    }
    /// A count of records of at least `min` bytes each, checked against what is left.
    fn count(&mut self, min: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n.checked_mul(min)? <= self.0.len()).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: i64) -> StatKey {
        StatKey { dev: 1, ino: n as u64, size: 10, mtime_ns: n * 1_000 + 7, ctime_ns: n * 1_000 + 7, mode: 0o100644 }
    }

    #[test]
    fn round_trip_and_racy_entries() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.bin");
        let c = Cache::load(&p);
        assert!(c.enabled());
        let old = key(1_000_000);
        let future = StatKey { mtime_ns: i64::MAX / 2, ..key(2) };
        c.put_file(Path::new("/a"), old, Digest::of(b"a"));
        c.put_file(Path::new("/racy"), future, Digest::of(b"r"));
        c.put_blob(Path::new("/blob"), old, Digest::of(b"b"));
        let hit = LayerHit { diff_id: Digest::of(b"tar"), size: 1536 };
        c.put_layer(Digest::of(b"fp"), hit, old.settled_after());
        c.put_layer(Digest::of(b"fp-racy"), hit, future.settled_after());
        c.put_gzip(Digest::of(b"tar"), Digest::of(b"gz"), 700);
        c.put_note(Digest::of(b"folder"), "overlays/x.jks (JKS)".into(), old.settled_after());
        c.put_note(Digest::of(b"folder-racy"), String::new(), future.settled_after());
        c.save();
        let c = Cache::load(&p);
        assert_eq!(c.note(&Digest::of(b"folder")).as_deref(), Some("overlays/x.jks (JKS)"));
        assert_eq!(c.note(&Digest::of(b"folder-racy")), None, "a racy note is not kept");
        // Saving a change elsewhere keeps the files table, which was never parsed.
        c.put_layer(Digest::of(b"fp2"), hit, old.settled_after());
        c.save();
        let c = Cache::load(&p);
        assert_eq!(c.file(Path::new("/a"), &old), Some(Digest::of(b"a")));
        assert_eq!(c.file(Path::new("/a"), &StatKey { ctime_ns: 5, ..old }), None, "another ctime is another file");
        assert_eq!(c.file(Path::new("/racy"), &future), None, "a racy entry is not kept");
        assert!(c.blob_verified(Path::new("/blob"), &old, &Digest::of(b"b")));
        assert!(!c.blob_verified(Path::new("/blob"), &old, &Digest::of(b"x")));
        assert_eq!(c.layer(&Digest::of(b"fp")), Some(hit));
        assert_eq!(c.layer(&Digest::of(b"fp-racy")), None);
        assert_eq!(c.gzip(&Digest::of(b"tar")), Some((Digest::of(b"gz"), 700)));
        assert_eq!(c.gzip(&Digest::of(b"other")), None);
    }

    #[test]
    fn coarse_timestamps_need_two_seconds() {
        let k = StatKey { mtime_ns: 10_000_000_000, ctime_ns: 10_000_000_000, ..key(1) };
        assert!(k.is_racy(11_500_000_000));
        assert!(!k.is_racy(12_000_000_001));
        let fine = StatKey { mtime_ns: 10_000_000_001, ..k };
        assert!(!fine.is_racy(10_000_000_002));
        assert!(fine.is_racy(10_000_000_001), "the same tick is racy");
    }

    #[test]
    fn damaged_files_are_ignored() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.bin");
        let c = Cache::load(&p);
        c.put_file(Path::new("/a"), key(1), Digest::of(b"a"));
        c.save();
        let good = fs::read(&p).unwrap();
        let flipped = |at: usize| {
            let mut b = good.clone();
            b[at] ^= 1;
            b
        };
        for bad in [b"garbage".to_vec(), good[..good.len() - 1].to_vec(), flipped(20), flipped(good.len() - 8)] {
            fs::write(&p, &bad).unwrap();
            let c = Cache::load(&p);
            assert!(c.file_entries().is_empty());
            c.save();
            assert!(Cache::load(&p).file_entries().is_empty(), "a damaged file is replaced");
        }
    }

    #[test]
    fn a_project_cache_keeps_what_the_run_saw() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.bin");
        let c = Cache::load(&p);
        c.put_file(Path::new("/a"), key(1), Digest::of(b"a"));
        c.put_file(Path::new("/b"), key(2), Digest::of(b"b"));
        c.put_blob(Path::new("/blob"), key(3), Digest::of(b"c"));
        c.save();
        let c = Cache::load(&p);
        c.lock().prune = true;
        c.keep_files([(PathBuf::from("/a"), key(1))]);
        c.put_file(Path::new("/new"), key(4), Digest::of(b"n"));
        c.save();
        let names: Vec<PathBuf> = Cache::load(&p).file_entries().into_iter().map(|e| e.0).collect();
        assert_eq!(names, [PathBuf::from("/a"), PathBuf::from("/new")]);
        assert!(Cache::load(&p).blob_verified(Path::new("/blob"), &key(3), &Digest::of(b"c")), "blobs not consulted");
    }

    #[test]
    fn disabled_remembers_nothing() {
        let c = Cache::disabled();
        c.put_file(Path::new("/a"), key(1), Digest::of(b"a"));
        assert_eq!(c.file(Path::new("/a"), &key(1)), None);
        c.save();
    }
}
