//! A registry reached through the Docker daemon as a [`Destination`]
//! (`--push --via docker`): the image is loaded into the daemon, tagged in the
//! registry repository and pushed by the daemon, so its mirrors, proxies and
//! credentials apply. The daemon compresses layers itself, so the manifest it
//! pushes differs from a direct push; the image ID is the same. It is never
//! asked whether the registry holds the image: that would bypass the daemon's
//! network settings.

use super::destination::daemon_tags;
use super::Daemon;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{ImageSet, MediaFamily, Platform};
use crate::reference::Reference;
use crate::transport::destination::{pick_image, Destination, Held, Planned, Status, Written};

/// Pushes to a registry through the Docker daemon.
pub struct ViaDaemon {
    daemon: Daemon,
    target: Reference,
    platforms: Vec<Platform>,
    hints: Vec<String>,
}

impl ViaDaemon {
    /// A destination pushing to `target` through `daemon` (see [`super::destination::DaemonDestination::new`]).
    pub fn new(daemon: Daemon, target: Reference, platforms: Vec<Platform>, hints: Vec<String>) -> Self {
        ViaDaemon { daemon, target, platforms, hints }
    }
}

impl Destination for ViaDaemon {
    fn name(&self) -> String {
        format!("docker://{}", self.target)
    }

    fn pinned(&self, _image: &Planned, digest: &Digest) -> String {
        format!("{}@{digest}", self.target.name())
    }

    fn manifests(&self, _base: MediaFamily) -> Option<MediaFamily> {
        None
    }

    fn holds(&mut self, images: &[Planned]) -> Result<Held> {
        Ok(vec![None; images.len()])
    }

    fn write(&mut self, image: &Planned, set: &ImageSet) -> Result<Written> {
        let one = pick_image(set, &self.platforms, "the Docker daemon")?;
        if set.images.len() > 1 {
            crate::progress::message(&format!(
                "{}: the Docker daemon holds one platform; pushing {} only",
                self.name(),
                one.platform
            ));
        }
        let refs = daemon_tags(&self.target, image);
        let loaded = self.daemon.load(one, &refs, &self.hints)?;
        let mut pushed = None;
        for t in &refs {
            let digest = self.daemon.push(t)?;
            pushed.get_or_insert(digest);
        }
        let digest = pushed.ok_or_else(|| Error::usage(format!("{}: no tag to push", self.name())))?;
        crate::progress::message(&format!(
            "{}: the daemon compressed the layers itself, so the manifest ({digest}) differs from a direct push; the image ID {} is the same",
            self.name(),
            loaded.id
        ));
        Ok(Written { digest, status: Status::Pushed })
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
