//! A counting TCP proxy for round-trip tests: it sits on 127.0.0.1 between
//! wso2img and a real plain-HTTP registry, pipes every connection byte for
//! byte to its own upstream connection (so keep-alive and pooling are what
//! the client does), and records each connection and each request on it
//! (method and path parsed from the HTTP/1.1 request framing: head, then a
//! `Content-Length` or chunked body). A connection that opens with a TLS
//! handshake (wso2img probing HTTPS on a loopback registry) is piped raw and
//! counted as such. An optional delay is added before every chunk relayed
//! in either direction, to make round trips visible in time.
//!
//! From the times a request was sent and its last answer byte came back,
//! [`Counted::sequential`] gives the longest chain of requests each sent
//! after the previous one was answered: the round trips that could not
//! overlap.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One request the proxy relayed.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The request target's path (no query).
    pub path: String,
    /// Which connection (in accept order) carried it.
    pub conn: usize,
    /// When its head arrived.
    pub sent: Instant,
    /// When the last byte answering it went back (its head arrival until then).
    pub answered: Instant,
}

impl Seen {
    /// `METHOD /path`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
    /// A request on blobs (`HEAD`/`GET` of a blob, or an upload or mount).
    pub fn is_blob(&self) -> bool {
        self.path.contains("/blobs/")
    }
}

/// What the proxy saw so far.
#[derive(Clone, Debug, Default)]
pub struct Counted {
    /// Connections opened to the proxy (TLS probes included).
    pub connections: usize,
    /// Connections that opened with a TLS handshake.
    pub tls_probes: usize,
    pub requests: Vec<Seen>,
}

impl Counted {
    /// The longest chain of requests each sent after the one before it was
    /// answered; a TLS probe counts as one round trip before everything.
    pub fn sequential(&self) -> usize {
        let mut reqs = self.requests.clone();
        reqs.sort_by_key(|r| r.sent);
        let mut depth: Vec<usize> = Vec::with_capacity(reqs.len());
        for (i, r) in reqs.iter().enumerate() {
            let before = (0..i).filter(|&j| reqs[j].answered <= r.sent).map(|j| depth[j]).max().unwrap_or(0);
            depth.push(before + 1);
        }
        depth.into_iter().max().unwrap_or(0) + self.tls_probes.min(1)
    }

    /// The requests sent before the first blob request.
    pub fn before_first_blob(&self) -> Vec<&Seen> {
        self.requests.iter().take_while(|r| !r.is_blob()).collect()
    }

    /// The requests, one per line, for failure messages.
    pub fn describe(&self) -> String {
        let t0 = self.requests.first().map(|r| r.sent);
        let lines: Vec<String> = self
            .requests
            .iter()
            .map(|r| {
                let at = t0.map(|t| r.sent.duration_since(t).as_millis()).unwrap_or(0);
                format!(
                    "  +{at} ms conn {} {} ({} ms)",
                    r.conn,
                    r.line(),
                    r.answered.duration_since(r.sent).as_millis()
                )
            })
            .collect();
        format!(
            "{} connections ({} TLS probes), {} requests, {} sequential:\n{}",
            self.connections,
            self.tls_probes,
            self.requests.len(),
            self.sequential(),
            lines.join("\n")
        )
    }
}

/// The proxy; dropping it stops accepting (connections in flight end with their peers).
pub struct CountingProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<Counted>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl CountingProxy {
    /// Starts a proxy to `upstream` (`127.0.0.1:PORT`), adding `delay`
    /// before every chunk relayed in either direction.
    pub fn start(upstream: &str, delay: Duration) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(Counted::default()));
        let handle = {
            let (stop, state, upstream) = (stop.clone(), state.clone(), upstream.to_string());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let id = {
                        let mut s = state.lock().unwrap();
                        s.connections += 1;
                        s.connections - 1
                    };
                    let (state, upstream) = (state.clone(), upstream.clone());
                    thread::spawn(move || {
                        let _ = relay(conn, &upstream, id, delay, &state);
                    });
                }
            })
        };
        CountingProxy { port, stop, state, handle: Some(handle) }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What it saw so far.
    pub fn counted(&self) -> Counted {
        self.state.lock().unwrap().clone()
    }

    /// Forgets what it saw (between the runs of a test).
    pub fn reset(&self) {
        *self.state.lock().unwrap() = Counted::default();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Relays one client connection to a fresh upstream connection.
fn relay(client: TcpStream, upstream: &str, id: usize, delay: Duration, state: &Arc<Mutex<Counted>>) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(120)))?;
    client.set_nodelay(true)?;
    let up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(120)))?;
    up.set_nodelay(true)?;
    // Answers flow back on their own thread; each chunk marks the request
    // being answered (HTTP/1.1 without pipelining: the last one sent).
    let back = {
        let (mut from, mut to, state) = (up.try_clone()?, client.try_clone()?, state.clone());
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                thread::sleep(delay);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                let mut s = state.lock().unwrap();
                if let Some(r) = s.requests.iter_mut().rev().find(|r| r.conn == id) {
                    r.answered = Instant::now();
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        })
    };
    let mut cr = BufReader::with_capacity(64 * 1024, client.try_clone()?);
    let mut uw = up.try_clone()?;
    let tls = cr.fill_buf()?.first() == Some(&0x16);
    if tls {
        state.lock().unwrap().tls_probes += 1;
        let _ = pipe_raw(&mut cr, &mut uw, delay);
    } else {
        let _ = pipe_http(&mut cr, &mut uw, id, delay, state);
    }
    let _ = up.shutdown(Shutdown::Write);
    let _ = back.join();
    Ok(())
}

fn pipe_raw(from: &mut impl BufRead, to: &mut impl Write, delay: Duration) -> io::Result<()> {
    loop {
        let chunk = from.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        let n = chunk.len();
        thread::sleep(delay);
        to.write_all(chunk)?;
        from.consume(n);
    }
}

/// Relays requests one after the other, recording each as its head arrives.
fn pipe_http(
    from: &mut BufReader<TcpStream>,
    to: &mut TcpStream,
    id: usize,
    delay: Duration,
    state: &Mutex<Counted>,
) -> io::Result<()> {
    loop {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut line = Vec::new();
            if from.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            head.extend_from_slice(&line);
            if head.len() > 64 * 1024 {
                return Err(io::Error::other("request head too large"));
            }
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let mut lines = text.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let path = first.next().unwrap_or("").split('?').next().unwrap_or("").to_string();
        let (mut length, mut chunked) = (0u64, false);
        for l in lines {
            let Some((k, v)) = l.split_once(':') else { continue };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
        let now = Instant::now();
        state.lock().unwrap().requests.push(Seen { method, path, conn: id, sent: now, answered: now });
        thread::sleep(delay);
        to.write_all(&head)?;
        if chunked {
            copy_chunked(from, to, delay)?;
        } else {
            copy_exact(from, to, length, delay)?;
        }
    }
}

fn copy_exact(from: &mut impl BufRead, to: &mut impl Write, mut left: u64, delay: Duration) -> io::Result<()> {
    while left > 0 {
        let chunk = from.fill_buf()?;
        if chunk.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let n = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        thread::sleep(delay);
        to.write_all(&chunk[..n])?;
        from.consume(n);
        left -= n as u64;
    }
    Ok(())
}

fn copy_chunked(from: &mut impl BufRead, to: &mut impl Write, delay: Duration) -> io::Result<()> {
    loop {
        let mut size_line = Vec::new();
        from.read_until(b'\n', &mut size_line)?;
        to.write_all(&size_line)?;
        let text = String::from_utf8_lossy(&size_line);
        let size = u64::from_str_radix(text.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(|_| io::Error::other("bad chunk size"))?;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                let mut l = Vec::new();
                if from.read_until(b'\n', &mut l)? == 0 || l == b"\r\n" {
                    to.write_all(&l)?;
                    return Ok(());
                }
                to.write_all(&l)?;
            }
        }
        copy_exact(from, to, size + 2, delay)?;
    }
}
