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
//! module: callers see blocking functions driven by [`runtime`].
//!
//! Why pull, push and load speak HTTP over the socket themselves instead of
//! through bollard: bollard encodes `X-Registry-Auth` with standard base64,
//! which the daemon cannot decode (it then silently pushes without
//! credentials), and its load API wants the whole body up front, while a
//! load here is streamed as it is written. bollard is kept for everything
//! else (inspect, tag, list, save, version negotiation).
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
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::digest::Digest;
use crate::error::{io_reason, Error, Kind, Result};

use crate::reference::Reference;
use crate::transport::registry::auth::Found;
use crate::transport::registry::client::urlencode as escape;
use crate::transport::registry::runtime;

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

impl Daemon {
    /// Whether the daemon keeps images in containerd (Docker 24+ option,
    /// default in recent releases): there `docker load` needs every layer
    /// file and image IDs are manifest digests. Unknown counts as yes.
    pub(super) fn containerd_store(&self) -> bool {
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
                            crate::transport::registry::auth::ENV_USERNAME
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
    fn names_and_escapes() {
        let r = Reference::parse("127.0.0.1:5000/acme/apim:dev").unwrap();
        assert_eq!(daemon_name(&r), "127.0.0.1:5000/acme/apim:dev");
        assert_eq!(daemon_name(&Reference::parse("wso2/wso2am").unwrap()), "wso2/wso2am:latest");
        assert_eq!(escape("wso2/wso2am"), "wso2%2Fwso2am");
        assert_eq!(escape_path("127.0.0.1:5000/acme/apim"), "127.0.0.1:5000/acme/apim");
    }
}
