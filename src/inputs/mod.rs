//! The customer's inputs as teams keep them, before they become layers:
//! the ignore rules of [`crate::layer::ignore`] that leave litter out of the
//! customer folders, and [`maven`] jars resolved by coordinates from Maven
//! repositories.
//! [`gather`] walks the folders, resolves the jars and runs every input
//! check (configuration files, jars, keystores), in that order, so a syntax
//! error is found before anything is downloaded.

pub mod maven;

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::cache::Cache;
use crate::config::{Config, LayerKind, LayerSource};
use crate::digest::{Blocks, Digest};
use crate::error::Result;
use crate::layer::{self, ignore, SourceEntry, SourceKind};
use crate::wso2::checks::{self, CheckedFile};
use crate::wso2::jar::Coords;

/// Customer folders walked, each with its entries.
pub type Walked = Vec<(LayerSource, Vec<SourceEntry>)>;

/// A digest of a walked folder's label and of every entry's path, kind and
/// (for a regular file) `stat` key: what the folder holds, as far as the
/// keys vouch for the files' bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderPrint {
    /// The digest.
    pub digest: Digest,
    /// The latest [`crate::cache::StatKey::settled_after`] of its files:
    /// whatever is derived from them may be cached only once the cache's
    /// stamp is later.
    pub settled_after: i64,
}

/// How to gather the inputs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keystores are baked (`--bake-keystores` or the config).
    pub bake_keystores: bool,
    /// `--locked`: Maven jars must be pinned and match their pins.
    pub locked: bool,
    /// Extra CA certificates for HTTPS repositories.
    pub ca_certs: Vec<PathBuf>,
}

/// The checked inputs of one config.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// The main customization's folders (Maven jars joined to `jars` and `dropins`).
    pub walked: Walked,
    /// Each variant's extra folders.
    pub variant_walks: Vec<Walked>,
    /// The print of each folder of `walked` (with the cache on, and when
    /// every file was walked from disk: none for a folder Maven jars joined).
    pub prints: Vec<Option<FolderPrint>>,
    /// The print of each folder of each of `variant_walks`.
    pub variant_prints: Vec<Vec<Option<FolderPrint>>>,
    /// How many regular files the main customization has, all checked.
    pub files: usize,
    /// Its jars and keystores, as checked ([`checks::every_file`] gives every file).
    pub checked: Vec<CheckedFile>,
    /// What the ignore rules left out.
    pub excluded: Vec<ignore::Excluded>,
    /// The Maven jars.
    pub maven: Vec<maven::Resolved>,
    /// Configuration files checked.
    pub config_files: usize,
    /// Doubts that are not errors (already logged).
    pub warnings: Vec<String>,
    /// The first keystore (by name or content) in a walked folder other
    /// than the keystores folder — main folders first, then the variants' —
    /// as `LABEL/PATH (TYPE)`.
    pub stray_keystore: Option<String>,
}

/// Walks the customer folders of `config` (and its variants), checks that
/// every file is readable and looks for keystores among them (or learns it
/// from `cache`), checks the configuration files, resolves `[maven]` jars
/// and checks every file.
pub fn gather(config: &Config, opts: &Options, cache: &Cache, log: &mut dyn FnMut(&str)) -> Result<Gathered> {
    let rules = config.ignore_rules()?;
    let mut excluded = Vec::new();
    let mut stray_keystore = None;
    // With no note to answer for any folder (a fresh runner, --no-cache),
    // every file will be opened for the keystore sniff: open each while
    // walking, instead of `stat`-ing it and opening it again.
    let walk_folder = if cache.has_notes() { layer::walk_filtered } else { layer::walk_reading_heads };
    let mut walk = |sources: Vec<LayerSource>| -> Result<(Walked, Vec<Option<FolderPrint>>)> {
        let mut walked = Vec::new();
        let mut prints = Vec::new();
        for s in sources {
            let (mut entries, left_out) = walk_folder(&s.dir, &s.label, &rules)?;
            excluded.extend(left_out);
            let (found, print) = inspect(&s, &mut entries, cache)?;
            if stray_keystore.is_none() && s.kind != LayerKind::Keystores {
                stray_keystore = found;
            }
            walked.push((s, entries));
            prints.push(print);
        }
        Ok((walked, prints))
    };
    let (mut walked, mut prints) = walk(config.layer_sources(opts.bake_keystores)?)?;
    let mut variant_walks = Vec::new();
    let mut variant_prints = Vec::new();
    for v in &config.variants {
        let (w, p) = walk(config.variant_sources(v, opts.bake_keystores)?)?;
        variant_walks.push(w);
        variant_prints.push(p);
    }
    let mut facts = crate::check::config_files(&walked)?;
    for w in &variant_walks {
        let f = crate::check::config_files(w)?;
        facts.checked += f.checked;
        facts.databases.extend(f.databases);
    }

    let lockfile = crate::lock::path_for(&config.path);
    let pins = crate::lock::Lockfile::load(&lockfile)?.maven_pins();
    let mopts = maven::Options {
        locked: opts.locked,
        ca_certs: opts.ca_certs.clone(),
        lockfile: lockfile.display().to_string(),
    };
    let resolved = maven::resolve(&config.maven, &pins, &mopts, log)?;
    join_maven(config, &mut walked, &mut prints, &resolved);

    let mut warnings: Vec<String> = Vec::new();
    let checks::Checked { files, notable: mut checked } =
        checks::check(&walked, &mut |w| warnings.push(w.to_string()))?;
    // The variants' jars meet the main ones as the jars themselves name them.
    let main_looked = if variant_walks.is_empty() { Vec::new() } else { checked.clone() };
    for c in &mut checked {
        if let Some(r) = resolved.iter().find(|r| r.path == c.path) {
            c.coords = Some(Coords {
                group: Some(r.coords.group.clone()),
                artifact: r.coords.artifact.clone(),
                version: Some(r.coords.version.clone()),
                from_pom: true,
            });
        }
    }
    let mut all_jars: Vec<CheckedFile> = checked.iter().filter(|f| f.coords.is_some()).cloned().collect();
    for w in &variant_walks {
        let extra = checks::look(w)?.notable;
        let both: Vec<&CheckedFile> = main_looked.iter().chain(&extra).collect();
        checks::duplicates(&both, &mut |w| warnings.push(w.to_string()))?;
        all_jars.extend(extra);
    }
    warnings.extend(crate::check::drivers::missing(&facts.databases, &all_jars));
    let mut seen = BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    for w in &warnings {
        log(&format!("warning: {w}"));
    }
    if !excluded.is_empty() {
        let files: usize = excluded.iter().map(|e| e.files).sum();
        log(&format!(
            "ignore rules left out {files} file{} ({}); -v lists them",
            if files == 1 { "" } else { "s" },
            ignore::totals(&excluded).iter().map(|(r, n)| format!("{r}: {n}")).collect::<Vec<_>>().join(", ")
        ));
        for e in &excluded {
            crate::progress::detail(&format!(
                "ignored {} ({}, {} file{})",
                e.path,
                e.rule,
                e.files,
                if e.files == 1 { "" } else { "s" }
            ));
        }
    }
    Ok(Gathered {
        walked,
        variant_walks,
        prints,
        variant_prints,
        files,
        checked,
        excluded,
        maven: resolved,
        config_files: facts.checked,
        warnings,
        stray_keystore,
    })
}

/// Opens every regular file of a walked folder — each must be readable —
/// and returns the first that is a keystore by name or content, as
/// `LABEL/PATH (TYPE)`, with the folder's print (with the cache on). What the
/// files held is a function of their names and `stat` keys, so the answer is
/// kept in `cache` under the print and an unchanged folder is not opened again.
fn inspect(
    src: &LayerSource,
    entries: &mut [SourceEntry],
    cache: &Cache,
) -> Result<(Option<String>, Option<FolderPrint>)> {
    let print = cache.enabled().then(|| fingerprint(src, entries)).flatten();
    if let Some(text) = print.as_ref().and_then(|p| cache.note(&p.digest)) {
        return Ok(((!text.is_empty()).then_some(text), print));
    }
    layer::read_heads(entries, &src.label)?;
    let found = entries.iter().filter(|e| matches!(e.kind, SourceKind::File { .. })).find_map(|e| {
        let name = e.rel.rsplit('/').next().unwrap_or(&e.rel);
        let kind = crate::wso2::keystore::sniff(&e.path, name, e.head.as_ref().map(|h| h.as_slice()))?;
        Some(format!("{}/{} ({kind})", src.label.trim_end_matches('/'), e.rel))
    });
    if let Some(p) = print {
        cache.put_note(p.digest, found.clone().unwrap_or_default(), p.settled_after);
    }
    Ok((found, print))
}

/// Entries per piece of a folder print, hashed side by side.
const PRINT_PIECE: usize = 4096;

/// The print of a walked folder; `None` when a file has no key. The entries
/// are hashed in pieces of [`PRINT_PIECE`] on every core, the print is the
/// digest of the pieces' digests.
fn fingerprint(src: &LayerSource, entries: &[SourceEntry]) -> Option<FolderPrint> {
    let pieces = layer::map_chunks(entries, PRINT_PIECE, |piece| {
        let mut h = Blocks::new();
        let mut settled_after = i64::MIN;
        for e in piece {
            h.field(e.rel.as_bytes());
            match &e.kind {
                SourceKind::Dir => h.update(b"d"),
                SourceKind::Symlink { target } => {
                    h.update(b"l");
                    h.field(target.as_bytes());
                }
                SourceKind::File { .. } => {
                    let key = e.key?;
                    h.update(b"f");
                    h.with(|buf| key.encode(buf));
                    settled_after = settled_after.max(key.settled_after());
                }
            }
        }
        Some((h.finish(), settled_after))
    });
    let mut h = Blocks::new();
    let mut settled_after = i64::MIN;
    h.field(b"wso2img folder inspection 2");
    h.field(src.label.as_bytes());
    for piece in pieces {
        let (digest, settled) = piece?;
        h.update(digest.bytes());
        settled_after = settled_after.max(settled);
    }
    Some(FolderPrint { digest: h.finish(), settled_after })
}

/// Adds the Maven jars to the `jars` and `dropins` folders' entries (making
/// the folder's entry when the project has no such folder); such a folder
/// has no print.
fn join_maven(
    config: &Config,
    walked: &mut Walked,
    prints: &mut Vec<Option<FolderPrint>>,
    resolved: &[maven::Resolved],
) {
    for kind in [LayerKind::Jars, LayerKind::Dropins] {
        let mine: Vec<&maven::Resolved> = resolved.iter().filter(|r| r.kind == kind).collect();
        if mine.is_empty() {
            continue;
        }
        let at = match walked.iter().position(|(s, _)| s.kind == kind) {
            Some(i) => i,
            None => {
                let src = LayerSource { kind, dir: config.dir.join(kind.name()), label: kind.name().to_string() };
                let i = walked.iter().position(|(s, _)| s.kind > kind).unwrap_or(walked.len());
                walked.insert(i, (src, Vec::new()));
                prints.insert(i, None);
                i
            }
        };
        prints[at] = None;
        let entries = &mut walked[at].1;
        for r in mine {
            entries.push(SourceEntry {
                rel: r.coords.file_name(),
                path: r.path.clone(),
                kind: SourceKind::File { size: r.size, executable: false },
                origin: Some(format!("[maven] {}", r.coords)),
                key: None,
                head: None,
            });
        }
        entries.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    }
}

/// The lock entries of the resolved jars.
pub fn pins(resolved: &[maven::Resolved]) -> Vec<crate::lock::LockedJar> {
    resolved.iter().map(|r| crate::lock::LockedJar { coordinates: r.coords.to_string(), sha256: r.sha256 }).collect()
}
