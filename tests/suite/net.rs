//! The network stack against a real registry: proxies from the environment,
//! with `NO_PROXY` honoured. The registry runs on loopback; to reach it by a
//! name that is not loopback, wso2img runs in a private mount namespace
//! (`unshare -m`) whose `/etc/hosts` maps [`NAME`] to 127.0.0.1 — the
//! machine's `/etc` is never touched. The proxy is a recording forward proxy
//! on loopback in front of the registry ([`FaultProxy`] without faults): it
//! answers `GET http://NAME:PORT/…` by asking the registry, and refuses to
//! tunnel (`CONNECT`), so an HTTPS attempt through it fails and the plain
//! HTTP that `--insecure-registry` allows follows.

use std::fs;
use std::process::{Command, Output};

use super::registry_support::*;
use super::support::*;

/// A registry name that is not loopback (`.test` is reserved: it never resolves in real DNS).
const NAME: &str = "registry.wso2img.test";

/// Whether this machine can run wso2img in a private mount namespace (root and `unshare`).
fn namespaces() -> bool {
    let probe = Command::new("unshare").args(["-m", "--propagation", "private", "true"]).output();
    if probe.is_ok_and(|o| o.status.success()) {
        return true;
    }
    skipped("unshare -m (root)");
    false
}

/// `cmd`, run inside a private mount namespace where `/etc/hosts` (a file in
/// `ws`) maps [`NAME`] to 127.0.0.1; its environment and folder are kept.
fn with_hosts(ws: &Workspace, cmd: &mut Command) -> Output {
    let hosts = ws.join("hosts");
    fs::write(&hosts, format!("127.0.0.1 localhost\n::1 localhost\n127.0.0.1 {NAME}\n")).unwrap();
    let mut wrapped = Command::new("unshare");
    wrapped
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"mount --bind "$1" /etc/hosts && shift && exec "$@""#,
            "sh",
        ])
        .arg(&hosts)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        wrapped.current_dir(d);
    }
    run_limited(&mut wrapped, COMMAND_LIMIT)
}

/// wso2img in `ws` with `HTTPS_PROXY` and `HTTP_PROXY` set to `proxy`, and
/// `NO_PROXY` set to `no_proxy` (unset when `None`).
fn proxied(ws: &Workspace, proxy: &FaultProxy, no_proxy: Option<&str>) -> Command {
    let mut c = wso2img(ws);
    let url = format!("http://{}", proxy.host());
    c.env("HTTPS_PROXY", &url).env("HTTP_PROXY", &url).env_remove("NO_PROXY").env_remove("no_proxy");
    if let Some(n) = no_proxy {
        c.env("NO_PROXY", n);
    }
    c
}

/// A registry holding the sample base, a recording proxy in front of it,
/// and a workspace that builds from the base by [`NAME`] and pushes there.
fn setup() -> Option<(Registry, FaultProxy, Workspace, String)> {
    if !registry_tools() || !namespaces() {
        return None;
    }
    let reg = Registry::start(Kind::Anonymous);
    push_sample(&reg, "wso2/wso2am:4.3.0", &sample_430(false, &[]));
    let proxy = FaultProxy::start(&reg.host(), Vec::new());
    let named = format!("{NAME}:{}", reg.port());
    let ws = Workspace::new();
    ws.customization();
    ws.config(&format!(
        "[base]\nimage = \"{named}/wso2/wso2am:4.3.0\"\n[target]\nrepository = \"{named}/acme/apim\"\n"
    ));
    Some((reg, proxy, ws, named))
}

#[test]
fn proxy_never_sees_a_registry_named_in_no_proxy() {
    let Some((reg, proxy, ws, named)) = setup() else { return };
    let args = ["--insecure-registry", &named, "build", "--push", "--json"];
    let out = checked(&args, with_hosts(&ws, proxied(&ws, &proxy, Some(&format!("other.test, {NAME}"))).args(args)));
    let r = json(&out);
    assert_eq!(r["outputs"][0]["status"], "pushed", "{r:#}");
    assert!(proxy.requests().is_empty(), "the proxy saw:\n{}", proxy.describe());
    let log = reg.requests();
    assert!(log.iter().any(|q| q.is_manifest_put() && q.repo() == Some("acme/apim")), "{}", Registry::describe(&log));
    // Every way of writing the exclusion: the name's domain, dotted or starred,
    // the name with its port, and a list with a CIDR block before it.
    let port = reg.port().to_string();
    for no_proxy in [
        "wso2img.test".to_string(),
        ".wso2img.test".to_string(),
        "*.wso2img.test".to_string(),
        format!("{NAME}:{port}"),
        format!("10.0.0.0/8,{}", NAME.to_uppercase()),
        "*".to_string(),
    ] {
        let target = format!("docker://{named}/wso2/wso2am:4.3.0");
        let args = ["--insecure-registry", &named, "inspect", "--json", &target];
        checked(&args, with_hosts(&ws, proxied(&ws, &proxy, Some(&no_proxy)).args(args)));
        assert!(proxy.requests().is_empty(), "NO_PROXY={no_proxy}: the proxy saw:\n{}", proxy.describe());
    }
}

#[test]
fn proxy_sees_a_registry_not_excluded_and_never_a_loopback_one() {
    let Some((reg, proxy, ws, named)) = setup() else { return };
    let target = format!("docker://{named}/wso2/wso2am:4.3.0");
    let port = reg.port().to_string();
    // Not excluded: NO_PROXY unset, or naming other hosts and ports only.
    for no_proxy in
        [None, Some("other.test,.wso2img.test:1,10.0.0.0/8".to_string()), Some(format!("ample.test:{port}"))]
    {
        let mark = proxy.requests().len();
        let args = ["--insecure-registry", &named, "inspect", "--json", &target];
        let out = checked(&args, with_hosts(&ws, proxied(&ws, &proxy, no_proxy.as_deref()).args(args)));
        assert_eq!(
            json(&out)["platforms"].as_array().map(|p| p.len()),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let seen = &proxy.requests()[mark..];
        let absolute = format!("http://{named}/v2/");
        assert!(
            seen.iter().any(|q| q.method == "GET" && q.uri.starts_with(&absolute)),
            "NO_PROXY={no_proxy:?}: the proxy did not see the registry's requests:\n{}",
            proxy.describe()
        );
        assert!(
            seen.iter().any(|q| q.method == "CONNECT" && q.uri == named),
            "NO_PROXY={no_proxy:?}: HTTPS was tried through the proxy first:\n{}",
            proxy.describe()
        );
    }
    // The same build pushes through the proxy.
    let mark = proxy.requests().len();
    let args = ["--insecure-registry", &named, "build", "--push", "--json"];
    let out = checked(&args, with_hosts(&ws, proxied(&ws, &proxy, None).args(args)));
    assert_eq!(json(&out)["outputs"][0]["status"], "pushed");
    let seen = &proxy.requests()[mark..];
    assert!(seen.iter().any(|q| q.method == "HEAD" && q.uri.contains("/acme/apim/blobs/")), "{}", proxy.describe());

    // A loopback registry never goes through the proxy, NO_PROXY or not.
    let mark = proxy.requests().len();
    let loopback = format!("docker://{}/wso2/wso2am:4.3.0", reg.host());
    let args = ["inspect", "--json", &loopback];
    checked(&args, with_hosts(&ws, proxied(&ws, &proxy, None).args(args)));
    assert_eq!(proxy.requests().len(), mark, "the proxy saw loopback traffic:\n{}", proxy.describe());
}

#[test]
fn an_unusable_proxy_is_a_configuration_error_unless_the_registry_is_loopback() {
    let Some((reg, proxy, ws, named)) = setup() else { return };
    drop(proxy);
    let target = format!("docker://{named}/wso2/wso2am:4.3.0");
    let args = ["--insecure-registry", &named, "inspect", &target];
    let mut bad = wso2img(&ws);
    bad.env_remove("NO_PROXY").env("HTTPS_PROXY", "socks5://user:pw@proxy.test:1080");
    let out = with_hosts(&ws, bad.args(args));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTPS_PROXY=socks5://") && err.contains("only http:// and https://"), "{err}");
    assert!(!err.contains(":pw@"), "{err}");
    // Excluded by NO_PROXY it is refused all the same; a loopback registry never needs it.
    let mut excluded = wso2img(&ws);
    excluded.env("NO_PROXY", NAME).env("HTTPS_PROXY", "socks5://proxy.test:1080");
    let out = with_hosts(&ws, excluded.args(args));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let loopback = format!("docker://{}/wso2/wso2am:4.3.0", reg.host());
    let mut direct = wso2img(&ws);
    direct.env_remove("NO_PROXY").env("HTTPS_PROXY", "socks5://proxy.test:1080");
    checked(&["inspect"], run_limited(direct.args(["inspect", &loopback]), COMMAND_LIMIT));
}
