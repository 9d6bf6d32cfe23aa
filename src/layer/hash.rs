//! Hashing many layers' tars at once: every core hashes two layers side by
//! side, pulling a piece of each one's [`TarStream`] in turn and feeding
//! both to [`Hasher::update_pair`] — each SHA-NI round waits for the one
//! before, so two streams keep a core's sha256 unit up to 1.8 times as busy
//! as one. Layers are taken in the order given (biggest first, for balance).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::stream::TarStream;
use super::{threads, LayerSpec, Look, TarDigest};
use crate::digest::{Digest, Hasher};
use crate::error::Result;

/// What hashing a layer's tar found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    /// Its uncompressed identity.
    pub tar: TarDigest,
    /// The sha256 of its regular files, in [`LayerSpec::files`] order, when
    /// asked for.
    pub digests: Vec<Digest>,
}

/// Hashes the tars of `specs` on every core. `digests(k)` says whether
/// layer `k`'s files' digests are taken too; `look` sees every regular
/// file's source path and first bytes; `done(k, …)` hears of layer `k` as
/// soon as it is hashed (or failed), on the thread that hashed it.
pub fn hash_all<'a>(
    specs: &[&'a LayerSpec],
    digests: &(dyn Fn(usize) -> bool + Sync),
    look: Option<Look<'a>>,
    done: &(dyn Fn(usize, Result<Hashed>) + Sync),
) {
    let work = Work { specs, digests, look, done, next: AtomicUsize::new(0) };
    std::thread::scope(|scope| {
        for _ in 0..threads().min(specs.len()) {
            let work = &work;
            scope.spawn(move || work.run(scope));
        }
    });
}

struct Work<'w, 'a> {
    specs: &'w [&'a LayerSpec],
    digests: &'w (dyn Fn(usize) -> bool + Sync),
    look: Option<Look<'a>>,
    done: &'w (dyn Fn(usize, Result<Hashed>) + Sync),
    /// The next layer to take.
    next: AtomicUsize,
}

/// A layer one thread is hashing: `k` of the specs.
struct Running<'a> {
    k: usize,
    stream: TarStream<'a>,
    hasher: Hasher,
    /// How much of the stream's current piece is hashed.
    off: usize,
}

impl<'a> Work<'_, 'a> {
    /// One hashing thread: up to two layers at a time until none is left
    /// (their read-ahead threads run on `scope`). Of two layers' pieces,
    /// as many bytes of each as the shorter holds are hashed side by side;
    /// the rest waits for the other's next piece.
    fn run<'scope>(&self, scope: &'scope std::thread::Scope<'scope, '_>)
    where
        'a: 'scope,
    {
        let mut running: Vec<Running<'a>> = Vec::with_capacity(2);
        loop {
            while running.len() < 2 {
                let k = self.next.fetch_add(1, Ordering::Relaxed);
                let Some(spec) = self.specs.get(k) else { break };
                let stream = spec.stream(scope, (self.digests)(k), self.look);
                running.push(Running { k, stream, hasher: Hasher::new(), off: 0 });
            }
            if running.is_empty() {
                return;
            }
            if self.pull(&mut running) {
                continue;
            }
            match running.as_mut_slice() {
                [a, b] => {
                    let (x, y) = (&a.stream.piece()[a.off..], &b.stream.piece()[b.off..]);
                    let n = x.len().min(y.len());
                    Hasher::update_pair(&mut a.hasher, &x[..n], &mut b.hasher, &y[..n]);
                    a.off += n;
                    b.off += n;
                }
                [a] => {
                    let x = &a.stream.piece()[a.off..];
                    a.hasher.update(x);
                    a.off += x.len();
                }
                _ => {}
            }
        }
    }

    /// Every running layer whose piece is hashed pulls its next one; those
    /// that ended (or failed) are reported and dropped. Whether one was.
    fn pull(&self, running: &mut Vec<Running<'a>>) -> bool {
        let mut ended = false;
        let mut j = 0;
        while j < running.len() {
            let r = &mut running[j];
            if r.off < r.stream.piece().len() {
                j += 1;
                continue;
            }
            r.off = 0;
            let result = match r.stream.pull() {
                Ok(piece) if !piece.is_empty() => {
                    j += 1;
                    continue;
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            let mut r = running.remove(j);
            let result = result.map(|()| {
                let (diff_id, size) = r.hasher.finish();
                Hashed { tar: TarDigest { diff_id, size }, digests: r.stream.take_digests() }
            });
            drop(r.stream);
            (self.done)(r.k, result);
            ended = true;
        }
        ended
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::layer::{Owner, Placement, SourceEntry, SourceKind};
    use std::path::Path;
    use std::sync::Mutex;

    /// A layer of `files` (relative path, size) written under `dir`.
    pub(in crate::layer) fn spec(dir: &Path, name: &str, files: &[(&str, usize)]) -> LayerSpec {
        let placement = Placement {
            owner: Owner { uid: 1, gid: 1 },
            owned_root: "/".into(),
            file_mode: None,
            group_like_owner: false,
        };
        let mut s = LayerSpec::new(name, 1);
        for (rel, size) in files {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let bytes: Vec<u8> = (0..*size).map(|i| (i * 7 + rel.len()) as u8).collect();
            std::fs::write(&path, bytes).unwrap();
            let e = SourceEntry {
                path: path.clone(),
                rel: rel.to_string(),
                kind: SourceKind::File { size: *size as u64, executable: false },
                origin: None,
                key: None,
                head: None,
            };
            s.add(format!("/x/{rel}"), &e, &placement).unwrap();
        }
        s
    }

    /// Layers hashed two by two on each thread — of every size, one of many
    /// small files read ahead, one failing — give what their tars hash to
    /// alone, and the failure names its file without stopping the others.
    #[test]
    fn layers_hashed_in_pairs_hash_as_their_tars_do_and_one_failure_stays_its_own() {
        let d = tempfile::tempdir().unwrap();
        let many: Vec<(String, usize)> = (0..300).map(|i| (format!("t/{i:03}.css"), (i * 37) % 2000)).collect();
        let many: Vec<(&str, usize)> = many.iter().map(|(p, n)| (p.as_str(), *n)).collect();
        let specs = [
            spec(d.path(), "big", &[("a.jar", 3 << 20), ("b.jar", 1_234_567)]),
            spec(d.path(), "many", &many),
            spec(d.path(), "broken", &[("c-gone.jar", 10), ("c.jar", 700_000)]),
            spec(d.path(), "big2", &[("b2.jar", 900_000)]),
            spec(d.path(), "small", &[("d.jar", 100)]),
            spec(d.path(), "empty-file", &[("e.jar", 0)]),
        ];
        // It fails at once, next to a layer with a full buffer to hash.
        std::fs::remove_file(d.path().join("c-gone.jar")).unwrap();
        let refs: Vec<&LayerSpec> = specs.iter().collect();
        let got: Vec<Mutex<Option<Result<Hashed>>>> = refs.iter().map(|_| Mutex::new(None)).collect();
        hash_all(&refs, &|k| k % 2 == 1, None, &|k, r| *got[k].lock().unwrap() = Some(r));
        for (k, (s, g)) in specs.iter().zip(got).enumerate() {
            let g = g.into_inner().unwrap().expect("every layer is reported");
            if s.name == "broken" {
                let e = g.unwrap_err().to_string();
                assert!(e.contains("c-gone.jar: cannot read"), "{e}");
                continue;
            }
            let mut tar = Vec::new();
            let mut digests = Vec::new();
            s.write_tar_digesting(&mut tar, &mut digests).unwrap();
            let g = g.unwrap();
            assert_eq!(g.tar, TarDigest { diff_id: Digest::of(&tar), size: tar.len() as u64 }, "{}", s.name);
            assert_eq!(g.digests, if k % 2 == 1 { digests } else { Vec::new() }, "{}", s.name);
        }
    }
}
