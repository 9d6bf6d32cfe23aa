//! Supply chain: signing what is pushed, attesting how it was built, and
//! verifying a signed base — in the formats cosign and containers/image
//! (skopeo, podman, CRI-O policies) both read for key-based signing.
//!
//! - [`key`]: ECDSA P-256/P-384/P-521, RSA and Ed25519 keys (PKCS#8, SEC1,
//!   PKCS#1 PEM, cosign's encrypted PEM).
//! - [`mod@format`]: the simple-signing payload, DSSE envelopes, in-toto statements.
//! - [`provenance`]: the SLSA provenance v1 predicate of a build.
//! - [`attach`]: the registry side — cosign's `.sig`/`.att` tag schema,
//!   OCI 1.1 referrers, listing and verifying.
//!
//! Signatures are not part of an image: signing never changes a digest.

pub mod attach;
pub mod format;
pub mod key;
pub mod provenance;

pub use key::{PublicKey, SigningKey};

/// Predicate type of a CycloneDX SBOM attestation (`cosign attest --type cyclonedx`).
pub const CYCLONEDX_PREDICATE: &str = "https://cyclonedx.org/bom";
/// Predicate type of a SLSA provenance v1 attestation.
pub const SLSA_PREDICATE: &str = "https://slsa.dev/provenance/v1";

/// What signatures say made them: `wso2img <version>`.
pub fn creator() -> String {
    format!("wso2img {}", env!("CARGO_PKG_VERSION"))
}
