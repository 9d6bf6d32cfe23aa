//! The SLSA provenance v1 predicate of a build: what went in (the base by
//! name and digest, every input file and `wso2img.toml` by sha256), with what
//! parameters, by which builder. Deterministic: nothing in it varies between
//! two builds of the same inputs, and it names files as the user does
//! (relative paths), never by absolute path. `runDetails.metadata` holds an
//! invocation id derived from the build definition (the same inputs give the
//! same id, as they give the same image) and, with SOURCE_DATE_EPOCH, the
//! start time it gives; no finish time (a clock reading would differ in
//! every build).

use serde_json::{json, Value};

use crate::digest::Digest;
use crate::image::json::canonical;

/// The build type URI of wso2img's provenance.
pub const BUILD_TYPE: &str = "urn:wso2img:build:v1";
/// The builder ID.
pub const BUILDER_ID: &str = "urn:wso2img:builder";

/// One resolved dependency: a file or an image.
#[derive(Debug, Clone)]
pub struct Material {
    /// Its name as the user writes it (`jars/driver.jar`, `wso2img.toml`, `base`).
    pub name: String,
    /// A URI for it (`docker://HOST/REPO:TAG`, `pkg:maven/…`), when there is one.
    pub uri: Option<String>,
    /// Its sha256; `None` for content that is not recorded (keystores).
    pub sha256: Option<Digest>,
}

/// What the provenance says about a build.
#[derive(Debug, Clone)]
pub struct Build {
    /// The base (name, URI, manifest or index digest).
    pub base: Material,
    /// `wso2img.toml`.
    pub config: Material,
    /// Every input file.
    pub inputs: Vec<Material>,
    /// The parameters the build was given (tag, platforms, variant…).
    pub parameters: Value,
    /// RFC 3339 time from SOURCE_DATE_EPOCH, when set.
    pub started: Option<String>,
}

fn descriptor(m: &Material) -> Value {
    let mut v = json!({"name": m.name});
    if let Some(u) = &m.uri {
        v["uri"] = json!(u);
    }
    match &m.sha256 {
        Some(d) => v["digest"] = json!({"sha256": d.hex()}),
        None => v["annotations"] = json!({"content": "not recorded"}),
    }
    if m.uri.is_none() && m.sha256.is_none() {
        v["uri"] = json!(format!("file:{}", m.name));
    }
    v
}

/// The `https://slsa.dev/provenance/v1` predicate.
pub fn predicate(b: &Build) -> Value {
    let mut deps = vec![descriptor(&b.base), descriptor(&b.config)];
    deps.extend(b.inputs.iter().map(descriptor));
    let definition = json!({
        "buildType": BUILD_TYPE,
        "externalParameters": b.parameters,
        "resolvedDependencies": deps,
    });
    let mut metadata = json!({"invocationId": invocation_id(&definition, b.started.as_deref())});
    if let Some(t) = &b.started {
        metadata["startedOn"] = json!(t);
    }
    json!({
        "buildDefinition": definition,
        "runDetails": {
            "builder": {"id": BUILDER_ID, "version": {"wso2img": env!("CARGO_PKG_VERSION")}},
            "metadata": metadata,
        },
    })
}

/// `urn:wso2img:invocation:sha256:…`: the digest of the build definition
/// (canonical JSON), the start time and the builder's version — what decides
/// the image's bytes, so a rebuild of the same inputs has the same id.
fn invocation_id(definition: &Value, started: Option<&str>) -> String {
    let decided = json!({
        "buildDefinition": definition,
        "startedOn": started,
        "builder": {"id": BUILDER_ID, "version": env!("CARGO_PKG_VERSION")},
    });
    format!("urn:wso2img:invocation:sha256:{}", Digest::of(&canonical(&decided)).hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_base_config_and_inputs() {
        let d = Digest::of(b"x");
        let m = |n: &str, s: Option<Digest>| Material { name: n.into(), uri: None, sha256: s };
        let b = Build {
            base: Material { name: "base".into(), uri: Some("docker://r/wso2am:4.3.0".into()), sha256: Some(d) },
            config: m("wso2img.toml", Some(d)),
            inputs: vec![m("jars/a.jar", Some(d)), m("keystores/k.jks", None)],
            parameters: json!({"tag": "t"}),
            started: None,
        };
        let p = predicate(&b);
        let deps = p["buildDefinition"]["resolvedDependencies"].as_array().unwrap();
        assert_eq!(deps.len(), 4);
        assert_eq!(deps[0]["digest"]["sha256"], d.hex());
        assert_eq!(deps[3]["uri"], "file:keystores/k.jks");
        assert!(deps[3].get("digest").is_none());
        assert_eq!(p["runDetails"]["builder"]["id"], BUILDER_ID);
        let meta = &p["runDetails"]["metadata"];
        assert!(meta.get("startedOn").is_none() && meta.get("finishedOn").is_none());
        let id = meta["invocationId"].as_str().unwrap();
        assert!(id.starts_with("urn:wso2img:invocation:sha256:") && id.len() == 30 + 64, "{id}");
        assert_eq!(predicate(&b), p, "the same inputs, the same predicate");
        let started = Build { started: Some("2024-01-01T00:00:00Z".into()), ..b.clone() };
        let q = predicate(&started);
        assert_eq!(q["runDetails"]["metadata"]["startedOn"], "2024-01-01T00:00:00Z");
        assert_ne!(q["runDetails"]["metadata"]["invocationId"], meta["invocationId"]);
        let mut other = b.clone();
        other.inputs[0].sha256 = Some(Digest::of(b"y"));
        assert_ne!(predicate(&other)["runDetails"]["metadata"]["invocationId"], meta["invocationId"]);
    }
}
