//! Signing and verification keys: ECDSA P-256, the only curve cosign's and
//! containers/image's key-based signing share. A private key is read from
//! unencrypted PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM, or from
//! cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`, or the older
//! `ENCRYPTED COSIGN PRIVATE KEY`): JSON with scrypt parameters and a NaCl
//! secretbox (XSalsa20-Poly1305) around the PKCS#8 DER. Public keys are SPKI
//! PEM (`PUBLIC KEY`), as `cosign generate-key-pair` writes them.
//!
//! Errors name the file and never carry key bytes or passwords; the key types
//! have no `Debug` that could print them.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey as EcdsaSigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use serde::Deserialize;

use crate::error::{io_reason, Error, Kind, Result};

/// Environment variables holding the password of an encrypted key, in the
/// order they are read.
pub const PASSWORD_VARS: [&str; 2] = ["WSO2IMG_SIGN_PASSWORD", "COSIGN_PASSWORD"];

/// Encrypted-key PEM labels cosign writes (new, then legacy).
const ENCRYPTED_LABELS: [&str; 2] = ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"];

/// A private key that signs: ECDSA P-256 with SHA-256, DER signatures.
pub struct SigningKey {
    key: EcdsaSigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(ECDSA P-256, redacted)")
    }
}

/// A public key that verifies ECDSA P-256 signatures.
#[derive(Clone)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(ECDSA P-256)")
    }
}

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
            fail("not a PEM private key; expected PKCS#8 (`PRIVATE KEY`) or a cosign key (`ENCRYPTED SIGSTORE PRIVATE KEY`)")
        })?;
        let secret = match label.as_str() {
            "PRIVATE KEY" => p256::SecretKey::from_pkcs8_der(&der).map_err(|_| fail(NOT_P256))?,
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der).map_err(|_| fail(NOT_P256))?,
            l if ENCRYPTED_LABELS.contains(&l) => {
                let password = password.ok_or_else(|| {
                    fail("is encrypted; set WSO2IMG_SIGN_PASSWORD (or COSIGN_PASSWORD) to its password")
                })?;
                let plain = decrypt(&der, password).map_err(|w| fail(&w))?;
                p256::SecretKey::from_pkcs8_der(&plain).map_err(|_| fail(NOT_P256))?
            }
            "ENCRYPTED PRIVATE KEY" => return Err(fail(
                "is an encrypted PKCS#8 key; decrypt it (`openssl pkcs8 -in KEY -out PLAIN.pem`) or use a cosign key",
            )),
            other => return Err(fail(&format!("is a PEM `{other}`, not a private key"))),
        };
        Ok(SigningKey { key: EcdsaSigningKey::from(secret) })
    }

    /// An ASN.1 DER ECDSA signature of `message` (SHA-256).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: Signature = self.key.sign(message);
        sig.to_der().as_bytes().to_vec()
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey { key: *self.key.verifying_key() }
    }
}

const NOT_P256: &str =
    "not an ECDSA P-256 private key (cosign and containers/image sign with P-256: `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`)";

impl PublicKey {
    /// Loads the public key (SPKI PEM) in `path`; errors are of `kind` and name `shown`.
    pub fn load(path: &Path, shown: &str, kind: Kind) -> Result<PublicKey> {
        let fail = |what: &str| Error::new(kind, format!("{shown}: {what}"));
        let text = read_key_file(path).map_err(|w| fail(&w))?;
        let (label, der) =
            pem(&text).ok_or_else(|| fail("not a PEM public key; expected `-----BEGIN PUBLIC KEY-----`"))?;
        if label != "PUBLIC KEY" {
            return Err(fail(&format!("is a PEM `{label}`, not a public key (`PUBLIC KEY`)")));
        }
        let key = VerifyingKey::from_public_key_der(&der)
            .map_err(|_| fail("not an ECDSA P-256 public key (cosign and containers/image verify P-256 keys)"))?;
        Ok(PublicKey { key })
    }

    /// Whether `der_signature` (ASN.1 DER) is this key's ECDSA signature of `message`.
    pub fn verifies(&self, message: &[u8], der_signature: &[u8]) -> bool {
        match Signature::from_der(der_signature) {
            Ok(sig) => self.key.verify(message, &sig).is_ok(),
            Err(_) => false,
        }
    }

    /// The SPKI PEM of the key.
    pub fn to_pem(&self) -> String {
        self.key.to_public_key_pem(LineEnding::LF).expect("a P-256 public key encodes")
    }

    /// The key's identity for reports: `sha256:<hex>` of its SPKI DER.
    pub fn fingerprint(&self) -> String {
        let der = self.key.to_public_key_der().expect("a P-256 public key encodes");
        crate::digest::Digest::of(der.as_bytes()).to_string()
    }
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
    fn refuses_what_is_not_a_p256_key() {
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
}
