//! Destinations: what is already there (skip-if-present), naming, the Docker
//! daemon helpers, and the SBOM.

use super::*;

/// Where the outputs of product `pi` are reported.
pub(super) fn output_slot(rep: &mut Report, pi: usize) -> &mut Vec<OutputReport> {
    if pi == 0 {
        &mut rep.outputs
    } else {
        &mut rep.variants[pi - 1].outputs
    }
}

/// The tag a destination names itself (`docker://HOST/REPO:TAG`), added to the
/// main image's tags.
pub(super) fn out_tag(out: &Location) -> Option<String> {
    match out {
        Location::Registry(r) | Location::Daemon(r) => r.tag.clone(),
        _ => None,
    }
}

/// The repository naming images in a docker-archive: `[target] repository`,
/// else `localhost/<base repository's last part>`.
pub(super) fn archive_repo(p: &Prepared) -> Result<Option<Reference>> {
    if let Some(r) = &p.config.target.repository {
        return Reference::parse(r).map(Some);
    }
    let last = p
        .base
        .name
        .parse::<Reference>()
        .ok()
        .and_then(|r| r.repository.rsplit('/').next().map(str::to_string))
        .unwrap_or_else(|| "wso2am".into());
    Reference::parse(&format!("localhost/{last}")).map(Some)
}

/// Whether a registry or daemon destination already holds product `c`
/// (checked before anything is compressed); refuses to move a content tag
/// that names different content unless `--force`.
pub(super) fn already_there(
    p: &Prepared,
    opts: &Options,
    out: &Location,
    prod: &Product,
    c: &Composed,
    main: bool,
    log: &mut dyn FnMut(&str),
) -> Result<Option<Digest>> {
    let r = match out {
        Location::Registry(r) if opts.via == Via::Registry => r,
        Location::Daemon(r) => {
            let platforms: Vec<&Platform> = prod.platforms.iter().map(|pl| &p.base.images[pl.image].platform).collect();
            let id = Digest::of(&c.configs[pick_index(&platforms, &opts.platforms, "the Docker daemon")?]);
            let d = daemon_of(p)?;
            if d.image_id(&id.to_string())?.is_some() {
                let mut tags = c.tags.clone();
                tags.extend(if main { r.tag.clone() } else { None }.filter(|t| !c.tags.contains(t)));
                d.tag_all(&id.to_string(), &daemon_tags(r, &tags))?;
                log(&format!("{out}: the daemon already has {} ({id}); nothing to load", c.tags[0]));
                return Ok(Some(id));
            }
            return Ok(None);
        }
        _ => return Ok(None),
    };
    match push::tag_state(&p.registries, r, &c.tags[0], &c.content)? {
        TagState::Same(top) => {
            let extra: Vec<String> = c.tags[1..].iter().cloned().chain(if main { r.tag.clone() } else { None }).collect();
            push::retag_missing(&p.registries, r, &top, &extra)?;
            log(&format!("{out}: {} already holds this content ({top}); nothing to push", c.tags[0]));
            Ok(Some(top))
        }
        TagState::Different(top) if !opts.force => Err(Error::new(
            crate::error::Kind::Source,
            format!(
                "{}:{} already names different content ({top}); tags are immutable here — change [target] tag or pass --force",
                r.name(),
                c.tags[0]
            ),
        )),
        _ => Ok(None),
    }
}

/// Writes the CycloneDX SBOM of the main image when `--sbom` asks for it.
pub(super) fn write_sbom(p: &Prepared, opts: &Options, rep: &Report) -> Result<()> {
    let Some(path) = &opts.sbom else { return Ok(()) };
    let facts = &p.main().platforms[0].facts;
    let mut placed = Vec::new();
    for f in &p.checked {
        if let Some(dest) = destination(f.kind, &f.rel, facts)? {
            placed.push(sbom::Placed { file: f, dest });
        }
    }
    let name = p.config.target.repository.clone().unwrap_or_else(|| "wso2img-image".into());
    let subject = sbom::Subject {
        name: &name,
        tag: &rep.tag,
        content_digest: &rep.content_digest,
        base_name: &p.base.name,
        base_digest: p.base.digest.as_ref(),
    };
    let bytes = sbom::cyclonedx(&subject, &placed)?;
    oci::write_atomic(path, &bytes)?;
    Ok(())
}

/// Whether a destination is reached through the Docker daemon.
pub(super) fn through_daemon(out: &Location, via: Via) -> bool {
    matches!(out, Location::Daemon(_)) || (via == Via::Docker && matches!(out, Location::Registry(_)))
}

pub(super) fn daemon_of(p: &Prepared) -> Result<&Daemon> {
    p.daemon.as_ref().ok_or_else(|| Error::new(crate::error::Kind::Io, "the Docker daemon was not connected"))
}

/// The daemon tags of a destination: the content tag, the extra tags and
/// the destination's own tag.
pub(super) fn daemon_tags(r: &Reference, tags: &[String]) -> Vec<Reference> {
    let mut all: Vec<String> = tags.to_vec();
    all.extend(r.tag.clone().filter(|t| !tags.contains(t)));
    all.iter().map(|t| r.with_tag(t)).collect()
}

/// Daemon images that may share the base layers: the base itself.
pub(super) fn daemon_hints(p: &Prepared) -> Vec<String> {
    let mut hints = Vec::new();
    if let Location::Daemon(r) = &p.base.location {
        hints.push(daemon::daemon_name(r));
    }
    if let Ok(r) = Reference::parse(&p.base.name) {
        hints.push(daemon::daemon_name(&r));
    }
    hints
}

/// `--via docker`: loads the image into the daemon, tags it in `r`'s
/// repository and has the daemon push every tag. Returns the manifest digest
/// the daemon pushed for the content tag.
pub(super) fn push_via_daemon(
    p: &Prepared,
    set: &ImageSet,
    r: &Reference,
    tags: &[String],
    filter: &[Platform],
    log: &mut dyn FnMut(&str),
) -> Result<Digest> {
    let d = daemon_of(p)?;
    let image = pick_platform(set, filter, "the Docker daemon")?;
    if set.images.len() > 1 {
        log(&format!("docker://{r}: the Docker daemon holds one platform; pushing {} only", image.platform));
    }
    let refs = daemon_tags(r, tags);
    let loaded = d.load(image, &refs, &daemon_hints(p), log)?;
    let mut pushed = None;
    for t in &refs {
        let digest = d.push(t, log)?;
        pushed.get_or_insert(digest);
    }
    let digest = pushed.ok_or_else(|| Error::usage(format!("docker://{r}: no tag to push")))?;
    log(&format!(
        "docker://{r}: the daemon compressed the layers itself, so the manifest ({digest}) differs from a direct push; the image ID {} is the same",
        loaded.id
    ));
    Ok(digest)
}

pub(super) fn pick_platform<'a>(set: &'a ImageSet, filter: &[Platform], what: &str) -> Result<&'a Image> {
    let platforms: Vec<&Platform> = set.images.iter().map(|i| &i.platform).collect();
    Ok(&set.images[pick_index(&platforms, filter, what)?])
}

/// The platform a one-platform destination (`what`) takes: the only one, the
/// first `--platform`, else the host's.
pub(super) fn pick_index(platforms: &[&Platform], filter: &[Platform], what: &str) -> Result<usize> {
    if platforms.len() == 1 {
        return Ok(0);
    }
    let want = filter.first().cloned().unwrap_or_else(Platform::host);
    platforms.iter().position(|p| p.matches(&want)).ok_or_else(|| {
        Error::usage(format!(
            "{what} holds one platform and the image has {}; pick one with --platform",
            platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
        ))
    })
}
