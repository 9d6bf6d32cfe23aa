//! Jar checks: every jar must be a readable zip, and its Maven coordinates
//! come from `META-INF/maven/<group>/<artifact>/pom.properties` when the jar
//! has exactly one (else from the file name, `name-1.2.3.jar`), and whether
//! it is an OSGi bundle from `META-INF/MANIFEST.MF` (`Bundle-SymbolicName`).
//! Only the zip's tail, its central directory and those small entries are read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

use crate::digest::{Digest, HashReader};
use crate::error::{io_reason, Error, Result};

/// Maven coordinates of a jar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coords {
    /// `groupId`, when known.
    pub group: Option<String>,
    /// `artifactId` (or the file name's stem).
    pub artifact: String,
    /// `version`, when known.
    pub version: Option<String>,
    /// Whether they came from pom.properties (else from the file name).
    pub from_pom: bool,
}

impl Coords {
    /// `pkg:maven/group/artifact@version`, when the group is known.
    pub fn purl(&self) -> Option<String> {
        let g = self.group.as_ref()?;
        Some(match &self.version {
            Some(v) => format!("pkg:maven/{g}/{}@{v}", self.artifact),
            None => format!("pkg:maven/{g}/{}", self.artifact),
        })
    }
    /// Whether two jars are the same artifact (possibly in other versions).
    pub fn same_artifact(&self, other: &Coords) -> bool {
        self.artifact.eq_ignore_ascii_case(&other.artifact)
            && match (&self.group, &other.group) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
    /// `group:artifact:version` for messages.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if let Some(g) = &self.group {
            s += g;
            s.push(':');
        }
        s += &self.artifact;
        if let Some(v) = &self.version {
            s.push(':');
            s += v;
        }
        s
    }
}

const EOCD: u64 = 0x0605_4b50;
const ZIP64_LOCATOR: u64 = 0x0706_4b50;
const ZIP64_EOCD: u64 = 0x0606_4b50;
const CENTRAL: u64 = 0x0201_4b50;
const LOCAL: u64 = 0x0403_4b50;

fn u16le(b: &[u8], at: usize) -> u64 {
    u16::from_le_bytes([b[at], b[at + 1]]) as u64
}
fn u32le(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as u64
}
fn u64le(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// What a jar is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JarInfo {
    /// Its Maven coordinates.
    pub coords: Coords,
    /// Whether its manifest has a `Bundle-SymbolicName` (an OSGi bundle).
    pub bundle: bool,
}

/// Checks that `path` (shown as `label`) is a readable jar and returns its coordinates.
pub fn inspect(path: &Path, label: &str) -> Result<Coords> {
    inspect_jar(path, label).map(|j| j.coords)
}

/// One entry of a zip's central directory.
struct Entry {
    name: String,
    method: u64,
    csize: u64,
    size: u64,
    local: u64,
}

/// The entries of the zip `f` (`len` bytes) that `keep` wants, or why it is
/// not a readable zip. Only the tail and the central directory are read.
fn directory<R: Read + Seek>(
    f: &mut R,
    len: u64,
    keep: impl Fn(&str, u64) -> bool,
) -> std::result::Result<Vec<Entry>, String> {
    if len == 0 {
        return Err("is empty, not a jar".into());
    }
    if len < 22 {
        return Err("is too short to be a jar (truncated?)".into());
    }
    let tail_len = len.min(65_535 + 22 + 20);
    let mut tail = vec![0u8; tail_len as usize];
    f.seek(SeekFrom::Start(len - tail_len)).and_then(|_| f.read_exact(&mut tail)).map_err(|e| io_reason(&e))?;
    let eocd = (0..=tail.len() - 22)
        .rev()
        .find(|&i| u32le(&tail, i) == EOCD && i + 22 + u16le(&tail, i + 20) as usize <= tail.len())
        .ok_or("is not a readable zip (no end of central directory: truncated or corrupt)")?;
    let mut entries = u16le(&tail, eocd + 10);
    let mut cd_size = u32le(&tail, eocd + 12);
    let mut cd_offset = u32le(&tail, eocd + 16);
    if (cd_offset == 0xffff_ffff || entries == 0xffff) && eocd >= 20 && u32le(&tail, eocd - 20) == ZIP64_LOCATOR {
        let rec = u64le(&tail, eocd - 20 + 8);
        let mut z = [0u8; 56];
        f.seek(SeekFrom::Start(rec)).and_then(|_| f.read_exact(&mut z)).map_err(|_| "has a broken zip64 record")?;
        if u32le(&z, 0) != ZIP64_EOCD {
            return Err("has a broken zip64 record".into());
        }
        entries = u64le(&z, 32);
        cd_size = u64le(&z, 40);
        cd_offset = u64le(&z, 48);
    }
    if cd_offset.checked_add(cd_size).is_none_or(|end| end > len) || cd_size > CENTRAL_DIRECTORY_MAX {
        return Err("is truncated (its central directory points past the end)".into());
    }
    let mut cd = vec![0u8; cd_size as usize];
    f.seek(SeekFrom::Start(cd_offset)).and_then(|_| f.read_exact(&mut cd)).map_err(|e| io_reason(&e))?;
    let mut kept = Vec::new();
    let mut at = 0usize;
    for _ in 0..entries {
        if at + 46 > cd.len() || u32le(&cd, at) != CENTRAL {
            return Err("has a corrupt central directory".into());
        }
        let method = u16le(&cd, at + 10);
        let csize = u32le(&cd, at + 20);
        let size = u32le(&cd, at + 24);
        let name_len = u16le(&cd, at + 28) as usize;
        let extra_len = u16le(&cd, at + 30) as usize;
        let comment_len = u16le(&cd, at + 32) as usize;
        let local = u32le(&cd, at + 42);
        if at + 46 + name_len > cd.len() {
            return Err("has a corrupt central directory".into());
        }
        let name = String::from_utf8_lossy(&cd[at + 46..at + 46 + name_len]);
        if local != 0xffff_ffff && local + 30 > len {
            return Err(format!("is truncated ({name} points past the end)"));
        }
        if keep(&name, csize) {
            kept.push(Entry { name: name.into_owned(), method, csize, size, local });
        }
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(kept)
}

/// The largest central directory read (hundreds of thousands of entries).
const CENTRAL_DIRECTORY_MAX: u64 = 256 << 20;
/// The largest text entry read (a pom.properties, a manifest), compressed and not.
const TEXT_MAX: u64 = 1 << 20;

fn is_pom(name: &str) -> bool {
    name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties")
}

fn is_manifest(name: &str) -> bool {
    name.eq_ignore_ascii_case("META-INF/MANIFEST.MF")
}

/// Checks that `path` (shown as `label`) is a readable jar and returns its
/// coordinates and whether it is an OSGi bundle.
pub fn inspect_jar(path: &Path, label: &str) -> Result<JarInfo> {
    let bad = |why: &str| Error::input(format!("{label}: {why}; replace it with a complete jar"));
    let mut f = File::open(path).map_err(|e| Error::input(format!("{label}: cannot read ({})", io_reason(&e))))?;
    let len = f.metadata().map_err(|e| Error::input(format!("{label}: {}", io_reason(&e))))?.len();
    let entries =
        directory(&mut f, len, |n, csize| (is_pom(n) || is_manifest(n)) && csize < TEXT_MAX).map_err(|w| bad(&w))?;
    let manifest = entries.iter().rfind(|e| is_manifest(&e.name));
    let bundle = match manifest {
        Some(e) => {
            let text = read_text(&mut f, e).map_err(|why| bad(&format!("META-INF/MANIFEST.MF: {why}")))?;
            manifest_value(&text, "Bundle-SymbolicName").is_some()
        }
        None => false,
    };
    let stem = path.file_name().and_then(|n| n.to_str()).unwrap_or("").trim_end_matches(".jar").to_string();
    let from_name = coords_from_name(&stem);
    let poms: Vec<&Entry> = entries.iter().filter(|e| is_pom(&e.name)).collect();
    if let Some(e) = own_pom(&poms, &from_name.artifact) {
        let text = read_text(&mut f, e).map_err(|why| bad(&format!("{}: {why}", e.name)))?;
        if let Some(coords) = pom_coords(&text) {
            return Ok(JarInfo { coords, bundle });
        }
    }
    Ok(JarInfo { coords: from_name, bundle })
}

/// The jar's own pom.properties among `poms`: the only one, else the one of
/// the artifact its file name names.
fn own_pom<'a>(poms: &[&'a Entry], artifact: &str) -> Option<&'a Entry> {
    if poms.len() == 1 {
        return poms.first().copied();
    }
    poms.iter().copied().find(|e| e.name.split('/').nth(3).is_some_and(|a| a.eq_ignore_ascii_case(artifact)))
}

/// The coordinates a pom.properties gives, when it names an artifact.
fn pom_coords(text: &str) -> Option<Coords> {
    let get = |k: &str| {
        text.lines().find_map(|l| {
            l.trim().strip_prefix(k).and_then(|v| v.trim_start().strip_prefix('=')).map(|v| v.trim().to_string())
        })
    };
    Some(Coords { group: get("groupId"), artifact: get("artifactId")?, version: get("version"), from_pom: true })
}

/// The value of main-section header `key` of a manifest, continuation lines
/// (a line starting with one space) joined.
pub fn manifest_value(text: &str, key: &str) -> Option<String> {
    let mut current: Option<String> = None;
    let mut found = None;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    for line in lines.by_ref() {
        if let Some(more) = line.strip_prefix(' ') {
            if let Some(c) = &mut current {
                c.push_str(more);
            }
            continue;
        }
        if let Some(done) = current.take() {
            found = found.or(header_value(&done, key));
        }
        if line.is_empty() {
            break;
        }
        current = Some(line.to_string());
    }
    if let Some(done) = current {
        found = found.or(header_value(&done, key));
    }
    found
}

fn header_value(line: &str, key: &str) -> Option<String> {
    let (k, v) = line.split_once(':')?;
    k.eq_ignore_ascii_case(key).then(|| v.trim().to_string())
}

/// A reader of entry `e`'s uncompressed bytes.
fn open_entry<'a, R: Read + Seek>(f: &'a mut R, e: &Entry) -> std::result::Result<Box<dyn Read + 'a>, String> {
    let mut h = [0u8; 30];
    f.seek(SeekFrom::Start(e.local)).and_then(|_| f.read_exact(&mut h)).map_err(|e| io_reason(&e))?;
    if u32le(&h, 0) != LOCAL {
        return Err("corrupt local header".into());
    }
    let skip = u16le(&h, 26) + u16le(&h, 28);
    f.seek(SeekFrom::Current(skip as i64)).map_err(|e| io_reason(&e))?;
    let raw = f.take(e.csize);
    match e.method {
        0 => Ok(Box::new(raw)),
        8 => Ok(Box::new(flate2::read::DeflateDecoder::new(raw))),
        m => Err(format!("unsupported compression method {m}")),
    }
}

/// A small text entry (at most [`TEXT_MAX`] bytes of it).
fn read_text<R: Read + Seek>(f: &mut R, e: &Entry) -> std::result::Result<String, String> {
    let mut out = Vec::new();
    let truncated = |err: std::io::Error| match err.kind() {
        std::io::ErrorKind::UnexpectedEof => "truncated".to_string(),
        _ if e.method == 8 => "corrupt compressed data".to_string(),
        _ => io_reason(&err),
    };
    open_entry(f, e)?.take(TEXT_MAX).read_to_end(&mut out).map_err(truncated)?;
    if e.method == 0 && (out.len() as u64) < e.csize {
        return Err("truncated".into());
    }
    Ok(String::from_utf8_lossy(&out).to_string())
}

/// An OSGi bundle's identity, from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// `Bundle-SymbolicName` without its attributes (`;singleton:=true`).
    pub name: String,
    /// `Bundle-Version`, when given.
    pub version: Option<String>,
}

/// What a Java archive holds that an SBOM lists: its own identity and the
/// artifacts inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// Coordinates from its own pom.properties (the only one, or the one of
    /// the artifact its file name names).
    pub own: Option<Coords>,
    /// Its OSGi identity, when its manifest has a `Bundle-SymbolicName`.
    pub bundle: Option<Bundle>,
    /// Its manifest's `Implementation-Version` (else `Specification-Version`).
    pub manifest_version: Option<String>,
    /// Artifacts shaded into it, known only by their pom.properties: the
    /// entry's path and the coordinates.
    pub shaded: Vec<(String, Coords)>,
    /// Archives nested in it (`BOOT-INF/lib/*.jar`, `WEB-INF/lib/*.jar`, any `*.jar`).
    pub nested: Vec<Nested>,
    /// What was not looked into, and why (limits, unreadable archives).
    pub skipped: Vec<String>,
}

/// An archive inside another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nested {
    /// Its path inside its container.
    pub path: String,
    /// The SHA-256 of its bytes, unless it was too large to read whole.
    pub sha256: Option<Digest>,
    /// What it holds (empty when it was not looked into).
    pub contents: Contents,
}

impl Contents {
    /// The name, version and coordinates to list the archive under, its file
    /// name `stem` (without extension) last: pom.properties, then the
    /// bundle's manifest, then the name split at the first `-` or `_`
    /// followed by a digit (`com.acme.osgi.handler_3.1.4`), the manifest's
    /// `Implementation-Version` when the name has no version (as syft does).
    pub fn identity(&self, stem: &str) -> Coords {
        if let Some(c) = &self.own {
            return c.clone();
        }
        if let Some(b) = &self.bundle {
            return Coords { group: None, artifact: b.name.clone(), version: b.version.clone(), from_pom: false };
        }
        let b = stem.as_bytes();
        match (1..b.len()).find(|&i| (b[i - 1] == b'-' || b[i - 1] == b'_') && b[i].is_ascii_digit()) {
            Some(i) => Coords {
                group: None,
                artifact: stem[..i - 1].to_string(),
                version: Some(stem[i..].to_string()),
                from_pom: false,
            },
            None => Coords {
                group: None,
                artifact: stem.to_string(),
                version: self.manifest_version.clone(),
                from_pom: false,
            },
        }
    }
}

/// How far looking into an archive goes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How deep archives nested in archives are looked into.
    pub depth: usize,
    /// The most bytes of nested archives held in memory at once (along one
    /// path of nesting); a larger nested archive is hashed as it streams by
    /// but not looked into.
    pub in_memory: u64,
    /// The most bytes decompressed while looking into one top-level archive:
    /// past it, nested archives are listed by name only.
    pub total: u64,
    /// The most artifacts listed inside one top-level archive.
    pub count: usize,
}

/// The limits the SBOM looks into jars with.
pub const LIMITS: Limits = Limits { depth: 3, in_memory: 32 << 20, total: 512 << 20, count: 10_000 };

/// Whether `name` is a Java archive syft also looks into.
pub fn is_archive(name: &str) -> bool {
    const EXTS: [&str; 10] = [".jar", ".war", ".ear", ".par", ".sar", ".nar", ".jpi", ".hpi", ".kar", ".lpkg"];
    let lower = name.to_ascii_lowercase();
    EXTS.iter().any(|x| lower.ends_with(x) && lower.len() > x.len())
}

/// The file name of `path` without its archive extension.
pub fn archive_stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rfind('.').map_or(name, |i| &name[..i])
}

/// What the looking-into of one top-level archive may still spend.
struct Allowance {
    limits: Limits,
    decompressed: u64,
    count: usize,
}

/// Looks into the Java archive at `path` (shown as `label`): its own
/// coordinates and bundle identity, the artifacts shaded into it, and the
/// archives nested in it, recursively; every read bounded by `limits`
/// ([`LIMITS`]), and what a bound stops named in `skipped`.
pub fn contents(path: &Path, label: &str, limits: Limits) -> Result<Contents> {
    let bad = |why: &str| Error::input(format!("{label}: {why}; replace it with a complete archive"));
    let mut f = File::open(path).map_err(|e| Error::input(format!("{label}: cannot read ({})", io_reason(&e))))?;
    let len = f.metadata().map_err(|e| Error::input(format!("{label}: {}", io_reason(&e))))?.len();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut allowance = Allowance { limits, decompressed: limits.total, count: limits.count };
    look_into(&mut f, len, archive_stem(name), 0, limits.in_memory, &mut allowance).map_err(|w| bad(&w))
}

fn look_into<R: Read + Seek>(
    f: &mut R,
    len: u64,
    stem: &str,
    depth: usize,
    in_memory: u64,
    allowance: &mut Allowance,
) -> std::result::Result<Contents, String> {
    let entries = directory(f, len, |n, csize| {
        ((is_pom(n) || is_manifest(n)) && csize < TEXT_MAX) || (is_archive(n) && !n.ends_with('/'))
    })?;
    let mut out = Contents::default();
    let spend = |allowance: &mut Allowance, n: u64| allowance.decompressed = allowance.decompressed.saturating_sub(n);
    if let Some(e) = entries.iter().rfind(|e| is_manifest(&e.name)) {
        let text = read_text(f, e).map_err(|why| format!("META-INF/MANIFEST.MF: {why}"))?;
        spend(allowance, text.len() as u64);
        out.bundle = manifest_value(&text, "Bundle-SymbolicName").map(|v| Bundle {
            name: v.split(';').next().unwrap_or("").trim().to_string(),
            version: manifest_value(&text, "Bundle-Version"),
        });
        out.manifest_version = manifest_value(&text, "Implementation-Version")
            .or_else(|| manifest_value(&text, "Specification-Version"))
            .filter(|v| !v.is_empty());
    }
    let poms: Vec<&Entry> = entries.iter().filter(|e| is_pom(&e.name)).collect();
    let own = own_pom(&poms, &coords_from_name(stem).artifact).map(|e| e.name.as_str());
    for e in &poms {
        if allowance.count == 0 || allowance.decompressed == 0 {
            out.skipped.push(format!("{}: over the limits of what is looked into", e.name));
            continue;
        }
        let text = read_text(f, e).map_err(|why| format!("{}: {why}", e.name))?;
        spend(allowance, text.len() as u64);
        let Some(coords) = pom_coords(&text) else { continue };
        if Some(e.name.as_str()) == own {
            out.own = Some(coords);
        } else {
            allowance.count -= 1;
            out.shaded.push((e.name.clone(), coords));
        }
    }
    for e in entries.iter().filter(|e| is_archive(&e.name) && !e.name.ends_with('/')) {
        if allowance.count == 0 {
            out.skipped.push(format!("{}: more than {} artifacts inside", e.name, allowance.limits.count));
            continue;
        }
        allowance.count -= 1;
        out.nested.push(nested(f, e, depth, in_memory, allowance, &mut out.skipped));
    }
    Ok(out)
}

/// `read` bytes, or "more than" the `declared` size when reading stopped past it.
fn size_or_more(read: u64, declared: Option<u64>) -> String {
    match declared {
        Some(d) if read > d => format!("more than {d} bytes"),
        _ => format!("{read} bytes"),
    }
}

/// Archive entry `e` of `f`: hashed, and looked into when it fits the bounds.
fn nested<R: Read + Seek>(
    f: &mut R,
    e: &Entry,
    depth: usize,
    in_memory: u64,
    allowance: &mut Allowance,
    skipped: &mut Vec<String>,
) -> Nested {
    let mut n = Nested { path: e.name.clone(), sha256: None, contents: Contents::default() };
    let mut skip = |why: String| skipped.push(format!("{}: {why}", e.name));
    let (max_depth, total) = (allowance.limits.depth, crate::bounded::size_text(allowance.limits.total));
    if allowance.decompressed == 0 {
        skip(format!("not read: over the {total} read from one archive"));
        return n;
    }
    let mut reader = match open_entry(f, e) {
        Ok(r) => r.take(allowance.decompressed.saturating_add(1)),
        Err(why) => {
            skip(why);
            return n;
        }
    };
    // Held whole only when the size the zip declares fits (one allocation
    // of that size; more bytes than declared is a lie, not read further).
    let fits = e.size < in_memory && depth < max_depth;
    let mut held = Vec::new();
    let (digest, read) = if fits {
        held.reserve_exact(e.size as usize + 1);
        if let Err(err) = (&mut reader).take(e.size + 1).read_to_end(&mut held) {
            skip(format!("not read ({})", io_reason(&err)));
            return n;
        }
        (Digest::of(&held), held.len() as u64)
    } else {
        let mut h = HashReader::new(&mut reader);
        if let Err(err) = std::io::copy(&mut h, &mut std::io::sink()) {
            skip(format!("not read ({})", io_reason(&err)));
            return n;
        }
        h.finish()
    };
    drop(reader);
    if read > allowance.decompressed {
        allowance.decompressed = 0;
        skip(format!("not read: over the {total} read from one archive"));
        return n;
    }
    allowance.decompressed -= read;
    if read != e.size {
        skip(format!("not read: {} where the zip says {}", size_or_more(read, fits.then_some(e.size)), e.size));
        return n;
    }
    n.sha256 = Some(digest);
    if !fits {
        skip(match depth < max_depth {
            true => format!("not looked into (over {} uncompressed)", crate::bounded::size_text(in_memory)),
            false => format!("not looked into (nested more than {max_depth} deep)"),
        });
        return n;
    }
    let mut cursor = std::io::Cursor::new(&held[..]);
    match look_into(&mut cursor, read, archive_stem(&e.name), depth + 1, in_memory - read, allowance) {
        Ok(c) => n.contents = c,
        Err(why) => skip(format!("not a readable archive ({why})")),
    }
    n
}

/// Coordinates from a file name like `mysql-connector-j-8.4.0`.
pub fn coords_from_name(stem: &str) -> Coords {
    let b = stem.as_bytes();
    let split = (1..b.len()).find(|&i| b[i - 1] == b'-' && b[i].is_ascii_digit());
    match split {
        Some(i) => Coords {
            group: None,
            artifact: stem[..i - 1].to_string(),
            version: Some(stem[i..].to_string()),
            from_pom: false,
        },
        None => Coords { group: None, artifact: stem.to_string(), version: None, from_pom: false },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal stored zip with the given entries.
    pub(crate) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let stored: Vec<Raw<'_>> = entries.iter().map(|(n, d)| Raw::stored(n, d)).collect();
        zip_raw(&stored)
    }

    /// An entry as it is written: name, method, data as stored, and the
    /// uncompressed size and CRC the zip claims.
    pub(crate) struct Raw<'a> {
        name: &'a str,
        method: u16,
        data: std::borrow::Cow<'a, [u8]>,
        size: u32,
        crc: u32,
    }

    impl<'a> Raw<'a> {
        pub(crate) fn stored(name: &'a str, data: &'a [u8]) -> Raw<'a> {
            Raw { name, method: 0, data: data.into(), size: data.len() as u32, crc: crc32fast::hash(data) }
        }
        /// `data`, deflated.
        pub(crate) fn deflated(name: &'a str, data: &[u8]) -> Raw<'a> {
            let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data).unwrap();
            let packed = enc.finish().unwrap();
            Raw { name, method: 8, data: packed.into(), size: data.len() as u32, crc: crc32fast::hash(data) }
        }
        /// `size` zeros, deflated.
        pub(crate) fn zeros(name: &'a str, size: u64) -> Raw<'a> {
            let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
            let chunk = vec![0u8; 1 << 20];
            let mut crc = crc32fast::Hasher::new();
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                enc.write_all(&chunk[..n]).unwrap();
                crc.update(&chunk[..n]);
                left -= n as u64;
            }
            let data = enc.finish().unwrap();
            Raw { name, method: 8, data: data.into(), size: size.min(u32::MAX as u64 - 1) as u32, crc: crc.finalize() }
        }
        /// Makes the zip claim `size` uncompressed bytes.
        pub(crate) fn size_claims(&mut self, size: u32) {
            self.size = size;
        }
    }

    /// A zip of `entries` as given.
    pub(crate) fn zip_raw(entries: &[Raw<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cd = Vec::new();
        for Raw { name, method, data, size, crc } in entries {
            let off = out.len() as u32;
            out.extend_from_slice(&(LOCAL as u32).to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0]);
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            cd.extend_from_slice(&(CENTRAL as u32).to_le_bytes());
            cd.extend_from_slice(&[20, 0, 20, 0, 0, 0]);
            cd.extend_from_slice(&method.to_le_bytes());
            cd.extend_from_slice(&[0, 0, 0, 0]);
            cd.extend_from_slice(&crc.to_le_bytes());
            cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
            cd.extend_from_slice(&size.to_le_bytes());
            cd.extend_from_slice(&(name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&[0; 12]);
            cd.extend_from_slice(&off.to_le_bytes());
            cd.extend_from_slice(name.as_bytes());
        }
        let cd_off = out.len() as u32;
        out.extend_from_slice(&cd);
        out.extend_from_slice(&(EOCD as u32).to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_off.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    #[test]
    fn coordinates_truncation_and_names() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("driver-9.9.jar");
        let z = zip(&[
            ("META-INF/MANIFEST.MF", b"x"),
            ("META-INF/maven/com.acme/driver/pom.properties", b"groupId=com.acme\nartifactId=driver\nversion=1.2.3\n"),
        ]);
        std::fs::File::create(&p).unwrap().write_all(&z).unwrap();
        let c = inspect(&p, "jars/driver-9.9.jar").unwrap();
        assert_eq!(c.purl().unwrap(), "pkg:maven/com.acme/driver@1.2.3");
        std::fs::write(&p, &z[..z.len() - 10]).unwrap();
        assert!(inspect(&p, "jars/driver-9.9.jar").unwrap_err().message().contains("jars/driver-9.9.jar"));
        std::fs::write(&p, b"").unwrap();
        assert!(inspect(&p, "x").unwrap_err().message().contains("empty"));
        let c = coords_from_name("mysql-connector-j-8.4.0");
        assert_eq!((c.artifact.as_str(), c.version.as_deref()), ("mysql-connector-j", Some("8.4.0")));
        assert!(c.same_artifact(&coords_from_name("mysql-connector-j-9.0.0")));
        assert!(!c.same_artifact(&coords_from_name("postgresql-42.7.3")));
    }

    #[test]
    fn the_repository_example_jar_is_read() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("jars/acme-request-id-1.2.0.jar");
        let c = inspect(&p, "jars/acme-request-id-1.2.0.jar").unwrap();
        assert_eq!(c.display(), "com.acme.apim:acme-request-id:1.2.0");
        assert!(c.from_pom);
    }

    #[test]
    fn bundles_are_told_from_plain_jars() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("h-1.0.jar");
        let mf = b"Manifest-Version: 1.0\r\nBundle-ManifestVersion: 2\r\nBundle-SymbolicName: com.acme.h\r\n";
        std::fs::write(&p, zip(&[("META-INF/MANIFEST.MF", mf)])).unwrap();
        assert!(inspect_jar(&p, "dropins/h-1.0.jar").unwrap().bundle);
        std::fs::write(&p, zip(&[("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n")])).unwrap();
        assert!(!inspect_jar(&p, "dropins/h-1.0.jar").unwrap().bundle);
        std::fs::write(&p, zip(&[("a.class", b"x")])).unwrap();
        assert!(!inspect_jar(&p, "dropins/h-1.0.jar").unwrap().bundle);
    }
}

#[cfg(test)]
mod nested_tests {
    use super::tests::{zip, zip_raw, Raw};
    use super::*;

    const GUAVA: &[u8] = b"#Created by Apache Maven\nversion=31.1-jre\ngroupId=com.google.guava\nartifactId=guava\n";

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn pom(g: &str, a: &str, v: &str) -> Vec<u8> {
        format!("groupId={g}\nartifactId={a}\nversion={v}\n").into_bytes()
    }

    #[test]
    fn shaded_and_nested_artifacts_are_found_with_their_hashes() {
        let d = tempfile::tempdir().unwrap();
        let deepest = zip(&[("META-INF/maven/org.deep/deep/pom.properties", &pom("org.deep", "deep", "0.1"))]);
        let inner = zip(&[
            ("META-INF/maven/org.example/inner/pom.properties", &pom("org.example", "inner", "1.0.0")),
            ("lib/deep-0.1.jar", &deepest),
        ]);
        let app = zip(&[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n"),
            ("META-INF/maven/com.acme/app/pom.properties", &pom("com.acme", "app", "2.0")),
            ("META-INF/maven/com.google.guava/guava/pom.properties", GUAVA),
            ("BOOT-INF/lib/", b""),
            ("BOOT-INF/lib/inner-1.0.0.jar", &inner),
            ("WEB-INF/lib/plain_2.5.jar", &zip(&[("a.class", b"x")])),
        ]);
        let p = write(d.path(), "app-2.0.jar", &app);
        let c = contents(&p, "jars/app-2.0.jar", LIMITS).unwrap();
        assert_eq!(c.own.as_ref().unwrap().purl().unwrap(), "pkg:maven/com.acme/app@2.0");
        assert_eq!(c.shaded.len(), 1);
        assert_eq!(c.shaded[0].1.purl().unwrap(), "pkg:maven/com.google.guava/guava@31.1-jre");
        assert_eq!(c.shaded[0].0, "META-INF/maven/com.google.guava/guava/pom.properties");
        assert_eq!(c.nested.len(), 2, "{c:?}");
        let n = &c.nested[0];
        assert_eq!(n.path, "BOOT-INF/lib/inner-1.0.0.jar");
        assert_eq!(n.sha256, Some(Digest::of(&inner)));
        assert_eq!(n.contents.identity("inner-1.0.0").purl().unwrap(), "pkg:maven/org.example/inner@1.0.0");
        let deep = &n.contents.nested[0];
        assert_eq!((deep.path.as_str(), deep.sha256), ("lib/deep-0.1.jar", Some(Digest::of(&deepest))));
        assert_eq!(deep.contents.identity("deep-0.1").display(), "org.deep:deep:0.1");
        let plain = c.nested[1].contents.identity(archive_stem(&c.nested[1].path));
        assert_eq!((plain.artifact.as_str(), plain.version.as_deref(), plain.purl()), ("plain", Some("2.5"), None));
        assert!(c.skipped.is_empty(), "{:?}", c.skipped);
    }

    #[test]
    fn osgi_bundles_are_named_by_their_manifest_or_file_name() {
        let d = tempfile::tempdir().unwrap();
        let mf = b"Manifest-Version: 1.0\r\nBundle-ManifestVersion: 2\r\nBundle-SymbolicName: com.acme.osgi.hand\r\n ler;singleton:=true\r\nBundle-Version: 3.1.4\r\n\r\nName: x\r\nBundle-Version: 9\r\n";
        let p = write(d.path(), "whatever.jar", &zip(&[("META-INF/MANIFEST.MF", mf)]));
        let c = contents(&p, "dropins/whatever.jar", LIMITS).unwrap();
        assert_eq!(c.bundle, Some(Bundle { name: "com.acme.osgi.handler".into(), version: Some("3.1.4".into()) }));
        let id = c.identity("whatever");
        assert_eq!((id.artifact.as_str(), id.version.as_deref()), ("com.acme.osgi.handler", Some("3.1.4")));
        assert!(inspect_jar(&p, "dropins/whatever.jar").unwrap().bundle);
        let p = write(d.path(), "com.acme.osgi.handler_3.1.4.jar", &zip(&[("a.class", b"x")]));
        let id = contents(&p, "x", LIMITS).unwrap().identity("com.acme.osgi.handler_3.1.4");
        assert_eq!((id.artifact.as_str(), id.version.as_deref()), ("com.acme.osgi.handler", Some("3.1.4")));
        let mf = b"Manifest-Version: 1.0\r\nImplementation-Title: Bar\r\nImplementation-Version: 4.2\r\n";
        let p = write(d.path(), "vendor-sdk.jar", &zip(&[("META-INF/MANIFEST.MF", mf)]));
        let id = contents(&p, "x", LIMITS).unwrap().identity("vendor-sdk");
        assert_eq!((id.artifact.as_str(), id.version.as_deref()), ("vendor-sdk", Some("4.2")));
        let id = contents(&p, "x", LIMITS).unwrap().identity("vendor-sdk-4.3");
        assert_eq!(id.version.as_deref(), Some("4.3"), "the file name's version first");
        assert_eq!(manifest_value("A: 1\nB: 2\n 3\n", "b").as_deref(), Some("23"));
        assert_eq!(manifest_value("A: 1\n\nB: 2\n", "B"), None, "only the main section");
    }

    #[test]
    fn a_nested_zip_bomb_is_hashed_in_flat_memory_or_skipped() {
        let d = tempfile::tempdir().unwrap();
        let small = Limits { depth: 3, in_memory: 4 << 20, total: 64 << 20, count: 100 };
        // 6 MiB of zeros (over the in-memory bound): streamed, hashed, not held.
        let big = Raw::zeros("BOOT-INF/lib/big-1.0.jar", 6 << 20);
        // 100 MiB that the zip says are 10 bytes: refused at the in-memory bound.
        let mut liar = Raw::zeros("BOOT-INF/lib/liar-1.0.jar", 100 << 20);
        liar.size_claims(10);
        let outer = zip_raw(&[big, liar, Raw::stored("BOOT-INF/lib/after-1.0.jar", &zip(&[("a", b"b")]))]);
        assert!(outer.len() < 1 << 20, "the bomb is small: {}", outer.len());
        let p = write(d.path(), "bomb-1.0.jar", &outer);
        let c = contents(&p, "jars/bomb-1.0.jar", small).unwrap();
        assert_eq!(c.nested.len(), 3);
        assert!(c.nested[0].sha256.is_some() && c.nested[0].contents == Contents::default());
        assert!(c.nested[1].sha256.is_none());
        assert!(c.nested[2].sha256.is_some(), "later entries are still read: {c:?}");
        assert!(c.skipped[0].contains("big-1.0.jar: not looked into (over 4 MiB"), "{:?}", c.skipped);
        assert!(
            c.skipped[1].contains("liar-1.0.jar: not read: more than 10 bytes where the zip says 10"),
            "{:?}",
            c.skipped
        );
        // Past the total budget, nested archives are listed but not read.
        let many: Vec<Raw<'_>> = ["a.jar", "b.jar", "c.jar"].iter().map(|n| Raw::zeros(n, 40 << 20)).collect();
        let p = write(d.path(), "many.jar", &zip_raw(&many));
        let c = contents(&p, "jars/many.jar", small).unwrap();
        assert_eq!(c.nested.len(), 3);
        assert_eq!(c.nested.iter().filter(|n| n.sha256.is_some()).count(), 1, "{:?}", c.skipped);
        assert!(c.skipped.iter().any(|s| s.contains("over the 64 MiB read from one archive")), "{:?}", c.skipped);
        // Past the count, the rest are named in one line each.
        let tiny = zip(&[("a", b"b")]);
        let names: Vec<String> = (0..150).map(|i| format!("x{i}.jar")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &tiny[..])).collect();
        let p = write(d.path(), "count.jar", &zip(&entries));
        let c = contents(&p, "jars/count.jar", small).unwrap();
        assert_eq!((c.nested.len(), c.skipped.len()), (100, 50));
    }

    #[test]
    fn nesting_is_looked_into_three_deep_and_a_broken_nested_jar_is_named() {
        let d = tempfile::tempdir().unwrap();
        let mut jar = zip(&[("META-INF/maven/g/l4/pom.properties", &pom("g", "l4", "4"))]);
        for level in (0..4).rev() {
            let name = format!("l{level}.jar");
            let mut entries: Vec<(&str, &[u8])> = vec![(&name, &jar)];
            let broken = b"PK\x03\x04 not a zip".to_vec();
            if level == 0 {
                entries.push(("WEB-INF/lib/broken.jar", &broken));
            }
            jar = zip(&entries);
        }
        let p = write(d.path(), "top.jar", &jar);
        let c = contents(&p, "jars/top.jar", LIMITS).unwrap();
        let l2 = &c.nested[0].contents.nested[0].contents.nested[0];
        assert_eq!(l2.path, "l2.jar");
        let l3 = &l2.contents.nested[0];
        assert!(l3.sha256.is_some() && l3.contents == Contents::default());
        let skipped = &l2.contents.skipped;
        assert!(skipped[0].contains("l3.jar: not looked into (nested more than 3 deep)"), "{skipped:?}");
        assert_eq!(c.nested[1].path, "WEB-INF/lib/broken.jar");
        assert!(c.skipped[0].starts_with("WEB-INF/lib/broken.jar: not a readable archive"), "{:?}", c.skipped);
    }
}
