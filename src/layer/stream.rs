//! A layer's tar as a stream the caller pulls a piece at a time
//! ([`TarStream::pull`]): headers and file bytes are laid out in the
//! stream's own buffer (small files copied from the read-ahead, bigger ones
//! read into it), so a piece the caller holds never changes under it, even
//! if a file is rewritten in place meanwhile.

use std::collections::btree_map;
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::thread::Scope;

use super::prefetch::{self, Prefetch, Taker};
use super::{
    cannot_read, changed_size, tar, threads, EntryKind, LayerEntry, LayerSpec, Look, Stamp, HEAD, STREAM_BUFFER,
};
use crate::digest::{Digest, Hasher};
use crate::error::Result;

/// A layer's tar, pulled a piece at a time.
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
    /// Where every piece is laid out.
    buf: Vec<u8>,
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
    Reading { f: File, stamp: Box<Stamp>, left: u64, head: Box<[u8; HEAD]>, held: usize, hasher: Option<Hasher> },
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
            buf: vec![0; STREAM_BUFFER],
        }
    }
}

impl<'a> TarStream<'a> {
    /// The next piece of the tar (at most [`STREAM_BUFFER`] bytes), empty
    /// once it ended; it stays as it is until the next call. Fails naming
    /// the file that cannot be read, or that changed size since it was
    /// planned.
    pub fn pull(&mut self) -> Result<&[u8]> {
        let mut buf = std::mem::take(&mut self.buf);
        let filled = self.fill_into(&mut buf);
        self.buf = buf;
        Ok(&self.buf[..filled?])
    }

    /// Lays out the next bytes of the tar in `buf`: fewer than it holds
    /// only when the tar ends.
    fn fill_into(&mut self, buf: &mut [u8]) -> Result<usize> {
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
            _ => self.open(source, *size)?,
        };
        self.file = Some(Current { source, size: *size, bytes });
        Ok(())
    }

    /// Opens a file to read its bytes into the stream's buffer.
    fn open(&self, source: &'a Path, size: u64) -> Result<Bytes> {
        let f = File::open(source).map_err(|e| cannot_read(source, &e))?;
        let stamp = Stamp::of(&f).map_err(|e| cannot_read(source, &e))?;
        let hasher = self.digests.is_some().then(Hasher::new);
        Ok(Bytes::Reading { f, stamp: Box::new(stamp), left: size, head: Box::new([0; HEAD]), held: 0, hasher })
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
            Bytes::Reading { f, left, head, held, hasher, .. } => {
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

    /// Ends the current file: a file read here (not taken from
    /// the read-ahead, which checked it) is looked at and must still have
    /// its planned size, none of its planned bytes missing.
    fn end_file(&mut self) -> Result<()> {
        let cur = self.file.take().expect("a file is being handed out");
        let (f, missing, hasher) = match cur.bytes {
            Bytes::Fetched(_) => (None, false, None),
            Bytes::Reading { f, stamp, left, head, held, hasher } => {
                if let Some(look) = self.look {
                    look(cur.source, &head[..held]);
                }
                (Some((f, stamp)), left != 0, hasher)
            }
        };
        if let Some((f, stamp)) = f {
            let now = f.metadata().map_err(|e| cannot_read(cur.source, &e))?.len();
            if missing || now != cur.size {
                return Err(changed_size(cur.source, cur.size, now));
            }
            stamp.check(&f, cur.source)?;
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

    /// Pulled a piece at a time — headers and padding split across pieces,
    /// files read here and read ahead — the stream is the tar, and the look
    /// sees each file's first bytes.
    #[test]
    fn a_stream_pulled_piece_by_piece_is_the_tar() {
        let d = tempfile::tempdir().unwrap();
        let names: Vec<(String, usize)> = (0..400).map(|i| (format!("t/{i:03}/x.css"), (i * 1031) % 3000)).collect();
        let mut files: Vec<(&str, usize)> = names.iter().map(|(p, n)| (p.as_str(), *n)).collect();
        // Big files: three pieces (the last short), below a piece, exactly
        // one piece, and several megabytes.
        files.extend([
            ("big.jar", 700_001),
            ("mid.jar", 200_000),
            ("one.jar", STREAM_BUFFER),
            ("two.jar", (2 << 20) + 300_000),
        ]);
        let spec = crate::layer::hash::tests::spec(d.path(), "mixed", &files);
        let mut want = Vec::new();
        let mut want_digests = Vec::new();
        spec.write_tar_digesting(&mut want, &mut want_digests).unwrap();
        let mut by_hand = tar_by_hand(&spec);
        assert!(want == by_hand, "the stream is the tar the tar module writes entry by entry");
        by_hand.clear();
        let looked = std::sync::Mutex::new(0);
        let look = |source: &Path, first: &[u8]| {
            let all = std::fs::read(source).unwrap();
            assert!(all.starts_with(first) && first.len() >= HEAD.min(all.len()), "{}", source.display());
            *looked.lock().unwrap() += 1;
        };
        let mut got = Vec::new();
        let digests = std::thread::scope(|scope| {
            let mut stream = spec.stream(scope, true, Some(&look));
            loop {
                let piece = stream.pull().unwrap();
                if piece.is_empty() {
                    break;
                }
                assert!(piece.len() <= STREAM_BUFFER);
                got.extend_from_slice(piece);
            }
            stream.take_digests()
        });
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the pieces differ from the tar");
        assert_eq!(digests, want_digests);
        assert_eq!(*looked.lock().unwrap(), files.len());
    }

    /// The tar of `spec` written entry by entry with the tar module, whole
    /// files read with `std::fs::read`.
    fn tar_by_hand(spec: &LayerSpec) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, e) in spec.entries() {
            let dir_path = format!("{path}/");
            let (path, kind, size, link) = match &e.kind {
                EntryKind::Dir => (dir_path.as_str(), tar::EntryType::Dir, 0, ""),
                EntryKind::File { size, .. } => (path, tar::EntryType::File, *size, ""),
                EntryKind::Symlink { target } => (path, tar::EntryType::Symlink, 0, target.as_str()),
            };
            let h = tar::Header {
                path,
                kind,
                mode: e.mode,
                uid: e.owner.uid,
                gid: e.owner.gid,
                size,
                mtime: spec.mtime,
                link,
            };
            tar::write_header(&mut out, &h).unwrap();
            if let EntryKind::File { source, size } = &e.kind {
                out.extend(std::fs::read(source).unwrap());
                tar::pad(&mut out, *size).unwrap();
            }
        }
        tar::finish(&mut out).unwrap();
        out
    }

    /// A file read here (not read ahead) that grew or shrank since
    /// it was planned fails the stream, naming it with both sizes.
    #[test]
    fn a_streamed_file_that_changed_size_fails_naming_it() {
        for (now, planned) in [(700_001, 700_000), (700_000, 700_001), (200_001, 200_000), (200_000, 200_001)] {
            let d = tempfile::tempdir().unwrap();
            let spec = crate::layer::hash::tests::spec(d.path(), "big", &[("big.jar", planned)]);
            std::fs::write(d.path().join("big.jar"), vec![1u8; now]).unwrap();
            let e = std::thread::scope(|scope| {
                let mut stream = spec.stream(scope, false, None);
                loop {
                    match stream.pull() {
                        Ok([]) => panic!("the tar ended without noticing big.jar changed"),
                        Ok(_) => {}
                        Err(e) => break e.to_string(),
                    }
                }
            });
            assert!(e.contains("big.jar: changed while the image was being built"), "{e}");
            assert!(e.contains(&format!("({planned} bytes planned, {now} now)")), "{e}");
        }
    }

    /// A big file cut short while its pieces are being handed out fails
    /// the stream, naming it.
    #[test]
    fn a_big_file_cut_short_midway_fails_the_stream() {
        let d = tempfile::tempdir().unwrap();
        let size = 3 << 20;
        let spec = crate::layer::hash::tests::spec(d.path(), "big", &[("big.jar", size)]);
        let e = std::thread::scope(|scope| {
            let mut stream = spec.stream(scope, false, None);
            let mut pieces = 0;
            loop {
                match stream.pull() {
                    Ok([]) => panic!("the tar ended without noticing big.jar was cut short"),
                    // Every byte is read, as hashing would.
                    Ok(piece) => {
                        std::hint::black_box(piece.iter().map(|&b| u64::from(b)).sum::<u64>());
                    }
                    Err(e) => break e.to_string(),
                }
                pieces += 1;
                if pieces == 2 {
                    let f = std::fs::OpenOptions::new().write(true).open(d.path().join("big.jar")).unwrap();
                    f.set_len(4096).unwrap();
                }
            }
        });
        assert!(e.contains("big.jar: changed while the image was being built"), "{e}");
        assert!(e.contains(&format!("({size} bytes planned, 4096 now)")), "{e}");
    }
}
