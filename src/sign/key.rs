//! Signing and verification keys: every key type cosign signs and verifies
//! with — ECDSA P-256, P-384 and P-521, RSA (at least 2048 bits) and Ed25519.
//! A private key is read from unencrypted PKCS#8 (`PRIVATE KEY`), SEC1
//! (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) PEM, or from cosign's
//! encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`, or the older
//! `ENCRYPTED COSIGN PRIVATE KEY`): JSON with scrypt parameters and a NaCl
//! secretbox (XSalsa20-Poly1305) around the PKCS#8 DER. Public keys are SPKI
//! PEM (`PUBLIC KEY`, as `cosign generate-key-pair` writes them) or PKCS#1
//! (`RSA PUBLIC KEY`).
//!
//! Signatures are made as cosign makes them (sigstore's default per key
//! type): ECDSA with SHA-256, SHA-384 or SHA-512 by curve (ASN.1 DER), RSA
//! PKCS#1 v1.5 with SHA-256, pure Ed25519. Verification also accepts what
//! older signers wrote: ECDSA P-384 over SHA-256 (containers/image hashes
//! with SHA-256 whatever the curve) and RSA-PSS with SHA-256.
//!
//! Errors name the file and never carry key bytes or passwords; the key types'
//! `Debug` names the algorithm only.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::error::{io_reason, Error, Kind, Result};

/// Environment variables holding the password of an encrypted key, in the
/// order they are read.
pub const PASSWORD_VARS: [&str; 2] = ["WSO2IMG_SIGN_PASSWORD", "COSIGN_PASSWORD"];

/// Encrypted-key PEM labels cosign writes (new, then legacy).
const ENCRYPTED_LABELS: [&str; 2] = ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"];

/// The smallest RSA modulus cosign accepts (sigstore's `goodkey`).
const RSA_MIN_BITS: usize = 2048;

/// The key types a signing key can be.
enum Secret {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// The key types a verification key can be.
#[derive(Clone)]
enum Public {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Rsa(Box<rsa::PublicKey>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A private key that signs as cosign does with its type.
pub struct SigningKey {
    key: Secret,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, redacted)", self.public.algorithm())
    }
}

/// A public key that verifies signatures of its type.
#[derive(Clone)]
pub struct PublicKey {
    key: Public,
    /// The SubjectPublicKeyInfo DER (the key's identity).
    spki: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.algorithm())
    }
}

/// What a key file is refused for when it is none of the types cosign takes.
const NOT_A_KEY: &str = "not a private key cosign signs with (ECDSA P-256, P-384 or P-521, RSA of 2048 bits or more, Ed25519), e.g. `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`";
const NOT_A_PUBLIC_KEY: &str =
    "not a public key cosign verifies with (ECDSA P-256, P-384 or P-521, RSA of 2048 bits or more, Ed25519)";

impl SigningKey {
    /// Loads the private key in `path`; an encrypted one is decrypted with the
    /// password from [`PASSWORD_VARS`]. Errors are of `kind` (the caller
    /// decides: a flag is a usage error) and name `shown`.
    pub fn load(path: &Path, shown: &str, kind: Kind) -> Result<SigningKey> {
        let password = PASSWORD_VARS.iter().find_map(|v| std::env::var(v).ok());
        Self::load_with(path, shown, kind, password.as_deref())
    }

    /// Loads the private key in `path` with an explicit password.
    pub fn load_with(path: &Path, shown: &str, kind: Kind, password: Option<&str>) -> Result<SigningKey> {
        let fail = |what: &str| Error::new(kind, format!("{shown}: {what}"));
        let text = read_key_file(path).map_err(|w| fail(&w))?;
        let (label, der) = pem(&text).ok_or_else(|| {
            fail("not a PEM private key; expected PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or a cosign key (`ENCRYPTED SIGSTORE PRIVATE KEY`)")
        })?;
        let key = match label.as_str() {
            "PRIVATE KEY" => from_pkcs8(&der),
            "EC PRIVATE KEY" => from_sec1(&der),
            "RSA PRIVATE KEY" => {
                rsa::PrivateKey::from_pkcs1_der(&der).map_err(|_| NOT_A_KEY.into()).and_then(rsa_secret)
            }
            l if ENCRYPTED_LABELS.contains(&l) => {
                let password = password.ok_or_else(|| {
                    fail("is encrypted; set WSO2IMG_SIGN_PASSWORD (or COSIGN_PASSWORD) to its password")
                })?;
                let plain = zeroize::Zeroizing::new(decrypt(&der, password).map_err(|w| fail(&w))?);
                from_pkcs8(&plain)
            }
            "ENCRYPTED PRIVATE KEY" => return Err(fail(
                "is an encrypted PKCS#8 key; decrypt it (`openssl pkcs8 -in KEY -out PLAIN.pem`) or use a cosign key",
            )),
            other => return Err(fail(&format!("is a PEM `{other}`, not a private key"))),
        };
        let key = key.map_err(|w| fail(&w))?;
        let public = match &key {
            Secret::P256(k) => Public::P256(*k.verifying_key()),
            Secret::P384(k) => Public::P384(*k.verifying_key()),
            Secret::P521(k) => Public::P521(*k.verifying_key()),
            Secret::Rsa(k) => Public::Rsa(Box::new(k.as_ref().as_ref().to_public_key())),
            Secret::Ed25519(k) => Public::Ed25519(k.verifying_key()),
        };
        let public = PublicKey::new(public).map_err(|_| fail(NOT_A_KEY))?;
        Ok(SigningKey { key, public })
    }

    /// This key's signature of `message`, as cosign makes it: ECDSA (ASN.1 DER)
    /// with the curve's hash, RSA PKCS#1 v1.5 with SHA-256, or pure Ed25519.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            Secret::P256(k) => Signer::<p256::ecdsa::Signature>::sign(k, message).to_der().as_bytes().to_vec(),
            Secret::P384(k) => Signer::<p384::ecdsa::Signature>::sign(k, message).to_der().as_bytes().to_vec(),
            Secret::P521(k) => Signer::<p521::ecdsa::Signature>::sign(k, message).to_der().as_bytes().to_vec(),
            Secret::Rsa(k) => {
                use rsa::signature::SignatureEncoding;
                k.sign(message).to_vec()
            }
            Secret::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        self.public.clone()
    }
}

/// A PKCS#8 private key of any type cosign takes.
fn from_pkcs8(der: &[u8]) -> std::result::Result<Secret, String> {
    if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
        return Ok(Secret::P256(k.into()));
    }
    if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
        return Ok(Secret::P384(k.into()));
    }
    if let Ok(k) = p521::SecretKey::from_pkcs8_der(der) {
        return Ok(Secret::P521(p521::ecdsa::SigningKey::from(k)));
    }
    if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
        return Ok(Secret::Ed25519(Box::new(k)));
    }
    match rsa::PrivateKey::from_pkcs8_der(der) {
        Ok(k) => rsa_secret(k),
        Err(_) => Err(NOT_A_KEY.into()),
    }
}

/// A SEC1 EC private key on one of the three curves.
fn from_sec1(der: &[u8]) -> std::result::Result<Secret, String> {
    if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
        return Ok(Secret::P256(k.into()));
    }
    if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
        return Ok(Secret::P384(k.into()));
    }
    match p521::SecretKey::from_sec1_der(der) {
        Ok(k) => Ok(Secret::P521(p521::ecdsa::SigningKey::from(k))),
        Err(_) => Err(NOT_A_KEY.into()),
    }
}

fn rsa_secret(k: rsa::PrivateKey) -> std::result::Result<Secret, String> {
    rsa_size(k.size() * 8)?;
    Ok(Secret::Rsa(Box::new(rsa::pkcs1v15::SigningKey::<Sha256>::new(k))))
}

fn rsa_size(bits: usize) -> std::result::Result<(), String> {
    if bits < RSA_MIN_BITS {
        return Err(format!("is an RSA key of {bits} bits; cosign requires at least {RSA_MIN_BITS}"));
    }
    Ok(())
}

impl PublicKey {
    fn new(key: Public) -> std::result::Result<PublicKey, String> {
        let spki = match &key {
            Public::P256(k) => k.to_public_key_der(),
            Public::P384(k) => k.to_public_key_der(),
            Public::P521(k) => p521::PublicKey::from(k).to_public_key_der(),
            Public::Rsa(k) => k.to_public_key_der(),
            Public::Ed25519(k) => k.to_public_key_der(),
        }
        .map_err(|_| NOT_A_PUBLIC_KEY.to_string())?;
        Ok(PublicKey { key, spki: spki.as_bytes().to_vec() })
    }

    /// Loads the public key (SPKI PEM, or PKCS#1 for RSA) in `path`; errors
    /// are of `kind` and name `shown`.
    pub fn load(path: &Path, shown: &str, kind: Kind) -> Result<PublicKey> {
        let fail = |what: &str| Error::new(kind, format!("{shown}: {what}"));
        let text = read_key_file(path).map_err(|w| fail(&w))?;
        let (label, der) =
            pem(&text).ok_or_else(|| fail("not a PEM public key; expected `-----BEGIN PUBLIC KEY-----`"))?;
        let key = match label.as_str() {
            "PUBLIC KEY" => from_spki(&der),
            "RSA PUBLIC KEY" => {
                rsa::PublicKey::from_pkcs1_der(&der).map_err(|_| NOT_A_PUBLIC_KEY.to_string()).and_then(rsa_public)
            }
            _ => return Err(fail(&format!("is a PEM `{label}`, not a public key (`PUBLIC KEY`)"))),
        };
        PublicKey::new(key.map_err(|w| fail(&w))?).map_err(|w| fail(&w))
    }

    /// The key's algorithm, for messages: `ECDSA P-256`, `RSA 3072`, `Ed25519`.
    pub fn algorithm(&self) -> String {
        match &self.key {
            Public::P256(_) => "ECDSA P-256".into(),
            Public::P384(_) => "ECDSA P-384".into(),
            Public::P521(_) => "ECDSA P-521".into(),
            Public::Rsa(k) => format!("RSA {}", k.size() * 8),
            Public::Ed25519(_) => "Ed25519".into(),
        }
    }

    /// Whether `signature` is this key's signature of `message` (ECDSA: ASN.1
    /// DER; RSA: PKCS#1 v1.5 or PSS; Ed25519: 64 bytes).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            Public::P256(k) => {
                p256::ecdsa::DerSignature::try_from(signature).is_ok_and(|s| k.verify(message, &s).is_ok())
            }
            Public::P384(k) => p384::ecdsa::DerSignature::try_from(signature)
                .is_ok_and(|s| k.verify(message, &s).is_ok() || k.verify_prehash(&Sha256::digest(message), &s).is_ok()),
            Public::P521(k) => {
                p521::ecdsa::DerSignature::try_from(signature).is_ok_and(|s| k.verify(message, &s).is_ok())
            }
            Public::Rsa(k) => {
                let pkcs1 = rsa::pkcs1v15::Signature::try_from(signature).is_ok_and(|s| {
                    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k.as_ref().clone()).verify(message, &s).is_ok()
                });
                pkcs1
                    || rsa::pss::Signature::try_from(signature).is_ok_and(|s| {
                        rsa::pss::VerifyingKey::<Sha256>::new_with_auto_salt_len(k.as_ref().clone())
                            .verify(message, &s)
                            .is_ok()
                    })
            }
            Public::Ed25519(k) => {
                ed25519_dalek::Signature::from_slice(signature).is_ok_and(|s| k.verify(message, &s).is_ok())
            }
        }
    }

    /// The SPKI PEM of the key.
    pub fn to_pem(&self) -> String {
        let body = STANDARD.encode(&self.spki);
        let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in body.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END PUBLIC KEY-----\n");
        out
    }

    /// The key's identity for reports: `sha256:<hex>` of its SPKI DER.
    pub fn fingerprint(&self) -> String {
        crate::digest::Digest::of(&self.spki).to_string()
    }
}

/// An SPKI public key of any type cosign verifies with.
fn from_spki(der: &[u8]) -> std::result::Result<Public, String> {
    if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
        return Ok(Public::P256(k));
    }
    if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(der) {
        return Ok(Public::P384(k));
    }
    if let Ok(k) = p521::PublicKey::from_public_key_der(der) {
        return Ok(Public::P521(p521::ecdsa::VerifyingKey::from(k)));
    }
    if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
        return Ok(Public::Ed25519(k));
    }
    match rsa::PublicKey::from_public_key_der(der) {
        Ok(k) => rsa_public(k),
        Err(_) => Err(NOT_A_PUBLIC_KEY.into()),
    }
}

fn rsa_public(k: rsa::PublicKey) -> std::result::Result<Public, String> {
    rsa_size(k.size() * 8)?;
    Ok(Public::Rsa(Box::new(k)))
}

/// Reads a key file, bounded; the error says why (without contents).
fn read_key_file(path: &Path) -> std::result::Result<String, String> {
    let bytes =
        crate::bounded::read_file(path, crate::bounded::KEY_FILE).map_err(|e| match crate::bounded::refusal(&e) {
            Some(crate::bounded::Refused::TooLarge(_)) => "is too large to be a key file".to_string(),
            Some(r) => r.to_string(),
            None => format!("cannot read the key ({})", io_reason(&e)),
        })?;
    String::from_utf8(bytes).map_err(|_| "not a PEM key file (not text)".into())
}

/// The label and decoded body of the first PEM block in `text`.
fn pem(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = &rest[label_end + 5..];
    let end = body_start.find(&format!("-----END {label}-----"))?;
    let b64: String = body_start[..end]
        .lines()
        .filter(|l| !l.contains(':'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    STANDARD.decode(b64).ok().map(|der| (label, der))
}

/// cosign's encrypted key body (go-securesystemslib `encrypted`).
#[derive(Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// The scrypt work factor (N) cosign uses; larger ones are refused so a
/// hostile file cannot ask for gigabytes.
const SCRYPT_MAX_N: u64 = 1 << 20;

/// Decrypts a cosign encrypted key body to its PKCS#8 DER.
fn decrypt(body: &[u8], password: &str) -> std::result::Result<Vec<u8>, String> {
    let bad = || "not a cosign encrypted key (unreadable scrypt/secretbox parameters)".to_string();
    let e: Encrypted = serde_json::from_slice(body).map_err(|_| bad())?;
    if e.kdf.name != "scrypt" || e.cipher.name != "nacl/secretbox" {
        return Err(format!("uses {} with {}; only scrypt with nacl/secretbox is known", e.kdf.name, e.cipher.name));
    }
    let n = e.kdf.params.n;
    if !n.is_power_of_two() || !(2..=SCRYPT_MAX_N).contains(&n) || e.kdf.params.r > 32 || e.kdf.params.p > 16 {
        return Err("has scrypt parameters out of range".into());
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, e.kdf.params.r, e.kdf.params.p).map_err(|_| bad())?;
    let salt = STANDARD.decode(&e.kdf.salt).map_err(|_| bad())?;
    let nonce = STANDARD.decode(&e.cipher.nonce).map_err(|_| bad())?;
    let ciphertext = STANDARD.decode(&e.ciphertext).map_err(|_| bad())?;
    if nonce.len() != 24 {
        return Err(bad());
    }
    let mut key = [0u8; 32];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key).map_err(|_| bad())?;
    let cipher = XSalsa20Poly1305::new((&key).into());
    cipher
        .decrypt(nonce.as_slice().into(), ciphertext.as_slice())
        .map_err(|_| "cannot decrypt the key: wrong password (WSO2IMG_SIGN_PASSWORD or COSIGN_PASSWORD)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A P-256 key (PKCS#8) generated with `openssl genpkey` for these tests only.
    const PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgkt8qgYWqA/uzbdh2
uOT9eJH2p3GQg47S2y8+15OyhdehRANCAASL12dEFQDSURqxys5jApJ25Y3+HUHt
jhNdir/yRKUrFMruAMpDQZyrllSMmrxWSkDAAXOgwU9rmneQ+EQecMxm
-----END PRIVATE KEY-----
";

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn signs_and_verifies() {
        let f = write(PKCS8);
        let k = SigningKey::load_with(f.path(), "k.pem", Kind::Usage, None).unwrap();
        let sig = k.sign(b"payload");
        assert!(k.public().verifies(b"payload", &sig));
        assert!(!k.public().verifies(b"other", &sig));
        let p = write(&k.public().to_pem());
        let public = PublicKey::load(p.path(), "k.pub", Kind::Usage).unwrap();
        assert!(public.verifies(b"payload", &sig));
        assert_eq!(format!("{k:?}"), "SigningKey(ECDSA P-256, redacted)");
    }

    #[test]
    fn refuses_what_is_not_a_key() {
        let f = write("hello");
        let e = SigningKey::load_with(f.path(), "k.pem", Kind::Usage, None).unwrap_err();
        assert!(e.message().starts_with("k.pem: not a PEM private key"), "{e}");
        let e = SigningKey::load_with(Path::new("/nonexistent/k.pem"), "k.pem", Kind::Usage, None).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().contains("cannot read"), "{e}");
        let enc =
            write("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n");
        let e = SigningKey::load_with(enc.path(), "k.pem", Kind::Usage, None).unwrap_err();
        assert!(e.message().contains("WSO2IMG_SIGN_PASSWORD"), "{e}");
        let e = SigningKey::load_with(enc.path(), "k.pem", Kind::Usage, Some("pw")).unwrap_err();
        assert!(e.message().contains("not a cosign encrypted key"), "{e}");
    }

    /// Runs openssl (an independent implementation) and returns its stdout.
    fn openssl(args: &[&str]) -> Vec<u8> {
        let out = std::process::Command::new("openssl").args(args).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// Each key type cosign takes, generated by openssl in each private-key
    /// format: loads, signs what openssl verifies (with the hash cosign uses
    /// for it), verifies with its public key, refuses another message.
    #[test]
    fn every_key_type_signs_what_openssl_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: &str| dir.path().join(n).display().to_string();
        let message = path("message");
        std::fs::write(&message, b"a payload").unwrap();
        // (name, genpkey options, conversion to another PEM format, openssl verify options, Debug algorithm)
        type Case<'a> = (&'a str, &'a [&'a str], Option<&'a [&'a str]>, &'a [&'a str], &'a str);
        let cases: [Case; 7] = [
            ("p256", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], None, &["-sha256"], "ECDSA P-256"),
            ("p384", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], None, &["-sha384"], "ECDSA P-384"),
            ("p521", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"], None, &["-sha512"], "ECDSA P-521"),
            (
                "p384-sec1",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
                Some(&["ec", "-outform", "PEM"]),
                &["-sha384"],
                "ECDSA P-384",
            ),
            ("rsa", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], None, &["-sha256"], "RSA 2048"),
            (
                "rsa-pkcs1",
                &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
                Some(&["rsa", "-traditional"]),
                &["-sha256"],
                "RSA 3072",
            ),
            ("ed25519", &["-algorithm", "ED25519"], None, &[], "Ed25519"),
        ];
        for (name, gen, convert, verify, algorithm) in cases {
            let key = path(&format!("{name}.pem"));
            let mut args = vec!["genpkey"];
            args.extend_from_slice(gen);
            args.extend_from_slice(&["-out", &key]);
            openssl(&args);
            if let Some(convert) = convert {
                let mut args = convert.to_vec();
                let converted = path(&format!("{name}.converted.pem"));
                args.extend_from_slice(&["-in", &key, "-out", &converted]);
                openssl(&args);
                std::fs::rename(&converted, &key).unwrap();
            }
            let text = std::fs::read_to_string(&key).unwrap();
            let label = if name.ends_with("sec1") {
                "EC PRIVATE KEY"
            } else if name.ends_with("pkcs1") {
                "RSA PRIVATE KEY"
            } else {
                "PRIVATE KEY"
            };
            assert!(text.starts_with(&format!("-----BEGIN {label}-----")), "{name}: {text:.40}");
            let public = path(&format!("{name}.pub"));
            openssl(&["pkey", "-in", &key, "-pubout", "-out", &public]);

            let k = SigningKey::load_with(Path::new(&key), name, Kind::Usage, None).unwrap();
            assert_eq!(format!("{k:?}"), format!("SigningKey({algorithm}, redacted)"));
            let sig = k.sign(b"a payload");
            let sig_file = path(&format!("{name}.sig"));
            std::fs::write(&sig_file, &sig).unwrap();
            let mut args = if verify.is_empty() {
                vec!["pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", &public, "-in", &message]
            } else {
                let mut a = vec!["dgst"];
                a.extend_from_slice(verify);
                a.extend_from_slice(&["-verify", &public]);
                a
            };
            if verify.is_empty() {
                args.extend_from_slice(&["-sigfile", &sig_file]);
            } else {
                args.extend_from_slice(&["-signature", &sig_file, &message]);
            }
            openssl(&args);

            let p = PublicKey::load(Path::new(&public), "k.pub", Kind::Usage).unwrap();
            assert_eq!(format!("{p:?}"), format!("PublicKey({algorithm})"));
            assert_eq!(p.fingerprint(), k.public().fingerprint(), "{name}");
            assert_eq!(p.to_pem(), std::fs::read_to_string(&public).unwrap(), "{name}: SPKI PEM as openssl writes it");
            assert!(p.verifies(b"a payload", &sig), "{name}");
            assert!(!p.verifies(b"another payload", &sig), "{name}");
        }

        // What other signers write verifies too: RSA-PSS, ECDSA P-384 over SHA-256 (containers/image).
        for (name, opts) in [
            ("rsa", &["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"][..]),
            ("rsa", &["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:max"][..]),
            ("p384", &["-sha256"][..]),
        ] {
            let mut args = vec!["dgst"];
            args.extend_from_slice(opts);
            let key = path(&format!("{name}.pem"));
            args.extend_from_slice(&["-sign", &key, &message]);
            let sig = openssl(&args);
            let p = PublicKey::load(Path::new(&path(&format!("{name}.pub"))), "k.pub", Kind::Usage).unwrap();
            assert!(p.verifies(b"a payload", &sig), "{name} {opts:?}");
            assert!(!p.verifies(b"another payload", &sig), "{name} {opts:?}");
        }
    }

    #[test]
    fn refuses_small_rsa_and_other_curves_naming_what_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.pem").display().to_string();
        openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", &small]);
        let e = SigningKey::load_with(Path::new(&small), "small.pem", Kind::Usage, None).unwrap_err();
        assert_eq!(e.message(), "small.pem: is an RSA key of 1024 bits; cosign requires at least 2048");
        let k1 = dir.path().join("k1.pem").display().to_string();
        openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1", "-out", &k1]);
        let e = SigningKey::load_with(Path::new(&k1), "k1.pem", Kind::Usage, None).unwrap_err();
        assert!(e.message().contains("P-256, P-384 or P-521, RSA of 2048 bits or more, Ed25519"), "{e}");
        let k1_pub = dir.path().join("k1.pub").display().to_string();
        openssl(&["pkey", "-in", &k1, "-pubout", "-out", &k1_pub]);
        let e = PublicKey::load(Path::new(&k1_pub), "k1.pub", Kind::Usage).unwrap_err();
        assert!(e.message().starts_with("k1.pub: not a public key cosign verifies with"), "{e}");
    }
}
