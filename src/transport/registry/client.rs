//! An HTTP client for one registry host: scheme selection (HTTPS, or plain
//! HTTP only for loopback and `--insecure-registry` hosts), basic and bearer
//! auth with cached tokens per scope — both learnt from the first real
//! request (no separate `GET /v2/` ping: its TLS failure or its 401 says what
//! a ping would have), redirects followed by hand
//! (credentials only to the registry's own origin, see [`super::origin`]),
//! bounded bodies, and a stall limit (`--timeout`): a registry that sends
//! nothing for that long fails the request, with a line saying what is
//! awaited printed while it waits. TLS roots, proxies, timeouts and retries
//! are the [`crate::net`] stack's.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use super::auth::{self, Challenge, Credential, Found};
use super::origin;
use crate::error::{Cause, Error, Kind, Result};
pub(crate) use crate::net::retry::Failure;
use crate::net::retry::{retry_after, retryable_status};
use crate::net::{notice_wait, Policy};
pub(crate) use crate::net::{one_line, root_cause, urlencode};

/// Settings shared by every registry client.
#[derive(Debug, Clone)]
pub struct Options {
    /// Extra CA certificates (PEM files) trusted for every registry.
    pub ca_certs: Vec<PathBuf>,
    /// Hosts allowed over plain HTTP (or with unverified TLS).
    pub insecure: Vec<String>,
    /// Upload in chunks of this many bytes instead of one PUT.
    pub chunk_size: Option<u64>,
    /// Attempts per request before giving up.
    pub max_attempts: u32,
    /// Uploads in flight at once.
    pub concurrency: usize,
    /// First backoff delay.
    pub backoff: Duration,
    /// How long a registry may send nothing (no answer, no body bytes) before
    /// the request fails; stalls are not retried.
    pub timeout: Duration,
}

/// The default `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = crate::net::DEFAULT_TIMEOUT;
/// The largest token-server answer or error body read.
const SMALL_BODY_MAX: u64 = 1 << 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            ca_certs: Vec::new(),
            insecure: Vec::new(),
            chunk_size: None,
            max_attempts: 6,
            concurrency: 4,
            backoff: Duration::from_millis(200),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Options {
    /// The network settings of these options.
    pub fn net(&self) -> crate::net::Settings {
        crate::net::Settings { ca_certs: self.ca_certs.clone(), insecure: self.insecure.clone(), timeout: self.timeout }
    }

    /// The retry policy of these options.
    pub fn retry(&self) -> Policy {
        Policy { attempts: self.max_attempts.max(1), backoff: self.backoff, ..Policy::default() }
    }
}

/// A client for one registry.
pub struct Client {
    /// The host as references name it (`docker.io`, `127.0.0.1:5000`).
    pub host: String,
    /// `https://HOST` and its URL.
    https: (String, Url),
    /// `http://HOST` and its URL (used only when `plain_ok` and HTTPS failed).
    plain: (String, Url),
    /// [`SCHEME_UNKNOWN`] until the first request answered, then
    /// [`SCHEME_HTTPS`] or [`SCHEME_PLAIN`].
    scheme: AtomicU8,
    /// Held by the request that finds the scheme; the others wait for it.
    probing: tokio::sync::Mutex<()>,
    http: reqwest::Client,
    /// The same, without a read timeout: for uploads, whose answer comes only
    /// once the whole body is sent (their stalls are watched by [`Client::execute`]).
    /// Made on the first upload: a run that uploads nothing does not load the
    /// system's root certificates twice.
    http_upload: std::sync::OnceLock<reqwest::Client>,
    /// Whether plain HTTP is allowed (loopback and `--insecure-registry`).
    plain_ok: bool,
    found: Option<Found>,
    /// What the registry asks for, once a 401 (or a success without
    /// credentials) said it; `None` before.
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, String>>,
    /// Held while a token is fetched, so requests side by side fetch it once.
    token_fetch: tokio::sync::Mutex<()>,
    pub(crate) opts: Options,
    uploaded: AtomicU64,
}

const SCHEME_UNKNOWN: u8 = 0;
const SCHEME_HTTPS: u8 = 1;
const SCHEME_PLAIN: u8 = 2;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.base().0)
    }
}

fn api_host(host: &str) -> &str {
    if host == "docker.io" {
        "registry-1.docker.io"
    } else {
        host
    }
}

/// Whether plain HTTP is allowed for `host` without `--insecure-registry`:
/// `localhost` or a loopback IP, parsed (`127.evil.test` is a name).
fn is_loopback(host: &str) -> bool {
    crate::net::is_loopback(host)
}

impl Client {
    /// A client for `host`: finds credentials; sends nothing (the first
    /// request picks the scheme and learns the auth challenge).
    pub fn connect(host: &str, opts: &Options) -> Result<Client> {
        let plain_ok = is_loopback(host) || opts.insecure.iter().any(|h| h == host);
        let http = http_client(host, opts, plain_ok, true)?;
        let found = auth::lookup(host, opts.timeout)?;
        let parse = |scheme: &str| {
            let base = format!("{scheme}://{}", api_host(host));
            Url::parse(&base)
                .map(|u| (base, u))
                .map_err(|e| Error::usage(format!("{host}: not a usable registry host ({e})")))
        };
        Ok(Client {
            host: host.to_string(),
            https: parse("https")?,
            plain: parse("http")?,
            scheme: AtomicU8::new(SCHEME_UNKNOWN),
            probing: tokio::sync::Mutex::new(()),
            http,
            http_upload: std::sync::OnceLock::new(),
            plain_ok,
            found,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
            token_fetch: tokio::sync::Mutex::new(()),
            opts: opts.clone(),
            uploaded: AtomicU64::new(0),
        })
    }

    /// The registry's base (`https://HOST` until plain HTTP was found to be it).
    fn base(&self) -> &(String, Url) {
        match self.scheme.load(Ordering::Acquire) {
            SCHEME_PLAIN => &self.plain,
            _ => &self.https,
        }
    }

    /// Bytes of blob data uploaded so far.
    pub fn uploaded_bytes(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }

    pub(crate) fn count_upload(&self, n: u64) {
        self.uploaded.fetch_add(n, Ordering::Relaxed);
    }

    /// Checks `credential` against the registry, as `docker login` does: a
    /// `GET /v2/` with it (basic auth, or a token fetched with it from the
    /// token realm). A registry that asks for no credentials accepts any.
    pub async fn verify(mut self, credential: Credential) -> Result<()> {
        self.found = Some(Found { credential, source: "the credentials given".into() });
        let url = self.url("");
        let resp = self.send(&[], &|http| http.get(&url)).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::new(
                Kind::Usage,
                format!("{}: the registry refused these credentials ({status})", self.host),
            ));
        }
        Err(self.status_error(resp, "login").await)
    }

    /// `base/v2/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{}", self.base().0, path)
    }

    /// Resolves a `Location` header against the registry, refusing a move
    /// from HTTPS to plain HTTP. Requests to another origin go without
    /// credentials (see `Client::attempt`).
    pub fn absolute(&self, location: &str) -> Result<String> {
        origin::follow(&self.base().1, location)
            .map(String::from)
            .map_err(|m| Error::source(format!("{}: {m}", self.host)))
    }

    /// The error for a registry that sent nothing for `--timeout` while `what` was awaited.
    pub(crate) fn stalled(&self, what: &str) -> Error {
        Error::source(format!(
            "{}: {what}: no answer for {} s; the registry stalled (try again later, or raise --timeout)",
            self.host,
            self.opts.timeout.as_secs_f64()
        ))
    }

    /// Awaits `fut`; when it takes a while, prints one line saying what is awaited.
    pub(crate) async fn waiting<F: Future>(&self, what: &str, fut: F) -> F::Output {
        notice_wait(&self.host, what, self.opts.timeout, fut).await
    }

    /// The retry policy of this client.
    pub(crate) fn policy(&self) -> Policy {
        self.opts.retry()
    }

    /// Awaits an upload's answer: it stalls when no byte of any upload to
    /// this registry moved for `--timeout` (`None` then); says what it waits
    /// for once nothing moved for a while.
    async fn watch_upload<F: Future>(&self, what: &str, fut: F) -> Option<F::Output> {
        let tick = (self.opts.timeout / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let notice = (self.opts.timeout / 3).clamp(Duration::from_millis(200), Duration::from_secs(10));
        let (mut last, mut since, mut told) = (self.uploaded_bytes(), Instant::now(), false);
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Some(out),
                _ = tokio::time::sleep(tick) => {
                    let now = self.uploaded_bytes();
                    if now != last {
                        (last, since, told) = (now, Instant::now(), false);
                    }
                    if !told && since.elapsed() >= notice {
                        told = true;
                        crate::progress::message(&format!(
                            "waiting for {} to answer {what} (gives up after {} s without progress; see --timeout)",
                            self.host,
                            self.opts.timeout.as_secs_f64()
                        ));
                    }
                    if since.elapsed() >= self.opts.timeout {
                        return None;
                    }
                }
            }
        }
    }

    /// Reads a response body of at most `max` bytes (`what` names it in
    /// errors). The error says whether a retry may help: a body over the limit
    /// or a stall is final, a broken connection is not.
    pub(crate) async fn read_body(
        &self,
        mut resp: Response,
        max: u64,
        what: &str,
    ) -> std::result::Result<Vec<u8>, (Error, bool)> {
        let too_large = || {
            Error::source(format!(
                "{}: {what}: larger than the {} limit; refusing it",
                self.host,
                crate::bounded::size_text(max)
            ))
        };
        if resp.content_length().is_some_and(|n| n > max) {
            return Err((too_large(), false));
        }
        let mut out = Vec::new();
        loop {
            match self.waiting(what, resp.chunk()).await {
                Ok(Some(c)) => {
                    if (out.len() + c.len()) as u64 > max {
                        return Err((too_large(), false));
                    }
                    out.extend_from_slice(&c);
                }
                Ok(None) => return Ok(out),
                Err(e) if e.is_timeout() => return Err((self.stalled(what), false)),
                Err(e) => {
                    return Err((Error::source(format!("{}: reading {what}: {}", self.host, root_cause(&e))), true))
                }
            }
        }
    }

    /// The scrubbed one-line form of an error text: secrets replaced.
    fn scrub(&self, s: String) -> String {
        let mut s = s;
        if let Some(f) = &self.found {
            for secret in f.credential.secrets() {
                if !secret.is_empty() {
                    s = s.replace(secret, "<redacted>");
                }
            }
        }
        s
    }

    /// The challenge learnt so far.
    fn challenge(&self) -> Option<Challenge> {
        self.challenge.lock().expect("challenge").clone()
    }

    /// The Authorization header for `scopes` (none while the challenge is unknown).
    async fn authorization(&self, scopes: &[String], fresh: bool) -> Result<Option<HeaderValue>> {
        match self.challenge() {
            None | Some(Challenge::None) => Ok(None),
            Some(Challenge::Basic) => Ok(self
                .found
                .as_ref()
                .and_then(|f| f.credential.basic_header())
                .and_then(|h| HeaderValue::from_str(&h).ok())),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = scopes.join(" ");
                let cached = || self.tokens.lock().expect("token cache").get(&key).cloned();
                if !fresh {
                    if let Some(t) = cached() {
                        return Ok(HeaderValue::from_str(&format!("Bearer {t}")).ok());
                    }
                }
                let _fetching = self.token_fetch.lock().await;
                // Another request may have fetched it meanwhile.
                if let Some(t) = cached().filter(|_| !fresh) {
                    return Ok(HeaderValue::from_str(&format!("Bearer {t}")).ok());
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes).await?;
                self.tokens.lock().expect("token cache").insert(key, token.clone());
                Ok(HeaderValue::from_str(&format!("Bearer {token}")).ok())
            }
        }
    }

    /// Learns the challenge from a response to a request sent without
    /// credentials: a 401's `WWW-Authenticate` (basic when it names none),
    /// or none needed when the first answer succeeded (until a 401 says
    /// otherwise: some registries let anyone pull but not push). Returns
    /// whether it changed.
    fn learn_challenge(&self, resp: &Response) -> bool {
        let mut c = self.challenge.lock().expect("challenge");
        let learnt = match resp.status() {
            StatusCode::UNAUTHORIZED => resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(auth::parse_challenge)
                .unwrap_or(Challenge::Basic),
            s if s.is_success() && c.is_none() => Challenge::None,
            _ => return false,
        };
        if matches!(*c, Some(Challenge::Basic | Challenge::Bearer { .. })) || c.as_ref() == Some(&learnt) {
            return false;
        }
        *c = Some(learnt);
        true
    }

    async fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<String> {
        if let Err(m) = origin::follow(&self.base().1, realm) {
            let realm_host = Url::parse(realm).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
            if !is_loopback(&realm_host) {
                return Err(Error::source(format!("{}: token realm {realm}: {m}", self.host)));
            }
        }
        let what = format!("token from {realm}");
        let (me, what_ref) = (self, what.as_str());
        self.policy().run(&what, move || async move { me.token_attempt(realm, service, scopes, what_ref).await }).await
    }

    /// One request to the token server.
    async fn token_attempt(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        what: &str,
    ) -> std::result::Result<String, Failure> {
        let req = match self.found.as_ref().map(|f| &f.credential) {
            Some(Credential::IdentityToken(t)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", t.clone()),
                    ("client_id", "wso2img".to_string()),
                    ("scope", scopes.join(" ")),
                ];
                if let Some(s) = service {
                    form.push(("service", s.to_string()));
                }
                let body = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
                self.http.post(realm).header("Content-Type", "application/x-www-form-urlencoded").body(body)
            }
            cred => {
                let mut q: Vec<(&str, String)> = Vec::new();
                if let Some(s) = service {
                    q.push(("service", s.to_string()));
                }
                for s in scopes {
                    q.push(("scope", s.clone()));
                }
                let mut r = self.http.get(realm).query(&q);
                if let Some(h) = cred.and_then(Credential::basic_header) {
                    r = r.header(AUTHORIZATION, h);
                }
                r
            }
        };
        match self.waiting(what, req.send()).await {
            Ok(resp) if resp.status().is_success() => {
                let body = self.read_body(resp, SMALL_BODY_MAX, what).await.map_err(|(e, _)| Failure::fatal(e))?;
                let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                    Failure::fatal(Error::source(format!(
                        "{}: token response from {realm} is not JSON ({e})",
                        self.host
                    )))
                })?;
                let token = v["token"].as_str().or_else(|| v["access_token"].as_str()).unwrap_or("");
                if token.is_empty() {
                    return Err(Failure::fatal(Error::source(format!(
                        "{}: token server {realm} returned no token",
                        self.host
                    ))));
                }
                Ok(token.to_string())
            }
            Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN => {
                Err(Failure::fatal(self.auth_error(resp.status(), &format!("token server {realm}"))))
            }
            Ok(resp) => {
                let st = resp.status();
                let error = Error::source(format!("{}: token server {realm} answered {st}", self.host));
                if retryable_status(st.as_u16()) {
                    Err(Failure::transient(error, retry_after(resp.headers())))
                } else {
                    Err(Failure::fatal(error))
                }
            }
            Err(e) if e.is_timeout() => Err(Failure::fatal(self.stalled(what))),
            Err(e) => {
                let error = Error::source(self.scrub(format!("{}: token server {realm}: {}", self.host, one_line(&e))));
                if e.is_connect() || e.is_request() {
                    Err(Failure::transient(error, None))
                } else {
                    Err(Failure::fatal(error))
                }
            }
        }
    }

    /// The error for a 401/403: names the registry and whether credentials were found.
    pub fn auth_error(&self, status: StatusCode, what: &str) -> Error {
        let host = &self.host;
        let msg = match &self.found {
            Some(f) => format!(
                "{host}: {what} refused the credentials from {} ({status}); check them with `docker login {host}`",
                f.source
            ),
            None => format!(
                "{host}: {what} needs credentials ({status}) and none were found; run `docker login {host}` or set {} and {}",
                auth::ENV_USERNAME,
                auth::ENV_PASSWORD
            ),
        };
        Error::new(Kind::Source, msg)
    }

    /// One attempt: builds the request with `make`, adds auth for `scopes`
    /// (only while the request stays on the registry's origin), sends it and
    /// follows redirects. The first 401 teaches the challenge (the request
    /// goes again with credentials); a later one refreshes the token once
    /// within the attempt.
    pub(crate) async fn attempt(
        &self,
        scopes: &[String],
        make: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Send + Sync),
    ) -> std::result::Result<Response, Failure> {
        let mut fresh = false;
        let mut answered = false;
        loop {
            let auth = self.authorization(scopes, fresh).await.map_err(Failure::fatal)?;
            let mut request = make(&self.http)
                .build()
                .map_err(|e| Failure::fatal(Error::source(self.scrub(format!("{}: {}", self.host, one_line(&e))))))?;
            self.rebase(&mut request);
            let what = format!("{} {}", request.method(), request.url().path());
            let mut sent_auth = false;
            if let Some(a) = auth {
                if origin::same_origin(request.url(), &self.base().1) {
                    request.headers_mut().insert(AUTHORIZATION, a);
                    sent_auth = true;
                }
            }
            let replayable = request.try_clone().is_some();
            let started = Instant::now();
            let resp = self.execute(request, &what).await?;
            crate::progress::debug(&format!(
                "{}: {} {} -> {} in {} ms",
                self.host,
                what.split(' ').next().unwrap_or(""),
                origin::shown(resp.url()),
                resp.status(),
                started.elapsed().as_millis()
            ));
            let st = resp.status();
            // A 401 to a request sent without credentials: answer the
            // challenge (learnt from this answer, or from another request's
            // side by side) once.
            if !sent_auth {
                self.learn_challenge(&resp);
            }
            if !sent_auth && !answered && st == StatusCode::UNAUTHORIZED {
                let can_answer = self.found.is_some() || matches!(self.challenge(), Some(Challenge::Bearer { .. }));
                if can_answer {
                    answered = true;
                    if !replayable {
                        return Err(Failure::transient(
                            Error::source(format!("{}: {what}: 401 Unauthorized; authenticating", self.host)),
                            None,
                        ));
                    }
                    continue;
                }
            }
            if st == StatusCode::UNAUTHORIZED && !fresh && matches!(self.challenge(), Some(Challenge::Bearer { .. })) {
                if !replayable {
                    // The body (an upload's stream) is spent: drop the token
                    // and have the caller send the request again, body and all.
                    self.tokens.lock().expect("token cache").remove(&scopes.join(" "));
                    return Err(Failure::transient(
                        Error::source(format!(
                            "{}: {what}: 401 Unauthorized (the token expired); authenticating again",
                            self.host
                        )),
                        None,
                    ));
                }
                fresh = true;
                continue;
            }
            if retryable_status(st.as_u16()) {
                let ra = retry_after(resp.headers());
                let detail = error_detail(resp).await;
                return Err(Failure::transient(Error::source(format!("{}: {what}: {st}{detail}", self.host)), ra));
            }
            return Ok(resp);
        }
    }

    /// Points a request built for `https://HOST` at plain HTTP once that
    /// was found to be the registry's scheme.
    fn rebase(&self, request: &mut reqwest::Request) {
        if self.scheme.load(Ordering::Acquire) == SCHEME_PLAIN && origin::same_origin(request.url(), &self.https.1) {
            let _ = request.url_mut().set_scheme("http");
        }
    }

    /// Sends a request to the registry while its scheme is not known yet:
    /// HTTPS first, then — for loopback and `--insecure-registry` hosts —
    /// the same request over plain HTTP when HTTPS got no answer. The first
    /// answer fixes the scheme for every later request. A request that
    /// cannot be sent twice (an upload) learns the scheme from a
    /// `GET /v2/` first.
    async fn probe(
        &self,
        request: reqwest::Request,
        what: &str,
    ) -> std::result::Result<(Response, Option<reqwest::Request>), Failure> {
        let Some(mut again) = request.try_clone() else {
            let (base, _) = match ping(&self.http, &self.https.0, &self.opts).await {
                Ok(r) => (SCHEME_HTTPS, r),
                Err(Ping::Failed(tls_err)) if self.plain_ok => {
                    match ping(&self.http, &self.plain.0, &self.opts).await {
                        Ok(r) if r.status() == StatusCode::OK || r.status() == StatusCode::UNAUTHORIZED => {
                            (SCHEME_PLAIN, r)
                        }
                        _ => return Err(Failure::fatal(tls_err)),
                    }
                }
                Err(Ping::Failed(e) | Ping::Stalled(e)) => return Err(Failure::fatal(e)),
            };
            self.scheme.store(base, Ordering::Release);
            let mut request = request;
            self.rebase(&mut request);
            return Ok((self.send_upload(request, what).await?, None));
        };
        let https_err = match self.waiting(what, self.http.execute(request)).await {
            Ok(r) => {
                self.scheme.store(SCHEME_HTTPS, Ordering::Release);
                return Ok((r, Some(again)));
            }
            Err(e) if e.is_timeout() || !self.plain_ok => {
                return Err(Failure::fatal(ping_error(&self.host, &e, &self.opts)))
            }
            Err(e) => e,
        };
        crate::progress::debug(&format!("{}: HTTPS failed ({}); trying plain HTTP", self.host, root_cause(&https_err)));
        let _ = again.url_mut().set_scheme("http");
        let replay = again.try_clone();
        match self.waiting(what, self.http.execute(again)).await {
            // A TLS port answers plain HTTP with a bare 400 ("Client sent an
            // HTTP request to an HTTPS server"); a registry's own 400 carries
            // its API version header.
            Ok(r)
                if r.status() == StatusCode::BAD_REQUEST
                    && !r.headers().contains_key("docker-distribution-api-version") =>
            {
                Err(Failure::fatal(ping_error(&self.host, &https_err, &self.opts)))
            }
            Ok(r) => {
                self.scheme.store(SCHEME_PLAIN, Ordering::Release);
                Ok((r, replay))
            }
            Err(e) if e.is_timeout() => Err(Failure::fatal(self.stalled(what))),
            Err(_) => Err(Failure::fatal(ping_error(&self.host, &https_err, &self.opts))),
        }
    }

    /// Sends an upload (no read timeout: its stalls are watched here).
    async fn send_upload(&self, request: reqwest::Request, what: &str) -> std::result::Result<Response, Failure> {
        match self.watch_upload(what, self.upload_http().map_err(Failure::fatal)?.execute(request)).await {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => {
                crate::progress::debug(&format!("{}: {what} failed: {}", self.host, root_cause(&e)));
                Err(self.send_failure(&e, what))
            }
            None => Err(Failure::fatal(self.stalled(what))),
        }
    }

    /// The client for uploads, made on first use.
    fn upload_http(&self) -> Result<&reqwest::Client> {
        if let Some(c) = self.http_upload.get() {
            return Ok(c);
        }
        let c = http_client(&self.host, &self.opts, self.plain_ok, false)?;
        Ok(self.http_upload.get_or_init(|| c))
    }

    /// Sends `request`, following up to [`origin::MAX_REDIRECTS`] redirects by
    /// hand: a move to another origin drops `Authorization`, a move from HTTPS
    /// to HTTP is refused, and a request whose body cannot be replayed (an
    /// upload) is not redirected.
    async fn execute(&self, mut request: reqwest::Request, what: &str) -> std::result::Result<Response, Failure> {
        for _ in 0..=origin::MAX_REDIRECTS {
            if self.scheme.load(Ordering::Acquire) == SCHEME_UNKNOWN
                && origin::same_origin(request.url(), &self.https.1)
            {
                let _probing = self.probing.lock().await;
                if self.scheme.load(Ordering::Acquire) == SCHEME_UNKNOWN {
                    let (resp, again) = self.probe(request, what).await?;
                    request = match self.redirected(resp, again, what)? {
                        Next::Answer(resp) => return Ok(resp),
                        Next::Follow(next) => next,
                    };
                    continue;
                }
            }
            self.rebase(&mut request);
            let again = request.try_clone();
            let resp = match &again {
                Some(_) => match self.waiting(what, self.http.execute(request)).await {
                    Ok(r) => r,
                    Err(e) => {
                        crate::progress::debug(&format!("{}: {what} failed: {}", self.host, root_cause(&e)));
                        return Err(self.send_failure(&e, what));
                    }
                },
                None => self.send_upload(request, what).await?,
            };
            request = match self.redirected(resp, again, what)? {
                Next::Answer(resp) => return Ok(resp),
                Next::Follow(next) => next,
            };
        }
        Err(Failure::fatal(Error::source(format!(
            "{}: {what}: more than {} redirects; refusing to follow",
            self.host,
            origin::MAX_REDIRECTS
        ))))
    }

    /// The response itself, or the request a redirect asks for: `again` is
    /// the request sent, when it can be sent again.
    fn redirected(
        &self,
        resp: Response,
        again: Option<reqwest::Request>,
        what: &str,
    ) -> std::result::Result<Next, Failure> {
        let st = resp.status().as_u16();
        let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok());
        let (true, Some(location)) = (matches!(st, 301 | 302 | 303 | 307 | 308), location) else {
            return Ok(Next::Answer(resp));
        };
        let fail = |m: String| Failure::fatal(Error::source(format!("{}: {what}: {m}", self.host)));
        let next = origin::follow(resp.url(), location).map_err(fail)?;
        let Some(mut r) = again else {
            return Err(fail(format!("redirected to {}; an upload cannot follow a redirect", origin::shown(&next))));
        };
        if !origin::same_origin(&next, &self.base().1) {
            r.headers_mut().remove(AUTHORIZATION);
        }
        if st == 303 || (matches!(st, 301 | 302) && r.method() == Method::POST) {
            *r.method_mut() = Method::GET;
            *r.body_mut() = None;
        }
        *r.url_mut() = next;
        Ok(Next::Follow(r))
    }

    /// The failure for a request that got no response: a stall is final,
    /// connection trouble is worth another attempt.
    fn send_failure(&self, e: &reqwest::Error, what: &str) -> Failure {
        if e.is_timeout() {
            return Failure::fatal(self.stalled(what));
        }
        let text = self.scrub(format!("{}: {what}: {}", self.host, one_line(e)));
        if e.is_connect() || e.is_request() || e.is_body() {
            Failure::transient(Error::source(text), None)
        } else {
            Failure::fatal(Error::source(text))
        }
    }

    /// Sends a request with retries (the body must be re-creatable by `make`).
    pub async fn send(
        &self,
        scopes: &[String],
        make: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Send + Sync),
    ) -> Result<Response> {
        self.policy().run(&self.host, || self.attempt(scopes, make)).await
    }

    /// Turns a non-success response into an error naming `what`.
    pub async fn status_error(&self, resp: Response, what: &str) -> Error {
        let st = resp.status();
        if st == StatusCode::UNAUTHORIZED || st == StatusCode::FORBIDDEN {
            return self.auth_error(st, what);
        }
        let detail = error_detail(resp).await;
        Error::source(self.scrub(format!("{}: {what}: {st}{detail}", self.host)))
            .with_cause(Cause::Http { status: st.as_u16() })
    }

    /// A request to `path` under `/v2/` with `method`.
    pub(crate) fn request(&self, http: &reqwest::Client, method: Method, path: &str) -> RequestBuilder {
        http.request(method, self.url(path))
    }
}

/// The HTTP client for `host`: the network stack's, with the registry's
/// `certs.d` and `--insecure-registry` settings; `read_timeout` off for uploads.
fn http_client(host: &str, opts: &Options, plain_ok: bool, read_timeout: bool) -> Result<reqwest::Client> {
    let api = api_host(host);
    let mut b = opts.net().client().registry(host).read_timeout(read_timeout.then_some(opts.timeout));
    for scheme in if plain_ok { &["https", "http"][..] } else { &["https"][..] } {
        if let Ok(u) = Url::parse(&format!("{scheme}://{api}/v2/")) {
            b = b.reaches(u);
        }
    }
    b.build()
}

/// What an answer leads to: itself, or the request a redirect asks for.
enum Next {
    Answer(Response),
    Follow(reqwest::Request),
}

/// Why `GET /v2/` got no usable answer.
enum Ping {
    /// The registry sent nothing for `--timeout`: no point trying plain HTTP.
    Stalled(Error),
    /// Anything else.
    Failed(Error),
}

async fn ping(http: &reqwest::Client, base: &str, opts: &Options) -> std::result::Result<Response, Ping> {
    let host = base.split("://").nth(1).unwrap_or(base).to_string();
    let url = format!("{base}/v2/");
    let stalled = AtomicBool::new(false);
    let (host_ref, url_ref, stalled_ref) = (host.as_str(), url.as_str(), &stalled);
    let answer = opts
        .retry()
        .run("GET /v2/", move || async move {
            let started = Instant::now();
            let sent = notice_wait(host_ref, "GET /v2/", opts.timeout, http.get(url_ref).send()).await;
            if let Ok(r) = &sent {
                crate::progress::debug(&format!(
                    "{host_ref}: GET {url_ref} -> {} in {} ms",
                    r.status(),
                    started.elapsed().as_millis()
                ));
            }
            match sent {
                Ok(r) if retryable_status(r.status().as_u16()) => Err(Failure::transient(
                    Error::source(format!("{host_ref}: GET /v2/ answered {}", r.status())),
                    retry_after(r.headers()),
                )),
                Ok(r) => Ok(r),
                Err(e) => {
                    stalled_ref.store(e.is_timeout(), Ordering::Relaxed);
                    Err(Failure::fatal(ping_error(host_ref, &e, opts)))
                }
            }
        })
        .await;
    answer.map_err(|e| if stalled.load(Ordering::Relaxed) { Ping::Stalled(e) } else { Ping::Failed(e) })
}

/// The error for a `GET /v2/` that got no answer.
fn ping_error(host: &str, e: &reqwest::Error, opts: &Options) -> Error {
    let text = one_line(e);
    let lower = text.to_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        return Error::source(format!(
            "{host}: TLS failed ({text}); pass the registry's CA with --ca-cert FILE or put it in /etc/docker/certs.d/{host}/ca.crt"
        ));
    }
    if e.is_timeout() {
        return Error::source(format!(
            "{host}: GET /v2/: no answer for {} s; is the registry up? (raise --timeout if it is just slow)",
            opts.timeout.as_secs_f64()
        ));
    }
    Error::source(format!("{host}: cannot reach the registry ({})", root_cause(e)))
}

/// The registry's `errors[].message`, if the body has one (read for 10 s and 1 MiB at most).
async fn error_detail(mut resp: Response) -> String {
    let read = async {
        let mut body = Vec::new();
        while let Ok(Some(c)) = resp.chunk().await {
            body.extend_from_slice(&c);
            if body.len() as u64 > SMALL_BODY_MAX {
                return Vec::new();
            }
        }
        body
    };
    let body = tokio::time::timeout(Duration::from_secs(10), read).await.unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let msgs: Vec<String> = v["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!("{} {}", e["code"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")).trim().to_string()
        })
        .collect();
    if msgs.is_empty() {
        String::new()
    } else {
        format!(" ({})", crate::sanitize::escape_controls(&msgs.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_backoff() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("registry.example.com:5000"));
        for name in ["127.evil.test", "127.evil.test:5000", "127.0.0.1.nip.io", "localhost.evil.test:80"] {
            assert!(!is_loopback(name), "{name}");
        }
        assert!(is_loopback("[::1]:5000") && is_loopback("127.9.8.7:80"));
        let policy = Options { backoff: Duration::from_millis(100), ..Options::default() }.retry();
        let d = policy.delay(3, None);
        assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(600), "{d:?}");
        assert_eq!(policy.delay(1, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(policy.attempts, 6);
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
