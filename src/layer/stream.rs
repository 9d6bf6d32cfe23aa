//! A layer's tar as a stream the caller pulls from ([`TarStream::fill`]):
//! headers are laid out here and file bytes read straight into the caller's
//! buffer (or copied from the read-ahead), so that a writer copies the
//! stream out and one thread can hash two layers side by side.

use std::collections::btree_map;
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::thread::Scope;

use super::prefetch::{self, Prefetch, Taker};
use super::{cannot_read, changed_size, tar, threads, EntryKind, LayerEntry, LayerSpec, Look, HEAD};
use crate::digest::{Digest, Hasher};
use crate::error::Result;

/// A layer's tar, pulled a buffer at a time.
pub struct TarStream<'a> {
    entries: btree_map::Iter<'a, String, LayerEntry>,
    mtime: u64,
    /// Header, padding or trailer bytes to hand out before anything else.
    head: Vec<u8>,
    head_at: usize,
    /// The regular file being handed out.
    file: Option<Current<'a>>,
    taker: Option<Taker<'a>>,
    digests: Option<Vec<Digest>>,
    look: Option<Look<'a>>,
    /// The end-of-archive marker was queued.
    ended: bool,
}

/// A regular file being handed out.
struct Current<'a> {
    source: &'a Path,
    size: u64,
    bytes: Bytes,
}

/// Where a regular file's bytes come from.
enum Bytes {
    /// Its bytes still to copy from the read-ahead.
    Fetched(Range<usize>),
    /// Being read; `left` bytes to go, `head` its first bytes, `hasher` its
    /// digest when digests are taken.
    Reading { f: File, left: u64, head: [u8; HEAD], held: usize, hasher: Option<Hasher> },
}

impl LayerSpec {
    /// The layer's tar as a stream. A layer of many small files has them
    /// read ahead on every core, on threads of `scope` that end when the
    /// stream is dropped. With `digests`, the stream also takes the sha256 of
    /// every regular file ([`TarStream::take_digests`]); `look` sees every regular
    /// file's source path and first bytes.
    pub fn stream<'a, 'scope>(
        &'a self,
        scope: &'scope Scope<'scope, '_>,
        digests: bool,
        look: Option<Look<'a>>,
    ) -> TarStream<'a>
    where
        'a: 'scope,
    {
        let small = self.files().filter(|(_, size)| *size <= prefetch::SMALL).count();
        let readers = threads();
        let taker = (small >= prefetch::MIN_FILES && readers >= 2)
            .then(|| Prefetch::start(self.files().collect(), readers, scope));
        TarStream {
            entries: self.entries.iter(),
            mtime: self.mtime,
            head: Vec::with_capacity(1024),
            head_at: 0,
            file: None,
            taker,
            digests: digests.then(Vec::new),
            look,
            ended: false,
        }
    }
}

impl<'a> TarStream<'a> {
    /// Fills `buf` with the next bytes of the tar; fewer than asked for only
    /// when the tar ends. Fails naming the file that cannot be read, or that
    /// changed size since it was planned.
    pub fn fill(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut at = 0;
        while at < buf.len() {
            if self.head_at < self.head.len() {
                let n = (self.head.len() - self.head_at).min(buf.len() - at);
                buf[at..at + n].copy_from_slice(&self.head[self.head_at..self.head_at + n]);
                (at, self.head_at) = (at + n, self.head_at + n);
            } else if self.file.is_some() {
                at += self.file_bytes(&mut buf[at..])?;
            } else if let Some((path, e)) = self.entries.next() {
                self.begin(path, e)?;
            } else if !self.ended {
                self.queue(|out| tar::finish(out).expect("writing to memory"));
                self.ended = true;
            } else {
                break;
            }
        }
        Ok(at)
    }

    /// The sha256 of every regular file handed out so far, in
    /// [`LayerSpec::files`] order (none unless asked for).
    pub fn take_digests(&mut self) -> Vec<Digest> {
        self.digests.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Queues header or padding bytes (the ones before were handed out).
    fn queue(&mut self, add: impl FnOnce(&mut Vec<u8>)) {
        self.head.clear();
        self.head_at = 0;
        add(&mut self.head);
    }

    /// Queues an entry's header and opens (or takes from the read-ahead) a
    /// regular file's bytes.
    fn begin(&mut self, entry_path: &str, e: &'a LayerEntry) -> Result<()> {
        let dir_path;
        let (path, kind, size, link) = match &e.kind {
            EntryKind::Dir => {
                dir_path = format!("{entry_path}/");
                (dir_path.as_str(), tar::EntryType::Dir, 0, "")
            }
            EntryKind::File { size, .. } => (entry_path, tar::EntryType::File, *size, ""),
            EntryKind::Symlink { target } => (entry_path, tar::EntryType::Symlink, 0, target.as_str()),
        };
        let h =
            tar::Header { path, kind, mode: e.mode, uid: e.owner.uid, gid: e.owner.gid, size, mtime: self.mtime, link };
        self.queue(|out| tar::write_header(out, &h).expect("writing to memory"));
        let EntryKind::File { source, size } = &e.kind else { return Ok(()) };
        let fetched = match self.taker.as_mut() {
            Some(t) => t.next_file()?,
            None => None,
        };
        let bytes = match (fetched, self.taker.as_ref()) {
            (Some(r), Some(t)) => {
                let bytes = t.bytes(r.clone());
                if let Some(look) = self.look {
                    look(source, bytes);
                }
                if let Some(d) = self.digests.as_mut() {
                    d.push(Digest::of(bytes));
                }
                Bytes::Fetched(r)
            }
            _ => Bytes::Reading {
                f: File::open(source).map_err(|e| cannot_read(source, &e))?,
                left: *size,
                head: [0; HEAD],
                held: 0,
                hasher: self.digests.is_some().then(Hasher::new),
            },
        };
        self.file = Some(Current { source, size: *size, bytes });
        Ok(())
    }

    /// Hands out the next bytes of the current file into `buf`; at its end,
    /// checks its size, notes its digest and queues its padding.
    fn file_bytes(&mut self, buf: &mut [u8]) -> Result<usize> {
        let cur = self.file.as_mut().expect("a file is being handed out");
        let n = match &mut cur.bytes {
            Bytes::Fetched(r) => {
                let taker = self.taker.as_ref().expect("fetched from the read-ahead");
                let n = r.len().min(buf.len());
                buf[..n].copy_from_slice(taker.bytes(r.start..r.start + n));
                r.start += n;
                if r.start == r.end {
                    self.end_file()?;
                }
                n
            }
            Bytes::Reading { f, left, head, held, hasher } => {
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n =
                    if want == 0 { 0 } else { f.read(&mut buf[..want]).map_err(|e| cannot_read(cur.source, &e))? };
                let more = n.min(HEAD - *held);
                head[*held..*held + more].copy_from_slice(&buf[..more]);
                *held += more;
                if let Some(h) = hasher {
                    h.update(&buf[..n]);
                }
                *left -= n as u64;
                if n == 0 || *left == 0 {
                    self.end_file()?;
                }
                n
            }
        };
        Ok(n)
    }

    /// Ends the current file: a file read here (not taken from the
    /// read-ahead, which checked it) is looked at and must still have its
    /// planned size, none of its planned bytes missing.
    fn end_file(&mut self) -> Result<()> {
        let cur = self.file.take().expect("a file is being handed out");
        if let Bytes::Reading { f, left, head, held, hasher } = cur.bytes {
            if let Some(look) = self.look {
                look(cur.source, &head[..held]);
            }
            let now = f.metadata().map_err(|e| cannot_read(cur.source, &e))?.len();
            if left != 0 || now != cur.size {
                return Err(changed_size(cur.source, cur.size, now));
            }
            if let (Some(d), Some(h)) = (self.digests.as_mut(), hasher) {
                d.push(h.finish().0);
            }
        }
        self.queue(|out| tar::pad(out, cur.size).expect("writing to memory"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pulled in pieces of any size — splitting headers, padding, files read
    /// here and files read ahead — the stream is the tar, and the look sees
    /// each file's first bytes.
    #[test]
    fn a_stream_pulled_in_odd_pieces_is_the_tar() {
        let d = tempfile::tempdir().unwrap();
        let names: Vec<(String, usize)> = (0..80).map(|i| (format!("t/{i:02}/x.css"), (i * 131) % 1500)).collect();
        let mut files: Vec<(&str, usize)> = names.iter().map(|(p, n)| (p.as_str(), *n)).collect();
        files.push(("big.jar", 700_001));
        let spec = crate::layer::hash::tests::spec(d.path(), "mixed", &files);
        let mut want = Vec::new();
        let mut want_digests = Vec::new();
        spec.write_tar_digesting(&mut want, &mut want_digests).unwrap();
        let looked = std::sync::Mutex::new(0);
        let look = |source: &Path, first: &[u8]| {
            let all = std::fs::read(source).unwrap();
            assert!(all.starts_with(first) && first.len() >= HEAD.min(all.len()), "{}", source.display());
            *looked.lock().unwrap() += 1;
        };
        let mut got = Vec::new();
        let digests = std::thread::scope(|scope| {
            let mut stream = spec.stream(scope, true, Some(&look));
            for piece in [1, 7, 511, 513, 4096, 100_000].into_iter().cycle() {
                let mut buf = vec![0u8; piece];
                let n = stream.fill(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                if n < piece {
                    break;
                }
            }
            stream.take_digests()
        });
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the pieces differ from the tar");
        assert_eq!(digests, want_digests);
        assert_eq!(*looked.lock().unwrap(), files.len());
    }

    /// A file read here (not read ahead) that grew or shrank since it was
    /// planned fails the stream, naming it with both sizes.
    #[test]
    fn a_streamed_file_that_changed_size_fails_naming_it() {
        for (now, planned) in [(700_001, 700_000), (700_000, 700_001)] {
            let d = tempfile::tempdir().unwrap();
            let spec = crate::layer::hash::tests::spec(d.path(), "big", &[("big.jar", planned)]);
            std::fs::write(d.path().join("big.jar"), vec![1u8; now]).unwrap();
            let e = std::thread::scope(|scope| {
                let mut stream = spec.stream(scope, false, None);
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    match stream.fill(&mut buf) {
                        Ok(n) if n < buf.len() => panic!("the tar ended without noticing big.jar changed"),
                        Ok(_) => {}
                        Err(e) => break e.to_string(),
                    }
                }
            });
            assert!(e.contains("big.jar: changed while the image was being built"), "{e}");
            assert!(e.contains(&format!("({planned} bytes planned, {now} now)")), "{e}");
        }
    }
}
