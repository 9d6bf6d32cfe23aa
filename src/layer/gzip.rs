//! Deterministic parallel gzip, pigz-style.
//!
//! The input is cut into fixed-size chunks; each chunk is deflated on its own
//! (no shared dictionary) by a pool of threads with the pinned pure-Rust
//! `miniz_oxide`, ending in a sync flush so the pieces concatenate into one
//! valid deflate stream. A chunk whose first 64 KiB do not shrink by 2 % at
//! level 1 (jars are already deflated) is stored instead of compressed —
//! a decision made from the bytes alone, so still deterministic. The output therefore depends only on the input bytes,
//! the chunk size and the level — never on the number of threads or timing.
//! Memory is bounded: at most a few chunks are in flight.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};

/// Uncompressed bytes per independently deflated chunk. Part of the output
/// format: changing it changes every compressed digest.
pub const CHUNK: usize = 1 << 20;
/// Deflate level. Part of the output format too. Level 1 because layers are
/// mostly jars, which are already deflated: higher levels gain about 1 %.
pub const LEVEL: u8 = 1;

/// The fixed gzip header: no name, mtime 0, no extra flags, OS "unknown".
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

enum Piece {
    Chunk(Receiver<Vec<u8>>),
    Trailer([u8; 8]),
}

struct Job {
    data: Vec<u8>,
    last: bool,
    reply: SyncSender<Vec<u8>>,
}

/// A `Write` that gzips into `W` on a pool of threads.
pub struct ParallelGzip<W: Write + Send + 'static> {
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    len: u64,
    jobs: Option<SyncSender<Job>>,
    pieces: Option<SyncSender<Piece>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> ParallelGzip<W> {
    /// Starts compressing into `out` with `threads` deflate workers.
    pub fn new(mut out: W, threads: usize) -> Self {
        let threads = threads.max(1);
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = job_rx.clone();
                thread::spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(guard) => match guard.recv() {
                            Ok(j) => j,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    let _ = job.reply.send(deflate_chunk(&job.data, job.last));
                })
            })
            .collect();
        let (piece_tx, piece_rx) = mpsc::sync_channel::<Piece>(threads * 2);
        let writer = thread::spawn(move || -> io::Result<W> {
            out.write_all(&HEADER)?;
            for piece in piece_rx {
                match piece {
                    Piece::Chunk(rx) => {
                        let data = rx.recv().map_err(|_| io::Error::other("a compression worker stopped"))?;
                        out.write_all(&data)?;
                    }
                    Piece::Trailer(t) => {
                        out.write_all(&t)?;
                        out.flush()?;
                        return Ok(out);
                    }
                }
            }
            Err(io::Error::other("compression stopped before the end of the layer"))
        });
        ParallelGzip {
            buf: Vec::with_capacity(CHUNK),
            crc: crc32fast::Hasher::new(),
            len: 0,
            jobs: Some(job_tx),
            pieces: Some(piece_tx),
            workers,
            writer: Some(writer),
        }
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, if last { Vec::new() } else { Vec::with_capacity(CHUNK) });
        let (reply, rx) = mpsc::sync_channel(1);
        let sent = self.pieces.as_ref().map(|p| p.send(Piece::Chunk(rx)).is_ok()).unwrap_or(false)
            && self.jobs.as_ref().map(|j| j.send(Job { data, last, reply }).is_ok()).unwrap_or(false);
        if sent {
            Ok(())
        } else {
            Err(self.writer_error())
        }
    }

    /// The writer thread's error after it stopped early.
    fn writer_error(&mut self) -> io::Error {
        self.jobs.take();
        self.pieces.take();
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("compression stopped"),
        }
    }

    /// Ends the stream (last chunk, CRC and length) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.clone().finalize().to_le_bytes());
        trailer[4..].copy_from_slice(&(self.len as u32).to_le_bytes());
        let sent = self.pieces.as_ref().map(|p| p.send(Piece::Trailer(trailer)).is_ok()).unwrap_or(false);
        if !sent {
            return Err(self.writer_error());
        }
        self.jobs.take();
        self.pieces.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(r)) => r,
            _ => Err(io::Error::other("the compression writer panicked")),
        }
    }
}

impl<W: Write + Send + 'static> Write for ParallelGzip<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        self.crc.update(data);
        self.len += n as u64;
        while !data.is_empty() {
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK {
                self.submit(false)?;
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for ParallelGzip<W> {
    fn drop(&mut self) {
        self.jobs.take();
        self.pieces.take();
    }
}

/// Bytes sampled to decide whether a chunk is worth compressing.
const SAMPLE: usize = 64 * 1024;

/// Deflates one chunk as raw deflate, or stores it when it is incompressible;
/// byte-aligned at the end, final only if it is the last.
fn deflate_chunk(data: &[u8], last: bool) -> Vec<u8> {
    if data.len() >= SAMPLE {
        let probe = compress_raw(&data[..SAMPLE], true);
        if probe.len() * 100 >= SAMPLE * 98 {
            return stored(data, last);
        }
    }
    compress_raw(data, last)
}

/// Deflate stored blocks (at most 65,535 bytes each) holding `data`.
fn stored(data: &[u8], last: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 65_535 * 5 + 10);
    let mut blocks = data.chunks(65_535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[last as u8, 0, 0, 0xff, 0xff]);
    }
    while let Some(b) = blocks.next() {
        let fin = last && blocks.peek().is_none();
        let len = b.len() as u16;
        out.push(fin as u8);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(b);
    }
    out
}

/// Deflates `data` with miniz_oxide at [`LEVEL`].
fn compress_raw(data: &[u8], last: bool) -> Vec<u8> {
    let flags = create_comp_flags_from_zip_params(LEVEL as i32, -15, 0);
    let mut c = CompressorOxide::new(flags);
    let mut out = vec![0u8; data.len() + data.len() / 8 + 1024];
    let flush = if last { TDEFLFlush::Finish } else { TDEFLFlush::Sync };
    let (mut inp, mut outp) = (0usize, 0usize);
    loop {
        let (status, ni, no) = compress(&mut c, &data[inp..], &mut out[outp..], flush);
        inp += ni;
        outp += no;
        match status {
            TDEFLStatus::Done => break,
            TDEFLStatus::Okay if inp == data.len() && outp < out.len() => break,
            TDEFLStatus::Okay => {
                let grow = out.len();
                out.resize(out.len() + grow, 0);
            }
            other => unreachable!("deflate of an in-memory buffer failed: {other:?}"),
        }
    }
    out.truncate(outp);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gz(data: &[u8], threads: usize) -> Vec<u8> {
        let mut g = ParallelGzip::new(Vec::new(), threads);
        for piece in data.chunks(77_777) {
            g.write_all(piece).unwrap();
        }
        g.finish().unwrap()
    }

    fn sample(n: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3 == 0 {
                    (x >> 24) as u8
                } else {
                    b"wso2 api manager "[i % 17]
                }
            })
            .collect()
    }

    #[test]
    fn incompressible_chunks_are_stored_and_still_decode() {
        let mut x: u64 = 7;
        let data: Vec<u8> = (0..3 * CHUNK + 999)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let out = gz(&data, 2);
        assert!(out.len() < data.len() + data.len() / 1000 + 64, "stored blocks add little: {}", out.len());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(stored(&[], true), [1, 0, 0, 0xff, 0xff]);
    }

    #[test]
    fn round_trips_and_ignores_thread_count() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345] {
            let data = sample(n);
            let one = gz(&data, 1);
            let four = gz(&data, 4);
            assert_eq!(one, four, "output depends on threads for n={n}");
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "n={n}");
            let mut multi = Vec::new();
            flate2::read::MultiGzDecoder::new(&one[..]).read_to_end(&mut multi).unwrap();
            assert_eq!(multi, data);
        }
    }
}
