//! wso2img builds customized WSO2 API Manager container images: it reads one
//! `wso2img.toml`, takes a base image, lays the customer's jars, themes,
//! overlays and (optionally) keystores on top as deterministic layers, and
//! writes the result — the same bytes on every machine.
//!
//! Modules, from the outside in:
//! - [`config`]: the `wso2img.toml` file.
//! - [`mod@reference`]: image references and transport-prefixed locations.
//! - [`pipeline`]: plan and build, from config to written images;
//!   [`inspect`]: reading results back.
//! - [`wso2`]: what wso2img knows about WSO2 API Manager images.
//! - [`layer`]: deterministic tar layers and parallel gzip.
//! - [`image`]: the image model, canonical JSON and pure mutations.
//! - [`transport`]: every place images are read from and written to, side by
//!   side — OCI layouts, `docker save` archives, registries, the Docker
//!   daemon, built-in samples — and the [`transport::Destination`] they share.
//! - [`inputs`]: ignore rules and Maven jars; [`check`]: configuration files
//!   checked before they ship.
//! - [`net`]: the one network stack (HTTP clients with CAs, proxies and
//!   timeouts, the retry policy, the I/O runtime) under registries, Maven
//!   and the Docker daemon.
//! - [`lock`]: `wso2img.lock`; [`init`]: scaffolding a new project;
//!   [`sbom`]: the CycloneDX SBOM; [`sign`]: signatures, attestations and
//!   base verification (cosign's formats).
//! - Below everything: [`error`], [`digest`], [`cache`] (the warm cache of
//!   file digests, keyed by `stat`), [`files`] (safe writes,
//!   temporary files), [`fmt`] (text for people), [`progress`], [`bounded`]
//!   and [`sanitize`] (limits on what hostile inputs may cost; escaping and
//!   checking of text that came from outside).
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod bounded;
pub mod cache;
pub mod check;
pub mod config;
pub mod coordinates;
pub mod digest;
pub mod error;
pub mod files;
pub mod fmt;
pub mod image;
pub mod init;
pub mod inputs;
pub mod inspect;
pub mod layer;
pub mod lock;
pub mod net;
pub mod pipeline;
pub mod progress;
// Test-only: its allocator wrapper measures the largest allocation (the only `unsafe` in the crate).
#[cfg(test)]
#[allow(unsafe_code)]
mod proptests;
pub mod reference;
pub mod sanitize;
pub mod sbom;
pub mod sign;
pub mod transport;
pub mod wso2;

pub use error::{Error, Result};
