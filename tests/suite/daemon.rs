//! The Docker Engine transport against a real dockerd: loading results into
//! the daemon (only the layers it lacks; `up-to-date` when it has the image),
//! bases that exist only in the daemon (cold and from the config cache), pull
//! and push through the daemon to a registry with basic auth and a password
//! whose base64 needs the URL-safe alphabet, and a daemon that is not there.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use wso2img::transport::registry::auth::Credential;

use super::support::*;

/// The binary in `ws`, isolated from the machine's credentials and caches;
/// `DOCKER_HOST` is inherited (tests/run.sh points it at a private dockerd).
fn wso2img(ws: &Workspace, docker_config: Option<&Path>) -> Command {
    let mut c = bin();
    c.current_dir(ws.path());
    for v in [
        "REGISTRY_AUTH_FILE",
        "WSO2IMG_REGISTRY_USERNAME",
        "WSO2IMG_REGISTRY_PASSWORD",
        "WSO2IMG_REGISTRY_HOST",
        "XDG_RUNTIME_DIR",
    ] {
        c.env_remove(v);
    }
    let empty = ws.join(".docker-config-empty");
    fs::create_dir_all(&empty).unwrap();
    c.env("DOCKER_CONFIG", docker_config.unwrap_or(&empty))
        .env("HOME", ws.join(".home"))
        .env("XDG_CACHE_HOME", ws.join(".cache"));
    c
}

fn run(ws: &Workspace, docker_config: Option<&Path>, args: &[&str]) -> Output {
    wso2img(ws, docker_config).args(args).output().expect("wso2img runs")
}

fn run_ok(ws: &Workspace, docker_config: Option<&Path>, args: &[&str]) -> Output {
    ok(wso2img(ws, docker_config).args(args))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn run_in(image: &str, script: &str) -> String {
    docker_ok(&["run", "--rm", "--network", "none", "--pull", "never", "--entrypoint", "/bin/sh", image, "-c", script])
}

fn image_id(name: &str) -> String {
    docker_ok(&["image", "inspect", "--format", "{{.Id}}", name]).trim().to_string()
}

fn rmi(names: &[String]) {
    let _ = Command::new("docker").arg("rmi").arg("-f").args(names).output();
}

fn output(r: &Value) -> &Value {
    let outputs = r["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 1, "{r}");
    &outputs[0]
}

/// Seeds the daemon with a `docker save`-style archive of `sample` tagged `name`.
fn docker_load(ws: &Workspace, sample: &wso2img::wso2::sample::SampleBase, name: &str) {
    let path = ws.join("seed.tar");
    sample.write_docker_archive(&path, name).unwrap();
    let out = docker_ok(&["load", "-i", path.to_str().unwrap()]);
    assert!(out.contains("Loaded image"), "{out}");
    fs::remove_file(path).unwrap();
}

#[test]
fn loads_into_the_daemon_runs_and_reloads_only_what_changed() {
    if !docker() || busybox().is_none() {
        return;
    }
    let ws = Workspace::new();
    ws.customization();
    sample_430(true, &[]).write_oci(&ws.join("base"), "4.3.0").unwrap();
    ws.config("[base]\nimage = \"oci:base:4.3.0\"\n[target]\nextra_tags = [\"latest\"]\n");
    // Content of its own: the daemon is shared with other tests, which may load the same image.
    fs::write(ws.join("overlays/daemon-load-test"), "loads_into_the_daemon_runs_and_reloads_only_what_changed\n")
        .unwrap();
    let repo = "wso2img-daemon-test/load";
    let to = format!("docker-daemon:{repo}:dev");
    let r = json(&run_ok(&ws, None, &["build", "--json", "--bake-keystores", "--to", &to]));
    let content = r["content_digest"].as_str().unwrap().to_string();
    let tag = r["tag"].as_str().unwrap().to_string();
    let names: Vec<String> = [tag.as_str(), "latest", "dev"].iter().map(|t| format!("{repo}:{t}")).collect();
    assert_eq!(output(&r)["status"], "loaded", "{r}");
    assert_eq!(output(&r)["digest"], content.as_str(), "the daemon output reports the image ID");
    assert!(r["platforms"][0].get("manifest_digest").is_none(), "no manifest is stored anywhere: {r}");
    for name in &names {
        assert_eq!(image_id(name), content, "{name}: the image ID is the content digest");
    }

    let home = "/home/wso2carbon/wso2am-4.3.0";
    let out = run_in(
        &names[2],
        &format!(
            "id -u; stat -c '%u:%g %a' {home}/repository/components/lib/acme-driver-1.0.jar \
             {home}/repository/deployment/server/webapps/devportal/site/public/theme/userTheme.json \
             {home}/bin/acme-start.sh {home}/repository/resources/security/wso2carbon.jks /home"
        ),
    );
    assert_eq!(out, "10001\n10001:10001 644\n10001:10001 644\n10001:10001 755\n10001:10001 640\n0:0 755\n");

    // The same inputs again: the daemon has the image, nothing is compressed or sent.
    let again = run_ok(&ws, None, &["build", "--json", "--bake-keystores", "--to", &to]);
    let r2 = json(&again);
    assert_eq!(r2["content_digest"], content.as_str());
    assert_eq!(output(&r2)["status"], "up-to-date", "{r2}");
    assert!(stderr(&again).contains("nothing to load"), "{}", stderr(&again));
    assert!(!stderr(&again).contains("gzip"), "an up-to-date build compresses nothing: {}", stderr(&again));

    // One overlay changed: only the top layer travels; the tags move to the new image.
    ws.write("overlays/repository/conf/deployment.toml", b"[server]\nhostname = \"acme-2\"\n");
    let changed = run_ok(&ws, None, &["build", "--json", "--bake-keystores", "--to", &to]);
    let r3 = json(&changed);
    let content3 = r3["content_digest"].as_str().unwrap();
    assert_ne!(content3, content);
    assert_eq!(output(&r3)["status"], "loaded");
    let layers: usize = docker_ok(&["image", "inspect", "--format", "{{len .RootFS.Layers}}", &format!("{repo}:dev")])
        .trim()
        .parse()
        .unwrap();
    assert!(
        stderr(&changed).contains(&format!("sending 1 of {layers} layers")),
        "only the overlays layer is sent: {}",
        stderr(&changed)
    );
    assert_eq!(image_id(&format!("{repo}:dev")), content3);
    assert!(run_in(&format!("{repo}:dev"), &format!("cat {home}/repository/conf/deployment.toml")).contains("acme-2"));
    for line in stderr(&changed).lines() {
        let msg = line.split_once(' ').map(|(_, m)| m).unwrap_or("");
        assert!(msg.starts_with("wso2img: ") && !line.chars().any(|c| c.is_control()), "{line:?}");
    }
    rmi(&names);
    rmi(&[format!("{repo}:{}", r3["tag"].as_str().unwrap())]);
}

/// `--to docker-daemon:NAME` without a tag: the image gets its content tag
/// and `latest`, as `docker build -t NAME` gives, so `docker run NAME` runs
/// it; what the messages and the report name exists.
#[test]
fn a_daemon_output_without_a_tag_is_also_latest() {
    if !docker() || busybox().is_none() {
        return;
    }
    let ws = Workspace::new();
    ws.customization();
    sample_430(true, &[]).write_oci(&ws.join("base"), "4.3.0").unwrap();
    ws.config("[base]\nimage = \"oci:base:4.3.0\"\n");
    let repo = format!("wso2img-daemon-test/untagged-{}", std::process::id());
    let out = run_ok(&ws, None, &["build", "--json", "--bake-keystores", "--to", &format!("docker-daemon:{repo}")]);
    let r = json(&out);
    let content = r["content_digest"].as_str().unwrap().to_string();
    let names = [format!("{repo}:{}", r["tag"].as_str().unwrap()), format!("{repo}:latest")];
    for name in &names {
        assert_eq!(image_id(name), content, "{name}");
    }
    assert!(stderr(&out).contains(&format!("{repo}:latest")), "{}", stderr(&out));
    let home = "/home/wso2carbon/wso2am-4.3.0";
    assert!(run_in(&repo, &format!("cat {home}/repository/conf/deployment.toml")).contains("hostname"));
    rmi(&names);
}

#[test]
fn base_only_in_the_daemon_builds_like_its_docker_save_archive() {
    if !docker() || busybox().is_none() {
        return;
    }
    let ws = Workspace::new();
    ws.customization();
    let base = "wso2img-daemon-test/base:4.3.0";
    docker_load(&ws, &sample_430(true, &[]), base);
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    let from_daemon = format!("docker-daemon:{base}");

    // Cold: the image is saved from the daemon, read, and its config cached.
    let r = json(&run_ok(&ws, None, &["build", "--json", "--base", &from_daemon, "--to", "oci:out"]));
    let content = r["content_digest"].as_str().unwrap().to_string();
    assert_eq!(r["base"]["name"], "docker.io/wso2img-daemon-test/base:4.3.0");
    assert_eq!(r["base"]["location"], format!("docker-daemon:docker.io/{base}"));
    assert!(r["base"].get("digest").is_none(), "{r}");
    assert_eq!(r["base"]["media_types"], "docker");
    let id = image_id(base);
    let cached = ws.join(".cache/wso2img/docker-daemon").join(format!("{}.json", id.trim_start_matches("sha256:")));
    assert!(cached.is_file(), "the base config is cached under its image ID");

    // The same image as a docker save archive gives the same content digest.
    let saved = ws.join("saved.tar");
    ok(Command::new("docker").args(["save", "-o", saved.to_str().unwrap(), base]));
    let r_archive =
        json(&run_ok(&ws, None, &["build", "--json", "--base", "docker-archive:saved.tar", "--to", "oci:out2"]));
    assert_eq!(r_archive["content_digest"], content.as_str());
    assert_eq!(layout_index(&ws.join("out"))["manifests"], layout_index(&ws.join("out2"))["manifests"], "same bytes");

    // Warm: from the cache, into the daemon; the base layers are neither saved nor sent.
    let warm = run_ok(
        &ws,
        None,
        &["build", "--json", "--base", &from_daemon, "--to", "docker-daemon:wso2img-daemon-test/on-base"],
    );
    let r_warm = json(&warm);
    assert_eq!(r_warm["content_digest"], content.as_str());
    let customer = r_warm["layers"].as_array().unwrap().len();
    assert!(stderr(&warm).contains(&format!("sending {customer} of")), "{}", stderr(&warm));
    let loaded = format!("wso2img-daemon-test/on-base:{}", r_warm["tag"].as_str().unwrap());
    assert_eq!(image_id(&loaded), content);

    // Warm, to an OCI layout: the layers are saved from the daemon on demand.
    let r_oci = json(&run_ok(&ws, None, &["build", "--json", "--base", &from_daemon, "--to", "oci:out3"]));
    assert_eq!(r_oci["content_digest"], content.as_str());
    assert_eq!(layout_index(&ws.join("out3"))["manifests"], layout_index(&ws.join("out"))["manifests"]);

    // A cache entry that does not match its image ID is ignored.
    fs::write(&cached, br#"{"config":"{}","layer_sizes":[]}"#).unwrap();
    let r_bad = json(&run_ok(&ws, None, &["build", "--json", "--base", &from_daemon, "--to", "oci:out4"]));
    assert_eq!(r_bad["content_digest"], content.as_str());

    // A base the daemon does not have: one line, exit 1.
    let missing =
        run(&ws, None, &["build", "--base", "docker-daemon:wso2img-daemon-test/absent:1", "--to", "oci:out5"]);
    assert_eq!(missing.status.code(), Some(1));
    let err = stderr(&missing);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no such image in the Docker daemon") && err.contains("--pull"), "{err}");
    assert!(!ws.join("out5").exists());
    rmi(&[base.to_string(), loaded]);
}

#[test]
fn named_user_base_from_the_daemon_reads_its_passwd_lazily() {
    if !docker() || busybox().is_none() {
        return;
    }
    let ws = Workspace::new();
    ws.customization();
    ws.theme_for_41();
    let base = "wso2img-daemon-test/base41:4.1.0";
    docker_load(&ws, &sample_410(true), base);
    ws.config("[base]\nimage = \"docker-daemon:wso2img-daemon-test/base41:4.1.0\"\n");
    let cold = json(&run_ok(&ws, None, &["plan", "--json"]));
    let warm = json(&run_ok(&ws, None, &["build", "--json", "--to", "docker-daemon:wso2img-daemon-test/on41"]));
    assert_eq!(cold["content_digest"], warm["content_digest"]);
    assert_eq!(warm["platforms"][0]["detected"]["owner"], json!({"uid": 802, "gid": 802}), "{warm}");
    let image = format!("wso2img-daemon-test/on41:{}", warm["tag"].as_str().unwrap());
    let home = "/home/wso2carbon/wso2am-4.1.0";
    let out = run_in(&image, &format!("id -un; stat -c '%u:%g' {home}/repository/components/lib/acme-driver-1.0.jar"));
    assert_eq!(out, "wso2carbon\n802:802\n");
    rmi(&[base.to_string(), image]);
}

#[test]
fn unreachable_daemon_is_one_line_and_writes_nothing() {
    let ws = Workspace::new();
    ws.customization();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    let refused = ws.join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&refused).unwrap());
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("unix:///nonexistent.sock".into(), vec!["build", "--to", "oci:out", "--to", "docker-daemon:acme/apim"]),
        (
            "unix:///nonexistent.sock".into(),
            vec!["build", "--base", "docker-daemon:wso2/wso2am:4.3.0", "--to", "oci:out"],
        ),
        (
            "unix:///nonexistent.sock".into(),
            vec!["build", "--to", "oci:out", "--to", "docker://127.0.0.1:9/acme/apim", "--via", "docker"],
        ),
        (format!("unix://{}", refused.display()), vec!["build", "--to", "oci:out", "--to", "docker-daemon:acme/apim"]),
    ];
    for (host, args) in cases {
        let out = wso2img(&ws, None).env("DOCKER_HOST", &host).args(&args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        let socket = host.trim_start_matches("unix://");
        assert!(err.contains(socket) && err.contains("DOCKER_HOST") && err.contains("start dockerd"), "{err}");
        assert!(!ws.join("out").exists(), "{args:?}: nothing is written");
    }
    let tcp = wso2img(&ws, None)
        .env("DOCKER_HOST", "tcp://127.0.0.1:2375")
        .args(["build", "--to", "docker-daemon:a/b"])
        .output()
        .unwrap();
    assert_eq!(tcp.status.code(), Some(2));
    assert!(stderr(&tcp).contains("unix socket"), "{}", stderr(&tcp));
    let pull = run(&ws, None, &["build", "--pull", "--to", "oci:out"]);
    assert_eq!(pull.status.code(), Some(2), "--pull needs a docker-daemon: base: {}", stderr(&pull));
}

/// A `docker-registry` with htpasswd basic auth on a random loopback port
/// (plain HTTP: the daemon treats 127.0.0.0/8 as insecure).
struct AuthRegistry {
    _dir: tempfile::TempDir,
    child: Child,
    host: String,
    password: String,
}

impl AuthRegistry {
    /// Starts a registry for `user` with the password `password_for(host)`.
    fn start(user: &str, password_for: impl Fn(&str) -> String) -> AuthRegistry {
        let dir = tempfile::Builder::new().prefix("wso2img-daemon-registry-").tempdir().unwrap();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let host = format!("127.0.0.1:{port}");
            let password = password_for(&host);
            let htpasswd = ok(Command::new("htpasswd").args(["-Bbn", user, &password])).stdout;
            fs::write(dir.path().join("htpasswd"), htpasswd).unwrap();
            let config = format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {root}/storage\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: wso2img-test\n\
                 auth:\n  htpasswd:\n    realm: wso2img-test\n    path: {root}/htpasswd\n",
                root = dir.path().display()
            );
            fs::write(dir.path().join("config.yml"), config).unwrap();
            let log = fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut cmd = Command::new("docker-registry");
            cmd.arg("serve").arg(dir.path().join("config.yml")).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("REGISTRY_") {
                    cmd.env_remove(&k);
                }
            }
            let mut child = cmd.spawn().expect("docker-registry starts");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                if fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default().contains("listening on") {
                    return AuthRegistry { _dir: dir, child, host, password };
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start");
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A password for `user` at `host` whose X-Registry-Auth JSON, in standard
/// base64, has both `+` and `/` (which the daemon would not decode).
fn awkward_password(user: &str, host: &str) -> String {
    for i in 0..10_000 {
        let password = format!("{}?~?~>~{i}", "s".repeat(i % 3));
        let c = Credential::Basic { username: user.into(), password: password.clone() };
        let standard = STANDARD.encode(wso2img::transport::daemon::auth_json(Some(&c), host));
        if standard.contains('+') && standard.contains('/') {
            return password;
        }
    }
    panic!("no password with + and / in its encoding");
}

fn docker_config(dir: &Path, host: &str, user: &str, password: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let auth = STANDARD.encode(format!("{user}:{password}"));
    fs::write(dir.join("config.json"), json!({"auths": {host: {"auth": auth}}}).to_string()).unwrap();
    dir.to_path_buf()
}

#[test]
fn pulls_and_pushes_through_the_daemon_with_an_awkward_password() {
    if !docker()
        || busybox().is_none()
        || !have("docker-registry", &["--version"])
        || !have("htpasswd", &["-nbB", "probe", "probe"])
        || !have("skopeo", &["--version"])
    {
        return;
    }
    let user = "acme";
    let reg = AuthRegistry::start(user, |host| awkward_password(user, host));
    let (host, password) = (reg.host.clone(), reg.password.clone());
    let c = Credential::Basic { username: user.into(), password: password.clone() };
    let standard = STANDARD.encode(wso2img::transport::daemon::auth_json(Some(&c), &host));
    assert!(standard.contains('+') && standard.contains('/'), "{standard}");

    let ws = Workspace::new();
    ws.customization();
    let creds = docker_config(&ws.join("docker-config"), &host, user, &password);
    let wrong = docker_config(&ws.join("docker-config-wrong"), &host, user, "not-the-password");
    let creds_arg = format!("{user}:{password}");

    // The base is only in the registry: the daemon pulls it with wso2img's credential.
    sample_430(true, &[]).write_oci(&ws.join("base"), "4.3.0").unwrap();
    let base_ref = format!("{host}/acme/base:4.3.0");
    ok(Command::new("skopeo")
        .args([
            "copy",
            "--dest-creds",
            &creds_arg,
            "--dest-tls-verify=false",
            "oci:base:4.3.0",
            &format!("docker://{base_ref}"),
        ])
        .current_dir(ws.path()));
    rmi(std::slice::from_ref(&base_ref));
    ws.config(&format!("[base]\nimage = \"docker-daemon:{base_ref}\"\n[target]\nrepository = \"{host}/acme/apim\"\n"));
    let denied = run(&ws, Some(&wrong), &["build", "--pull", "--to", "oci:out"]);
    assert_eq!(denied.status.code(), Some(1));
    let err = stderr(&denied);
    assert!(err.contains("authentication failed") && err.contains("DOCKER_CONFIG/config.json"), "{err}");
    assert_eq!(err.lines().filter(|l| l.contains("error")).count(), 1, "{err}");

    // Pull, build, load and push through the daemon.
    let out = run_ok(&ws, Some(&creds), &["build", "--pull", "--push", "--via", "docker", "--json"]);
    let r = json(&out);
    let log = stderr(&out);
    assert!(log.contains("daemon: Status: Downloaded newer image"), "{log}");
    assert!(log.contains(": Pushed"), "{log}");
    let pushed = output(&r);
    assert_eq!(pushed["status"], "pushed");
    assert_eq!(pushed["ref"], format!("docker://{host}/acme/apim"));
    let tag = r["tag"].as_str().unwrap();
    let target = format!("docker://{host}/acme/apim:{tag}");

    // What the registry holds: the reported manifest digest, the content digest as config.
    let inspect = |what: &[&str]| -> Value {
        let mut args = vec!["inspect", "--creds", &creds_arg, "--tls-verify=false"];
        args.extend_from_slice(what);
        args.push(&target);
        serde_json::from_slice(&ok(Command::new("skopeo").args(&args)).stdout).unwrap()
    };
    assert_eq!(inspect(&[])["Digest"], pushed["digest"]);
    assert_eq!(inspect(&["--raw"])["config"]["digest"], r["content_digest"]);
    let copy = ws.join("pulled");
    ok(Command::new("skopeo").args([
        "copy",
        "--src-creds",
        &creds_arg,
        "--src-tls-verify=false",
        &target,
        &format!("oci:{}:x", copy.display()),
    ]));
    assert!(copy.join("index.json").is_file());

    // And back through the daemon: drop every local name, pull it with the credential.
    let local = format!("{host}/acme/apim:{tag}");
    rmi(&[local.clone(), base_ref.clone()]);
    let id = r["content_digest"].as_str().unwrap();
    let _ = Command::new("docker").args(["rmi", "-f", id]).output();
    ok(Command::new("docker").env("DOCKER_CONFIG", &creds).args(["pull", &local]));
    assert_eq!(image_id(&local), id);

    // Wrong password on push: one clear error.
    ws.write("overlays/repository/conf/deployment.toml", b"[server]\nhostname = \"acme-2\"\n");
    let denied =
        run(&ws, Some(&wrong), &["build", "--push", "--via", "docker", "--base", &format!("docker-daemon:{local}")]);
    assert_eq!(denied.status.code(), Some(1));
    let err = stderr(&denied);
    assert!(err.contains("pushing through the Docker daemon: authentication failed"), "{err}");
    rmi(&[local]);
}
