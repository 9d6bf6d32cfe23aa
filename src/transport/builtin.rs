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
