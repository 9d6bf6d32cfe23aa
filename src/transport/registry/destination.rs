//! A registry repository as a [`Destination`] (`docker://HOST/REPO[:TAG]`,
//! `--push`): manifests keep the base's media type family; an image whose
//! content tag already names the same content is up-to-date (only missing
//! tags are set); a content tag that names different content is refused
//! unless forced. The image its tag names, read before anything is built,
//! tells which layer blobs it already has.

use std::sync::Arc;

use super::push::{self, TagState};
use super::Registries;
use crate::digest::Digest;
use crate::error::{Error, Kind, Result};
use crate::image::{Blob, ImageSet, MediaFamily};
use crate::reference::Reference;
use crate::transport::destination::{with_own_tag, Destination, Early, Held, Planned, Status, Written};

/// Pushes to one repository over the registry API.
pub struct RegistryDestination {
    registries: Arc<Registries>,
    target: Reference,
    force: bool,
    started: push::Started,
    /// What the repository answered before anything was built, when it was asked.
    early: Option<Early>,
}

impl RegistryDestination {
    /// A destination for `target` (its tag, if any, goes to the main image).
    pub fn new(registries: Arc<Registries>, target: Reference, force: bool) -> Self {
        RegistryDestination { registries, target, force, started: push::Started::default(), early: None }
    }

    /// The destination, with the answer of [`push::ask_early`] for it when
    /// it was already asked (while the inputs were walked).
    pub fn knowing(mut self, early: Option<Early>) -> Self {
        self.early = early;
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
            let tags = self.tags(image);
            // The other tags are asked at once with the content tag, unless
            // the early answer already said what they name.
            let seen = self.early.as_ref().map(|e| &e.tags);
            let ask: Vec<String> =
                tags[1..].iter().filter(|t| seen.is_none_or(|s| !s.contains_key(*t))).cloned().collect();
            let (state, top, named) =
                push::tag_states(&self.registries, &self.target, content_tag, &image.content, &ask)?;
            held.push(match state {
                TagState::Same(digest) => {
                    let names = |t: &String| match ask.iter().position(|a| a == t) {
                        Some(i) => named[i],
                        None => seen.and_then(|s| s.get(t).copied().flatten()),
                    };
                    let missing: Vec<String> = tags[1..].iter().filter(|t| names(t) != Some(digest)).cloned().collect();
                    push::set_tags(&self.registries, &self.target, top.as_ref().expect("a tag names it"), &missing)?;
                    crate::progress::message(&format!("{}: {content_tag} already holds this content ({digest}); nothing to push", self.name()));
                    Some(digest)
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

    fn has_blobs(&mut self, digests: &[Digest]) -> Result<Vec<bool>> {
        push::blobs_present(&self.registries, &self.target, digests)
    }

    fn known_layer(&self, diff_id: &Digest) -> Option<(Digest, u64)> {
        self.early.as_ref()?.layers.get(diff_id).copied()
    }

    fn surely_empty(&mut self) -> bool {
        if self.early.is_none() {
            self.early = Some(push::ask_early(&self.registries, &self.target));
        }
        self.early.as_ref().is_some_and(|e| e.empty)
    }

    fn offer(&mut self, blob: &Blob) {
        self.started.start(&self.registries, &self.target, blob);
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
