//! Supply chain (issue 14): images signed by `build --push --sign-key` are
//! accepted by skopeo 1.9 under a `sigstoreSigned` policy and refused with
//! another key or once the tag names unsigned content; their attestations'
//! DSSE signatures verify with pyca cryptography, the SBOM validates as
//! CycloneDX 1.5 and the provenance names the locked base digest; a base
//! signed the way containers/image signs (Debian's skopeo cannot sign with
//! sigstore keys: an independent Python signer writes its format) verifies,
//! an unsigned or wrongly signed one stops the build; bad signing keys stop it
//! with exit 2 before anything is pushed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::registry_support::*;
use super::support::*;

/// The Python of tests/run.sh's venv (cryptography, PyNaCl, cyclonedx), or a skip.
fn python() -> Option<String> {
    match std::env::var("WSO2IMG_TEST_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(!in_ci(), "WSO2IMG_TEST_PYTHON (set by tests/run.sh) is required in CI");
            skipped("WSO2IMG_TEST_PYTHON");
            None
        }
    }
}

fn check_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/suite/cosign_check.py")
}

/// A new P-256 key pair in `dir`: (`NAME.pem`, `NAME.pub`).
fn keypair(dir: &Path, name: &str, curve: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    ok(Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt"])
        .arg(format!("ec_paramgen_curve:{curve}"))
        .arg("-out")
        .arg(&key));
    ok(Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&key).arg("-out").arg(&public));
    (key, public)
}

/// skopeo with a policy requiring a sigstore signature by `public` for the
/// test registry, and registries.d reading sigstore attachments; HOME and XDG
/// inside `dir`, so nothing of the machine's configuration is read.
fn skopeo_policed(dir: &Path, registry: &Registry, public: &Path) -> Command {
    let policy = dir.join("policy.json");
    let doc = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {registry.host(): [{"type": "sigstoreSigned", "keyPath": public, "signedIdentity": {"type": "matchRepoDigestOrExact"}}]},
            "oci": {"": [{"type": "insecureAcceptAnything"}]},
        }
    });
    fs::write(&policy, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let mut c = Command::new("skopeo");
    c.env_remove("REGISTRY_AUTH_FILE").env_remove("DOCKER_CONFIG");
    c.env("HOME", dir).env("XDG_CONFIG_HOME", dir.join("xdg")).env("XDG_RUNTIME_DIR", dir.join("run"));
    c.arg("--policy").arg(&policy).arg("--registries.d").arg(registries_d(dir, registry));
    c
}

/// A registries.d that reads and writes sigstore attachments for the test registry.
fn registries_d(dir: &Path, registry: &Registry) -> PathBuf {
    let d = dir.join("registries.d");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("test.yaml"), format!("docker:\n  {}:\n    use-sigstore-attachments: true\n", registry.host()))
        .unwrap();
    d
}

/// `skopeo copy` of `image` out of the registry under the policy.
fn policed_copy(dir: &Path, registry: &Registry, public: &Path, image: &str) -> Output {
    let out = dir.join(format!("copy-{}", fastrand_name()));
    let mut c = skopeo_policed(dir, registry, public);
    c.args(["copy", "--quiet", "--src-tls-verify=false", "--src-no-creds"])
        .arg(registry.docker_ref(image))
        .arg(format!("oci:{}:x", out.display()));
    run_limited(&mut c, COMMAND_LIMIT)
}

/// What skopeo's `sigstoreSigned` policy made of an image.
#[derive(Debug, PartialEq)]
enum Verdict {
    Accepted,
    Refused(String),
    /// Debian's skopeo 1.9 is built with sigstore signature checks patched
    /// out ("Debian-local change: sigstore disabled"): it still reads the
    /// `.sig` tag and rejects each simple-signing layer it found, one reason each.
    ChecksDisabled {
        signatures: usize,
    },
}

fn verdict(out: &Output) -> Verdict {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    const DISABLED: &str = "Debian-local change: sigstore disabled";
    if out.status.success() {
        Verdict::Accepted
    } else if err.contains(DISABLED) {
        Verdict::ChecksDisabled { signatures: err.matches(DISABLED).count() }
    } else {
        Verdict::Refused(err)
    }
}

/// The `.sig` signatures of `repo@digest` as containers/image's rules read
/// them, checked with `public` by pyca cryptography.
fn signatures(python: &str, registry: &Registry, repo: &str, digest: &str, public: &Path) -> Vec<Value> {
    let out =
        ok(Command::new(python).arg(check_script()).args(["signatures", &registry.host(), repo, digest]).arg(public));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fastrand_name() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst).to_string()
}

fn run_json(ws: &Workspace, args: &[&str]) -> Value {
    let out = wso2img_run(ws, args);
    assert!(
        out.status.success(),
        "wso2img {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out)
}

/// Requires exit `code` and one `error:` line; returns it.
fn one_line_error(out: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

fn layers_of(registry: &Registry, name: &str) -> usize {
    registry.raw(name)["layers"].as_array().map(Vec::len).unwrap_or(0)
}

#[test]
fn signed_push_is_accepted_by_skopeo_policy_and_attestations_verify() {
    if !registry_tools() {
        return;
    }
    let Some(python) = python() else { return };
    let registry = Registry::start(Kind::Anonymous);
    let base_digest = push_sample(&registry, "wso2/wso2am:4.3.0", &sample_430(false, &["linux/amd64"]));
    let ws = Workspace::new();
    ws.customization();
    let host = registry.host();
    ws.config(&format!(
        "[base]\nimage = \"{host}/wso2/wso2am:4.3.0\"\n[target]\nrepository = \"{host}/acme/apim\"\nextra_tags = [\"release\"]\n"
    ));
    let keys = ws.join("keys");
    fs::create_dir_all(&keys).unwrap();
    let (key, public) = keypair(&keys, "signer", "P-256");
    let (_, other_public) = keypair(&keys, "other", "P-256");
    let key_arg = key.display().to_string();

    let r = run_json(&ws, &["build", "--push", "--json", "--sign-key", &key_arg]);
    let tag = r["tag"].as_str().unwrap().to_string();
    let digest = r["outputs"][0]["digest"].as_str().unwrap().to_string();
    let sig_tag = format!("acme/apim:{}.sig", digest.replace(':', "-"));
    assert_eq!(layers_of(&registry, &sig_tag), 2, "one signature per pushed tag (content tag, release)");

    // Independently (containers/image's payload rules, pyca cryptography): one signature per tag, each
    // naming the digest and HOST/REPO:TAG, all made with the key and none with another.
    let sigs = signatures(&python, &registry, "acme/apim", &digest, &public);
    let mut refs: Vec<&str> = sigs.iter().map(|s| s["docker_reference"].as_str().unwrap()).collect();
    refs.sort();
    let mut want = vec![format!("{host}/acme/apim:{tag}"), format!("{host}/acme/apim:release")];
    want.sort();
    assert_eq!(refs, want);
    assert!(sigs.iter().all(|s| s["verified"] == true && s["digest"] == digest.as_str()), "{sigs:#?}");
    assert!(signatures(&python, &registry, "acme/apim", &digest, &other_public).iter().all(|s| s["verified"] == false));

    // skopeo's sigstoreSigned policy accepts it under either tag and by digest, and refuses another key.
    let pol = ws.join("skopeo");
    fs::create_dir_all(&pol).unwrap();
    for image in [format!("acme/apim:{tag}"), "acme/apim:release".into(), format!("acme/apim@{digest}")] {
        match verdict(&policed_copy(&pol, &registry, &public, &image)) {
            Verdict::Accepted => {}
            Verdict::ChecksDisabled { signatures } => {
                assert_eq!(signatures, 2, "skopeo reads both signatures of {image}")
            }
            Verdict::Refused(e) => panic!("skopeo refused {image}: {e}"),
        }
    }
    let v = verdict(&policed_copy(&pol, &registry, &other_public, &format!("acme/apim:{tag}")));
    assert_ne!(v, Verdict::Accepted, "another key must be refused");

    // The attestations: DSSE verified independently, SBOM valid, provenance names the locked base.
    let out =
        ok(Command::new(&python).arg(check_script()).args(["attestations", &host, "acme/apim", &digest]).arg(&public));
    let statements: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let find = |t: &str| {
        statements.iter().find(|s| s["predicateType"] == t).unwrap_or_else(|| panic!("{t}: {statements:#?}")).clone()
    };
    let sbom = find("https://cyclonedx.org/bom");
    let slsa = find("https://slsa.dev/provenance/v1");
    for s in [&sbom, &slsa] {
        assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(s["subject"][0]["name"], format!("{host}/acme/apim"));
        assert_eq!(s["subject"][0]["digest"]["sha256"], digest.trim_start_matches("sha256:"));
    }
    let bom_file = ws.join("attested-sbom.json");
    fs::write(&bom_file, serde_json::to_vec(&sbom["predicate"]).unwrap()).unwrap();
    assert_eq!(sbom["predicate"]["specVersion"], "1.5");
    ok(Command::new(&python).arg(check_script()).arg("validate-cyclonedx").arg(&bom_file));
    let lock = fs::read_to_string(ws.join("wso2img.lock")).unwrap();
    let locked: Value = toml_digest(&lock);
    assert_eq!(locked, Value::String(base_digest.clone()));
    let deps = slsa["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().unwrap();
    assert_eq!(deps[0]["digest"]["sha256"], base_digest.trim_start_matches("sha256:"), "{deps:#?}");
    assert_eq!(deps[0]["uri"], format!("docker://{host}/wso2/wso2am:4.3.0"));
    let jar = deps.iter().find(|d| d["name"] == "jars/acme-driver-1.0.jar").expect("the jar is listed");
    assert_eq!(
        jar["digest"]["sha256"],
        wso2img::digest::Digest::of(&fs::read(ws.join("jars/acme-driver-1.0.jar")).unwrap()).hex()
    );
    assert!(deps.iter().any(|d| d["name"] == "wso2img.toml" && d["digest"]["sha256"].is_string()));
    assert!(!serde_json::to_string(&slsa).unwrap().contains(ws.path().to_str().unwrap()), "no absolute paths");
    assert_eq!(slsa["predicate"]["runDetails"]["builder"]["version"]["wso2img"], env!("CARGO_PKG_VERSION"));

    // A rebuild pushes nothing and adds nothing: the same signatures and attestations.
    let att_tag = format!("acme/apim:{}.att", digest.replace(':', "-"));
    let atts = layers_of(&registry, &att_tag);
    assert_eq!(atts, 2);
    let r2 = run_json(&ws, &["build", "--push", "--json", "--sign-key", &key_arg]);
    assert_eq!(r2["outputs"][0]["status"], "up-to-date");
    assert_eq!(layers_of(&registry, &sig_tag), 2);
    assert_eq!(layers_of(&registry, &att_tag), atts);

    // inspect lists them; --verify-key checks the signatures.
    let info = run_json(
        &ws,
        &["inspect", "--json", "--verify-key", &public.display().to_string(), &format!("{host}/acme/apim:{tag}")],
    );
    let sigs = info["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2, "{info:#}");
    assert!(sigs.iter().all(|s| s["verified"] == true), "{info:#}");
    let types: Vec<&str> =
        info["attestations"].as_array().unwrap().iter().map(|a| a["predicate_type"].as_str().unwrap()).collect();
    assert!(
        types.contains(&"https://slsa.dev/provenance/v1") && types.contains(&"https://cyclonedx.org/bom"),
        "{info:#}"
    );
    let out = wso2img_run(
        &ws,
        &["-q", "inspect", "--verify-key", &other_public.display().to_string(), &format!("{host}/acme/apim:{tag}")],
    );
    one_line_error(&out, 1);

    // copy --sign-key signs the promoted image under its new name.
    run_json(
        &ws,
        &[
            "copy",
            "--json",
            "--sign-key",
            &key_arg,
            &format!("{host}/acme/apim:{tag}"),
            &format!("{host}/prod/apim:1.0"),
        ],
    );
    let sigs = signatures(&python, &registry, "prod/apim", &digest, &public);
    assert_eq!(sigs.len(), 1, "{sigs:#?}");
    assert_eq!(sigs[0]["docker_reference"], format!("{host}/prod/apim:1.0"));
    assert_eq!(sigs[0]["verified"], true);

    // Once the tag names other, unsigned content, the policy refuses it.
    let mut c = skopeo();
    c.args(["copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(registry.docker_ref("wso2/wso2am:4.3.0"))
        .arg(registry.docker_ref("acme/apim:release"));
    run_ok_limited(&mut c);
    match verdict(&policed_copy(&pol, &registry, &public, "acme/apim:release")) {
        Verdict::Refused(e) => assert!(e.contains("no signature exists"), "{e}"),
        other => panic!("a moved tag must be refused for want of a signature: {other:?}"),
    }
}

/// The `digest` of the lock's (only) base.
fn toml_digest(lock: &str) -> Value {
    let line = lock.lines().find(|l| l.trim_start().starts_with("digest")).expect("a digest line");
    Value::String(line.split('"').nth(1).unwrap().to_string())
}

#[test]
fn base_signed_like_containers_image_verifies_and_bad_or_missing_signatures_stop_the_build() {
    if !registry_tools() {
        return;
    }
    let Some(python) = python() else { return };
    let registry = Registry::start(Kind::Anonymous);
    let host = registry.host();
    push_sample(&registry, "wso2/wso2am:4.3.0", &sample_430(false, &["linux/amd64", "linux/arm64"]));
    let ws = Workspace::new();
    ws.customization();
    let keys = ws.join("keys");
    fs::create_dir_all(&keys).unwrap();
    let (plain, public) = keypair(&keys, "wso2", "P-256");
    let (_, other_public) = keypair(&keys, "other", "P-256");
    let cosign_key = keys.join("cosign.key");
    ok(Command::new(&python).arg(check_script()).arg("encrypt-key").arg(&plain).arg("s3cret+/pw").arg(&cosign_key));

    // Debian's skopeo 1.9 cannot sign with sigstore keys (its sigstore support is patched out), so the
    // base is signed the way containers/image's signer does it, by the independent Python signer:
    // the index digest, as HOST/wso2/signed:4.3.0.
    let mut c = skopeo();
    c.args(["copy", "--quiet", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(registry.docker_ref("wso2/wso2am:4.3.0"))
        .arg(registry.docker_ref("wso2/signed:4.3.0"));
    run_ok_limited(&mut c);
    let base_digest = registry.digest_of("wso2/signed:4.3.0");
    ok(Command::new(&python)
        .arg(check_script())
        .args(["sign-sigstore", &host, "wso2/signed", &base_digest, &format!("{host}/wso2/signed:4.3.0")])
        .arg(&plain));

    ws.config(&format!(
        "[base]\nimage = \"{host}/wso2/signed:4.3.0\"\nverify_key = \"keys/wso2.pub\"\n[target]\nrepository = \"{host}/acme/apim\"\n"
    ));
    let out = wso2img_run(&ws, &["build", "--to", "oci:out"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature verified"));

    // Another key: one line, exit 1, nothing built.
    let out = wso2img_run(
        &ws,
        &["-q", "build", "--to", "oci:out2", "--verify-base-key", &other_public.display().to_string()],
    );
    let line = one_line_error(&out, 1);
    assert!(line.contains("verifies"), "{line}");
    assert!(!ws.join("out2").exists());

    // An unsigned base: one line, exit 1.
    ws.config(&format!(
        "[base]\nimage = \"{host}/wso2/wso2am:4.3.0\"\nverify_key = \"keys/wso2.pub\"\n[target]\nrepository = \"{host}/acme/apim\"\n"
    ));
    let line = one_line_error(&wso2img_run(&ws, &["-q", "build", "--to", "oci:out3"]), 1);
    assert!(line.contains("no signature"), "{line}");

    // The cosign-format key signs in wso2img too (password from the environment): the index and each manifest.
    ws.config(&format!("[base]\nimage = \"{host}/wso2/signed:4.3.0\"\n[target]\nrepository = \"{host}/acme/apim\"\n"));
    let mut c = wso2img(&ws);
    c.args(["build", "--push", "--json", "--sign-key"]).arg(&cosign_key).env("COSIGN_PASSWORD", "s3cret+/pw");
    let out = run_limited(&mut c, COMMAND_LIMIT);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret"), "the password never appears");
    let r = json(&out);
    let digest = r["outputs"][0]["digest"].as_str().unwrap().to_string();
    let index = registry.raw(&format!("acme/apim@{digest}"));
    let children: Vec<&str> =
        index["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap()).collect();
    assert_eq!(children.len(), 2);
    for d in std::iter::once(digest.as_str()).chain(children) {
        let sigs = signatures(&python, &registry, "acme/apim", d, &public);
        assert_eq!(sigs.len(), 1, "{d}: {sigs:#?}");
        assert_eq!(sigs[0]["verified"], true, "{d}: {sigs:#?}");
    }
}

#[test]
fn bad_signing_keys_exit_2_before_anything_is_pushed() {
    if !registry_tools() {
        return;
    }
    let registry = Registry::start(Kind::Anonymous);
    let host = registry.host();
    push_sample(&registry, "wso2/wso2am:4.3.0", &sample_430(false, &["linux/amd64"]));
    let ws = Workspace::new();
    ws.customization();
    ws.config(&format!("[base]\nimage = \"{host}/wso2/wso2am:4.3.0\"\n[target]\nrepository = \"{host}/acme/apim\"\n"));
    let keys = ws.join("keys");
    fs::create_dir_all(&keys).unwrap();
    let (p384, _) = keypair(&keys, "p384", "P-384");
    let encrypted = keys.join("enc.key");
    let secret_b64 = "c2VjcmV0LWJ5dGVz";
    fs::write(
        &encrypted,
        format!(
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            base64_of(&format!(
                r#"{{"kdf":{{"name":"scrypt","params":{{"N":1024,"r":8,"p":1}},"salt":"{secret_b64}"}},"cipher":{{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},"ciphertext":"{secret_b64}"}}"#
            ))
        ),
    )
    .unwrap();
    let mark = registry.mark();
    let cases: Vec<(PathBuf, &str)> =
        vec![(p384, "P-256"), (keys.join("missing.pem"), "cannot read"), (encrypted.clone(), "wrong password")];
    for (key, says) in cases {
        let mut c = wso2img(&ws);
        c.args(["-q", "build", "--push", "--sign-key"]).arg(&key).env("WSO2IMG_SIGN_PASSWORD", "not-the-password");
        let out = run_limited(&mut c, COMMAND_LIMIT);
        let line = one_line_error(&out, 2);
        assert!(line.contains(says) && line.contains(&key.display().to_string()), "{line}");
        assert!(!line.contains("not-the-password") && !line.contains(secret_b64), "{line}");
    }
    let out = wso2img_run(
        &ws,
        &["-q", "build", "--to", "oci:out", "--sign-key", &keys.join("p384.pem").display().to_string()],
    );
    one_line_error(&out, 2);
    let moved: Vec<Request> =
        registry.requests_since(mark).into_iter().filter(|q| q.is_upload() || q.is_manifest_put()).collect();
    assert!(moved.is_empty(), "nothing pushed:\n{}", Registry::describe(&moved));
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
