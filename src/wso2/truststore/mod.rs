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

use serde::Serialize;

pub use cert::{check_alias, Cert};

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
    /// A password read from the user's configuration.
    pub fn new(value: String) -> Password {
        Password(value)
    }

    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
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
