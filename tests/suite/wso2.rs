//! WSO2-aware layering: the same customization on a 4.3-like and a 4.1-like
//! base, input checks (jars, artifacts, themes, keystores), deployment-profile
//! variants and the SBOM.

use std::fs;
use std::process::Command;

use serde_json::Value;

use super::support::*;

/// A customization that fits every version: no version-specific theme file.
fn portable(ws: &Workspace) {
    ws.write("jars/acme-driver-1.0.jar", &real_jar("com.acme", "acme-driver", "1.0"));
    ws.write("dropins/acme-handler-2.1.jar", &bundle_jar("com.acme", "acme-handler", "2.1"));
    ws.write("themes/devportal/images/logo.svg", b"<svg/>\n");
    ws.write("themes/tenants/acme/defaultTheme.json", b"{}\n");
    ws.write("overlays/repository/conf/deployment.toml", b"[server]\nhostname = \"acme\"\n");
}

fn layer_paths(r: &Value) -> Vec<String> {
    r["layers"].as_array().unwrap().iter().map(|l| l["description"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_same_customization_lands_right_on_43_and_41_bases() {
    if !have("umoci", &["--version"]) {
        return;
    }
    let ws = Workspace::new();
    portable(&ws);
    sample_430(false, &["linux/amd64", "linux/arm64"]).write_oci(&ws.join("b43"), "4.3.0").unwrap();
    sample_410(false).write_docker_archive(&ws.join("b41.tar"), "wso2/wso2am:4.1.0").unwrap();
    ws.config("[base]\nimage = \"oci:b43:4.3.0\"\n");

    let r43 = json(&ws.run_ok(&["build", "--json", "--to", "oci:o43"]));
    assert_eq!(r43["platforms"].as_array().unwrap().len(), 2);
    assert_eq!(r43["platforms"][0]["detected"]["product_home"], "/home/wso2carbon/wso2am-4.3.0");
    assert_eq!(r43["platforms"][0]["detected"]["version"], "4.3.0");
    let r41 = json(&ws.run_ok(&["build", "--json", "--base", "docker-archive:b41.tar", "--to", "oci:o41"]));
    assert_eq!(r41["platforms"][0]["detected"]["owner"]["uid"], 802);
    assert_eq!(r41["platforms"][0]["detected"]["version"], "4.1.0");
    assert_eq!(r43["layers"].as_array().unwrap().len(), 4, "{:?}", layer_paths(&r43));

    let check = |dir: &str, tag: &str, home: &str, apps: &str, uid: u32| {
        let bundle = ws.join(&format!("{dir}-bundle"));
        let mut c = Command::new("umoci");
        c.args(["unpack", "--image", &format!("{}:{tag}", ws.join(dir).display())]).arg(&bundle);
        if unsafe_uid() != 0 {
            c.arg("--rootless");
        }
        ok(&mut c);
        let root = bundle.join("rootfs");
        for (rel, src) in [
            (format!("{home}/repository/components/lib/acme-driver-1.0.jar"), "jars/acme-driver-1.0.jar"),
            (format!("{home}/repository/components/dropins/acme-handler-2.1.jar"), "dropins/acme-handler-2.1.jar"),
            (format!("{home}/repository/deployment/server/{apps}/devportal/site/public/theme/images/logo.svg"), "themes/devportal/images/logo.svg"),
            (format!("{home}/repository/deployment/server/{apps}/devportal/site/public/tenant_themes/acme/defaultTheme.json"), "themes/tenants/acme/defaultTheme.json"),
            (format!("{home}/repository/conf/deployment.toml"), "overlays/repository/conf/deployment.toml"),
        ] {
            let p = root.join(rel.trim_start_matches('/'));
            assert_eq!(fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())), fs::read(ws.join(src)).unwrap());
            if unsafe_uid() == 0 {
                use std::os::unix::fs::MetadataExt;
                let m = fs::metadata(&p).unwrap();
                assert_eq!((m.uid(), m.gid()), (uid, uid), "{rel}");
            }
        }
    };
    // umoci unpacks one manifest: take the amd64 image of the same build.
    let amd = json(&ws.run_ok(&["build", "--json", "--platform", "linux/amd64", "--to", "oci:o43a"]));
    assert_eq!(amd["layers"], r43["layers"], "platforms share the customer layers");
    check("o43a", amd["tag"].as_str().unwrap(), "/home/wso2carbon/wso2am-4.3.0", "webapps", 10001);
    // skopeo cannot read Docker media types from a layout; umoci reads the manifest by tag.
    let r41_oci =
        json(&ws.run_ok(&["build", "--json", "--base", "docker-archive:b41.tar", "--to", "docker-archive:o41.tar"]));
    assert_eq!(r41_oci["content_digest"], r41["content_digest"]);
    if docker() && busybox().is_some() {
        let ws2 = Workspace::new();
        portable(&ws2);
        sample_410(true).write_docker_archive(&ws2.join("b41.tar"), "wso2/wso2am:4.1.0").unwrap();
        ws2.config(
            "[base]\nimage = \"docker-archive:b41.tar\"\n[target]\nrepository = \"localhost/wso2img-test/v41\"\n",
        );
        let r = json(&ws2.run_ok(&["build", "--json", "--to", "docker-archive:img.tar"]));
        docker_ok(&["load", "-i", ws2.join("img.tar").to_str().unwrap()]);
        let image = format!("localhost/wso2img-test/v41:{}", r["tag"].as_str().unwrap());
        let home = "/home/wso2carbon/wso2am-4.1.0";
        let out = docker_ok(&[
            "run", "--rm", "--network", "none", "--pull", "never", "--entrypoint", "/bin/sh", &image, "-c",
            &format!("stat -c '%u:%g' {home}/repository/components/dropins/acme-handler-2.1.jar {home}/repository/deployment/server/jaggeryapps/devportal/site/public/theme/images/logo.svg"),
        ]);
        assert_eq!(out, "802:802\n802:802\n");
        let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    }
}

fn unsafe_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

fn expect_error(ws: &Workspace, args: &[&str], needles: &[&str]) {
    let out = ws.run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {args:?}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} in {err}");
    }
    assert!(!ws.join("out").exists() && !ws.join("img.tar").exists(), "nothing written");
}

#[test]
fn bad_inputs_are_refused_before_anything_is_written() {
    let build = ["build", "--to", "oci:out", "--to", "docker-archive:img.tar"];
    let fresh = || {
        let ws = Workspace::new();
        portable(&ws);
        ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
        ws
    };
    let ws = fresh();
    let jar = real_jar("com.acme", "acme-x", "1.0");
    ws.write("jars/acme-x-1.0.jar", &jar[..jar.len() - 30]);
    expect_error(&ws, &build, &["jars/acme-x-1.0.jar", "truncated"]);

    let ws = fresh();
    ws.write("jars/empty.jar", b"");
    expect_error(&ws, &build, &["jars/empty.jar", "empty"]);

    let ws = fresh();
    ws.write("jars/acme-driver-1.1.jar", &real_jar("com.acme", "acme-driver", "1.1"));
    expect_error(&ws, &build, &["jars/acme-driver-1.0.jar", "jars/acme-driver-1.1.jar", "twice"]);

    let ws = fresh();
    ws.write("jars/mysql-connector-j-8.4.0.jar", &real_jar("com.mysql", "mysql-connector-j", "8.4.0"));
    ws.write("dropins/mysql-connector-j-8.4.0.jar", &bundle_jar("com.mysql", "mysql-connector-j", "8.4.0"));
    expect_error(
        &ws,
        &build,
        &["jars/mysql-connector-j-8.4.0.jar", "dropins/mysql-connector-j-8.4.0.jar", "lib and dropins"],
    );

    let ws = fresh();
    ws.write("themes/devportal/userTheme.js", b"const Configurations = {};\n");
    expect_error(&ws, &build, &["themes/devportal/userTheme.js", "userTheme.json"]);

    let ws = fresh();
    ws.write("keystores/wso2carbon.jks", b"-----BEGIN CERTIFICATE-----\n");
    expect_error(
        &ws,
        &["build", "--bake-keystores", "--to", "oci:out"],
        &["keystores/wso2carbon.jks", "not a keystore"],
    );

    let ws = fresh();
    ws.write("keystores/wso2carbon.jks", &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]);
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n[layers]\nbake_keystores = true\n[target]\npublic_registries = [\"127.0.0.1:1\"]\n");
    expect_error(
        &ws,
        &["build", "--to", "docker://127.0.0.1:1/acme/apim"],
        &["keystores", "public", "--allow-public-keystores"],
    );
    expect_error(
        &ws,
        &["build", "--to", "docker://docker.io/acme/apim"],
        &["keystores", "docker.io", "--allow-public-keystores"],
    );
    expect_error(&ws, &["build", "--to", "acme/apim"], &["docker.io", "--allow-public-keystores"]);

    let ws = fresh();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n[[variant]]\nname = \"km\"\nprofile = \"api-key-manager\"\n");
    expect_error(&ws, &build, &["api-key-manager", "4.3.0", "gateway-worker"]);
}

#[test]
fn variants_share_layers_and_start_in_their_profiles() {
    let ws = Workspace::new();
    portable(&ws);
    ws.write("variants/gateway/overlays/repository/conf/gateway.txt", b"gw\n");
    let runnable = docker() && busybox().is_some();
    // The official 4.3 shape: its entrypoint reads PROFILE_NAME, runs profileSetup.sh, then the launcher.
    let mut base = wso2img::wso2::sample::SampleBase::official(wso2img::wso2::ProductKind::AllInOne, "4.3.0");
    if runnable {
        base.busybox = busybox();
    }
    base.write_oci(&ws.join("base"), "4.3.0").unwrap();
    ws.config(
        "[base]\nimage = \"oci:base:4.3.0\"\n[target]\nrepository = \"localhost/wso2img-test/variants\"\n\
         [[variant]]\nname = \"gateway\"\nprofile = \"gateway-worker\"\noverlays = \"variants/gateway/overlays\"\n\
         [[variant]]\nname = \"cp\"\nprofile = \"control-plane\"\n\
         [[variant]]\nname = \"tm\"\nprofile = \"traffic-manager\"\n",
    );
    let plan = json(&ws.run_ok(&["plan", "--json"]));
    let variants = plan["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 3);
    let r = json(&ws.run_ok(&["build", "--json", "--to", "oci:out", "--to", "docker-archive:img.tar"]));
    let vs = r["variants"].as_array().unwrap();
    assert_eq!(vs.len(), 3);
    for (p, b) in variants.iter().zip(vs) {
        assert_eq!(p["content_digest"], b["content_digest"], "plan and build agree for {}", b["name"]);
        assert!(b["tag"].as_str().unwrap().ends_with(&format!("-{}", b["name"].as_str().unwrap())));
    }
    let main_layers: Vec<Value> = manifest_layers(&ws, r["outputs"][0]["digest"].as_str().unwrap());
    for v in vs {
        let layers = manifest_layers(&ws, v["outputs"][0]["digest"].as_str().unwrap());
        assert_eq!(layers[..main_layers.len()], main_layers[..], "{} shares the main layers", v["name"]);
        // Each profile variant adds its `:profile` layer (the main deployment.toml at the profile's
        // template path); the gateway also its own overlays.
        let extra = if v["name"] == "gateway" { 2 } else { 1 };
        assert_eq!(layers.len(), main_layers.len() + extra);
    }
    if runnable {
        docker_ok(&["load", "-i", ws.join("img.tar").to_str().unwrap()]);
        for v in vs {
            let image = format!("localhost/wso2img-test/variants:{}", v["tag"].as_str().unwrap());
            let out = docker_ok(&["run", "--rm", "--network", "none", "--pull", "never", &image]);
            let profile = v["profile"].as_str().unwrap();
            assert!(out.contains(&format!("profileSetup.sh with: -Dprofile={profile}")), "{out}");
            assert!(out.contains(&format!("api-manager.sh with: -Dprofile={profile} PROFILE_NAME={profile}")), "{out}");
            let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
        }
    }
}

fn manifest_layers(ws: &Workspace, digest: &str) -> Vec<Value> {
    layout_json(&ws.join("out"), digest)["layers"].as_array().unwrap().clone()
}

#[test]
fn sbom_is_valid_cyclonedx_and_lists_what_was_added() {
    let ws = Workspace::new();
    portable(&ws);
    ws.write("keystores/wso2carbon.jks", &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 9]);
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n[layers]\nbake_keystores = true\n");
    let r = json(&ws.run_ok(&["build", "--json", "--to", "oci:out", "--sbom", "sbom.json"]));
    assert_eq!(r["keystores_baked"], true);
    let text = fs::read_to_string(ws.join("sbom.json")).unwrap();
    let bom: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(bom["specVersion"], "1.5");
    let comps = bom["components"].as_array().unwrap();
    let find = |pred: &dyn Fn(&Value) -> bool| comps.iter().find(|c| pred(c)).cloned();
    let driver = find(&|c| c["name"] == "acme-driver").expect("jar listed");
    assert_eq!(driver["purl"], "pkg:maven/com.acme/acme-driver@1.0");
    assert_eq!(
        driver["hashes"][0]["content"].as_str().unwrap(),
        wso2img::digest::Digest::of(&fs::read(ws.join("jars/acme-driver-1.0.jar")).unwrap()).hex()
    );
    let logo =
        find(&|c| c["name"].as_str().unwrap_or("").ends_with("theme/images/logo.svg")).expect("theme file listed");
    assert!(logo["hashes"].is_array());
    let ks = find(&|c| c["name"].as_str().unwrap_or("").ends_with("security/wso2carbon.jks")).expect("keystore listed");
    assert!(ks.get("hashes").is_none(), "keystores by path only");
    let base = find(&|c| c["bom-ref"] == "base-image").unwrap();
    assert_eq!(base["name"], "builtin:wso2am-4.3.0");
    assert_eq!(base["version"], r["base"]["digest"]);
    assert!(find(&|c| c["name"].as_str().unwrap_or("").ends_with("repository/conf/deployment.toml")).is_some());

    let python = std::env::var("WSO2IMG_TEST_PYTHON").ok();
    let Some(python) = python else {
        assert!(!in_ci(), "WSO2IMG_TEST_PYTHON (set by tests/run.sh) is required in CI");
        return;
    };
    let script = "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\n\
                  err = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
                  print(err)\nsys.exit(1 if err else 0)\n";
    let out = Command::new(python).arg("-c").arg(script).arg(ws.join("sbom.json")).output().unwrap();
    assert!(
        out.status.success(),
        "CycloneDX 1.5 validation: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
