//! Reading a layer's small files on every core, ahead of the one thread that
//! lays out (and hashes) the tar stream in order. With many small files the
//! cost of a layer is the open/read/close of each file, not its bytes; the
//! tar stream itself must stay sequential.
//!
//! Files are read in batches — runs of consecutive files of about
//! `BATCH_BYTES` — so that readers and the caller meet once per batch, not
//! once per file (a lock and a wake per file cost as much as reading it). A
//! bounded window keeps memory small: at most `WINDOW` batches are held,
//! their buffers reused.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::Scope;

use super::{cannot_read, changed_size, Stamp};
use crate::error::{Error, Result};

/// Files up to this size are read ahead whole; bigger ones are streamed by
/// the caller.
pub const SMALL: u64 = 128 * 1024;
/// Layers with fewer small files than this are read in line.
pub const MIN_FILES: usize = 32;
/// A batch ends once its files hold this many bytes…
const BATCH_BYTES: u64 = 256 * 1024;
/// …or count this many files.
const BATCH_FILES: usize = 64;
/// Batches read ahead of the one the caller takes next, at most.
const WINDOW: usize = 8;
/// A batch buffer: its bytes, plus one file's and one byte to see a file
/// that grew.
const BUFFER: usize = (BATCH_BYTES + SMALL) as usize + 1;

/// One batch as read: its buffer and, per file, the range of its bytes in
/// it (`None` for a big file, which the caller reads) or why it could not
/// be read.
struct Batch {
    buf: Vec<u8>,
    files: Vec<Result<Option<Range<usize>>>>,
}

struct State {
    /// Per batch: once read, until the caller takes it.
    ready: Vec<Option<Batch>>,
    /// Batches the caller has taken.
    taken: usize,
    stopped: bool,
    /// The batch the caller waits for, if it waits.
    wanted: Option<usize>,
    /// Readers waiting for room in the window.
    readers_wait: usize,
    /// Buffers of batches the caller is done with.
    free: Vec<Vec<u8>>,
}

/// Files being read ahead; see the module docs.
pub struct Prefetch<'a> {
    files: Vec<(&'a Path, u64)>,
    batches: Vec<Range<usize>>,
    next: AtomicUsize,
    state: Mutex<State>,
    /// A batch was read (the caller waits on it).
    read: Condvar,
    /// The caller took a batch, making room (readers wait on it).
    room: Condvar,
}

impl<'a> Prefetch<'a> {
    /// Starts reading `files` (in the order they will be taken) on
    /// `readers` threads of `scope`; the taker takes them, and lets the
    /// readers go when dropped.
    pub fn start<'scope>(files: Vec<(&'a Path, u64)>, readers: usize, scope: &'scope Scope<'scope, '_>) -> Taker<'a>
    where
        'a: 'scope,
    {
        let pf = Arc::new(Prefetch::new(files, readers));
        for _ in 0..readers {
            let pf = Arc::clone(&pf);
            scope.spawn(move || pf.work());
        }
        Taker { pf, batch: None, next_batch: 0, in_batch: 0 }
    }

    fn new(files: Vec<(&'a Path, u64)>, readers: usize) -> Self {
        let mut batches = Vec::new();
        let (mut start, mut bytes) = (0, 0);
        for (i, &(_, size)) in files.iter().enumerate() {
            if size <= SMALL {
                bytes += size;
            }
            if bytes >= BATCH_BYTES || i + 1 - start >= BATCH_FILES {
                batches.push(start..i + 1);
                (start, bytes) = (i + 1, 0);
            }
        }
        if start < files.len() {
            batches.push(start..files.len());
        }
        let ready = batches.iter().map(|_| None).collect();
        // Every buffer the readers will need, from the caller's allocator
        // arena rather than one arena per reader thread.
        let free = (0..batches.len().min(WINDOW + readers)).map(|_| vec![0; BUFFER]).collect();
        Prefetch {
            files,
            batches,
            next: AtomicUsize::new(0),
            state: Mutex::new(State { ready, taken: 0, stopped: false, wanted: None, readers_wait: 0, free }),
            read: Condvar::new(),
            room: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One reader's loop. Each reader opens files relative to the folder it
    /// opened last (the files come folder by folder), and wakes the caller
    /// only when it waits for the very batch read.
    fn work(&self) {
        let mut dir = Folder::default();
        loop {
            let b = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(range) = self.batches.get(b) else { return };
            let buf = {
                let mut s = self.lock();
                while !s.stopped && b >= s.taken + WINDOW {
                    s.readers_wait += 1;
                    s = self.room.wait(s).unwrap_or_else(|e| e.into_inner());
                    s.readers_wait -= 1;
                }
                if s.stopped {
                    return;
                }
                s.free.pop()
            };
            let batch = self.read_batch(&mut dir, range.clone(), buf.unwrap_or_else(|| vec![0; BUFFER]));
            let mut s = self.lock();
            s.ready[b] = Some(batch);
            let wake = s.wanted == Some(b);
            drop(s);
            if wake {
                self.read.notify_one();
            }
        }
    }

    /// Reads the small files of `range` into `buf`, one after the other (a
    /// file that fails fails alone).
    fn read_batch(&self, dir: &mut Folder, range: Range<usize>, mut buf: Vec<u8>) -> Batch {
        let mut files = Vec::with_capacity(range.len());
        let mut at = 0;
        for &(path, size) in &self.files[range] {
            if size > SMALL {
                files.push(Ok(None));
                continue;
            }
            let end = at + size as usize;
            match read_exact(dir, path, &mut buf[at..=end]) {
                Ok(()) => {
                    files.push(Ok(Some(at..end)));
                    at = end;
                }
                Err(e) => files.push(Err(e)),
            }
        }
        Batch { buf, files }
    }

    /// Lets every reader go.
    fn stop(&self) {
        self.lock().stopped = true;
        self.room.notify_all();
    }
}

/// Takes the files of a [`Prefetch`] in order.
pub struct Taker<'a> {
    pf: Arc<Prefetch<'a>>,
    batch: Option<Batch>,
    next_batch: usize,
    in_batch: usize,
}

impl Drop for Taker<'_> {
    fn drop(&mut self) {
        self.pf.stop();
    }
}

impl Taker<'_> {
    /// Where the next file's bytes are ([`Taker::bytes`], until the next
    /// call), or `None` for a big file the caller reads itself.
    pub fn next_file(&mut self) -> Result<Option<Range<usize>>> {
        if self.batch.as_ref().is_none_or(|b| self.in_batch >= b.files.len()) {
            self.batch = Some(self.next_batch()?);
            self.in_batch = 0;
        }
        let batch = self.batch.as_mut().expect("taken above");
        let k = self.in_batch;
        self.in_batch += 1;
        std::mem::replace(&mut batch.files[k], Ok(None))
    }

    /// The bytes of a file [`Taker::next_file`] just placed at `r`.
    pub fn bytes(&self, r: Range<usize>) -> &[u8] {
        &self.batch.as_ref().expect("a file was taken").buf[r]
    }

    /// Waits for the next batch, handing the buffer of the last one back.
    fn next_batch(&mut self) -> Result<Batch> {
        let b = self.next_batch;
        if b >= self.pf.batches.len() {
            return Err(Error::new(crate::error::Kind::Io, "read ahead: more files taken than planned"));
        }
        let mut s = self.pf.lock();
        if let Some(done) = self.batch.take() {
            s.free.push(done.buf);
        }
        let batch = loop {
            if let Some(batch) = s.ready[b].take() {
                break batch;
            }
            s.wanted = Some(b);
            s = self.pf.read.wait(s).unwrap_or_else(|e| e.into_inner());
            s.wanted = None;
        };
        s.taken = b + 1;
        let wake = s.readers_wait > 0;
        drop(s);
        if wake {
            self.pf.room.notify_all();
        }
        self.next_batch = b + 1;
        Ok(batch)
    }
}

/// Opens a folder only to look files up in it (needs no read permission).
#[cfg(target_os = "linux")]
const FOLDER_ONLY: rustix::fs::OFlags = rustix::fs::OFlags::PATH;
#[cfg(not(target_os = "linux"))]
const FOLDER_ONLY: rustix::fs::OFlags = rustix::fs::OFlags::empty();

/// The folder a reader opened last (its path and descriptor), to open
/// files relative to it.
#[derive(Default)]
struct Folder(Option<(PathBuf, File)>);

impl Folder {
    /// Opens `path` relative to its folder (opened when it is not the last
    /// one), following symlinks as `File::open` does.
    fn open(&mut self, path: &Path) -> std::io::Result<File> {
        use rustix::fs::{Mode, OFlags};
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else { return File::open(path) };
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        if self.0.as_ref().is_none_or(|(p, _)| p != parent) {
            self.0 = None;
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | FOLDER_ONLY;
            let d = File::from(rustix::fs::open(parent, flags, Mode::empty())?);
            self.0 = Some((parent.to_path_buf(), d));
        }
        let (_, dir) = self.0.as_ref().expect("opened above");
        super::walk::open_in(dir, name)
    }
}

/// Reads `source` (opened relative to `dir`) into `dst`, whose length is its
/// planned size and one byte more, failing if the file changed size since it
/// was planned. A read that returns less than it was asked for is the end of
/// the file (as it is for regular files), so a file of the planned size
/// costs one read.
fn read_exact(dir: &mut Folder, source: &Path, dst: &mut [u8]) -> Result<()> {
    let rerr = |e: std::io::Error| cannot_read(source, &e);
    let size = dst.len() - 1;
    let mut f = dir.open(source).map_err(rerr)?;
    let stamp = Stamp::of(&f).map_err(rerr)?;
    let mut got = 0;
    loop {
        let asked = dst.len() - got;
        let n = match f.read(&mut dst[got..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(rerr(e)),
        };
        got += n;
        if n == 0 || got > size || (n < asked && got == size) {
            break;
        }
    }
    if got != size {
        let now = f.metadata().map_or_else(|_| "?".to_string(), |m| m.len().to_string());
        return Err(changed_size(source, size as u64, now));
    }
    stamp.check(&f, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_come_in_order_across_folders_and_batches_and_a_missing_or_resized_file_fails_alone() {
        let d = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (dir, n) in [("a", 100), ("b", 3), ("a", 2)] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
            for i in 0..n {
                let p = d.path().join(dir).join(format!("{}-{i}", paths.len()));
                std::fs::write(&p, p.to_string_lossy().as_bytes()).unwrap();
                paths.push(p);
            }
        }
        let gone = d.path().join("gone/x");
        paths.insert(41, gone.clone());
        // Planned one byte shorter and one byte longer than they are.
        let (grew, shrank) = (paths[70].clone(), paths[101].clone());
        let planned = |p: &PathBuf| match p {
            p if *p == gone => 6,
            p if *p == grew => p.to_string_lossy().len() as u64 - 1,
            p if *p == shrank => p.to_string_lossy().len() as u64 + 1,
            p => p.to_string_lossy().len() as u64,
        };
        let files: Vec<(&Path, u64)> = paths.iter().map(|p| (p.as_path(), planned(p))).collect();
        std::thread::scope(|scope| {
            let mut taker = Prefetch::start(files, 2, scope);
            for p in &paths {
                let got = taker.next_file();
                if *p == gone {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains("gone/x: cannot read"), "{e}");
                } else if *p == grew || *p == shrank {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains("changed while the image was being built"), "{e}");
                } else {
                    let r = got.unwrap().unwrap();
                    assert_eq!(taker.bytes(r), p.to_string_lossy().as_bytes());
                }
            }
        });
        let mut dir = Folder::default();
        assert!(dir.open(&paths[0]).is_ok());
        assert!(dir.open(&gone).is_err());
        assert!(dir.open(&paths[1]).is_ok(), "the folder opened before a failure is opened again");
    }
}
