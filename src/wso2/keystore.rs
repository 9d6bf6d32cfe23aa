//! Keystore recognition by content, not name: JKS (`FE ED FE ED`), JCEKS
//! (`CE CE CE CE`) and PKCS#12 (a DER `SEQUENCE` whose first element is
//! `INTEGER 3`). wso2img never reads further, and never needs a password.
//! Outside the keystores folder a file is also a keystore by name
//! ([`by_name`], both in [`sniff`]); [`public_refusal`] is the one message of the guard that keeps
//! baked keystores out of public registries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{io_reason, Error, Result};
use crate::layer::{Head, HEAD};

/// The keystore type of `path`, or an error naming it (`label`) when it is not one.
pub fn kind(path: &Path, label: &str) -> Result<&'static str> {
    let head = Head::read(path).map_err(|e| Error::input(format!("{label}: cannot read ({})", io_reason(&e))))?;
    detect(head.as_slice()).ok_or_else(|| {
        Error::input(format!(
            "{label}: is not a keystore (JKS, JCEKS or PKCS#12); keep only keystores in the keystores folder"
        ))
    })
}

/// File name endings that mark a keystore whatever its content.
const NAMES: [&str; 4] = [".jks", ".jceks", ".p12", ".pfx"];

/// The keystore type a customer file outside the keystores folder has by
/// its name (`.jks`, `.jceks`, `.p12`, `.pfx`, any case), whatever it holds.
pub fn by_name(name: &str) -> Option<&'static str> {
    let name = name.as_bytes();
    let ends =
        |ext: &str| name.len() >= ext.len() && name[name.len() - ext.len()..].eq_ignore_ascii_case(ext.as_bytes());
    Some(match *NAMES.iter().find(|e| ends(e))? {
        ".jks" => "JKS",
        ".jceks" => "JCEKS",
        _ => "PKCS12",
    })
}

/// The keystore type of a customer file outside the keystores folder named
/// `name` whose first bytes are `first` (only the first [`HEAD`] count): by
/// name, else by content.
pub fn sniff(name: &str, first: &[u8]) -> Option<&'static str> {
    let first = &first[..first.len().min(HEAD)];
    by_name(name).or_else(|| detect(first)).or_else(|| private_key(first))
}

/// Whether a file whose first bytes are `first` is PEM text that may hold a
/// private key further down (a certificate first, or `openssl pkcs12`'s
/// `Bag Attributes` lines): such a file is read in full by [`pem_private_key`].
pub fn may_hold_pem_key(first: &[u8]) -> bool {
    let text = first.trim_ascii_start();
    text.starts_with(b"-----BEGIN ") || text.starts_with(b"Bag Attributes")
}

/// Recognises a private key anywhere in PEM text: any `-----BEGIN … PRIVATE
/// KEY-----` block, after certificates or other text.
pub fn pem_private_key(text: &[u8]) -> Option<&'static str> {
    let marker = b"-----BEGIN ";
    let mut at = 0;
    while let Some(i) = text[at..].windows(marker.len()).position(|w| w == marker) {
        let start = at + i;
        if let Some(kind) = private_key(&text[start..]) {
            return Some(kind);
        }
        at = start + marker.len();
    }
    None
}

/// [`pem_private_key`] in the first [`crate::bounded::CERTIFICATES`] bytes
/// of the file at `path` (PEM files are small; a key further in is not looked for).
pub fn pem_file_private_key(path: &Path) -> std::io::Result<Option<&'static str>> {
    use std::io::Read;
    let mut text = Vec::new();
    crate::bounded::open_file(path)?.take(crate::bounded::CERTIFICATES.max).read_to_end(&mut text)?;
    Ok(pem_private_key(&text))
}

/// Recognises a private key from its first bytes: PEM (`-----BEGIN … PRIVATE
/// KEY-----`, OpenSSH's and cosign's included) and DER (PKCS#8, encrypted
/// PKCS#8, PKCS#1 RSA, SEC1 EC) by a cheap look at its ASN.1 header. Such a
/// file follows every keystore rule.
pub fn private_key(b: &[u8]) -> Option<&'static str> {
    let text = b.trim_ascii_start();
    if let Some(rest) = text.strip_prefix(b"-----BEGIN ") {
        let label = &rest[..rest.windows(5).position(|w| w == b"-----")?];
        return match label {
            b"OPENSSH PRIVATE KEY" => Some("OpenSSH private key"),
            l if l.ends_with(b"PRIVATE KEY") => Some("PEM private key"),
            _ => None,
        };
    }
    let inner = der_sequence_body(b)?;
    const PBES2: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
    const PKCS12_PBE: &[u8] = &[0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01];
    match inner {
        [0x02, 0x01, 0x00 | 0x01, 0x30, _, 0x06, ..] => Some("DER private key (PKCS#8)"),
        [0x02, 0x01, 0x00, 0x30, 0x81, _, 0x06, ..] => Some("DER private key (PKCS#8)"),
        [0x02, 0x01, 0x00, 0x02, ..] => Some("DER private key (RSA)"),
        [0x02, 0x01, 0x01, 0x04, ..] => Some("DER private key (EC)"),
        [0x30, ..] => {
            let alg = der_sequence_body(inner)?;
            (alg.starts_with(&[0x30])
                && der_sequence_body(alg).is_some_and(|a| a.starts_with(PBES2) || a.starts_with(PKCS12_PBE))
                || alg.starts_with(PBES2)
                || alg.starts_with(PKCS12_PBE))
            .then_some("DER private key (encrypted PKCS#8)")
        }
        _ => None,
    }
}

/// What follows the tag and length of a DER `SEQUENCE` at the start of `b`.
fn der_sequence_body(b: &[u8]) -> Option<&[u8]> {
    if b.first() != Some(&0x30) {
        return None;
    }
    let skip = match *b.get(1)? {
        l if l < 0x80 => 2,
        l @ 0x81..=0x84 => 2 + (l & 0x7f) as usize,
        _ => return None,
    };
    b.get(skip..)
}

/// Keystores recognised by content among files whose bytes were read for
/// another purpose (hashing their layers), so that a fresh build need not
/// open every file twice; see [`crate::inputs::Inspection`].
#[derive(Debug, Default)]
pub struct Seen(Mutex<Vec<(PathBuf, &'static str)>>);

impl Seen {
    /// Looks at the name of the file at `path` and at its first bytes (as
    /// many as were read, at least the first [`HEAD`] unless the file is shorter).
    pub fn look(&self, path: &Path, first: &[u8]) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // PEM text may hold a key after a certificate: what was read, then the
        // file (an unreadable one fails its layer's hashing anyway).
        let pem = || {
            may_hold_pem_key(first)
                .then(|| pem_private_key(first).or_else(|| pem_file_private_key(path).ok().flatten()))
                .flatten()
        };
        if let Some(kind) = sniff(name, first).or_else(pem) {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push((path.to_path_buf(), kind));
        }
    }

    /// The keystores seen, by path.
    pub fn found(&self) -> HashMap<PathBuf, &'static str> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }
}

/// The refusal to push an image with baked keystores to `dest` on public
/// registry `registry`; `why` says what makes it baked.
pub fn public_refusal(dest: &str, registry: &str, why: &str) -> Error {
    Error::usage(format!(
        "{dest}: refusing to push baked keystores ({why}) to {registry}, a public registry; \
mount the keystores at run time, or pass --allow-public-keystores"
    ))
}

/// Recognises a keystore from its first bytes.
pub fn detect(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(&[0xfe, 0xed, 0xfe, 0xed]) {
        return Some("JKS");
    }
    if b.starts_with(&[0xce, 0xce, 0xce, 0xce]) {
        return Some("JCEKS");
    }
    if b.first() != Some(&0x30) || b.len() < 5 {
        return None;
    }
    let after_len = match b[1] {
        l if l < 0x80 => 2,
        0x80 => 2,
        l => 2 + (l & 0x7f) as usize,
    };
    (b.get(after_len..after_len + 3) == Some(&[0x02, 0x01, 0x03])).then_some("PKCS12")
}

#[cfg(test)]
mod tests {
    use super::detect;

    #[test]
    fn keys_after_other_pem_text() {
        let cert = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let mut both = cert.to_vec();
        both.extend_from_slice(b"Bag Attributes\n    localKeyID: 01\n-----BEGIN PRIVATE KEY-----\nMIIE\n");
        assert!(super::may_hold_pem_key(cert) && super::may_hold_pem_key(b"Bag Attributes\n"));
        assert!(!super::may_hold_pem_key(b"<?xml version"));
        assert_eq!(super::pem_private_key(&both), Some("PEM private key"));
        assert_eq!(super::pem_private_key(cert), None);
        assert_eq!(super::pem_private_key(b"-----BEGIN -----BEGIN EC PRIVATE KEY-----"), Some("PEM private key"));
    }

    #[test]
    fn sniffs_by_name_and_content() {
        assert_eq!(super::by_name("x.PFX"), Some("PKCS12"));
        assert_eq!(super::by_name("a.jceks"), Some("JCEKS"));
        assert_eq!(super::by_name("jks"), None);
        assert_eq!(super::by_name("deployment.toml"), None);
        let seen = super::Seen::default();
        let path = std::path::Path::new("themes/client-truststore.bin");
        seen.look(path, &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]);
        seen.look(std::path::Path::new("themes/a.css"), b"body {}");
        let named = std::path::Path::new("themes/x.P12");
        seen.look(named, b"not really");
        // Only the first HEAD bytes count, as for a head read from disk.
        let mut late = vec![b' '; super::HEAD];
        late.extend([0xfe, 0xed, 0xfe, 0xed]);
        seen.look(std::path::Path::new("themes/late.bin"), &late);
        assert_eq!(seen.found(), [(path.to_path_buf(), "JKS"), (named.to_path_buf(), "PKCS12")].into_iter().collect());
    }

    #[test]
    fn recognises_private_keys() {
        use super::private_key;
        for (pem, kind) in [
            (&b"-----BEGIN PRIVATE KEY-----\nMIIE"[..], "PEM private key"),
            (b"\n-----BEGIN RSA PRIVATE KEY-----\n", "PEM private key"),
            (b"-----BEGIN EC PRIVATE KEY-----", "PEM private key"),
            (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", "PEM private key"),
            (b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----", "PEM private key"),
            (b"-----BEGIN OPENSSH PRIVATE KEY-----", "OpenSSH private key"),
        ] {
            assert_eq!(private_key(pem), Some(kind), "{}", String::from_utf8_lossy(pem));
        }
        for not in [
            &b"-----BEGIN CERTIFICATE-----"[..],
            b"-----BEGIN PUBLIC KEY-----",
            b"-----BEGIN RSA PUBLIC KEY-----",
            b"hello",
        ] {
            assert_eq!(private_key(not), None, "{}", String::from_utf8_lossy(not));
        }
        // openssl genpkey (PKCS#8 Ed25519, P-256), traditional RSA and SEC1 EC, encrypted PKCS#8.
        let ed25519 = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22];
        assert_eq!(private_key(&ed25519), Some("DER private key (PKCS#8)"));
        let p256 = [0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86];
        assert_eq!(private_key(&p256), Some("DER private key (PKCS#8)"));
        let rsa = [0x30, 0x82, 0x04, 0xa4, 0x02, 0x01, 0x00, 0x02, 0x82, 0x01, 0x01, 0x00];
        assert_eq!(private_key(&rsa), Some("DER private key (RSA)"));
        let ec = [0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20, 0x11];
        assert_eq!(private_key(&ec), Some("DER private key (EC)"));
        let enc = [
            0x30, 0x82, 0x01, 0x3c, 0x30, 0x57, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d, 0x30,
        ];
        assert_eq!(private_key(&enc), Some("DER private key (encrypted PKCS#8)"));
        // A DER certificate and a PKCS#12 store are not private keys.
        let cert = [0x30, 0x82, 0x03, 0x2a, 0x30, 0x82, 0x02, 0x12, 0xa0, 0x03, 0x02, 0x01, 0x02];
        assert_eq!(private_key(&cert), None);
        assert_eq!(private_key(&[0x30, 0x82, 0x0a, 0x1b, 0x02, 0x01, 0x03, 0x30]), None);
        assert_eq!(super::sniff("signing.pem", b"-----BEGIN EC PRIVATE KEY-----\nMHcC"), Some("PEM private key"));
    }

    #[test]
    fn recognises_keystores() {
        assert_eq!(detect(&[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]), Some("JKS"));
        assert_eq!(detect(&[0xce, 0xce, 0xce, 0xce]), Some("JCEKS"));
        assert_eq!(detect(&[0x30, 0x82, 0x0a, 0x1b, 0x02, 0x01, 0x03, 0x30]), Some("PKCS12"));
        assert_eq!(detect(b"-----BEGIN CERTIFICATE-----"), None);
        assert_eq!(detect(&[0x30, 0x82, 0x0a, 0x1b, 0x30, 0x82]), None);
        assert_eq!(detect(b""), None);
    }
}
