//! What wso2img knows about WSO2 API Manager images: where the product home
//! is, which user runs it, where each kind of customization goes for a given
//! product version, and where the volumes are. Everything else consults this
//! module instead of hard-coding WSO2 paths.

pub mod checks;
pub mod jar;
pub mod keystore;
pub mod profiles;
pub mod sample;
pub mod startup;
pub mod truststore;

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::LayerKind;
use crate::error::{Error, Result};
use crate::layer::Owner;

/// Which WSO2 API Manager image a base is: the all-in-one image, or one of
/// the distributed images of 4.5 and later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductKind {
    /// `wso2/wso2am`: every component in one server (`wso2am-X.Y.Z`).
    #[serde(rename = "all-in-one")]
    AllInOne,
    /// `wso2/wso2am-acp`: the control plane with the portals (`wso2am-acp-X.Y.Z`).
    #[serde(rename = "acp")]
    ControlPlane,
    /// `wso2/wso2am-tm`: the traffic manager (`wso2am-tm-X.Y.Z`).
    #[serde(rename = "tm")]
    TrafficManager,
    /// `wso2/wso2am-universal-gw` (`classic-gw` upstream): the gateway.
    #[serde(rename = "gateway")]
    Gateway,
}

/// Product folder names (`<server>-X.Y.Z`) and the kind each one is, most
/// specific first.
const SERVERS: [(&str, ProductKind); 5] = [
    ("wso2am-acp", ProductKind::ControlPlane),
    ("wso2am-tm", ProductKind::TrafficManager),
    ("wso2am-universal-gw", ProductKind::Gateway),
    ("wso2am-classic-gw", ProductKind::Gateway),
    ("wso2am", ProductKind::AllInOne),
];

/// The portals a `themes/` folder may hold, and where each one's theme files go
/// inside the portal app.
const PORTALS: [(&str, &str); 3] =
    [("devportal", "site/public/theme"), ("publisher", "site/public/conf"), ("admin", "site/public/conf")];

impl ProductKind {
    /// Every kind.
    pub const ALL: [ProductKind; 4] =
        [ProductKind::AllInOne, ProductKind::ControlPlane, ProductKind::TrafficManager, ProductKind::Gateway];

    /// The short name used in reports and the `{kind}` tag placeholder.
    pub fn name(self) -> &'static str {
        match self {
            ProductKind::AllInOne => "all-in-one",
            ProductKind::ControlPlane => "acp",
            ProductKind::TrafficManager => "tm",
            ProductKind::Gateway => "gateway",
        }
    }

    /// How messages name the kind.
    pub fn describe(self) -> &'static str {
        match self {
            ProductKind::AllInOne => "all-in-one",
            ProductKind::ControlPlane => "control-plane (acp)",
            ProductKind::TrafficManager => "traffic-manager (tm)",
            ProductKind::Gateway => "gateway",
        }
    }

    /// The product folder's name without the version (the gateway's current name).
    pub fn server(self) -> &'static str {
        SERVERS.iter().find(|(_, k)| *k == self).map(|(s, _)| *s).unwrap_or("wso2am")
    }

    /// The launcher the official entrypoint runs, in `bin/` of the product home.
    pub fn launcher(self) -> &'static str {
        match self {
            ProductKind::AllInOne => "api-manager.sh",
            ProductKind::ControlPlane => "api-cp.sh",
            ProductKind::TrafficManager => "traffic-manager.sh",
            ProductKind::Gateway => "gateway.sh",
        }
    }

    /// The portals the official image of this kind ships.
    pub fn portals(self) -> &'static [&'static str] {
        match self {
            ProductKind::AllInOne | ProductKind::ControlPlane => &["devportal", "publisher", "admin"],
            ProductKind::TrafficManager | ProductKind::Gateway => &[],
        }
    }

    /// The ports the official Dockerfile of this kind exposes.
    pub fn exposed_ports(self) -> &'static [u16] {
        match self {
            ProductKind::Gateway => &[8280, 8243, 9763, 9443, 9099, 8099, 9021, 8021],
            _ => &[9763, 9443, 9999, 11111, 8280, 8243, 5672, 9711, 9611, 9099],
        }
    }
}

/// The kind, server folder name and version of a product home named
/// `<server>-X.Y.Z`, e.g. `wso2am-universal-gw-4.5.0`.
pub fn server_of(product_home: &str) -> Option<(ProductKind, &'static str, String)> {
    let name = product_home.trim_end_matches('/').rsplit('/').next()?;
    SERVERS.iter().find_map(|(server, kind)| {
        let v = name.strip_prefix(server)?.strip_prefix('-')?;
        let ok = !v.is_empty() && v.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        ok.then(|| (*kind, *server, v.to_string()))
    })
}

/// Facts detected from a base image config and filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// Absolute product home, e.g. `/home/wso2carbon/wso2am-4.3.0`.
    pub product_home: String,
    /// Product version from the home's name, e.g. `4.3.0`.
    pub version: Option<String>,
    /// Which image the base is, from the home's name (`None`: a folder name wso2img does not know).
    pub kind: Option<ProductKind>,
    /// The home's name without the version, e.g. `wso2am-universal-gw`.
    pub server: Option<String>,
    /// The portals the base serves (`devportal`, `publisher`, `admin`).
    pub portals: Vec<String>,
    /// The runtime user as the config names it (`10001`, `wso2carbon`).
    pub user: String,
    /// Numeric owner for customer files.
    pub owner: Owner,
    /// How the owner was found (`USER`, `/etc/passwd`, `owner` setting).
    pub owner_from: String,
    /// The runtime user's home; folders at and below it belong to the owner.
    pub user_home: String,
    /// Mode and owner of the base's folders from `/` down to the product
    /// home and the user home, and up to [`FOLDER_DEPTH`] levels below the
    /// product home (paths relative to `/`): a layer that re-adds one as the
    /// parent of a customer file gives it what the base has, so the user
    /// home keeps its 0750 or 0700. Filled by the pipeline (from the lock,
    /// or read once with [`base_folders`]); not part of reports.
    #[serde(skip_serializing, default)]
    pub folders: std::collections::BTreeMap<String, (u32, Owner)>,
}

/// How many levels below the product home [`Facts::folders`] reaches
/// (`repository/deployment/server/webapps` is four).
pub const FOLDER_DEPTH: usize = 4;

/// The runtime user named by a config's `User` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSpec {
    /// No `USER`: root.
    Root,
    /// A numeric uid, with a numeric gid when given.
    Numeric(u32, Option<u32>),
    /// A user name (and a group name or number when given).
    Named(String, Option<String>),
}

impl UserSpec {
    /// Parses a config `User` value.
    pub fn parse(user: &str) -> UserSpec {
        if user.is_empty() {
            return UserSpec::Root;
        }
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        match (u.parse::<u32>(), g.map(|g| g.parse::<u32>())) {
            (Ok(uid), None) => UserSpec::Numeric(uid, None),
            (Ok(uid), Some(Ok(gid))) => UserSpec::Numeric(uid, Some(gid)),
            _ => UserSpec::Named(u.to_string(), g.map(str::to_string)),
        }
    }
}

/// A `passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// User name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
}

/// Parses `/etc/passwd` text.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry { name: f[0].into(), uid: f[2].parse().ok()?, gid: f[3].parse().ok()?, home: f[5].into() })
        })
        .collect()
}

/// Looks up a group id by name in `/etc/group` text.
pub fn group_id(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name).then(|| f[2].parse().ok()).flatten()
    })
}

/// The value of `key` in a config's `Env`.
pub fn env(config: &Value, key: &str) -> Option<String> {
    config["config"]["Env"].as_array()?.iter().filter_map(Value::as_str).find_map(|e| {
        let (k, v) = e.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// Read access to a base image's filesystem, consulted only when the config
/// alone does not say enough (a named user, no `WSO2_SERVER_HOME`).
pub trait BaseFs {
    /// The bytes of a regular file (path relative to `/`), if it exists.
    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>>;
    /// The names in a folder (path relative to `/`).
    fn list_dir(&mut self, dir: &str) -> Result<Vec<String>>;
    /// Every folder at or below each of `roots`, and each folder of `exact`
    /// the base has (paths relative to `/`), with its mode and owner.
    fn dirs_under(&mut self, roots: &[String], exact: &[String]) -> Result<Vec<BaseDir>>;
    /// Every regular file at or below each of `roots` (paths relative to
    /// `/`), its bytes copied into a new file in `into`, in one pass.
    fn files_under(&mut self, roots: &[String], into: &Path) -> Result<Vec<BaseFile>>;
}

/// A folder of a base image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseDir {
    /// Its path in the image, relative to `/`.
    pub path: String,
    /// Its permission bits and owner, when a layer has an entry for it
    /// (`None`: only implied by the entries below it).
    pub meta: Option<(u32, Owner)>,
}

/// A regular file of a base, copied out of its layers.
#[derive(Debug, Clone)]
pub struct BaseFile {
    /// Its path in the image, relative to `/`.
    pub path: String,
    /// Where its bytes were copied.
    pub local: std::path::PathBuf,
    /// Its size.
    pub size: u64,
    /// Its permission bits.
    pub mode: u32,
    /// Its owner.
    pub owner: Owner,
}

/// Trees below the product home whose existing files are rewritten in place
/// at start: the config mapper's output and metadata, the OSGi framework
/// state, the H2 databases, and the keystores and `deployment.toml` the
/// entrypoint's config-volume copy (`cp -RL`) lays over the base's. Under an
/// arbitrary UID those files must be group-writable too, so they are
/// re-added with their bytes.
pub const REWRITTEN_TREES: [&str; 5] = [
    "repository/conf",
    "repository/resources/conf",
    "repository/resources/security",
    "repository/components/default/configuration",
    "repository/database",
];

/// The base files an arbitrary UID must be able to rewrite, copied into
/// `into`: every file below [`REWRITTEN_TREES`], the `configuration/` of
/// every OSGi profile the image can start in
/// ([`startup::osgi_profiles_started`]), and every target of the config
/// mapper's templates that the base holds (the templates are read from the
/// base: each `X.j2` below [`startup::TEMPLATES`] renders to `X`).
pub fn runtime_rewritten_files(facts: &Facts, fs: &mut dyn BaseFs, into: &Path) -> Result<Vec<BaseFile>> {
    let home = facts.product_home.trim_start_matches('/');
    let mut trees: Vec<String> = REWRITTEN_TREES.iter().map(|t| format!("{home}/{t}")).collect();
    for p in startup::osgi_profiles_started(facts.kind, facts.version.as_deref()) {
        trees.push(format!("{home}/repository/components/{p}/configuration"));
    }
    trees.sort();
    trees.dedup();
    let mut files = fs.files_under(&trees, into)?;
    let prefix = format!("{home}/");
    let mut targets: Vec<String> = files
        .iter()
        .filter_map(|f| startup::template_target(f.path.strip_prefix(&prefix)?))
        .map(|t| format!("{home}/{t}"))
        .filter(|t| !trees.iter().any(|r| is_under(t, r)))
        .collect();
    targets.sort();
    targets.dedup();
    if !targets.is_empty() {
        let more = into.join("targets");
        std::fs::create_dir_all(&more).map_err(|e| Error::io("creating", &more, e))?;
        files.extend(fs.files_under(&targets, &more)?);
        files.sort_by(|a, b| a.path.cmp(&b.path));
    }
    Ok(files)
}

/// Whether `path` is `root` or below it (relative paths).
fn is_under(path: &str, root: &str) -> bool {
    path.strip_prefix(root).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Detects the facts of a base from its config, reading its filesystem
/// through `fs` only when needed (`/etc/passwd` for a named user);
/// `owner` is the config override. [`Facts::folders`] stays empty.
pub fn detect(config: &Value, owner_override: Option<Owner>, fs: &mut dyn BaseFs) -> Result<Facts> {
    let workdir = env(config, "WORKING_DIRECTORY")
        .or_else(|| config["config"]["WorkingDir"].as_str().filter(|s| !s.is_empty()).map(str::to_string));
    let product_home = match env(config, "WSO2_SERVER_HOME").filter(|h| h.starts_with('/')) {
        Some(h) => h,
        None => {
            let dir = workdir.clone().unwrap_or_else(|| "/home/wso2carbon".into());
            let found: Vec<String> =
                fs.list_dir(dir.trim_start_matches('/'))?.into_iter().filter(|n| n.starts_with("wso2am-")).collect();
            match found.as_slice() {
                [one] => format!("{}/{one}", dir.trim_end_matches('/')),
                [] => {
                    return Err(Error::source(format!(
                        "base image has no WSO2_SERVER_HOME and no wso2am-* folder in {dir}; is it a WSO2 API Manager image?"
                    )))
                }
                many => {
                    return Err(Error::source(format!(
                        "base image has no WSO2_SERVER_HOME and several product folders in {dir} ({}); set WSO2_SERVER_HOME in [image] env",
                        many.join(", ")
                    )))
                }
            }
        }
    };
    let product_home = product_home.trim_end_matches('/').to_string();
    if let Err(m) = crate::sanitize::check_value(&product_home)
        .and(crate::sanitize::check_value(config["config"]["User"].as_str().unwrap_or("")))
    {
        return Err(Error::source(format!(
            "base image: its product home {:?} or USER {m}; use a base without control characters in either",
            product_home
        )));
    }
    let server = server_of(&product_home);
    let version = server.as_ref().map(|(_, _, v)| v.clone());
    let kind = server.as_ref().map(|(k, _, _)| *k);
    let portals: Vec<String> = match kind {
        Some(k) => k.portals().iter().map(|p| p.to_string()).collect(),
        None => {
            let apps = format!("{product_home}/repository/deployment/server/{}", portal_apps_dir(version.as_deref()));
            let found = fs.list_dir(apps.trim_start_matches('/'))?;
            PORTALS.iter().map(|(p, _)| p.to_string()).filter(|p| found.contains(p)).collect()
        }
    };
    let server = server.map(|(_, s, _)| s.to_string());
    let mut read_file = |p: &str| fs.read_file(p);
    let user = config["config"]["User"].as_str().unwrap_or("").to_string();
    let default_home = workdir.unwrap_or_else(|| parent(&product_home));
    let (owner, owner_from, user_home) = match (owner_override, UserSpec::parse(&user)) {
        (Some(o), _) => (o, "owner setting".to_string(), default_home),
        (None, UserSpec::Root) => (Owner { uid: 0, gid: 0 }, "no USER (root)".to_string(), default_home),
        (None, UserSpec::Numeric(uid, gid)) => {
            (Owner { uid, gid: gid.unwrap_or(uid) }, "USER".to_string(), default_home)
        }
        (None, UserSpec::Named(name, group)) => {
            let passwd = read_file("etc/passwd")?.ok_or_else(|| {
                Error::source(format!(
                    "base image runs as user `{name}` but has no /etc/passwd to resolve it; set [layers] owner = \"UID:GID\""
                ))
            })?;
            let entry = parse_passwd(&String::from_utf8_lossy(&passwd))
                .into_iter()
                .find(|e| e.name == name)
                .ok_or_else(|| {
                    Error::source(format!(
                        "base image runs as user `{name}`, which is not in its /etc/passwd; set [layers] owner = \"UID:GID\""
                    ))
                })?;
            let gid = match group {
                None => entry.gid,
                Some(g) => match g.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => {
                        let groups = read_file("etc/group")?.unwrap_or_default();
                        group_id(&String::from_utf8_lossy(&groups), &g).ok_or_else(|| {
                            Error::source(format!(
                                "base image runs as group `{g}`, which is not in its /etc/group; set [layers] owner = \"UID:GID\""
                            ))
                        })?
                    }
                },
            };
            (Owner { uid: entry.uid, gid }, "/etc/passwd".to_string(), entry.home)
        }
    };
    let folders = Default::default();
    Ok(Facts { product_home, version, kind, server, portals, user, owner, owner_from, user_home, folders })
}

/// The base folders [`Facts::folders`] holds, in one pass over the layers.
pub fn base_folders(
    product_home: &str,
    user_home: &str,
    fs: &mut dyn BaseFs,
) -> Result<std::collections::BTreeMap<String, (u32, Owner)>> {
    let home = product_home.trim_matches('/');
    let mut exact = Vec::new();
    for dir in [home, user_home.trim_matches('/')] {
        let mut at = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            exact.push(at.clone());
        }
    }
    let depth = |p: &str| p.matches('/').count();
    let deepest = depth(home) + FOLDER_DEPTH;
    Ok(fs
        .dirs_under(&[home.to_string()], &exact)?
        .into_iter()
        .filter(|d| depth(&d.path) <= deepest || exact.contains(&d.path))
        .filter_map(|d| Some((d.path, d.meta?)))
        .collect())
}

fn parent(p: &str) -> String {
    match p.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => p[..i].into(),
    }
}

/// The product version in a home folder name like `wso2am-4.3.0` or `wso2am-tm-4.5.0`.
pub fn version_of(product_home: &str) -> Option<String> {
    server_of(product_home).map(|(_, _, v)| v)
}

impl Facts {
    /// How messages name the base: its kind and product folder, e.g.
    /// `gateway base (wso2am-universal-gw-4.5.0)`.
    pub fn describe(&self) -> String {
        let folder = self.product_home.rsplit('/').next().unwrap_or("");
        match self.kind {
            Some(k) => format!("{} base ({folder})", k.describe()),
            None => format!("base ({folder})"),
        }
    }
}

/// The major and minor numbers of a version like `4.5.0`.
pub fn major_minor(version: Option<&str>) -> Option<(u32, u32)> {
    let mut it = version?.split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The folder under `repository/deployment/server` that serves the portals:
/// `jaggeryapps` up to 4.1, `webapps` from 4.2 (and when the version is unknown).
pub fn portal_apps_dir(version: Option<&str>) -> &'static str {
    match major_minor(version) {
        Some((m, n)) if m < 4 || (m == 4 && n <= 1) => "jaggeryapps",
        _ => "webapps",
    }
}

/// Where a layer kind's folder goes, relative to the product home (themes are
/// mapped file by file with [`theme_destination`]).
pub fn kind_root(kind: LayerKind) -> &'static str {
    match kind {
        LayerKind::Jars => "repository/components/lib",
        LayerKind::Dropins => "repository/components/dropins",
        LayerKind::Themes => "repository/deployment/server",
        LayerKind::Keystores => "repository/resources/security",
        LayerKind::Overlays => "",
    }
}

/// Maps a path inside `themes/` to its absolute destination in the image.
/// Returns `Ok(None)` for the top-level portal folders themselves.
pub fn theme_destination(facts: &Facts, rel: &str) -> Result<Option<String>> {
    let mut parts = rel.splitn(2, '/');
    let top = parts.next().unwrap_or("");
    let rest = parts.next();
    let portal = if top == "tenants" { "devportal" } else { top };
    if PORTALS.iter().any(|(p, _)| *p == portal) && !facts.portals.iter().any(|p| p == portal) {
        return Err(Error::config(format!(
            "themes/{top}: the {} has no {portal}; remove themes/{top} or build it on an all-in-one or control-plane (acp) base",
            facts.describe()
        )));
    }
    // Built by one exact-size concatenation: this runs once per theme file.
    let (home, server, apps) =
        (facts.product_home.as_str(), "/repository/deployment/server/", portal_apps_dir(facts.version.as_deref()));
    if top == "tenants" {
        let Some(rest) = rest else { return Ok(None) };
        check_theme_kind(facts, rel)?;
        return Ok(Some([home, server, apps, "/devportal/site/public/tenant_themes/", rest].concat()));
    }
    if top == "devportal" {
        check_theme_kind(facts, rel)?;
    }
    match PORTALS.iter().find(|(p, _)| *p == top) {
        Some((portal, sub)) => Ok(rest.map(|r| [home, server, apps, "/", portal, "/", sub, "/", r].concat())),
        None => Err(Error::input(format!(
            "themes/{top}: not a portal; themes/ may hold devportal/, publisher/, admin/ and tenants/<tenant>/"
        ))),
    }
}

/// A devportal theme file of the wrong kind for the version is an error:
/// 3.2–4.1 read `userTheme.js`, 4.2 and later `userTheme.json`.
fn check_theme_kind(facts: &Facts, rel: &str) -> Result<()> {
    let name = rel.rsplit('/').next().unwrap_or("");
    let jaggery = portal_apps_dir(facts.version.as_deref()) == "jaggeryapps";
    let version = facts.version.as_deref().unwrap_or("unknown");
    let (wrong, wants) = if jaggery { ("userTheme.json", "userTheme.js") } else { ("userTheme.js", "userTheme.json") };
    if name == wrong {
        return Err(Error::input(format!(
            "themes/{rel}: API Manager {version} reads {wants}, not {wrong}; convert the theme for this version"
        )));
    }
    Ok(())
}

/// The environment variable through which every official entrypoint that
/// takes a profile reads it: the 3.x–4.4 all-in-one (`profileSetup.sh`, then
/// the launcher with `-Dprofile=`) and the 4.5+ control plane (`key-manager`).
pub const PROFILE_ENV: &str = "PROFILE_NAME";

/// Checks that the base starts in `profile` (through [`PROFILE_ENV`]):
/// exactly the names its `profileSetup.sh` accepts, or `default` for none
/// ([`profiles::check`]); the error lists that version's real profiles, or
/// says the base has none and what to build on instead.
pub fn check_profile(facts: &Facts, profile: &str) -> std::result::Result<(), String> {
    profiles::check(facts.kind, facts.version.as_deref(), &facts.describe(), profile)
}

/// Folders below the product home that the product writes at run time, with
/// every folder below them: the config mapper's output (`repository/conf`)
/// and its metadata and templates (`repository/resources/conf`, which
/// `profileSetup.sh` edits too), the OSGi state
/// (`repository/components/default/configuration`) and the bundles made from
/// `components/lib` (`repository/components/dropins`), the H2 databases, the
/// deployment folder (synapse configs, web applications; the entrypoint's copy
/// target for preserved artifacts and the artifact volume), the keystores
/// (which the entrypoint's config-volume copy overwrites), logs and `tmp`.
/// The product home itself gets `wso2carbon.pid` and the config mapper's `backup/`.
pub const RUNTIME_TREES: [&str; 9] = [
    "repository/conf",
    "repository/resources/conf",
    "repository/resources/security",
    "repository/components/default/configuration",
    "repository/components/dropins",
    "repository/database",
    "repository/deployment/server",
    "repository/logs",
    "tmp",
];

/// The absolute folders an arbitrary UID with group 0 must be able to write
/// in, each with the base's mode and owner when the base has an entry for
/// it: the user home (which it must enter), the product home,
/// [`RUNTIME_TREES`] and the Solr folder (created when the base lacks them)
/// with every folder `fs` finds below them; the config mapper's `backup/`
/// and the folders of every OSGi profile the image can start in, with what
/// is below them, where the base has them; the folders the config mapper
/// writes its outputs into (each folder of templates below
/// [`startup::TEMPLATES`] that holds no sub-folder stands for its target
/// folder); and each folder of `also` (absolute) that the base has.
pub fn runtime_write_dirs(facts: &Facts, fs: &mut dyn BaseFs, also: &[String]) -> Result<Vec<BaseDir>> {
    let home = &facts.product_home;
    let mut roots: Vec<String> = vec![home.clone()];
    roots.extend(RUNTIME_TREES.iter().map(|t| format!("{home}/{t}")));
    roots.push(volume_path(facts, "solr"));
    let mut existing: Vec<String> = vec![format!("{home}/{}", startup::BACKUP)];
    for p in startup::osgi_profiles_started(facts.kind, facts.version.as_deref()) {
        existing.push(format!("{home}/repository/components/{p}"));
    }
    let rel = |l: &mut dyn Iterator<Item = &String>| -> Vec<String> {
        l.map(|r| r.trim_start_matches('/').trim_end_matches('/').to_string()).collect()
    };
    let under = rel(&mut roots.iter().skip(1).chain(&existing));
    let user_home = facts.user_home.trim_end_matches('/').to_string();
    let exact = rel(&mut std::iter::once(home).chain(std::iter::once(&user_home)).chain(also));
    let mut dirs: std::collections::BTreeMap<String, Option<(u32, Owner)>> =
        fs.dirs_under(&under, &exact)?.into_iter().map(|d| (format!("/{}", d.path), d.meta)).collect();
    let templates = format!("{home}/{}", startup::TEMPLATES);
    let leaves: Vec<String> = dirs
        .keys()
        .filter(|d| is_under(d, &templates))
        .filter(|d| !dirs.keys().any(|o| o.len() > d.len() && is_under(o, d)))
        .map(|d| format!("{home}{}", &d[templates.len()..]))
        .collect();
    for d in leaves.into_iter().chain(roots) {
        dirs.entry(d).or_insert(None);
    }
    if !user_home.is_empty() && is_under(home, &user_home) {
        dirs.entry(user_home).or_insert(None);
    }
    Ok(dirs.into_iter().map(|(path, meta)| BaseDir { path, meta }).collect())
}

/// The absolute path of a volume: absolute paths stay; `solr` is the user
/// home's `solr` folder that the official images create for the index; `~/x`
/// is relative to the user home; anything else is relative to the product home.
pub fn volume_path(facts: &Facts, v: &str) -> String {
    let v = v.trim_end_matches('/');
    if v.starts_with('/') {
        v.to_string()
    } else if v == "solr" {
        format!("{}/solr", facts.user_home)
    } else if let Some(rest) = v.strip_prefix("~/") {
        format!("{}/{rest}", facts.user_home)
    } else {
        format!("{}/{v}", facts.product_home)
    }
}

/// Where a file of a customer folder goes in the image (`None`: nowhere,
/// e.g. the portal folders of `themes/` themselves).
pub fn destination(kind: LayerKind, rel: &str, facts: &Facts) -> Result<Option<String>> {
    match kind {
        LayerKind::Themes => theme_destination(facts, rel),
        LayerKind::Overlays => Ok(Some([&facts.product_home, "/", rel].concat())),
        k => Ok(Some([&facts.product_home, "/", kind_root(k), "/", rel].concat())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fake(Option<&'static [u8]>, Vec<String>);

    impl BaseFs for Fake {
        fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
            Ok(self.0.filter(|_| path == "etc/passwd").map(|b| b.to_vec()))
        }
        fn list_dir(&mut self, _dir: &str) -> Result<Vec<String>> {
            Ok(self.1.clone())
        }
        fn dirs_under(&mut self, _roots: &[String], _exact: &[String]) -> Result<Vec<BaseDir>> {
            Ok(Vec::new())
        }
        fn files_under(&mut self, _roots: &[String], _into: &Path) -> Result<Vec<BaseFile>> {
            Ok(Vec::new())
        }
    }

    fn none() -> Fake {
        Fake(None, Vec::new())
    }

    fn cfg(user: &str, home: &str) -> Value {
        json!({"config": {"User": user, "Env": [format!("WSO2_SERVER_HOME={home}"), "WORKING_DIRECTORY=/home/wso2carbon"]}})
    }

    #[test]
    fn numeric_and_named_users() {
        let f = detect(&cfg("10001", "/home/wso2carbon/wso2am-4.3.0"), None, &mut none()).unwrap();
        assert_eq!(f.owner, Owner { uid: 10001, gid: 10001 });
        assert_eq!(f.version.as_deref(), Some("4.3.0"));
        let mut passwd =
            Fake(Some(b"root:x:0:0::/root:/bin/sh\nwso2carbon:x:802:802::/home/wso2carbon:/bin/sh\n"), Vec::new());
        let f = detect(&cfg("wso2carbon", "/home/wso2carbon/wso2am-4.1.0"), None, &mut passwd).unwrap();
        assert_eq!(f.owner, Owner { uid: 802, gid: 802 });
        assert!(detect(&cfg("nobody", "/x/wso2am-4.1.0"), None, &mut passwd).is_err());
        assert!(detect(&json!({"config": {}}), None, &mut none()).is_err());
        let mut listing = Fake(None, vec!["solr".into(), "wso2am-4.2.0".into()]);
        let f =
            detect(&json!({"config": {"User": "802", "WorkingDir": "/home/wso2carbon"}}), None, &mut listing).unwrap();
        assert_eq!(f.product_home, "/home/wso2carbon/wso2am-4.2.0");
        assert_eq!(f.version.as_deref(), Some("4.2.0"));
    }

    #[test]
    fn kinds_versions_and_profiles() {
        let kind = |h: &str| server_of(h).map(|(k, s, v)| (k.name(), s, v));
        assert_eq!(kind("/h/wso2am-4.5.0"), Some(("all-in-one", "wso2am", "4.5.0".into())));
        assert_eq!(kind("/h/wso2am-acp-4.5.0"), Some(("acp", "wso2am-acp", "4.5.0".into())));
        assert_eq!(kind("/h/wso2am-tm-4.6.0/"), Some(("tm", "wso2am-tm", "4.6.0".into())));
        assert_eq!(kind("/h/wso2am-universal-gw-4.5.0"), Some(("gateway", "wso2am-universal-gw", "4.5.0".into())));
        assert_eq!(kind("/h/wso2am-classic-gw-4.7.0"), Some(("gateway", "wso2am-classic-gw", "4.7.0".into())));
        assert_eq!(kind("/h/wso2am-gw-4.5.0"), None);
        let facts = |home: &str| detect(&cfg("10001", home), None, &mut none()).unwrap();
        assert!(check_profile(&facts("/h/wso2am-4.3.0"), "gateway-worker").is_ok());
        assert!(check_profile(&facts("/h/wso2am-3.2.0"), "api-key-manager").is_ok());
        assert!(check_profile(&facts("/h/wso2am-acp-4.5.0"), "key-manager").is_ok());
        let e = check_profile(&facts("/h/wso2am-4.6.0"), "traffic-manager").unwrap_err();
        assert!(e.contains("4.6.0") && e.contains("wso2/wso2am-tm:4.6.0"), "{e}");
        assert!(check_profile(&facts("/h/wso2am-universal-gw-4.5.0"), "gateway-worker").is_err());
        assert_eq!(facts("/h/wso2am-tm-4.5.0").portals, Vec::<String>::new());
        let mut listing = Fake(None, vec!["devportal".into(), "other".into()]);
        let f = detect(&cfg("10001", "/opt/apim"), None, &mut listing).unwrap();
        assert_eq!((f.kind, f.portals), (None, vec!["devportal".to_string()]));
    }

    #[test]
    fn runtime_writes_cover_what_the_official_start_writes() {
        use crate::transport::{oci, LayerFs};
        let dir = tempfile::tempdir().unwrap();
        for (kind, version) in [(ProductKind::AllInOne, "4.4.0"), (ProductKind::ControlPlane, "4.7.0")] {
            let set = sample::SampleBase::official(kind, version).image_set().unwrap();
            let layout = dir.path().join(kind.name());
            oci::LayoutDestination::new(&layout, None).write_verbatim(&["t".to_string()], &set).unwrap();
            let loc = format!("oci:{}:t", layout.display()).parse().unwrap();
            let base = oci::read_base(&loc, &layout, Some("t")).unwrap();
            let img = &base.images[0];
            let facts = detect(&img.config_json, None, &mut LayerFs(img)).unwrap();
            let home = facts.product_home.clone();
            let found = runtime_write_dirs(&facts, &mut LayerFs(img), &[]).unwrap();
            let dirs: Vec<String> = found.iter().map(|d| d.path.clone()).collect();
            let meta = |p: &str| found.iter().find(|d| d.path == p).and_then(|d| d.meta);
            let owner = Owner { uid: 10001, gid: 10001 };
            assert_eq!(meta("/home/wso2carbon"), Some((0o750, owner)), "the user home, as the base has it");
            assert_eq!(meta(&home), Some((0o755, owner)));
            assert!(!dirs.contains(&"/home".to_string()), "nothing above the user home");
            assert!(dirs.contains(&format!("{home}/repository/resources/security")), "the config volume's keystores");
            let into = tempfile::tempdir().unwrap();
            let files: Vec<String> = runtime_rewritten_files(&facts, &mut LayerFs(img), into.path())
                .unwrap()
                .into_iter()
                .map(|f| format!("/{}", f.path))
                .collect();
            for t in startup::known_targets(kind, Some(version)) {
                assert!(files.contains(&format!("{home}/{t}")), "{version}: {t} is rewritten");
                let parent = format!("{home}/{t}").rsplit_once('/').unwrap().0.to_string();
                assert!(dirs.contains(&parent), "{version}: {parent} is written in");
            }
            for p in profiles::profiles(Some(kind), Some(version)) {
                let mut written = p.written_dirs();
                written.extend(p.removed_trees().iter().map(|t| t.to_string()));
                for d in written {
                    let abs = format!("{home}/{d}");
                    // A folder the base lacks has nothing to remove (`rm -f` of its files does nothing).
                    let present =
                        !LayerFs(img).dirs_under(&[abs.trim_start_matches('/').to_string()], &[]).unwrap().is_empty();
                    assert!(!present || dirs.contains(&abs), "{version} {}: {d}", p.name);
                }
            }
            for osgi in startup::osgi_profiles_started(Some(kind), Some(version)) {
                let conf = format!("{home}/repository/components/{osgi}/configuration");
                assert!(dirs.contains(&conf), "{conf}");
                assert!(files.iter().any(|f| f.starts_with(&conf)), "{conf}");
            }
            assert!(dirs.contains(&format!("{home}/repository/components/dropins")));
            assert!(!dirs.iter().any(|d| d.contains("api-key-manager-node")), "no folder the base lacks is invented");
            assert!(!dirs.contains(&format!("{home}/repository")), "only the folders the templates render into");
        }
    }

    #[test]
    fn theme_paths_follow_the_version() {
        let f43 = detect(&cfg("10001", "/h/wso2am-4.3.0"), None, &mut none()).unwrap();
        let f41 = detect(&cfg("10001", "/h/wso2am-4.1.0"), None, &mut none()).unwrap();
        assert_eq!(
            theme_destination(&f43, "devportal/userTheme.json").unwrap().unwrap(),
            "/h/wso2am-4.3.0/repository/deployment/server/webapps/devportal/site/public/theme/userTheme.json"
        );
        assert!(theme_destination(&f41, "devportal/x").unwrap().unwrap().contains("/jaggeryapps/devportal/"));
        assert!(theme_destination(&f43, "tenants/acme/a.css").unwrap().unwrap().ends_with("tenant_themes/acme/a.css"));
        assert!(theme_destination(&f43, "portal/x").is_err());
        assert_eq!(volume_path(&f43, "solr"), "/home/wso2carbon/solr");
        assert_eq!(volume_path(&f43, "repository/database"), "/h/wso2am-4.3.0/repository/database");
    }
}
