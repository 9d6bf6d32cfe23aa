//! A distributed deployment from one config (issue 9): the control plane as
//! the main image, the traffic manager and the gateway as `[[variant]]`s on
//! bases of their own, built and pushed in one run.

use std::process::Command;

use wso2img::wso2::sample::SampleBase;
use wso2img::wso2::ProductKind;

use super::registry_support::{registry_tools, wso2img_run, Kind, Registry};
use super::support::*;

/// Writes the three 4.5 bases (one platform, runnable) and a config using them.
fn distributed_workspace(repo: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write("jars/acme-driver-1.0.jar", &real_jar("com.acme", "acme-driver", "1.0"));
    ws.write("themes/devportal/userTheme.json", b"{\"custom\":{}}\n");
    ws.write("overlays/repository/conf/acme.txt", b"acme\n");
    ws.write("gw-extra/repository/conf/gateway-only.txt", b"gw\n");
    for (name, kind) in
        [("acp", ProductKind::ControlPlane), ("tm", ProductKind::TrafficManager), ("gw", ProductKind::Gateway)]
    {
        let mut base = SampleBase::official(kind, "4.5.0");
        base.busybox = busybox();
        base.platforms.truncate(1);
        base.write_oci(&ws.join(name), "4.5.0").unwrap();
    }
    ws.config(&format!(
        "[base]\nimage = \"oci:acp:4.5.0\"\n[target]\nrepository = \"{repo}\"\ntag = \"{{kind}}-{{digest12}}\"\n\
         [[variant]]\nname = \"tm\"\nbase = \"oci:tm:4.5.0\"\nlayers = [\"jars\", \"overlays\"]\ntag = \"{{kind}}-{{digest12}}\"\n\
         [[variant]]\nname = \"gw\"\nbase = \"oci:gw:4.5.0\"\nlayers = [\"jars\", \"overlays\"]\noverlays = \"gw-extra\"\ntag = \"{{kind}}-{{digest12}}\"\n"
    ));
    ws
}

#[test]
fn one_config_three_bases_one_push() {
    if !registry_tools() || !docker() || busybox().is_none() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    let repo = format!("{}/acme/apim", reg.host());
    let ws = distributed_workspace(&repo);
    let out = wso2img_run(&ws, &["build", "--json", "--push"]);
    let r = json(&succeeded(&bin(), out));
    let tags: Vec<String> = std::iter::once(r["tag"].as_str().unwrap().to_string())
        .chain(r["variants"].as_array().unwrap().iter().map(|v| v["tag"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(tags.len(), 3, "{r}");
    assert!(tags[0].starts_with("acp-") && tags[1].starts_with("tm-") && tags[2].starts_with("gateway-"), "{tags:?}");
    assert_eq!(r["platforms"][0]["detected"]["kind"], "acp");
    assert_eq!(r["variants"][0]["platforms"][0]["detected"]["kind"], "tm");
    assert_eq!(r["variants"][1]["platforms"][0]["detected"]["kind"], "gateway");
    assert_eq!(r["variants"][1]["base"]["location"], "oci:gw:4.5.0");
    for v in r["variants"].as_array().unwrap() {
        assert_eq!(v["outputs"][0]["status"], "pushed", "{v}");
    }
    // Every base is pinned.
    let lock = std::fs::read_to_string(ws.join("wso2img.lock")).unwrap();
    for b in ["oci:acp:4.5.0", "oci:tm:4.5.0", "oci:gw:4.5.0"] {
        assert!(lock.contains(b), "{b} in {lock}");
    }
    // Every blob went up at most once, whatever images share it.
    let uploads: Vec<String> = reg.requests().iter().filter_map(|q| q.uploaded_digest().map(str::to_string)).collect();
    let mut unique = uploads.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(uploads.len(), unique.len(), "a blob uploaded twice: {uploads:?}");
    // Each image starts its own launcher with the customer files in place.
    for (tag, launcher, home, extra) in [
        (&tags[0], "api-cp.sh", "wso2am-acp-4.5.0", None),
        (&tags[1], "traffic-manager.sh", "wso2am-tm-4.5.0", None),
        (&tags[2], "gateway.sh", "wso2am-universal-gw-4.5.0", Some("gateway-only.txt")),
    ] {
        let image = format!("{repo}:{tag}");
        docker_ok(&["pull", &image]);
        let started = docker_ok(&["run", "--rm", "--network", "none", "--pull", "never", &image]);
        assert!(started.contains(launcher), "{tag}: {launcher} in {started}");
        let conf = format!("/home/wso2carbon/{home}/repository/conf");
        let files = docker_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--pull",
            "never",
            "--entrypoint",
            "/bin/sh",
            &image,
            "-c",
            &format!("cat {conf}/acme.txt; ls /home/wso2carbon/{home}/repository/components/lib; ls {conf}"),
        ]);
        assert!(files.starts_with("acme\n") && files.contains("acme-driver-1.0.jar"), "{tag}: {files}");
        assert_eq!(extra.is_some(), files.contains("gateway-only.txt"), "{tag}: {files}");
        let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    }
}

#[test]
fn distributed_bad_inputs_are_one_line_exit_2() {
    let ws = distributed_workspace("localhost/acme/apim");
    plain_layout(&ws.join("notwso2"));
    let cases: [(&str, &str); 4] = [
        (
            "[base]\nimage = \"oci:acp:4.5.0\"\n[[variant]]\nname = \"x\"\nbase = \"oci:notwso2:x\"\nlayers = [\"jars\"]\n",
            "is not a WSO2 API Manager image",
        ),
        // Themes reach the gateway when it takes every main folder.
        ("[base]\nimage = \"oci:acp:4.5.0\"\n[[variant]]\nname = \"gw\"\nbase = \"oci:gw:4.5.0\"\n", "gateway"),
        ("[base]\nimage = \"oci:acp:4.5.0\"\n[[variant]]\nname = \"gw\"\nbase = \"oci:gw:4.5.0\"\nlayers = [\"jarz\"]\n", "not a kind of layer"),
        ("[base]\nimage = \"oci:acp:4.5.0\"\n[[variant]]\nname = \"gw\"\n", "give it a profile"),
    ];
    for (config, says) in cases {
        ws.config(config);
        let _ = std::fs::remove_file(ws.join("wso2img.lock"));
        let out = ws.run(&["build", "--to", "oci:out"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{config}: {err}");
        assert!(err.contains(says), "{config}: {says:?} in {err}");
        assert_eq!(err.lines().filter(|l| l.contains("error")).count(), 1, "{err}");
        assert!(!ws.join("out").exists());
    }
}

#[test]
fn a_variant_jar_meets_the_main_jars_in_the_artifact_checks() {
    let ws = distributed_workspace("localhost/acme/apim");
    let config = |extra: &str| {
        format!(
            "[base]\nimage = \"oci:acp:4.5.0\"\n[[variant]]\nname = \"gw\"\nbase = \"oci:gw:4.5.0\"\n\
             layers = [\"jars\"]\njars = \"gw-jars\"\n{extra}"
        )
    };
    // Its own artifact: fine.
    ws.write("gw-jars/acme-gateway-1.0.jar", &real_jar("com.acme", "acme-gateway", "1.0"));
    ws.config(&config(""));
    succeeded(&bin(), ws.run(&["plan"]));
    // Another version of a main jar's artifact: refused, naming both, nothing written.
    ws.write("gw-jars/acme-driver-2.0.jar", &real_jar("com.acme", "acme-driver", "2.0"));
    let out = ws.run(&["build", "--to", "oci:out"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("jars/acme-driver-1.0.jar and gw-jars/acme-driver-2.0.jar: the same artifact twice"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!ws.join("out").exists());
}

/// An OCI layout holding a minimal image that is not WSO2 API Manager: one
/// empty layer, no product folder, no WSO2_SERVER_HOME.
fn plain_layout(dir: &std::path::Path) {
    use std::io::Write;
    use wso2img::digest::Digest;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let d = Digest::of(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).unwrap();
        (d.to_string(), bytes.len())
    };
    let tar = vec![0u8; 1024];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let (layer, layer_size) = put(&gz.finish().unwrap());
    let diff_id = Digest::of(&tar).to_string();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "User": "1000"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    });
    let (cfg, cfg_size) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": cfg_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size}]
    });
    let (m, m_size) = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m, "size": m_size,
                       "annotations": {"org.opencontainers.image.ref.name": "x"}}]
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}
