//! `wso2img init --pattern N`: the deployment patterns as wso2/helm-apim
//! numbers them (`am-pattern-<N>-…`), as the `[[variant]]`s each needs for
//! the base's version — profiles of the one all-in-one image on 4.0–4.4, the
//! distributed images (their own bases) on 4.5 and later.

use crate::error::{Error, Result};
use crate::reference::Location;
use crate::wso2::{profiles, Facts, ProductKind};

/// The highest pattern number.
pub const LAST: u8 = 5;

/// The name of pattern `n` (helm-apim's `docs/README.md`).
pub fn name(n: u8) -> &'static str {
    match n {
        0 => "All-in-One single node",
        1 => "All-in-One HA",
        2 => "All-in-One with a separate Gateway",
        3 => "distributed ACP + TM + GW",
        4 => "fully distributed ACP + TM + GW + KM",
        _ => "All-in-One with separate Gateway and Key Manager",
    }
}

/// A component of a pattern, built as one `[[variant]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The variant's name (`gateway`, `control-plane`, `traffic-manager`, `key-manager`).
    pub name: &'static str,
    /// Its profile (`PROFILE_NAME`), if any.
    pub profile: Option<&'static str>,
    /// Its own base as written in the config, if not the main base.
    pub base: Option<String>,
    /// Whether it serves the portals (takes the main themes).
    pub portals: bool,
}

/// The components besides the main all-in-one that pattern `n` needs on a
/// base with `facts`, written in the config as `base` (the 4.5+ images are
/// named after it: same registry and tag, `wso2am-acp`, `wso2am-tm`,
/// `wso2am-universal-gw`).
pub fn components(n: u8, facts: &Facts, base: &str) -> Result<Vec<Component>> {
    if n > LAST {
        return Err(Error::usage(format!(
            "--pattern {n}: the deployment patterns are numbered 0 to {LAST} (0 all-in-one, 1 all-in-one HA, 2 all-in-one + gateway, 3 ACP+TM+GW, 4 ACP+TM+GW+KM, 5 all-in-one + GW + KM)"
        )));
    }
    let version = facts.version.as_deref();
    if facts.kind.is_some_and(|k| k != ProductKind::AllInOne) {
        return Err(Error::usage(format!(
            "--pattern {n}: the base is the {}; start from the all-in-one image (wso2/wso2am:{})",
            facts.describe(),
            version.unwrap_or("VERSION")
        )));
    }
    let wanted: &[&'static str] = match n {
        0 | 1 => &[],
        2 => &["gateway"],
        3 => &["control-plane", "traffic-manager", "gateway"],
        4 => &["control-plane", "traffic-manager", "gateway", "key-manager"],
        _ => &["gateway", "key-manager"],
    };
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let names = profiles::names(Some(ProductKind::AllInOne), version);
    if !names.is_empty() {
        // 4.0–4.4: one image, a profile per component.
        let key_manager = names.iter().copied().find(|p| p.starts_with("api-key-manager"));
        return wanted
            .iter()
            .map(|&c| {
                let profile = match c {
                    "gateway" => Some("gateway-worker"),
                    "key-manager" => key_manager,
                    other => Some(other),
                }
                .filter(|p| names.contains(p))
                .ok_or_else(|| {
                    Error::usage(format!(
                        "--pattern {n}: API Manager {} has no profile for the {c} (it has {})",
                        version.unwrap_or("(unknown version)"),
                        names.join(", ")
                    ))
                })?;
                Ok(Component { name: c, profile: Some(profile), base: None, portals: c == "control-plane" })
            })
            .collect();
    }
    // 4.5 and later: the distributed images.
    wanted
        .iter()
        .map(|&c| {
            let (server, profile) = match c {
                "control-plane" => ("wso2am-acp", None),
                "traffic-manager" => ("wso2am-tm", None),
                "gateway" => ("wso2am-universal-gw", None),
                _ => ("wso2am-acp", Some("key-manager")),
            };
            Ok(Component { name: c, profile, base: Some(sibling(base, server, n)?), portals: c == "control-plane" })
        })
        .collect()
}

/// The image `server` beside the all-in-one base `base`: same registry,
/// namespace and tag (`wso2/wso2am:4.5.0` → `wso2/wso2am-tm:4.5.0`,
/// `builtin:wso2am-4.5.0` → `builtin:wso2am-tm-4.5.0`).
fn sibling(base: &str, server: &str, n: u8) -> Result<String> {
    if let Some(rest) = base.strip_prefix("builtin:wso2am-") {
        return Ok(format!("builtin:{server}-{rest}"));
    }
    let (head, last) = base.rsplit_once('/').unwrap_or(("", base));
    let registry = base.parse::<Location>().is_ok_and(|l| crate::transport::of(&l).registry_reference().is_some());
    match last.strip_prefix("wso2am:").filter(|_| registry && !base.contains('@')) {
        Some(tag) => Ok(format!("{}{}{server}:{tag}", head, if head.is_empty() { "" } else { "/" })),
        None => Err(Error::usage(format!(
            "--pattern {n}: API Manager 4.5+ patterns need the distributed images, named after the base: give a registry base (e.g. wso2/wso2am:4.5.0 or registry.example.com/wso2/wso2am:4.5.0) or builtin:wso2am-4.5.0, not {base}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_keep_registry_and_tag() {
        assert_eq!(sibling("wso2/wso2am:4.5.0", "wso2am-tm", 3).unwrap(), "wso2/wso2am-tm:4.5.0");
        assert_eq!(
            sibling("docker://reg.example:5000/wso2/wso2am:4.7.0", "wso2am-acp", 3).unwrap(),
            "docker://reg.example:5000/wso2/wso2am-acp:4.7.0"
        );
        assert_eq!(
            sibling("builtin:wso2am-4.5.0", "wso2am-universal-gw", 2).unwrap(),
            "builtin:wso2am-universal-gw-4.5.0"
        );
        for bad in ["oci:base:4.5.0", "docker-archive:b.tar", "wso2/wso2am@sha256:00", "wso2/other:4.5.0"] {
            let e = sibling(bad, "wso2am-tm", 3).unwrap_err();
            assert!(e.message().contains(bad), "{e}");
        }
    }
}
