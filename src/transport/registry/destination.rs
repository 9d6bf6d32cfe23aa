//! A registry repository as a [`Destination`] (`docker://HOST/REPO[:TAG]`,
//! `--push`): manifests keep the base's media type family; an image whose
//! content tag already names the same content is up-to-date (only missing
//! tags are set); a content tag that names different content is refused
//! unless forced.

use std::sync::Arc;

use super::push::{self, TagState};
use super::Registries;
use crate::digest::Digest;
use crate::error::{Error, Kind, Result};
use crate::image::{Blob, ImageSet, MediaFamily};
use crate::reference::Reference;
use crate::transport::destination::{with_own_tag, Destination, Held, Planned, Status, Written};

/// Pushes to one repository over the registry API.
pub struct RegistryDestination {
    registries: Arc<Registries>,
    target: Reference,
    force: bool,
    started: push::Started,
    /// Whether the repository is empty, when it was asked early.
    empty: Option<bool>,
}

impl RegistryDestination {
    /// A destination for `target` (its tag, if any, goes to the main image).
    pub fn new(registries: Arc<Registries>, target: Reference, force: bool) -> Self {
        RegistryDestination { registries, target, force, started: push::Started::default(), empty: None }
    }

    /// The destination, with the answer of [`push::repository_is_empty`]
    /// for it when it was already asked (while the inputs were walked).
    pub fn knowing_empty(mut self, empty: Option<bool>) -> Self {
        self.empty = empty;
        self
    }

    fn tags(&self, image: &Planned) -> Vec<String> {
        with_own_tag(&image.tags, self.target.tag.as_ref().filter(|_| image.main))
    }
}

impl Destination for RegistryDestination {
    fn name(&self) -> String {
        format!("docker://{}", self.target)
    }

    fn pinned(&self, _image: &Planned, digest: &Digest) -> String {
        format!("{}@{digest}", self.target.name())
    }

    fn manifests(&self, base: MediaFamily) -> Option<MediaFamily> {
        Some(base)
    }

    fn holds(&mut self, images: &[Planned]) -> Result<Held> {
        let mut held = Vec::new();
        for image in images {
            let content_tag = &image.tags[0];
            held.push(match push::tag_state(&self.registries, &self.target, content_tag, &image.content)? {
                TagState::Same(top) => {
                    let tags = self.tags(image);
                    push::retag_missing(&self.registries, &self.target, &top, &tags[1..])?;
                    crate::progress::message(&format!("{}: {content_tag} already holds this content ({top}); nothing to push", self.name()));
                    Some(top)
                }
                TagState::Different(top) if !self.force => {
                    return Err(Error::new(
                        Kind::Source,
                        format!(
                            "{}:{content_tag} already names different content ({top}); tags are immutable here — change [target] tag or pass --force",
                            self.target.name()
                        ),
                    ))
                }
                _ => None,
            });
        }
        Ok(held)
    }

    fn write(&mut self, image: &Planned, set: &ImageSet) -> Result<Written> {
        let tags = self.tags(image);
        let digest: Digest = push::push(&self.registries, set, &self.target, &tags, &mut self.started)?;
        Ok(Written { digest, status: Status::Pushed })
    }

    fn has_blob(&mut self, digest: &Digest) -> Result<bool> {
        push::blob_present(&self.registries, &self.target, digest)
    }

    fn surely_empty(&mut self) -> bool {
        *self.empty.get_or_insert_with(|| push::repository_is_empty(&self.registries, &self.target))
    }

    fn offer(&mut self, blob: &Blob) {
        self.started.start(&self.registries, &self.target, blob);
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
