//! Every destination read by every consumer, builds side by side into one
//! layout, writes into devices in a private mount namespace, interruptions,
//! and the checks made before any work (issue 10).

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::registry_support::{free_port, registry_tools, wso2img, wso2img_run, Kind, Registry};
use super::support::*;

/// The consumers this machine has; in CI every one is required.
fn consumers() -> bool {
    have("skopeo", &["--version"])
        && have("umoci", &["--version"])
        && have("podman", &["--version"])
        && have("buildah", &["--version"])
        && have("ctr", &["--version"])
        && have("containerd", &["--version"])
        && docker()
        && registry_tools()
        && busybox().is_some()
}

/// Runs `cmd` and returns `Err(description)` unless it succeeds within 120 s.
fn check(what: &str, cmd: &mut Command) -> Result<String, String> {
    let out = super::registry_support::run_limited(cmd.stdin(Stdio::null()), Duration::from_secs(120));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{what}: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("failed")))
    }
}

/// Private storage for podman and buildah, and an accept-anything policy.
struct Containers {
    root: String,
    runroot: String,
    policy: String,
}

impl Containers {
    fn new(dir: &Path) -> Self {
        let policy = dir.join("policy.json");
        fs::write(&policy, br#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
        Containers {
            root: dir.join("storage").display().to_string(),
            runroot: dir.join("run").display().to_string(),
            policy: policy.display().to_string(),
        }
    }
    fn podman(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.args([
            "--root",
            &self.root,
            "--runroot",
            &self.runroot,
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
        ]);
        c.args(args);
        c
    }
    fn buildah(&self, args: &[&str]) -> Command {
        let mut c = Command::new("buildah");
        c.args(["--root", &self.root, "--runroot", &self.runroot, "--storage-driver", "vfs"]);
        c.args(args);
        c
    }
}

/// A containerd of the test's own (socket, root and state in `dir`).
struct Containerd {
    child: std::process::Child,
    socket: String,
}

impl Containerd {
    fn start(dir: &Path) -> Self {
        let socket = dir.join("containerd.sock").display().to_string();
        let config = dir.join("config.toml");
        fs::write(&config, "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_tcp_service = true\n")
            .unwrap();
        let child = Command::new("containerd")
            .args(["--config", &config.display().to_string(), "--address", &socket])
            .args(["--root", &dir.join("root").display().to_string()])
            .args(["--state", &dir.join("state").display().to_string()])
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("containerd.log")).unwrap())
            .spawn()
            .expect("containerd starts");
        for _ in 0..100 {
            if Command::new("ctr")
                .args(["-a", &socket, "version"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Containerd { child, socket }
    }
    fn ctr(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.args(["-a", &self.socket, "-n", "wso2img-test"]).args(args);
        c
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `docker run` of `image` checking the customer jar is in place.
fn docker_runs(image: &str, home: &str) -> Result<String, String> {
    check(
        "docker run",
        Command::new("docker")
            .args(["run", "--rm", "--network", "none", "--pull", "never", "--entrypoint", "/bin/sh"])
            .args([image, "-c", &format!("test -f {home}/repository/components/lib/acme-driver-1.0.jar && echo ok")]),
    )
}

#[test]
fn consumer_matrix_reads_every_output_of_both_base_families() {
    if !consumers() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    let mut failures = Vec::new();
    let mut passed = 0;
    for family in ["oci", "docker"] {
        let ws = Workspace::new();
        ws.customization();
        let (home, repo) = if family == "oci" {
            sample_430(true, &[]).write_oci(&ws.join("base"), "b").unwrap();
            ("/home/wso2carbon/wso2am-4.3.0", "matrix/oci")
        } else {
            ws.theme_for_41();
            sample_410(true).write_oci(&ws.join("base"), "b").unwrap();
            ("/home/wso2carbon/wso2am-4.1.0", "matrix/docker")
        };
        ws.config(&format!("[base]\nimage = \"oci:base:b\"\n[target]\nrepository = \"{}/{repo}\"\n", reg.host()));
        let registry = format!("docker://{}/{repo}", reg.host());
        let daemon_ref = format!("docker-daemon:wso2img-matrix/{family}");
        let out = wso2img_run(
            &ws,
            &[
                "build",
                "--json",
                "--to",
                "oci:out",
                "--to",
                "docker-archive:img.tar",
                "--to",
                &registry,
                "--to",
                &daemon_ref,
            ],
        );
        let rep: Value = json(&succeeded(&wso2img(&ws), out));
        let tag = rep["tag"].as_str().unwrap().to_string();
        let content = rep["content_digest"].as_str().unwrap().to_string();
        let work = tempfile::tempdir().unwrap();
        let c = Containers::new(work.path());
        let containerd = Containerd::start(work.path());
        // podman and buildah name an image pulled from a layout after its
        // path, which must then be lowercase: reach the layout through a
        // lowercase symlink.
        let lower = std::path::PathBuf::from(format!("/tmp/wso2img-matrix-{}-{family}", std::process::id()));
        let _ = fs::remove_file(&lower);
        std::os::unix::fs::symlink(ws.join("out"), &lower).unwrap();
        let layout = format!("oci:{}:{tag}", lower.display());
        let archive = format!("docker-archive:{}", ws.join("img.tar").display());
        let remote = format!("{}/{repo}:{tag}", reg.host());
        // The layout inside the archive, extracted, for umoci.
        let inner = ws.join("inner");
        fs::create_dir_all(&inner).unwrap();
        ok(Command::new("tar").args([
            "-xf",
            &ws.join("img.tar").display().to_string(),
            "-C",
            &inner.display().to_string(),
        ]));
        let layout_tar = ws.join("layout.tar");
        ok(Command::new("tar").args([
            "-cf",
            &layout_tar.display().to_string(),
            "-C",
            &ws.join("out").display().to_string(),
            ".",
        ]));

        let media = layout_index(&ws.join("out"))["manifests"][0]["mediaType"].as_str().unwrap().to_string();
        let mut cases: Vec<(&str, &str, Result<String, String>)> = vec![
            ("oci", "media types", if media.contains("oci") { Ok(media) } else { Err(format!("index names {media}")) }),
            ("oci", "skopeo inspect", check("skopeo", Command::new("skopeo").args(["inspect", &layout]))),
            (
                "oci",
                "skopeo copy",
                check(
                    "skopeo",
                    Command::new("skopeo").args([
                        "--insecure-policy",
                        "copy",
                        "--quiet",
                        &layout,
                        &format!("dir:{}", work.path().join("dir").display()),
                    ]),
                ),
            ),
            (
                "oci",
                "umoci unpack",
                check(
                    "umoci",
                    Command::new("umoci").args([
                        "unpack",
                        "--image",
                        &format!("{}:{tag}", ws.join("out").display()),
                        &work.path().join("b1").display().to_string(),
                    ]),
                ),
            ),
            ("oci", "podman pull", check("podman", &mut c.podman(&["pull", "--signature-policy", &c.policy, &layout]))),
            (
                "oci",
                "buildah pull",
                check("buildah", &mut c.buildah(&["pull", "--signature-policy", &c.policy, &layout])),
            ),
            (
                "oci",
                "ctr import",
                check(
                    "ctr",
                    &mut containerd.ctr(&[
                        "images",
                        "import",
                        "--all-platforms",
                        "--base-name",
                        "localhost/matrix",
                        &layout_tar.display().to_string(),
                    ]),
                ),
            ),
            ("docker-archive", "skopeo inspect", check("skopeo", Command::new("skopeo").args(["inspect", &archive]))),
            (
                "docker-archive",
                "umoci unpack (inner layout)",
                check(
                    "umoci",
                    Command::new("umoci").args([
                        "unpack",
                        "--image",
                        &format!("{}:{tag}", inner.display()),
                        &work.path().join("b2").display().to_string(),
                    ]),
                ),
            ),
            (
                "docker-archive",
                "podman load",
                check("podman", &mut c.podman(&["load", "-i", &ws.join("img.tar").display().to_string()])),
            ),
            (
                "docker-archive",
                "buildah pull",
                check("buildah", &mut c.buildah(&["pull", "--signature-policy", &c.policy, &archive])),
            ),
            (
                "docker-archive",
                "ctr import",
                check(
                    "ctr",
                    &mut containerd.ctr(&[
                        "images",
                        "import",
                        "--all-platforms",
                        &ws.join("img.tar").display().to_string(),
                    ]),
                ),
            ),
            (
                "docker-archive",
                "docker load + run",
                check(
                    "docker load",
                    Command::new("docker").args(["load", "-i", &ws.join("img.tar").display().to_string()]),
                )
                .and_then(|_| docker_runs(&format!("{}/{repo}:{tag}", reg.host()), home)),
            ),
            (
                "registry",
                "skopeo inspect",
                check(
                    "skopeo",
                    Command::new("skopeo").args(["inspect", "--tls-verify=false", &format!("docker://{remote}")]),
                ),
            ),
            (
                "registry",
                "podman pull",
                check(
                    "podman",
                    &mut c.podman(&[
                        "pull",
                        "--tls-verify=false",
                        "--signature-policy",
                        &c.policy,
                        &format!("docker://{remote}"),
                    ]),
                ),
            ),
            (
                "registry",
                "buildah pull",
                check(
                    "buildah",
                    &mut c.buildah(&[
                        "pull",
                        "--tls-verify=false",
                        "--signature-policy",
                        &c.policy,
                        &format!("docker://{remote}"),
                    ]),
                ),
            ),
            (
                "registry",
                "ctr pull",
                check("ctr", &mut containerd.ctr(&["images", "pull", "--plain-http", "--all-platforms", &remote])),
            ),
            (
                "registry",
                "docker pull + run",
                check("docker pull", Command::new("docker").args(["pull", &remote]))
                    .and_then(|_| docker_runs(&remote, home)),
            ),
            ("daemon", "docker run", docker_runs(&format!("wso2img-matrix/{family}:{tag}"), home)),
        ];
        let id = docker_ok(&["image", "inspect", "--format", "{{.Id}}", &format!("wso2img-matrix/{family}:{tag}")]);
        cases.push((
            "daemon",
            "image ID = content digest",
            if id.trim() == content { Ok(id) } else { Err(format!("{} != {content}", id.trim())) },
        ));
        for (output, consumer, r) in cases {
            match r {
                Ok(_) => passed += 1,
                Err(e) => failures.push(format!("{family} base → {output} read by {consumer}: {e}")),
            }
        }
        let _ = fs::remove_file(&lower);
        for img in [format!("wso2img-matrix/{family}:{tag}"), remote.clone(), format!("{}/{repo}:{tag}", reg.host())] {
            let _ = Command::new("docker").args(["rmi", "-f", &img]).output();
        }
    }
    assert!(failures.is_empty(), "{} passed, {} failed:\n{}", passed, failures.len(), failures.join("\n"));
}

/// Builds of different customizations into one layout at once keep every tag.
#[test]
fn concurrent_builds_into_one_layout_lose_nothing() {
    let root = Workspace::new();
    sample_430(false, &[]).write_oci(&root.join("base"), "4.3.0").unwrap();
    let out = root.join("shared-out");
    let n = 8;
    let spaces: Vec<Workspace> = (0..n)
        .map(|i| {
            let ws = Workspace::new();
            ws.write(&format!("overlays/repository/conf/custom-{i}.txt"), format!("customization {i}\n").as_bytes());
            ws.config(&format!(
                "[base]\nimage = \"oci:{}:4.3.0\"\n[target]\ntag = \"c{i}-{{digest12}}\"\n",
                root.join("base").display()
            ));
            ws
        })
        .collect();
    let rounds: usize = std::env::var("WSO2IMG_CONCURRENCY_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    for round in 0..rounds {
        let _ = fs::remove_dir_all(&out);
        let children: Vec<_> = spaces
            .iter()
            .map(|ws| {
                bin()
                    .current_dir(ws.path())
                    .args(["-q", "build", "--to", &format!("oci:{}", out.display())])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "round {round}: {}", String::from_utf8_lossy(&o.stderr));
        }
        let index = layout_index(&out);
        let tags: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
            .collect();
        assert_eq!(tags.len(), n, "round {round}: {tags:?}");
        let leftovers: Vec<_> = fs::read_dir(out.join("blobs/sha256"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".wso2img-"))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
    }
}

/// An unchanged rebuild into a layout compresses nothing; a planted blob
/// (right size, wrong bytes) is not trusted.
#[test]
fn unchanged_rebuild_into_a_layout_is_up_to_date_and_planted_blobs_are_replaced() {
    if !have("skopeo", &["--version"]) {
        return;
    }
    let ws = Workspace::new();
    ws.customization();
    ws.config("[base]\nimage = \"builtin:wso2am-4.1.0\"\n");
    ws.theme_for_41();
    let first = json(&ws.run_ok(&["build", "--json", "--to", "oci:out", "--to", "docker-archive:img.tar"]));
    let again = json(&ws.run_ok(&["build", "--json", "--to", "oci:out", "--to", "docker-archive:img.tar"]));
    for o in again["outputs"].as_array().unwrap() {
        assert_eq!(o["status"], "up-to-date", "{again}");
    }
    assert!(again["layers"].as_array().unwrap().iter().all(|l| l["digest"].is_null()), "nothing compressed: {again}");
    assert_eq!(first["outputs"][0]["digest"], again["outputs"][0]["digest"]);
    // Plant a wrong blob of the same size in place of the jars layer.
    let digest = first["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let blob = ws.join("out/blobs/sha256").join(&digest);
    let size = fs::metadata(&blob).unwrap().len() as usize;
    fs::remove_file(&blob).unwrap();
    fs::write(&blob, vec![0u8; size]).unwrap();
    let third = json(&ws.run_ok(&["build", "--json", "--to", "oci:out"]));
    assert_eq!(third["outputs"][0]["status"], "written", "{third}");
    let tag = third["tag"].as_str().unwrap();
    ok(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        &format!("oci:{}:{tag}", ws.join("out").display()),
        &format!("dir:{}", ws.join("copy").display()),
    ]));
}

/// As root in a private mount namespace with its own /dev: writing the
/// archive, the SBOM and the digest file to devices leaves them devices.
#[test]
fn device_destinations_are_written_in_place() {
    let root = fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false);
    if !root || !have("unshare", &["--version"]) {
        if in_ci() {
            panic!("this test needs root and unshare in CI");
        }
        return;
    }
    let ws = Workspace::new();
    ws.customization();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    let exe = env!("CARGO_BIN_EXE_wso2img");
    let script = format!(
        "set -e; mount --make-rprivate /; mount -t tmpfs tmpfs /dev; mknod -m 666 /dev/null c 1 3; \
         ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr; \
         {exe} -q build --to docker-archive:/dev/null --sbom /dev/stdout --digest-file /dev/stderr > sbom.json 2> digest.txt; \
         {exe} -q build --to docker-archive:/dev/stdout | wc -c > piped.txt; \
         stat -c %F /dev/null; test -c /dev/null"
    );
    let out = ok(Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .current_dir(ws.path())
        .env("XDG_CACHE_HOME", ws.join(".cache")));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "character special file");
    let sbom: Value = serde_json::from_slice(&fs::read(ws.join("sbom.json")).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert!(fs::read_to_string(ws.join("digest.txt")).unwrap().starts_with("sha256:"));
    let piped: u64 = fs::read_to_string(ws.join("piped.txt")).unwrap().trim().parse().unwrap();
    assert!(piped > 10_000, "the archive arrived on the pipe: {piped} bytes");
    assert!(fs::metadata("/dev/null").map(|m| std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type())).unwrap());
    // `-` is stdout for the archive.
    let out = ws.run_ok(&["-q", "build", "--to", "docker-archive:-"]);
    assert!(out.stdout.len() > 10_000 && out.stdout[257..262] == *b"ustar", "a tar on stdout");
}

/// kill -9 at several moments leaves staging files that the next run removes.
#[test]
fn leftovers_of_a_kill_are_removed_by_the_next_run() {
    let ws = Workspace::new();
    ws.customization();
    for i in 0..40 {
        ws.write(&format!("jars/big-{i}.jar"), &real_jar("com.big", &format!("big{i}"), "1.0"));
        ws.write(&format!("overlays/data/blob-{i}.bin"), &fake_jar(&format!("blob{i}"), 400_000));
    }
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    for delay in [40u64, 120, 250, 400] {
        let mut child = bin()
            .current_dir(ws.path())
            .args(["-q", "build", "--to", "oci:out", "--to", "docker-archive:img.tar"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        let _ = fs::remove_dir_all(ws.join("out"));
        let _ = fs::remove_file(ws.join("img.tar"));
    }
    // Plant one of each kind of leftover for a process that is gone, in case
    // every kill came too early or too late.
    fs::create_dir_all(ws.join(".wso2img-staging-999999999-x")).unwrap();
    fs::write(ws.join(".wso2img-archive-999999999-x.tar.tmp"), b"x").unwrap();
    ws.run_ok(&["-q", "build", "--to", "oci:out", "--to", "docker-archive:img.tar"]);
    let left: Vec<String> = walk_names(ws.path()).into_iter().filter(|n| n.contains(".wso2img-")).collect();
    assert!(left.is_empty(), "leftovers: {left:?}");
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.display().to_string());
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk_names(&p));
        }
    }
    out
}

/// SIGTERM during a build removes its staging files.
#[test]
fn sigterm_removes_staging_files() {
    let ws = Workspace::new();
    for i in 0..60 {
        ws.write(&format!("overlays/data/blob-{i}.bin"), &fake_jar(&format!("blob{i}"), 1_000_000));
    }
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    let child = bin()
        .current_dir(ws.path())
        .args(["-q", "build", "--to", "oci:out"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut child = child;
    for _ in 0..200 {
        if walk_names(ws.path()).iter().any(|n| n.contains(".wso2img-staging-")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ok(Command::new("kill").args(["-TERM", &pid.to_string()]));
    let status = child.wait().unwrap();
    let left: Vec<String> = walk_names(ws.path()).into_iter().filter(|n| n.contains(".wso2img-")).collect();
    assert!(left.is_empty(), "leftovers after SIGTERM ({status}): {left:?}");
}

#[test]
fn refused_before_any_work() {
    let ws = Workspace::new();
    ws.customization();
    let cases: [(&str, &[&str], &str); 5] = [
        ("[base]\nimage = \"builtin:wso2am-4.3.0\"\n", &["build", "--to", "oci:overlays/out"], "inside the input folder"),
        ("[base]\nimage = \"builtin:wso2am-4.3.0\"\n", &["build", "--to", "oci:out", "--sbom", "missing/sbom.json"], "does not exist"),
        (
            "[base]\nimage = \"builtin:wso2am-4.3.0\"\n",
            &["build", "--to", "oci:out", "--digest-file", "missing/d.txt"],
            "does not exist",
        ),
        ("[base]\nimage = \"builtin:wso2am-4.3.0\"\n[target]\ntag = \"x-{nope}\"\n", &["build", "--to", "oci:out"], "{nope}"),
        (
            "[base]\nimage = \"builtin:wso2am-4.3.0\"\n[target]\ntag = \"same\"\n[[variant]]\nname = \"gw\"\nprofile = \"gateway-worker\"\ntag = \"same\"\n",
            &["build", "--to", "oci:out"],
            "is given to both",
        ),
    ];
    for (config, args, says) in cases {
        ws.config(config);
        let _ = fs::remove_file(ws.join("wso2img.lock"));
        let out = ws.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().filter(|l| l.contains("error")).count(), 1, "{args:?}: one line: {err}");
        assert!(!ws.join("out").exists() && !ws.join("overlays/out").exists(), "{args:?}: nothing written");
        assert!(!ws.join("wso2img.lock").exists(), "{args:?}: lock not written");
    }
    let _ = free_port();
}
