//! Pure functions that derive a new image from a base: append layers to a
//! config, set labels, env and volumes, and assemble manifests and indexes.
//! The base config is kept as a JSON value so fields wso2img does not know
//! (Healthcheck, ArgsEscaped, OnBuild, …) survive untouched.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::json::canonical;
use super::{Descriptor, MediaFamily, Platform};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// A layer appended to a config: its uncompressed digest and a history line.
#[derive(Debug, Clone)]
pub struct AppendedLayer {
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// What the layer holds, for the history entry.
    pub created_by: String,
}

/// Everything wso2img changes in a base config.
#[derive(Debug, Clone, Default)]
pub struct ConfigChanges {
    /// Layers to append, in order.
    pub layers: Vec<AppendedLayer>,
    /// Labels to set (override the base's).
    pub labels: BTreeMap<String, String>,
    /// Environment variables to set (replace in place, new ones appended in key order).
    pub env: BTreeMap<String, String>,
    /// Absolute volume paths to add.
    pub volumes: Vec<String>,
    /// RFC 3339 timestamp for `created` and the new history entries; `None`
    /// keeps the base's `created`.
    pub created: Option<String>,
    /// A new `Cmd` (the arguments the entrypoint gets), when set.
    pub cmd: Option<Vec<String>>,
}

/// Applies `changes` to the raw base config and returns the new canonical bytes.
pub fn apply_config(base_config: &[u8], changes: &ConfigChanges) -> Result<Vec<u8>> {
    let mut root: Value = serde_json::from_slice(base_config)
        .map_err(|e| Error::source(format!("base image config is not valid JSON: {e}")))?;
    let obj = root.as_object_mut().ok_or_else(|| Error::source("base image config is not a JSON object"))?;

    let created = match &changes.created {
        Some(c) => {
            obj.insert("created".into(), Value::String(c.clone()));
            Some(c.clone())
        }
        None => obj.get("created").and_then(Value::as_str).map(str::to_string),
    };

    let config = object_entry(obj, "config")?;
    if !changes.labels.is_empty() {
        let labels = object_entry(config, "Labels")?;
        for (k, v) in &changes.labels {
            labels.insert(k.clone(), Value::String(v.clone()));
        }
    }
    if !changes.env.is_empty() {
        let mut env: Vec<String> = match config.get("Env") {
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        for (k, v) in &changes.env {
            let line = format!("{k}={v}");
            match env.iter_mut().find(|e| e.split('=').next() == Some(k.as_str())) {
                Some(existing) => *existing = line,
                None => env.push(line),
            }
        }
        config.insert("Env".into(), Value::from(env));
    }
    if let Some(cmd) = &changes.cmd {
        config.insert("Cmd".into(), Value::from(cmd.clone()));
    }
    if !changes.volumes.is_empty() {
        let volumes = object_entry(config, "Volumes")?;
        for v in &changes.volumes {
            volumes.insert(v.clone(), json!({}));
        }
    }

    let rootfs = object_entry(obj, "rootfs")?;
    rootfs.insert("type".into(), Value::String("layers".into()));
    let diff_ids = rootfs.entry("diff_ids").or_insert_with(|| Value::Array(Vec::new()));
    let diff_ids =
        diff_ids.as_array_mut().ok_or_else(|| Error::source("base image config: rootfs.diff_ids is not an array"))?;
    for l in &changes.layers {
        diff_ids.push(Value::String(l.diff_id.to_string()));
    }

    let history = obj.entry("history").or_insert_with(|| Value::Array(Vec::new()));
    let history = history.as_array_mut().ok_or_else(|| Error::source("base image config: history is not an array"))?;
    for l in &changes.layers {
        let mut h = Map::new();
        if let Some(c) = &created {
            h.insert("created".into(), Value::String(c.clone()));
        }
        h.insert("created_by".into(), Value::String(l.created_by.clone()));
        h.insert("comment".into(), Value::String("wso2img".into()));
        history.push(Value::Object(h));
    }
    Ok(canonical(&root))
}

fn object_entry<'a>(obj: &'a mut Map<String, Value>, key: &str) -> Result<&'a mut Map<String, Value>> {
    let v = obj.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().ok_or_else(|| Error::source(format!("base image config: {key} is not an object")))
}

/// Canonical bytes of an image manifest.
pub fn manifest(
    family: MediaFamily,
    config: &Descriptor,
    layers: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": family.manifest(),
        "config": config,
        "layers": layers,
    });
    if family == MediaFamily::Oci && !annotations.is_empty() {
        m["annotations"] = json!(annotations);
    }
    canonical(&m)
}

/// Canonical bytes of an index (OCI) or manifest list (Docker) over `manifests`,
/// each a descriptor with its platform.
pub fn index(family: MediaFamily, manifests: &[Descriptor], annotations: &BTreeMap<String, String>) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": family.index(),
        "manifests": manifests,
    });
    if family == MediaFamily::Oci && !annotations.is_empty() {
        m["annotations"] = json!(annotations);
    }
    canonical(&m)
}

/// The content digest of an image from its (platform, config digest) pairs:
/// the config digest for one platform, else [`multi_platform_content_digest`].
pub fn content_digest(entries: &[(Platform, Digest)]) -> Digest {
    match entries {
        [(_, one)] => *one,
        _ => multi_platform_content_digest(entries),
    }
}

/// The content digest of a multi-platform image: sha256 of the canonical JSON
/// array of `{"config": <digest>, "platform": "<os/arch[/variant]>"}`, sorted by
/// platform. It depends only on configs, so only on uncompressed content.
pub fn multi_platform_content_digest(entries: &[(Platform, Digest)]) -> Digest {
    let mut list: Vec<(String, String)> = entries.iter().map(|(p, d)| (p.to_string(), d.to_string())).collect();
    list.sort();
    let v: Vec<Value> = list.into_iter().map(|(p, d)| json!({"platform": p, "config": d})).collect();
    Digest::of(&canonical(&Value::Array(v)))
}

/// RFC 3339 UTC form of a Unix timestamp (`1980-01-01T00:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(315_532_800), "1980-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn config_keeps_unknown_fields_and_appends() {
        let base = br#"{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
            "config":{"Env":["PATH=/bin","A=1"],"Healthcheck":{"Test":["NONE"]},"ArgsEscaped":true,"Labels":null},
            "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},
            "history":[{"created_by":"base"}],"x-unknown":{"k":1}}"#;
        let changes = ConfigChanges {
            layers: vec![AppendedLayer { diff_id: Digest::of(b"x"), created_by: "jars".into() }],
            labels: [("l".to_string(), "v".to_string())].into(),
            env: [("A".to_string(), "2".to_string()), ("B".to_string(), "3".to_string())].into(),
            volumes: vec!["/data".into()],
            created: None,
            cmd: None,
        };
        let out: Value = serde_json::from_slice(&apply_config(base, &changes).unwrap()).unwrap();
        assert_eq!(out["x-unknown"]["k"], 1);
        assert_eq!(out["config"]["Healthcheck"]["Test"][0], "NONE");
        assert_eq!(out["config"]["ArgsEscaped"], true);
        assert_eq!(out["config"]["Env"], json!(["PATH=/bin", "A=2", "B=3"]));
        assert_eq!(out["config"]["Labels"]["l"], "v");
        assert_eq!(out["config"]["Volumes"]["/data"], json!({}));
        assert_eq!(out["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(out["history"][1]["created"], "2024-01-01T00:00:00Z");
        assert_eq!(out["history"][1]["created_by"], "jars");
    }

    #[test]
    fn multi_digest_ignores_order() {
        let a = (Platform::new("linux", "amd64", None), Digest::of(b"a"));
        let b = (Platform::new("linux", "arm64", None), Digest::of(b"b"));
        assert_eq!(multi_platform_content_digest(&[a.clone(), b.clone()]), multi_platform_content_digest(&[b, a]));
    }
}
