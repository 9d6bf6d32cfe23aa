//! Files wso2img writes, and how it writes them safely.
//!
//! - A regular file appears whole or not at all: written to a temporary file
//!   beside it and renamed over it.
//! - A path that exists and is not a regular file (a device such as
//!   `/dev/null`, a fifo, `/dev/stdout`) is written in place, never replaced;
//!   `-` means standard output.
//! - Every temporary file or folder is named `.wso2img-…-<pid>-…` (files also
//!   hold an advisory lock while in use) and is registered so that
//!   SIGINT/SIGTERM remove it ([`install_signal_cleanup`]). What a `kill -9`
//!   leaves behind is removed by the next run that writes in the same folder
//!   ([`sweep`]): an entry is stale when its process is gone and nobody holds
//!   a lock on it.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};

/// Prefix of every temporary file and folder wso2img creates.
pub const TEMP_PREFIX: &str = ".wso2img-";

/// Where an output path sends its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-` (or `/dev/stdout`, `/dev/fd/1`): standard output, written
    /// through this process's own descriptor.
    Stdout,
    /// `/dev/stderr` (or `/dev/fd/2`): standard error, likewise.
    Stderr,
    /// An existing non-regular file (device, fifo): opened and written in place.
    InPlace(PathBuf),
    /// A regular file (existing or not): replaced atomically.
    Replace(PathBuf),
}

impl Target {
    /// Classifies `path` without opening it. Existing paths under `/dev/`
    /// and `/proc/` are written in place even when they lead to a regular
    /// file: `/dev/stdout` redirected to a file must fill that file, not be
    /// replaced by one.
    pub fn of(path: &Path) -> Target {
        let p = path.as_os_str();
        if p == "-" || p == "/dev/stdout" || p == "/dev/fd/1" || p == "/proc/self/fd/1" {
            return Target::Stdout;
        }
        if p == "/dev/stderr" || p == "/dev/fd/2" || p == "/proc/self/fd/2" {
            return Target::Stderr;
        }
        let system = path.starts_with("/dev/") || path.starts_with("/proc/");
        match fs::metadata(path) {
            Ok(m) if system || (!m.file_type().is_file() && !m.is_dir()) => Target::InPlace(path.to_path_buf()),
            _ => Target::Replace(path.to_path_buf()),
        }
    }
}

/// Checks, before any work, that an output file named by `flag` can be
/// written: `-` and existing devices always can; otherwise the parent folder
/// must exist and be writable, and the path must not be a folder.
pub fn check_output(path: &Path, flag: &str) -> Result<()> {
    let shown = path.display();
    match Target::of(path) {
        Target::Stdout | Target::Stderr | Target::InPlace(_) => Ok(()),
        Target::Replace(p) => {
            if p.is_dir() {
                return Err(Error::usage(format!("{flag} {shown}: is a folder; name a file")));
            }
            let parent = parent_of(&p);
            if !parent.is_dir() {
                return Err(Error::usage(format!(
                    "{flag} {shown}: folder {} does not exist; create it first",
                    parent.display()
                )));
            }
            if !dir_writable(parent) {
                return Err(Error::usage(format!(
                    "{flag} {shown}: folder {} is not writable; pick another path",
                    parent.display()
                )));
            }
            Ok(())
        }
    }
}

/// Whether the current user may create files in `dir`.
pub fn dir_writable(dir: &Path) -> bool {
    use rustix::fs::Access;
    rustix::fs::access(dir, Access::WRITE_OK | Access::EXEC_OK).is_ok()
}

/// The folder a file lives in (`.` for a bare name).
pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to an output path: `-` is stdout, devices and fifos are
/// written in place, regular files replaced atomically.
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    match Target::of(path) {
        Target::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(bytes).and_then(|_| out.flush()).map_err(|e| Error::io("writing", Path::new("stdout"), e))
        }
        Target::Stderr => {
            let mut out = io::stderr().lock();
            out.write_all(bytes).and_then(|_| out.flush()).map_err(|e| Error::io("writing", Path::new("stderr"), e))
        }
        Target::InPlace(p) => {
            let mut f = OpenOptions::new().write(true).open(&p).map_err(|e| Error::io("opening", &p, e))?;
            f.write_all(bytes).map_err(|e| Error::io("writing", &p, e))
        }
        Target::Replace(p) => write_atomic(&p, bytes),
    }
}

/// Writes `bytes` to the regular file `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = TempFile::new_in(parent_of(path), "tmp", "")?;
    tmp.file().write_all(bytes).map_err(|e| Error::io("writing", path, e))?;
    tmp.persist(path)
}

/// Makes a file wso2img wrote readable by everyone (0644), as `docker save`
/// and skopeo leave theirs; temporary files start as 0600.
pub fn readable(f: &File, shown: &Path) -> Result<()> {
    f.set_permissions(fs::Permissions::from_mode(0o644)).map_err(|e| Error::io("setting permissions", shown, e))
}

fn registry() -> &'static Mutex<HashSet<PathBuf>> {
    static LIVE: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

fn register(p: &Path) {
    registry().lock().unwrap_or_else(|e| e.into_inner()).insert(p.to_path_buf());
}

fn unregister(p: &Path) {
    registry().lock().unwrap_or_else(|e| e.into_inner()).remove(p);
}

fn temp_name(kind: &str) -> String {
    format!("{TEMP_PREFIX}{kind}-{}-", std::process::id())
}

/// A temporary file, locked while alive, removed on drop or on a signal
/// unless persisted.
pub struct TempFile {
    inner: Option<tempfile::NamedTempFile>,
    path: PathBuf,
}

impl TempFile {
    /// Creates `.wso2img-<kind>-<pid>-XXXX<suffix>` in `dir`.
    pub fn new_in(dir: &Path, kind: &str, suffix: &str) -> Result<TempFile> {
        let f = tempfile::Builder::new()
            .prefix(&temp_name(kind))
            .suffix(suffix)
            .tempfile_in(dir)
            .map_err(|e| Error::io("creating a temporary file", dir, e))?;
        let _ = f.as_file().try_lock();
        let path = f.path().to_path_buf();
        register(&path);
        Ok(TempFile { inner: Some(f), path })
    }
    /// The open file.
    pub fn file(&mut self) -> &mut File {
        self.inner.as_mut().expect("temporary file is open").as_file_mut()
    }
    /// Its current path.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Makes it readable by everyone and renames it to `dest`.
    pub fn persist(mut self, dest: &Path) -> Result<()> {
        let f = self.inner.take().expect("temporary file is open");
        readable(f.as_file(), dest)?;
        let r = f.persist(dest).map(|_| ()).map_err(|e| Error::io("writing", dest, e.error));
        unregister(&self.path);
        r
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        unregister(&self.path);
    }
}

/// A temporary folder, removed on drop or on a signal. (It holds no lock of
/// its own: a folder's lock belongs to what is written in it, such as an OCI
/// layout's `index.json` update.)
pub struct TempDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl TempDir {
    /// Creates `.wso2img-<kind>-<pid>-XXXX` in `parent`.
    pub fn new_in(parent: &Path, kind: &str) -> Result<TempDir> {
        let dir = tempfile::Builder::new()
            .prefix(&temp_name(kind))
            .tempdir_in(parent)
            .map_err(|e| Error::io("creating a temporary folder", parent, e))?;
        let path = dir.path().to_path_buf();
        register(&path);
        Ok(TempDir { dir: Some(dir), path })
    }
    /// Creates one in the system's temporary folder, first removing what
    /// interrupted runs left there.
    pub fn new(kind: &str) -> Result<TempDir> {
        let tmp = std::env::temp_dir();
        sweep(&tmp);
        Self::new_in(&tmp, kind)
    }
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for TempDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TempDir({})", self.path.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
        unregister(&self.path);
    }
}

/// Whether the process `pid` is alive (in this PID namespace).
fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    // Pid 0 names our own process group: alive, as `kill(0, 0)` says.
    let Some(pid) = rustix::process::Pid::from_raw(pid) else { return true };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Removes the leftovers of interrupted runs in `dir`: `.wso2img-*` entries
/// whose process is gone and whose lock nobody holds. Returns how many.
pub fn sweep(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else { continue };
        let Some(pid) = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() || alive(pid) {
            continue;
        }
        let path = e.path();
        let Ok(f) = File::open(&path) else { continue };
        if f.try_lock().is_err() {
            continue;
        }
        let gone = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        if gone.is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Installs a SIGINT/SIGTERM handler that removes every live temporary file
/// and folder, then exits with 128 + the signal number.
pub fn install_signal_cleanup() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else { return };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let live: Vec<PathBuf> = registry().lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
            for p in live {
                let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            }
            eprintln!("wso2img: interrupted; temporary files removed");
            std::process::exit(128 + sig);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(Target::of(Path::new("-")), Target::Stdout);
        assert_eq!(Target::of(Path::new("/dev/stdout")), Target::Stdout);
        assert_eq!(Target::of(Path::new("/dev/stderr")), Target::Stderr);
        assert_eq!(Target::of(Path::new("/dev/null")), Target::InPlace("/dev/null".into()));
        assert_eq!(Target::of(Path::new("/nonexistent/x")), Target::Replace("/nonexistent/x".into()));
    }

    #[test]
    fn sweep_removes_only_dead_unlocked_leftovers() {
        let d = tempfile::tempdir().unwrap();
        let dead = d.path().join(".wso2img-staging-999999999-abc");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("x"), b"x").unwrap();
        let live = TempDir::new_in(d.path(), "staging").unwrap();
        let other = d.path().join(".wso2img-tmp-1-abc");
        fs::write(&other, b"init is alive").unwrap();
        assert_eq!(sweep(d.path()), 1);
        assert!(!dead.exists() && live.path().exists() && other.exists());
    }

    #[test]
    fn check_output_refuses_missing_or_folder() {
        let d = tempfile::tempdir().unwrap();
        assert!(check_output(&d.path().join("a/b.json"), "--sbom").unwrap_err().to_string().contains("does not exist"));
        assert!(check_output(d.path(), "--sbom").is_err());
        check_output(&d.path().join("ok.json"), "--sbom").unwrap();
        check_output(Path::new("/dev/null"), "--sbom").unwrap();
    }
}
