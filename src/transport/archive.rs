//! `docker save` archives: read a base from one (the air-gapped path), write a
//! result as one that `docker load` accepts on Docker 20.10 (legacy
//! `manifest.json`) and on current Docker (OCI layout), with each blob stored
//! once and referenced by both.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use super::{base_image, Base};
use crate::bounded::{read_to_end_max, METADATA_MAX};
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
fn index_members(path: &Path, shown: &str) -> Result<HashMap<String, (u64, u64)>> {
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

/// Reads a metadata member (`manifest.json`, a config) of an archive, at most
/// [`METADATA_MAX`] bytes: its size is checked before a byte is read.
fn read_metadata(blob: &Blob, shown: &str, name: &str) -> Result<Vec<u8>> {
    if blob.desc.size > METADATA_MAX {
        return Err(Error::source(format!(
            "{shown}: {name} is {} bytes, over the {} limit for archive metadata; is it a `docker save` archive?",
            blob.desc.size,
            crate::bounded::size_text(METADATA_MAX)
        )));
    }
    let r = blob.open().map_err(|e| Error::source(format!("{shown}: {name}: {}", io_reason(&e))))?;
    read_to_end_max(r, METADATA_MAX).map_err(|e| Error::source(format!("{shown}: {name}: {}", io_reason(&e))))
}

/// Reads the base from a `docker save` archive; `reference` picks one of
/// several images by its RepoTag.
pub fn read_base(location: &Location, path: &Path, reference: Option<&Reference>) -> Result<Base> {
    let shown = location.to_string();
    let members = index_members(path, &shown)?;
    let member = |name: &str| -> Result<Blob> {
        let (off, len) = members
            .get(name.trim_start_matches("./"))
            .copied()
            .ok_or_else(|| Error::source(format!("{shown}: lists {name} but does not contain it")))?;
        Ok(Blob::file(Descriptor::new(media::DOCKER_LAYER_TAR, Digest::of(b""), len), path.to_path_buf(), off))
    };
    let manifest_blob = member("manifest.json")
        .map_err(|_| Error::source(format!("{shown}: no manifest.json; is it a `docker save` archive?")))?;
    let entries: Vec<LegacyEntry> = serde_json::from_slice(&read_metadata(&manifest_blob, &shown, "manifest.json")?)
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

    let mut config_blob = member(&entry.config)?;
    let config = read_metadata(&config_blob, &shown, &entry.config)?;
    config_blob.desc = Descriptor::of(media::DOCKER_CONFIG, &config);
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
        let mut b = member(l)?;
        let mut magic = [0u8; 2];
        let gz = b.open().and_then(|mut r| r.read_exact(&mut magic)).is_ok() && magic == [0x1f, 0x8b];
        if gz {
            let mut r = HashReader::new(b.open().map_err(|e| Error::source(format!("{shown}: {}", io_reason(&e))))?);
            io::copy(&mut r, &mut io::sink()).map_err(|e| Error::source(format!("{shown}: {l}: {}", io_reason(&e))))?;
            let (d, n) = r.finish();
            b.desc = Descriptor::new(media::DOCKER_LAYER_GZIP, d, n);
        } else {
            let diff_id = diff_ids
                .get(i)
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<Digest>().ok())
                .ok_or_else(|| Error::source(format!("{shown}: config lists fewer diff_ids than layers")))?;
            b.desc.digest = diff_id;
        }
        layers.push(b);
    }
    let name = entry
        .repo_tags
        .iter()
        .flatten()
        .find_map(|t| Reference::parse(t).ok())
        .map(|r| r.to_string())
        .unwrap_or_else(|| shown.clone());
    let tag = reference
        .and_then(|r| r.tag.clone())
        .or_else(|| Reference::parse(&name).ok().and_then(|r| r.tag))
        .unwrap_or_else(|| "latest".into());
    let image = base_image(&shown, None, config, layers, None)?;
    Ok(Base::new(location, name, tag, None, MediaFamily::Docker, false, vec![image], None))
}

/// Writes `image` as a `docker load`-able archive at `path` with `repo_tags`.
/// The file appears only when complete. Returns the manifest digest.
pub fn write(path: &Path, repo_tags: &[Reference], image: &Image) -> Result<Digest> {
    write_many(path, &[(repo_tags, image)])
}

/// Writes several images (each with its tags) into one archive at `path`;
/// returns the first image's manifest digest.
pub fn write_many(path: &Path, images: &[(&[Reference], &Image)]) -> Result<Digest> {
    let first =
        images.first().ok_or_else(|| Error::usage(format!("docker-archive:{}: no image to write", path.display())))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::usage(format!(
            "docker-archive:{}: folder {} does not exist",
            path.display(),
            parent.display()
        )));
    }
    let tmp = tempfile::Builder::new()
        .prefix(".wso2img-")
        .suffix(".tar.tmp")
        .tempfile_in(parent)
        .map_err(|e| Error::io("creating archive", parent, e))?;
    let (file, tmp_path) = tmp.into_parts();
    let mut out = BufWriter::with_capacity(1 << 20, file);
    write_stream_many(&mut out, images, &HashSet::new(), &path.display().to_string())?;
    let file = out.into_inner().map_err(|e| Error::io("writing archive", path, e.into_error()))?;
    super::oci::readable(&file, path)?;
    tmp_path.persist(path).map_err(|e| Error::io("writing archive", path, e.error))?;
    Ok(first.1.manifest.desc.digest)
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
            manifest_desc.annotations.insert(super::oci::REF_NAME.into(), first.tag_or_latest().to_string());
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
    let Some(&(off, len)) = members.get(name) else { return Ok(None) };
    let b = Blob::file(Descriptor::new(media::DOCKER_LAYER_TAR, Digest::of(b""), len), path.to_path_buf(), off);
    b.read_all().map(Some).map_err(|e| Error::source(format!("{shown}: {}", io_reason(&e))))
}
