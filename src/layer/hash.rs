//! Hashing many layers' tars at once: one layer at a time on each core of
//! the thread pool, each pulling its [`TarStream`] a piece at a time into
//! one sha256 (the `sha2` crate's, with the CPU's SHA extensions where it
//! has them). Layers are taken in the order given (biggest first, for
//! balance).

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::{LayerSpec, Look, TarDigest};
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
    // Each worker takes the next layer in order once it is free (a parallel
    // iterator over the layers would split them in halves instead).
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().min(specs.len());
    (0..workers).into_par_iter().with_max_len(1).for_each(|_| loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        let Some(spec) = specs.get(k) else { return };
        done(k, hash_one(spec, digests(k), look));
    });
}

/// Hashes one layer's tar (its read-ahead threads, if any, end with it).
fn hash_one(spec: &LayerSpec, digests: bool, look: Option<Look<'_>>) -> Result<Hashed> {
    std::thread::scope(|scope| {
        let mut stream = spec.stream(scope, digests, look);
        let mut hasher = Hasher::new();
        loop {
            let piece = stream.pull()?;
            if piece.is_empty() {
                break;
            }
            hasher.update(piece);
        }
        let (diff_id, size) = hasher.finish();
        Ok(Hashed { tar: TarDigest { diff_id, size }, digests: stream.take_digests() })
    })
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
            base_folders: Default::default(),
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

    /// Layers hashed on every core — of every size, one of many small files
    /// read ahead, one failing — give what their tars hash to, and the
    /// failure names its file without stopping the others.
    #[test]
    fn layers_hashed_at_once_hash_as_their_tars_do_and_one_failure_stays_its_own() {
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
        // It fails at once, while the other layers are being hashed.
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
