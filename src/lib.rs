//! wso2img builds customized WSO2 API Manager container images: it reads one
//! `wso2img.toml`, takes a base image, lays the customer's jars, themes,
//! overlays and (optionally) keystores on top as deterministic layers, and
//! writes the result — the same bytes on every machine.
//!
//! Modules, from the outside in:
//! - [`config`]: the `wso2img.toml` file.
//! - [`reference`]: image references and transport-prefixed locations.
//! - [`build`]: the plan/build pipeline; [`inspect`]: reading results back.
//! - [`wso2`]: what wso2img knows about WSO2 API Manager images.
//! - [`layer`]: deterministic tar layers and parallel gzip.
//! - [`image`]: the image model, canonical JSON and pure mutations.
//! - [`transport`]: OCI layouts, `docker save` archives, built-in samples;
//!   [`registry`]: the registry API; [`daemon`]: the Docker Engine API.
//! - [`sample`]: the small WSO2-like bases used by `builtin:` and the tests.
//! - [`lock`]: `wso2img.lock`; [`init`]: scaffolding a new project.
//! - [`bounded`] and [`sanitize`]: limits on what hostile inputs may cost, and
//!   escaping and checking of text that came from outside.
#![deny(missing_docs)]

pub mod bounded;
pub mod build;
pub mod config;
pub mod daemon;
pub mod digest;
pub mod error;
pub mod image;
pub mod init;
pub mod inspect;
pub mod layer;
pub mod lock;
pub mod progress;
#[cfg(test)]
mod proptests;
pub mod reference;
pub mod registry;
pub mod sample;
pub mod sanitize;
pub mod sbom;
pub mod transport;
pub mod wso2;

pub use error::{Error, Result};
