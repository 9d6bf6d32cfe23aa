//! The SLSA provenance v1 predicate of a build: what went in (the base by
//! name and digest, every input file and `wso2img.toml` by sha256), with what
//! parameters, by which builder. Deterministic: nothing in it varies between
//! two builds of the same inputs except a start time taken from
//! SOURCE_DATE_EPOCH, and it names files as the user does (relative paths),
//! never by absolute path.

use serde_json::{json, Value};

use crate::digest::Digest;

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
    let mut run = json!({
        "builder": {"id": BUILDER_ID, "version": {"wso2img": env!("CARGO_PKG_VERSION")}},
    });
    if let Some(t) = &b.started {
        run["metadata"] = json!({"startedOn": t});
    }
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": b.parameters,
            "resolvedDependencies": deps,
        },
        "runDetails": run,
    })
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
        assert!(p["runDetails"].get("metadata").is_none());
        assert_eq!(p["runDetails"]["builder"]["id"], BUILDER_ID);
    }
}
