//! The one HTTP client builder.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use super::proxy::Proxies;
use super::Settings;
use crate::error::{Error, Result};

/// Where registry CA certificates go, per host (Docker's convention).
const CERTS_D: &str = "/etc/docker/certs.d";

/// Builds a `reqwest::Client` from the [`Settings`]: system roots plus
/// `--ca-cert` files (plus `certs.d` for a registry host), proxies from the
/// environment with `NO_PROXY` honoured, the user agent, a connect timeout
/// of `--timeout` up to 10 s and a read timeout of `--timeout`; redirects
/// are not followed unless asked (registries follow them by hand).
pub struct ClientBuilder {
    settings: Settings,
    label: String,
    registry: Option<String>,
    connect_timeout: Duration,
    read_timeout: Option<Duration>,
    redirects: bool,
    destinations: Vec<Url>,
    proxies: Option<Proxies>,
}

impl ClientBuilder {
    /// A builder with `settings`.
    pub fn new(settings: &Settings) -> Self {
        ClientBuilder {
            settings: settings.clone(),
            label: String::from("network"),
            registry: None,
            connect_timeout: settings.timeout.min(Duration::from_secs(10)),
            read_timeout: Some(settings.timeout),
            redirects: false,
            destinations: Vec::new(),
            proxies: None,
        }
    }

    /// The client talks to the registry `host` (as references name it, with
    /// its port): `/etc/docker/certs.d/<host>/ca.crt` is trusted too, and
    /// an `--insecure-registry` host's certificate goes unverified.
    pub fn registry(mut self, host: &str) -> Self {
        self.label = host.to_string();
        self.registry = Some(host.to_string());
        self
    }

    /// Names the client in its setup errors (`[maven]`).
    pub fn label(mut self, label: &str) -> Self {
        self.label = label.to_string();
        self
    }

    /// The longest wait for a connection.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// The longest silence while an answer is read (`None`: no limit, for
    /// uploads whose answer comes only once the whole body is sent).
    pub fn read_timeout(mut self, d: Option<Duration>) -> Self {
        self.read_timeout = d;
        self
    }

    /// Follows redirects itself (up to 10) instead of returning them.
    pub fn follow_redirects(mut self, yes: bool) -> Self {
        self.redirects = yes;
        self
    }

    /// The client will send requests to `url`: the proxy variable for its
    /// scheme is checked when the client is built (see [`Proxies::check`]).
    pub fn reaches(mut self, url: Url) -> Self {
        self.destinations.push(url);
        self
    }

    /// Uses `proxies` instead of the environment's.
    pub fn proxies(mut self, proxies: Proxies) -> Self {
        self.proxies = Some(proxies);
        self
    }

    /// The CA files trusted beyond the system's: `--ca-cert`, then the
    /// registry's `certs.d` file when there is one.
    fn ca_files(&self) -> Vec<PathBuf> {
        let mut files = self.settings.ca_certs.clone();
        if let Some(host) = &self.registry {
            let certs_d = PathBuf::from(CERTS_D).join(host).join("ca.crt");
            if certs_d.exists() {
                files.push(certs_d);
            }
        }
        files
    }

    /// Whether certificates go unverified (an `--insecure-registry` host).
    pub fn unverified(&self) -> bool {
        self.registry.as_deref().is_some_and(|h| self.settings.is_insecure(h))
    }

    /// The client.
    pub fn build(self) -> Result<reqwest::Client> {
        let proxies = self.proxies.clone().unwrap_or_else(Proxies::from_env);
        for url in &self.destinations {
            proxies.check(url)?;
        }
        let mut b = reqwest::Client::builder()
            .user_agent(super::USER_AGENT)
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(if self.redirects { redirect_policy() } else { reqwest::redirect::Policy::none() })
            .no_proxy();
        if let Some(d) = self.read_timeout {
            b = b.read_timeout(d);
        }
        if let Some(p) = proxies.into_reqwest() {
            b = b.proxy(p);
        }
        for f in self.ca_files() {
            for c in read_pem_bundle(&f)? {
                b = b.add_root_certificate(c);
            }
        }
        if self.unverified() {
            b = b.danger_accept_invalid_certs(true);
        }
        b.build().map_err(|e| Error::source(format!("{}: cannot set up HTTP client: {e}", self.label)))
    }
}

/// The most redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// The redirect policy of clients that follow redirects themselves: at most
/// [`MAX_REDIRECTS`], and never from HTTPS to anything else (a download
/// would go in the clear while the log names the HTTPS URL).
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| match redirect_refusal(attempt.previous(), attempt.url()) {
        Some(why) => attempt.error(why),
        None => attempt.follow(),
    })
}

/// Why a redirect to `next` after `previous` is not followed, if it is not.
fn redirect_refusal(previous: &[Url], next: &Url) -> Option<String> {
    if previous.len() > MAX_REDIRECTS {
        return Some(format!("more than {MAX_REDIRECTS} redirects; refusing to follow"));
    }
    let from = previous.last()?;
    (from.scheme() == "https" && next.scheme() != "https").then(|| {
        format!(
            "refusing to follow a redirect from HTTPS to {}://{}{}",
            next.scheme(),
            next.host_str().unwrap_or(""),
            next.path()
        )
    })
}

/// The certificates of a PEM bundle (at least one).
fn read_pem_bundle(f: &std::path::Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = crate::bounded::read_file(f, crate::bounded::CERTIFICATES)
        .map_err(|e| Error::usage(format!("--ca-cert {}: {}", f.display(), crate::bounded::read_error(&e))))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|_| Error::usage(format!("--ca-cert {}: not a PEM certificate bundle", f.display())))?;
    if certs.is_empty() {
        return Err(Error::usage(format!("--ca-cert {}: no certificate in it", f.display())));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    fn settings(ca: &[PathBuf]) -> Settings {
        Settings {
            ca_certs: ca.to_vec(),
            insecure: vec!["registry.test:5000".into()],
            timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn timeouts_follow_the_settings() {
        let b = ClientBuilder::new(&settings(&[]));
        assert_eq!((b.connect_timeout, b.read_timeout), (Duration::from_secs(10), Some(Duration::from_secs(30))));
        let quick = Settings { timeout: Duration::from_secs(2), ..settings(&[]) };
        let b = quick.client();
        assert_eq!((b.connect_timeout, b.read_timeout), (Duration::from_secs(2), Some(Duration::from_secs(2))));
        assert!(!b.redirects);
    }

    #[test]
    fn insecure_registries_only_go_unverified() {
        let s = settings(&[]);
        assert!(s.client().registry("registry.test:5000").unverified());
        assert!(!s.client().registry("registry.test").unverified(), "the port is part of the name");
        assert!(!s.client().registry("other.test:5000").unverified());
        assert!(!s.client().unverified());
    }

    #[test]
    fn ca_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = settings(std::slice::from_ref(&missing)).client().build().unwrap_err();
        assert_eq!(e.kind(), Kind::Usage);
        assert!(e.message().starts_with(&format!("--ca-cert {}: cannot read", missing.display())), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let e = settings(std::slice::from_ref(&empty)).client().build().unwrap_err();
        assert_eq!(e.message(), format!("--ca-cert {}: no certificate in it", empty.display()));
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").unwrap();
        let e = settings(std::slice::from_ref(&bad)).client().build().unwrap_err();
        assert_eq!(e.message(), format!("--ca-cert {}: not a PEM certificate bundle", bad.display()));
    }

    #[test]
    fn a_proxy_variable_is_checked_for_the_destinations_it_serves() {
        let bad = Proxies::from_vars(|n| (n == "HTTPS_PROXY").then(|| "ftp://proxy.test:21".to_string()));
        let remote = Url::parse("https://registry.example.com/v2/").unwrap();
        let e = settings(&[]).client().proxies(bad.clone()).reaches(remote).build().unwrap_err();
        assert_eq!(e.kind(), Kind::Config);
        assert!(e.message().starts_with("HTTPS_PROXY=ftp://proxy.test:21: not a usable proxy URL"), "{e}");
        let local = Url::parse("https://127.0.0.1:5000/v2/").unwrap();
        assert!(settings(&[]).client().proxies(bad.clone()).reaches(local).build().is_ok(), "loopback goes direct");
        let plain = Url::parse("http://registry.example.com/v2/").unwrap();
        assert!(settings(&[]).client().proxies(bad).reaches(plain).build().is_ok(), "HTTPS_PROXY serves https only");
        let good = Proxies::from_vars(|n| (n == "HTTPS_PROXY").then(|| "proxy.test:3128".to_string()));
        assert!(settings(&[]).client().proxies(good).follow_redirects(true).build().is_ok());
    }

    #[test]
    fn redirects_never_leave_https() {
        let u = |s: &str| Url::parse(s).unwrap();
        let https = [u("https://repo.example.com/m2/a.jar")];
        let down = redirect_refusal(&https, &u("http://cdn.example.com/a.jar?sig=SECRET")).unwrap();
        assert_eq!(down, "refusing to follow a redirect from HTTPS to http://cdn.example.com/a.jar");
        assert!(redirect_refusal(&https, &u("https://cdn.example.com/a.jar")).is_none());
        assert!(redirect_refusal(&[u("http://127.0.0.1:8081/m2/a.jar")], &u("http://127.0.0.1:8082/a")).is_none());
        let many = vec![u("https://a.example/"); MAX_REDIRECTS + 1];
        assert!(redirect_refusal(&many, &u("https://a.example/")).unwrap().contains("more than"));
    }
}
