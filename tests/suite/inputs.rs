//! Customer inputs as teams keep them (issue 13): ignore rules, jars by Maven
//! coordinates from a repository served on loopback, configuration files
//! checked before they ship, and `wso2img check`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::Value;
use sha2::Digest as _;

use super::support::*;

const BASE: &str = "[base]\nimage = \"builtin:wso2am-4.3.0\"\n";

fn err_line(out: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {err}");
    lines[0].to_string()
}

/// Runs the binary in `ws` with a private cache and home.
fn run(ws: &Workspace, args: &[&str]) -> Output {
    bin()
        .current_dir(ws.path())
        .env("XDG_CACHE_HOME", ws.join("cache"))
        .env("HOME", ws.join("home"))
        .env_remove("WSO2IMG_MAVEN_USERNAME")
        .env_remove("WSO2IMG_MAVEN_PASSWORD")
        .env_remove("WSO2IMG_MAVEN_HOST")
        .args(args)
        .output()
        .expect("wso2img runs")
}

fn run_ok(ws: &Workspace, args: &[&str]) -> Output {
    let mut c = bin();
    c.current_dir(ws.path()).env("XDG_CACHE_HOME", ws.join("cache")).env("HOME", ws.join("home")).args(args);
    let out = c.output().unwrap();
    succeeded(&c, out)
}

#[test]
fn inputs_ignore_rules_leave_litter_out_and_count_it() {
    let clean = Workspace::new();
    clean.customization();
    clean.config(BASE);
    let litter = Workspace::new();
    litter.customization();
    litter.config(&format!("{BASE}[layers]\nexclude = [\"*.md\"]\n"));
    for (p, b) in [
        ("jars/.DS_Store", &b"\0\0\0\x01Bud1"[..]),
        ("jars/.gitkeep", b""),
        ("themes/devportal/.git/config", b"[core]\n"),
        ("themes/devportal/.git/HEAD", b"ref: refs/heads/main\n"),
        ("overlays/repository/conf/deployment.toml~", b"[server]\n"),
        ("overlays/repository/conf/.deployment.toml.swp", b"vim"),
        ("overlays/NOTES.md", b"# notes\n"),
        ("overlays/old.bak", b"x"),
        ("overlays/.wso2imgignore", b"*.bak\n"),
        ("themes/devportal/images/logo.psd", b"psd"),
        (".wso2imgignore", b"themes/**/*.psd\n"),
    ] {
        litter.write(p, b);
    }
    let a = json(&run_ok(&clean, &["plan", "--json"]));
    let out = run_ok(&litter, &["-v", "plan", "--json"]);
    let b = json(&out);
    assert_eq!(a["content_digest"], b["content_digest"], "ignoring litter is the same as not having it");
    assert!(a.get("ignored").is_none(), "no ignored field when nothing was left out: {a:#}");
    let by_rule: BTreeMap<String, u64> = b["ignored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["rule"].as_str().unwrap().to_string(), i["files"].as_u64().unwrap()))
        .collect();
    let want: BTreeMap<String, u64> = [
        ("built-in: .DS_Store", 1),
        ("built-in: .gitkeep", 1),
        ("built-in: .git", 2),
        ("built-in: *~", 1),
        ("built-in: .*.swp", 1),
        ("built-in: .wso2imgignore", 1),
        ("[layers] exclude: *.md", 1),
        ("overlays/.wso2imgignore: *.bak", 1),
        (".wso2imgignore: themes/**/*.psd", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(by_rule, want);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("left out 9 files"), "the .gitkeep init writes is left out silently: {err}");
    assert!(!err.contains("built-in: .gitkeep:"), "{err}");
    assert!(err.contains("ignored themes/devportal/.git (built-in: .git, 2 files)"), "-v lists them: {err}");
    let plain = run_ok(&litter, &["plan"]);
    let (text, err) = (String::from_utf8_lossy(&plain.stdout), String::from_utf8_lossy(&plain.stderr));
    let told = format!("{text}{err}");
    assert_eq!(told.matches("built-in: .git").count(), 1, "the ignored files are told once: {told}");

    // A folder's own file re-includes a default; a bad pattern is a config error with its line.
    litter.write("jars/.wso2imgignore", b"!.gitkeep\n");
    let c = json(&run_ok(&litter, &["plan", "--json"]));
    assert_ne!(c["content_digest"], b["content_digest"]);
    litter.write("jars/.wso2imgignore", b"# keep\n{a,b\n");
    let e = err_line(&run(&litter, &["plan"]), 2);
    assert!(e.contains("jars/.wso2imgignore:2:"), "{e}");
}

#[test]
fn inputs_config_files_are_checked_before_anything_is_written() {
    let fresh = || {
        let ws = Workspace::new();
        ws.customization();
        ws.config(BASE);
        ws
    };
    let cases: [(&str, &[u8], &str); 6] = [
        (
            "overlays/repository/conf/deployment.toml",
            b"[server]\nhostname = \"a\"\n\n[server]\nnode_ip = \"b\"\n",
            "overlays/repository/conf/deployment.toml:4:",
        ),
        (
            "overlays/repository/conf/deployment.toml",
            b"[server]\nhostname = \"a\"\nhostname = \"b\"\n",
            "overlays/repository/conf/deployment.toml:3:1: ",
        ),
        (
            "overlays/repository/conf/deployment.toml",
            b"[database.apim_db]\nurl = \"jdbc:mysql://$env{DB_HOST:3306/apim\"\n",
            "overlays/repository/conf/deployment.toml:2:21: `$env{` is not closed",
        ),
        ("themes/devportal/userTheme.json", b"{\n  \"custom\": {,}\n}\n", "themes/devportal/userTheme.json:2:"),
        (
            "overlays/repository/conf/log4j2.xml",
            b"<Configuration>\n  <Appenders>\n</Configuration>\n",
            "overlays/repository/conf/log4j2.xml:3:",
        ),
        ("overlays/repository/conf/other.toml", b"a = \"x\n", "overlays/repository/conf/other.toml:1:"),
    ];
    for (file, bytes, want) in cases {
        let ws = fresh();
        ws.write(file, bytes);
        for args in [&["build", "--to", "oci:out"][..], &["check"][..]] {
            let e = err_line(&run(&ws, args), 2);
            assert!(e.contains(want), "{args:?}: {want:?} in {e}");
            assert!(!ws.join("out").exists() && !ws.join("wso2img.lock").exists(), "nothing written: {e}");
        }
    }
}

#[test]
fn inputs_check_runs_every_input_check_and_writes_nothing() {
    let ws = Workspace::new();
    ws.customization();
    ws.config(BASE);
    ws.write(
        "overlays/repository/conf/deployment.toml",
        b"[server]\nhostname = \"$env{HOSTNAME}\"\n[database.apim_db]\ntype = \"mysql\"\nurl = \"jdbc:mysql://db/apim\"\n",
    );
    let out = run_ok(&ws, &["check", "--json"]);
    let r = json(&out);
    assert_eq!((r["jars"].as_u64(), r["config_files"].as_u64()), (Some(2), Some(2)), "{r:#}");
    let warn = String::from_utf8_lossy(&out.stderr);
    assert!(warn.contains("warning:") && warn.contains("com.mysql:mysql-connector-j"), "{warn}");
    assert!(!ws.join("out").exists() && !ws.join("wso2img.lock").exists(), "check writes nothing");
    ws.write("jars/mysql-connector-j-8.4.0.jar", &real_jar("com.mysql", "mysql-connector-j", "8.4.0"));
    let out = run_ok(&ws, &["check"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning:"));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));

    // A plain jar in dropins is refused in one line that says where it goes.
    ws.write("dropins/plain-1.0.jar", &real_jar("com.acme", "plain", "1.0"));
    let e = err_line(&run(&ws, &["check"]), 1);
    assert!(e.contains("dropins/plain-1.0.jar") && e.contains("OSGi") && e.contains("jars/"), "{e}");
    fs::remove_file(ws.join("dropins/plain-1.0.jar")).unwrap();

    // A duplicate guessed from file names only is a warning, not an error.
    ws.write("jars/foo-1.0.jar", &fake_zip());
    ws.write("jars/foo-2.0.jar", &fake_zip());
    let out = run_ok(&ws, &["build", "--to", "oci:out"]);
    let warn = String::from_utf8_lossy(&out.stderr);
    assert!(warn.contains("jars/foo-1.0.jar and jars/foo-2.0.jar may be the same artifact"), "{warn}");
}

/// A zip with no pom.properties.
fn fake_zip() -> Vec<u8> {
    // A real jar whose pom.properties is renamed away (same length, in both headers).
    let mut b = real_jar("x", "x", "1");
    let needle = b"META-INF/maven/";
    let mut i = 0;
    while i + needle.len() <= b.len() {
        if &b[i..i + needle.len()] == needle {
            b[i + 9] = b'M';
        }
        i += 1;
    }
    b
}

/// A maven2 repository served over HTTP on 127.0.0.1, optionally behind basic auth.
struct Repo {
    root: PathBuf,
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Repo {
    fn start(root: &Path, auth: Option<(&str, &str)>) -> Repo {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (root2, log) = (root.to_path_buf(), requests.clone());
        let want = auth
            .map(|(u, p)| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))));
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let _ = serve(s, &root2, want.as_deref(), &log);
            }
        });
        Repo { root: root.to_path_buf(), port, requests }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/m2", self.port)
    }
    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
    /// Publishes a jar with its checksum files.
    fn publish(&self, group: &str, artifact: &str, version: &str, bytes: &[u8], sums: &[&str]) {
        let dir = self.root.join(group.replace('.', "/")).join(artifact).join(version);
        fs::create_dir_all(&dir).unwrap();
        let name = format!("{artifact}-{version}.jar");
        fs::write(dir.join(&name), bytes).unwrap();
        for s in sums {
            let hex = match *s {
                "sha1" => hex::encode(sha1::Sha1::digest(bytes)),
                _ => hex::encode(sha2::Sha256::digest(bytes)),
            };
            fs::write(dir.join(format!("{name}.{s}")), format!("{hex}  {name}\n")).unwrap();
        }
    }
}

fn serve(s: TcpStream, root: &Path, auth: Option<&str>, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut authorized = auth.is_none();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") && Some(v.trim()) == auth {
                authorized = true;
            }
        }
    }
    log.lock().unwrap().push(path.clone());
    let mut w = s;
    if !authorized {
        return w.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"m2\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    let file = path.strip_prefix("/m2/").map(|p| root.join(p));
    match file.and_then(|f| fs::read(f).ok()) {
        Some(body) => {
            w.write_all(
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes(),
            )?;
            w.write_all(&body)
        }
        None => w.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    }
}

#[test]
fn inputs_maven_jars_resolve_verify_pin_and_build_offline() {
    let ws = Workspace::new();
    ws.customization();
    let private = Repo::start(&ws.join("repo-private"), Some(("ci", "s3cr3t-pw")));
    let public = Repo::start(&ws.join("repo-public"), None);
    let pg = real_jar("org.postgresql", "postgresql", "42.5.5");
    public.publish("org.postgresql", "postgresql", "42.5.5", &pg, &["sha1", "sha256"]);
    private.publish(
        "com.acme",
        "acme-gw-handler",
        "1.2.0",
        &bundle_jar("com.acme", "acme-gw-handler", "1.2.0"),
        &["sha1"],
    );
    ws.write(
        "home/.m2/settings.xml",
        b"<settings><servers><server><id>nexus</id><username>ci</username><password>s3cr3t-pw</password></server></servers></settings>",
    );
    let config = format!(
        "{BASE}[maven]\nrepositories = [{{ url = \"{}\", id = \"nexus\" }}, \"{}\"]\njars = [\"org.postgresql:postgresql:42.5.5\"]\ndropins = [\"com.acme:acme-gw-handler:1.2.0\"]\n",
        private.url(),
        public.url()
    );
    ws.config(&config);
    ws.write("overlays/repository/conf/deployment.toml", b"[database.apim_db]\ntype = \"postgre\"\n");

    let out = run_ok(&ws, &["build", "--json", "--to", "oci:out", "--sbom", "sbom.json"]);
    let r = json(&out);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("s3cr3t"), "no secret in messages: {err}");
    assert!(!err.contains("warning:"), "postgresql provides the postgre driver: {err}");
    assert_eq!(r["maven"][0]["coordinates"], "org.postgresql:postgresql:42.5.5", "{r:#}");
    assert_eq!(r["maven"][1]["layer"], "dropins", "{r:#}");
    assert_eq!(layer_kinds(&r), ["jars", "dropins", "themes", "overlays"], "{r:#}");
    assert_eq!(kind_files(&r, "jars"), 3, "two jars of jars/ and the Maven one: {r:#}");
    let lock = fs::read_to_string(ws.join("wso2img.lock")).unwrap();
    let pg_sha = hex::encode(sha2::Sha256::digest(&pg));
    assert!(
        lock.contains(&format!(
            "[[maven]]\ncoordinates = \"org.postgresql:postgresql:42.5.5\"\nsha256 = \"sha256:{pg_sha}\""
        )),
        "{lock}"
    );
    assert!(!lock.contains("s3cr3t") && !lock.contains("127.0.0.1"), "{lock}");
    let sbom: Value = serde_json::from_slice(&fs::read(ws.join("sbom.json")).unwrap()).unwrap();
    let purls: Vec<&str> = sbom["components"].as_array().unwrap().iter().filter_map(|c| c["purl"].as_str()).collect();
    assert!(purls.contains(&"pkg:maven/org.postgresql/postgresql@42.5.5"), "{purls:?}");
    assert!(purls.contains(&"pkg:maven/com.acme/acme-gw-handler@1.2.0"), "{purls:?}");
    assert!(
        ws.join("cache/wso2img/maven/org/postgresql/postgresql/42.5.5/postgresql-42.5.5.jar").is_file(),
        "cached under XDG_CACHE_HOME"
    );

    // Locked and cached: no request at all, the same image.
    let before = private.count() + public.count();
    let again = json(&run_ok(&ws, &["build", "--json", "--locked", "--to", "oci:out2"]));
    assert_eq!(again["content_digest"], r["content_digest"]);
    assert_eq!(private.count() + public.count(), before, "a locked, cached build is offline");

    // A corrupt cache is fetched again; a pin the repository no longer matches fails --locked.
    fs::write(ws.join("cache/wso2img/maven/org/postgresql/postgresql/42.5.5/postgresql-42.5.5.jar"), b"junk").unwrap();
    public.publish(
        "org.postgresql",
        "postgresql",
        "42.5.5",
        &real_jar("org.postgresql", "postgresql", "42.5.6"),
        &["sha256"],
    );
    let e = err_line(&run(&ws, &["-q", "build", "--locked", "--to", "oci:out3"]), 1);
    assert!(e.contains("org.postgresql:postgresql:42.5.5") && e.contains("pinned"), "{e}");
    assert!(!ws.join("out3").exists());

    // A download that does not match the repository's checksum is refused and not kept.
    public.publish("org.postgresql", "postgresql", "42.5.5", &pg, &[]);
    let dir = ws.join("repo-public/org/postgresql/postgresql/42.5.5");
    fs::remove_file(dir.join("postgresql-42.5.5.jar.sha256")).unwrap();
    fs::write(dir.join("postgresql-42.5.5.jar.sha1"), "0000000000000000000000000000000000000000\n").unwrap();
    let e = err_line(&run(&ws, &["-q", "build", "--to", "oci:out3"]), 1);
    assert!(e.contains("does not match its .sha1"), "{e}");

    // Without credentials the private repository says what to do, and never shows a secret.
    fs::remove_file(ws.join("home/.m2/settings.xml")).unwrap();
    fs::remove_dir_all(ws.join("cache")).unwrap();
    let e = err_line(&run(&ws, &["-q", "check"]), 1);
    assert!(e.contains("401") && e.contains("WSO2IMG_MAVEN_USERNAME"), "{e}");
    let out = bin()
        .current_dir(ws.path())
        .env("XDG_CACHE_HOME", ws.join("cache"))
        .env("HOME", ws.join("home"))
        .env("WSO2IMG_MAVEN_USERNAME", "ci")
        .env("WSO2IMG_MAVEN_PASSWORD", "wrong-pw")
        .args(["-q", "check"])
        .output()
        .unwrap();
    let e = err_line(&out, 1);
    assert!(e.contains("refused") && !e.contains("wrong-pw"), "{e}");

    // Unknown coordinates name every repository tried.
    ws.config(&config.replace("42.5.5", "9.9.9"));
    let out = Command::new(env!("CARGO_BIN_EXE_wso2img"))
        .current_dir(ws.path())
        .env("XDG_CACHE_HOME", ws.join("cache"))
        .env("HOME", ws.join("home"))
        .env("WSO2IMG_MAVEN_USERNAME", "ci")
        .env("WSO2IMG_MAVEN_PASSWORD", "s3cr3t-pw")
        .env("WSO2IMG_MAVEN_HOST", format!("127.0.0.1:{}", private.port))
        .args(["-q", "check"])
        .output()
        .unwrap();
    let e = err_line(&out, 1);
    assert!(e.contains("not found in") && e.contains(&public.url()), "{e}");
}

#[test]
fn inputs_maven_config_errors_are_exit_2() {
    let ws = Workspace::new();
    for (maven, want) in [
        ("jars = [\"org.postgresql:postgresql\"]", "group:artifact:version"),
        ("jars = [\"a:b:1.0-SNAPSHOT\"]", "SNAPSHOT"),
        ("jars = [\"a:b:1\"]\ndropins = [\"a:b:2\"]", "already listed"),
        ("repositories = [\"http://nexus.example.com/m2\"]", "https"),
        ("repositories = [\"https://u:p@nexus.example.com/m2\"]", "credentials"),
    ] {
        ws.config(&format!("{BASE}[maven]\n{maven}\n"));
        let e = err_line(&run(&ws, &["check"]), 2);
        assert!(e.contains("wso2img.toml") && e.contains("[maven]") && e.contains(want), "{want}: {e}");
        assert!(!e.contains("u:p@") && !e.contains(":p@"), "{e}");
    }
}

/// The README's test command runs as root without sudo, and CI runs exactly it.
#[test]
fn inputs_readme_test_command_is_what_ci_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let setup = readme.split("## Set up").nth(1).unwrap().split("```").nth(1).unwrap();
    let cmd: Vec<&str> = setup.lines().filter(|l| !l.trim_start().starts_with('#') && l.contains("tests/")).collect();
    assert_eq!(cmd, ["tests/run.sh"], "the README's test command, without sudo: {setup}");
    assert!(!readme.contains("sudo tests/run.sh"), "no sudo in the README's test command");
    let ci = fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "exec tests/run.sh"), "{ci}");
}
