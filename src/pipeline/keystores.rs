//! Whether keystores go into the image: the keystores folder with baking
//! on, or a keystore found elsewhere among the customer's files (refused
//! when baking is off). A folder the digest cache has no answer for is
//! answered once its files are read — by hashing, most often — and baked
//! keystores bound for a public registry are refused before any request
//! reaches it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::inputs::Inputs;
use super::project::Project;
use super::KEYSTORES_LABEL;
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::wso2;
use crate::wso2::keystore::Seen;

/// The keystore questions, answered.
pub(super) struct Settled {
    /// Keystores are baked into the images.
    pub(super) baked: bool,
    /// The labels every image gets (the config's, and the keystore label when baked).
    pub(super) labels: BTreeMap<String, String>,
}

/// Answers the keystore questions of `inputs`: `seen` holds what hashing
/// recognised, `read(walk, folder)` how many of a folder's files and
/// symlinks hashing read (the files of a folder it did not read whole are
/// opened now). Refuses a stray keystore when baking is off, and baked
/// keystores bound for a public registry.
pub(super) fn settle(
    inputs: &mut Inputs,
    project: &Project,
    seen: Option<&Seen>,
    read: &dyn Fn(Option<usize>, usize) -> usize,
    cache: &Cache,
) -> Result<Settled> {
    let questions = inputs.keystores.take().expect("the keystore questions are settled once");
    let found: HashMap<PathBuf, &'static str> = seen.map(Seen::found).unwrap_or_default();
    let walks = inputs.walks.as_mut().ok_or_else(|| {
        Error::new(crate::error::Kind::Io, "the walked folders were let go before the keystores were settled")
    })?;
    let main = walks.main.iter_mut().zip(&questions.main).enumerate().map(|(f, (w, i))| (w, i, read(None, f)));
    let variants = walks
        .variants
        .iter_mut()
        .zip(&questions.variants)
        .enumerate()
        .flat_map(|(v, (w, i))| w.iter_mut().zip(i).enumerate().map(move |(f, (w, i))| (w, i, read(Some(v), f))));
    let first = crate::inputs::settle(main.chain(variants), &found, cache)?;
    let stray = stray_keystores(first, questions.bakes)?;
    let baked = stray.is_some() || questions.in_folder;
    guard_public(questions.allow_public, project, baked, stray.as_deref())?;
    Ok(Settled { baked, labels: labels(project, baked) })
}

/// A merged truststore that holds a private key (the base's store had one)
/// is a keystore, at `shown`: refused when baking is off, and refused for a
/// public registry among the outputs unless `allow_public`.
pub(super) fn check_truststore_key(project: &Project, bakes: bool, allow_public: bool, shown: &str) -> Result<()> {
    if !bakes {
        return Err(Error::config(format!(
            "{shown}: the base's truststore holds a private key, so the merged store is a keystore, and keystores go into an image only with bake_keystores = true or --bake-keystores; turn baking on, or use a base whose truststore holds certificates only"
        )));
    }
    let why = format!("{shown}, a truststore holding a private key");
    guard_public(allow_public, project, true, Some(&why))
}

/// `settled`, with the images marked as holding baked keystores when a
/// merged truststore holds a private key (`key`).
pub(super) fn with_truststore_key(settled: Settled, project: &Project, key: bool) -> Settled {
    match key && !settled.baked {
        true => Settled { baked: true, labels: labels(project, true) },
        false => settled,
    }
}

/// The labels every image gets: the config's and the keystore label when
/// keystores are baked (each image adds its own base's name and digest).
fn labels(project: &Project, baked: bool) -> BTreeMap<String, String> {
    let mut labels = project.config.image.labels.clone();
    if baked {
        labels.insert(KEYSTORES_LABEL.into(), "baked".into());
        crate::progress::message(
            "keystores are baked into the image (label io.wso2img.keystores=baked); keep it in a private registry",
        );
    }
    labels
}

/// The first keystore (by name or content) found in a customer folder other
/// than the keystores folder (`LABEL/PATH (TYPE)`): baked like the keystores
/// folder when baking is on, refused when it is not.
fn stray_keystores(found: Option<String>, bakes: bool) -> Result<Option<String>> {
    match found {
        Some(shown) if !bakes => Err(Error::config(format!(
            "{shown}: is a keystore, and keystores go into an image only with bake_keystores = true or \
--bake-keystores; mount it at run time instead, or put it in the keystores folder and turn baking on"
        ))),
        found => Ok(found),
    }
}

/// Refuses to push baked keystores to a public registry among the outputs;
/// `stray` is the keystore found outside the keystores folder, if any.
fn guard_public(allow: bool, project: &Project, baked: bool, stray: Option<&str>) -> Result<()> {
    if !baked || allow {
        return Ok(());
    }
    let why = stray.unwrap_or("the keystores folder");
    match project.outputs.iter().find_map(|o| Some((o, project.public_registry(o)?))) {
        Some((out, registry)) => Err(wso2::keystore::public_refusal(&out.to_string(), &registry, why)),
        None => Ok(()),
    }
}
