//! What a newcomer sees: errors that name the input and say what to do,
//! messages said once, and progress that leaves nothing stale on a terminal.

use std::process::Output;

use super::support::*;

/// A workspace with the standard customization and a built-in base.
fn ready() -> Workspace {
    let ws = Workspace::new();
    ws.customization();
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    ws
}

/// The one error line of a failed run, after checking its exit code.
fn error_line(out: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {err}"));
    line.to_string()
}

/// Runs with the registry unreachable: a proxy on a port nothing listens on.
fn offline(ws: &Workspace, args: &[&str]) -> Output {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let proxy = format!("http://127.0.0.1:{port}");
    bin()
        .current_dir(ws.path())
        .env("HTTPS_PROXY", &proxy)
        .env("https_proxy", &proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .args(["--timeout", "5"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_bare_name_that_is_a_local_folder_suggests_oci() {
    let ws = ready();
    ws.write("out/index.json", b"{}");
    let e = error_line(&offline(&ws, &["inspect", "out"]), 1);
    assert!(e.starts_with("error: out: "), "names the input: {e}");
    assert!(e.contains("did you mean oci:out?"), "{e}");
}

#[test]
fn a_bare_base_name_says_how_to_name_a_local_image() {
    let ws = ready();
    let e = error_line(&offline(&ws, &["plan", "--base", "nosuch:thing"]), 1);
    assert!(e.starts_with("error: nosuch:thing: "), "names the input: {e}");
    assert!(e.contains("Docker Hub") && e.contains("oci:DIR[:TAG]") && e.contains("docker-archive:FILE"), "{e}");
}

#[test]
fn a_missing_config_points_at_init() {
    let ws = Workspace::new();
    let e = error_line(&ws.run(&["plan"]), 2);
    assert!(e.contains("wso2img.toml") && e.contains("wso2img init"), "{e}");
}

#[test]
fn clap_errors_and_ours_share_one_prefix() {
    let ws = Workspace::new();
    let clap = ws.run(&["build", "--no-such-flag"]);
    assert_eq!(clap.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&clap.stderr).starts_with("error: "), "{}", String::from_utf8_lossy(&clap.stderr));
    let ours = ws.run(&["plan"]);
    assert!(String::from_utf8_lossy(&ours.stderr).starts_with("error: "), "{}", String::from_utf8_lossy(&ours.stderr));
}

#[test]
fn a_tcp_docker_host_is_a_configuration_error() {
    let ws = ready();
    let out = bin()
        .current_dir(ws.path())
        .env("DOCKER_HOST", "tcp://127.0.0.1:2375")
        .args(["build", "--to", "docker-daemon:acme/apim"])
        .output()
        .unwrap();
    let e = error_line(&out, 2);
    assert!(e.contains("DOCKER_HOST=tcp://127.0.0.1:2375") && e.contains("unix:///PATH/docker.sock"), "{e}");
}

#[test]
fn messages_are_said_once_in_plain_words() {
    let ws = ready();
    ws.write("themes/.gitkeep", b"");
    ws.write("overlays/NOTES.md~", b"x");
    let out = ws.run_ok(&["build", "--to", "oci:out", "--to", "docker-archive:img.tar"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains(".gitkeep"), "the placeholder init writes is ignored silently: {err}");
    assert_eq!(err.matches("ignore rules left out 1 file (").count(), 1, "{err}");
    for once in
        ["written oci:out", "written docker-archive:img.tar", "keystores: 1 file not baked (mount them at run time"]
    {
        assert_eq!(err.matches(once).count(), 1, "{once:?} once: {err}");
    }
    let plan = ws.run_ok(&["plan"]);
    let text = String::from_utf8_lossy(&plan.stdout);
    let layer = text.lines().find(|l| l.starts_with("layer themes")).unwrap_or_else(|| panic!("{text}"));
    assert!(layer.contains(" 2 files ") && layer.contains("content ") && layer.contains("tar "), "{layer}");
    let overlays = text.lines().find(|l| l.starts_with("layer overlays")).unwrap();
    assert!(!text.contains(" 1 files"), "{text}");
    assert!(overlays.contains(" 2 files "), "{overlays}");
    let err = String::from_utf8_lossy(&plan.stderr);
    assert_eq!(err.matches("not baked").count(), 1, "{err}");
    let baked = ws.run_ok(&["plan", "--bake-keystores"]);
    assert!(!String::from_utf8_lossy(&baked.stderr).contains("not baked"));
}

#[test]
fn plain_progress_has_no_control_characters_and_quiet_has_none() {
    let ws = ready();
    ws.write("jars/big-1.0.jar", &big_jar("com.acme", "big", "1.0", 3 << 20));
    let out = ws.run_ok(&["--progress=plain", "-v", "build", "--to", "oci:out"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.lines().count() >= 3, "{err}");
    assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "control characters: {err:?}");
    assert!(!err.contains("MiB") && !err.contains("KiB"), "one unit system (SI): {err}");
    let quiet = ws.run_ok(&["--progress=quiet", "build", "--to", "oci:out"]);
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    assert_eq!(quiet.stdout, out.stdout, "the same line on stdout");
}

/// A multi-layer build and push under a pseudo-terminal, its output rendered
/// by a terminal emulator (pyte): at the end no bar is left on the screen,
/// only the one summary line, and each message once.
#[test]
fn terminal_progress_leaves_nothing_stale() {
    use super::registry_support::{push_sample, registry_tools, Kind, Registry};
    let Ok(python) = std::env::var("WSO2IMG_TEST_PYTHON") else {
        assert!(!in_ci(), "WSO2IMG_TEST_PYTHON (the test venv with pyte) is required in CI");
        skipped("WSO2IMG_TEST_PYTHON");
        return;
    };
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::Anonymous);
    let host = reg.host();
    push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    let ws = Workspace::new();
    ws.customization();
    ws.write("jars/big-1.0.jar", &big_jar("com.acme", "big", "1.0", 4 << 20));
    let noise: Vec<u8> = (0..6u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    ws.write("overlays/repository/resources/big.bin", &noise);
    ws.config(&format!("[base]\nimage = \"{host}/wso2/wso2am:4.3.0\"\n[target]\nrepository = \"{host}/acme/apim\"\n"));
    let script = r#"
import os, pty, sys, select, struct, fcntl, termios, pyte
cols, rows = 160, 200
pid, fd = pty.fork()
if pid == 0:
    os.environ.pop("CI", None)
    os.environ["TERM"] = "xterm"
    os.execv(sys.argv[1], sys.argv[1:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
data = b""
while True:
    try:
        r, _, _ = select.select([fd], [], [], 120)
    except InterruptedError:
        continue
    if not r:
        break
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    data += chunk
_, status = os.waitpid(pid, 0)
screen = pyte.Screen(cols, rows)
stream = pyte.ByteStream(screen)
stream.feed(data)
for line in screen.display:
    if line.strip():
        print(line.rstrip())
print("EXIT", os.waitstatus_to_exitcode(status), "ESC", data.count(b"\x1b"))
"#;
    let exe = env!("CARGO_BIN_EXE_wso2img");
    let out = ok(std::process::Command::new(&python)
        .current_dir(ws.path())
        .env("XDG_CACHE_HOME", test_cache_home())
        .args(["-c", script, exe, "build", "--push", "--to", "oci:out"]));
    let screen = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = screen.lines().collect();
    let last = lines.last().unwrap();
    assert!(last.starts_with("EXIT 0 "), "{screen}");
    assert!(!last.ends_with("ESC 0"), "bars were drawn (escape sequences sent): {screen}");
    let bars: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("=>") || l.contains("/s") && l.contains('/') && !l.contains(" in "))
        .collect();
    assert!(bars.is_empty(), "stale bar lines left:\n{screen}");
    let summaries = lines.iter().filter(|l| l.starts_with("wso2img: done: ")).count();
    assert_eq!(summaries, 1, "one summary line:\n{screen}");
    assert!(screen.contains("upload ") || screen.contains("compress "), "{screen}");
    for once in ["written oci:out", &format!("pushed docker://{host}/acme/apim")] {
        assert_eq!(screen.matches(once).count(), 1, "{once:?} once:\n{screen}");
    }
    assert!(!screen.contains("MiB"), "one unit system:\n{screen}");
    assert!(lines.iter().any(|l| l.starts_with(&format!("{host}/acme/apim@sha256:"))), "stdout line:\n{screen}");
}

#[test]
fn init_writes_a_gitignore_for_the_output_and_keeps_one_that_exists() {
    let ws = Workspace::new();
    let out = ws.run_ok(&["init", "--base", "builtin:wso2am-4.3.0"]);
    assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l == ".gitignore"), "listed");
    let text = std::fs::read_to_string(ws.join(".gitignore")).unwrap();
    assert!(text.lines().any(|l| l == "/out/"), "{text}");
    let mine = Workspace::new();
    mine.write(".gitignore", b"target/\n");
    mine.run_ok(&["init", "--base", "builtin:wso2am-4.3.0"]);
    assert_eq!(std::fs::read_to_string(mine.join(".gitignore")).unwrap(), "target/\n", "never overwritten");
}

#[test]
fn completion_is_an_alias_of_completions() {
    let ws = Workspace::new();
    let a = ws.run_ok(&["completion", "bash"]);
    let b = ws.run_ok(&["completions", "bash"]);
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout);
}

/// `login` checks the credential with a real htpasswd registry before it
/// writes the Docker config file (mode 0600, other keys kept), the rest of
/// the tool then pushes with it; a wrong password writes nothing; `logout`
/// removes it.
#[test]
fn login_writes_the_docker_config_the_tool_reads() {
    use super::registry_support::{basic_auth, push_sample, registry_tools, wso2img, Kind, Registry};
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Stdio;
    if !registry_tools() {
        return;
    }
    let reg = Registry::start(Kind::basic("ci", "s3cret-pw"));
    let host = reg.host();
    let ca = reg.ca_path().display().to_string();
    let ws = Workspace::new();
    let config_dir = ws.join("docker-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("config.json"), b"{\"credsStore\":\"\",\"proxies\":{\"default\":{}}}").unwrap();
    let login = |password: &str| {
        let mut c = wso2img(&ws);
        c.env("DOCKER_CONFIG", &config_dir)
            .args(["--ca-cert", &ca, "login", &host, "-u", "ci", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let wrong = login("wrong-pw");
    let e = error_line(&wrong, 2);
    assert!(e.contains(&host) && e.contains("refused"), "{e}");
    assert!(!String::from_utf8_lossy(&wrong.stderr).contains("wrong-pw"), "no secret in errors");
    let before = std::fs::read(config_dir.join("config.json")).unwrap();
    assert_eq!(before, b"{\"credsStore\":\"\",\"proxies\":{\"default\":{}}}", "nothing written on a refused login");

    let ok_run = login("s3cret-pw");
    assert!(ok_run.status.success(), "{}", String::from_utf8_lossy(&ok_run.stderr));
    assert!(!String::from_utf8_lossy(&ok_run.stderr).contains("s3cret-pw"));
    let file = config_dir.join("config.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["auths"][&host]["auth"], basic_auth("ci", "s3cret-pw"));
    assert!(v["proxies"]["default"].is_object(), "other keys kept: {v}");

    // The rest of the tool reads it: a push with it succeeds.
    push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    ws.customization();
    ws.config(&format!("[base]\nimage = \"{host}/wso2/wso2am:4.3.0\"\n[target]\nrepository = \"{host}/acme/apim\"\n"));
    let push =
        wso2img(&ws).env("DOCKER_CONFIG", &config_dir).args(["--ca-cert", &ca, "build", "--push"]).output().unwrap();
    assert!(push.status.success(), "{}", String::from_utf8_lossy(&push.stderr));

    let out = wso2img(&ws).env("DOCKER_CONFIG", &config_dir).args(["logout", &host]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(v["auths"].get(&host).is_none(), "{v}");
    assert!(v["proxies"]["default"].is_object(), "{v}");
}
