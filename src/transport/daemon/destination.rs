//! The Docker daemon as a [`Destination`] (`docker-daemon:REPO[:TAG]`): it
//! keeps no manifests of ours (it takes layers and config and names the image
//! by its config digest), holds one platform, and already holds an image when
//! it has that image ID — then only the tags are set.

use super::{daemon_name, Daemon};
use crate::error::Result;
use crate::image::{ImageSet, MediaFamily, Platform};
use crate::reference::Reference;
use crate::transport::destination::{
    pick_config, pick_image, with_own_tag, Destination, Held, Planned, Status, Written,
};

const WHAT: &str = "the Docker daemon";

/// Loads images into the local Docker daemon.
pub struct DaemonDestination {
    daemon: Daemon,
    target: Reference,
    platforms: Vec<Platform>,
    hints: Vec<String>,
}

impl DaemonDestination {
    /// A destination tagging images in `target`'s repository; `platforms`
    /// picks the one platform loaded, `hints` names daemon images that may
    /// share the bottom layers (the base).
    pub fn new(daemon: Daemon, target: Reference, platforms: Vec<Platform>, hints: Vec<String>) -> Self {
        DaemonDestination { daemon, target, platforms, hints }
    }
}

/// The daemon references for `image` in `target`'s repository: its tags plus
/// the target's own tag on the main image.
pub fn daemon_tags(target: &Reference, image: &Planned) -> Vec<Reference> {
    with_own_tag(&image.tags, target.tag.as_ref().filter(|_| image.main)).iter().map(|t| target.with_tag(t)).collect()
}

/// The references `docker-daemon:` gives `image`: [`daemon_tags`], and
/// `latest` on the main image when the target names no tag — as `docker
/// build -t NAME` does, so that `docker run NAME` finds it.
pub fn loaded_tags(target: &Reference, image: &Planned) -> Vec<Reference> {
    let own = target.tag_or_latest().to_string();
    with_own_tag(&image.tags, Some(&own).filter(|_| image.main)).iter().map(|t| target.with_tag(t)).collect()
}

impl Destination for DaemonDestination {
    fn name(&self) -> String {
        format!("docker-daemon:{}", daemon_name(&self.target))
    }

    fn manifests(&self, _base: MediaFamily) -> Option<MediaFamily> {
        None
    }

    fn holds(&mut self, images: &[Planned]) -> Result<Held> {
        let mut held = Vec::new();
        for image in images {
            let id = pick_config(image, &self.platforms, WHAT)?;
            if self.daemon.image_id(&id.to_string())?.is_some() {
                self.daemon.tag_all(&id.to_string(), &loaded_tags(&self.target, image))?;
                crate::progress::message(&format!(
                    "{}: the daemon already has {} ({id}); nothing to load",
                    self.name(),
                    image.tags[0]
                ));
                held.push(Some(id));
            } else {
                held.push(None);
            }
        }
        Ok(held)
    }

    fn write(&mut self, image: &Planned, set: &ImageSet) -> Result<Written> {
        let one = pick_image(set, &self.platforms, WHAT)?;
        let loaded = self.daemon.load(one, &loaded_tags(&self.target, image), &self.hints)?;
        let status = if loaded.up_to_date { Status::UpToDate } else { Status::Loaded };
        Ok(Written { digest: loaded.id, status })
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
