//! Jar checks: every jar must be a readable zip, and its Maven coordinates
//! come from `META-INF/maven/<group>/<artifact>/pom.properties` when the jar
//! has exactly one (else from the file name, `name-1.2.3.jar`), and whether
//! it is an OSGi bundle from `META-INF/MANIFEST.MF` (`Bundle-SymbolicName`).
//! Only the zip's tail, its central directory and those small entries are read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

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

/// Checks that `path` (shown as `label`) is a readable jar and returns its
/// coordinates and whether it is an OSGi bundle.
pub fn inspect_jar(path: &Path, label: &str) -> Result<JarInfo> {
    let bad = |why: &str| Error::input(format!("{label}: {why}; replace it with a complete jar"));
    let mut f = File::open(path).map_err(|e| Error::input(format!("{label}: cannot read ({})", io_reason(&e))))?;
    let len = f.metadata().map_err(|e| Error::input(format!("{label}: {}", io_reason(&e))))?.len();
    if len == 0 {
        return Err(bad("is empty, not a jar"));
    }
    if len < 22 {
        return Err(bad("is too short to be a jar (truncated?)"));
    }
    let tail_len = len.min(65_535 + 22 + 20);
    let mut tail = vec![0u8; tail_len as usize];
    f.seek(SeekFrom::Start(len - tail_len)).and_then(|_| f.read_exact(&mut tail)).map_err(|e| bad(&io_reason(&e)))?;
    let eocd = (0..=tail.len() - 22)
        .rev()
        .find(|&i| u32le(&tail, i) == EOCD && i + 22 + u16le(&tail, i + 20) as usize <= tail.len())
        .ok_or_else(|| bad("is not a readable zip (no end of central directory: truncated or corrupt)"))?;
    let mut entries = u16le(&tail, eocd + 10);
    let mut cd_size = u32le(&tail, eocd + 12);
    let mut cd_offset = u32le(&tail, eocd + 16);
    if (cd_offset == 0xffff_ffff || entries == 0xffff) && eocd >= 20 && u32le(&tail, eocd - 20) == ZIP64_LOCATOR {
        let rec = u64le(&tail, eocd - 20 + 8);
        let mut z = [0u8; 56];
        f.seek(SeekFrom::Start(rec))
            .and_then(|_| f.read_exact(&mut z))
            .map_err(|_| bad("has a broken zip64 record"))?;
        if u32le(&z, 0) != ZIP64_EOCD {
            return Err(bad("has a broken zip64 record"));
        }
        entries = u64le(&z, 32);
        cd_size = u64le(&z, 40);
        cd_offset = u64le(&z, 48);
    }
    if cd_offset.checked_add(cd_size).is_none_or(|end| end > len) || cd_size > 256 << 20 {
        return Err(bad("is truncated (its central directory points past the end)"));
    }
    let mut cd = vec![0u8; cd_size as usize];
    f.seek(SeekFrom::Start(cd_offset)).and_then(|_| f.read_exact(&mut cd)).map_err(|e| bad(&io_reason(&e)))?;
    let mut poms = Vec::new();
    let mut manifest = None;
    let mut at = 0usize;
    for _ in 0..entries {
        if at + 46 > cd.len() || u32le(&cd, at) != CENTRAL {
            return Err(bad("has a corrupt central directory"));
        }
        let method = u16le(&cd, at + 10);
        let csize = u32le(&cd, at + 20);
        let name_len = u16le(&cd, at + 28) as usize;
        let extra_len = u16le(&cd, at + 30) as usize;
        let comment_len = u16le(&cd, at + 32) as usize;
        let local = u32le(&cd, at + 42);
        if at + 46 + name_len > cd.len() {
            return Err(bad("has a corrupt central directory"));
        }
        let name = String::from_utf8_lossy(&cd[at + 46..at + 46 + name_len]).to_string();
        if local != 0xffff_ffff && local + 30 > len {
            return Err(bad(&format!("is truncated ({name} points past the end)")));
        }
        if name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties") && csize < 1 << 20 {
            poms.push((name, method, csize, local));
        } else if name.eq_ignore_ascii_case("META-INF/MANIFEST.MF") && csize < 1 << 20 {
            manifest = Some((method, csize, local));
        }
        at += 46 + name_len + extra_len + comment_len;
    }
    let bundle = match manifest {
        Some((method, csize, local)) => read_entry(&mut f, local, method, csize)
            .map_err(|why| bad(&format!("META-INF/MANIFEST.MF: {why}")))?
            .lines()
            .any(|l| l.get(..20).is_some_and(|h| h.eq_ignore_ascii_case("Bundle-SymbolicName:"))),
        None => false,
    };
    let stem = path.file_name().and_then(|n| n.to_str()).unwrap_or("").trim_end_matches(".jar").to_string();
    let from_name = coords_from_name(&stem);
    let pick = if poms.len() == 1 {
        poms.first()
    } else {
        poms.iter().find(|(n, ..)| n.split('/').nth(3).is_some_and(|a| a.eq_ignore_ascii_case(&from_name.artifact)))
    };
    if let Some((name, method, csize, local)) = pick {
        let text = read_entry(&mut f, *local, *method, *csize).map_err(|why| bad(&format!("{name}: {why}")))?;
        let get = |k: &str| {
            text.lines().find_map(|l| {
                l.trim().strip_prefix(k).and_then(|v| v.trim_start().strip_prefix('=')).map(|v| v.trim().to_string())
            })
        };
        if let Some(artifact) = get("artifactId") {
            let coords = Coords { group: get("groupId"), artifact, version: get("version"), from_pom: true };
            return Ok(JarInfo { coords, bundle });
        }
    }
    Ok(JarInfo { coords: from_name, bundle })
}

fn read_entry(f: &mut File, local: u64, method: u64, csize: u64) -> std::result::Result<String, String> {
    let mut h = [0u8; 30];
    f.seek(SeekFrom::Start(local)).and_then(|_| f.read_exact(&mut h)).map_err(|e| io_reason(&e))?;
    if u32le(&h, 0) != LOCAL {
        return Err("corrupt local header".into());
    }
    let skip = u16le(&h, 26) + u16le(&h, 28);
    f.seek(SeekFrom::Current(skip as i64)).map_err(|e| io_reason(&e))?;
    let mut data = vec![0u8; csize as usize];
    f.read_exact(&mut data).map_err(|_| "truncated".to_string())?;
    let raw = match method {
        0 => data,
        8 => {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(&data[..])
                .take(1 << 20)
                .read_to_end(&mut out)
                .map_err(|_| "corrupt compressed data".to_string())?;
            out
        }
        m => return Err(format!("unsupported compression method {m}")),
    };
    Ok(String::from_utf8_lossy(&raw).to_string())
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
mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal stored zip with the given entries.
    pub(crate) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cd = Vec::new();
        for (name, data) in entries {
            let off = out.len() as u32;
            let crc = crc32fast::hash(data);
            out.extend_from_slice(&(LOCAL as u32).to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            cd.extend_from_slice(&(CENTRAL as u32).to_le_bytes());
            cd.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            cd.extend_from_slice(&crc.to_le_bytes());
            cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
            cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
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
