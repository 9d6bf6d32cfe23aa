//! The image model shared by every transport: descriptors, platforms, media
//! types, and blobs that know where their bytes are.
//!
//! Raw bytes are the source of truth: a manifest or config is kept as the exact
//! bytes that were read or will be written, and its digest is computed over
//! those bytes.

pub mod json;
pub mod mutate;
pub mod spec;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// OCI and Docker media types.
pub mod media {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI gzip layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI uncompressed layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker uncompressed layer (only in `docker save` archives).
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// Docker foreign (non-distributable) gzip layer.
    pub const DOCKER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// OCI non-distributable gzip layer.
    pub const OCI_NONDISTRIBUTABLE_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
}

/// Which family of media types an image uses; a result never mixes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaFamily {
    /// Docker image manifest v2, schema 2.
    Docker,
    /// OCI image spec.
    Oci,
}

impl MediaFamily {
    /// The family a manifest or index media type belongs to.
    pub fn of(media_type: &str) -> Option<Self> {
        match media_type {
            media::DOCKER_MANIFEST | media::DOCKER_LIST => Some(MediaFamily::Docker),
            media::OCI_MANIFEST | media::OCI_INDEX => Some(MediaFamily::Oci),
            _ => None,
        }
    }
    /// Manifest media type.
    pub fn manifest(self) -> &'static str {
        match self {
            MediaFamily::Docker => media::DOCKER_MANIFEST,
            MediaFamily::Oci => media::OCI_MANIFEST,
        }
    }
    /// Index (manifest list) media type.
    pub fn index(self) -> &'static str {
        match self {
            MediaFamily::Docker => media::DOCKER_LIST,
            MediaFamily::Oci => media::OCI_INDEX,
        }
    }
    /// Config media type.
    pub fn config(self) -> &'static str {
        match self {
            MediaFamily::Docker => media::DOCKER_CONFIG,
            MediaFamily::Oci => media::OCI_CONFIG,
        }
    }
    /// Gzip layer media type.
    pub fn layer_gzip(self) -> &'static str {
        match self {
            MediaFamily::Docker => media::DOCKER_LAYER_GZIP,
            MediaFamily::Oci => media::OCI_LAYER_GZIP,
        }
    }
    /// A layer media type of either family mapped into this one (unknown
    /// types are kept as they are).
    pub fn layer(self, media_type: &str) -> String {
        const PAIRS: [(&str, &str); 3] = [
            (media::DOCKER_LAYER_GZIP, media::OCI_LAYER_GZIP),
            (media::DOCKER_LAYER_TAR, media::OCI_LAYER_TAR),
            (media::DOCKER_FOREIGN_GZIP, media::OCI_NONDISTRIBUTABLE_GZIP),
        ];
        for (docker, oci) in PAIRS {
            if media_type == docker || media_type == oci {
                return match self {
                    MediaFamily::Docker => docker,
                    MediaFamily::Oci => oci,
                }
                .to_string();
            }
        }
        media_type.to_string()
    }
}

/// Whether a layer media type is gzip-compressed, uncompressed, or unknown.
pub fn layer_is_gzip(media_type: &str) -> Option<bool> {
    match media_type {
        media::OCI_LAYER_GZIP | media::DOCKER_LAYER_GZIP => Some(true),
        media::OCI_LAYER_TAR | media::DOCKER_LAYER_TAR => Some(false),
        _ => None,
    }
}

/// An OS/architecture pair, as in an index entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// e.g. `10.0.17763.1879` (Windows only).
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform::new(os, arch, None)),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform::new(os, arch, Some(v))),
            _ => Err(Error::usage(format!("--platform {s}: expected OS/ARCH[/VARIANT], e.g. linux/amd64"))),
        }
    }
    /// A platform from its parts.
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Self {
        Platform { os: os.into(), architecture: arch.into(), variant: variant.map(Into::into), os_version: None }
    }
    /// The platform described by an image config (`os`, `architecture`, `variant`).
    pub fn from_config(config: &serde_json::Value) -> Self {
        let s = |k: &str| config.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
        Platform {
            os: s("os").unwrap_or("linux").into(),
            architecture: s("architecture").unwrap_or("amd64").into(),
            variant: s("variant").map(Into::into),
            os_version: s("os.version").map(Into::into),
        }
    }
    /// Whether this is an attestation pseudo-platform (`unknown/unknown`).
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }
    /// Whether `filter` (e.g. `linux/arm64`, variant optional) selects this platform.
    pub fn matches(&self, filter: &Platform) -> bool {
        self.os == filter.os
            && self.architecture == filter.architecture
            && (filter.variant.is_none() || self.variant == filter.variant)
    }
    /// The platform of the machine wso2img runs on, in Go's names.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform::new("linux", arch, None)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor: what a manifest or index says about a blob. Read
/// through the OCI spec's own type (see [`spec`]); written as wso2img's
/// canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the exact bytes.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Where else the content may be fetched from (non-distributable layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Platform, in index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The type of an artifact the descriptor points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor with no platform and no annotations.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            platform: None,
            annotations: BTreeMap::new(),
            artifact_type: None,
        }
    }
    /// The descriptor of `bytes`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Self::new(media_type, Digest::of(bytes), bytes.len() as u64)
    }
    /// Whether this index entry is an attestation (BuildKit's provenance and
    /// SBOM entries) rather than an image.
    pub fn is_attestation(&self) -> bool {
        self.platform.as_ref().is_some_and(Platform::is_unknown)
            || self.annotations.contains_key("vnd.docker.reference.type")
    }
}

/// An image manifest (either family), as far as wso2img reads it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// Manifest media type (optional in OCI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type of an artifact manifest (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// Layers, base first.
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations (OCI only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// Index media type (optional in OCI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type of an artifact index (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// One entry per image.
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations (OCI only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A registry repository blobs can be mounted from (a cross-repository
/// mount, within one registry) or streamed from without a local copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSource {
    /// The registry host, as references name it (`registry.example.com:5000`).
    pub registry: String,
    /// The repository in it.
    pub repository: String,
}

/// Blobs that live elsewhere, e.g. in a registry repository.
pub trait RemoteBlobs: Send + Sync {
    /// Opens a blob for reading; the reader fails at the end if the bytes do
    /// not match the descriptor's digest and size.
    fn open(&self, desc: &Descriptor) -> io::Result<Box<dyn Read + Send>>;
    /// Where the blobs are, for messages (`registry/repository`).
    fn describe(&self) -> String;
    /// The registry repository these blobs are in, when they are in one:
    /// a push to that registry can mount them, a push elsewhere stream them.
    fn mount_source(&self) -> Option<MountSource> {
        None
    }
}

/// Where a blob's bytes are.
#[derive(Clone)]
pub enum BlobData {
    /// In a remote repository.
    Remote(Arc<dyn RemoteBlobs>),
    /// In memory (manifests, configs).
    Bytes(Arc<Vec<u8>>),
    /// A byte range of a file (an OCI layout blob, a member of a tar archive,
    /// a staged layer).
    File {
        /// The file.
        path: PathBuf,
        /// Where the blob starts.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// A whole file that wso2img wrote itself (a compressed layer); writers
    /// may hard-link it instead of copying.
    Staged {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// Not here: every destination it goes to said it already holds it, so
    /// its bytes were never made (a customer layer that did not change).
    Held,
}

/// A blob: its descriptor and where to read its bytes.
#[derive(Clone)]
pub struct Blob {
    /// What the blob is.
    pub desc: Descriptor,
    /// Where its bytes are.
    pub data: BlobData,
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} {})", self.desc.media_type, self.desc.digest)
    }
}

impl Blob {
    /// A blob held in memory.
    pub fn bytes(media_type: &str, bytes: Vec<u8>) -> Self {
        Blob { desc: Descriptor::of(media_type, &bytes), data: BlobData::Bytes(Arc::new(bytes)) }
    }
    /// A blob that is a whole file or a range of one.
    pub fn file(desc: Descriptor, path: PathBuf, offset: u64) -> Self {
        let len = desc.size;
        Blob { desc, data: BlobData::File { path, offset, len } }
    }
    /// A file wso2img wrote itself.
    pub fn staged(desc: Descriptor, path: PathBuf) -> Self {
        let len = desc.size;
        Blob { desc, data: BlobData::Staged { path, len } }
    }
    /// The registry repository the blob is in, when it is a remote one there
    /// (see [`RemoteBlobs::mount_source`]).
    pub fn mount_source(&self) -> Option<MountSource> {
        match &self.data {
            BlobData::Remote(r) => r.mount_source(),
            _ => None,
        }
    }
    /// Opens the blob's bytes for reading.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        match &self.data {
            BlobData::Bytes(b) => Ok(Box::new(io::Cursor::new(ArcBytes(b.clone())))),
            BlobData::File { path, offset, len } => {
                let mut f = File::open(path)?;
                f.seek(SeekFrom::Start(*offset))?;
                Ok(Box::new(f.take(*len)))
            }
            BlobData::Staged { path, len } => Ok(Box::new(File::open(path)?.take(*len))),
            BlobData::Remote(r) => r.open(&self.desc),
            BlobData::Held => Err(io::Error::other(format!(
                "{}: not made locally, as the destination held it when the build began; run again",
                self.desc.digest
            ))),
        }
    }
    /// The bytes, for small blobs already in memory; reads files otherwise.
    pub fn read_all(&self) -> io::Result<Vec<u8>> {
        match &self.data {
            BlobData::Bytes(b) => Ok(b.as_ref().clone()),
            BlobData::File { .. } | BlobData::Staged { .. } | BlobData::Remote(_) | BlobData::Held => {
                let mut v = Vec::new();
                self.open()?.read_to_end(&mut v)?;
                Ok(v)
            }
        }
    }
    /// Where the bytes are, for messages.
    pub fn origin(&self) -> String {
        match &self.data {
            BlobData::Bytes(_) => format!("{} (in memory)", self.desc.digest),
            BlobData::File { path, .. } | BlobData::Staged { path, .. } => {
                format!("{} in {}", self.desc.digest, path.display())
            }
            BlobData::Remote(r) => format!("{} in {}", self.desc.digest, r.describe()),
            BlobData::Held => format!("{} (held by the destination)", self.desc.digest),
        }
    }
}

struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// One platform's image, ready to be written: manifest, config and layers,
/// each a blob.
#[derive(Debug, Clone)]
pub struct Image {
    /// The platform.
    pub platform: Platform,
    /// The manifest blob.
    pub manifest: Blob,
    /// The config blob.
    pub config: Blob,
    /// Layer blobs, base first.
    pub layers: Vec<Blob>,
}

/// A complete result: one image, or several under an index.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// Media type family of every manifest, index and config in it.
    pub family: MediaFamily,
    /// The images, in index order.
    pub images: Vec<Image>,
    /// The index blob when there is more than one platform.
    pub index: Option<Blob>,
    /// Blobs the index reaches besides the images' (an attestation's
    /// manifest, config and layer), written before the index.
    pub attachments: Vec<Blob>,
}

impl ImageSet {
    /// The top-level blob: the index, or the single manifest.
    pub fn top(&self) -> &Blob {
        match &self.index {
            Some(i) => i,
            None => &self.images[0].manifest,
        }
    }
    /// Every distinct blob in the set, layers first, then configs, manifests, index:
    /// the order in which a writer must store them.
    pub fn blobs_in_write_order(&self) -> Vec<&Blob> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        let groups = [
            self.images.iter().flat_map(|i| i.layers.iter()).collect::<Vec<_>>(),
            self.images.iter().map(|i| &i.config).collect(),
            self.attachments.iter().collect(),
            self.images.iter().map(|i| &i.manifest).collect(),
            self.index.iter().collect(),
        ];
        for group in groups {
            for b in group {
                if seen.insert(b.desc.digest) {
                    out.push(b);
                }
            }
        }
        out
    }
}
