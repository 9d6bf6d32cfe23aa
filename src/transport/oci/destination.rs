//! An OCI image layout as a [`Destination`] (`oci:DIR[:TAG]`).
//!
//! - Always OCI media types: a base with Docker types is written with its
//!   manifests and index converted (config bytes unchanged, so the content
//!   digest and tags do not move), as skopeo, umoci, podman and buildah require.
//! - Up-to-date: when every tag of an image already names a manifest or index
//!   with the same content, and every blob it reaches is present with the
//!   right digest, nothing is compressed or written.
//! - Blobs are written through a temporary file and renamed into place after
//!   their digest is checked; a blob already present is trusted only after its
//!   digest is checked too (a wrong one is replaced) — or, with the digest
//!   cache, when its `stat` key is one recorded when this program verified or
//!   wrote it (so a blob planted or changed since is read and checked again).
//! - Side by side: `index.json` is updated under an exclusive lock on the
//!   layout folder — re-read, merged, written atomically — so concurrent
//!   builds into one layout never lose a tag or tear the index.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::{blob_path, LAYOUT, REF_NAME};
use crate::cache::{Cache, StatKey};
use crate::digest::{Digest, HashReader};
use crate::error::{io_reason, Error, Kind, Result};
use crate::files::{self, TempFile};
use crate::image::json::canonical;
use crate::image::mutate::content_digest;
use crate::image::{media, Blob, BlobData, Descriptor, ImageSet, Index, Manifest, MediaFamily, Platform};
use crate::transport::destination::{Destination, Held, Planned, Status, Written};

/// Writes images into an OCI image layout folder.
pub struct LayoutDestination {
    dir: PathBuf,
    tag: Option<String>,
    created: bool,
    cache: Option<Arc<Cache>>,
}

impl LayoutDestination {
    /// A destination for the layout at `dir`; `tag` (from `oci:DIR:TAG`)
    /// replaces the main image's tags. Leftovers of interrupted runs there
    /// are removed.
    pub fn new(dir: &Path, tag: Option<String>) -> Self {
        files::sweep(&dir.join("blobs").join("sha256"));
        files::sweep(dir);
        LayoutDestination { dir: dir.to_path_buf(), tag, created: !dir.join("index.json").exists(), cache: None }
    }

    /// Trusts blobs the digest cache says were verified with the `stat` key
    /// they still have, and records the blobs this destination verifies or writes.
    pub fn with_cache(mut self, cache: Arc<Cache>) -> Self {
        if cache.enabled() {
            self.cache = Some(cache);
        }
        self
    }

    /// The absolute path of a blob, as the digest cache knows it.
    fn cached_path(&self, digest: &Digest) -> PathBuf {
        let p = blob_path(&self.dir, digest);
        std::env::current_dir().map(|d| d.join(&p).components().collect()).unwrap_or(p)
    }

    fn tags(&self, image: &Planned) -> Vec<String> {
        match (&self.tag, image.main) {
            (Some(t), true) => vec![t.clone()],
            _ => image.tags.clone(),
        }
    }

    /// The descriptor a tag names in `index.json`, if any.
    fn tagged(&self, index: &Value, tag: &str) -> Option<Descriptor> {
        index["manifests"]
            .as_array()?
            .iter()
            .find(|m| m["annotations"][REF_NAME].as_str() == Some(tag))
            .and_then(|m| serde_json::from_value(m.clone()).ok())
    }

    /// The content digest of the image `top` names, when it and every blob
    /// it reaches are present and verified.
    fn verified_content(&self, top: &Descriptor) -> Result<Option<Digest>> {
        let Some(top_bytes) = self.verified_small(top)? else { return Ok(None) };
        let manifests: Vec<(Option<Platform>, Vec<u8>)> =
            if top.media_type == media::OCI_INDEX || top.media_type == media::DOCKER_LIST {
                let Ok(idx) = serde_json::from_slice::<Index>(&top_bytes) else { return Ok(None) };
                let mut out = Vec::new();
                for m in idx.manifests.iter().filter(|m| !m.is_attestation()) {
                    let Some(bytes) = self.verified_small(m)? else { return Ok(None) };
                    out.push((m.platform.clone(), bytes));
                }
                out
            } else {
                vec![(top.platform.clone(), top_bytes)]
            };
        let mut entries = Vec::new();
        for (platform, bytes) in manifests {
            let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) else { return Ok(None) };
            let Some(config) = self.verified_small(&m.config)? else { return Ok(None) };
            for l in &m.layers {
                if !self.present(l)? {
                    return Ok(None);
                }
            }
            let platform = match platform {
                Some(p) => p,
                None => serde_json::from_slice::<Value>(&config)
                    .map(|c| Platform::from_config(&c))
                    .unwrap_or_else(|_| Platform::from_config(&Value::Null)),
            };
            entries.push((platform, m.config.digest));
        }
        Ok((!entries.is_empty()).then(|| content_digest(&entries)))
    }

    /// A small blob's bytes when present with the right digest.
    fn verified_small(&self, desc: &Descriptor) -> Result<Option<Vec<u8>>> {
        const MAX: u64 = 4 << 20;
        if desc.size > MAX {
            return Ok(None);
        }
        match fs::read(blob_path(&self.dir, &desc.digest)) {
            Ok(b) if Digest::of(&b) == desc.digest && b.len() as u64 == desc.size => Ok(Some(b)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", &blob_path(&self.dir, &desc.digest), e)),
        }
    }

    /// Whether a blob is present with the right size and digest.
    fn present(&self, desc: &Descriptor) -> Result<bool> {
        let path = blob_path(&self.dir, &desc.digest);
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("reading", &path, e)),
        };
        let Ok(md) = f.metadata() else { return Ok(false) };
        if md.len() != desc.size {
            return Ok(false);
        }
        let key = StatKey::of(&md);
        if let Some(c) = &self.cache {
            if c.blob_verified(&self.cached_path(&desc.digest), &key, &desc.digest) {
                return Ok(true);
            }
        }
        let mut r = HashReader::new(f);
        io::copy(&mut r, &mut io::sink()).map_err(|e| Error::io("reading", &path, e))?;
        let ok = r.finish().0 == desc.digest;
        if let Some(c) = &self.cache {
            if ok {
                c.put_blob(&self.cached_path(&desc.digest), key, desc.digest);
            } else {
                c.drop_blob(&self.cached_path(&desc.digest));
            }
        }
        Ok(ok)
    }

    /// Records a blob this destination just wrote, with verified bytes.
    fn wrote(&self, desc: &Descriptor) {
        if let Some(c) = &self.cache {
            c.wrote_blob(&self.cached_path(&desc.digest), desc.digest);
        }
    }

    /// Stores one blob, verifying its digest; a blob already there is kept
    /// only when its digest checks out.
    fn store_blob(&self, blob: &Blob) -> Result<()> {
        let dest = blob_path(&self.dir, &blob.desc.digest);
        if self.present(&blob.desc)? {
            return Ok(());
        }
        let parent = dest.parent().expect("blob path has a parent");
        if let BlobData::Staged { path, .. } = &blob.data {
            let linked =
                parent.join(format!("{}link-{}-{}", files::TEMP_PREFIX, std::process::id(), blob.desc.digest.hex()));
            if fs::hard_link(path, &linked).is_ok() {
                let r = fs::rename(&linked, &dest).map_err(|e| Error::io("writing blob", &dest, e));
                let _ = fs::remove_file(&linked);
                if r.is_ok() {
                    self.wrote(&blob.desc);
                }
                return r;
            }
        }
        let mut tmp = TempFile::new_in(parent, "blob", "")?;
        let mut src =
            HashReader::new(blob.open().map_err(|e| Error::source(format!("{}: {}", blob.origin(), io_reason(&e))))?);
        io::copy(&mut src, tmp.file()).map_err(|e| Error::io("writing blob", &dest, e))?;
        let (got, n) = src.finish();
        if got != blob.desc.digest || n != blob.desc.size {
            return Err(Error::source(format!(
                "{}: read {n} bytes with digest {got}, expected {} bytes; the source is corrupt",
                blob.origin(),
                blob.desc.size
            )));
        }
        tmp.persist(&dest)?;
        self.wrote(&blob.desc);
        Ok(())
    }

    /// Runs `change` on `index.json` under the layout's exclusive lock and
    /// writes the result atomically.
    fn update_index(&self, change: impl FnOnce(&mut Vec<Value>)) -> Result<()> {
        let lock = File::open(&self.dir).map_err(|e| Error::io("opening", &self.dir, e))?;
        lock.lock().map_err(|e| Error::io("locking", &self.dir, e))?;
        let path = self.dir.join("index.json");
        let mut index: Value = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                Error::new(
                    Kind::Io,
                    format!("{}: index.json is not valid JSON ({e}); move it away first", self.dir.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []})
            }
            Err(e) => return Err(Error::io("reading", &path, e)),
        };
        let manifests = index["manifests"].as_array_mut().ok_or_else(|| {
            Error::new(
                Kind::Io,
                format!("{}: index.json has no manifests array; move it away first", self.dir.display()),
            )
        })?;
        change(manifests);
        files::write_atomic(&path, &canonical(&index))
        // The lock is released when `lock` is dropped, after the rename.
    }

    /// Points each of `tags` at `top`, replacing what they named.
    fn set_tags(&self, top: &Descriptor, platform: Option<&Platform>, tags: &[String]) -> Result<()> {
        self.update_index(|manifests| {
            manifests.retain(|m| !m["annotations"][REF_NAME].as_str().is_some_and(|n| tags.iter().any(|t| t == n)));
            for tag in tags {
                let mut d = top.clone();
                d.annotations = BTreeMap::from([(REF_NAME.to_string(), tag.clone())]);
                d.platform = platform.cloned();
                manifests.push(serde_json::to_value(&d).expect("descriptor serializes"));
            }
        })
    }

    /// Writes `set` under `tags` keeping its media types as they are: for
    /// the sample bases, which stand in for Docker-typed bases without a
    /// registry. Outputs go through [`Destination::write`], which is always OCI.
    pub fn write_verbatim(&self, tags: &[String], set: &ImageSet) -> Result<Digest> {
        self.write_tags(tags, set)
    }

    fn write_inner(&self, image: &Planned, set: &ImageSet) -> Result<Digest> {
        self.write_tags(&self.tags(image), set)
    }

    fn write_tags(&self, tags: &[String], set: &ImageSet) -> Result<Digest> {
        let blobs = self.dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(|e| Error::io("creating OCI layout", &self.dir, e))?;
        if !self.dir.join("oci-layout").exists() {
            files::write_atomic(&self.dir.join("oci-layout"), LAYOUT)?;
        }
        for blob in set.blobs_in_write_order() {
            self.store_blob(blob)?;
        }
        let top = set.top();
        let platform = set.index.is_none().then(|| &set.images[0].platform);
        self.set_tags(&top.desc, platform, tags)?;
        Ok(top.desc.digest)
    }
}

impl Destination for LayoutDestination {
    fn surely_empty(&mut self) -> bool {
        self.created
    }

    fn name(&self) -> String {
        match &self.tag {
            Some(t) => format!("oci:{}:{t}", self.dir.display()),
            None => format!("oci:{}", self.dir.display()),
        }
    }

    fn pinned(&self, image: &Planned, digest: &Digest) -> String {
        let tag = self.tag.as_ref().filter(|_| image.main).or(image.tags.first());
        match tag {
            Some(t) => format!("oci:{}:{t}@{digest}", self.dir.display()),
            None => format!("oci:{}@{digest}", self.dir.display()),
        }
    }

    fn manifests(&self, _base: MediaFamily) -> Option<MediaFamily> {
        Some(MediaFamily::Oci)
    }

    fn holds(&mut self, images: &[Planned]) -> Result<Held> {
        let index: Value = match fs::read(self.dir.join("index.json")) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
            Err(_) => return Ok(vec![None; images.len()]),
        };
        let mut held = Vec::new();
        for image in images {
            let tags = self.tags(image);
            let found = match self.tagged(&index, &tags[0]) {
                Some(top)
                    if top.media_type == MediaFamily::Oci.manifest() || top.media_type == MediaFamily::Oci.index() =>
                {
                    match self.verified_content(&top)? {
                        Some(c) if c == image.content => Some(top),
                        _ => None,
                    }
                }
                _ => None,
            };
            let Some(top) = found else {
                held.push(None);
                continue;
            };
            let missing: Vec<String> =
                tags.iter().filter(|t| self.tagged(&index, t).map(|d| d.digest) != Some(top.digest)).cloned().collect();
            if !missing.is_empty() {
                self.set_tags(
                    &Descriptor { annotations: BTreeMap::new(), ..top.clone() },
                    top.platform.as_ref(),
                    &missing,
                )?;
            }
            crate::progress::message(&format!(
                "{}: {} already holds this content ({}); nothing to write",
                self.name(),
                tags[0],
                top.digest
            ));
            held.push(Some(top.digest));
        }
        Ok(held)
    }

    fn write(&mut self, image: &Planned, set: &ImageSet) -> Result<Written> {
        let r = self.write_inner(image, set);
        if r.is_err() && self.created && !self.dir.join("index.json").exists() {
            let _ = fs::remove_dir_all(&self.dir);
        }
        Ok(Written { digest: r?, status: Status::Written })
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
