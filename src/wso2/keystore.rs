//! Keystore recognition by content, not name: JKS (`FE ED FE ED`), JCEKS
//! (`CE CE CE CE`) and PKCS#12 (a DER `SEQUENCE` whose first element is
//! `INTEGER 3`). wso2img never reads further, and never needs a password.
//! Outside the keystores folder a file is also a keystore by name
//! ([`sniff`]); [`public_refusal`] is the one message of the guard that keeps
//! baked keystores out of public registries.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{io_reason, Error, Result};

/// The keystore type of `path`, or an error naming it (`label`) when it is not one.
pub fn kind(path: &Path, label: &str) -> Result<&'static str> {
    let mut head = [0u8; 16];
    let mut f = File::open(path).map_err(|e| Error::input(format!("{label}: cannot read ({})", io_reason(&e))))?;
    let n = f.read(&mut head).map_err(|e| Error::input(format!("{label}: cannot read ({})", io_reason(&e))))?;
    detect(&head[..n]).ok_or_else(|| {
        Error::input(format!(
            "{label}: is not a keystore (JKS, JCEKS or PKCS#12); keep only keystores in the keystores folder"
        ))
    })
}

/// File name endings that mark a keystore whatever its content.
const NAMES: [&str; 4] = [".jks", ".jceks", ".p12", ".pfx"];

/// The keystore type of a customer file outside the keystores folder, judged
/// by name (`.jks`, `.jceks`, `.p12`, `.pfx`) or by content (`head`, its
/// first bytes when already read); `None` for anything else (an unreadable
/// file is left to the later checks).
pub fn sniff(path: &Path, name: &str, head: Option<&[u8]>) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if let Some(ext) = NAMES.iter().find(|e| lower.ends_with(*e)) {
        return Some(match *ext {
            ".jks" => "JKS",
            ".jceks" => "JCEKS",
            _ => "PKCS12",
        });
    }
    if let Some(h) = head {
        return detect(h);
    }
    let mut head = [0u8; 16];
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).ok()?;
    detect(&head[..n])
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
    fn sniffs_by_name_and_content() {
        let d = tempfile::tempdir().unwrap();
        let jks = d.path().join("client-truststore.bin");
        std::fs::write(&jks, [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]).unwrap();
        assert_eq!(super::sniff(&jks, "client-truststore.bin", None), Some("JKS"));
        let named = d.path().join("x.PFX");
        std::fs::write(&named, b"not really").unwrap();
        assert_eq!(super::sniff(&named, "x.PFX", None), Some("PKCS12"));
        let plain = d.path().join("deployment.toml");
        std::fs::write(&plain, b"[server]\n").unwrap();
        assert_eq!(super::sniff(&plain, "deployment.toml", Some(b"[server]\n")), None);
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
