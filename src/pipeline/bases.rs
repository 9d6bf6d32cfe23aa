//! The bases of a run: the main base and each variant's own (each opened
//! once), checked against `wso2img.lock`, narrowed to the platforms asked
//! for, and their signatures verified when a key is given.

use std::collections::{BTreeMap, HashMap};

use super::inputs::Inputs;
use super::project::Project;
use super::Options;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::lock::Pending;
use crate::reference::{Location, Reference};
use crate::sign::{attach, PublicKey};
use crate::transport::{self, Base, Connections};

/// Every base of a run and which product (main image, then each variant)
/// is built on which.
pub(super) struct Bases {
    /// The main base first, then the variants' own bases (each once).
    pub(super) list: Vec<Base>,
    /// Per product, its base's index in `list`.
    pub(super) of_product: Vec<usize>,
    /// Base folders the lock records, by the image's config digest.
    pub(super) locked_folders: HashMap<Digest, BTreeMap<String, String>>,
}

impl Bases {
    /// The main base.
    pub(super) fn main(&self) -> &Base {
        &self.list[0]
    }
    /// The base of product `pi`.
    pub(super) fn of(&self, pi: usize) -> &Base {
        &self.list[self.of_product[pi]]
    }
}

/// From the opened main base to every base of the run: the lock checked
/// (and its refresh returned, with the Maven pins, unless `--locked`),
/// platforms selected, the variants' own bases opened, and each base's
/// signature verified with the project's key.
pub(super) fn complete(
    opts: &Options,
    project: &Project,
    connections: &Connections,
    mut main: Base,
    inputs: &Inputs,
) -> Result<(Bases, Option<Pending>)> {
    let config = &project.config;
    let mut lock = crate::lock::check(config, opts.base.as_ref(), &main, opts.locked)?;
    if !opts.locked {
        lock = crate::lock::record_maven(config, lock, crate::inputs::pins(&inputs.gathered.maven))?;
    }
    main.select_platforms(&opts.platforms)?;
    let mut list = vec![main];
    let mut written = vec![crate::lock::written_location(config, opts.base.as_ref())];
    let mut of_product = vec![0];
    for v in &config.variants {
        let Some(w) = &v.base else {
            of_product.push(0);
            continue;
        };
        if let Some(i) = written.iter().position(|x| x == w) {
            of_product.push(i);
            continue;
        }
        let shown = format!("{}: [[variant]] {}", config.path.display(), v.name);
        let location: Location = w.parse().map_err(|e: Error| e.context(&shown))?;
        let mut base = transport::open_base(&location, &config.dir, connections)?;
        lock = crate::lock::check_also(config, lock, w, &base, opts.locked)?;
        base.select_platforms(&opts.platforms)?;
        list.push(base);
        written.push(w.clone());
        of_product.push(list.len() - 1);
    }
    if let Some(key) = &project.base_key {
        for b in &list {
            verify(connections, b, key)?;
        }
    }
    let current = crate::lock::current(config, lock.as_ref())?;
    let locked_folders = list
        .iter()
        .flat_map(|b| &b.images)
        .filter_map(|i| {
            let d = Digest::of(&i.config);
            Some((d, current.folders(&d)?.clone()))
        })
        .collect();
    Ok((Bases { list, of_product, locked_folders }, lock))
}

/// Checks `base`'s cosign signature with `key`; a missing or bad one is an error.
fn verify(connections: &Connections, base: &Base, key: &(PublicKey, String)) -> Result<()> {
    let (Some(r), Some(digest)) = (transport::of(&base.location).registry_reference(), base.digest) else {
        return Err(Error::usage(format!(
            "{}: checks signatures in a registry, but the base {} is not read from one",
            key.1, base.location
        )));
    };
    let claim = attach::verify(&connections.registries, &r, &digest, &key.0, "the base")?;
    let repo = Reference { tag: None, digest: None, ..r.clone() };
    let attested = attach::verify_attestations(&connections.registries, &repo, &digest, &key.0, &key.1)?;
    crate::progress::message(&format!(
        "base {}@{digest}: signature verified (signed as {}){}",
        r.name(),
        claim.docker_reference,
        match attested {
            0 => String::new(),
            1 => "; 1 attestation verified".to_string(),
            n => format!("; {n} attestations verified"),
        }
    ));
    Ok(())
}
