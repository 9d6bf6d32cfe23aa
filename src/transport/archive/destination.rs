//! A `docker save` archive as a [`Destination`] (`docker-archive:FILE`, `-`
//! for stdout): every image of a build goes into one file, one platform each,
//! written whole in [`Destination::finish`]. It holds the build already when
//! the file lists exactly these images under these names and every blob in
//! it checks out; then it is not rewritten.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{index_members, read_range, write_stream_many};
use crate::digest::{Digest, HashReader};
use crate::error::{Error, Result};
use crate::files::{self, Target, TempFile};
use crate::image::{Image, ImageSet, Index, MediaFamily, Platform};
use crate::reference::Reference;
use crate::transport::destination::{pick_config, pick_image, Destination, Held, Planned, Status, Written};

const WHAT: &str = "a docker-archive";

/// Writes every image of a build into one `docker load`-able archive.
pub struct ArchiveDestination {
    path: PathBuf,
    reference: Option<Reference>,
    repository: Option<Reference>,
    platforms: Vec<Platform>,
    pending: Vec<(Vec<Reference>, Image)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl ArchiveDestination {
    /// A destination writing `path`; `reference` (from
    /// `docker-archive:FILE:REF`) names the main image, `repository` names
    /// the others (with their tags); `platforms` picks the one platform kept.
    pub fn new(
        path: &Path,
        reference: Option<Reference>,
        repository: Option<Reference>,
        platforms: Vec<Platform>,
    ) -> Self {
        if matches!(Target::of(path), Target::Replace(_)) {
            files::sweep(files::parent_of(path));
        }
        ArchiveDestination { path: path.to_path_buf(), reference, repository, platforms, pending: Vec::new() }
    }

    fn refs(&self, image: &Planned) -> Vec<Reference> {
        match (&self.reference, image.main) {
            (Some(r), true) => vec![r.clone()],
            _ => self.repository.iter().flat_map(|repo| image.tags.iter().map(|t| repo.with_tag(t))).collect(),
        }
    }

    /// The manifest digests of the existing archive when it lists exactly
    /// `images` (config and names, in order) and every blob checks out.
    fn existing(&self, images: &[Planned]) -> Result<Option<Vec<Digest>>> {
        if !matches!(Target::of(&self.path), Target::Replace(_)) || !self.path.is_file() {
            return Ok(None);
        }
        let shown = self.name();
        let Ok(members) = index_members(&self.path, &shown) else { return Ok(None) };
        let read = |name: &str| members.get(name).map(|&m| read_range(&self.path, m, &shown)).transpose();
        let (Some(legacy), Some(index)) = (read("manifest.json")?, read("index.json")?) else { return Ok(None) };
        let (Ok(legacy), Ok(index)) =
            (serde_json::from_slice::<Vec<Entry>>(&legacy), serde_json::from_slice::<Index>(&index))
        else {
            return Ok(None);
        };
        if legacy.len() != images.len() || index.manifests.len() != images.len() {
            return Ok(None);
        }
        let mut digests = Vec::new();
        for ((image, entry), manifest) in images.iter().zip(&legacy).zip(&index.manifests) {
            let config = pick_config(image, &self.platforms, WHAT)?;
            let names: Vec<String> = self.refs(image).iter().map(docker_name).collect();
            if entry.config != format!("blobs/sha256/{}", config.hex())
                || entry.repo_tags.clone().unwrap_or_default() != names
                || manifest.media_type != MediaFamily::Oci.manifest()
            {
                return Ok(None);
            }
            digests.push(manifest.digest);
        }
        let mut wanted: HashSet<String> = HashSet::new();
        for (entry, manifest) in legacy.iter().zip(&index.manifests) {
            wanted.insert(entry.config.clone());
            wanted.extend(entry.layers.iter().cloned());
            wanted.insert(format!("blobs/sha256/{}", manifest.digest.hex()));
        }
        for name in wanted {
            let Some(&(off, len)) = members.get(&name) else { return Ok(None) };
            let Some(expected) =
                name.strip_prefix("blobs/sha256/").and_then(|h| format!("sha256:{h}").parse::<Digest>().ok())
            else {
                return Ok(None);
            };
            let mut f = File::open(&self.path).map_err(|e| Error::io("reading", &self.path, e))?;
            f.seek(SeekFrom::Start(off)).map_err(|e| Error::io("reading", &self.path, e))?;
            let mut r = HashReader::new(f.take(len));
            io::copy(&mut r, &mut io::sink()).map_err(|e| Error::io("reading", &self.path, e))?;
            if r.finish().0 != expected {
                return Ok(None);
            }
        }
        Ok(Some(digests))
    }
}

/// Writes `images` (each with its names) as one archive at `path`: `-` is
/// stdout, a device or fifo is written in place, a regular file appears only
/// when complete.
pub fn write(path: &Path, images: &[(Vec<Reference>, Image)], shown: &str) -> Result<()> {
    let write_to = |out: &mut dyn Write| -> Result<()> {
        let borrowed: Vec<(&[Reference], &Image)> = images.iter().map(|(r, i)| (r.as_slice(), i)).collect();
        let mut w = BufWriter::with_capacity(1 << 20, out);
        write_stream_many(&mut w, &borrowed, &HashSet::new(), shown)?;
        w.flush().map_err(|e| Error::io("writing archive", path, e))
    };
    match Target::of(path) {
        Target::Stdout => write_to(&mut io::stdout().lock()),
        Target::Stderr => write_to(&mut io::stderr().lock()),
        Target::InPlace(p) => {
            let mut f = OpenOptions::new().write(true).open(&p).map_err(|e| Error::io("opening", &p, e))?;
            write_to(&mut f)
        }
        Target::Replace(p) => {
            let mut tmp = TempFile::new_in(files::parent_of(&p), "archive", ".tar.tmp")?;
            write_to(tmp.file())?;
            tmp.persist(&p)
        }
    }
}

/// The `RepoTags` form of a reference (`wso2/wso2am:4.3.0`).
fn docker_name(r: &Reference) -> String {
    format!("{}:{}", r.familiar_name(), r.tag_or_latest())
}

impl Destination for ArchiveDestination {
    fn name(&self) -> String {
        match &self.reference {
            Some(r) => format!("docker-archive:{}:{r}", self.path.display()),
            None => format!("docker-archive:{}", self.path.display()),
        }
    }

    fn manifests(&self, _base: MediaFamily) -> Option<MediaFamily> {
        Some(MediaFamily::Oci)
    }

    fn holds(&mut self, images: &[Planned]) -> Result<Held> {
        match self.existing(images)? {
            Some(digests) => {
                crate::progress::message(&format!("{}: already holds these images; nothing to write", self.name()));
                Ok(digests.into_iter().map(Some).collect())
            }
            None => Ok(vec![None; images.len()]),
        }
    }

    fn write(&mut self, image: &Planned, set: &ImageSet) -> Result<Written> {
        let one = pick_image(set, &self.platforms, WHAT)?.clone();
        let digest = one.manifest.desc.digest;
        self.pending.push((self.refs(image), one));
        Ok(Written { digest, status: Status::Written })
    }

    fn finish(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        write(&self.path, &self.pending, &self.name())
    }
}
