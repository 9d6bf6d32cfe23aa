//! Configuration checked before it ships: every `.toml`, `.json` and `.xml`
//! file of the overlays and themes must parse ([`files`]), and the
//! placeholders of `deployment.toml` must be well formed; errors are
//! `file:line:col: what` and stop the build (exit 2). When `deployment.toml`
//! names a database whose JDBC driver no jar provides, a warning names the
//! driver's usual coordinates ([`drivers`]).

pub mod drivers;
pub mod files;

use std::fs;

use crate::config::{LayerKind, LayerSource};
use crate::error::{io_reason, Error, Result};
use crate::layer::{SourceEntry, SourceKind};

/// Where `deployment.toml` goes, relative to the product home.
pub const DEPLOYMENT_TOML: &str = "repository/conf/deployment.toml";

/// What the configuration files say that later checks need.
#[derive(Debug, Clone, Default)]
pub struct ConfigFacts {
    /// Configuration files checked.
    pub checked: usize,
    /// `deployment.toml`'s databases: (file as shown, table, type), e.g.
    /// (`overlays/repository/conf/deployment.toml`, `database.apim_db`, `mysql`).
    pub databases: Vec<(String, String, String)>,
}

/// Checks every configuration file of the overlay and theme folders.
pub fn config_files(folders: &[(LayerSource, Vec<SourceEntry>)]) -> Result<ConfigFacts> {
    let mut facts = ConfigFacts::default();
    for (src, entries) in folders {
        if !matches!(src.kind, LayerKind::Overlays | LayerKind::Themes) {
            continue;
        }
        for e in entries {
            if !matches!(e.kind, SourceKind::File { .. }) {
                continue;
            }
            let ext = e.rel.rsplit_once('.').map_or("", |(_, x)| x);
            let Some(ext) = ["toml", "json", "xml"].into_iter().find(|k| ext.eq_ignore_ascii_case(k)) else {
                continue;
            };
            let shown = e.shown(&src.label);
            let bytes =
                fs::read(&e.path).map_err(|err| Error::input(format!("{shown}: cannot read ({})", io_reason(&err))))?;
            let at = |p: files::Problem| Error::config(format!("{shown}:{}:{}: {}", p.line, p.col, p.what));
            facts.checked += 1;
            if ext == "json" {
                files::json(&bytes).map_err(at)?;
                continue;
            }
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::config(format!("{shown}: is not UTF-8 text; save it as UTF-8")))?;
            if ext == "xml" {
                files::xml(&text).map_err(at)?;
                continue;
            }
            let doc = files::toml(&text).map_err(at)?;
            if src.kind == LayerKind::Overlays && e.rel == DEPLOYMENT_TOML {
                files::placeholders(&text).map_err(at)?;
                facts.databases.extend(databases(&doc).into_iter().map(|(t, ty)| (shown.clone(), t, ty)));
            }
        }
    }
    Ok(facts)
}

/// `(table, type)` of every `[database.*]` table with a `type`.
fn databases(doc: &toml::Table) -> Vec<(String, String)> {
    let Some(toml::Value::Table(dbs)) = doc.get("database") else { return Vec::new() };
    dbs.iter()
        .filter_map(|(name, v)| {
            let ty = v.get("type")?.as_str()?;
            Some((format!("database.{name}"), ty.to_ascii_lowercase()))
        })
        .collect()
}
