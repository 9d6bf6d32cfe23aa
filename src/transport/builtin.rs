//! `builtin:NAME`: a sample WSO2-like base generated on the spot (see
//! [`crate::transport::sample`]), so wso2img can be tried and tested with no registry.

use super::{oci, Base};
use crate::error::{Error, Result};
use crate::reference::Location;
use crate::transport::sample::SampleBase;

/// Generates the named sample base into a temporary layout and reads it.
pub fn read_base(location: &Location, name: &str) -> Result<Base> {
    let sample = SampleBase::builtin(name).ok_or_else(|| {
        Error::usage(format!(
            "builtin:{name}: unknown sample base; use one of builtin:{}",
            SampleBase::BUILTIN_NAMES.join(", builtin:")
        ))
    })?;
    let dir = crate::files::TempDir::new("builtin")?;
    sample.write_oci(dir.path(), &sample.version)?;
    let mut base = oci::read_base(location, dir.path(), Some(&sample.version))?;
    base.name = location.to_string();
    base.keep(dir);
    Ok(base)
}
