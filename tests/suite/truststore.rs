//! `[truststore]`: certificates merged into the base's own client truststore.
//! Bases carrying real stores are built here (keytool makes the store, a
//! first wso2img build bakes it into a sample base), certificates come from
//! openssl, and the merged store is read back with the JDK's keytool.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::support::*;

const STORE: &str = "client-truststore.jks";

/// openssl and keytool are there (in CI they must be).
fn tools() -> bool {
    have("openssl", &["version"]) && have("keytool", &["-help"])
}

fn sh(cmd: &mut Command) -> Output {
    ok(cmd)
}

/// A self-signed CA certificate (and its key) in `dir`: `NAME.pem`, `NAME.key`.
fn ca(dir: &Path, name: &str, cn: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let (pem, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    sh(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&pem)
        .args(["-subj", &format!("/CN={cn}/O=wso2img tests")]));
    pem
}

/// A certificate signed by `issuer` (`ISSUER.pem` + `.key` in `dir`) with
/// `days` of validity (negative: expired), no CA extension.
fn leaf(dir: &Path, name: &str, issuer: &str, days: i32) -> PathBuf {
    let (key, csr, pem) =
        (dir.join(format!("{name}.key")), dir.join(format!("{name}.csr")), dir.join(format!("{name}.pem")));
    sh(Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj"])
        .arg(format!("/CN={name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    sh(Command::new("openssl")
        .args(["x509", "-req", "-days", &days.to_string(), "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(dir.join(format!("{issuer}.pem")))
        .arg("-CAkey")
        .arg(dir.join(format!("{issuer}.key")))
        .arg("-set_serial")
        .arg("7")
        .arg("-out")
        .arg(&pem));
    pem
}

/// A self-signed CA valid only from 2099.
fn future(dir: &Path) -> PathBuf {
    let ca = dir.join("ca");
    fs::create_dir_all(&ca).unwrap();
    fs::write(ca.join("index.txt"), "").unwrap();
    fs::write(ca.join("serial"), "01\n").unwrap();
    let cnf = ca.join("ca.cnf");
    fs::write(
        &cnf,
        format!(
            "[ca]\ndefault_ca = d\n[d]\ndatabase = {0}/index.txt\nnew_certs_dir = {0}\nserial = {0}/serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n",
            ca.display()
        ),
    )
    .unwrap();
    let (key, csr, pem) = (dir.join("future.key"), dir.join("future.csr"), dir.join("future.pem"));
    sh(Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=Future"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    sh(Command::new("openssl")
        .args(["ca", "-batch", "-notext", "-selfsign", "-startdate", "20990101000000Z", "-enddate", "20991231000000Z"])
        .arg("-config")
        .arg(&cnf)
        .arg("-keyfile")
        .arg(&key)
        .arg("-in")
        .arg(&csr)
        .arg("-out")
        .arg(&pem));
    pem
}

/// The SHA-256 fingerprint keytool prints (`AB:CD:…`).
fn fingerprint(pem: &Path) -> String {
    let out = sh(Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(pem));
    String::from_utf8(out.stdout).unwrap().trim().rsplit('=').next().unwrap().to_string()
}

/// Imports `certs` (alias, PEM) into a new store of `kind` at `path`.
fn store(path: &Path, kind: &str, certs: &[(&str, &Path)]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    for (alias, pem) in certs {
        sh(Command::new("keytool")
            .args(["-importcert", "-noprompt", "-storepass", "wso2carbon", "-storetype", kind, "-alias", alias])
            .arg("-file")
            .arg(pem)
            .arg("-keystore")
            .arg(path));
    }
}

/// A base: `sample` with `store_file` baked in as its truststore, written
/// to the OCI layout `ws/NAME` under tag `b`; returns its location.
fn base_with(ws: &Workspace, name: &str, sample: &str, store_file: &Path) -> String {
    let dir = ws.join(&format!("{name}-src"));
    fs::create_dir_all(dir.join("keystores")).unwrap();
    fs::copy(store_file, dir.join("keystores").join(STORE)).unwrap();
    fs::write(dir.join("wso2img.toml"), format!("[base]\nimage = \"{sample}\"\n[layers]\nbake_keystores = true\n"))
        .unwrap();
    let out = ok(bin().current_dir(&dir).args(["build", "--to", &format!("oci:{}:b", ws.join(name).display())]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keystores/client-truststore.jks: replaces the base's truststore wholesale"), "{err}");
    assert!(err.contains("[truststore] certs"), "{err}");
    format!("oci:{}:b", ws.join(name).display())
}

fn config(ws: &Workspace, base: &str, truststore: &str) {
    ws.config(&format!("[base]\nimage = \"{base}\"\n\n[truststore]\n{truststore}\n"));
}

/// The bytes of the file at `suffix` in the last layer of the only image of layout `dir`.
fn from_last_layer(dir: &Path, suffix: &str) -> Vec<u8> {
    let index = layout_index(dir);
    let manifest = layout_json(dir, index["manifests"][0]["digest"].as_str().unwrap());
    let layer = manifest["layers"].as_array().unwrap().last().unwrap()["digest"].as_str().unwrap().to_string();
    let blob = fs::File::open(dir.join("blobs/sha256").join(layer.strip_prefix("sha256:").unwrap())).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy().ends_with(suffix) {
            assert_eq!(e.header().mode().unwrap() & 0o777, 0o644, "a truststore of certificates is not a secret");
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return v;
        }
    }
    panic!("no {suffix} in the last layer of {}", dir.display());
}

/// `keytool -list -v` of `bytes`: (alias, SHA-256) of each entry, and the store type.
fn keytool_list(bytes: &[u8], kind: Option<&str>) -> (Vec<(String, String)>, String) {
    let f = tempfile::NamedTempFile::new().unwrap();
    fs::write(f.path(), bytes).unwrap();
    let mut cmd = Command::new("keytool");
    cmd.args(["-list", "-v", "-storepass", "wso2carbon", "-keystore"]).arg(f.path());
    if let Some(k) = kind {
        cmd.args(["-storetype", k]);
    }
    let text = String::from_utf8(sh(&mut cmd).stdout).unwrap();
    let mut entries = Vec::new();
    let mut alias = None;
    let mut kind = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(k) = line.strip_prefix("Keystore type: ") {
            kind = k.to_string();
        } else if let Some(a) = line.strip_prefix("Alias name: ") {
            alias = Some(a.to_string());
        } else if let Some(fp) = line.strip_prefix("SHA256: ") {
            entries.push((alias.take().expect("an alias before its fingerprint"), fp.to_string()));
        }
    }
    entries.sort();
    (entries, kind)
}

fn report(out: &Output) -> Value {
    json(out)
}

/// For a JKS base (4.3) and a PKCS#12-content base (4.4, as the official
/// 4.4 and 4.5 ship it): keytool reads the merged store with every base entry
/// and each added certificate under its alias; twice built, the same digest;
/// a base whose truststore differs gives another merge.
#[test]
fn merges_into_jks_and_pkcs12_bases_readable_by_the_jdk() {
    if !tools() {
        return;
    }
    for (kind, sample, want_type) in
        [("JKS", "builtin:wso2am-4.3.0", "JKS"), ("PKCS12", "builtin:wso2am-4.4.0", "PKCS12")]
    {
        let ws = Workspace::new();
        let k = ws.join("k");
        let (base_ca, other_ca) = (ca(&k, "base-ca", "Base CA"), ca(&k, "other-ca", "Other CA"));
        let partner = ca(&ws.join("certs"), "partner-ca", "Partner CA");
        let (second, third) = (ca(&k, "second", "Second CA"), ca(&k, "third", "Third CA"));
        let bundle = [fs::read(&second).unwrap(), fs::read(&third).unwrap()].concat();
        ws.write("certs/extra/bundle.crt", &bundle);
        // DER works as well as PEM.
        let der = sh(Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(&second)).stdout;
        assert!(!der.is_empty());
        store(&k.join("one.jks"), kind, &[("baseca", &base_ca), ("mozilla-root", &other_ca)]);
        let base = base_with(&ws, "base", sample, &k.join("one.jks"));
        config(
            &ws,
            &base,
            "certs = [\"certs/partner-ca.pem\", { path = \"certs/extra/*.crt\", alias = \"partner-extra\" }]",
        );
        let first = ws.run_ok(&["build", "--json", "--to", "oci:out1"]);
        let rep = report(&first);
        let t = &rep["platforms"][0]["truststore"];
        assert_eq!(t["format"], want_type, "{t}");
        assert_eq!(t["base_entries"], 2);
        let added: Vec<&str> = t["added"].as_array().unwrap().iter().map(|c| c["alias"].as_str().unwrap()).collect();
        assert_eq!(added, ["partner-ca", "partner-extra-1", "partner-extra-2"]);
        assert_eq!(t["added"][0]["subject"], "CN=Partner CA, O=wso2img tests");
        let fp_partner = fingerprint(&partner);
        assert_eq!(
            t["added"][0]["sha256"].as_str().unwrap(),
            format!("sha256:{}", fp_partner.replace(':', "").to_lowercase())
        );
        let merged = from_last_layer(&ws.join("out1"), STORE);
        assert_eq!(&merged[..2] == b"\xfe\xed", kind == "JKS", "the base's own format is kept");
        let (entries, listed) = keytool_list(&merged, None);
        assert_eq!(listed, want_type);
        let want = vec![
            ("baseca".to_string(), fingerprint(&base_ca)),
            ("mozilla-root".to_string(), fingerprint(&other_ca)),
            ("partner-ca".to_string(), fp_partner.clone()),
            ("partner-extra-1".to_string(), fingerprint(&second)),
            ("partner-extra-2".to_string(), fingerprint(&third)),
        ];
        assert_eq!(entries, want, "every base entry kept, each certificate added under its alias");
        // The product's configuration says JKS: the JDK reads it as that type too.
        assert_eq!(keytool_list(&merged, Some("JKS")).0, want);

        // Twice built: the same content digest (and the same bytes).
        let again = report(&ws.run_ok(&["build", "--json", "--to", "oci:out2"]));
        assert_eq!(again["content_digest"], rep["content_digest"]);
        assert_eq!(from_last_layer(&ws.join("out2"), STORE), merged);

        // inspect and the SBOM list the certificates added.
        let inspected = json(&ws.run_ok(&["inspect", "--json", "oci:out1"]));
        let listed = &inspected["platforms"][0]["truststore"];
        assert_eq!(listed[0]["alias"], "partner-ca", "{inspected}");
        assert_eq!(listed[0]["sha256"], t["added"][0]["sha256"]);
        assert_eq!(listed[0]["not_after"], t["added"][0]["not_after"]);
        ws.run_ok(&["build", "--to", "oci:out3", "--sbom", "sbom.json"]);
        let sbom = fs::read_to_string(ws.join("sbom.json")).unwrap();
        assert!(
            sbom.contains("client-truststore.jks#partner-ca")
                && sbom.contains(&fp_partner.replace(':', "").to_lowercase()),
            "{sbom}"
        );

        // A base whose truststore differs: the merge starts from its store.
        store(&k.join("two.jks"), kind, &[("baseca", &base_ca)]);
        let other = base_with(&ws, "base2", sample, &k.join("two.jks"));
        config(&ws, &other, "certs = [\"certs/partner-ca.pem\"]");
        let r2 = report(&ws.run_ok(&["build", "--json", "--to", "oci:out4"]));
        assert_ne!(r2["content_digest"], rep["content_digest"]);
        let (entries, _) = keytool_list(&from_last_layer(&ws.join("out4"), STORE), None);
        assert_eq!(entries, vec![("baseca".into(), fingerprint(&base_ca)), ("partner-ca".into(), fp_partner.clone())]);

        // A certificate the base already holds: noted, nothing added for it.
        config(&ws, &other, "certs = [{ path = \"k/base-ca.pem\", alias = \"again\" }]");
        let out = ws.run_ok(&["plan", "--json"]);
        let r = report(&out);
        assert_eq!(r["platforms"][0]["truststore"]["added"], serde_json::json!([]));
        assert_eq!(r["platforms"][0]["truststore"]["already_present"][0]["base_alias"], "baseca");
        assert!(r["layers"].as_array().unwrap().iter().all(|l| l["name"] != "truststore"), "{r}");
        assert!(String::from_utf8_lossy(&out.stderr)
            .contains("k/base-ca.pem is already in client-truststore.jks as baseca"));
    }
}

/// Each bad input: one line naming the file, exit 2, nothing written.
#[test]
fn bad_inputs_fail_in_one_line_with_nothing_written() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    let k = ws.join("k");
    let base_ca = ca(&k, "base-ca", "Base CA");
    store(&k.join("one.jks"), "JKS", &[("baseca", &base_ca)]);
    let base = base_with(&ws, "base", "builtin:wso2am-4.3.0", &k.join("one.jks"));
    let c = ws.join("c");
    ca(&c, "issuer", "Issuer");
    let other = ca(&c, "other", "Other CA");
    leaf(&c, "expired", "issuer", -1);
    future(&c);
    ws.write("c/garbage.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    ws.write("c/garbage.der", b"\x30\x03\x02\x01\x01");
    let key = fs::read(c.join("issuer.key")).unwrap();
    ws.write("c/with-key.pem", &[fs::read(&other).unwrap(), key].concat());
    // A PKCS#12 keystore (a private key) listed as a certificate.
    sh(Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:wso2carbon", "-in"])
        .arg(c.join("issuer.pem"))
        .arg("-inkey")
        .arg(c.join("issuer.key"))
        .arg("-out")
        .arg(c.join("keystore.p12")));
    let cases: [(&str, &str, &str); 8] = [
        ("certs = [\"c/garbage.pem\"]", "c/garbage.pem: ", "not a readable"),
        ("certs = [\"c/garbage.der\"]", "c/garbage.der: ", "not a readable X.509 certificate"),
        ("certs = [\"c/expired.pem\"]", "c/expired.pem: ", "expired on"),
        ("certs = [\"c/future.pem\"]", "c/future.pem: ", "not valid yet"),
        (
            "certs = [{ path = \"c/other.pem\", alias = \"baseca\" }]",
            "c/other.pem: ",
            "alias baseca is in the base's truststore",
        ),
        ("certs = [\"c/with-key.pem\"]", "c/with-key.pem: ", "holds a private key"),
        ("certs = [\"c/keystore.p12\"]", "c/keystore.p12: ", "keystore with a private key"),
        ("certs = [\"c/other.pem\"]\npassword_env = \"WSO2IMG_TEST_TRUST_PW\"", "", "password_env"),
    ];
    for (section, starts, says) in cases {
        config(&ws, &base, section);
        let out = bin()
            .current_dir(ws.path())
            .env_remove("WSO2IMG_TEST_TRUST_PW")
            .args(["build", "--to", "oci:never"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("");
        assert_eq!(out.status.code(), Some(2), "{section}: {err}");
        assert!(last.contains(starts) && last.contains(says), "{section}: {err}");
        assert!(!ws.join("oci").exists() && !ws.join("never").exists(), "{section}: nothing written");
    }
    // The wrong password: the base's store does not open with it (never shown).
    config(&ws, &base, "certs = [\"c/other.pem\"]\npassword_env = \"WSO2IMG_TEST_TRUST_PW\"");
    let out = bin()
        .current_dir(ws.path())
        .env("WSO2IMG_TEST_TRUST_PW", "s3cret-Pw")
        .args(["build", "--to", "oci:never"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("does not open with the given password") && !err.contains("s3cret"), "{err}");
    assert!(!ws.join("never").exists());
    // The right one from the environment opens it.
    let out = bin()
        .current_dir(ws.path())
        .env("WSO2IMG_TEST_TRUST_PW", "wso2carbon")
        .args(["build", "--json", "--to", "oci:pw"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Not a CA: a warning, and the certificate is added.
    leaf(&c, "server", "issuer", 30);
    config(&ws, &base, "certs = [\"c/server.pem\"]");
    let out = ws.run_ok(&["plan", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: c/server.pem: is not a CA certificate"), "{err}");
    assert_eq!(json(&out)["platforms"][0]["truststore"]["added"][0]["alias"], "server");

    // An overlay that replaces the truststore alongside [truststore]: refused.
    ws.write("overlays/repository/resources/security/client-truststore.jks", &fs::read(k.join("one.jks")).unwrap());
    let out = ws.run(&["build", "--to", "oci:never"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("overlays/repository/resources/security/client-truststore.jks: replaces the base's truststore"),
        "{err}"
    );
    assert!(!ws.join("never").exists());
}

/// A base whose truststore holds a private key: the merged store is a
/// keystore — refused without baking; with baking, labelled as baked.
#[test]
fn a_truststore_with_a_private_key_keeps_the_keystore_rules() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    let k = ws.join("k");
    fs::create_dir_all(&k).unwrap();
    sh(Command::new("keytool")
        .args(["-genkeypair", "-keyalg", "EC", "-groupname", "secp256r1", "-alias", "server", "-dname", "CN=server"])
        .args(["-storetype", "JKS", "-storepass", "wso2carbon", "-keypass", "wso2carbon", "-keystore"])
        .arg(k.join("keyed.jks")));
    let base = base_with(&ws, "base", "builtin:wso2am-4.3.0", &k.join("keyed.jks"));
    ca(&ws.join("certs"), "partner-ca", "Partner CA");
    config(&ws, &base, "certs = [\"certs/partner-ca.pem\"]");
    let out = ws.run(&["build", "--to", "oci:never"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("holds a private key, so the merged store is a keystore"), "{err}");
    assert!(!ws.join("never").exists());
    ws.config(&format!(
        "[base]\nimage = \"{base}\"\n[layers]\nbake_keystores = true\n[truststore]\ncerts = [\"certs/partner-ca.pem\"]\n"
    ));
    let rep = json(&ws.run_ok(&["build", "--json", "--to", "oci:baked"]));
    assert_eq!(rep["keystores_baked"], true);
    assert_eq!(rep["platforms"][0]["truststore"]["private_key"], true);
    let index = layout_index(&ws.join("baked"));
    let manifest = layout_json(&ws.join("baked"), index["manifests"][0]["digest"].as_str().unwrap());
    let cfg = layout_json(&ws.join("baked"), manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(cfg["config"]["Labels"]["io.wso2img.keystores"], "baked");
}
