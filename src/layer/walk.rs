//! Reads a customer folder into a sorted list of entries, refusing anything
//! that cannot go into an image as it is: symlinks that leave the folder,
//! devices, fifos, sockets, unreadable files and non-UTF-8 names. Files and
//! folders that the ignore rules leave out are skipped (and reported), never
//! checked.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::cache::StatKey;
use crate::error::{io_reason, Error, Result};
use crate::layer::ignore::{self, Excluded, Nested, Rules};

/// What a source entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A folder.
    Dir,
    /// A regular file with its size and whether any execute bit is set.
    File {
        /// Size when walked.
        size: u64,
        /// Whether any execute bit is set.
        executable: bool,
    },
    /// A symbolic link that stays inside the tree.
    Symlink {
        /// The link target, as written.
        target: String,
    },
}

/// One entry of a customer folder.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    /// Path relative to the folder, `/`-separated, never empty.
    pub rel: String,
    /// Where it is on disk.
    pub path: PathBuf,
    /// What it is.
    pub kind: SourceKind,
    /// How the user names it when it is not `folder/rel` (a Maven jar:
    /// `[maven] group:artifact:version`).
    pub origin: Option<String>,
    /// A regular file's `stat` key when it was walked (before any byte of it
    /// was read), for the digest cache.
    pub key: Option<StatKey>,
    /// A walked regular file's first bytes, once [`read_heads`] has checked
    /// that it is readable, for recognising keystores without opening it again.
    pub head: Option<Head>,
}

/// Up to the first [`super::HEAD`] bytes of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    bytes: [u8; super::HEAD],
    len: u8,
}

impl Default for Head {
    fn default() -> Self {
        Head { bytes: [0; super::HEAD], len: 0 }
    }
}

impl Head {
    /// Reads the first bytes of `path`.
    pub fn read(path: &Path) -> std::io::Result<Head> {
        let f = &mut File::open(path)?;
        let mut h = Head::default();
        let mut got = 0;
        while got < h.bytes.len() {
            match f.read(&mut h.bytes[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        h.len = got as u8;
        Ok(h)
    }

    /// The bytes read.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl SourceEntry {
    /// How the user names this entry of the folder labelled `folder`.
    pub fn shown(&self, folder: &str) -> String {
        match &self.origin {
            Some(o) => o.clone(),
            None => format!("{}/{}", folder.trim_end_matches('/'), self.rel),
        }
    }
}

/// Walks `root` (shown to the user as `label`), returning its entries sorted
/// by path bytes (a folder always precedes its contents). The root itself is
/// not included. Every file is taken: no ignore rule applies.
pub fn walk(root: &Path, label: &str) -> Result<Vec<SourceEntry>> {
    walk_filtered(root, label, &Rules::none()).map(|(entries, _)| entries)
}

/// Like [`walk`], leaving out what `rules` ignore (and the ignore files
/// inside the folder); returns the entries and what was left out, by path.
/// `label` is the folder relative to the config's folder.
///
/// Folders are listed one depth at a time, the folders of a depth on every
/// core (the names and types come from the listing itself); a folder's files
/// are `stat`-ed, each relative to the open folder, by the thread that
/// listed it (a big folder's afterwards, on every core). No file is opened:
/// [`read_heads`] does that when the caller needs it.
pub fn walk_filtered(root: &Path, label: &str, rules: &Rules) -> Result<(Vec<SourceEntry>, Vec<Excluded>)> {
    let meta = fs::metadata(root).map_err(|e| {
        Error::config(format!(
            "{label}: folder not found or unreadable ({}); create it or fix the path in wso2img.toml",
            io_reason(&e)
        ))
    })?;
    if !meta.is_dir() {
        return Err(Error::config(format!("{label}: is not a folder; point the setting in wso2img.toml at a folder")));
    }
    let real_root = fs::canonicalize(root).map_err(|e| {
        Error::config(format!("{label}: cannot resolve the folder ({}); fix the path in wso2img.toml", io_reason(&e)))
    })?;
    let project = label.trim_start_matches("./").trim_end_matches('/').to_string();
    let lister = Lister { label, project, rules };
    let (mut out, mut excluded, dirs, runs) = lister.list_all(root)?;
    stat_files(&mut out, &dirs, &runs, label)?;
    for e in &out {
        if let SourceKind::Symlink { target } = &e.kind {
            if !resolves_inside(&real_root, &e.path) {
                return Err(Error::input(format!(
                    "{label}/{}: symlink points outside {label} ({target}, through another symlink); replace it with the file it points to",
                    e.rel
                )));
            }
        }
    }
    // Paths are unique, so an unstable sort gives the same order, in place:
    // a stable one would allocate a scratch copy as big as the list.
    out.sort_unstable_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    excluded.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, excluded))
}

/// Files per `stat` task: small enough to spread a big folder over every core.
const STAT_TASK: usize = 512;
/// A folder with at most this many files has them `stat`-ed by the thread
/// that listed it, right away; bigger ones are left to [`stat_files`].
const STAT_INLINE: usize = 4 * STAT_TASK;

/// Fills in the size, mode and [`StatKey`] of every regular file the
/// listing left without one (those of big folders), on every core: `runs`
/// are ranges of `out` whose entries are children of the folder
/// `dirs[dir]`, each stat-ed relative to that folder's descriptor. The first
/// failure in walk order is the error.
fn stat_files(out: &mut [SourceEntry], dirs: &[PathBuf], runs: &[(usize, usize, usize)], label: &str) -> Result<()> {
    let mut tasks: Vec<(usize, &Path, &mut [SourceEntry])> = Vec::new();
    let mut rest = out;
    let mut at = 0;
    for &(dir, start, end) in runs {
        let (_, tail) = std::mem::take(&mut rest).split_at_mut(start - at);
        let (mut run, tail) = tail.split_at_mut(end - start);
        rest = tail;
        at = end;
        if !run.iter().any(|e| matches!(e.kind, SourceKind::File { .. }) && e.key.is_none()) {
            continue;
        }
        let mut first = start;
        while !run.is_empty() {
            let n = run.len().min(STAT_TASK);
            let (part, more) = std::mem::take(&mut run).split_at_mut(n);
            tasks.push((first, dirs[dir].as_path(), part));
            first += n;
            run = more;
        }
    }
    let failure = tasks
        .into_par_iter()
        .with_max_len(1)
        .filter_map(|(first, dir, entries)| stat_run(dir, entries, label).err().map(|(i, why)| (first + i, why)))
        .min_by_key(|(i, _)| *i);
    match failure {
        Some((_, why)) => Err(Error::input(why)),
        None => Ok(()),
    }
}

/// `stat`s the regular files of `entries`, all children of `dir`, relative
/// to its descriptor; on failure, the index of the entry and the message
/// (paths shown under `label`).
fn stat_run(dir: &Path, entries: &mut [SourceEntry], label: &str) -> std::result::Result<(), (usize, String)> {
    let pending = |e: &SourceEntry| matches!(e.kind, SourceKind::File { .. }) && e.key.is_none();
    let Some(first) = entries.iter().position(pending) else { return Ok(()) };
    let d = File::open(dir).map_err(|e| {
        let shown = match entries[first].rel.rsplit_once('/') {
            Some((parent, _)) => format!("{}/{parent}", label.trim_end_matches('/')),
            None => label.to_string(),
        };
        (first, format!("{shown}: cannot read folder ({}); fix its permissions or remove it", io_reason(&e)))
    })?;
    for (i, e) in entries.iter_mut().enumerate().filter(|(_, e)| pending(e)) {
        let rel = e.rel.as_str();
        let base = &rel[rel.rfind('/').map_or(0, |i| i + 1)..];
        // rustix makes the name C string on the stack (no allocation) when it is short.
        let st = match rustix::fs::statat(&d, base, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(err) => {
                let err = std::io::Error::from(err);
                return Err((i, format!("{}: cannot stat ({})", e.shown(label), io_reason(&err))));
            }
        };
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Err((i, format!("{}: changed while it was being read; run again", e.shown(label))));
        }
        let key = StatKey::of_stat(&st);
        e.kind = SourceKind::File { size: key.size, executable: key.mode & 0o111 != 0 };
        e.key = Some(key);
    }
    Ok(())
}

/// Opens `name` in the open folder `dir` for reading (`O_RDONLY |
/// O_CLOEXEC`).
pub(super) fn open_in(dir: &File, name: &std::ffi::OsStr) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    Ok(File::from(rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?))
}

/// Opens every regular file of `entries` (walked from the folder labelled
/// `label`) whose first bytes are not kept yet, on every core — it must be
/// readable — and keeps them; the first failure in walk order is the error.
pub fn read_heads(entries: &mut [SourceEntry], label: &str) -> Result<()> {
    let failure = entries
        .par_iter_mut()
        .enumerate()
        .with_min_len(256)
        .filter_map(|(i, e)| {
            if !matches!(e.kind, SourceKind::File { .. }) || e.head.is_some() {
                return None;
            }
            match Head::read(&e.path) {
                Ok(h) => {
                    e.head = Some(h);
                    None
                }
                Err(err) => Some((i, io_reason(&err))),
            }
        })
        .min_by_key(|(i, _)| *i);
    match failure {
        Some((i, reason)) => Err(Error::input(format!(
            "{}: cannot read ({reason}); fix its permissions or remove it",
            entries[i].shown(label)
        ))),
        None => Ok(()),
    }
}

/// A folder to list: where it is, its path inside the root, and the ignore
/// files of the folders around it (outermost first, each with its folder's
/// path inside the root).
struct Listing {
    path: PathBuf,
    rel: String,
    nested: Vec<(Arc<Nested>, String)>,
}

/// What listing one folder found.
struct Listed {
    entries: Vec<SourceEntry>,
    excluded: Vec<Excluded>,
    subdirs: Vec<Listing>,
}

/// Appends the entries of folder `d` to `out`, each subfolder's right
/// after the subfolder itself (`subdirs[d]`: the indexes of `d`'s
/// subfolders, in order), recording the ranges of `d`'s own entries.
fn emit(
    d: usize,
    listed: &mut [Option<Vec<SourceEntry>>],
    subdirs: &[std::ops::Range<usize>],
    out: &mut Vec<SourceEntry>,
    runs: &mut Vec<(usize, usize, usize)>,
) {
    let entries = listed[d].take().unwrap_or_default();
    let mut below = subdirs[d].clone();
    let mut start = out.len();
    for e in entries {
        let is_dir = e.kind == SourceKind::Dir;
        out.push(e);
        if let Some(sub) = is_dir.then(|| below.next()).flatten() {
            runs.push((d, start, out.len()));
            emit(sub, listed, subdirs, out, runs);
            start = out.len();
        }
    }
    runs.push((d, start, out.len()));
}

/// Lists the folders of one customer folder.
struct Lister<'a> {
    label: &'a str,
    /// `label` as a path relative to the config's folder, for its rules.
    project: String,
    rules: &'a Rules,
}

/// Everything a listing found: the entries, what the rules left out, every
/// folder listed, and the ranges `(folder, start, end)` of the entries whose
/// folder is `dirs[folder]`.
type ListedAll = (Vec<SourceEntry>, Vec<Excluded>, Vec<PathBuf>, Vec<(usize, usize, usize)>);

impl Lister<'_> {
    /// Lists `root` and every folder below it, one depth at a time, the
    /// folders of a depth on every core (the first failure, in the order of
    /// that depth, is the error); the entries come out depth first, names
    /// sorted in each folder — nearly the final order.
    fn list_all(&self, root: &Path) -> Result<ListedAll> {
        let mut excluded = Vec::new();
        let mut dirs = Vec::new();
        let mut listed: Vec<Option<Vec<SourceEntry>>> = Vec::new();
        let mut subdirs: Vec<std::ops::Range<usize>> = Vec::new();
        let mut level = vec![Listing { path: root.to_path_buf(), rel: String::new(), nested: Vec::new() }];
        while !level.is_empty() {
            let results = self.list_level(&level);
            let mut next = Vec::new();
            let first_next = dirs.len() + level.len();
            for (task, result) in level.into_iter().zip(results) {
                let l = result?;
                let at = first_next + next.len();
                subdirs.push(at..at + l.subdirs.len());
                dirs.push(task.path);
                listed.push(Some(l.entries));
                excluded.extend(l.excluded);
                next.extend(l.subdirs);
            }
            level = next;
        }
        let total = listed.iter().flatten().map(Vec::len).sum();
        let (mut out, mut runs) = (Vec::with_capacity(total), Vec::new());
        emit(0, &mut listed, &subdirs, &mut out, &mut runs);
        Ok((out, excluded, dirs, runs))
    }

    /// Lists the folders of one depth, on every core when there are several.
    fn list_level(&self, level: &[Listing]) -> Vec<Result<Listed>> {
        level.par_iter().with_max_len(1).map(|t| self.list(t)).collect()
    }

    fn shown(&self, r: &str) -> String {
        if r.is_empty() {
            self.label.to_string()
        } else {
            format!("{}/{r}", self.label)
        }
    }

    /// The rule that leaves out `child_rel` (`in_project`: the same path
    /// relative to the config's folder), if any.
    fn ignored(
        &self,
        nested: &[(Arc<Nested>, String)],
        in_project: &str,
        child_rel: &str,
        is_dir: bool,
    ) -> Option<String> {
        let name = child_rel.rsplit('/').next().unwrap_or(child_rel);
        if self.rules.is_empty() || nested.is_empty() && self.rules.surely_ships(name) {
            return None;
        }
        let nested: Vec<(&Nested, &str)> = nested
            .iter()
            .map(|(n, at)| (n.as_ref(), if at.is_empty() { child_rel } else { &child_rel[at.len() + 1..] }))
            .collect();
        self.rules.excludes(in_project, &nested, is_dir)
    }

    /// `child_rel` relative to the config's folder.
    fn in_project(&self, child_rel: &str) -> String {
        if self.project.is_empty() {
            child_rel.to_string()
        } else {
            format!("{}/{child_rel}", self.project)
        }
    }

    /// Lists one folder. Regular files get their kind from the listing;
    /// [`stat_files`] completes them.
    fn list(&self, task: &Listing) -> Result<Listed> {
        let (dir, rel) = (task.path.as_path(), task.rel.as_str());
        let mut nested = task.nested.clone();
        if let Some(n) = self.rules.nested(dir, &self.shown(rel))? {
            nested.push((Arc::new(n), rel.to_string()));
        }
        let rd = fs::read_dir(dir).map_err(|e| {
            Error::input(format!(
                "{}: cannot read folder ({}); fix its permissions or remove it",
                self.shown(rel),
                io_reason(&e)
            ))
        })?;
        let mut listed = Listed { entries: Vec::new(), excluded: Vec::new(), subdirs: Vec::new() };
        let mut children = Vec::new();
        for ent in rd {
            let ent =
                ent.map_err(|e| Error::input(format!("{}: cannot list folder ({})", self.shown(rel), io_reason(&e))))?;
            let name = ent.file_name();
            let ft = ent.file_type().map_err(|e| {
                Error::input(format!("{}: cannot stat ({})", self.shown(&name.to_string_lossy()), io_reason(&e)))
            })?;
            let Ok(name) = name.into_string() else {
                let lossy = ent.file_name().to_string_lossy().to_string();
                let child = if rel.is_empty() { lossy } else { format!("{rel}/{lossy}") };
                if let Some(rule) = self.ignored(&nested, &self.in_project(&child), &child, ft.is_dir()) {
                    let files = if ft.is_dir() { ignore::count_files(&ent.path()) } else { 1 };
                    listed.excluded.push(Excluded { path: self.shown(&child), rule, files });
                    continue;
                }
                return Err(Error::input(format!("{}: file name is not UTF-8; rename it", self.shown(&child))));
            };
            children.push((name, ft));
        }
        children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        listed.entries.reserve_exact(children.len());
        // Built by hand, not with `format!`: this runs once per file.
        let prefix = if rel.is_empty() { String::new() } else { format!("{rel}/") };
        let project_prefix = self.in_project(&prefix);
        let mut in_project = String::new();
        for (name, ft) in children {
            let mut child_rel = String::with_capacity(prefix.len() + name.len());
            child_rel.push_str(&prefix);
            child_rel.push_str(&name);
            in_project.clear();
            in_project.push_str(&project_prefix);
            in_project.push_str(&name);
            let path = join(dir, &name);
            if let Some(rule) = self.ignored(&nested, &in_project, &child_rel, ft.is_dir()) {
                let files = if ft.is_dir() { ignore::count_files(&path) } else { 1 };
                listed.excluded.push(Excluded { path: self.shown(&child_rel), rule, files });
                continue;
            }
            let kind = self.kind(&path, &child_rel, ft)?;
            if kind == SourceKind::Dir {
                listed.subdirs.push(Listing { path: path.clone(), rel: child_rel.clone(), nested: nested.clone() });
            }
            listed.entries.push(SourceEntry { rel: child_rel, path, kind, origin: None, key: None, head: None });
        }
        let files = listed.entries.iter().filter(|e| matches!(e.kind, SourceKind::File { .. })).count();
        if files <= STAT_INLINE {
            stat_run(dir, &mut listed.entries, self.label).map_err(|(_, why)| Error::input(why))?;
        }
        Ok(listed)
    }

    /// What the listing says `path` is; a regular file's size and mode are
    /// filled in later.
    fn kind(&self, path: &Path, child_rel: &str, ft: fs::FileType) -> Result<SourceKind> {
        let label = self.label;
        Ok(if ft.is_dir() {
            SourceKind::Dir
        } else if ft.is_file() {
            SourceKind::File { size: 0, executable: false }
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(|e| {
                Error::input(format!("{}: cannot read symlink ({})", self.shown(child_rel), io_reason(&e)))
            })?;
            let target = target
                .to_str()
                .ok_or_else(|| Error::input(format!("{}: symlink target is not UTF-8", self.shown(child_rel))))?
                .to_string();
            if !stays_inside(child_rel, &target) {
                return Err(Error::input(format!(
                    "{}: symlink points outside {label} ({target}); replace it with the file it points to",
                    self.shown(child_rel)
                )));
            }
            SourceKind::Symlink { target }
        } else {
            let what = if ft.is_fifo() {
                "a fifo"
            } else if ft.is_socket() {
                "a socket"
            } else if ft.is_block_device() || ft.is_char_device() {
                "a device"
            } else {
                "not a regular file"
            };
            return Err(Error::input(format!(
                "{}: is {what}; only files, folders and symlinks can go into an image — remove it",
                self.shown(child_rel)
            )));
        })
    }
}

/// `dir/name` in one allocation (`Path::join` copies and then grows).
fn join(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let d = dir.as_os_str().as_bytes();
    let mut p = Vec::with_capacity(d.len() + 1 + name.len());
    p.extend_from_slice(d);
    if !d.is_empty() && !d.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name.as_bytes());
    PathBuf::from(std::ffi::OsString::from_vec(p))
}

/// Whether the symlink at `link` resolves, following every symlink on the
/// way (dangling ones included, up to 40 hops), to a path inside `real_root`
/// (itself resolved). A loop counts as outside.
fn resolves_inside(real_root: &Path, link: &Path) -> bool {
    let Some(parent) = link.parent().and_then(|p| fs::canonicalize(p).ok()) else { return false };
    let Some(name) = link.file_name() else { return false };
    let mut hops = 0;
    let mut resolved = parent;
    let mut pending: Vec<std::ffi::OsString> = vec![name.to_os_string()];
    while let Some(part) = pending.pop() {
        match part.to_str() {
            Some("") | Some(".") => continue,
            Some("..") => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let next = resolved.join(&part);
        match fs::symlink_metadata(&next) {
            Ok(md) if md.file_type().is_symlink() => {
                hops += 1;
                let Ok(target) = fs::read_link(&next) else { return false };
                if hops > 40 {
                    return false;
                }
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                pending.extend(target.iter().filter(|c| *c != "/").map(|c| c.to_os_string()).rev());
            }
            _ => resolved = next,
        }
    }
    resolved.starts_with(real_root)
}

/// Whether a relative symlink at `link_rel` with `target` resolves (lexically)
/// to a path inside the tree. Absolute targets are outside by definition.
fn stays_inside(link_rel: &str, target: &str) -> bool {
    if target.starts_with('/') || target.is_empty() {
        return false;
    }
    let mut stack: Vec<&str> = link_rel.split('/').collect();
    stack.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    return false;
                }
            }
            p => stack.push(p),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_heads_keeps_the_first_bytes_of_every_walked_file() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("themes");
        // A small folder (stat-ed while listed) and a big one (left to stat_files).
        for (dir, n) in [("devportal/a", 3), ("devportal/big", 2 * STAT_INLINE + 1)] {
            fs::create_dir_all(root.join(dir)).unwrap();
            for i in 0..n {
                fs::write(root.join(dir).join(format!("f{i}")), format!("\u{feed}{i:020}")).unwrap();
            }
        }
        fs::write(root.join("devportal/empty"), b"").unwrap();
        std::os::unix::fs::symlink("a/f1", root.join("devportal/link")).unwrap();
        let (mut read, _) = walk_filtered(&root, "themes", &Rules::none()).unwrap();
        assert!(read.iter().all(|e| e.head.is_none()));
        read_heads(&mut read, "themes").unwrap();
        assert_eq!(read.len(), 3 + 2 * STAT_INLINE + 1 + 3 + 2, "files, folders and the link");
        for e in &read {
            assert_eq!(e.head.is_some(), matches!(e.kind, SourceKind::File { .. }), "{}", e.rel);
            assert!(matches!(e.kind, SourceKind::Dir) || e.key.is_some() || e.rel == "devportal/link");
        }
        let big = read.iter().find(|e| e.rel == "devportal/big/f7").unwrap();
        let want = "\u{feed}00000000000000000007".as_bytes();
        assert_eq!(big.head.unwrap().as_slice(), &want[..want.len().min(crate::layer::HEAD)]);
        let empty = read.iter().find(|e| e.rel == "devportal/empty").unwrap();
        assert_eq!(empty.head.unwrap().as_slice(), b"");
    }

    #[test]
    fn ignored_names_are_never_checked() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let bad = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
        fs::create_dir_all(d.path().join("jars/.git")).unwrap();
        fs::write(d.path().join("jars/.git").join(bad), b"x").unwrap();
        fs::write(d.path().join("jars/.DS_Store"), b"x").unwrap();
        fs::write(d.path().join("jars/a.jar"), b"x").unwrap();
        fs::write(d.path().join("jars").join(bad), b"x").unwrap();
        fs::write(d.path().join("jars/.wso2imgignore"), "caf*\n").unwrap();
        let rules = Rules::load(d.path(), "wso2img.toml", &[]).unwrap();
        let (entries, excluded) = walk_filtered(&d.path().join("jars"), "jars", &rules).unwrap();
        assert_eq!(entries.iter().map(|e| e.rel.as_str()).collect::<Vec<_>>(), ["a.jar"]);
        let rules: Vec<(&str, usize)> = excluded.iter().map(|e| (e.rule.as_str(), e.files)).collect();
        assert_eq!(rules.len(), 4, "{excluded:?}");
        assert!(rules.contains(&("built-in: .git", 1)) && rules.contains(&("jars/.wso2imgignore: caf*", 1)));
        let e = walk(&d.path().join("jars"), "jars").unwrap_err();
        assert!(e.message().contains("not UTF-8"), "{e}");
    }

    #[test]
    fn symlink_containment() {
        assert!(stays_inside("a/b", "c"));
        assert!(stays_inside("a/b", "../c"));
        assert!(!stays_inside("a/b", "../../c"));
        assert!(!stays_inside("b", "../c"));
        assert!(!stays_inside("b", "/etc/passwd"));
        assert!(stays_inside("a/b/c", "../../x/./y"));
    }

    #[test]
    fn symlink_through_symlink_is_resolved() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("overlays");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("f"), b"x").unwrap();
        std::os::unix::fs::symlink("..", root.join("sub/up")).unwrap();
        std::os::unix::fs::symlink("sub/up/f", root.join("ok")).unwrap();
        assert!(walk(&root, "overlays").is_ok());
        std::os::unix::fs::symlink("sub/up/..", root.join("esc")).unwrap();
        let e = walk(&root, "overlays").unwrap_err();
        assert!(e.message().contains("overlays/esc: symlink points outside"), "{e}");
        fs::remove_file(root.join("esc")).unwrap();
        std::os::unix::fs::symlink("sub/up/../missing", root.join("dangling")).unwrap();
        assert!(walk(&root, "overlays").is_err());
        fs::remove_file(root.join("dangling")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(walk(&root, "overlays").is_err());
    }
}
