//! The official shapes of the test bases: per version (4.1–4.7) and kind the
//! tree the official Dockerfile lays out and the scripts that start it, each
//! written by wso2img from the facts of the official sources (never copied)
//! and run by a static busybox `sh`:
//! - `~/docker-entrypoint.sh`: the entrypoint's steps in upstream's order
//!   (wso2-tmp restore, profileSetup, config volume, artifact volume,
//!   launcher; 4.7's SIGTERM trap);
//! - `bin/profileSetup.sh`: what upstream's does per profile
//!   ([`crate::wso2::profiles`]);
//! - the launcher: what the product writes at start — the pid file, the config
//!   mapper's outputs (every `.j2` template copied to its target), `backup/`
//!   and `.metadata/`, the OSGi profile's `bundles.info`, `components/lib`
//!   jars as bundles in `dropins`, `repository/logs/`, `tmp/` — then a start
//!   line; it fails where it cannot write, as the server does.

use std::collections::BTreeMap;

use super::{SampleBase, TarBuf};
use crate::error::Result;
use crate::wso2::profiles::{self, Profile, Pruning};
use crate::wso2::startup::{self, ProfileStep};
use crate::wso2::{major_minor, portal_apps_dir, ProductKind};

/// The busybox applets the official shapes' scripts use, besides the generic ones.
pub(super) const APPLETS: [&str; 11] =
    ["cp", "mkdir", "touch", "rm", "mv", "sort", "dirname", "grep", "kill", "chmod", "printf"];

const USER_HOME: &str = "home/wso2carbon";

/// The carbon-kernel and config-mapper tags a product version builds on.
fn kernel_and_mapper(version: (u32, u32)) -> (&'static str, &'static str) {
    match version {
        (4, 1) => ("v4.6.3", "v1.0.20"),
        (4, 2) => ("v4.8.1", "v1.0.20"),
        (4, 3) => ("v4.9.26", "v1.0.23"),
        (4, 4) => ("v4.9.27", "v1.0.23"),
        (4, 5) => ("v4.9.28", "v1.0.23"),
        (4, 6) => ("v4.9.33", "v1.0.23"),
        _ => ("v4.11.18", "v1.0.26"),
    }
}

/// A tree of entries below `/`, written in path order (parents first).
#[derive(Default)]
struct Tree(BTreeMap<String, Node>);

enum Node {
    Dir { mode: u32, uid: u32 },
    File { data: Vec<u8>, mode: u32, uid: u32 },
}

impl Tree {
    /// A folder with this mode and owner (replacing what was there).
    fn dir(&mut self, path: &str, mode: u32, uid: u32) {
        self.0.insert(path.trim_end_matches('/').to_string(), Node::Dir { mode, uid });
    }

    /// A file; its missing parents below the user home become 0755 folders of `uid`.
    fn file(&mut self, path: &str, data: impl Into<Vec<u8>>, mode: u32, uid: u32) {
        let mut parent = path;
        while let Some((p, _)) = parent.rsplit_once('/') {
            if p.len() <= USER_HOME.len() {
                break;
            }
            self.0.entry(p.to_string()).or_insert(Node::Dir { mode: 0o755, uid });
            parent = p;
        }
        self.0.insert(path.to_string(), Node::File { data: data.into(), mode, uid });
    }

    fn has(&self, path: &str) -> bool {
        self.0.contains_key(path)
    }

    fn write(self, t: &mut TarBuf) {
        for (path, node) in self.0 {
            match node {
                Node::Dir { mode, uid } => t.dir(&format!("{path}/"), mode, uid),
                Node::File { data, mode, uid } => t.file(&path, &data, mode, uid),
            }
        }
    }
}

impl SampleBase {
    fn mm(&self) -> (u32, u32) {
        major_minor(Some(&self.version)).unwrap_or((4, 5))
    }

    /// The user home and the product tree of the official image of this kind and version.
    pub(super) fn official_product_tar(&self, product: &str) -> Result<Vec<u8>> {
        let uid = self.user.uid();
        let p = product.trim_start_matches('/');
        let version = Some(self.version.as_str());
        let mut tree = Tree::default();
        // The Dockerfile's user step: `useradd --create-home` (or BusyBox `adduser`) makes the home.
        tree.dir(USER_HOME, self.os.home_mode(), uid);
        // COPY --chown=wso2carbon:wso2 docker-entrypoint.sh ${USER_HOME}/
        tree.file(&format!("{USER_HOME}/docker-entrypoint.sh"), self.entrypoint_script(), 0o755, uid);
        for d in ["solr", "solr/indexed-data", "solr/database"] {
            tree.dir(&format!("{USER_HOME}/{d}"), 0o755, uid);
        }
        tree.dir(p, 0o755, uid);
        for d in [
            "bin",
            "repository/components/lib",
            "repository/components/dropins",
            "repository/conf",
            "repository/database",
            "repository/deployment/server",
            "repository/logs",
            "repository/resources/security",
            "tmp",
        ] {
            tree.dir(&format!("{p}/{d}"), 0o755, uid);
        }
        let mut launchers = vec![self.kind.launcher()];
        if self.kind == ProductKind::ControlPlane {
            launchers.push(startup::launcher(self.kind, Some("key-manager")));
        }
        for l in launchers {
            tree.file(&format!("{p}/bin/{l}"), self.launcher_script(l), 0o755, uid);
        }
        tree.file(&format!("{p}/bin/version.txt"), format!("WSO2 API Manager v{}\n", self.version), 0o644, uid);
        let profiles = profiles::profiles(Some(self.kind), version);
        if !profiles.is_empty() {
            tree.file(&format!("{p}/{}", profiles::SCRIPT), self.profile_setup_script(&profiles), 0o755, uid);
        }
        tree.file(
            &format!("{p}/{}", profiles::DEPLOYMENT_TOML),
            "[server]\nhostname = \"localhost\"\nserver_role = \"default\"\n",
            0o644,
            uid,
        );
        let mut templates: Vec<&str> = profiles.iter().map(|p| p.name).collect();
        if self.kind == ProductKind::AllInOne && (4, 3) <= self.mm() && self.mm() <= (4, 4) {
            // Its profile is no longer accepted, but the template remains.
            templates.push("api-key-manager-deprecated");
        }
        for name in templates {
            tree.file(
                &format!("{p}/{}/{name}.toml", profiles::DEPLOYMENT_TEMPLATES),
                deployment_template(name),
                0o644,
                uid,
            );
        }
        for rule in ["default.json", "infer.json", "key-mappings.json", "validator.json", "unit-resolve.json"] {
            tree.file(&format!("{p}/repository/resources/conf/{rule}"), "{}\n", 0o644, uid);
        }
        // The config mapper's templates and the outputs the distribution ships.
        for target in startup::known_targets(self.kind, version) {
            tree.file(&format!("{p}/{target}"), format!("shipped {target}\n"), 0o644, uid);
            tree.file(
                &format!("{p}/{}/{target}.j2", startup::TEMPLATES),
                format!("rendered from {target}.j2\n"),
                0o644,
                uid,
            );
        }
        for osgi in startup::osgi_profiles(self.kind) {
            let conf = format!("{p}/repository/components/{osgi}/configuration");
            tree.file(&format!("{conf}/config.ini"), format!("# OSGi profile {osgi}\n"), 0o644, uid);
            tree.file(
                &format!("{conf}/org.eclipse.equinox.simpleconfigurator/bundles.info"),
                "# shipped bundles.info\n",
                0o644,
                uid,
            );
        }
        self.deployment_tree(&mut tree, p, uid);
        for store in ["wso2carbon.jks", "client-truststore.jks"] {
            tree.file(
                &format!("{p}/repository/resources/security/{store}"),
                vec![0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 0],
                0o644,
                uid,
            );
        }
        // The root RUN step: `mkdir ${USER_HOME}/wso2-tmp` and `cp -r …/deployment/server/<dir>`,
        // as root and never chowned.
        let tmp = format!("{USER_HOME}/{}", startup::WSO2_TMP);
        tree.dir(&tmp, 0o755, 0);
        for d in startup::preserved(self.kind) {
            let from = format!("{p}/{}/{d}", startup::DEPLOYMENT_SERVER);
            let copies: Vec<(String, Vec<u8>, bool)> = tree
                .0
                .range(from.clone()..)
                .take_while(|(k, _)| k.starts_with(&from))
                .filter(|(k, _)| k.len() == from.len() || k.as_bytes()[from.len()] == b'/')
                .map(|(k, n)| {
                    let rel = format!("{tmp}/{d}{}", &k[from.len()..]);
                    match n {
                        Node::Dir { .. } => (rel, Vec::new(), true),
                        Node::File { data, .. } => (rel, data.clone(), false),
                    }
                })
                .collect();
            for (path, data, is_dir) in copies {
                if is_dir {
                    tree.dir(&path, 0o755, 0);
                } else {
                    tree.file(&path, data, 0o644, 0);
                }
            }
        }
        let mut t = TarBuf::default();
        tree.write(&mut t);
        Ok(t.finish())
    }

    /// `repository/deployment/server`: the portals, web applications, Synapse
    /// configurations and execution plans of the kind.
    fn deployment_tree(&self, tree: &mut Tree, p: &str, uid: u32) {
        let server = format!("{p}/{}", startup::DEPLOYMENT_SERVER);
        let apps = portal_apps_dir(Some(&self.version));
        for portal in self.kind.portals() {
            for sub in ["site/public/theme", "site/public/conf"] {
                tree.dir(&format!("{server}/{apps}/{portal}/{sub}"), 0o755, uid);
            }
            tree.file(&format!("{server}/{apps}/{portal}/site/public/index.html"), "<html/>\n", 0o644, uid);
        }
        if self.kind.portals().contains(&"devportal") {
            let theme = if apps == "webapps" { "userTheme.json" } else { "userTheme.js" };
            tree.file(&format!("{server}/{apps}/devportal/site/public/theme/{theme}"), "{}\n", 0o644, uid);
        }
        for app in self.webapps() {
            if app.ends_with(".war") {
                tree.file(&format!("{server}/webapps/{app}"), format!("war {app}\n"), 0o644, uid);
            } else {
                let web_xml = format!("{server}/webapps/{app}/WEB-INF/web.xml");
                if !tree.has(&web_xml) {
                    tree.file(&web_xml, format!("shipped {app} web.xml\n"), 0o644, uid);
                }
            }
        }
        let synapse = format!("{server}/synapse-configs/default");
        tree.file(&format!("{synapse}/synapse.xml"), "<definitions/>\n", 0o644, uid);
        if matches!(self.kind, ProductKind::AllInOne | ProductKind::Gateway) {
            tree.file(&format!("{synapse}/api/_TokenAPI_.xml"), "<api name=\"_WSO2AMTokenAPI_\"/>\n", 0o644, uid);
            tree.file(&format!("{synapse}/sequences/main.xml"), "<sequence name=\"main\"/>\n", 0o644, uid);
            tree.dir(&format!("{synapse}/proxy-services"), 0o755, uid);
        }
        if self.kind != ProductKind::Gateway {
            tree.file(
                &format!("{server}/executionplans/sample-throttle-policy.siddhiql"),
                "@Plan:name('sample')\n",
                0o644,
                uid,
            );
        }
    }

    /// The web applications of the kind (folders, or `.war` files).
    fn webapps(&self) -> Vec<&'static str> {
        const KEY_MANAGER: [&str; 9] = [
            "accountrecoveryendpoint",
            "authenticationendpoint",
            "api#identity#consent-mgt#v1.0.war",
            "api#identity#oauth2#dcr#v1.1.war",
            "api#identity#oauth2#v1.0.war",
            "api#identity#recovery#v0.9.war",
            "api#identity#user#v1.0.war",
            "keymanager-operations.war",
            "oauth2.war",
        ];
        const PORTAL_APIS: [&str; 4] =
            ["api#am#admin#v4.war", "api#am#devportal#v3.war", "api#am#publisher#v4.war", "internal#data#v1.war"];
        const GATEWAY: [&str; 2] = ["am#sample#pizzashack#v1.0.0.war", "api#am#gateway#v2.war"];
        let mut apps: Vec<&'static str> = match self.kind {
            ProductKind::AllInOne => KEY_MANAGER.iter().chain(&PORTAL_APIS).chain(&GATEWAY).copied().collect(),
            ProductKind::ControlPlane => KEY_MANAGER.iter().chain(&PORTAL_APIS).copied().collect(),
            ProductKind::TrafficManager => vec!["internal#data#v1.war"],
            ProductKind::Gateway => GATEWAY.to_vec(),
        };
        if self.mm() <= (4, 1) && self.kind == ProductKind::AllInOne {
            apps.push("client-registration#v0.17.war");
        }
        apps
    }

    /// `~/docker-entrypoint.sh`.
    fn entrypoint_script(&self) -> String {
        let version = Some(self.version.as_str());
        let kind = self.kind;
        let mut s = format!(
            "#!/bin/sh\n\
             # wso2img test base: the entrypoint of WSO2 API Manager {} ({}), written for busybox sh from the\n\
             # facts of {} (a bash script upstream; not a copy).\n\
             set -e\n\
             config_volume=\"${{WORKING_DIRECTORY}}/{}\"\n\
             artifact_volume=\"${{WORKING_DIRECTORY}}/{}\"\n\
             deployment_volume=\"${{WSO2_SERVER_HOME}}/{}\"\n\
             original_deployment_artifacts=\"${{WORKING_DIRECTORY}}/{}\"\n\n",
            self.version,
            kind.name(),
            startup::upstream_entrypoint(kind, version),
            startup::CONFIG_VOLUME,
            startup::ARTIFACT_VOLUME,
            startup::DEPLOYMENT_SERVER,
            startup::WSO2_TMP,
        );
        s.push_str(
            "# Step 1: the user home and the product home must exist.\n\
             test -d \"${WORKING_DIRECTORY}\" || { echo \"WSO2 Docker non-root user home does not exist\" >&2; exit 1; }\n\
             test -d \"${WSO2_SERVER_HOME}\" || { echo \"WSO2 Docker product home does not exist\" >&2; exit 1; }\n\n",
        );
        s.push_str(&format!(
            "# Step 2, first of all: the artifacts preserved in ~/wso2-tmp go back into an empty (or missing)\n\
             # deployment folder; the copies belong to whoever runs the container.\n\
             for d in {}; do\n  \
               if [ -d \"${{original_deployment_artifacts}}/$d\" ] && [ -z \"$(ls -A \"${{deployment_volume}}/$d\")\" ]; then\n    \
                 if cp -R \"${{original_deployment_artifacts}}/$d\"/* \"${{deployment_volume}}/$d\"; then\n      \
                   echo \"Successfully copied the preserved, default artifacts to original location ($d)\"\n    \
                 else\n      \
                   echo \"Failed to copy the preserved, default artifacts to original location ($d)\" >&2\n      \
                   exit 1\n    \
                 fi\n  \
               fi\n\
             done\n\n",
            startup::RESTORED.join(" ")
        ));
        match startup::profile_step(kind, version) {
            ProfileStep::AnyName => s.push_str(
                "# Step 3: a PROFILE_NAME runs profileSetup.sh (with sh), before the volumes are copied.\n\
                 if [ -n \"${PROFILE_NAME}\" ]; then\n  \
                   echo \"Optimizing WSO2 Carbon Server\" >&2\n  \
                   sh \"${WSO2_SERVER_HOME}/bin/profileSetup.sh\" -Dprofile=\"${PROFILE_NAME}\"\n\
                 fi\n\n",
            ),
            ProfileStep::KeyManagerOnly => s.push_str(
                "# Step 3: only PROFILE_NAME=key-manager runs profileSetup.sh (with sh), before the volumes are copied.\n\
                 if [ \"${PROFILE_NAME}\" = \"key-manager\" ]; then\n  \
                   echo \"Optimizing WSO2 Carbon Server\" >&2\n  \
                   sh \"${WSO2_SERVER_HOME}/bin/profileSetup.sh\" -Dprofile=key-manager\n\
                 fi\n\n",
            ),
            ProfileStep::Never => s.push_str("# Step 3: this kind's entrypoint reads no PROFILE_NAME.\n\n"),
        }
        s.push_str(
            "# Step 4: the config volume over the product home (cp -RL follows symlinks such as ConfigMap ..data),\n\
             # after the profile: a deployment.toml there wins over the profile's template.\n\
             test -d \"${config_volume}\" && [ \"$(ls -A \"${config_volume}\")\" ] && cp -RL \"${config_volume}\"/* \"${WSO2_SERVER_HOME}/\"\n\
             # Step 5: the artifact volume, the same way.\n\
             test -d \"${artifact_volume}\" && [ \"$(ls -A \"${artifact_volume}\")\" ] && cp -RL \"${artifact_volume}\"/* \"${WSO2_SERVER_HOME}/\"\n\n\
             # Step 6: the launcher, run with sh and never exec'd.\n\
             echo \"Start WSO2 Carbon server\" >&2\n",
        );
        let bin = "${WSO2_SERVER_HOME}/bin";
        let launcher = kind.launcher();
        if startup::profile_step(kind, version) == ProfileStep::AnyName {
            s.push_str(&format!(
                "if [ -z \"${{PROFILE_NAME}}\" ]; then\n  \
                   sh \"{bin}/{launcher}\" \"$@\"\n\
                 else\n  \
                   sh \"{bin}/{launcher}\" -Dprofile=\"${{PROFILE_NAME}}\" \"$@\"\n\
                 fi\n"
            ));
            return s;
        }
        if kind == ProductKind::ControlPlane {
            s.push_str(&format!(
                "# The key manager starts with key-manager.sh (without -Dprofile), the control plane with api-cp.sh.\n\
                 if [ \"${{PROFILE_NAME}}\" = \"key-manager\" ]; then\n  \
                   launcher=\"{bin}/{}\"\n\
                 else\n  \
                   launcher=\"{bin}/{launcher}\"\n\
                 fi\n",
                startup::launcher(kind, Some("key-manager"))
            ));
        } else {
            s.push_str(&format!("launcher=\"{bin}/{launcher}\"\n"));
        }
        if startup::traps_sigterm(version) {
            s.push_str(
                "# 4.7: the server runs in the background; SIGTERM/SIGINT stop it with `<launcher> stop`.\n\
                 server_pid=\"\"\n\
                 stop_handler() {\n  \
                   trap - TERM INT\n  \
                   echo \"Stopping WSO2 gracefully...\"\n  \
                   sh \"$launcher\" stop || true\n  \
                   if [ -n \"$server_pid\" ]; then\n    \
                     kill -0 \"$server_pid\" 2>/dev/null && wait \"$server_pid\"\n  \
                   fi\n  \
                   exit 0\n\
                 }\n\
                 trap 'stop_handler' TERM INT\n\
                 sh \"$launcher\" \"$@\" &\n\
                 server_pid=$!\n\
                 kill -0 \"${server_pid}\" 2>/dev/null && wait \"${server_pid}\"\n",
            );
        } else {
            s.push_str("sh \"$launcher\" \"$@\"\n");
        }
        s
    }

    /// `bin/profileSetup.sh`, from the profiles' data.
    fn profile_setup_script(&self, profiles: &[Profile]) -> String {
        let source = if self.kind == ProductKind::ControlPlane {
            "api-control-plane/modules/distribution/product/src/main/startup-scripts/profileSetup.sh"
        } else {
            "modules/distribution/product/src/main/startup-scripts/profileSetup.sh"
        };
        let mut s = format!(
            "#!/bin/sh\n\
             # wso2img test base: bin/profileSetup.sh of WSO2 API Manager {v} ({kind}), written from the facts of\n\
             # product-apim v{v} {source} (not a copy). No `set -e`: it always exits 0.\n\
             echo \"WSO2 API Manager {kind} {v} (sample) profileSetup.sh with: $* PROFILE_NAME=${{PROFILE_NAME}}\"\n\
             userLocation=$(pwd)\n\
             cd \"$(dirname \"$0\")\"\n\
             skip=\n\
             for a in \"$@\"; do\n  \
               case \"$a\" in --skipConfigOptimization|-skipConfigOptimization|skipConfigOptimization) skip=1 ;; esac\n\
             done\n\
             templates=../{templates}\n\
             # replaceDeploymentConfiguration: deployment.toml is renamed to .backup and the profile's template\n\
             # copied in its place (skipped with --skipConfigOptimization).\n\
             deployment() {{\n  \
               if [ -z \"$skip\" ] && [ -f ../{toml} ] && [ -f \"../{dt}/$1.toml\" ]; then\n    \
                 mv ../{toml} ../{backup}\n    \
                 cp \"../{dt}/$1.toml\" ../{toml}\n  \
               fi\n\
             }}\n\
             # replaceAxis2TemplateFile and the other replace…TemplateFile helpers: the template is moved to its\n\
             # backup and the profile's copied in its place.\n\
             swap() {{\n  \
               mv \"$templates/$1\" \"$templates/$3\"\n  \
               cp \"$templates/$2\" \"$templates/$1\"\n\
             }}\n\
             # removeSynapseConfigs: everything in synapse-configs/default but synapse.xml.\n\
             clear_synapse() {{\n  \
               for e in ../{synapse}/*; do\n    \
                 [ -e \"$e\" ] || continue\n    \
                 [ \"${{e##*/}}\" = synapse.xml ] || rm -r \"$e\"\n  \
               done\n\
             }}\n\
             case \"$1\" in\n",
            v = self.version,
            kind = self.kind.name(),
            templates = profiles::TEMPLATES,
            toml = profiles::DEPLOYMENT_TOML,
            backup = profiles::DEPLOYMENT_BACKUP,
            dt = profiles::DEPLOYMENT_TEMPLATES,
            synapse = profiles::SYNAPSE_DEFAULT,
        );
        for profile in profiles {
            s.push_str(&format!(
                "  -Dprofile={name})\n    \
                   echo \"Starting to optimize API Manager for the {name} profile\"\n    \
                   deployment {name}\n",
                name = profile.name
            ));
            for sw in &profile.swaps {
                s.push_str(&format!("    swap '{}' '{}' '{}'\n", sw.template, sw.with, sw.backup));
            }
            for r in &profile.removes {
                s.push_str(&format!("    rm -f '../{r}'\n"));
            }
            if profile.clears_synapse_configs {
                s.push_str("    clear_synapse\n");
            }
            s.push_str(&prune(profiles::WEBAPPS, &profile.webapps));
            if let Some(j) = &profile.jaggeryapps {
                s.push_str(&prune(profiles::JAGGERYAPPS, j));
            }
            s.push_str("    ;;\n");
        }
        s.push_str(&format!(
            "  *)\n    \
               echo \"{}\"\n    \
               cd \"$userLocation\"\n    \
               exit\n    \
               ;;\n\
             esac\n\
             cd \"$userLocation\"\n\
             echo \"Finished the optimizations\"\n",
            profiles::UNKNOWN_PROFILE
        ));
        s
    }

    /// A launcher of the kind (`bin/<name>`).
    fn launcher_script(&self, name: &str) -> String {
        let (kernel, mapper) = kernel_and_mapper(self.mm());
        format!(
            "#!/bin/sh\n\
             # wso2img test base: bin/{name} of WSO2 API Manager {v} ({kind}), written from the facts of product-apim\n\
             # v{v} …/startup-scripts/{name} (the launcher), carbon-kernel {kernel} core/org.wso2.carbon.server/…/Main.java\n\
             # (pid file, OSGi profile, lib jars to bundles) and wso2/config-mapper {mapper}\n\
             # src/main/java/org/wso2/config/mapper/ConfigParser.java (rendering); no JVM: the files they write, then\n\
             # a start line. A write that fails fails the start, as it does for the server.\n\
             CARBON_HOME=$(cd \"$(dirname \"$0\")/..\" && pwd)\n\
             # `{name} stop`: kill -term the pid of wso2carbon.pid.\n\
             if [ \"$1\" = stop ]; then\n  \
               kill -TERM \"$(cat \"$CARBON_HOME/{pid}\")\"\n  \
               exit\n\
             fi\n\
             echo \"WSO2 API Manager {kind} {v} (sample) {name} with: $* PROFILE_NAME=${{PROFILE_NAME}}\"\n\
             cd \"$CARBON_HOME\"\n\
             # The launcher empties tmp/ before it starts java.\n\
             rm -rf \"$CARBON_HOME\"/tmp/*\n\
             profile=default\n\
             for a in \"$@\"; do\n  \
               case \"$a\" in -Dprofile=*) profile=${{a#-Dprofile=}} ;; esac\n\
             done\n\
             fail() {{ echo \"$*\" >&2; exit 1; }}\n\
             # Main: the pid file in the product home.\n\
             echo $$ > {pid} || fail \"Error writing {pid}\"\n\
             # ConfigParser, at every start: backup/ deleted and rewritten with the current outputs; every X.j2\n\
             # below templates/ rendered to X (here: copied); .metadata/ rewritten. No deployment.toml: a warning.\n\
             templates={templates}\n\
             if [ -f repository/conf/deployment.toml ]; then\n  \
               {{ rm -rf {backup} && mkdir {backup}; }} || fail \"Error while performing configuration changes ({backup}/)\"\n  \
               (cd \"$templates\" && find . -type f -name '*.j2') | sort | while read -r t; do\n    \
                 out=${{t#./}}\n    \
                 out=${{out%.j2}}\n    \
                 if [ -f \"$out\" ]; then\n      \
                   {{ mkdir -p \"{backup}/$(dirname \"$out\")\" && cp \"$out\" \"{backup}/$out\"; }} || exit 1\n    \
                 fi\n    \
                 {{ mkdir -p \"$(dirname \"$out\")\" && cp \"$templates/$t\" \"$out\"; }} || exit 1\n  \
               done || fail \"Error while performing configuration changes (rendering the templates)\"\n  \
               {{ mkdir -p {metadata} && (cd \"$templates\" && find . -type f -name '*.j2' | sort) > {metadata}/metadata_template.properties \\\n    \
                 && echo \"repository/conf/deployment.toml\" > {metadata}/metadata_config.properties \\\n    \
                 && : > {metadata}/references.properties; }} || fail \"Error while performing configuration changes ({metadata}/)\"\n\
             else\n  \
               echo \"WARN: repository/conf/deployment.toml not found; no configuration changes\" >&2\n\
             fi\n\
             # Main: -Dprofile picks repository/components/<profile>/ (default: default); its bundles.info is rewritten.\n\
             [ -d \"repository/components/$profile\" ] || fail \"No OSGi profile repository/components/$profile (the server hangs here)\"\n\
             bundles=\"repository/components/$profile/configuration/org.eclipse.equinox.simpleconfigurator/bundles.info\"\n\
             {{ mkdir -p \"$(dirname \"$bundles\")\" && echo \"# started with profile $profile\" > \"$bundles\"; }} || fail \"Error writing $bundles\"\n\
             # Main: the jars of components/lib become OSGi bundles in components/dropins.\n\
             for j in repository/components/lib/*.jar; do\n  \
               [ -f \"$j\" ] || continue\n  \
               n=${{j##*/}}\n  \
               cp \"$j\" \"repository/components/dropins/${{n%.jar}}_1.0.0.jar\" || fail \"Error converting $j to an OSGi bundle\"\n\
             done\n\
             {{ mkdir -p repository/logs && echo \"WSO2 Carbon started ({name})\" >> repository/logs/wso2carbon.log; }} || fail \"Error writing repository/logs\"\n\
             {{ mkdir -p tmp && : > tmp/carbon.started; }} || fail \"Error writing tmp/\"\n\
             echo \"WSO2 Carbon started ({name}, profile $profile)\"\n\
             # For stop tests: stay up for WSO2IMG_SAMPLE_RUN_SECONDS.\n\
             if [ -n \"${{WSO2IMG_SAMPLE_RUN_SECONDS}}\" ]; then sleep \"${{WSO2IMG_SAMPLE_RUN_SECONDS}}\"; fi\n",
            v = self.version,
            kind = self.kind.name(),
            pid = startup::PID_FILE,
            backup = startup::BACKUP,
            metadata = startup::METADATA,
            templates = startup::TEMPLATES,
        )
    }
}

/// The pruning of one applications folder, as shell.
fn prune(dir: &str, pruning: &Pruning) -> String {
    let pattern = |p: &str| p.split('*').map(|part| format!("'{part}'")).collect::<Vec<_>>().join("*");
    let (arm_keep, arm_delete) = match pruning {
        Pruning::KeepOnly(keep) if keep.is_empty() => {
            return format!("    for e in ../{dir}/*; do [ -e \"$e\" ] && rm -r \"$e\"; done\n")
        }
        Pruning::KeepOnly(keep) => (keep.iter().map(|p| pattern(p)).collect::<Vec<_>>().join("|"), "*".to_string()),
        Pruning::Delete(gone) if gone.is_empty() => return String::new(),
        Pruning::Delete(gone) => {
            let mut pats: Vec<String> = gone.iter().map(|p| pattern(p)).collect();
            pats.extend(gone.iter().filter_map(|p| p.strip_suffix(".war")).map(pattern));
            return format!(
                "    for e in ../{dir}/*; do\n      case \"${{e##*/}}\" in {}) rm -r \"$e\" ;; esac\n    done\n",
                pats.join("|")
            );
        }
    };
    format!(
        "    for e in ../{dir}/*; do\n      [ -e \"$e\" ] || continue\n      case \"${{e##*/}}\" in {arm_keep}) ;; {arm_delete}) rm -r \"$e\" ;; esac\n    done\n"
    )
}

/// A profile's `deployment.toml` template, as WSO2 ships it in substance:
/// the hostname commented out (or `localhost`) and the server role.
fn deployment_template(name: &str) -> String {
    let (host, role) = match name {
        "control-plane" => ("hostname = \"localhost\"", Some("control-plane")),
        "gateway-worker" => ("#hostname = \"gw.wso2.com\"", Some("gateway-worker")),
        "traffic-manager" => ("#hostname = \"tm.wso2.com\"", Some("traffic-manager")),
        "api-key-manager-deprecated" => ("#hostname = \"km.wso2.com\"", Some("api-key-manager-deprecated")),
        "api-key-manager-node" => ("#hostname = \"km.wso2.com\"", Some("control-plane")),
        "api-publisher-deprecated" => ("#hostname = \"publisher.wso2.com\"", None),
        "api-devportal-deprecated" => ("#hostname = \"devportal.wso2.com\"", None),
        "key-manager" => ("hostname = \"localhost\"", Some("default")),
        _ => ("hostname = \"localhost\"", None),
    };
    let role = role.map(|r| format!("server_role = \"{r}\"\n")).unwrap_or_default();
    format!("# WSO2's {name}.toml (sample)\n[server]\n{host}\n{role}")
}
