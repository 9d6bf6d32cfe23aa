//! The network stack every peer of wso2img goes through — registries, Maven
//! repositories and the Docker daemon:
//!
//! - [`ClientBuilder`]: the one way to make an HTTP client. TLS roots are the
//!   system's plus `--ca-cert` files plus `/etc/docker/certs.d/<host>/ca.crt`
//!   for a registry host; `--insecure-registry` hosts get unverified TLS;
//!   proxies come from the environment with `NO_PROXY` honoured ([`proxy`]);
//!   connect and read timeouts follow `--timeout`; one user agent.
//! - [`retry`]: the one retry policy (408, 429, 5xx and broken connections;
//!   exponential backoff with jitter; `Retry-After` honoured up to a cap, with
//!   a visible "waiting N s for …" line; the request named in the final error).
//! - [`runtime`]: the one tokio runtime of the process.
//!
//! It imports only foundation modules (error, progress, sanitize).

mod client;
pub mod proxy;
pub mod retry;

use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

pub use client::ClientBuilder;
pub use retry::{Failure, Policy};

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("wso2img/", env!("CARGO_PKG_VERSION"));

/// The default `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Network settings from the command line, shared by every client.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Extra CA certificates (PEM files) trusted for every peer (`--ca-cert`).
    pub ca_certs: Vec<PathBuf>,
    /// Registry hosts allowed over plain HTTP or with unverified TLS (`--insecure-registry`).
    pub insecure: Vec<String>,
    /// How long a peer may send nothing before a request fails (`--timeout`).
    pub timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { ca_certs: Vec::new(), insecure: Vec::new(), timeout: DEFAULT_TIMEOUT }
    }
}

impl Settings {
    /// A client builder with these settings.
    pub fn client(&self) -> ClientBuilder {
        ClientBuilder::new(self)
    }

    /// Whether `host` (as references name it, with its port) is an `--insecure-registry` host.
    pub fn is_insecure(&self, host: &str) -> bool {
        self.insecure.iter().any(|h| h == host)
    }
}

/// The runtime that drives all network I/O (registries, Maven, the Docker
/// daemon). Callers outside async code use `runtime().block_on(…)`.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wso2img-io")
            .enable_all()
            .build()
            .expect("the I/O runtime starts")
    })
}

/// Awaits `fut`; past a third of `timeout` (at most 10 s) reports one line
/// naming `peer` and `what` is awaited, then keeps waiting.
pub async fn notice_wait<F: Future>(peer: &str, what: &str, timeout: Duration, fut: F) -> F::Output {
    let notice = (timeout / 3).clamp(Duration::from_millis(200), Duration::from_secs(10));
    tokio::pin!(fut);
    tokio::select! {
        out = &mut fut => out,
        _ = tokio::time::sleep(notice) => {
            crate::progress::message(&format!(
                "waiting for {peer} to answer {what} (gives up after {} s without data; see --timeout)",
                timeout.as_secs_f64()
            ));
            fut.await
        }
    }
}

/// Whether `host` (a name or an IP, with or without a port or brackets) is
/// the loopback interface: `localhost` or a loopback IP, parsed.
pub fn is_loopback(host: &str) -> bool {
    let (name, _) = proxy::split_host_port(host);
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The root cause of an error, without "(os error N)" (e.g. "Connection refused").
pub fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let s = cur.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// An error with its causes, on one line.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s.replace('\n', " ")
}

/// Percent-encodes a query or path value (RFC 3986 unreserved characters kept).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_an_address_not_a_prefix() {
        for h in ["127.0.0.1:5000", "127.5.6.7", "localhost", "LOCALHOST:80", "[::1]:5000", "::1"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["127.evil.test", "registry.example.com:5000", "10.0.0.1", "[::2]:80", "localhost.example"] {
            assert!(!is_loopback(h), "{h}");
        }
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
