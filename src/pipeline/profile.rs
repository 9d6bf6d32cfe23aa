//! A profile variant's configuration as the product applies it: at start
//! `profileSetup.sh` renames `repository/conf/deployment.toml` and copies the
//! profile's template (`deployment-templates/<profile>.toml`) in its place,
//! so the customer's `deployment.toml` is also laid at that template's path
//! — then the file the server reads after the entrypoint ran is the
//! customer's (see docs/wso2/profiles.md).

use crate::config::{Config, LayerKind, LayerSource, VariantSection};
use crate::error::{Error, Result};
use crate::layer::{LayerSpec, Placement, SourceEntry, SourceKind};
use crate::wso2::{profiles, Facts};

/// The walked folders a variant's profile layer reads: the main ones and the variant's own.
pub(super) struct Folders<'a> {
    pub(super) main: &'a [(LayerSource, Vec<SourceEntry>)],
    pub(super) own: &'a [(LayerSource, Vec<SourceEntry>)],
}

/// The `<variant>:profile` layer of variant `v` on a base with `facts`: the
/// customer's `deployment.toml` — the variant's overlays' when they hold one,
/// else the main overlays' when the variant takes them — at the path of its
/// profile's template. `None` when the variant has no profile (or
/// `default`), when no overlay holds a `deployment.toml`, or when an overlay
/// already places a file at the template's path (the customer's choice).
pub(super) fn layer(
    v: &VariantSection,
    facts: &Facts,
    folders: &Folders<'_>,
    placement: &Placement,
    mtime: u64,
) -> Result<Option<LayerSpec>> {
    let Some(name) = v.profile.as_deref().filter(|p| *p != profiles::DEFAULT) else { return Ok(None) };
    let Some(profile) = profiles::find(facts.kind, facts.version.as_deref(), name) else { return Ok(None) };
    let template = profile.template();
    let overlays: Vec<&(LayerSource, Vec<SourceEntry>)> = folders
        .own
        .iter()
        .filter(|(s, _)| s.kind == LayerKind::Overlays)
        .chain(
            folders
                .main
                .iter()
                .filter(|(s, _)| s.kind == LayerKind::Overlays && Config::variant_takes(v, LayerKind::Overlays)),
        )
        .collect();
    let find = |rel: &str| {
        overlays.iter().find_map(|(src, entries)| {
            let e = entries.iter().find(|e| e.rel == rel)?;
            Some((src, entries, e))
        })
    };
    if find(&template).is_some() {
        return Ok(None);
    }
    let Some((src, entries, toml)) = find(profiles::DEPLOYMENT_TOML) else { return Ok(None) };
    let file = match &toml.kind {
        SourceKind::File { .. } => toml.clone(),
        SourceKind::Symlink { .. } => resolve(src, entries, toml)?,
        SourceKind::Dir => {
            return Err(Error::input(format!(
                "{}/{}: is a folder; the profile `{name}` needs the deployment.toml file",
                src.label, toml.rel
            )))
        }
    };
    let mut spec = LayerSpec::new(&format!("{}:profile", v.name), mtime);
    spec.add(format!("{}/{template}", facts.product_home), &file, placement).map_err(|e| e.context(&src.label))?;
    spec.description = format!(
        "wso2img {}:profile: {}/{} as the {name} profile's template {}/{template} (profileSetup.sh copies it to {} at start)",
        v.name,
        src.label,
        toml.rel,
        facts.product_home,
        profiles::DEPLOYMENT_TOML
    );
    Ok(Some(spec))
}

/// The regular file of the same walk a symlinked `deployment.toml` points to
/// (the walk keeps only symlinks that resolve inside their folder).
fn resolve(src: &LayerSource, entries: &[SourceEntry], link: &SourceEntry) -> Result<SourceEntry> {
    let real = std::fs::canonicalize(&link.path).map_err(|e| Error::io("resolving", &link.path, e))?;
    entries
        .iter()
        .filter(|e| matches!(e.kind, SourceKind::File { .. }))
        .find(|e| std::fs::canonicalize(&e.path).is_ok_and(|p| p == real))
        .cloned()
        .ok_or_else(|| {
            Error::input(format!(
                "{}/{}: a symlink to a file that is not in {}; replace it with the file",
                src.label, link.rel, src.label
            ))
        })
}
