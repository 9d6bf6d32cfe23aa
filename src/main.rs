//! The `wso2img` binary: a thin command line over the library.

mod cli;

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

#[global_allocator]
static ALLOCATOR: Split = Split;

/// Blocks up to this size come from mimalloc, bigger ones from the system.
const SMALL_BLOCK: usize = 4096;

/// The allocator: small blocks from mimalloc, whose per-thread heaps let
/// every core allocate at once (walking 50,000 files makes a few small
/// allocations per file on each core, which contended on one glibc arena);
/// big blocks (read-ahead, compression and upload buffers) from glibc
/// with one arena, which hands them back promptly and keeps peak memory
/// low. Who owns a block follows from its size, which every call is given.
struct Split;

// SAFETY: each block is allocated, resized and freed by the allocator its
// size picks; a resize across the threshold moves the bytes between them.
unsafe impl GlobalAlloc for Split {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() <= SMALL_BLOCK {
            unsafe { MiMalloc.alloc(layout) }
        } else {
            let p = unsafe { System.alloc(layout) };
            huge_pages(p, layout.size());
            p
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() <= SMALL_BLOCK {
            unsafe { MiMalloc.alloc_zeroed(layout) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() <= SMALL_BLOCK {
            unsafe { MiMalloc.dealloc(ptr, layout) }
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (layout.size() <= SMALL_BLOCK, new_size <= SMALL_BLOCK) {
            (true, true) => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            _ => unsafe {
                let moved = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
                if !moved.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                moved
            },
        }
    }
}

/// Blocks of at least this size are backed by transparent huge pages where
/// the system allows it (`madvise`): one fault per 2 MiB instead of 512.
const HUGE_BLOCK: usize = 4 << 20;

/// Asks for huge pages over the 2 MiB-aligned part of the fresh block at `p`.
fn huge_pages(p: *mut u8, size: usize) {
    const HUGE: usize = 2 << 20;
    if p.is_null() || size < HUGE_BLOCK {
        return;
    }
    let start = (p as usize).next_multiple_of(HUGE);
    let end = (p as usize + size) / HUGE * HUGE;
    #[cfg(target_os = "linux")]
    if end > start {
        // SAFETY: the range lies inside the block just allocated; the advice
        // changes how its pages are backed, never their contents.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

fn main() -> std::process::ExitCode {
    one_malloc_arena();
    wso2img::files::install_signal_cleanup();
    cli::main()
}

/// One glibc malloc arena for every thread, for the big blocks [`Split`]
/// leaves to the system: the hashing, read-ahead, deflate and upload threads
/// each got their own arena otherwise, and the freed buffers scattered over
/// them kept a large build's resident size above 100 MB (measured: 127 MB →
/// 94 MB for a 1.2 GB push). Big blocks are allocated rarely (buffers are
/// reused), so sharing the arena costs no time.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it runs first thing
    // in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
