//! Content digests (`sha256:<hex>`) and hashing readers and writers.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// A sha256 content digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }
    /// The lowercase hex part, without `sha256:`.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
    /// The first `n` hex characters.
    pub fn short(&self, n: usize) -> String {
        let mut h = self.hex();
        h.truncate(n);
        h
    }
    /// The raw 32 bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// The digest whose raw bytes are `b`.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Digest(b)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let hex_part = s
            .strip_prefix("sha256:")
            .ok_or_else(|| Error::source(format!("{s}: not a sha256 digest (expected sha256:<64 hex>)")))?;
        if hex_part.len() != 64 || !hex_part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::source(format!("{s}: not a sha256 digest (expected sha256:<64 lowercase hex>)")));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|_| Error::source(format!("{s}: bad hex")))?;
        Ok(Digest(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental sha256 that also counts bytes.
#[derive(Default, Clone)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }
    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// Whether nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The digest and the byte count.
    pub fn finish(self) -> (Digest, u64) {
        (Digest(self.sha.finalize().into()), self.len)
    }
}

/// A sha256 of many small pieces, collected into 64 KiB blocks so the
/// hasher is called once per block (fingerprints of thousands of entries).
pub struct Blocks {
    hasher: Hasher,
    buf: Vec<u8>,
}

impl Default for Blocks {
    fn default() -> Self {
        Blocks { hasher: Hasher::new(), buf: Vec::with_capacity(66 * 1024) }
    }
}

impl Blocks {
    /// Nothing fed yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.with(|buf| buf.extend_from_slice(bytes));
    }
    /// Feeds `bytes` after their length (little-endian u64), so that
    /// adjacent fields cannot run into each other.
    pub fn field(&mut self, bytes: &[u8]) {
        self.update(&(bytes.len() as u64).to_le_bytes());
        self.update(bytes);
    }
    /// Feeds what `append` appends to the pending block.
    pub fn with(&mut self, append: impl FnOnce(&mut Vec<u8>)) {
        append(&mut self.buf);
        if self.buf.len() >= 64 * 1024 {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
    }
    /// The digest of everything fed.
    pub fn finish(mut self) -> Digest {
        self.hasher.update(&self.buf);
        self.hasher.finish().0
    }
}

/// A writer that hashes what passes through it.
pub struct HashWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashWriter { inner, hasher: Hasher::new() }
    }
    /// The inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let (d, n) = self.hasher.finish();
        (self.inner, d, n)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what is read through it.
pub struct HashReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashReader { inner, hasher: Hasher::new() }
    }
    /// The digest and byte count of what was read.
    pub fn finish(self) -> (Digest, u64) {
        self.hasher.finish()
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digest_and_round_trip() {
        let d = Digest::of(b"");
        assert_eq!(d.to_string(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!("md5:e3b0".parse::<Digest>().is_err());
    }

    /// FIPS 180-2 test vectors, fed whole and in uneven pieces.
    #[test]
    fn hasher_gives_the_nist_digests() {
        let million_a = vec![b'a'; 1_000_000];
        let vectors: [(&[u8], &str); 4] = [
            (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (&million_a, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
        ];
        for (bytes, want) in vectors {
            assert_eq!(Digest::of(bytes).hex(), want);
            for piece in [1, 63, 64, 65, 4096 + 7] {
                let mut h = Hasher::new();
                bytes.chunks(piece).for_each(|c| h.update(c));
                let (d, n) = h.finish();
                assert_eq!((d.hex().as_str(), n), (want, bytes.len() as u64), "pieces of {piece}");
            }
        }
    }
}
