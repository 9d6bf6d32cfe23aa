//! Hostile inputs, second round: every file and answer from outside read
//! with a limit (config, ignore file, lock, Maven settings and checksums,
//! certificates, the digest cache, credential helpers), private keys treated
//! as keystores, outputs that would overwrite inputs refused, Maven never
//! moved from HTTPS to plain HTTP. Each test fails if its defect returns: a
//! one-line error naming the source, peak RSS under 100 MB, nothing written.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::hostile_support::{run_measured, Hostile, Reply};
use super::registry_support::wso2img;
use super::support::*;

const RSS_LIMIT_KB: u64 = 100 * 1024;
const LIMIT: Duration = Duration::from_secs(60);
const BASE: &str = "[base]\nimage = \"builtin:wso2am-4.3.0\"\n";

/// wso2img in `ws` with a private home and cache; output, peak RSS in KiB.
fn run(ws: &Workspace, args: &[&str]) -> (Output, u64) {
    let mut c = wso2img(ws);
    c.env("HOME", ws.join("home")).env("XDG_CACHE_HOME", ws.join("cache")).args(args);
    let (out, peak, took) = run_measured(&mut c, LIMIT);
    eprintln!("untrusted: wso2img {} -> peak RSS {peak} KiB in {:.2} s", args.join(" "), took.as_secs_f64());
    (out, peak)
}

/// Exit `code` and one error line on stderr holding every needle; the line.
fn refused(out: &Output, code: i32, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    let last = err.lines().last().unwrap_or("").to_string();
    assert!(last.starts_with("error: "), "the error is the last line: {err}");
    for n in needles {
        assert!(last.contains(n), "error should mention {n:?}: {err}");
    }
    last
}

fn sparse(path: &Path, len: u64) {
    fs::File::create(path).unwrap().set_len(len).unwrap();
}

#[test]
fn untrusted_project_files_are_read_with_a_limit() {
    // A config of 8 GiB (sparse: it costs no disk), read as `wso2img.toml` and as `-c`.
    let ws = Workspace::new();
    sparse(&ws.join("wso2img.toml"), 8 << 30);
    for args in [&["check"][..], &["-c", "wso2img.toml", "plan"]] {
        let (out, peak) = run(&ws, args);
        refused(&out, 2, &["wso2img.toml", "larger than 1 MiB"]);
        assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} KiB");
    }

    // `.wso2imgignore -> /dev/zero`, committed in a pull request.
    let ws = Workspace::new();
    ws.config(BASE);
    symlink("/dev/zero", ws.join(".wso2imgignore")).unwrap();
    let (out, peak) = run(&ws, &["check"]);
    refused(&out, 2, &[".wso2imgignore", "is a device, not a regular file"]);
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} KiB");
    fs::remove_file(ws.join(".wso2imgignore")).unwrap();
    sparse(&ws.join(".wso2imgignore"), 1 << 30);
    let (out, _) = run(&ws, &["check"]);
    refused(&out, 2, &[".wso2imgignore", "larger than 1 MiB"]);
    fs::remove_file(ws.join(".wso2imgignore")).unwrap();

    // A lock of 1 GiB, and a fifo as the lock: refused, without waiting for a writer.
    sparse(&ws.join("wso2img.lock"), 1 << 30);
    let (out, peak) = run(&ws, &["plan"]);
    refused(&out, 2, &["wso2img.lock", "larger than 4 MiB", "wso2img update"]);
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} KiB");
    fs::remove_file(ws.join("wso2img.lock")).unwrap();
    ok(Command::new("mkfifo").arg(ws.join("wso2img.lock")));
    let (out, _) = run(&ws, &["plan"]);
    refused(&out, 2, &["wso2img.lock", "is a fifo"]);
    fs::remove_file(ws.join("wso2img.lock")).unwrap();

    // `--ca-cert` of a device, and of 1 GiB.
    sparse(&ws.join("ca.pem"), 1 << 30);
    for (ca, why) in [("/dev/zero", "is a device"), ("ca.pem", "larger than 4 MiB")] {
        let (out, peak) = run(&ws, &["--ca-cert", ca, "build", "--to", "docker://127.0.0.1:9/acme/x"]);
        refused(&out, 2, &["--ca-cert", why]);
        assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} KiB");
    }

    // A Maven settings.xml of 1 GiB.
    ws.config(&format!("{BASE}[maven]\nrepositories = [\"http://127.0.0.1:9/m2\"]\njars = [\"a:b:1.0\"]\n"));
    fs::create_dir_all(ws.join("home/.m2")).unwrap();
    sparse(&ws.join("home/.m2/settings.xml"), 1 << 30);
    let (out, peak) = run(&ws, &["build", "--to", "oci:out"]);
    refused(&out, 2, &["settings.xml", "larger than 1 MiB"]);
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} KiB");
    assert!(!ws.join("out").exists());
}

#[test]
fn untrusted_registry_credentials_files_and_helpers_are_bounded() {
    let reg = Hostile::start("127.0.0.1", |_| Reply::status(200, &[]));
    let ws = Workspace::new();
    ws.config(BASE);
    let dest = format!("docker://{}/acme/x", reg.host());
    let docker = ws.join("docker");
    fs::create_dir_all(&docker).unwrap();
    sparse(&docker.join("config.json"), 1 << 30);
    let mut c = wso2img(&ws);
    c.env("DOCKER_CONFIG", &docker).args(["build", "--to", &dest]);
    let (out, peak, _) = run_measured(&mut c, LIMIT);
    refused(&out, 2, &["config.json", "larger than 1 MiB"]);
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} KiB");

    // Helpers that hang, and one that prints without end: stopped within --timeout.
    let bin = ws.join("bin");
    fs::create_dir_all(&bin).unwrap();
    for (name, body) in [("hang", "sleep 600"), ("flood", "yes")] {
        let p = bin.join(format!("docker-credential-{name}"));
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        set_mode(&p, 0o755);
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    for (store, why) in [("hang", "no answer within 2 s"), ("flood", "larger than 1 MiB")] {
        fs::write(docker.join("config.json"), format!("{{\"credsStore\":\"{store}\"}}")).unwrap();
        let started = Instant::now();
        let mut c = wso2img(&ws);
        c.env("DOCKER_CONFIG", &docker).env("PATH", &path).args(["--timeout", "2", "build", "--to", &dest]);
        let (out, peak, _) = run_measured(&mut c, LIMIT);
        refused(&out, 2, &[&format!("docker-credential-{store} get"), why]);
        assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
        assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} KiB");
    }
}

#[test]
fn untrusted_fifo_as_the_digest_cache_does_not_hang() {
    let ws = Workspace::new();
    ws.config(BASE);
    ws.write("overlays/repository/conf/a.toml", b"a = 1\n");
    let (out, _) = run(&ws, &["build", "--to", "oci:out"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = ws.join("cache/wso2img/digests");
    let cache = fs::read_dir(&dir).unwrap().next().expect("a cache file").unwrap().path();
    fs::remove_file(&cache).unwrap();
    ok(Command::new("mkfifo").arg(&cache));
    let started = Instant::now();
    let (out, _) = run(&ws, &["build", "--to", "oci:out2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

/// A maven2 repository whose jar is fine and whose `.sha256` never ends.
#[test]
fn untrusted_maven_checksum_bomb_is_refused_in_flat_memory() {
    let jar = real_jar("com.acme", "bomb", "1.0");
    let repo = Hostile::start("127.0.0.1", move |req| {
        let path = req.path.as_str();
        if path.ends_with(".jar") {
            return Reply::ok("application/java-archive", jar.clone());
        }
        if path.ends_with(".jar.sha256") {
            return Reply::Endless { status: 200, headers: Vec::new(), content_length: None };
        }
        Reply::status(404, &[])
    });
    let ws = Workspace::new();
    ws.config(&format!(
        "{BASE}[maven]\nrepositories = [\"http://{}/m2\"]\njars = [\"com.acme:bomb:1.0\"]\n",
        repo.host()
    ));
    let (out, peak) = run(&ws, &["build", "--to", "oci:out"]);
    refused(&out, 1, &["bomb-1.0.jar.sha256", "larger than 4 KiB"]);
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} KiB");
    assert!(!ws.join("out").exists());
}

#[test]
fn untrusted_maven_repository_urls_and_versions_are_checked() {
    let ws = Workspace::new();
    for (repo, jar, needle) in [
        ("https://nexus.example.com/m2?token=SECRET", "a:b:1.0", "query string"),
        ("https://nexus.example.com/m2", "a:b:1.0-snapshot", "SNAPSHOT"),
        ("https://nexus.example.com/m2", "a:b:LATEST", "moving pointer"),
    ] {
        ws.config(&format!("{BASE}[maven]\nrepositories = [\"{repo}\"]\njars = [\"{jar}\"]\n"));
        let (out, _) = run(&ws, &["plan"]);
        let line = refused(&out, 2, &["wso2img.toml", needle]);
        assert!(!line.contains("SECRET"), "{line}");
    }
}

#[test]
fn untrusted_maven_redirect_from_https_to_plain_http_is_refused() {
    let tls_root = tempfile::tempdir().unwrap();
    let tls = super::registry_support::make_tls(tls_root.path());
    let plain = Hostile::start("127.0.0.2", |_| Reply::status(200, &[]));
    let phost = plain.host();
    let repo = Hostile::start_tls("127.0.0.1", &tls_root.path().join("tls"), move |req| {
        let to = format!("http://{phost}{}", req.path);
        Reply::status(302, &[("Location", to.as_str())])
    });
    let ws = Workspace::new();
    ws.config(&format!(
        "{BASE}[maven]\nrepositories = [\"https://{}/m2\"]\njars = [\"com.acme:x:1.0\"]\n",
        repo.host()
    ));
    let ca = tls.ca.to_str().unwrap().to_string();
    let (out, _) = run(&ws, &["--ca-cert", &ca, "build", "--to", "oci:out"]);
    refused(&out, 1, &["x-1.0.jar", "from HTTPS to http://"]);
    assert!(plain.seen().is_empty(), "the plain-HTTP host was reached: {:?}", plain.seen());
}

#[test]
fn untrusted_private_keys_in_customer_folders_are_keystores() {
    let ws = Workspace::new();
    ws.config(BASE);
    let pem = b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBd1ZXJ5IHNlY3JldCBrZXkgbWF0ZXJpYWwgaGVyZQ==\n-----END EC PRIVATE KEY-----\n";
    ws.write("overlays/signing.pem", pem);
    let (out, _) = run(&ws, &["build", "--to", "oci:out"]);
    refused(&out, 2, &["overlays/signing.pem (PEM private key)", "is a keystore", "bake_keystores"]);
    assert!(!ws.join("out").exists());
    let (out, _) = run(&ws, &["build", "--bake-keystores", "--to", "oci:baked"]);
    assert!(out.status.success(), "baking lets it in: {}", String::from_utf8_lossy(&out.stderr));
    fs::remove_file(ws.join("overlays/signing.pem")).unwrap();

    // A key after a certificate and `openssl pkcs12`'s bag attributes, as in a combined server.pem.
    let combined = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2VydGlmaWNhdGUgZmlyc3Q=\n-----END CERTIFICATE-----\n\
Bag Attributes\n    localKeyID: 01 00 00 00\n-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
    ws.write("overlays/repository/conf/server.pem", combined);
    let (out, _) = run(&ws, &["plan"]);
    refused(&out, 2, &["server.pem (PEM private key)", "is a keystore"]);
    fs::remove_file(ws.join("overlays/repository/conf/server.pem")).unwrap();
    ws.write("overlays/repository/conf/ca.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    let (out, _) = run(&ws, &["plan"]);
    assert!(out.status.success(), "a certificate alone is no keystore: {}", String::from_utf8_lossy(&out.stderr));
    fs::remove_file(ws.join("overlays/repository/conf/ca.pem")).unwrap();

    // An OpenSSH key, and a DER PKCS#8 key under an innocent name.
    ws.write("themes/devportal/id_ed25519", b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n");
    let (out, _) = run(&ws, &["plan"]);
    refused(&out, 2, &["themes/devportal/id_ed25519 (OpenSSH private key)"]);
    fs::remove_file(ws.join("themes/devportal/id_ed25519")).unwrap();
    let der = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    ws.write("overlays/repository/conf/blob.bin", &der);
    let (out, _) = run(&ws, &["plan"]);
    refused(&out, 2, &["blob.bin (DER private key (PKCS#8))"]);
    fs::remove_file(ws.join("overlays/repository/conf/blob.bin")).unwrap();

    // Key files named by the command line or the config, inside a customer folder.
    ok(Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
        .arg(ws.join("overlays/cosign.key")));
    ok(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(ws.join("overlays/cosign.key"))
        .arg("-out")
        .arg(ws.join("overlays/cosign.pub")));
    let (out, _) = run(
        &ws,
        &["build", "--bake-keystores", "--sign-key", "overlays/cosign.key", "--to", "docker://127.0.0.1:9/acme/x"],
    );
    refused(&out, 2, &["--sign-key overlays/cosign.key", "inside the customer folder"]);
    fs::remove_file(ws.join("overlays/cosign.key")).unwrap();
    ws.config(&format!("{BASE}verify_key = \"overlays/cosign.pub\"\n"));
    let (out, _) = run(&ws, &["build", "--to", "oci:out"]);
    refused(&out, 2, &["verify_key overlays/cosign.pub", "inside the customer folder"]);
    let (out, _) = run(&ws, &["build", "--verify-base-key", "overlays/cosign.pub", "--to", "oci:out"]);
    refused(&out, 2, &["--verify-base-key overlays/cosign.pub", "inside the customer folder"]);
    assert!(!ws.join("out").exists());
}

#[test]
fn untrusted_outputs_never_overwrite_inputs() {
    let ws = Workspace::new();
    ws.config(BASE);
    ws.write("overlays/repository/conf/a.toml", b"a = 1\n");
    let (out, _) = run(&ws, &["build", "--to", "docker-archive:base.tar"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ws.write("wso2img.lock", b"version = 1\n");
    let before = |p: &str| fs::read(ws.join(p)).unwrap();
    let (config, lock, base) = (before("wso2img.toml"), before("wso2img.lock"), before("base.tar"));
    for (args, needles) in [
        (&["build", "--to", "docker-archive:wso2img.toml"][..], &["would overwrite the config"][..]),
        (
            &["build", "--to", "oci:out", "--metadata-file", "wso2img.toml"],
            &["--metadata-file wso2img.toml", "the config"],
        ),
        (
            &["build", "--to", "oci:out", "--digest-file", "./wso2img.lock"],
            &["--digest-file ./wso2img.lock", "the lock"],
        ),
        (&["build", "--to", "oci:out", "--sbom", "wso2img.toml"], &["--sbom wso2img.toml", "the config"]),
        (&["build", "--base", "docker-archive:base.tar", "--to", "docker-archive:base.tar"], &["the base"]),
        (
            &["build", "--to", "docker-archive:f.tar", "--digest-file", "f.tar"],
            &["--digest-file f.tar", "also written by"],
        ),
        (
            &["build", "--to", "docker-archive:same", "--to", "oci:same"],
            &["oci:same", "also written by docker-archive:same"],
        ),
    ] {
        let (out, _) = run(&ws, args);
        refused(&out, 2, needles);
    }
    assert_eq!((before("wso2img.toml"), before("wso2img.lock"), before("base.tar")), (config, lock, base));
    for p in ["out", "f.tar", "same"] {
        assert!(!ws.join(p).exists(), "{p} was written");
    }
}

#[test]
fn untrusted_file_rewritten_in_place_while_read_fails_the_build() {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let ws = Workspace::new();
    ws.config(BASE);
    let big = ws.join("overlays/data/big.bin");
    fs::create_dir_all(big.parent().unwrap()).unwrap();
    let size: u64 = 256 << 20;
    fs::write(&big, vec![7u8; size as usize]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (stop2, path) = (stop.clone(), big.clone());
    // Same size, new bytes, again and again: a tear a size check cannot see.
    let writer = std::thread::spawn(move || {
        let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut i: u64 = 0;
        while !stop2.load(Ordering::Relaxed) {
            f.write_at(&[(i % 251) as u8], (i * 1_048_573) % size).unwrap();
            i += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let (out, _) = run(&ws, &["build", "--no-cache", "--to", "oci:out"]);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "a file rewritten while read shipped: {err}");
    let last = err.lines().last().unwrap_or("");
    assert!(last.contains("big.bin") && last.contains("changed while"), "{err}");
}

#[test]
fn untrusted_token_expiring_mid_upload_is_renewed_and_the_upload_sent_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let host = Arc::new(Mutex::new(String::new()));
    let (tokens, refused_put) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (h2, t2, r2) = (host.clone(), tokens.clone(), refused_put.clone());
    let reg = Hostile::start("127.0.0.1", move |req| {
        let path = req.path.split('?').next().unwrap_or("").to_string();
        let challenge = format!("Bearer realm=\"http://{}/token\",service=\"hostile\"", h2.lock().unwrap());
        let unauthorized = || Reply::status(401, &[("WWW-Authenticate", challenge.as_str())]);
        if path == "/token" {
            let n = t2.fetch_add(1, Ordering::SeqCst);
            return Reply::ok("application/json", format!("{{\"token\":\"t{n}\"}}").into_bytes());
        }
        if !req.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer ")) {
            return unauthorized();
        }
        match (req.method.as_str(), path.as_str()) {
            ("GET", "/v2/") => Reply::status(200, &[]),
            ("POST", p) if p.ends_with("/blobs/uploads/") => {
                let at = format!("/v2/acme/x/blobs/uploads/{}", t2.load(Ordering::SeqCst));
                Reply::status(202, &[("Location", at.as_str())])
            }
            // The first upload with a body: the token "expired" on the way.
            ("PUT", p)
                if p.contains("/blobs/uploads/") && req.body_len > 0 && r2.fetch_add(1, Ordering::SeqCst) == 0 =>
            {
                unauthorized()
            }
            ("PUT", p) if p.contains("/blobs/uploads/") => {
                let digest = req.path.split("digest=").nth(1).unwrap_or("").replace("%3A", ":");
                Reply::status(201, &[("Docker-Content-Digest", digest.as_str())])
            }
            ("PUT", p) if p.contains("/manifests/") => Reply::status(201, &[]),
            _ => Reply::status(404, &[]),
        }
    });
    *host.lock().unwrap() = reg.host();
    let ws = Workspace::new();
    ws.config(BASE);
    ws.write("overlays/repository/conf/a.toml", b"a = 1\n");
    let dest = format!("docker://{}/acme/x", reg.host());
    let (out, _) = run(&ws, &["--timeout", "5", "build", "--to", &dest]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "the upload after a 401 was not renewed: {err}");
    assert!(refused_put.load(Ordering::SeqCst) >= 2, "the refused upload was sent again");
    assert!(tokens.load(Ordering::SeqCst) >= 2, "a new token was asked for");
    let seen = reg.seen();
    let empty_puts: Vec<_> =
        seen.iter().filter(|s| s.method == "PUT" && s.path.contains("/blobs/uploads/") && s.body_len == 0).collect();
    assert!(empty_puts.is_empty(), "an upload went without its body: {empty_puts:?}");
}

#[test]
fn untrusted_small_numbers_and_flags_are_refused_not_panicked_on() {
    let ws = Workspace::new();
    ws.config(BASE);
    for epoch in ["8589934592", "-1", "99999999999999999999"] {
        let mut c = wso2img(&ws);
        c.env("SOURCE_DATE_EPOCH", epoch).args(["build", "--to", "oci:out"]);
        let (out, _, _) = run_measured(&mut c, LIMIT);
        refused(&out, 2, &["SOURCE_DATE_EPOCH", "8589934591"]);
    }
    let (out, _) = run(&ws, &["--chunk-size", "18446744073709551615", "build", "--to", "oci:out"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--chunk-size") && !err.contains("panicked"), "{err}");
    assert!(!ws.join("out").exists());
}

#[test]
fn untrusted_maven_slow_loris_is_cut_off_by_a_total_deadline() {
    let repo = Hostile::start("127.0.0.1", |req| {
        if req.path.ends_with(".jar") {
            return Reply::Trickle {
                status: 200,
                headers: Vec::new(),
                content_length: 100_000,
                every: Duration::from_millis(300),
            };
        }
        Reply::status(404, &[])
    });
    let ws = Workspace::new();
    ws.config(&format!(
        "{BASE}[maven]\nrepositories = [\"http://{}/m2\"]\njars = [\"com.acme:slow:1.0\"]\n",
        repo.host()
    ));
    let started = Instant::now();
    let (out, _) = run(&ws, &["--timeout", "1", "build", "--to", "oci:out"]);
    refused(&out, 1, &["slow-1.0.jar", "did not arrive within 11 s"]);
    assert!(started.elapsed() < Duration::from_secs(40), "took {:?}", started.elapsed());
}
