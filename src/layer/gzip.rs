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
    Chunk(Receiver<Deflated>),
    Trailer([u8; 8]),
}

struct Job {
    data: Vec<u8>,
    /// Where to deflate it (scratch space, reused).
    out: Vec<u8>,
    last: bool,
    reply: SyncSender<Deflated>,
}

/// A chunk's deflate bytes: the first `len` bytes of `buf`.
struct Deflated {
    buf: Vec<u8>,
    len: usize,
}

/// Buffers handed back once used, so that a layer's chunks reuse a few
/// buffers instead of allocating two megabytes per chunk. Every buffer is
/// allocated by the thread that writes into the stream, so that they all
/// come from (and go back to) its allocator arena, not one per worker.
#[derive(Default)]
struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn give(&self, buf: Vec<u8>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(buf);
    }
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
    /// Input chunks the workers are done with.
    inputs: Arc<Pool>,
    /// Output buffers the writer is done with.
    outputs: Arc<Pool>,
}

impl<W: Write + Send + 'static> ParallelGzip<W> {
    /// Starts compressing into `out` with `threads` deflate workers.
    pub fn new(mut out: W, threads: usize) -> Self {
        let threads = threads.max(1);
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let inputs = Arc::new(Pool::default());
        let outputs = Arc::new(Pool::default());
        let workers = (0..threads)
            .map(|_| {
                let (rx, inputs) = (job_rx.clone(), inputs.clone());
                thread::spawn(move || {
                    let mut c = CompressorOxide::new(create_comp_flags_from_zip_params(LEVEL as i32, -15, 0));
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => match guard.recv() {
                                Ok(j) => j,
                                Err(_) => return,
                            },
                            Err(_) => return,
                        };
                        let mut buf = job.out;
                        let len = deflate_chunk(&mut c, &job.data, job.last, &mut buf);
                        inputs.give(job.data);
                        let _ = job.reply.send(Deflated { buf, len });
                    }
                })
            })
            .collect();
        let (piece_tx, piece_rx) = mpsc::sync_channel::<Piece>(threads * 2);
        let written = outputs.clone();
        let writer = thread::spawn(move || -> io::Result<W> {
            out.write_all(&HEADER)?;
            for piece in piece_rx {
                match piece {
                    Piece::Chunk(rx) => {
                        let d = rx.recv().map_err(|_| io::Error::other("a compression worker stopped"))?;
                        out.write_all(&d.buf[..d.len])?;
                        written.give(d.buf);
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
            inputs,
            outputs,
        }
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        let next = if last {
            Vec::new()
        } else {
            let mut b = self.inputs.take().unwrap_or_else(|| Vec::with_capacity(CHUNK));
            b.clear();
            b
        };
        let data = std::mem::replace(&mut self.buf, next);
        let out = self.outputs.take().unwrap_or_else(|| vec![0; CHUNK + CHUNK / 8 + 1024]);
        let (reply, rx) = mpsc::sync_channel(1);
        let sent = self.pieces.as_ref().map(|p| p.send(Piece::Chunk(rx)).is_ok()).unwrap_or(false)
            && self.jobs.as_ref().map(|j| j.send(Job { data, out, last, reply }).is_ok()).unwrap_or(false);
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

/// Deflates one chunk as raw deflate into `out` with `c`, or stores it
/// when it is incompressible; byte-aligned at the end, final only if it is
/// the last. The deflate bytes are the first ones of `out` (their number is
/// returned); the rest of it is scratch space kept for the next chunk.
fn deflate_chunk(c: &mut CompressorOxide, data: &[u8], last: bool, out: &mut Vec<u8>) -> usize {
    if data.len() >= SAMPLE {
        let probe = compress_raw(c, &data[..SAMPLE], true, out);
        if probe * 100 >= SAMPLE * 98 {
            return stored(data, last, out);
        }
    }
    compress_raw(c, data, last, out)
}

/// Deflate stored blocks (at most 65,535 bytes each) holding `data`, at
/// the start of `out`; returns their length.
fn stored(data: &[u8], last: bool, out: &mut Vec<u8>) -> usize {
    let need = data.len() + data.len().div_ceil(65_535).max(1) * 5;
    if out.len() < need {
        out.resize(need, 0);
    }
    if data.is_empty() {
        out[..5].copy_from_slice(&[last as u8, 0, 0, 0xff, 0xff]);
        return 5;
    }
    let mut at = 0;
    let mut blocks = data.chunks(65_535).peekable();
    while let Some(b) = blocks.next() {
        let fin = last && blocks.peek().is_none();
        let len = b.len() as u16;
        out[at] = fin as u8;
        out[at + 1..at + 3].copy_from_slice(&len.to_le_bytes());
        out[at + 3..at + 5].copy_from_slice(&(!len).to_le_bytes());
        out[at + 5..at + 5 + b.len()].copy_from_slice(b);
        at += 5 + b.len();
    }
    at
}

/// Deflates `data` with miniz_oxide at [`LEVEL`] (`c`, reset first) into
/// the start of `out`, growing it as needed; returns the length.
fn compress_raw(c: &mut CompressorOxide, data: &[u8], last: bool, out: &mut Vec<u8>) -> usize {
    c.reset();
    let need = data.len() + data.len() / 8 + 1024;
    if out.len() < need {
        out.resize(need, 0);
    }
    let flush = if last { TDEFLFlush::Finish } else { TDEFLFlush::Sync };
    let (mut inp, mut outp) = (0usize, 0usize);
    loop {
        let (status, ni, no) = compress(c, &data[inp..], &mut out[outp..], flush);
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
    outp
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
        let mut out = Vec::new();
        assert_eq!(stored(&[], true, &mut out), 5);
        assert_eq!(out[..5], [1, 0, 0, 0xff, 0xff]);
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
