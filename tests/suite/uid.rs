//! Any UID (issue 9): owners beyond the ustar octal range, such as OpenShift's
//! 1000650000, are written as PAX records that every reader honours.

use std::fs;
use std::io::Read;
use std::process::Command;

use super::support::*;

/// `(path, uid, gid)` of every entry of a gzipped layer blob, PAX records applied.
fn layer_owners(blob: &[u8]) -> Vec<(String, u64, u64)> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(blob).read_to_end(&mut tar).unwrap();
    let mut ar = tar::Archive::new(&tar[..]);
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let (mut uid, mut gid) = (e.header().uid().unwrap(), e.header().gid().unwrap());
            if let Some(pax) = e.pax_extensions().unwrap() {
                for r in pax {
                    let r = r.unwrap();
                    match r.key().unwrap() {
                        "uid" => uid = r.value().unwrap().parse().unwrap(),
                        "gid" => gid = r.value().unwrap().parse().unwrap(),
                        _ => {}
                    }
                }
            }
            (e.path().unwrap().to_string_lossy().into_owned(), uid, gid)
        })
        .collect()
}

#[test]
fn an_openshift_uid_owns_the_customer_files() {
    let ws = Workspace::new();
    ws.write("jars/acme-driver-1.0.jar", &real_jar("com.acme", "acme-driver", "1.0"));
    ws.write("overlays/repository/conf/deployment.toml", b"[server]\nhostname = \"acme\"\n");
    let runnable = docker() && busybox().is_some();
    sample_430(runnable, &[]).write_oci(&ws.join("base"), "4.3.0").unwrap();
    ws.config(
        "[base]\nimage = \"oci:base:4.3.0\"\n[layers]\nowner = \"1000650000:0\"\n\
         [target]\nrepository = \"localhost/wso2img-test/uid\"\n",
    );
    let r = json(&ws.run_ok(&["build", "--json", "--to", "oci:out", "--to", "docker-archive:img.tar"]));
    assert_eq!(r["platforms"][0]["detected"]["owner"]["uid"], 1_000_650_000u64);
    let home = "home/wso2carbon/wso2am-4.3.0";
    let mut seen = 0;
    for l in r["layers"].as_array().unwrap() {
        let hex = l["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap();
        for (path, uid, gid) in layer_owners(&fs::read(ws.join("out/blobs/sha256").join(hex)).unwrap()) {
            if path.starts_with(home) && path.len() > home.len() + 1 {
                assert_eq!((uid, gid), (1_000_650_000, 0), "{path}");
                seen += 1;
            }
        }
    }
    assert!(seen >= 2, "customer files found in the layers");
    if runnable {
        docker_ok(&["load", "-i", ws.join("img.tar").to_str().unwrap()]);
        let image = format!("localhost/wso2img-test/uid:{}", r["tag"].as_str().unwrap());
        let out = docker_ok(&[
            "run", "--rm", "--network", "none", "--pull", "never", "--entrypoint", "/bin/sh", &image, "-c",
            &format!("stat -c '%u:%g' /{home}/repository/components/lib/acme-driver-1.0.jar /{home}/repository/conf/deployment.toml"),
        ]);
        assert_eq!(out, "1000650000:0\n1000650000:0\n");
        let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    }
}

#[test]
fn an_owner_out_of_range_is_one_line_and_writes_nothing() {
    let ws = Workspace::new();
    ws.write("jars/acme-driver-1.0.jar", &real_jar("com.acme", "acme-driver", "1.0"));
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n[layers]\nowner = \"4294967295:0\"\n");
    let out = ws.run(&["build", "--to", "oci:out"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().filter(|l| !l.is_empty()).count(), 1, "{err}");
    assert!(err.contains("4294967294") && err.contains("wso2img.toml"), "{err}");
    assert!(!ws.join("out").exists());
}

/// Runs `script` in `image` as the OpenShift-style user 1000650000:0; returns (success, output).
fn run_as_arbitrary_uid(image: &str, script: &str) -> (bool, String) {
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", "none", "--pull", "never", "--user", "1000650000:0"])
        .args(["--entrypoint", "/bin/sh", image, "-c", script])
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn arbitrary_uid_images_let_group_0_write_every_runtime_folder() {
    use wso2img::wso2::sample::SampleBase;
    use wso2img::wso2::ProductKind;
    if !(docker() && busybox().is_some()) {
        return;
    }
    for (name, kind, version) in [("aio43", ProductKind::AllInOne, "4.3.0"), ("gw45", ProductKind::Gateway, "4.5.0")] {
        let ws = Workspace::new();
        ws.write("jars/acme-driver-1.0.jar", &real_jar("com.acme", "acme-driver", "1.0"));
        ws.write("overlays/repository/conf/deployment.toml", b"[server]\nhostname = \"acme\"\n");
        let mut base = SampleBase::official(kind, version);
        base.busybox = busybox();
        base.platforms.truncate(1);
        base.write_oci(&ws.join("base"), "t").unwrap();
        let base_tag = format!("localhost/wso2img-test/openshift-base:{name}");
        base.write_docker_archive(&ws.join("base.tar"), &base_tag).unwrap();
        docker_ok(&["load", "-i", ws.join("base.tar").to_str().unwrap()]);
        ws.config(
            "[base]\nimage = \"oci:base:t\"\n[image]\narbitrary_uid = true\n\
             [target]\nrepository = \"localhost/wso2img-test/openshift\"\n",
        );
        let r = json(&ws.run_ok(&["build", "--json", "--to", "docker-archive:img.tar"]));
        assert_eq!(r["platforms"][0]["detected"]["owner"]["gid"], 0);
        docker_ok(&["load", "-i", ws.join("img.tar").to_str().unwrap()]);
        let image = format!("localhost/wso2img-test/openshift:{}", r["tag"].as_str().unwrap());
        let home = format!("/home/wso2carbon/{}", base.server_folder());
        let dirs: Vec<String> = [
            "",
            "/repository/conf",
            "/repository/database",
            "/repository/deployment/server",
            "/repository/deployment/server/synapse-configs",
            "/repository/logs",
            "/repository/resources/conf",
            "/repository/components/default/configuration",
            "/tmp",
        ]
        .iter()
        .map(|d| format!("{home}{d}"))
        .chain(["/home/wso2carbon/solr/indexed-data".to_string(), "/home/wso2carbon/solr/database".to_string()])
        .collect();
        let script = format!(
            "for d in {}; do touch \"$d/.written-by-1000650000\" || exit 1; done; \
             echo '<Server regenerated=\"1\"/>' > {home}/repository/conf/carbon.xml || exit 1; \
             grep -q acme {home}/repository/conf/deployment.toml || exit 1; \
             stat -c '%a %u:%g' {home}/repository/components/lib/acme-driver-1.0.jar {home}/repository/conf/deployment.toml {home}/repository/conf/carbon.xml",
            dirs.join(" ")
        );
        let (ok, out) = run_as_arbitrary_uid(&image, &script);
        assert!(ok, "{name}: {out}");
        // carbon.xml is the base's own file, which the config mapper rewrites at every start.
        assert_eq!(out, "664 10001:0\n664 10001:0\n664 10001:0\n", "{name}");
        let (ok, out) = run_as_arbitrary_uid(&base_tag, &script);
        assert!(!ok, "{name}: the unmodified base must refuse writes: {out}");

        // WSO2's documented OpenShift step on the same base, for comparison.
        fs::write(
            ws.join("Dockerfile"),
            format!(
                "FROM {base_tag}\nUSER 0\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox chgrp -R 0 /home/wso2carbon && /bin/busybox chmod -R g=u /home/wso2carbon\"]\nUSER 10001\n"
            ),
        )
        .unwrap();
        let chgrp_tag = format!("localhost/wso2img-test/openshift-chgrp:{name}");
        let built = Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--network", "none", "--pull=false", "-q", "-t", &chgrp_tag])
            .arg(ws.join(""))
            .output()
            .unwrap();
        assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
        let sizes = docker_ok(&["history", "--no-trunc", "--format", "{{.Size}}", &chgrp_tag]);
        let layer = r["layers"].as_array().unwrap().iter().find(|l| l["name"] == "arbitrary-uid").unwrap().clone();
        eprintln!(
            "layer sizes on the {name} sample base: wso2img arbitrary-uid layer {} tar bytes ({} gzipped, {}); chgrp -R 0 && chmod -R g=u layer {} (docker history)",
            layer["tar_size"],
            layer["size"],
            layer["description"].as_str().unwrap(),
            sizes.lines().nth(1).unwrap_or("?")
        );
        for i in [&image, &base_tag, &chgrp_tag] {
            let _ = Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}
