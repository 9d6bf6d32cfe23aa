//! OCI image layout folders: read a base from one, write results into one
//! (keeping the other images already there).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{base_image, read_verified, Base, BaseImage};
use crate::digest::{Digest, HashReader};
use crate::error::{io_reason, Error, Kind, Result};
use crate::image::json::canonical;
use crate::image::{media, Blob, BlobData, Descriptor, ImageSet, Index, Manifest, MediaFamily, Platform};
use crate::reference::{Location, Reference};

/// The annotation that names an image in a layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
const LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

fn blob_path(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(d.hex())
}

fn layout_blob(dir: &Path, desc: &Descriptor) -> Blob {
    Blob::file(desc.clone(), blob_path(dir, &desc.digest), 0)
}

fn read_index(dir: &Path, shown: &str) -> Result<Index> {
    let path = dir.join("index.json");
    let bytes = fs::File::open(&path)
        .and_then(|f| crate::bounded::read_to_end_max(f, crate::bounded::METADATA_MAX))
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::source(format!("{shown}: no OCI image layout there (no index.json); check the path"))
            } else {
                Error::source(format!("{shown}: cannot read index.json ({})", io_reason(&e)))
            }
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::source(format!("{shown}: index.json is not a valid OCI index: {e}")))
}

/// Whether an index entry is an attestation rather than an image.
pub fn is_attestation(d: &Descriptor) -> bool {
    d.platform.as_ref().is_some_and(Platform::is_unknown) || d.annotations.contains_key("vnd.docker.reference.type")
}

/// Reads the base tagged `tag` (or the only image) from the layout at `dir`.
pub fn read_base(location: &Location, dir: &Path, tag: Option<&str>) -> Result<Base> {
    let shown = location.to_string();
    let index = read_index(dir, &shown)?;
    let tags: Vec<&str> =
        index.manifests.iter().filter_map(|m| m.annotations.get(REF_NAME).map(String::as_str)).collect();
    let entry = match tag {
        Some(t) => index.manifests.iter().find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(t)),
        None if index.manifests.len() == 1 => index.manifests.first(),
        None => {
            return Err(Error::source(format!(
                "{shown}: the layout holds {} images; name one with {shown}:TAG (tags: {})",
                index.manifests.len(),
                tags.join(", ")
            )))
        }
    };
    let entry = entry.ok_or_else(|| {
        let have = if tags.is_empty() { "none".to_string() } else { tags.join(", ") };
        Error::source(format!("{shown}: no image tagged {} in this layout (tags: {have})", tag.unwrap_or("")))
    })?;
    let name = entry
        .annotations
        .get(CONTAINERD_NAME)
        .or_else(|| entry.annotations.get(REF_NAME))
        .and_then(|n| n.contains('/').then(|| Reference::parse(n).ok()).flatten())
        .map(|r| r.to_string())
        .unwrap_or_else(|| shown.clone());
    let base_tag = tag
        .map(str::to_string)
        .or_else(|| Reference::parse(&name).ok().and_then(|r| r.tag))
        .or_else(|| entry.annotations.get(REF_NAME).filter(|t| Reference::valid_tag(t)).cloned())
        .unwrap_or_else(|| "latest".into());
    let top = read_verified(&layout_blob(dir, entry), &shown)?;
    let media_type = entry.media_type.as_str();
    let family = MediaFamily::of(media_type)
        .ok_or_else(|| Error::source(format!("{shown}: unsupported media type {media_type}")))?;
    let (images, multi) = if media_type == media::OCI_INDEX || media_type == media::DOCKER_LIST {
        let idx: Index =
            serde_json::from_slice(&top).map_err(|e| Error::source(format!("{shown}: invalid index: {e}")))?;
        let mut images = Vec::new();
        for m in idx.manifests.iter().filter(|m| !is_attestation(m)) {
            if MediaFamily::of(&m.media_type) != Some(family) {
                return Err(Error::source(format!("{shown}: index mixes media types ({})", m.media_type)));
            }
            images.push(read_image(dir, &shown, m, m.platform.clone())?);
        }
        if images.is_empty() {
            return Err(Error::source(format!("{shown}: the index lists no images")));
        }
        (images, true)
    } else {
        (vec![read_image_bytes(dir, &shown, entry.digest, top, None)?], false)
    };
    Ok(Base::new(location, name, base_tag, Some(entry.digest), family, multi, images, None))
}

fn read_image(dir: &Path, shown: &str, desc: &Descriptor, platform: Option<Platform>) -> Result<BaseImage> {
    let bytes = read_verified(&layout_blob(dir, desc), shown)?;
    read_image_bytes(dir, shown, desc.digest, bytes, platform)
}

fn read_image_bytes(
    dir: &Path,
    shown: &str,
    digest: Digest,
    bytes: Vec<u8>,
    platform: Option<Platform>,
) -> Result<BaseImage> {
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::source(format!("{shown}: manifest {digest} is invalid: {e}")))?;
    let config = read_verified(&layout_blob(dir, &m.config), shown)?;
    let layers = m.layers.iter().map(|l| layout_blob(dir, l)).collect();
    base_image(shown, Some(digest), config, layers, platform)
}

/// Writes `set` into the layout at `dir` under each of `tags`, keeping every
/// other image there. Returns the digest of the top-level manifest or index.
/// On failure a layout that did not exist before is removed again.
pub fn write(dir: &Path, tags: &[String], set: &ImageSet) -> Result<Digest> {
    let existed = dir.exists();
    let result = write_inner(dir, tags, set);
    if result.is_err() && !existed {
        let _ = fs::remove_dir_all(dir);
    }
    result
}

fn write_inner(dir: &Path, tags: &[String], set: &ImageSet) -> Result<Digest> {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|e| Error::io("creating OCI layout", dir, e))?;
    let mut index: Value = match fs::read(dir.join("index.json")) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            Error::new(
                Kind::Io,
                format!("{}: existing index.json is not valid JSON ({e}); move it away first", dir.display()),
            )
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []})
        }
        Err(e) => return Err(Error::io("reading index.json", dir, e)),
    };
    let layout_path = dir.join("oci-layout");
    if !layout_path.exists() {
        write_atomic(&layout_path, LAYOUT)?;
    }
    for blob in set.blobs_in_write_order() {
        store_blob(dir, blob)?;
    }
    let top = set.top();
    let manifests = index["manifests"].as_array_mut().ok_or_else(|| {
        Error::new(Kind::Io, format!("{}: index.json has no manifests array; move it away first", dir.display()))
    })?;
    manifests.retain(|m| !m["annotations"][REF_NAME].as_str().is_some_and(|n| tags.iter().any(|t| t == n)));
    for tag in tags {
        let mut d = top.desc.clone();
        d.annotations = BTreeMap::from([(REF_NAME.to_string(), tag.clone())]);
        if set.index.is_none() {
            d.platform = Some(set.images[0].platform.clone());
        }
        manifests.push(serde_json::to_value(&d).expect("descriptor serializes"));
    }
    write_atomic(&dir.join("index.json"), &canonical(&index))?;
    Ok(top.desc.digest)
}

/// Stores one blob in the layout, verifying its digest; a blob already there
/// with the right size is kept.
pub fn store_blob(dir: &Path, blob: &Blob) -> Result<()> {
    let dest = blob_path(dir, &blob.desc.digest);
    if fs::metadata(&dest).map(|m| m.len() == blob.desc.size).unwrap_or(false) {
        return Ok(());
    }
    if let BlobData::Staged { path, .. } = &blob.data {
        if fs::hard_link(path, &dest).is_ok() {
            return Ok(());
        }
    }
    let parent = dest.parent().expect("blob path has a parent");
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(parent)
        .map_err(|e| Error::io("writing blob", parent, e))?;
    let mut src =
        HashReader::new(blob.open().map_err(|e| Error::source(format!("{}: {}", blob.origin(), io_reason(&e))))?);
    copy(&mut src, tmp.as_file_mut()).map_err(|e| Error::io("writing blob", &dest, e))?;
    let (got, n) = src.finish();
    if got != blob.desc.digest || n != blob.desc.size {
        return Err(Error::source(format!(
            "{}: read {n} bytes with digest {got}, expected {} bytes; the source is corrupt",
            blob.origin(),
            blob.desc.size
        )));
    }
    readable(tmp.as_file(), &dest)?;
    tmp.persist(&dest).map_err(|e| Error::io("writing blob", &dest, e.error))?;
    Ok(())
}

/// Makes a file wso2img wrote readable by everyone (0644), as `docker save`
/// and skopeo leave theirs; temporary files start as 0600.
pub fn readable(f: &std::fs::File, shown: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(fs::Permissions::from_mode(0o644)).map_err(|e| Error::io("setting permissions", shown, e))
}

fn copy(src: &mut impl Read, dst: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = src.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        dst.write_all(&buf[..k])?;
        n += k as u64;
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let mut tmp =
        tempfile::Builder::new().prefix(".tmp-").tempfile_in(parent).map_err(|e| Error::io("writing", parent, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io("writing", path, e))?;
    readable(tmp.as_file(), path)?;
    tmp.persist(path).map_err(|e| Error::io("writing", path, e.error))?;
    Ok(())
}
