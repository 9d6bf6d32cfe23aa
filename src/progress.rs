//! Progress reporting. The library reports what it does — messages, and
//! byte-counting tasks for pulling, compressing and uploading — to one sink
//! that the program installs ([`install`]); the command line renders it as
//! bars on a terminal or as plain timestamped lines in CI. With no sink
//! installed nothing is reported.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Where progress goes.
pub trait Sink: Send + Sync {
    /// A one-line message.
    fn message(&self, msg: &str);
    /// A detail shown only when asked for (`-v`).
    fn detail(&self, msg: &str);
    /// A debugging line (each network request), shown with `-v -v`.
    fn debug(&self, _msg: &str) {}
    /// Starts a task that moves about `total` bytes.
    fn start(&self, what: &str, total: Option<u64>) -> Box<dyn TaskView>;
}

/// How a sink shows one task.
pub trait TaskView: Send + Sync {
    /// `n` more bytes done.
    fn advance(&self, n: u64);
    /// The task ended after `bytes` bytes in `secs` seconds.
    fn finish(&self, bytes: u64, secs: f64);
}

static SINK: OnceLock<Arc<dyn Sink>> = OnceLock::new();

/// Installs the process-wide sink (once; later calls are ignored).
pub fn install(sink: Arc<dyn Sink>) {
    let _ = SINK.set(sink);
}

/// Reports a message.
pub fn message(msg: &str) {
    if let Some(s) = SINK.get() {
        s.message(msg);
    }
}

/// Reports a detail (shown with `-v`).
pub fn detail(msg: &str) {
    if let Some(s) = SINK.get() {
        s.detail(msg);
    }
}

/// Reports a debugging line (shown with `-v -v`).
pub fn debug(msg: &str) {
    if let Some(s) = SINK.get() {
        s.debug(msg);
    }
}

/// Names of blobs, by digest, for tasks that move them (an upload shows the
/// layer's name, not its digest).
static NAMES: OnceLock<std::sync::Mutex<std::collections::HashMap<String, String>>> = OnceLock::new();

/// Names blob `digest` (`sha256:…`) `name` (a layer kind: `jars`, `themes`) in task names.
pub fn name_blob(digest: &str, name: &str) {
    let names = NAMES.get_or_init(Default::default);
    names.lock().unwrap_or_else(|e| e.into_inner()).insert(digest.to_string(), name.to_string());
}

/// The name given to blob `digest`, when one was.
pub fn blob_name(digest: &str) -> Option<String> {
    NAMES.get()?.lock().unwrap_or_else(|e| e.into_inner()).get(digest).cloned()
}

/// A running task; it reports its end when dropped.
pub struct Task {
    view: Option<Box<dyn TaskView>>,
    done: std::sync::atomic::AtomicU64,
    started: Instant,
}

impl Task {
    /// Starts a task named `what` of about `total` bytes.
    pub fn start(what: &str, total: Option<u64>) -> Task {
        Task {
            view: SINK.get().map(|s| s.start(what, total)),
            done: std::sync::atomic::AtomicU64::new(0),
            started: Instant::now(),
        }
    }
    /// `n` more bytes done.
    pub fn advance(&self, n: u64) {
        self.done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        if let Some(v) = &self.view {
            v.advance(n);
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(v) = &self.view {
            v.finish(self.done.load(std::sync::atomic::Ordering::Relaxed), self.started.elapsed().as_secs_f64());
        }
    }
}

/// A writer that reports the bytes written through it to a task.
pub struct Counting<'a, W> {
    /// The inner writer.
    pub inner: W,
    /// The task.
    pub task: &'a Task,
}

impl<W: std::io::Write> std::io::Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.task.advance(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
