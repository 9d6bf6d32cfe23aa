//! The vocabulary of `[maven]`: coordinates of a released jar and the
//! repositories to fetch from, with the checks and redaction their text
//! needs. Resolution (download, verification, cache) is in
//! [`crate::inputs::maven`].

/// Maven Central, used when `[maven] repositories` is empty.
pub const CENTRAL: &str = "https://repo.maven.apache.org/maven2";

/// `group:artifact:version` of a released jar.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Coordinates {
    /// `groupId`.
    pub group: String,
    /// `artifactId`.
    pub artifact: String,
    /// `version`.
    pub version: String,
}

impl Coordinates {
    /// Parses `group:artifact:version`; the error says what is wrong.
    pub fn parse(s: &str) -> std::result::Result<Coordinates, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [g, a, v] = parts.as_slice() else {
            return Err("expected \"group:artifact:version\", e.g. \"org.postgresql:postgresql:42.7.3\"".into());
        };
        let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !ok(g) || !ok(a) || !ok(v) || g.starts_with('.') || a.starts_with('.') || v.starts_with('.') {
            return Err("group, artifact and version may hold letters, digits, . _ - only".into());
        }
        let upper = v.to_ascii_uppercase();
        if upper.ends_with("-SNAPSHOT") || upper == "SNAPSHOT" {
            return Err("a SNAPSHOT moves; pin a released version".into());
        }
        if upper == "LATEST" || upper == "RELEASE" {
            return Err(format!("{v} is not a version but a moving pointer; pin a released version"));
        }
        Ok(Coordinates { group: g.to_string(), artifact: a.to_string(), version: v.to_string() })
    }

    /// The jar's file name: `artifact-version.jar`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.jar", self.artifact, self.version)
    }

    /// The jar's path in a maven2 layout.
    pub fn path(&self) -> String {
        format!("{}/{}/{}/{}", self.group.replace('.', "/"), self.artifact, self.version, self.file_name())
    }

    /// `pkg:maven/group/artifact@version`.
    pub fn purl(&self) -> String {
        format!("pkg:maven/{}/{}@{}", self.group, self.artifact, self.version)
    }
}

impl std::fmt::Display for Coordinates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.group, self.artifact, self.version)
    }
}

/// A repository to fetch from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// Its URL, without a trailing `/`.
    pub url: String,
    /// Its id, matched against `settings.xml` servers.
    pub id: Option<String>,
}

/// Checks a repository URL: http(s), no credentials in it, plain HTTP only on loopback.
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("expected an https:// URL".into());
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.contains('@') {
        return Err(
            "credentials do not go in the URL; set WSO2IMG_MAVEN_USERNAME/PASSWORD or a settings.xml server".into()
        );
    }
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if rest.contains(['?', '#']) {
        return Err("a query string or fragment has no place in a repository URL (it would break every jar path and be logged); put a token in settings.xml or WSO2IMG_MAVEN_PASSWORD".into());
    }
    match scheme {
        "https" => Ok(()),
        "http" if is_loopback(host) => Ok(()),
        "http" => Err("plain http is allowed for loopback hosts only; use https".into()),
        _ => Err(format!("{scheme}:// is not supported; use https://")),
    }
}

/// A URL as it may be shown: any `user:password@` replaced by `***@`, no query string.
pub fn redact_url(url: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
            let host = host.rsplit_once('@').map_or(host.to_string(), |(_, h)| format!("***@{h}"));
            if path.is_empty() && !rest.contains('/') {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => url.to_string(),
    }
}

/// Whether `host` (with an optional port) is a loopback name or address.
pub fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
