//! Reading a layer's small files on every core, ahead of the one thread that
//! lays out (and hashes) the tar stream in order. With many small files the
//! cost of a layer is the open/read/close of each file, not its bytes; the
//! tar stream itself must stay sequential. A bounded window keeps memory
//! small: at most [`WINDOW`] files of at most [`SMALL`] bytes are held.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use crate::error::{io_reason, Error, Result};

/// Files up to this size are read ahead whole; bigger ones are streamed by
/// the caller.
pub const SMALL: u64 = 128 * 1024;
/// Files read ahead of the one the caller takes next, at most.
const WINDOW: usize = 32;
/// Layers with fewer small files than this are read in line.
pub const MIN_FILES: usize = 32;

struct State {
    /// Per file: its bytes once read (`None` before, or for a big file).
    ready: Vec<Option<Result<Vec<u8>>>>,
    /// Files the caller has taken.
    taken: usize,
    stopped: bool,
}

/// Files being read ahead; see the module docs.
pub struct Prefetch<'a> {
    files: Vec<(&'a Path, u64)>,
    next: AtomicUsize,
    state: Mutex<State>,
    changed: Condvar,
}

impl<'a> Prefetch<'a> {
    /// Prepares to read `files` (in the order they will be taken).
    pub fn new(files: Vec<(&'a Path, u64)>) -> Self {
        let ready = files.iter().map(|_| None).collect();
        Prefetch {
            files,
            next: AtomicUsize::new(0),
            state: Mutex::new(State { ready, taken: 0, stopped: false }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One reader's loop: run it on as many threads as should read.
    pub fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(&(path, size)) = self.files.get(i) else { return };
            {
                let mut s = self.lock();
                while !s.stopped && i >= s.taken + WINDOW {
                    s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                if s.stopped {
                    return;
                }
            }
            let r = if size <= SMALL { read_exact(path, size) } else { Ok(Vec::new()) };
            let mut s = self.lock();
            s.ready[i] = Some(r);
            drop(s);
            self.changed.notify_all();
        }
    }

    /// The bytes of file `i` (taken in order), or `None` for a big file the
    /// caller reads itself.
    pub fn take(&self, i: usize) -> Result<Option<Vec<u8>>> {
        let mut s = self.lock();
        let r = loop {
            if let Some(r) = s.ready[i].take() {
                break r;
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        };
        s.taken = i + 1;
        drop(s);
        self.changed.notify_all();
        let big = self.files[i].1 > SMALL;
        r.map(|b| (!big).then_some(b))
    }

    /// Lets every reader go (on an early return).
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }
}

/// Reads exactly `size` bytes of `source`, failing if the file changed size
/// since it was planned.
fn read_exact(source: &Path, size: u64) -> Result<Vec<u8>> {
    let rerr = |e: std::io::Error| Error::input(format!("{}: cannot read ({})", source.display(), io_reason(&e)));
    let f = File::open(source).map_err(rerr)?;
    let mut buf = Vec::with_capacity(size as usize);
    let mut f = f.take(size);
    f.read_to_end(&mut buf).map_err(rerr)?;
    let now = f.into_inner().metadata().map_err(rerr)?.len();
    if buf.len() as u64 != size || now != size {
        return Err(Error::input(format!(
            "{}: changed while the image was being built ({size} bytes planned, {now} now); run again",
            source.display()
        )));
    }
    Ok(buf)
}
