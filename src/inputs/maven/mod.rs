//! Jars by Maven coordinates (`[maven] jars` and `dropins`): each
//! `group:artifact:version` is fetched from the configured repositories in
//! order (a maven2 layout over HTTP(S): `group/path/artifact/version/
//! artifact-version.jar`), verified against the repository's `.sha256` or
//! `.sha1` file when it publishes one, and kept in a cache
//! (`$XDG_CACHE_HOME/wso2img/maven/`, else `~/.cache/…`). A jar pinned in the
//! lock whose cached copy has the pinned sha256 is used without any network,
//! so a locked build works offline.

pub mod settings;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha1::Digest as _;

use crate::config::{LayerKind, MavenSection};
use crate::digest::{Digest, HashWriter};
use crate::error::{io_reason, Error, Kind, Result};
use crate::net::retry::{retry_after, retryable_status};
use crate::net::{Failure, Policy};
use settings::{Credential, Settings};

pub use crate::coordinates::{check_url, redact_url, Coordinates, Repository, CENTRAL};

/// The retry policy for repositories: four attempts, the first retry after
/// about 400 ms.
const RETRY: Policy = Policy {
    attempts: 4,
    backoff: Duration::from_millis(400),
    max_backoff: Duration::from_secs(10),
    retry_after_cap: Duration::from_secs(60),
};

/// A jar resolved to a verified file in the cache.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `jars` (lib) or `dropins`.
    pub kind: LayerKind,
    /// Its coordinates.
    pub coords: Coordinates,
    /// The cached file.
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: Digest,
    /// Its size.
    pub size: u64,
}

/// How resolution goes.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--locked`: every jar must be pinned, and a pin that does not match is an error.
    pub locked: bool,
    /// The network settings (`--ca-cert`, `--timeout`).
    pub net: crate::net::Settings,
    /// The lock file, for messages.
    pub lockfile: String,
}

/// The cache folder: `$XDG_CACHE_HOME/wso2img/maven`, else `~/.cache/wso2img/maven`.
pub fn cache_dir() -> Result<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".cache")))
        .map(|b| b.join("wso2img").join("maven"))
        .ok_or_else(|| Error::config("[maven]: neither XDG_CACHE_HOME nor HOME is set; set one for the jar cache"))
}

/// Resolves every jar of `section`, in the order given (lib, then dropins).
/// `pins` are the lock's sha256 per coordinates. Messages go to `log`.
pub fn resolve(section: &MavenSection, pins: &BTreeMap<String, Digest>, opts: &Options) -> Result<Vec<Resolved>> {
    let wanted = section.wanted().map_err(Error::config)?;
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let cache = cache_dir()?;
    let mut fetcher: Option<Fetcher> = None;
    let mut out = Vec::new();
    for (kind, coords) in wanted {
        let key = coords.to_string();
        let pin = pins.get(&key).copied();
        if opts.locked && pin.is_none() {
            return Err(Error::new(
                Kind::Source,
                format!(
                    "{}: --locked: [maven] {key} is not pinned; build without --locked once and commit the lock",
                    opts.lockfile
                ),
            ));
        }
        let path = cache.join(coords.path());
        if let Some(pin) = pin {
            if let Some((d, size)) = hash_file(&path) {
                if d == pin {
                    out.push(Resolved { kind, coords, path, sha256: d, size });
                    continue;
                }
            }
        }
        let f = match &mut fetcher {
            Some(f) => f,
            None => fetcher.insert(Fetcher::new(section, opts)?),
        };
        let (sha256, size) = f.fetch(&coords, &path)?;
        if let Some(pin) = pin {
            if pin != sha256 {
                if opts.locked {
                    let _ = fs::remove_file(&path);
                    return Err(Error::new(
                        Kind::Source,
                        format!(
                            "{}: --locked: [maven] {key} is pinned at {pin} but the repository serves {sha256}; find out why, then build without --locked to re-pin it",
                            opts.lockfile
                        ),
                    ));
                }
                crate::progress::message(&format!(
                    "[maven] {key}: the repository now serves {sha256}, not the pinned {pin}; re-pinned"
                ));
            }
        }
        out.push(Resolved { kind, coords, path, sha256, size });
    }
    Ok(out)
}

fn hash_file(path: &Path) -> Option<(Digest, u64)> {
    let f = fs::File::open(path).ok()?;
    let mut r = crate::digest::HashReader::new(f);
    std::io::copy(&mut r, &mut std::io::sink()).ok()?;
    Some(r.finish())
}

/// The HTTP side: one client (the [`crate::net`] stack's), the repositories
/// and their credentials.
struct Fetcher {
    http: reqwest::Client,
    repos: Vec<(Repository, Option<Credential>)>,
    /// `--timeout`, which also sets each body's total deadline ([`body_deadline`]).
    timeout: Duration,
}

enum Got {
    Found,
    Missing,
}

impl Fetcher {
    fn new(section: &MavenSection, opts: &Options) -> Result<Fetcher> {
        let settings = Settings::load_default()?;
        let mut repos = Vec::new();
        for r in section.repositories() {
            let cred = settings.credential(&r.url, r.id.as_deref())?;
            repos.push((r, cred));
        }
        let mut b = opts.net.client().label("[maven]").follow_redirects(true);
        for (r, _) in &repos {
            if let Ok(u) = reqwest::Url::parse(&r.url) {
                b = b.reaches(u);
            }
        }
        Ok(Fetcher { http: b.build()?, repos, timeout: opts.net.timeout })
    }

    /// Downloads `coords` into `dest` (through a temporary file), verified;
    /// returns its sha256 and size.
    fn fetch(&mut self, coords: &Coordinates, dest: &Path) -> Result<(Digest, u64)> {
        let parent = dest.parent().expect("a cache path has a parent");
        fs::create_dir_all(parent).map_err(|e| Error::io("creating the Maven cache", parent, e))?;
        let mut tried = Vec::new();
        for (repo, cred) in &self.repos {
            let url = format!("{}/{}", repo.url, coords.path());
            let mut tmp = tempfile::Builder::new()
                .prefix(".download-")
                .tempfile_in(parent)
                .map_err(|e| Error::io("creating a file in the Maven cache", parent, e))?;
            let got = crate::net::runtime().block_on(download(
                &self.http,
                &url,
                cred.as_ref(),
                tmp.as_file_mut(),
                self.timeout,
            ))?;
            let (sha256, sha1, size) = match got {
                (Got::Missing, ..) => {
                    tried.push(repo.url.clone());
                    continue;
                }
                (Got::Found, sha256, sha1, size) => (sha256, sha1, size),
            };
            self.verify(coords, &url, cred.as_ref(), &sha256, &sha1)?;
            tmp.persist(dest).map_err(|e| Error::io("writing to the Maven cache", dest, e.error))?;
            crate::progress::message(&format!("[maven] {coords}: {size} bytes from {} ({sha256})", repo.url));
            return Ok((sha256, size));
        }
        Err(Error::new(
            Kind::Source,
            format!(
                "[maven] {coords}: not found in {}; check the coordinates or add the repository that has it to [maven] repositories",
                tried.join(", ")
            ),
        ))
    }

    /// Checks the download against the `.sha256` file, else the `.sha1`
    /// file; warns when the repository publishes neither.
    fn verify(
        &self,
        coords: &Coordinates,
        url: &str,
        cred: Option<&Credential>,
        sha256: &Digest,
        sha1: &str,
    ) -> Result<()> {
        for (ext, have) in [("sha256", sha256.hex()), ("sha1", sha1.to_string())] {
            let Some(text) =
                crate::net::runtime().block_on(get_text(&self.http, &format!("{url}.{ext}"), cred, self.timeout))?
            else {
                continue;
            };
            let want = text.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
            if want != have {
                return Err(Error::new(
                    Kind::Source,
                    format!(
                        "[maven] {coords}: the download from {} does not match its .{ext} file ({want}, got {have}); nothing was kept — try again, or ask the repository's owner",
                        redact(url)
                    ),
                ));
            }
            return Ok(());
        }
        crate::progress::message(&format!(
            "[maven] {coords}: {} publishes no .sha256 or .sha1 file; pinned by the lock only",
            redact(url)
        ));
        Ok(())
    }
}

/// A URL as it may be shown (no query string).
fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

fn request(http: &reqwest::Client, url: &str, cred: Option<&Credential>) -> reqwest::RequestBuilder {
    let r = http.get(url);
    match cred {
        Some(c) => r.basic_auth(&c.username, Some(&c.password)),
        None => r,
    }
}

/// Sends a GET under the retry policy: 408, 429 and 5xx answers and
/// connections that fail or break are tried again; the last such answer
/// is returned as it is once the attempts are used up.
async fn send(http: &reqwest::Client, url: &str, cred: Option<&Credential>) -> Result<reqwest::Response> {
    let shown = redact(url);
    let last_answer = std::sync::Mutex::new(None);
    let answer = &last_answer;
    let sent = RETRY
        .run(&format!("GET {shown}"), move || async move {
            match request(http, url, cred).send().await {
                Ok(r) if retryable_status(r.status().as_u16()) => {
                    let failure = Failure::transient(status_error(url, r.status(), cred), retry_after(r.headers()));
                    *answer.lock().expect("last answer") = Some(r);
                    Err(failure)
                }
                Ok(r) => Ok(r),
                Err(e) => {
                    *answer.lock().expect("last answer") = None;
                    let error = Error::new(
                        Kind::Source,
                        format!("{shown}: {}; check the repository URL and the network", reason(&e)),
                    );
                    // A repository that stalled past the read timeout is not asked again.
                    if e.is_connect() || (!e.is_timeout() && (e.is_request() || e.is_body())) {
                        Err(Failure::transient(error, None))
                    } else {
                        Err(Failure::fatal(error))
                    }
                }
            }
        })
        .await;
    match sent {
        Ok(r) => Ok(r),
        Err(e) => last_answer.into_inner().expect("last answer").ok_or(e),
    }
}

fn reason(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s.replace('\n', " ")
}

fn status_error(url: &str, status: reqwest::StatusCode, cred: Option<&Credential>) -> Error {
    let what = match (status.as_u16(), cred) {
        (401 | 403, Some(c)) => format!("the credentials from {} were refused", c.source),
        (401 | 403, None) => "it needs credentials and none were found: set WSO2IMG_MAVEN_USERNAME and WSO2IMG_MAVEN_PASSWORD, or give the repository an id with a server in ~/.m2/settings.xml".to_string(),
        _ => "the repository failed".to_string(),
    };
    Error::new(Kind::Source, format!("{}: HTTP {status}: {what}", redact(url)))
}

/// Streams `url` into `out`, hashing as it goes: (found?, sha256, sha1 hex, size).
async fn download(
    http: &reqwest::Client,
    url: &str,
    cred: Option<&Credential>,
    out: &mut fs::File,
    timeout: Duration,
) -> Result<(Got, Digest, String, u64)> {
    let mut res = send(http, url, cred).await?;
    let status = res.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok((Got::Missing, Digest::of(b""), String::new(), 0));
    }
    if !status.is_success() {
        return Err(status_error(url, status, cred));
    }
    let mut w = HashWriter::new(std::io::BufWriter::new(out));
    let mut sha1 = sha1::Sha1::new();
    let (deadline, total) = body_deadline(timeout, res.content_length());
    loop {
        let chunk =
            tokio::time::timeout_at(deadline, res.chunk()).await.map_err(|_| too_slow(url, total))?.map_err(|e| {
                Error::new(Kind::Source, format!("{}: download broke off ({}); try again", redact(url), reason(&e)))
            })?;
        let Some(chunk) = chunk else { break };
        sha1.update(&chunk);
        w.write_all(&chunk).map_err(|e| Error::new(Kind::Io, format!("writing the Maven cache: {}", io_reason(&e))))?;
    }
    let (buf, sha256, size) = w.finish();
    buf.into_inner().map_err(|e| Error::new(Kind::Io, format!("writing the Maven cache: {}", io_reason(e.error()))))?;
    Ok((Got::Found, sha256, hex::encode(sha1.finalize()), size))
}

/// The body of `url` as text, `None` on 404.
async fn get_text(
    http: &reqwest::Client,
    url: &str,
    cred: Option<&Credential>,
    timeout: Duration,
) -> Result<Option<String>> {
    let mut res = send(http, url, cred).await?;
    let status = res.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(status_error(url, status, cred));
    }
    let limit = crate::bounded::CHECKSUM;
    if res.content_length().is_some_and(|n| n > limit.max) {
        return Err(checksum_too_large(url));
    }
    let mut body = Vec::new();
    let (deadline, total) = body_deadline(timeout, None);
    while let Some(chunk) = tokio::time::timeout_at(deadline, res.chunk())
        .await
        .map_err(|_| too_slow(url, total))?
        .map_err(|e| Error::new(Kind::Source, format!("{}: {}", redact(url), reason(&e))))?
    {
        if (body.len() + chunk.len()) as u64 > limit.max {
            return Err(checksum_too_large(url));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(String::from_utf8_lossy(&body).into_owned()))
}

/// When a body must have arrived whole, and how long that is: ten times
/// `--timeout`, plus a second per 64 KiB announced. A peer that sends a byte
/// now and then (never silent for `--timeout`) is cut off all the same.
fn body_deadline(timeout: Duration, len: Option<u64>) -> (tokio::time::Instant, Duration) {
    let total = timeout.saturating_mul(10).saturating_add(Duration::from_secs(len.unwrap_or(0) / (64 << 10)));
    (tokio::time::Instant::now() + total, total)
}

fn too_slow(url: &str, total: Duration) -> Error {
    Error::new(
        Kind::Source,
        format!(
            "{}: the body did not arrive within {} s in all (ten times --timeout, more for a large file); the repository sends too slowly",
            redact(url),
            total.as_secs()
        ),
    )
}

fn checksum_too_large(url: &str) -> Error {
    let limit = crate::bounded::CHECKSUM;
    Error::new(
        Kind::Source,
        format!(
            "{}: larger than {}, the limit for {}; the repository does not serve a checksum there",
            redact(url),
            crate::bounded::size_text(limit.max),
            limit.what
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_and_urls() {
        let c = Coordinates::parse("org.postgresql:postgresql:42.5.5").unwrap();
        assert_eq!(c.path(), "org/postgresql/postgresql/42.5.5/postgresql-42.5.5.jar");
        assert_eq!(c.purl(), "pkg:maven/org.postgresql/postgresql@42.5.5");
        assert!(Coordinates::parse("a:b").is_err());
        assert!(Coordinates::parse("a:b:1.0-SNAPSHOT").unwrap_err().contains("SNAPSHOT"));
        assert!(Coordinates::parse("a:b:1.0-snapshot").unwrap_err().contains("SNAPSHOT"));
        for moving in ["LATEST", "latest", "RELEASE"] {
            assert!(Coordinates::parse(&format!("a:b:{moving}")).unwrap_err().contains("moving pointer"), "{moving}");
        }
        assert!(Coordinates::parse("a:b:1.0-RC1").is_ok());
        for q in ["https://nexus.example.com/m2?token=SECRET", "https://nexus.example.com/m2#x"] {
            assert!(check_url(q).unwrap_err().contains("query string"), "{q}");
        }
        assert!(Coordinates::parse("a:b:[1.0,2.0)").is_err());
        assert!(Coordinates::parse("a:../b:1").is_err());
        assert!(check_url("https://nexus.example.com/repository/maven-public").is_ok());
        assert!(check_url("http://127.0.0.1:8081/m2").is_ok());
        assert!(check_url("http://nexus.example.com/m2").is_err());
        assert!(check_url("https://u:p@nexus.example.com/m2").unwrap_err().contains("credentials"));
        assert!(check_url("ftp://x/y").is_err());
        assert_eq!(redact_url("https://u:p@h.example/m2?x=1"), "https://***@h.example/m2");
        assert_eq!(redact_url("https://h.example"), "https://h.example");
    }
}
