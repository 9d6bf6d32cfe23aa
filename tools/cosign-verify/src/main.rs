//! cosign-verify: an independent check of what wso2img signs, for its tests.
//!
//! `cosign-verify [--attestations] [--http] IMAGE KEY.pub`
//!
//! Verifies the cosign key-based signatures (`sha256-<hex>.sig`) of IMAGE
//! (`HOST/REPO:TAG` or `HOST/REPO@sha256:…`) with the sigstore crate
//! (cosign's verification ported to Rust): its client finds the signature
//! layers (checking each payload names the manifest digest), its
//! `PublicKeyVerifier` constraint and `verify_constraints` decide. No Rekor,
//! no Fulcio, no network but the registry. With `--attestations`, every DSSE
//! envelope under `sha256-<hex>.att` and in the OCI referrers of the digest is
//! checked too: its signature over the DSSE pre-authentication encoding with
//! the key (the sigstore crate's key verification), its in-toto subject
//! digest equal to the manifest digest.
//!
//! RSA keys verify PKCS#1 v1.5 (what cosign writes) and PSS signatures.
//! `--http` talks plain HTTP to the image's registry (a loopback test registry).
//!
//! Prints one JSON document (digest, each signature, each attestation) on
//! stdout; exits 0 when the signatures (and with `--attestations`, at least
//! one attestation and every one) verify, 1 when they do not (the reason on
//! stderr), 2 on a usage, key or registry error.

use std::process::ExitCode;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use oci_client::secrets::RegistryAuth;
use serde_json::{json, Value};
use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraint, VerificationConstraintVec};
use sigstore::cosign::{ClientBuilder, CosignCapabilities};
use sigstore::crypto::{CosignVerificationKey, Signature, SigningScheme};
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};

const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
const IN_TOTO: &str = "application/vnd.in-toto+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

struct Args {
    attestations: bool,
    http: bool,
    image: String,
    key: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args { attestations: false, http: false, image: String::new(), key: String::new() };
    let mut positional = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--attestations" => a.attestations = true,
            "--http" => a.http = true,
            s if s.starts_with('-') => return Err(format!("unknown flag {s}")),
            _ => positional.push(arg),
        }
    }
    let [image, key] = <[String; 2]>::try_from(positional)
        .map_err(|_| "usage: cosign-verify [--attestations] [--http] IMAGE KEY.pub".to_string())?;
    a.image = image;
    a.key = key;
    Ok(a)
}

/// The key's verification schemes: the one its SPKI names, and for RSA also PSS.
fn keys(pem: &[u8]) -> Result<Vec<(CosignVerificationKey, SigningScheme)>, String> {
    let key = CosignVerificationKey::try_from_pem(pem).map_err(|e| format!("the public key: {e}"))?;
    let mut out = Vec::new();
    let scheme = match &key {
        CosignVerificationKey::RSA_PKCS1_SHA256(_) | CosignVerificationKey::RSA_PSS_SHA256(_) => {
            let pss = SigningScheme::RSA_PSS_SHA256(0);
            out.push((CosignVerificationKey::from_pem(pem, &pss).map_err(|e| e.to_string())?, pss));
            SigningScheme::RSA_PKCS1_SHA256(0)
        }
        CosignVerificationKey::ECDSA_P256_SHA256_ASN1(_) => SigningScheme::ECDSA_P256_SHA256_ASN1,
        CosignVerificationKey::ECDSA_P384_SHA384_ASN1(_) => SigningScheme::ECDSA_P384_SHA384_ASN1,
        CosignVerificationKey::ECDSA_P521_SHA512_ASN1(_) => SigningScheme::ECDSA_P521_SHA512_ASN1,
        CosignVerificationKey::ED25519(_) => SigningScheme::ED25519,
    };
    out.insert(0, (key, scheme));
    Ok(out)
}

/// DSSE's pre-authentication encoding (the DSSE protocol, v1).
fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// What one DSSE envelope says, checked.
fn check_envelope(bytes: &[u8], keys: &[(CosignVerificationKey, SigningScheme)], digest_hex: &str) -> Value {
    let Ok(env) = serde_json::from_slice::<Value>(bytes) else {
        return json!({"error": "not a JSON DSSE envelope"});
    };
    let payload_type = env["payloadType"].as_str().unwrap_or_default();
    let Some(body) = env["payload"].as_str().and_then(|p| STANDARD.decode(p).ok()) else {
        return json!({"error": "no base64 payload"});
    };
    let message = pae(payload_type, &body);
    let signature_verified = env["signatures"].as_array().into_iter().flatten().any(|s| {
        let sig = s["sig"].as_str().unwrap_or_default().as_bytes();
        keys.iter().any(|(k, _)| k.verify_signature(Signature::Base64Encoded(sig), &message).is_ok())
    });
    let statement: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let subject_matches = statement["subject"]
        .as_array()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|s| s["digest"]["sha256"] == digest_hex));
    json!({
        "payload_type": payload_type,
        "predicate_type": statement["predicateType"],
        "statement_type": statement["_type"],
        "signature_verified": signature_verified,
        "subject_matches": subject_matches,
        "ok": payload_type == IN_TOTO && signature_verified && subject_matches,
    })
}

async fn blob(client: &oci_client::Client, image: &oci_client::Reference, desc: &Value) -> Result<Vec<u8>, String> {
    let d: oci_client::manifest::OciDescriptor =
        serde_json::from_value(desc.clone()).map_err(|e| format!("a layer descriptor: {e}"))?;
    let mut out = Vec::new();
    // pull_blob checks the bytes against the descriptor's digest.
    client.pull_blob(image, &d, &mut out).await.map_err(|e| format!("blob {}: {e}", d.digest))?;
    Ok(out)
}

/// Every DSSE envelope attached to `digest`: `.att` tag layers and referrers.
async fn attestations(
    oci: &oci_client::Client,
    image: &OciReference,
    digest: &str,
    keys: &[(CosignVerificationKey, SigningScheme)],
) -> Result<Vec<Value>, String> {
    let hex = digest.trim_start_matches("sha256:");
    let auth = RegistryAuth::Anonymous;
    let mut out = Vec::new();
    let att: oci_client::Reference =
        format!("{}/{}:sha256-{hex}.att", image.registry(), image.repository()).parse().map_err(|e| format!("{e}"))?;
    if let Ok((bytes, _)) = oci.pull_manifest_raw(&att, &auth, &[OCI_MANIFEST]).await {
        let m: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{att}: {e}"))?;
        for l in m["layers"].as_array().into_iter().flatten().filter(|l| l["mediaType"] == DSSE) {
            let mut v = check_envelope(&blob(oci, &att, l).await?, keys, hex);
            v["stored"] = json!("tag");
            v["annotated_predicate_type"] = l["annotations"]["predicateType"].clone();
            out.push(v);
        }
    }
    let subject: oci_client::Reference =
        format!("{}/{}@{digest}", image.registry(), image.repository()).parse().map_err(|e| format!("{e}"))?;
    if let Ok(index) = oci.pull_referrers(&subject, None).await {
        for r in index.manifests {
            let refd: oci_client::Reference = format!("{}/{}@{}", image.registry(), image.repository(), r.digest)
                .parse()
                .map_err(|e| format!("{e}"))?;
            let (bytes, _) = oci.pull_manifest_raw(&refd, &auth, &[OCI_MANIFEST]).await.map_err(|e| e.to_string())?;
            let m: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{refd}: {e}"))?;
            if m["subject"]["digest"] != digest {
                continue;
            }
            for l in m["layers"].as_array().into_iter().flatten().filter(|l| l["mediaType"] == DSSE) {
                let mut v = check_envelope(&blob(oci, &refd, l).await?, keys, hex);
                v["stored"] = json!("referrer");
                v["annotated_predicate_type"] = l["annotations"]["predicateType"].clone();
                out.push(v);
            }
        }
    }
    Ok(out)
}

async fn run(a: Args) -> Result<(Value, Option<String>), String> {
    let pem = std::fs::read(&a.key).map_err(|e| format!("{}: {e}", a.key))?;
    let keys = keys(&pem)?;
    let image: OciReference = a.image.parse().map_err(|e| format!("{}: {e}", a.image))?;
    let protocol =
        if a.http { ClientProtocol::HttpsExcept(vec![image.registry().to_string()]) } else { ClientProtocol::Https };
    let config = ClientConfig { protocol: protocol.clone(), ..Default::default() };
    let mut client = ClientBuilder::default().with_oci_client_config(config).build().map_err(|e| e.to_string())?;
    let (_, digest) = client.triangulate(&image, &Auth::Anonymous).await.map_err(|e| format!("{}: {e}", a.image))?;
    let layers = client.trusted_signature_layers(&Auth::Anonymous, &image).await.map_err(|e| e.to_string())?;

    let verifiers: Vec<PublicKeyVerifier> = keys
        .iter()
        .map(|(_, scheme)| PublicKeyVerifier::new(&pem, scheme).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let signatures: Vec<Value> = layers
        .iter()
        .map(|l| {
            let verified = verifiers.iter().any(|v| v.verify(l).unwrap_or(false));
            json!({
                "docker_reference": l.simple_signing.critical.identity.docker_reference,
                "digest": l.simple_signing.critical.image.docker_manifest_digest,
                "verified": verified,
            })
        })
        .collect();
    // The decision is the sigstore crate's: a key's constraint satisfied by at
    // least one layer (any of the schemes, for RSA's two paddings).
    let signed = verifiers.into_iter().any(|v| {
        let constraints: VerificationConstraintVec = vec![Box::new(v)];
        !layers.is_empty() && sigstore::cosign::verify_constraints(&layers, constraints.iter()).is_ok()
    });
    let mut failure = (!signed).then(|| format!("{}: no signature verifies with {}", a.image, a.key));

    let mut doc = json!({"image": a.image, "digest": digest, "signatures": signatures, "verified": signed});
    if a.attestations {
        let oci = oci_client::Client::new(oci_client::client::ClientConfig {
            protocol: protocol.into(),
            ..Default::default()
        });
        let atts = attestations(&oci, &image, &digest, &keys).await?;
        if failure.is_none() {
            failure = if atts.is_empty() {
                Some(format!("{}: no attestation", a.image))
            } else {
                atts.iter().find(|v| v["ok"] != true).map(|v| format!("{}: attestation fails: {v}", a.image))
            };
        }
        doc["attestations"] = json!(atts);
    }
    Ok((doc, failure))
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cosign-verify: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    match rt.block_on(run(a)) {
        Ok((doc, failure)) => {
            println!("{doc:#}");
            match failure {
                None => ExitCode::SUCCESS,
                Some(f) => {
                    eprintln!("cosign-verify: {f}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("cosign-verify: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pae_matches_the_dsse_spec_example() {
        assert_eq!(
            super::pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
