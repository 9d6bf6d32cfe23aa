//! What happens when an official image starts, as data: the steps of the
//! entrypoint (wso2/docker-apim, branches 4.1.x–4.7.x,
//! `dockerfiles/{ubuntu,alpine,rocky}/<kind>/docker-entrypoint.sh`) and what
//! the product then writes — the config mapper's outputs (wso2/config-mapper
//! `src/main/java/org/wso2/config/mapper/ConfigParser.java`, called from
//! carbon-kernel `Main`), its backup and metadata, the pid file, logs and
//! `tmp/`. The image build uses it to know every path the product writes;
//! the test bases to behave the same way.

use super::{major_minor, profiles, ProductKind};

/// Below the user home: what the image build preserved of
/// `repository/deployment/server` (made and filled as root, never chowned).
pub const WSO2_TMP: &str = "wso2-tmp";
/// Below the user home: copied over the product home at every start (`cp -RL`).
pub const CONFIG_VOLUME: &str = "wso2-config-volume";
/// Below the user home: copied over the product home after the config volume.
pub const ARTIFACT_VOLUME: &str = "wso2-artifact-volume";
/// The folder the preserved artifacts are restored into (product home relative).
pub const DEPLOYMENT_SERVER: &str = "repository/deployment/server";
/// The folders the entrypoint restores from [`WSO2_TMP`] when empty, in its
/// order (the same list in every kind).
pub const RESTORED: [&str; 2] = ["executionplans", "synapse-configs"];

/// The config mapper's templates (product home relative): each `X.j2` below
/// renders to `X` below the product home.
pub const TEMPLATES: &str = "repository/resources/conf/templates";
/// The config mapper's change-detection metadata, rewritten when it renders.
pub const METADATA: &str = "repository/resources/conf/.metadata";
/// Deleted and rewritten by the config mapper at every start.
pub const BACKUP: &str = "backup";
/// Written by carbon-kernel `Main` at every start.
pub const PID_FILE: &str = "wso2carbon.pid";

/// The folders of `repository/deployment/server` the image build copies into
/// [`WSO2_TMP`] for a kind (docker-apim Dockerfiles, 4.1.x–4.7.x).
pub fn preserved(kind: ProductKind) -> &'static [&'static str] {
    match kind {
        ProductKind::AllInOne => &["synapse-configs", "executionplans"],
        ProductKind::ControlPlane | ProductKind::TrafficManager => &["executionplans"],
        ProductKind::Gateway => &["synapse-configs"],
    }
}

/// When the entrypoint runs `profileSetup.sh` (step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileStep {
    /// Never: the 4.5+ all-in-one, traffic manager and gateway.
    Never,
    /// Whenever `PROFILE_NAME` is not empty (the 4.1–4.4 all-in-one); the
    /// launcher then also gets `-Dprofile=$PROFILE_NAME`.
    AnyName,
    /// Only for `PROFILE_NAME=key-manager`, which also picks the
    /// `key-manager.sh` launcher (the 4.5+ control plane).
    KeyManagerOnly,
}

/// The entrypoint's profile step for the image of `kind` and `version`.
pub fn profile_step(kind: ProductKind, version: Option<&str>) -> ProfileStep {
    let modern = major_minor(version).is_none_or(|v| v >= (4, 5));
    match (kind, modern) {
        (ProductKind::AllInOne, false) => ProfileStep::AnyName,
        (ProductKind::ControlPlane, true) => ProfileStep::KeyManagerOnly,
        _ => ProfileStep::Never,
    }
}

/// The launcher (in `bin/`) the entrypoint runs for `PROFILE_NAME`.
pub fn launcher(kind: ProductKind, profile_name: Option<&str>) -> &'static str {
    match (kind, profile_name) {
        (ProductKind::ControlPlane, Some("key-manager")) => "key-manager.sh",
        _ => kind.launcher(),
    }
}

/// Whether the entrypoint runs the launcher in the background and traps
/// SIGTERM/SIGINT to stop it with `<launcher> stop` (4.7.x on).
pub fn traps_sigterm(version: Option<&str>) -> bool {
    major_minor(version).is_some_and(|v| v >= (4, 7))
}

/// The file a config-mapper template renders to (both relative to the
/// product home), or `None` for a path that is not a template.
pub fn template_target(path: &str) -> Option<&str> {
    path.strip_prefix(TEMPLATES)?.strip_prefix('/')?.strip_suffix(".j2").filter(|t| !t.is_empty())
}

/// Where upstream keeps the entrypoint of an image: the wso2/docker-apim
/// branch and path (for comments and messages).
pub fn upstream_entrypoint(kind: ProductKind, version: Option<&str>) -> String {
    let branch = major_minor(version).map_or("4.x".to_string(), |(a, b)| format!("{a}.{b}.x"));
    let dir = match kind {
        ProductKind::AllInOne => "apim",
        ProductKind::ControlPlane => "apim-acp",
        ProductKind::TrafficManager => "apim-tm",
        ProductKind::Gateway => "apim-universal-gw",
    };
    format!("wso2/docker-apim {branch} dockerfiles/ubuntu/{dir}/docker-entrypoint.sh")
}

/// The OSGi profiles (`repository/components/<name>/`) a distribution ships:
/// the all-in-one builds seven (`modules/p2-profile/product/pom.xml`), the
/// 4.5+ control plane, traffic manager and gateway `default` only. Carbon
/// writes the `configuration/` and `workspace/` of the one `-Dprofile` picks.
pub fn osgi_profiles(kind: ProductKind) -> &'static [&'static str] {
    match kind {
        ProductKind::AllInOne => &[
            "default",
            "control-plane",
            "gateway-worker",
            "traffic-manager",
            "api-key-manager-deprecated",
            "api-publisher-deprecated",
            "api-devportal-deprecated",
        ],
        _ => &["default"],
    }
}

/// The OSGi profiles an image can start in: `default`, and on the images
/// whose entrypoint passes `-Dprofile=$PROFILE_NAME` (the 4.1–4.4
/// all-in-one) every profile that has an OSGi profile folder. An unknown kind
/// is taken for the all-in-one.
pub fn osgi_profiles_started(kind: Option<ProductKind>, version: Option<&str>) -> Vec<&'static str> {
    let kind = kind.unwrap_or(ProductKind::AllInOne);
    let mut started = vec!["default"];
    if profile_step(kind, version) == ProfileStep::AnyName {
        started.extend(profiles::names(Some(kind), version).into_iter().filter(|n| osgi_profiles(kind).contains(n)));
    }
    started
}

/// The config mapper's targets of the 4.5.0 all-in-one, read from the
/// `.metadata/metadata_config.properties` of a started 4.5.0 distribution
/// (the list the other versions and kinds are derived from).
const TARGETS_450: [&str; 78] = [
    "XMLInputFactory.properties",
    "diagnostics-tool/conf/config.toml",
    "repository/conf/advanced/qpid-config.xml",
    "repository/conf/api-manager.xml",
    "repository/conf/axis2/axis2.xml",
    "repository/conf/axis2/axis2_ControlPlane.xml",
    "repository/conf/axis2/axis2_KM.xml",
    "repository/conf/axis2/axis2_TM.xml",
    "repository/conf/axis2/axis2_blocking_client.xml",
    "repository/conf/axis2/axis2_client.xml",
    "repository/conf/axis2/tenant-axis2.xml",
    "repository/conf/axis2/tenant-axis2_ControlPlane.xml",
    "repository/conf/axis2/tenant-axis2_KM.xml",
    "repository/conf/broker.xml",
    "repository/conf/carbon.properties",
    "repository/conf/carbon.xml",
    "repository/conf/consent-mgt-config.xml",
    "repository/conf/data-bridge/data-agent-config.xml",
    "repository/conf/data-bridge/data-bridge-config.xml",
    "repository/conf/datasources/master-datasources.xml",
    "repository/conf/etc/jmx.xml",
    "repository/conf/etc/tasks-config.xml",
    "repository/conf/event-processor.xml",
    "repository/conf/governance.xml",
    "repository/conf/hazelcast.properties",
    "repository/conf/health-check-config.xml",
    "repository/conf/identity/EndpointConfig.properties",
    "repository/conf/identity/RecoveryEndpointConfig.properties",
    "repository/conf/identity/application-authentication.xml",
    "repository/conf/identity/captcha-config.properties",
    "repository/conf/identity/entitlement.properties",
    "repository/conf/identity/identity-event.properties",
    "repository/conf/identity/identity.xml",
    "repository/conf/identity/schemas.xml",
    "repository/conf/jndi-cp.properties",
    "repository/conf/jndi.properties",
    "repository/conf/jndi2-cp.properties",
    "repository/conf/jndi2.properties",
    "repository/conf/multitenancy/cloud-services-desc.xml",
    "repository/conf/multitenancy/multitenancy-packages.xml",
    "repository/conf/multitenancy/stratos.xml",
    "repository/conf/multitenancy/usage-throttling-agent-config.xml",
    "repository/conf/netty.properties",
    "repository/conf/nhttp.properties",
    "repository/conf/output-event-adapters.xml",
    "repository/conf/passthru-http.properties",
    "repository/conf/registry.xml",
    "repository/conf/registry_TM.xml",
    "repository/conf/security/Owasp.CsrfGuard.Carbon.properties",
    "repository/conf/security/authenticators.xml",
    "repository/conf/security/cipher-text.properties",
    "repository/conf/solr/registry-indexing/core.properties",
    "repository/conf/synapse-handlers.xml",
    "repository/conf/synapse.properties",
    "repository/conf/tenant-mgt.xml",
    "repository/conf/throttle.properties",
    "repository/conf/tomcat/carbon/META-INF/context.xml",
    "repository/conf/tomcat/carbon/WEB-INF/web.xml",
    "repository/conf/tomcat/carbon/WEB-INF/web_TM_GW.xml",
    "repository/conf/tomcat/catalina-server.xml",
    "repository/conf/tomcat/context.xml",
    "repository/conf/tomcat/web.xml",
    "repository/conf/user-mgt.xml",
    "repository/conf/wso2-log-masking.properties",
    "repository/deployment/server/eventpublishers/HTTP-recommendationEventPublisher.xml",
    "repository/deployment/server/eventpublishers/asyncWebhooksEventPublisher2.xml",
    "repository/deployment/server/eventpublishers/asyncWebhooksEventPublisher_1.0.0_2.xml",
    "repository/deployment/server/eventpublishers/jmsEventPublisher2.xml",
    "repository/deployment/server/eventpublishers/jmsEventPublisher_1.10.0_2.xml",
    "repository/deployment/server/eventpublishers/tokenRevokeEventJMSPublisher_2.xml",
    "repository/deployment/server/synapse-configs/default/inbound-endpoints/SecureWebSocketInboundEndpoint.xml",
    "repository/deployment/server/synapse-configs/default/inbound-endpoints/SecureWebhookServer.xml",
    "repository/deployment/server/synapse-configs/default/inbound-endpoints/WebSocketInboundEndpoint.xml",
    "repository/deployment/server/webapps/accountrecoveryendpoint/WEB-INF/web.xml",
    "repository/deployment/server/webapps/authenticationendpoint/WEB-INF/web.xml",
    "repository/resources/apim-synapse-config/SecureWebhookServer.xml",
    "repository/resources/security/listenerprofiles.xml",
    "repository/resources/security/sslprofiles.xml",
];

const INBOUND: [&str; 3] = [
    "repository/deployment/server/synapse-configs/default/inbound-endpoints/SecureWebSocketInboundEndpoint.xml",
    "repository/deployment/server/synapse-configs/default/inbound-endpoints/SecureWebhookServer.xml",
    "repository/deployment/server/synapse-configs/default/inbound-endpoints/WebSocketInboundEndpoint.xml",
];

/// The config mapper's targets (product home relative, without `.j2`) of
/// the image of `kind` and `version`, as far as the official sources and
/// started distributions tell them: complete for the 4.1.0, 4.2.0 and 4.5.0
/// all-in-one; derived from those by the product-level template changes for
/// the other versions and kinds. The test bases carry these templates; a
/// build reads the real list from the base itself.
pub fn known_targets(kind: ProductKind, version: Option<&str>) -> Vec<&'static str> {
    let v = major_minor(version).unwrap_or((4, 5));
    let mut t: Vec<&'static str> = TARGETS_450.to_vec();
    let drop = |t: &mut Vec<&'static str>, gone: &[&str]| t.retain(|x| !gone.contains(x));
    if v < (4, 3) {
        drop(&mut t, &["diagnostics-tool/conf/config.toml", "repository/conf/tomcat/context.xml"]);
    }
    if v < (4, 2) {
        drop(
            &mut t,
            &[
                "repository/conf/identity/schemas.xml",
                "repository/deployment/server/webapps/accountrecoveryendpoint/WEB-INF/web.xml",
                "repository/deployment/server/webapps/authenticationendpoint/WEB-INF/web.xml",
            ],
        );
        t.extend([
            "repository/conf/axis2/axis2_Devportal.xml",
            "repository/conf/axis2/axis2_Publisher.xml",
            "repository/conf/axis2/tenant-axis2_Devportal.xml",
            "repository/conf/axis2/tenant-axis2_Publisher.xml",
        ]);
    }
    if v >= (4, 6) && matches!(kind, ProductKind::AllInOne | ProductKind::Gateway) {
        t.extend([
            "repository/resources/apim-synapse-config/SecureWebSocketInboundEndpoint.xml",
            "repository/resources/apim-synapse-config/WebSocketInboundEndpoint.xml",
        ]);
    }
    if v >= (4, 7) {
        t.push("repository/conf/service-access-control.xml");
        if kind != ProductKind::Gateway {
            t.push("repository/conf/dependency.properties");
        }
    }
    match kind {
        ProductKind::AllInOne => {}
        ProductKind::ControlPlane => {
            drop(
                &mut t,
                &[
                    "repository/conf/axis2/axis2_ControlPlane.xml",
                    "repository/conf/axis2/axis2_TM.xml",
                    "repository/conf/axis2/tenant-axis2_ControlPlane.xml",
                    "repository/conf/registry_TM.xml",
                    "repository/resources/apim-synapse-config/SecureWebhookServer.xml",
                ],
            );
            drop(&mut t, &INBOUND);
        }
        ProductKind::Gateway => drop(
            &mut t,
            &[
                "repository/conf/registry_TM.xml",
                "repository/conf/tomcat/carbon/WEB-INF/web_TM_GW.xml",
                "repository/deployment/server/webapps/authenticationendpoint/WEB-INF/web.xml",
            ],
        ),
        ProductKind::TrafficManager => {
            drop(
                &mut t,
                &[
                    "repository/conf/axis2/axis2_ControlPlane.xml",
                    "repository/conf/axis2/axis2_KM.xml",
                    "repository/conf/axis2/axis2_TM.xml",
                    "repository/conf/axis2/tenant-axis2_ControlPlane.xml",
                    "repository/conf/axis2/tenant-axis2_KM.xml",
                    "repository/conf/registry_TM.xml",
                    "repository/conf/tomcat/carbon/WEB-INF/web_TM_GW.xml",
                    "repository/deployment/server/webapps/authenticationendpoint/WEB-INF/web.xml",
                    "repository/resources/apim-synapse-config/SecureWebhookServer.xml",
                ],
            );
            drop(&mut t, &INBOUND);
        }
    }
    t.sort_unstable();
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProductKind::*;

    #[test]
    fn entrypoint_steps_per_version_and_kind() {
        assert_eq!(profile_step(AllInOne, Some("4.1.0")), ProfileStep::AnyName);
        assert_eq!(profile_step(AllInOne, Some("4.4.0")), ProfileStep::AnyName);
        assert_eq!(profile_step(AllInOne, Some("4.5.0")), ProfileStep::Never);
        assert_eq!(profile_step(ControlPlane, Some("4.7.0")), ProfileStep::KeyManagerOnly);
        assert_eq!(profile_step(Gateway, Some("4.6.0")), ProfileStep::Never);
        assert_eq!(launcher(ControlPlane, Some("key-manager")), "key-manager.sh");
        assert_eq!(launcher(ControlPlane, Some("default")), "api-cp.sh");
        assert!(traps_sigterm(Some("4.7.0")) && !traps_sigterm(Some("4.6.0")));
        assert_eq!(
            osgi_profiles_started(Some(AllInOne), Some("4.4.0")),
            ["default", "control-plane", "traffic-manager", "gateway-worker"],
            "no OSGi profile api-key-manager-node"
        );
        assert_eq!(osgi_profiles_started(Some(ControlPlane), Some("4.5.0")), ["default"]);
        assert_eq!(osgi_profiles_started(Some(AllInOne), Some("4.5.0")), ["default"]);
        assert_eq!(preserved(Gateway), ["synapse-configs"]);
        assert_eq!(
            upstream_entrypoint(TrafficManager, Some("4.6.0")),
            "wso2/docker-apim 4.6.x dockerfiles/ubuntu/apim-tm/docker-entrypoint.sh"
        );
    }

    #[test]
    fn templates_and_targets() {
        assert_eq!(
            template_target("repository/resources/conf/templates/repository/conf/carbon.xml.j2"),
            Some("repository/conf/carbon.xml")
        );
        assert_eq!(
            template_target("repository/resources/conf/templates/XMLInputFactory.properties.j2"),
            Some("XMLInputFactory.properties")
        );
        assert_eq!(template_target("repository/resources/conf/templates/repository/conf/x.xml"), None);
        assert_eq!(template_target("repository/conf/carbon.xml.j2"), None);
        assert_eq!(known_targets(AllInOne, Some("4.5.0")).len(), 78);
        assert_eq!(known_targets(AllInOne, Some("4.1.0")).len(), 77);
        assert_eq!(known_targets(AllInOne, Some("4.2.0")).len(), 76);
        let acp = known_targets(ControlPlane, Some("4.7.0"));
        assert!(acp.contains(&"repository/conf/dependency.properties") && !acp.contains(&INBOUND[0]));
        let gw = known_targets(Gateway, Some("4.6.0"));
        assert!(gw.contains(&"repository/resources/apim-synapse-config/WebSocketInboundEndpoint.xml"));
        assert!(gw.contains(
            &"repository/deployment/server/synapse-configs/default/inbound-endpoints/WebSocketInboundEndpoint.xml"
        ));
    }
}
