//! The bytes of signatures and attestations, as cosign and containers/image
//! write and read them: the simple-signing payload, DSSE envelopes (with
//! their pre-authentication encoding) and in-toto v1 statements.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::key::{PublicKey, SigningKey};
use crate::digest::Digest;
use crate::image::json::canonical;

/// The `critical.type` of a simple-signing payload.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The `_type` of an in-toto v1 statement.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// A simple-signing payload: `image` (a manifest or index digest) is
/// `docker_reference` (`HOST/REPO:TAG`), said by `creator`. Canonical JSON, so
/// the same inputs always give the same bytes.
pub fn simple_signing(image: &Digest, docker_reference: &str, creator: &str) -> Vec<u8> {
    canonical(&json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": image.to_string()},
            "type": SIGNATURE_TYPE,
        },
        "optional": {"creator": creator},
    }))
}

/// What a simple-signing payload claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The signed manifest digest.
    pub image: Digest,
    /// The signed identity (`critical.identity.docker-reference`).
    pub docker_reference: String,
    /// `optional.creator`, when present.
    pub creator: Option<String>,
}

/// Reads a simple-signing payload the way containers/image does: `critical`
/// with exactly `type`, `image` and `identity`, the cosign type, a digest.
pub fn parse_simple_signing(payload: &[u8]) -> Option<Claim> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let top = v.as_object()?;
    let critical = exact(top.get("critical")?, &["identity", "image", "type"])?;
    if critical["type"].as_str()? != SIGNATURE_TYPE {
        return None;
    }
    let image = exact(&critical["image"], &["docker-manifest-digest"])?;
    let identity = exact(&critical["identity"], &["docker-reference"])?;
    Some(Claim {
        image: image["docker-manifest-digest"].as_str()?.parse().ok()?,
        docker_reference: identity["docker-reference"].as_str()?.to_string(),
        creator: top.get("optional").and_then(|o| o["creator"].as_str()).map(str::to_string),
    })
}

/// `v` as an object with exactly the `keys`.
fn exact<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Map<String, Value>> {
    let o = v.as_object()?;
    (o.len() == keys.len() && keys.iter().all(|k| o.contains_key(*k))).then_some(o)
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// A DSSE envelope around `body`, signed with `key` (canonical JSON bytes).
pub fn envelope(key: &SigningKey, payload_type: &str, body: &[u8]) -> Vec<u8> {
    let sig = key.sign(&pae(payload_type, body));
    canonical(&json!({
        "payload": STANDARD.encode(body),
        "payloadType": payload_type,
        "signatures": [{"keyid": "", "sig": STANDARD.encode(sig)}],
    }))
}

/// An envelope's payload type and body, and whether one of its signatures
/// verifies with `key` (`None` when no key is given).
#[derive(Debug, Clone)]
pub struct Opened {
    /// `payloadType`.
    pub payload_type: String,
    /// The decoded payload.
    pub body: Vec<u8>,
    /// Whether `key` verified a signature.
    pub verified: Option<bool>,
}

/// Reads a DSSE envelope; `None` when it is not one.
pub fn open_envelope(bytes: &[u8], key: Option<&PublicKey>) -> Option<Opened> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let payload_type = v["payloadType"].as_str()?.to_string();
    let body = STANDARD.decode(v["payload"].as_str()?).ok()?;
    let verified = key.map(|k| {
        let message = pae(&payload_type, &body);
        v["signatures"].as_array().into_iter().flatten().any(|s| {
            s["sig"].as_str().and_then(|b| STANDARD.decode(b).ok()).is_some_and(|sig| k.verifies(&message, &sig))
        })
    });
    Some(Opened { payload_type, body, verified })
}

/// An in-toto v1 statement about `subject_name@subject` (canonical JSON).
pub fn statement(subject_name: &str, subject: &Digest, predicate_type: &str, predicate: Value) -> Vec<u8> {
    canonical(&json!({
        "_type": STATEMENT_V1,
        "subject": [{"name": subject_name, "digest": {"sha256": subject.hex()}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_signing_round_trips_and_is_strict() {
        let d = Digest::of(b"m");
        let p = simple_signing(&d, "127.0.0.1:5000/acme/apim:1", "wso2img 0.1.0");
        let text = String::from_utf8(p.clone()).unwrap();
        assert!(text.starts_with(r#"{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/acme/apim:1"},"image":{"docker-manifest-digest":"sha256:"#), "{text}");
        let c = parse_simple_signing(&p).unwrap();
        assert_eq!(c.image, d);
        assert_eq!(c.docker_reference, "127.0.0.1:5000/acme/apim:1");
        let extra = text.replace(r#""type":"#, r#""extra":1,"type":"#);
        assert!(parse_simple_signing(extra.as_bytes()).is_none());
        let other = text.replace(SIGNATURE_TYPE, "something else");
        assert!(parse_simple_signing(other.as_bytes()).is_none());
    }

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
