//! The test bases start the way WSO2's official images start: per version
//! and kind the entrypoint's steps in upstream's order, `profileSetup.sh`'s
//! edits, the config mapper's rewrites, the home modes and the root-owned
//! `~/wso2-tmp`, and the SIGTERM trap of 4.7 — read back with `docker run
//! --network none --pull never` after the entrypoint ran. These images are
//! the model wso2img's own images are checked against (see the tests at the
//! end, which build on them).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use wso2img::wso2::sample::{SampleBase, SampleOs};
use wso2img::wso2::{startup, ProductKind};

use super::support::*;

const USER_HOME: &str = "/home/wso2carbon";
const MARK: &str = "@@wso2img@@";
const RANDOM_UID: &str = "1000700001:0";

/// A base loaded into the Docker daemon (removed when dropped).
struct Loaded {
    image: String,
    /// The product home.
    home: String,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.image]).output();
    }
}

/// The image name for `name` in this workspace (tests run in parallel).
fn image_name(ws: &Workspace, name: &str) -> String {
    let id = ws.path().file_name().unwrap().to_string_lossy().replace("wso2img-test-", "");
    format!("localhost/wso2img-test/startup:{name}-{id}")
}

/// Loads `base` (made runnable, first platform) as [`image_name`].
fn load(ws: &Workspace, name: &str, mut base: SampleBase) -> Loaded {
    base.busybox = busybox();
    base.platforms.truncate(1);
    let image = image_name(ws, name);
    let tar = ws.join(&format!("{name}.tar"));
    base.write_docker_archive(&tar, &image).unwrap();
    docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    Loaded { image, home: format!("{USER_HOME}/{}", base.server_folder()) }
}

/// What a start left behind: the entrypoint's exit status and output, and
/// what `after` printed.
struct Started {
    code: i32,
    output: String,
    after: String,
}

impl Started {
    /// The files `read` listed, by path; `None` for a missing one.
    fn files(&self) -> BTreeMap<String, Option<String>> {
        let mut files = BTreeMap::new();
        let mut current: Option<(String, String)> = None;
        for line in self.after.split_inclusive('\n') {
            match line.strip_prefix(MARK).map(str::trim_end) {
                Some(rest) => {
                    let done = current.take();
                    match rest.strip_prefix(' ') {
                        Some(path) => {
                            if let Some((p, text)) = done {
                                files.insert(p, Some(text));
                            }
                            current = Some((path.to_string(), String::new()));
                        }
                        // A bare marker: the file before it is missing.
                        None => {
                            if let Some((p, _)) = done {
                                files.insert(p, None);
                            }
                        }
                    }
                }
                None => {
                    if let Some((_, text)) = current.as_mut() {
                        text.push_str(line);
                    }
                }
            }
        }
        if let Some((path, text)) = current {
            files.insert(path, Some(text));
        }
        files
    }

    /// The text of file `path` after the start (`None`: missing).
    fn file(&self, path: &str) -> Option<String> {
        self.files().get(path).cloned().unwrap_or_else(|| panic!("{path} was not read"))
    }
}

/// Shell that prints each of `paths` after a marker line (and a marker for a missing one).
fn read(paths: &[String]) -> String {
    paths.iter().map(|p| format!("echo '{MARK} {p}'; cat '{p}' 2>/dev/null || echo '{MARK}'; ")).collect()
}

/// Runs, in one container of `image` with the extra `docker run` options
/// `opts`: the shell `before`, the image's entrypoint with `args`, then the
/// shell `after`.
fn start(image: &Loaded, opts: &[&str], before: &str, args: &str, after: &str) -> Started {
    let script = format!("{before}\n{USER_HOME}/docker-entrypoint.sh {args} 2>&1; echo \"{MARK}exit $?\"\n{after}");
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", "none", "--pull", "never"])
        .args(opts)
        .args(["--entrypoint", "/bin/sh", &image.image, "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Some((output, rest)) = stdout.split_once(&format!("{MARK}exit ")) else {
        return Started {
            code: out.status.code().unwrap_or(-1),
            output: format!("{stdout}{stderr}"),
            after: String::new(),
        };
    };
    let (code, after) = rest.split_once('\n').unwrap_or((rest, ""));
    Started { code: code.trim().parse().unwrap(), output: format!("{output}{stderr}"), after: after.to_string() }
}

fn runnable() -> bool {
    docker() && busybox().is_some()
}

fn official(kind: ProductKind, version: &str) -> SampleBase {
    SampleBase::official(kind, version)
}

/// Every version 4.1–4.7 and every kind: the entrypoint runs the kind's
/// launcher, which writes the pid file, renders every template to its
/// target (keeping the old outputs in `backup/`), writes `.metadata/`, logs
/// and `tmp/`; with no `PROFILE_NAME` nothing runs profileSetup.
#[test]
fn every_version_and_kind_starts_and_renders_its_templates() {
    if !runnable() {
        return;
    }
    let ws = Workspace::new();
    let mut cases: Vec<(ProductKind, &str)> =
        ["4.1.0", "4.2.0", "4.3.0", "4.4.0"].into_iter().map(|v| (ProductKind::AllInOne, v)).collect();
    for v in ["4.5.0", "4.6.0", "4.7.0"] {
        cases.extend(ProductKind::ALL.iter().map(|k| (*k, v)));
    }
    for (kind, version) in cases {
        let name = format!("{}-{version}", kind.name());
        let b = load(&ws, &name, official(kind, version));
        let targets = startup::known_targets(kind, Some(version));
        let h = &b.home;
        let mut paths: Vec<String> = targets.iter().map(|t| format!("{h}/{t}")).collect();
        paths.extend(
            [
                "wso2carbon.pid",
                "backup/repository/conf/carbon.xml",
                "repository/resources/conf/.metadata/metadata_template.properties",
                "repository/logs/wso2carbon.log",
                "tmp/carbon.started",
                "repository/conf/deployment.toml",
                "repository/conf/deployment.toml.backup",
                "repository/components/default/configuration/org.eclipse.equinox.simpleconfigurator/bundles.info",
            ]
            .map(|p| format!("{h}/{p}")),
        );
        let s = start(&b, &[], "", "", &read(&paths));
        assert_eq!(s.code, 0, "{name}: {}", s.output);
        assert!(s.output.contains(&format!("(sample) {} with:", kind.launcher())), "{name}: {}", s.output);
        assert!(!s.output.contains("profileSetup"), "{name}: no PROFILE_NAME, no profileSetup: {}", s.output);
        for t in &targets {
            assert_eq!(
                s.file(&format!("{h}/{t}")).as_deref(),
                Some(format!("rendered from {t}.j2\n").as_str()),
                "{name}"
            );
        }
        assert_eq!(
            s.file(&format!("{h}/backup/repository/conf/carbon.xml")).as_deref(),
            Some("shipped repository/conf/carbon.xml\n"),
            "{name}: backup/ holds the outputs from before the start"
        );
        assert!(s.file(&format!("{h}/wso2carbon.pid")).is_some(), "{name}");
        assert!(s.file(&format!("{h}/tmp/carbon.started")).is_some(), "{name}");
        let metadata =
            s.file(&format!("{h}/repository/resources/conf/.metadata/metadata_template.properties")).unwrap();
        assert_eq!(metadata.lines().count(), targets.len(), "{name}: {metadata}");
        assert!(s.file(&format!("{h}/repository/logs/wso2carbon.log")).unwrap().contains("WSO2 Carbon started"));
        assert!(s.file(&format!("{h}/repository/conf/deployment.toml")).unwrap().contains("server_role = \"default\""));
        assert_eq!(s.file(&format!("{h}/repository/conf/deployment.toml.backup")), None, "{name}");
        assert!(s
            .file(&format!(
                "{h}/repository/components/default/configuration/org.eclipse.equinox.simpleconfigurator/bundles.info"
            ))
            .unwrap()
            .contains("started with profile default"));
    }
}

const CUSTOMER_TOML: &str = "[server]\nhostname = \"gw.acme.example\"\n";

/// Shell writing the customer's `deployment.toml` to `path`.
fn write_customer_toml(path: &str) -> String {
    format!("mkdir -p \"$(dirname '{path}')\" && printf '%s' '{CUSTOMER_TOML}' > '{path}'")
}

/// 4.4, `PROFILE_NAME=gateway-worker`: a `deployment.toml` laid at
/// `repository/conf/` (where a plain overlay puts it) is renamed to `.backup`
/// and the profile's template read instead; the carbon web.xml template is
/// swapped, the endpoint web.xml templates and every webapp but the
/// gateway's are deleted; the WebSocket endpoints stay.
#[test]
fn a_profile_replaces_the_deployment_toml_laid_in_the_product() {
    if !runnable() {
        return;
    }
    let ws = Workspace::new();
    let b = load(&ws, "aio44", official(ProductKind::AllInOne, "4.4.0"));
    let h = &b.home;
    let templates = format!("{h}/repository/resources/conf/templates");
    let paths: Vec<String> = [
        "repository/conf/deployment.toml",
        "repository/conf/deployment.toml.backup",
        "repository/conf/tomcat/carbon/WEB-INF/web.xml",
        "repository/resources/conf/templates/repository/conf/tomcat/carbon/WEB-INF/web.xml.j2.backup",
        "repository/resources/conf/templates/repository/deployment/server/webapps/authenticationendpoint/WEB-INF/web.xml.j2",
        "repository/deployment/server/webapps/devportal/site/public/index.html",
        "repository/deployment/server/webapps/internal#data#v1.war",
        "repository/deployment/server/webapps/api#am#gateway#v2.war",
        "repository/deployment/server/webapps/am#sample#pizzashack#v1.0.0.war",
        "repository/deployment/server/synapse-configs/default/inbound-endpoints/WebSocketInboundEndpoint.xml",
        "repository/deployment/server/synapse-configs/default/api/_TokenAPI_.xml",
    ]
    .iter()
    .map(|p| format!("{h}/{p}"))
    .collect();
    let s = start(
        &b,
        &["-e", "PROFILE_NAME=gateway-worker"],
        &write_customer_toml(&format!("{h}/repository/conf/deployment.toml")),
        "",
        &read(&paths),
    );
    assert_eq!(s.code, 0, "{}", s.output);
    assert!(s.output.contains("profileSetup.sh with: -Dprofile=gateway-worker"), "{}", s.output);
    assert!(s.output.contains("api-manager.sh with: -Dprofile=gateway-worker"), "{}", s.output);
    assert!(s.output.contains("Finished the optimizations"), "{}", s.output);
    let toml = s.file(&paths[0]).unwrap();
    assert!(
        toml.contains("#hostname = \"gw.wso2.com\"") && toml.contains("server_role = \"gateway-worker\""),
        "{toml}"
    );
    assert!(!toml.contains("gw.acme.example"), "the customer's file is gone: {toml}");
    assert_eq!(s.file(&paths[1]).as_deref(), Some(CUSTOMER_TOML), "renamed to deployment.toml.backup");
    assert_eq!(
        s.file(&paths[2]).as_deref(),
        Some("rendered from repository/conf/tomcat/carbon/WEB-INF/web_TM_GW.xml.j2\n"),
        "the swapped template is rendered"
    );
    assert_eq!(
        s.file(&paths[3]).as_deref(),
        Some("rendered from repository/conf/tomcat/carbon/WEB-INF/web.xml.j2\n"),
        "{templates}"
    );
    assert_eq!(s.file(&paths[4]), None, "endpoint web.xml template removed");
    assert_eq!((s.file(&paths[5]), s.file(&paths[6])), (None, None), "portals and other webapps deleted");
    assert!(s.file(&paths[7]).is_some() && s.file(&paths[8]).is_some(), "the gateway's webapps kept");
    assert!(s.file(&paths[9]).is_some() && s.file(&paths[10]).is_some(), "gateway-worker keeps its Synapse configs");
}

/// Where a `deployment.toml` survives a profile: in the profile's template
/// slot (`deployment-templates/<profile>.toml`, which profileSetup copies
/// in) and in `~/wso2-config-volume` (copied after profileSetup) — for the
/// 4.4 gateway worker, the 4.1 devportal, and the 4.7 control plane's key
/// manager (which keeps its Synapse configs and starts `key-manager.sh`
/// without `-Dprofile`).
#[test]
fn a_deployment_toml_survives_a_profile_in_its_template_slot_or_the_config_volume() {
    if !runnable() {
        return;
    }
    let ws = Workspace::new();
    let cases = [
        ("aio44", ProductKind::AllInOne, "4.4.0", "gateway-worker"),
        ("aio41", ProductKind::AllInOne, "4.1.0", "api-devportal-deprecated"),
        ("acp47", ProductKind::ControlPlane, "4.7.0", "key-manager"),
    ];
    for (name, kind, version, profile) in cases {
        let b = load(&ws, name, official(kind, version));
        let h = &b.home;
        let effective = format!("{h}/repository/conf/deployment.toml");
        for place in [
            format!("{h}/repository/resources/conf/deployment-templates/{profile}.toml"),
            format!("{USER_HOME}/wso2-config-volume/repository/conf/deployment.toml"),
        ] {
            let s = start(
                &b,
                &["-e", &format!("PROFILE_NAME={profile}")],
                &write_customer_toml(&place),
                "",
                &read(std::slice::from_ref(&effective)),
            );
            assert_eq!(s.code, 0, "{name} {place}: {}", s.output);
            assert!(s.output.contains(&format!("profileSetup.sh with: -Dprofile={profile}")), "{name}: {}", s.output);
            assert_eq!(s.file(&effective).as_deref(), Some(CUSTOMER_TOML), "{name}: {place}");
        }
    }
    // What the profiles did besides.
    let b = load(&ws, "acp47-km", official(ProductKind::ControlPlane, "4.7.0"));
    let h = &b.home;
    let paths: Vec<String> = [
        "repository/conf/axis2/axis2.xml",
        "repository/conf/axis2/axis2_blocking_client.xml",
        "repository/deployment/server/webapps/devportal/site/public/index.html",
        "repository/deployment/server/webapps/keymanager-operations.war",
        "repository/deployment/server/synapse-configs/default/synapse.xml",
    ]
    .iter()
    .map(|p| format!("{h}/{p}"))
    .collect();
    let s = start(&b, &["-e", "PROFILE_NAME=key-manager"], "", "", &read(&paths));
    assert_eq!(s.code, 0, "{}", s.output);
    assert!(s.output.contains("key-manager.sh with:  PROFILE_NAME=key-manager"), "no -Dprofile: {}", s.output);
    assert_eq!(s.file(&paths[0]).as_deref(), Some("rendered from repository/conf/axis2/axis2_KM.xml.j2\n"));
    assert_eq!(s.file(&paths[1]), None);
    assert_eq!(s.file(&paths[2]), None);
    assert!(s.file(&paths[3]).is_some() && s.file(&paths[4]).is_some());
    let b = load(&ws, "aio41-dev", official(ProductKind::AllInOne, "4.1.0"));
    let h = &b.home;
    let apps = ["devportal", "publisher", "admin"]
        .map(|p| format!("{h}/repository/deployment/server/jaggeryapps/{p}/site/public/index.html"));
    let s = start(&b, &["-e", "PROFILE_NAME=api-devportal-deprecated"], "", "", &read(&apps));
    assert_eq!(s.code, 0, "{}", s.output);
    assert!(s.file(&apps[0]).is_some() && s.file(&apps[1]).is_none() && s.file(&apps[2]).is_none(), "{}", s.after);
}

/// Names upstream does not know: `default` on 4.4 is answered "Profile is
/// not specified properly" and starts the default OSGi profile; 4.4's
/// `api-key-manager-node` has no OSGi profile (the server hangs upstream; the
/// test base fails); the 4.5+ all-in-one ignores `PROFILE_NAME`, the control
/// plane acts on `key-manager` only.
#[test]
fn profile_names_upstream_does_not_know() {
    if !runnable() {
        return;
    }
    let ws = Workspace::new();
    let b = load(&ws, "aio44", official(ProductKind::AllInOne, "4.4.0"));
    let toml = vec![format!("{}/repository/conf/deployment.toml", b.home)];
    let s = start(&b, &["-e", "PROFILE_NAME=default"], "", "", &read(&toml));
    assert_eq!(s.code, 0, "{}", s.output);
    assert!(s.output.contains("Profile is not specified properly, please try again"), "{}", s.output);
    assert!(s.output.contains("api-manager.sh with: -Dprofile=default") && s.output.contains("profile default)"));
    assert!(s.file(&toml[0]).unwrap().contains("server_role = \"default\""));
    let s = start(&b, &["-e", "PROFILE_NAME=api-key-manager-node"], "", "", &read(&toml));
    assert_ne!(s.code, 0, "{}", s.output);
    assert!(s.output.contains("No OSGi profile repository/components/api-key-manager-node"), "{}", s.output);
    assert!(s.file(&toml[0]).unwrap().contains("#hostname = \"km.wso2.com\""), "profileSetup ran before");
    for (name, kind, launcher) in
        [("aio45", ProductKind::AllInOne, "api-manager.sh"), ("acp46", ProductKind::ControlPlane, "api-cp.sh")]
    {
        let version = if kind == ProductKind::AllInOne { "4.5.0" } else { "4.6.0" };
        let b = load(&ws, name, official(kind, version));
        let toml = vec![format!("{}/repository/conf/deployment.toml", b.home)];
        for profile in ["gateway-worker", "default"] {
            let s = start(&b, &["-e", &format!("PROFILE_NAME={profile}")], "", "", &read(&toml));
            assert_eq!(s.code, 0, "{name}: {}", s.output);
            assert!(!s.output.contains("profileSetup"), "{name}: {}", s.output);
            assert!(s.output.contains(&format!("{launcher} with:  PROFILE_NAME={profile}")), "{name}: {}", s.output);
            assert!(s.file(&toml[0]).unwrap().contains("server_role = \"default\""), "{name}");
        }
    }
}

/// The user home keeps the mode `useradd` gave it (0750 on Ubuntu, 0700 on
/// Rocky); `~/wso2-tmp` is root's; an emptied deployment folder is restored
/// from it first of all, the copies owned by the running user.
#[test]
fn home_modes_root_owned_wso2_tmp_and_the_restore_step() {
    if !runnable() {
        return;
    }
    let ws = Workspace::new();
    for (name, kind, version, os, mode, restored) in [
        ("gw45", ProductKind::Gateway, "4.5.0", SampleOs::Ubuntu, "750", &["synapse-configs"][..]),
        ("aio43", ProductKind::AllInOne, "4.3.0", SampleOs::Rocky, "700", &["synapse-configs", "executionplans"][..]),
        ("tm47", ProductKind::TrafficManager, "4.7.0", SampleOs::Ubuntu, "750", &["executionplans"][..]),
    ] {
        let mut base = official(kind, version);
        base.os = os;
        let b = load(&ws, name, base);
        let server = format!("{}/repository/deployment/server", b.home);
        let empty: String = restored.iter().map(|d| format!("rm -rf {server}/{d}/*; ")).collect();
        let stat: Vec<String> = restored
            .iter()
            .flat_map(|d| {
                let first =
                    if *d == "synapse-configs" { "default/synapse.xml" } else { "sample-throttle-policy.siddhiql" };
                [format!("{USER_HOME}/wso2-tmp/{d}/{first}"), format!("{server}/{d}/{first}")]
            })
            .collect();
        let after = format!("stat -c '%a %u:%g %n' {USER_HOME} {USER_HOME}/wso2-tmp {}", stat.join(" "));
        let s = start(&b, &[], &empty, "", &after);
        assert_eq!(s.code, 0, "{name}: {}", s.output);
        for d in restored {
            assert!(
                s.output.contains(&format!(
                    "Successfully copied the preserved, default artifacts to original location ({d})"
                )),
                "{name}: {}",
                s.output
            );
        }
        let lines: Vec<&str> = s.after.lines().collect();
        assert!(lines[0].starts_with(&format!("{mode} 10001:10001 ")), "{name}: {}", s.after);
        assert!(lines[1].starts_with("755 0:0 "), "{name}: {}", s.after);
        for pair in lines[2..].chunks(2) {
            assert!(pair[0].starts_with("644 0:0 ") && pair[1].starts_with("644 10001:10001 "), "{name}: {}", s.after);
        }
        // The restore comes first: an emptied folder is back before profileSetup or the launcher ran.
        let restore_at = s.output.find("Successfully copied").unwrap();
        assert!(restore_at < s.output.find("Start WSO2 Carbon server").unwrap(), "{}", s.output);
    }
}

/// Under an OpenShift-style UID with group 0 the start fails where the
/// product cannot write: the official base as is (its home not even
/// reachable), and a base whose folders but not files are group 0 writable
/// (the config mapper cannot rewrite its targets); WSO2's documented
/// `chgrp -R 0 && chmod -R g=u` on the home starts.
#[test]
fn under_an_arbitrary_uid_the_start_fails_where_files_are_not_group_writable() {
    if !runnable() {
        return;
    }
    let ws = Workspace::new();
    let b = load(&ws, "aio44", official(ProductKind::AllInOne, "4.4.0"));
    let s = start(&b, &["--user", RANDOM_UID], "", "", "");
    assert_ne!(s.code, 0, "the official base cannot start as a random UID: {}", s.output);
    let derived = |name: &str, fix: &str| {
        std::fs::write(
            ws.join("Dockerfile"),
            format!("FROM {}\nUSER 0\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"{fix}\"]\nUSER 10001\n", b.image),
        )
        .unwrap();
        let image = image_name(&ws, name);
        let built = Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--network", "none", "--pull=false", "-q", "-t", &image])
            .arg(ws.join(""))
            .output()
            .unwrap();
        assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
        Loaded { image, home: b.home.clone() }
    };
    let dirs_only = derived(
        "aio44-dirs",
        "/bin/busybox chgrp -R 0 /home/wso2carbon && /bin/busybox find /home/wso2carbon -type d -exec /bin/busybox chmod g=u {} +",
    );
    let s = start(&dirs_only, &["--user", RANDOM_UID], "", "", "");
    assert_ne!(s.code, 0, "{}", s.output);
    assert!(
        s.output.contains("Error while performing configuration changes (rendering the templates)"),
        "{}",
        s.output
    );
    let documented = derived(
        "aio44-chgrp",
        "/bin/busybox chgrp -R 0 /home/wso2carbon && /bin/busybox chmod -R g=u /home/wso2carbon",
    );
    let carbon = vec![format!("{}/repository/conf/carbon.xml", b.home)];
    let s = start(&documented, &["--user", RANDOM_UID, "-e", "PROFILE_NAME=gateway-worker"], "", "", &read(&carbon));
    assert_eq!(s.code, 0, "{}", s.output);
    assert_eq!(s.file(&carbon[0]).as_deref(), Some("rendered from repository/conf/carbon.xml.j2\n"));
}

/// 4.7's entrypoint traps SIGTERM and stops the server with `<launcher>
/// stop`: `docker stop` ends it at once with status 0. 4.6's leaves the
/// shell as PID 1 without a handler: `docker stop` waits for its timeout and
/// kills.
#[test]
fn docker_stop_ends_4_7_gracefully_and_4_6_by_timeout() {
    if !runnable() {
        return;
    }
    let ws = Workspace::new();
    for (name, version, graceful) in [("gw47", "4.7.0", true), ("gw46", "4.6.0", false)] {
        let b = load(&ws, name, official(ProductKind::Gateway, version));
        let id = docker_ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--pull",
            "never",
            "-e",
            "WSO2IMG_SAMPLE_RUN_SECONDS=300",
            &b.image,
        ]);
        let id = id.trim();
        let waited = Instant::now();
        while !docker_ok(&["logs", id]).contains("WSO2 Carbon started") {
            assert!(waited.elapsed() < Duration::from_secs(30), "{name} did not start: {}", docker_ok(&["logs", id]));
            std::thread::sleep(Duration::from_millis(200));
        }
        let stopping = Instant::now();
        docker_ok(&["stop", "-t", "4", id]);
        let took = stopping.elapsed();
        let code = docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", id]);
        let logs =
            String::from_utf8_lossy(&Command::new("docker").args(["logs", id]).output().unwrap().stdout).into_owned();
        let _ = Command::new("docker").args(["rm", "-f", id]).output();
        if graceful {
            // 0 from the handler's `exit 0`, or 143 when its `wait` still saw the launcher end under `set -e`.
            assert!(["0", "143"].contains(&code.trim()), "{name}: {code} {logs}");
            assert!(logs.contains("Stopping WSO2 gracefully..."), "{name}: {logs}");
            assert!(took < Duration::from_secs(4), "{name}: {took:?}");
        } else {
            assert_eq!(code.trim(), "137", "{name}: killed after the timeout");
            assert!(took >= Duration::from_secs(4), "{name}: {took:?}");
        }
    }
}

// wso2img's own images on these bases: what the pipeline's handling of
// profiles, OpenShift and modes must give (the defects these catch are
// listed in the `ignore` reasons until the pipeline is fixed).

/// Builds `config` into a docker archive and loads it: the images by
/// variant name (`""` for the main one).
fn build_and_load(ws: &Workspace, config: &str) -> BTreeMap<String, Loaded> {
    ws.config(config);
    let r = json(&ws.run_ok(&["build", "--json", "--to", "docker-archive:img.tar"]));
    docker_ok(&["load", "-i", ws.join("img.tar").to_str().unwrap()]);
    let loaded = |r: &serde_json::Value| Loaded {
        image: format!("localhost/wso2img-test/startup-built:{}", r["tag"].as_str().unwrap()),
        home: r["platforms"][0]["detected"]["product_home"].as_str().unwrap().to_string(),
    };
    let mut images = BTreeMap::from([(String::new(), loaded(&r))]);
    for v in r["variants"].as_array().into_iter().flatten() {
        images.insert(v["name"].as_str().unwrap().to_string(), loaded(v));
    }
    images
}

/// A workspace with `base` (runnable, one platform) at `oci:base:t`.
fn workspace_on(base: SampleBase) -> Workspace {
    let ws = Workspace::new();
    let mut base = base;
    base.busybox = busybox();
    base.platforms.truncate(1);
    base.write_oci(&ws.join("base"), "t").unwrap();
    ws
}

const BUILT: &str = "[target]\nrepository = \"localhost/wso2img-test/startup-built\"\ntag = \"{digest12}\"\n";

#[test]
fn a_profile_variant_starts_with_the_customers_deployment_toml() {
    if !runnable() {
        return;
    }
    for (kind, version, profile) in [
        (ProductKind::AllInOne, "4.1.0", "gateway-worker"),
        (ProductKind::AllInOne, "4.4.0", "gateway-worker"),
        (ProductKind::ControlPlane, "4.5.0", "key-manager"),
        (ProductKind::ControlPlane, "4.7.0", "key-manager"),
    ] {
        for arbitrary in [false, true] {
            let ws = workspace_on(official(kind, version));
            ws.write("overlays/repository/conf/deployment.toml", CUSTOMER_TOML.as_bytes());
            ws.write("variants/p/overlays/repository/conf/p.txt", b"p\n");
            let images = build_and_load(
                &ws,
                &format!(
                    "[base]\nimage = \"oci:base:t\"\n[image]\narbitrary_uid = {arbitrary}\n{BUILT}\
                     [[variant]]\nname = \"p\"\nprofile = \"{profile}\"\noverlays = \"variants/p/overlays\"\n"
                ),
            );
            let v = &images["p"];
            let opts: &[&str] = if arbitrary { &["--user", RANDOM_UID] } else { &[] };
            let toml = vec![format!("{}/repository/conf/deployment.toml", v.home)];
            let s = start(v, opts, "", "", &read(&toml));
            let case = format!("{version} {profile} arbitrary_uid={arbitrary}");
            assert_eq!(s.code, 0, "{case}: {}", s.output);
            assert!(s.output.contains(&format!("profileSetup.sh with: -Dprofile={profile}")), "{case}: {}", s.output);
            assert_eq!(s.file(&toml[0]).as_deref(), Some(CUSTOMER_TOML), "{case}");
        }
    }
}

/// Every path the start writes (the config mapper's targets among them) is
/// group 0 writable in an `arbitrary_uid` image, and the home reachable.
#[test]
fn arbitrary_uid_images_start_under_a_random_uid() {
    if !runnable() {
        return;
    }
    for (kind, version, os) in [
        (ProductKind::AllInOne, "4.1.0", SampleOs::Ubuntu),
        (ProductKind::AllInOne, "4.4.0", SampleOs::Rocky),
        (ProductKind::ControlPlane, "4.5.0", SampleOs::Ubuntu),
        (ProductKind::Gateway, "4.7.0", SampleOs::Ubuntu),
    ] {
        let mut base = official(kind, version);
        base.os = os;
        let ws = workspace_on(base);
        ws.write("jars/acme-driver-1.0.jar", &real_jar("com.acme", "acme-driver", "1.0"));
        ws.write("overlays/repository/conf/deployment.toml", CUSTOMER_TOML.as_bytes());
        let images =
            build_and_load(&ws, &format!("[base]\nimage = \"oci:base:t\"\n[image]\narbitrary_uid = true\n{BUILT}"));
        let main = &images[""];
        let targets: Vec<String> =
            startup::known_targets(kind, Some(version)).iter().map(|t| format!("{}/{t}", main.home)).collect();
        let s = start(main, &["--user", RANDOM_UID], "", "", &read(&targets));
        let case = format!("{} {version} {os:?}", kind.name());
        assert_eq!(s.code, 0, "{case}: {}", s.output);
        for t in &targets {
            assert!(s.file(t).unwrap().starts_with("rendered from "), "{case}: {t}");
        }
    }
}

#[test]
fn the_user_home_keeps_its_mode() {
    if !runnable() {
        return;
    }
    for (os, mode) in [(SampleOs::Ubuntu, "750"), (SampleOs::Rocky, "700")] {
        let mut base = official(ProductKind::AllInOne, "4.4.0");
        base.os = os;
        let ws = workspace_on(base);
        ws.write("jars/acme-driver-1.0.jar", &real_jar("com.acme", "acme-driver", "1.0"));
        ws.write("overlays/repository/conf/deployment.toml", CUSTOMER_TOML.as_bytes());
        let images = build_and_load(&ws, &format!("[base]\nimage = \"oci:base:t\"\n{BUILT}"));
        let s = start(&images[""], &[], "", "", &format!("stat -c '%a' {USER_HOME}"));
        assert_eq!(s.code, 0, "{}", s.output);
        assert_eq!(s.after.trim(), mode, "{os:?}");
    }
}
