//! Reads a customer folder into a sorted list of entries, refusing anything
//! that cannot go into an image as it is: symlinks that leave the folder,
//! devices, fifos, sockets, unreadable files and non-UTF-8 names. Files and
//! folders that the ignore rules leave out are skipped (and reported), never
//! checked.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
    /// A walked regular file's first bytes (read when the walk checked it is
    /// readable), for recognising keystores without opening it again.
    pub head: Option<Head>,
}

/// Up to the first 16 bytes of a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Head {
    bytes: [u8; 16],
    len: u8,
}

impl Head {
    /// Reads the first bytes of `path`.
    pub fn read(path: &Path) -> std::io::Result<Head> {
        let mut f = File::open(path)?;
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
    let mut w = Walker {
        label,
        project: label.trim_start_matches("./").trim_end_matches('/').to_string(),
        rules,
        nested: Vec::new(),
        out: Vec::new(),
        excluded: Vec::new(),
    };
    w.dir(root, "")?;
    let Walker { mut out, mut excluded, .. } = w;
    read_heads(&mut out, label)?;
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
    out.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    excluded.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, excluded))
}

/// Opens every regular file of `entries` on every core — it must be
/// readable — and keeps its first bytes; the first failure in walk order is
/// the error.
fn read_heads(entries: &mut [SourceEntry], label: &str) -> Result<()> {
    let threads = crate::layer::threads().max(1);
    let chunk = entries.len().div_ceil(threads).max(256);
    let failures: Vec<Option<(usize, String)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = entries
            .chunks_mut(chunk)
            .enumerate()
            .map(|(c, part)| {
                scope.spawn(move || {
                    for (j, e) in part.iter_mut().enumerate() {
                        if !matches!(e.kind, SourceKind::File { .. }) {
                            continue;
                        }
                        match Head::read(&e.path) {
                            Ok(h) => e.head = Some(h),
                            Err(err) => return Some((c * chunk + j, io_reason(&err))),
                        }
                    }
                    None
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    match failures.into_iter().flatten().min_by_key(|(i, _)| *i) {
        Some((i, reason)) => Err(Error::input(format!(
            "{}/{}: cannot read ({reason}); fix its permissions or remove it",
            label.trim_end_matches('/'),
            entries[i].rel
        ))),
        None => Ok(()),
    }
}

struct Walker<'a> {
    label: &'a str,
    /// `label` as a path relative to the config's folder, for its rules.
    project: String,
    rules: &'a Rules,
    /// Ignore files of the enclosing folders, with each folder's path inside the root.
    nested: Vec<(Nested, String)>,
    out: Vec<SourceEntry>,
    excluded: Vec<Excluded>,
}

impl Walker<'_> {
    fn shown(&self, r: &str) -> String {
        if r.is_empty() {
            self.label.to_string()
        } else {
            format!("{}/{r}", self.label)
        }
    }

    /// The rule that leaves out `child_rel`, if any.
    fn ignored(&self, child_rel: &str, is_dir: bool) -> Option<String> {
        let in_project =
            if self.project.is_empty() { child_rel.to_string() } else { format!("{}/{child_rel}", self.project) };
        let nested: Vec<(&Nested, String)> = self
            .nested
            .iter()
            .map(|(n, at)| {
                let rel = if at.is_empty() { child_rel.to_string() } else { child_rel[at.len() + 1..].to_string() };
                (n, rel)
            })
            .collect();
        self.rules.excludes(&in_project, &nested, is_dir)
    }

    fn dir(&mut self, dir: &Path, rel: &str) -> Result<()> {
        let pushed = match self.rules.nested(dir, &self.shown(rel))? {
            Some(n) => {
                self.nested.push((n, rel.to_string()));
                true
            }
            None => false,
        };
        let rd = fs::read_dir(dir).map_err(|e| {
            Error::input(format!(
                "{}: cannot read folder ({}); fix its permissions or remove it",
                self.shown(rel),
                io_reason(&e)
            ))
        })?;
        let mut names = Vec::new();
        for ent in rd {
            let ent =
                ent.map_err(|e| Error::input(format!("{}: cannot list folder ({})", self.shown(rel), io_reason(&e))))?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else {
                let lossy = name.to_string_lossy();
                let child = if rel.is_empty() { lossy.to_string() } else { format!("{rel}/{lossy}") };
                let is_dir = ent.file_type().is_ok_and(|t| t.is_dir());
                if let Some(rule) = self.ignored(&child, is_dir) {
                    let files = if is_dir { ignore::count_files(&ent.path()) } else { 1 };
                    self.excluded.push(Excluded { path: self.shown(&child), rule, files });
                    continue;
                }
                return Err(Error::input(format!("{}: file name is not UTF-8; rename it", self.shown(&child))));
            };
            names.push(name.to_string());
        }
        names.sort();
        for name in names {
            let child_rel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let path = dir.join(&name);
            let md = fs::symlink_metadata(&path)
                .map_err(|e| Error::input(format!("{}: cannot stat ({})", self.shown(&child_rel), io_reason(&e))))?;
            let ft = md.file_type();
            if let Some(rule) = self.ignored(&child_rel, ft.is_dir()) {
                let files = if ft.is_dir() { ignore::count_files(&path) } else { 1 };
                self.excluded.push(Excluded { path: self.shown(&child_rel), rule, files });
                continue;
            }
            let kind = self.kind(&path, &child_rel, &md)?;
            let is_dir = kind == SourceKind::Dir;
            let key = matches!(kind, SourceKind::File { .. }).then(|| StatKey::of(&md));
            self.out.push(SourceEntry {
                rel: child_rel.clone(),
                path: path.clone(),
                kind,
                origin: None,
                key,
                head: None,
            });
            if is_dir {
                self.dir(&path, &child_rel)?;
            }
        }
        if pushed {
            self.nested.pop();
        }
        Ok(())
    }

    fn kind(&self, path: &Path, child_rel: &str, md: &fs::Metadata) -> Result<SourceKind> {
        let label = self.label;
        let ft = md.file_type();
        Ok(if ft.is_dir() {
            SourceKind::Dir
        } else if ft.is_file() {
            SourceKind::File { size: md.len(), executable: md.permissions().mode() & 0o111 != 0 }
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
