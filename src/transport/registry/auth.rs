//! Registry credentials and the auth handshake.
//!
//! Credentials are looked up, in this order, in: the environment
//! (`WSO2IMG_REGISTRY_USERNAME` / `WSO2IMG_REGISTRY_PASSWORD`, optionally
//! scoped by `WSO2IMG_REGISTRY_HOST`), `REGISTRY_AUTH_FILE`, the Docker config
//! (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`: `auths`,
//! `credHelpers`, `credsStore`), and podman's `auth.json`. Secrets never reach
//! `Debug`, logs or errors.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::error::{Error, Result};

/// Environment variable with the registry user name for CI.
pub const ENV_USERNAME: &str = "WSO2IMG_REGISTRY_USERNAME";
/// Environment variable with the registry password (or token) for CI.
pub const ENV_PASSWORD: &str = "WSO2IMG_REGISTRY_PASSWORD";
/// Environment variable that limits the two above to one registry host.
pub const ENV_HOST: &str = "WSO2IMG_REGISTRY_HOST";

/// A credential for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or personal access token).
    Basic {
        /// User name.
        username: String,
        /// Password; never printed.
        password: String,
    },
    /// An identity (refresh) token, exchanged with a POST to the token realm.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credential {
    /// The `Authorization: Basic …` value, for basic auth and token GETs.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credential::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            Credential::IdentityToken(_) => None,
        }
    }
    /// Every secret string in the credential, so errors can be scrubbed.
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            Credential::Basic { password, .. } => vec![password.as_str()],
            Credential::IdentityToken(t) => vec![t.as_str()],
        }
    }
}

/// A credential and where it was found (for messages).
#[derive(Debug, Clone)]
pub struct Found {
    /// The credential.
    pub credential: Credential,
    /// Where it came from, e.g. `DOCKER_CONFIG/config.json`.
    pub source: String,
}

/// The keys under which a registry may appear in an `auths` map.
fn keys_for(host: &str) -> Vec<String> {
    let mut keys = vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v1/"),
        format!("https://{host}/v2/"),
    ];
    if host == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io" {
        keys.extend(
            ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"].map(String::from),
        );
    }
    keys
}

/// The name a credential helper is asked for.
fn helper_server(host: &str) -> String {
    if host == "docker.io" || host == "registry-1.docker.io" {
        "https://index.docker.io/v1/".into()
    } else {
        host.to_string()
    }
}

/// The Docker config file that `docker login` writes and [`lookup`] reads:
/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_file() -> Result<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".docker")))
        .map(|d| d.join("config.json"))
        .ok_or_else(|| Error::usage("neither DOCKER_CONFIG nor HOME is set: no Docker config file to write"))
}

/// The key `docker login` files `host`'s credential under.
fn login_key(host: &str) -> String {
    match host {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => "https://index.docker.io/v1/".into(),
        _ => host.to_string(),
    }
}

/// Reads the Docker config at `path` as a JSON object (empty when missing).
fn read_docker_config(path: &Path) -> Result<serde_json::Map<String, Value>> {
    let bytes = match std::fs::File::open(path) {
        Ok(f) => crate::bounded::read_to_end_max(f, 4 << 20).map_err(|e| Error::io("reading", path, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(serde_json::Map::new()),
        Err(e) => return Err(Error::io("reading", path, e)),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Error::config(format!("{}: not a JSON object; fix or remove it", path.display()))),
    }
}

/// Writes `config` to `path` whole (a new file renamed over it), mode 0600.
fn write_docker_config(path: &Path, config: serde_json::Map<String, Value>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    }
    let mut text = serde_json::to_vec_pretty(&Value::Object(config)).expect("JSON serializes");
    text.push(b'\n');
    crate::files::write_atomic(path, &text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::io("chmod", path, e))
}

/// Records `username` and `password` for registry `host` in the Docker
/// config file, as `docker login` does (`auths.<host>.auth`, base64 of
/// `user:password`), keeping every other key. Returns the file.
pub fn store(host: &str, username: &str, password: &str) -> Result<PathBuf> {
    let path = docker_config_file()?;
    let mut config = read_docker_config(&path)?;
    let auths = config.entry("auths").or_insert_with(|| Value::Object(Default::default()));
    if !auths.is_object() {
        *auths = Value::Object(Default::default());
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let entry = auths.as_object_mut().expect("an object").entry(login_key(host)).or_insert_with(|| Value::Null);
    let mut kept = entry.as_object().cloned().unwrap_or_default();
    kept.insert("auth".into(), Value::String(auth));
    kept.remove("identitytoken");
    *entry = Value::Object(kept);
    write_docker_config(&path, config)?;
    Ok(path)
}

/// Removes registry `host`'s credential from the Docker config file, as
/// `docker logout` does. Returns the file, or `None` when it held none.
pub fn erase(host: &str) -> Result<Option<PathBuf>> {
    let path = docker_config_file()?;
    let mut config = read_docker_config(&path)?;
    let removed = match config.get_mut("auths").and_then(Value::as_object_mut) {
        Some(auths) => keys_for(host).iter().map(|k| auths.remove(k).is_some()).filter(|removed| *removed).count() > 0,
        None => false,
    };
    if !removed {
        return Ok(None);
    }
    write_docker_config(&path, config)?;
    Ok(Some(path))
}

/// Finds the credential for registry `host` (as in a reference: `docker.io`, `127.0.0.1:5000`).
pub fn lookup(host: &str, timeout: Duration) -> Result<Option<Found>> {
    if let (Ok(u), Ok(p)) = (std::env::var(ENV_USERNAME), std::env::var(ENV_PASSWORD)) {
        let scoped = std::env::var(ENV_HOST).ok().filter(|h| !h.is_empty());
        if scoped.as_deref().is_none_or(|h| h == host) && !u.is_empty() {
            return Ok(Some(Found {
                credential: Credential::Basic { username: u, password: p },
                source: format!("{ENV_USERNAME}/{ENV_PASSWORD}"),
            }));
        }
    }
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        files.push((PathBuf::from(f), "REGISTRY_AUTH_FILE".into()));
    }
    let docker_dir = std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
    if let Some(d) = docker_dir {
        files.push((d.join("config.json"), "DOCKER_CONFIG/config.json".into()));
    }
    if let Some(r) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        files.push((PathBuf::from(r).join("containers/auth.json"), "containers/auth.json".into()));
    }
    if let Some(h) = std::env::var_os("HOME") {
        files.push((PathBuf::from(h).join(".config/containers/auth.json"), "~/.config/containers/auth.json".into()));
    }
    for (path, label) in files {
        if let Some(found) = from_file(&path, &label, host, timeout)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn from_file(path: &Path, label: &str, host: &str, timeout: Duration) -> Result<Option<Found>> {
    let bytes = match crate::bounded::read_file(path, crate::bounded::DOCKER_CONFIG) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::config(format!("{}: {}", path.display(), crate::bounded::read_error(&e)))),
    };
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::config(format!("{}: not valid JSON ({e}); fix or remove it", path.display())))?;
    let keys = keys_for(host);
    if let Some(helper) = keys.iter().find_map(|k| v["credHelpers"][k].as_str()) {
        return helper_get(helper, host, timeout)
            .map(|c| c.map(|credential| Found { credential, source: format!("docker-credential-{helper}") }));
    }
    if let Some(entry) = keys.iter().find_map(|k| v["auths"].get(k)) {
        if let Some(c) = parse_entry(entry) {
            return Ok(Some(Found { credential: c, source: label.to_string() }));
        }
    }
    if let Some(store) = v["credsStore"].as_str().filter(|s| !s.is_empty()) {
        return helper_get(store, host, timeout)
            .map(|c| c.map(|credential| Found { credential, source: format!("docker-credential-{store}") }));
    }
    Ok(None)
}

fn parse_entry(entry: &Value) -> Option<Credential> {
    if let Some(t) = entry["identitytoken"].as_str().filter(|t| !t.is_empty()) {
        return Some(Credential::IdentityToken(t.to_string()));
    }
    if let Some(a) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        let raw = base64::engine::general_purpose::STANDARD.decode(a.trim()).ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (u, p) = s.split_once(':')?;
        return Some(Credential::Basic { username: u.to_string(), password: p.to_string() });
    }
    match (entry["username"].as_str(), entry["password"].as_str()) {
        (Some(u), Some(p)) if !u.is_empty() => Some(Credential::Basic { username: u.into(), password: p.into() }),
        _ => None,
    }
}

/// Runs `docker-credential-<helper> get` for `host`: killed (with anything
/// it started) when it has not finished within `timeout`; what it prints is
/// read up to [`crate::bounded::HELPER_OUTPUT`].
fn helper_get(helper: &str, host: &str, timeout: Duration) -> Result<Option<Credential>> {
    use std::os::unix::process::CommandExt;
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            Error::config(format!(
                "{prog}: cannot run ({}); install it or fix credHelpers/credsStore",
                crate::error::io_reason(&e)
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(helper_server(host).as_bytes());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, pipe) in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as _),
    ]
    .into_iter()
    .enumerate()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let read = pipe.map_or(Ok(Vec::new()), |p| crate::bounded::read_limited(p, crate::bounded::HELPER_OUTPUT));
            let _ = tx.send((i, read));
        });
    }
    let deadline = Instant::now() + timeout;
    let group = rustix::process::Pid::from_raw(child.id() as i32);
    let stop = |child: &mut std::process::Child| {
        if let Some(g) = group {
            let _ = rustix::process::kill_process_group(g, rustix::process::Signal::KILL);
        }
        let _ = child.kill();
        let _ = child.wait();
    };
    let late = || {
        Error::config(format!(
            "{prog} get {host}: no answer within {} s; it was stopped (see --timeout)",
            timeout.as_secs_f64()
        ))
    };
    let mut pipes: [Vec<u8>; 2] = Default::default();
    for _ in 0..2 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((i, Ok(bytes))) => pipes[i] = bytes,
            Ok((_, Err(e))) => {
                stop(&mut child);
                return Err(Error::config(format!("{prog} get {host}: {}", crate::bounded::read_error(&e))));
            }
            Err(_) => {
                stop(&mut child);
                return Err(late());
            }
        }
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= deadline => {
                stop(&mut child);
                return Err(late());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(Error::config(format!("{prog}: {}", crate::error::io_reason(&e)))),
        }
    };
    let [stdout, stderr] = pipes;
    let out = std::process::Output { status, stdout, stderr };
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        if msg.to_lowercase().contains("not found") {
            return Ok(None);
        }
        return Err(Error::config(format!("{prog} get {host}: failed ({})", msg.lines().next().unwrap_or("").trim())));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| Error::config(format!("{prog} get {host}: output is not JSON")))?;
    let user = v["Username"].as_str().unwrap_or("");
    let secret = v["Secret"].as_str().unwrap_or("").to_string();
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if user == "<token>" {
        Credential::IdentityToken(secret)
    } else {
        Credential::Basic { username: user.to_string(), password: secret }
    }))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// No authentication needed.
    None,
    /// HTTP basic.
    Basic,
    /// Bearer tokens from `realm` for `service`.
    Bearer {
        /// Token endpoint.
        realm: String,
        /// Service name to ask for.
        service: Option<String>,
        /// Scope the registry asked for, if any.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value.
pub fn parse_challenge(header: &str) -> Challenge {
    let h = header.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::Basic;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    let mut s = rest;
    while !s.is_empty() {
        let Some((k, after)) = s.split_once('=') else { break };
        let k = k.trim().trim_start_matches(',').trim();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(i) => (&q[..i], &q[i + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        match k.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(v.to_string()),
            "service" => service = Some(v.to_string()),
            "scope" => scope = Some(v.to_string()),
            _ => {}
        }
        s = next.trim_start_matches(',').trim_start();
    }
    match realm {
        Some(realm) => Challenge::Bearer { realm, service, scope },
        None => Challenge::Basic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull""#
            ),
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:a/b:pull".into())
            }
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Challenge::Basic);
    }

    #[test]
    fn docker_config_entries() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("u:p+/=x");
        std::fs::write(&p, format!(r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}"}},"https://index.docker.io/v1/":{{"identitytoken":"tok"}}}}}}"#)).unwrap();
        let f = from_file(&p, "cfg", "127.0.0.1:5000", T).unwrap().unwrap();
        assert_eq!(f.credential, Credential::Basic { username: "u".into(), password: "p+/=x".into() });
        assert!(!format!("{:?}", f.credential).contains("p+/=x"));
        let f = from_file(&p, "cfg", "docker.io", T).unwrap().unwrap();
        assert_eq!(f.credential, Credential::IdentityToken("tok".into()));
        assert!(from_file(&p, "cfg", "other:1", T).unwrap().is_none());
    }
}
