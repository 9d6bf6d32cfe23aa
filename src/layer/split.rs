//! How the files of a jars or dropins folder spread over several layers, so
//! that changing one jar moves only its share of the image ("jar layering
//! v1"). The rule is part of the image format: changing it changes digests.
//!
//! 1. Every entry has an *artifact key*: for a jar with exactly one
//!    `META-INF/maven/**/pom.properties`, its `groupId:artifactId`; for any
//!    other entry, its path inside the folder without `.jar` and without the
//!    version, i.e. cut at the first `-` or `_` of the file name that is
//!    followed by a digit (`mysql-connector-j-8.0.33.jar` →
//!    `mysql-connector-j`, `org.wso2.foo_4.2.0.jar` → `org.wso2.foo`), see
//!    [`artifact_key`]. A version bump keeps the key, so the new jar lands in
//!    the old one's layer.
//! 2. A file of at least [`ALONE`] bytes stands alone in a layer named after
//!    its key — at most [`MAX_ALONE`] of them per folder, the first by key
//!    order; the rest are grouped like any other file.
//! 3. Every other entry goes to group `u32::from_be_bytes(sha256(key)[0..4]) %`
//!    [`GROUPS`]; only groups that hold something become layers.
//!
//! Layers come in group order, then the lone files in key order. No two of
//! them hold the same path, so their order never hides a file.

use std::borrow::Cow;

use crate::digest::Digest;
use crate::layer::{SourceEntry, SourceKind};

/// Number of hash groups per folder.
pub const GROUPS: u32 = 16;
/// Size from which a file stands alone in a layer (16 MiB).
pub const ALONE: u64 = 16 << 20;
/// Most files per folder that stand alone.
pub const MAX_ALONE: usize = 16;

/// One layer's share of a folder.
#[derive(Debug)]
pub struct Share<'a> {
    /// Suffix of the layer name: a two-digit group (`07`) or a lone file's key.
    pub suffix: String,
    /// Whether this is a lone big file's layer.
    pub alone: bool,
    /// Its entries, in the folder's order.
    pub entries: Vec<&'a SourceEntry>,
}

/// The artifact key of `rel`, a path inside the folder.
pub fn artifact_key(rel: &str) -> &str {
    let stem = match rel.len().checked_sub(4) {
        Some(cut) if rel.is_char_boundary(cut) && rel[cut..].eq_ignore_ascii_case(".jar") => &rel[..cut],
        _ => rel,
    };
    let name_start = stem.rfind('/').map_or(0, |i| i + 1);
    let b = stem.as_bytes();
    (name_start..b.len().saturating_sub(1))
        .find(|&i| (b[i] == b'-' || b[i] == b'_') && b[i + 1].is_ascii_digit())
        .map_or(stem, |i| &stem[..i])
}

/// The group of artifact key `key`.
pub fn group(key: &str) -> u32 {
    let d = Digest::of(key.as_bytes());
    let b = d.bytes();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) % GROUPS
}

/// Spreads a folder's entries over layers by the rule above; `key` gives an
/// entry's artifact key.
pub fn split<'a>(entries: &'a [SourceEntry], key: impl Fn(&'a SourceEntry) -> Cow<'a, str>) -> Vec<Share<'a>> {
    let keys: Vec<Cow<'a, str>> = entries.iter().map(key).collect();
    let big = |e: &SourceEntry| matches!(e.kind, SourceKind::File { size, .. } if size >= ALONE);
    let mut alone: Vec<&str> = entries.iter().zip(&keys).filter(|(e, _)| big(e)).map(|(_, k)| k.as_ref()).collect();
    alone.sort_unstable();
    alone.dedup();
    alone.truncate(MAX_ALONE);
    let mut groups: Vec<Vec<&SourceEntry>> = (0..GROUPS).map(|_| Vec::new()).collect();
    let mut lone: Vec<Share<'_>> =
        alone.iter().map(|k| Share { suffix: k.to_string(), alone: true, entries: Vec::new() }).collect();
    for (e, key) in entries.iter().zip(&keys) {
        match alone.binary_search(&key.as_ref()) {
            Ok(i) if big(e) => lone[i].entries.push(e),
            _ => groups[group(key) as usize].push(e),
        }
    }
    let mut out: Vec<Share<'_>> = groups
        .into_iter()
        .enumerate()
        .filter(|(_, g)| !g.is_empty())
        .map(|(i, entries)| Share { suffix: format!("{i:02}"), alone: false, entries })
        .collect();
    out.extend(lone.into_iter().filter(|s| !s.entries.is_empty()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(rel: &str, size: u64) -> SourceEntry {
        SourceEntry {
            rel: rel.into(),
            path: PathBuf::from(rel),
            kind: SourceKind::File { size, executable: false },
            origin: None,
            key: None,
            head: None,
        }
    }

    fn by_path(e: &SourceEntry) -> Cow<'_, str> {
        Cow::Borrowed(artifact_key(&e.rel))
    }

    #[test]
    fn keys_drop_extension_and_version() {
        for (rel, key) in [
            ("mysql-connector-j-8.0.33.jar", "mysql-connector-j"),
            ("mysql-connector-j-9.1.0.jar", "mysql-connector-j"),
            ("org.wso2.carbon.foo_4.2.0.jar", "org.wso2.carbon.foo"),
            ("ojdbc8.jar", "ojdbc8"),
            ("ojdbc8-19.3.0.0.JAR", "ojdbc8"),
            ("vendor/acme-core-2.jar", "vendor/acme-core"),
            ("v1-tools/acme.jar", "v1-tools/acme"),
            ("README.md", "README.md"),
            ("x-", "x-"),
            ("é.jar", "é"),
        ] {
            assert_eq!(artifact_key(rel), key, "{rel}");
        }
    }

    #[test]
    fn pinned_groups() {
        // Part of the image format: these must never change.
        let got: Vec<u32> = ["mysql-connector-j", "acme-request-id", "ojdbc8"].iter().map(|k| group(k)).collect();
        assert_eq!(got, PINNED, "the jar layering rule changed: every image digest would move");
    }
    const PINNED: [u32; 3] = [PINNED_MYSQL, PINNED_ACME, PINNED_OJDBC];
    const PINNED_MYSQL: u32 = 8;
    const PINNED_ACME: u32 = 13;
    const PINNED_OJDBC: u32 = 8;

    #[test]
    fn version_bump_stays_in_its_layer() {
        let a: Vec<SourceEntry> = (0..40).map(|i| file(&format!("lib-x{i:02}-1.0.{i}.jar"), 1000)).collect();
        let before = split(&a, by_path);
        let mut b = a.clone();
        b[7] = file("lib-x07-1.1.0.jar", 2000);
        b.sort_by(|x, y| x.rel.cmp(&y.rel));
        let after = split(&b, by_path);
        assert_eq!(before.len(), after.len());
        let names = |s: &[Share]| -> Vec<Vec<String>> {
            s.iter().map(|s| s.entries.iter().map(|e| artifact_key(&e.rel).to_string()).collect()).collect()
        };
        assert_eq!(names(&before), names(&after));
        let moved: Vec<_> = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b.entries.iter().map(|e| &e.rel).ne(a.entries.iter().map(|e| &e.rel)))
            .collect();
        assert_eq!(moved.len(), 1, "only the bumped jar's layer changes");
        assert!(before.len() > 8 && before.len() <= GROUPS as usize, "{}", before.len());
    }

    #[test]
    fn big_files_stand_alone_up_to_a_limit() {
        let mut a: Vec<SourceEntry> = (0..20).map(|i| file(&format!("huge-x{i:02}-1.0.jar"), ALONE + i)).collect();
        a.push(file("small-1.0.jar", 10));
        let s = split(&a, by_path);
        let lone: Vec<_> = s.iter().filter(|s| s.alone).collect();
        assert_eq!(lone.len(), MAX_ALONE);
        assert_eq!(lone[0].suffix, "huge-x00");
        assert!(lone.iter().all(|s| s.entries.len() == 1));
        let grouped: usize = s.iter().filter(|s| !s.alone).map(|s| s.entries.len()).sum();
        assert_eq!(grouped, 5);
    }
}
