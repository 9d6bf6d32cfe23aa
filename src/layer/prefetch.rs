//! Reading a layer's small files on every core, ahead of the one thread that
//! lays out (and hashes) the tar stream in order. With many small files the
//! cost of a layer is the open/read/close of each file, not its bytes; the
//! tar stream itself must stay sequential. A bounded window keeps memory
//! small: at most [`WINDOW`] files of at most [`SMALL`] bytes are held.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
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
    /// The file the caller waits for, if it waits.
    wanted: Option<usize>,
    /// Readers waiting for room in the window.
    readers_wait: usize,
}

/// Files being read ahead; see the module docs.
pub struct Prefetch<'a> {
    files: Vec<(&'a Path, u64)>,
    next: AtomicUsize,
    state: Mutex<State>,
    /// A file was read (the caller waits on it).
    read: Condvar,
    /// The caller took a file, making room (readers wait on it).
    room: Condvar,
}

impl<'a> Prefetch<'a> {
    /// Prepares to read `files` (in the order they will be taken).
    pub fn new(files: Vec<(&'a Path, u64)>) -> Self {
        let ready = files.iter().map(|_| None).collect();
        Prefetch {
            files,
            next: AtomicUsize::new(0),
            state: Mutex::new(State { ready, taken: 0, stopped: false, wanted: None, readers_wait: 0 }),
            read: Condvar::new(),
            room: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One reader's loop: run it on as many threads as should read. Each
    /// reader opens files relative to the folder it opened last (the files
    /// come folder by folder), and wakes the caller only when it waits for
    /// the very file read.
    pub fn work(&self) {
        let mut dir = Folder::default();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(&(path, size)) = self.files.get(i) else { return };
            {
                let mut s = self.lock();
                while !s.stopped && i >= s.taken + WINDOW {
                    s.readers_wait += 1;
                    s = self.room.wait(s).unwrap_or_else(|e| e.into_inner());
                    s.readers_wait -= 1;
                }
                if s.stopped {
                    return;
                }
            }
            let r = if size <= SMALL { read_exact(&mut dir, path, size) } else { Ok(Vec::new()) };
            let mut s = self.lock();
            s.ready[i] = Some(r);
            let wake = s.wanted == Some(i);
            drop(s);
            if wake {
                self.read.notify_one();
            }
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
            s.wanted = Some(i);
            s = self.read.wait(s).unwrap_or_else(|e| e.into_inner());
            s.wanted = None;
        };
        s.taken = i + 1;
        let wake = s.readers_wait > 0;
        drop(s);
        if wake {
            self.room.notify_all();
        }
        let big = self.files[i].1 > SMALL;
        r.map(|b| (!big).then_some(b))
    }

    /// Lets every reader go (on an early return).
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.room.notify_all();
    }
}

/// Opens a folder only to look files up in it (needs no read permission).
#[cfg(target_os = "linux")]
const FOLDER_ONLY: libc::c_int = libc::O_PATH;
#[cfg(not(target_os = "linux"))]
const FOLDER_ONLY: libc::c_int = 0;

/// The folder a reader opened last (its path and descriptor), to open
/// files relative to it.
#[derive(Default)]
struct Folder(Option<(PathBuf, File)>);

impl Folder {
    /// Opens `path` relative to its folder (opened when it is not the last
    /// one), following symlinks as `File::open` does.
    fn open(&mut self, path: &Path) -> std::io::Result<File> {
        use std::os::unix::ffi::OsStrExt;
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else { return File::open(path) };
        let Ok(name) = std::ffi::CString::new(name.as_bytes()) else { return File::open(path) };
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        if self.0.as_ref().is_none_or(|(p, _)| p != parent) {
            self.0 = None;
            let d =
                std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | FOLDER_ONLY).open(parent)?;
            self.0 = Some((parent.to_path_buf(), d));
        }
        let (_, dir) = self.0.as_ref().expect("opened above");
        super::walk::open_in(dir, &name, 0)
    }
}

/// Reads exactly `size` bytes of `source` (opened relative to `dir`),
/// failing if the file changed size since it was planned.
fn read_exact(dir: &mut Folder, source: &Path, size: u64) -> Result<Vec<u8>> {
    let rerr = |e: std::io::Error| Error::input(format!("{}: cannot read ({})", source.display(), io_reason(&e)));
    let f = dir.open(source).map_err(rerr)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_come_in_order_across_folders_and_a_missing_folder_fails_only_its_file() {
        let d = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (dir, n) in [("a", 40), ("b", 3), ("a", 2)] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
            for i in 0..n {
                let p = d.path().join(dir).join(format!("{}-{i}", paths.len()));
                std::fs::write(&p, p.to_string_lossy().as_bytes()).unwrap();
                paths.push(p);
            }
        }
        let gone = d.path().join("gone/x");
        paths.insert(41, gone.clone());
        let files: Vec<(&Path, u64)> = paths
            .iter()
            .map(|p| (p.as_path(), if *p == gone { 6 } else { p.to_string_lossy().len() as u64 }))
            .collect();
        let pf = Prefetch::new(files);
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| pf.work());
            }
            for (i, p) in paths.iter().enumerate() {
                let got = pf.take(i);
                if *p == gone {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains("gone/x: cannot read"), "{e}");
                } else {
                    assert_eq!(got.unwrap().unwrap(), p.to_string_lossy().as_bytes());
                }
            }
        });
        let mut dir = Folder::default();
        assert!(dir.open(&paths[0]).is_ok());
        assert!(dir.open(&gone).is_err());
        assert!(dir.open(&paths[1]).is_ok(), "the folder opened before a failure is opened again");
    }
}
