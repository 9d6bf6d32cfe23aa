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
//! [`crate::transport::registry::auth::lookup`] and travel in `X-Registry-Auth` as
//! URL-safe base64, the encoding the daemon decodes. Async stays inside this
//! module: callers see blocking functions driven by the [`crate::net`] runtime.
//!
//! Everything goes through bollard's transport (hyper over the unix socket,
//! hyperlocal): bollard's own methods for info, inspect, tag, list, save and
//! load; pull and push are sent through a hyper client over the same
//! connector, because bollard encodes `X-Registry-Auth` with standard
//! base64, which the daemon cannot decode (it then silently pushes without
//! credentials). Their answers are JSON lines of progress; a refusal is
//! classified from the answer's HTTP status, else from the registry error
//! codes Docker relays in its message ([`Refusal`]).
//!
//! - `base`: reading a base from the daemon (`docker save`, config cache).
//! - `load`: loading results into the daemon, sending only missing layers.
//! - `registry`: pulls and pushes the daemon makes with wso2img's credentials.
//! - [`destination`]: loading results as a [`crate::transport::Destination`];
//!   [`via`]: pushing them to a registry through the daemon.

mod base;
pub mod destination;
mod load;
mod location;
mod registry;
pub mod via;

pub use base::read_base;
pub use destination::DaemonDestination;
pub use load::Loaded;
pub use location::DaemonImage;
pub use registry::{auth_json, registry_auth};
pub use via::ViaDaemon;

use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::ImageInspect;
use bollard::Docker;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use hyperlocal::UnixConnector;
use serde::Deserialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{io_reason, Error, Kind, Result};

use crate::net::runtime;
use crate::net::urlencode as escape;
use crate::reference::Reference;
use crate::transport::registry::auth::Found;

/// A `DOCKER_HOST` that wso2img cannot use: a configuration error (exit 2).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// Not `unix://PATH` (`tcp://`, `ssh://`, `npipe://`).
    #[error("DOCKER_HOST={host}: wso2img reaches the Docker daemon through a unix socket only")]
    NotUnixSocket {
        /// The value.
        host: String,
    },
}

impl crate::error::Typed for HostError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Config
    }
    fn hint(&self) -> Option<String> {
        Some(format!("set DOCKER_HOST=unix:///PATH/docker.sock, or unset it for {DEFAULT_HOST}"))
    }
}

/// The daemon address when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// How long a request may wait for the daemon's answer. A `docker load` is
/// answered only once the daemon has read and unpacked the whole archive, so
/// this suits loads of many GB rather than bollard's 120 s default.
const REQUEST_TIMEOUT_SECS: u64 = 3 * 3600;
/// How long the first request (`GET /version`) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes per chunk of a streamed `docker load` body.
pub(super) const CHUNK: usize = 1 << 20;
/// The longest line of a progress stream, and the largest error answer read.
const LINE_MAX: usize = 1 << 20;
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
    /// For pull and push (see the module documentation).
    http: HyperClient<UnixConnector, Empty<Bytes>>,
    host: String,
    socket: PathBuf,
    from_env: bool,
    containerd_store: OnceLock<bool>,
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

/// Why a pull or push failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The socket did not accept a connection.
    #[error("{0}")]
    Connect(String),
    /// The daemon ended its progress stream with an `errorDetail` message.
    #[error("{0}")]
    Daemon(String),
    /// The daemon answered with an error status (and this message).
    #[error("{message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// The connection broke or the answer was not what the API sends.
    #[error("{0}")]
    Io(String),
}

/// What a daemon's refusal of a pull or push means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The registry refused the credential (or got none).
    Auth,
    /// The image does not exist (in the registry, or in the daemon for a push).
    Missing,
    /// Anything else.
    Other,
}

/// The parts of Docker's error chains (`context: code: detail`) that say a
/// registry refused the credential: distribution's `UNAUTHORIZED` and
/// `DENIED` codes as Docker renders them, and Docker's own error for a
/// request it sent without credentials.
const AUTH_PARTS: &[&str] = &["unauthorized", "denied", "no basic auth credentials"];
/// The parts that say the image does not exist: distribution's
/// `MANIFEST_UNKNOWN` and `NAME_UNKNOWN`, Docker's "no such image" and its
/// refusal to push an image it does not have.
const MISSING_PARTS: &[&str] =
    &["manifest unknown", "name unknown", "no such image", "an image does not exist locally with the tag"];

impl Refusal {
    /// Classifies a refusal: by the HTTP status when the daemon gives a
    /// telling one (401/403, 404), else by the error codes in its message.
    /// Docker 20.10 relays a registry's refusal as HTTP 500, or inside a
    /// progress stream with no code at all, so the registry's error code
    /// survives only as one `code: detail` part of the message chain.
    fn of(status: Option<u16>, message: &str) -> Refusal {
        match status {
            Some(401 | 403) => return Refusal::Auth,
            Some(404) => return Refusal::Missing,
            _ => {}
        }
        let parts: Vec<String> = message.split(": ").map(|p| p.trim().to_ascii_lowercase()).collect();
        let has = |known: &[&str]| parts.iter().any(|p| known.contains(&p.as_str()));
        if has(AUTH_PARTS) {
            Refusal::Auth
        } else if has(MISSING_PARTS) {
            Refusal::Missing
        } else {
            Refusal::Other
        }
    }
}

/// The `docker` name of `r`: `wso2/wso2am:4.3.0`, `localhost:5000/acme/apim:dev`.
pub fn daemon_name(r: &Reference) -> String {
    format!("{}:{}", r.familiar_name(), r.tag_or_latest())
}

impl Daemon {
    /// Whether the daemon keeps images in containerd (Docker 24+ option,
    /// default in recent releases): there `docker load` needs every layer
    /// file and image IDs are manifest digests. Unknown counts as yes.
    pub(super) fn containerd_store(&self) -> bool {
        *self.containerd_store.get_or_init(|| match runtime().block_on(self.docker.info()) {
            Ok(info) => info.driver_status.unwrap_or_default().iter().any(|row| {
                row.first().is_some_and(|k| k == "driver-type") && row.get(1).is_some_and(|v| v.contains("containerd"))
            }),
            Err(_) => true,
        })
    }

    /// Connects to the daemon `DOCKER_HOST` names (default
    /// `unix:///var/run/docker.sock`) and checks that it answers.
    pub fn connect() -> Result<Daemon> {
        let env = std::env::var("DOCKER_HOST").ok().filter(|h| !h.trim().is_empty());
        let from_env = env.is_some();
        let host = env.unwrap_or_else(|| DEFAULT_HOST.to_string());
        let Some(path) = host.strip_prefix("unix://").filter(|p| !p.is_empty()) else {
            return Err(HostError::NotUnixSocket { host }.into());
        };
        let socket = PathBuf::from(path);
        let unreachable = |reason: &str| unreachable_error(&host, from_env, reason);
        let docker = Docker::connect_with_unix(&host, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            .map_err(|e| unreachable(&reason(&e)))?
            .with_request_modifier(|mut req| {
                req.headers_mut()
                    .insert(http::header::USER_AGENT, http::HeaderValue::from_static(crate::net::USER_AGENT));
                req
            });
        let answered = runtime().block_on(async { tokio::time::timeout(CONNECT_TIMEOUT, docker.version()).await });
        match answered {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(unreachable(&reason(&e))),
            Err(_) => return Err(unreachable(&format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
        }
        let http = HyperClient::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(UnixConnector);
        Ok(Daemon { docker, http, host, socket, from_env, containerd_store: OnceLock::new() })
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

    fn inspect(&self, name: &str) -> Result<Option<ImageInspect>> {
        match runtime().block_on(self.docker.inspect_image(name)) {
            Ok(i) => Ok(Some(i)),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(self.bollard_failure(e, &format!("docker-daemon:{name}: inspecting"))),
        }
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
        let (status, m) = match f {
            Failure::Connect(reason) => return unreachable_error(&self.host, self.from_env, &reason),
            Failure::Io(m) => {
                return Error::new(
                    Kind::Io,
                    format!("{what}: connection to the Docker daemon at {} broke: {m}", self.host),
                )
            }
            Failure::Daemon(m) => (None, m),
            Failure::Status { status, message } => (Some(status), message),
        };
        match Refusal::of(status, &m) {
            Refusal::Auth => {
                let hint = match found {
                    Some(f) => format!("the credential for {registry} from {} was refused; check it", f.source),
                    None => format!(
                        "wso2img found no credential for {registry} (DOCKER_CONFIG/config.json, REGISTRY_AUTH_FILE, {}); run `docker login {registry}`",
                        crate::transport::registry::auth::ENV_USERNAME
                    ),
                };
                Error::new(Kind::Io, format!("{what}: authentication failed ({m}); {hint}"))
            }
            Refusal::Missing => Error::source(format!("{what}: image not found ({m})")),
            Refusal::Other => Error::new(Kind::Io, format!("{what}: the Docker daemon reports: {m}")),
        }
    }

    /// `POST path` with an `X-Registry-Auth` header, through hyper over the
    /// daemon's socket; every message of the answer's JSON stream goes to
    /// `on`. An `errorDetail` message ends it with that error.
    async fn post_stream(
        &self,
        path: &str,
        auth: &str,
        on: &mut dyn FnMut(Message),
    ) -> std::result::Result<(), Failure> {
        let request = http::Request::post(hyper::Uri::from(hyperlocal::Uri::new(&self.socket, path)))
            .header(http::header::USER_AGENT, crate::net::USER_AGENT)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("X-Registry-Auth", auth)
            .body(Empty::<Bytes>::new())
            .map_err(|e| Failure::Io(e.to_string()))?;
        let answer = self.http.request(request).await.map_err(|e| {
            if e.is_connect() {
                Failure::Connect(io_cause(&e).map(io_reason).unwrap_or_else(|| crate::net::root_cause(&e)))
            } else {
                Failure::Io(crate::net::root_cause(&e))
            }
        })?;
        let status = answer.status().as_u16();
        let mut body = answer.into_body();
        let mut lines = Lines::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Failure::Io(crate::net::root_cause(&e)))?;
            let Ok(chunk) = frame.into_data() else { continue };
            if !(200..300).contains(&status) {
                lines.keep(&chunk);
                continue;
            }
            for line in lines.push(&chunk)? {
                handle_line(&line, on)?;
            }
        }
        if !(200..300).contains(&status) {
            return Err(Failure::Status { status, message: error_text(status, &lines.pending) });
        }
        handle_line(&lines.pending, on)
    }
}

/// Splits a progress stream into lines, each at most [`LINE_MAX`] long.
#[derive(Default)]
struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Adds `chunk`; returns the lines it completed.
    fn push(&mut self, chunk: &[u8]) -> std::result::Result<Vec<Vec<u8>>, Failure> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            out.push(self.pending.drain(..=i).collect());
        }
        if self.pending.len() > LINE_MAX {
            return Err(Failure::Io(format!("a progress line longer than {LINE_MAX} bytes")));
        }
        Ok(out)
    }

    /// Keeps `chunk` of an error answer, up to [`LINE_MAX`] bytes.
    fn keep(&mut self, chunk: &[u8]) {
        let room = LINE_MAX.saturating_sub(self.pending.len());
        self.pending.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
}

/// The I/O error behind an error, if any.
fn io_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            return Some(io);
        }
        cur = c.source();
    }
    None
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

/// Reports one progress message of the daemon when it is an outcome.
fn progress(m: &Message) {
    if let Some(line) = progress_line(m) {
        crate::progress::message(&line);
    }
}

/// The line a progress message of the daemon shows: only outcomes (not a
/// transient state or a byte count), without control characters.
fn progress_line(m: &Message) -> Option<String> {
    if let Some(s) = m.stream.as_deref() {
        let s = clean(s);
        return (!s.is_empty()).then(|| format!("daemon: {s}"));
    }
    let status = m.status.as_deref().map(clean).filter(|s| !s.is_empty())?;
    let moving = m.progress_detail.as_ref().is_some_and(|p| !p["current"].is_null());
    if moving || TRANSIENT.contains(&status.as_str()) {
        return None;
    }
    Some(match m.id.as_deref().map(clean).filter(|i| !i.is_empty()) {
        Some(id) => format!("daemon: {id}: {status}"),
        None => format!("daemon: {status}"),
    })
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
    match io_cause(e) {
        Some(io) => io_reason(io),
        None => clean(&crate::net::root_cause(e)),
    }
}

/// Whether a bollard error means the socket refused or vanished.
fn is_connect_error(e: &BollardError) -> bool {
    if matches!(e, BollardError::SocketNotFoundError(_)) {
        return true;
    }
    io_cause(e).is_some_and(|io| {
        matches!(
            io.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused | io::ErrorKind::PermissionDenied
        )
    })
}

#[cfg(test)]
mod tests {
    use super::registry::pushed_digest;
    use super::*;
    use crate::transport::registry::auth::Credential;
    use base64::Engine as _;

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
        let msgs = [
            r#"{"status":"The push refers to repository [127.0.0.1:5000/acme/apim]"}"#,
            r#"{"status":"Preparing","progressDetail":{},"id":"a1"}"#,
            r#"{"status":"Pushing","progressDetail":{"current":512,"total":1024},"progress":"[==>  ]","id":"a1"}"#,
            r#"{"status":"Pushed","progressDetail":{},"id":"a1"}"#,
            r#"{"status":"Layer already exists","progressDetail":{},"id":"b2"}"#,
            r#"{"stream":"Loaded image: acme/apim:x\n"}"#,
            r#"{"stream":"\u001b[1A\u001b[2K\r\n"}"#,
        ];
        let lines: Vec<String> = msgs.iter().filter_map(|m| progress_line(&serde_json::from_str(m).unwrap())).collect();
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
    fn refusals_are_classified_by_status_then_registry_error_codes() {
        // What Docker 20.10 answers: a registry's 401 as HTTP 500 with its
        // error code in the text, or a stream errorDetail with no code at all.
        assert_eq!(Refusal::of(Some(500), "unauthorized: authentication required"), Refusal::Auth);
        let no_creds = r#"Head "http://127.0.0.1:5901/v2/acme/base/manifests/1": no basic auth credentials"#;
        assert_eq!(Refusal::of(Some(500), no_creds), Refusal::Auth);
        assert_eq!(Refusal::of(None, "no basic auth credentials"), Refusal::Auth);
        assert_eq!(Refusal::of(None, "unauthorized: incorrect username or password"), Refusal::Auth);
        let denied = "pull access denied for acme/x, repository does not exist or may require 'docker login': denied: requested access to the resource is denied";
        assert_eq!(Refusal::of(Some(500), denied), Refusal::Auth);
        assert_eq!(Refusal::of(Some(401), "anything"), Refusal::Auth);
        assert_eq!(Refusal::of(Some(403), "anything"), Refusal::Auth);
        let unknown = "manifest for 127.0.0.1:5901/acme/base:1 not found: manifest unknown: manifest unknown";
        assert_eq!(Refusal::of(Some(404), unknown), Refusal::Missing);
        assert_eq!(Refusal::of(None, unknown), Refusal::Missing);
        let absent = "An image does not exist locally with the tag: 127.0.0.1:5901/acme/base";
        assert_eq!(Refusal::of(None, absent), Refusal::Missing);
        assert_eq!(Refusal::of(Some(500), "No such image: acme/x:1"), Refusal::Missing);
        // A word inside a detail is not an error code.
        assert_eq!(Refusal::of(Some(500), "write /var/lib/docker/tmp/x: no space left on device"), Refusal::Other);
        let proxy = "received unexpected HTTP status: 502 the unauthorized proxy was not found";
        assert_eq!(Refusal::of(None, proxy), Refusal::Other);
    }

    #[test]
    fn progress_streams_split_into_bounded_lines() {
        let mut l = Lines::default();
        assert_eq!(l.push(b"{\"a\":1}\n{\"b\"").unwrap(), vec![b"{\"a\":1}\n".to_vec()]);
        assert_eq!(l.push(b":2}\n{}\n").unwrap(), vec![b"{\"b\":2}\n".to_vec(), b"{}\n".to_vec()]);
        assert!(l.pending.is_empty());
        assert!(matches!(Lines::default().push(&vec![b'x'; LINE_MAX + 1]), Err(Failure::Io(_))));
        let mut l = Lines::default();
        l.keep(&vec![b'x'; LINE_MAX + 10]);
        l.keep(b"more");
        assert_eq!(l.pending.len(), LINE_MAX);
    }

    /// A daemon on a unix socket in `dir` that answers one request with
    /// `answer` (raw HTTP), sent in pieces of 7 bytes; returns the request head.
    fn fake_daemon(dir: &std::path::Path, answer: Vec<u8>) -> (Daemon, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let socket = dir.join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            for piece in answer.chunks(7) {
                conn.write_all(piece).unwrap();
                conn.flush().unwrap();
            }
            String::from_utf8(head).unwrap()
        });
        let host = format!("unix://{}", socket.display());
        let docker = Docker::connect_with_unix(&host, 60, bollard::API_DEFAULT_VERSION).unwrap();
        let http = HyperClient::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(UnixConnector);
        (Daemon { docker, http, host, socket, from_env: true, containerd_store: OnceLock::new() }, server)
    }

    fn chunked(body: &str) -> Vec<u8> {
        let mut out =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for piece in body.as_bytes().chunks(25) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    #[test]
    fn pushes_stream_progress_through_hyper_and_end_at_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let body = concat!(
            r#"{"status":"The push refers to repository [127.0.0.1:5901/acme/base]"}"#,
            "\n",
            r#"{"status":"Preparing","progressDetail":{},"id":"88c9cf5f9880"}"#,
            "\n",
            r#"{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized: authentication required"}"#,
            "\n"
        );
        let (daemon, server) = fake_daemon(dir.path(), chunked(body));
        let mut seen = Vec::new();
        let out = runtime().block_on(
            daemon
                .post_stream("/images/acme/base/push?tag=1", "e30=", &mut |m| seen.push(m.status.unwrap_or_default())),
        );
        let head = server.join().unwrap();
        assert!(head.starts_with("POST /images/acme/base/push?tag=1 HTTP/1.1\r\n"), "{head}");
        assert!(head.to_ascii_lowercase().contains("\r\nx-registry-auth: e30=\r\n"), "{head}");
        assert!(head.contains(crate::net::USER_AGENT), "{head}");
        assert_eq!(seen, ["The push refers to repository [127.0.0.1:5901/acme/base]", "Preparing"]);
        let f = out.unwrap_err();
        assert!(matches!(&f, Failure::Daemon(m) if m == "unauthorized: authentication required"), "{f:?}");
        let e = daemon.failure(f, "acme/base: pushing", "127.0.0.1:5901", None);
        assert!(e.message().starts_with("acme/base: pushing: authentication failed (unauthorized"), "{e}");
    }

    #[test]
    fn an_error_status_is_typed_with_the_daemons_message() {
        let dir = tempfile::tempdir().unwrap();
        let body =
            r#"{"message":"manifest for 127.0.0.1:5901/acme/base:1 not found: manifest unknown: manifest unknown"}"#;
        let answer = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (daemon, server) = fake_daemon(dir.path(), answer.into_bytes());
        let out = runtime().block_on(daemon.post_stream("/images/create?fromImage=x&tag=1", "e30=", &mut |_| {}));
        server.join().unwrap();
        let f = out.unwrap_err();
        assert!(matches!(&f, Failure::Status { status: 404, message } if message.starts_with("manifest for")), "{f:?}");
        let e = daemon.failure(f, "docker-daemon:x:1: pulling", "127.0.0.1:5901", None);
        assert_eq!(e.kind(), Kind::Source);
        assert!(e.message().starts_with("docker-daemon:x:1: pulling: image not found (manifest for"), "{e}");
    }

    #[test]
    fn a_socket_nobody_listens_on_is_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let (mut daemon, server) = fake_daemon(dir.path(), chunked("{}\n"));
        let _ = runtime().block_on(daemon.post_stream("/x", "e30=", &mut |_| {}));
        server.join().unwrap();
        daemon.socket = dir.path().join("gone.sock");
        let f = runtime().block_on(daemon.post_stream("/x", "e30=", &mut |_| {})).unwrap_err();
        assert!(matches!(&f, Failure::Connect(r) if r.contains("No such file")), "{f:?}");
        let e = daemon.failure(f, "pulling", "r", None);
        assert!(e.message().starts_with(&format!("cannot reach the Docker daemon at {}", daemon.host)), "{e}");
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
