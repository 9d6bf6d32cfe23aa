//! Credentials for Maven repositories: `WSO2IMG_MAVEN_USERNAME` and
//! `WSO2IMG_MAVEN_PASSWORD` (limited to one host when `WSO2IMG_MAVEN_HOST` is
//! set), else the `<server>` of `~/.m2/settings.xml` whose `<id>` is the
//! repository's `id`, or the id of a `<mirror>` with the repository's URL.
//! `${env.NAME}` in a server's fields is expanded; passwords encrypted with
//! `settings-security.xml` are refused. Secrets never appear in messages.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{Error, Result};

/// A username and password for one repository.
#[derive(Clone)]
pub struct Credential {
    /// The user name.
    pub username: String,
    /// The password (never printed).
    pub password: String,
    /// Where it came from, for messages (`WSO2IMG_MAVEN_USERNAME`, `~/.m2/settings.xml server nexus`).
    pub source: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential").field("username", &self.username).field("source", &self.source).finish()
    }
}

/// The servers and mirrors of a `settings.xml`.
#[derive(Default)]
pub struct Settings {
    path: Option<PathBuf>,
    /// server id → (username, password).
    servers: BTreeMap<String, (String, String)>,
    /// mirror URL (without a trailing `/`) → mirror id.
    mirrors: BTreeMap<String, String>,
}

impl Settings {
    /// `~/.m2/settings.xml`, or nothing when it does not exist.
    pub fn load_default() -> Result<Settings> {
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Settings::load(&PathBuf::from(h).join(".m2/settings.xml")),
            None => Ok(Settings::default()),
        }
    }

    /// Reads `path`; a missing file holds no credentials.
    pub fn load(path: &Path) -> Result<Settings> {
        let shown = path.display();
        let text = match crate::bounded::read_file_string(path, crate::bounded::MAVEN_SETTINGS) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => return Err(Error::config(format!("{shown}: {}", crate::bounded::read_error(&e)))),
        };
        let mut s = Settings { path: Some(path.to_path_buf()), ..Settings::default() };
        let mut r = Reader::from_str(&text);
        let mut stack: Vec<String> = Vec::new();
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let ev = r.read_event().map_err(|e| {
                let (line, col) = crate::check::files::position(&text, r.error_position() as usize);
                Error::config(format!("{shown}:{line}:{col}: {e}; fix the file"))
            })?;
            match ev {
                Event::Start(e) => {
                    stack.push(String::from_utf8_lossy(e.local_name().as_ref()).to_string());
                    if matches!(stack.last().map(String::as_str), Some("server" | "mirror")) {
                        fields.clear();
                    }
                }
                Event::Text(t) if in_field(&stack) => {
                    let v = t.decode().map(|c| c.to_string()).unwrap_or_default();
                    fields.entry(stack[stack.len() - 1].clone()).or_default().push_str(&v);
                }
                Event::GeneralRef(g) if in_field(&stack) => {
                    let ch = match &*g {
                        b"amp" => "&",
                        b"lt" => "<",
                        b"gt" => ">",
                        b"quot" => "\"",
                        b"apos" => "'",
                        _ => "",
                    };
                    fields.entry(stack[stack.len() - 1].clone()).or_default().push_str(ch);
                }
                Event::End(_) => {
                    for v in fields.values_mut() {
                        *v = v.trim().to_string();
                    }
                    let closed = stack.pop().unwrap_or_default();
                    let parent = stack.last().map(String::as_str);
                    match (closed.as_str(), parent) {
                        ("server", Some("servers")) => {
                            if let Some(id) = fields.get("id") {
                                let user = fields.get("username").cloned().unwrap_or_default();
                                let pass = fields.get("password").cloned().unwrap_or_default();
                                s.servers.insert(id.clone(), (user, pass));
                            }
                        }
                        ("mirror", Some("mirrors")) => {
                            if let (Some(id), Some(url)) = (fields.get("id"), fields.get("url")) {
                                s.mirrors.insert(url.trim_end_matches('/').to_string(), id.clone());
                            }
                        }
                        _ => {}
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        Ok(s)
    }

    /// The credential for the repository at `url` (id `id`, when it has one).
    pub fn credential(&self, url: &str, id: Option<&str>) -> Result<Option<Credential>> {
        if let Some(c) = from_env(url) {
            return Ok(Some(c));
        }
        let mirror = self.mirrors.get(url.trim_end_matches('/')).map(String::as_str);
        let Some(server) = id.or(mirror) else { return Ok(None) };
        let Some((user, pass)) = self.servers.get(server) else { return Ok(None) };
        let shown = self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        let source = format!("{shown} server {server}");
        if pass.starts_with('{') && pass.ends_with('}') {
            return Err(Error::config(format!(
                "{source}: the password is encrypted with settings-security.xml, which wso2img cannot read; set WSO2IMG_MAVEN_USERNAME and WSO2IMG_MAVEN_PASSWORD instead"
            )));
        }
        let username =
            expand(user).map_err(|v| Error::config(format!("{source}: username: ${{env.{v}}} is not set")))?;
        let password =
            expand(pass).map_err(|v| Error::config(format!("{source}: password: ${{env.{v}}} is not set")))?;
        Ok(Some(Credential { username, password, source }))
    }
}

/// Whether the innermost open element is a field of a `<server>` or `<mirror>`.
fn in_field(stack: &[String]) -> bool {
    stack.len() >= 2 && matches!(stack[stack.len() - 2].as_str(), "server" | "mirror")
}

/// The host (`host[:port]`) of an `http(s)://` URL.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

fn from_env(url: &str) -> Option<Credential> {
    let user = std::env::var("WSO2IMG_MAVEN_USERNAME").ok().filter(|v| !v.is_empty())?;
    let pass = std::env::var("WSO2IMG_MAVEN_PASSWORD").unwrap_or_default();
    if let Ok(h) = std::env::var("WSO2IMG_MAVEN_HOST") {
        if !h.is_empty() && h != host_of(url) {
            return None;
        }
    }
    Some(Credential { username: user, password: pass, source: "WSO2IMG_MAVEN_USERNAME".into() })
}

/// Expands `${env.NAME}`; the error is the unset variable's name.
fn expand(v: &str) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("${env.") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 6..];
        let Some(j) = after.find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let name = &after[..j];
        out.push_str(&std::env::var(name).map_err(|_| name.to_string())?);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_mirrors_and_env() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("settings.xml");
        std::fs::write(
            &p,
            "<settings><servers><server><id>nexus</id><username>ci</username><password>s&amp;cret</password></server>\
             <server><id>enc</id><username>u</username><password>{COQLCE6DU6GtcS5P=}</password></server>\
             <server><id>envd</id><username>${env.WSO2IMG_TEST_M2_USER}</username><password>p</password></server></servers>\
             <mirrors><mirror><id>nexus</id><url>https://nexus.example.com/repository/maven-public/</url><mirrorOf>*</mirrorOf></mirror></mirrors></settings>",
        )
        .unwrap();
        let s = Settings::load(&p).unwrap();
        let c = s.credential("https://nexus.example.com/repository/maven-public", None).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("ci", "s&cret"));
        assert!(!format!("{c:?}").contains("cret"));
        assert!(s.credential("https://other.example.com/m2", None).unwrap().is_none());
        let e = s.credential("https://x", Some("enc")).unwrap_err();
        assert!(e.message().contains("encrypted") && !e.message().contains("COQ"), "{e}");
        let e = s.credential("https://x", Some("envd")).unwrap_err();
        assert!(e.message().contains("WSO2IMG_TEST_M2_USER"), "{e}");
        std::fs::write(&p, "<settings><servers>").unwrap();
        assert!(Settings::load(&p).is_ok() || Settings::load(&p).is_err());
        assert_eq!(host_of("http://127.0.0.1:8080/m2"), "127.0.0.1:8080");
    }
}
