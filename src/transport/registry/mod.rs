//! The registry transport: talk to registries directly over the distribution
//! API. [`client`] is one registry host (scheme, TLS, auth, retries),
//! [`auth`] finds credentials and parses challenges, [`pull`] reads a base
//! (manifests and configs only; layers stay remote until something needs their
//! bytes) and [`push`] writes results (HEAD, mount, stream, upload; manifests
//! after blobs, tags last), and adds tags or copies images. [`origin`] keeps
//! credentials on the registry they were found for.
//!
//! Async stays inside this module: the rest of wso2img calls it through
//! [`runtime`] (the [`crate::net`] runtime) and sees plain `Read`ers.

pub mod auth;
pub mod client;
pub mod destination;
mod location;
pub mod origin;
pub mod pull;
pub mod push;

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use reqwest::{Method, StatusCode};

pub use crate::net::runtime;
pub use client::{Client, Options};
pub use location::Repository;

use crate::bounded::{CONFIG_MAX, MANIFEST_MAX};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::image::{media, Descriptor, MountSource, RemoteBlobs};
use crate::net::Failure;

/// Every manifest media type wso2img reads.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A session with any number of registries, one connected client per host.
pub struct Registries {
    opts: Options,
    clients: tokio::sync::Mutex<HashMap<String, Arc<Client>>>,
}

impl Registries {
    /// A session with `opts`.
    pub fn new(opts: Options) -> Arc<Self> {
        Arc::new(Registries { opts, clients: tokio::sync::Mutex::new(HashMap::new()) })
    }

    /// The options of this session.
    pub fn options(&self) -> &Options {
        &self.opts
    }
    /// The client for `host`, connecting on first use.
    pub async fn client(&self, host: &str) -> Result<Arc<Client>> {
        let mut map = self.clients.lock().await;
        if let Some(c) = map.get(host) {
            return Ok(c.clone());
        }
        let c = Arc::new(Client::connect(host, &self.opts)?);
        map.insert(host.to_string(), c.clone());
        Ok(c)
    }
    /// Blob bytes uploaded to every registry so far.
    pub fn uploaded_bytes(&self) -> u64 {
        runtime().block_on(async { self.clients.lock().await.values().map(|c| c.uploaded_bytes()).sum() })
    }
}

/// A manifest or index exactly as the registry serves it.
#[derive(Debug, Clone)]
pub struct RawManifest {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// The digest of the bytes.
    pub digest: Digest,
}

fn pull_scope(repo: &str) -> Vec<String> {
    vec![format!("repository:{repo}:pull")]
}

fn push_scope(repo: &str) -> Vec<String> {
    vec![format!("repository:{repo}:pull,push")]
}

impl Client {
    /// Fetches a manifest by tag or digest; `None` when it does not exist.
    /// Asked by digest, the bytes are verified. A connection that breaks
    /// while the body is read is retried like any transient failure.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Option<RawManifest>> {
        let what = format!("manifest {repo}:{reference}");
        self.policy()
            .run(&what, move || async move {
                self.get_manifest_once(repo, reference).await.map_err(|(e, again)| {
                    if again {
                        Failure::transient(e, None)
                    } else {
                        Failure::fatal(e)
                    }
                })
            })
            .await
    }

    async fn get_manifest_once(
        &self,
        repo: &str,
        reference: &str,
    ) -> std::result::Result<Option<RawManifest>, (Error, bool)> {
        let path = format!("{repo}/manifests/{reference}");
        let resp = self
            .send(&pull_scope(repo), &|h| self.request(h, Method::GET, &path).header("Accept", ACCEPT))
            .await
            .map_err(|e| (e, false))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err((self.status_error(resp, &format!("GET manifest {repo}:{reference}")).await, false));
        }
        let ct = resp.headers().get("Content-Type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = self.read_body(resp, MANIFEST_MAX, &format!("manifest {repo}:{reference}")).await?;
        let digest = Digest::of(&bytes);
        if let Ok(want) = reference.parse::<Digest>() {
            if want != digest {
                return Err((
                    Error::source(format!(
                        "{}/{repo}@{want}: the registry served a manifest with digest {digest}; refusing it",
                        self.host
                    )),
                    false,
                ));
            }
        }
        let media_type = if ct.contains("json") && !ct.starts_with("application/json") {
            ct.split(';').next().unwrap_or("").trim().to_string()
        } else {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            match v["mediaType"].as_str() {
                Some(m) => m.to_string(),
                None if v.get("manifests").is_some() => media::OCI_INDEX.to_string(),
                None => media::OCI_MANIFEST.to_string(),
            }
        };
        Ok(Some(RawManifest { bytes, media_type, digest }))
    }

    /// Stores a manifest under a tag or its digest.
    pub async fn put_manifest(&self, repo: &str, reference: &str, bytes: &[u8], media_type: &str) -> Result<()> {
        let path = format!("{repo}/manifests/{reference}");
        let body = Bytes::copy_from_slice(bytes);
        let resp = self
            .send(&push_scope(repo), &|h| {
                self.request(h, Method::PUT, &path).header("Content-Type", media_type).body(body.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(resp, &format!("PUT manifest {repo}:{reference}")).await);
        }
        Ok(())
    }

    /// Whether the repository has the blob.
    pub async fn blob_exists(&self, repo: &str, digest: &Digest, push: bool) -> Result<bool> {
        let path = format!("{repo}/blobs/{digest}");
        let scopes = if push { push_scope(repo) } else { pull_scope(repo) };
        let resp = self.send(&scopes, &|h| self.request(h, Method::HEAD, &path)).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(resp, &format!("HEAD blob {repo}@{digest}")).await),
        }
    }

    /// Whether the repository is unknown or lists no tag (the first page of
    /// its tag list, one entry long, is empty).
    pub async fn has_no_tags(&self, repo: &str) -> Result<bool> {
        let path = format!("{repo}/tags/list?n=1");
        let resp = self.send(&pull_scope(repo), &|h| self.request(h, Method::GET, &path)).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(true),
            s if s.is_success() => {
                #[derive(serde::Deserialize)]
                struct Tags {
                    tags: Option<Vec<String>>,
                }
                let body = self.read_body(resp, 64 * 1024, &format!("tags of {repo}")).await.map_err(|(e, _)| e)?;
                let tags: Tags = serde_json::from_slice(&body)
                    .map_err(|e| Error::source(format!("{}/{repo}: tag list is not JSON ({e})", self.host)))?;
                Ok(tags.tags.is_none_or(|t| t.is_empty()))
            }
            _ => Err(self.status_error(resp, &format!("list tags of {repo}")).await),
        }
    }

    /// Fetches a small blob (a config) and verifies it, retrying broken reads.
    /// Reading stops at the size its descriptor declares.
    pub async fn get_small_blob(&self, repo: &str, desc: &Descriptor) -> Result<Vec<u8>> {
        if desc.size > CONFIG_MAX {
            return Err(Error::source(format!(
                "{}/{repo}: config {} is {} bytes; refusing",
                self.host, desc.digest, desc.size
            )));
        }
        let what = format!("config {repo}@{}", desc.digest);
        let what_ref = what.as_str();
        self.policy()
            .run(&what, move || async move {
                let mut s = blob_stream(self, repo, desc).await.map_err(Failure::fatal)?;
                let mut out = Vec::with_capacity(desc.size as usize);
                while let Some(c) = self.waiting(what_ref, s.next()).await {
                    match c {
                        Ok(c) => out.extend_from_slice(&c),
                        Err(e) if is_transient(&e) => {
                            return Err(Failure::transient(Error::source(e.to_string()), None))
                        }
                        Err(e) => return Err(Failure::fatal(Error::source(e.to_string()))),
                    }
                }
                Ok(out)
            })
            .await
    }
}

/// Streams a blob, verifying size and digest: the stream ends with an error
/// instead of its last chunk when they do not match.
pub async fn blob_stream(
    client: &Client,
    repo: &str,
    desc: &Descriptor,
) -> Result<BoxStream<'static, io::Result<Bytes>>> {
    let path = format!("{repo}/blobs/{}", desc.digest);
    let resp = client.send(&pull_scope(repo), &|h| client.request(h, Method::GET, &path)).await?;
    if !resp.status().is_success() {
        return Err(client.status_error(resp, &format!("GET blob {repo}@{}", desc.digest)).await);
    }
    if let Some(n) = resp.content_length().filter(|n| *n > desc.size) {
        return Err(Error::source(format!(
            "{}/{repo}@{}: the registry sends {n} bytes for a blob of {}; refusing it",
            client.host, desc.digest, desc.size
        )));
    }
    let stalled = client.stalled(&format!("GET blob {repo}@{}", desc.digest)).to_string();
    let host = client.host.clone();
    let inner = resp.bytes_stream().map(move |r| {
        r.map_err(|e| {
            if e.is_timeout() {
                io::Error::new(io::ErrorKind::TimedOut, stalled.clone())
            } else {
                io::Error::other(format!("{host}: {}", crate::net::one_line(&e)))
            }
        })
    });
    Ok(verify_stream(inner, desc.digest, desc.size, format!("{}/{repo}", client.host)))
}

/// How many times a streamed base blob is read before a cut connection fails it.
const READ_ATTEMPTS: u32 = 3;

/// Whether a failed blob read is worth another attempt: not when the source
/// sent more than declared, a corrupt blob, or stalled.
fn is_transient(e: &io::Error) -> bool {
    !matches!(e.kind(), io::ErrorKind::FileTooLarge | io::ErrorKind::InvalidData | io::ErrorKind::TimedOut)
}

/// Wraps a byte stream so it fails as soon as it passes `size` bytes, and at
/// its end unless it had `size` bytes with `digest`.
fn verify_stream(
    inner: impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static,
    digest: Digest,
    size: u64,
    what: String,
) -> BoxStream<'static, io::Result<Bytes>> {
    struct State<S> {
        inner: S,
        hasher: Option<Hasher>,
        seen: u64,
    }
    let st = State { inner: Box::pin(inner), hasher: Some(Hasher::new()), seen: 0 };
    futures_util::stream::unfold(st, move |mut st| {
        let what = what.clone();
        async move {
            let hasher = st.hasher.as_mut()?;
            match st.inner.next().await {
                Some(Ok(chunk)) => {
                    st.seen += chunk.len() as u64;
                    if st.seen > size {
                        st.hasher = None;
                        let msg = format!(
                            "{what}@{digest}: the source sent more than the {size} bytes declared; refusing it"
                        );
                        return Some((Err(io::Error::new(io::ErrorKind::FileTooLarge, msg)), st));
                    }
                    hasher.update(&chunk);
                    Some((Ok(chunk), st))
                }
                Some(Err(e)) => {
                    st.hasher = None;
                    Some((Err(e), st))
                }
                None => {
                    let (got, n) = st.hasher.take().expect("present").finish();
                    if got == digest && n == size {
                        None
                    } else {
                        Some((
                            Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("{what}@{digest}: received {n} bytes with digest {got}; the blob is corrupt"),
                            )),
                            st,
                        ))
                    }
                }
            }
        }
    })
    .boxed()
}

/// A repository's blobs, readable from synchronous code.
#[derive(Clone)]
pub struct RemoteRepo {
    /// The registry client.
    pub client: Arc<Client>,
    /// The repository.
    pub repository: String,
}

impl RemoteBlobs for RemoteRepo {
    fn open(&self, desc: &Descriptor) -> io::Result<Box<dyn Read + Send>> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Bytes>>(8);
        let me = self.clone();
        let task = crate::progress::Task::start(&format!("pull {}", desc.digest.short(12)), Some(desc.size));
        let desc = desc.clone();
        runtime().spawn(async move {
            let what = format!("GET blob {}@{}", me.repository, desc.digest.short(12));
            // A connection cut mid-blob is read again from the start, up to
            // READ_ATTEMPTS times; the bytes already passed on are skipped,
            // after checking they are the same bytes.
            let mut passed = Hasher::new();
            for attempt in 1..=READ_ATTEMPTS {
                let mut s = match blob_stream(&me.client, &me.repository, &desc).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::other(e.to_string())));
                        return;
                    }
                };
                let mut skip = passed.len();
                let mut again = Hasher::new();
                loop {
                    match me.client.waiting(&what, s.next()).await {
                        None => return,
                        Some(Ok(mut b)) => {
                            if skip > 0 {
                                let n = skip.min(b.len() as u64) as usize;
                                again.update(&b[..n]);
                                skip -= n as u64;
                                b = b.slice(n..);
                                if skip == 0 && again.clone().finish() != passed.clone().finish() {
                                    let _ = tx.send(Err(io::Error::new(
                                        io::ErrorKind::InvalidData,
                                        format!("{}: {what}: the blob changed between two reads", me.client.host),
                                    )));
                                    return;
                                }
                            }
                            if b.is_empty() {
                                continue;
                            }
                            passed.update(&b);
                            if tx.send(Ok(b)).is_err() {
                                return;
                            }
                        }
                        Some(Err(e)) if attempt < READ_ATTEMPTS && is_transient(&e) => {
                            crate::progress::debug(&format!("{what}: {e}; reading it again"));
                            break;
                        }
                        Some(Err(e)) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            }
        });
        Ok(Box::new(ChannelReader { rx, buf: Bytes::new(), task }))
    }
    fn describe(&self) -> String {
        format!("{}/{}", self.client.host, self.repository)
    }
    fn mount_source(&self) -> Option<MountSource> {
        Some(MountSource { registry: self.client.host.clone(), repository: self.repository.clone() })
    }
}

struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Bytes>>,
    buf: Bytes,
    task: crate::progress::Task,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    self.task.advance(b.len() as u64);
                    self.buf = b
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        Ok(n)
    }
}
