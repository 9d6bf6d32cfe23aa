//! A registry that misbehaves on purpose, for the hostile-input tests: a
//! plain-HTTP server on a loopback address (`127.0.0.1` or `127.0.0.2`) whose
//! every answer is scripted by the test, and which logs every request it sees
//! (method, path, whether it carried `Authorization`). Real registries will
//! not misbehave on demand; this one only ever listens on loopback.
//!
//! Everything is bounded: each connection thread stops after [`CONN_LIMIT`],
//! endless bodies stop after [`ENDLESS_LIMIT`] bytes or when the client goes,
//! and dropping the server stops its accept loop.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::registry_support::run_limited;

/// How long one connection may live.
pub const CONN_LIMIT: Duration = Duration::from_secs(60);
/// The most bytes an endless body sends before the server gives up.
pub const ENDLESS_LIMIT: u64 = 8 << 30;

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body_len: u64,
}

/// What the server answers.
pub enum Reply {
    /// A complete answer.
    Full { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// Headers (with `Content-Length` when given), then bytes without end.
    Endless { status: u16, headers: Vec<(String, String)>, content_length: Option<u64> },
    /// Headers promising `content_length` bytes, `first` bytes of body, then silence.
    Stall { status: u16, headers: Vec<(String, String)>, content_length: u64, first: Vec<u8> },
    /// No answer at all: the connection stays open and silent.
    Silent,
    /// Headers promising `content_length` bytes, then one byte every `every` (a slow loris).
    Trickle { status: u16, headers: Vec<(String, String)>, content_length: u64, every: Duration },
}

impl Reply {
    /// A status with an empty body and these headers.
    pub fn status(status: u16, headers: &[(&str, &str)]) -> Reply {
        Reply::Full { status, headers: own(headers), body: Vec::new() }
    }
    /// A 200 with `body` of `content_type`.
    pub fn ok(content_type: &str, body: Vec<u8>) -> Reply {
        Reply::Full { status: 200, headers: own(&[("Content-Type", content_type)]), body }
    }
}

fn own(h: &[(&str, &str)]) -> Vec<(String, String)> {
    h.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A running scripted server.
pub struct Hostile {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    /// Starts a server on `ip` (a loopback address) answering with `handler`.
    pub fn start(ip: &str, handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Hostile {
        Self::start_with(ip, None, handler)
    }

    /// Like [`Hostile::start`], over TLS with `server.crt` and `server.key` from `tls_dir`.
    pub fn start_tls(ip: &str, tls_dir: &Path, handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Hostile {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(tls_dir.join("server.crt")).unwrap().map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_file(tls_dir.join("server.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Self::start_with(ip, Some(Arc::new(config)), handler)
    }

    fn start_with(
        ip: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Hostile {
        assert!(ip.starts_with("127."), "the hostile registry only listens on loopback");
        let listener = TcpListener::bind(format!("{ip}:0")).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (l2, s2) = (log.clone(), stop.clone());
        thread::spawn(move || {
            let started = Instant::now();
            while !s2.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(600) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (h, l, s, tls) = (handler.clone(), l2.clone(), s2.clone(), tls.clone());
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                        thread::spawn(move || match tls.and_then(|c| rustls::ServerConnection::new(c).ok()) {
                            Some(server) => serve(rustls::StreamOwned::new(server, conn), &*h, &l, &s),
                            None => serve(conn, &*h, &l, &s),
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Hostile { addr, log, stop }
    }

    /// `127.0.0.x:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// The requests that carried an `Authorization` header.
    pub fn with_credentials(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.authorization.is_some()).collect()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve<S: Read + Write>(conn: S, handler: &Handler, log: &Mutex<Vec<Seen>>, stop: &AtomicBool) {
    let started = Instant::now();
    let mut reader = BufReader::new(conn);
    while started.elapsed() < CONN_LIMIT && !stop.load(Ordering::Relaxed) {
        // Not HTTP (a TLS ClientHello starts with 0x16, and has no line end to wait for): hang up at once.
        match reader.fill_buf() {
            Ok(b) if !b.is_empty() && b[0].is_ascii_uppercase() => {}
            _ => return,
        }
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else { return };
        if !line.contains("HTTP/1.") {
            return;
        }
        let (method, path) = (method.to_string(), path.to_string());
        let mut auth = None;
        let mut length = 0u64;
        let mut chunked = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let v = v.trim();
                match k.to_ascii_lowercase().as_str() {
                    "authorization" => auth = Some(v.to_string()),
                    "content-length" => length = v.parse().unwrap_or(0),
                    "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                    _ => {}
                }
            }
        }
        let body_len = if chunked { drain_chunked(&mut reader) } else { drain(&mut reader, length) };
        let Some(body_len) = body_len else { return };
        let seen = Seen { method, path, authorization: auth, body_len };
        log.lock().unwrap().push(seen.clone());
        if !answer(reader.get_mut(), handler(&seen), stop) {
            return;
        }
    }
}

fn drain(r: &mut impl Read, n: u64) -> Option<u64> {
    let got = std::io::copy(&mut r.take(n), &mut std::io::sink()).ok()?;
    (got == n).then_some(n)
}

fn drain_chunked(r: &mut impl BufRead) -> Option<u64> {
    let mut total = 0;
    loop {
        let mut size = String::new();
        r.read_line(&mut size).ok()?;
        let n = u64::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        drain(r, n)?;
        let mut crlf = String::new();
        r.read_line(&mut crlf).ok()?;
        if n == 0 {
            return Some(total);
        }
        total += n;
    }
}

fn head(status: u16, headers: &[(String, String)], length: Option<u64>) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {status} Scripted\r\n");
    for (k, v) in headers {
        s += &format!("{k}: {v}\r\n");
    }
    match length {
        Some(n) => s += &format!("Content-Length: {n}\r\n"),
        None => s += "Connection: close\r\n",
    }
    s += "\r\n";
    s.into_bytes()
}

/// Writes one answer; `false` when the connection must close.
fn answer(out: &mut impl Write, reply: Reply, stop: &AtomicBool) -> bool {
    match reply {
        Reply::Full { status, headers, body } => {
            let mut msg = head(status, &headers, Some(body.len() as u64));
            msg.extend_from_slice(&body);
            out.write_all(&msg).and_then(|_| out.flush()).is_ok()
        }
        Reply::Endless { status, headers, content_length } => {
            if out.write_all(&head(status, &headers, content_length)).and_then(|_| out.flush()).is_err() {
                return false;
            }
            let chunk = vec![b' '; 64 << 10];
            let mut sent = 0u64;
            let started = Instant::now();
            while sent < ENDLESS_LIMIT && started.elapsed() < CONN_LIMIT && !stop.load(Ordering::Relaxed) {
                if out.write_all(&chunk).and_then(|_| out.flush()).is_err() {
                    break;
                }
                sent += chunk.len() as u64;
            }
            false
        }
        Reply::Silent => {
            let started = Instant::now();
            while started.elapsed() < CONN_LIMIT && !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(50));
            }
            false
        }
        Reply::Trickle { status, headers, content_length, every } => {
            let _ = out.write_all(&head(status, &headers, Some(content_length))).and_then(|_| out.flush());
            let started = Instant::now();
            for _ in 0..content_length {
                if started.elapsed() >= CONN_LIMIT || stop.load(Ordering::Relaxed) {
                    break;
                }
                thread::sleep(every);
                if out.write_all(b" ").and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
            false
        }
        Reply::Stall { status, headers, content_length, first } => {
            let mut msg = head(status, &headers, Some(content_length));
            msg.extend_from_slice(&first);
            let _ = out.write_all(&msg).and_then(|_| out.flush());
            let started = Instant::now();
            while started.elapsed() < CONN_LIMIT && !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(50));
            }
            false
        }
    }
}

/// Runs `cmd` and returns its output, its peak resident memory in KiB and the
/// time it took. Past `limit` the child is killed and the test fails.
///
/// The peak comes from GNU time, which forks the command from its own small
/// process: a child spawned straight from this (large, multi-threaded) test
/// process would report this process's resident size as its own peak, since
/// the kernel carries the high-water mark of the address space it replaced at
/// exec.
pub fn run_measured(cmd: &mut Command, limit: Duration) -> (Output, u64, Duration) {
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let peak_file = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new("/usr/bin/time");
    timed.args(["-f", "%M", "-o"]).arg(peak_file.path()).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        timed.current_dir(d);
    }
    let out = run_limited(timed.process_group(0), limit);
    let report = fs::read_to_string(peak_file.path()).unwrap_or_default();
    let peak = report
        .lines()
        .rev()
        .find_map(|l| l.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{cmd:?}: no peak memory from /usr/bin/time: {report:?}"));
    (out, peak, started.elapsed())
}

/// A bare HTTP listener on loopback that answers every connection with 502
/// and counts them: set as `HTTPS_PROXY`, it shows whether wso2img tried to
/// reach a non-loopback registry (it must not, in these tests).
pub struct ProxyTrap {
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl ProxyTrap {
    pub fn start() -> ProxyTrap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h2, s2) = (hits.clone(), stop.clone());
        thread::spawn(move || {
            let started = Instant::now();
            while !s2.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(300) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut first = String::new();
                        let _ = BufReader::new(conn.try_clone().unwrap()).read_line(&mut first);
                        h2.lock().unwrap().push(first.trim().to_string());
                        let _ = conn.write_all(b"HTTP/1.1 502 Trap\r\nContent-Length: 0\r\n\r\n");
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        ProxyTrap { addr, hits, stop }
    }
    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for ProxyTrap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
