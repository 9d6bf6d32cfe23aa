//! A big source file mapped into memory a window at a time, so that its
//! bytes are hashed where the page cache holds them instead of being copied
//! out by `read` first (the copy costs about a fifth of hashing two streams
//! on a core). Windows keep what is mapped at once — and counted in the
//! process's resident memory — small, however big the file.
//!
//! A mapped file that shrinks while it is read would kill the process with
//! `SIGBUS` at the first page past its new end. A handler installed once
//! (chaining to whatever handled `SIGBUS` before, such as Rust's
//! stack-overflow report) maps a page of zeros over any such page of a
//! mapping made here and marks the mapping [`Mapped::cut_short`]; the reader
//! then fails the file as changed, as it does a file that `read` found
//! shorter.

use std::fs::File;

/// Bytes mapped at once per file, at most (a multiple of any page size).
pub const WINDOW: u64 = 2 << 20;

/// `len` bytes of a file from a multiple of [`WINDOW`], mapped read-only.
pub struct Mapped {
    ptr: *const u8,
    len: usize,
    slot: &'static guard::Slot,
}

// SAFETY: the mapping is read-only memory owned by this value alone.
unsafe impl Send for Mapped {}
// SAFETY: see `Send`; nothing is mutated through `&Mapped`.
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps `len` bytes (at most a [`WINDOW`]) of `file` from `at` (a
    /// multiple of it), its pages read in at once. `None` where it cannot be
    /// mapped safely or at all (no `SIGBUS` guard free, a file system
    /// without `mmap`, nothing to map): the caller reads it instead.
    pub fn map(file: &File, at: u64, len: u64) -> Option<Mapped> {
        use std::os::fd::AsRawFd;
        debug_assert!(at.is_multiple_of(WINDOW) && len <= WINDOW);
        let offset = libc::off_t::try_from(at).ok()?;
        let len = usize::try_from(len).ok().filter(|&n| n > 0)?;
        let slot = guard::claim()?;
        // SAFETY: a fresh read-only private mapping of an open descriptor;
        // the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            slot.release();
            return None;
        }
        slot.cover(ptr as usize, len);
        Some(Mapped { ptr: ptr as *const u8, len, slot })
    }

    /// The mapped bytes. Pages past the end of a file that shrank read as
    /// zeros (see [`Mapped::cut_short`]).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` stays mapped and readable until drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Whether a page of it lay past the file's end when read (the file
    /// shrank after it was mapped).
    pub fn cut_short(&self) -> bool {
        self.slot.hit()
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        self.slot.release();
        // SAFETY: unmaps exactly what `map` mapped; no slice of it outlives
        // `self`.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// The `SIGBUS` handler and the table of mappings it covers, lock-free so
/// that the handler may read it.
mod guard {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    /// One mapping the handler covers (`start` 0: none).
    pub(super) struct Slot {
        taken: AtomicBool,
        start: AtomicUsize,
        len: AtomicUsize,
        hit: AtomicBool,
    }

    impl Slot {
        /// Covers `start..start+len`.
        pub(super) fn cover(&self, start: usize, len: usize) {
            self.len.store(len, Ordering::SeqCst);
            self.start.store(start, Ordering::SeqCst);
        }

        pub(super) fn hit(&self) -> bool {
            self.hit.load(Ordering::SeqCst)
        }

        /// Stops covering the mapping (before it is unmapped) and frees the slot.
        pub(super) fn release(&self) {
            self.start.store(0, Ordering::SeqCst);
            self.hit.store(false, Ordering::SeqCst);
            self.taken.store(false, Ordering::SeqCst);
        }
    }

    /// Mappings that can be open at once (one per layer being hashed; a
    /// writer's stream never maps); more are read instead.
    const SLOTS: usize = 64;

    #[allow(clippy::declare_interior_mutable_const)]
    const FREE: Slot = Slot {
        taken: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        hit: AtomicBool::new(false),
    };
    static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
    /// The page size, and whether the handler is installed.
    static INSTALLED: OnceLock<Option<usize>> = OnceLock::new();
    /// The `SIGBUS` action before ours, to pass other faults on to.
    static mut PREVIOUS: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::uninit();

    /// A free slot, the handler installed; `None` when it cannot be.
    pub(super) fn claim() -> Option<&'static Slot> {
        INSTALLED.get_or_init(install).as_ref()?;
        TABLE.iter().find(|s| s.taken.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_ok())
    }

    fn install() -> Option<usize> {
        // SAFETY: sysconf has no preconditions.
        let page =
            usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok().filter(|p| p.is_power_of_two())?;
        // SAFETY: a zeroed sigaction is valid; `on_sigbus` has the
        // SA_SIGINFO signature; PREVIOUS is written here once (this runs
        // once), before `on_sigbus` is installed to read it.
        unsafe {
            let previous = std::ptr::addr_of_mut!(PREVIOUS).cast::<libc::sigaction>();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), previous) != 0 {
                return None;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
                return None;
            }
        }
        Some(page)
    }

    /// A fault inside a covered mapping: a page of zeros goes over the
    /// faulting page, the mapping is marked, and the read goes on. Any
    /// other fault goes to the previous handler, or kills the process as it
    /// would have.
    extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
        let addr = unsafe { (*info).si_addr() } as usize;
        let page = INSTALLED.get().copied().flatten().unwrap_or(4096);
        for s in &TABLE {
            let start = s.start.load(Ordering::SeqCst);
            if start != 0 && addr >= start && addr - start < s.len.load(Ordering::SeqCst) {
                let at = addr & !(page - 1);
                // SAFETY: replaces one page of a mapping this module made
                // (and unmaps only after releasing the slot) with zeros.
                let zero = unsafe {
                    libc::mmap(
                        at as *mut libc::c_void,
                        page,
                        libc::PROT_READ,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                        -1,
                        0,
                    )
                };
                if zero != libc::MAP_FAILED {
                    s.hit.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
        // SAFETY: PREVIOUS was written before this handler was installed.
        unsafe {
            let previous = &*std::ptr::addr_of!(PREVIOUS).cast::<libc::sigaction>();
            match previous.sa_sigaction {
                libc::SIG_IGN => {}
                libc::SIG_DFL => {
                    libc::signal(sig, libc::SIG_DFL);
                }
                f if previous.sa_flags & libc::SA_SIGINFO != 0 => {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(f);
                    f(sig, info, ctx);
                }
                f => {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(f);
                    f(sig);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_mapped_file_reads_as_its_bytes() {
        let mut f = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 13) as u8).collect();
        f.write_all(&bytes).unwrap();
        let m = Mapped::map(&f, 0, bytes.len() as u64).expect("a regular file maps");
        assert!(m.bytes() == &bytes[..]);
        assert!(!m.cut_short());
        assert!(Mapped::map(&f, 0, 0).is_none(), "nothing to map");
    }

    /// A file cut short while mapped reads as zeros past its new end, marks
    /// the mapping, and does not bring the process down.
    #[test]
    fn a_file_cut_short_while_mapped_reads_zeros_and_is_marked() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![7u8; 1 << 20]).unwrap();
        let m = Mapped::map(&f, 0, 1 << 20).unwrap();
        f.set_len(10_000).unwrap();
        let bytes = m.bytes();
        assert_eq!(bytes[9_999], 7);
        assert_eq!(bytes[(1 << 20) - 1], 0);
        assert!(m.cut_short());
        let sum: u64 = bytes.iter().map(|&b| u64::from(b)).sum();
        assert!(sum < 7 * 16_384, "past the end reads as zeros");
        drop(m);
        let again = Mapped::map(&f, 0, 10_000).unwrap();
        assert!(!again.cut_short(), "a released slot starts clean");
    }

    #[test]
    fn a_window_past_the_first_maps_its_own_bytes() {
        let mut f = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..WINDOW + 5000).map(|i| (i % 251) as u8).collect();
        f.write_all(&bytes).unwrap();
        let m = Mapped::map(&f, WINDOW, 5000).unwrap();
        assert!(m.bytes() == &bytes[WINDOW as usize..]);
    }
}
