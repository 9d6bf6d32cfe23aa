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
