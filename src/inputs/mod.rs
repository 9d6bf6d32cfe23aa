//! The customer's inputs as teams keep them, before they become layers:
//! the ignore rules of [`crate::layer::ignore`] that leave litter out of the
//! customer folders, and [`maven`] jars resolved by coordinates from Maven
//! repositories.
//! [`gather`] walks the folders, resolves the jars and runs every input
//! check (configuration files, jars, keystores), in that order, so a syntax
//! error is found before anything is downloaded.

pub mod maven;
pub mod truststore;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use crate::cache::Cache;
use crate::config::{Config, LayerKind, LayerSource};
use crate::digest::{Blocks, Digest};
use crate::error::{Error, Result};
use crate::layer::{self, ignore, Head, SourceEntry, SourceKind};
use crate::wso2::checks::{self, CheckedFile};
use crate::wso2::jar::Coords;
use crate::wso2::keystore;

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
    /// The network settings for Maven repositories (`--ca-cert`, `--timeout`).
    pub net: crate::net::Settings,
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
    /// What is known of the keystores in each folder of `walked`.
    pub inspections: Vec<Inspection>,
    /// The same for each folder of each variant's.
    pub variant_inspections: Vec<Vec<Inspection>>,
}

/// What is known of the keystores in a walked folder other than the
/// keystores folder: a keystore there (by name or content) is baked with the
/// rest, or refused when baking is off.
#[derive(Debug, Clone)]
pub enum Inspection {
    /// The first keystore in it, as `LABEL/PATH (TYPE)`, if any (from the
    /// digest cache's note; always `None` for the keystores folder and Maven jars).
    Known(Option<String>),
    /// Not known before the files are opened: [`settle`] answers once their
    /// bytes were read — by hashing the layers, or for this alone — and
    /// remembers the answer under the folder's print.
    Pending(Option<FolderPrint>),
}

/// Walks the customer folders of `config` (and its variants), learns from
/// `cache` what keystores an unchanged folder holds (the others are
/// [`Inspection::Pending`]), checks the configuration files, resolves
/// `[maven]` jars and checks every file.
pub fn gather(config: &Config, opts: &Options, cache: &Cache) -> Result<Gathered> {
    let rules = config.ignore_rules()?;
    let mut excluded = Vec::new();
    let mut walk = |sources: Vec<LayerSource>| -> Result<(Walked, Vec<Option<FolderPrint>>, Vec<Inspection>)> {
        let mut walked = Vec::new();
        let mut prints = Vec::new();
        let mut inspections = Vec::new();
        for s in sources {
            let (entries, left_out) = layer::walk_filtered(&s.dir, &s.label, &rules)?;
            excluded.extend(left_out);
            let print = cache.enabled().then(|| fingerprint(&s, &entries)).flatten();
            inspections.push(inspection(&s, print.as_ref(), cache));
            walked.push((s, entries));
            prints.push(print);
        }
        Ok((walked, prints, inspections))
    };
    let (mut walked, mut prints, mut inspections) = walk(config.layer_sources(opts.bake_keystores)?)?;
    let mut variant_walks = Vec::new();
    let mut variant_prints = Vec::new();
    let mut variant_inspections = Vec::new();
    for v in &config.variants {
        let (w, p, i) = walk(config.variant_sources(v, opts.bake_keystores)?)?;
        variant_walks.push(w);
        variant_prints.push(p);
        variant_inspections.push(i);
    }
    let mut facts = crate::check::config_files(&walked)?;
    for w in &variant_walks {
        let f = crate::check::config_files(w)?;
        facts.checked += f.checked;
        facts.databases.extend(f.databases);
    }

    let lockfile = crate::lock::path_for(&config.path);
    let pins = crate::lock::Lockfile::load(&lockfile)?.maven_pins();
    let mopts = maven::Options { locked: opts.locked, net: opts.net.clone(), lockfile: lockfile.display().to_string() };
    let resolved = maven::resolve(&config.maven, &pins, &mopts)?;
    join_maven(config, &mut walked, &mut prints, &mut inspections, &resolved);

    let (checks::Checked { files, notable: mut checked }, mut warnings) = checks::check(&walked)?;
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
        warnings.extend(checks::duplicates(&both)?);
        all_jars.extend(extra);
    }
    warnings.extend(crate::check::drivers::missing(&facts.databases, &all_jars));
    let mut seen = BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    for w in &warnings {
        crate::progress::message(&format!("warning: {w}"));
    }
    let shown: Vec<_> = excluded.iter().filter(|e| !ignore::is_placeholder(&e.rule)).cloned().collect();
    if !shown.is_empty() {
        let files: usize = shown.iter().map(|e| e.files).sum();
        crate::progress::message(&format!(
            "ignore rules left out {} ({}); -v lists them",
            crate::fmt::count(files, "file"),
            ignore::totals(&shown).iter().map(|(r, n)| format!("{r}: {n}")).collect::<Vec<_>>().join(", ")
        ));
    }
    if !excluded.is_empty() {
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
        inspections,
        variant_inspections,
    })
}

/// The note for files in the keystores folder when baking is off (they are
/// left out of every image, on purpose): `keystores: 2 files not baked
/// (mount them at run time; …)`. `None` when baking is on or the folder holds
/// no file.
pub fn unbaked_keystores(config: &Config, bake_keystores: bool) -> Option<String> {
    if config.bakes_keystores(bake_keystores) {
        return None;
    }
    let rel = config.layers.keystores.clone().unwrap_or_else(|| LayerKind::Keystores.name().to_string());
    let dir = config.dir.join(&rel);
    if !dir.is_dir() {
        return None;
    }
    let rules = config.ignore_rules().ok()?;
    let (entries, _) = layer::walk_filtered(&dir, &rel, &rules).ok()?;
    let n = entries.iter().filter(|e| !matches!(e.kind, SourceKind::Dir)).count();
    (n > 0).then(|| {
        format!(
            "{rel}: {} not baked (mount them at run time; bake_keystores = true or --bake-keystores bakes them)",
            crate::fmt::count(n, "file")
        )
    })
}

/// What the digest cache's note says of the keystores in a folder with
/// print `print` (the keystores folder is not asked).
fn inspection(src: &LayerSource, print: Option<&FolderPrint>, cache: &Cache) -> Inspection {
    if src.kind == LayerKind::Keystores {
        return Inspection::Known(None);
    }
    match print.and_then(|p| cache.note(&p.digest)) {
        Some(text) => Inspection::Known((!text.is_empty()).then_some(text)),
        None => Inspection::Pending(print.copied()),
    }
}

/// Answers the pending inspections of `folders` and returns the first
/// keystore of them all, as `LABEL/PATH (TYPE)`. Each folder comes with its
/// inspection, in order (the main folders, then each variant's), and how many
/// of its files and symlinks hashing read as it hashed the folder's layers;
/// `seen` holds the keystores hashing recognised, by name or content. A
/// pending folder hashing did not read whole is opened here — every file
/// must be readable — and each answer is remembered in `cache`.
pub fn settle<'a>(
    folders: impl IntoIterator<Item = (&'a mut (LayerSource, Vec<SourceEntry>), &'a Inspection, usize)>,
    seen: &HashMap<PathBuf, &'static str>,
    cache: &Cache,
) -> Result<Option<String>> {
    let mut first = None;
    for ((src, entries), inspection, read) in folders {
        let found = match inspection {
            Inspection::Known(found) => found.clone(),
            Inspection::Pending(print) => {
                let placed = entries.iter().filter(|e| !matches!(e.kind, SourceKind::Dir)).count();
                let first = if read == placed { first_seen(src, entries, seen) } else { first_opened(src, entries)? };
                let found = first.map(|(e, kind)| format!("{}/{} ({kind})", src.label.trim_end_matches('/'), e.rel));
                if let Some(p) = print {
                    cache.put_note(p.digest, found.clone().unwrap_or_default(), p.settled_after);
                }
                found
            }
        };
        if first.is_none() {
            first = found;
        }
    }
    Ok(first)
}

/// Whether `e` is one of the customer's own files (not a Maven jar joined to
/// the folder): those are inspected.
fn inspected(e: &SourceEntry) -> bool {
    matches!(e.kind, SourceKind::File { .. }) && e.origin.is_none()
}

/// The first inspected file of a folder hashing read whole that `seen` holds.
fn first_seen<'e>(
    src: &LayerSource,
    entries: &'e [SourceEntry],
    seen: &HashMap<PathBuf, &'static str>,
) -> Option<(&'e SourceEntry, &'static str)> {
    seen.iter()
        .filter_map(|(path, kind)| {
            let rel = path.strip_prefix(&src.dir).ok()?.to_str()?;
            let i = entries.binary_search_by(|e| e.rel.as_bytes().cmp(rel.as_bytes())).ok()?;
            inspected(&entries[i]).then_some((i, *kind))
        })
        .min_by_key(|(i, _)| *i)
        .map(|(i, kind)| (&entries[i], kind))
}

/// The first keystore, by name or content, among the inspected files of a
/// folder, opening each.
fn first_opened<'e>(
    src: &LayerSource,
    entries: &'e mut [SourceEntry],
) -> Result<Option<(&'e SourceEntry, &'static str)>> {
    layer::read_heads(entries, &src.label)?;
    for e in entries.iter().filter(|e| inspected(e)) {
        let name = e.rel.rsplit('/').next().unwrap_or(&e.rel);
        let head = e.head.as_ref().map_or(&[][..], Head::as_slice);
        if let Some(kind) = keystore::sniff(name, head) {
            return Ok(Some((e, kind)));
        }
        if keystore::may_hold_pem_key(head) {
            let found = keystore::pem_file_private_key(&e.path)
                .map_err(|err| Error::io(&format!("reading it (in {}/)", src.label), &e.path, err))?;
            if let Some(kind) = found {
                return Ok(Some((e, kind)));
            }
        }
    }
    Ok(None)
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
    h.field(b"wso2img folder inspection 3");
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
    inspections: &mut Vec<Inspection>,
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
                inspections.insert(i, Inspection::Known(None));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A walked `themes` folder of plain files, one of which holds a JKS
    /// header under a harmless name.
    fn walked(root: &Path) -> (LayerSource, Vec<SourceEntry>) {
        std::fs::create_dir_all(root.join("devportal/images")).unwrap();
        std::fs::write(root.join("devportal/a.css"), b"body {}").unwrap();
        std::fs::write(root.join("devportal/images/logo.png"), [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]).unwrap();
        std::fs::write(root.join("devportal/z.css"), b"p {}").unwrap();
        let src = LayerSource { kind: LayerKind::Themes, dir: root.to_path_buf(), label: "themes".into() };
        let (entries, _) = layer::walk_filtered(root, "themes", &crate::layer::ignore::Rules::none()).unwrap();
        (src, entries)
    }

    #[test]
    fn settling_trusts_what_hashing_saw_and_opens_only_what_it_did_not_read() {
        let d = tempfile::tempdir().unwrap();
        let mut folder = walked(&d.path().join("themes"));
        let logo = d.path().join("themes/devportal/images/logo.png");
        let pending = Inspection::Pending(None);
        let cache = Cache::disabled();
        let none = HashMap::new();
        let found = "themes/devportal/images/logo.png (JKS)".to_string();

        // Hashing read all three files and saw the keystore.
        let seen: HashMap<PathBuf, &str> = [(logo.clone(), "JKS")].into_iter().collect();
        let got = settle([(&mut folder, &pending, 3)], &seen, &cache).unwrap();
        assert_eq!(got.as_deref(), Some(found.as_str()));
        assert!(folder.1.iter().all(|e| e.head.is_none()), "nothing opened again");

        // Hashing read every file and saw nothing: nothing is opened again.
        assert_eq!(settle([(&mut folder, &pending, 3)], &none, &cache).unwrap(), None);

        // Hashing did not read them all: the folder is opened here.
        let got = settle([(&mut folder, &pending, 2)], &none, &cache).unwrap();
        assert_eq!(got.as_deref(), Some(found.as_str()));

        // A known answer is taken as it is, and the first folder's wins.
        let known = Inspection::Known(Some("overlays/x.jks (JKS)".into()));
        let mut other = walked(&d.path().join("other"));
        let got = settle([(&mut other, &known, 0), (&mut folder, &pending, 3)], &none, &cache).unwrap();
        assert_eq!(got.as_deref(), Some("overlays/x.jks (JKS)"));

        // An unreadable file that hashing did not read fails, naming it.
        let mut gone = walked(&d.path().join("gone"));
        std::fs::remove_file(d.path().join("gone/devportal/a.css")).unwrap();
        let err = settle([(&mut gone, &pending, 0)], &none, &cache).unwrap_err().to_string();
        assert!(err.contains("themes/devportal/a.css: cannot read"), "{err}");
    }
}
