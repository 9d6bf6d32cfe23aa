//! The certificates `[truststore]` and each variant's `truststore` name:
//! files and globs read relative to the config, checked, and gathered per
//! image for the merge into the base's own store (`wso2::truststore`).

use std::path::{Path, PathBuf};

use crate::config::{Config, TruststoreSection};
use crate::error::{Error, Result};
use crate::wso2::truststore::{self, Cert, Password, Wanted};

/// Reads and checks the certificates of `[truststore]` and of each variant's
/// `truststore` (globs expanded, files in name order), checked against the
/// time `now`: the main image's, each variant's, and the warnings.
pub fn gather(config: &Config, now: i64) -> Result<(Wanted, Vec<Wanted>, Vec<String>)> {
    let mut warnings = Vec::new();
    let main = wanted(config, &[(&config.truststore, "[truststore]")], now, &mut warnings)?;
    let mut variants = Vec::new();
    for v in &config.variants {
        let what = format!("[[variant]] {} truststore", v.name);
        let mut sections = vec![(&config.truststore, "[truststore]")];
        if let Some(t) = &v.truststore {
            sections.push((t, &what));
        }
        variants.push(wanted(config, &sections, now, &mut warnings)?);
    }
    let mut seen = std::collections::BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    Ok((main, variants, warnings))
}

fn wanted(
    config: &Config,
    sections: &[(&TruststoreSection, &str)],
    now: i64,
    warnings: &mut Vec<String>,
) -> Result<Wanted> {
    let mut certs: Vec<Cert> = Vec::new();
    let mut password = Password::default();
    for (t, what) in sections {
        if let Some(name) = &t.password_env {
            let value = std::env::var(name).map_err(|_| {
                Error::config(format!(
                    "{}: {what} password_env = \"{name}\": the variable is not set (or not UTF-8); set it to the truststore's password",
                    config.path.display()
                ))
            })?;
            password = Password::new(value);
        }
        for spec in &t.certs {
            let (pattern, alias) = spec.parts();
            for (path, label) in files(&config.dir, pattern, &config.path, what)? {
                let (read, warned) = truststore::cert::read(&path, &label, alias, now)?;
                warnings.extend(warned);
                for c in read {
                    if let Some(o) = certs.iter().find(|o| o.alias == c.alias) {
                        return Err(Error::config(format!(
                            "{}: alias {} is given twice ({} and {}); set another alias with {{ path = \"{}\", alias = \"…\" }}",
                            c.source, c.alias, o.source, c.source, c.source
                        )));
                    }
                    if let Some(o) = certs.iter().find(|o| o.sha256 == c.sha256) {
                        warnings.push(format!(
                            "{}: the same certificate as {} (alias {}); it is added once",
                            c.source, o.source, o.alias
                        ));
                        continue;
                    }
                    certs.push(c);
                }
            }
        }
    }
    Ok(Wanted { certs, password })
}

/// The files `pattern` names (relative to `dir`), with their labels: the
/// file itself, or every file a glob matches, in path order.
fn files(dir: &Path, pattern: &str, config: &Path, what: &str) -> Result<Vec<(PathBuf, String)>> {
    let glob_chars = |s: &str| s.contains(['*', '?', '[', '{']);
    if !glob_chars(pattern) {
        let path = dir.join(pattern);
        if !path.is_file() {
            return Err(Error::config(format!(
                "{}: {what} certs: {pattern} not found (paths are relative to the config file)",
                config.display()
            )));
        }
        return Ok(vec![(path, pattern.to_string())]);
    }
    let literal: Vec<&str> = pattern.split('/').take_while(|c| !glob_chars(c)).collect();
    let root = dir.join(literal.join("/"));
    let matcher = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| Error::config(format!("{}: {what} certs \"{pattern}\": {e}", config.display())))?
        .compile_matcher();
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let Ok(list) = std::fs::read_dir(&d) else { continue };
        for e in list.flatten() {
            let p = e.path();
            let Ok(rel) = p.strip_prefix(dir) else { continue };
            let rel = rel.to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if matcher.is_match(&rel) {
                found.push((p, rel));
            }
        }
    }
    if found.is_empty() {
        return Err(Error::config(format!(
            "{}: {what} certs: \"{pattern}\" matches no file (paths are relative to the config file)",
            config.display()
        )));
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}
