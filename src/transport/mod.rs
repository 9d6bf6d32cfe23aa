//! Transports: every place images are read from and written to, side by
//! side. Every transport reads a base into the same [`Base`] model, and every
//! output implements the same [`Destination`].
//!
//! - [`oci`]: an OCI image layout folder (`oci:DIR[:TAG]`).
//! - [`archive`]: a `docker save` tar (`docker-archive:FILE`).
//! - [`registry`]: a registry over the distribution API (`docker://`).
//! - [`daemon`]: the Docker Engine API (`docker-daemon:`, and pushes through it).
//! - [`builtin`]: small WSO2-like sample bases generated in place
//!   (`builtin:NAME`), from [`crate::wso2::sample`].
//! - [`destination`]: the [`Destination`] interface and the planned image it is asked about.

pub mod archive;
pub mod builtin;
pub mod daemon;
pub mod destination;
pub mod oci;
pub mod registry;

pub use destination::{Destination, Held, Planned, Status, Written};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::digest::Digest;
use crate::error::{io_reason, Error, Result};
use crate::image::{layer_is_gzip, Blob, MediaFamily, Platform};
use crate::reference::{Location, Reference};
use crate::transport::registry::Registries;

/// One platform of a base image.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// Its platform.
    pub platform: Platform,
    /// Digest of its manifest, when the source has one.
    pub manifest_digest: Option<Digest>,
    /// The exact config bytes.
    pub config: Vec<u8>,
    /// The config, parsed.
    pub config_json: Value,
    /// Its layers, bottom first.
    pub layers: Vec<BaseLayer>,
}

/// A base layer: its uncompressed identity and its stored blob (gzip, or a
/// plain tar in `docker save` archives).
#[derive(Debug, Clone)]
pub struct BaseLayer {
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// The blob as stored in the source.
    pub blob: Blob,
}

impl BaseLayer {
    /// Whether the stored blob is an uncompressed tar (as in `docker save`).
    pub fn is_plain_tar(&self) -> bool {
        layer_is_gzip(&self.blob.desc.media_type) == Some(false)
    }
}

/// A base image read from any transport.
#[derive(Debug)]
pub struct Base {
    /// Where it was read from.
    pub location: Location,
    /// Name for the `org.opencontainers.image.base.name` label.
    pub name: String,
    /// The tag to use for `{base_tag}`.
    pub tag: String,
    /// Digest of the top-level manifest or index, when the source has one.
    pub digest: Option<Digest>,
    /// Media type family of its manifests.
    pub family: MediaFamily,
    /// Whether it was a multi-platform index.
    pub multi_platform: bool,
    /// Its images, in index order, attestations removed.
    pub images: Vec<BaseImage>,
    _keep: Option<crate::files::TempDir>,
}

impl Base {
    /// Keeps `dir` alive as long as the base (its blobs live there).
    pub(crate) fn keep(&mut self, dir: crate::files::TempDir) {
        self._keep = Some(dir);
    }
    /// Keeps only the platforms `filter` selects (all when empty).
    pub fn select_platforms(&mut self, filter: &[Platform]) -> Result<()> {
        if filter.is_empty() {
            return Ok(());
        }
        let available: Vec<String> = self.images.iter().map(|i| i.platform.to_string()).collect();
        self.images.retain(|i| filter.iter().any(|f| i.platform.matches(f)));
        if self.images.is_empty() {
            let asked: Vec<String> = filter.iter().map(|p| p.to_string()).collect();
            return Err(Error::usage(format!(
                "{}: has no platform {} (it has {})",
                self.location,
                asked.join(", "),
                available.join(", ")
            )));
        }
        Ok(())
    }
}

/// How registry destinations (`--push`, `--to docker://…`) are reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Via {
    /// Directly over the registry API (the default).
    #[default]
    Registry,
    /// Through the Docker daemon: load the image into it, tag and
    /// `docker push`, so the daemon's mirrors, proxies and credentials apply.
    Docker,
}

/// The connections of one run: registries (one client per host, made on
/// first use) and the Docker daemon (connected on first use).
pub struct Connections {
    /// Every registry of the run.
    pub registries: Arc<Registries>,
    daemon: std::sync::OnceLock<daemon::Daemon>,
}

impl Connections {
    /// Connections with these registry settings; nothing is connected yet.
    pub fn new(registry: registry::Options) -> Self {
        Connections { registries: Registries::new(registry), daemon: std::sync::OnceLock::new() }
    }

    /// The Docker daemon, connected on first use.
    pub fn daemon(&self) -> Result<&daemon::Daemon> {
        if let Some(d) = self.daemon.get() {
            return Ok(d);
        }
        let d = daemon::Daemon::connect()?;
        Ok(self.daemon.get_or_init(|| d))
    }
}

/// What a destination is opened with, besides its location.
pub struct Opening<'a> {
    /// The run's connections.
    pub connections: &'a Connections,
    /// The digest cache (an OCI layout keeps blob digests in it).
    pub cache: &'a Arc<crate::cache::Cache>,
    /// How registry destinations are reached.
    pub via: Via,
    /// `--force`: move a content tag that names different content.
    pub force: bool,
    /// `--platform`: which platform a one-platform destination keeps.
    pub platforms: &'a [Platform],
    /// The repository naming images that have no name of their own (in a docker archive).
    pub repository: Option<Reference>,
    /// Daemon images that may share the base's layers.
    pub daemon_hints: &'a [String],
    /// What the destination answered early ([`Transport::ask_early`]), if it was asked.
    pub early: Option<destination::Early>,
}

/// What the rest of wso2img asks of an image location; each transport
/// answers for its own locations ([`of`] picks the transport).
pub trait Transport {
    /// Reads it as a base; relative paths are resolved against `dir`.
    fn open_base(&self, dir: &Path, connections: &Connections) -> Result<Base>;
    /// Checks it as a destination, before any work is done.
    fn check_output(&self) -> Result<()>;
    /// Opens it as a destination.
    fn open_destination(&self, opening: &Opening<'_>) -> Result<Box<dyn Destination>>;
    /// Whether it is reached through the Docker daemon when written with `via`.
    fn through_daemon(&self, _via: Via) -> bool {
        false
    }
    /// The tag it gives the main image (`oci:DIR:TAG`, `docker://REPO:TAG`, …).
    fn own_tag(&self) -> Option<String> {
        None
    }
    /// The registry reference it names (registries only): where signatures
    /// and attestations of what is written there live.
    fn registry_reference(&self) -> Option<Reference> {
        None
    }
    /// The registry host it is in, when that registry counts as public
    /// (Docker Hub under any name, or one of `extra`).
    fn public_registry(&self, _extra: &[String]) -> Option<String> {
        None
    }
    /// The image the Docker daemon would pull for it (`--pull`): daemon images only.
    fn daemon_image(&self) -> Option<Reference> {
        None
    }
    /// The names an image written here with `tags` gets (`HOST/REPO:TAG`,
    /// `oci:DIR:TAG`, …); `None`: the location itself names it.
    fn names(&self, _tags: &[String]) -> Option<Vec<String>> {
        None
    }
    /// Whether writing to it writes standard output (`docker-archive:-`).
    fn writes_stdout(&self) -> bool {
        false
    }
    /// The digest its image is stored under when the base read from it has
    /// none (a `docker save` archive's OCI index names one).
    fn stored_digest(&self) -> Result<Option<Digest>> {
        Ok(None)
    }
    /// Asks, before anything is built, whether it certainly holds no image
    /// yet and what the image its tag names holds (`None`: not a question
    /// it answers early).
    fn ask_early(&self, _connections: &Connections, _via: Via) -> Option<destination::Early> {
        None
    }
}

/// The transport of `location`: the one place that tells locations apart.
pub fn of(location: &Location) -> Box<dyn Transport + '_> {
    match location {
        Location::Oci { dir, tag } => Box::new(oci::Layout { location, dir, tag: tag.as_deref() }),
        Location::DockerArchive { path, reference } => {
            Box::new(archive::Archive { location, path, reference: reference.as_ref() })
        }
        Location::Registry(r) => Box::new(registry::Repository { location, reference: r }),
        Location::Daemon(r) => Box::new(daemon::DaemonImage { location, reference: r }),
        Location::Builtin(name) => Box::new(builtin::Sample { location, name }),
    }
}

/// Opens the base image at `location`. Relative paths are resolved against
/// `dir`; registries and the daemon are reached through `connections`.
pub fn open_base(location: &Location, dir: &Path, connections: &Connections) -> Result<Base> {
    of(location).open_base(dir, connections)
}

/// `p` made absolute against `dir` when relative.
pub fn resolve(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// Parses a base config and pairs its diff_ids with the layer blobs.
pub(crate) fn base_image(
    what: &str,
    manifest_digest: Option<Digest>,
    config: Vec<u8>,
    layers: Vec<Blob>,
    platform: Option<Platform>,
) -> Result<BaseImage> {
    let config_json: Value = serde_json::from_slice(&config)
        .map_err(|e| Error::source(format!("{what}: image config is not valid JSON: {e}")))?;
    let diff_ids: Vec<Digest> = config_json["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| Error::source(format!("{what}: image config has no rootfs.diff_ids")))?
        .iter()
        .map(|v| v.as_str().unwrap_or("").parse::<Digest>())
        .collect::<Result<_>>()
        .map_err(|e| e.context(what))?;
    if diff_ids.len() != layers.len() {
        return Err(Error::source(format!(
            "{what}: manifest has {} layers but the config lists {} diff_ids",
            layers.len(),
            diff_ids.len()
        )));
    }
    let platform = platform.unwrap_or_else(|| Platform::from_config(&config_json));
    let layers = diff_ids.into_iter().zip(layers).map(|(diff_id, blob)| BaseLayer { diff_id, blob }).collect();
    Ok(BaseImage { platform, manifest_digest, config, config_json, layers })
}

/// Reads a small blob (manifest, config) and verifies its digest.
pub(crate) fn read_verified(blob: &Blob, what: &str) -> Result<Vec<u8>> {
    const MAX: u64 = 16 << 20;
    if blob.desc.size > MAX {
        return Err(Error::source(format!(
            "{what}: {} is {} bytes, too large for a manifest or config",
            blob.desc.digest, blob.desc.size
        )));
    }
    let bytes = blob
        .read_all()
        .map_err(|e| Error::source(format!("{what}: cannot read {}: {}", blob.origin(), io_reason(&e))))?;
    let got = Digest::of(&bytes);
    if got != blob.desc.digest {
        return Err(Error::source(format!("{what}: {} has digest {got}; the blob is corrupt", blob.desc.digest)));
    }
    Ok(bytes)
}

/// A base image's filesystem, read from its layers on demand.
pub struct LayerFs<'a>(pub &'a BaseImage);

impl crate::wso2::BaseFs for LayerFs<'_> {
    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        read_base_file(self.0, path)
    }
    fn list_dir(&mut self, dir: &str) -> Result<Vec<String>> {
        list_base_dir(self.0, dir)
    }
    fn dirs_under(&mut self, roots: &[String], exact: &[String]) -> Result<Vec<crate::wso2::BaseDir>> {
        list_base_dirs_under(self.0, roots, exact)
    }
    fn files_under(&mut self, roots: &[String], into: &Path) -> Result<Vec<crate::wso2::BaseFile>> {
        copy_base_files_under(self.0, roots, into)
    }
}

/// Copies every regular file at or below each of `roots` (relative paths) in
/// the base's filesystem into new files in `into`, in one pass over the
/// layers, bottom up; an upper layer's file replaces a lower one's, whiteouts
/// and opaque markers remove what they hide. At most 1 GiB in all.
pub fn copy_base_files_under(image: &BaseImage, roots: &[String], into: &Path) -> Result<Vec<crate::wso2::BaseFile>> {
    const MAX_TOTAL: u64 = 1 << 30;
    let roots: Vec<String> = roots.iter().map(|r| r.trim_matches('/').to_string()).collect();
    let under = |p: &str| roots.iter().any(|r| p == r || p.starts_with(&format!("{r}/")));
    let mut files: std::collections::BTreeMap<String, crate::wso2::BaseFile> = std::collections::BTreeMap::new();
    let mut total = 0u64;
    for (li, layer) in image.layers.iter().enumerate() {
        let (what, mut ar) = layer_archive(layer)?;
        let entries = ar.entries().map_err(|e| Error::source(format!("{what}: {}", io_reason(&e))))?;
        let mut added = std::collections::BTreeSet::new();
        for (ei, entry) in entries.enumerate() {
            let mut entry = entry.map_err(|e| Error::source(format!("{what}: not a valid tar ({})", io_reason(&e))))?;
            let p = entry_path(&entry, &what)?;
            if let Some(w) = Whiteout::of(&p) {
                files.retain(|k, _| !w.hides(k, &added));
                continue;
            }
            if !under(&p) {
                continue;
            }
            let header = entry.header();
            if !header.entry_type().is_file() {
                files.remove(&p);
                continue;
            }
            let mode = header.mode().unwrap_or(0o644) & 0o7777;
            let owner = crate::layer::Owner {
                uid: header.uid().ok().and_then(|u| u32::try_from(u).ok()).unwrap_or(0),
                gid: header.gid().ok().and_then(|g| u32::try_from(g).ok()).unwrap_or(0),
            };
            let size = entry.size();
            total += size;
            if total > MAX_TOTAL {
                return Err(Error::source(format!(
                    "{what}: more than 1 GiB of files below {}; too much to re-add for arbitrary_uid",
                    roots.join(", ")
                )));
            }
            let local = into.join(format!("{li}-{ei}"));
            let mut out = std::fs::File::create(&local).map_err(|e| Error::io("writing", &local, e))?;
            std::io::copy(&mut entry, &mut out)
                .map_err(|e| Error::source(format!("{what}: /{p}: {}", io_reason(&e))))?;
            added.insert(p.clone());
            files.insert(p.clone(), crate::wso2::BaseFile { path: p, local, size, mode, owner });
        }
    }
    Ok(files.into_values().collect())
}

/// A base layer opened as a tar archive (gunzipped unless stored plain), and
/// how to name it in messages.
fn layer_archive(layer: &BaseLayer) -> Result<(String, tar::Archive<Box<dyn Read>>)> {
    let what = format!("base layer {}", layer.blob.desc.digest);
    let raw = layer.blob.open().map_err(|e| Error::source(format!("{what}: {}", io_reason(&e))))?;
    let reader: Box<dyn Read> = if layer.is_plain_tar() { raw } else { Box::new(flate2::read::GzDecoder::new(raw)) };
    Ok((what, tar::Archive::new(Box::new(crate::bounded::TarGuard::new(reader)))))
}

/// An entry's path without a leading `./` or `/` or a trailing `/`.
fn entry_path<R: Read>(entry: &tar::Entry<'_, R>, what: &str) -> Result<String> {
    let p = entry.path().map_err(|e| Error::source(format!("{what}: {}", io_reason(&e))))?;
    Ok(p.to_string_lossy().trim_start_matches("./").trim_start_matches('/').trim_end_matches('/').to_string())
}

/// A whiteout entry of a layer, and what it hides of the lower layers.
enum Whiteout {
    /// `DIR/.wh..wh..opq`: everything lower layers had below `DIR/` (the prefix).
    Opaque(String),
    /// `DIR/.wh.NAME`: `DIR/NAME` and everything below it.
    Gone(String),
}

impl Whiteout {
    /// The whiteout entry at path `p`, if it is one.
    fn of(p: &str) -> Option<Whiteout> {
        let (parent, name) = p.rsplit_once('/').unwrap_or(("", p));
        if name == ".wh..wh..opq" {
            return Some(Whiteout::Opaque(format!("{parent}/")));
        }
        let gone = name.strip_prefix(".wh.")?;
        Some(Whiteout::Gone(if parent.is_empty() { gone.to_string() } else { format!("{parent}/{gone}") }))
    }

    /// Whether it hides `path`, given the paths its own layer added so far.
    fn hides(&self, path: &str, this_layer: &std::collections::BTreeSet<String>) -> bool {
        match self {
            Whiteout::Opaque(prefix) => path.starts_with(prefix.as_str()) && !this_layer.contains(path),
            Whiteout::Gone(gone) => {
                path == gone || path.strip_prefix(gone.as_str()).is_some_and(|r| r.starts_with('/'))
            }
        }
    }
}

/// The names in folder `dir` (relative, e.g. `home/wso2carbon`) of the base's
/// filesystem: every layer's headers are streamed, bottom up, honouring whiteouts.
pub fn list_base_dir(image: &BaseImage, dir: &str) -> Result<Vec<String>> {
    let dir = dir.trim_matches('/');
    let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    let mut names = std::collections::BTreeSet::new();
    for layer in &image.layers {
        let (what, mut ar) = layer_archive(layer)?;
        let entries = ar.entries().map_err(|e| Error::source(format!("{what}: {}", io_reason(&e))))?;
        let mut added = std::collections::BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::source(format!("{what}: not a valid tar ({})", io_reason(&e))))?;
            let p = entry_path(&entry, &what)?;
            let Some(rest) = p.strip_prefix(&prefix) else { continue };
            let child = rest.split('/').next().unwrap_or("");
            if child.is_empty() {
                continue;
            }
            if child == ".wh..wh..opq" {
                names.retain(|n| added.contains(n));
            } else if let Some(gone) = child.strip_prefix(".wh.") {
                names.remove(gone);
            } else {
                names.insert(child.to_string());
                added.insert(child.to_string());
                if names.len().max(added.len()) > crate::bounded::DIR_ENTRIES_MAX {
                    return Err(Error::source(format!(
                        "{what}: /{dir} has more than {} entries; refusing this base",
                        crate::bounded::DIR_ENTRIES_MAX
                    )));
                }
            }
        }
    }
    Ok(names.into_iter().collect())
}

/// Every folder at or below each of `roots`, and each folder of `exact`
/// (relative, e.g. `home/wso2carbon/wso2am-4.5.0/tmp`) in the base's
/// filesystem, in one pass over the layers, bottom up: folder entries and the
/// parents of other entries count, an upper layer's entry giving the mode and
/// owner; a whiteout removes a folder and everything below it, an opaque
/// marker what lower layers had below its folder.
pub fn list_base_dirs_under(
    image: &BaseImage,
    roots: &[String],
    exact: &[String],
) -> Result<Vec<crate::wso2::BaseDir>> {
    let roots: Vec<String> = roots.iter().map(|r| r.trim_matches('/').to_string()).collect();
    let below: Vec<String> = roots.iter().map(|r| format!("{r}/")).collect();
    let exact: std::collections::BTreeSet<String> = exact.iter().map(|e| e.trim_matches('/').to_string()).collect();
    let wanted =
        |p: &str| roots.iter().zip(&below).any(|(r, b)| p == r || p.starts_with(b.as_str())) || exact.contains(p);
    let mut dirs: std::collections::BTreeMap<String, Option<(u32, crate::layer::Owner)>> =
        std::collections::BTreeMap::new();
    for layer in &image.layers {
        let (what, mut ar) = layer_archive(layer)?;
        let entries = ar.entries().map_err(|e| Error::source(format!("{what}: {}", io_reason(&e))))?;
        let mut added = std::collections::BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::source(format!("{what}: not a valid tar ({})", io_reason(&e))))?;
            let p = entry_path(&entry, &what)?;
            if let Some(w) = Whiteout::of(&p) {
                dirs.retain(|d, _| !w.hides(d, &added));
                continue;
            }
            let header = entry.header();
            let is_dir = header.entry_type().is_dir();
            if is_dir && wanted(&p) {
                let meta = (|| {
                    let owner = crate::layer::Owner {
                        uid: u32::try_from(header.uid().ok()?).ok()?,
                        gid: u32::try_from(header.gid().ok()?).ok()?,
                    };
                    Some((header.mode().ok()? & 0o7777, owner))
                })();
                dirs.insert(p.clone(), meta);
                added.insert(p.clone());
            }
            let mut d = p.rsplit_once('/').map_or("", |(parent, _)| parent);
            while !d.is_empty() {
                if wanted(d) && !dirs.contains_key(d) {
                    dirs.insert(d.to_string(), None);
                    added.insert(d.to_string());
                }
                d = d.rsplit_once('/').map(|(a, _)| a).unwrap_or("");
            }
        }
    }
    Ok(dirs.into_iter().map(|(path, meta)| crate::wso2::BaseDir { path, meta }).collect())
}

/// Reads the file at `path` (relative, e.g. `etc/passwd`) from the base's
/// filesystem: layers are scanned top-down, headers streamed, and only the
/// matching entry's bytes read, at most [`crate::bounded::BASE_FILE_MAX`].
/// Whiteouts are honoured.
pub fn read_base_file(image: &BaseImage, path: &str) -> Result<Option<Vec<u8>>> {
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (d.to_string(), n.to_string()),
        None => (String::new(), path.to_string()),
    };
    let whiteout = if dir.is_empty() { format!(".wh.{name}") } else { format!("{dir}/.wh.{name}") };
    for layer in image.layers.iter().rev() {
        let (what, mut ar) = layer_archive(layer)?;
        let entries = ar.entries().map_err(|e| Error::source(format!("{what}: {}", io_reason(&e))))?;
        let mut hidden = false;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::source(format!("{what}: not a valid tar ({})", io_reason(&e))))?;
            let p = entry_path(&entry, &what)?;
            if p == path && entry.header().entry_type().is_file() {
                let buf = crate::bounded::read_to_end_max(&mut entry, crate::bounded::BASE_FILE_MAX).map_err(|e| {
                    Error::source(format!("{what}: reading /{path}: {}; refusing this base", io_reason(&e)))
                })?;
                return Ok(Some(buf));
            }
            if p == whiteout || (!dir.is_empty() && p == format!("{dir}/.wh..wh..opq")) {
                hidden = true;
            }
        }
        if hidden {
            return Ok(None);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_hide_what_they_name() {
        let none = std::collections::BTreeSet::new();
        let gone = Whiteout::of("a/b/.wh.c").unwrap();
        assert!(gone.hides("a/b/c", &none) && gone.hides("a/b/c/d", &none));
        assert!(!gone.hides("a/b/cd", &none) && !gone.hides("a/b", &none));
        let opaque = Whiteout::of("a/b/.wh..wh..opq").unwrap();
        let this_layer = std::collections::BTreeSet::from(["a/b/new".to_string()]);
        assert!(opaque.hides("a/b/old", &this_layer) && !opaque.hides("a/b/new", &this_layer));
        assert!(!opaque.hides("a/bc", &this_layer));
        assert!(Whiteout::of("a/b/c").is_none());
    }
    use crate::wso2::sample::SampleBase;

    #[test]
    fn lists_folders_and_reads_files_from_base_layers() {
        let dir = tempfile::tempdir().unwrap();
        let set = SampleBase::v410().image_set().unwrap();
        oci::LayoutDestination::new(dir.path(), None).write_verbatim(&["4.1.0".to_string()], &set).unwrap();
        let loc: Location = format!("oci:{}:4.1.0", dir.path().display()).parse().unwrap();
        let base = open_base(&loc, Path::new("."), &Connections::new(Default::default())).unwrap();
        let img = &base.images[0];
        let names = list_base_dir(img, "/home/wso2carbon/").unwrap();
        assert!(names.contains(&"wso2am-4.1.0".to_string()) && names.contains(&"solr".to_string()), "{names:?}");
        let passwd = read_base_file(img, "etc/passwd").unwrap().unwrap();
        assert!(String::from_utf8(passwd).unwrap().contains("wso2carbon:x:802:802"));
        assert!(read_base_file(img, "etc/shadow").unwrap().is_none());
        let home = "home/wso2carbon/wso2am-4.1.0";
        let found = list_base_dirs_under(
            img,
            &[format!("{home}/repository/deployment/"), "nope".into()],
            &["home/wso2carbon".into(), "home".into(), "home/none".into()],
        )
        .unwrap();
        let meta = |p: &str| found.iter().find(|d| d.path == p).map(|d| d.meta);
        let owner = crate::layer::Owner { uid: 802, gid: 802 };
        assert_eq!(meta("home/wso2carbon"), Some(Some((0o755, owner))), "an entry's mode and owner");
        assert_eq!(meta("home"), Some(Some((0o755, crate::layer::Owner { uid: 0, gid: 0 }))));
        assert_eq!(meta("home/none"), None, "a folder the base lacks");
        let dirs: Vec<String> = found
            .iter()
            .map(|d| d.path.clone())
            .filter(|d| !["home", "home/wso2carbon"].contains(&d.as_str()))
            .collect();
        assert_eq!(dirs.first().map(String::as_str), Some("home/wso2carbon/wso2am-4.1.0/repository/deployment"));
        assert!(dirs.contains(&format!("{home}/repository/deployment/server/jaggeryapps/devportal/site/public/theme")));
        assert!(dirs.iter().all(|d| d.starts_with(&format!("{home}/repository/deployment"))), "{dirs:?}");
    }
}
