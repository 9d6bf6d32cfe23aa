//! Loading results into the daemon (`POST /images/load`), streamed, with the
//! files of the bottom layers it already has left out of the archive.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;

use bollard::errors::Error as BollardError;
use serde_json::Value;

use bollard::query_parameters::{ImportImageOptions, ListImagesOptions, TagImageOptions};

use super::{daemon_name, id_of, progress, Daemon, Message, CHUNK};
use crate::digest::Digest;
use crate::error::{io_reason, Cause, Error, Kind, Result};
use crate::image::{Blob, Image};
use crate::net::runtime;
use crate::reference::Reference;
use crate::transport::archive;

/// Images of a target repository inspected for layers the daemon already has.
const RECENT_IMAGES: usize = 32;
/// Images of the whole daemon inspected when neither the base nor the target
/// repository shares a layer.
const ANY_IMAGES: usize = 64;
/// What [`Daemon::load`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The image ID in the daemon (the config digest on the classic image store).
    pub id: Digest,
    /// Whether the daemon already had the image, so nothing was sent (only tags set).
    pub up_to_date: bool,
    /// Layer files sent in the archive.
    pub layers_sent: usize,
    /// Bytes of layer files sent.
    pub bytes_sent: u64,
}

impl Daemon {
    /// Loads `image` into the daemon (`POST /images/load`) and tags it with
    /// every reference in `tags` (at least one). Nothing is sent when the
    /// daemon already has the image ID; otherwise the archive leaves out the
    /// files of the bottom layers the daemon already has (found in the images
    /// named by `hints` and the images of the tags' repositories, else in any
    /// of its images). The
    /// archive is streamed: it is never held in memory nor written to disk.
    pub fn load(&self, image: &Image, tags: &[Reference], hints: &[String]) -> Result<Loaded> {
        let shown = format!("docker-daemon:{}", tags.first().map(daemon_name).unwrap_or_default());
        let config_id = image.config.desc.digest;
        if self.inspect(&config_id.to_string())?.is_some() {
            self.tag_all(&config_id.to_string(), tags)?;
            crate::progress::message(&format!(
                "{shown}: the daemon already has this image ({config_id}); nothing to load"
            ));
            return Ok(Loaded { id: config_id, up_to_date: true, layers_sent: 0, bytes_sent: 0 });
        }
        let diff_ids = diff_ids(image).map_err(|e| e.context(&shown))?;
        let have = self.shared_layers(&diff_ids, tags, hints)?;
        match self.load_omitting(image, tags, have, &shown) {
            Err(e) if have > 0 && e.cause() != Some(Cause::StoppedReading) => {
                // The images that held those layers may have been removed
                // meanwhile (another client's `docker rmi`): send them all.
                crate::progress::message(&format!(
                    "{shown}: the daemon no longer has the bottom {have} layers ({e}); sending all"
                ));
                self.load_omitting(image, tags, 0, &shown)
            }
            r => r,
        }
    }

    /// Loads `image`, leaving out the files of its bottom `have` layers.
    fn load_omitting(&self, image: &Image, tags: &[Reference], have: usize, shown: &str) -> Result<Loaded> {
        let shown = shown.to_string();
        let config_id = image.config.desc.digest;
        let needed: HashSet<Digest> = image.layers[have..].iter().map(|l| l.desc.digest).collect();
        let omit: HashSet<Digest> =
            image.layers[..have].iter().map(|l| l.desc.digest).filter(|d| !needed.contains(d)).collect();
        let mut seen = HashSet::new();
        let sent: Vec<&Blob> =
            image.layers.iter().filter(|l| !omit.contains(&l.desc.digest) && seen.insert(l.desc.digest)).collect();
        let bytes_sent: u64 = sent.iter().map(|b| b.desc.size).sum();
        crate::progress::message(&format!(
            "{shown}: sending {} of {} layers ({}){}",
            sent.len(),
            image.layers.len(),
            crate::fmt::human(bytes_sent),
            if have > 0 { format!("; the daemon has the bottom {have}") } else { String::new() }
        ));

        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
        let (omit, shown_ref) = (&omit, &shown);
        let (written, answer) = std::thread::scope(|s| {
            let writer = s.spawn(move || {
                let mut w = ChannelWriter { tx, buf: Vec::with_capacity(CHUNK), stopped: false };
                let r = archive::write_stream(&mut w, tags, image, omit, shown_ref).and_then(|_| {
                    w.flush().map_err(|e| Error::new(Kind::Io, format!("{shown_ref}: {}", io_reason(&e))))
                });
                match r {
                    Err(e) if w.stopped => Err(e.with_cause(Cause::StoppedReading)),
                    Err(e) => {
                        let _ = w.tx.blocking_send(Err(io::Error::other(e.to_string())));
                        Err(e)
                    }
                    ok => ok,
                }
            });
            let answer = runtime().block_on(async {
                let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
                let options = ImportImageOptions { quiet: false, ..Default::default() };
                let mut stream = self.docker.import_image_stream(options, body, None);
                while let Some(m) = stream.next().await {
                    let info = m?;
                    let msg = Message {
                        status: info.status,
                        id: info.id,
                        stream: info.stream,
                        progress_detail: info.progress_detail.map(|p| json!({"current": p.current})),
                        ..Default::default()
                    };
                    progress(&msg);
                }
                Ok::<(), BollardError>(())
            });
            (writer.join(), answer)
        });
        let written =
            written.unwrap_or_else(|_| Err(Error::new(Kind::Io, format!("{shown}: the archive writer failed"))));
        match (written, answer) {
            (Ok(()), Ok(())) => {}
            (Err(e), _) if e.cause() != Some(Cause::StoppedReading) => return Err(e),
            (_, Err(e)) => return Err(self.bollard_failure(e, &format!("{shown}: loading"))),
            (Err(e), Ok(())) => return Err(e),
        }
        let first = tags.first().map(daemon_name).unwrap_or_else(|| config_id.to_string());
        let info = self.inspect(&first)?.ok_or_else(|| {
            Error::new(
                Kind::Io,
                format!("{shown}: the daemon accepted the archive but has no image {first} afterwards"),
            )
        })?;
        let id = id_of(&info, &first)?;
        self.tag_all(&id.to_string(), tags)?;
        Ok(Loaded { id, up_to_date: false, layers_sent: sent.len(), bytes_sent })
    }

    /// Tags the image `id` as each of `tags`.
    pub fn tag_all(&self, id: &str, tags: &[Reference]) -> Result<()> {
        for t in tags {
            let options = TagImageOptions { repo: Some(t.familiar_name()), tag: Some(t.tag_or_latest().to_string()) };
            runtime()
                .block_on(self.docker.tag_image(id, Some(options)))
                .map_err(|e| self.bollard_failure(e, &format!("docker-daemon:{}: tagging {id}", daemon_name(t))))?;
        }
        Ok(())
    }

    /// How many bottom layers of `diff_ids` the daemon already has as a chain:
    /// the longest prefix among the images named by `hints` and the images of
    /// the tags' repositories, else among any images of the daemon.
    fn shared_layers(&self, diff_ids: &[Digest], tags: &[Reference], hints: &[String]) -> Result<usize> {
        if self.containerd_store() {
            return Ok(0);
        }
        let want: Vec<String> = diff_ids.iter().map(Digest::to_string).collect();
        let mut seen = HashSet::new();
        let mut best = 0;
        let mut names: Vec<String> = hints.to_vec();
        let repos: HashSet<String> = tags.iter().map(Reference::familiar_name).collect();
        for repo in repos {
            names.extend(self.image_ids(Some(&repo), RECENT_IMAGES)?);
        }
        self.longest_prefix(&names, &want, &mut seen, &mut best)?;
        if best == 0 {
            let any = self.image_ids(None, ANY_IMAGES)?;
            self.longest_prefix(&any, &want, &mut seen, &mut best)?;
        }
        Ok(best)
    }

    /// Up to `max` image IDs, of repository `repo` or of the whole daemon.
    fn image_ids(&self, repo: Option<&str>, max: usize) -> Result<Vec<String>> {
        let options = ListImagesOptions {
            filters: repo.map(|r| HashMap::from([("reference".to_string(), vec![r.to_string()])])),
            ..Default::default()
        };
        let mut images = runtime()
            .block_on(self.docker.list_images(Some(options)))
            .map_err(|e| self.bollard_failure(e, &format!("docker-daemon:{}: listing images", repo.unwrap_or("*"))))?;
        images.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(images.into_iter().take(max).map(|i| i.id).collect())
    }

    /// Raises `best` to the longest prefix of `want` among the layers of the
    /// images `names` (skipping those in `seen`).
    fn longest_prefix(
        &self,
        names: &[String],
        want: &[String],
        seen: &mut HashSet<String>,
        best: &mut usize,
    ) -> Result<()> {
        for name in names {
            if *best == want.len() {
                break;
            }
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(info) = self.inspect(name)? else { continue };
            let layers = info.root_fs.and_then(|r| r.layers).unwrap_or_default();
            *best = (*best).max(layers.iter().zip(want).take_while(|(a, b)| a == b).count());
        }
        Ok(())
    }
}

/// The diff_ids in an image's config.
fn diff_ids(image: &Image) -> Result<Vec<Digest>> {
    let bytes = image.config.read_all().map_err(|e| Error::source(format!("config: {}", io_reason(&e))))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| Error::source(format!("config is not JSON: {e}")))?;
    let ids: Vec<Digest> = v["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d.as_str().and_then(|s| s.parse().ok())).collect())
        .unwrap_or_default();
    if ids.len() != image.layers.len() {
        return Err(Error::source(format!("config lists {} diff_ids for {} layers", ids.len(), image.layers.len())));
    }
    Ok(ids)
}

/// A `Write` that hands 1 MiB chunks to the request body stream; `stopped`
/// records that the daemon stopped reading (its own answer then says why).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    stopped: bool,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            self.stopped = true;
            io::Error::new(io::ErrorKind::BrokenPipe, "the Docker daemon stopped reading the archive")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            self.send()
        }
    }
}
