//! The client truststore of WSO2 API Manager: `client-truststore.jks` in
//! `repository/resources/security`, password `wso2carbon`, in every version
//! from 4.1 to 4.7 and every kind — configured as `JKS` throughout, while
//! 4.4 and 4.5 ship PKCS#12 content under that name (the JDK's JKS keystore
//! reads both). wso2img reads the base's own store, finds its real format by
//! its first bytes, adds the `[truststore]` certificates as trusted
//! certificate entries and writes the store again in the same format with
//! the same password: every base entry kept, the bytes deterministic.

pub mod cert;
pub mod jks;
pub mod pkcs12;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use cert::{check_alias, Cert};

use crate::config::{Config, TruststoreSection};
use crate::error::{Error, Result};
use crate::sanitize::escape_controls;

/// The truststore, relative to the product home.
pub const FILE: &str = "repository/resources/security/client-truststore.jks";
/// Its file name.
pub const FILE_NAME: &str = "client-truststore.jks";
/// The password the product ships it with (`[truststore] password` in deployment.toml).
pub const DEFAULT_PASSWORD: &str = "wso2carbon";
/// Label listing the certificates wso2img added (JSON: alias, subject, sha256, not_after).
pub const LABEL: &str = "io.wso2img.truststore";

/// A store's real format, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Format {
    /// `FE ED FE ED`.
    #[serde(rename = "JKS")]
    Jks,
    /// A DER PFX.
    #[serde(rename = "PKCS12")]
    Pkcs12,
}

impl Format {
    /// How messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jks => "JKS",
            Format::Pkcs12 => "PKCS12",
        }
    }
}

/// The format the official distribution of `version` ships its truststore
/// in: PKCS#12 content in 4.4 and 4.5, JKS in 4.1–4.3 and 4.6–4.7 (the name
/// and the configured type, `JKS`, never change).
pub fn shipped_format(version: Option<&str>) -> Option<Format> {
    match super::major_minor(version)? {
        (4, 4 | 5) => Some(Format::Pkcs12),
        (4, 1..=3 | 6 | 7) => Some(Format::Jks),
        _ => None,
    }
}

/// The certificates for the main image (`variant` = `None`) or a variant,
/// and the password their store opens with.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// `[truststore]`'s certificates, then the variant's.
    pub certs: Vec<Cert>,
    /// The password (from `password_env`, else the product's default); never shown.
    pub password: Password,
}

/// A truststore password that never shows in messages or debug output.
#[derive(Clone)]
pub struct Password(String);

impl Default for Password {
    fn default() -> Self {
        Password(DEFAULT_PASSWORD.into())
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

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
            password = Password(value);
        }
        for spec in &t.certs {
            let (pattern, alias) = spec.parts();
            for (path, label) in files(&config.dir, pattern, &config.path, what)? {
                let (read, warned) = cert::read(&path, &label, alias, now)?;
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

/// A certificate of `[truststore]` the base's store already holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Present {
    /// The alias it would have had.
    pub alias: String,
    /// The alias it has in the base's store.
    pub base_alias: String,
    /// Its SHA-256.
    pub sha256: crate::digest::Digest,
    /// The file it came from.
    pub source: String,
}

/// The merged store, and what went into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Merged {
    /// Its path in the image.
    pub path: String,
    /// Its real format (the base's).
    pub format: Format,
    /// Entries it had in the base.
    pub base_entries: usize,
    /// The certificates added.
    pub added: Vec<Cert>,
    /// Certificates the base already held (nothing added for them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub already_present: Vec<Present>,
    /// It holds a private key (from the base): a keystore, with every keystore rule.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub private_key: bool,
    /// Its bytes.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// An entry of a store: its alias (when it has one) and its certificate
/// (`None`: a private or secret key).
type Held = (Option<String>, Option<Vec<u8>>);

/// Adds `want`'s certificates to the base's store `base` (at `path` in the
/// image, shown as `shown`), new entries dated `created` (seconds since the
/// epoch). An alias the store holds with another certificate is an error; a
/// certificate it holds already is noted and not added again.
pub fn merge(base: &[u8], path: &str, shown: &str, want: &Wanted, created: i64) -> Result<Merged> {
    let password = want.password.expose();
    let unreadable = |why: String| Error::source(format!("{shown}: the base's truststore cannot be read ({why})"));
    let wrong_password = || {
        Error::config(format!(
            "{shown}: the base's truststore does not open with the {} password; set [truststore] password_env to the variable holding its password",
            if password == DEFAULT_PASSWORD { "product's default" } else { "given" }
        ))
    };
    let (format, entries): (Format, Vec<Held>) = match super::keystore::detect(base) {
        Some("JKS") => {
            let s = jks::Store::parse(base, Some(password)).map_err(|e| match e {
                jks::JksError::Password => wrong_password(),
                jks::JksError::Malformed(m) => unreadable(m),
            })?;
            (Format::Jks, s.entries.into_iter().map(|e| (Some(e.alias), e.cert)).collect())
        }
        Some("PKCS12") => {
            let o = pkcs12::open(base, password).map_err(|m| match m.starts_with("the password") {
                true => wrong_password(),
                false => unreadable(m),
            })?;
            (Format::Pkcs12, o.entries.into_iter().map(|e| (e.alias, e.cert)).collect())
        }
        other => {
            return Err(unreadable(format!(
                "{}; wso2img merges into JKS and PKCS#12 truststores",
                other.map(|k| format!("a {k} store")).unwrap_or_else(|| "not a keystore".into())
            )))
        }
    };
    let mut added: Vec<Cert> = Vec::new();
    let mut already_present = Vec::new();
    for c in &want.certs {
        if let Some((a, _)) = entries.iter().find(|(_, der)| der.as_deref() == Some(c.der.as_slice())) {
            already_present.push(Present {
                alias: c.alias.clone(),
                base_alias: escape_controls(a.as_deref().unwrap_or("")).into_owned(),
                sha256: c.sha256,
                source: c.source.clone(),
            });
            continue;
        }
        let taken = entries.iter().find(|(a, _)| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&c.alias)));
        if let Some((_, der)) = taken {
            let held = match der {
                Some(d) => format!("certificate {}", crate::digest::Digest::of(d)),
                None => "private key".into(),
            };
            return Err(Error::config(format!(
                "{}: alias {} is in the base's truststore ({shown}) with another {held}; choose another alias ({{ path = \"{}\", alias = \"…\" }})",
                c.source, c.alias, c.source
            )));
        }
        added.push(c.clone());
    }
    let new: Vec<(&str, &[u8])> = added.iter().map(|c| (c.alias.as_str(), c.der.as_slice())).collect();
    let bytes = match format {
        Format::Jks => {
            let s = jks::Store::parse(base, None).map_err(|_| unreadable("changed while read".into()))?;
            s.with_trusted(&new, created.max(0) as u64 * 1000, password)
        }
        Format::Pkcs12 => pkcs12::with_trusted(base, &new, password).map_err(unreadable)?,
    };
    Ok(Merged {
        path: path.to_string(),
        format,
        base_entries: entries.len(),
        private_key: entries.iter().any(|(_, d)| d.is_none()),
        added,
        already_present,
        bytes,
    })
}

/// The label value listing `added` (JSON, sorted keys).
pub fn label_value(added: &[Cert]) -> String {
    let list: Vec<serde_json::Value> = added
        .iter()
        .map(|c| {
            serde_json::json!({"alias": c.alias, "subject": c.subject, "sha256": c.sha256.to_string(), "not_after": c.not_after})
        })
        .collect();
    String::from_utf8(crate::image::json::canonical(&serde_json::Value::Array(list))).expect("JSON is UTF-8")
}

/// The certificates a [`LABEL`] value lists, for `inspect`.
pub fn from_label(value: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(value).ok().filter(serde_json::Value::is_array)
}
