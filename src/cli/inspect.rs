//! `inspect`.

use clap::Args;

use super::{print_json, print_line, Global};
use wso2img::error::Kind;
use wso2img::inspect::Inspection;
use wso2img::reference::Location;
use wso2img::sanitize::escape_controls;
use wso2img::sign::attach::AttestationCheck;
use wso2img::sign::PublicKey;
use wso2img::transport::Connections;
use wso2img::{Error, Result};

/// `inspect` flags.
#[derive(Args)]
pub struct InspectArgs {
    /// The image: oci:DIR[:TAG], docker-archive:FILE or a registry reference.
    image: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Check the image's cosign signatures and attestations with this public key (PEM); exit 1 when no signature
    /// verifies or any attestation does not (bad signature, another subject).
    #[arg(long, value_name = "FILE")]
    verify_key: Option<std::path::PathBuf>,
}

/// Runs `inspect`.
pub fn run(g: &Global, a: InspectArgs) -> Result<()> {
    let loc: Location = a.image.parse()?;
    let key = match &a.verify_key {
        Some(p) => Some(PublicKey::load(p, &format!("--verify-key {}", p.display()), Kind::Usage)?),
        None => None,
    };
    if key.is_some() && wso2img::transport::of(&loc).registry_reference().is_none() {
        return Err(Error::usage(format!("--verify-key: signatures live in a registry; {loc} is not in one")));
    }
    let info = wso2img::inspect::inspect_with(&loc, &Connections::new(g.registry()), key.as_ref())?;
    if a.json {
        print_json(&info)?;
    } else {
        let shown: Vec<String> = text(&info).lines().map(|l| escape_controls(l).into_owned()).collect();
        print_line(&shown.join("\n"))?;
    }
    let shown_key = a.verify_key.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let verified = info.signatures.iter().flatten().any(|s| s.verified == Some(true));
    if key.is_some() && !verified {
        return Err(Error::source(format!("{loc}: no signature verifies with {shown_key}")));
    }
    let failed: Vec<String> = info
        .attestations
        .iter()
        .flatten()
        .filter_map(|a| match a.verification {
            Some(v) if v != AttestationCheck::Verified => Some(format!("{} ({})", a.predicate_type, v.describe())),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Err(Error::source(format!(
            "{loc}: attestation {} does not verify with {shown_key}",
            failed.join(", ")
        )));
    }
    Ok(())
}

fn text(i: &Inspection) -> String {
    let mut s = format!("{}\ndigest  {}\n", i.reference, i.digest.map(|d| d.to_string()).unwrap_or_else(|| "-".into()));
    for p in &i.platforms {
        s += &format!("platform {}  config {}  user {}\n", p.platform, p.config_digest, p.user);
        if let Some(d) = &p.detected {
            s += &format!(
                "  product home {} (version {}, kind {})\n",
                d.product_home,
                d.version.as_deref().unwrap_or("?"),
                d.kind.map(|k| k.name()).unwrap_or("?")
            );
        }
        for l in &p.layers {
            s += &format!(
                "  layer {} {:>10}  {}\n",
                l.digest,
                wso2img::fmt::human(l.size),
                l.created_by.as_deref().unwrap_or("")
            );
        }
        for c in p.truststore.as_ref().and_then(|t| t.as_array()).into_iter().flatten() {
            let field = |k: &str| c[k].as_str().unwrap_or("?").to_string();
            s += &format!(
                "  truststore + {}  {}  {}  not after {}\n",
                field("alias"),
                field("sha256"),
                field("subject"),
                field("not_after")
            );
        }
        if let Some(labels) = p.labels.as_object() {
            for (k, v) in labels {
                s += &format!("  label {k}={}\n", v.as_str().unwrap_or(""));
            }
        }
    }
    for sig in i.signatures.iter().flatten() {
        let state = match sig.verified {
            Some(true) => "  verified",
            Some(false) => "  NOT verified by the key",
            None => "",
        };
        s += &format!("signature {}{state}\n", sig.docker_reference);
    }
    for a in i.attestations.iter().flatten() {
        let state = match a.verification {
            Some(AttestationCheck::Verified) => "  verified".to_string(),
            Some(v) => format!("  NOT verified: {}", v.describe()),
            None => String::new(),
        };
        s += &format!("attestation {}  ({}, {}){state}\n", a.predicate_type, a.stored, a.digest);
    }
    s.trim_end().to_string()
}
