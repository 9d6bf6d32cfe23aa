//! Deployment profiles as the product applies them: the names each version's
//! `bin/profileSetup.sh` accepts and, for each, what it does to the files of
//! the product home — as data, so that a build can tell every path the script
//! writes and where it takes the `deployment.toml` from.
//!
//! Modelled on product-apim `modules/distribution/product/src/main/startup-scripts/profileSetup.sh`
//! (tags v4.1.0–v4.4.0) and `api-control-plane/modules/distribution/product/src/main/startup-scripts/profileSetup.sh`
//! (v4.5.0–v4.7.0, the control plane's only). The script `cd`s into `bin/`,
//! matches its first argument against the literal `-Dprofile=<name>`, answers
//! any other with "Profile is not specified properly, please try again" and
//! exits 0; it only moves, copies and removes files (no edits in place).

use super::{major_minor, ProductKind};

/// Where the product keeps the script, relative to the product home.
pub const SCRIPT: &str = "bin/profileSetup.sh";
/// The name that means "no profile": the start without `PROFILE_NAME`.
pub const DEFAULT: &str = "default";
/// The configuration the server reads, relative to the product home.
pub const DEPLOYMENT_TOML: &str = "repository/conf/deployment.toml";
/// Where a profile moves the `deployment.toml` it replaces.
pub const DEPLOYMENT_BACKUP: &str = "repository/conf/deployment.toml.backup";
/// The folder of the profiles' `deployment.toml` templates.
pub const DEPLOYMENT_TEMPLATES: &str = "repository/resources/conf/deployment-templates";
/// The config mapper's templates, which some profiles swap.
pub const TEMPLATES: &str = "repository/resources/conf/templates";
/// The Synapse configuration folder some profiles empty (all but `synapse.xml`).
pub const SYNAPSE_DEFAULT: &str = "repository/deployment/server/synapse-configs/default";
/// The web applications folder.
pub const WEBAPPS: &str = "repository/deployment/server/webapps";
/// The Jaggery applications folder (portals up to 4.1).
pub const JAGGERYAPPS: &str = "repository/deployment/server/jaggeryapps";
/// The error text of the script for a name it does not know.
pub const UNKNOWN_PROFILE: &str = "Profile is not specified properly, please try again";

/// A config-mapper template a profile replaces by another one (paths
/// relative to [`TEMPLATES`]): `template` is moved to `backup`, then `with`
/// is copied to `template`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swap {
    /// The template replaced, e.g. `repository/conf/axis2/axis2.xml.j2`.
    pub template: &'static str,
    /// The template copied in its place.
    pub with: &'static str,
    /// Where the replaced template is moved.
    pub backup: &'static str,
}

/// What a profile deletes from a folder of applications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pruning {
    /// Every entry whose name matches none of these patterns (`*` = any text).
    KeepOnly(Vec<&'static str>),
    /// The entries matching these patterns, with the folder a `.war` unpacks to.
    Delete(Vec<&'static str>),
}

impl Pruning {
    /// Whether the entry called `name` is deleted.
    pub fn deletes(&self, name: &str) -> bool {
        match self {
            Pruning::KeepOnly(keep) => !keep.iter().any(|p| glob_match(p, name)),
            Pruning::Delete(gone) => gone
                .iter()
                .any(|p| glob_match(p, name) || p.strip_suffix(".war").is_some_and(|stem| glob_match(stem, name))),
        }
    }
}

/// One profile of one product version: what `profileSetup.sh -Dprofile=<name>` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The name, as `PROFILE_NAME` and `-Dprofile=` give it.
    pub name: &'static str,
    /// Templates replaced (relative to [`TEMPLATES`]).
    pub swaps: Vec<Swap>,
    /// Files removed (relative to the product home).
    pub removes: Vec<&'static str>,
    /// Whether every entry of [`SYNAPSE_DEFAULT`] but `synapse.xml` is removed.
    pub clears_synapse_configs: bool,
    /// What is deleted from [`WEBAPPS`].
    pub webapps: Pruning,
    /// What is deleted from [`JAGGERYAPPS`] (4.0 and 4.1 only).
    pub jaggeryapps: Option<Pruning>,
}

impl Profile {
    /// The template the profile copies to [`DEPLOYMENT_TOML`] (relative to the
    /// product home): where a customer's `deployment.toml` must be for the
    /// profile to start with it.
    pub fn template(&self) -> String {
        format!("{DEPLOYMENT_TEMPLATES}/{}.toml", self.name)
    }

    /// Every folder in which the profile creates, renames or removes an entry
    /// (relative to the product home); under an arbitrary UID each must be
    /// writable by group 0. Folders it removes with their content are in
    /// [`Profile::removed_trees`].
    pub fn written_dirs(&self) -> Vec<String> {
        let mut dirs: Vec<String> = vec![parent(DEPLOYMENT_TOML).to_string()];
        for s in &self.swaps {
            dirs.push(parent(&format!("{TEMPLATES}/{}", s.template)).to_string());
        }
        for r in &self.removes {
            dirs.push(parent(r).to_string());
        }
        if self.clears_synapse_configs {
            dirs.push(SYNAPSE_DEFAULT.to_string());
        }
        dirs.push(WEBAPPS.to_string());
        if self.jaggeryapps.is_some() {
            dirs.push(JAGGERYAPPS.to_string());
        }
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Folders whose whole content the profile may remove (`rm -r`), so that
    /// every folder below them must be writable too: the applications
    /// folders it prunes and, when it clears them, the Synapse configurations.
    pub fn removed_trees(&self) -> Vec<&'static str> {
        let mut trees = vec![WEBAPPS];
        if self.clears_synapse_configs {
            trees.push(SYNAPSE_DEFAULT);
        }
        if self.jaggeryapps.is_some() {
            trees.push(JAGGERYAPPS);
        }
        trees.sort();
        trees
    }

    /// Every file the profile writes (relative to the product home): the new
    /// `deployment.toml`, its backup and the swapped templates with theirs.
    pub fn written_files(&self) -> Vec<String> {
        let mut files = vec![DEPLOYMENT_TOML.to_string(), DEPLOYMENT_BACKUP.to_string()];
        for s in &self.swaps {
            files.push(format!("{TEMPLATES}/{}", s.template));
            files.push(format!("{TEMPLATES}/{}", s.backup));
        }
        files.sort();
        files
    }
}

fn parent(p: &str) -> &str {
    p.rsplit_once('/').map_or("", |(d, _)| d)
}

/// Whether `name` matches `pattern`, where `*` stands for any text (the
/// `find -name` patterns of the script).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else { return false };
            (0..=tail.len()).filter(|&i| tail.is_char_boundary(i)).any(|i| glob_match(rest, &tail[i..]))
        }
    }
}

const AXIS2: &str = "repository/conf/axis2/axis2.xml.j2";
const AXIS2_BACKUP: &str = "repository/conf/axis2/axis2.xml.j2.backup";
const TENANT_AXIS2: &str = "repository/conf/axis2/tenant-axis2.xml.j2";
const TENANT_AXIS2_BACKUP: &str = "repository/conf/axis2/tenant-axis2.xml.j2.backup";
const CARBON_WEB_XML: &str = "repository/conf/tomcat/carbon/WEB-INF/web.xml.j2";

fn axis2(with: &'static str) -> Swap {
    Swap { template: AXIS2, with, backup: AXIS2_BACKUP }
}

fn tenant_axis2(with: &'static str) -> Swap {
    Swap { template: TENANT_AXIS2, with, backup: TENANT_AXIS2_BACKUP }
}

/// `replaceRegistryXMLTemplateFile`: note the backup's name, `registry.backup`.
const REGISTRY_TM: Swap = Swap {
    template: "repository/conf/registry.xml.j2",
    with: "repository/conf/registry_TM.xml.j2",
    backup: "repository/conf/registry.backup",
};

/// `replaceTomcatCarbonWEBINFWebXmlTemplateFile`.
const WEB_TM_GW: Swap = Swap {
    template: CARBON_WEB_XML,
    with: "repository/conf/tomcat/carbon/WEB-INF/web_TM_GW.xml.j2",
    backup: "repository/conf/tomcat/carbon/WEB-INF/web.xml.j2.backup",
};

/// `removeWebSocketInboundEndpoint` and `removeSecureWebSocketInboundEndpoint`:
/// the deployed files and their templates.
const WEBSOCKET_ENDPOINTS: [&str; 4] = [
    "repository/deployment/server/synapse-configs/default/inbound-endpoints/WebSocketInboundEndpoint.xml",
    "repository/deployment/server/synapse-configs/default/inbound-endpoints/SecureWebSocketInboundEndpoint.xml",
    "repository/resources/conf/templates/repository/deployment/server/synapse-configs/default/inbound-endpoints/WebSocketInboundEndpoint.xml.j2",
    "repository/resources/conf/templates/repository/deployment/server/synapse-configs/default/inbound-endpoints/SecureWebSocketInboundEndpoint.xml.j2",
];

/// `removeAxis2BlockingClientXMLFile` and `…TemplateFile`.
const BLOCKING_CLIENT: [&str; 2] = [
    "repository/conf/axis2/axis2_blocking_client.xml",
    "repository/resources/conf/templates/repository/conf/axis2/axis2_blocking_client.xml.j2",
];

/// `removeAuthenticationAndAccountRecoveryEndpointWEBINFWebXmlTemplateFiles` (4.2.0 on).
const ENDPOINT_WEB_XML_TEMPLATES: [&str; 2] = [
    "repository/resources/conf/templates/repository/deployment/server/webapps/authenticationendpoint/WEB-INF/web.xml.j2",
    "repository/resources/conf/templates/repository/deployment/server/webapps/accountrecoveryendpoint/WEB-INF/web.xml.j2",
];

/// The web applications a key manager keeps.
const KEY_MANAGER_WEBAPPS: [&str; 9] = [
    "authenticationendpoint",
    "accountrecoveryendpoint",
    "oauth2.war",
    "api#identity#consent-mgt#v*.war",
    "api#identity#recovery#v*.war",
    "api#identity#user#v*.war",
    "api#identity#oauth2#dcr#v*.war",
    "api#identity#oauth2#v*.war",
    "keymanager-operations.war",
];

/// The product generations whose profile sets differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generation {
    /// 3.x: names only (not modelled file by file).
    V3,
    /// 4.0 and 4.1: six profiles, Jaggery portals.
    V41,
    /// 4.2: four profiles, `api-key-manager-deprecated`.
    V42,
    /// 4.3 and 4.4: four profiles, `api-key-manager-node`.
    V44,
    /// 4.5 and later: separate images; the control plane's `key-manager` only.
    V45,
}

fn generation(version: Option<&str>) -> Generation {
    match major_minor(version) {
        Some((m, _)) if m < 4 => Generation::V3,
        Some((4, n)) if n <= 1 => Generation::V41,
        Some((4, 2)) => Generation::V42,
        Some((4, n)) if n <= 4 => Generation::V44,
        Some(_) => Generation::V45,
        // An unknown version is taken for the last one with all-in-one profiles.
        None => Generation::V44,
    }
}

/// The profiles the image of `kind` and `version` starts in, in the order
/// upstream's script lists them; empty when it has none (the 4.5+
/// all-in-one, traffic manager and gateway, which ship no profileSetup.sh).
/// An unknown kind is taken for the all-in-one.
pub fn profiles(kind: Option<ProductKind>, version: Option<&str>) -> Vec<Profile> {
    let kind = kind.unwrap_or(ProductKind::AllInOne);
    let g = generation(version);
    match (kind, g) {
        (ProductKind::ControlPlane, Generation::V45) => vec![key_manager_acp()],
        (ProductKind::AllInOne, Generation::V3) => {
            ["gateway-worker", "api-key-manager", "traffic-manager", "api-devportal", "api-publisher"]
                .into_iter()
                .map(names_only)
                .collect()
        }
        (ProductKind::AllInOne, Generation::V41) => vec![
            key_manager_node("api-key-manager-deprecated", g),
            publisher_deprecated(),
            devportal_deprecated(),
            control_plane(),
            traffic_manager(g),
            gateway_worker(g),
        ],
        (ProductKind::AllInOne, Generation::V42) => vec![
            key_manager_node("api-key-manager-deprecated", g),
            control_plane(),
            traffic_manager(g),
            gateway_worker(g),
        ],
        (ProductKind::AllInOne, Generation::V44) => {
            vec![key_manager_node("api-key-manager-node", g), control_plane(), traffic_manager(g), gateway_worker(g)]
        }
        _ => Vec::new(),
    }
}

/// The names of [`profiles`].
pub fn names(kind: Option<ProductKind>, version: Option<&str>) -> Vec<&'static str> {
    profiles(kind, version).into_iter().map(|p| p.name).collect()
}

/// The profile called `name` of that image, if its script knows it.
pub fn find(kind: Option<ProductKind>, version: Option<&str>, name: &str) -> Option<Profile> {
    profiles(kind, version).into_iter().find(|p| p.name == name)
}

fn names_only(name: &'static str) -> Profile {
    Profile {
        name,
        swaps: Vec::new(),
        removes: Vec::new(),
        clears_synapse_configs: false,
        webapps: Pruning::Delete(Vec::new()),
        jaggeryapps: None,
    }
}

/// Every Jaggery portal is deleted (4.0/4.1 gateway, traffic manager, key manager).
fn no_jaggery(g: Generation) -> Option<Pruning> {
    (g == Generation::V41).then(|| Pruning::KeepOnly(Vec::new()))
}

fn websocket_endpoints() -> Vec<&'static str> {
    WEBSOCKET_ENDPOINTS.to_vec()
}

fn control_plane() -> Profile {
    Profile {
        name: "control-plane",
        swaps: vec![
            axis2("repository/conf/axis2/axis2_ControlPlane.xml.j2"),
            tenant_axis2("repository/conf/axis2/tenant-axis2_ControlPlane.xml.j2"),
        ],
        removes: websocket_endpoints(),
        clears_synapse_configs: true,
        webapps: Pruning::Delete(vec!["api#am#gateway#v2.war"]),
        jaggeryapps: None,
    }
}

fn traffic_manager(g: Generation) -> Profile {
    let mut removes = Vec::new();
    if g != Generation::V41 {
        removes.extend(ENDPOINT_WEB_XML_TEMPLATES);
    }
    removes.extend(WEBSOCKET_ENDPOINTS);
    Profile {
        name: "traffic-manager",
        swaps: vec![axis2("repository/conf/axis2/axis2_TM.xml.j2"), REGISTRY_TM, WEB_TM_GW],
        removes,
        clears_synapse_configs: true,
        webapps: Pruning::KeepOnly(vec!["internal#data#v*.war"]),
        jaggeryapps: no_jaggery(g),
    }
}

fn gateway_worker(g: Generation) -> Profile {
    let removes = if g == Generation::V41 { Vec::new() } else { ENDPOINT_WEB_XML_TEMPLATES.to_vec() };
    Profile {
        name: "gateway-worker",
        swaps: vec![WEB_TM_GW],
        removes,
        clears_synapse_configs: false,
        webapps: Pruning::KeepOnly(vec!["am#sample#pizzashack#v*.war", "api#am#gateway#v2.war"]),
        jaggeryapps: no_jaggery(g),
    }
}

/// `api-key-manager-deprecated` (4.0–4.2) and `api-key-manager-node` (4.3, 4.4).
fn key_manager_node(name: &'static str, g: Generation) -> Profile {
    let mut keep = KEY_MANAGER_WEBAPPS.to_vec();
    if g == Generation::V41 {
        keep.push("client-registration#v*.war");
    }
    let mut removes = BLOCKING_CLIENT.to_vec();
    removes.extend(WEBSOCKET_ENDPOINTS);
    Profile {
        name,
        swaps: vec![
            axis2("repository/conf/axis2/axis2_KM.xml.j2"),
            tenant_axis2("repository/conf/axis2/tenant-axis2_KM.xml.j2"),
        ],
        removes,
        clears_synapse_configs: true,
        webapps: Pruning::KeepOnly(keep),
        jaggeryapps: no_jaggery(g),
    }
}

/// The 4.5+ control plane's `key-manager`: the key manager's swaps and
/// webapps, and the Synapse configurations are kept.
fn key_manager_acp() -> Profile {
    let mut removes = BLOCKING_CLIENT.to_vec();
    removes.extend(WEBSOCKET_ENDPOINTS);
    Profile {
        name: "key-manager",
        swaps: vec![
            axis2("repository/conf/axis2/axis2_KM.xml.j2"),
            tenant_axis2("repository/conf/axis2/tenant-axis2_KM.xml.j2"),
        ],
        removes,
        clears_synapse_configs: false,
        webapps: Pruning::KeepOnly(KEY_MANAGER_WEBAPPS.to_vec()),
        jaggeryapps: None,
    }
}

fn publisher_deprecated() -> Profile {
    Profile {
        name: "api-publisher-deprecated",
        swaps: vec![
            axis2("repository/conf/axis2/axis2_Publisher.xml.j2"),
            tenant_axis2("repository/conf/axis2/tenant-axis2_Publisher.xml.j2"),
        ],
        removes: websocket_endpoints(),
        clears_synapse_configs: false,
        webapps: Pruning::KeepOnly(vec![
            "client-registration#v*.war",
            "authenticationendpoint",
            "accountrecoveryendpoint",
            "oauth2.war",
            "api#am#publisher#v*.war",
            "api#am#publisher.war",
            "api#am#admin#v*.war",
            "api#am#admin.war",
            "api#identity#consent-mgt#v*.war",
            "internal#data#v*.war",
        ]),
        jaggeryapps: Some(Pruning::KeepOnly(vec!["admin", "publisher"])),
    }
}

fn devportal_deprecated() -> Profile {
    Profile {
        name: "api-devportal-deprecated",
        swaps: vec![
            axis2("repository/conf/axis2/axis2_Devportal.xml.j2"),
            tenant_axis2("repository/conf/axis2/tenant-axis2_Devportal.xml.j2"),
        ],
        removes: websocket_endpoints(),
        clears_synapse_configs: false,
        webapps: Pruning::KeepOnly(vec![
            "client-registration#v*.war",
            "authenticationendpoint",
            "accountrecoveryendpoint",
            "oauth2.war",
            "api#am#devportal#v*.war",
            "api#am#devportal.war",
            "api#am#admin#v*.war",
            "api#am#admin.war",
            "api#identity#consent-mgt#v*.war",
            "api#identity#recovery#v*.war",
            "api#identity#user#v*.war",
            "internal#data#v*.war",
        ]),
        jaggeryapps: Some(Pruning::KeepOnly(vec!["devportal"])),
    }
}

/// The distributed image that replaces a 4.5+ all-in-one profile, and the
/// profile to give it (the control plane's key manager).
fn distributed_image_for(profile: &str) -> Option<(ProductKind, Option<&'static str>)> {
    match profile {
        "control-plane" | "api-devportal-deprecated" | "api-publisher-deprecated" => {
            Some((ProductKind::ControlPlane, None))
        }
        "key-manager" | "api-key-manager-node" | "api-key-manager-deprecated" => {
            Some((ProductKind::ControlPlane, Some("key-manager")))
        }
        "traffic-manager" => Some((ProductKind::TrafficManager, None)),
        "gateway-worker" => Some((ProductKind::Gateway, None)),
        _ => None,
    }
}

/// Checks that an image of `kind` and `version` starts in `profile`
/// ([`DEFAULT`] is the start without one, valid everywhere); the error lists
/// the version's real profiles, or says the image has none and what to use
/// instead. `describe` names the base in messages.
pub fn check(
    kind: Option<ProductKind>,
    version: Option<&str>,
    describe: &str,
    profile: &str,
) -> std::result::Result<(), String> {
    if profile == DEFAULT || find(kind, version, profile).is_some() {
        return Ok(());
    }
    let v = version.unwrap_or("(unknown version)");
    let image = |k: ProductKind| format!("the wso2/{}:{v} image", k.server());
    match kind {
        Some(ProductKind::ControlPlane) => {
            let real = names(kind, version);
            if real.is_empty() {
                return Err(format!("profile `{profile}`: the {describe} runs no profiles (API Manager {v}); remove `profile`"));
            }
            Err(format!(
                "profile `{profile}`: the {describe} runs only {} (API Manager {v} has no other profiles)",
                quoted(&real)
            ))
        }
        Some(k @ (ProductKind::TrafficManager | ProductKind::Gateway)) => Err(format!(
            "profile `{profile}`: the {describe} runs no profiles (API Manager {v}); it is the {} already, remove `profile`",
            k.describe()
        )),
        _ => {
            let real = names(kind, version);
            if real.is_empty() {
                let instead = match distributed_image_for(profile) {
                    Some((k, Some(p))) => format!("build on {} with profile `{p}` instead", image(k)),
                    Some((k, None)) => format!("build on {} instead", image(k)),
                    None => format!(
                        "build on the distributed images instead ({}, {}, {})",
                        image(ProductKind::ControlPlane),
                        image(ProductKind::TrafficManager),
                        image(ProductKind::Gateway)
                    ),
                };
                return Err(format!("profile `{profile}`: API Manager {v} has no profiles; {instead}"));
            }
            Err(format!(
                "profile `{profile}` is not a profile of API Manager {v} (use one of {}; `{DEFAULT}` starts without one)",
                real.join(", ")
            ))
        }
    }
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProductKind::*;

    #[test]
    fn names_per_version_and_kind_as_upstream_accepts_them() {
        let n = |k, v| names(Some(k), Some(v));
        let six = [
            "api-key-manager-deprecated",
            "api-publisher-deprecated",
            "api-devportal-deprecated",
            "control-plane",
            "traffic-manager",
            "gateway-worker",
        ];
        assert_eq!(n(AllInOne, "4.0.0"), six);
        assert_eq!(n(AllInOne, "4.1.0"), six);
        assert_eq!(
            n(AllInOne, "4.2.0"),
            ["api-key-manager-deprecated", "control-plane", "traffic-manager", "gateway-worker"]
        );
        for v in ["4.3.0", "4.4.0"] {
            assert_eq!(n(AllInOne, v), ["api-key-manager-node", "control-plane", "traffic-manager", "gateway-worker"]);
        }
        for v in ["4.5.0", "4.6.0", "4.7.0"] {
            assert_eq!(n(ControlPlane, v), ["key-manager"]);
            for k in [AllInOne, TrafficManager, Gateway] {
                assert!(n(k, v).is_empty(), "{k:?} {v}");
            }
        }
        assert!(!n(AllInOne, "4.4.0").contains(&DEFAULT), "`default` is not one of the script's names");
    }

    #[test]
    fn what_each_profile_does() {
        let gw = find(Some(AllInOne), Some("4.4.0"), "gateway-worker").unwrap();
        assert_eq!(gw.template(), "repository/resources/conf/deployment-templates/gateway-worker.toml");
        assert_eq!(gw.swaps, [WEB_TM_GW]);
        assert!(!gw.clears_synapse_configs);
        assert!(gw.webapps.deletes("devportal") && gw.webapps.deletes("internal#data#v1.war"));
        assert!(!gw.webapps.deletes("api#am#gateway#v2.war") && !gw.webapps.deletes("am#sample#pizzashack#v1.0.0.war"));
        assert_eq!(gw.removes, ENDPOINT_WEB_XML_TEMPLATES);
        assert!(find(Some(AllInOne), Some("4.1.0"), "gateway-worker").unwrap().removes.is_empty());
        let tm = find(Some(AllInOne), Some("4.1.0"), "traffic-manager").unwrap();
        assert_eq!(tm.jaggeryapps, Some(Pruning::KeepOnly(Vec::new())));
        assert!(tm.swaps.contains(&REGISTRY_TM) && tm.clears_synapse_configs);
        let cp = find(Some(AllInOne), Some("4.3.0"), "control-plane").unwrap();
        assert!(cp.webapps.deletes("api#am#gateway#v2.war") && cp.webapps.deletes("api#am#gateway#v2"));
        assert!(!cp.webapps.deletes("devportal"));
        let km = find(Some(ControlPlane), Some("4.7.0"), "key-manager").unwrap();
        assert!(!km.clears_synapse_configs && km.removes.contains(&BLOCKING_CLIENT[0]));
        assert!(!km.webapps.deletes("keymanager-operations.war") && km.webapps.deletes("devportal"));
        let km41 = find(Some(AllInOne), Some("4.1.0"), "api-key-manager-deprecated").unwrap();
        assert!(!km41.webapps.deletes("client-registration#v0.17.war"));
        assert!(km.webapps.deletes("client-registration#v0.17.war"));
        assert_eq!(
            gw.written_dirs(),
            [
                "repository/conf",
                "repository/deployment/server/webapps",
                "repository/resources/conf/templates/repository/conf/tomcat/carbon/WEB-INF",
                "repository/resources/conf/templates/repository/deployment/server/webapps/accountrecoveryendpoint/WEB-INF",
                "repository/resources/conf/templates/repository/deployment/server/webapps/authenticationendpoint/WEB-INF",
            ]
        );
        assert!(gw.written_files().contains(&"repository/conf/deployment.toml.backup".to_string()));
        assert_eq!(tm.removed_trees(), [JAGGERYAPPS, SYNAPSE_DEFAULT, WEBAPPS]);
    }

    #[test]
    fn glob() {
        assert!(glob_match("api#identity#oauth2#v*.war", "api#identity#oauth2#v1.0.war"));
        assert!(!glob_match("api#identity#oauth2#v*.war", "api#identity#user#v1.0.war"));
        assert!(glob_match("*", "") && glob_match("a*b*c", "axxbyyc") && !glob_match("a*b", "ab c"));
        assert!(!glob_match("oauth2.war", "oauth2.war.bak"));
    }

    #[test]
    fn check_lists_the_real_names_or_says_there_are_none() {
        let c = |k, v, p| check(Some(k), Some(v), "base", p);
        assert!(c(AllInOne, "4.1.0", "api-devportal-deprecated").is_ok());
        assert!(c(AllInOne, "4.4.0", "api-key-manager-node").is_ok());
        assert!(c(AllInOne, "4.4.0", DEFAULT).is_ok() && c(Gateway, "4.5.0", DEFAULT).is_ok());
        let e = c(AllInOne, "4.2.0", "api-key-manager-node").unwrap_err();
        assert!(e.contains("4.2.0") && e.contains("api-key-manager-deprecated, control-plane"), "{e}");
        let e = c(AllInOne, "4.3.0", "api-key-manager").unwrap_err();
        assert!(e.contains("api-key-manager-node") && e.contains("`default` starts without one"), "{e}");
        let e = c(AllInOne, "4.6.0", "traffic-manager").unwrap_err();
        assert!(e.contains("4.6.0 has no profiles") && e.contains("wso2/wso2am-tm:4.6.0"), "{e}");
        let e = c(AllInOne, "4.5.0", "api-key-manager-node").unwrap_err();
        assert!(e.contains("wso2/wso2am-acp:4.5.0 image with profile `key-manager`"), "{e}");
        let e = c(ControlPlane, "4.5.0", "control-plane").unwrap_err();
        assert!(e.contains("runs only `key-manager`"), "{e}");
        let e = c(TrafficManager, "4.5.0", "traffic-manager").unwrap_err();
        assert!(e.contains("runs no profiles"), "{e}");
        assert!(check(None, None, "base", "gateway-worker").is_ok());
    }
}
