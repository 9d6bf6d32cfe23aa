//! What the layout transport knows of `oci:DIR[:TAG]` locations.

use std::path::Path;

use super::{read_base, LayoutDestination};
use crate::error::{Error, Result};
use crate::reference::Location;
use crate::transport::{resolve, Base, Connections, Destination, Opening, Transport};

/// An `oci:DIR[:TAG]` location.
pub struct Layout<'a> {
    /// The location as written.
    pub location: &'a Location,
    /// The layout folder.
    pub dir: &'a Path,
    /// The image's ref name in the layout.
    pub tag: Option<&'a str>,
}

impl Transport for Layout<'_> {
    fn open_base(&self, dir: &Path, _connections: &Connections) -> Result<Base> {
        read_base(self.location, &resolve(dir, self.dir), self.tag)
    }

    fn check_output(&self) -> Result<()> {
        let out = self.location;
        let dir = self.dir;
        if dir.exists() && !dir.is_dir() {
            return Err(Error::usage(format!("{out}: {} exists and is not a folder", dir.display())));
        }
        let index = dir.join("index.json");
        if index.exists() {
            let bytes = std::fs::read(&index).map_err(|e| Error::io("reading", &index, e))?;
            serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|_| {
                Error::usage(format!(
                    "{out}: {} is not valid JSON; move it away or pick another folder",
                    index.display()
                ))
            })?;
        }
        Ok(())
    }

    fn open_destination(&self, opening: &Opening<'_>) -> Result<Box<dyn Destination>> {
        let tag = self.tag.map(str::to_string);
        Ok(Box::new(LayoutDestination::new(self.dir, tag).with_cache(opening.cache.clone())))
    }

    fn names(&self, tags: &[String]) -> Option<Vec<String>> {
        let dir = self.dir.display();
        Some(match self.tag {
            Some(t) => vec![format!("oci:{dir}:{t}")],
            None => tags.iter().map(|t| format!("oci:{dir}:{t}")).collect(),
        })
    }

    fn own_tag(&self) -> Option<String> {
        self.tag.map(str::to_string)
    }
}
