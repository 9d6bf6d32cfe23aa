//! Hostile registries, bases and inputs (issue 11): a scripted registry that
//! misbehaves (credential-stealing `Location`s and redirects, endless and
//! oversized bodies, stalls), crafted archives and layouts (a gzip bomb in
//! `/etc/passwd`, a giant `manifest.json`, a newline in the product home), and
//! the keystore guard at every public-registry alias. Each test fails if its
//! defect returns: no credential seen by a foreign host, peak RSS under
//! 100 MB, a clear one-line error, nothing written.

use std::collections::HashMap;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use wso2img::digest::Digest;
use wso2img::wso2::sample::SampleBase;

use super::hostile_support::{run_measured, Hostile, ProxyTrap, Reply};
use super::registry_support::wso2img;
use super::support::*;

/// The peak resident memory allowed to wso2img whatever a base does.
const RSS_LIMIT_KB: u64 = 100 * 1024;
const LIMIT: Duration = Duration::from_secs(60);
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const USER: &str = "hostile-user";
const PASSWORD: &str = "s3cret-Pa55+/word";

/// A manifest, its config and its layers, as a registry would serve them.
#[derive(Clone)]
struct Image {
    manifest: Vec<u8>,
    blobs: HashMap<String, Vec<u8>>,
}

impl Image {
    /// The built-in 4.3 sample, with `labels` added to its config.
    fn sample(labels: Value) -> Image {
        let dir = tempfile::tempdir().unwrap();
        SampleBase::v430().write_oci(dir.path(), "1").unwrap();
        let index = layout_index(dir.path());
        let mdigest = index["manifests"][0]["digest"].as_str().unwrap().to_string();
        let mut manifest = layout_json(dir.path(), &mdigest);
        let cdigest = manifest["config"]["digest"].as_str().unwrap().to_string();
        let mut config = layout_json(dir.path(), &cdigest);
        if let Some(l) = labels.as_object() {
            for (k, v) in l {
                config["config"]["Labels"][k] = v.clone();
            }
        }
        let config = serde_json::to_vec(&config).unwrap();
        let d = Digest::of(&config).to_string();
        manifest["config"]["digest"] = json!(d);
        manifest["config"]["size"] = json!(config.len());
        let mut blobs = HashMap::new();
        blobs.insert(d, config);
        for l in manifest["layers"].as_array().unwrap() {
            let ld = l["digest"].as_str().unwrap();
            let bytes = fs::read(dir.path().join("blobs/sha256").join(ld.trim_start_matches("sha256:"))).unwrap();
            blobs.insert(ld.to_string(), bytes);
        }
        Image { manifest: serde_json::to_vec(&manifest).unwrap(), blobs }
    }

    fn config_digest(&self) -> String {
        let m: Value = serde_json::from_slice(&self.manifest).unwrap();
        m["config"]["digest"].as_str().unwrap().to_string()
    }
}

/// A registry that serves `image` under every tag (anonymous), and answers
/// what `extra` answers first.
fn serving(
    ip: &str,
    image: Image,
    extra: impl Fn(&super::hostile_support::Seen) -> Option<Reply> + Send + Sync + 'static,
) -> Hostile {
    let image = Arc::new(image);
    Hostile::start(ip, move |req| {
        if let Some(r) = extra(req) {
            return r;
        }
        let path = req.path.split('?').next().unwrap_or("");
        if path == "/v2/" {
            return Reply::status(200, &[]);
        }
        if path.contains("/manifests/") {
            return match req.method.as_str() {
                "GET" | "HEAD" => Reply::ok(OCI_MANIFEST, image.manifest.clone()),
                _ => Reply::status(201, &[]),
            };
        }
        if let Some(d) = path.rsplit('/').next().filter(|_| path.contains("/blobs/sha256:")) {
            if let Some(b) = image.blobs.get(d) {
                return Reply::ok("application/octet-stream", b.clone());
            }
        }
        Reply::status(404, &[])
    })
}

/// A workspace with the sample base and no customer folders.
fn plain_ws() -> Workspace {
    let ws = Workspace::new();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    ws
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Exit `code`, a last stderr line that is the error and holds every needle, no raw control characters.
fn failed(out: &Output, code: i32, needles: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    let last = err.lines().last().unwrap_or("");
    assert!(last.starts_with("error: "), "the error is the last line: {err}");
    for n in needles {
        assert!(last.contains(n), "error should mention {n:?}: {err}");
    }
    assert!(!err.contains('\u{1b}') && !last.contains('\r'), "no raw control characters: {err:?}");
    assert!(!err.contains(PASSWORD), "the password leaked: {err}");
    last.to_string()
}

fn measured(ws: &Workspace, args: &[&str]) -> (Output, u64) {
    let (out, peak, took) = run_measured(wso2img(ws).args(args), LIMIT);
    eprintln!("hostile: wso2img {} -> peak RSS {} KiB in {:.2} s", args.join(" "), peak, took.as_secs_f64());
    (out, peak)
}

fn with_credentials(ws: &Workspace) -> Command {
    let mut c = wso2img(ws);
    c.env("WSO2IMG_REGISTRY_USERNAME", USER).env("WSO2IMG_REGISTRY_PASSWORD", PASSWORD);
    c
}

/// A registry that asks for basic auth, as a real one does: any request
/// without credentials is a 401.
fn basic_auth_gate(req: &super::hostile_support::Seen) -> Option<Reply> {
    if req.authorization.is_none() {
        return Some(Reply::status(401, &[("WWW-Authenticate", "Basic realm=\"hostile\"")]));
    }
    None
}

#[test]
fn hostile_upload_location_to_another_host_gets_no_credentials() {
    let foreign = Hostile::start("127.0.0.2", |req| match req.method.as_str() {
        "PUT" => Reply::status(201, &[]),
        _ => Reply::status(404, &[]),
    });
    let fhost = foreign.host();
    let reg = Hostile::start("127.0.0.1", move |req| {
        if let Some(r) = basic_auth_gate(req) {
            return r;
        }
        let path = req.path.split('?').next().unwrap_or("");
        match req.method.as_str() {
            "GET" if path == "/v2/" => Reply::status(200, &[]),
            "POST" if path.ends_with("/blobs/uploads/") => {
                let loc = format!("http://{fhost}/v2/acme/apim/blobs/uploads/stolen");
                Reply::status(202, &[("Location", loc.as_str())])
            }
            "PUT" if path.contains("/manifests/") => Reply::status(201, &[]),
            _ => Reply::status(404, &[]),
        }
    });
    let ws = plain_ws();
    let dest = format!("docker://{}/acme/apim", reg.host());
    let (out, _, _) = run_measured(with_credentials(&ws).args(["build", "--to", &dest]), LIMIT);
    assert!(out.status.success(), "{}", stderr(&out));
    let puts: Vec<_> = foreign.seen().into_iter().filter(|s| s.method == "PUT").collect();
    assert!(!puts.is_empty(), "the uploads went to the Location given");
    assert!(
        foreign.with_credentials().is_empty(),
        "credentials reached the foreign host: {:?}",
        foreign.with_credentials()
    );
    assert!(!reg.with_credentials().is_empty(), "the registry itself got its credentials");
}

#[test]
fn hostile_redirect_to_another_host_gets_no_credentials() {
    let image = Image::sample(json!({}));
    let store = serving("127.0.0.2", image.clone(), |_| None);
    let shost = store.host();
    let config = image.config_digest();
    let reg = serving("127.0.0.1", image, move |req| {
        if let Some(r) = basic_auth_gate(req) {
            return Some(r);
        }
        if req.path.contains("/blobs/sha256:") {
            let loc = format!("http://{shost}/v2/acme/base/blobs/{config}");
            return Some(Reply::status(307, &[("Location", loc.as_str())]));
        }
        None
    });
    let ws = plain_ws();
    let src = format!("docker://{}/acme/base:1", reg.host());
    let (out, _, _) = run_measured(with_credentials(&ws).args(["inspect", &src, "--json"]), LIMIT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(store.seen().iter().any(|s| s.path.contains("/blobs/")), "the config was fetched from the redirect");
    assert!(store.with_credentials().is_empty(), "credentials followed the redirect");
}

#[test]
fn hostile_endless_and_oversized_manifests_are_refused_in_flat_memory() {
    let reg = Hostile::start("127.0.0.1", |req| {
        let path = req.path.as_str();
        if path == "/v2/" {
            Reply::status(200, &[])
        } else if path.ends_with("/manifests/endless") {
            Reply::Endless {
                status: 200,
                headers: vec![("Content-Type".into(), OCI_MANIFEST.into())],
                content_length: None,
            }
        } else if path.ends_with("/manifests/huge") {
            Reply::Endless {
                status: 200,
                headers: vec![("Content-Type".into(), OCI_MANIFEST.into())],
                content_length: Some(100 << 20),
            }
        } else {
            Reply::status(404, &[])
        }
    });
    let ws = plain_ws();
    let digest = format!("sha256:{}", "ab".repeat(32));
    for tag in ["endless", "huge"] {
        let (out, peak) = measured(&ws, &["inspect", &format!("docker://{}/acme/x:{tag}", reg.host())]);
        failed(&out, 1, &["larger than the 4 MiB limit", "acme/x"]);
        assert!(peak < RSS_LIMIT_KB, "{tag}: peak RSS {peak} KiB");
    }
    let (out, peak) = measured(&ws, &["inspect", &format!("docker://{}/acme/x@{digest}", reg.host())]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(peak < RSS_LIMIT_KB, "by digest: peak RSS {peak} KiB");
}

#[test]
fn hostile_config_longer_than_declared_is_refused_in_flat_memory() {
    let declared = format!("sha256:{}", "cd".repeat(32));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": declared, "size": 1024},
        "layers": []
    }))
    .unwrap();
    let reg = Hostile::start("127.0.0.1", move |req| {
        let path = req.path.as_str();
        if path == "/v2/" {
            Reply::status(200, &[])
        } else if path.contains("/manifests/") {
            Reply::ok(OCI_MANIFEST, manifest.clone())
        } else if path.contains("/blobs/") {
            let announced = if path.contains("/big/") { Some(3u64 << 30) } else { None };
            Reply::Endless { status: 200, headers: vec![], content_length: announced }
        } else {
            Reply::status(404, &[])
        }
    });
    let ws = plain_ws();
    let (out, peak) = measured(&ws, &["inspect", &format!("docker://{}/acme/endless:1", reg.host())]);
    failed(&out, 1, &["more than the 1024 bytes declared"]);
    assert!(peak < RSS_LIMIT_KB, "endless config: peak RSS {peak} KiB");
    let (out, peak) = measured(&ws, &["inspect", &format!("docker://{}/acme/big:1", reg.host())]);
    failed(&out, 1, &["for a blob of 1024"]);
    assert!(peak < RSS_LIMIT_KB, "3 GB config: peak RSS {peak} KiB");
}

#[test]
fn hostile_stalled_registry_fails_within_the_timeout_and_says_what_it_waits_for() {
    let reg = Hostile::start("127.0.0.1", |req| {
        if req.path == "/v2/" {
            return Reply::status(200, &[]);
        }
        Reply::Stall {
            status: 200,
            headers: vec![("Content-Type".into(), OCI_MANIFEST.into())],
            content_length: 1000,
            first: b"{\"schemaVersion\"".to_vec(),
        }
    });
    let ws = plain_ws();
    let (out, _, took) = run_measured(
        wso2img(&ws).args(["--timeout", "2", "inspect", &format!("docker://{}/acme/x:1", reg.host())]),
        LIMIT,
    );
    failed(&out, 1, &["no answer for 2 s", "--timeout"]);
    assert!(stderr(&out).contains("waiting for 127.0.0.1"), "a line says what it waits for: {}", stderr(&out));
    assert!(took < Duration::from_secs(10), "gave up after {took:?}");
}

/// A gzip layer whose only file is `/etc/passwd` of `size` zero bytes.
fn passwd_bomb(size: u64) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut h = tar::Header::new_gnu();
    h.set_path("etc/passwd").unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    gz.write_all(h.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        gz.write_all(&zeros[..n]).unwrap();
        left -= n as u64;
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap()
}

/// An OCI layout at `dir` tagged `1` with `config` and gzip `layers`.
fn crafted_layout(dir: &Path, mut config: Value, layers: &[Vec<u8>]) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = Digest::of(bytes);
        fs::write(blobs.join(d.hex()), bytes).unwrap();
        d
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        let d = put(l);
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": l.len()}));
        diff_ids.push(json!(d.to_string()));
    }
    config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    let cbytes = serde_json::to_vec(&config).unwrap();
    let cd = put(&cbytes);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cbytes.len()},
        "layers": descs
    }))
    .unwrap();
    let md = put(&manifest);
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "1"}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), b"{\"imageLayoutVersion\":\"1.0.0\"}").unwrap();
}

fn wso2_config(home: &str, user: &str) -> Value {
    json!({"architecture": "amd64", "os": "linux",
        "config": {"User": user, "Env": [format!("WSO2_SERVER_HOME={home}")]}})
}

#[test]
fn hostile_gzip_bomb_in_etc_passwd_is_refused_in_flat_memory() {
    let ws = plain_ws();
    let bomb = passwd_bomb(256 << 20);
    assert!(bomb.len() < 2 << 20, "the bomb is small: {}", bomb.len());
    crafted_layout(&ws.join("bomb"), wso2_config("/home/wso2carbon/wso2am-4.3.0", "wso2carbon"), &[bomb]);
    let (out, peak) = measured(&ws, &["plan", "--base", "oci:bomb:1"]);
    failed(&out, 1, &["/etc/passwd", "larger than the 1 MiB limit"]);
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} KiB");
}

/// A tar at `path` with one member `name` of `size` bytes (a sparse hole of
/// zeros, so it costs no disk) of entry type `kind`.
fn sparse_tar(path: &Path, name: &str, kind: tar::EntryType, size: u64) {
    let mut f = fs::File::create(path).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    f.write_all(h.as_bytes()).unwrap();
    f.set_len(512 + size).unwrap();
    f.seek(SeekFrom::End(0)).unwrap();
    f.write_all(&[0u8; 1024]).unwrap();
}

#[test]
fn hostile_giant_manifest_json_in_a_docker_archive_is_refused_in_flat_memory() {
    let ws = plain_ws();
    sparse_tar(&ws.join("big.tar"), "manifest.json", tar::EntryType::Regular, 200 << 20);
    let (out, peak) = measured(&ws, &["plan", "--base", "docker-archive:big.tar"]);
    failed(&out, 1, &["manifest.json", "limit"]);
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} KiB");
    sparse_tar(&ws.join("long.tar"), "././@LongLink", tar::EntryType::GNULongName, 256 << 20);
    let (out, peak) = measured(&ws, &["plan", "--base", "docker-archive:long.tar"]);
    failed(&out, 1, &["extension header", "limit"]);
    assert!(peak < RSS_LIMIT_KB, "long name: peak RSS {peak} KiB");
}

#[test]
fn hostile_product_home_with_a_newline_is_refused_by_init() {
    let ws = Workspace::new();
    crafted_layout(
        &ws.join("evil"),
        wso2_config("/home/x/wso2am-4.3.0\n[target]\nrepository = \"evil\"", "10001"),
        &[],
    );
    let out = run_measured(wso2img(&ws).args(["init", "--base", "oci:evil:1", "-c", "proj/wso2img.toml"]), LIMIT).0;
    failed(&out, 1, &["product home", "control character"]);
    assert!(!ws.join("proj/wso2img.toml").exists(), "nothing written");
}

/// Each name Docker Hub answers to, as a destination.
const HUB_ALIASES: [&str; 6] =
    ["docker.io", "DOCKER.IO", "docker.io:443", "index.docker.io", "registry-1.docker.io", "Registry-1.Docker.IO:443"];

/// wso2img with `HTTPS_PROXY` pointing at a trap: any attempt to reach a
/// non-loopback registry shows up there (and goes nowhere).
fn trapped(ws: &Workspace, trap: &ProxyTrap) -> Command {
    let mut c = wso2img(ws);
    c.env("HTTPS_PROXY", format!("http://{}", trap.addr)).env_remove("NO_PROXY");
    c
}

#[test]
fn hostile_keystore_in_overlays_is_refused_unless_baked() {
    let ws = plain_ws();
    ws.write("overlays/repository/resources/security/client-truststore.jks", &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]);
    let out = wso2img_out(&ws, &["build", "--to", "oci:out"]);
    failed(&out, 2, &["client-truststore.jks (JKS)", "is a keystore", "bake_keystores"]);
    assert!(!ws.join("out").exists());
    fs::remove_file(ws.join("overlays/repository/resources/security/client-truststore.jks")).unwrap();
    ws.write("overlays/repository/resources/security/renamed.bin", &[0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2]);
    let out = wso2img_out(&ws, &["plan"]);
    failed(&out, 2, &["renamed.bin (JCEKS)"]);
}

fn wso2img_out(ws: &Workspace, args: &[&str]) -> Output {
    run_measured(wso2img(ws).args(args), LIMIT).0
}

#[test]
fn hostile_baked_build_to_any_public_registry_is_refused_before_any_request() {
    let trap = ProxyTrap::start();
    let public = Hostile::start("127.0.0.2", |_| Reply::status(200, &[]));
    for (folder, file) in
        [("overlays/repository/resources/security", "wso2carbon.jks"), ("keystores", "wso2carbon.jks")]
    {
        let ws = Workspace::new();
        ws.config(
            "[base]\nimage = \"builtin:wso2am-4.3.0\"\n[layers]\nbake_keystores = true\n[target]\npublic_registries = [\"127.0.0.2\"]\n",
        );
        ws.write(&format!("{folder}/{file}"), &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]);
        let mut dests: Vec<String> = HUB_ALIASES.iter().map(|h| format!("docker://{h}/acme/apim")).collect();
        dests.push(format!("docker://{}/acme/apim", public.host()));
        for dest in &dests {
            let out = run_measured(trapped(&ws, &trap).args(["build", "--to", dest]), LIMIT).0;
            failed(&out, 2, &["public registry", "--allow-public-keystores"]);
        }
    }
    assert!(trap.hits().is_empty(), "a public registry was contacted: {:?}", trap.hits());
    assert!(public.seen().is_empty(), "the public_registries host was contacted: {:?}", public.seen());
}

#[test]
fn hostile_copy_and_tag_of_a_baked_image_to_a_public_registry_are_refused() {
    let trap = ProxyTrap::start();
    let public = Hostile::start("127.0.0.2", |_| Reply::status(404, &[]));
    let src_reg = serving("127.0.0.1", Image::sample(json!({"io.wso2img.keystores": "baked"})), |_| None);
    let ws = Workspace::new();
    ws.config(&format!(
        "[base]\nimage = \"builtin:wso2am-4.3.0\"\n[target]\npublic_registries = [\"127.0.0.2\", \"{}\"]\n",
        src_reg.host()
    ));
    let src = format!("{}/acme/apim:1", src_reg.host());
    let mut dests: Vec<String> = HUB_ALIASES.iter().map(|h| format!("{h}/acme/apim:1")).collect();
    dests.push(format!("{}/acme/apim:1", public.host()));
    for dest in &dests {
        let out = run_measured(trapped(&ws, &trap).args(["copy", &src, dest]), LIMIT).0;
        failed(&out, 2, &["public registry", "io.wso2img.keystores=baked"]);
    }
    let out = run_measured(trapped(&ws, &trap).args(["tag", &src, "release"]), LIMIT).0;
    failed(&out, 2, &["public registry", "io.wso2img.keystores=baked"]);
    assert!(trap.hits().is_empty(), "a public registry was contacted: {:?}", trap.hits());
    assert!(public.seen().is_empty(), "the public_registries host was contacted: {:?}", public.seen());
    assert!(
        !src_reg.seen().iter().any(|s| s.method == "PUT" || s.method == "POST"),
        "nothing was written: {:?}",
        src_reg.seen()
    );
    let out = run_measured(
        trapped(&ws, &trap).args(["copy", "--allow-public-keystores", &src, &format!("{}/acme/apim:1", public.host())]),
        LIMIT,
    )
    .0;
    assert!(!public.seen().is_empty(), "--allow-public-keystores lets the copy go: {}", stderr(&out));
}

#[test]
fn hostile_symlink_escaping_through_another_symlink_is_refused() {
    let ws = plain_ws();
    fs::create_dir_all(ws.join("overlays/sub")).unwrap();
    std::os::unix::fs::symlink("..", ws.join("overlays/sub/up")).unwrap();
    std::os::unix::fs::symlink("sub/up/../wso2img.toml", ws.join("overlays/esc")).unwrap();
    let out = wso2img_out(&ws, &["build", "--to", "oci:out"]);
    failed(&out, 1, &["overlays/esc", "points outside"]);
    assert!(!ws.join("out").exists());
}

#[test]
fn hostile_small_inputs_are_refused_or_escaped() {
    let ws = plain_ws();
    // A proxy URL with a password never shows it.
    let out = run_measured(
        wso2img(&ws)
            .env("HTTPS_PROXY", "http://user:secret-proxy-pw@bad host:99")
            .args(["inspect", "docker://registry.example.invalid/acme/x:1"]),
        LIMIT,
    )
    .0;
    let line = failed(&out, 2, &["HTTPS_PROXY"]);
    assert!(!line.contains("secret-proxy-pw"), "{line}");
    // --chunk-size 0 would upload a byte at a time.
    let out = wso2img_out(&ws, &["--chunk-size", "0", "plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--chunk-size"), "{}", stderr(&out));
    // An env value with NUL would break `docker run`.
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n[image]\nenv = { JAVA_OPTS = \"-Xmx1g\\u0000-Dx\" }\n");
    failed(&wso2img_out(&ws, &["plan"]), 2, &["JAVA_OPTS", "control character"]);
    // Escape sequences in a file name are shown escaped.
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    let fifo = ws.join("overlays/evil\u{1b}[2J.sh");
    fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    failed(&wso2img_out(&ws, &["plan"]), 1, &["evil\\u{1b}[2J.sh", "fifo"]);
}

#[test]
fn hostile_gnu_long_name_in_a_base_layer_is_refused_in_flat_memory() {
    let ws = plain_ws();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let size: u64 = 256 << 20;
    let mut h = tar::Header::new_gnu();
    h.set_path("././@LongLink").unwrap();
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(size);
    h.set_cksum();
    gz.write_all(h.as_bytes()).unwrap();
    let block = vec![b'a'; 1 << 20];
    for _ in 0..(size >> 20) {
        gz.write_all(&block).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    let layer = gz.finish().unwrap();
    crafted_layout(&ws.join("longname"), wso2_config("/home/wso2carbon/wso2am-4.3.0", "wso2carbon"), &[layer]);
    let (out, peak) = measured(&ws, &["plan", "--base", "oci:longname:1"]);
    failed(&out, 1, &["extension header", "limit"]);
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} KiB");
}

#[test]
fn hostile_registry_that_never_answers_an_upload_fails_within_the_timeout() {
    let reg = Hostile::start("127.0.0.1", |req| {
        let path = req.path.split('?').next().unwrap_or("");
        match req.method.as_str() {
            "GET" if path == "/v2/" => Reply::status(200, &[]),
            "POST" if path.ends_with("/blobs/uploads/") => {
                Reply::status(202, &[("Location", "/v2/acme/apim/blobs/uploads/u1")])
            }
            "PUT" if path.contains("/blobs/uploads/") => Reply::Silent,
            _ => Reply::status(404, &[]),
        }
    });
    let ws = plain_ws();
    let dest = format!("docker://{}/acme/apim", reg.host());
    let (out, _, took) = run_measured(wso2img(&ws).args(["--timeout", "2", "build", "--to", &dest]), LIMIT);
    failed(&out, 1, &["no answer for 2 s"]);
    assert!(stderr(&out).contains("waiting for 127.0.0.1"), "{}", stderr(&out));
    assert!(took < Duration::from_secs(15), "gave up after {took:?}");
}

#[test]
fn hostile_escape_sequences_in_base_labels_are_shown_escaped() {
    let reg = serving("127.0.0.1", Image::sample(json!({"evil": "\u{1b}]0;pwned\u{7}\u{1b}[2J"})), |_| None);
    let ws = plain_ws();
    let out = wso2img_out(&ws, &["inspect", &format!("{}/acme/apim:1", reg.host())]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "raw escape on the terminal: {text:?}");
    assert!(text.contains("label evil=\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"), "{text}");
}

#[test]
fn hostile_https_registry_moving_to_plain_http_is_refused() {
    let tls_root = tempfile::tempdir().unwrap();
    let tls = super::registry_support::make_tls(tls_root.path());
    let plain = Hostile::start("127.0.0.2", |_| Reply::status(201, &[]));
    let phost = plain.host();
    let image = Image::sample(json!({}));
    let reg = Hostile::start_tls("127.0.0.1", &tls_root.path().join("tls"), move |req| {
        if let Some(r) = basic_auth_gate(req) {
            return r;
        }
        let path = req.path.split('?').next().unwrap_or("");
        let to_plain = format!("http://{phost}{path}");
        match req.method.as_str() {
            "GET" if path == "/v2/" => Reply::status(200, &[]),
            "GET" if path.ends_with("/base/manifests/1") => Reply::ok(OCI_MANIFEST, image.manifest.clone()),
            "GET" if path.contains("/blobs/") => Reply::status(302, &[("Location", to_plain.as_str())]),
            "POST" if path.ends_with("/blobs/uploads/") => Reply::status(202, &[("Location", to_plain.as_str())]),
            _ => Reply::status(404, &[]),
        }
    });
    let ws = plain_ws();
    let ca = tls.ca.to_str().unwrap().to_string();
    let src = format!("docker://{}/acme/base:1", reg.host());
    let out = run_measured(with_credentials(&ws).args(["--ca-cert", &ca, "inspect", &src]), LIMIT).0;
    failed(&out, 1, &["HTTPS to plain HTTP"]);
    let dest = format!("docker://{}/acme/apim", reg.host());
    let out = run_measured(with_credentials(&ws).args(["--ca-cert", &ca, "build", "--to", &dest]), LIMIT).0;
    failed(&out, 1, &["HTTPS to plain HTTP"]);
    assert!(plain.seen().is_empty(), "the plain-HTTP host was reached: {:?}", plain.seen());
    assert!(!reg.with_credentials().is_empty(), "the TLS registry itself got its credentials");
}

#[test]
fn hostile_signature_bomb_is_refused_in_flat_memory() {
    let image = Image::sample(json!({}));
    let sig_tag = format!("sha256-{}.sig", Digest::of(&image.manifest).hex());
    let blob = vec![b'x'; 3 << 20];
    let bd = Digest::of(&blob).to_string();
    let layer =
        json!({"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": bd, "size": blob.len()});
    let config = json!({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": bd, "size": blob.len()});
    let sig = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": vec![layer; 150]}),
    )
    .unwrap();
    let reg = serving("127.0.0.1", image, move |req| {
        if req.path.ends_with(&format!("/manifests/{sig_tag}")) {
            return Some(Reply::ok(OCI_MANIFEST, sig.clone()));
        }
        if req.path.ends_with(&format!("/blobs/{bd}")) {
            return Some(Reply::ok("application/octet-stream", blob.clone()));
        }
        None
    });
    let ws = plain_ws();
    let (out, peak) = measured(&ws, &["inspect", &format!("docker://{}/acme/base:1", reg.host())]);
    failed(&out, 1, &[".sig", "larger than 32 MiB, the limit for the signatures and attestations of one image"]);
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} KiB");
}
