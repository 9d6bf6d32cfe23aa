//! A deterministic tar writer. Every header byte is set here, explicitly:
//! ustar headers (with the prefix field for long paths), a PAX record only
//! when a path, link target, size, uid or gid does not fit (the ustar field
//! then holds 0, as Go's writer leaves it), no user or group names, no
//! atime/ctime, and the archive ends with two zero blocks, as Go's writer does.

use std::io::{self, Write};

const BLOCK: usize = 512;
/// The largest uid or gid the 8-byte ustar octal field holds.
const MAX_OCTAL_ID: u32 = 0o777_7777;

/// The kind of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
}

/// The metadata of one tar entry.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    /// Path inside the archive, relative, `/`-separated; directories end with `/`.
    pub path: &'a str,
    /// Entry type.
    pub kind: EntryType,
    /// Permission bits.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Size of the data (files only).
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Symlink target.
    pub link: &'a str,
}

/// Writes the header block(s) for `h` to `out`; the caller then writes exactly
/// `h.size` bytes and calls [`pad`].
pub fn write_header(out: &mut impl Write, h: &Header<'_>) -> io::Result<()> {
    let mut pax: Vec<(&str, String)> = Vec::new();
    let split = split_path(h.path);
    if split.is_none() {
        pax.push(("path", h.path.to_string()));
    }
    if h.link.len() > 100 {
        pax.push(("linkpath", h.link.to_string()));
    }
    if h.size > 0o777_7777_7777 {
        pax.push(("size", h.size.to_string()));
    }
    if h.uid > MAX_OCTAL_ID {
        pax.push(("uid", h.uid.to_string()));
    }
    if h.gid > MAX_OCTAL_ID {
        pax.push(("gid", h.gid.to_string()));
    }
    if !pax.is_empty() {
        let mut body = Vec::new();
        for (k, v) in &pax {
            body.extend_from_slice(&pax_record(k, v));
        }
        let ph = Raw {
            name: b"././@PaxHeader",
            typeflag: b'x',
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: body.len() as u64,
            mtime: h.mtime,
            link: b"",
            prefix: b"",
        }
        .block()?;
        out.write_all(&ph)?;
        out.write_all(&body)?;
        pad(out, body.len() as u64)?;
    }
    let (prefix, name) = split.unwrap_or((&[][..], truncate(h.path.as_bytes(), 100)));
    let typeflag = match h.kind {
        EntryType::File => b'0',
        EntryType::Dir => b'5',
        EntryType::Symlink => b'2',
    };
    let size = if h.kind == EntryType::File { h.size } else { 0 };
    let size_field = if size > 0o777_7777_7777 { 0 } else { size };
    let id_field = |id: u32| if id > MAX_OCTAL_ID { 0 } else { id };
    let block = Raw {
        name,
        typeflag,
        mode: h.mode,
        uid: id_field(h.uid),
        gid: id_field(h.gid),
        size: size_field,
        mtime: h.mtime,
        link: truncate(h.link.as_bytes(), 100),
        prefix,
    }
    .block()?;
    out.write_all(&block)
}

/// Pads file data of `len` bytes to a whole block.
pub fn pad(out: &mut impl Write, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// Writes the end-of-archive marker (two zero blocks).
pub fn finish(out: &mut impl Write) -> io::Result<()> {
    out.write_all(&[0u8; BLOCK * 2])
}

/// A digest of what this writer emits for a set of headers that exercise
/// every rule (each entry kind, ustar prefix and PAX paths, long link
/// targets, ids beyond the octal field, padding, the end marker). It stands
/// for the writer's version in the digest cache: a change in any of those
/// bytes invalidates every cached layer.
pub fn writer_fingerprint() -> crate::digest::Digest {
    static FP: std::sync::OnceLock<crate::digest::Digest> = std::sync::OnceLock::new();
    *FP.get_or_init(|| {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let very_long = format!("{}/{}", "x".repeat(200), "y".repeat(200));
        let link = "t".repeat(150);
        let base =
            Header { path: "a/", kind: EntryType::Dir, mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1, link: "" };
        let headers = [
            base.clone(),
            Header { path: "a/b", kind: EntryType::File, mode: 0o644, size: 3, uid: 10001, gid: 10001, ..base.clone() },
            Header { path: &long, kind: EntryType::File, mode: 0o640, size: 513, ..base.clone() },
            Header { path: &very_long, kind: EntryType::Symlink, mode: 0o777, link: &link, ..base.clone() },
            Header { path: "c", kind: EntryType::File, uid: 1_000_650_000, gid: 4_294_967_294, ..base.clone() },
        ];
        let mut w = crate::digest::HashWriter::new(io::sink());
        for h in &headers {
            let _ = write_header(&mut w, h);
            let _ = pad(&mut w, h.size);
        }
        let _ = finish(&mut w);
        w.finish().1
    })
}

/// Splits a path into ustar (prefix, name), or `None` if it needs PAX.
fn split_path(path: &str) -> Option<(&[u8], &[u8])> {
    let b = path.as_bytes();
    if b.len() <= 100 {
        return Some((&[], b));
    }
    if b.len() > 256 {
        return None;
    }
    // The name part may keep a trailing '/' of a directory; split at a '/' so
    // that prefix <= 155 and name <= 100 and both are non-empty.
    let search_end = b.len() - 1;
    (0..search_end)
        .rev()
        .filter(|&i| b[i] == b'/')
        .find(|&i| i <= 155 && b.len() - i - 1 <= 100 && i > 0)
        .map(|i| (&b[..i], &b[i + 1..]))
}

fn truncate(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len().min(n)]
}

/// One PAX record: `"<len> <key>=<value>\n"` where len counts the whole record.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    loop {
        let total = len.to_string().len() + body.len();
        if total == len {
            break;
        }
        len = total;
    }
    format!("{len}{body}").into_bytes()
}

/// One ustar header block's fields, as written (already split and truncated).
struct Raw<'a> {
    name: &'a [u8],
    typeflag: u8,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: u64,
    link: &'a [u8],
    prefix: &'a [u8],
}

impl Raw<'_> {
    /// The 512-byte block, checksum included.
    fn block(&self) -> io::Result<[u8; BLOCK]> {
        let Raw { name, typeflag, mode, uid, gid, size, mtime, link, prefix } = *self;
        let mut b = [0u8; BLOCK];
        b[..name.len()].copy_from_slice(name);
        octal(&mut b[100..108], mode as u64)?;
        octal(&mut b[108..116], uid as u64)?;
        octal(&mut b[116..124], gid as u64)?;
        octal(&mut b[124..136], size)?;
        octal(&mut b[136..148], mtime)?;
        b[156] = typeflag;
        b[157..157 + link.len()].copy_from_slice(link);
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        octal(&mut b[329..337], 0)?;
        octal(&mut b[337..345], 0)?;
        b[345..345 + prefix.len()].copy_from_slice(prefix);
        b[148..156].fill(b' ');
        let sum: u32 = b.iter().map(|&x| x as u32).sum();
        octal(&mut b[148..155], sum as u64)?;
        b[155] = b' ';
        Ok(b)
    }
}

/// Zero-padded octal with a trailing NUL, filling the field (written by
/// hand: a header has seven such fields and a layer can have 100,000 headers).
fn octal(field: &mut [u8], v: u64) -> io::Result<()> {
    let width = field.len() - 1;
    if width < 22 && v >> (3 * width) != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("value {v} does not fit a tar header")));
    }
    let mut rest = v;
    for d in field[..width].iter_mut().rev() {
        *d = b'0' + (rest & 7) as u8;
        rest >>= 3;
    }
    field[width] = 0;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_are_zero_padded_and_refuse_what_does_not_fit() {
        for (width, v) in [(7, 0), (7, 0o644), (7, 0o7777777), (11, 5 << 20), (11, 0o77777777777), (6, 130_560)] {
            let mut field = vec![0xffu8; width + 1];
            octal(&mut field, v).unwrap();
            assert_eq!(field, format!("{v:0width$o}\0").into_bytes(), "{v} in {width} digits");
        }
        assert!(octal(&mut [0u8; 8], 0o10000000).is_err());
        assert!(octal(&mut [0u8; 12], 1 << 33).is_err());
    }

    fn entries(bytes: &[u8]) -> Vec<(String, u64, u32, u64)> {
        let mut ar = ::tar::Archive::new(bytes);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                    h.size().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn long_paths_round_trip_through_a_reader() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let very_long = format!("{}/{}", "x".repeat(200), "y".repeat(200));
        let mut out = Vec::new();
        for p in ["a/", "a/b.txt", long.as_str(), very_long.as_str()] {
            let kind = if p.ends_with('/') { EntryType::Dir } else { EntryType::File };
            let h = Header { path: p, kind, mode: 0o644, uid: 10001, gid: 10001, size: 3, mtime: 1, link: "" };
            let h = Header { size: if kind == EntryType::File { 3 } else { 0 }, ..h };
            write_header(&mut out, &h).unwrap();
            if kind == EntryType::File {
                out.extend_from_slice(b"abc");
                pad(&mut out, 3).unwrap();
            }
        }
        finish(&mut out).unwrap();
        let got = entries(&out);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].0, "a/");
        assert_eq!(got[2].0, long);
        assert_eq!(got[3].0, very_long);
        assert!(got.iter().all(|g| g.1 == 10001));
    }

    #[test]
    fn ids_beyond_the_octal_field_go_to_pax_records() {
        let mut small = Vec::new();
        let h = Header {
            path: "a",
            kind: EntryType::File,
            mode: 0o644,
            uid: 0o777_7777,
            gid: 0,
            size: 0,
            mtime: 1,
            link: "",
        };
        write_header(&mut small, &h).unwrap();
        assert_eq!(small.len(), BLOCK, "the largest octal id needs no PAX record");
        let mut out = Vec::new();
        for (uid, gid) in [(1_000_650_000, 0), (10001, 4_294_967_294)] {
            write_header(&mut out, &Header { uid, gid, ..h.clone() }).unwrap();
        }
        finish(&mut out).unwrap();
        let mut ar = ::tar::Archive::new(&out[..]);
        let got: Vec<(String, String)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let pax = e.pax_extensions().unwrap().unwrap();
                let recs: Vec<String> = pax
                    .map(|r| {
                        let r = r.unwrap();
                        format!("{}={}", r.key().unwrap(), r.value().unwrap())
                    })
                    .collect();
                (recs.join(","), format!("{}:{}", e.header().uid().unwrap(), e.header().gid().unwrap()))
            })
            .collect();
        assert_eq!(got[0], ("uid=1000650000".to_string(), "1000650000:0".to_string()));
        assert_eq!(got[1], ("gid=4294967294".to_string(), "10001:4294967294".to_string()));
        assert_eq!(
            &out[2 * BLOCK + 108..2 * BLOCK + 116],
            b"0000000\0",
            "the ustar field holds 0, as Go's writer leaves it"
        );
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let r = pax_record("path", &"p".repeat(95));
        let s = String::from_utf8(r).unwrap();
        let n: usize = s.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(n, s.len());
    }
}
