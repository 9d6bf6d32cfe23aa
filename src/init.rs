//! `wso2img init`: scaffolds a project for one base. The base is opened (any
//! location), its product home, version and runtime user detected, and a
//! `wso2img.toml`, its lock and the customer folders are written — the
//! devportal theme file named as that version expects it. Nothing that exists
//! is ever overwritten: when any file to write is already there, nothing at
//! all is created.

use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::config::DEFAULT_VOLUMES;
use crate::error::{Error, Result};
use crate::lock::{self, LockedBase, Lockfile};
use crate::reference::Location;
use crate::transport;
use crate::transport::registry;
use crate::wso2::{self, Facts};

pub mod pattern;

/// The `.gitignore` `init` writes (when there is none): the default output.
const GITIGNORE: &str = "# What wso2img build writes by default (oci:out); built, never committed.\n/out/\n";

/// What `init` created.
#[derive(Debug, Clone)]
pub struct Scaffold {
    /// The base as written in the new config.
    pub base: String,
    /// What was detected in the base (its first platform).
    pub facts: Facts,
    /// The devportal theme file the version reads (`userTheme.json` or
    /// `userTheme.js`); `None` when the base has no devportal (no `themes/`).
    pub theme_file: Option<&'static str>,
    /// Every file and folder created, in creation order; folders end with `/`.
    pub created: Vec<String>,
    /// The components written as `[[variant]]`s for `--pattern`.
    pub components: Vec<pattern::Component>,
}

/// The devportal theme file API Manager `version` reads: `userTheme.json`
/// from 4.2, `userTheme.js` for 3.2 to 4.1.
pub fn theme_file(version: Option<&str>) -> &'static str {
    match wso2::portal_apps_dir(version) {
        "jaggeryapps" => "userTheme.js",
        _ => "userTheme.json",
    }
}

/// Creates `config` (a new `wso2img.toml`), its lock and the customer folders
/// beside it for the base at `base` (relative paths against the working
/// directory) — with `pattern`, also a `[[variant]]` and an overlays folder
/// per component of that deployment pattern. Refuses, creating nothing, when
/// any file to write exists.
pub fn init(config: &Path, base: &str, pattern: Option<u8>, registry: &registry::Options) -> Result<Scaffold> {
    let location: Location = base.parse()?;
    let dir = match config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    refuse_existing(config)?;
    let opened = transport::open_base(&location, Path::new("."), &transport::Connections::new(registry.clone()))?;
    let img = opened.images.first().ok_or_else(|| Error::source(format!("{location}: has no image")))?;
    let facts = wso2::detect(&img.config_json, None, &mut transport::LayerFs(img))
        .map_err(|e| e.context(format!("{location} ({})", img.platform)))?;
    let written = base_for_config(base, &location, &dir)?;
    let components = match pattern {
        Some(n) => pattern::components(n, &facts, &written)?,
        None => Vec::new(),
    };
    let theme = facts.portals.iter().any(|p| p == "devportal").then(|| theme_file(facts.version.as_deref()));
    crate::progress::message(&format!(
        "base {}: API Manager {}, product home {}, user {} (files owned by {})",
        opened.name,
        facts.version.as_deref().unwrap_or("(unknown version)"),
        facts.product_home,
        if facts.user.is_empty() { "root" } else { &facts.user },
        facts.owner
    ));
    if theme.is_none() {
        crate::progress::message(&format!(
            "no themes/ folder: the {} serves no portal (devportal, publisher, admin)",
            facts.describe()
        ));
    }

    let mut folders: Vec<String> = ["jars", "dropins", "themes/devportal", "overlays/repository/conf", "keystores"]
        .into_iter()
        .filter(|f| theme.is_some() || !f.starts_with("themes"))
        .map(str::to_string)
        .collect();
    folders.extend(components.iter().map(|c| format!("{}/repository/conf", variant_overlays(c))));
    let lock_path = lock::path_for(config);
    let mut text = config_text(&written, &opened.name, &facts, theme);
    if let Some(n) = pattern {
        text += &pattern_text(n, &components, theme.is_some());
    }
    let mut files: Vec<(PathBuf, String)> = vec![(config.to_path_buf(), text)];
    if let Some(theme) = theme {
        files.insert(1, (dir.join("themes/devportal").join(theme), theme_text(theme)));
    }
    for (path, _) in &files {
        refuse_existing(path)?;
    }
    refuse_existing(&lock_path)?;
    for f in &folders {
        let p = dir.join(f);
        if p.symlink_metadata().is_ok() && !p.is_dir() {
            return Err(Error::usage(format!(
                "{}: exists and is not a folder; move it away or pick another -c",
                p.display()
            )));
        }
    }

    let mut made = Created::default();
    let result = (|| -> Result<()> {
        made.file(&files[0].0, &files[0].1)?;
        for f in &folders {
            made.dirs(&dir, f)?;
        }
        for (path, text) in &files[1..] {
            made.file(path, text)?;
        }
        for f in &folders {
            let p = dir.join(f);
            if fs::read_dir(&p).map(|mut r| r.next().is_none()).unwrap_or(false) {
                made.file(&p.join(".gitkeep"), "")?;
            }
        }
        let gitignore = dir.join(".gitignore");
        if gitignore.symlink_metadata().is_err() {
            made.file(&gitignore, GITIGNORE)?;
        }
        let lock = Lockfile {
            path: lock_path.clone(),
            existed: false,
            bases: vec![LockedBase::of(&written, &opened)],
            maven: Vec::new(),
        };
        lock.save()?;
        made.paths.push((lock_path.clone(), false));
        Ok(())
    })();
    if let Err(e) = result {
        made.undo();
        return Err(e);
    }
    let created = made.paths.iter().map(|(p, is_dir)| shown(p, *is_dir)).collect();
    Ok(Scaffold { base: written, facts, theme_file: theme, created, components })
}

/// How a created path is printed: without a leading `./`, folders with `/`.
fn shown(p: &Path, is_dir: bool) -> String {
    let s = p.strip_prefix(".").unwrap_or(p).display().to_string();
    if is_dir {
        format!("{s}/")
    } else {
        s
    }
}

fn refuse_existing(path: &Path) -> Result<()> {
    if path.symlink_metadata().is_ok() {
        return Err(Error::usage(format!(
            "{}: already exists; init never overwrites (edit it, remove it, or pick another config with -c)",
            path.display()
        )));
    }
    Ok(())
}

/// Files and folders created so far, removed again when a later step fails.
#[derive(Default)]
struct Created {
    paths: Vec<(PathBuf, bool)>,
}

impl Created {
    fn dirs(&mut self, dir: &Path, rel: &str) -> Result<()> {
        let mut p = dir.to_path_buf();
        for part in rel.split('/') {
            p.push(part);
            if p.is_dir() {
                continue;
            }
            fs::create_dir(&p).map_err(|e| Error::io("creating a folder", &p, e))?;
            self.paths.push((p.clone(), true));
        }
        Ok(())
    }

    fn file(&mut self, path: &Path, text: &str) -> Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
            let mut missing = Vec::new();
            let mut p = Some(parent);
            while let Some(d) = p.filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
                missing.push(d.to_path_buf());
                p = d.parent();
            }
            for d in missing.into_iter().rev() {
                fs::create_dir(&d).map_err(|e| Error::io("creating a folder", &d, e))?;
                self.paths.push((d, true));
            }
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io("creating", path, e))?;
        self.paths.push((path.to_path_buf(), false));
        f.write_all(text.as_bytes()).map_err(|e| Error::io("writing", path, e))
    }

    fn undo(&self) {
        for (p, is_dir) in self.paths.iter().rev() {
            let _ = if *is_dir { fs::remove_dir(p) } else { fs::remove_file(p) };
        }
    }
}

/// The base as the new config names it: as given, except that a relative
/// path is made relative to the config's folder (config paths are).
fn base_for_config(given: &str, location: &Location, dir: &Path) -> Result<String> {
    if dir == Path::new(".") {
        return Ok(given.to_string());
    }
    let rebase = |p: &Path| -> Result<PathBuf> {
        if p.is_absolute() {
            return Ok(p.to_path_buf());
        }
        let cwd = std::env::current_dir().map_err(|e| Error::io("reading the working directory", Path::new("."), e))?;
        Ok(relative(&normalize(&cwd.join(p)), &normalize(&cwd.join(dir))))
    };
    if location.local_path().is_none() {
        return Ok(given.to_string());
    }
    Ok(location.map_local_path(rebase)?.to_string())
}

/// `p` without `.` and with `..` applied, lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `to` relative to `from` (both absolute and normalized).
fn relative(to: &Path, from: &Path) -> PathBuf {
    let a: Vec<Component> = to.components().collect();
    let b: Vec<Component> = from.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &a[common..] {
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The overlays folder of a pattern component.
pub fn variant_overlays(c: &pattern::Component) -> String {
    format!("variants/{}/overlays", c.name)
}

/// The `[[variant]]` sections of pattern `n`.
fn pattern_text(n: u8, components: &[pattern::Component], themes: bool) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut t = format!("\n# Deployment pattern {n} of wso2/helm-apim: {}.\n", pattern::name(n));
    t += match n {
        0 => "# One all-in-one server: the main image above.\n",
        1 => "# Two all-in-one servers (active-active) of the main image above: run it twice, sharing the databases.\n",
        _ => "# The main image is the all-in-one; each component below is one more image. Its deployment.toml goes\n# in its own overlays folder, variants/<name>/overlays/repository/conf/deployment.toml (the main\n# overlays' one is for the all-in-one and is not taken).\n",
    };
    for c in components {
        let mut layers = vec!["jars", "dropins", "keystores"];
        if c.portals && themes {
            layers.insert(2, "themes");
        }
        let layers: Vec<String> = layers.into_iter().map(quote).collect();
        t += &format!("\n[[variant]]\nname = {}\n", quote(c.name));
        if let Some(b) = &c.base {
            t += &format!("base = {}\n", quote(b));
        }
        if let Some(p) = c.profile {
            t += &format!("profile = {}\n", quote(p));
        }
        t += &format!("layers = [{}]\noverlays = {}\n", layers.join(", "), quote(&variant_overlays(c)));
    }
    t
}

fn config_text(base: &str, name: &str, facts: &Facts, theme: Option<&str>) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let one_line = |s: &str| crate::sanitize::escape_controls(s).into_owned();
    let name = one_line(name);
    let version = one_line(facts.version.as_deref().unwrap_or("(unknown version)"));
    let home = one_line(&facts.product_home);
    let volumes: Vec<String> = DEFAULT_VOLUMES.iter().map(|v| quote(v)).collect();
    let themes = match theme {
        Some(theme) => format!("themes = \"themes\"          # portal themes: themes/devportal/{theme} for {version}"),
        None => format!("# no themes: the {} serves no portal", facts.describe()),
    };
    format!(
        "# wso2img.toml, written by `wso2img init` for {name}:\n\
# API Manager {version}, product home {home}, runtime user {user} (files owned by {owner}).\n\
# Every folder below is relative to this file; an empty folder adds no layer.\n\
\n\
[base]\n\
image = {base}\n\
\n\
[layers]\n\
jars = \"jars\"              # third-party jars, JDBC drivers -> {home}/repository/components/lib\n\
dropins = \"dropins\"        # OSGi bundles -> {home}/repository/components/dropins\n\
{themes}\n\
overlays = \"overlays\"      # files laid over {home}, e.g. overlays/repository/conf/deployment.toml\n\
keystores = \"keystores\"    # baked only with bake_keystores = true or --bake-keystores\n\
bake_keystores = false     # mount keystores at run time instead (a secret or a volume)\n\
# exclude = [\"*.md\"]       # more ignore patterns (gitignore syntax); .git, .DS_Store, *~, .gitkeep… never ship\n\
#\n\
# Overlays: every file under overlays/ is laid over the product home, last, replacing the base's\n\
# file at the same path: overlays/repository/conf/deployment.toml -> {home}/repository/conf/deployment.toml.\n\
# Start from the base's own deployment.toml and change what you need; `wso2img check` checks it.\n\
# Empty folders hold a .gitkeep so git keeps them; it is never copied into the image.\n\
\n\
[image]\n\
volumes = [{volumes}]   # solr = the user home's solr folder\n\
\n\
# Uncomment to push with `wso2img build --push`:\n\
# [target]\n\
# repository = \"registry.example.com/acme/wso2am\"\n\
# tag = \"{{base_tag}}-{{digest12}}\"   # the default\n\
# extra_tags = [\"latest\"]\n",
        base = quote(base),
        user = one_line(if facts.user.is_empty() { "root" } else { &facts.user }),
        owner = facts.owner,
        volumes = volumes.join(", "),
    )
}

fn theme_text(theme: &str) -> String {
    if theme == "userTheme.js" {
        "// Devportal theme overrides (API Manager 3.2 to 4.1): merged over the default theme.\nconst userTheme = {\n    custom: {},\n};\n".into()
    } else {
        "{\n  \"custom\": {}\n}\n".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_file_follows_the_version() {
        assert_eq!(theme_file(Some("4.3.0")), "userTheme.json");
        assert_eq!(theme_file(Some("4.2.0")), "userTheme.json");
        assert_eq!(theme_file(Some("4.1.0")), "userTheme.js");
        assert_eq!(theme_file(Some("3.2.0")), "userTheme.js");
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/a/b/base"), Path::new("/a/c")), PathBuf::from("../b/base"));
        assert_eq!(relative(Path::new("/a/c/base"), Path::new("/a/c")), PathBuf::from("base"));
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        let loc: Location = "oci:base:4.3.0".parse().unwrap();
        let cwd = std::env::current_dir().unwrap();
        let got = base_for_config("oci:base:4.3.0", &loc, &cwd.join("proj")).unwrap();
        assert_eq!(got, "oci:../base:4.3.0");
        assert_eq!(
            base_for_config("wso2/wso2am:4.3.0", &"wso2/wso2am:4.3.0".parse().unwrap(), Path::new("x")).unwrap(),
            "wso2/wso2am:4.3.0"
        );
    }
}
