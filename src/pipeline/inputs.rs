//! The customer's inputs as this run sees them: every folder walked through
//! the ignore rules and checked, Maven jars resolved, and the keystore
//! questions that walking leaves open (settled by [`super::keystores`]).

use std::collections::HashMap;

use super::project::Project;
use super::Options;
use crate::cache::Cache;
use crate::config::{Config, LayerKind, LayerSource};
use crate::error::{Error, Result};
use crate::inputs::{FolderPrint, Inspection};
use crate::layer::{self, SourceEntry};
use crate::wso2::checks::CheckedFile;
use crate::wso2::truststore::{self, Wanted};

/// Walked folders: each with its entries.
pub(super) type Walk = Vec<(LayerSource, Vec<SourceEntry>)>;

/// The walked customer folders: the main ones and each variant's.
pub(super) struct Walks {
    pub(super) main: Walk,
    pub(super) variants: Vec<Walk>,
}

impl Walks {
    /// The folder `folder` of the main walk (`walk` = `None`) or of variant `walk`'s.
    pub(super) fn folder(&self, walk: Option<usize>, folder: usize) -> &(LayerSource, Vec<SourceEntry>) {
        match walk {
            None => &self.main[folder],
            Some(v) => &self.variants[v][folder],
        }
    }
}

/// What gathering the inputs found besides the files themselves.
pub(super) struct Gathered {
    pub(super) excluded: Vec<crate::layer::ignore::Excluded>,
    pub(super) maven: Vec<crate::inputs::maven::Resolved>,
    pub(super) config_files: usize,
    pub(super) warnings: Vec<String>,
}

/// The walked and checked inputs.
pub(super) struct Inputs {
    /// The folders; `None` once nothing needs them any more ([`Inputs::release`]).
    pub(super) walks: Option<Walks>,
    /// Each main folder's print (for the plan memo), and each variant folder's.
    pub(super) prints: Vec<Option<FolderPrint>>,
    pub(super) variant_prints: Vec<Vec<Option<FolderPrint>>>,
    /// How many regular files the main customization has, all checked.
    pub(super) files: usize,
    /// Its jars and keystores, as checked ([`Inputs::every_input`] gives every file).
    pub(super) checked: Vec<CheckedFile>,
    pub(super) gathered: Gathered,
    /// The keystore questions still open.
    pub(super) keystores: Option<Questions>,
    /// The certificates `[truststore]` adds: the main image's, each variant's.
    pub(super) truststore: (Wanted, Vec<Wanted>),
}

impl Inputs {
    /// The walked folders (kept while [`Inputs::release`] has not let them go).
    pub(super) fn walks(&self) -> &Walks {
        self.walks.as_ref().expect("the walked folders are kept while they are needed")
    }

    /// Every regular file of the main customization, in folder order, with
    /// what checking learnt (for the SBOM and the provenance).
    pub(super) fn every_input(&self) -> Vec<CheckedFile> {
        crate::wso2::checks::every_file(&self.walks().main, &self.checked)
    }

    /// Lets the walked folders go, on another thread (tens of thousands of
    /// small allocations take tens of milliseconds to free).
    pub(super) fn release(&mut self) {
        if let Some(w) = self.walks.take() {
            super::free_later(w);
        }
    }
}

/// The keystore questions gathering leaves: what each walked folder holds
/// (known from a note, or pending until its files are read) and what decides
/// baking.
pub(super) struct Questions {
    pub(super) main: Vec<Inspection>,
    pub(super) variants: Vec<Vec<Inspection>>,
    /// The keystores folders hold files.
    pub(super) in_folder: bool,
    /// Baking is on (the config or `--bake-keystores`).
    pub(super) bakes: bool,
    /// `--allow-public-keystores`.
    pub(super) allow_public: bool,
}

impl Questions {
    /// Whether some folder's answer waits for its files to be read.
    pub(super) fn pending(&self) -> bool {
        self.main.iter().chain(self.variants.iter().flatten()).any(|i| matches!(i, Inspection::Pending(_)))
    }

    /// Whether the answers may refuse a destination: baked keystores bound
    /// for a public registry among the project's outputs.
    pub(super) fn may_refuse(&self, project: &Project) -> bool {
        self.bakes && !self.allow_public && project.outputs.iter().any(|o| project.is_public(o))
    }
}

/// Walks the customer folders through the ignore rules, checks the
/// configuration files, resolves `[maven]` jars and checks every file.
pub(super) fn gather(opts: &Options, config: &Config, cache: &Cache) -> Result<Inputs> {
    let gopts =
        crate::inputs::Options { bake_keystores: opts.bake_keystores, locked: opts.locked, net: opts.registry.net() };
    let mut g = crate::inputs::gather(config, &gopts, cache)?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (main, variants, warned) = truststore::gather(config, now)?;
    replaced_truststores(config, &g.walked, &g.variant_walks, &main, &variants, &mut g.warnings)?;
    for w in &warned {
        crate::progress::message(&format!("warning: {w}"));
    }
    g.warnings.extend(warned);
    let has_keystores = |w: &[(LayerSource, Vec<SourceEntry>)]| {
        w.iter()
            .any(|(s, e)| s.kind == LayerKind::Keystores && e.iter().any(|e| !matches!(e.kind, layer::SourceKind::Dir)))
    };
    let questions = Questions {
        main: g.inspections,
        variants: g.variant_inspections,
        in_folder: has_keystores(&g.walked) || g.variant_walks.iter().any(|w| has_keystores(w)),
        bakes: config.bakes_keystores(opts.bake_keystores),
        allow_public: opts.allow_public_keystores,
    };
    Ok(Inputs {
        walks: Some(Walks { main: g.walked, variants: g.variant_walks }),
        prints: g.prints,
        variant_prints: g.variant_prints,
        files: g.files,
        checked: g.checked,
        gathered: Gathered { excluded: g.excluded, maven: g.maven, config_files: g.config_files, warnings: g.warnings },
        keystores: Some(questions),
        truststore: (main, variants),
    })
}

/// A truststore laid wholesale by the keystores folder or an overlay: an
/// error when `[truststore]` merges into the base's (the file would hide
/// the merge, or be hidden by it), else a warning that it goes stale.
fn replaced_truststores(
    config: &Config,
    main: &Walk,
    variants: &[Walk],
    wanted: &Wanted,
    variant_wanted: &[Wanted],
    warnings: &mut Vec<String>,
) -> Result<()> {
    // The main folders go into every variant too.
    let any = !wanted.certs.is_empty() || variant_wanted.iter().any(|w| !w.certs.is_empty());
    let walks =
        std::iter::once((main, any)).chain(variants.iter().zip(variant_wanted.iter().map(|w| !w.certs.is_empty())));
    for (walk, merges) in walks {
        for (src, entries) in walk {
            let target = match src.kind {
                LayerKind::Keystores => truststore::FILE_NAME,
                LayerKind::Overlays => truststore::FILE,
                _ => continue,
            };
            let Some(e) = entries.iter().find(|e| e.rel == target && !matches!(e.kind, layer::SourceKind::Dir)) else {
                continue;
            };
            let shown = format!("{}/{}", src.label, e.rel);
            if merges {
                return Err(Error::config(format!(
                    "{shown}: replaces the base's truststore, into which {} merges certificates; remove the file (list its certificates in [truststore] certs) or the [truststore] certs",
                    config.path.display()
                )));
            }
            let w = format!(
                "{shown}: replaces the base's truststore wholesale and goes stale with each base update; list the certificates you add in [truststore] certs instead (they are merged into the base's own truststore)"
            );
            crate::progress::message(&format!("warning: {w}"));
            warnings.push(w);
        }
    }
    Ok(())
}

/// The artifact key (`group:artifact`) of every checked jar whose Maven
/// coordinates came from its POM, by path.
pub(super) fn artifact_keys(checked: &[CheckedFile]) -> HashMap<&std::path::Path, String> {
    checked
        .iter()
        .filter_map(|f| {
            let c = f.coords.as_ref().filter(|c| c.from_pom)?;
            Some((f.path.as_path(), format!("{}:{}", c.group.as_ref()?, c.artifact)))
        })
        .collect()
}
