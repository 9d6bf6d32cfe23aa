//! The Docker Engine transport (`docker-daemon:NAME[:TAG]`), over the Engine
//! API with bollard: read a base from the local daemon (`docker save` streamed
//! into a temporary file), load results into it (`docker load`, sending only
//! the layers it lacks), and have it pull and push, so that the registry
//! mirrors, proxies and network access configured for the daemon are used.
//!
//! A base's config is cached by image ID (verified: the ID is its digest) in
//! `$XDG_CACHE_HOME/wso2img/docker-daemon/` (else `~/.cache/…`). With it, the
//! base's layers are saved from the daemon only when something reads them — a
//! build whose destinations are all the daemon never does, so iterating on a
//! customization does not copy the base out of the daemon each time.
//!
//! The daemon is the one `DOCKER_HOST` names (`unix:///PATH`), else
//! `/var/run/docker.sock`. Requests use unversioned API paths, so Docker 20.10
//! (API 1.41) and current Docker both answer. Registry credentials come from
//! [`crate::registry::auth::lookup`] and travel in `X-Registry-Auth` as
//! URL-safe base64, the encoding the daemon decodes. Async stays inside this
//! module: callers see blocking functions driven by [`runtime`].

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use bollard::errors::Error as BollardError;
use bollard::models::ImageInspect;
use bollard::query_parameters::{ImportImageOptions, ListImagesOptions, TagImageOptions};
use bollard::Docker;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::build::human;
use crate::digest::Digest;
use crate::error::{io_reason, Error, Kind, Result};
use crate::image::{media, Blob, BlobData, Descriptor, Image, MediaFamily, RemoteBlobs};
use crate::reference::{Location, Reference};
use crate::registry::auth::{self, Credential, Found};
use crate::registry::client::urlencode as escape;
use crate::registry::runtime;
use crate::transport::{archive, base_image, Base};

/// The daemon address when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// How long a request may wait for the daemon's answer. A `docker load` is
/// answered only once the daemon has read and unpacked the whole archive, so
/// this suits loads of many GB rather than bollard's 120 s default.
const REQUEST_TIMEOUT_SECS: u64 = 3 * 3600;
/// How long the first request (`GET /version`) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes per chunk of a streamed `docker load` body.
const CHUNK: usize = 1 << 20;
/// Images of a target repository inspected for layers the daemon already has.
const RECENT_IMAGES: usize = 32;
/// Images of the whole daemon inspected when neither the base nor the target
/// repository shares a layer.
const ANY_IMAGES: usize = 64;
/// Progress statuses that are repeated per layer while work is under way;
/// only their outcomes ("Pushed", "Pull complete", …) are worth a line.
const TRANSIENT: &[&str] = &[
    "Preparing",
    "Waiting",
    "Pushing",
    "Pulling fs layer",
    "Downloading",
    "Verifying Checksum",
    "Download complete",
    "Extracting",
    "Loading layer",
];

/// A connection to the local Docker Engine.
#[derive(Clone)]
pub struct Daemon {
    docker: Docker,
    host: String,
    socket: PathBuf,
    from_env: bool,
    containerd_store: OnceLock<bool>,
}

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

/// One message of a daemon progress stream (pull, push, load).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    status: Option<String>,
    id: Option<String>,
    stream: Option<String>,
    progress_detail: Option<Value>,
    error_detail: Option<ErrorDetail>,
    error: Option<String>,
    aux: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

/// Why a raw request failed.
enum Failure {
    /// The socket did not accept a connection.
    Connect(io::Error),
    /// The daemon answered with an error status or an `errorDetail` message.
    Daemon(String),
    /// The connection broke or the answer was not HTTP.
    Io(String),
}

/// The `docker` name of `r`: `wso2/wso2am:4.3.0`, `localhost:5000/acme/apim:dev`.
pub fn daemon_name(r: &Reference) -> String {
    format!("{}:{}", r.familiar_name(), r.tag_or_latest())
}

/// The JSON the daemon expects in `X-Registry-Auth` for registry `host`
/// (`{}` without a credential).
pub fn auth_json(credential: Option<&Credential>, host: &str) -> String {
    let server = if host == "docker.io" { "https://index.docker.io/v1/" } else { host };
    let v = match credential {
        Some(Credential::Basic { username, password }) => {
            json!({"username": username, "password": password, "serveraddress": server})
        }
        Some(Credential::IdentityToken(t)) => json!({"identitytoken": t, "serveraddress": server}),
        None => json!({}),
    };
    v.to_string()
}

/// The `X-Registry-Auth` header value: [`auth_json`] in URL-safe base64. The
/// daemon decodes URL-safe base64 and silently drops a credential whose
/// standard encoding carries `+` or `/`.
pub fn registry_auth(credential: Option<&Credential>, host: &str) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(auth_json(credential, host))
}

/// Reads the base `r` from the daemon (see [`Daemon::read_base`]).
pub fn read_base(location: &Location, r: &Reference) -> Result<Base> {
    Daemon::connect()?.read_base(location, r)
}

impl Daemon {
    /// Connects to the daemon `DOCKER_HOST` names (default
    /// `unix:///var/run/docker.sock`) and checks that it answers.
    pub fn connect() -> Result<Daemon> {
        let env = std::env::var("DOCKER_HOST").ok().filter(|h| !h.trim().is_empty());
        let from_env = env.is_some();
        let host = env.unwrap_or_else(|| DEFAULT_HOST.to_string());
        let Some(path) = host.strip_prefix("unix://").filter(|p| !p.is_empty()) else {
            return Err(Error::unsupported(format!(
                "DOCKER_HOST={host}: wso2img reaches the Docker daemon through a unix socket only; set DOCKER_HOST=unix:///PATH/docker.sock (or unset it for {DEFAULT_HOST})"
            )));
        };
        let socket = PathBuf::from(path);
        let unreachable = |reason: &str| unreachable_error(&host, from_env, reason);
        let docker = Docker::connect_with_unix(&host, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            .map_err(|e| unreachable(&reason(&e)))?;
        let answered = runtime().block_on(async { tokio::time::timeout(CONNECT_TIMEOUT, docker.version()).await });
        match answered {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(unreachable(&reason(&e))),
            Err(_) => return Err(unreachable(&format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
        }
        Ok(Daemon { docker, host, socket, from_env, containerd_store: OnceLock::new() })
    }

    /// The daemon address, e.g. `unix:///var/run/docker.sock`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The ID of the image `name` (a name with tag, or an ID), or `None` when
    /// the daemon has no such image.
    pub fn image_id(&self, name: &str) -> Result<Option<Digest>> {
        self.inspect(name)?.map(|i| id_of(&i, name)).transpose()
    }

    /// Asks the daemon to pull `r`, with the credential wso2img finds for its
    /// registry. Progress goes to `log`, one line per finished step.
    pub fn pull(&self, r: &Reference, log: &mut dyn FnMut(&str)) -> Result<()> {
        let found = auth::lookup(&r.registry)?;
        let header = registry_auth(found.as_ref().map(|f| &f.credential), &r.registry);
        let path = format!("/images/create?fromImage={}&tag={}", escape(&r.familiar_name()), escape(r.tag_or_latest()));
        log(&format!("daemon: pulling {}", daemon_name(r)));
        let what = format!("docker-daemon:{}: pulling", daemon_name(r));
        runtime()
            .block_on(self.post_stream(&path, &header, &mut |m| progress(&m, log)))
            .map_err(|f| self.failure(f, &what, &r.registry, found.as_ref()))
    }

    /// Has the daemon push `r` (a name with tag it already holds), with the
    /// credential wso2img finds for its registry. Returns the manifest digest
    /// the daemon pushed: the daemon compresses layers itself, so it differs
    /// from what a direct push writes while the config digest stays.
    pub fn push(&self, r: &Reference, log: &mut dyn FnMut(&str)) -> Result<Digest> {
        let found = auth::lookup(&r.registry)?;
        let header = registry_auth(found.as_ref().map(|f| &f.credential), &r.registry);
        let path = format!("/images/{}/push?tag={}", escape_path(&r.familiar_name()), escape(r.tag_or_latest()));
        let what = format!("{}: pushing through the Docker daemon", r);
        let mut digest: Option<Digest> = None;
        runtime()
            .block_on(self.post_stream(&path, &header, &mut |m| {
                if let Some(d) = pushed_digest(&m) {
                    digest = Some(d);
                }
                progress(&m, log)
            }))
            .map_err(|f| self.failure(f, &what, &r.registry, found.as_ref()))?;
        digest.ok_or_else(|| Error::new(Kind::Io, format!("{what}: the daemon finished without reporting a digest")))
    }

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
            Some(image) => {
                Base::new(location, name, String::new(), None, MediaFamily::Docker, false, vec![image], None)
            }
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
    fn save_base(&self, location: &Location, id: &Digest) -> Result<(Base, tempfile::TempDir)> {
        let tmp = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix("wso2img-daemon-")
            .tempdir_in(&tmp)
            .map_err(|e| Error::io("creating a temporary folder", &tmp, e))?;
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

    /// Loads `image` into the daemon (`POST /images/load`) and tags it with
    /// every reference in `tags` (at least one). Nothing is sent when the
    /// daemon already has the image ID; otherwise the archive leaves out the
    /// files of the bottom layers the daemon already has (found in the images
    /// named by `hints` and the images of the tags' repositories, else in any
    /// of its images). The
    /// archive is streamed: it is never held in memory nor written to disk.
    pub fn load(
        &self,
        image: &Image,
        tags: &[Reference],
        hints: &[String],
        log: &mut dyn FnMut(&str),
    ) -> Result<Loaded> {
        let shown = format!("docker-daemon:{}", tags.first().map(daemon_name).unwrap_or_default());
        let config_id = image.config.desc.digest;
        if self.inspect(&config_id.to_string())?.is_some() {
            self.tag_all(&config_id.to_string(), tags)?;
            log(&format!("{shown}: the daemon already has this image ({config_id}); nothing to load"));
            return Ok(Loaded { id: config_id, up_to_date: true, layers_sent: 0, bytes_sent: 0 });
        }
        let diff_ids = diff_ids(image).map_err(|e| e.context(&shown))?;
        let have = self.shared_layers(&diff_ids, tags, hints)?;
        let needed: HashSet<Digest> = image.layers[have..].iter().map(|l| l.desc.digest).collect();
        let omit: HashSet<Digest> =
            image.layers[..have].iter().map(|l| l.desc.digest).filter(|d| !needed.contains(d)).collect();
        let mut seen = HashSet::new();
        let sent: Vec<&Blob> =
            image.layers.iter().filter(|l| !omit.contains(&l.desc.digest) && seen.insert(l.desc.digest)).collect();
        let bytes_sent: u64 = sent.iter().map(|b| b.desc.size).sum();
        log(&format!(
            "{shown}: sending {} of {} layers ({}){}",
            sent.len(),
            image.layers.len(),
            human(bytes_sent),
            if have > 0 { format!("; the daemon has the bottom {have}") } else { String::new() }
        ));

        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
        let (omit, shown_ref) = (&omit, &shown);
        let (written, answer) = std::thread::scope(|s| {
            let writer = s.spawn(move || {
                let mut w = ChannelWriter { tx, buf: Vec::with_capacity(CHUNK) };
                let r = archive::write_stream(&mut w, tags, image, omit, shown_ref).and_then(|_| {
                    w.flush().map_err(|e| Error::new(Kind::Io, format!("{shown_ref}: {}", io_reason(&e))))
                });
                if let Err(e) = &r {
                    let _ = w.tx.blocking_send(Err(io::Error::other(e.to_string())));
                }
                r
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
                    progress(&msg, log);
                }
                Ok::<(), BollardError>(())
            });
            (writer.join(), answer)
        });
        let written =
            written.unwrap_or_else(|_| Err(Error::new(Kind::Io, format!("{shown}: the archive writer failed"))));
        match (written, answer) {
            (Ok(()), Ok(())) => {}
            (Err(e), _) if !e.message().contains(STOPPED_READING) => return Err(e),
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

    fn inspect(&self, name: &str) -> Result<Option<ImageInspect>> {
        match runtime().block_on(self.docker.inspect_image(name)) {
            Ok(i) => Ok(Some(i)),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(self.bollard_failure(e, &format!("docker-daemon:{name}: inspecting"))),
        }
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

    /// Whether the daemon keeps images in containerd (Docker 24+ option,
    /// default in recent releases): there `docker load` needs every layer
    /// file and image IDs are manifest digests. Unknown counts as yes.
    fn containerd_store(&self) -> bool {
        *self.containerd_store.get_or_init(|| {
            let info = runtime().block_on(self.get_json("/info"));
            match info {
                Ok(v) => v["DriverStatus"].as_array().is_some_and(|rows| {
                    rows.iter()
                        .any(|r| r[0] == "driver-type" && r[1].as_str().is_some_and(|s| s.contains("containerd")))
                }),
                Err(_) => true,
            }
        })
    }

    fn bollard_failure(&self, e: BollardError, what: &str) -> Error {
        if is_connect_error(&e) {
            return unreachable_error(&self.host, self.from_env, &reason(&e));
        }
        match e {
            BollardError::DockerResponseServerError { status_code: 404, message } => {
                Error::source(format!("{what}: not found in the Docker daemon ({})", clean(&message)))
            }
            other => {
                Error::new(Kind::Io, format!("{what}: the Docker daemon at {} reports: {}", self.host, reason(&other)))
            }
        }
    }

    fn failure(&self, f: Failure, what: &str, registry: &str, found: Option<&Found>) -> Error {
        match f {
            Failure::Connect(e) => unreachable_error(&self.host, self.from_env, &io_reason(&e)),
            Failure::Io(m) => {
                Error::new(Kind::Io, format!("{what}: connection to the Docker daemon at {} broke: {m}", self.host))
            }
            Failure::Daemon(m) => {
                let lower = m.to_lowercase();
                let auth = [
                    "unauthorized",
                    "authentication required",
                    "no basic auth credentials",
                    "denied",
                    "incorrect username or password",
                ];
                let missing = ["not found", "manifest unknown", "does not exist", "no such image"];
                if auth.iter().any(|k| lower.contains(k)) {
                    let hint = match found {
                        Some(f) => format!("the credential for {registry} from {} was refused; check it", f.source),
                        None => format!(
                            "wso2img found no credential for {registry} (DOCKER_CONFIG/config.json, REGISTRY_AUTH_FILE, {}); run `docker login {registry}`",
                            auth::ENV_USERNAME
                        ),
                    };
                    Error::new(Kind::Io, format!("{what}: authentication failed ({m}); {hint}"))
                } else if missing.iter().any(|k| lower.contains(k)) {
                    Error::source(format!("{what}: image not found ({m})"))
                } else {
                    Error::new(Kind::Io, format!("{what}: the Docker daemon reports: {m}"))
                }
            }
        }
    }

    /// `GET path` over the socket, as JSON.
    async fn get_json(&self, path: &str) -> std::result::Result<Value, Failure> {
        let (code, mut body) = self.request("GET", path, None).await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next_chunk().await.map_err(|e| Failure::Io(io_reason(&e)))? {
            bytes.extend_from_slice(&chunk);
        }
        if !(200..300).contains(&code) {
            return Err(Failure::Daemon(error_text(code, &bytes)));
        }
        serde_json::from_slice(&bytes).map_err(|e| Failure::Io(format!("answer is not JSON: {e}")))
    }

    /// `POST path` with an `X-Registry-Auth` header; every message of the
    /// answer's JSON stream goes to `on`. An `errorDetail` message ends it
    /// with that error.
    async fn post_stream(
        &self,
        path: &str,
        auth: &str,
        on: &mut dyn FnMut(Message),
    ) -> std::result::Result<(), Failure> {
        let (code, mut body) = self.request("POST", path, Some(auth)).await?;
        let mut pending: Vec<u8> = Vec::new();
        let mut all = Vec::new();
        while let Some(chunk) = body.next_chunk().await.map_err(|e| Failure::Io(io_reason(&e)))? {
            if !(200..300).contains(&code) {
                all.extend_from_slice(&chunk);
                continue;
            }
            pending.extend_from_slice(&chunk);
            while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                handle_line(&line, on)?;
            }
        }
        if !(200..300).contains(&code) {
            return Err(Failure::Daemon(error_text(code, &all)));
        }
        handle_line(&pending, on)
    }

    /// Sends one HTTP/1.1 request over the daemon's socket and reads the
    /// status and headers of the answer.
    async fn request(&self, method: &str, path: &str, auth: Option<&str>) -> std::result::Result<(u16, Body), Failure> {
        let stream = tokio::net::UnixStream::connect(&self.socket).await.map_err(Failure::Connect)?;
        let (rd, mut wr) = stream.into_split();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: wso2img/{}\r\nContent-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(a) = auth {
            head.push_str(&format!("X-Registry-Auth: {a}\r\n"));
        }
        head.push_str("\r\n");
        let io = |e: io::Error| Failure::Io(io_reason(&e));
        wr.write_all(head.as_bytes()).await.map_err(io)?;
        let mut rd = BufReader::new(Box::new(rd) as Box<dyn AsyncRead + Send + Unpin>);
        let mut line = String::new();
        rd.read_line(&mut line).await.map_err(io)?;
        let code = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| Failure::Io(format!("not an HTTP answer: {:?}", clean(&line))))?;
        let mut chunked = false;
        let mut length = None;
        loop {
            line.clear();
            if rd.read_line(&mut line).await.map_err(io)? == 0 {
                return Err(Failure::Io("the answer ended inside its headers".into()));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                    chunked = true;
                } else if k == "content-length" {
                    length = v.parse::<u64>().ok();
                }
            }
        }
        Ok((code, Body { rd, _wr: wr, chunked, remaining: length, done: false }))
    }
}

/// The body of a raw answer (chunked, sized, or up to the end of the connection).
struct Body {
    rd: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    /// Kept open until the answer is read: dropping it shuts the socket's
    /// write side, which the daemon takes as the client going away and
    /// cancels the pull or push.
    _wr: tokio::net::unix::OwnedWriteHalf,
    chunked: bool,
    remaining: Option<u64>,
    done: bool,
}

impl Body {
    async fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        if self.chunked {
            let mut line = String::new();
            if self.rd.read_line(&mut line).await? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the answer ended early"));
            }
            let size = line.trim().split(';').next().and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
            let size = size.filter(|&s| s <= 64 << 20).ok_or_else(|| io::Error::other("bad chunk in the answer"))?;
            if size == 0 {
                self.done = true;
                return Ok(None);
            }
            let mut buf = vec![0; size as usize];
            self.rd.read_exact(&mut buf).await?;
            let mut crlf = [0u8; 2];
            self.rd.read_exact(&mut crlf).await?;
            return Ok(Some(buf));
        }
        let want = self.remaining.unwrap_or(u64::MAX).min(64 << 10) as usize;
        if want == 0 {
            self.done = true;
            return Ok(None);
        }
        let mut buf = vec![0; want];
        let n = self.rd.read(&mut buf).await?;
        if n == 0 {
            self.done = true;
            return match self.remaining {
                Some(_) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the answer ended early")),
                None => Ok(None),
            };
        }
        buf.truncate(n);
        if let Some(r) = self.remaining.as_mut() {
            *r -= n as u64;
        }
        Ok(Some(buf))
    }
}

fn handle_line(line: &[u8], on: &mut dyn FnMut(Message)) -> std::result::Result<(), Failure> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return Ok(());
    }
    let m: Message = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if let Some(e) = m.error_detail.as_ref().and_then(|d| d.message.clone()).or_else(|| m.error.clone()) {
        return Err(Failure::Daemon(clean(&e)));
    }
    on(m);
    Ok(())
}

/// The text of an error answer: its JSON `message`, else the body.
fn error_text(code: u16, body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    let text = v["message"].as_str().map(str::to_string).unwrap_or_else(|| String::from_utf8_lossy(body).to_string());
    let text = clean(&text);
    if text.is_empty() {
        format!("HTTP {code}")
    } else {
        text
    }
}

/// The digest a push reports: `aux.Digest`, or the `TAG: digest: sha256:… size: N` line.
fn pushed_digest(m: &Message) -> Option<Digest> {
    if let Some(d) = m.aux.as_ref().and_then(|a| a["Digest"].as_str()).and_then(|d| d.parse().ok()) {
        return Some(d);
    }
    let status = m.status.as_deref()?;
    let (_, rest) = status.split_once(": digest: ")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Logs one progress message when it reports an outcome (not a transient
/// state or a byte count).
fn progress(m: &Message, log: &mut dyn FnMut(&str)) {
    if let Some(s) = m.stream.as_deref() {
        let s = clean(s);
        if !s.is_empty() {
            log(&format!("daemon: {s}"));
        }
        return;
    }
    let Some(status) = m.status.as_deref().map(clean).filter(|s| !s.is_empty()) else { return };
    let moving = m.progress_detail.as_ref().is_some_and(|p| !p["current"].is_null());
    if moving || TRANSIENT.contains(&status.as_str()) {
        return;
    }
    match m.id.as_deref().map(clean).filter(|i| !i.is_empty()) {
        Some(id) => log(&format!("daemon: {id}: {status}")),
        None => log(&format!("daemon: {status}")),
    }
}

/// One line without control characters or terminal escape sequences.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Percent-encodes an image name for a path, keeping `/` and `:`.
fn escape_path(s: &str) -> String {
    s.split('/').map(|seg| escape(seg).replace("%3A", ":")).collect::<Vec<_>>().join("/")
}

fn id_of(info: &ImageInspect, name: &str) -> Result<Digest> {
    info.id
        .as_deref()
        .and_then(|i| i.parse().ok())
        .ok_or_else(|| Error::new(Kind::Io, format!("docker-daemon:{name}: the daemon reports no valid image ID")))
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

fn unreachable_error(host: &str, from_env: bool, reason: &str) -> Error {
    let (whence, fix) = if from_env {
        ("DOCKER_HOST", "start dockerd or fix DOCKER_HOST")
    } else {
        ("the default; DOCKER_HOST is not set", "start dockerd or set DOCKER_HOST")
    };
    Error::new(Kind::Io, format!("cannot reach the Docker daemon at {host} ({whence}): {reason}; {fix}"))
}

/// A short reason for a bollard error: the innermost I/O error when there
/// is one, else the daemon's message.
fn reason(e: &BollardError) -> String {
    match e {
        BollardError::SocketNotFoundError(_) => return "no such socket".into(),
        BollardError::RequestTimeoutError => return "no answer in time".into(),
        BollardError::DockerResponseServerError { message, .. } => return clean(message),
        BollardError::DockerStreamError { error } => return clean(error),
        _ => {}
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut last = e.to_string();
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            return io_reason(io);
        }
        last = c.to_string();
        cur = c.source();
    }
    clean(&last)
}

/// Whether a bollard error means the socket refused or vanished.
fn is_connect_error(e: &BollardError) -> bool {
    if matches!(e, BollardError::SocketNotFoundError(_)) {
        return true;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            return matches!(
                io.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused | io::ErrorKind::PermissionDenied
            );
        }
        cur = c.source();
    }
    false
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
type Saved = (tempfile::TempDir, HashMap<Digest, Blob>);

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
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The cache of daemon base configs, keyed and verified by image ID.
mod cache {
    use super::*;

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
            let _ = crate::transport::oci::write_atomic(&dir.join(format!("{}.json", id.hex())), &bytes);
        }
    }
}

/// Marks the writer error that only says the daemon stopped reading (the
/// daemon's own answer then says why).
const STOPPED_READING: &str = "the Docker daemon stopped reading the archive";

/// A `Write` that hands 1 MiB chunks to the request body stream.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, STOPPED_READING))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_header_is_url_safe_base64() {
        let c = Credential::Basic { username: "u".into(), password: "??>>~~".into() };
        let json = auth_json(Some(&c), "127.0.0.1:5000");
        let standard = base64::engine::general_purpose::STANDARD.encode(&json);
        assert!(standard.contains('+') || standard.contains('/'), "{standard}");
        let header = registry_auth(Some(&c), "127.0.0.1:5000");
        assert!(!header.contains('+') && !header.contains('/'), "{header}");
        let back = base64::engine::general_purpose::URL_SAFE.decode(&header).unwrap();
        let v: Value = serde_json::from_slice(&back).unwrap();
        assert_eq!((v["username"].as_str(), v["password"].as_str()), (Some("u"), Some("??>>~~")));
        assert_eq!(v["serveraddress"], "127.0.0.1:5000");
        assert_eq!(auth_json(None, "docker.io"), "{}");
        let t = auth_json(Some(&Credential::IdentityToken("tok".into())), "docker.io");
        assert_eq!(t, r#"{"identitytoken":"tok","serveraddress":"https://index.docker.io/v1/"}"#);
    }

    #[test]
    fn progress_lines_are_outcomes_without_control_characters() {
        let mut lines = Vec::new();
        let mut log = |s: &str| lines.push(s.to_string());
        let msgs = [
            r#"{"status":"The push refers to repository [127.0.0.1:5000/acme/apim]"}"#,
            r#"{"status":"Preparing","progressDetail":{},"id":"a1"}"#,
            r#"{"status":"Pushing","progressDetail":{"current":512,"total":1024},"progress":"[==>  ]","id":"a1"}"#,
            r#"{"status":"Pushed","progressDetail":{},"id":"a1"}"#,
            r#"{"status":"Layer already exists","progressDetail":{},"id":"b2"}"#,
            r#"{"stream":"Loaded image: acme/apim:x\n"}"#,
            r#"{"stream":"\u001b[1A\u001b[2K\r\n"}"#,
        ];
        for m in msgs {
            progress(&serde_json::from_str(m).unwrap(), &mut log);
        }
        assert_eq!(
            lines,
            [
                "daemon: The push refers to repository [127.0.0.1:5000/acme/apim]",
                "daemon: a1: Pushed",
                "daemon: b2: Layer already exists",
                "daemon: Loaded image: acme/apim:x",
            ]
        );
        assert_eq!(clean("a\u{1b}[0;32mgreen\u{1b}[0m\tb\r\n"), "agreen b");
    }

    #[test]
    fn push_digest_from_aux_or_status() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let aux: Message = serde_json::from_str(&format!(
            r#"{{"progressDetail":{{}},"aux":{{"Tag":"t","Digest":"sha256:{hex}","Size":1}}}}"#
        ))
        .unwrap();
        assert_eq!(pushed_digest(&aux).map(|d| d.hex()), Some(hex.to_string()));
        let status: Message =
            serde_json::from_str(&format!(r#"{{"status":"t: digest: sha256:{hex} size: 528"}}"#)).unwrap();
        assert_eq!(pushed_digest(&status).map(|d| d.hex()), Some(hex.to_string()));
        assert!(pushed_digest(&Message::default()).is_none());
    }

    #[test]
    fn errors_in_streams_end_them() {
        let mut n = 0;
        let err = handle_line(
            br#"{"errorDetail":{"message":"unauthorized: authentication required"},"error":"x"}"#,
            &mut |_| n += 1,
        );
        assert!(matches!(err, Err(Failure::Daemon(m)) if m == "unauthorized: authentication required"));
        assert!(handle_line(br#"{"status":"ok"}"#, &mut |_| n += 1).is_ok());
        assert_eq!(n, 1);
        assert_eq!(error_text(404, br#"{"message":"No such image: x:y"}"#), "No such image: x:y");
        assert_eq!(error_text(500, b""), "HTTP 500");
    }

    #[test]
    fn names_and_escapes() {
        let r = Reference::parse("127.0.0.1:5000/acme/apim:dev").unwrap();
        assert_eq!(daemon_name(&r), "127.0.0.1:5000/acme/apim:dev");
        assert_eq!(daemon_name(&Reference::parse("wso2/wso2am").unwrap()), "wso2/wso2am:latest");
        assert_eq!(escape("wso2/wso2am"), "wso2%2Fwso2am");
        assert_eq!(escape_path("127.0.0.1:5000/acme/apim"), "127.0.0.1:5000/acme/apim");
    }
}
