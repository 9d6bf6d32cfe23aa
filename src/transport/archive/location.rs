//! What the archive transport knows of `docker-archive:FILE[:REF]` locations.

use std::path::Path;

use super::{read_base, ArchiveDestination};
use crate::digest::Digest;
use crate::error::Result;
use crate::reference::{Location, Reference};
use crate::transport::{resolve, Base, Connections, Destination, Opening, Transport};

/// A `docker-archive:FILE[:REF]` location.
pub struct Archive<'a> {
    /// The location as written.
    pub location: &'a Location,
    /// The archive file (`-`: standard output).
    pub path: &'a Path,
    /// The name the image carries inside the archive.
    pub reference: Option<&'a Reference>,
}

impl Transport for Archive<'_> {
    fn open_base(&self, dir: &Path, _connections: &Connections) -> Result<Base> {
        read_base(self.location, &resolve(dir, self.path), self.reference)
    }

    fn check_output(&self) -> Result<()> {
        crate::files::check_output(self.path, "docker-archive:")
    }

    fn writes_stdout(&self) -> bool {
        crate::files::Target::of(self.path) == crate::files::Target::Stdout
    }

    fn stored_digest(&self) -> Result<Option<Digest>> {
        let Some(index) = super::read_member(self.path, &self.location.to_string(), "index.json")? else {
            return Ok(None);
        };
        let v: serde_json::Value = serde_json::from_slice(&index).unwrap_or(serde_json::Value::Null);
        Ok(v["manifests"][0]["digest"].as_str().and_then(|s| s.parse().ok()))
    }

    fn open_destination(&self, opening: &Opening<'_>) -> Result<Box<dyn Destination>> {
        Ok(Box::new(ArchiveDestination::new(
            self.path,
            self.reference.cloned(),
            opening.repository.clone(),
            opening.platforms.to_vec(),
        )))
    }
}
