//! Reading a base image from the daemon: `docker save` streamed into a
//! temporary file and read as a docker-archive, with the config cached by
//! image ID so later builds save layers only when something reads them.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use futures_util::StreamExt;

use super::{daemon_name, id_of, Daemon, CHUNK};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{media, Blob, BlobData, Descriptor, MediaFamily, RemoteBlobs};
use crate::net::runtime;
use crate::reference::{Location, Reference};
use crate::transport::{archive, base_image, Base};

/// Reads the base `r` from the daemon (see [`Daemon::read_base`]).
pub fn read_base(location: &Location, r: &Reference) -> Result<Base> {
    Daemon::connect()?.read_base(location, r)
}

impl Daemon {
    /// Reads the base `r` from the daemon. Its config comes from the cache
    /// when the cache has its image ID; its layers are then saved from the
    /// daemon only when read. Otherwise the image is saved (`docker save` of
    /// its ID, streamed into a temporary file in `TMPDIR` that lives as long
    /// as the base) and read as a docker-archive. The base is named after `r`,
    /// so a build from it gives the same content digest as one from a
    /// `docker save` archive of the same image.
    pub fn read_base(&self, location: &Location, r: &Reference) -> Result<Base> {
        let name = daemon_name(r);
        let info = self.inspect(&name)?.ok_or_else(|| {
            Error::source(format!(
                "{location}: no such image in the Docker daemon at {}; pull it (--pull, or `docker pull {name}`) or load it (`docker load -i FILE`)",
                self.host
            ))
        })?;
        let id = id_of(&info, &name)?;
        let diff_ids: Vec<Digest> =
            info.root_fs.and_then(|f| f.layers).unwrap_or_default().iter().filter_map(|l| l.parse().ok()).collect();
        let lazy = match cache::get(&id, diff_ids.len()) {
            Some((config, sizes)) if !self.containerd_store() => {
                let saved = Arc::new(SavedLayers {
                    daemon: self.clone(),
                    id,
                    location: location.clone(),
                    saved: OnceLock::new(),
                });
                let layers = diff_ids
                    .iter()
                    .zip(sizes)
                    .map(|(d, size)| Blob {
                        desc: Descriptor::new(media::DOCKER_LAYER_TAR, *d, size),
                        data: BlobData::Remote(saved.clone()),
                    })
                    .collect();
                base_image(&location.to_string(), None, config, layers, None)
                    .ok()
                    .filter(|img| img.layers.iter().all(|l| l.diff_id == l.blob.desc.digest))
            }
            _ => None,
        };
        let mut base = match lazy {
            Some(image) => Base {
                location: location.clone(),
                name,
                tag: String::new(),
                digest: None,
                family: MediaFamily::Docker,
                multi_platform: false,
                images: vec![image],
                _keep: None,
            },
            None => {
                let (mut base, dir) = self.save_base(location, &id)?;
                if !self.containerd_store() {
                    cache::put(&id, &base.images[0]);
                }
                base.keep(dir);
                base
            }
        };
        base.name = r.to_string();
        base.tag = r.tag_or_latest().to_string();
        Ok(base)
    }

    /// `docker save` of `id` into a temporary folder, read as a docker-archive.
    fn save_base(&self, location: &Location, id: &Digest) -> Result<(Base, crate::files::TempDir)> {
        let dir = crate::files::TempDir::new("daemon")?;
        let path = dir.path().join("base.tar");
        self.save(id, &path, &location.to_string())?;
        let base = archive::read_base(location, &path, None)?;
        let config = Digest::of(&base.images[0].config);
        if config != *id && !self.containerd_store() {
            return Err(Error::source(format!(
                "{location}: the daemon saved an image with config {config}, not {id}; it changed while being read — run again"
            )));
        }
        Ok((base, dir))
    }

    /// Streams `docker save` of `id` into the file `path`.
    fn save(&self, id: &Digest, path: &Path, shown: &str) -> Result<u64> {
        let file = File::create(path).map_err(|e| Error::io("creating", path, e))?;
        let mut out = BufWriter::with_capacity(CHUNK, file);
        let mut n = 0u64;
        runtime().block_on(async {
            let mut stream = self.docker.export_image(&id.to_string());
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.bollard_failure(e, &format!("{shown}: saving {id}")))?;
                out.write_all(&chunk).map_err(|e| Error::io("writing", path, e))?;
                n += chunk.len() as u64;
            }
            Ok::<(), Error>(())
        })?;
        out.flush().map_err(|e| Error::io("writing", path, e))?;
        Ok(n)
    }
}

/// The layers of a daemon image whose config came from the cache: the image
/// is saved from the daemon the first time a layer is read.
struct SavedLayers {
    daemon: Daemon,
    id: Digest,
    location: Location,
    saved: OnceLock<std::result::Result<Saved, String>>,
}

/// A saved image: the folder holding the archive and its layers by diff_id.
type Saved = (crate::files::TempDir, HashMap<Digest, Blob>);

impl RemoteBlobs for SavedLayers {
    fn open(&self, desc: &Descriptor) -> io::Result<Box<dyn Read + Send>> {
        let saved = self.saved.get_or_init(|| {
            let (base, dir) = self.daemon.save_base(&self.location, &self.id).map_err(|e| e.to_string())?;
            let blobs = base.images[0].layers.iter().map(|l| (l.diff_id, l.blob.clone())).collect();
            Ok((dir, blobs))
        });
        let (_, blobs) = saved.as_ref().map_err(|e| io::Error::other(e.clone()))?;
        let blob = blobs.get(&desc.digest).filter(|b| b.desc.size == desc.size && !b.desc.media_type.contains("gzip"));
        let blob = blob.ok_or_else(|| {
            io::Error::other(format!("{}: layer {} changed in the daemon; run again", self.location, desc.digest))
        })?;
        blob.open()
    }
    fn describe(&self) -> String {
        format!("{} ({})", self.location, self.daemon.host)
    }
}

/// The cache of daemon base configs, keyed and verified by image ID.
mod cache {
    use std::path::PathBuf;

    use serde::{Deserialize, Serialize};

    use crate::digest::Digest;

    #[derive(Serialize, Deserialize)]
    struct Entry {
        config: String,
        layer_sizes: Vec<u64>,
    }

    fn dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("wso2img").join("docker-daemon"))
    }

    /// The config bytes and layer sizes of image `id`, when cached and intact.
    pub(super) fn get(id: &Digest, layers: usize) -> Option<(Vec<u8>, Vec<u64>)> {
        let bytes = std::fs::read(dir()?.join(format!("{}.json", id.hex()))).ok()?;
        let e: Entry = serde_json::from_slice(&bytes).ok()?;
        let config = e.config.into_bytes();
        (Digest::of(&config) == *id && e.layer_sizes.len() == layers).then_some((config, e.layer_sizes))
    }

    /// Remembers the config and layer sizes of `image` (best effort).
    pub(super) fn put(id: &Digest, image: &crate::transport::BaseImage) {
        let Some(dir) = dir() else { return };
        let Ok(config) = String::from_utf8(image.config.clone()) else { return };
        let entry = Entry { config, layer_sizes: image.layers.iter().map(|l| l.blob.desc.size).collect() };
        let Ok(bytes) = serde_json::to_vec(&entry) else { return };
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = crate::files::write_atomic(&dir.join(format!("{}.json", id.hex())), &bytes);
        }
    }
}
