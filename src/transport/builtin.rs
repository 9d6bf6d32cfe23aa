//! `builtin:NAME`: a sample WSO2-like base generated on the spot (see
//! [`crate::wso2::sample`]) and written into a temporary OCI layout, so
//! wso2img can be tried and tested with no registry.

use super::{oci, Base};
use crate::error::{Error, Result};
use crate::reference::Location;
use crate::wso2::sample::SampleBase;

/// Generates the named sample base into a temporary layout and reads it.
pub fn read_base(location: &Location, name: &str) -> Result<Base> {
    let sample = SampleBase::builtin(name).ok_or_else(|| {
        Error::usage(format!(
            "builtin:{name}: unknown sample base; use one of builtin:{}",
            SampleBase::BUILTIN_NAMES.join(", builtin:")
        ))
    })?;
    let dir = crate::files::TempDir::new("builtin")?;
    oci::LayoutDestination::new(dir.path(), None)
        .write_verbatim(std::slice::from_ref(&sample.version), &sample.image_set()?)?;
    let mut base = oci::read_base(location, dir.path(), Some(&sample.version))?;
    base.name = location.to_string();
    base.keep(dir);
    Ok(base)
}

/// A `builtin:NAME` location: a sample base, readable only.
pub struct Sample<'a> {
    /// The location as written.
    pub location: &'a Location,
    /// The sample's name.
    pub name: &'a str,
}

impl super::Transport for Sample<'_> {
    fn open_base(&self, _dir: &std::path::Path, _connections: &super::Connections) -> Result<Base> {
        read_base(self.location, self.name)
    }

    fn check_output(&self) -> Result<()> {
        Err(Error::usage(format!("{}: builtin: is a source only; pick oci:DIR or docker-archive:FILE", self.location)))
    }

    fn open_destination(&self, _opening: &super::Opening<'_>) -> Result<Box<dyn super::Destination>> {
        Err(Error::usage(format!("{}: not available as a destination", self.location)))
    }
}
