//! Same inputs, same bytes: copies of the inputs that differ in mtimes, umask,
//! creation order and working directory give identical digests and archives.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::support::*;

fn config() -> &'static str {
    "[base]\nimage = \"oci:base:4.3.0\"\n[layers]\nkeystores = \"keystores\"\nbake_keystores = true\n[image]\nlabels = { team = \"acme\" }\n"
}

/// Recreates `src` under `dst` in reverse order, under umask 077, with old mtimes.
fn scrambled_copy(src: &Path, dst: &Path) {
    let mut files = Vec::new();
    for e in walk(src) {
        files.push(e);
    }
    files.reverse();
    let mut script = String::from("set -e\numask 077\n");
    for rel in &files {
        let s = src.join(rel);
        let d = dst.join(rel);
        if s.is_dir() {
            script += &format!("mkdir -p '{}'\n", d.display());
        } else {
            script +=
                &format!("mkdir -p '{}'\ncat '{}' > '{}'\n", d.parent().unwrap().display(), s.display(), d.display());
            if fs::metadata(&s).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o100 != 0).unwrap()
            {
                script += &format!("chmod u+x '{}'\n", d.display());
            }
        }
        script += &format!("touch -h -d @1000000000 '{}'\n", d.display());
    }
    ok(Command::new("sh").arg("-c").arg(script));
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(&rel) };
        let mut names: Vec<String> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        for n in names {
            let r = if rel.is_empty() { n } else { format!("{rel}/{n}") };
            if root.join(&r).is_dir() {
                stack.push(r.clone());
            }
            out.push(r);
        }
    }
    out.sort();
    out
}

#[test]
fn copies_with_different_metadata_build_identical_images() {
    let a = Workspace::new();
    a.customization();
    a.config(config());
    sample_430(false, &[]).write_oci(&a.join("base"), "4.3.0").unwrap();

    let b = Workspace::new();
    scrambled_copy(a.path(), b.path());
    assert_ne!(
        fs::metadata(a.join("jars/acme-driver-1.0.jar")).unwrap().modified().unwrap(),
        fs::metadata(b.join("jars/acme-driver-1.0.jar")).unwrap().modified().unwrap()
    );

    let ra = json(&a.run_ok(&["build", "--json", "--to", "oci:out", "--to", "docker-archive:img.tar"]));
    let cfg_b = b.join("wso2img.toml");
    let out_b = b.join("out");
    let tar_b = b.join("img.tar");
    let rb = json(&ok(bin().current_dir("/").args([
        "-c",
        cfg_b.to_str().unwrap(),
        "build",
        "--json",
        "--to",
        &format!("oci:{}", out_b.display()),
        "--to",
        &format!("docker-archive:{}", tar_b.display()),
    ])));

    assert_eq!(ra["content_digest"], rb["content_digest"]);
    assert_eq!(ra["tag"], rb["tag"]);
    assert_eq!(ra["layers"], rb["layers"]);
    assert_eq!(ra["outputs"][0]["digest"], rb["outputs"][0]["digest"]);
    assert_eq!(fs::read(a.join("img.tar")).unwrap(), fs::read(&tar_b).unwrap(), "docker archives differ");
    assert_eq!(ra["layers"].as_array().unwrap().len(), 5, "jars (two groups), themes, keystores, overlays");
}

#[test]
fn plan_equals_build_and_unchanged_kinds_keep_their_digest() {
    let ws = Workspace::new();
    ws.customization();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    let plan = json(&ws.run_ok(&["plan", "--json"]));
    let built = json(&ws.run_ok(&["build", "--json"]));
    assert_eq!(plan["content_digest"], built["content_digest"]);
    assert_eq!(plan["tag"], built["tag"]);
    for (p, b) in plan["layers"].as_array().unwrap().iter().zip(built["layers"].as_array().unwrap()) {
        assert_eq!(p["diff_id"], b["diff_id"]);
        assert_eq!(p["files"], b["files"]);
        assert_eq!(p["bytes"], b["bytes"]);
    }
    assert!(plan["layers"][0].get("digest").is_none(), "plan must not compress");

    ws.write("themes/devportal/userTheme.json", b"{\"custom\":{\"title\":\"changed\"}}\n");
    let again = json(&ws.run_ok(&["build", "--json"]));
    let by_name = |r: &serde_json::Value, n: &str| {
        r["layers"].as_array().unwrap().iter().find(|l| l["name"] == n).cloned().unwrap()
    };
    assert_eq!(by_name(&built, "jars.00"), by_name(&again, "jars.00"));
    assert_eq!(by_name(&built, "jars.11"), by_name(&again, "jars.11"));
    assert_eq!(by_name(&built, "overlays"), by_name(&again, "overlays"));
    assert_ne!(by_name(&built, "themes")["diff_id"], by_name(&again, "themes")["diff_id"]);
    assert_ne!(built["content_digest"], again["content_digest"]);
}

#[test]
fn source_date_epoch_sets_mtimes_and_created() {
    let ws = Workspace::new();
    ws.customization();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    let plain = json(&ws.run_ok(&["plan", "--json"]));
    let out = ok(bin()
        .current_dir(ws.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["build", "--json", "--to", "oci:sde"]));
    let r = json(&out);
    assert_ne!(plain["content_digest"], r["content_digest"]);
    let cfg = layout_json(&ws.join("sde"), r["platforms"][0]["config_digest"].as_str().unwrap());
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
    let last = cfg["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["created"], "2023-11-14T22:13:20Z");
    assert!(!last["created_by"].as_str().unwrap().contains(env!("CARGO_PKG_VERSION")));
}

/// Jar layering v1 (`layer::split`): jars spread over hash groups by Maven
/// artifact, so a version bump lands in its old layer and every other layer
/// keeps its digest — only that layer is new to a registry.
#[test]
fn jar_version_bump_moves_only_its_layer() {
    use sha2::Digest as _;
    let ws = Workspace::new();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    for i in 0..24 {
        ws.write(&format!("jars/acme-part{i:02}-1.0.jar"), &real_jar("com.acme", &format!("acme-part{i:02}"), "1.0"));
    }
    ws.write("jars/vendor-x-2.0.jar", &big_jar("com.vendor", "vendor-x", "2.0", 20 << 20));
    let before = json(&ws.run_ok(&["plan", "--json"]));
    fs::remove_file(ws.join("jars/acme-part07-1.0.jar")).unwrap();
    ws.write("jars/acme-part07-1.1.jar", &real_jar("com.acme", "acme-part07", "1.1"));
    let after = json(&ws.run_ok(&["plan", "--json"]));

    let (b, a) = (layer_diff_ids(&before), layer_diff_ids(&after));
    let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&b), names(&a), "the same layers, in the same order");
    let jar_layers = b.iter().filter(|(n, _)| n.starts_with("jars.")).count();
    assert!((8..=17).contains(&jar_layers), "24 artifacts over 16 groups plus one big jar: {b:?}");
    assert!(b.iter().any(|(n, _)| n == "jars.com.vendor:vendor-x"), "a 20 MiB jar stands alone: {b:?}");
    let changed: Vec<&String> = b.iter().zip(&a).filter(|(x, y)| x.1 != y.1).map(|(x, _)| &x.0).collect();
    assert_eq!(changed.len(), 1, "only the bumped jar's layer changes: {changed:?}");
    let group = u32::from_be_bytes(sha2::Sha256::digest(b"com.acme:acme-part07")[..4].try_into().unwrap()) % 16;
    assert_eq!(changed[0], &format!("jars.{group:02}"), "the rule documented in README");
    assert_eq!(kind_files(&after, "jars"), 25);
}

/// The same base content in three folders (an OCI layout whose tag is not a
/// reference, a `docker save` archive) gives one content digest: the
/// base-name label and annotation name the base by the reference it carries
/// or its digest, never by where it sits, and no label, history line or
/// annotation holds a local path.
#[test]
fn a_local_base_gives_one_digest_wherever_it_sits() {
    for archive in [false, true] {
        let mut digests = Vec::new();
        for place in ["spot-a", "spot-b/deep", "spot-c/x/y/z"] {
            let ws = Workspace::new();
            ws.customization();
            let at = ws.join(place);
            fs::create_dir_all(&at).unwrap();
            let base = if archive {
                let path = at.join("base.tar");
                sample_430(false, &[]).write_docker_archive(&path, "registry.example/acme/wso2am:4.3.0").unwrap();
                format!("docker-archive:{}", path.display())
            } else {
                sample_430(false, &[]).write_oci(&at.join("base"), "4.3.0").unwrap();
                format!("oci:{}:4.3.0", at.join("base").display())
            };
            ws.config(&format!("[base]\nimage = \"{base}\"\n"));
            let r = json(&ws.run_ok(&["build", "--json", "--bake-keystores", "--to", "oci:out"]));
            let config = layout_json(&ws.join("out"), r["platforms"][0]["config_digest"].as_str().unwrap());
            let manifest = layout_json(&ws.join("out"), r["outputs"][0]["digest"].as_str().unwrap());
            let name = config["config"]["Labels"]["org.opencontainers.image.base.name"].as_str().unwrap().to_string();
            if archive {
                assert_eq!(name, "registry.example/acme/wso2am:4.3.0", "the reference the archive carries");
            } else {
                assert_eq!(
                    Some(name.as_str()),
                    r["base"]["digest"].as_str(),
                    "a layout without a reference: its digest"
                );
            }
            assert_eq!(manifest["annotations"]["org.opencontainers.image.base.name"], name.as_str());
            let root = ws.path().to_str().unwrap();
            for text in [config["config"]["Labels"].to_string(), config["history"].to_string(), manifest.to_string()] {
                assert!(!text.contains(root) && !text.contains("spot-"), "a local path in {text}");
            }
            digests.push(r["content_digest"].as_str().unwrap().to_string());
        }
        digests.dedup();
        assert_eq!(digests.len(), 1, "archive={archive}: {digests:?}");
    }
}
