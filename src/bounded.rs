//! Bounded reads of anything a base or a registry controls. Every small
//! document (manifest, index, config, archive metadata, a file out of a base
//! layer) is read with a limit, so a hostile source that sends without end
//! costs a fixed amount of memory. Imports nothing from the crate.

use std::io::{self, Read};

/// The largest manifest or index, by tag or digest (what registries enforce).
pub const MANIFEST_MAX: u64 = 4 << 20;
/// The largest metadata file of an archive or layout (`manifest.json`,
/// `index.json`, a config read without a descriptor).
pub const METADATA_MAX: u64 = 8 << 20;
/// The largest config read by descriptor.
pub const CONFIG_MAX: u64 = 16 << 20;
/// The largest file read out of a base layer (`/etc/passwd`, version files), uncompressed.
pub const BASE_FILE_MAX: u64 = 1 << 20;

/// Reads all of `r`, failing with `InvalidData` once more than `max` bytes
/// arrive (at most `max + 1` bytes are ever held).
pub fn read_to_end_max(r: impl Read, max: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(max.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(out)
}

/// The error for a body or file over `max` bytes.
pub fn too_large(max: u64) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("larger than the {} limit", size_text(max)))
}

/// `4 MiB`, `512 KiB`, `100 B`: a limit as people read it.
pub fn size_text(n: u64) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_limit() {
        assert_eq!(read_to_end_max(&b"abc"[..], 3).unwrap(), b"abc");
        let e = read_to_end_max(io::repeat(7), 1 << 20).unwrap_err();
        assert_eq!(e.to_string(), "larger than the 1 MiB limit");
        assert_eq!(size_text(4 << 20), "4 MiB");
    }
}
