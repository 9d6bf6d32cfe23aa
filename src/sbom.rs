//! A CycloneDX 1.5 SBOM of what a customization adds to its base: every jar
//! with its sha256 and Maven coordinates (or its OSGi bundle identity), the
//! artifacts inside it as nested components (shaded ones known by their
//! pom.properties, nested archives with their own sha256), theme and overlay
//! files by path and digest, keystores by path only (their bytes are
//! secrets), the certificates added to the truststore (alias, subject,
//! SHA-256, not-after) and the base image by name and digest; each file with
//! the name of the image layer it is in. The document is deterministic: no
//! timestamp, and a serial number derived from the content digest.

use std::fs::File;
use std::io;

use serde_json::{json, Value};

use crate::config::LayerKind;
use crate::digest::{Digest, HashReader};
use crate::error::{io_reason, Error, Result};
use crate::image::json::canonical;
use crate::wso2::checks::CheckedFile;
use crate::wso2::jar::{self, Contents, Coords};

/// What the SBOM describes.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// Image name: the repository it was pushed to, or a local name.
    pub name: &'a str,
    /// The other places it was written to (repositories, daemon names).
    pub also: &'a [String],
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
    /// The name of the image layer it is in (`jars.07`).
    pub layer: String,
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
            {"name": "wso2img:layer", "value": p.layer},
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
            (Some(_), _) => archive(p, &bom_ref, props, true)?,
            (None, _) if jar::is_archive(&p.dest) => archive(p, &bom_ref, props, false)?,
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
    let mut doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "wso2img", "version": env!("CARGO_PKG_VERSION")}]},
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
    if !subject.also.is_empty() {
        let also: Vec<Value> =
            subject.also.iter().map(|a| json!({"name": "wso2img:also-written-to", "value": a})).collect();
        doc["metadata"]["component"]["properties"] = json!(also);
    }
    Ok(canonical(&doc))
}

/// The component of Java archive `p`: named by its Maven coordinates, else
/// its OSGi bundle identity, else its file name; with what it holds as
/// nested components. A jar of `jars/` or `dropins/` was checked readable,
/// so not reading it is an error; another archive (an overlay's `.war`)
/// that does not read is listed as a file.
fn archive(p: &Placed<'_>, bom_ref: &str, mut props: Value, checked: bool) -> Result<Value> {
    let f = p.file;
    let sha = sha256_of(f)?;
    let contents = match jar::contents(&f.path, &f.label, jar::LIMITS) {
        Ok(c) => c,
        Err(e) if !checked => {
            props
                .as_array_mut()
                .expect("properties")
                .push(json!({"name": "wso2img:not-scanned", "value": e.message()}));
            return Ok(json!({
                "type": "file",
                "bom-ref": bom_ref,
                "name": p.dest,
                "hashes": [{"alg": "SHA-256", "content": sha.hex()}],
                "properties": props,
            }));
        }
        Err(e) => return Err(e),
    };
    let coords = match &f.coords {
        Some(c) if c.from_pom => c.clone(),
        _ => contents.identity(jar::archive_stem(&p.dest)),
    };
    let mut v = library(&coords, bom_ref, Some(&sha), props);
    describe(&mut v, &contents, &p.dest, bom_ref);
    Ok(v)
}

/// A `library` component for `coords`.
fn library(coords: &Coords, bom_ref: &str, sha: Option<&Digest>, props: Value) -> Value {
    let mut v = json!({"type": "library", "bom-ref": bom_ref, "name": coords.artifact});
    if let Some(g) = &coords.group {
        v["group"] = json!(g);
    }
    if let Some(ver) = &coords.version {
        v["version"] = json!(ver);
    }
    if let Some(d) = sha {
        v["hashes"] = json!([{"alg": "SHA-256", "content": d.hex()}]);
    }
    if let Some(purl) = coords.purl() {
        v["purl"] = json!(purl);
    }
    v["properties"] = props;
    v
}

/// Adds to component `v` of the archive at `path` (in the image, or
/// `outer.jar!/inner.jar`) what `c` found in it: its bundle identity as a
/// property, what was not looked into, and the shaded and nested artifacts
/// as its `components`.
fn describe(v: &mut Value, c: &Contents, path: &str, bom_ref: &str) {
    let props = v["properties"].as_array_mut().expect("properties");
    if let Some(b) = &c.bundle {
        props.push(json!({"name": "wso2img:osgi-bundle", "value": match &b.version {
            Some(ver) => format!("{};version={ver}", b.name),
            None => b.name.clone(),
        }}));
    }
    for s in &c.skipped {
        props.push(json!({"name": "wso2img:not-scanned", "value": s}));
    }
    let mut inner = Vec::new();
    for (i, (entry, coords)) in c.shaded.iter().enumerate() {
        let props = json!([{"name": "wso2img:path", "value": format!("{path}!/{entry}")}]);
        inner.push(library(coords, &format!("{bom_ref}/shaded-{i}"), None, props));
    }
    for (i, n) in c.nested.iter().enumerate() {
        let at = format!("{path}!/{}", n.path);
        let r = format!("{bom_ref}/nested-{i}");
        let coords = n.contents.identity(jar::archive_stem(&n.path));
        let mut comp = library(&coords, &r, n.sha256.as_ref(), json!([{"name": "wso2img:path", "value": at}]));
        describe(&mut comp, &n.contents, &at, &r);
        inner.push(comp);
    }
    if !inner.is_empty() {
        v["components"] = json!(inner);
    }
}
