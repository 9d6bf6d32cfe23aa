//! Every official image shape (issue 9): the all-in-one images of 4.1 to 4.5
//! and the 4.5 control plane, traffic manager and gateway. Detection of kind,
//! version, home, user, owner and portals; themes only where a portal is;
//! profiles only where the version's entrypoint takes them; each image starts
//! its own launcher.

use std::fs;
use std::process::Command;

use serde_json::Value;
use wso2img::wso2::sample::SampleBase;
use wso2img::wso2::ProductKind;

use super::support::*;

/// One row of the detection table.
struct Row {
    name: &'static str,
    base: SampleBase,
    kind: &'static str,
    version: &'static str,
    user: &'static str,
    uid: u64,
    portals: &'static [&'static str],
    /// Where `themes/devportal/images/logo.svg` lands, below the product home.
    theme: Option<&'static str>,
}

const ALL_PORTALS: &[&str] = &["devportal", "publisher", "admin"];
const JAGGERY: &str = "repository/deployment/server/jaggeryapps/devportal/site/public/theme/images/logo.svg";
const WEBAPPS: &str = "repository/deployment/server/webapps/devportal/site/public/theme/images/logo.svg";

fn rows() -> Vec<Row> {
    use ProductKind::*;
    let row = |name, base, kind, version, user, uid, portals, theme| Row {
        name,
        base,
        kind,
        version,
        user,
        uid,
        portals,
        theme,
    };
    vec![
        row("v410", SampleBase::v410(), "all-in-one", "4.1.0", "wso2carbon", 802, ALL_PORTALS, Some(JAGGERY)),
        row("v430", SampleBase::v430(), "all-in-one", "4.3.0", "10001", 10001, ALL_PORTALS, Some(WEBAPPS)),
        row(
            "aio41",
            SampleBase::official(AllInOne, "4.1.0"),
            "all-in-one",
            "4.1.0",
            "802",
            802,
            ALL_PORTALS,
            Some(JAGGERY),
        ),
        row(
            "aio42",
            SampleBase::official(AllInOne, "4.2.0"),
            "all-in-one",
            "4.2.0",
            "802",
            802,
            ALL_PORTALS,
            Some(WEBAPPS),
        ),
        row(
            "aio43",
            SampleBase::official(AllInOne, "4.3.0"),
            "all-in-one",
            "4.3.0",
            "10001",
            10001,
            ALL_PORTALS,
            Some(WEBAPPS),
        ),
        row(
            "aio44",
            SampleBase::official(AllInOne, "4.4.0"),
            "all-in-one",
            "4.4.0",
            "10001",
            10001,
            ALL_PORTALS,
            Some(WEBAPPS),
        ),
        row(
            "aio45",
            SampleBase::official(AllInOne, "4.5.0"),
            "all-in-one",
            "4.5.0",
            "10001",
            10001,
            ALL_PORTALS,
            Some(WEBAPPS),
        ),
        row(
            "acp45",
            SampleBase::official(ControlPlane, "4.5.0"),
            "acp",
            "4.5.0",
            "10001",
            10001,
            ALL_PORTALS,
            Some(WEBAPPS),
        ),
        row("tm45", SampleBase::official(TrafficManager, "4.5.0"), "tm", "4.5.0", "10001", 10001, &[], None),
        row("gw45", SampleBase::official(Gateway, "4.5.0"), "gateway", "4.5.0", "10001", 10001, &[], None),
    ]
}

/// Paths of the entries of a gzipped layer blob in an OCI layout.
fn layer_paths(ws: &Workspace, layout: &str, digest: &str) -> Vec<String> {
    use std::io::Read;
    let hex = digest.strip_prefix("sha256:").unwrap();
    let blob = fs::read(ws.join(layout).join("blobs/sha256").join(hex)).unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&blob[..]).read_to_end(&mut tar).unwrap();
    let mut ar = tar::Archive::new(&tar[..]);
    ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect()
}

#[test]
fn detection_table_over_every_official_shape() {
    let ws = Workspace::new();
    ws.write("themes/devportal/images/logo.svg", b"<svg/>\n");
    for r in rows() {
        let server = r.base.server_folder();
        let home = format!("/home/wso2carbon/{server}");
        r.base.write_oci(&ws.join(r.name), "t").unwrap();
        let info = json(&ws.run_ok(&["inspect", "--json", &format!("oci:{}:t", r.name)]));
        let platforms = info["platforms"].as_array().unwrap();
        assert_eq!(platforms.len(), r.base.platforms.len(), "{}: attestations are not platforms", r.name);
        for p in platforms {
            let d = &p["detected"];
            let portals: Vec<&str> = d["portals"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            let got = (
                d["kind"].as_str().unwrap(),
                d["version"].as_str().unwrap(),
                d["product_home"].as_str().unwrap(),
                d["user"].as_str().unwrap(),
                d["owner"]["uid"].as_u64().unwrap(),
                portals,
            );
            assert_eq!(got, (r.kind, r.version, home.as_str(), r.user, r.uid, r.portals.to_vec()), "{}", r.name);
        }
        ws.config(&format!("[base]\nimage = \"oci:{}:t\"\n", r.name));
        let platform = r.base.platforms[0].to_string();
        let args = ["build", "--json", "--platform", platform.as_str(), "--to", "oci:out"];
        match r.theme {
            Some(theme) => {
                let b = json(&ws.run_ok(&args));
                assert_eq!(b["platforms"][0]["detected"]["kind"], r.kind);
                let layer = b["layers"].as_array().unwrap().iter().find(|l| l["name"] == "themes").unwrap().clone();
                let paths = layer_paths(&ws, "out", layer["digest"].as_str().unwrap());
                let want = format!("{}/{theme}", home.trim_start_matches('/'));
                assert!(paths.contains(&want), "{}: {want} in {paths:?}", r.name);
                fs::remove_dir_all(ws.join("out")).unwrap();
            }
            None => {
                one_line_error(&ws.run(&args), 2, &["themes/devportal", r.kind, &server, "no devportal"]);
                assert!(!ws.join("out").exists(), "{}: nothing written", r.name);
            }
        }
    }
    // The official 4.5 images are BuildKit-published: an OCI index with an attestation entry per platform.
    let index = layout_index(&ws.join("gw45"));
    let top = layout_json(&ws.join("gw45"), index["manifests"][0]["digest"].as_str().unwrap());
    let entries = top["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    for (att, image) in [(&entries[2], &entries[0]), (&entries[3], &entries[1])] {
        assert_eq!(att["annotations"]["vnd.docker.reference.type"], "attestation-manifest");
        assert_eq!(att["annotations"]["vnd.docker.reference.digest"], image["digest"]);
    }
    let config = |layout: &str| -> Value {
        let idx = layout_index(&ws.join(layout));
        let mut m = layout_json(&ws.join(layout), idx["manifests"][0]["digest"].as_str().unwrap());
        if m.get("manifests").is_some() {
            m = layout_json(&ws.join(layout), m["manifests"][0]["digest"].as_str().unwrap());
        }
        layout_json(&ws.join(layout), m["config"]["digest"].as_str().unwrap())
    };
    let ports = |layout: &str| config(layout)["config"]["ExposedPorts"].as_object().unwrap().len();
    assert_eq!(ports("gw45"), 8);
    assert_eq!(ports("tm45"), 10);
    assert_eq!(config("aio41")["config"]["User"], "802");
}

#[test]
fn init_on_a_gateway_scaffolds_no_themes_and_says_why() {
    let ws = Workspace::new();
    let out = ws.run_ok(&["init", "--base", "builtin:wso2am-universal-gw-4.5.0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no themes/") && err.contains("gateway"), "{err}");
    assert!(!ws.join("themes").exists());
    assert!(ws.join("jars").is_dir() && ws.join("overlays").is_dir());
    let text = fs::read_to_string(ws.join("wso2img.toml")).unwrap();
    assert!(!text.contains("themes = "), "{text}");
    ws.run_ok(&["plan"]);
    let ws = Workspace::new();
    ws.run_ok(&["init", "--base", "builtin:wso2am-acp-4.5.0"]);
    assert!(ws.join("themes/devportal/userTheme.json").is_file());
}

#[test]
fn profiles_only_where_the_version_runs_them() {
    let ws = Workspace::new();
    ws.write("overlays/repository/conf/x.txt", b"x\n");
    let variant = |base: &str, profile: &str| {
        ws.config(&format!("[base]\nimage = \"builtin:{base}\"\n[[variant]]\nname = \"v\"\nprofile = \"{profile}\"\n"));
    };
    let build = ["build", "--to", "oci:out"];
    variant("wso2am-4.5.0", "gateway-worker");
    one_line_error(&ws.run(&build), 2, &["gateway-worker", "4.5.0", "no profiles", "wso2/wso2am-universal-gw:4.5.0"]);
    variant("wso2am-4.5.0", "control-plane");
    one_line_error(&ws.run(&build), 2, &["4.5.0", "wso2/wso2am-acp:4.5.0"]);
    variant("wso2am-tm-4.5.0", "traffic-manager");
    one_line_error(&ws.run(&build), 2, &["traffic-manager", "4.5.0", "runs no profiles"]);
    variant("wso2am-acp-4.5.0", "control-plane");
    one_line_error(&ws.run(&build), 2, &["control-plane", "key-manager", "4.5.0"]);
    variant("wso2am-4.4.0", "key-manager");
    one_line_error(&ws.run(&build), 2, &["key-manager", "4.4.0", "gateway-worker", "api-key-manager-node"]);
    // Exactly what each version's profileSetup.sh accepts.
    variant("wso2am-4.2.0", "api-key-manager-node");
    one_line_error(&ws.run(&build), 2, &["api-key-manager-node", "4.2.0", "api-key-manager-deprecated"]);
    variant("wso2am-4.1.0", "api-key-manager-node");
    one_line_error(&ws.run(&build), 2, &["api-key-manager-node", "4.1.0", "api-devportal-deprecated"]);
    assert!(!ws.join("out").exists() && !ws.join("wso2img.lock").exists(), "nothing written");
    for (base, profile) in [
        ("wso2am-4.4.0", "api-key-manager-node"),
        ("wso2am-4.2.0", "api-key-manager-deprecated"),
        ("wso2am-4.4.0", "default"),
    ] {
        variant(base, profile);
        ws.run_ok(&["plan"]);
    }
    variant("wso2am-acp-4.5.0", "key-manager");
    let plan = json(&ws.run_ok(&["plan", "--json"]));
    assert_eq!(plan["variants"][0]["profile"], "key-manager");
    // `default` is the start without a profile: no PROFILE_NAME at all.
    for (profile, env) in [("default", None), ("gateway-worker", Some("PROFILE_NAME=gateway-worker"))] {
        variant("wso2am-4.4.0", profile);
        let r = json(&ws.run_ok(&["build", "--json", "--to", "oci:def"]));
        let config = layout_json(&ws.join("def"), r["variants"][0]["platforms"][0]["config_digest"].as_str().unwrap());
        let set: Vec<&str> = config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e.as_str().filter(|e| e.starts_with("PROFILE_NAME=")))
            .collect();
        assert_eq!(set, env.into_iter().collect::<Vec<_>>(), "{profile}");
    }
}

#[test]
fn each_official_shape_starts_its_own_launcher() {
    if !(docker() && busybox().is_some()) {
        return;
    }
    let ws = Workspace::new();
    ws.write("overlays/repository/conf/acme.txt", b"acme\n");
    let cases: [(&str, ProductKind, &str, Option<&str>, &str); 5] = [
        (
            "aio43",
            ProductKind::AllInOne,
            "4.3.0",
            Some("gateway-worker"),
            "api-manager.sh with: -Dprofile=gateway-worker PROFILE_NAME=gateway-worker",
        ),
        ("aio45", ProductKind::AllInOne, "4.5.0", None, "api-manager.sh with:  PROFILE_NAME="),
        (
            "acp45",
            ProductKind::ControlPlane,
            "4.5.0",
            Some("key-manager"),
            "key-manager.sh with:  PROFILE_NAME=key-manager",
        ),
        ("tm45", ProductKind::TrafficManager, "4.5.0", None, "traffic-manager.sh with:  PROFILE_NAME="),
        ("gw45", ProductKind::Gateway, "4.5.0", None, "gateway.sh with:  PROFILE_NAME="),
    ];
    for (name, kind, version, profile, want) in cases {
        let mut base = SampleBase::official(kind, version);
        base.busybox = busybox();
        base.platforms.truncate(1);
        base.write_oci(&ws.join(name), "t").unwrap();
        let variant = profile.map(|p| format!("[[variant]]\nname = \"p\"\nprofile = \"{p}\"\n")).unwrap_or_default();
        ws.config(&format!(
            "[base]\nimage = \"oci:{name}:t\"\n[target]\nrepository = \"localhost/wso2img-test/kinds\"\ntag = \"{name}-{{kind}}\"\n{variant}"
        ));
        let r = json(&ws.run_ok(&["build", "--json", "--to", &format!("docker-archive:{name}.tar")]));
        assert_eq!(r["tag"].as_str().unwrap(), format!("{name}-{}", kind.name()));
        docker_ok(&["load", "-i", ws.join(&format!("{name}.tar")).to_str().unwrap()]);
        let tag = match profile {
            Some(_) => r["variants"][0]["tag"].as_str().unwrap().to_string(),
            None => r["tag"].as_str().unwrap().to_string(),
        };
        let image = format!("localhost/wso2img-test/kinds:{tag}");
        let out = docker_ok(&["run", "--rm", "--network", "none", "--pull", "never", &image]);
        assert!(out.contains(want), "{name}: {want:?} in {out}");
        let home = format!("/home/wso2carbon/{}", SampleBase::official(kind, version).server_folder());
        let cat = docker_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--pull",
            "never",
            "--entrypoint",
            "/bin/cat",
            &image,
            &format!("{home}/repository/conf/acme.txt"),
        ]);
        assert_eq!(cat, "acme\n");
        let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    }
}
