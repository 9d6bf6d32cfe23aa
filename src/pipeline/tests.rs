//! The stages called one by one on a project written to a temporary folder,
//! on the built-in sample base (offline).

use std::fs;
use std::path::Path;

use super::*;
use crate::reference::Location;

/// A project on `builtin:wso2am-4.3.0` with one overlay file; its options.
fn project(dir: &Path) -> Options {
    fs::create_dir_all(dir.join("overlays/repository/conf")).unwrap();
    fs::write(dir.join("overlays/repository/conf/deployment.toml"), "[server]\nhostname = \"gw.acme.example\"\n")
        .unwrap();
    fs::write(
        dir.join("wso2img.toml"),
        "[base]\nimage = \"builtin:wso2am-4.3.0\"\n[target]\nrepository = \"registry.acme.example/apim\"\n",
    )
    .unwrap();
    Options { config: dir.join("wso2img.toml"), no_cache: true, ..Options::default() }
}

#[test]
fn project_stage_resolves_the_default_output_beside_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let opts = project(dir.path());
    let p = project::load(&opts).unwrap();
    assert_eq!(p.outputs.len(), 1);
    let shown = p.outputs[0].to_string();
    assert!(shown.starts_with("oci:") && shown.ends_with("/out"), "{shown}");
    assert!(crate::transport::of(&p.base).daemon_image().is_none());
}

#[test]
fn project_stage_refuses_an_output_inside_a_customer_folder_before_any_walk() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = project(dir.path());
    let inside = dir.path().join("overlays/out");
    opts.outputs = vec![format!("oci:{}", inside.display()).parse::<Location>().unwrap()];
    let e = project::load(&opts).err().expect("refused");
    assert_eq!(e.kind(), crate::error::Kind::Usage);
    assert!(e.to_string().contains("inside the input folder"), "{e}");
}

#[test]
fn plan_and_check_agree_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let opts = project(dir.path());
    let report = plan(&opts).unwrap();
    let overlays: Vec<_> = report.layers.iter().filter(|l| l.name.starts_with("overlays")).collect();
    assert_eq!(overlays.len(), 1, "one overlay layer: {:?}", report.layers.iter().map(|l| &l.name).collect::<Vec<_>>());
    assert_eq!(overlays[0].files, 1);
    assert!(overlays[0].digest.is_none(), "plan compresses nothing");
    assert!(!dir.path().join("out").exists(), "plan wrote the output");
    let again = plan(&opts).unwrap();
    assert_eq!(report.content_digest, again.content_digest, "same inputs, same digest");
    let checked = check(&opts).unwrap();
    assert_eq!(checked.files, 1);
    assert!(!dir.path().join("out").exists());
}

#[test]
fn the_content_digest_follows_the_customer_bytes_only() {
    let dir = tempfile::tempdir().unwrap();
    let opts = project(dir.path());
    let first = plan(&opts).unwrap().content_digest;
    let file = dir.path().join("overlays/repository/conf/deployment.toml");
    fs::write(&file, "[server]\nhostname = \"gw2.acme.example\"\n").unwrap();
    let second = plan(&opts).unwrap().content_digest;
    assert_ne!(first, second);
    fs::write(&file, "[server]\nhostname = \"gw.acme.example\"\n").unwrap();
    let third = plan(&opts).unwrap().content_digest;
    assert_eq!(first, third, "mtimes and walk order do not count");
}
