//! The docker-archive output in a real Docker Engine: it loads, its image ID
//! is the content digest, and `docker run` shows the customer files owned by
//! the runtime user.

use std::process::Command;

use super::support::*;

fn run_in(image: &str, script: &str) -> String {
    docker_ok(&["run", "--rm", "--network", "none", "--pull", "never", "--entrypoint", "/bin/sh", image, "-c", script])
}

fn load(path: &std::path::Path) {
    let out = docker_ok(&["load", "-i", path.to_str().unwrap()]);
    assert!(out.contains("Loaded image"), "{out}");
}

#[test]
fn archive_loads_and_runs_with_files_owned_by_the_runtime_user() {
    if !docker() || busybox().is_none() {
        return;
    }
    let ws = Workspace::new();
    ws.customization();
    sample_430(true, &[]).write_oci(&ws.join("base"), "4.3.0").unwrap();
    ws.config("[base]\nimage = \"oci:base:4.3.0\"\n[target]\nrepository = \"localhost/wso2img-test/apim\"\n");
    let r = json(&ws.run_ok(&["build", "--json", "--bake-keystores", "--to", "docker-archive:img.tar"]));
    load(&ws.join("img.tar"));
    let image = format!("localhost/wso2img-test/apim:{}", r["tag"].as_str().unwrap());
    let id = docker_ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(id.trim(), r["content_digest"].as_str().unwrap(), "image ID is the content digest");

    let home = "/home/wso2carbon/wso2am-4.3.0";
    let out = run_in(
        &image,
        &format!(
            "id -u; stat -c '%u:%g %a %n' {home}/repository/components/lib/acme-driver-1.0.jar \
             {home}/repository/deployment/server/webapps/devportal/site/public/theme/userTheme.json \
             {home}/bin/acme-start.sh {home}/repository/resources/security/wso2carbon.jks /home; \
             cat {home}/repository/conf/deployment.toml"
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "10001", "runs as the base's user: {out}");
    assert!(lines[1].starts_with("10001:10001 644 "), "{out}");
    assert!(lines[2].starts_with("10001:10001 644 "), "{out}");
    assert!(lines[3].starts_with("10001:10001 755 "), "{out}");
    assert!(lines[4].starts_with("10001:10001 640 "), "{out}");
    assert!(lines[5].starts_with("0:0 755 "), "{out}");
    assert!(out.contains("hostname = \"acme\""), "{out}");

    let started =
        docker_ok(&["run", "--rm", "--network", "none", "--pull", "never", &image, "-Dprofile=gateway-worker"]);
    assert!(started.contains("starting with: -Dprofile=gateway-worker"), "{started}");
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}

#[test]
fn docker_media_type_base_from_docker_save_runs_as_named_user() {
    if !docker() || busybox().is_none() {
        return;
    }
    let ws = Workspace::new();
    ws.customization();
    ws.theme_for_41();
    sample_410(true).write_docker_archive(&ws.join("base.tar"), "wso2img-test/wso2am:4.1.0").unwrap();
    ws.config("[base]\nimage = \"docker-archive:base.tar\"\n");
    let r = json(&ws.run_ok(&["build", "--json", "--to", "docker-archive:img.tar"]));
    load(&ws.join("img.tar"));
    let image = format!("localhost/wso2am:{}", r["tag"].as_str().unwrap());
    let id = docker_ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(id.trim(), r["content_digest"].as_str().unwrap());
    let home = "/home/wso2carbon/wso2am-4.1.0";
    let out = run_in(
        &image,
        &format!("id -un; stat -c '%u:%g %a' {home}/repository/deployment/server/jaggeryapps/devportal/site/public/theme/userTheme.js"),
    );
    assert_eq!(out, "wso2carbon\n802:802 644\n");
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}
