//! PKCS#12 truststores as the JDK writes and reads them. Reading (MAC
//! checked, encrypted safes decrypted) is the `p12-keystore` crate's; adding
//! certificates keeps every safe of the store as it is, byte for byte, and
//! appends one unencrypted safe of certificate bags — each with its alias
//! (`friendlyName`) and the JDK's trusted-certificate attribute — then seals
//! the store again with the MAC algorithm and iteration count it had (the
//! PKCS#12 key derivation of the `pkcs12` crate, HMAC of the `hmac` crate),
//! its salt derived from the content so that the bytes are deterministic.
//! Certificates are public: the JDK reads an unencrypted certificate safe
//! (`keystore.pkcs12.certProtectionAlgorithm = NONE` writes one).

use der::asn1::{Any, BmpString, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode};
use hmac::{Hmac, KeyInit, Mac};
use pkcs12::cms::content_info::ContentInfo;
use pkcs12::kdf::{derive_key_utf8, Pkcs12KeyType};
use pkcs12::pfx::{Pfx, Version};
use pkcs12::{AuthenticatedSafe, CertBag, DigestInfo, MacData, SafeBag};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::{Attribute, Attributes};

/// HMAC-`$d` of `$data` keyed by the PKCS#12 MAC key derived from `$password`.
macro_rules! mac {
    ($d:ty, $password:expr, $salt:expr, $iterations:expr, $data:expr) => {{
        let size = <$d as sha2::Digest>::output_size();
        derive_key_utf8::<$d>($password, $salt, Pkcs12KeyType::Mac, $iterations, size).map(|key| {
            let mut m = <Hmac<$d> as KeyInit>::new_from_slice(&key).expect("HMAC takes any key length");
            m.update($data);
            m.finalize().into_bytes().to_vec()
        })
    }};
}

const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
const X509_CERT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
const FRIENDLY_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.20");
/// The JDK's `ORACLE_TrustedKeyUsage` attribute: a certificate bag is a
/// trusted-certificate entry only with it.
const TRUSTED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113894.746875.1.1");
const ANY_EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.4");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
/// More MAC iterations than this is not a store the JDK wrote (its default
/// is 10,000): refused rather than spending minutes on it.
const MAX_ITERATIONS: i32 = 5_000_000;

/// One entry of a PKCS#12 store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its alias (`friendlyName`), when it has one.
    pub alias: Option<String>,
    /// The certificate (DER) of a trusted-certificate entry; `None` for a key.
    pub cert: Option<Vec<u8>>,
}

/// What a PKCS#12 store holds.
#[derive(Debug)]
pub struct Opened {
    /// Trusted certificates, then private keys, in file order.
    pub entries: Vec<Entry>,
}

impl Opened {
    /// Whether it holds a private key (or a secret key).
    pub fn has_private_key(&self) -> bool {
        self.entries.iter().any(|e| e.cert.is_none())
    }
}

/// Opens `bytes` with `password` (the MAC must match).
pub fn open(bytes: &[u8], password: &str) -> Result<Opened, String> {
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(bytes, password).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) => "the password does not open it (its MAC does not match)".to_string(),
        e => format!("not a PKCS#12 store it can read ({e})"),
    })?;
    let mut entries: Vec<Entry> = archive
        .certs
        .iter()
        .filter(|c| c.trusted && c.local_key_id.is_none())
        .map(|c| Entry { alias: c.friendly_name.clone(), cert: Some(c.cert.as_der().to_vec()) })
        .collect();
    entries.extend(archive.keys.iter().map(|k| Entry { alias: k.friendly_name.clone(), cert: None }));
    entries.extend(archive.secrets.iter().map(|s| Entry { alias: s.friendly_name.clone(), cert: None }));
    Ok(Opened { entries })
}

/// The store `bytes` with `added` (alias, certificate DER) appended as
/// trusted-certificate bags in a safe of their own, sealed again under
/// `password`. The store must have been [`open`]ed with it.
pub fn with_trusted(bytes: &[u8], added: &[(&str, &[u8])], password: &str) -> Result<Vec<u8>, String> {
    let bad = |e: der::Error| format!("cannot rewrite it ({e})");
    let pfx = Pfx::from_der(bytes).map_err(bad)?;
    if pfx.auth_safe.content_type != DATA {
        return Err("its content is signed (public-key integrity mode), which wso2img does not rewrite".into());
    }
    let content = OctetString::from_der(&pfx.auth_safe.content.to_der().map_err(bad)?).map_err(bad)?;
    let mut safes = AuthenticatedSafe::from_der(content.as_bytes()).map_err(bad)?;
    let mut bags = Vec::new();
    for (alias, der) in added {
        bags.push(trusted_bag(alias, der).map_err(bad)?);
    }
    let bags = OctetString::new(bags.to_der().map_err(bad)?).map_err(bad)?;
    safes.push(ContentInfo { content_type: DATA, content: Any::from_der(&bags.to_der().map_err(bad)?).map_err(bad)? });
    let safes = safes.to_der().map_err(bad)?;
    let mac_data = match &pfx.mac_data {
        Some(old) => Some(seal(&safes, old, password)?),
        None => None,
    };
    let content = OctetString::new(safes).map_err(bad)?;
    let auth_safe =
        ContentInfo { content_type: DATA, content: Any::from_der(&content.to_der().map_err(bad)?).map_err(bad)? };
    Pfx { version: Version::V3, auth_safe, mac_data }.to_der().map_err(bad)
}

/// A certificate bag the JDK loads as a trusted-certificate entry named `alias`.
fn trusted_bag(alias: &str, der: &[u8]) -> der::Result<SafeBag> {
    let name = SetOfVec::try_from(vec![Any::from_der(&BmpString::from_utf8(alias)?.to_der()?)?])?;
    let usage = SetOfVec::try_from(vec![Any::from_der(&ANY_EXTENDED_KEY_USAGE.to_der()?)?])?;
    let mut attrs = Attributes::new();
    attrs.insert(Attribute { oid: FRIENDLY_NAME, values: name })?;
    attrs.insert(Attribute { oid: TRUSTED_KEY_USAGE, values: usage })?;
    let bag = CertBag { cert_id: X509_CERT, cert_value: OctetString::new(der.to_vec())? };
    Ok(SafeBag { bag_id: CERT_BAG, bag_value: bag.to_der()?, bag_attributes: Some(attrs) })
}

/// The MAC of `data` under `password` with `old`'s algorithm, iteration
/// count and salt length; the salt is derived from `data`.
fn seal(data: &[u8], old: &MacData, password: &str) -> Result<MacData, String> {
    let iterations = old.iterations;
    if !(1..=MAX_ITERATIONS).contains(&iterations) {
        return Err(format!("its MAC uses {iterations} iterations, which wso2img does not rewrite"));
    }
    let len = old.mac_salt.as_bytes().len().clamp(8, 64);
    let mut salt = Vec::with_capacity(len);
    let mut counter = 0u8;
    while salt.len() < len {
        let mut seed = b"wso2img truststore MAC salt".to_vec();
        seed.push(counter);
        seed.extend_from_slice(data);
        salt.extend_from_slice(crate::digest::Digest::of(&seed).bytes());
        counter += 1;
    }
    salt.truncate(len);
    let alg = old.mac.algorithm.oid;
    let digest = match alg {
        SHA1 => mac!(sha1::Sha1, password, &salt, iterations, data),
        SHA224 => mac!(sha2::Sha224, password, &salt, iterations, data),
        SHA256 => mac!(sha2::Sha256, password, &salt, iterations, data),
        SHA384 => mac!(sha2::Sha384, password, &salt, iterations, data),
        SHA512 => mac!(sha2::Sha512, password, &salt, iterations, data),
        other => return Err(format!("its MAC uses the digest {other}, which wso2img does not write")),
    }
    .map_err(|e| format!("cannot compute its MAC ({e})"))?;
    let bad = |e: der::Error| format!("cannot rewrite its MAC ({e})");
    Ok(MacData {
        mac: DigestInfo {
            algorithm: AlgorithmIdentifierOwned { oid: alg, parameters: old.mac.algorithm.parameters.clone() },
            digest: OctetString::new(digest).map_err(bad)?,
        },
        mac_salt: OctetString::new(salt).map_err(bad)?,
        iterations,
    })
}
