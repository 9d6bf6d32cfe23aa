//! The generic sample's entrypoint program: the sample has no shell, so a
//! tiny static program (src/wso2/sample/entrypoint/*.S) starts it. Its bytes
//! are reassembled from their sources; the image of the README's first
//! command starts under `docker run` (amd64) and under qemu-aarch64 in a
//! chroot of the image's unpacked rootfs (arm64).

use std::fs;
use std::path::Path;
use std::process::Command;

use wso2img::image::Platform;
use wso2img::wso2::sample::{entrypoint_program, SampleBase};

use super::support::*;

const PRODUCT: &str = "/home/wso2carbon/wso2am-4.3.0";

#[test]
fn the_entrypoint_bytes_are_assembled_from_their_sources() {
    if !have("as", &["--version"]) || !have("aarch64-linux-gnu-as", &["--version"]) {
        return;
    }
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/wso2/sample/entrypoint");
    let out = tempfile::tempdir().unwrap();
    ok(Command::new("sh").arg(sources.join("build.sh")).arg(out.path()));
    for (bin, arch, machine) in [("x86_64.bin", "amd64", 62u16), ("aarch64.bin", "arm64", 183)] {
        let built = fs::read(out.path().join(bin)).unwrap();
        let embedded = entrypoint_program(arch).unwrap();
        assert!(built == embedded, "{bin}: the embedded bytes differ from src/wso2/sample/entrypoint/build.sh's");
        assert_eq!(&embedded[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([embedded[18], embedded[19]]), machine, "{arch}");
        assert!(embedded.len() < 2048, "{arch}: {} bytes", embedded.len());
    }
}

/// A workspace holding this repository's example customization and config.
fn readme_workspace() -> Workspace {
    let ws = Workspace::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in ["wso2img.toml", "wso2img.lock"] {
        fs::copy(root.join(f), ws.join(f)).unwrap();
    }
    for d in ["jars", "themes", "overlays"] {
        copy_tree(&root.join(d), &ws.join(d));
    }
    ws
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// What the program prints for the example customization.
fn assert_customization_shown(out: &str, args: &str) {
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(format!("WSO2 API Manager sample wso2am-4.3.0 starting with:{args}").as_str()),
        "{out}"
    );
    assert!(out.contains("repository/components/lib: acme-request-id-1.2.0.jar\n"), "{out}");
    assert!(out.contains("repository/conf/deployment.toml: hostname = \"apim.acme.example\"\n"), "{out}");
}

#[test]
fn the_readme_first_command_image_starts_without_a_shell() {
    if !docker() {
        return;
    }
    let ws = readme_workspace();
    let r = json(&ws.run_ok(&["build", "--base", "builtin:wso2am-4.3.0", "--json", "--to", "docker-archive:img.tar"]));
    docker_ok(&["load", "-i", ws.join("img.tar").to_str().unwrap()]);
    let image = format!("registry.example.com/acme/wso2am:{}", r["tag"].as_str().unwrap());
    let out = docker_ok(&["run", "--rm", "--network", "none", "--pull", "never", &image]);
    assert_customization_shown(&out, "");
    let out = docker_ok(&["run", "--rm", "--network", "none", "--pull", "never", &image, "-Dprofile=gateway-worker"]);
    assert_customization_shown(&out, " -Dprofile=gateway-worker");
    let no_shell = Command::new("docker")
        .args(["run", "--rm", "--network", "none", "--pull", "never", "--entrypoint", "/bin/sh", &image])
        .output()
        .unwrap();
    assert!(!no_shell.status.success(), "the sample holds no shell");
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}

/// The README's first command, exactly as written there (its `cargo run
/// --release --` part replaced by this binary), writes `oci:out`; that image,
/// copied into the private dockerd by skopeo, starts under `docker run`.
#[test]
fn the_readme_first_command_as_written_builds_an_image_that_starts() {
    if !docker() || !have("skopeo", &["--version"]) {
        return;
    }
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let line = readme.lines().find(|l| l.starts_with("cargo run --release -- ")).expect("the README's first command");
    let args: Vec<&str> = line["cargo run --release -- ".len()..].split_whitespace().collect();
    assert_eq!(args.first(), Some(&"build"), "{line}");
    let ws = readme_workspace();
    ws.run_ok(&args);
    let index = layout_index(&ws.join("out"));
    let tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().to_string();
    let image = format!("localhost/wso2img-test/readme:{}-{}", tag, std::process::id());
    let mut copy = Command::new("skopeo");
    copy.args(["copy", "--quiet"]);
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        copy.args(["--dest-daemon-host", &host]);
    }
    ok(copy.arg(format!("oci:{}:{tag}", ws.join("out").display())).arg(format!("docker-daemon:{image}")));
    let out = docker_ok(&["run", "--rm", "--network", "none", "--pull", "never", &image]);
    assert_customization_shown(&out, "");
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}

#[test]
fn the_arm64_image_starts_under_qemu_in_a_chroot_of_its_rootfs() {
    if !have("qemu-aarch64-static", &["--version"]) || !have("umoci", &["--version"]) {
        return;
    }
    if euid() != 0 {
        assert!(!in_ci(), "chroot needs root in CI");
        skipped("root (chroot)");
        return;
    }
    let ws = readme_workspace();
    let mut base = SampleBase::v430();
    base.platforms = vec![Platform::new("linux", "amd64", None), Platform::new("linux", "arm64", Some("v8"))];
    base.write_oci(&ws.join("base"), "4.3.0").unwrap();
    ws.run_ok(&["build", "--base", "oci:base:4.3.0", "--platform", "linux/arm64", "--to", "oci:arm:arm"]);
    let bundle = ws.join("bundle");
    ok(Command::new("umoci").args(["unpack", "--image", &format!("{}:arm", ws.join("arm").display())]).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let entrypoint = fs::read(rootfs.join("home/wso2carbon/docker-entrypoint.sh")).unwrap();
    assert_eq!(u16::from_le_bytes([entrypoint[18], entrypoint[19]]), 183, "an aarch64 program");
    let qemu = String::from_utf8(ok(Command::new("sh").args(["-c", "command -v qemu-aarch64-static"])).stdout).unwrap();
    fs::copy(qemu.trim(), rootfs.join("qemu-aarch64-static")).unwrap();
    let out = ok(Command::new("chroot")
        .arg(&rootfs)
        .args(["/qemu-aarch64-static", "/home/wso2carbon/docker-entrypoint.sh", "-Dprofile=gateway-worker"])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("WSO2_SERVER_HOME", PRODUCT));
    assert_customization_shown(&String::from_utf8_lossy(&out.stdout), " -Dprofile=gateway-worker");
}

fn euid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}
