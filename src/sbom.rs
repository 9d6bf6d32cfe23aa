//! A CycloneDX 1.5 SBOM of what a customization adds to its base: every jar
//! with its sha256 and Maven coordinates, theme and overlay files by path and
//! digest, keystores by path only (their bytes are secrets), the
//! certificates added to the truststore (alias, subject, SHA-256, not-after)
//! and the base image by name and digest. The document is deterministic: no timestamp, and
//! a serial number derived from the content digest.

use std::fs::File;
use std::io;

use serde_json::{json, Value};

use crate::config::LayerKind;
use crate::digest::{Digest, HashReader};
use crate::error::{io_reason, Error, Result};
use crate::image::json::canonical;
use crate::wso2::checks::CheckedFile;

/// What the SBOM describes.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// Image name (repository) or a local name.
    pub name: &'a str,
    /// The content tag.
    pub tag: &'a str,
    /// The content digest.
    pub content_digest: &'a Digest,
    /// Base image name.
    pub base_name: &'a str,
    /// Base manifest or index digest, when known.
    pub base_digest: Option<&'a Digest>,
}

/// A file placed in the image.
#[derive(Debug, Clone)]
pub struct Placed<'a> {
    /// The checked source file.
    pub file: &'a CheckedFile,
    /// Its absolute path in the image.
    pub dest: String,
}

fn sha256_of(f: &CheckedFile) -> Result<Digest> {
    let file =
        File::open(&f.path).map_err(|e| Error::input(format!("{}: cannot read ({})", f.label, io_reason(&e))))?;
    let mut r = HashReader::new(file);
    io::copy(&mut r, &mut io::sink())
        .map_err(|e| Error::input(format!("{}: cannot read ({})", f.label, io_reason(&e))))?;
    Ok(r.finish().0)
}

/// A certificate added to the truststore at `path` in the image.
#[derive(Debug, Clone)]
pub struct Trusted<'a> {
    /// The truststore's absolute path in the image.
    pub path: &'a str,
    /// The certificate.
    pub cert: &'a crate::wso2::truststore::Cert,
}

/// The SBOM as canonical JSON bytes: the base, the files placed and the
/// certificates added to the truststore.
pub fn cyclonedx(subject: &Subject<'_>, files: &[Placed<'_>], trusted: &[Trusted<'_>]) -> Result<Vec<u8>> {
    let mut components: Vec<Value> = Vec::new();
    let mut base = json!({
        "type": "container",
        "bom-ref": "base-image",
        "name": subject.base_name,
        "properties": [{"name": "wso2img:role", "value": "base"}],
    });
    if let Some(d) = subject.base_digest {
        base["version"] = json!(d.to_string());
        base["hashes"] = json!([{"alg": "SHA-256", "content": d.hex()}]);
    }
    components.push(base);
    for (i, p) in files.iter().enumerate() {
        let f = p.file;
        let props = json!([
            {"name": "wso2img:layer", "value": f.kind.name()},
            {"name": "wso2img:source", "value": f.label},
            {"name": "wso2img:path", "value": p.dest},
        ]);
        let bom_ref = format!("file-{i}");
        let c = match (&f.coords, f.kind) {
            (_, LayerKind::Keystores) => json!({
                "type": "file",
                "bom-ref": bom_ref,
                "name": p.dest,
                "description": format!("{} keystore (content not recorded)", f.keystore.unwrap_or("unknown")),
                "properties": props,
            }),
            (Some(c), _) => {
                let mut v = json!({
                    "type": "library",
                    "bom-ref": bom_ref,
                    "name": c.artifact,
                    "hashes": [{"alg": "SHA-256", "content": sha256_of(f)?.hex()}],
                    "properties": props,
                });
                if let Some(g) = &c.group {
                    v["group"] = json!(g);
                }
                if let Some(ver) = &c.version {
                    v["version"] = json!(ver);
                }
                if let Some(purl) = c.purl() {
                    v["purl"] = json!(purl);
                }
                v
            }
            (None, _) => json!({
                "type": "file",
                "bom-ref": bom_ref,
                "name": p.dest,
                "hashes": [{"alg": "SHA-256", "content": sha256_of(f)?.hex()}],
                "properties": props,
            }),
        };
        components.push(c);
    }
    for (i, t) in trusted.iter().enumerate() {
        let c = t.cert;
        components.push(json!({
            "type": "file",
            "bom-ref": format!("trusted-{i}"),
            "name": format!("{}#{}", t.path, c.alias),
            "description": format!("trusted certificate {} (not after {})", c.subject, c.not_after),
            "hashes": [{"alg": "SHA-256", "content": c.sha256.hex()}],
            "properties": [
                {"name": "wso2img:layer", "value": "truststore"},
                {"name": "wso2img:source", "value": c.source},
                {"name": "wso2img:path", "value": t.path},
                {"name": "wso2img:alias", "value": c.alias},
                {"name": "wso2img:subject", "value": c.subject},
                {"name": "wso2img:not-after", "value": c.not_after},
            ],
        }));
    }
    let refs: Vec<Value> = components.iter().map(|c| c["bom-ref"].clone()).collect();
    let hex = subject.content_digest.hex();
    let serial =
        format!("urn:uuid:{}-{}-5{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32]);
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "wso2img"}]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": subject.name,
                "version": subject.tag,
                "hashes": [{"alg": "SHA-256", "content": hex}],
            },
        },
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": refs}],
    });
    Ok(canonical(&doc))
}
