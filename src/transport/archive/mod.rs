//! `docker save` archives (`docker-archive:FILE`): read a base from one (the
//! air-gapped path); write results as one that `docker load` accepts on
//! Docker 20.10 (legacy `manifest.json`) and on current Docker (OCI layout,
//! OCI media types), with each blob stored once and referenced by both
//! ([`destination::ArchiveDestination`]).

pub mod destination;
mod location;

pub use destination::ArchiveDestination;
pub use location::Archive;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use super::{base_image, Base};
use crate::bounded::METADATA_MAX;
use crate::digest::{Digest, HashReader};
use crate::error::{io_reason, Error, Kind, Result};
use crate::image::json::canonical;
use crate::image::{media, Blob, Descriptor, Image, MediaFamily};
use crate::layer::tar as tarw;
use crate::reference::{Location, Reference};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Where each member of a tar file is: path → (offset of data, size).
pub(crate) fn index_members(path: &Path, shown: &str) -> Result<HashMap<String, (u64, u64)>> {
    let f = File::open(path)
        .map_err(|e| Error::source(format!("{shown}: cannot open ({}); check the path", io_reason(&e))))?;
    let mut ar = tar::Archive::new(crate::bounded::TarGuard::new(f));
    let mut out = HashMap::new();
    let entries =
        ar.entries_with_seek().map_err(|e| Error::source(format!("{shown}: not a tar archive ({})", io_reason(&e))))?;
    for entry in entries {
        let entry = entry
            .map_err(|e| Error::source(format!("{shown}: not a valid docker save archive ({})", io_reason(&e))))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let p = entry.path().map_err(|e| Error::source(format!("{shown}: {}", io_reason(&e))))?;
        let p = p.to_string_lossy().trim_start_matches("./").to_string();
        out.insert(p, (entry.raw_file_position(), entry.size()));
    }
    Ok(out)
}

/// Reads the base from a `docker save` archive; `reference` picks one of
/// several images by its RepoTag.
pub fn read_base(location: &Location, path: &Path, reference: Option<&Reference>) -> Result<Base> {
    let shown = location.to_string();
    let members = index_members(path, &shown)?;
    let member = |name: &str| -> Result<(u64, u64)> {
        members
            .get(name.trim_start_matches("./"))
            .copied()
            .ok_or_else(|| Error::source(format!("{shown}: lists {name} but does not contain it")))
    };
    let manifest_json = member("manifest.json")
        .map_err(|_| Error::source(format!("{shown}: no manifest.json; is it a `docker save` archive?")))?;
    let entries: Vec<LegacyEntry> = serde_json::from_slice(&read_range(path, manifest_json, &shown)?)
        .map_err(|e| Error::source(format!("{shown}: manifest.json is invalid: {e}")))?;
    let all_tags: Vec<String> = entries.iter().flat_map(|e| e.repo_tags.clone().unwrap_or_default()).collect();
    let entry = match reference {
        Some(r) => entries
            .iter()
            .find(|e| e.repo_tags.iter().flatten().any(|t| Reference::parse(t).map(|t| t == *r).unwrap_or(false))),
        None if entries.len() == 1 => entries.first(),
        None => {
            return Err(Error::source(format!(
                "{shown}: holds {} images; pick one with {shown}:REPO:TAG (it has {})",
                entries.len(),
                all_tags.join(", ")
            )))
        }
    }
    .ok_or_else(|| {
        Error::source(format!(
            "{shown}: has no image tagged {} (it has {})",
            reference.map(|r| r.to_string()).unwrap_or_default(),
            all_tags.join(", ")
        ))
    })?;

    let config = read_range(path, member(&entry.config)?, &shown)?;
    let config_digest = Digest::of(&config);
    if let Some(hex) = entry.config.rsplit('/').next().and_then(|n| n.strip_suffix(".json").or(Some(n))) {
        if hex.len() == 64 && hex != config_digest.hex() {
            return Err(Error::source(format!(
                "{shown}: config {} does not match its digest; the archive is corrupt",
                entry.config
            )));
        }
    }
    let mut layers = Vec::new();
    let config_json: serde_json::Value =
        serde_json::from_slice(&config).map_err(|e| Error::source(format!("{shown}: config is not JSON: {e}")))?;
    let diff_ids = config_json["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
    for (i, l) in entry.layers.iter().enumerate() {
        let (off, len) = member(l)?;
        let open = || -> Result<Box<dyn Read>> {
            let mut f = File::open(path).map_err(|e| Error::source(format!("{shown}: {}", io_reason(&e))))?;
            f.seek(SeekFrom::Start(off)).map_err(|e| Error::source(format!("{shown}: {}", io_reason(&e))))?;
            Ok(Box::new(f.take(len)))
        };
        let mut magic = [0u8; 2];
        let gz = open()?.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
        let desc = if gz {
            let mut r = HashReader::new(open()?);
            io::copy(&mut r, &mut io::sink()).map_err(|e| Error::source(format!("{shown}: {l}: {}", io_reason(&e))))?;
            let (d, n) = r.finish();
            Descriptor::new(media::DOCKER_LAYER_GZIP, d, n)
        } else {
            let diff_id = diff_ids
                .get(i)
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<Digest>().ok())
                .ok_or_else(|| Error::source(format!("{shown}: config lists fewer diff_ids than layers")))?;
            Descriptor::new(media::DOCKER_LAYER_TAR, diff_id, len)
        };
        layers.push(Blob::file(desc, path.to_path_buf(), off));
    }
    // The first full reference among its RepoTags; else the image ID (the
    // config's digest). Never the archive's location: where it sits on disk
    // must not reach the image.
    let carried = entry.repo_tags.iter().flatten().find_map(|t| Reference::parse(t).ok());
    let tag = reference
        .and_then(|r| r.tag.clone())
        .or_else(|| carried.as_ref().and_then(|r| r.tag.clone()))
        .unwrap_or_else(|| "latest".into());
    let name = carried.map_or_else(|| config_digest.to_string(), |r| r.to_string());
    let image = base_image(&shown, None, config, layers, None)?;
    Ok(Base {
        location: location.clone(),
        name,
        tag,
        digest: None,
        family: MediaFamily::Docker,
        multi_platform: false,
        images: vec![image],
        _keep: None,
    })
}

/// Writes `image` as a `docker load`-able tar stream to `out`: the blobs
/// under `blobs/sha256/`, an OCI `index.json` and the legacy `manifest.json`
/// naming `repo_tags`. Layers whose digest is in `omit` are listed in
/// `manifest.json` without their files: `docker load` (classic image store)
/// opens a layer's file only when it lacks that chain of layers, so a daemon
/// that has the bottom layers needs only the rest. `shown` names the
/// destination in errors.
pub fn write_stream<W: Write>(
    out: &mut W,
    repo_tags: &[Reference],
    image: &Image,
    omit: &HashSet<Digest>,
    shown: &str,
) -> Result<()> {
    write_stream_many(out, &[(repo_tags, image)], omit, shown)
}

/// Like [`write_stream`], for several images in one archive (each with its
/// tags); blobs they share are stored once.
pub fn write_stream_many<W: Write>(
    out: &mut W,
    images: &[(&[Reference], &Image)],
    omit: &HashSet<Digest>,
    shown: &str,
) -> Result<()> {
    let werr = |e: io::Error| Error::new(Kind::Io, format!("{shown}: writing archive: {}", io_reason(&e)));
    let member = |out: &mut W, name: &str, data: &mut dyn Read, size: u64| -> Result<()> {
        let h = tarw::Header {
            path: name,
            kind: tarw::EntryType::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size,
            mtime: 0,
            link: "",
        };
        tarw::write_header(out, &h).map_err(werr)?;
        let n = io::copy(&mut data.take(size), out).map_err(werr)?;
        if n != size {
            return Err(Error::source(format!("{name}: expected {size} bytes, got {n}")));
        }
        tarw::pad(out, size).map_err(werr)
    };
    let dir = |out: &mut W, name: &str| -> Result<()> {
        let h = tarw::Header {
            path: name,
            kind: tarw::EntryType::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            link: "",
        };
        tarw::write_header(out, &h).map_err(werr)
    };

    dir(out, "blobs/")?;
    dir(out, "blobs/sha256/")?;
    let mut seen = HashSet::new();
    let blobs = images.iter().flat_map(|(_, image)| image.layers.iter().chain([&image.config, &image.manifest]));
    for blob in blobs {
        if omit.contains(&blob.desc.digest) || !seen.insert(blob.desc.digest) {
            continue;
        }
        let mut r =
            HashReader::new(blob.open().map_err(|e| Error::source(format!("{}: {}", blob.origin(), io_reason(&e))))?);
        member(out, &format!("blobs/sha256/{}", blob.desc.digest.hex()), &mut r, blob.desc.size)?;
        let (d, _) = r.finish();
        if d != blob.desc.digest {
            return Err(Error::source(format!("{}: content does not match its digest", blob.origin())));
        }
    }
    let mut manifests = Vec::new();
    let mut legacy = Vec::new();
    for (repo_tags, image) in images {
        let tags: Vec<String> =
            repo_tags.iter().map(|r| format!("{}:{}", r.familiar_name(), r.tag_or_latest())).collect();
        let mut manifest_desc = image.manifest.desc.clone();
        if let Some(first) = repo_tags.first() {
            manifest_desc.annotations.insert("io.containerd.image.name".into(), first.to_string());
            manifest_desc.annotations.insert(crate::transport::oci::REF_NAME.into(), first.tag_or_latest().to_string());
        }
        manifests.push(manifest_desc);
        legacy.push(json!({
            "Config": format!("blobs/sha256/{}", image.config.desc.digest.hex()),
            "RepoTags": tags,
            "Layers": image.layers.iter().map(|l| format!("blobs/sha256/{}", l.desc.digest.hex())).collect::<Vec<_>>(),
        }));
    }
    let index = json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests});
    let legacy = serde_json::Value::Array(legacy);
    for (name, bytes) in [
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json", canonical(&index)),
        ("manifest.json", canonical(&legacy)),
    ] {
        member(out, name, &mut &bytes[..], bytes.len() as u64)?;
    }
    tarw::finish(out).map_err(werr)
}

/// Reads a small JSON member of an archive (for `inspect`).
pub fn read_member(path: &Path, shown: &str, name: &str) -> Result<Option<Vec<u8>>> {
    let members = index_members(path, shown)?;
    members.get(name).map(|&m| read_range(path, m, shown)).transpose()
}

/// The bytes of a small member (`(offset, length)`) of the archive at `path`:
/// metadata files (manifest.json, configs) up to 16 MiB.
pub(crate) fn read_range(path: &Path, (off, len): (u64, u64), shown: &str) -> Result<Vec<u8>> {
    if len > METADATA_MAX {
        return Err(Error::source(format!(
            "{shown}: a metadata member (manifest.json or a config) of {len} bytes is over the {} limit; is the archive corrupt?",
            crate::bounded::size_text(METADATA_MAX)
        )));
    }
    let err = |e: io::Error| Error::source(format!("{shown}: {}", io_reason(&e)));
    let mut f = File::open(path).map_err(err)?;
    f.seek(SeekFrom::Start(off)).map_err(err)?;
    let mut v = Vec::with_capacity(len as usize);
    f.take(len).read_to_end(&mut v).map_err(err)?;
    Ok(v)
}
