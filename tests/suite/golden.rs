//! A checked-in input whose exact output bytes are pinned: a dependency bump
//! or code change that alters any byte of a layer, config or manifest fails
//! here, loudly, instead of silently moving every customer's tags.

use std::path::PathBuf;

use super::support::*;

// The content and manifest digests moved once, deliberately, with the jar
// layering rule (`layer::split`, jar layering v1): the jars layer is now
// `jars.11` (group of com.acme.apim:acme-request-id) and its history line says
// so; the layer bytes themselves did not change. They moved once more,
// deliberately, with the builtin sample base (`builtin:wso2am-4.3.0`): its
// entrypoint is a static program instead of a shell script it could not run,
// and its history no longer claims a busybox; the customer layers did not change.
const JARS_DIFF_ID: &str = "sha256:b831255adcd5d6ececfd539b710f0429312d25e273a7777853965a75fbc02edb";
const JARS_DIGEST: &str = "sha256:ef3d90adcac89f43db1c6fb9be54e7123c0b5e13c4b70daab87c13ea15ce0546";
const THEMES_DIFF_ID: &str = "sha256:343ca2e8fb9c518a91defa26be8ff0cd43c463a04b023bdd80f76023c43d87cc";
const THEMES_DIGEST: &str = "sha256:b0d3d9c3349ae3d35143dceca60ca4af49442fa22fcb1c6ad53557f74ebaf611";
const OVERLAYS_DIFF_ID: &str = "sha256:9e669fa3a99423554b652154c27c0c6c1519be6a05e723831bd91e442f21f1c3";
const OVERLAYS_DIGEST: &str = "sha256:827810966db035fbc17735b30b19b8d9c9a4ef8ac515f48c6c994c172e064831";
const CONTENT_DIGEST: &str = "sha256:2ff7d3acaf760fbcec1a52cc4b37bb819b523a9b97f76e2f1ccccb308f9ecf8d";
const MANIFEST_DIGEST: &str = "sha256:734e0b68512450fa721f0112d34541ac525b0b00d9b38087558dcfa0825fbc59";

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn golden_input_gives_pinned_bytes() {
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("oci");
    let r = json(&ok(bin().args([
        "-c",
        golden_dir().join("wso2img.toml").to_str().unwrap(),
        "build",
        "--json",
        "--to",
        &format!("oci:{}", dest.display()),
    ])));
    let layer = |n: &str| r["layers"].as_array().unwrap().iter().find(|l| l["name"] == n).cloned().unwrap();
    let got = [
        (layer("jars.11")["diff_id"].clone(), JARS_DIFF_ID),
        (layer("jars.11")["digest"].clone(), JARS_DIGEST),
        (layer("themes")["diff_id"].clone(), THEMES_DIFF_ID),
        (layer("themes")["digest"].clone(), THEMES_DIGEST),
        (layer("overlays")["diff_id"].clone(), OVERLAYS_DIFF_ID),
        (layer("overlays")["digest"].clone(), OVERLAYS_DIGEST),
        (r["content_digest"].clone(), CONTENT_DIGEST),
        (r["outputs"][0]["digest"].clone(), MANIFEST_DIGEST),
    ];
    let report: Vec<String> = got.iter().map(|(g, w)| format!("{} (pinned {w})", g.as_str().unwrap())).collect();
    for (g, want) in &got {
        assert_eq!(g.as_str().unwrap(), *want, "output bytes changed:\n{}", report.join("\n"));
    }
}
