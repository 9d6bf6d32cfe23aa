//! What the daemon transport knows of `docker-daemon:NAME[:TAG]` locations.

use std::path::Path;

use super::DaemonDestination;
use crate::error::Result;
use crate::reference::{Location, Reference};
use crate::transport::{Base, Connections, Destination, Opening, Transport, Via};

/// A `docker-daemon:` location: an image in the local Docker Engine.
pub struct DaemonImage<'a> {
    /// The location as written.
    pub location: &'a Location,
    /// The image's name.
    pub reference: &'a Reference,
}

impl Transport for DaemonImage<'_> {
    fn open_base(&self, _dir: &Path, connections: &Connections) -> Result<Base> {
        connections.daemon()?.read_base(self.location, self.reference)
    }

    fn check_output(&self) -> Result<()> {
        Ok(())
    }

    fn open_destination(&self, opening: &Opening<'_>) -> Result<Box<dyn Destination>> {
        let daemon = opening.connections.daemon()?.clone();
        let (r, platforms, hints) = (self.reference.clone(), opening.platforms.to_vec(), opening.daemon_hints.to_vec());
        Ok(Box::new(DaemonDestination::new(daemon, r, platforms, hints)))
    }

    fn through_daemon(&self, _via: Via) -> bool {
        true
    }

    fn names(&self, tags: &[String]) -> Option<Vec<String>> {
        let r = self.reference;
        Some(tags.iter().chain(r.tag.as_ref()).map(|t| r.with_tag(t).to_string()).collect())
    }

    fn own_tag(&self) -> Option<String> {
        self.reference.tag.clone()
    }

    fn daemon_image(&self) -> Option<Reference> {
        Some(self.reference.clone())
    }
}
