//! Checks on the customer's inputs before anything is built: jars must be
//! readable zips, jars in `dropins/` must be OSGi bundles, no Maven artifact
//! may appear twice (two versions in `jars/`, or one jar in both `jars/` and
//! `dropins/`), and baked keystores must be keystores.
//!
//! A duplicate is an error when both jars carry `pom.properties` or have the
//! same file name; when the artifact was guessed from a file name only, it is
//! a warning (the guess can be wrong: `foo-api-1.0.jar` and `foo-1.0.jar`).

use std::path::PathBuf;

use super::jar::{self, Coords};
use super::keystore;
use crate::config::{LayerKind, LayerSource};
use crate::error::{Error, Result};
use crate::layer::{SourceEntry, SourceKind};

/// A checked customer file, for the SBOM.
#[derive(Debug, Clone)]
pub struct CheckedFile {
    /// Which kind of folder it is in.
    pub kind: LayerKind,
    /// How the user names it (`jars/x.jar`).
    pub label: String,
    /// Path inside its folder.
    pub rel: String,
    /// The file on disk.
    pub path: PathBuf,
    /// Maven coordinates, for jars.
    pub coords: Option<Coords>,
    /// Keystore type, for keystores.
    pub keystore: Option<&'static str>,
}

impl CheckedFile {
    /// File `e` of folder `src`, nothing learnt about it yet.
    fn plain(src: &LayerSource, e: &SourceEntry) -> CheckedFile {
        CheckedFile {
            kind: src.kind,
            label: e.shown(&src.label),
            rel: e.rel.clone(),
            path: e.path.clone(),
            coords: None,
            keystore: None,
        }
    }
}

/// What [`check`] found: how many regular files it checked, and those it
/// learnt something about (jars and keystores), in folder order.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Regular files checked.
    pub files: usize,
    /// The jars (with their coordinates) and keystores (with their type).
    pub notable: Vec<CheckedFile>,
}

/// Checks every folder's files; returns how many there are and what was
/// learnt about jars and keystores ([`every_file`] gives them all), with
/// the doubts that are not errors (warnings).
pub fn check(folders: &[(LayerSource, Vec<SourceEntry>)]) -> Result<(Checked, Vec<String>)> {
    let checked = look(folders)?;
    let warnings = duplicates(&checked.notable.iter().collect::<Vec<_>>())?;
    Ok((checked, warnings))
}

/// Like [`check`], without looking for the same artifact twice (see
/// [`duplicates`]): for folders added to others already checked.
pub fn look(folders: &[(LayerSource, Vec<SourceEntry>)]) -> Result<Checked> {
    let mut files = 0;
    let mut notable: Vec<(&LayerSource, &SourceEntry)> = Vec::new();
    for (src, entries) in folders {
        for e in entries.iter().filter(|e| matches!(e.kind, SourceKind::File { .. })) {
            files += 1;
            if src.kind == LayerKind::Keystores
                || matches!(src.kind, LayerKind::Jars | LayerKind::Dropins) && is_jar(&e.rel)
            {
                notable.push((src, e));
            }
        }
    }
    // Each jar is opened and its central directory read: side by side.
    let looked = crate::layer::map_chunks(&notable, 16, |piece| {
        piece.iter().map(|&(src, e)| look_at(src, e)).collect::<Vec<_>>()
    });
    let notable = looked.into_iter().flatten().collect::<Result<Vec<CheckedFile>>>()?;
    Ok(Checked { files, notable })
}

/// Fails when the same Maven artifact is among `checked` twice (two
/// versions in `jars/`, or one jar in both `jars/` and `dropins/`) and both
/// jars say so in `pom.properties` or share a file name; warns when it was
/// guessed from file names only (the warnings are returned).
pub fn duplicates(checked: &[&CheckedFile]) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let jars: Vec<&CheckedFile> = checked.iter().copied().filter(|f| f.coords.is_some()).collect();
    for (i, a) in jars.iter().enumerate() {
        for b in &jars[i + 1..] {
            let (ca, cb) = (a.coords.as_ref().expect("jar"), b.coords.as_ref().expect("jar"));
            let same_name = a.rel.rsplit('/').next() == b.rel.rsplit('/').next();
            if !(same_name || ca.same_artifact(cb)) {
                continue;
            }
            if !(same_name || ca.from_pom && cb.from_pom) {
                warnings.push(format!(
                    "{} and {} may be the same artifact ({} and {}, guessed from a file name: no pom.properties); keep only one if they are",
                    a.label,
                    b.label,
                    ca.display(),
                    cb.display()
                ));
                continue;
            }
            return Err(Error::input(if a.kind != b.kind {
                format!(
                    "{} and {}: the same artifact ({}) in both lib and dropins conflicts at start-up; keep only one",
                    a.label,
                    b.label,
                    ca.display()
                )
            } else {
                format!(
                    "{} and {}: the same artifact twice ({} and {}); keep only one version",
                    a.label,
                    b.label,
                    ca.display(),
                    cb.display()
                )
            }));
        }
    }
    Ok(warnings)
}

/// Checks one jar (readable zip; in `dropins/`, an OSGi bundle) or keystore
/// of the folder `src`.
fn look_at(src: &LayerSource, e: &SourceEntry) -> Result<CheckedFile> {
    let mut f = CheckedFile::plain(src, e);
    if src.kind == LayerKind::Keystores {
        f.keystore = Some(keystore::kind(&e.path, &f.label)?);
        return Ok(f);
    }
    let info = jar::inspect_jar(&e.path, &f.label)?;
    if src.kind == LayerKind::Dropins && !info.bundle {
        let instead = if e.origin.is_some() { "list it in [maven] jars" } else { "put it in jars/" };
        return Err(Error::input(format!(
            "{}: not an OSGi bundle (no Bundle-SymbolicName in META-INF/MANIFEST.MF), so it fails at start in dropins; {instead} (repository/components/lib), which converts it",
            f.label
        )));
    }
    f.coords = Some(info.coords);
    Ok(f)
}

/// Whether a file name is a jar's.
fn is_jar(rel: &str) -> bool {
    rel.len() >= 4 && rel.as_bytes()[rel.len() - 4..].eq_ignore_ascii_case(b".jar")
}

/// Every regular file of `folders`, in folder order: the `notable` ones
/// (from [`check`] of the same folders) as checked, the others as they are.
pub fn every_file(folders: &[(LayerSource, Vec<SourceEntry>)], notable: &[CheckedFile]) -> Vec<CheckedFile> {
    let by_path: std::collections::HashMap<&std::path::Path, &CheckedFile> =
        notable.iter().map(|f| (f.path.as_path(), f)).collect();
    let mut out = Vec::new();
    for (src, entries) in folders {
        for e in entries.iter().filter(|e| matches!(e.kind, SourceKind::File { .. })) {
            out.push(match by_path.get(e.path.as_path()) {
                Some(f) if f.kind == src.kind => (*f).clone(),
                _ => CheckedFile::plain(src, e),
            });
        }
    }
    out
}
