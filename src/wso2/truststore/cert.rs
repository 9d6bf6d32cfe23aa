//! Certificates for `[truststore]`: read from PEM (one or many) or DER files,
//! checked (validity at build time, CA or not), each with its alias.

use std::path::Path;

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::sanitize::escape_controls;

/// A certificate to add to a truststore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cert {
    /// Its alias in the truststore.
    pub alias: String,
    /// Its subject (RFC 4514 form).
    pub subject: String,
    /// SHA-256 of its DER bytes (what `keytool -list -v` shows as SHA256).
    pub sha256: Digest,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// The file it came from, as the config names it.
    pub source: String,
    /// Its DER bytes.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// Reads the certificates of `path` (shown as `label`), named `alias` (or
/// after the file), checked against the time `now` (seconds since the epoch):
/// the certificates, and the warnings (a certificate that is not a CA).
pub fn read(path: &Path, label: &str, alias: Option<&str>, now: i64) -> Result<(Vec<Cert>, Vec<String>)> {
    let bytes = crate::bounded::read_file(path, crate::bounded::CERTIFICATES)
        .map_err(|e| Error::config(format!("{label}: {}", crate::bounded::read_error(&e))))?;
    let ders = ders(&bytes, label)?;
    let base = match alias {
        Some(a) => a.to_string(),
        None => alias_from_name(path),
    };
    let mut certs = Vec::new();
    let mut warnings = Vec::new();
    let many = ders.len() > 1;
    for (i, der) in ders.into_iter().enumerate() {
        let alias = if many { format!("{base}-{}", i + 1) } else { base.clone() };
        let which = if many { format!("{label} (certificate {})", i + 1) } else { label.to_string() };
        let (cert, warning) = check(der, &which, alias, label, now)?;
        warnings.extend(warning);
        certs.push(cert);
    }
    Ok((certs, warnings))
}

/// The DER certificates in a PEM or DER file.
fn ders(bytes: &[u8], label: &str) -> Result<Vec<Vec<u8>>> {
    if let Some(kind) = crate::wso2::keystore::detect(bytes) {
        let key = match kind {
            "JKS" => super::jks::Store::parse(bytes, None).map(|s| s.has_private_key()).unwrap_or(false),
            _ => super::pkcs12::open(bytes, super::DEFAULT_PASSWORD).map(|o| o.has_private_key()).unwrap_or(false),
        };
        return Err(Error::config(if key {
            format!(
                "{label}: is a {kind} keystore with a private key; [truststore] takes certificates only — a keystore goes in the keystores folder (and follows its rules)"
            )
        } else {
            format!(
                "{label}: is a {kind} store, not a certificate; list its certificates as PEM or DER files (keytool -exportcert -rfc)"
            )
        }));
    }
    let text = bytes.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &bytes[i..]).unwrap_or(&[]);
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    if !text.starts_with(b"-----BEGIN ") && !contains(bytes, b"\n-----BEGIN ") {
        return Ok(vec![bytes.to_vec()]);
    }
    let mut out = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| Error::config(format!("{label}: not a readable PEM file ({e})")))?;
        match pem.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" => out.push(pem.contents),
            l if l.contains("PRIVATE KEY") => {
                return Err(Error::config(format!(
                    "{label}: holds a private key ({l}); [truststore] takes certificates only — remove the key from the file"
                )))
            }
            l => {
                return Err(Error::config(format!(
                    "{label}: holds a PEM block {:?}, not a certificate; keep only CERTIFICATE blocks",
                    escape_controls(l)
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(Error::config(format!("{label}: holds no certificate")));
    }
    Ok(out)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Parses and checks one certificate.
fn check(der: Vec<u8>, which: &str, alias: String, label: &str, now: i64) -> Result<(Cert, Option<String>)> {
    let parsed = match X509Certificate::from_der(&der) {
        Ok(([], c)) => c,
        Ok(_) => return Err(Error::config(format!("{which}: not a certificate (bytes after its end)"))),
        Err(e) => return Err(Error::config(format!("{which}: not a readable X.509 certificate ({e})"))),
    };
    let subject = escape_controls(&parsed.subject().to_string()).into_owned();
    let v = parsed.validity();
    let (from, until) = (v.not_before.timestamp(), v.not_after.timestamp());
    let time = crate::image::mutate::rfc3339;
    if now < from {
        return Err(Error::config(format!("{which}: not valid yet: its validity starts {} ({subject})", time(from))));
    }
    if now > until {
        return Err(Error::config(format!(
            "{which}: expired on {} ({subject}); use a current certificate",
            time(until)
        )));
    }
    let ca = matches!(parsed.basic_constraints(), Ok(Some(b)) if b.value.ca);
    let warning = (!ca).then(|| {
        format!(
            "{which}: is not a CA certificate ({subject}); trusting it trusts that one certificate only, not what a CA signs"
        )
    });
    let sha256 = Digest::of(&der);
    Ok((Cert { alias, subject, sha256, not_after: time(until), source: label.to_string(), der }, warning))
}

/// The alias a file's certificates get: its name without the last
/// extension, lowercased, every character but letters, digits, `.`, `_`
/// and `-` made `-`.
pub fn alias_from_name(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let alias: String = stem
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '_' | '-') => c,
            _ => '-',
        })
        .collect();
    if alias.is_empty() {
        "cert".into()
    } else {
        alias
    }
}

/// Checks an alias given in the config: 1 to 100 lowercase ASCII letters,
/// digits, `.`, `_` or `-` (the JDK compares aliases without case).
pub fn check_alias(alias: &str) -> std::result::Result<(), String> {
    let ok = !alias.is_empty()
        && alias.len() <= 100
        && alias.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 100 lowercase letters, digits, '.', '_' or '-'".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_from_names() {
        assert_eq!(alias_from_name(Path::new("certs/Partner CA.pem")), "partner-ca");
        assert_eq!(alias_from_name(Path::new("a.b.crt")), "a.b");
        assert!(check_alias("partner-ca").is_ok());
        assert!(check_alias("Partner").is_err());
        assert!(check_alias("").is_err());
    }

    #[test]
    fn refuses_what_is_not_a_certificate() {
        let d = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = d.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let key = write("k.pem", b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n");
        let e = read(&key, "certs/k.pem", None, 0).unwrap_err();
        assert!(e.message().starts_with("certs/k.pem: holds a private key"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let junk = write("j.der", b"\x30\x03\x02\x01\x01");
        let e = read(&junk, "certs/j.der", None, 0).unwrap_err();
        assert!(e.message().starts_with("certs/j.der: not a readable X.509 certificate"), "{e}");
        let jks = write("s.crt", &super::super::jks::empty("wso2carbon"));
        let e = read(&jks, "certs/s.crt", None, 0).unwrap_err();
        assert!(e.message().contains("is a JKS store, not a certificate"), "{e}");
    }
}
