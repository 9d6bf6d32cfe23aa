//! Supply chain: images signed by `build --push --sign-key` verify with an
//! independent verifier — tools/cosign-verify, built on the sigstore crate
//! (cosign's key-based verification in Rust): signatures by tag and by
//! digest, single- and multi-platform, every key type cosign takes, and the
//! DSSE attestations (signature with the key, subject = the manifest digest);
//! another key and an altered payload are refused. skopeo 1.9's
//! `sigstoreSigned` policy is asked too where it can answer (Debian's build
//! has its sigstore checks patched out: that is a visible skip, not a pass).
//! The SBOM validates as CycloneDX 1.5 and the provenance names the locked
//! base digest; a base signed the way containers/image signs (an independent
//! Python signer writes its format) verifies, an unsigned or wrongly signed
//! one stops the build; bad signing keys stop it with exit 2 before anything
//! is pushed.

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

/// A new EC key pair on `curve` in `dir`: (`NAME.pem`, `NAME.pub`).
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
            "dir": {"": [{"type": "insecureAcceptAnything"}]},
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

/// `skopeo copy` of `image` out of the registry under the policy, to `dir:`
/// (which keeps signatures; `oci:` refuses to write them).
fn policed_copy(dir: &Path, registry: &Registry, public: &Path, image: &str) -> Output {
    let out = dir.join(format!("copy-{}", fastrand_name()));
    let mut c = skopeo_policed(dir, registry, public);
    c.args(["copy", "--quiet", "--src-tls-verify=false", "--src-no-creds"])
        .arg(registry.docker_ref(image))
        .arg(format!("dir:{}", out.display()));
    run_limited(&mut c, COMMAND_LIMIT)
}

/// What skopeo's `sigstoreSigned` policy made of an image.
#[derive(Debug, PartialEq)]
enum Verdict {
    Accepted,
    Refused(String),
    /// Debian's skopeo 1.9 is built with sigstore signature checks patched
    /// out ("Debian-local change: sigstore disabled"): it cannot tell a good
    /// signature from a bad one, so its answer proves nothing either way.
    ChecksDisabled,
}

fn verdict(out: &Output) -> Verdict {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    if out.status.success() {
        Verdict::Accepted
    } else if err.contains("Debian-local change: sigstore disabled") {
        Verdict::ChecksDisabled
    } else {
        Verdict::Refused(err)
    }
}

/// Says (visibly, in target/test-skips.log) that skopeo's policy check was
/// not made: the sigstore-crate verifier carries the assertion.
fn skopeo_checks_disabled() {
    skipped("skopeo sigstoreSigned policy check (Debian-local change: sigstore disabled; the sigstore crate verified instead)");
}

/// tools/cosign-verify, built by tests/run.sh, or a skip (a failure in CI).
fn sigstore_verifier() -> Option<PathBuf> {
    match std::env::var("WSO2IMG_TEST_COSIGN_VERIFY") {
        Ok(p) => Some(PathBuf::from(p)),
        Err(_) => {
            assert!(!in_ci(), "WSO2IMG_TEST_COSIGN_VERIFY (set by tests/run.sh) is required in CI");
            skipped("WSO2IMG_TEST_COSIGN_VERIFY (tools/cosign-verify)");
            None
        }
    }
}

/// What the sigstore-crate verifier said of `HOST/image` with `public`:
/// whether it verified (exit 0; 1 is a refusal, anything else fails the
/// test) and its report.
fn sigstore_verify(tool: &Path, registry: &Registry, image: &str, public: &Path, attestations: bool) -> (bool, Value) {
    let mut c = Command::new(tool);
    c.arg("--http");
    if attestations {
        c.arg("--attestations");
    }
    c.arg(format!("{}/{image}", registry.host())).arg(public);
    let out = run_limited(&mut c, COMMAND_LIMIT);
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(1),
        "cosign-verify {image}: {code:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("cosign-verify {image}: {e}\n{}", String::from_utf8_lossy(&out.stderr)));
    (code == Some(0), doc)
}

/// The predicate types of the attestations the verifier found, each checked
/// (signature with the key, subject = the digest).
fn verified_predicates(report: &Value) -> Vec<String> {
    let atts = report["attestations"].as_array().expect("attestations listed");
    assert!(atts.iter().all(|a| a["ok"] == true), "{report:#}");
    let mut types: Vec<String> = atts.iter().map(|a| a["predicate_type"].as_str().unwrap().to_string()).collect();
    types.sort();
    types
}

/// Rewrites every layer of the attachment manifest `repo:tag` with `alter`
/// (annotations, signatures included, kept), as someone with push rights
/// but not the key would.
fn tamper(registry: &Registry, repo: &str, tag: &str, alter: impl Fn(&[u8]) -> Vec<u8>) {
    let host = registry.host();
    let mut manifest = registry.raw(&format!("{repo}:{tag}"));
    for l in manifest["layers"].as_array_mut().unwrap() {
        let digest = l["digest"].as_str().unwrap();
        let (status, _, body) = http_request(&host, "GET", &format!("/v2/{repo}/blobs/{digest}"), &[], b"").unwrap();
        assert_eq!(status, 200);
        let changed = alter(&body);
        assert_ne!(changed, body, "the alteration changes the layer");
        l["digest"] = Value::String(put_blob(registry, repo, &changed));
        l["size"] = Value::from(changed.len());
    }
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let (status, _, body) = http_request(
        &host,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", manifest["mediaType"].as_str().unwrap())],
        &bytes,
    )
    .unwrap();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
}

/// Uploads `bytes` as a blob of `repo` (monolithic); returns its digest.
fn put_blob(registry: &Registry, repo: &str, bytes: &[u8]) -> String {
    let host = registry.host();
    let digest = wso2img::digest::Digest::of(bytes).to_string();
    let (status, head, _) = http_request(&host, "POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"").unwrap();
    assert_eq!(status, 202);
    let location = head.header("Location").unwrap().to_string();
    let path = match location.find("/v2/") {
        Some(i) => location[i..].to_string(),
        None => location,
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let (status, _, body) = http_request(
        &host,
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        bytes,
    )
    .unwrap();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    digest
}

/// A DSSE envelope whose statement's predicate was changed, signatures kept.
fn altered_envelope(bytes: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut env: Value = serde_json::from_slice(bytes).unwrap();
    let mut statement: Value = serde_json::from_slice(&b64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    statement["predicate"]["altered"] = Value::Bool(true);
    env["payload"] = Value::String(b64.encode(serde_json::to_vec(&statement).unwrap()));
    serde_json::to_vec(&env).unwrap()
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

fn layers_of(registry: &Registry, name: &str) -> usize {
    registry.raw(name)["layers"].as_array().map(Vec::len).unwrap_or(0)
}

#[test]
fn signed_push_verifies_with_the_sigstore_crate_and_skopeo_policy_and_attestations_verify() {
    if !registry_tools() {
        return;
    }
    let Some(python) = python() else { return };
    if sigstore_verifier().is_none() {
        return;
    }
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
    let att_tag = format!("acme/apim:{}.att", digest.replace(':', "-"));
    assert_eq!(layers_of(&registry, &sig_tag), 2, "one signature per pushed tag (content tag, release)");

    // build --json says what was signed and attested, by digest, for CI to record.
    let signed = &r["outputs"][0]["signatures"];
    assert_eq!(signed["manifest"], registry.digest_of(&sig_tag).as_str(), "{r:#}");
    assert_eq!(signed["tag"], format!("{}.sig", digest.replace(':', "-")));
    assert_eq!(signed["added"], 2);
    let mut identities: Vec<&str> =
        signed["identities"].as_array().unwrap().iter().map(|i| i.as_str().unwrap()).collect();
    identities.sort();
    let mut want_identities = vec![format!("{host}/acme/apim:{tag}"), format!("{host}/acme/apim:release")];
    want_identities.sort();
    assert_eq!(identities, want_identities);
    let attested = r["outputs"][0]["attestations"].as_array().unwrap();
    let mut types: Vec<&str> = attested.iter().map(|a| a["predicate_type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["https://cyclonedx.org/bom", "https://slsa.dev/provenance/v1"]);
    let att_manifest = registry.digest_of(&att_tag);
    let att_layers: Vec<String> = registry.raw(&att_tag)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    for a in attested {
        assert_eq!(a["stored"], "tag");
        assert_eq!(a["added"], true);
        assert!(att_layers.contains(&a["envelope"].as_str().unwrap().to_string()), "{a:#}");
    }
    assert_eq!(attested.last().unwrap()["manifest"], att_manifest.as_str(), "the .att manifest after the last one");

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

    // The sigstore crate (cosign's verification) accepts it under either tag and by digest with the
    // key, with both attestations (DSSE signature, subject = this digest); another key is refused.
    let tool = sigstore_verifier().expect("checked above");
    for image in [format!("acme/apim:{tag}"), "acme/apim:release".into(), format!("acme/apim@{digest}")] {
        let (verified, report) = sigstore_verify(&tool, &registry, &image, &public, true);
        assert!(verified, "{image}: {report:#}");
        assert_eq!(report["digest"], digest.as_str());
        assert_eq!(report["signatures"].as_array().unwrap().len(), 2, "{report:#}");
        assert_eq!(verified_predicates(&report), ["https://cyclonedx.org/bom", "https://slsa.dev/provenance/v1"]);
    }
    let (verified, report) = sigstore_verify(&tool, &registry, &format!("acme/apim:{tag}"), &other_public, true);
    assert!(!verified, "another key must be refused: {report:#}");
    assert!(report["signatures"].as_array().unwrap().iter().all(|s| s["verified"] == false), "{report:#}");

    // skopeo's sigstoreSigned policy, where its checks are built in, agrees.
    let pol = ws.join("skopeo");
    fs::create_dir_all(&pol).unwrap();
    for image in [format!("acme/apim:{tag}"), "acme/apim:release".into(), format!("acme/apim@{digest}")] {
        match verdict(&policed_copy(&pol, &registry, &public, &image)) {
            Verdict::Accepted => {}
            Verdict::ChecksDisabled => skopeo_checks_disabled(),
            Verdict::Refused(e) => panic!("skopeo refused {image}: {e}"),
        }
    }
    match verdict(&policed_copy(&pol, &registry, &other_public, &format!("acme/apim:{tag}"))) {
        Verdict::Refused(_) => {}
        Verdict::ChecksDisabled => skopeo_checks_disabled(),
        Verdict::Accepted => panic!("skopeo accepted another key"),
    }

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
    let atts = layers_of(&registry, &att_tag);
    assert_eq!(atts, 2);
    let r2 = run_json(&ws, &["build", "--push", "--json", "--sign-key", &key_arg]);
    assert_eq!(r2["outputs"][0]["status"], "up-to-date");
    assert_eq!(layers_of(&registry, &sig_tag), 2);
    assert_eq!(layers_of(&registry, &att_tag), atts);
    assert_eq!(r2["outputs"][0]["signatures"]["added"], 0);
    assert_eq!(r2["outputs"][0]["signatures"]["manifest"], registry.digest_of(&sig_tag).as_str());
    assert!(r2["outputs"][0]["attestations"].as_array().unwrap().iter().all(|a| a["added"] == false), "{r2:#}");

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
    assert!(info["attestations"].as_array().unwrap().iter().all(|a| a["verification"] == "verified"), "{info:#}");
    let out = wso2img_run(
        &ws,
        &["-q", "inspect", "--verify-key", &other_public.display().to_string(), &format!("{host}/acme/apim:{tag}")],
    );
    one_line_error(&out, 1, &[]);

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
    // The promoted image carries the evidence: the source's signatures, a new one for its new name, and both
    // attestations, each verifying with the sigstore crate against the promoted reference.
    let sigs = signatures(&python, &registry, "prod/apim", &digest, &public);
    let mut refs: Vec<&str> = sigs.iter().map(|s| s["docker_reference"].as_str().unwrap()).collect();
    refs.sort();
    let mut want =
        vec![format!("{host}/acme/apim:{tag}"), format!("{host}/acme/apim:release"), format!("{host}/prod/apim:1.0")];
    want.sort();
    assert_eq!(refs, want, "{sigs:#?}");
    assert!(sigs.iter().all(|s| s["verified"] == true), "{sigs:#?}");
    for image in ["prod/apim:1.0".to_string(), format!("prod/apim@{digest}")] {
        let (verified, report) = sigstore_verify(&tool, &registry, &image, &public, true);
        assert!(verified, "{image}: {report:#}");
        assert_eq!(report["digest"], digest.as_str());
        assert_eq!(verified_predicates(&report), ["https://cyclonedx.org/bom", "https://slsa.dev/provenance/v1"]);
    }

    // Promotion checked against a key: another key refuses the source, one line, exit 1, nothing pushed.
    let mark = registry.mark();
    let out = wso2img_run(
        &ws,
        &[
            "-q",
            "copy",
            "--verify-key",
            &other_public.display().to_string(),
            &format!("{host}/acme/apim:{tag}"),
            &format!("{host}/prod/apim:2.0"),
        ],
    );
    let line = one_line_error(&out, 1, &[]);
    assert!(line.contains("verifies with the key; refusing to promote it"), "{line}");
    let moved: Vec<Request> =
        registry.requests_since(mark).into_iter().filter(|q| q.is_upload() || q.is_manifest_put()).collect();
    assert!(moved.is_empty(), "nothing pushed:\n{}", Registry::describe(&moved));
    // The right key: promoted with its evidence; --no-attestations leaves the attestations behind.
    let public_arg = public.display().to_string();
    let src = format!("{host}/acme/apim:{tag}");
    run_json(&ws, &["copy", "--json", "--verify-key", &public_arg, &src, &format!("{host}/stage/apim:2.0")]);
    let (verified, report) = sigstore_verify(&tool, &registry, "stage/apim:2.0", &public, true);
    assert!(verified, "{report:#}");
    let r = run_json(&ws, &["copy", "--json", "--no-attestations", &src, &format!("{host}/bare/apim:2.0")]);
    assert!(r["outputs"][0].get("attestations").is_none(), "{r:#}");
    let (verified, report) = sigstore_verify(&tool, &registry, "bare/apim:2.0", &public, false);
    assert!(verified, "signatures still carried: {report:#}");
    let (verified, report) = sigstore_verify(&tool, &registry, "bare/apim:2.0", &public, true);
    assert!(!verified && report["attestations"].as_array().unwrap().is_empty(), "{report:#}");
    // tag --verify-key: the same check before tagging within the repository.
    let out = wso2img_run(&ws, &["-q", "tag", "--verify-key", &other_public.display().to_string(), &src, "refused"]);
    one_line_error(&out, 1, &[]);
    run_json(&ws, &["tag", "--json", "--verify-key", &public_arg, &src, "verified"]);

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
    let (verified, report) = sigstore_verify(&tool, &registry, "acme/apim:release", &public, false);
    assert!(!verified && report["signatures"].as_array().unwrap().is_empty(), "{report:#}");

    // Altered payloads, signatures kept: an attestation's statement, then every signature's identity.
    tamper(&registry, "acme/apim", &format!("{}.att", digest.replace(':', "-")), altered_envelope);
    let (verified, report) = sigstore_verify(&tool, &registry, &format!("acme/apim@{digest}"), &public, true);
    assert!(!verified, "an altered attestation must be refused: {report:#}");
    assert!(report["attestations"].as_array().unwrap().iter().all(|a| a["signature_verified"] == false), "{report:#}");
    assert_eq!(report["verified"], true, "the signatures themselves still verify: {report:#}");
    // inspect --verify-key checks every envelope: exit 1 naming each predicate and why.
    let public_arg = public.display().to_string();
    let pinned = format!("{host}/acme/apim@{digest}");
    let out = wso2img_run(&ws, &["inspect", "--json", "--verify-key", &public_arg, &pinned]);
    let line = one_line_error(&out, 1, &[]);
    for p in ["https://cyclonedx.org/bom (bad signature)", "https://slsa.dev/provenance/v1 (bad signature)"] {
        assert!(line.contains(p), "{line}");
    }
    let info = json(&out);
    assert!(info["attestations"].as_array().unwrap().iter().all(|a| a["verification"] == "bad_signature"), "{info:#}");
    // A rebuild replaces the altered envelopes (one per predicate type) instead of adding beside them.
    let r3 = run_json(&ws, &["build", "--push", "--json", "--sign-key", &key_arg]);
    assert!(r3["outputs"][0]["attestations"].as_array().unwrap().iter().all(|a| a["added"] == true), "{r3:#}");
    assert_eq!(layers_of(&registry, &att_tag), 2, "replaced, not appended");
    let (verified, report) = sigstore_verify(&tool, &registry, &format!("acme/apim@{digest}"), &public, true);
    assert!(verified, "{report:#}");
    let out = wso2img_run(&ws, &["-q", "inspect", "--verify-key", &public_arg, &pinned]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tamper(&registry, "acme/apim", &format!("{}.sig", digest.replace(':', "-")), |b| {
        String::from_utf8_lossy(b).replace("/acme/apim:", "/acme/forged:").into_bytes()
    });
    let (verified, report) = sigstore_verify(&tool, &registry, &format!("acme/apim:{tag}"), &public, false);
    assert!(!verified, "altered signature payloads must be refused: {report:#}");
    assert_eq!(report["signatures"].as_array().unwrap().len(), 2, "both read, neither verifies: {report:#}");
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
    let line = one_line_error(&out, 1, &[]);
    assert!(line.contains("verifies"), "{line}");
    assert!(!ws.join("out2").exists());

    // An unsigned base: one line, exit 1.
    ws.config(&format!(
        "[base]\nimage = \"{host}/wso2/wso2am:4.3.0\"\nverify_key = \"keys/wso2.pub\"\n[target]\nrepository = \"{host}/acme/apim\"\n"
    ));
    let line = one_line_error(&wso2img_run(&ws, &["-q", "build", "--to", "oci:out3"]), 1, &[]);
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
    // The sigstore crate agrees: the index by tag and by digest, each platform's manifest by digest.
    if let Some(tool) = sigstore_verifier() {
        let tag = r["tag"].as_str().unwrap();
        for image in [format!("acme/apim:{tag}"), format!("acme/apim@{digest}")] {
            let (verified, report) = sigstore_verify(&tool, &registry, &image, &public, true);
            assert!(verified, "{image}: {report:#}");
            assert_eq!(report["digest"], digest.as_str());
        }
        for d in index["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap()) {
            let (verified, report) = sigstore_verify(&tool, &registry, &format!("acme/apim@{d}"), &public, false);
            assert!(verified, "{d}: {report:#}");
            let (verified, _) = sigstore_verify(&tool, &registry, &format!("acme/apim@{d}"), &other_public, false);
            assert!(!verified, "{d}: another key");
        }
    }

    // The index's attestations put beside a platform manifest (signed with the key, about another digest):
    // inspect --verify-key names each predicate as a wrong subject and exits 1.
    let child = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let mut c = skopeo();
    c.args(["copy", "--quiet", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(registry.docker_ref(&format!("acme/apim:{}.att", digest.replace(':', "-"))))
        .arg(registry.docker_ref(&format!("acme/apim:{}.att", child.replace(':', "-"))));
    run_ok_limited(&mut c);
    let out = wso2img_run(
        &ws,
        &["-q", "inspect", "--verify-key", &public.display().to_string(), &format!("{host}/acme/apim@{child}")],
    );
    let line = one_line_error(&out, 1, &[]);
    for p in ["https://cyclonedx.org/bom (wrong subject)", "https://slsa.dev/provenance/v1 (wrong subject)"] {
        assert!(line.contains(p), "{line}");
    }
    let out = wso2img_run(
        &ws,
        &["-q", "inspect", "--verify-key", &public.display().to_string(), &format!("{host}/acme/apim@{digest}")],
    );
    assert!(out.status.success(), "the index's own attestations verify: {}", String::from_utf8_lossy(&out.stderr));

    // A signed base whose attestation does not verify (about another digest) stops the build: one line, exit 1.
    let mut c = skopeo();
    c.args(["copy", "--quiet", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(registry.docker_ref(&format!("acme/apim:{}.att", digest.replace(':', "-"))))
        .arg(registry.docker_ref(&format!("wso2/signed:{}.att", base_digest.replace(':', "-"))));
    run_ok_limited(&mut c);
    ws.config(&format!(
        "[base]\nimage = \"{host}/wso2/signed:4.3.0\"\nverify_key = \"keys/wso2.pub\"\n[target]\nrepository = \"{host}/acme/apim\"\n"
    ));
    let line = one_line_error(&wso2img_run(&ws, &["-q", "build", "--to", "oci:out4"]), 1, &[]);
    assert!(line.contains("attestation") && line.contains("(wrong subject)"), "{line}");
    assert!(!ws.join("out4").exists());
}

/// Each key type cosign takes, generated by openssl in the formats cosign
/// reads (PKCS#8, SEC1, PKCS#1, cosign's encrypted PEM), signs a
/// multi-platform push — the index and each platform's manifest — and
/// attests it; the sigstore crate verifies all of it with the public key.
#[test]
fn every_key_type_cosign_takes_signs_a_multi_platform_push_the_sigstore_crate_verifies() {
    if !registry_tools() {
        return;
    }
    let Some(python) = python() else { return };
    let Some(tool) = sigstore_verifier() else { return };
    let registry = Registry::start(Kind::Anonymous);
    let host = registry.host();
    push_sample(&registry, "wso2/wso2am:4.3.0", &sample_430(false, &["linux/amd64", "linux/arm64"]));
    let ws = Workspace::new();
    ws.customization();
    let keys = ws.join("keys");
    fs::create_dir_all(&keys).unwrap();
    // (name, openssl genpkey options, conversion to another PEM format, cosign-encrypted)
    type Case<'a> = (&'a str, &'a [&'a str], Option<&'a [&'a str]>, bool);
    let cases: [Case; 6] = [
        ("p256-sec1", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], Some(&["ec"]), false),
        ("p384", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], None, false),
        ("p521", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"], None, false),
        (
            "rsa-pkcs1",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Some(&["rsa", "-traditional"]),
            false,
        ),
        ("rsa-cosign", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"], None, true),
        ("ed25519", &["-algorithm", "ED25519"], None, false),
    ];
    for (name, gen, convert, encrypted) in cases {
        let plain = keys.join(format!("{name}.pem"));
        ok(Command::new("openssl").arg("genpkey").args(gen).arg("-out").arg(&plain));
        if let Some(convert) = convert {
            let converted = keys.join(format!("{name}.converted"));
            ok(Command::new("openssl").args(convert).arg("-in").arg(&plain).arg("-out").arg(&converted));
            fs::rename(&converted, &plain).unwrap();
        }
        let public = keys.join(format!("{name}.pub"));
        ok(Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&plain).arg("-out").arg(&public));
        let key = if encrypted {
            let k = keys.join(format!("{name}.key"));
            ok(Command::new(&python).arg(check_script()).arg("encrypt-key").arg(&plain).arg("pw/+1").arg(&k));
            k
        } else {
            plain
        };
        let repo = format!("acme/{name}");
        ws.config(&format!("[base]\nimage = \"{host}/wso2/wso2am:4.3.0\"\n[target]\nrepository = \"{host}/{repo}\"\n"));
        let mut c = wso2img(&ws);
        c.args(["build", "--push", "--json", "--sign-key"]).arg(&key).env("WSO2IMG_SIGN_PASSWORD", "pw/+1");
        let out = run_limited(&mut c, COMMAND_LIMIT);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let r = json(&out);
        let (tag, digest) = (r["tag"].as_str().unwrap(), r["outputs"][0]["digest"].as_str().unwrap());
        let (verified, report) = sigstore_verify(&tool, &registry, &format!("{repo}:{tag}"), &public, true);
        assert!(verified, "{name}: {report:#}");
        assert_eq!(report["digest"], digest, "{name}");
        assert_eq!(verified_predicates(&report), ["https://cyclonedx.org/bom", "https://slsa.dev/provenance/v1"]);
        let index = registry.raw(&format!("{repo}@{digest}"));
        let children: Vec<&str> =
            index["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap()).collect();
        assert_eq!(children.len(), 2, "{name}");
        for d in children {
            let (verified, report) = sigstore_verify(&tool, &registry, &format!("{repo}@{d}"), &public, false);
            assert!(verified, "{name} {d}: {report:#}");
        }
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
    let (k1, _) = keypair(&keys, "k1", "secp256k1");
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
    let cases: Vec<(PathBuf, &str)> = vec![
        (k1, "P-384 or P-521, RSA"),
        (keys.join("missing.pem"), "cannot read"),
        (encrypted.clone(), "wrong password"),
    ];
    for (key, says) in cases {
        let mut c = wso2img(&ws);
        c.args(["-q", "build", "--push", "--sign-key"]).arg(&key).env("WSO2IMG_SIGN_PASSWORD", "not-the-password");
        let out = run_limited(&mut c, COMMAND_LIMIT);
        let line = one_line_error(&out, 2, &[]);
        assert!(line.contains(says) && line.contains(&key.display().to_string()), "{line}");
        assert!(!line.contains("not-the-password") && !line.contains(secret_b64), "{line}");
    }
    let out =
        wso2img_run(&ws, &["-q", "build", "--to", "oci:out", "--sign-key", &keys.join("k1.pem").display().to_string()]);
    one_line_error(&out, 2, &[]);
    let moved: Vec<Request> =
        registry.requests_since(mark).into_iter().filter(|q| q.is_upload() || q.is_manifest_put()).collect();
    assert!(moved.is_empty(), "nothing pushed:\n{}", Registry::describe(&moved));
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
