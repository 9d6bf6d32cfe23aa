//! The JKS file format (`FE ED FE ED`), as the JDK's `sun.security.provider.JavaKeyStore`
//! reads and writes it: a version, a count, entries (a private key with its
//! chain, or a trusted certificate), then the integrity check — SHA-1 over
//! the password as UTF-16BE, the bytes `Mighty Aphrodite` and everything
//! before it. Entries are read as byte ranges, so a store is rewritten with
//! every existing entry byte for byte.

use sha1::{Digest as _, Sha1};

const MAGIC: [u8; 4] = [0xfe, 0xed, 0xfe, 0xed];
const PRIVATE_KEY: u32 = 1;
const TRUSTED_CERT: u32 = 2;
const WHITENER: &[u8] = b"Mighty Aphrodite";
const HASH_LEN: usize = 20;

/// One entry of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its alias as stored.
    pub alias: String,
    /// The certificate (DER) of a trusted-certificate entry; `None` for a
    /// private key entry.
    pub cert: Option<Vec<u8>>,
}

/// A JKS store, read.
#[derive(Debug)]
pub struct Store<'a> {
    bytes: &'a [u8],
    version: u32,
    /// Its entries, in file order.
    pub entries: Vec<Entry>,
    /// Where the entries end (the integrity hash follows).
    end: usize,
}

/// Why a store could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JksError {
    /// The bytes are not a JKS store (or are cut short).
    Malformed(String),
    /// The integrity check fails with this password.
    Password,
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], JksError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| JksError::Malformed(format!("cut short at byte {}", self.at)))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, JksError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, JksError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    /// A `DataOutput.writeUTF` string (modified UTF-8; read lossily, which
    /// only matters for NUL and characters beyond the BMP).
    fn utf(&mut self) -> Result<String, JksError> {
        let n = self.u16()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn cert(&mut self, version: u32) -> Result<Vec<u8>, JksError> {
        if version == 2 {
            let kind = self.utf()?;
            if kind != "X.509" {
                return Err(JksError::Malformed(format!("a certificate of type {kind:?}, not X.509")));
            }
        }
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}

impl<'a> Store<'a> {
    /// Reads `bytes`; with a password, checks the integrity hash too.
    pub fn parse(bytes: &'a [u8], password: Option<&str>) -> Result<Store<'a>, JksError> {
        let mut r = Reader { b: bytes, at: 0 };
        if r.take(4)? != MAGIC {
            return Err(JksError::Malformed("no JKS magic (FE ED FE ED)".into()));
        }
        let version = r.u32()?;
        if version != 1 && version != 2 {
            return Err(JksError::Malformed(format!("unknown JKS version {version}")));
        }
        let count = r.u32()?;
        let mut entries = Vec::new();
        for _ in 0..count {
            let tag = r.u32()?;
            let alias = r.utf()?;
            r.take(8)?;
            match tag {
                PRIVATE_KEY => {
                    let n = r.u32()? as usize;
                    r.take(n)?;
                    for _ in 0..r.u32()? {
                        r.cert(version)?;
                    }
                    entries.push(Entry { alias, cert: None });
                }
                TRUSTED_CERT => {
                    let cert = r.cert(version)?;
                    entries.push(Entry { alias, cert: Some(cert) });
                }
                t => return Err(JksError::Malformed(format!("unknown entry tag {t}"))),
            }
        }
        let end = r.at;
        let stored = r.take(HASH_LEN)?;
        if r.at != bytes.len() {
            return Err(JksError::Malformed(format!("{} bytes after the integrity hash", bytes.len() - r.at)));
        }
        if let Some(p) = password {
            if integrity(p, &bytes[..end]).as_slice() != stored {
                return Err(JksError::Password);
            }
        }
        Ok(Store { bytes, version, entries, end })
    }

    /// Whether it holds a private key entry.
    pub fn has_private_key(&self) -> bool {
        self.entries.iter().any(|e| e.cert.is_none())
    }

    /// The store with `added` (alias, certificate DER) appended as trusted
    /// certificate entries created at `created_ms`, every entry it had kept
    /// byte for byte, sealed with `password`.
    pub fn with_trusted(&self, added: &[(&str, &[u8])], created_ms: u64, password: &str) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.end + HASH_LEN + added.iter().map(|(a, c)| a.len() + c.len() + 32).sum::<usize>());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.version.to_be_bytes());
        let count = self.entries.len() + added.len();
        out.extend_from_slice(&u32::try_from(count).expect("fewer than 2^32 entries").to_be_bytes());
        out.extend_from_slice(&self.bytes[12..self.end]);
        for (alias, der) in added {
            out.extend_from_slice(&TRUSTED_CERT.to_be_bytes());
            put_utf(&mut out, alias);
            out.extend_from_slice(&created_ms.to_be_bytes());
            if self.version == 2 {
                put_utf(&mut out, "X.509");
            }
            out.extend_from_slice(&u32::try_from(der.len()).expect("a certificate under 4 GiB").to_be_bytes());
            out.extend_from_slice(der);
        }
        let hash = integrity(password, &out);
        out.extend_from_slice(&hash);
        out
    }
}

/// An empty version-2 store (for tests and for a base without a truststore).
pub fn empty(password: &str) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    let hash = integrity(password, &out);
    out.extend_from_slice(&hash);
    out
}

/// Writes `s` as `DataOutput.writeUTF` does; aliases wso2img writes are ASCII,
/// for which modified UTF-8 is the bytes themselves.
fn put_utf(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.is_ascii() && !s.contains('\0'));
    out.extend_from_slice(&u16::try_from(s.len()).expect("a short string").to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The JKS integrity hash of `body` under `password`.
fn integrity(password: &str, body: &[u8]) -> [u8; HASH_LEN] {
    let mut h = Sha1::new();
    for unit in password.encode_utf16() {
        h.update(unit.to_be_bytes());
    }
    h.update(WHITENER);
    h.update(body);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_the_password() {
        let base = empty("wso2carbon");
        let store = Store::parse(&base, Some("wso2carbon")).unwrap();
        assert!(store.entries.is_empty());
        let merged =
            store.with_trusted(&[("a", b"\x30\x03\x02\x01\x01"), ("b", b"\x30\x00")], 315_532_800_000, "wso2carbon");
        let again = Store::parse(&merged, Some("wso2carbon")).unwrap();
        assert_eq!(again.entries.iter().map(|e| e.alias.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(again.entries[1].cert.as_deref(), Some(&b"\x30\x00"[..]));
        assert!(!again.has_private_key());
        assert_eq!(Store::parse(&merged, Some("other")).unwrap_err(), JksError::Password);
        // The existing entries are kept byte for byte.
        let twice = again.with_trusted(&[("c", b"\x30\x00")], 0, "wso2carbon");
        assert_eq!(&twice[12..merged.len() - HASH_LEN], &merged[12..merged.len() - HASH_LEN]);
        assert!(matches!(Store::parse(&merged[..merged.len() - 1], None), Err(JksError::Malformed(_))));
        assert!(matches!(Store::parse(b"\x30\x82", None), Err(JksError::Malformed(_))));
    }

    #[test]
    fn the_integrity_hash_is_the_jdks() {
        // keytool -genkeypair is not needed: the hash of an empty store is
        // fixed by the format (password as UTF-16BE, whitener, header).
        let mut h = Sha1::new();
        h.update([0, b'p', 0, b'w']);
        h.update(b"Mighty Aphrodite");
        h.update([0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 0]);
        let want: [u8; 20] = h.finalize().into();
        assert_eq!(empty("pw")[12..], want);
    }
}
