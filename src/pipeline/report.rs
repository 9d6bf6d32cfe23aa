//! What `plan`, `build` and `check` report: the content digest and tags,
//! the base, each platform and customer layer, each destination written, and
//! each variant — serialized as the `--json` output.

use serde::Serialize;

use crate::digest::Digest;
use crate::image::MediaFamily;
use crate::wso2::Facts;

/// One customer layer in a report.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// Layer kind (`jars`, `themes`, …).
    pub name: String,
    /// Uncompressed digest.
    pub diff_id: Digest,
    /// Files and symlinks in it.
    pub files: usize,
    /// Bytes of file content.
    pub bytes: u64,
    /// Uncompressed tar size.
    pub tar_size: u64,
    /// Compressed digest (build only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Compressed size (build only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// What the layer holds (its history line).
    pub description: String,
}

/// One platform in a report.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformReport {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Digest of the new config (the image ID).
    pub config_digest: Digest,
    /// Digest of the new manifest (build only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<Digest>,
    /// What was detected in the base.
    pub detected: Facts,
    /// Indexes into `layers` of the customer layers of this platform.
    pub layers: Vec<usize>,
    /// The base's truststore with the `[truststore]` certificates merged in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truststore: Option<crate::wso2::truststore::Merged>,
}

/// The base in a report.
#[derive(Debug, Clone, Serialize)]
pub struct BaseReport {
    /// Where it was read from.
    pub location: String,
    /// Its name (the base.name label).
    pub name: String,
    /// Its manifest or index digest, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Docker or OCI media types.
    pub media_types: MediaFamily,
}

/// A destination in a build report.
#[derive(Debug, Clone, Serialize)]
pub struct OutputReport {
    /// The destination, transport-prefixed.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Manifest or index digest written there; for `docker-daemon:` the
    /// image ID; pushed through the daemon, the manifest digest it pushed.
    pub digest: Digest,
    /// `written`, `pushed`, `loaded` (into the Docker daemon) or `up-to-date`
    /// (the registry tag or the daemon already had this content; only tags set).
    pub status: String,
    /// The line `build` prints for it: `HOST/REPO@sha256:…` for a registry
    /// (pullable as it is), else the location with `@digest`
    /// (`oci:DIR:TAG@sha256:…`, `docker-daemon:NAME:TAG@<image ID>`).
    pub pinned: String,
    /// Its signatures (`--sign-key`, registries only): the `.sig` manifest's
    /// digest, the identities signed, how many were added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signatures: Option<crate::sign::attach::Signed>,
    /// Its attestations: predicate type, the `.att` or referrer manifest's
    /// digest, the envelope's digest, whether it was added now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<crate::sign::attach::Attested>,
}

impl OutputReport {
    /// An output without signatures.
    pub fn new(reference: String, digest: Digest, status: &str, pinned: String) -> Self {
        OutputReport { reference, digest, status: status.into(), pinned, signatures: None, attestations: Vec::new() }
    }
}

/// What `plan` and `build` report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `sha256:<hex>`: the config digest (one platform) or the digest of the
    /// sorted (platform, config digest) list.
    pub content_digest: Digest,
    /// The content tag.
    pub tag: String,
    /// Content tag plus extra tags.
    pub tags: Vec<String>,
    /// The base.
    pub base: BaseReport,
    /// Per platform.
    pub platforms: Vec<PlatformReport>,
    /// Customer layers (shared across platforms when equal).
    pub layers: Vec<LayerReport>,
    /// Destinations written (build; empty for plan).
    pub outputs: Vec<OutputReport>,
    /// Blob bytes uploaded to registries (build only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaded_bytes: Option<u64>,
    /// Whether keystores are baked into the image.
    pub keystores_baked: bool,
    /// One image per `[[variant]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantReport>,
    /// Files the ignore rules left out, per rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<IgnoredReport>,
    /// Jars resolved from `[maven]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub maven: Vec<MavenReport>,
}

/// A jar resolved from `[maven]`.
#[derive(Debug, Clone, Serialize)]
pub struct MavenReport {
    /// `group:artifact:version`.
    pub coordinates: String,
    /// Its package URL.
    pub purl: String,
    /// Its sha256, as pinned in the lock.
    pub sha256: Digest,
    /// The layer it joins: `jars` or `dropins`.
    pub layer: String,
}

/// What one ignore rule left out.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoredReport {
    /// The rule: `built-in: .DS_Store`, `jars/.wso2imgignore: *.bak`, `[layers] exclude: *.md`.
    pub rule: String,
    /// Files it left out.
    pub files: usize,
}

/// What `wso2img check` reports.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The base the inputs were checked against.
    pub base: String,
    /// Files that would go into the image (main customization).
    pub files: usize,
    /// Jars among them, Maven jars included.
    pub jars: usize,
    /// Configuration files (`.toml`, `.json`, `.xml`) checked.
    pub config_files: usize,
    /// Files the ignore rules left out, per rule.
    pub ignored: Vec<IgnoredReport>,
    /// Jars resolved from `[maven]`.
    pub maven: Vec<MavenReport>,
    /// Doubts that are not errors.
    pub warnings: Vec<String>,
}

/// A deployment-profile variant in a report.
#[derive(Debug, Clone, Serialize)]
pub struct VariantReport {
    /// The variant's name.
    pub name: String,
    /// The profile it starts in, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Its own base, when it is not the main base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseReport>,
    /// Its content digest.
    pub content_digest: Digest,
    /// Its tag.
    pub tag: String,
    /// Per platform; `layers` index the main report's `layers`.
    pub platforms: Vec<PlatformReport>,
    /// Destinations written (build only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputReport>,
}
