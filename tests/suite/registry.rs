//! The registry transport against a real registry (CNCF distribution): push
//! with `build --push` / `--to docker://`, bases pulled from registries,
//! skip-if-present, basic auth over TLS, bearer tokens, multi-platform and
//! Docker media types, retries through injected faults, `tag` and `copy`, and
//! `docker pull` + `docker run` of what was pushed. Every test has its own
//! registry; results are checked with skopeo (which verifies every digest),
//! the registry's access log (what moved) and dockerd.

use std::fs;
use std::process::{Command, Output};

use serde_json::{json as j, Value};

use super::registry_support::*;
use super::support::*;

const HOME_430: &str = "/home/wso2carbon/wso2am-4.3.0";

/// The config of a build from `base` pushed to `repository`, with extra lines.
fn config(ws: &Workspace, base: &str, repository: &str, extra: &str) {
    ws.config(&format!("[base]\nimage = \"{base}\"\n[target]\nrepository = \"{repository}\"\n{extra}"));
}

/// The outputs of a report whose `ref` names `repo` (`HOST/acme/apim`); at least one.
fn outputs_for<'a>(r: &'a Value, repo: &str) -> Vec<&'a Value> {
    let v: Vec<&Value> = r["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .filter(|o| o["ref"].as_str().unwrap_or("").contains(repo))
        .collect();
    assert!(!v.is_empty(), "no output names {repo}: {r:#}");
    v
}

/// Requires every output for `repo` to have `status` and one digest; returns it.
fn pushed(r: &Value, repo: &str, status: &str) -> String {
    let outs = outputs_for(r, repo);
    for o in &outs {
        assert_eq!(o["status"], status, "status of {}: {r:#}", o["ref"]);
        assert_eq!(o["digest"], outs[0]["digest"], "one digest for every tag: {r:#}");
    }
    let d = outs[0]["digest"].as_str().expect("output digest").to_string();
    assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
    d
}

fn tag_of(r: &Value) -> String {
    r["tag"].as_str().expect("tag").to_string()
}

/// stdout is the digest, bare (`sha256:…`) or as a digest reference (`HOST/REPO@sha256:…`).
fn assert_prints_digest(out: &Output, digest: &str) {
    let s = String::from_utf8_lossy(&out.stdout);
    let line = s.trim();
    assert!(line == digest || line.ends_with(&format!("@{digest}")), "prints the digest {digest}: {s}");
}

fn no_uploads_or_manifest_puts(reqs: &[Request]) {
    let bad: Vec<Request> =
        reqs.iter().filter(|q| q.is_upload() || q.is_mount() || q.is_manifest_put()).cloned().collect();
    assert!(bad.is_empty(), "nothing should move, but:\n{}", Registry::describe(&bad));
}

fn docker_run(image: &str, script: &str) -> String {
    docker_ok(&["run", "--rm", "--network", "none", "--pull", "never", "--entrypoint", "/bin/sh", image, "-c", script])
}

/// `docker pull`s `HOST/NAME:TAG` from a loopback registry into the test
/// dockerd, checks its image ID and repo digest, and that the customer jar is
/// owned by 10001:10001 in a running container.
fn docker_pull_and_run(host: &str, name_tag: &str, content_digest: &str, manifest_digest: &str) {
    let image = format!("{host}/{name_tag}");
    docker_ok(&["pull", "--quiet", &image]);
    let id = docker_ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(id.trim(), content_digest, "image ID is the content digest");
    let repo_digests = docker_ok(&["image", "inspect", "--format", "{{json .RepoDigests}}", &image]);
    assert!(repo_digests.contains(manifest_digest), "{repo_digests} lacks {manifest_digest}");
    let out = docker_run(&image, &format!("stat -c '%u:%g' {HOME_430}/repository/components/lib/acme-driver-1.0.jar"));
    assert_eq!(out.trim(), "10001:10001", "{out}");
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}

// ---------------------------------------------------------------------------
// The harness itself: passes without wso2img's registry code.

#[test]
fn harness_anonymous_registry_push_inspect_and_access_log() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    let digest = push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    assert_eq!(reg.digest_of("wso2/wso2am:4.3.0"), digest);
    let ws = Workspace::new();
    reg.verify_pull("wso2/wso2am:4.3.0", &ws.join("pulled"));
    let layers = reg.layer_digests("wso2/wso2am:4.3.0");
    assert_eq!(layers.len(), 2);

    let log = reg.requests();
    for l in &layers {
        assert!(
            log.iter().any(|q| q.uploaded_digest() == Some(l.as_str())),
            "upload of {l}:\n{}",
            Registry::describe(&log)
        );
        assert!(log.iter().any(|q| q.is_blob_get() && q.blob_digest() == Some(l.as_str())), "verify_pull GETs {l}");
    }
    assert!(log.iter().any(|q| q.is_manifest_put() && q.status == 201 && q.repo() == Some("wso2/wso2am")));

    // A skopeo copy within the registry mounts; the log parses the decoded query.
    let mark = reg.mark();
    run_ok_limited(
        skopeo()
            .args(["copy", "--quiet", "--all", "--preserve-digests"])
            .args(reg.skopeo_opts("src-"))
            .args(reg.skopeo_opts("dest-"))
            .arg(reg.docker_ref("wso2/wso2am:4.3.0"))
            .arg(reg.docker_ref("acme/base:4.3.0")),
    );
    let since = reg.requests_since(mark);
    let mounts: Vec<&Request> = since.iter().filter(|q| q.is_mounted()).collect();
    assert!(mounts.len() >= 2, "{}", Registry::describe(&since));
    assert!(mounts
        .iter()
        .all(|q| q.query("from") == Some("wso2/wso2am") && q.query("mount").unwrap().starts_with("sha256:")));
    // skopeo mounts layers but copies the config blob.
    let layer_uploads: Vec<&Request> =
        since.iter().filter(|q| q.uploaded_digest().is_some_and(|d| layers.iter().any(|l| l == d))).collect();
    assert!(layer_uploads.is_empty(), "{}", Registry::describe(&since));
    assert_eq!(reg.digest_of("acme/base:4.3.0"), digest);

    // The parser on distribution's own format.
    let q = parse_access_line(
        r#"127.0.0.1 - - [26/Nov/2026:06:11:48 +0000] "POST /v2/a/b/blobs/uploads/?mount=sha256%3Aabc&from=x/y HTTP/1.1" 201 0 "" "curl/7.88.1""#,
    )
    .unwrap();
    assert_eq!(
        (q.method.as_str(), q.status, q.query("mount"), q.repo()),
        ("POST", 201, Some("sha256:abc"), Some("a/b"))
    );
    assert!(q.is_mounted() && !q.is_upload());
    assert_eq!(q.user_agent, "curl/7.88.1");
}

#[test]
fn harness_basic_auth_tls_registry() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::basic("acme", "s3cret+/pw"));
    assert!(reg.is_tls() && reg.ca_path().exists());
    let digest = push_sample(&reg, "wso2/wso2am:4.1.0", &sample_410(false));
    assert_eq!(reg.digest_of("wso2/wso2am:4.1.0"), digest);
    assert_eq!(reg.raw("wso2/wso2am:4.1.0")["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    let ws = Workspace::new();
    reg.verify_pull("wso2/wso2am:4.1.0", &ws.join("pulled"));

    let inspect = |extra: &[&str]| {
        run_limited(
            skopeo().args(["inspect", "--raw"]).args(extra).arg(reg.docker_ref("wso2/wso2am:4.1.0")),
            COMMAND_LIMIT,
        )
    };
    let cert_dir = reg.cert_dir().display().to_string();
    let wrong = inspect(&["--cert-dir", &cert_dir, "--creds", "acme:wrong"]);
    assert!(!wrong.status.success(), "wrong password is refused");
    let anonymous = inspect(&["--cert-dir", &cert_dir, "--no-creds"]);
    assert!(!anonymous.status.success(), "no credentials is refused");
    let untrusted = inspect(&["--creds", "acme:s3cret+/pw"]);
    assert!(!untrusted.status.success(), "the CA is needed");
    assert!(
        String::from_utf8_lossy(&untrusted.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&untrusted.stderr)
    );
    // The certificate is valid for localhost as well as 127.0.0.1.
    run_ok_limited(
        skopeo()
            .args(["inspect", "--raw", "--cert-dir", &cert_dir, "--creds", "acme:s3cret+/pw"])
            .arg(format!("docker://localhost:{}/wso2/wso2am:4.1.0", reg.port())),
    );
    assert!(reg.requests().iter().any(|q| q.status == 401), "the access log has the refusals");
}

#[test]
fn harness_token_auth_registry() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::token("acme", "t0ken/pass+"));
    let digest = push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &["linux/amd64", "linux/arm64"]));
    assert_eq!(reg.digest_of("wso2/wso2am:4.3.0"), digest);
    let ws = Workspace::new();
    reg.verify_pull("wso2/wso2am:4.3.0", &ws.join("pulled"));
    let tokens = reg.token_requests();
    assert!(
        tokens.iter().any(|t| t.status == 200
            && t.user.as_deref() == Some("acme")
            && t.scopes.iter().any(|s| s.contains("repository:wso2/wso2am:") && s.contains("push"))),
        "{tokens:?}"
    );
    let wrong = run_limited(
        skopeo()
            .args(["inspect", "--raw", "--tls-verify=false", "--creds", "acme:nope"])
            .arg(reg.docker_ref("wso2/wso2am:4.3.0")),
        COMMAND_LIMIT,
    );
    assert!(!wrong.status.success());
    assert!(reg.token_requests().iter().any(|t| t.status == 401));

    // The realm directly: GET with basic credentials gives `token`, POST gives `access_token`,
    // and the registry accepts both as bearer tokens for exactly the scope asked.
    let realm = reg.token_host();
    let scope = "repository:wso2/wso2am:pull";
    let auth = format!("Basic {}", basic_auth("acme", "t0ken/pass+"));
    let (s, _, body) = http_request(
        &realm,
        "GET",
        &format!("/token?service={TOKEN_SERVICE}&scope={scope}"),
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(s, 200);
    let token = serde_json::from_slice::<Value>(&body).unwrap()["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {token}");
    let accept = "application/vnd.oci.image.index.v1+json";
    let (s, _, _) = http_request(
        &reg.host(),
        "GET",
        "/v2/wso2/wso2am/manifests/4.3.0",
        &[("Authorization", &bearer), ("Accept", accept)],
        b"",
    )
    .unwrap();
    assert_eq!(s, 200, "the registry accepts the token");
    let (s, h, _) =
        http_request(&reg.host(), "GET", "/v2/other/repo/manifests/4.3.0", &[("Authorization", &bearer)], b"").unwrap();
    assert_eq!(s, 401, "only the scope asked is granted");
    assert!(h.header("WWW-Authenticate").unwrap().contains("repository:other/repo:pull"));
    let form = format!("grant_type=password&username=acme&password=t0ken%2Fpass%2B&service={TOKEN_SERVICE}&scope={scope}&client_id=test");
    let (s, _, body) = http_request(
        &realm,
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(s, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    let refresh = v["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(Some(refresh.clone()), reg.identity_token());
    let form = format!(
        "grant_type=refresh_token&refresh_token={refresh}&service={TOKEN_SERVICE}&scope={scope}&client_id=test"
    );
    let (s, _, body) = http_request(
        &realm,
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(s, 200);
    let access = serde_json::from_slice::<Value>(&body).unwrap()["access_token"].as_str().unwrap().to_string();
    let (s, _, _) = http_request(
        &reg.host(),
        "GET",
        "/v2/wso2/wso2am/manifests/4.3.0",
        &[("Authorization", &format!("Bearer {access}")), ("Accept", accept)],
        b"",
    )
    .unwrap();
    assert_eq!(s, 200);
}

#[test]
fn harness_fault_proxy_forwards_and_injects() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![
            Fault::delay(Match::Any, 50).times(3),         // 0
            Fault::status(Match::ManifestGet, 500).nth(2), // 1
            Fault::too_many(Match::Request { method: "GET".into(), contains: "/v2/_catalog".into() }, 1), // 2
            Fault::reset(Match::BlobGet),                  // 3
            Fault::reset(Match::BlobWrite).nth(2),         // 4
        ],
    );
    let ph = proxy.host();
    let ws = Workspace::new();
    let sample = sample_430(true, &[]);
    sample.write_oci(&ws.join("base"), "4.3.0").unwrap();
    let src = format!("oci:{}:4.3.0", ws.join("base").display());
    // A push through the proxy: uploads (Location rewritten back to the proxy), a reset
    // on the second PATCH/PUT that skopeo's retry gets over.
    run_ok_limited(skopeo().args([
        "copy",
        "--quiet",
        "--retry-times",
        "3",
        "--dest-tls-verify=false",
        &src,
        &format!("docker://{ph}/wso2/wso2am:4.3.0"),
    ]));
    assert_eq!(proxy.fired(0), 3);
    assert_eq!(proxy.fired(4), 1, "{}", proxy.describe());
    assert!(proxy.requests().iter().all(|r| r.method != "PATCH" || r.uri.starts_with("/v2/")));
    let log = reg.requests();
    assert!(log.iter().all(|q| !q.uri.contains(&ph)), "the registry saw upstream URLs only");
    let digest = reg.digest_of("wso2/wso2am:4.3.0");

    // A 500 on the second manifest GET: one inspect fails, the next succeeds.
    let inspect = || {
        run_limited(
            skopeo().args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{ph}/wso2/wso2am:4.3.0")]),
            COMMAND_LIMIT,
        )
    };
    let first = inspect();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let second = inspect();
    assert!(!second.status.success(), "the injected 500 reaches the client");
    assert!(String::from_utf8_lossy(&second.stderr).contains("500"), "{}", String::from_utf8_lossy(&second.stderr));
    let third = inspect();
    assert!(third.status.success());
    assert_eq!(wso2img::digest::Digest::of(&third.stdout).to_string(), digest);
    assert_eq!(proxy.fired(1), 1);

    // 429 with Retry-After, once.
    let (s, h, _) = http_request(&ph, "GET", "/v2/_catalog", &[], b"").unwrap();
    assert_eq!((s, h.header("Retry-After")), (429, Some("1")));
    let (s, _, body) = http_request(&ph, "GET", "/v2/_catalog", &[], b"").unwrap();
    assert_eq!(s, 200);
    assert!(String::from_utf8_lossy(&body).contains("wso2/wso2am"));

    // A reset in the middle of the first blob download; a pull with retries verifies every digest.
    let pulled = ws.join("pulled");
    run_ok_limited(skopeo().args([
        "copy",
        "--quiet",
        "--retry-times",
        "3",
        "--src-tls-verify=false",
        &format!("docker://{ph}/wso2/wso2am:4.3.0"),
        &format!("oci:{}:x", pulled.display()),
    ]));
    assert_eq!(proxy.fired(3), 1, "{}", proxy.describe());
    assert!(proxy.requests().iter().any(|r| r.faults.contains(&3) && r.status == 0));
    // Every request through the proxy reached the registry, except those a fault answered.
    let answered_by_fault =
        proxy.requests().iter().filter(|r| r.faults.iter().any(|&f| f == 1 || f == 2 || f == 4)).count();
    assert!(reg.requests().len() + answered_by_fault >= proxy.requests().len(), "{}", proxy.describe());
}

// ---------------------------------------------------------------------------
// The registry feature (wso2img's registry transport).

/// a) + j) Anonymous HTTP: base in the registry, `build --push` to another repository.
#[test]
fn registry_push_mounts_base_layers_and_pulls_into_docker() {
    if !registry_tools() || busybox().is_none() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    let host = reg.host();
    let base_digest = push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(true, &[]));
    let base_layers = reg.layer_digests("wso2/wso2am:4.3.0");
    let ws = Workspace::new();
    ws.customization();
    config(&ws, &format!("{host}/wso2/wso2am:4.3.0"), &format!("{host}/acme/apim"), "extra_tags = [\"stable\"]\n");
    // Once, as a developer does: the lock records the base, its folder modes
    // among it. A CI runner with that lock and no cache downloads no base layer.
    lock_the_base(&ws);

    let mark = reg.mark();
    let r = run_json(&ws, &["build", "--no-cache", "--push", "--json"]);
    let tag = tag_of(&r);
    let digest = pushed(&r, &format!("{host}/acme/apim"), "pushed");
    assert_eq!(r["base"]["digest"], base_digest);
    assert!(r["tags"].as_array().unwrap().iter().any(|t| t == "stable"), "{r:#}");
    // What the build did, before the checks below add their own requests.
    let log = reg.requests_since(mark);
    assert_eq!(reg.digest_of(&format!("acme/apim:{tag}")), digest, "skopeo sees the output digest");
    assert_eq!(reg.digest_of("acme/apim:stable"), digest, "extra tag");
    let raw = reg.raw(&format!("acme/apim:{tag}"));
    assert_eq!(raw["config"]["digest"], r["content_digest"]);
    reg.verify_pull(&format!("acme/apim:{tag}"), &ws.join("pulled"));

    for l in &base_layers {
        assert!(
            log.iter().any(|q| q.is_mounted()
                && q.query("mount") == Some(l.as_str())
                && q.query("from") == Some("wso2/wso2am")),
            "base layer {l} mounted from wso2/wso2am:\n{}",
            Registry::describe(&log)
        );
        assert!(
            !log.iter().any(|q| q.is_blob_get() && q.blob_digest() == Some(l.as_str())),
            "base layer {l} downloaded:\n{}",
            Registry::describe(&log)
        );
        assert!(!log.iter().any(|q| q.uploaded_digest() == Some(l.as_str())), "base layer {l} uploaded");
    }
    assert!(log.iter().filter(|q| q.is_manifest_put() && q.status == 201).count() >= 1);

    if docker() {
        docker_pull_and_run(&host, &format!("acme/apim:{tag}"), r["content_digest"].as_str().unwrap(), &digest);
    }
}

/// b) Base and target in the same repository: base layers neither mounted nor uploaded.
#[test]
fn registry_push_to_the_base_repository_moves_no_base_layer() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    let host = reg.host();
    push_sample(&reg, "acme/apim:4.3.0", &sample_430(false, &[]));
    let base_layers = reg.layer_digests("acme/apim:4.3.0");
    let ws = Workspace::new();
    ws.customization();
    config(&ws, &format!("{host}/acme/apim:4.3.0"), &format!("{host}/acme/apim"), "");
    lock_the_base(&ws);
    let mark = reg.mark();
    let r = run_json(&ws, &["build", "--no-cache", "--push", "--json"]);
    let digest = pushed(&r, &format!("{host}/acme/apim"), "pushed");
    let tag = tag_of(&r);
    assert_eq!(reg.digest_of(&format!("acme/apim:{tag}")), digest);
    let log = reg.requests_since(mark);
    assert!(!log.iter().any(|q| q.is_mount()), "no mount within one repository:\n{}", Registry::describe(&log));
    for l in &base_layers {
        let touching: Vec<Request> =
            log.iter().filter(|q| q.uri.contains(l.as_str()) && q.method != "HEAD").cloned().collect();
        assert!(touching.is_empty(), "base layer {l} moved:\n{}", Registry::describe(&touching));
    }
    // The customer layers and config were uploaded.
    let uploaded: Vec<&str> = log.iter().filter_map(|q| q.uploaded_digest()).collect();
    for l in r["layers"].as_array().unwrap() {
        assert!(
            uploaded.contains(&l["digest"].as_str().unwrap()),
            "{} uploaded: {}",
            l["name"],
            Registry::describe(&log)
        );
    }
    assert!(uploaded.contains(&r["content_digest"].as_str().unwrap()), "config uploaded");
}

/// c) Base in another registry: streamed from the source, uploaded to the target, `--to docker://`.
#[test]
fn registry_base_from_another_registry_is_streamed() {
    if !registry_tools() {
        return;
    }
    let source = Registry::start(Kind::Anonymous);
    let target = Registry::start(Kind::Anonymous);
    let (sh, th) = (source.host(), target.host());
    push_sample(&source, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    let base_layers = source.layer_digests("wso2/wso2am:4.3.0");
    let ws = Workspace::new();
    ws.customization();
    ws.config("[base]\nimage = \"builtin:wso2am-4.1.0\"\n");
    let (smark, tmark) = (source.mark(), target.mark());
    let base = format!("docker://{sh}/wso2/wso2am:4.3.0");
    let to = format!("docker://{th}/team/apim:pinned");
    let r = run_json(&ws, &["build", "--json", "--base", &base, "--to", &to]);
    let digest = pushed(&r, &format!("{th}/team/apim"), "pushed");
    let (slog, tlog) = (source.requests_since(smark), target.requests_since(tmark));
    assert_eq!(r["tag"].as_str().unwrap().split('-').next(), Some("4.3.0"), "content tag from the base tag");
    assert_eq!(target.digest_of("team/apim:pinned"), digest);
    assert_eq!(
        target.digest_of(&format!("team/apim:{}", tag_of(&r))),
        digest,
        "the --to tag is added to the content tag"
    );
    target.verify_pull("team/apim:pinned", &ws.join("pulled"));

    for l in &base_layers {
        assert!(
            slog.iter().any(|q| q.is_blob_get() && q.blob_digest() == Some(l.as_str()) && q.status == 200),
            "{l} read from the source:\n{}",
            Registry::describe(&slog)
        );
        assert!(
            tlog.iter().any(|q| q.uploaded_digest() == Some(l.as_str())),
            "{l} uploaded to the target:\n{}",
            Registry::describe(&tlog)
        );
    }
    assert!(!slog.iter().any(|q| q.is_upload() || q.is_manifest_put()), "nothing written to the source");
}

/// d) Skip-if-present, a new tag on new content, and `--force` for a moved tag.
#[test]
fn registry_push_skips_present_content_and_refuses_to_move_a_tag() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    let host = reg.host();
    push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    let ws = Workspace::new();
    ws.customization();
    let base = format!("{host}/wso2/wso2am:4.3.0");
    let repo = format!("{host}/acme/apim");
    config(&ws, &base, &repo, "");
    // A repository without tags: each layer is compressed as it is hashed.
    let out = wso2img_run(&ws, &["-v", "build", "--push", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hashed and compressed in one pass"));
    let first = json(&out);
    let d1 = pushed(&first, &repo, "pushed");
    assert_eq!(run_json(&ws, &["plan", "--json"])["content_digest"], first["content_digest"]);

    let mark = reg.mark();
    let out = wso2img_run(&ws, &["build", "--push", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let again = json(&out);
    assert_eq!(again["tag"], first["tag"]);
    assert_eq!(pushed(&again, &repo, "up-to-date"), d1);
    no_uploads_or_manifest_puts(&reg.requests_since(mark));

    ws.write("jars/acme-driver-1.0.jar", &real_jar("com.acme", "acme-driver", "1.0.1"));
    let mark = reg.mark();
    let out = wso2img_run(&ws, &["-v", "build", "--push", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let changed = json(&out);
    let d2 = pushed(&changed, &repo, "pushed");
    // Only the changed jar's layer is made and sent: the other layers'
    // blobs, known from the first build, were found in the registry before
    // anything was compressed.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("in one pass"), "the repository has tags: hashed first");
    let made: Vec<&str> = log.lines().filter(|l| l.contains(" layer ") && l.contains(" gzip, ")).collect();
    assert_eq!(made.len(), 1, "one layer compressed: {made:?}");
    assert!(made[0].contains("layer jars.00:"), "{made:?}");
    let driver = changed["layers"].as_array().unwrap().iter().find(|l| l["name"] == "jars.00").unwrap();
    let uploads: Vec<String> =
        reg.requests_since(mark).iter().filter_map(|q| q.uploaded_digest().map(String::from)).collect();
    assert!(uploads.contains(&driver["digest"].as_str().unwrap().to_string()), "{uploads:?}");
    assert_eq!(uploads.len(), 2, "the changed layer and the config: {uploads:?}");
    for (a, b) in first["layers"].as_array().unwrap().iter().zip(changed["layers"].as_array().unwrap()) {
        if a["name"] != "jars.00" {
            assert_eq!(a["digest"], b["digest"], "unchanged layer {} reported with its digest", a["name"]);
        }
    }
    let copy = tempfile::tempdir().unwrap();
    run_ok_limited(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{repo}:{}", tag_of(&changed)),
        &format!("oci:{}:x", copy.path().display()),
    ]));
    assert_ne!(changed["tag"], first["tag"], "new content, new tag");
    assert_ne!(d2, d1);
    assert_eq!(reg.digest_of(&format!("acme/apim:{}", tag_of(&first))), d1, "the old tag stays");
    assert_eq!(reg.digest_of(&format!("acme/apim:{}", tag_of(&changed))), d2);

    config(&ws, &base, &repo, "tag = \"fixed\"\n");
    let fixed = run_json(&ws, &["build", "--push", "--json"]);
    assert_eq!(fixed["tag"], "fixed");
    assert_eq!(pushed(&fixed, &repo, "pushed"), d2, "same content, new tag");
    ws.write("jars/acme-driver-1.0.jar", &real_jar("com.acme", "acme-driver", "1.0.2"));
    let mark = reg.mark();
    let refused = wso2img_run(&ws, &["-q", "build", "--push", "--json"]);
    let line = one_line_error(&refused, 1, &[]);
    assert!(line.contains("fixed"), "names the tag: {line}");
    assert!(refused.stdout.is_empty() || !String::from_utf8_lossy(&refused.stdout).contains("\"pushed\""));
    assert_eq!(reg.digest_of("acme/apim:fixed"), d2, "the tag did not move");
    assert!(!reg
        .requests_since(mark)
        .iter()
        .any(|q| q.is_manifest_put() && q.status == 201 && q.path().ends_with("/fixed")));

    let forced = run_json(&ws, &["build", "--push", "--json", "--force"]);
    let d3 = pushed(&forced, &repo, "pushed");
    assert_ne!(d3, d2);
    assert_eq!(reg.digest_of("acme/apim:fixed"), d3, "--force moves the tag");
}

/// e) Basic auth over TLS: `--ca-cert`, credentials from DOCKER_CONFIG (auths,
/// credHelpers, credsStore), REGISTRY_AUTH_FILE; clear one-line errors.
#[test]
fn registry_basic_auth_over_tls() {
    if !registry_tools() {
        return;
    }
    const PASSWORD: &str = "Sup3r+s3cret/pw";
    const WRONG: &str = "Wr0ng+passw0rd/x";
    let reg = Registry::start(Kind::basic("acme", PASSWORD));
    let host = reg.host();
    push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    let ws = Workspace::new();
    ws.customization();
    let repo = format!("{host}/acme/apim");
    config(&ws, &format!("{host}/wso2/wso2am:4.3.0"), &repo, "");
    let ca = reg.ca_path().display().to_string();
    let good =
        docker_config(&ws.join("docker-good"), &j!({"auths": {host.clone(): {"auth": basic_auth("acme", PASSWORD)}}}));
    let bad =
        docker_config(&ws.join("docker-bad"), &j!({"auths": {host.clone(): {"auth": basic_auth("acme", WRONG)}}}));

    let args = ["--ca-cert", ca.as_str(), "build", "--push", "--json"];
    let out = run_limited(wso2img(&ws).env("DOCKER_CONFIG", &good).args(args), COMMAND_LIMIT);
    let r = json(&checked(&args, out));
    let digest = pushed(&r, &repo, "pushed");
    assert_eq!(reg.digest_of(&format!("acme/apim:{}", tag_of(&r))), digest);

    let quiet = ["-q", "--ca-cert", ca.as_str(), "build", "--push", "--json"];
    let wrong = run_limited(wso2img(&ws).env("DOCKER_CONFIG", &bad).args(quiet), COMMAND_LIMIT);
    let line = one_line_error(&wrong, 1, &[]);
    assert!(line.contains(&host), "names the registry: {line}");
    assert!(line.contains("credentials"), "says credentials were used: {line}");
    for secret in [PASSWORD, WRONG, &basic_auth("acme", WRONG), &basic_auth("acme", PASSWORD)] {
        assert!(!String::from_utf8_lossy(&wrong.stderr).contains(secret), "leaks a secret: {line}");
        assert!(!String::from_utf8_lossy(&wrong.stdout).contains(secret));
    }
    let none = run_limited(wso2img(&ws).args(quiet), COMMAND_LIMIT);
    let line = one_line_error(&none, 1, &[]);
    assert!(line.contains(&host) && line.contains("credentials"), "{line}");

    let untrusted =
        run_limited(wso2img(&ws).env("DOCKER_CONFIG", &good).args(["-q", "build", "--push", "--json"]), COMMAND_LIMIT);
    let line = one_line_error(&untrusted, 1, &[]);
    assert!(line.to_lowercase().contains("certificate"), "mentions the certificate: {line}");
    assert!(!line.contains(PASSWORD));

    // The same credentials through a credential helper (credHelpers and credsStore) and REGISTRY_AUTH_FILE:
    // the content is already there, so each run is up-to-date, which needs authenticated HEADs.
    let bin_dir = ws.join("helpers");
    fs::create_dir_all(&bin_dir).unwrap();
    let helper_log = ws.join("helper.log");
    let helper = bin_dir.join("docker-credential-wso2imgtest");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread -r url || true\necho \"$1 $url\" >> '{}'\n[ \"$1\" = get ] || exit 1\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"acme\",\"Secret\":\"{PASSWORD}\"}}\\n' \"$url\"\n",
            helper_log.display()
        ),
    )
    .unwrap();
    set_mode(&helper, 0o755);
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let helpers = docker_config(&ws.join("docker-helpers"), &j!({"credHelpers": {host.clone(): "wso2imgtest"}}));
    let store = docker_config(&ws.join("docker-store"), &j!({"credsStore": "wso2imgtest"}));
    for cfg in [&helpers, &store] {
        let out = run_limited(wso2img(&ws).env("DOCKER_CONFIG", cfg).env("PATH", &path).args(args), COMMAND_LIMIT);
        let again = json(&checked(&args, out));
        assert_eq!(pushed(&again, &repo, "up-to-date"), digest, "{}", cfg.display());
    }
    let calls = fs::read_to_string(&helper_log).unwrap_or_default();
    assert!(
        calls.lines().filter(|l| l.starts_with("get ") && l.contains(&host)).count() >= 2,
        "helper called with the registry: {calls}"
    );
    let auth_file = ws.join("auth.json");
    fs::write(
        &auth_file,
        serde_json::to_vec(&j!({"auths": {host.clone(): {"auth": basic_auth("acme", PASSWORD)}}})).unwrap(),
    )
    .unwrap();
    let out = run_limited(wso2img(&ws).env("REGISTRY_AUTH_FILE", &auth_file).args(args), COMMAND_LIMIT);
    let again = json(&checked(&args, out));
    assert_eq!(pushed(&again, &repo, "up-to-date"), digest);
}

/// f) Bearer tokens, credentials from WSO2IMG_REGISTRY_USERNAME/PASSWORD (optionally scoped by host).
#[test]
fn registry_token_auth_with_env_credentials() {
    if !registry_tools() {
        return;
    }
    const PASSWORD: &str = "t0ken+pass/word";
    let reg = Registry::start(Kind::token("acme", PASSWORD));
    let host = reg.host();
    push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    let ws = Workspace::new();
    ws.customization();
    let repo = format!("{host}/acme/apim");
    config(&ws, &format!("{host}/wso2/wso2am:4.3.0"), &repo, "");
    let args = ["build", "--push", "--json"];
    let before = reg.token_requests().len();
    let out = run_limited(
        wso2img(&ws).env("WSO2IMG_REGISTRY_USERNAME", "acme").env("WSO2IMG_REGISTRY_PASSWORD", PASSWORD).args(args),
        COMMAND_LIMIT,
    );
    let r = json(&checked(&args, out));
    let digest = pushed(&r, &repo, "pushed");
    let tag = tag_of(&r);
    assert_eq!(reg.digest_of(&format!("acme/apim:{tag}")), digest);
    reg.verify_pull(&format!("acme/apim:{tag}"), &ws.join("pulled"));
    let tokens: Vec<TokenRequest> = reg.token_requests().into_iter().skip(before).collect();
    assert!(
        tokens
            .iter()
            .any(|t| t.status == 200
                && t.scopes.iter().any(|s| s.contains("repository:acme/apim:") && s.contains("push"))),
        "a push token for acme/apim: {tokens:?}"
    );

    // Scoped to the registry by host: applies; scoped to another: does not.
    let out = run_limited(
        wso2img(&ws)
            .env("WSO2IMG_REGISTRY_USERNAME", "acme")
            .env("WSO2IMG_REGISTRY_PASSWORD", PASSWORD)
            .env("WSO2IMG_REGISTRY_HOST", &host)
            .args(args),
        COMMAND_LIMIT,
    );
    assert_eq!(pushed(&json(&checked(&args, out)), &repo, "up-to-date"), digest);
    let out = run_limited(
        wso2img(&ws)
            .env("WSO2IMG_REGISTRY_USERNAME", "acme")
            .env("WSO2IMG_REGISTRY_PASSWORD", PASSWORD)
            .env("WSO2IMG_REGISTRY_HOST", "registry.example.com")
            .args(["-q", "build", "--push", "--json"]),
        COMMAND_LIMIT,
    );
    let line = one_line_error(&out, 1, &[]);
    assert!(line.contains(&host) && line.contains("credentials"), "{line}");
    assert!(!line.contains(PASSWORD));
}

/// g) A multi-platform OCI base with an attestation entry, and a Docker media type base.
#[test]
fn registry_multi_platform_and_docker_media_types() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    let host = reg.host();
    let mut multi = sample_430(false, &["linux/amd64", "linux/arm64"]);
    multi.attestation = true;
    push_sample(&reg, "wso2/wso2am:4.3.0", &multi);
    assert_eq!(
        reg.raw("wso2/wso2am:4.3.0")["manifests"].as_array().unwrap().len(),
        4,
        "fixture has an attestation entry per platform"
    );
    push_sample(&reg, "wso2/wso2am:4.1.0", &sample_410(false));
    let ws = Workspace::new();
    ws.customization();
    let repo = format!("{host}/acme/apim");
    config(&ws, &format!("{host}/wso2/wso2am:4.3.0"), &repo, "");

    let r = run_json(&ws, &["build", "--push", "--json"]);
    let digest = pushed(&r, &repo, "pushed");
    let tag = tag_of(&r);
    let index = reg.raw(&format!("acme/apim:{tag}"));
    assert_eq!(reg.digest_of(&format!("acme/apim:{tag}")), digest);
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let plats: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
        })
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64"], "exactly the two platforms, no attestation");
    for m in index["manifests"].as_array().unwrap() {
        let child = reg.raw(&format!("acme/apim@{}", m["digest"].as_str().unwrap()));
        assert_eq!(child["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    }
    reg.verify_pull(&format!("acme/apim:{tag}"), &ws.join("pulled-multi"));

    let arm = run_json(&ws, &["build", "--push", "--json", "--platform", "linux/arm64"]);
    let arm_digest = pushed(&arm, &repo, "pushed");
    let m = reg.raw(&format!("acme/apim:{}", tag_of(&arm)));
    assert_eq!(reg.digest_of(&format!("acme/apim:{}", tag_of(&arm))), arm_digest);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json", "one platform, one manifest");
    assert_eq!(m["config"]["digest"], arm["content_digest"]);

    let docker_base = format!("docker://{host}/wso2/wso2am:4.1.0");
    ws.theme_for_41();
    let d = run_json(&ws, &["build", "--push", "--json", "--base", &docker_base]);
    let d_digest = pushed(&d, &repo, "pushed");
    let dtag = tag_of(&d);
    assert!(dtag.starts_with("4.1.0-"), "{dtag}");
    let m = reg.raw(&format!("acme/apim:{dtag}"));
    assert_eq!(reg.digest_of(&format!("acme/apim:{dtag}")), d_digest);
    assert_eq!(m["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(m["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
    }
    reg.verify_pull(&format!("acme/apim:{dtag}"), &ws.join("pulled-docker"));
}

/// h) Faults on the way to the registry: 5xx, resets, 429 with Retry-After, slow answers.
#[test]
fn registry_push_survives_faults() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    let proxy = FaultProxy::start(
        &reg.host(),
        vec![
            Fault::status(Match::BlobPut, 500),            // 0: the first upload PUT fails
            Fault::reset(Match::BlobWrite).nth(4),         // 1: a later PATCH/PUT is cut
            Fault::too_many(Match::ManifestPut, 1),        // 2: the first manifest PUT is throttled
            Fault::reset(Match::BlobGet),                  // 3: the first blob download is cut midway
            Fault::status(Match::BlobHead, 503),           // 4: a HEAD fails
            Fault::delay(Match::Any, 300).nth(2).times(4), // 5: slow answers
        ],
    );
    let ph = proxy.host();
    let ws = Workspace::new();
    ws.customization();
    let repo = format!("{ph}/acme/apim");
    config(&ws, &format!("{ph}/wso2/wso2am:4.3.0"), &repo, "");
    let r = run_json(&ws, &["build", "--push", "--json"]);
    let digest = pushed(&r, &repo, "pushed");
    let tag = tag_of(&r);
    for (i, what) in [
        "500 on a blob PUT",
        "reset on a PATCH/PUT",
        "429 on the manifest PUT",
        "reset on a blob GET",
        "503 on a HEAD",
        "delay",
    ]
    .iter()
    .enumerate()
    {
        assert!(proxy.fired(i) >= 1, "fault {i} ({what}) never fired:\n{}", proxy.describe());
    }
    assert_eq!(reg.digest_of(&format!("acme/apim:{tag}")), digest);
    reg.verify_pull(&format!("acme/apim:{tag}"), &ws.join("pulled"));
    // The throttled manifest PUT was retried after Retry-After and then succeeded.
    let reqs = proxy.requests();
    let puts: Vec<&ProxiedRequest> =
        reqs.iter().filter(|q| q.method == "PUT" && q.uri.contains("/manifests/")).collect();
    assert!(puts.len() >= 2 && puts[0].status == 429 && puts.iter().any(|q| q.status == 201), "{}", proxy.describe());
}

/// h) A base streamed across registries survives a reset midway and a 500 on a download.
#[test]
fn registry_streamed_base_survives_a_cut_download() {
    if !registry_tools() {
        return;
    }
    let source = Registry::start(Kind::Anonymous);
    let target = Registry::start(Kind::Anonymous);
    push_sample(&source, "wso2/wso2am:4.3.0", &sample_430(true, &[]));
    let layers = source.layer_digests("wso2/wso2am:4.3.0");
    let proxy = FaultProxy::start(
        &source.host(),
        vec![
            Fault::status(Match::Request { method: "GET".into(), contains: layers[0].clone() }, 500),
            Fault::reset(Match::Request { method: "GET".into(), contains: layers[1].clone() }),
        ],
    );
    let ws = Workspace::new();
    ws.customization();
    let repo = format!("{}/acme/apim", target.host());
    config(&ws, &format!("{}/wso2/wso2am:4.3.0", proxy.host()), &repo, "");
    let r = run_json(&ws, &["build", "--push", "--json"]);
    let digest = pushed(&r, &repo, "pushed");
    assert_eq!(proxy.fired(0), 1, "{}", proxy.describe());
    assert_eq!(proxy.fired(1), 1, "{}", proxy.describe());
    let tag = tag_of(&r);
    assert_eq!(target.digest_of(&format!("acme/apim:{tag}")), digest);
    target.verify_pull(&format!("acme/apim:{tag}"), &ws.join("pulled"));
    let tlog = target.requests();
    for l in &layers {
        assert!(
            tlog.iter().any(|q| q.uploaded_digest() == Some(l.as_str())),
            "{l} uploaded:\n{}",
            Registry::describe(&tlog)
        );
    }
}

/// i) `tag` adds tags without moving blobs; `copy` keeps the digest (mount
/// within a registry, streaming across registries).
#[test]
fn registry_tag_and_copy() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    let other = Registry::start(Kind::Anonymous);
    let (host, oh) = (reg.host(), other.host());
    push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    let ws = Workspace::new();
    ws.customization();
    let repo = format!("{host}/acme/apim");
    config(&ws, &format!("{host}/wso2/wso2am:4.3.0"), &repo, "");
    let r = run_json(&ws, &["build", "--push", "--json"]);
    let digest = pushed(&r, &repo, "pushed");
    let tag = tag_of(&r);
    let src = format!("{repo}:{tag}");

    let mark = reg.mark();
    let release = format!("{repo}:release-1");
    let release0 = format!("{repo}:release-1.0");
    let out = checked(&["tag"], wso2img_run(&ws, &["tag", &src, &release, &release0]));
    assert_prints_digest(&out, &digest);
    assert_eq!(reg.digest_of("acme/apim:release-1"), digest);
    assert_eq!(reg.digest_of("acme/apim:release-1.0"), digest);
    let log = reg.requests_since(mark);
    assert!(!log.iter().any(|q| q.is_blob_get()), "tag downloads no blob:\n{}", Registry::describe(&log));
    assert!(!log.iter().any(|q| q.is_upload()), "tag uploads no blob:\n{}", Registry::describe(&log));

    let mark = reg.mark();
    let dst = format!("{host}/other/apim:{tag}");
    let out = checked(&["copy"], wso2img_run(&ws, &["copy", "--json", &src, &dst]));
    let c = json(&out);
    assert_eq!(c["digest"], digest.as_str(), "{c:#}");
    assert!(!c["outputs"].as_array().expect("outputs").is_empty(), "{c:#}");
    assert_eq!(reg.digest_of(&format!("other/apim:{tag}")), digest);
    let log = reg.requests_since(mark);
    assert!(
        log.iter().any(|q| q.is_mounted() && q.query("from") == Some("acme/apim")),
        "copy mounts:\n{}",
        Registry::describe(&log)
    );
    assert!(
        !log.iter().any(|q| q.uploaded_digest().is_some()),
        "nothing uploaded within one registry:\n{}",
        Registry::describe(&log)
    );

    let far = format!("docker://{oh}/acme/apim:{tag}");
    let out = checked(&["copy"], wso2img_run(&ws, &["copy", &format!("docker://{src}"), &far]));
    assert_prints_digest(&out, &digest);
    assert_eq!(other.digest_of(&format!("acme/apim:{tag}")), digest);
    other.verify_pull(&format!("acme/apim:{tag}"), &ws.join("pulled"));
}

/// Exit code 2 and one line for a reference that does not parse, before any network.
#[test]
fn registry_bad_references_are_usage_errors() {
    let ws = Workspace::new();
    let line = one_line_error(
        &wso2img_run(&ws, &["-q", "tag", "127.0.0.1:1/UPPER/apim:1", "127.0.0.1:1/acme/apim:2"]),
        2,
        &[],
    );
    assert!(line.contains("UPPER"), "names the reference: {line}");
    let line = one_line_error(
        &wso2img_run(&ws, &["-q", "copy", "127.0.0.1:1/acme/apim:1", "docker://127.0.0.1:1/acme/apim:bad:tag"]),
        2,
        &[],
    );
    assert!(line.contains("bad:tag"), "names the reference: {line}");
}

/// An interrupted push (kill -9 at several moments) never leaves the content
/// tag on an incomplete image, and rerunning completes it.
#[test]
fn registry_push_killed_at_any_moment_never_tags_a_partial_image() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    // Every answer is slow, so a kill lands in the middle of the push.
    let proxy = FaultProxy::start(&reg.host(), vec![Fault::delay(Match::Any, 60).times(10_000)]);
    let ph = proxy.host();
    let ws = Workspace::new();
    ws.customization();
    config(&ws, &format!("{ph}/wso2/wso2am:4.3.0"), &format!("{ph}/acme/apim"), "");
    let tag = tag_of(&run_json(&ws, &["plan", "--json"]));
    let tagged = || {
        skopeo()
            .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{}/acme/apim:{tag}", reg.host())])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    for (round, after_ms) in [150u64, 400, 700, 1000].into_iter().enumerate() {
        let mut child = wso2img(&ws)
            .args(["-q", "build", "--push"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(after_ms));
        let _ = child.kill();
        let _ = child.wait();
        if tagged() {
            // The tag only ever appears last: when it is there, the image is whole.
            reg.verify_pull(&format!("acme/apim:{tag}"), &ws.join(&format!("pulled-{round}")));
        }
    }
    let r = run_json(&ws, &["build", "--push", "--json"]);
    let status = r["outputs"][0]["status"].as_str().unwrap().to_string();
    assert!(status == "pushed" || status == "up-to-date", "{r:#}");
    assert!(tagged());
    reg.verify_pull(&format!("acme/apim:{tag}"), &ws.join("pulled-final"));
}

/// A build asks its registry destination whether the repository is empty
/// while the folders are walked and the base is read, not after: with the
/// base's manifest answered slowly, the destination's tag list is requested
/// before the base's config, which needs that manifest — and only then.
#[test]
fn registry_destination_is_asked_while_the_base_is_read() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    let slow_base = Match::Request { method: "GET".into(), contains: "/wso2/wso2am/manifests/".into() };
    let proxy = FaultProxy::start(&reg.host(), vec![Fault::delay(slow_base, 700).times(100)]);
    let ph = proxy.host();
    let ws = Workspace::new();
    ws.customization();
    config(&ws, &format!("{ph}/wso2/wso2am:4.3.0"), &format!("{ph}/acme/apim"), "");
    let r = run_json(&ws, &["build", "--push", "--json"]);
    assert_eq!(r["outputs"][0]["status"], "pushed", "{r:#}");
    let requests = proxy.requests();
    let at = |what: &dyn Fn(&ProxiedRequest) -> bool| requests.iter().position(what);
    let tags = at(&|q| q.uri.contains("/acme/apim/tags/list"));
    let base_config = at(&|q| q.method == "GET" && q.uri.contains("/wso2/wso2am/blobs/sha256:"));
    assert!(
        matches!((tags, base_config), (Some(t), Some(c)) if t < c),
        "the destination was asked after the base was read:\n{}",
        proxy.describe()
    );
    let asked = requests.iter().filter(|q| q.uri.contains("/acme/apim/tags/list")).count();
    assert_eq!(asked, 1, "the early answer is the one used:\n{}", proxy.describe());
}

/// stdout of `build` is one pullable `HOST/REPO@sha256:<manifest digest>` per
/// registry destination and `oci:DIR:TAG@sha256:…` per layout; `-q` prints the
/// same; `--json` has the same lines as `pinned`. The printed line is pulled
/// exactly as printed.
#[test]
fn build_prints_a_pullable_reference_per_output() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    let host = reg.host();
    push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    let ws = Workspace::new();
    ws.customization();
    config(&ws, &format!("{host}/wso2/wso2am:4.3.0"), &format!("{host}/acme/apim"), "");
    let args = ["build", "--push", "--to", "oci:out"];
    let out = checked(&args, wso2img_run(&ws, &args));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "one line per written image: {text}");
    let r = run_json(&ws, &["build", "--push", "--to", "oci:out", "--json"]);
    let tag = tag_of(&r);
    let digest = reg.digest_of(&format!("acme/apim:{tag}"));
    let layout = r["outputs"].as_array().unwrap().iter().find(|o| o["ref"] == "oci:out").expect("oci output");
    assert_eq!(lines[0], format!("oci:out:{tag}@{}", layout["digest"].as_str().unwrap()), "{text}");
    assert_eq!(lines[1], format!("{host}/acme/apim@{digest}"), "{text}");
    let pinned: Vec<&str> = r["outputs"].as_array().unwrap().iter().map(|o| o["pinned"].as_str().unwrap()).collect();
    assert_eq!(pinned, lines, "--json names the same references: {r:#}");
    let quiet = checked(&args, wso2img_run(&ws, &["-q", "build", "--push", "--to", "oci:out"]));
    assert_eq!(String::from_utf8(quiet.stdout).unwrap(), text, "-q prints the same lines");
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));

    // Pulled exactly as printed.
    let inspected = run_limited(
        skopeo().args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{}", lines[1])]),
        COMMAND_LIMIT,
    );
    assert!(inspected.status.success(), "{}", String::from_utf8_lossy(&inspected.stderr));
    assert_eq!(wso2img::digest::Digest::of(&inspected.stdout).to_string(), digest);
    if docker() {
        docker_ok(&["pull", "--quiet", lines[1]]);
        let _ = Command::new("docker").args(["rmi", "-f", lines[1]]).output();
    }
}
