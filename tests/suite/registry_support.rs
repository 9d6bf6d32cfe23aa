//! A real registry for the registry tests: CNCF distribution (`docker-registry
//! serve`) on a random loopback port, anonymous, basic auth over TLS, or bearer
//! tokens from a token server running in this process; its access log parsed
//! so a test can count uploads, mounts and downloads; a forwarding proxy that
//! injects faults; and skopeo to put sample bases in and check results.
//!
//! Everything is bounded in time and owned: dropping a [`Registry`] kills the
//! registry process and stops its token server, dropping a [`FaultProxy`]
//! stops it, and every registry keeps its files in its own temporary folder.

#![allow(dead_code)]

use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use wso2img::wso2::sample::SampleBase;

use super::support::*;

/// The token server's `service` and `issuer`, as configured in the registry.
pub const TOKEN_SERVICE: &str = "wso2img-test-registry";
pub const TOKEN_ISSUER: &str = "wso2img-test-token-issuer";

/// How long one external command (wso2img, skopeo, docker) may run.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(90);

/// Whether the tools the registry tests need are here (a failure in CI when not).
pub fn registry_tools() -> bool {
    have("docker-registry", &["--version"])
        && have("skopeo", &["--version"])
        && have("openssl", &["version"])
        && have("htpasswd", &["-nbB", "probe", "probe"])
}

/// What kind of registry to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Plain HTTP, no authentication.
    Anonymous,
    /// htpasswd (bcrypt) basic authentication over TLS with a generated CA.
    Basic { user: String, password: String },
    /// Bearer tokens (`auth.token`) from a token server in this process; plain HTTP.
    Token { user: String, password: String },
}

impl Kind {
    pub fn basic(user: &str, password: &str) -> Self {
        Kind::Basic { user: user.into(), password: password.into() }
    }
    pub fn token(user: &str, password: &str) -> Self {
        Kind::Token { user: user.into(), password: password.into() }
    }
    /// The credentials, if the kind has any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match self {
            Kind::Anonymous => None,
            Kind::Basic { user, password } | Kind::Token { user, password } => Some((user, password)),
        }
    }
}

/// One line of the registry's access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, `POST`, `PATCH`, `PUT`, `DELETE`.
    pub method: String,
    /// The request URI, percent-decoded (`/v2/acme/apim/blobs/uploads/?mount=sha256:…&from=wso2/wso2am`).
    pub uri: String,
    /// The response status.
    pub status: u16,
    /// Response body bytes.
    pub bytes: u64,
    /// The client's User-Agent.
    pub user_agent: String,
}

impl Request {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }
    /// A query parameter's (decoded) value.
    pub fn query(&self, key: &str) -> Option<&str> {
        let q = self.uri.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then_some(v)
        })
    }
    /// The repository named in a `/v2/<name>/(blobs|manifests|tags)/…` path.
    pub fn repo(&self) -> Option<&str> {
        let rest = self.path().strip_prefix("/v2/")?;
        for sep in ["/blobs/", "/manifests/", "/tags/"] {
            if let Some(i) = rest.find(sep) {
                return Some(&rest[..i]);
            }
        }
        None
    }
    fn under_uploads(&self) -> bool {
        self.path().contains("/blobs/uploads/") || self.path().ends_with("/blobs/uploads")
    }
    /// A cross-repository mount attempt (`POST …/blobs/uploads/?mount=…&from=…`), whatever its answer.
    pub fn is_mount(&self) -> bool {
        self.method == "POST" && self.under_uploads() && self.query("mount").is_some()
    }
    /// A mount the registry performed (201).
    pub fn is_mounted(&self) -> bool {
        self.is_mount() && self.status == 201
    }
    /// Any request that starts, feeds or finishes a blob upload (a mount the
    /// registry refused with 202 starts an upload; a successful mount is not one).
    pub fn is_upload(&self) -> bool {
        match self.method.as_str() {
            "PATCH" | "PUT" => self.under_uploads(),
            "POST" => self.under_uploads() && !self.is_mounted(),
            _ => false,
        }
    }
    /// The digest of a completed blob upload (`PUT|POST …/blobs/uploads/…?digest=D` answered 201).
    pub fn uploaded_digest(&self) -> Option<&str> {
        if self.is_upload() && self.status == 201 {
            self.query("digest")
        } else {
            None
        }
    }
    /// The digest in a `/v2/<name>/blobs/<digest>` path (not uploads).
    pub fn blob_digest(&self) -> Option<&str> {
        let p = self.path();
        let i = p.find("/blobs/")?;
        let d = &p[i + "/blobs/".len()..];
        (d.starts_with("sha256:") && !d.contains('/')).then_some(d)
    }
    /// `GET /v2/<name>/blobs/<digest>`.
    pub fn is_blob_get(&self) -> bool {
        self.method == "GET" && self.blob_digest().is_some()
    }
    /// `PUT /v2/<name>/manifests/<ref>`.
    pub fn is_manifest_put(&self) -> bool {
        self.method == "PUT" && self.path().contains("/manifests/")
    }
    /// `GET /v2/<name>/manifests/<ref>`.
    pub fn is_manifest_get(&self) -> bool {
        self.method == "GET" && self.path().contains("/manifests/")
    }
}

/// Parses one line of distribution's access log (Apache combined format, on its stdout):
/// `127.0.0.1 - - [26/Nov/2026:06:11:48 +0000] "POST /v2/a/b/blobs/uploads/?mount=sha256%3Aabc&from=x/y HTTP/1.1" 202 0 "" "curl/7.88.1"`.
pub fn parse_access_line(line: &str) -> Option<Request> {
    if !line.contains("] \"") {
        return None;
    }
    let start = line.find("] \"")? + 3;
    let rest = &line[start..];
    let end = rest.find('"')?;
    let mut req = rest[..end].split(' ');
    let method = req.next()?.to_string();
    let uri = percent_decode(req.next()?);
    let mut after = rest[end + 1..].trim_start().splitn(3, ' ');
    let status = after.next()?.parse().ok()?;
    let bytes = after.next()?.parse().unwrap_or(0);
    let ua = after.next().unwrap_or("").rsplit('"').nth(1).unwrap_or("").to_string();
    Some(Request { method, uri, status, bytes, user_agent: ua })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller retries on a race).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs a command with a time limit; kills it and fails when it is exceeded.
pub fn run_limited(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            // The whole process group when the child leads one (a wrapper
            // such as /usr/bin/time and what it runs), else the child.
            // SAFETY: signals a process group led by our own live child, if any.
            if unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) } != 0 {
                let _ = child.kill();
            }
            let _ = child.wait();
            let err = t2.join().unwrap_or_default();
            panic!("{cmd:?} did not finish within {limit:?}; stderr so far:\n{}", String::from_utf8_lossy(&err));
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: t1.join().unwrap_or_default(), stderr: t2.join().unwrap_or_default() }
}

/// Like [`run_limited`], requiring success.
pub fn run_ok_limited(cmd: &mut Command) -> Output {
    let out = run_limited(cmd, COMMAND_LIMIT);
    succeeded(cmd, out)
}

/// The wso2img binary in `ws`, isolated from the machine's credentials: an
/// empty `DOCKER_CONFIG`, no `REGISTRY_AUTH_FILE`, no `WSO2IMG_REGISTRY_*`,
/// `HOME` inside the workspace.
pub fn wso2img(ws: &Workspace) -> Command {
    let mut c = bin();
    c.current_dir(ws.path());
    for v in [
        "DOCKER_CONFIG",
        "REGISTRY_AUTH_FILE",
        "WSO2IMG_REGISTRY_USERNAME",
        "WSO2IMG_REGISTRY_PASSWORD",
        "WSO2IMG_REGISTRY_HOST",
        "XDG_RUNTIME_DIR",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env_remove(v);
    }
    let empty = ws.join(".test-docker-config-empty");
    fs::create_dir_all(&empty).unwrap();
    let home = ws.join(".test-home");
    fs::create_dir_all(&home).unwrap();
    c.env("DOCKER_CONFIG", empty).env("HOME", home).env("NO_PROXY", "*");
    c
}

/// Runs wso2img in `ws` with `args` (isolated, time-limited).
pub fn wso2img_run(ws: &Workspace, args: &[&str]) -> Output {
    run_limited(wso2img(ws).args(args), COMMAND_LIMIT)
}

/// Runs wso2img in `ws`, requires success, parses its `--json` stdout.
pub fn run_json(ws: &Workspace, args: &[&str]) -> Value {
    json(&checked(args, wso2img_run(ws, args)))
}

/// Runs `plan` in `ws`, which writes `wso2img.lock` with the base and the
/// modes of its folders (read from its layers once); checks they are there.
pub fn lock_the_base(ws: &Workspace) {
    run_json(ws, &["plan", "--json"]);
    let lock = std::fs::read_to_string(ws.join("wso2img.lock")).unwrap();
    assert!(lock.contains("[base.platform.folders]") && lock.contains("\"home/wso2carbon\" = \""), "{lock}");
}

/// Requires `out` (of wso2img run with `args`) to be a success; returns it.
pub fn checked(args: &[&str], out: Output) -> Output {
    assert!(
        out.status.success(),
        "wso2img {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Writes `$DOCKER_CONFIG/config.json` into `dir` and returns `dir`.
pub fn docker_config(dir: &Path, config: &Value) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("config.json"), serde_json::to_vec_pretty(config).unwrap()).unwrap();
    dir.to_path_buf()
}

/// The base64 `auth` of a docker config entry.
pub fn basic_auth(user: &str, password: &str) -> String {
    STANDARD.encode(format!("{user}:{password}"))
}

// ---------------------------------------------------------------------------
// The registry

pub struct Tls {
    pub ca: PathBuf,
    pub cert_dir: PathBuf,
}

/// A running `docker-registry` on 127.0.0.1, with its own storage and logs.
pub struct Registry {
    kind: Kind,
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    tls: Option<Tls>,
    token: Option<TokenServer>,
    samples: AtomicUsize,
}

impl Registry {
    /// Starts a registry of `kind`; fails the test if it is not up within 10 s.
    pub fn start(kind: Kind) -> Registry {
        let dir = tempfile::Builder::new().prefix("wso2img-registry-").tempdir().unwrap();
        let root = dir.path().to_path_buf();
        fs::create_dir_all(root.join("storage")).unwrap();
        let mut auth = String::new();
        let mut tls_yaml = String::new();
        let mut tls = None;
        let mut token = None;
        match &kind {
            Kind::Anonymous => {}
            Kind::Basic { user, password } => {
                let out = ok(Command::new("htpasswd").args(["-Bbn", user, password]));
                fs::write(root.join("htpasswd"), &out.stdout).unwrap();
                auth = format!(
                    "auth:\n  htpasswd:\n    realm: wso2img-test\n    path: {}\n",
                    root.join("htpasswd").display()
                );
                let t = make_tls(&root);
                tls_yaml = format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    root.join("tls/server.crt").display(),
                    root.join("tls/server.key").display()
                );
                tls = Some(t);
            }
            Kind::Token { user, password } => {
                let server = TokenServer::start(&root, user, password);
                auth = format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    server.port,
                    server.cert_path.display()
                );
                token = Some(server);
            }
        }
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: wso2img-test-secret\n{tls_yaml}\
                 {auth}",
                storage = root.join("storage").display(),
            );
            let config_path = root.join("config.yml");
            fs::write(&config_path, config).unwrap();
            let access = fs::File::create(root.join("access.log")).unwrap();
            let errlog = fs::File::create(root.join("registry.log")).unwrap();
            let mut cmd = Command::new("docker-registry");
            cmd.arg("serve").arg(&config_path).stdin(Stdio::null()).stdout(access).stderr(errlog);
            // distribution reads REGISTRY_* variables as configuration overrides.
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("REGISTRY_") {
                    cmd.env_remove(&k);
                }
            }
            let mut child = cmd.spawn().expect("docker-registry starts");
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut up = false;
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                // A bare connection: no HTTP request, so nothing in the access log.
                if TcpStream::connect_timeout(&format!("127.0.0.1:{port}").parse().unwrap(), Duration::from_millis(200))
                    .is_ok()
                {
                    let log = fs::read_to_string(root.join("registry.log")).unwrap_or_default();
                    if log.contains("listening on") {
                        up = true;
                        break;
                    }
                }
                thread::sleep(Duration::from_millis(25));
            }
            if up {
                return Registry { kind, dir, port, child, tls, token, samples: AtomicUsize::new(0) };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = fs::read_to_string(root.join("registry.log")).unwrap_or_default();
            if !last_log.contains("address already in use") {
                break;
            }
        }
        panic!("docker-registry did not start within 10 s:\n{last_log}");
    }

    pub fn kind(&self) -> &Kind {
        &self.kind
    }
    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// Whether the registry speaks TLS (the `Basic` kind).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
    /// The PEM CA certificate that signed the server certificate (`--ca-cert`).
    pub fn ca_path(&self) -> &Path {
        &self.tls.as_ref().expect("a TLS registry (Kind::Basic)").ca
    }
    /// A folder holding only `ca.crt`, for skopeo's `--cert-dir`.
    pub fn cert_dir(&self) -> &Path {
        &self.tls.as_ref().expect("a TLS registry (Kind::Basic)").cert_dir
    }
    /// `user:password` when the registry needs credentials.
    pub fn creds(&self) -> Option<String> {
        self.kind.credentials().map(|(u, p)| format!("{u}:{p}"))
    }
    /// This registry's temporary folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn raw_access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
    /// The registry's own log (stderr), for failure messages.
    pub fn server_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Every request so far, from the access log. The registry writes a line
    /// after it answered, so this waits (at most 3 s) until the log stops growing.
    pub fn requests(&self) -> Vec<Request> {
        let path = self.dir.path().join("access.log");
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut last = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut stable_since = Instant::now();
        while Instant::now() < deadline {
            thread::sleep(Duration::from_millis(40));
            let now = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if now != last {
                last = now;
                stable_since = Instant::now();
            } else if stable_since.elapsed() >= Duration::from_millis(200) {
                break;
            }
        }
        self.raw_access_log().lines().filter_map(parse_access_line).collect()
    }
    /// A position in the request log, for [`Registry::requests_since`].
    pub fn mark(&self) -> usize {
        self.requests().len()
    }
    /// The requests after `mark`.
    pub fn requests_since(&self, mark: usize) -> Vec<Request> {
        self.requests().into_iter().skip(mark).collect()
    }
    /// Requests as text (for assertion messages).
    pub fn describe(reqs: &[Request]) -> String {
        reqs.iter().map(|r| format!("{} {} {}", r.method, r.uri, r.status)).collect::<Vec<_>>().join("\n")
    }
    /// What the token server was asked (the `Token` kind; empty otherwise).
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.token.as_ref().map(|t| t.log.lock().unwrap().clone()).unwrap_or_default()
    }
    /// `127.0.0.1:PORT` of the token server (the `Token` kind); its realm is `http://HOST/token`.
    pub fn token_host(&self) -> String {
        format!("127.0.0.1:{}", self.token.as_ref().expect("a token registry (Kind::Token)").port)
    }
    /// A refresh token (docker's `identitytoken`) the token server accepts for this registry's user.
    pub fn identity_token(&self) -> Option<String> {
        self.token.as_ref().map(|t| t.state.refresh_token.clone())
    }

    /// `docker://HOST/NAME`.
    pub fn docker_ref(&self, name: &str) -> String {
        format!("docker://{}/{name}", self.host())
    }

    /// skopeo options to reach this registry, prefixed (`src-`, `dest-` or `` for inspect).
    pub fn skopeo_opts(&self, prefix: &str) -> Vec<String> {
        let mut v = Vec::new();
        match &self.tls {
            Some(t) => {
                v.push(format!("--{prefix}cert-dir"));
                v.push(t.cert_dir.display().to_string());
            }
            None => v.push(format!("--{prefix}tls-verify=false")),
        }
        match self.creds() {
            Some(c) => {
                v.push(format!("--{prefix}creds"));
                v.push(c);
            }
            None => v.push(format!("--{prefix}no-creds")),
        }
        v
    }

    /// `skopeo inspect --raw` of `NAME[:TAG|@DIGEST]` in this registry: its bytes.
    pub fn raw_bytes(&self, name: &str) -> Vec<u8> {
        let mut c = skopeo();
        c.arg("inspect").arg("--raw").args(self.skopeo_opts("")).arg(self.docker_ref(name));
        run_ok_limited(&mut c).stdout
    }
    /// The raw manifest or index of `name`, parsed.
    pub fn raw(&self, name: &str) -> Value {
        serde_json::from_slice(&self.raw_bytes(name)).unwrap()
    }
    /// The digest of the manifest or index `name` points at (sha256 of the raw bytes).
    pub fn digest_of(&self, name: &str) -> String {
        wso2img::digest::Digest::of(&self.raw_bytes(name)).to_string()
    }
    /// The layer digests of a single-platform image `name` (or of every manifest of an index).
    pub fn layer_digests(&self, name: &str) -> Vec<String> {
        let raw = self.raw(name);
        let repo = name.split(['@', ':']).next().unwrap().to_string();
        let mut out = Vec::new();
        let manifests: Vec<Value> = match raw["manifests"].as_array() {
            Some(ms) => ms.iter().map(|m| self.raw(&format!("{repo}@{}", m["digest"].as_str().unwrap()))).collect(),
            None => vec![raw],
        };
        for m in manifests {
            for l in m["layers"].as_array().into_iter().flatten() {
                let d = l["digest"].as_str().unwrap().to_string();
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        out
    }
    /// Copies `name` (every platform) out of the registry with skopeo, which
    /// checks every blob against its digest, into `dir` (`oci:` for OCI
    /// images, `dir:` for Docker ones, which an OCI layout would convert).
    pub fn verify_pull(&self, name: &str, dir: &Path) {
        let raw = self.raw(name);
        let mt = raw["mediaType"].as_str().unwrap_or("");
        let dest = if mt.starts_with("application/vnd.docker.") {
            fs::create_dir_all(dir).unwrap();
            format!("dir:{}", dir.display())
        } else {
            format!("oci:{}:pulled", dir.display())
        };
        let mut c = skopeo();
        c.args(["copy", "--quiet", "--all", "--preserve-digests"])
            .args(self.skopeo_opts("src-"))
            .arg(self.docker_ref(name))
            .arg(dest);
        run_ok_limited(&mut c);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.token.take() {
            t.stop();
        }
    }
}

/// skopeo, with the permissive policy and no ambient credentials.
pub fn skopeo() -> Command {
    let mut c = Command::new("skopeo");
    c.env_remove("REGISTRY_AUTH_FILE").env_remove("DOCKER_CONFIG");
    c.arg("--insecure-policy");
    c
}

/// Pushes `sample` to `registry` as `repo_tag` (`wso2/wso2am:4.3.0`) through an
/// OCI layout and `skopeo copy --all --preserve-digests`; returns its top digest.
pub fn push_sample(registry: &Registry, repo_tag: &str, sample: &SampleBase) -> String {
    let n = registry.samples.fetch_add(1, Ordering::SeqCst);
    let dir = registry.dir.path().join(format!("sample-{n}"));
    let tag = repo_tag.rsplit_once(':').map(|(_, t)| t).filter(|t| !t.contains('/')).unwrap_or("latest");
    let digest = sample.write_oci(&dir, tag).unwrap().to_string();
    // skopeo 1.9 finds only OCI media types in an OCI layout's index.json:
    // a Docker-media-type sample goes through the `dir:` format instead.
    let src = if sample.family == wso2img::image::MediaFamily::Docker {
        let d = registry.dir.path().join(format!("sample-{n}-dir"));
        oci_to_dir(&dir, &digest, &d);
        format!("dir:{}", d.display())
    } else {
        format!("oci:{}:{tag}", dir.display())
    };
    let mut c = skopeo();
    c.args(["copy", "--quiet", "--all", "--preserve-digests"])
        .args(registry.skopeo_opts("dest-"))
        .arg(src)
        .arg(registry.docker_ref(repo_tag));
    run_ok_limited(&mut c);
    digest
}

/// Rewrites an OCI layout's image `top` as containers/image's `dir:` format
/// (1.1): `manifest.json` is the top manifest or list, `<hex>.manifest.json`
/// the instances of a list, `<hex>` every other blob.
fn oci_to_dir(layout: &Path, top: &str, out: &Path) {
    fs::create_dir_all(out).unwrap();
    fs::write(out.join("version"), "Directory Transport Version: 1.1\n").unwrap();
    let blobs = layout.join("blobs/sha256");
    let top_hex = top.strip_prefix("sha256:").unwrap();
    let top_bytes = fs::read(blobs.join(top_hex)).unwrap();
    fs::write(out.join("manifest.json"), &top_bytes).unwrap();
    let v: Value = serde_json::from_slice(&top_bytes).unwrap();
    let instances: Vec<String> = v["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string())
        .collect();
    for e in fs::read_dir(&blobs).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name == top_hex {
            continue;
        }
        let dest = if instances.contains(&name) { format!("{name}.manifest.json") } else { name.clone() };
        fs::copy(blobs.join(&name), out.join(dest)).unwrap();
    }
}

/// Generates a CA and a server certificate for 127.0.0.1 and localhost in `root/tls`.
/// A CA and a server certificate for 127.0.0.1 under `root/tls/` (`server.crt`, `server.key`).
pub fn make_tls(root: &Path) -> Tls {
    let d = root.join("tls");
    fs::create_dir_all(&d).unwrap();
    let ossl = |args: &[&str]| {
        ok(Command::new("openssl").current_dir(&d).args(args));
    };
    ossl(&[
        "req",
        "-x509",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3",
        "-subj",
        "/CN=wso2img test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    ossl(&[
        "req",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ossl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "3",
        "-extfile",
        "server.ext",
    ]);
    let cert_dir = d.join("certs.d");
    fs::create_dir_all(&cert_dir).unwrap();
    fs::copy(d.join("ca.crt"), cert_dir.join("ca.crt")).unwrap();
    Tls { ca: d.join("ca.crt"), cert_dir }
}

// ---------------------------------------------------------------------------
// Minimal HTTP/1.1 pieces shared by the token server and the proxy

/// A request or response head.
#[derive(Clone, Debug)]
pub struct Head {
    /// `GET /v2/ HTTP/1.1` or `HTTP/1.1 200 OK`.
    pub line: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn status(&self) -> u16 {
        self.line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

/// Reads a head; `None` at a clean end of stream before any byte.
fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<Head>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut buf = Vec::new();
        let n = r.read_until(b'\n', &mut buf)?;
        if n == 0 {
            if lines.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "end of stream inside a head"));
        }
        total += n;
        if total > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let line = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if lines.is_empty() {
                continue; // tolerate a stray CRLF between messages
            }
            break;
        }
        lines.push(line);
    }
    let line = lines.remove(0);
    let headers = lines
        .into_iter()
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect();
    Ok(Some(Head { line, headers }))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

fn request_framing(h: &Head) -> Framing {
    if h.has_token("Transfer-Encoding", "chunked") {
        Framing::Chunked
    } else if let Some(n) = h.header("Content-Length").and_then(|v| v.parse().ok()) {
        if n == 0 {
            Framing::None
        } else {
            Framing::Length(n)
        }
    } else {
        Framing::None
    }
}

fn response_framing(method: &str, h: &Head) -> Framing {
    let s = h.status();
    if method == "HEAD" || (100..200).contains(&s) || s == 204 || s == 304 {
        Framing::None
    } else if h.has_token("Transfer-Encoding", "chunked") {
        Framing::Chunked
    } else if let Some(n) = h.header("Content-Length").and_then(|v| v.parse().ok()) {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    }
}

/// Copies a body in its framing (chunked bodies verbatim); with `limit`, stops
/// after about that many bytes and returns false (incomplete).
fn copy_body<R: BufRead, W: Write>(r: &mut R, w: &mut W, framing: Framing, limit: Option<u64>) -> io::Result<bool> {
    let cap = limit.unwrap_or(u64::MAX);
    match framing {
        Framing::None => Ok(true),
        Framing::Length(n) => {
            let want = n.min(cap);
            let got = io::copy(&mut r.take(want), w)?;
            if got < want {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body shorter than Content-Length"));
            }
            Ok(want == n)
        }
        Framing::UntilClose => {
            io::copy(&mut r.take(cap), w)?;
            Ok(limit.is_none())
        }
        Framing::Chunked => {
            let mut sent = 0u64;
            loop {
                let mut line = Vec::new();
                if r.read_until(b'\n', &mut line)? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "end of stream in chunked body"));
                }
                let text = String::from_utf8_lossy(&line);
                let size_text = text.trim().split(';').next().unwrap_or("").trim().to_string();
                let size = u64::from_str_radix(&size_text, 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {size_text:?}")))?;
                w.write_all(&line)?;
                if size == 0 {
                    // Trailers up to the empty line.
                    loop {
                        let mut t = Vec::new();
                        if r.read_until(b'\n', &mut t)? == 0 {
                            return Ok(true);
                        }
                        w.write_all(&t)?;
                        if t == b"\r\n" || t == b"\n" {
                            return Ok(true);
                        }
                    }
                }
                if sent + size > cap {
                    io::copy(&mut r.take(cap - sent), w)?;
                    return Ok(false);
                }
                let got = io::copy(&mut r.take(size + 2), w)?;
                if got < size + 2 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunk shorter than its size"));
                }
                sent += size;
            }
        }
    }
}

fn write_response(
    w: &mut impl Write,
    status: u16,
    reason: &str,
    headers: &[(&str, String)],
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let mut s = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        s += &format!("{k}: {v}\r\n");
    }
    if close {
        s += "Connection: close\r\n";
    }
    s += "\r\n";
    w.write_all(s.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// Answers a TLS ClientHello on a plain-HTTP port at once, as Go's server
/// does (clients that try HTTPS first, like skopeo, would otherwise wait for
/// their handshake timeout before falling back to HTTP). True when refused.
fn refuse_tls<R: BufRead, W: Write>(r: &mut R, w: &mut W) -> io::Result<bool> {
    let buf = r.fill_buf()?;
    if buf.first() == Some(&0x16) {
        w.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")?;
        w.flush()?;
        return Ok(true);
    }
    Ok(false)
}

/// Makes closing `s` send a TCP RST instead of a FIN.
fn set_reset_on_close(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// A tiny HTTP/1.1 client for tests: one request on a fresh connection.
/// Returns status, headers and body.
pub fn http_request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<(u16, Head, Vec<u8>)> {
    let s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut w = BufWriter::new(s.try_clone()?);
    let mut text =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        text += &format!("{k}: {v}\r\n");
    }
    text += "\r\n";
    w.write_all(text.as_bytes())?;
    w.write_all(body)?;
    w.flush()?;
    let mut r = BufReader::new(s);
    let head = loop {
        let h = read_head(&mut r)?.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no response"))?;
        if !(100..200).contains(&h.status()) {
            break h;
        }
    };
    let mut out = Vec::new();
    copy_body(&mut r, &mut out, response_framing(method, &head), None)?;
    // A chunked body was copied verbatim; decode it for the caller.
    if head.has_token("Transfer-Encoding", "chunked") {
        out = dechunk(&out);
    }
    Ok((head.status(), head, out))
}

fn dechunk(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut r = raw;
    while let Some(i) = r.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&r[..i]).split(';').next().unwrap().trim(), 16).unwrap_or(0);
        r = &r[i + 2..];
        if size == 0 || r.len() < size {
            break;
        }
        out.extend_from_slice(&r[..size]);
        r = &r[(size + 2).min(r.len())..];
    }
    out
}

fn form_decode(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The token server

/// One request the token server answered.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// `password`, `refresh_token` (POST) or `basic` (GET).
    pub grant: String,
    /// The user whose credentials were accepted; None when refused.
    pub user: Option<String>,
    /// The requested scopes (`repository:acme/apim:pull,push`), as asked.
    pub scopes: Vec<String>,
    /// The HTTP status of the answer.
    pub status: u16,
}

struct TokenState {
    user: String,
    password: String,
    refresh_token: String,
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
    counter: AtomicUsize,
}

struct TokenServer {
    port: u16,
    cert_path: PathBuf,
    stop: Arc<AtomicBool>,
    state: Arc<TokenState>,
    log: Arc<Mutex<Vec<TokenRequest>>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl TokenServer {
    fn start(root: &Path, user: &str, password: &str) -> TokenServer {
        let d = root.join("token");
        fs::create_dir_all(&d).unwrap();
        let ossl = |args: &[&str]| {
            ok(Command::new("openssl").current_dir(&d).args(args));
        };
        ossl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "signing.key"]);
        ossl(&["pkcs8", "-topk8", "-nocrypt", "-in", "signing.key", "-outform", "DER", "-out", "signing.p8"]);
        ossl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "signing.key",
            "-out",
            "signing.crt",
            "-days",
            "3",
            "-subj",
            "/CN=wso2img test token signer",
        ]);
        ossl(&["x509", "-in", "signing.crt", "-outform", "DER", "-out", "signing.der"]);
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &fs::read(d.join("signing.p8")).unwrap(),
            &rng,
        )
        .expect("the openssl key loads as PKCS#8 P-256");
        let state = Arc::new(TokenState {
            user: user.into(),
            password: password.into(),
            refresh_token: format!("wso2img-test-refresh-{:016x}", fastrand::u64(..)),
            key,
            cert_der: fs::read(d.join("signing.der")).unwrap(),
            counter: AtomicUsize::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let handle = {
            let (stop, state, log) = (stop.clone(), state.clone(), log.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (state, log) = (state.clone(), log.clone());
                    thread::spawn(move || {
                        let _ = serve_token(conn, &state, &log);
                    });
                }
            })
        };
        TokenServer { port, cert_path: d.join("signing.crt"), stop, state, log, handle: Some(handle) }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl TokenState {
    /// A JWT distribution 2.8 accepts: ES256, the signing certificate in `x5c`
    /// (it is in the registry's rootcertbundle), `aud` = service, the scopes granted as asked.
    fn jwt(&self, subject: &str, scopes: &[String]) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let mut access = Vec::new();
        for s in scopes.iter().flat_map(|s| s.split(' ')).filter(|s| !s.is_empty()) {
            // type:name:actions — the name may itself hold ':' (a port), actions never do.
            let Some((ty, rest)) = s.split_once(':') else { continue };
            let Some((name, actions)) = rest.rsplit_once(':') else { continue };
            let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
            access.push(json!({"type": ty, "name": name, "actions": actions}));
        }
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&self.cert_der)]});
        let claims = json!({
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": TOKEN_SERVICE,
            "exp": now + 900,
            "nbf": now - 60,
            "iat": now - 60,
            "jti": format!("wso2img-test-{now}-{n}"),
            "access": access,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        let sig = self.key.sign(&ring::rand::SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn serve_token(conn: TcpStream, state: &TokenState, log: &Mutex<Vec<TokenRequest>>) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut w = BufWriter::new(conn);
    if refuse_tls(&mut r, &mut w)? {
        return Ok(());
    }
    while let Some(head) = read_head(&mut r)? {
        let mut parts = head.line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let close = head.has_token("Connection", "close");
        if head.header("Expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            w.flush()?;
        }
        let mut body = Vec::new();
        copy_body(&mut r, &mut body, request_framing(&head), Some(1 << 20))?;
        if request_framing(&head) == Framing::Chunked {
            body = dechunk(&body);
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params = if method == "POST" { form_decode(&String::from_utf8_lossy(&body)) } else { form_decode(query) };
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let scopes: Vec<String> = params.iter().filter(|(n, _)| n == "scope").map(|(_, v)| v.clone()).collect();
        let basic = head.header("Authorization").and_then(|a| {
            let b = a.strip_prefix("Basic ").or_else(|| a.strip_prefix("basic "))?;
            let dec = String::from_utf8(STANDARD.decode(b.trim()).ok()?).ok()?;
            dec.split_once(':').map(|(u, p)| (u.to_string(), p.to_string()))
        });
        let good = |u: &str, p: &str| u == state.user && p == state.password;
        let (grant, user) = match method.as_str() {
            "GET" => ("basic".to_string(), basic.filter(|(u, p)| good(u, p)).map(|(u, _)| u)),
            "POST" => match get("grant_type").as_deref() {
                Some("password") => (
                    "password".into(),
                    get("username").zip(get("password")).filter(|(u, p)| good(u, p)).map(|(u, _)| u),
                ),
                Some("refresh_token") => (
                    "refresh_token".into(),
                    get("refresh_token").filter(|t| *t == state.refresh_token).map(|_| state.user.clone()),
                ),
                other => (other.unwrap_or("none").to_string(), None),
            },
            _ => ("none".into(), None),
        };
        let status;
        if path != "/token" || !(method == "GET" || method == "POST") {
            status = 404;
            write_response(&mut w, 404, "Not Found", &[], b"not found\n", close)?;
        } else if get("service").as_deref() != Some(TOKEN_SERVICE) {
            status = 400;
            write_response(
                &mut w,
                400,
                "Bad Request",
                &[("Content-Type", "application/json".into())],
                br#"{"errors":[{"code":"INVALID_REQUEST","message":"unknown service"}]}"#,
                close,
            )?;
        } else if let Some(user) = &user {
            status = 200;
            let token = state.jwt(user, &scopes);
            let body = if method == "GET" {
                let mut v = json!({"token": token, "expires_in": 900, "issued_at": "2026-01-01T00:00:00Z"});
                if get("offline_token").as_deref() == Some("true") {
                    v["refresh_token"] = json!(state.refresh_token);
                }
                v
            } else {
                let mut v = json!({"access_token": token, "expires_in": 900, "scope": scopes.join(" ")});
                if grant == "password" {
                    v["refresh_token"] = json!(state.refresh_token);
                }
                v
            };
            write_response(
                &mut w,
                200,
                "OK",
                &[("Content-Type", "application/json".into())],
                &serde_json::to_vec(&body).unwrap(),
                close,
            )?;
        } else {
            status = 401;
            write_response(
                &mut w,
                401,
                "Unauthorized",
                &[
                    ("Content-Type", "application/json".into()),
                    ("WWW-Authenticate", "Basic realm=\"wso2img-test-token\"".into()),
                ],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad or missing credentials"}]}"#,
                close,
            )?;
        }
        log.lock().unwrap().push(TokenRequest { method: method.clone(), grant, user, scopes, status });
        if close {
            break;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The fault-injecting proxy

/// Which requests a fault applies to.
#[derive(Clone, Debug)]
pub enum Match {
    Any,
    /// `GET /v2/<name>/blobs/<digest>`.
    BlobGet,
    /// `HEAD /v2/<name>/blobs/<digest>`.
    BlobHead,
    /// `POST /v2/<name>/blobs/uploads/` (starts or mounts).
    BlobPost,
    /// `PATCH /v2/<name>/blobs/uploads/<id>`.
    BlobPatch,
    /// `PUT /v2/<name>/blobs/uploads/<id>?digest=…`.
    BlobPut,
    /// A PATCH or PUT of a blob upload.
    BlobWrite,
    /// `GET /v2/<name>/manifests/<ref>`.
    ManifestGet,
    /// `HEAD /v2/<name>/manifests/<ref>`.
    ManifestHead,
    /// `PUT /v2/<name>/manifests/<ref>`.
    ManifestPut,
    /// A method (or any, when empty) and a substring of the decoded URI.
    Request {
        method: String,
        contains: String,
    },
}

impl Match {
    fn matches(&self, method: &str, uri: &str) -> bool {
        let path = uri.split('?').next().unwrap_or("");
        let blob = path.contains("/blobs/sha256:");
        let upload = path.contains("/blobs/uploads");
        let manifest = path.contains("/manifests/");
        match self {
            Match::Any => true,
            Match::BlobGet => method == "GET" && blob,
            Match::BlobHead => method == "HEAD" && blob,
            Match::BlobPost => method == "POST" && upload,
            Match::BlobPatch => method == "PATCH" && upload,
            Match::BlobPut => method == "PUT" && upload,
            Match::BlobWrite => (method == "PATCH" || method == "PUT") && upload,
            Match::ManifestGet => method == "GET" && manifest,
            Match::ManifestHead => method == "HEAD" && manifest,
            Match::ManifestPut => method == "PUT" && manifest,
            Match::Request { method: m, contains } => {
                (m.is_empty() || m.eq_ignore_ascii_case(method)) && uri.contains(contains.as_str())
            }
        }
    }
}

/// What a fault does.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answer with this status (a JSON error body) without forwarding; the request body is read first.
    Status(u16),
    /// Answer 429 with `Retry-After: <secs>` without forwarding.
    TooMany { retry_after: u32 },
    /// Reset the connection (TCP RST): a request with a body after part of
    /// it was read; one without a body after the upstream's response head and
    /// half its body were relayed.
    Reset,
    /// Forward, then wait this long before answering.
    Delay(Duration),
}

/// One scripted fault: fires on the `nth` matching request (1-based) and the
/// following ones, at most `times` times.
#[derive(Clone, Debug)]
pub struct Fault {
    pub when: Match,
    pub action: Action,
    pub nth: usize,
    pub times: usize,
}

impl Fault {
    pub fn new(when: Match, action: Action) -> Self {
        Fault { when, action, nth: 1, times: 1 }
    }
    pub fn status(when: Match, code: u16) -> Self {
        Self::new(when, Action::Status(code))
    }
    pub fn too_many(when: Match, retry_after: u32) -> Self {
        Self::new(when, Action::TooMany { retry_after })
    }
    pub fn reset(when: Match) -> Self {
        Self::new(when, Action::Reset)
    }
    pub fn delay(when: Match, ms: u64) -> Self {
        Self::new(when, Action::Delay(Duration::from_millis(ms)))
    }
    /// Start firing at the `n`th matching request.
    pub fn nth(mut self, n: usize) -> Self {
        self.nth = n.max(1);
        self
    }
    /// Fire at most `n` times.
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }
}

/// A request the proxy saw.
#[derive(Clone, Debug)]
pub struct ProxiedRequest {
    pub method: String,
    /// Decoded URI.
    pub uri: String,
    /// Status sent to the client; 0 when the connection was reset or failed first.
    pub status: u16,
    /// Indexes (into the script) of the faults that fired on it.
    pub faults: Vec<usize>,
}

struct ProxyState {
    faults: Vec<(Fault, usize, usize)>, // fault, matched so far, fired so far
    requests: Vec<ProxiedRequest>,
}

impl ProxyState {
    /// Decides the faults for one request: the delay (sum of delay faults
    /// that fire) and the first terminal fault that fires.
    fn decide(&mut self, method: &str, uri: &str) -> (usize, Option<Action>, Duration) {
        let mut terminal = None;
        let mut delay = Duration::ZERO;
        let mut fired = Vec::new();
        for (i, (f, seen, count)) in self.faults.iter_mut().enumerate() {
            if !f.when.matches(method, uri) {
                continue;
            }
            *seen += 1;
            if *seen < f.nth || *count >= f.times {
                continue;
            }
            match &f.action {
                Action::Delay(d) => {
                    delay += *d;
                    *count += 1;
                    fired.push(i);
                }
                a if terminal.is_none() => {
                    terminal = Some(a.clone());
                    *count += 1;
                    fired.push(i);
                }
                _ => {}
            }
        }
        self.requests.push(ProxiedRequest { method: method.into(), uri: uri.into(), status: 0, faults: fired });
        (self.requests.len() - 1, terminal, delay)
    }
}

/// An HTTP/1.1 forwarding proxy on 127.0.0.1 in front of a plain-HTTP
/// registry, injecting scripted faults. Clients talk to it as to a registry.
pub struct FaultProxy {
    port: u16,
    upstream: String,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<ProxyState>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream_host` (`127.0.0.1:PORT`) with `faults`.
    pub fn start(upstream_host: &str, faults: Vec<Fault>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(ProxyState {
            faults: faults.into_iter().map(|f| (f, 0, 0)).collect(),
            requests: Vec::new(),
        }));
        let upstream = upstream_host.to_string();
        let handle = {
            let (stop, state, upstream) = (stop.clone(), state.clone(), upstream.clone());
            let me = format!("127.0.0.1:{port}");
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (state, upstream, me) = (state.clone(), upstream.clone(), me.clone());
                    thread::spawn(move || {
                        let _ = proxy_conn(conn, &upstream, &me, &state);
                    });
                }
            })
        };
        FaultProxy { port, upstream, stop, state, handle: Some(handle) }
    }
    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    /// Every request the proxy received so far.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.state.lock().unwrap().requests.clone()
    }
    /// How many times fault `i` of the script fired.
    pub fn fired(&self, i: usize) -> usize {
        self.state.lock().unwrap().faults[i].2
    }
    /// The requests as text (for assertion messages).
    pub fn describe(&self) -> String {
        self.requests()
            .iter()
            .map(|r| format!("{} {} {} {:?}", r.method, r.uri, r.status, r.faults))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn proxy_conn(client: TcpStream, upstream: &str, me: &str, state: &Mutex<ProxyState>) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    client.set_nodelay(true)?;
    let mut cr = BufReader::with_capacity(64 * 1024, client.try_clone()?);
    let mut cw = BufWriter::with_capacity(64 * 1024, client.try_clone()?);
    if refuse_tls(&mut cr, &mut cw)? {
        return Ok(());
    }
    while let Some(head) = read_head(&mut cr)? {
        let mut parts = head.line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let client_close = head.has_token("Connection", "close") || head.line.ends_with("HTTP/1.0");
        let (idx, terminal, delay) = state.lock().unwrap().decide(&method, &percent_decode(&target));
        let set_status = |s: u16| state.lock().unwrap().requests[idx].status = s;
        let framing = request_framing(&head);
        if head.header("Expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            cw.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            cw.flush()?;
        }
        match terminal {
            Some(Action::Status(code)) => {
                copy_body(&mut cr, &mut io::sink(), framing, None)?;
                thread::sleep(delay);
                let body = format!(r#"{{"errors":[{{"code":"UNKNOWN","message":"injected fault: {code}"}}]}}"#);
                write_response(
                    &mut cw,
                    code,
                    "Injected Fault",
                    &[("Content-Type", "application/json".into())],
                    body.as_bytes(),
                    client_close,
                )?;
                set_status(code);
            }
            Some(Action::TooMany { retry_after }) => {
                copy_body(&mut cr, &mut io::sink(), framing, None)?;
                thread::sleep(delay);
                let body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected fault: slow down"}]}"#;
                write_response(
                    &mut cw,
                    429,
                    "Too Many Requests",
                    &[("Content-Type", "application/json".into()), ("Retry-After", retry_after.to_string())],
                    body,
                    client_close,
                )?;
                set_status(429);
            }
            Some(Action::Reset) => {
                if framing != Framing::None {
                    let half = match framing {
                        Framing::Length(n) => n / 2,
                        _ => 8 * 1024,
                    };
                    let _ = copy_body(&mut cr, &mut io::sink(), framing, Some(half));
                } else {
                    // Relay the head and half the body, then reset.
                    let _ = forward(
                        &mut cr,
                        &mut cw,
                        &head,
                        &method,
                        &target,
                        upstream,
                        me,
                        Framing::None,
                        Duration::ZERO,
                        true,
                    );
                }
                let _ = cw.flush();
                set_reset_on_close(&client);
                let _ = client.shutdown(Shutdown::Read);
                return Ok(());
            }
            Some(Action::Delay(_)) => unreachable!("delays are not terminal"),
            None => {
                let (status, must_close) =
                    forward(&mut cr, &mut cw, &head, &method, &target, upstream, me, framing, delay, false)?;
                set_status(status);
                if must_close {
                    return Ok(());
                }
            }
        }
        if client_close {
            return Ok(());
        }
    }
    Ok(())
}

/// Forwards one request upstream on a fresh connection and relays the
/// response; with `truncate`, relays the head and half the body only.
/// Returns the status and whether the client connection must close.
#[allow(clippy::too_many_arguments)]
fn forward(
    cr: &mut BufReader<TcpStream>,
    cw: &mut BufWriter<TcpStream>,
    head: &Head,
    method: &str,
    target: &str,
    upstream: &str,
    me: &str,
    framing: Framing,
    delay: Duration,
    truncate: bool,
) -> io::Result<(u16, bool)> {
    let up = match TcpStream::connect(upstream) {
        Ok(s) => s,
        Err(e) => {
            copy_body(cr, &mut io::sink(), framing, None)?;
            write_response(cw, 502, "Bad Gateway", &[], format!("upstream {upstream}: {e}\n").as_bytes(), true)?;
            return Ok((502, true));
        }
    };
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    up.set_nodelay(true)?;
    let mut uw = BufWriter::with_capacity(64 * 1024, up.try_clone()?);
    let mut text = format!("{method} {target} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n");
    for (k, v) in &head.headers {
        if ["host", "connection", "keep-alive", "proxy-connection", "expect"].contains(&k.to_ascii_lowercase().as_str())
        {
            continue;
        }
        text += &format!("{k}: {v}\r\n");
    }
    text += "\r\n";
    uw.write_all(text.as_bytes())?;
    copy_body(cr, &mut uw, framing, None)?;
    uw.flush()?;
    let mut ur = BufReader::with_capacity(64 * 1024, up);
    let resp = loop {
        let h = read_head(&mut ur)?.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "upstream closed"))?;
        if !(100..200).contains(&h.status()) {
            break h;
        }
    };
    let status = resp.status();
    let rframing = response_framing(method, &resp);
    let must_close = rframing == Framing::UntilClose;
    let mut out = format!("{}\r\n", resp.line);
    for (k, v) in &resp.headers {
        let lk = k.to_ascii_lowercase();
        if lk == "connection" || lk == "keep-alive" {
            continue;
        }
        let v = if lk == "location" {
            v.replace(&format!("http://{upstream}"), &format!("http://{me}"))
        } else {
            v.clone()
        };
        out += &format!("{k}: {v}\r\n");
    }
    if must_close {
        out += "Connection: close\r\n";
    }
    out += "\r\n";
    thread::sleep(delay);
    cw.write_all(out.as_bytes())?;
    if truncate {
        let half = match rframing {
            Framing::Length(n) => n / 2,
            Framing::None => 0,
            _ => 8 * 1024,
        };
        let _ = copy_body(&mut ur, cw, rframing, Some(half));
        cw.flush()?;
        return Ok((status, true));
    }
    copy_body(&mut ur, cw, rframing, None)?;
    cw.flush()?;
    Ok((status, must_close))
}
