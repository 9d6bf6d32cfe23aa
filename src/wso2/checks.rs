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

/// Checks every folder's files; returns every regular file with what was
/// learnt. Doubts that are not errors go to `warn`.
pub fn check(folders: &[(LayerSource, Vec<SourceEntry>)], warn: &mut dyn FnMut(&str)) -> Result<Vec<CheckedFile>> {
    let files = folders.iter().flat_map(|(_, e)| e).filter(|e| matches!(e.kind, SourceKind::File { .. })).count();
    let mut out: Vec<CheckedFile> = Vec::with_capacity(files);
    for (src, entries) in folders {
        for e in entries {
            if !matches!(e.kind, SourceKind::File { .. }) {
                continue;
            }
            let label = e.shown(&src.label);
            let mut f = CheckedFile {
                kind: src.kind,
                label,
                rel: e.rel.clone(),
                path: e.path.clone(),
                coords: None,
                keystore: None,
            };
            match src.kind {
                LayerKind::Jars | LayerKind::Dropins if e.rel.to_ascii_lowercase().ends_with(".jar") => {
                    let info = jar::inspect_jar(&e.path, &f.label)?;
                    if src.kind == LayerKind::Dropins && !info.bundle {
                        let instead = if e.origin.is_some() { "list it in [maven] jars" } else { "put it in jars/" };
                        return Err(Error::input(format!(
                            "{}: not an OSGi bundle (no Bundle-SymbolicName in META-INF/MANIFEST.MF), so it fails at start in dropins; {instead} (repository/components/lib), which converts it",
                            f.label
                        )));
                    }
                    f.coords = Some(info.coords);
                }
                LayerKind::Keystores => f.keystore = Some(keystore::kind(&e.path, &f.label)?),
                _ => {}
            }
            out.push(f);
        }
    }
    let jars: Vec<&CheckedFile> = out.iter().filter(|f| f.coords.is_some()).collect();
    for (i, a) in jars.iter().enumerate() {
        for b in &jars[i + 1..] {
            let (ca, cb) = (a.coords.as_ref().expect("jar"), b.coords.as_ref().expect("jar"));
            let same_name = a.rel.rsplit('/').next() == b.rel.rsplit('/').next();
            if !(same_name || ca.same_artifact(cb)) {
                continue;
            }
            if !(same_name || ca.from_pom && cb.from_pom) {
                warn(&format!(
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
    Ok(out)
}
