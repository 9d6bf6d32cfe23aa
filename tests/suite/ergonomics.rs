//! CI ergonomics: the JSON output contract (snapshots of `plan --json` and
//! `build --json` of the golden input), every exit code, `wso2img.lock` with
//! `--locked`, `update` and `outdated` against a registry whose tag moves,
//! `init` on two versions, `--digest-file` / `--metadata-file`, completions
//! and the examples in every command's `--help`.
//!
//! Snapshots live in tests/snapshots/; after a deliberate change to the
//! report, rerun with `WSO2IMG_UPDATE_SNAPSHOTS=1` and review the diff.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use wso2img::wso2::sample::SampleBase;

use super::registry_support::*;
use super::support::*;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Copies a folder tree (files keep their modes).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A workspace holding a copy of the golden input (and its lock).
fn golden_ws() -> Workspace {
    let ws = Workspace::new();
    copy_tree(&golden_dir(), ws.path());
    ws
}

/// Compares `v` (with `ws`'s path replaced by `$WS`) with tests/snapshots/NAME.
fn snapshot(name: &str, v: &Value, ws: &Workspace) {
    let text = serde_json::to_string_pretty(v).unwrap().replace(ws.path().to_str().unwrap(), "$WS") + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
    if std::env::var_os("WSO2IMG_UPDATE_SNAPSHOTS").is_some() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &text).unwrap();
    }
    let want = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with WSO2IMG_UPDATE_SNAPSHOTS=1", path.display()));
    assert_eq!(
        text, want,
        "{name} changed; if that is deliberate, rerun with WSO2IMG_UPDATE_SNAPSHOTS=1 and review the diff"
    );
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn json_output_contract_and_snapshots() {
    let ws = golden_ws();
    let lock_before = fs::read(ws.join("wso2img.lock")).unwrap();
    let plan = json(&ws.run_ok(&["plan", "--json", "--locked"]));
    assert_eq!(plan["outputs"], Value::Array(vec![]), "{plan:#}");
    snapshot("plan.json", &plan, &ws);

    let out = ws.join("out");
    let build = json(&ws.run_ok(&["build", "--json", "--locked", "--to", &format!("oci:{}", out.display())]));
    snapshot("build.json", &build, &ws);
    assert_eq!(fs::read(ws.join("wso2img.lock")).unwrap(), lock_before, "the checked-in lock is current");
    for key in ["content_digest", "tag"] {
        assert_eq!(plan[key], build[key], "{key}");
    }
    let o = &build["outputs"][0];
    assert_eq!(o["status"], "written");
    assert_eq!(o["ref"], format!("oci:{}", out.display()));

    // inspect speaks the same contract: content digest, tag, outputs.
    let tag = build["tag"].as_str().unwrap();
    let info = json(&ws.run_ok(&["inspect", "--json", &format!("oci:out:{tag}")]));
    assert_eq!(info["content_digest"], build["content_digest"]);
    assert_eq!(info["tag"], tag);
    assert_eq!(info["outputs"], Value::Array(vec![]));
    assert_eq!(info["digest"], o["digest"]);
}

#[test]
fn exit_codes() {
    let ws = golden_ws();
    // 0: success (up-to-date is covered with the registry below).
    assert!(ws.run(&["build", "-q", "--to", "oci:out"]).status.success());
    // 1: failure (the base cannot be read).
    one_line_error(&ws.run(&["-q", "build", "--base", "oci:nowhere", "--to", "oci:out2"]), 1, &["oci:nowhere"]);
    // 2: usage, from clap and from the library, for old and new commands alike.
    for args in [
        &["build", "--no-such-flag"][..],
        &["completions", "tcsh"],
        &["init"],
        &["outdated", "--base", "Not/A:Ref:"],
        &["update", "--base", "oci-archive:x.tar"],
        &["init", "--base", "Wso2/X"],
    ] {
        let out = ws.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // 2: configuration (no config; a corrupt lock).
    let empty = Workspace::new();
    for args in [&["-q", "build"][..], &["-q", "plan"], &["-q", "update"], &["-q", "outdated"]] {
        one_line_error(&empty.run(args), 2, &["wso2img.toml", "not found"]);
    }
    fs::write(ws.join("wso2img.lock"), "version = 1\n[[base]]\nplace = \"x\"\n").unwrap();
    one_line_error(&ws.run(&["-q", "plan"]), 2, &["wso2img.lock:3", "wso2img update"]);
    // Without a lock, --locked fails (1) and writes nothing; a plain plan writes the lock.
    fs::remove_file(ws.join("wso2img.lock")).unwrap();
    one_line_error(
        &ws.run(&["-q", "build", "--locked", "--to", "oci:out3"]),
        1,
        &["wso2img.lock", "builtin:wso2am-4.3.0", "missing"],
    );
    assert!(!ws.join("out3").exists() && !ws.join("wso2img.lock").exists());
    let out = ws.run_ok(&["plan"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("wso2img.lock: locked base builtin:wso2am-4.3.0"));
    assert_eq!(fs::read(ws.join("wso2img.lock")).unwrap(), fs::read(golden_dir().join("wso2img.lock")).unwrap());
    // outdated: 0 when current.
    let out = ws.run_ok(&["outdated", "--json"]);
    assert_eq!(json(&out)["outdated"], false);
}

#[test]
fn locked_build_after_the_base_tag_moved() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    let first = push_sample(&reg, "wso2/wso2am:4.3.0", &SampleBase::v430());
    let ws = Workspace::new();
    ws.customization();
    let base = format!("{}/wso2/wso2am:4.3.0", reg.host());
    ws.config(&format!("[base]\nimage = \"{base}\"\n[target]\nrepository = \"{}/acme/apim\"\n", reg.host()));
    let run = |args: &[&str]| wso2img_run(&ws, args);

    // First build: the lock is written (and says so).
    let out = run(&["build", "--push", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("wso2img.lock: locked base {base} at {first}")));
    let lock = fs::read_to_string(ws.join("wso2img.lock")).unwrap();
    assert!(
        lock.starts_with("# Generated by wso2img")
            && lock.contains(&format!("location = \"{base}\"\ndigest = \"{first}\"")),
        "{lock}"
    );
    let built = json(&out);
    // The same again, --locked: exit 0 with every output up-to-date.
    let again = json(&run(&["build", "--push", "--json", "--locked"]));
    assert_eq!(again["outputs"][0]["status"], "up-to-date", "{again:#}");
    assert_eq!(again["content_digest"], built["content_digest"]);
    assert_eq!(json(&run(&["outdated", "--json"]))["outdated"], false);

    // The tag moves (a new update level): --locked refuses before anything moves.
    let mut moved = SampleBase::v430();
    moved.filler = vec![4096];
    let second = push_sample(&reg, "wso2/wso2am:4.3.0", &moved);
    assert_ne!(first, second);
    let mark = reg.mark();
    let out = run(&["-q", "build", "--push", "--locked"]);
    one_line_error(&out, 1, &["wso2img.lock", &base, &first, &second, "wso2img update"]);
    let writes: Vec<_> =
        reg.requests_since(mark).into_iter().filter(|r| r.is_upload() || r.is_manifest_put() || r.is_mount()).collect();
    assert!(writes.is_empty(), "nothing pushed: {}", Registry::describe(&writes));
    assert_eq!(fs::read_to_string(ws.join("wso2img.lock")).unwrap(), lock, "--locked leaves the lock alone");

    // outdated: exit 1, in text and JSON; nothing written.
    let out = run(&["outdated"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("outdated") && stdout(&out).contains(&second), "{}", stdout(&out));
    let out = run(&["outdated", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let o = json(&out);
    assert_eq!(
        (o["base"].as_str(), o["locked"].as_str(), o["current"].as_str(), &o["outdated"]),
        (Some(base.as_str()), Some(first.as_str()), Some(second.as_str()), &Value::Bool(true))
    );
    assert_eq!(fs::read_to_string(ws.join("wso2img.lock")).unwrap(), lock);

    // update: the lock follows, says what changed; then --locked builds.
    let u = json(&run(&["update", "--json"]));
    assert_eq!(
        (u["locked"].as_str(), u["current"].as_str(), &u["changed"]),
        (Some(first.as_str()), Some(second.as_str()), &Value::Bool(true)),
        "{u:#}"
    );
    let lock2 = fs::read_to_string(ws.join("wso2img.lock")).unwrap();
    assert!(lock2.contains(&second) && !lock2.contains(&first), "{lock2}");
    assert_eq!(run(&["outdated"]).status.code(), Some(0));
    let out = run(&["update"]);
    assert!(stdout(&out).contains("unchanged"), "{}", stdout(&out));
    let rebuilt = json(&run(&["build", "--push", "--json", "--locked"]));
    assert_eq!(rebuilt["outputs"][0]["status"], "pushed");
    assert_ne!(rebuilt["content_digest"], built["content_digest"]);

    // tag and copy keep the output contract.
    let image = format!("{}/acme/apim:{}", reg.host(), rebuilt["tag"].as_str().unwrap());
    let t = json(&run(&["tag", "--json", &image, "release-1"]));
    assert_eq!((&t["content_digest"], t["tag"].as_str()), (&rebuilt["content_digest"], Some("release-1")), "{t:#}");
    assert_eq!(t["outputs"][0]["status"], "pushed");
    let c = json(&run(&["copy", "--json", &image, &format!("{}/prod/apim:stable", reg.host())]));
    assert_eq!((&c["content_digest"], c["tag"].as_str()), (&rebuilt["content_digest"], Some("stable")), "{c:#}");
    assert_eq!(c["outputs"][0]["digest"], rebuilt["outputs"][0]["digest"]);
}

/// Every file and folder under `dir`, relative, sorted.
/// A variant's own base is locked, checked, listed and refreshed like the
/// main one: after it moved, `build --locked` and `outdated` (exit 1) name
/// it, `update` records it, then `--locked` builds.
#[test]
fn a_moved_variant_base_is_reported_and_updated() {
    let ws = Workspace::new();
    ws.customization();
    let write_base = |filler: Vec<u64>| {
        let dir = ws.join("vbase");
        let _ = fs::remove_dir_all(&dir);
        let mut b = SampleBase::v430();
        b.filler = filler;
        b.write_oci(&dir, "4.3.0").unwrap();
    };
    write_base(Vec::new());
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n[[variant]]\nname = \"v\"\nbase = \"oci:vbase:4.3.0\"\n");
    let run = |args: &[&str]| ws.run(args);
    let out = run(&["plan"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lock = fs::read_to_string(ws.join("wso2img.lock")).unwrap();
    assert!(lock.contains("oci:vbase:4.3.0"), "{lock}");
    let o = json(&run(&["outdated", "--json"]));
    assert_eq!(o["outdated"], false, "{o:#}");
    let listed: Vec<&str> = o["bases"].as_array().unwrap().iter().map(|b| b["base"].as_str().unwrap()).collect();
    assert_eq!(listed, ["builtin:wso2am-4.3.0", "oci:vbase:4.3.0"]);

    write_base(vec![4096]);
    one_line_error(&run(&["-q", "plan", "--locked"]), 1, &["oci:vbase:4.3.0", "wso2img update"]);
    let out = run(&["outdated"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("oci:vbase:4.3.0: outdated"), "{}", stdout(&out));
    assert!(stdout(&out).contains("builtin:wso2am-4.3.0: up to date"), "{}", stdout(&out));
    let o = json(&run(&["outdated", "--json"]));
    assert_eq!((&o["base"], &o["outdated"]), (&Value::from("builtin:wso2am-4.3.0"), &Value::Bool(true)), "{o:#}");
    assert_eq!(o["bases"][1]["outdated"], true, "{o:#}");
    assert_eq!(fs::read_to_string(ws.join("wso2img.lock")).unwrap(), lock, "outdated writes nothing");

    let u = json(&run(&["update", "--json"]));
    assert_eq!(
        (&u["changed"], &u["bases"][0]["changed"], &u["bases"][1]["changed"]),
        (&Value::Bool(true), &Value::Bool(false), &Value::Bool(true)),
        "{u:#}"
    );
    assert_ne!(fs::read_to_string(ws.join("wso2img.lock")).unwrap(), lock);
    assert_eq!(run(&["outdated"]).status.code(), Some(0));
    let out = run(&["plan", "--locked"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn init_scaffolds_for_the_version_and_never_overwrites() {
    for (base, theme, wrong) in [
        ("builtin:wso2am-4.3.0", "userTheme.json", "userTheme.js"),
        ("builtin:wso2am-4.1.0", "userTheme.js", "userTheme.json"),
    ] {
        let ws = Workspace::new();
        let out = ws.run_ok(&["init", "--base", base]);
        let listed = stdout(&out);
        for p in ["wso2img.toml", "wso2img.lock", "jars/", "dropins/", "keystores/", "overlays/repository/conf/"] {
            assert!(listed.lines().any(|l| l == p), "{p} listed: {listed}");
            assert!(ws.join(p).exists(), "{p} created");
        }
        let theme_path = format!("themes/devportal/{theme}");
        assert!(listed.lines().any(|l| l == theme_path), "{listed}");
        assert!(ws.join(&theme_path).is_file() && !ws.join(&format!("themes/devportal/{wrong}")).exists());
        let toml = fs::read_to_string(ws.join("wso2img.toml")).unwrap();
        assert!(
            toml.contains(&format!("image = \"{base}\"")) && toml.contains("# [target]") && toml.contains("volumes = "),
            "{toml}"
        );
        let overlays: Vec<String> = tree(&ws.join("overlays/repository/conf"));
        assert_eq!(overlays, [".gitkeep"], "no hint in the layer folders, a .gitkeep so git keeps it");
        assert!(toml.contains("# Overlays: every file under overlays/"), "{toml}");

        // A second init refuses, names the file, and changes nothing.
        let before = tree(ws.path());
        one_line_error(&ws.run(&["-q", "init", "--base", base]), 2, &["wso2img.toml", "already exists"]);
        assert_eq!(tree(ws.path()), before);

        // The scaffold builds, locked by init's lock.
        let r = json(&ws.run_ok(&["build", "--json", "--locked", "--to", "oci:out"]));
        let layers: Vec<&str> = r["layers"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
        assert_eq!(layers, ["themes"], "empty folders (a .gitkeep only) add no layer");
    }

    // Any existing file to be written stops init before it creates anything.
    let ws = Workspace::new();
    ws.write("themes/devportal/userTheme.json", b"{}\n");
    one_line_error(
        &ws.run(&["-q", "init", "--base", "builtin:wso2am-4.3.0"]),
        2,
        &["userTheme.json", "already exists"],
    );
    assert_eq!(tree(ws.path()), ["themes", "themes/devportal", "themes/devportal/userTheme.json"]);

    // -c names the config; a relative base path is rewritten relative to it.
    let ws = Workspace::new();
    sample_410(false).write_docker_archive(&ws.join("base.tar"), "wso2/wso2am:4.1.0").unwrap();
    let out = ws.run_ok(&["-c", "apim/wso2img.toml", "init", "--base", "docker-archive:base.tar"]);
    assert!(stdout(&out).lines().any(|l| l == "apim/themes/devportal/userTheme.js"), "{}", stdout(&out));
    let toml = fs::read_to_string(ws.join("apim/wso2img.toml")).unwrap();
    assert!(toml.contains("image = \"docker-archive:../base.tar\""), "{toml}");
    ws.run_ok(&["-c", "apim/wso2img.toml", "build", "-q", "--locked", "--to", "oci:out"]);
}

/// `init --pattern N` writes the variants helm-apim's pattern N needs for
/// the base's version (profiles on 4.0–4.4, the distributed images on 4.5+),
/// each with its own overlays folder, says what to fill in, and `plan` takes
/// the result; a pattern it cannot write is one line, exit 2, nothing written.
#[test]
fn init_pattern_writes_the_components_of_the_version() {
    type Want = &'static [(&'static str, Option<&'static str>, Option<&'static str>)];
    let cases: [(&str, u8, Want); 5] = [
        (
            "builtin:wso2am-4.1.0",
            4,
            &[
                ("control-plane", Some("control-plane"), None),
                ("traffic-manager", Some("traffic-manager"), None),
                ("gateway", Some("gateway-worker"), None),
                ("key-manager", Some("api-key-manager-deprecated"), None),
            ],
        ),
        (
            "builtin:wso2am-4.4.0",
            5,
            &[("gateway", Some("gateway-worker"), None), ("key-manager", Some("api-key-manager-node"), None)],
        ),
        (
            "builtin:wso2am-4.5.0",
            4,
            &[
                ("control-plane", None, Some("builtin:wso2am-acp-4.5.0")),
                ("traffic-manager", None, Some("builtin:wso2am-tm-4.5.0")),
                ("gateway", None, Some("builtin:wso2am-universal-gw-4.5.0")),
                ("key-manager", Some("key-manager"), Some("builtin:wso2am-acp-4.5.0")),
            ],
        ),
        ("builtin:wso2am-4.5.0", 2, &[("gateway", None, Some("builtin:wso2am-universal-gw-4.5.0"))]),
        ("builtin:wso2am-4.3.0", 1, &[]),
    ];
    for (base, n, want) in cases {
        let ws = Workspace::new();
        let out = ws.run_ok(&["init", "--base", base, "--pattern", &n.to_string()]);
        let config: toml::Value = toml::from_str(&fs::read_to_string(ws.join("wso2img.toml")).unwrap()).unwrap();
        let variants = config.get("variant").and_then(|v| v.as_array()).cloned().unwrap_or_default();
        let got: Vec<(String, Option<String>, Option<String>)> = variants
            .iter()
            .map(|v| {
                let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
                (s("name").unwrap(), s("profile"), s("base"))
            })
            .collect();
        let want: Vec<(String, Option<String>, Option<String>)> =
            want.iter().map(|(a, p, b)| (a.to_string(), p.map(str::to_string), b.map(str::to_string))).collect();
        assert_eq!(got, want, "{base} pattern {n}");
        for (name, _, _) in &want {
            let conf = format!("variants/{name}/overlays/repository/conf");
            assert!(ws.join(&conf).is_dir(), "{conf}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains(&format!("fill in {conf}/deployment.toml")),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let r = json(&ws.run_ok(&["plan", "--json"]));
        let planned: Vec<&str> =
            r["variants"].as_array().into_iter().flatten().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(planned, want.iter().map(|w| w.0.as_str()).collect::<Vec<_>>(), "{base} pattern {n}: {r}");
    }

    for (base, n, said) in
        [("builtin:wso2am-4.3.0", "6", "numbered 0 to 5"), ("builtin:wso2am-tm-4.5.0", "3", "all-in-one")]
    {
        let ws = Workspace::new();
        one_line_error(&ws.run(&["-q", "init", "--base", base, "--pattern", n]), 2, &["--pattern", said]);
        assert!(tree(ws.path()).is_empty(), "nothing written: {:?}", tree(ws.path()));
    }
    let ws = Workspace::new();
    let mut b = SampleBase::official(wso2img::wso2::ProductKind::AllInOne, "4.5.0");
    b.platforms.truncate(1);
    b.write_oci(&ws.join("b45"), "4.5.0").unwrap();
    one_line_error(
        &ws.run(&["-q", "init", "--base", "oci:b45:4.5.0", "--pattern", "3"]),
        2,
        &["oci:b45:4.5.0", "registry base"],
    );
    assert!(!ws.join("wso2img.toml").exists());
}

#[test]
fn digest_and_metadata_files() {
    let ws = golden_ws();
    let r = json(&ws.run_ok(&[
        "build",
        "--json",
        "--to",
        "oci:out",
        "--to",
        "docker-archive:img.tar",
        "--digest-file",
        "digest.txt",
        "--metadata-file",
        "metadata.json",
    ]));
    let main = r["outputs"][0]["digest"].as_str().unwrap();
    assert_eq!(fs::read_to_string(ws.join("digest.txt")).unwrap(), main, "the first output's digest, no newline");
    let m: Value = serde_json::from_slice(&fs::read(ws.join("metadata.json")).unwrap()).unwrap();
    assert_eq!(m["containerimage.digest"], main);
    assert_eq!(m["containerimage.config.digest"], r["platforms"][0]["config_digest"]);
    let tag = r["tag"].as_str().unwrap();
    assert_eq!(m["image.name"], format!("oci:out:{tag},docker-archive:img.tar"));
    for k in ["content_digest", "tag", "outputs"] {
        assert_eq!(m[k], r[k], "{k}");
    }
    // A folder that does not exist is a usage error before anything is built.
    for flag in ["--digest-file", "--metadata-file"] {
        one_line_error(&ws.run(&["-q", "build", "--to", "oci:out2", flag, "no/such/dir/f"]), 2, &[flag, "no/such/dir"]);
        assert!(!ws.join("out2").exists());
    }
}

#[test]
fn completions_and_help_examples() {
    let ws = Workspace::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = ws.run_ok(&["completions", shell]);
        let script = stdout(&out);
        assert!(script.contains("wso2img") && script.contains("outdated") && script.contains("locked"), "{shell}");
    }
    for cmd in ["build", "plan", "inspect", "tag", "copy", "init", "update", "outdated", "completions"] {
        let help = stdout(&ws.run_ok(&[cmd, "--help"]));
        assert!(
            help.contains("Example") && help.contains(&format!("wso2img {cmd}")),
            "{cmd} --help shows an example:\n{help}"
        );
    }
    let help = stdout(&ws.run_ok(&["outdated", "--help"]));
    assert!(help.contains("1 when the base moved"), "{help}");
}
