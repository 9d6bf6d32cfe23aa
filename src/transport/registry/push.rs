//! Writing to a registry: every blob is HEADed first; a blob from another
//! repository of the same registry is mounted (falling back to an upload on
//! 202, 401, 403 or 404); anything else is streamed — from a local file or
//! straight from the source registry — with one PUT, or in chunks where the
//! registry needs them. Several blobs go up at once. Manifests follow their
//! blobs, an index its manifests, and tags come last, so an interrupted push
//! never leaves a tag pointing at an incomplete image.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use reqwest::{Body, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{blob_stream, runtime, Client, RawManifest, Registries, RemoteRepo};
use crate::digest::Digest;
use crate::error::{Cause, Error, Result};
use crate::image::mutate::multi_platform_content_digest;
use crate::image::{media, Blob, BlobData, ImageSet, Index, Manifest, MediaFamily, Platform};
use crate::net::Failure;
use crate::reference::Reference;
use crate::transport::destination::Early;

/// The smallest upload chunk (`--chunk-size`): smaller ones would make a
/// request per few bytes.
pub const MIN_CHUNK_SIZE: u64 = 64 << 10;
/// The largest `--chunk-size` (a chunk is held in memory).
pub const MAX_CHUNK_SIZE: u64 = 1 << 30;

/// Blob existence checks (HEADs) sent side by side at most.
const CHECKS_AT_ONCE: usize = 8;

/// What a tag currently names in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagState {
    /// The tag does not exist.
    Absent,
    /// It names an image with the same content digest (its top digest given).
    Same(Digest),
    /// It names different content (its top digest given).
    Different(Digest),
}

/// What the content tag `tag` in `target`'s repository names (compared by
/// content digest, with the manifest it names), and what each of `others`
/// names (its manifest digest; `None` when absent) — asked at once.
pub fn tag_states(
    registries: &Arc<Registries>,
    target: &Reference,
    tag: &str,
    content: &Digest,
    others: &[String],
) -> Result<(TagState, Option<RawManifest>, Vec<Option<Digest>>)> {
    runtime().block_on(async {
        let client = registries.client(&target.registry).await?;
        let repo = &target.repository;
        let state = async {
            let Some(top) = client.get_manifest(repo, tag).await? else { return Ok((TagState::Absent, None)) };
            let found = content_digest_of(&client, repo, &top.bytes, &top.media_type).await?;
            let state = if found.as_ref() == Some(content) {
                TagState::Same(top.digest)
            } else {
                TagState::Different(top.digest)
            };
            Ok::<_, Error>((state, Some(top)))
        };
        let named = futures_util::future::try_join_all(
            others.iter().map(|t| async { Ok::<_, Error>(client.get_manifest(repo, t).await?.map(|m| m.digest)) }),
        );
        let ((state, top), named) = futures_util::future::try_join(state, named).await?;
        Ok((state, top, named))
    })
}

/// Points each of `tags` at the manifest `top` (its bytes and media type),
/// all at once.
pub fn set_tags(registries: &Arc<Registries>, target: &Reference, top: &RawManifest, tags: &[String]) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    runtime().block_on(async {
        let client = registries.client(&target.registry).await?;
        futures_util::future::try_join_all(
            tags.iter().map(|t| client.put_manifest(&target.repository, t, &top.bytes, &top.media_type)),
        )
        .await?;
        Ok(())
    })
}

/// What `target`'s repository answers before anything is built: the image
/// its tag names (its manifest digest, and the gzip layer blobs it holds by
/// diff_id, read from its configs), or — when the tag names nothing —
/// whether the repository lists no tag at all. Any failure says nothing is
/// known (and not empty).
pub fn ask_early(registries: &Arc<Registries>, target: &Reference) -> Early {
    runtime().block_on(async {
        let Ok(client) = registries.client(&target.registry).await else { return Early::default() };
        let repo = &target.repository;
        if let Some(tag) = &target.tag {
            match client.get_manifest(repo, tag).await {
                Ok(Some(m)) => {
                    let mut early = Early { empty: false, ..Early::default() };
                    early.tags.insert(tag.clone(), Some(m.digest));
                    early.layers = known_layers(&client, repo, &m).await;
                    return early;
                }
                Ok(None) => {
                    let empty = client.has_no_tags(repo).await.unwrap_or(false);
                    let tags = [(tag.clone(), None)].into();
                    return Early { empty, tags, ..Early::default() };
                }
                Err(_) => return Early::default(),
            }
        }
        Early { empty: client.has_no_tags(repo).await.unwrap_or(false), ..Early::default() }
    })
}

/// The gzip layers of the image (or every image of the index) `top`, by
/// diff_id: their blob digest and size, from each manifest's layers beside
/// its config's diff_ids. Whatever cannot be read is left out.
async fn known_layers(client: &Client, repo: &str, top: &RawManifest) -> HashMap<Digest, (Digest, u64)> {
    let manifests: Vec<Manifest> = if top.media_type == media::OCI_INDEX || top.media_type == media::DOCKER_LIST {
        let Ok(idx) = serde_json::from_slice::<Index>(&top.bytes) else { return HashMap::new() };
        let children = idx.manifests.iter().filter(|m| !m.is_attestation()).map(|m| async move {
            let child = client.get_manifest(repo, &m.digest.to_string()).await.ok().flatten()?;
            serde_json::from_slice::<Manifest>(&child.bytes).ok()
        });
        futures_util::future::join_all(children).await.into_iter().flatten().collect()
    } else {
        serde_json::from_slice::<Manifest>(&top.bytes).ok().into_iter().collect()
    };
    let configs = futures_util::future::join_all(manifests.iter().map(|m| async move {
        let bytes = client.get_small_blob(repo, &m.config).await.ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        v["rootfs"]["diff_ids"]
            .as_array()?
            .iter()
            .map(|d| d.as_str().and_then(|d| d.parse::<Digest>().ok()))
            .collect::<Option<Vec<Digest>>>()
    }))
    .await;
    let mut known = HashMap::new();
    for (m, ids) in manifests.iter().zip(configs) {
        let Some(ids) = ids.filter(|ids| ids.len() == m.layers.len()) else { continue };
        for (l, id) in m.layers.iter().zip(ids) {
            if crate::image::layer_is_gzip(&l.media_type) == Some(true) {
                known.insert(id, (l.digest, l.size));
            }
        }
    }
    known
}

/// The content digest (see [`crate::image::mutate::content_digest`]) of a manifest or index in a registry.
async fn content_digest_of(client: &Client, repo: &str, bytes: &[u8], media_type: &str) -> Result<Option<Digest>> {
    if media_type == media::OCI_INDEX || media_type == media::DOCKER_LIST {
        let idx: Index =
            serde_json::from_slice(bytes).map_err(|e| Error::source(format!("{repo}: invalid index: {e}")))?;
        let mut entries: Vec<(Platform, Digest)> = Vec::new();
        for m in idx.manifests.iter().filter(|m| !m.is_attestation()) {
            let Some(child) = client.get_manifest(repo, &m.digest.to_string()).await? else { return Ok(None) };
            let Ok(cm) = serde_json::from_slice::<Manifest>(&child.bytes) else { return Ok(None) };
            let Some(p) = m.platform.clone() else { return Ok(None) };
            entries.push((p, cm.config.digest));
        }
        if entries.len() == 1 {
            return Ok(Some(entries[0].1));
        }
        Ok(Some(multi_platform_content_digest(&entries)))
    } else {
        Ok(serde_json::from_slice::<Manifest>(bytes).ok().map(|m| m.config.digest))
    }
}

/// How one blob got to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Already there.
    Present,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Uploaded (bytes sent).
    Uploaded(u64),
}

/// Pushes `set` to `target`'s repository and tags it with every tag in `tags`.
/// Returns the top-level digest.
pub fn push(
    registries: &Arc<Registries>,
    set: &ImageSet,
    target: &Reference,
    tags: &[String],
    started: &mut Started,
) -> Result<Digest> {
    let top = set.top().desc.digest;
    let is_manifest = |b: &&Blob| MediaFamily::of(&b.desc.media_type).is_some();
    let blobs = set.blobs_in_write_order();
    let layers_and_configs: Vec<Blob> = blobs.iter().filter(|b| !is_manifest(b)).map(|b| (*b).clone()).collect();
    let manifests: Vec<Blob> =
        blobs.iter().filter(|b| is_manifest(b) && b.desc.digest != top).map(|b| (*b).clone()).collect();
    let graph = Graph { blobs: &layers_and_configs, children: &manifests, top: set.top(), tags };
    let pushed = push_started(registries, target, &graph, started)?;
    crate::progress::message(&pushed.summary);
    Ok(pushed.digest)
}

/// What a push did: the top-level digest, and one line saying how.
pub struct Pushed {
    /// The top-level digest pushed.
    pub digest: Digest,
    /// Blobs uploaded, mounted and found there, and the tags set.
    pub summary: String,
}

/// Whether `target`'s repository has each of `digests` (HEADs, side by side).
pub fn blobs_present(registries: &Arc<Registries>, target: &Reference, digests: &[Digest]) -> Result<Vec<bool>> {
    runtime().block_on(async {
        let client = registries.client(&target.registry).await?;
        stream::iter(digests.iter().map(|d| client.blob_exists(&target.repository, d, true)))
            .buffered(CHECKS_AT_ONCE)
            .try_collect()
            .await
    })
}

/// Blob uploads started before their image is pushed (see
/// [`Destination::offer`](crate::transport::destination::Destination::offer)):
/// a layer goes up while the next one is compressed. Dropping it aborts
/// what is still running.
#[derive(Default)]
pub struct Started {
    tasks: HashMap<Digest, tokio::task::JoinHandle<Result<BlobOutcome>>>,
    /// As many uploads at once as a push runs side by side.
    permits: Option<Arc<tokio::sync::Semaphore>>,
}

impl Started {
    /// Starts getting `blob` into `target`'s repository in the background.
    pub fn start(&mut self, registries: &Arc<Registries>, target: &Reference, blob: &Blob) {
        if self.tasks.contains_key(&blob.desc.digest) {
            return;
        }
        let permits = self
            .permits
            .get_or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(registries.options().concurrency.max(1))))
            .clone();
        let (registries, host, repo, b) =
            (registries.clone(), target.registry.clone(), target.repository.clone(), blob.clone());
        let task = runtime().spawn(async move {
            let _permit = permits.acquire_owned().await.map_err(|e| Error::source(e.to_string()))?;
            let client = registries.client(&host).await?;
            push_blob(&registries, &client, &repo, &b).await
        });
        self.tasks.insert(blob.desc.digest, task);
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}

/// What one push writes: blobs, then child manifests by digest, then `top`
/// by digest and by each tag.
pub struct Graph<'a> {
    /// Layers and configs.
    pub blobs: &'a [Blob],
    /// Child manifests (an index's images).
    pub children: &'a [Blob],
    /// The manifest or index the tags point to.
    pub top: &'a Blob,
    /// Tags given to `top`.
    pub tags: &'a [String],
}

/// Pushes `graph` into `target`'s repository; reports nothing (the caller
/// shows the summary if it wants).
pub fn push_graph(registries: &Arc<Registries>, target: &Reference, graph: &Graph<'_>) -> Result<Pushed> {
    push_started(registries, target, graph, &mut Started::default())
}

/// [`push_graph`], awaiting the uploads `started` already runs instead of starting them again.
fn push_started(
    registries: &Arc<Registries>,
    target: &Reference,
    graph: &Graph<'_>,
    started: &mut Started,
) -> Result<Pushed> {
    let Graph { blobs, children, top, tags } = *graph;
    let (outcomes, client) = runtime().block_on(async {
        let client = registries.client(&target.registry).await?;
        let repo = target.repository.clone();
        // Every blob not already on its way is asked about at once; only
        // the missing ones then take an upload slot.
        let early: Vec<_> = blobs.iter().map(|b| started.tasks.remove(&b.desc.digest)).collect();
        let present: Vec<bool> = stream::iter(blobs.iter().zip(&early))
            .map(|(b, e)| {
                let (client, repo) = (client.clone(), repo.clone());
                async move {
                    match e {
                        Some(_) => Ok(false),
                        None => client.blob_exists(&repo, &b.desc.digest, true).await,
                    }
                }
            })
            .buffered(CHECKS_AT_ONCE)
            .try_collect()
            .await?;
        let results: Vec<Result<(Digest, BlobOutcome)>> = stream::iter(blobs.iter().cloned().zip(early).zip(present))
            .map(|((b, early), present)| {
                let client = client.clone();
                let repo = repo.clone();
                async move {
                    let outcome = match early {
                        Some(task) => task.await.map_err(|e| {
                            Error::source(format!("upload of {} stopped: {e}", b.desc.digest.short(12)))
                        })?,
                        None if present => {
                            let short = b.desc.digest.short(12);
                            crate::progress::detail(&format!("{}/{repo}: {short} already there", client.host));
                            Ok(BlobOutcome::Present)
                        }
                        None => place_blob(registries, &client, &repo, &b).await,
                    };
                    outcome.map(|o| (b.desc.digest, o))
                }
            })
            .buffer_unordered(client.opts.concurrency.max(1))
            .collect()
            .await;
        let outcomes = results.into_iter().collect::<Result<Vec<_>>>()?;
        for m in children {
            let bytes = m.read_all().map_err(|e| Error::source(format!("{}: {e}", m.origin())))?;
            client.put_manifest(&repo, &m.desc.digest.to_string(), &bytes, &m.desc.media_type).await?;
        }
        let top_bytes = top.read_all().map_err(|e| Error::source(format!("{}: {e}", top.origin())))?;
        if !children.iter().any(|c| c.desc.digest == top.desc.digest) {
            client.put_manifest(&repo, &top.desc.digest.to_string(), &top_bytes, &top.desc.media_type).await?;
        }
        for t in tags {
            client.put_manifest(&repo, t, &top_bytes, &top.desc.media_type).await?;
        }
        Ok::<_, Error>((outcomes, client))
    })?;
    let (mut present, mut mounted, mut uploaded, mut bytes) = (0, 0, 0, 0u64);
    for (_, o) in &outcomes {
        match o {
            BlobOutcome::Present => present += 1,
            BlobOutcome::Mounted => mounted += 1,
            BlobOutcome::Uploaded(n) => {
                uploaded += 1;
                bytes += n;
            }
        }
    }
    let _ = client;
    let summary = format!(
        "pushed {}/{}: {uploaded} blobs uploaded ({}), {mounted} mounted, {present} already there; tags {}",
        target.registry,
        target.repository,
        crate::fmt::human(bytes),
        if tags.is_empty() { "-".to_string() } else { tags.join(", ") }
    );
    Ok(Pushed { digest: top.desc.digest, summary })
}

/// Gets one blob into `repo`: HEAD, then mount (when the blob is in
/// another repository of the same registry), then upload.
async fn push_blob(registries: &Registries, client: &Arc<Client>, repo: &str, blob: &Blob) -> Result<BlobOutcome> {
    let short = blob.desc.digest.short(12);
    if client.blob_exists(repo, &blob.desc.digest, true).await? {
        crate::progress::detail(&format!("{}/{repo}: {short} already there", client.host));
        return Ok(BlobOutcome::Present);
    }
    place_blob(registries, client, repo, blob).await
}

/// Gets a blob that `repo` lacks into it: mount (when the blob is in
/// another repository of the same registry), else upload.
async fn place_blob(registries: &Registries, client: &Arc<Client>, repo: &str, blob: &Blob) -> Result<BlobOutcome> {
    let short = blob.desc.digest.short(12);
    if let Some(src) = blob.mount_source() {
        if src.registry == client.host
            && src.repository != repo
            && mount(client, repo, &blob.desc.digest, &src.repository).await?
        {
            crate::progress::detail(&format!("{}/{repo}: {short} mounted from {}", client.host, src.repository));
            return Ok(BlobOutcome::Mounted);
        }
    }
    let n = upload(registries, client, repo, blob).await?;
    crate::progress::detail(&format!("{}/{repo}: {short} uploaded ({})", client.host, crate::fmt::human(n)));
    Ok(BlobOutcome::Uploaded(n))
}

/// Tries a cross-repository mount; `false` means "upload instead".
async fn mount(client: &Client, repo: &str, digest: &Digest, from: &str) -> Result<bool> {
    let path = format!("{repo}/blobs/uploads/?mount={digest}&from={from}");
    let scopes = vec![format!("repository:{repo}:pull,push"), format!("repository:{from}:pull")];
    let resp = client.send(&scopes, &|h| client.request(h, Method::POST, &path)).await?;
    match resp.status() {
        StatusCode::CREATED => Ok(true),
        StatusCode::ACCEPTED => {
            if let Some(Ok(url)) =
                resp.headers().get("Location").and_then(|v| v.to_str().ok()).map(|l| client.absolute(l))
            {
                let _ = client.send(&scopes, &|h| h.request(Method::DELETE, url.clone())).await;
            }
            Ok(false)
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Ok(false),
        _ => Err(client.status_error(resp, &format!("mount {digest} from {from} into {repo}")).await),
    }
}

/// Opens the bytes of a blob as a stream, wherever they are (a blob in
/// another registry is streamed from it through `registries`).
async fn open_stream(registries: &Registries, blob: &Blob) -> Result<BoxStream<'static, io::Result<Bytes>>> {
    match &blob.data {
        BlobData::Bytes(b) => {
            Ok(stream::once(futures_util::future::ready(Ok(Bytes::copy_from_slice(b.as_ref())))).boxed())
        }
        BlobData::File { path, offset, len } => file_stream(path, *offset, *len).await,
        BlobData::Staged { path, len } => file_stream(path, 0, *len).await,
        BlobData::Held => Err(Error::source(format!(
            "{}: the registry no longer has this layer, which it had when the build began; run again",
            blob.desc.digest
        ))),
        BlobData::Remote(r) => match r.mount_source() {
            Some(src) => blob_stream(&*registries.client(&src.registry).await?, &src.repository, &blob.desc).await,
            None => Err(Error::source(format!("{}: unsupported remote source", blob.origin()))),
        },
    }
}

async fn file_stream(path: &std::path::Path, offset: u64, len: u64) -> Result<BoxStream<'static, io::Result<Bytes>>> {
    let mut f = tokio::fs::File::open(path).await.map_err(|e| Error::io("reading", path, e))?;
    f.seek(io::SeekFrom::Start(offset)).await.map_err(|e| Error::io("reading", path, e))?;
    Ok(tokio_util::io::ReaderStream::with_capacity(f.take(len), 1 << 20).boxed())
}

/// Uploads a blob, restarting from a fresh upload session on transient
/// failures. Returns the bytes sent.
async fn upload(registries: &Registries, client: &Arc<Client>, repo: &str, blob: &Blob) -> Result<u64> {
    let policy = client.policy();
    let short = blob.desc.digest.short(12);
    let what = format!("upload of {short} to {}/{repo}", client.host);
    let mut last: Option<Failure> = None;
    let mut chunked = client.opts.chunk_size.is_some();
    // A 413 is answered at once by switching to chunks, without a wait.
    let mut switched = false;
    let label = crate::progress::blob_name(&blob.desc.digest.to_string()).unwrap_or_else(|| short.clone());
    let task = Arc::new(crate::progress::Task::start(&format!("upload {label}"), Some(blob.desc.size)));
    for attempt in 0..policy.attempts {
        if let Some(f) = &last {
            crate::progress::detail(&format!("{}: retrying upload of {short} ({})", client.host, f.error));
            if !std::mem::take(&mut switched) {
                policy.pause(attempt, &what, f).await;
            }
        }
        match upload_once(registries, client, repo, blob, chunked, &task).await {
            Ok(n) => return Ok(n),
            Err(f) if f.error.http_status() == Some(413) && !chunked => {
                (chunked, switched) = (true, true);
                last = Some(Failure::transient(f.error, None));
            }
            Err(f) if f.retryable => last = Some(f),
            Err(f) => return Err(f.error),
        }
    }
    Err(policy.gave_up(last.expect("an attempt failed"), &what))
}

async fn upload_once(
    registries: &Registries,
    client: &Arc<Client>,
    repo: &str,
    blob: &Blob,
    chunked: bool,
    task: &Arc<crate::progress::Task>,
) -> std::result::Result<u64, Failure> {
    let scopes = vec![format!("repository:{repo}:pull,push")];
    let start = format!("{repo}/blobs/uploads/");
    let resp =
        client.attempt(&scopes, &|h| client.request(h, Method::POST, &start).header("Content-Length", "0")).await?;
    if resp.status() != StatusCode::ACCEPTED {
        return Err(Failure {
            error: client.status_error(resp, &format!("start upload to {repo}")).await,
            retryable: false,
            retry_after: None,
        });
    }
    let mut location = location(client, &resp)?;
    let fatal = |e: Error| Failure { error: e, retryable: false, retry_after: None };
    let digest = blob.desc.digest;
    let size = blob.desc.size;
    let counter = client.clone();
    let task = task.clone();
    let source = open_stream(registries, blob)
        .await
        .map_err(|e| Failure { error: e, retryable: true, retry_after: None })?
        .inspect_ok(move |c| {
            counter.count_upload(c.len() as u64);
            task.advance(c.len() as u64);
        });
    if !chunked {
        let url = with_digest(&location, &digest);
        let body = std::sync::Mutex::new(Some(Body::wrap_stream(source)));
        let resp = client
            .attempt(&scopes, &|h| {
                let b = body.lock().expect("body").take().unwrap_or_else(|| Body::from(Vec::new()));
                h.request(Method::PUT, url.clone())
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Length", size.to_string())
                    .body(b)
            })
            .await?;
        return finish(client, resp, repo, &digest, size).await;
    }
    let chunk = client.opts.chunk_size.unwrap_or(4 << 20).max(MIN_CHUNK_SIZE) as usize;
    let mut source = Box::pin(source);
    let mut buf: Vec<u8> = Vec::with_capacity(chunk.min(4 << 20));
    let mut sent: u64 = 0;
    let mut done = false;
    while !done {
        while buf.len() < chunk {
            match source.next().await {
                Some(Ok(b)) => buf.extend_from_slice(&b),
                Some(Err(e)) => {
                    return Err(Failure { error: Error::source(e.to_string()), retryable: true, retry_after: None })
                }
                None => {
                    done = true;
                    break;
                }
            }
        }
        while !buf.is_empty() && (buf.len() >= chunk || done) {
            let take = buf.len().min(chunk);
            let piece = Bytes::from(buf.drain(..take).collect::<Vec<u8>>());
            let range = format!("{}-{}", sent, sent + piece.len() as u64 - 1);
            let url = location.clone();
            let resp = client
                .attempt(&scopes, &|h| {
                    h.request(Method::PATCH, url.clone())
                        .header("Content-Type", "application/octet-stream")
                        .header("Content-Range", range.clone())
                        .header("Content-Length", piece.len().to_string())
                        .body(piece.clone())
                })
                .await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(fatal(client.status_error(resp, &format!("upload chunk to {repo}")).await));
            }
            location = location_of(client, &resp)?.unwrap_or(location);
            sent += piece.len() as u64;
        }
    }
    let url = with_digest(&location, &digest);
    let resp = client.attempt(&scopes, &|h| h.request(Method::PUT, url.clone()).header("Content-Length", "0")).await?;
    finish(client, resp, repo, &digest, sent).await
}

async fn finish(
    client: &Client,
    resp: reqwest::Response,
    repo: &str,
    digest: &Digest,
    n: u64,
) -> std::result::Result<u64, Failure> {
    match resp.status() {
        StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK => Ok(n),
        StatusCode::PAYLOAD_TOO_LARGE => Err(Failure {
            error: Error::source(format!("{}: upload of {digest} refused with 413", client.host))
                .with_cause(Cause::Http { status: 413 }),
            retryable: true,
            retry_after: None,
        }),
        _ => Err(Failure {
            error: client.status_error(resp, &format!("upload {digest} to {repo}")).await,
            retryable: false,
            retry_after: None,
        }),
    }
}

/// The upload's next URL from a `Location` header; a move from HTTPS to
/// plain HTTP is refused (another origin is used without credentials).
fn location_of(client: &Client, resp: &reqwest::Response) -> std::result::Result<Option<String>, Failure> {
    match resp.headers().get("Location").and_then(|v| v.to_str().ok()) {
        Some(l) => client.absolute(l).map(Some).map_err(|error| Failure { error, retryable: false, retry_after: None }),
        None => Ok(None),
    }
}

fn location(client: &Client, resp: &reqwest::Response) -> std::result::Result<String, Failure> {
    location_of(client, resp)?.ok_or_else(|| Failure {
        error: Error::source(format!("{}: upload started without a Location header", client.host)),
        retryable: false,
        retry_after: None,
    })
}

fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// Adds `tags` (in `src`'s repository) to the image `src` names, without
/// moving any blob. Returns the image's digest.
pub fn tag(registries: &Arc<Registries>, src: &Reference, tags: &[String]) -> Result<Digest> {
    runtime().block_on(async {
        let client = registries.client(&src.registry).await?;
        let wanted = src.digest.map(|d| d.to_string()).unwrap_or_else(|| src.tag_or_latest().to_string());
        let m = client
            .get_manifest(&src.repository, &wanted)
            .await?
            .ok_or_else(|| Error::source(format!("{src}: not found in the registry")))?;
        for t in tags {
            client.put_manifest(&src.repository, t, &m.bytes, &m.media_type).await?;
        }
        Ok(m.digest)
    })
}

/// Copies the image `src` names to `dst` (every platform and attestation,
/// byte for byte, so the digest is kept): blobs are mounted within a registry
/// and streamed between registries. Returns the digest.
pub fn copy(registries: &Arc<Registries>, src: &Reference, dst: &Reference) -> Result<Digest> {
    let (blobs, children, top) = runtime().block_on(async {
        let client = registries.client(&src.registry).await?;
        let wanted = src.digest.map(|d| d.to_string()).unwrap_or_else(|| src.tag_or_latest().to_string());
        let top = client
            .get_manifest(&src.repository, &wanted)
            .await?
            .ok_or_else(|| Error::source(format!("{src}: not found in the registry")))?;
        let remote: Arc<dyn crate::image::RemoteBlobs> =
            Arc::new(RemoteRepo { client: client.clone(), repository: src.repository.clone() });
        let mut manifests = Vec::new();
        let mut children = Vec::new();
        if top.media_type == media::OCI_INDEX || top.media_type == media::DOCKER_LIST {
            let idx: Index =
                serde_json::from_slice(&top.bytes).map_err(|e| Error::source(format!("{src}: invalid index: {e}")))?;
            for m in &idx.manifests {
                let child = client.get_manifest(&src.repository, &m.digest.to_string()).await?.ok_or_else(|| {
                    Error::source(format!("{src}: index lists {} but the registry lacks it", m.digest))
                })?;
                children.push(Blob::bytes(&child.media_type, child.bytes.clone()));
                manifests.push(child);
            }
        } else {
            manifests.push(top.clone());
        }
        let mut blobs: Vec<Blob> = Vec::new();
        for m in &manifests {
            let parsed: Manifest = serde_json::from_slice(&m.bytes)
                .map_err(|e| Error::source(format!("{src}: manifest {}: {e}", m.digest)))?;
            for d in std::iter::once(&parsed.config).chain(parsed.layers.iter()) {
                if !blobs.iter().any(|b| b.desc.digest == d.digest) {
                    blobs.push(Blob { desc: d.clone(), data: BlobData::Remote(remote.clone()) });
                }
            }
        }
        let top_blob = Blob::bytes(&top.media_type, top.bytes.clone());
        Ok::<_, Error>((blobs, children, top_blob))
    })?;
    let tags: Vec<String> = dst.tag.clone().or_else(|| src.tag.clone()).into_iter().collect();
    let pushed = push_graph(registries, dst, &Graph { blobs: &blobs, children: &children, top: &top, tags: &tags })?;
    crate::progress::message(&pushed.summary);
    Ok(pushed.digest)
}
