//! The warm cache of file digests (issue 12): the cache on and off give
//! the same digests, a change that keeps a file's size and mtime is seen, a
//! wrong cache fails the build that produces layer bytes (naming the file)
//! and is healed by it, a damaged cache is ignored, and `--no-cache` leaves
//! nothing behind. The plan memo: an unchanged folder is planned from it,
//! to the same digests and bytes, and a memo that does not match the folder
//! planned again fails the build that produces its bytes, and is dropped.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use wso2img::cache::Cache;
use wso2img::digest::Digest;

use super::support::*;

/// The binary in `ws` with its own cache home.
fn run(ws: &Workspace, args: &[&str]) -> Output {
    bin().current_dir(ws.path()).env("XDG_CACHE_HOME", ws.join("xdg")).args(args).output().unwrap()
}

fn run_ok(ws: &Workspace, args: &[&str]) -> Value {
    let mut c = bin();
    c.current_dir(ws.path()).env("XDG_CACHE_HOME", ws.join("xdg")).args(args);
    let out = c.output().unwrap();
    json(&succeeded(&c, out))
}

/// The project's cache file (the only one under the workspace's cache home).
fn cache_file(ws: &Workspace) -> PathBuf {
    let dir = ws.join("xdg/wso2img/digests");
    let files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn project() -> Workspace {
    let ws = Workspace::new();
    ws.customization();
    ws.write("overlays/conf/app.properties", b"color=blue\n");
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    // Files older than the run that reads them are never racy.
    std::thread::sleep(Duration::from_millis(30));
    ws
}

fn files_under(dir: &Path) -> usize {
    fs::read_dir(dir).map(|rd| rd.count()).unwrap_or(0)
}

#[test]
fn cache_on_and_off_give_identical_digests_and_no_cache_writes_nothing() {
    let ws = project();
    let off = run_ok(&ws, &["plan", "--json", "--no-cache"]);
    let off_build = run_ok(&ws, &["build", "--json", "--no-cache", "--to", "oci:off"]);
    assert_eq!(files_under(&ws.join("xdg")), 0, "--no-cache writes nothing under XDG_CACHE_HOME");
    let cold = run_ok(&ws, &["plan", "--json"]);
    let file = cache_file(&ws);
    assert!(!Cache::load(&file).layer_entries().is_empty(), "the layers are cached");
    let warm = run_ok(&ws, &["plan", "--json"]);
    for r in [&cold, &warm, &off_build] {
        assert_eq!(r["content_digest"], off["content_digest"]);
        assert_eq!(layer_diff_ids(r), layer_diff_ids(&off));
    }
    let on_build = run_ok(&ws, &["build", "--json", "--to", "oci:on"]);
    assert_eq!(on_build["outputs"][0]["digest"], off_build["outputs"][0]["digest"], "same manifest");
    assert_eq!(on_build["layers"], off_build["layers"], "same layers, compressed digests included");
    assert!(!Cache::load(&file).file_entries().is_empty(), "producing layer bytes records file digests");
    let again = run_ok(&ws, &["build", "--json", "--to", "oci:on"]);
    assert_eq!(again["outputs"][0]["status"], "up-to-date");
    // The blobs written were recorded, so the next rebuild reads none of them.
    let blobs = Cache::load(&file).blob_entries();
    let layer_blob = on_build["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    assert!(blobs.iter().any(|(p, _, _)| p.ends_with(&layer_blob)), "{blobs:?}");
}

#[test]
fn a_same_size_rewrite_with_its_mtime_restored_is_seen() {
    let ws = project();
    let f = ws.join("overlays/conf/app.properties");
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    File::options().write(true).open(&f).unwrap().set_modified(mtime).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let first = run_ok(&ws, &["plan", "--json"]);
    assert!(!Cache::load(&cache_file(&ws)).layer_entries().is_empty());
    assert_eq!(run_ok(&ws, &["plan", "--json"])["content_digest"], first["content_digest"], "warm and unchanged");
    fs::write(&f, b"color=pink\n").unwrap();
    File::options().write(true).open(&f).unwrap().set_modified(mtime).unwrap();
    assert_eq!(fs::metadata(&f).unwrap().modified().unwrap(), mtime);
    let second = run_ok(&ws, &["plan", "--json"]);
    assert_ne!(second["content_digest"], first["content_digest"], "the new content is seen");
    let uncached = run_ok(&ws, &["plan", "--json", "--no-cache"]);
    assert_eq!(second["content_digest"], uncached["content_digest"]);
    assert_eq!(layer_diff_ids(&second), layer_diff_ids(&uncached));
}

#[test]
fn a_keystore_slipped_into_a_folder_the_cache_knows_is_found() {
    let ws = project();
    let first = run_ok(&ws, &["plan", "--json"]);
    assert_eq!(run_ok(&ws, &["plan", "--json"])["content_digest"], first["content_digest"], "warm");
    // Same size, mtime restored: only the inode change time tells.
    let f = ws.join("overlays/conf/app.properties");
    let mtime = fs::metadata(&f).unwrap().modified().unwrap();
    let mut jks = vec![0xfe, 0xed, 0xfe, 0xed];
    jks.resize(fs::metadata(&f).unwrap().len() as usize, 0);
    fs::write(&f, &jks).unwrap();
    File::options().write(true).open(&f).unwrap().set_modified(mtime).unwrap();
    let out = run(&ws, &["plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("overlays/conf/app.properties (JKS)") && err.contains("is a keystore"), "{err}");
}

#[test]
fn a_cold_build_compresses_while_it_hashes_and_matches_plan() {
    let ws = project();
    let out = run(&ws, &["-v", "build", "--json", "--to", "oci:img"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hashed and compressed in one pass"), "a new layout");
    let cold: Value = serde_json::from_slice(&out.stdout).unwrap();
    let plan = run_ok(&ws, &["plan", "--json", "--no-cache"]);
    assert_eq!(cold["content_digest"], plan["content_digest"]);
    assert_eq!(layer_diff_ids(&cold), layer_diff_ids(&plan));
    ws.write("overlays/conf/app.properties", b"color=teal\n");
    std::thread::sleep(Duration::from_millis(30));
    let out = run(&ws, &["-v", "build", "--json", "--to", "oci:img"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("in one pass"), "the layout holds an image");
    let warm: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(warm["content_digest"], run_ok(&ws, &["plan", "--json", "--no-cache"])["content_digest"]);
    let fresh = run_ok(&ws, &["build", "--json", "--no-cache", "--to", "oci:other"]);
    assert_eq!(warm["outputs"][0]["digest"], fresh["outputs"][0]["digest"], "same manifest both ways");
}

/// How many layers `-v` says came from the plan memo, and the JSON report.
fn memo_layers(ws: &Workspace, args: &[&str]) -> (usize, Value) {
    let mut all = vec!["-v"];
    all.extend_from_slice(args);
    let out = run(ws, &all);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let n = err
        .split(" from the plan memo")
        .next()
        .and_then(|head| head.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no memo count in: {err}"));
    (n, serde_json::from_slice(&out.stdout).unwrap())
}

/// The plan memo notes (JSON arrays of layer summaries): key and text.
fn memo_notes(ws: &Workspace) -> Vec<(Digest, String)> {
    Cache::load(&cache_file(ws)).note_entries().into_iter().filter(|(_, t)| t.starts_with('[')).collect()
}

#[test]
fn an_unchanged_folder_is_planned_from_the_memo_to_the_same_digests_and_bytes() {
    let ws = project();
    let off = run_ok(&ws, &["plan", "--json", "--no-cache"]);
    let layers = layer_diff_ids(&off).len();
    let (n, cold) = memo_layers(&ws, &["plan", "--json"]);
    assert_eq!(n, 0, "nothing is in the memo yet");
    assert!(!memo_notes(&ws).is_empty(), "the plan is remembered");
    let (n, warm) = memo_layers(&ws, &["plan", "--json"]);
    assert_eq!(n, layers, "every customer layer comes from the memo");
    for r in [&cold, &warm] {
        assert_eq!(r["content_digest"], off["content_digest"]);
        assert_eq!(r["layers"], off["layers"], "names, descriptions, sizes and diff_ids");
    }
    // Producing the bytes plans the memo's layers again: the same image.
    let (n, built) = memo_layers(&ws, &["build", "--json", "--to", "oci:on"]);
    assert_eq!(n, layers);
    let fresh = run_ok(&ws, &["build", "--json", "--no-cache", "--to", "oci:off"]);
    assert_eq!(built["outputs"][0]["digest"], fresh["outputs"][0]["digest"], "same manifest");
    assert_eq!(built["layers"], fresh["layers"], "same layers, compressed digests included");
    // A same-size rewrite with its mtime restored: that folder is planned again.
    let f = ws.join("overlays/conf/app.properties");
    let mtime = fs::metadata(&f).unwrap().modified().unwrap();
    fs::write(
        &f,
        b"color=lime
",
    )
    .unwrap();
    File::options().write(true).open(&f).unwrap().set_modified(mtime).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let (n, changed) = memo_layers(&ws, &["plan", "--json"]);
    assert_eq!(n, layers - 1, "only the overlays folder is planned again");
    assert_ne!(changed["content_digest"], off["content_digest"]);
    assert_eq!(changed["content_digest"], run_ok(&ws, &["plan", "--json", "--no-cache"])["content_digest"]);
    let (n, _) = memo_layers(&ws, &["plan", "--json", "--no-cache"]);
    assert_eq!(n, 0, "--no-cache has no memo");
}

#[test]
fn a_memo_that_does_not_match_its_folder_fails_the_build_and_is_dropped() {
    let ws = project();
    let good = run_ok(&ws, &["build", "--json", "--to", "oci:one"]);
    let notes = memo_notes(&ws);
    let summaries = |t: &str| -> Vec<Value> { serde_json::from_str(t).unwrap() };
    let (key, text) = notes.iter().find(|(_, t)| summaries(t).iter().any(|l| l["name"] == "overlays")).unwrap();
    let other = notes.iter().flat_map(|(_, t)| summaries(t)).find(|l| l["name"] != "overlays").unwrap();
    // The overlays layer's memo now names another layer's fingerprint.
    let mut forged = summaries(text);
    forged[0]["fingerprint"] = other["fingerprint"].clone();
    let c = Cache::load(&cache_file(&ws));
    c.put_note(*key, serde_json::to_string(&forged).unwrap(), i64::MIN);
    c.save();
    fails_into_a_new_layout(&ws, &["layer overlays", "plan memo"]);
    assert!(Cache::load(&cache_file(&ws)).note_entries().iter().all(|(k, _)| k != key), "the memo was dropped");
    let healed = run_ok(&ws, &["build", "--json", "--to", "oci:two"]);
    assert_eq!(healed["outputs"][0]["digest"], good["outputs"][0]["digest"]);
}

/// A build into a new layout `two` fails with one line holding every one of
/// `said`, and writes nothing.
fn fails_into_a_new_layout(ws: &Workspace, said: &[&str]) {
    let out = run(ws, &["-q", "build", "--json", "--to", "oci:two"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(said.iter().all(|s| err.contains(s)), "{said:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!ws.join("two/index.json").exists(), "nothing written");
}

#[test]
fn a_wrong_file_digest_fails_the_build_naming_the_file_and_is_dropped() {
    let ws = project();
    let good = run_ok(&ws, &["build", "--json", "--to", "oci:one"]);
    let file = cache_file(&ws);
    let c = Cache::load(&file);
    let (path, key, _) = c
        .file_entries()
        .into_iter()
        .find(|(p, _, _)| p.ends_with("overlays/conf/app.properties"))
        .expect("the file's digest is cached");
    c.put_file(&path, key, Digest::of(b"something else"));
    c.save();
    // Into a new layout: the layers are produced, and the bytes win.
    fails_into_a_new_layout(&ws, &["overlays/conf/app.properties", "digest cache"]);
    let healed = run_ok(&ws, &["build", "--json", "--to", "oci:two"]);
    assert_eq!(healed["outputs"][0]["digest"], good["outputs"][0]["digest"]);
}

#[test]
fn a_wrong_layer_diff_id_fails_the_build_naming_the_layer_and_is_dropped() {
    let ws = project();
    let good = run_ok(&ws, &["plan", "--json"]);
    let (_, overlays) = layer_diff_ids(&good).into_iter().find(|(n, _)| n == "overlays").unwrap();
    let file = cache_file(&ws);
    let c = Cache::load(&file);
    let (fp, mut hit) =
        c.layer_entries().into_iter().find(|(_, h)| h.diff_id.to_string() == overlays).expect("layer cached");
    hit.diff_id = Digest::of(b"not the overlays");
    c.put_layer(fp, hit, i64::MIN);
    c.save();
    let out = run(&ws, &["build", "--json", "--to", "oci:out"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("layer overlays") && err.contains("digest cache"), "{err}");
    assert!(!ws.join("out/index.json").exists(), "nothing written");
    let healed = run_ok(&ws, &["build", "--json", "--to", "oci:out"]);
    assert_eq!(healed["content_digest"], good["content_digest"]);
}

#[test]
fn a_damaged_cache_is_ignored_and_replaced() {
    let ws = project();
    let first = run_ok(&ws, &["plan", "--json"]);
    let file = cache_file(&ws);
    fs::write(&file, b"not a cache at all").unwrap();
    let again = run_ok(&ws, &["plan", "--json"]);
    assert_eq!(again["content_digest"], first["content_digest"]);
    assert!(!Cache::load(&file).layer_entries().is_empty(), "rewritten whole");
    // Unreadable: ignored too (root reads anything, so only as another user).
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    assert_eq!(run_ok(&ws, &["plan", "--json"])["content_digest"], first["content_digest"]);
}

#[test]
fn a_blob_rewritten_in_place_with_its_mtime_restored_is_read_again() {
    let ws = project();
    let first = run_ok(&ws, &["build", "--json", "--to", "oci:out"]);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(run_ok(&ws, &["build", "--json", "--to", "oci:out"])["outputs"][0]["status"], "up-to-date");
    let digest = first["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let blob = ws.join("out/blobs/sha256").join(&digest);
    let md = fs::metadata(&blob).unwrap();
    let mut bytes = fs::read(&blob).unwrap();
    bytes[0] ^= 0xff;
    fs::write(&blob, &bytes).unwrap();
    File::options().write(true).open(&blob).unwrap().set_modified(md.modified().unwrap()).unwrap();
    let third = run_ok(&ws, &["build", "--json", "--to", "oci:out"]);
    assert_eq!(third["outputs"][0]["status"], "written", "{third}");
    assert_eq!(Digest::of(&fs::read(&blob).unwrap()).hex(), digest, "the planted bytes were replaced");
}

#[test]
fn a_fresh_run_finds_keystores_in_the_bytes_it_hashes_and_notes_what_it_found() {
    // Enough theme files to be read ahead: a small keystore read ahead whole,
    // and a big one streamed, each under a harmless name.
    let mut big = vec![0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2];
    big.resize(300 << 10, 0);
    for (name, bytes, kind) in
        [("images/logo.png", vec![0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2], "JKS"), ("fonts/big.woff", big, "JCEKS")]
    {
        let ws = project();
        for i in 0..40 {
            ws.write(&format!("themes/devportal/css/s{i:02}.css"), b"p {}\n");
        }
        ws.write(&format!("themes/devportal/{name}"), &bytes);
        std::thread::sleep(Duration::from_millis(30));
        let out = run(&ws, &["-v", "plan"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.lines().last().unwrap().contains(&format!("themes/devportal/{name} ({kind}): is a keystore")),
            "{err}"
        );
        assert!(err.contains(" hashed, 0 from the digest cache"), "found in the bytes hashing read: {err}");
        assert!(Cache::load(&cache_file(&ws)).note_entries().iter().any(|(_, n)| n.contains(kind)), "noted");
        // The note answers the next run, which hashes nothing and still refuses.
        let out = run(&ws, &["-v", "plan"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.lines().last().unwrap().contains(&format!("themes/devportal/{name} ({kind})")), "{err}");
        assert!(!err.contains("layers: "), "refused before hashing: {err}");
        let baked = run_ok(&ws, &["plan", "--json", "--bake-keystores"]);
        assert_eq!(baked["keystores_baked"], true);
        assert_eq!(run_ok(&ws, &["plan", "--json", "--bake-keystores", "--no-cache"]), baked);
    }
}
