//! Bad input: a clear one-line error naming the file or reference, a
//! non-zero exit code, and nothing written.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output};

use super::support::*;

fn check(out: &Output, code: i32, needles: &[&str], ws: &Workspace) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    for n in needles {
        assert!(lines[0].contains(n), "error should mention {n:?}: {err}");
    }
    assert!(out.stdout.is_empty(), "nothing on stdout");
    for p in ["out", "img.tar"] {
        assert!(!ws.join(p).exists(), "{p} was written despite the error");
    }
    let leftovers: Vec<String> = fs::read_dir(ws.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".wso2img") || n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

fn ready() -> Workspace {
    let ws = Workspace::new();
    ws.customization();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    ws
}

const BUILD: [&str; 5] = ["build", "--to", "oci:out", "--to", "docker-archive:img.tar"];

#[test]
fn missing_config() {
    let ws = Workspace::new();
    check(&ws.run(&BUILD), 2, &["wso2img.toml", "not found"], &ws);
    check(&ws.run(&["-c", "nope.toml", "plan"]), 2, &["nope.toml"], &ws);
}

#[test]
fn config_errors_name_the_line() {
    let ws = ready();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n[layers]\njar = \"jars\"\n");
    check(&ws.run(&BUILD), 2, &["wso2img.toml:4", "jar"], &ws);
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n[layers]\nowner = \"wso2carbon\"\n");
    check(&ws.run(&BUILD), 2, &["owner", "UID:GID"], &ws);
}

#[test]
fn missing_folder() {
    let ws = ready();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n[layers]\ndropins = \"osgi\"\n");
    check(&ws.run(&BUILD), 2, &["dropins", "osgi", "not found"], &ws);
}

#[test]
fn bad_base_reference() {
    let ws = ready();
    check(&ws.run(&["build", "--base", "Wso2/WSO2AM:4.3.0", "--to", "oci:out"]), 2, &["Wso2/WSO2AM:4.3.0"], &ws);
    check(&ws.run(&["build", "--base", "oci-archive:x.tar", "--to", "oci:out"]), 2, &["oci-archive"], &ws);
    ws.config("[base]\nimage = \"wso2/wso2am:\"\n");
    check(&ws.run(&BUILD), 2, &["wso2/wso2am:"], &ws);
}

#[test]
fn base_not_found() {
    let ws = ready();
    check(&ws.run(&["build", "--base", "oci:nowhere", "--to", "oci:out"]), 1, &["oci:nowhere"], &ws);
    check(&ws.run(&["build", "--base", "docker-archive:missing.tar", "--to", "oci:out"]), 1, &["missing.tar"], &ws);
    check(&ws.run(&["build", "--base", "builtin:wso2am-9.9.9", "--to", "oci:out"]), 2, &["builtin:wso2am-9.9.9"], &ws);
    sample_430(false, &[]).write_oci(&ws.join("base"), "4.3.0").unwrap();
    check(&ws.run(&["build", "--base", "oci:base:4.2.0", "--to", "oci:out"]), 1, &["4.2.0", "4.3.0"], &ws);
    check(
        &ws.run(&["build", "--base", "127.0.0.1:1/wso2/wso2am:4.3.0", "--to", "oci:out"]),
        1,
        &["127.0.0.1:1", "cannot reach", "refused"],
        &ws,
    );
}

#[test]
fn escaping_symlink() {
    let ws = ready();
    std::os::unix::fs::symlink("../../etc/passwd", ws.join("jars/evil.jar")).unwrap();
    check(&ws.run(&BUILD), 1, &["jars/evil.jar", "outside"], &ws);
    fs::remove_file(ws.join("jars/evil.jar")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", ws.join("overlays/abs")).unwrap();
    check(&ws.run(&BUILD), 1, &["overlays/abs", "outside"], &ws);
}

#[test]
fn symlink_inside_the_tree_is_kept() {
    let ws = ready();
    std::os::unix::fs::symlink("acme-driver-1.0.jar", ws.join("jars/acme-driver.jar")).unwrap();
    let r = json(&ws.run_ok(&["plan", "--json"]));
    assert_eq!(kind_files(&r, "jars"), 3);
}

#[test]
fn fifo_and_unreadable_file() {
    let ws = ready();
    ok(Command::new("mkfifo").arg(ws.join("overlays/pipe")));
    check(&ws.run(&BUILD), 1, &["overlays/pipe", "fifo"], &ws);
    fs::remove_file(ws.join("overlays/pipe")).unwrap();

    let secret = ws.write("jars/secret.jar", b"PK\x03\x04secret");
    set_mode(&secret, 0o000);
    let root = fs::metadata("/proc/self").unwrap().uid() == 0;
    let out = if root {
        if !have("setpriv", &["--version"]) {
            return;
        }
        // Root reads anything: run as nobody in a workspace nobody may enter.
        ok(Command::new("chmod").args(["-R", "a+rX", ws.path().to_str().unwrap()]));
        set_mode(&secret, 0o000);
        set_mode(ws.path(), 0o777);
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_wso2img")])
            .args(BUILD)
            .current_dir(ws.path())
            .env_remove("SOURCE_DATE_EPOCH")
            .env("XDG_CACHE_HOME", ws.join(".cache"))
            .output()
            .unwrap()
    } else {
        ws.run(&BUILD)
    };
    check(&out, 1, &["jars/secret.jar", "cannot read"], &ws);
}

#[test]
fn output_problems_are_found_before_anything_is_written() {
    let ws = ready();
    check(
        &ws.run(&["build", "--to", "oci:out", "--to", "docker-archive:no/such/dir/img.tar"]),
        2,
        &["no/such/dir"],
        &ws,
    );
    check(
        &ws.run(&["-q", "build", "--to", "oci:out", "--to", "docker://127.0.0.1:1/x"]),
        1,
        &["127.0.0.1:1", "cannot reach"],
        &ws,
    );
    let no_daemon = bin()
        .current_dir(ws.path())
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .args(["build", "--to", "oci:out", "--to", "docker-daemon:acme/x"])
        .output()
        .unwrap();
    check(&no_daemon, 1, &["/nonexistent.sock", "start dockerd"], &ws);
    check(&ws.run(&["build", "--push"]), 2, &["--push", "[target] repository"], &ws);
    check(&ws.run(&["build", "--to", "oci:out", "--platform", "linux/s390x"]), 2, &["s390x", "linux/amd64"], &ws);
}

#[test]
fn wrong_theme_folder() {
    let ws = ready();
    ws.write("themes/portal/x.css", b"x");
    check(&ws.run(&BUILD), 1, &["themes/portal", "devportal"], &ws);
}
