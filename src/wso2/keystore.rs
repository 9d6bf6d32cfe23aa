//! Keystore recognition by content, not name: JKS (`FE ED FE ED`), JCEKS
//! (`CE CE CE CE`) and PKCS#12 (a DER `SEQUENCE` whose first element is
//! `INTEGER 3`). wso2img never reads further, and never needs a password.

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
    fn recognises_keystores() {
        assert_eq!(detect(&[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]), Some("JKS"));
        assert_eq!(detect(&[0xce, 0xce, 0xce, 0xce]), Some("JCEKS"));
        assert_eq!(detect(&[0x30, 0x82, 0x0a, 0x1b, 0x02, 0x01, 0x03, 0x30]), Some("PKCS12"));
        assert_eq!(detect(b"-----BEGIN CERTIFICATE-----"), None);
        assert_eq!(detect(&[0x30, 0x82, 0x0a, 0x1b, 0x30, 0x82]), None);
        assert_eq!(detect(b""), None);
    }
}
