//! Shared helpers: a workspace with a config and customer trees, sample
//! bases, running the binary, and access to the external checkers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use wso2img::digest::Digest;
use wso2img::image::{MediaFamily, Platform};
use wso2img::reference::Reference;
use wso2img::transport::{archive, oci};
use wso2img::wso2::sample::SampleBase;

/// The binary under test, with its caches (the digest cache among them)
/// under the tests' own folder in `target/`, never the user's.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wso2img"));
    c.env_remove("SOURCE_DATE_EPOCH").env("XDG_CACHE_HOME", test_cache_home());
    c
}

/// `XDG_CACHE_HOME` for tests that do not choose their own.
pub fn test_cache_home() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache")
}

/// Whether this run is CI, where every external tool must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| !v.is_empty() && v != "false").unwrap_or(false)
}

/// Returns whether `tool` can run; in CI a missing tool fails the test.
pub fn have(tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool).args(probe).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        assert!(!in_ci(), "{tool} is required in CI (run the README test command)");
        skipped(tool);
    }
    ok
}

/// Says on stderr that the current test is skipped for lack of `tool`, and
/// counts it in `target/test-skips.log` (tests/run.sh prints the count).
pub fn skipped(tool: &str) {
    let name = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("skipping {name}: {tool} not available (run the README test command to install it)");
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-skips.log");
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(log) {
        use std::io::Write;
        let _ = writeln!(f, "{name}: {tool}");
    }
}

/// Path of the static busybox that sample bases embed to be runnable.
pub fn busybox() -> Option<PathBuf> {
    let p = PathBuf::from("/bin/busybox");
    if p.exists() {
        Some(p)
    } else {
        assert!(!in_ci(), "/bin/busybox (busybox-static) is required in CI");
        skipped("/bin/busybox");
        None
    }
}

/// Runs a command and returns its output, failing with its stderr if it failed.
pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("command runs");
    succeeded(cmd, out)
}

/// Returns `out`, failing with `cmd`'s stdout and stderr unless it succeeded.
pub fn succeeded(cmd: &Command, out: Output) -> Output {
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The kinds of a report's layers in order; the shares of one folder
/// (`jars.02`, `jars.05`, see `layer::split`) count once, as `jars`.
pub fn layer_kinds(r: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for l in r["layers"].as_array().unwrap() {
        let name = l["name"].as_str().unwrap();
        let kind = name.split_once('.').map_or(name, |(k, _)| k).to_string();
        if kinds.last() != Some(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

/// A report's layers as (name, diff_id), in order.
pub fn layer_diff_ids(r: &Value) -> Vec<(String, String)> {
    r["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap().to_string(), l["diff_id"].as_str().unwrap().to_string()))
        .collect()
}

/// Files in a report's layers of `kind`, over every share of the folder.
pub fn kind_files(r: &Value, kind: &str) -> u64 {
    r["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["name"].as_str().unwrap().split_once('.').map_or(l["name"].as_str().unwrap(), |(k, _)| k) == kind)
        .map(|l| l["files"].as_u64().unwrap())
        .sum()
}

/// Parses a command's stdout as JSON.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// A temporary folder with a `wso2img.toml` and customer trees.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Workspace { dir: tempfile::Builder::new().prefix("wso2img-test-").tempdir().unwrap() }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    /// Writes a file (creating parents).
    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        p
    }
    /// Writes `wso2img.toml`.
    pub fn config(&self, text: &str) -> PathBuf {
        self.write("wso2img.toml", text.as_bytes())
    }
    /// The standard customization: jars, a theme, an overlay, a keystore.
    pub fn customization(&self) {
        self.write("jars/acme-driver-1.0.jar", &real_jar("com.acme", "acme-driver", "1.0"));
        self.write("jars/acme-handler-2.1.jar", &real_jar("com.acme", "acme-handler", "2.1"));
        self.write("themes/devportal/userTheme.json", b"{\"custom\":{}}\n");
        self.write("themes/devportal/images/logo.svg", b"<svg/>\n");
        self.write("overlays/repository/conf/deployment.toml", b"[server]\nhostname = \"acme\"\n");
        let s = self.write("overlays/bin/acme-start.sh", b"#!/bin/sh\necho acme\n");
        set_mode(&s, 0o700);
        self.write("keystores/wso2carbon.jks", &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 1, 2, 3]);
    }
    /// Swaps the devportal theme for the 3.2–4.1 kind (`userTheme.js`).
    pub fn theme_for_41(&self) {
        fs::remove_file(self.join("themes/devportal/userTheme.json")).unwrap();
        self.write("themes/devportal/userTheme.js", b"const Configurations = { custom: {} };\n");
    }
    /// Runs the binary in this workspace.
    pub fn run(&self, args: &[&str]) -> Output {
        bin().current_dir(self.path()).args(args).output().expect("wso2img runs")
    }
    /// Runs the binary and requires success.
    pub fn run_ok(&self, args: &[&str]) -> Output {
        ok(bin().current_dir(self.path()).args(args))
    }
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Bytes that look like a jar (zip magic) of about `size` bytes, seeded by name.
pub fn fake_jar(name: &str, size: usize) -> Vec<u8> {
    let mut v = b"PK\x03\x04".to_vec();
    let mut x: u64 = name.bytes().fold(1469598103934665603, |h, b| (h ^ b as u64).wrapping_mul(1099511628211));
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push((x >> 32) as u8);
    }
    v
}

/// A real (stored) jar with Maven coordinates in pom.properties.
pub fn real_jar(group: &str, artifact: &str, version: &str) -> Vec<u8> {
    jar_with_manifest(group, artifact, version, "Manifest-Version: 1.0\n", 3000)
}

/// Like [`real_jar`], with a class of `size` bytes.
pub fn big_jar(group: &str, artifact: &str, version: &str, size: usize) -> Vec<u8> {
    jar_with_manifest(group, artifact, version, "Manifest-Version: 1.0\n", size)
}

/// A real OSGi bundle (Bundle-SymbolicName in its manifest), for dropins.
pub fn bundle_jar(group: &str, artifact: &str, version: &str) -> Vec<u8> {
    let mf = format!(
        "Manifest-Version: 1.0\r\nBundle-ManifestVersion: 2\r\nBundle-SymbolicName: {group}.{artifact}\r\nBundle-Version: {version}\r\n"
    );
    jar_with_manifest(group, artifact, version, &mf, 3000)
}

fn jar_with_manifest(group: &str, artifact: &str, version: &str, manifest: &str, class_size: usize) -> Vec<u8> {
    let pom = format!("groupId={group}\nartifactId={artifact}\nversion={version}\n");
    let entries: Vec<(String, Vec<u8>)> = vec![
        ("META-INF/MANIFEST.MF".into(), manifest.as_bytes().to_vec()),
        (format!("META-INF/maven/{group}/{artifact}/pom.properties"), pom.into_bytes()),
        (format!("{}/Main.class", artifact.replace('-', "/")), fake_jar(artifact, class_size)),
    ];
    let entries: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    zip_stored(&entries)
}

/// A zip (stored entries) of `entries`, in order.
pub fn zip_stored(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut cd = Vec::new();
    for (name, data) in entries {
        let off = out.len() as u32;
        let crc = crc32(data);
        let mut local = vec![0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        local.extend_from_slice(&crc.to_le_bytes());
        local.extend_from_slice(&(data.len() as u32).to_le_bytes());
        local.extend_from_slice(&(data.len() as u32).to_le_bytes());
        local.extend_from_slice(&(name.len() as u16).to_le_bytes());
        local.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&local);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        let mut c = vec![0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        c.extend_from_slice(&crc.to_le_bytes());
        c.extend_from_slice(&(data.len() as u32).to_le_bytes());
        c.extend_from_slice(&(data.len() as u32).to_le_bytes());
        c.extend_from_slice(&(name.len() as u16).to_le_bytes());
        c.extend_from_slice(&[0; 12]);
        c.extend_from_slice(&off.to_le_bytes());
        cd.extend_from_slice(&c);
        cd.extend_from_slice(name.as_bytes());
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&cd);
    out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Writing a sample base (an image set) with the transports' own writers.
pub trait WriteSample {
    /// Into an OCI layout under `tag`; returns the top digest.
    fn write_oci(&self, dir: &Path, tag: &str) -> wso2img::Result<Digest>;
    /// Its first platform as a `docker save` archive tagged `repo_tag`; returns the manifest digest.
    fn write_docker_archive(&self, path: &Path, repo_tag: &str) -> wso2img::Result<Digest>;
}

impl WriteSample for SampleBase {
    fn write_oci(&self, dir: &Path, tag: &str) -> wso2img::Result<Digest> {
        oci::LayoutDestination::new(dir, None).write_verbatim(&[tag.to_string()], &self.image_set()?)
    }
    fn write_docker_archive(&self, path: &Path, repo_tag: &str) -> wso2img::Result<Digest> {
        let image = self.image_set()?.images.remove(0);
        let digest = image.manifest.desc.digest;
        archive::destination::write(path, &[(vec![Reference::parse(repo_tag)?], image)], &path.display().to_string())?;
        Ok(digest)
    }
}

/// The 4.3-like sample base, optionally runnable and multi-platform.
pub fn sample_430(runnable: bool, platforms: &[&str]) -> SampleBase {
    let mut s = SampleBase::v430();
    if runnable {
        s.busybox = busybox();
    }
    if !platforms.is_empty() {
        s.platforms = platforms.iter().map(|p| Platform::parse(p).unwrap()).collect();
    }
    s
}

/// The 4.1-like sample base (named user 802, Docker media types).
pub fn sample_410(runnable: bool) -> SampleBase {
    let mut s = SampleBase::v410();
    assert_eq!(s.family, MediaFamily::Docker);
    if runnable {
        s.busybox = busybox();
    }
    s
}

/// Reads an OCI layout's index.json.
pub fn layout_index(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap()
}

/// Reads a blob of an OCI layout as JSON.
pub fn layout_json(dir: &Path, digest: &str) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// A reachable Docker daemon, or None (a failure in CI).
pub fn docker() -> bool {
    have("docker", &["info", "--format", "{{.ServerVersion}}"])
}

/// Runs `docker` with args and returns stdout, requiring success.
pub fn docker_ok(args: &[&str]) -> String {
    String::from_utf8(ok(Command::new("docker").args(args)).stdout).unwrap()
}

/// Requires exit `code` and exactly one `error: `
/// line on stderr naming every needle; returns that line.
pub fn one_line_error(out: &Output, code: i32, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code; stdout: {} stderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    for n in needles {
        assert!(lines[0].contains(n), "the error names {n:?}: {err}");
    }
    lines[0].to_string()
}
