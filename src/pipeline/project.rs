//! The first stage: the project as the command line and `wso2img.toml`
//! describe it — the config, the base's location, the destinations (each
//! checked before any work) and the key that verifies the bases.

use std::path::{Path, PathBuf};

use super::{Options, DEFAULT_OUTPUT};
use crate::config::{expand_tag, Config, TagValues};
use crate::error::{Error, Kind, Result};
use crate::reference::{Location, Reference};
use crate::sign::PublicKey;
use crate::transport;

/// A project, loaded and checked.
pub(super) struct Project {
    /// `wso2img.toml`.
    pub(super) config: Config,
    /// Where the main base is read from, and what its relative paths are relative to.
    pub(super) base: Location,
    pub(super) base_dir: PathBuf,
    /// The destinations (`--to`, plus `[target] repository` with `--push`; the
    /// default OCI layout when none).
    pub(super) outputs: Vec<Location>,
    /// The key that verifies every base, and how to name it.
    pub(super) base_key: Option<(PublicKey, String)>,
}

impl Project {
    /// Whether `out` is a registry the config (or wso2img) counts as public.
    pub(super) fn is_public(&self, out: &Location) -> bool {
        self.public_registry(out).is_some()
    }

    /// The registry host of `out`, when the config (or wso2img) counts it as public.
    pub(super) fn public_registry(&self, out: &Location) -> Option<String> {
        transport::of(out).public_registry(&self.config.target.public_registries)
    }
}

/// Loads the config and checks everything the command line and the config
/// say before any file is walked or any base read.
pub(super) fn load(opts: &Options) -> Result<Project> {
    let config = Config::load(&opts.config)?;
    let (base, base_dir) = config.base_location(opts.base.as_ref())?;
    check_templates(&config)?;
    let outputs = resolve_outputs(opts, &config)?;
    check_sign_outputs(opts, &outputs)?;
    check_paths(opts, &config, &base, &base_dir, &outputs)?;
    let base_key = base_key(opts, &config)?;
    if opts.pull && transport::of(&base).daemon_image().is_none() {
        return Err(Error::usage(format!("--pull: applies to a docker-daemon: base; {base} is read directly")));
    }
    Ok(Project { config, base, base_dir, outputs, base_key })
}

/// Every tag template expanded with stand-in values, so a bad one is
/// refused before any work.
fn check_templates(config: &Config) -> Result<()> {
    let hex = "0".repeat(64);
    let v = TagValues {
        base_tag: "latest",
        digest_hex: &hex,
        version: Some("4.3.0"),
        variant: Some("v"),
        kind: Some("gateway"),
    };
    let templates = std::iter::once(&config.target.tag)
        .chain(&config.target.extra_tags)
        .chain(config.variants.iter().filter_map(|v| v.tag.as_ref()));
    for t in templates {
        expand_tag(t, &v).map_err(|e| e.context(config.path.display()))?;
    }
    Ok(())
}

/// The destinations (`--to`, plus `[target] repository` with `--push`),
/// each checked before any work; output files named by flags too.
fn resolve_outputs(opts: &Options, config: &Config) -> Result<Vec<Location>> {
    let mut outputs = opts.outputs.clone();
    if opts.push {
        let repo = config.target.repository.as_ref().ok_or_else(|| {
            Error::usage(format!(
                "--push: set [target] repository in {} or use --to docker://HOST/REPO",
                config.path.display()
            ))
        })?;
        outputs.push(Reference::parse(repo)?.into());
    }
    if outputs.is_empty() {
        outputs.push(Location::oci(config.dir.join(DEFAULT_OUTPUT)));
    }
    let inputs = config.input_dirs();
    for out in &outputs {
        transport::of(out).check_output()?;
        if let Some(path) = out.local_path() {
            refuse_inside_inputs(path, &out.to_string(), &inputs)?;
        }
    }
    if let Some(sbom) = &opts.sbom {
        crate::files::check_output(sbom, "--sbom")?;
        refuse_inside_inputs(sbom, &format!("--sbom {}", sbom.display()), &inputs)?;
    }
    Ok(outputs)
}

/// Refuses an output at or below one of the customer folders: each rebuild
/// would pack the previous output into the image.
pub(super) fn refuse_inside_inputs(path: &Path, shown: &str, inputs: &[PathBuf]) -> Result<()> {
    let out = absolute(path);
    for dir in inputs {
        let dir = absolute(dir);
        if out.starts_with(&dir) {
            return Err(Error::usage(format!(
                "{shown}: is inside the input folder {}; each build would pack its own output — write it elsewhere",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// `p` made absolute and resolved as far as it exists.
fn absolute(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) };
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
    let mut out = existing.canonicalize().unwrap_or_else(|_| existing.to_path_buf());
    for name in rest.iter().rev() {
        out.push(name);
    }
    out
}

/// Refuses, before anything is written, an output that would overwrite an
/// input or another output: every file or folder written (`--to` paths,
/// `--sbom`, `--digest-file`, `--metadata-file`) against the config, the
/// lock, the base, the customer folders, the key files and each other; and a
/// key file inside a customer folder (it would ship in the image). Paths are
/// compared canonicalized (a file that does not exist yet by its parent).
fn check_paths(opts: &Options, config: &Config, base: &Location, base_dir: &Path, outputs: &[Location]) -> Result<()> {
    let mut written: Vec<(String, PathBuf)> = Vec::new();
    for o in outputs {
        if let Some(p) = o.local_path() {
            written.push((o.to_string(), p.to_path_buf()));
        }
    }
    if let Some(p) = &opts.sbom {
        written.push((format!("--sbom {}", p.display()), p.clone()));
    }
    written.extend(opts.output_files.iter().cloned());
    written.retain(|(_, p)| matches!(crate::files::Target::of(p), crate::files::Target::Replace(_)));
    let written: Vec<(String, PathBuf)> = written.into_iter().map(|(s, p)| (s, absolute(&p))).collect();
    let mut keys: Vec<(String, PathBuf)> = Vec::new();
    if let Some(p) = &opts.sign_key_file {
        keys.push((format!("--sign-key {}", p.display()), p.clone()));
    }
    if let Some(p) = &opts.verify_base_key {
        keys.push((format!("--verify-base-key {}", p.display()), p.clone()));
    } else if let Some(rel) = &config.base.verify_key {
        keys.push((format!("[base] verify_key {rel}"), config.dir.join(rel)));
    }
    let folders: Vec<PathBuf> = config.input_dirs().iter().map(|d| absolute(d)).collect();
    for (shown, key) in &keys {
        let key = absolute(key);
        if let Some(dir) = folders.iter().find(|d| key.starts_with(d)) {
            return Err(Error::config(format!(
                "{shown}: is inside the customer folder {}, whose files go into the image; keep keys outside the customer folders",
                dir.display()
            )));
        }
    }
    let mut read: Vec<(String, PathBuf, bool)> = vec![
        (format!("the config {}", config.path.display()), absolute(&config.path), false),
        ("the lock".to_string(), absolute(&crate::lock::path_for(&config.path)), false),
    ];
    if let Some(p) = base.local_path() {
        read.push((format!("the base {base}"), absolute(&base_dir.join(p)), true));
    }
    read.extend(keys.into_iter().map(|(s, p)| (s, absolute(&p), false)));
    for (i, (shown, out)) in written.iter().enumerate() {
        if let Some((what, _, _)) = read.iter().find(|(_, p, dir)| out == p || (*dir && out.starts_with(p))) {
            return Err(Error::usage(format!(
                "{shown}: would overwrite {what}, which this build reads; write elsewhere"
            )));
        }
        // An OCI layout holds many images: two `oci:` outputs may share one.
        let layouts = |other: &str| shown.starts_with("oci:") && other.starts_with("oci:");
        if let Some((other, _)) = written[..i]
            .iter()
            .find(|(o, p)| (p == out && !layouts(o)) || (p != out && (out.starts_with(p) || p.starts_with(out))))
        {
            return Err(Error::usage(format!("{shown}: is also written by {other}; give each output its own path")));
        }
    }
    Ok(())
}

/// Refuses `--sign-key` when no destination keeps signatures (a registry).
fn check_sign_outputs(opts: &Options, outputs: &[Location]) -> Result<()> {
    if opts.sign_key.is_some() && !outputs.iter().any(|o| transport::of(o).registry_reference().is_some()) {
        return Err(Error::usage(
            "--sign-key: signatures live in a registry; add --push or a --to docker://HOST/REPO destination",
        ));
    }
    Ok(())
}

/// The key that verifies the bases: `--verify-base-key`, else `[base] verify_key`.
fn base_key(opts: &Options, config: &Config) -> Result<Option<(PublicKey, String)>> {
    if let Some(path) = &opts.verify_base_key {
        let shown = format!("--verify-base-key {}", path.display());
        return Ok(Some((PublicKey::load(path, &shown, Kind::Usage)?, shown)));
    }
    let Some(rel) = &config.base.verify_key else { return Ok(None) };
    let path = config.dir.join(rel);
    let shown = format!("{}: [base] verify_key {}", config.path.display(), path.display());
    Ok(Some((PublicKey::load(&path, &shown, Kind::Config)?, shown)))
}
