//! Round trips counted, not guessed: wso2img talks to a real registry
//! through a counting proxy ([`CountingProxy`]) and the tests fail when an
//! avoidable request, round trip or connection comes back — a separate
//! `GET /v2/` ping, questions asked one after the other that could go at
//! once, one connection per request instead of a pool. Not timed: the counts
//! are what the client sends, whatever the machine's load. The figures each
//! bound was set from are in docs/performance.md.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::registry_support::*;
use super::roundtrip_support::*;
use super::support::*;

/// wso2img in `ws` with its digest cache under `cache` (`--json` output parsed).
fn build(ws: &Workspace, cache: &Path, args: &[&str]) -> (Value, String) {
    let out = run_limited(wso2img(ws).env("XDG_CACHE_HOME", cache).args(args), COMMAND_LIMIT);
    let out = checked(args, out);
    (json(&out), String::from_utf8_lossy(&out.stderr).to_string())
}

/// The layers a run compressed, from its `layer NAME: … gzip, …` lines.
fn compressed_layers(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(|l| l.split_once("wso2img: ").map_or(l, |(_, rest)| rest))
        .filter(|l| l.starts_with("layer ") && l.contains(" gzip, "))
        .map(|l| l.trim_start_matches("layer ").split(':').next().unwrap_or("").to_string())
        .collect()
}

/// A registry holding the sample base, a counting proxy in front of it, and
/// a workspace building the standard customization on that base into
/// `PROXY/acme/apim` (base and destination on one host, as most CI has it).
fn setup(delay: Duration) -> Option<(Registry, CountingProxy, Workspace)> {
    if !registry_tools() {
        return None;
    }
    let reg = Registry::start(Kind::Anonymous);
    push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    let proxy = CountingProxy::start(&reg.host(), delay);
    let ws = Workspace::new();
    ws.customization();
    let host = proxy.host();
    ws.config(&format!("[base]\nimage = \"{host}/wso2/wso2am:4.3.0\"\n[target]\nrepository = \"{host}/acme/apim\"\n"));
    Some((reg, proxy, ws))
}

/// A cold push asks only what it must before its first blob request: the
/// base's manifest and config, and whether the destination repository is
/// empty — no ping, no request twice. One pool of connections per host.
#[test]
fn roundtrips_a_cold_push_asks_little_before_its_first_blob() {
    let Some((_reg, proxy, ws)) = setup(Duration::ZERO) else { return };
    let to = format!("docker://{}/acme/apim:v1", proxy.host());
    build(&ws, &ws.join("cache"), &["-v", "build", "--json", "--to", &to]);
    let c = proxy.counted();
    let before: Vec<String> = c.before_first_blob().iter().map(|r| r.line()).collect();
    assert!(!before.iter().any(|l| l == "GET /v2/"), "a separate ping:\n{}", c.describe());
    assert!(before.len() <= 3, "requests before the first blob: {before:?}\n{}", c.describe());
    let mut unique = before.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), before.len(), "a request asked twice:\n{}", c.describe());
    // Blob checks go 8 at a time on the request pool, uploads 4 at a time on
    // their own pool; every other request reuses those connections.
    assert!(c.connections <= 8 + 4 + c.tls_probes, "connections:\n{}", c.describe());
    assert!(c.tls_probes <= 1, "HTTPS is tried once per host:\n{}", c.describe());
}

/// A no-change rebuild, with a warm digest cache and on a fresh runner (no
/// cache): it learns the content tag holds this content and stops there.
/// With 30 ms added each way, so that requests sent side by side overlap
/// whatever the machine's load.
#[test]
fn roundtrips_a_no_change_rebuild_asks_little() {
    let Some((_reg, proxy, ws)) = setup(Duration::from_millis(30)) else { return };
    let to = format!("docker://{}/acme/apim:v1", proxy.host());
    let args = ["build", "--json", "--to", &to];
    let (first, _) = build(&ws, &ws.join("cache"), &args);
    for (what, cache) in [("warm cache", ws.join("cache")), ("fresh runner", ws.join("fresh"))] {
        proxy.reset();
        let (again, _) = build(&ws, &cache, &args);
        assert_eq!(again["outputs"][0]["status"], "up-to-date", "{what}: {again:#}");
        assert_eq!(again["outputs"][0]["digest"], first["outputs"][0]["digest"], "{what}");
        let c = proxy.counted();
        assert!(!c.requests.iter().any(|r| r.line() == "GET /v2/"), "{what}: a separate ping:\n{}", c.describe());
        assert!(c.requests.len() <= 5, "{what}: requests:\n{}", c.describe());
        assert!(c.sequential() <= 5, "{what}: sequential round trips:\n{}", c.describe());
        assert!(c.connections <= 3 + c.tls_probes, "{what}: connections:\n{}", c.describe());
    }
}

/// Blob existence checks go out at once: with 30 ms added each way, a push
/// whose layers are all in the registry already (the tag is new) asks about
/// them side by side, not one after the other.
#[test]
fn roundtrips_blob_checks_go_out_at_once() {
    let Some((_reg, proxy, ws)) = setup(Duration::from_millis(30)) else { return };
    let host = proxy.host();
    build(&ws, &ws.join("cache"), &["build", "--json", "--to", &format!("docker://{host}/acme/apim:v1")]);
    proxy.reset();
    // Same content into another repository of the same registry: every
    // blob is HEADed (then mounted), none uploaded.
    build(&ws, &ws.join("cache"), &["build", "--json", "--to", &format!("docker://{host}/acme/other:v1")]);
    let c = proxy.counted();
    let heads = c.requests.iter().filter(|r| r.method == "HEAD" && r.is_blob()).count();
    assert!(heads >= 4, "blob checks:\n{}", c.describe());
    assert!(c.sequential() + 2 < c.requests.len(), "requests went one after the other:\n{}", c.describe());
}

/// A fresh runner (no digest cache) with one jar changed compresses only
/// that jar's layer: every other layer's blob digest is learnt from the
/// image the destination tag names (its config's diff_ids beside its
/// manifest's layers), checked by a HEAD.
#[test]
fn roundtrips_a_fresh_runner_compresses_only_what_changed() {
    let Some((reg, proxy, ws)) = setup(Duration::ZERO) else { return };
    let to = format!("docker://{}/acme/apim:v1", proxy.host());
    let args = ["-v", "build", "--json", "--to", &to];
    let (first, made) = build(&ws, &ws.join("cache"), &args);
    assert!(compressed_layers(&made).len() >= 3, "a cold push compresses every layer:\n{made}");
    ws.write("jars/acme-driver-1.0.jar", &real_jar("com.acme", "acme-driver", "1.0.1"));
    let mark = reg.mark();
    let (changed, log) = build(&ws, &ws.join("fresh"), &args);
    assert_eq!(changed["outputs"][0]["status"], "pushed", "{changed:#}");
    let made = compressed_layers(&log);
    assert_eq!(made, ["jars.00"], "only the changed jar's layer is compressed:\n{log}");
    let uploads: Vec<String> =
        reg.requests_since(mark).iter().filter_map(|q| q.uploaded_digest().map(String::from)).collect();
    assert_eq!(uploads.len(), 2, "the changed layer and the config: {uploads:?}");
    for (a, b) in first["layers"].as_array().unwrap().iter().zip(changed["layers"].as_array().unwrap()) {
        if a["name"] != "jars.00" {
            assert_eq!(a["digest"], b["digest"], "unchanged layer {} keeps its blob", a["name"]);
        }
    }
    let pulled = ws.join("pulled");
    reg.verify_pull(&format!("acme/apim:{}", changed["tag"].as_str().unwrap()), &pulled);
}
