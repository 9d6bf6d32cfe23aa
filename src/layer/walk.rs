//! Reads a customer folder into a sorted list of entries, refusing anything
//! that cannot go into an image as it is: symlinks that leave the folder,
//! devices, fifos, sockets, unreadable files and non-UTF-8 names.

use std::fs::{self, File};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{io_reason, Error, Result};

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
}

/// Walks `root` (shown to the user as `label`), returning its entries sorted
/// by path bytes (a folder always precedes its contents). The root itself is
/// not included.
pub fn walk(root: &Path, label: &str) -> Result<Vec<SourceEntry>> {
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
    let mut out = Vec::new();
    walk_dir(root, "", label, &mut out)?;
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
    Ok(out)
}

fn walk_dir(dir: &Path, rel: &str, label: &str, out: &mut Vec<SourceEntry>) -> Result<()> {
    let shown = |r: &str| if r.is_empty() { label.to_string() } else { format!("{label}/{r}") };
    let rd = fs::read_dir(dir).map_err(|e| {
        Error::input(format!(
            "{}: cannot read folder ({}); fix its permissions or remove it",
            shown(rel),
            io_reason(&e)
        ))
    })?;
    let mut names = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::input(format!("{}: cannot list folder ({})", shown(rel), io_reason(&e))))?;
        let name = ent.file_name();
        let name = name.to_str().ok_or_else(|| {
            Error::input(format!("{}/{}: file name is not UTF-8; rename it", shown(rel), name.to_string_lossy()))
        })?;
        names.push(name.to_string());
    }
    names.sort();
    for name in names {
        let child_rel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        let path = dir.join(&name);
        let md = fs::symlink_metadata(&path)
            .map_err(|e| Error::input(format!("{}: cannot stat ({})", shown(&child_rel), io_reason(&e))))?;
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            SourceKind::Dir
        } else if ft.is_file() {
            File::open(&path).map_err(|e| {
                Error::input(format!(
                    "{}: cannot read ({}); fix its permissions or remove it",
                    shown(&child_rel),
                    io_reason(&e)
                ))
            })?;
            SourceKind::File { size: md.len(), executable: md.permissions().mode() & 0o111 != 0 }
        } else if ft.is_symlink() {
            let target = fs::read_link(&path)
                .map_err(|e| Error::input(format!("{}: cannot read symlink ({})", shown(&child_rel), io_reason(&e))))?;
            let target = target
                .to_str()
                .ok_or_else(|| Error::input(format!("{}: symlink target is not UTF-8", shown(&child_rel))))?
                .to_string();
            if !stays_inside(&child_rel, &target) {
                return Err(Error::input(format!(
                    "{}: symlink points outside {label} ({target}); replace it with the file it points to",
                    shown(&child_rel)
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
                shown(&child_rel)
            )));
        };
        let is_dir = kind == SourceKind::Dir;
        out.push(SourceEntry { rel: child_rel.clone(), path: path.clone(), kind });
        if is_dir {
            walk_dir(&path, &child_rel, label, out)?;
        }
    }
    Ok(())
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
