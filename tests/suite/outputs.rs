//! What `build` writes, checked by independent tools: umoci unpacks the OCI
//! output (bytes, owners, modes), skopeo copies it (digests), and the media
//! types, platforms and layouts are what the base calls for.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use serde_json::{json as j, Value};

use super::support::*;

const HOME: &str = "home/wso2carbon/wso2am-4.3.0";

fn is_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

#[test]
fn oci_output_unpacks_with_right_bytes_owners_and_modes() {
    if !have("umoci", &["--version"]) || !have("skopeo", &["--version"]) {
        return;
    }
    let ws = Workspace::new();
    ws.customization();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    let r = json(&ws.run_ok(&["build", "--json", "--bake-keystores", "--to", "oci:out"]));
    let tag = r["tag"].as_str().unwrap();

    let copy = ws.join("copy");
    ok(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &format!("oci:{}:{tag}", ws.join("out").display()),
        &format!("oci:{}:x", copy.display()),
    ]));

    let bundle = ws.join("bundle");
    let mut unpack = Command::new("umoci");
    unpack.args(["unpack", "--image", &format!("{}:{tag}", ws.join("out").display())]);
    if !is_root() {
        unpack.arg("--rootless");
    }
    ok(unpack.arg(&bundle));
    let root = bundle.join("rootfs");
    let check = |rel: &str, src: Option<&str>, mode: u32| {
        let p = root.join(rel);
        let m = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(m.permissions().mode() & 0o7777, mode, "{rel} mode");
        if is_root() {
            assert_eq!((m.uid(), m.gid()), (10001, 10001), "{rel} owner");
        }
        assert_eq!(m.mtime(), 315_532_800, "{rel} mtime");
        if let Some(src) = src {
            assert_eq!(fs::read(&p).unwrap(), fs::read(ws.join(src)).unwrap(), "{rel} bytes");
        }
    };
    check(&format!("{HOME}/repository/components/lib/acme-driver-1.0.jar"), Some("jars/acme-driver-1.0.jar"), 0o644);
    check(&format!("{HOME}/repository/components/lib/acme-handler-2.1.jar"), Some("jars/acme-handler-2.1.jar"), 0o644);
    check(
        &format!("{HOME}/repository/deployment/server/webapps/devportal/site/public/theme/userTheme.json"),
        Some("themes/devportal/userTheme.json"),
        0o644,
    );
    check(
        &format!("{HOME}/repository/deployment/server/webapps/devportal/site/public/theme/images/logo.svg"),
        Some("themes/devportal/images/logo.svg"),
        0o644,
    );
    check(&format!("{HOME}/repository/conf/deployment.toml"), Some("overlays/repository/conf/deployment.toml"), 0o644);
    check(&format!("{HOME}/bin/acme-start.sh"), Some("overlays/bin/acme-start.sh"), 0o755);
    check(&format!("{HOME}/repository/resources/security/wso2carbon.jks"), Some("keystores/wso2carbon.jks"), 0o640);
    check(&format!("{HOME}/repository/components/lib"), None, 0o755);
    if is_root() {
        let home = fs::metadata(root.join("home")).unwrap();
        assert_eq!((home.uid(), home.mode() & 0o7777), (0, 0o755), "/home stays root-owned");
    }

    let config = layout_json(&ws.join("out"), r["platforms"][0]["config_digest"].as_str().unwrap());
    assert_eq!(config["config"]["User"], "10001", "base config preserved");
    assert_eq!(config["config"]["ArgsEscaped"], true, "unknown fields preserved");
    assert_eq!(config["config"]["Labels"]["io.wso2img.keystores"], "baked");
    assert_eq!(config["config"]["Labels"]["org.opencontainers.image.base.name"], "builtin:wso2am-4.3.0");
    assert!(config["config"]["Volumes"]["/home/wso2carbon/solr"].is_object());
    assert!(config["config"]["Volumes"][format!("/{HOME}/repository/database")].is_object());
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), 2 + 5, "two jars layers (groups 0 and 11), themes, keystores, overlays");
    assert!(history[2]["created_by"].as_str().unwrap().contains("jars.00"));
    let manifest = layout_json(&ws.join("out"), r["outputs"][0]["digest"].as_str().unwrap());
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.name"], "builtin:wso2am-4.3.0");
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.digest"], r["base"]["digest"]);
}

#[test]
fn keystores_are_left_out_unless_baked() {
    let ws = Workspace::new();
    ws.customization();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    let r = json(&ws.run_ok(&["plan", "--json"]));
    let names: Vec<&str> = r["layers"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["jars.00", "jars.11", "themes", "overlays"],
        "com.acme:acme-driver in group 0, com.acme:acme-handler in 11"
    );
}

/// Every media type in a layout blob graph from `digest` down.
fn media_types(dir: &Path, desc: &Value, out: &mut Vec<String>) {
    out.push(desc["mediaType"].as_str().unwrap().to_string());
    let mt = desc["mediaType"].as_str().unwrap();
    if mt.contains("index") || mt.contains("list") || mt.contains("manifest") {
        let v = layout_json(dir, desc["digest"].as_str().unwrap());
        for m in v["manifests"].as_array().into_iter().flatten() {
            media_types(dir, m, out);
        }
        if let Some(c) = v.get("config") {
            out.push(c["mediaType"].as_str().unwrap().to_string());
        }
        for l in v["layers"].as_array().into_iter().flatten() {
            out.push(l["mediaType"].as_str().unwrap().to_string());
        }
    }
}

#[test]
fn multi_platform_base_gives_multi_platform_result_without_attestations() {
    let ws = Workspace::new();
    ws.customization();
    let mut base = sample_430(false, &["linux/amd64", "linux/arm64"]);
    base.attestation = true;
    base.write_oci(&ws.join("base"), "4.3.0").unwrap();
    let base_index =
        layout_json(&ws.join("base"), layout_index(&ws.join("base"))["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(base_index["manifests"].as_array().unwrap().len(), 4, "fixture has an attestation entry per platform");

    ws.config("[base]\nimage = \"oci:base:4.3.0\"\n");
    let r = json(&ws.run_ok(&["build", "--json", "--to", "oci:out"]));
    let index = layout_json(&ws.join("out"), r["outputs"][0]["digest"].as_str().unwrap());
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let plats: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
        })
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64"]);
    let m0 = layout_json(&ws.join("out"), index["manifests"][0]["digest"].as_str().unwrap());
    let m1 = layout_json(&ws.join("out"), index["manifests"][1]["digest"].as_str().unwrap());
    // The base's product layer is per platform (its entrypoint program); the customer layers are shared.
    let customer = |m: &Value| m["layers"].as_array().unwrap().iter().rev().take(4).cloned().collect::<Vec<_>>();
    assert_eq!(customer(&m0), customer(&m1), "customer layers built once and shared");
    assert_eq!(layer_kinds(&r), ["jars", "themes", "overlays"]);
    assert_eq!(r["layers"].as_array().unwrap().len(), 4, "two jars in two groups");

    let mut entries: Vec<(String, String)> = r["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["platform"].as_str().unwrap().to_string(), p["config_digest"].as_str().unwrap().to_string()))
        .collect();
    entries.sort();
    let list: Vec<Value> = entries.iter().map(|(p, c)| j!({"config": c, "platform": p})).collect();
    let canon = serde_json::to_vec(&Value::Array(list)).unwrap();
    assert_eq!(r["content_digest"].as_str().unwrap(), wso2img::digest::Digest::of(&canon).to_string());

    let arm = json(&ws.run_ok(&["build", "--json", "--platform", "linux/arm64", "--to", "oci:arm"]));
    let m = layout_json(&ws.join("arm"), arm["outputs"][0]["digest"].as_str().unwrap());
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(arm["content_digest"], arm["platforms"][0]["config_digest"]);
    let cfg = layout_json(&ws.join("arm"), m["config"]["digest"].as_str().unwrap());
    assert_eq!(cfg["architecture"], "arm64");
}

#[test]
fn docker_media_type_base_gives_oci_types_in_a_layout_same_content_and_named_user() {
    let ws = Workspace::new();
    ws.customization();
    ws.theme_for_41();
    sample_410(false).write_docker_archive(&ws.join("base.tar"), "wso2/wso2am:4.1.0").unwrap();
    ws.config("[base]\nimage = \"docker-archive:base.tar\"\n");
    let r = json(&ws.run_ok(&["build", "--json", "--to", "oci:out"]));
    assert_eq!(r["base"]["name"], "docker.io/wso2/wso2am:4.1.0");
    assert_eq!(r["tag"].as_str().unwrap().split('-').next().unwrap(), "4.1.0");
    let d = &r["platforms"][0]["detected"];
    assert_eq!(d["owner"], j!({"uid": 802, "gid": 802}));
    assert_eq!(d["owner_from"], "/etc/passwd");
    let top = &layout_index(&ws.join("out"))["manifests"][0];
    let mut types = Vec::new();
    media_types(&ws.join("out"), top, &mut types);
    assert!(types.iter().all(|t| t.starts_with("application/vnd.oci.")), "an OCI layout holds OCI types: {types:?}");
    // Converting the types keeps the config bytes, so the content digest and tag.
    let cfg_digest = layout_json(&ws.join("out"), top["digest"].as_str().unwrap())["config"]["digest"].clone();
    assert_eq!(cfg_digest, r["content_digest"]);
    let base = r["base"]["media_types"].as_str().unwrap();
    assert_eq!(base, "docker");
    let plan = json(&ws.run_ok(&["plan", "--json"]));
    let themes = plan["layers"].as_array().unwrap().iter().find(|l| l["name"] == "themes").unwrap();
    assert!(themes["description"].as_str().unwrap().contains("themes/"));
    let info = json(&ws.run_ok(&["inspect", "--json", &format!("oci:out:{}", r["tag"].as_str().unwrap())]));
    assert_eq!(info["digest"], r["outputs"][0]["digest"]);
    assert_eq!(info["platforms"][0]["detected"]["version"], "4.1.0");
    let layers = info["platforms"][0]["layers"].as_array().unwrap();
    assert!(layers.iter().any(|l| l["created_by"].as_str().unwrap_or("").contains("wso2img themes")), "{layers:?}");
}

#[test]
fn oci_output_keeps_other_images_in_the_layout() {
    if !have("skopeo", &["--version"]) {
        return;
    }
    let ws = Workspace::new();
    ws.customization();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    let first = json(&ws.run_ok(&["build", "--json", "--to", "oci:out"]));
    ws.write("jars/acme-extra-1.0.jar", &real_jar("com.acme", "acme-extra", "1.0"));
    let second = json(&ws.run_ok(&["build", "--json", "--to", "oci:out", "--to", "oci:out:pinned"]));
    assert_ne!(first["tag"], second["tag"]);
    let idx = layout_index(&ws.join("out"));
    let names: Vec<&str> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for (tag, rep) in
        [(first["tag"].as_str().unwrap(), &first), (second["tag"].as_str().unwrap(), &second), ("pinned", &second)]
    {
        let out = ok(Command::new("skopeo").args(["inspect", &format!("oci:{}:{tag}", ws.join("out").display())]));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Digest"], rep["outputs"][0]["digest"]);
    }
}

#[test]
fn non_terminal_output_is_plain_timestamped_lines() {
    let ws = Workspace::new();
    ws.customization();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    ws.write("jars/big-1.0.jar", &real_jar("com.acme", "big", "1.0"));
    let out = ws.run_ok(&["-v", "build", "--to", "oci:out"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.lines().count() >= 4, "{err}");
    for line in err.lines() {
        assert!(!line.chars().any(|c| c.is_control()), "control character in {line:?}");
        let (stamp, rest) = line.split_once(' ').unwrap();
        assert!(stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T', "timestamp: {line}");
        assert!(rest.starts_with("wso2img: "), "{line}");
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.trim().starts_with("oci:out:4.3.0-") && stdout.lines().count() == 1,
        "data only on stdout: {stdout}"
    );
    assert!(stdout.trim().split_once('@').is_some_and(|(_, d)| d.starts_with("sha256:") && d.len() == 71), "{stdout}");
    let quiet = ws.run_ok(&["-q", "build", "--to", "oci:out"]);
    assert!(quiet.stderr.is_empty(), "-q prints nothing but errors");
}
