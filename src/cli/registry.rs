//! `tag` and `copy`: release operations on images already in a registry.

use clap::Args;
use serde::Serialize;

use super::{print_json, print_line, Global};
use wso2img::build::OutputReport;
use wso2img::digest::Digest;
use wso2img::reference::{Location, Reference};
use wso2img::registry::{push, Registries};
use wso2img::{Error, Result};

/// `tag` flags.
#[derive(Args)]
pub struct TagArgs {
    /// The image, by tag or digest: HOST/REPO:TAG, HOST/REPO@sha256:… (docker:// optional).
    src: String,
    /// Tags to add in the same repository (a bare tag, or HOST/REPO:TAG of the same repository).
    #[arg(required = true)]
    tags: Vec<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `copy` flags.
#[derive(Args)]
pub struct CopyArgs {
    /// The image: HOST/REPO:TAG or HOST/REPO@sha256:….
    src: String,
    /// The destination: HOST/REPO[:TAG] (the source tag when none is given).
    dst: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Outcome {
    digest: Digest,
    outputs: Vec<OutputReport>,
}

fn registry_ref(s: &str, what: &str) -> Result<Reference> {
    match s.parse::<Location>()? {
        Location::Registry(r) => Ok(r),
        other => Err(Error::usage(format!("{what} {other}: must be a registry reference (HOST/REPO:TAG)"))),
    }
}

/// Runs `tag`.
pub fn tag(g: &Global, a: TagArgs) -> Result<()> {
    let src = registry_ref(&a.src, "tag")?;
    let mut tags = Vec::new();
    for t in &a.tags {
        if Reference::valid_tag(t) {
            tags.push(t.clone());
            continue;
        }
        let r = registry_ref(t, "tag")?;
        if r.registry != src.registry || r.repository != src.repository {
            return Err(Error::usage(format!(
                "tag {t}: is in another repository than {}; use `wso2img copy` to promote an image",
                src.name()
            )));
        }
        tags.push(r.tag.ok_or_else(|| Error::usage(format!("tag {t}: has no tag")))?);
    }
    let regs = Registries::new(g.registry());
    let digest = push::tag(&regs, &src, &tags)?;
    g.log()(&format!("tagged {}@{digest} as {}", src.name(), tags.join(", ")));
    let outputs = tags
        .iter()
        .map(|t| OutputReport { reference: format!("docker://{}", src.with_tag(t)), digest, status: "pushed".into() })
        .collect();
    finish(a.json, Outcome { digest, outputs }, &src.name())
}

/// Runs `copy`.
pub fn copy(g: &Global, a: CopyArgs) -> Result<()> {
    let src = registry_ref(&a.src, "copy")?;
    let dst = registry_ref(&a.dst, "copy")?;
    if dst.digest.is_some() {
        return Err(Error::usage(format!("copy {}: the destination takes a tag, not a digest", a.dst)));
    }
    let regs = Registries::new(g.registry());
    let digest = push::copy(&regs, &src, &dst, &mut g.log())?;
    let out = match (&dst.tag, &src.tag) {
        (Some(t), _) | (None, Some(t)) => dst.with_tag(t),
        _ => dst.with_digest(digest),
    };
    let outputs = vec![OutputReport { reference: format!("docker://{out}"), digest, status: "pushed".into() }];
    finish(a.json, Outcome { digest, outputs }, &dst.name())
}

fn finish(json: bool, o: Outcome, name: &str) -> Result<()> {
    if json {
        print_json(&o)
    } else {
        print_line(&format!("{name}@{}", o.digest))
    }
}
