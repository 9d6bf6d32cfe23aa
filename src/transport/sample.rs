//! The sample bases are WSO2 knowledge and live in [`crate::wso2::sample`];
//! this path re-exports them while the transport registry lists the module.

pub use crate::wso2::sample::{SampleBase, SampleOs, SampleUser};

#[cfg(test)]
impl SampleBase {
    /// Writes the base into an OCI layout under `tag` (for the transports' own tests).
    pub(crate) fn write_oci(&self, dir: &std::path::Path, tag: &str) -> crate::error::Result<crate::digest::Digest> {
        super::oci::LayoutDestination::new(dir, None).write_verbatim(&[tag.to_string()], &self.image_set()?)
    }
}
