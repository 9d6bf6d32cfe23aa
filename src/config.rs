//! `wso2img.toml`: the one file that says what to build. Parsing is strict
//! (unknown keys are errors, so a typo never silently does nothing) and every
//! error is one line naming the file, the line and what to do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{io_reason, Error, Result};
use crate::layer::Owner;
use crate::reference::{Location, Reference};
use crate::sanitize::{check_value, escape_controls};

/// Why `wso2img.toml` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// There is no file there.
    #[error("{file}: not found")]
    NotFound {
        /// The file.
        file: String,
    },
    /// It cannot be read.
    #[error("{file}: cannot read ({reason})")]
    Unreadable {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// It is not valid TOML for a wso2img config.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Syntax {
        /// The file.
        file: String,
        /// The line, when known.
        line: Option<usize>,
        /// What the TOML reader says.
        message: String,
    },
    /// A setting is not usable (the problem names it and says what to do).
    #[error("{file}: {problem}")]
    Invalid {
        /// The file.
        file: String,
        /// The setting and what is wrong with it.
        problem: String,
    },
}

impl crate::error::Typed for ConfigError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Config
    }

    fn hint(&self) -> Option<String> {
        match self {
            ConfigError::NotFound { .. } => Some(
                "create one with `wso2img init --base IMAGE` (builtin:wso2am-4.3.0 works offline), or pass -c FILE"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// The default config file name.
pub const FILE_NAME: &str = "wso2img.toml";
/// The default tag template.
pub const DEFAULT_TAG: &str = "{base_tag}-{digest12}";
/// The largest uid or gid an owner may have (4294967295 is `(uid_t)-1`).
pub const MAX_ID: u32 = u32::MAX - 1;
/// The default volumes: the Solr index and the H2 databases.
pub const DEFAULT_VOLUMES: [&str; 2] = ["solr", "repository/database"];

/// A loaded and validated `wso2img.toml`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The folder relative paths are resolved against.
    pub dir: PathBuf,
    /// `[base]`.
    pub base: BaseSection,
    /// `[layers]`.
    pub layers: LayersSection,
    /// `[image]`.
    pub image: ImageSection,
    /// `[target]`.
    pub target: TargetSection,
    /// `[[variant]]`: one more image per deployment profile.
    pub variants: Vec<VariantSection>,
    /// `[maven]`: jars by coordinates.
    pub maven: MavenSection,
    /// `[truststore]`: certificates merged into the base's client truststore.
    pub truststore: TruststoreSection,
}

/// `[truststore]`: certificates (PEM with one or many, or DER; globs allowed)
/// added as trusted-certificate entries to the base's own client truststore
/// at build time.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruststoreSection {
    /// Certificate files relative to this file: a path or glob, or
    /// `{ path, alias }` to choose the alias.
    #[serde(default)]
    pub certs: Vec<CertSpec>,
    /// The environment variable holding the truststore's password (default:
    /// the product's own, `wso2carbon`); read at build time, never stored.
    #[serde(default)]
    pub password_env: Option<String>,
}

impl TruststoreSection {
    /// Whether it adds nothing.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

/// One entry of `[truststore] certs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CertSpec {
    /// A path or glob; aliases come from the file names.
    Path(String),
    /// A path or glob with the alias its certificates get.
    Table {
        /// The file (or glob).
        path: String,
        /// The alias (several certificates: `ALIAS-1`, `ALIAS-2`, …).
        alias: Option<String>,
    },
}

impl CertSpec {
    /// The path or glob, and the alias chosen for it.
    pub fn parts(&self) -> (&str, Option<&str>) {
        match self {
            CertSpec::Path(p) => (p, None),
            CertSpec::Table { path, alias } => (path, alias.as_deref()),
        }
    }
}

/// `[maven]`: jars resolved by Maven coordinates instead of checked in.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MavenSection {
    /// Repositories, tried in order: a URL, or `{ url, id }` where `id`
    /// names a `settings.xml` server. Empty: Maven Central.
    #[serde(default)]
    pub repositories: Vec<RepositorySpec>,
    /// `group:artifact:version` for `repository/components/lib`.
    #[serde(default)]
    pub jars: Vec<String>,
    /// `group:artifact:version` of OSGi bundles for `repository/components/dropins`.
    #[serde(default)]
    pub dropins: Vec<String>,
}

/// One entry of `[maven] repositories`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RepositorySpec {
    /// Just the URL.
    Url(String),
    /// A URL with the id of its `settings.xml` server.
    Table {
        /// The repository URL.
        url: String,
        /// The `settings.xml` server id holding its credentials.
        id: Option<String>,
    },
}

impl MavenSection {
    /// The repositories to try, in order.
    pub fn repositories(&self) -> Vec<crate::coordinates::Repository> {
        if self.repositories.is_empty() {
            return vec![crate::coordinates::Repository { url: crate::coordinates::CENTRAL.into(), id: None }];
        }
        self.repositories
            .iter()
            .map(|r| {
                let (url, id) = match r {
                    RepositorySpec::Url(u) => (u, None),
                    RepositorySpec::Table { url, id } => (url, id.clone()),
                };
                crate::coordinates::Repository { url: url.trim_end_matches('/').to_string(), id }
            })
            .collect()
    }

    /// Every jar with where it goes, lib first; an error names the bad entry.
    pub fn wanted(&self) -> std::result::Result<Vec<(LayerKind, crate::coordinates::Coordinates)>, String> {
        let mut out: Vec<(LayerKind, crate::coordinates::Coordinates)> = Vec::new();
        for (kind, key, list) in [(LayerKind::Jars, "jars", &self.jars), (LayerKind::Dropins, "dropins", &self.dropins)]
        {
            for s in list {
                let c = crate::coordinates::Coordinates::parse(s).map_err(|m| format!("[maven] {key} \"{s}\": {m}"))?;
                if let Some((k, o)) = out.iter().find(|(_, o)| o.group == c.group && o.artifact == c.artifact) {
                    return Err(format!(
                        "[maven] {key} \"{s}\": {}:{} is already listed ({} in {}); keep one",
                        c.group,
                        c.artifact,
                        o.version,
                        k.name()
                    ));
                }
                out.push((kind, c));
            }
        }
        Ok(out)
    }
}

/// `[[variant]]`: one more image — on the main base in one deployment
/// profile, or on a base of its own (a distributed deployment: control
/// plane, traffic manager, gateway) — with optional extra folders laid over
/// the main customization.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSection {
    /// Short name (`gateway`), used in the tag.
    pub name: String,
    /// The profile it starts in (`gateway-worker`), checked against the base's kind and version.
    #[serde(default)]
    pub profile: Option<String>,
    /// Its own base image (e.g. `wso2/wso2am-tm:4.5.0`), relative paths against this file;
    /// default: the main base.
    #[serde(default)]
    pub base: Option<String>,
    /// The main customer folders it takes, by kind (`["jars", "overlays"]`); default: all.
    #[serde(default)]
    pub layers: Option<Vec<String>>,
    /// Tag template; default: the content tag followed by `-{variant}`.
    pub tag: Option<String>,
    /// Extra jars for this variant only.
    pub jars: Option<String>,
    /// Extra dropins for this variant only.
    pub dropins: Option<String>,
    /// Extra themes for this variant only.
    pub themes: Option<String>,
    /// Extra overlays for this variant only.
    pub overlays: Option<String>,
    /// Extra keystores for this variant only (baked only when keystores are).
    pub keystores: Option<String>,
    /// Certificates this variant adds to the truststore, after `[truststore]`'s
    /// (its `password_env`, when set, replaces the main one).
    #[serde(default)]
    pub truststore: Option<TruststoreSection>,
}

/// `[base]`: the image to customize.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseSection {
    /// Base image location, e.g. `wso2/wso2am:4.3.0` or `docker-archive:base.tar`.
    pub image: String,
    /// A public key (PEM, relative to this file) that must verify the base's
    /// cosign signature before anything is built.
    #[serde(default)]
    pub verify_key: Option<String>,
}

/// `[layers]`: the customer folders, relative to the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayersSection {
    /// Jars for `repository/components/lib`.
    pub jars: Option<String>,
    /// OSGi bundles for `repository/components/dropins`.
    pub dropins: Option<String>,
    /// Portal themes.
    pub themes: Option<String>,
    /// Files laid over the product home, last.
    pub overlays: Option<String>,
    /// Keystores for `repository/resources/security`.
    pub keystores: Option<String>,
    /// Whether the keystores folder is baked into the image.
    #[serde(default)]
    pub bake_keystores: bool,
    /// `uid:gid` to own the files instead of the base's runtime user.
    pub owner: Option<String>,
    /// Ignore patterns (gitignore syntax, relative to the config's folder).
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// `[image]`: config changes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSection {
    /// Labels to add.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Environment variables to set.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Volumes; relative paths are relative to the product home.
    #[serde(default = "default_volumes")]
    pub volumes: Vec<String>,
    /// Run under an arbitrary UID with group 0 (OpenShift): what wso2img adds
    /// is owned by gid 0 with group = owner permissions, and the folders the
    /// product writes at run time are re-added group-0 writable.
    #[serde(default)]
    pub arbitrary_uid: bool,
}

impl Default for ImageSection {
    fn default() -> Self {
        ImageSection { labels: BTreeMap::new(), env: BTreeMap::new(), volumes: default_volumes(), arbitrary_uid: false }
    }
}

fn default_volumes() -> Vec<String> {
    DEFAULT_VOLUMES.iter().map(|s| s.to_string()).collect()
}

/// `[target]`: where and under which tags the result goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// Registry repository, e.g. `registry.example.com/acme/wso2am`.
    pub repository: Option<String>,
    /// Tag template.
    #[serde(default = "default_tag")]
    pub tag: String,
    /// More tags (templates too).
    #[serde(default)]
    pub extra_tags: Vec<String>,
    /// Registry hosts to treat as public (Docker Hub always is): baked
    /// keystores are never pushed there without `--allow-public-keystores`.
    #[serde(default)]
    pub public_registries: Vec<String>,
}

impl Default for TargetSection {
    fn default() -> Self {
        TargetSection { repository: None, tag: default_tag(), extra_tags: Vec::new(), public_registries: Vec::new() }
    }
}

fn default_tag() -> String {
    DEFAULT_TAG.to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    base: BaseSection,
    #[serde(default)]
    layers: LayersSection,
    #[serde(default)]
    image: ImageSection,
    #[serde(default)]
    target: TargetSection,
    #[serde(default, rename = "variant")]
    variants: Vec<VariantSection>,
    #[serde(default)]
    maven: MavenSection,
    #[serde(default)]
    truststore: TruststoreSection,
}

/// The customer layer kinds, in the fixed order their layers are stacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// `repository/components/lib`.
    Jars,
    /// `repository/components/dropins`.
    Dropins,
    /// Portal themes.
    Themes,
    /// `repository/resources/security` (only when baked).
    Keystores,
    /// Over the product home; last so it overrides anything.
    Overlays,
}

impl LayerKind {
    /// Every kind in stacking order.
    pub const ALL: [LayerKind; 5] =
        [LayerKind::Jars, LayerKind::Dropins, LayerKind::Themes, LayerKind::Keystores, LayerKind::Overlays];

    /// The key in `[layers]` and the default folder name.
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Jars => "jars",
            LayerKind::Dropins => "dropins",
            LayerKind::Themes => "themes",
            LayerKind::Keystores => "keystores",
            LayerKind::Overlays => "overlays",
        }
    }
}

/// A customer folder to turn into a layer.
#[derive(Debug, Clone)]
pub struct LayerSource {
    /// Which kind.
    pub kind: LayerKind,
    /// The folder on disk.
    pub dir: PathBuf,
    /// How it is named to the user (relative to the config when possible).
    pub label: String,
}

impl Config {
    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let file = path.display().to_string();
        let text = crate::bounded::read_file_string(path, crate::bounded::CONFIG_FILE).map_err(|e| {
            match (e.kind(), crate::bounded::refusal(&e)) {
                (std::io::ErrorKind::NotFound, _) => ConfigError::NotFound { file: file.clone() },
                (_, Some(r)) => {
                    ConfigError::Invalid { file: file.clone(), problem: format!("{r}; is it the right file?") }
                }
                _ => ConfigError::Unreadable { file: file.clone(), reason: io_reason(&e) },
            }
        })?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            ConfigError::Syntax { file: file.clone(), line, message: e.message().trim().replace('\n', " ") }
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let cfg = Config {
            path: path.to_path_buf(),
            dir,
            base: raw.base,
            layers: raw.layers,
            image: raw.image,
            target: raw.target,
            variants: raw.variants,
            maven: raw.maven,
            truststore: raw.truststore,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn err(&self, msg: impl std::fmt::Display) -> Error {
        ConfigError::Invalid { file: self.path.display().to_string(), problem: msg.to_string() }.into()
    }

    fn validate(&self) -> Result<()> {
        self.base.image.parse::<Location>().map_err(|e| self.err(format!("[base] image: {e}")))?;
        self.owner()?;
        for (k, v) in &self.image.labels {
            if k.is_empty() {
                return Err(self.err("[image] labels: a label name is empty"));
            }
            check_value(k).map_err(|m| self.err(format!("[image] labels: the name {:?} {m}; remove it", k)))?;
            check_value(v).map_err(|m| self.err(format!("[image] labels: `{}` {m}; remove it", escape_controls(k))))?;
        }
        for (k, v) in &self.image.env {
            check_value(v).map_err(|m| {
                self.err(format!("[image] env: the value of `{}` {m}; `docker run` cannot pass it", escape_controls(k)))
            })?;
        }
        for k in self.image.env.keys() {
            let ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(self.err(format!("[image] env: `{k}` is not a valid variable name (letters, digits, _)")));
            }
        }
        for v in &self.image.volumes {
            if v.is_empty() || v.split('/').any(|c| c == "..") {
                return Err(self.err(format!("[image] volumes: `{v}` is not a usable path")));
            }
        }
        if let Some(repo) = &self.target.repository {
            let r = Reference::parse(repo).map_err(|e| self.err(format!("[target] repository: {e}")))?;
            if r.tag.is_some() || r.digest.is_some() {
                return Err(self.err(format!(
                    "[target] repository: `{repo}` has a tag or digest; give the repository only and set [target] tag"
                )));
            }
        }
        for t in std::iter::once(&self.target.tag).chain(&self.target.extra_tags) {
            check_template(t).map_err(|m| self.err(format!("[target] tag `{t}`: {m}")))?;
        }
        self.maven.wanted().map_err(|m| self.err(m))?;
        for r in self.maven.repositories() {
            crate::coordinates::check_url(&r.url).map_err(|m| {
                self.err(format!("[maven] repositories \"{}\": {m}", crate::coordinates::redact_url(&r.url)))
            })?;
        }
        self.check_truststore(&self.truststore, "[truststore]")?;
        let mut names: Vec<&str> = Vec::new();
        for v in &self.variants {
            if let Some(t) = &v.truststore {
                self.check_truststore(t, &format!("[[variant]] {} truststore", v.name))?;
            }
            let ok = v.name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && v.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && v.name.len() <= 40;
            if !ok {
                return Err(self.err(format!("[[variant]] name = \"{}\": use lowercase letters, digits and -", v.name)));
            }
            if names.contains(&v.name.as_str()) {
                return Err(self.err(format!("[[variant]] name = \"{}\" is used twice", v.name)));
            }
            names.push(&v.name);
            if v.profile.is_none() && v.base.is_none() {
                return Err(self.err(format!(
                    "[[variant]] {}: give it a profile (on the main base) or a base of its own",
                    v.name
                )));
            }
            for k in v.layers.iter().flatten() {
                if !LayerKind::ALL.iter().any(|kind| kind.name() == k) {
                    return Err(self.err(format!(
                        "[[variant]] {} layers: `{k}` is not a kind of layer (use jars, dropins, themes, keystores, overlays)",
                        v.name
                    )));
                }
            }
            if let Some(b) = &v.base {
                b.parse::<Location>().map_err(|e| self.err(format!("[[variant]] {} base: {}", v.name, e.message())))?;
            }
            if let Some(t) = &v.tag {
                check_template(t).map_err(|m| self.err(format!("[[variant]] {} tag `{t}`: {m}", v.name)))?;
            }
        }
        Ok(())
    }

    /// Checks a truststore section's aliases and password variable name.
    fn check_truststore(&self, t: &TruststoreSection, what: &str) -> Result<()> {
        for c in &t.certs {
            let (path, alias) = c.parts();
            if path.is_empty() {
                return Err(self.err(format!("{what} certs: an entry is empty; name a PEM or DER file")));
            }
            if let Some(a) = alias {
                crate::wso2::truststore::check_alias(a)
                    .map_err(|m| self.err(format!("{what} certs \"{path}\": alias {:?} {m}", escape_controls(a))))?;
            }
        }
        if let Some(name) = &t.password_env {
            let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(self.err(format!(
                    "{what} password_env = {:?}: not an environment variable name (letters, digits, _)",
                    escape_controls(name)
                )));
            }
        }
        Ok(())
    }

    /// Whether variant `v` takes the main customer folder of `kind`.
    pub fn variant_takes(v: &VariantSection, kind: LayerKind) -> bool {
        v.layers.as_ref().is_none_or(|l| l.iter().any(|k| k == kind.name()))
    }

    /// The extra folders of a variant, in stacking order; each must exist.
    pub fn variant_sources(&self, v: &VariantSection, bake_keystores: bool) -> Result<Vec<LayerSource>> {
        let mut out = Vec::new();
        for kind in LayerKind::ALL {
            let rel = match kind {
                LayerKind::Jars => &v.jars,
                LayerKind::Dropins => &v.dropins,
                LayerKind::Themes => &v.themes,
                LayerKind::Keystores => &v.keystores,
                LayerKind::Overlays => &v.overlays,
            };
            let Some(rel) = rel else { continue };
            if kind == LayerKind::Keystores && !self.bakes_keystores(bake_keystores) {
                continue;
            }
            let dir = self.dir.join(rel);
            if !dir.is_dir() {
                return Err(self.err(format!(
                    "[[variant]] {} {} = \"{rel}\": folder {} not found; create it or remove the setting",
                    v.name,
                    kind.name(),
                    dir.display()
                )));
            }
            out.push(LayerSource { kind, dir, label: rel.clone() });
        }
        Ok(out)
    }

    /// The `owner` override, parsed.
    pub fn owner(&self) -> Result<Option<Owner>> {
        let Some(s) = &self.layers.owner else { return Ok(None) };
        let parsed = s.split_once(':').and_then(|(u, g)| Some((u.parse::<u64>().ok()?, g.parse::<u64>().ok()?)));
        let Some((uid, gid)) = parsed else {
            return Err(
                self.err(format!("[layers] owner = \"{s}\": expected \"UID:GID\" with numbers, e.g. \"10001:10001\""))
            );
        };
        let fit = |id: u64| u32::try_from(id).ok().filter(|&id| id <= MAX_ID);
        match (fit(uid), fit(gid)) {
            (Some(uid), Some(gid)) => Ok(Some(Owner { uid, gid })),
            _ => Err(self.err(format!(
                "[layers] owner = \"{s}\": uid and gid must be 0 to {MAX_ID}, e.g. \"1000650000:0\" for an OpenShift UID"
            ))),
        }
    }

    /// The customer folders to build, in stacking order. Explicit folders must
    /// exist; a default folder is used when present. Keystores only when baked.
    pub fn layer_sources(&self, bake_keystores: bool) -> Result<Vec<LayerSource>> {
        let mut out = Vec::new();
        for kind in LayerKind::ALL {
            if kind == LayerKind::Keystores && !(bake_keystores || self.layers.bake_keystores) {
                continue;
            }
            let explicit = match kind {
                LayerKind::Jars => &self.layers.jars,
                LayerKind::Dropins => &self.layers.dropins,
                LayerKind::Themes => &self.layers.themes,
                LayerKind::Keystores => &self.layers.keystores,
                LayerKind::Overlays => &self.layers.overlays,
            };
            let rel = explicit.clone().unwrap_or_else(|| kind.name().to_string());
            let dir = self.dir.join(&rel);
            if explicit.is_none() && !dir.is_dir() {
                continue;
            }
            if !dir.is_dir() {
                return Err(self.err(format!(
                    "[layers] {} = \"{rel}\": folder {} not found; create it or remove the setting",
                    kind.name(),
                    dir.display()
                )));
            }
            out.push(LayerSource { kind, dir, label: rel });
        }
        Ok(out)
    }

    /// Every customer folder a build may read (main and variants, keystores
    /// included, whether or not they exist): outputs must not go inside them.
    pub fn input_dirs(&self) -> Vec<PathBuf> {
        let l = &self.layers;
        let mut out: Vec<PathBuf> = LayerKind::ALL
            .iter()
            .zip([&l.jars, &l.dropins, &l.themes, &l.keystores, &l.overlays])
            .map(|(k, explicit)| self.dir.join(explicit.clone().unwrap_or_else(|| k.name().to_string())))
            .collect();
        for v in &self.variants {
            for d in [&v.jars, &v.dropins, &v.themes, &v.overlays, &v.keystores].into_iter().flatten() {
                out.push(self.dir.join(d));
            }
        }
        out
    }

    /// The base to read and the folder its relative paths are relative to:
    /// `--base` (relative to the working directory) or `[base] image`
    /// (relative to this file).
    pub fn base_location(&self, base_override: Option<&Location>) -> Result<(Location, PathBuf)> {
        match base_override {
            Some(l) => Ok((l.clone(), PathBuf::from("."))),
            None => {
                Ok((self.base.image.parse::<Location>().map_err(|e| e.context(self.path.display()))?, self.dir.clone()))
            }
        }
    }

    /// The ignore rules of the customer folders: built-in defaults, the
    /// `.wso2imgignore` beside this file and `[layers] exclude`.
    pub fn ignore_rules(&self) -> Result<crate::layer::ignore::Rules> {
        crate::layer::ignore::Rules::load(&self.dir, &self.path.display().to_string(), &self.layers.exclude)
    }

    /// Whether keystores are baked (config or flag).
    pub fn bakes_keystores(&self, flag: bool) -> bool {
        flag || self.layers.bake_keystores
    }
}

/// Values a tag template can use.
#[derive(Debug, Clone)]
pub struct TagValues<'a> {
    /// The base reference's tag (`latest` when it had none).
    pub base_tag: &'a str,
    /// The content digest's hex.
    pub digest_hex: &'a str,
    /// The product version, when known.
    pub version: Option<&'a str>,
    /// The variant name, for variant tags.
    pub variant: Option<&'a str>,
    /// The base's kind (`all-in-one`, `acp`, `tm`, `gateway`), when known.
    pub kind: Option<&'a str>,
}

const PLACEHOLDERS: [&str; 6] = ["base_tag", "digest12", "digest", "version", "variant", "kind"];

fn check_template(t: &str) -> std::result::Result<(), String> {
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let j = after.find('}').ok_or("unclosed `{`")?;
        let name = &after[..j];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}}; use {{base_tag}}, {{digest12}}, {{digest}}, {{version}}, {{kind}} or {{variant}}"
            ));
        }
        rest = &after[j + 1..];
    }
    if t.is_empty() {
        return Err("empty tag".into());
    }
    Ok(())
}

/// Expands a tag template and checks the result is a valid tag.
pub fn expand_tag(template: &str, v: &TagValues<'_>) -> Result<String> {
    let tag = template
        .replace("{base_tag}", v.base_tag)
        .replace("{digest12}", &v.digest_hex[..12])
        .replace("{digest}", v.digest_hex)
        .replace("{version}", v.version.unwrap_or("unknown"))
        .replace("{variant}", v.variant.unwrap_or("main"))
        .replace("{kind}", v.kind.unwrap_or("unknown"));
    if !Reference::valid_tag(&tag) {
        return Err(Error::config(format!(
            "tag template `{template}` gives `{tag}`, which is not a valid tag (letters, digits, _ . -, at most 128)"
        )));
    }
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn load(text: &str) -> Result<Config> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(FILE_NAME);
        fs::write(&p, text).unwrap();
        Config::load(&p)
    }

    #[test]
    fn defaults_and_errors() {
        let c = load("[base]\nimage = \"wso2/wso2am:4.3.0\"\n").unwrap();
        assert_eq!(c.target.tag, DEFAULT_TAG);
        assert_eq!(c.image.volumes, vec!["solr", "repository/database"]);
        let e = load("[base]\nimage = \"wso2/wso2am:4.3.0\"\n[layers]\njar = \"x\"\n").unwrap_err();
        assert!(e.message().contains(":4:") && e.message().contains("jar"), "{e}");
        let e = load("[base]\nimage = \"Wso2/X\"\n").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = load("[base]\nimage = \"a\"\n[image]\nenv = { A = \"x\\u0000y\" }\n").unwrap_err();
        assert!(e.message().contains("`A`") && e.message().contains("control character"), "{e}");
        let e = load("[base]\nimage = \"a\"\n[image]\nlabels = { l = \"\\u001b[2J\" }\n").unwrap_err();
        assert!(e.message().contains("control character") && !e.message().contains('\u{1b}'), "{e}");
        let e = load("[base]\nimage = \"a\"\n[target]\ntag = \"{nope}\"\n").unwrap_err();
        assert!(e.message().contains("{nope}"));
        assert!(load("[base]\nimage = \"a\"\n[layers]\nowner = \"x\"\n").is_err());
        let owner = |o: &str| load(&format!("[base]\nimage = \"a\"\n[layers]\nowner = \"{o}\"\n"))?.owner();
        assert_eq!(owner("1000650000:0").unwrap(), Some(Owner { uid: 1_000_650_000, gid: 0 }));
        assert_eq!(owner("4294967294:4294967294").unwrap(), Some(Owner { uid: MAX_ID, gid: MAX_ID }));
        assert!(owner("4294967295:0").unwrap_err().message().contains("0 to 4294967294"));
        assert!(owner("1:99999999999").is_err());
    }

    #[test]
    fn tag_expansion() {
        let hex = "0123456789abcdef".repeat(4);
        let v =
            TagValues { base_tag: "4.3.0", digest_hex: &hex, version: Some("4.3.0"), variant: None, kind: Some("tm") };
        assert_eq!(expand_tag("{kind}-{version}", &v).unwrap(), "tm-4.3.0");
        assert_eq!(expand_tag(DEFAULT_TAG, &v).unwrap(), "4.3.0-0123456789ab");
        assert!(expand_tag("a/b{digest12}", &v).is_err());
    }
}
