//! Bounded reads of anything a base or a registry controls. Every small
//! document (manifest, index, config, archive metadata, a file out of a base
//! layer) is read with a limit, so a hostile source that sends without end
//! costs a fixed amount of memory. Imports nothing from the crate.

use std::io::{self, Read, Seek, SeekFrom};

/// The largest manifest or index, by tag or digest (what registries enforce).
pub const MANIFEST_MAX: u64 = 4 << 20;
/// The largest metadata file of an archive or layout (`manifest.json`,
/// `index.json`, a config read without a descriptor).
pub const METADATA_MAX: u64 = 8 << 20;
/// The largest config read by descriptor.
pub const CONFIG_MAX: u64 = 16 << 20;
/// The largest file read out of a base layer (`/etc/passwd`, version files), uncompressed.
pub const BASE_FILE_MAX: u64 = 1 << 20;

/// Reads all of `r`, failing with `InvalidData` once more than `max` bytes
/// arrive (at most `max + 1` bytes are ever held).
pub fn read_to_end_max(r: impl Read, max: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(max.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(out)
}

/// The error for a body or file over `max` bytes.
pub fn too_large(max: u64) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("larger than the {} limit", size_text(max)))
}

/// `4 MiB`, `512 KiB`, `100 B`: a limit as people read it.
pub fn size_text(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// The most names listed in one folder of a base (a product home's parent holds a handful).
pub const DIR_ENTRIES_MAX: usize = 100_000;

/// The largest tar extension header read (a GNU long name or link, a PAX
/// header): tar readers hold these whole.
pub const TAR_EXTENSION_MAX: u64 = 1 << 20;

/// A tar stream passed through unchanged while its headers are watched: a
/// GNU long-name or long-link entry, or a PAX header, larger than
/// [`TAR_EXTENSION_MAX`] fails the read (tar-rs would read it whole into
/// memory). It follows the stream as tar-rs does: a PAX `size` overrides the
/// next entry's size, GNU sparse headers may be followed by extension blocks.
pub struct TarGuard<R> {
    inner: R,
    pos: u64,
    next_header: u64,
    header: Vec<u8>,
    extension_blocks: bool,
    pax: Option<(u64, Vec<u8>)>,
    size_override: Option<u64>,
}

impl<R: Read> TarGuard<R> {
    /// Watches the tar stream `inner`.
    pub fn new(inner: R) -> Self {
        TarGuard {
            inner,
            pos: 0,
            next_header: 0,
            header: Vec::with_capacity(512),
            extension_blocks: false,
            pax: None,
            size_override: None,
        }
    }

    fn observe(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.pos < self.next_header {
                let skip = ((self.next_header - self.pos) as usize).min(data.len());
                if let Some((end, body)) = &mut self.pax {
                    let want = end.saturating_sub(self.pos).min(skip as u64) as usize;
                    body.extend_from_slice(&data[..want]);
                }
                self.pos += skip as u64;
                data = &data[skip..];
                if let Some((end, _)) = &self.pax {
                    if self.pos >= *end {
                        let (_, body) = self.pax.take().unwrap_or_default();
                        self.size_override = pax_size(&body);
                    }
                }
                continue;
            }
            let take = (512 - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..take]);
            self.pos += take as u64;
            data = &data[take..];
            if self.header.len() == 512 {
                let h = std::mem::take(&mut self.header);
                self.header = Vec::with_capacity(512);
                self.on_header(&h)?;
            }
        }
        Ok(())
    }

    fn on_header(&mut self, h: &[u8]) -> io::Result<()> {
        self.next_header = self.pos;
        if let Some((_, body)) = self.pax.take() {
            self.size_override = pax_size(&body);
        }
        if self.extension_blocks {
            self.extension_blocks = h[504] != 0;
            if !self.extension_blocks {
                self.next_header = self.pos + round_up(self.size_override.take().unwrap_or(0));
            }
            return Ok(());
        }
        if h.iter().all(|b| *b == 0) {
            return Ok(());
        }
        let kind = h[156];
        let size = header_size(&h[124..136]).ok_or_else(|| bad("a tar header has an unreadable size"))?;
        if matches!(kind, b'L' | b'K' | b'x' | b'g') && size > TAR_EXTENSION_MAX {
            return Err(bad(&format!(
                "a tar extension header ({}) of {size} bytes, over the {} limit",
                kind as char,
                size_text(TAR_EXTENSION_MAX)
            )));
        }
        if kind == b'x' {
            self.pax = Some((self.pos + size, Vec::new()));
            self.next_header = self.pos + round_up(size);
            return Ok(());
        }
        let size = if matches!(kind, b'L' | b'K' | b'g') { size } else { self.size_override.take().unwrap_or(size) };
        if kind == b'S' && h[482] != 0 {
            self.extension_blocks = true;
            self.size_override = Some(size);
            return Ok(());
        }
        self.next_header = self.pos + round_up(size);
        Ok(())
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n])?;
        Ok(n)
    }
}

/// Seeking (as tar-rs does over the data of entries it skips) moves the
/// watch along; a seek past the next header, which would leave it unseen, fails.
impl<R: Read + Seek> Seek for TarGuard<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let p = self.inner.seek(to)?;
        if p > self.next_header || !self.header.is_empty() || self.pax.is_some() {
            return Err(bad("a seek in a tar stream skipped a header"));
        }
        self.pos = p;
        Ok(p)
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(512).saturating_mul(512)
}

/// A tar size field: octal, or base-256 when its top bit is set.
fn header_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut n: u64 = 0;
        for (i, b) in field.iter().enumerate() {
            let b = if i == 0 { b & 0x7f } else { *b };
            n = n.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(n);
    }
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

/// The `size` record of a PAX header body, if any.
fn pax_size(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    text.lines()
        .find_map(|l| l.split_once(' ').and_then(|(_, kv)| kv.strip_prefix("size=")).and_then(|v| v.parse().ok()))
}

/// A kind of file or output that comes from outside, and the most bytes read of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// What it is, as the error names it ("a config file").
    pub what: &'static str,
    /// The most bytes read.
    pub max: u64,
}

/// `wso2img.toml`, `-c`, `.wso2imgignore`.
pub const CONFIG_FILE: Limit = Limit { what: "a config file", max: 1 << 20 };
/// `wso2img.lock`.
pub const LOCK_FILE: Limit = Limit { what: "a lock file", max: 4 << 20 };
/// Maven's `settings.xml`.
pub const MAVEN_SETTINGS: Limit = Limit { what: "a Maven settings file", max: 1 << 20 };
/// Docker's `config.json`, Podman's `auth.json`.
pub const DOCKER_CONFIG: Limit = Limit { what: "a registry credentials file", max: 1 << 20 };
/// A PEM or DER certificate file or bundle (`--ca-cert`, `[truststore]`).
pub const CERTIFICATES: Limit = Limit { what: "a certificate file", max: 4 << 20 };
/// What a credential helper prints.
pub const HELPER_OUTPUT: Limit = Limit { what: "a credential helper's output", max: 1 << 20 };
/// A Maven `.sha1` or `.sha256` body (a hex digest, perhaps a file name).
pub const CHECKSUM: Limit = Limit { what: "a checksum file", max: 4 << 10 };
/// A signing or verification key file.
pub const KEY_FILE: Limit = Limit { what: "a key file", max: 64 << 10 };
/// One layer of a signature or attestation (a DSSE envelope or a signed payload).
pub const SIGNATURE_BLOB: Limit = Limit { what: "a signature or attestation layer", max: 4 << 20 };
/// All the signature and attestation layers read for one image together.
pub const SIGNATURES_TOTAL: Limit = Limit { what: "the signatures and attestations of one image", max: 32 << 20 };

/// Why a bounded read was refused; carried inside an `io::Error` so callers
/// can tell it from an I/O failure ([`refusal`]).
#[derive(Debug)]
pub enum Refused {
    /// More than the limit.
    TooLarge(Limit),
    /// A fifo, device, socket or folder where a file was expected.
    NotAFile(&'static str),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::TooLarge(l) => write!(f, "larger than {}, the limit for {}", size_text(l.max), l.what),
            Refused::NotAFile(kind) => write!(f, "is {kind}, not a regular file"),
        }
    }
}

impl std::error::Error for Refused {}

impl Refused {
    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// The refusal inside `e`, if a bounded read refused (rather than failed).
pub fn refusal(e: &io::Error) -> Option<&Refused> {
    e.get_ref().and_then(|r| r.downcast_ref::<Refused>())
}

/// What to say after a file's name when reading it failed: the refusal as
/// it is ("larger than 1 MiB, the limit for a config file"), any other error
/// as `cannot read (reason)`.
pub fn read_error(e: &io::Error) -> String {
    match refusal(e) {
        Some(r) => r.to_string(),
        None => {
            let s = e.to_string();
            let s = s.find(" (os error").map_or(s.as_str(), |i| &s[..i]).to_string();
            format!("cannot read ({s})")
        }
    }
}

/// Opens `path` for reading a file that comes from outside: without blocking
/// (a fifo with no writer would hang an ordinary open), and only when it is
/// a regular file (a fifo, device, socket or folder is refused with [`Refused::NotAFile`]).
pub fn open_file(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let f =
        std::fs::OpenOptions::new().read(true).custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32).open(path)?;
    let t = f.metadata()?.file_type();
    let kind = if t.is_file() {
        None
    } else if t.is_fifo() {
        Some("a fifo")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_dir() {
        Some("a folder")
    } else {
        Some("not a file")
    };
    match kind {
        Some(k) => Err(Refused::NotAFile(k).into_io()),
        None => Ok(f),
    }
}

/// Reads the regular file `path` (see [`open_file`]), at most `limit.max`
/// bytes: more is refused with [`Refused::TooLarge`] having held at most one byte more.
pub fn read_file(path: &std::path::Path, limit: Limit) -> io::Result<Vec<u8>> {
    read_limited(open_file(path)?, limit)
}

/// [`read_file`], as UTF-8 text (`InvalidData` otherwise).
pub fn read_file_string(path: &std::path::Path, limit: Limit) -> io::Result<String> {
    String::from_utf8(read_file(path, limit)?).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Reads all of `r` (a helper's output, a body), refused past `limit`.
pub fn read_limited(r: impl Read, limit: Limit) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(limit.max.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > limit.max {
        return Err(Refused::TooLarge(limit).into_io());
    }
    Ok(out)
}

/// A running total for reads that share one budget (every signature layer of an image).
#[derive(Debug)]
pub struct Budget {
    limit: Limit,
    left: u64,
}

impl Budget {
    /// A budget of `limit.max` bytes.
    pub fn new(limit: Limit) -> Budget {
        Budget { limit, left: limit.max }
    }

    /// Takes `n` bytes from the budget before they are read (a declared size),
    /// refusing once the total would pass the limit.
    pub fn take(&mut self, n: u64) -> io::Result<()> {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(Refused::TooLarge(self.limit).into_io()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_limit() {
        assert_eq!(read_to_end_max(&b"abc"[..], 3).unwrap(), b"abc");
        let e = read_to_end_max(io::repeat(7), 1 << 20).unwrap_err();
        assert_eq!(e.to_string(), "larger than the 1 MiB limit");
        assert_eq!(size_text(4 << 20), "4 MiB");
    }

    #[test]
    fn files_from_outside_are_bounded_and_regular() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::File::create(&big).unwrap().set_len(8 << 30).unwrap();
        let e = read_file(&big, CONFIG_FILE).unwrap_err();
        assert_eq!(read_error(&e), "larger than 1 MiB, the limit for a config file");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let e = read_file(&fifo, CONFIG_FILE).unwrap_err();
        assert_eq!(read_error(&e), "is a fifo, not a regular file");
        let e = read_file(std::path::Path::new("/dev/zero"), CONFIG_FILE).unwrap_err();
        assert_eq!(read_error(&e), "is a device, not a regular file");
        let e = read_file(&dir.path().join("none"), CONFIG_FILE).unwrap_err();
        assert_eq!(
            (e.kind(), read_error(&e).as_str()),
            (io::ErrorKind::NotFound, "cannot read (No such file or directory)")
        );
        std::fs::write(&big, "x = 1\n").unwrap();
        assert_eq!(read_file_string(&big, CONFIG_FILE).unwrap(), "x = 1\n");
        let mut b = Budget::new(Limit { what: "t", max: 10 });
        assert!(b.take(6).is_ok() && b.take(4).is_ok() && b.take(1).is_err());
    }

    fn header(path: &str, kind: u8, size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..path.len()].copy_from_slice(path.as_bytes());
        let s = format!("{size:011o}");
        h[124..135].copy_from_slice(s.as_bytes());
        h[156] = kind;
        h
    }

    #[test]
    fn tar_guard_follows_entries_and_refuses_big_extensions() {
        let mut tar = header("a", b'0', 3);
        tar.extend_from_slice(&[b'x'; 512]);
        let pax = b"20 size=1073741824\n";
        tar.extend(header("pax", b'x', pax.len() as u64));
        let mut body = pax.to_vec();
        body.resize(512, 0);
        tar.extend(body);
        tar.extend(header("big", b'0', 5));
        let mut guarded = TarGuard::new(&tar[..]);
        assert!(io::copy(&mut guarded, &mut io::sink()).is_ok());
        assert_eq!(guarded.next_header, tar.len() as u64 + (1 << 30));
        let mut evil = header("a", b'0', 0);
        evil.extend(header("././@LongLink", b'L', 2 << 20));
        let e = io::copy(&mut TarGuard::new(&evil[..]), &mut io::sink()).unwrap_err();
        assert!(e.to_string().contains("extension header (L)"), "{e}");
    }
}
