//! What the registry transport knows of `docker://HOST/REPO[:TAG|@DIGEST]` locations.

use std::path::Path;

use super::destination::RegistryDestination;
use super::{pull, push};
use crate::error::{Error, Result};
use crate::reference::{Location, Reference};
use crate::transport::daemon::ViaDaemon;
use crate::transport::destination::Early;
use crate::transport::{Base, Connections, Destination, Opening, Transport, Via};

/// A `docker://` location: a repository (and tag or digest) in a registry.
pub struct Repository<'a> {
    /// The location as written.
    pub location: &'a Location,
    /// The reference.
    pub reference: &'a Reference,
}

impl Transport for Repository<'_> {
    fn open_base(&self, dir: &Path, connections: &Connections) -> Result<Base> {
        pull::read_base(self.location, self.reference, &connections.registries)
            .map_err(|e| crate::reference::BareNameError::wrap(self.reference, dir, e))
    }

    fn check_output(&self) -> Result<()> {
        match self.reference.digest {
            Some(_) => Err(Error::usage(format!("{}: a destination takes a tag, not a digest", self.location))),
            None => Ok(()),
        }
    }

    fn open_destination(&self, opening: &Opening<'_>) -> Result<Box<dyn Destination>> {
        let r = self.reference.clone();
        if opening.via == Via::Docker {
            let daemon = opening.connections.daemon()?.clone();
            return Ok(Box::new(ViaDaemon::new(daemon, r, opening.platforms.to_vec(), opening.daemon_hints.to_vec())));
        }
        let registries = opening.connections.registries.clone();
        Ok(Box::new(RegistryDestination::new(registries, r, opening.force).knowing(opening.early.clone())))
    }

    fn through_daemon(&self, via: Via) -> bool {
        via == Via::Docker
    }

    fn names(&self, tags: &[String]) -> Option<Vec<String>> {
        let r = self.reference;
        Some(tags.iter().chain(r.tag.as_ref()).map(|t| r.with_tag(t).to_string()).collect())
    }

    fn own_tag(&self) -> Option<String> {
        self.reference.tag.clone()
    }

    fn registry_reference(&self) -> Option<Reference> {
        Some(self.reference.clone())
    }

    fn public_registry(&self, extra: &[String]) -> Option<String> {
        self.reference.is_public(extra).then(|| self.reference.registry.clone())
    }

    fn ask_early(&self, connections: &Connections, via: Via) -> Option<Early> {
        (via == Via::Registry).then(|| push::ask_early(&connections.registries, self.reference))
    }
}
