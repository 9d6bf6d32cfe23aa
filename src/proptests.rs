//! Property tests of every parser that reads what a base, a registry or a
//! customer folder controls (stable Rust's stand-in for a fuzzer): reference
//! and location parsing, `WWW-Authenticate`, manifests, indexes and configs,
//! base layers (tar, gzip or not), `docker save` archives and jars. Each runs
//! on arbitrary bytes and on mutations of valid inputs, and must return a
//! value or an error — never panic — and never hand back more than the
//! bounds of [`crate::bounded`]. 256 cases each by default; set
//! `PROPTEST_CASES` for a longer run.

use std::io::Write;

use proptest::collection::vec;
use proptest::prelude::{any, prop_assert, proptest, Just, Strategy};
use proptest::prop_oneof;

use crate::bounded::BASE_FILE_MAX;
use crate::digest::Digest;
use crate::image::{media, Blob, Index, Manifest, Platform};
use crate::reference::{Location, Reference};
use crate::transport::registry::auth::parse_challenge;
use crate::transport::{archive, base_image, list_base_dir, read_base_file, BaseImage, BaseLayer};
use crate::wso2::sample::SampleBase;

/// The largest single allocation any parser may make on these small inputs:
/// more would mean a size field from the input was trusted.
const ALLOCATION_MAX: usize = 32 << 20;

/// The system allocator, remembering per thread the largest request since
/// [`largest_allocation`] last asked.
struct Watching;

thread_local! {
    static LARGEST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl std::alloc::GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(layout.size())));
        // SAFETY: same layout, same contract.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(new_size)));
        // SAFETY: as for `dealloc`.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;

/// The largest allocation this thread made since the last call.
fn largest_allocation() -> usize {
    LARGEST.with(|l| l.replace(0))
}

/// Bytes that look like `valid`, changed at a few places: flipped, cut short or extended.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len().max(1);
    (vec((0..len, any::<u8>()), 0..8), 0..=len, vec(any::<u8>(), 0..64)).prop_map(move |(flips, cut, tail)| {
        let mut b = valid.clone();
        for (at, v) in flips {
            if at < b.len() {
                b[at] ^= v;
            }
        }
        b.truncate(cut.max(1));
        b.extend(tail);
        b
    })
}

/// A plain tar of `files` (path, bytes).
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_path(p).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A one-layer base whose layer is `bytes` (gzip or plain, as `gzipped` says).
fn image_with_layer(bytes: Vec<u8>, gzipped: bool) -> BaseImage {
    let media_type = if gzipped { media::OCI_LAYER_GZIP } else { media::DOCKER_LAYER_TAR };
    BaseImage {
        platform: Platform::new("linux", "amd64", None),
        manifest_digest: None,
        config: b"{}".to_vec(),
        config_json: serde_json::json!({}),
        layers: vec![BaseLayer { diff_id: Digest::of(b""), blob: Blob::bytes(media_type, bytes) }],
    }
}

fn valid_layer() -> Vec<u8> {
    tar_of(&[
        ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nwso2carbon:x:802:802::/home/wso2carbon:/bin/sh\n"),
        ("home/wso2carbon/wso2am-4.3.0/bin/api-manager.sh", b"#!/bin/sh\n"),
        ("home/wso2carbon/.wh.old", b""),
    ])
}

fn layer_input() -> impl Strategy<Value = (Vec<u8>, bool)> {
    let plain = valid_layer();
    let gz = gzip(&plain);
    prop_oneof![
        vec(any::<u8>(), 0..2048).prop_map(|b| (b, false)),
        mutated(plain).prop_map(|b| (b, false)),
        mutated(gz).prop_map(|b| (b, true)),
    ]
}

fn sample_archive() -> Vec<u8> {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.tar");
    let image = SampleBase::v410().image_set().unwrap().images.remove(0);
    let tag = Reference::parse("wso2/wso2am:4.1.0").unwrap();
    archive::destination::write(&p, &[(vec![tag], image)], "sample").unwrap();
    std::fs::read(p).unwrap()
}

fn read_archive(bytes: &[u8]) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("base.tar");
    std::fs::write(&p, bytes).unwrap();
    let loc: Location = format!("docker-archive:{}", p.display()).parse().unwrap();
    if let Ok(base) = archive::read_base(&loc, &p, None) {
        for img in &base.images {
            let _ = read_base_file(img, "etc/passwd");
            let _ = list_base_dir(img, "home/wso2carbon");
        }
    }
}

fn valid_manifest() -> Vec<u8> {
    let set = SampleBase::v430().image_set().unwrap();
    set.images[0].manifest.read_all().unwrap()
}

fn valid_config() -> Vec<u8> {
    let set = SampleBase::v430().image_set().unwrap();
    set.images[0].config.read_all().unwrap()
}

fn jar_bytes() -> Vec<u8> {
    include_bytes!("../tests/golden/jars/acme-request-id-1.2.0.jar").to_vec()
}

fn inspect_jar(bytes: &[u8]) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x-1.0.jar");
    std::fs::write(&p, bytes).unwrap();
    let _ = crate::wso2::jar::inspect(&p, "jars/x-1.0.jar");
    let _ = crate::wso2::jar::contents(&p, "jars/x-1.0.jar", crate::wso2::jar::LIMITS);
}

/// The golden jar nested in a jar, twice: stored and deflated.
fn nested_jar_bytes() -> Vec<u8> {
    crate::wso2::jar::tests::zip_raw(&[
        crate::wso2::jar::tests::Raw::stored("BOOT-INF/lib/a-1.0.jar", &jar_bytes()),
        crate::wso2::jar::tests::Raw::deflated("WEB-INF/lib/b-1.0.jar", &jar_bytes()),
    ])
}

proptest! {
    #[test]
    fn references_and_locations_never_panic(s in "\\PC{0,80}|[a-zA-Z0-9:/@._-]{0,80}") {
        largest_allocation();
        if let Ok(r) = Reference::parse(&s) {
            prop_assert!(r.registry.len() + r.repository.len() < 300);
            let again = Reference::parse(&r.to_string());
            prop_assert!(again.is_ok(), "{} does not parse back", r);
        }
        let _ = s.parse::<Location>();
        let _ = crate::reference::is_public_registry(&s, std::slice::from_ref(&s));
        prop_assert!(largest_allocation() <= ALLOCATION_MAX);
    }

    #[test]
    fn challenges_never_panic(s in "\\PC{0,120}|(Bearer|Basic) ((realm|service|scope)=\"?[^\"]{0,20}\"?,?){0,4}") {
        largest_allocation();
        let _ = parse_challenge(&s);
        prop_assert!(largest_allocation() <= ALLOCATION_MAX);
    }

    #[test]
    fn manifests_indexes_and_configs_never_panic(
        m in prop_oneof![vec(any::<u8>(), 0..512), mutated(valid_manifest())],
        c in prop_oneof![vec(any::<u8>(), 0..512), mutated(valid_config())],
    ) {
        largest_allocation();
        let _ = serde_json::from_slice::<Manifest>(&m);
        let _ = serde_json::from_slice::<Index>(&m);
        let layers = serde_json::from_slice::<Manifest>(&m)
            .map(|m| m.layers.into_iter().map(|d| Blob { desc: d, data: crate::image::BlobData::Bytes(std::sync::Arc::new(Vec::new())) }).collect())
            .unwrap_or_default();
        let _ = base_image("prop", None, c, layers, None);
        prop_assert!(largest_allocation() <= ALLOCATION_MAX);
    }

    #[test]
    fn base_layers_never_panic_and_stay_bounded((bytes, gz) in layer_input(), path in prop_oneof![Just("etc/passwd".to_string()), "[a-z/.]{0,20}"]) {
        let img = image_with_layer(bytes, gz);
        largest_allocation();
        if let Ok(Some(f)) = read_base_file(&img, &path) {
            prop_assert!(f.len() as u64 <= BASE_FILE_MAX);
        }
        let _ = list_base_dir(&img, "home/wso2carbon");
        prop_assert!(largest_allocation() <= ALLOCATION_MAX);
    }

    #[test]
    fn docker_archives_never_panic(bytes in prop_oneof![vec(any::<u8>(), 0..4096), mutated(sample_archive())]) {
        largest_allocation();
        read_archive(&bytes);
        prop_assert!(largest_allocation() <= ALLOCATION_MAX);
    }

    #[test]
    fn jars_never_panic(bytes in prop_oneof![vec(any::<u8>(), 0..1024), mutated(jar_bytes()), mutated(nested_jar_bytes())]) {
        largest_allocation();
        inspect_jar(&bytes);
        prop_assert!(largest_allocation() <= ALLOCATION_MAX);
    }
}

#[test]
fn the_allocation_watch_sees_large_allocations() {
    largest_allocation();
    let big = vec![1u8; ALLOCATION_MAX + 1];
    assert!(largest_allocation() > ALLOCATION_MAX && big[0] == 1);
    assert!(largest_allocation() <= ALLOCATION_MAX);
}

/// The layer reader refuses GNU long names and PAX headers over the bound
/// instead of holding them (tar-rs reads them whole).
#[test]
fn oversized_tar_extension_headers_are_refused() {
    for kind in [b'L', b'x'] {
        let mut h = tar::Header::new_gnu();
        h.set_path("././@LongLink").unwrap();
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_size(64 << 20);
        h.set_cksum();
        let mut layer = h.as_bytes().to_vec();
        layer.resize(512 + (64 << 20) + 1024, b'a');
        let img = image_with_layer(gzip(&layer), true);
        let e = read_base_file(&img, "etc/passwd").unwrap_err();
        assert!(e.message().contains("extension header"), "{e}");
        assert!(list_base_dir(&img, "etc").is_err());
    }
}
