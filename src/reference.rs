//! Image references and image locations (transport-prefixed, as skopeo spells them).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The registry that bare names such as `busybox` refer to.
const DOCKER_HUB: &str = "docker.io";
/// The accepted forms, quoted in error messages.
const FORM: &str = "write NAME[:TAG|@sha256:DIGEST]";
/// The longest `registry/repository`, as in docker.
const NAME_MAX: usize = 255;
/// The longest tag.
const TAG_MAX: usize = 128;
/// skopeo transports this tool does not read or write.
const OTHER_TRANSPORTS: &[&str] = &["atomic", "containers-storage", "dir", "oci-archive", "ostree", "sif", "tarball"];

/// Why a text is not an image reference or location. Each names the text
/// as written and, where there is one, says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// Nothing was written.
    #[error("{input:?}: empty image reference")]
    Empty {
        /// The text.
        input: String,
    },
    /// 64 hex digits: an image ID.
    #[error("{input:?}: looks like an image ID, not a name")]
    ImageId {
        /// The text.
        input: String,
    },
    /// Nothing after `@`.
    #[error("{input:?}: empty digest")]
    EmptyDigest {
        /// The text.
        input: String,
    },
    /// A digest of another algorithm than sha256.
    #[error("{input:?}: digest algorithm {algorithm:?} is not supported")]
    DigestAlgorithm {
        /// The text.
        input: String,
        /// The algorithm written.
        algorithm: String,
    },
    /// Not `sha256:` and 64 lowercase hex digits.
    #[error("{input:?}: invalid digest")]
    InvalidDigest {
        /// The text.
        input: String,
    },
    /// Nothing after the tag's `:`.
    #[error("{input:?}: empty tag")]
    EmptyTag {
        /// The text.
        input: String,
    },
    /// A tag over 128 characters.
    #[error("{input:?}: tag is longer than {TAG_MAX} characters")]
    TagTooLong {
        /// The text.
        input: String,
    },
    /// A tag with characters a tag cannot have.
    #[error("{input:?}: invalid tag {tag:?}")]
    InvalidTag {
        /// The text.
        input: String,
        /// The tag written.
        tag: String,
    },
    /// A tag or digest but no repository.
    #[error("{input:?}: missing repository name")]
    MissingRepository {
        /// The text.
        input: String,
    },
    /// A registry that is not `HOST[:PORT]`.
    #[error("{input:?}: invalid registry {registry:?}")]
    InvalidRegistry {
        /// The text.
        input: String,
        /// The registry written.
        registry: String,
    },
    /// Upper case in the repository path.
    #[error("{input:?}: repository names must be lowercase")]
    Uppercase {
        /// The text.
        input: String,
    },
    /// `a//b`, a trailing `/`.
    #[error("{input:?}: empty path component (stray '/')")]
    EmptyComponent {
        /// The text.
        input: String,
    },
    /// A path component with characters a repository cannot have.
    #[error("{input:?}: invalid path component {component:?}")]
    InvalidComponent {
        /// The text.
        input: String,
        /// The component written.
        component: String,
    },
    /// `registry/repository` over 255 characters.
    #[error("{input:?}: name is longer than {NAME_MAX} characters")]
    NameTooLong {
        /// The text.
        input: String,
    },
    /// A transport-prefixed location that is not written as its transport takes it.
    #[error("{input:?}: {problem}")]
    Location {
        /// The text.
        input: String,
        /// What is wrong with it.
        problem: &'static str,
        /// How the transport's locations are written.
        form: &'static str,
    },
    /// A skopeo transport wso2img does not read or write.
    #[error("{input:?}: transport {transport} is not supported")]
    Transport {
        /// The text.
        input: String,
        /// The transport's name.
        transport: String,
    },
}

impl crate::error::Typed for ReferenceError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Usage
    }

    fn hint(&self) -> Option<String> {
        use ReferenceError::*;
        Some(match self {
            Empty { .. } | ImageId { .. } | EmptyDigest { .. } | EmptyTag { .. } | MissingRepository { .. } => {
                FORM.into()
            }
            EmptyComponent { .. } => FORM.into(),
            DigestAlgorithm { .. } => "only sha256 is".into(),
            InvalidDigest { .. } => "write @sha256: and 64 lowercase hex digits".into(),
            InvalidTag { .. } => "a tag is letters, digits, '_', '.' and '-', not starting with '.' or '-'".into(),
            InvalidRegistry { .. } => "write HOST[:PORT]/PATH".into(),
            InvalidComponent { .. } => "use lowercase letters and digits separated by '.', '_', '__' or '-'".into(),
            Location { form, .. } => (*form).into(),
            Transport { .. } => "use one of oci:, docker-archive:, docker://, docker-daemon:".into(),
            TagTooLong { .. } | Uppercase { .. } | NameTooLong { .. } => return None,
        })
    }
}

/// A registry image reference, normalised as docker normalises it
/// (`busybox` is `docker.io/library/busybox`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host with optional port, e.g. `docker.io`, `localhost:5000`.
    pub registry: String,
    /// Repository path in the registry, e.g. `library/busybox`.
    pub repository: String,
    /// The tag, if one was written.
    pub tag: Option<String>,
    /// The digest, if one was written.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses `s` the way docker's `ParseNormalizedNamed` does: an optional
    /// registry, a lowercase path, then `:TAG` and/or `@sha256:DIGEST`.
    pub fn parse(s: &str) -> Result<Reference> {
        Ok(Self::parse_typed(s)?)
    }

    /// [`Reference::parse`], with the typed error.
    pub fn parse_typed(s: &str) -> Result<Reference, ReferenceError> {
        use ReferenceError as E;
        let input = || s.to_string();
        if s.is_empty() {
            return Err(E::Empty { input: input() });
        }
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(E::ImageId { input: input() });
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(parse_digest(s, d)?)),
            None => (s, None),
        };
        // A tag colon is one after the last `/`; earlier ones are ports.
        let last = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last..].find(':') {
            Some(i) => (&rest[..last + i], Some(&rest[last + i + 1..])),
            None => (rest, None),
        };
        match tag {
            Some("") => return Err(E::EmptyTag { input: input() }),
            Some(t) if t.len() > TAG_MAX => return Err(E::TagTooLong { input: input() }),
            Some(t) if !Self::valid_tag(t) => return Err(E::InvalidTag { input: input(), tag: t.to_string() }),
            _ => {}
        }
        if name.is_empty() {
            return Err(E::MissingRepository { input: input() });
        }
        let (registry, path) = match name.split_once('/') {
            Some((d, p)) if d.contains(['.', ':']) || d == "localhost" => (d, p),
            _ => (DOCKER_HUB, name),
        };
        if !valid_registry(registry) {
            return Err(E::InvalidRegistry { input: input(), registry: registry.to_string() });
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(E::Uppercase { input: input() });
        }
        for c in path.split('/') {
            if c.is_empty() {
                return Err(E::EmptyComponent { input: input() });
            }
            if !valid_path_component(c) {
                return Err(E::InvalidComponent { input: input(), component: c.to_string() });
            }
        }
        let registry = if registry == "index.docker.io" { DOCKER_HUB } else { registry };
        let repository =
            if registry == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path.to_string() };
        if registry.len() + 1 + repository.len() > NAME_MAX {
            return Err(E::NameTooLong { input: input() });
        }
        Ok(Reference { registry: registry.to_string(), repository, tag: tag.map(str::to_string), digest })
    }

    /// The tag, or `latest` when none was written.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// `registry/repository`, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Docker's short form of the name: `busybox`, `wso2/wso2am`,
    /// `localhost:5000/acme/apim`.
    pub fn familiar_name(&self) -> String {
        if !self.is_docker_hub() {
            return self.name();
        }
        match self.repository.strip_prefix("library/") {
            Some(short) if !short.contains('/') => short.to_string(),
            _ => self.repository.clone(),
        }
    }

    /// The same name with `tag` and no digest; `tag` should satisfy
    /// [`Reference::valid_tag`].
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { tag: Some(tag.to_string()), digest: None, ..self.clone() }
    }

    /// The same reference pinned to `digest` (the tag is kept).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { digest: Some(digest), ..self.clone() }
    }

    /// Whether the registry is public (see [`is_public_registry`]).
    pub fn is_public(&self, extra: &[String]) -> bool {
        is_public_registry(&self.registry, extra)
    }

    /// Whether the registry is Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// Whether the registry host is `localhost`, `127.x.x.x` or `[::1]`, on any port.
    pub fn is_loopback(&self) -> bool {
        let (host, _) = host_port(&self.registry);
        if let Some(ip) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return ip.parse::<Ipv6Addr>().is_ok_and(|a| a.is_loopback());
        }
        host.eq_ignore_ascii_case("localhost") || host.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback())
    }

    /// Whether `s` is a valid tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    pub fn valid_tag(s: &str) -> bool {
        let b = s.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        !b.is_empty() && b.len() <= TAG_MAX && word(b[0]) && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

/// Parses `d`, the text after `@` in `input`.
fn parse_digest(input: &str, d: &str) -> Result<Digest, ReferenceError> {
    let input = input.to_string();
    match d.split_once(':') {
        _ if d.is_empty() => Err(ReferenceError::EmptyDigest { input }),
        Some((algo, _)) if algo != "sha256" => {
            Err(ReferenceError::DigestAlgorithm { input, algorithm: algo.to_string() })
        }
        _ => d.parse().map_err(|_| ReferenceError::InvalidDigest { input }),
    }
}

/// Splits a registry into host and port; a bracketed IPv6 host keeps its brackets.
fn host_port(d: &str) -> (&str, Option<&str>) {
    let end = if d.starts_with('[') { d.find(']').map_or(d.len(), |i| i + 1) } else { d.find(':').unwrap_or(d.len()) };
    let (host, rest) = d.split_at(end);
    match rest.strip_prefix(':') {
        Some(port) => (host, Some(port)),
        None if rest.is_empty() => (host, None),
        None => (d, None),
    }
}

/// The names Docker Hub answers to, besides `docker.io` itself.
const DOCKER_HUB_ALIASES: [&str; 4] =
    ["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"];

/// Whether `registry` (`host[:port]`, as in a reference) is public: Docker Hub
/// under any of its names, on any port, in any case, or one of `extra` (the
/// config's `public_registries`; an entry without a port matches every port).
/// The one test behind every guard against pushing baked keystores.
pub fn is_public_registry(registry: &str, extra: &[String]) -> bool {
    let (host, port) = host_port(registry);
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&host.as_str()) {
        return true;
    }
    extra.iter().any(|e| {
        let (eh, ep) = host_port(e.trim());
        eh.trim_end_matches('.').eq_ignore_ascii_case(&host) && (ep.is_none() || ep == port)
    })
}

/// `host[:port]`, where host is dot-separated hostname components or `[IPv6]`.
fn valid_registry(d: &str) -> bool {
    let (host, port) = host_port(d);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ip) => !ip.is_empty() && ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
        None => host.split('.').all(|c| {
            let b = c.as_bytes();
            match (b.first(), b.last()) {
                (Some(first), Some(last)) => {
                    first.is_ascii_alphanumeric()
                        && last.is_ascii_alphanumeric()
                        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
                }
                _ => false,
            }
        }),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep_start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &b[sep_start..i];
        if !(matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&x| x == b'-')) {
            return false;
        }
    }
}

/// Where an image is read from or written to, spelled with skopeo's
/// transport prefixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `oci:DIR[:TAG]`: an OCI image layout directory.
    Oci {
        /// The layout directory.
        dir: PathBuf,
        /// The image's ref name in the layout's index.
        tag: Option<String>,
    },
    /// `docker-archive:FILE[:REF]`: a `docker save` tarball. A file name
    /// containing `:` cannot be combined with a reference.
    DockerArchive {
        /// The tarball.
        path: PathBuf,
        /// The name the image carries inside the tarball.
        reference: Option<Reference>,
    },
    /// `docker://REF` or a bare reference: an image in a registry.
    Registry(Reference),
    /// `docker-daemon:NAME[:TAG]`: an image in the local docker daemon.
    Daemon(Reference),
    /// `builtin:NAME`: a sample base image built into the tool.
    Builtin(String),
}

impl Location {
    /// The local file or folder a location names (`oci:`, `docker-archive:`).
    pub fn local_path(&self) -> Option<&std::path::Path> {
        match self {
            Location::Oci { dir, .. } => Some(dir),
            Location::DockerArchive { path, .. } => Some(path),
            _ => None,
        }
    }
}

impl Location {
    /// `oci:DIR`: the OCI layout folder `dir`, untagged.
    pub fn oci(dir: PathBuf) -> Location {
        Location::Oci { dir, tag: None }
    }

    /// The tag it names, if any (`oci:DIR:TAG`, `docker-archive:FILE:NAME:TAG`,
    /// `docker://NAME:TAG`, `docker-daemon:NAME:TAG`).
    pub fn tag(&self) -> Option<&str> {
        match self {
            Location::Oci { tag, .. } => tag.as_deref(),
            Location::DockerArchive { reference, .. } => reference.as_ref().and_then(|r| r.tag.as_deref()),
            Location::Registry(r) | Location::Daemon(r) => r.tag.as_deref(),
            Location::Builtin(_) => None,
        }
    }

    /// The tag it names; for a layout, an archive or a built-in sample that
    /// names none, `found` (the tag the image was found under; none when empty).
    pub fn tag_or(&self, found: &str) -> Option<String> {
        match self {
            Location::Registry(r) | Location::Daemon(r) => r.tag.clone(),
            Location::Oci { tag: Some(t), .. } => Some(t.clone()),
            Location::DockerArchive { reference: Some(r), .. } => r.tag.clone(),
            _ => Some(found.to_string()).filter(|t| !t.is_empty()),
        }
    }

    /// The same location with its local file or folder (if it names one)
    /// replaced by `f` of it.
    pub fn map_local_path<E>(&self, f: impl FnOnce(&std::path::Path) -> Result<PathBuf, E>) -> Result<Location, E> {
        Ok(match self {
            Location::Oci { dir, tag } => Location::Oci { dir: f(dir)?, tag: tag.clone() },
            Location::DockerArchive { path, reference } => {
                Location::DockerArchive { path: f(path)?, reference: reference.clone() }
            }
            other => other.clone(),
        })
    }
}

impl From<Reference> for Location {
    fn from(r: Reference) -> Location {
        Location::Registry(r)
    }
}

impl Location {
    /// The transport name: `oci`, `docker-archive`, `docker`, `docker-daemon` or `builtin`.
    pub fn transport(&self) -> &'static str {
        match self {
            Location::Oci { .. } => "oci",
            Location::DockerArchive { .. } => "docker-archive",
            Location::Registry(_) => "docker",
            Location::Daemon(_) => "docker-daemon",
            Location::Builtin(_) => "builtin",
        }
    }
}

impl FromStr for Location {
    type Err = Error;
    fn from_str(s: &str) -> Result<Location> {
        let bad = |problem: &'static str, form: &'static str| -> Error {
            ReferenceError::Location { input: s.to_string(), problem, form }.into()
        };
        const OCI: &str = "write oci:DIR[:TAG]";
        const ARCHIVE: &str = "write docker-archive:FILE[:NAME[:TAG]]";
        const DAEMON: &str = "write docker-daemon:NAME[:TAG]";
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((_, "")) => return Err(bad("empty tag", OCI)),
                Some((dir, tag)) if Reference::valid_tag(tag) => (dir, Some(tag.to_string())),
                _ => (rest, None),
            };
            if dir.is_empty() {
                return Err(bad("empty directory", OCI));
            }
            return Ok(Location::Oci { dir: PathBuf::from(dir), tag });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (path, reference) = match rest.split_once(':').map(|(p, r)| (p, Reference::parse(r))) {
                Some((path, Ok(reference))) => (path, Some(reference)),
                _ => (rest, None),
            };
            if path.is_empty() {
                return Err(bad("empty file name", ARCHIVE));
            }
            if reference.as_ref().is_some_and(|r| r.digest.is_some()) {
                return Err(bad("a docker archive cannot name a digest", ARCHIVE));
            }
            return Ok(Location::DockerArchive { path: PathBuf::from(path), reference });
        }
        if let Some(rest) = s.strip_prefix("docker-daemon:") {
            if rest.is_empty() || rest.starts_with("sha256:") {
                return Err(bad("not a daemon image name", DAEMON));
            }
            let reference = Reference::parse(rest)?;
            if reference.digest.is_some() {
                return Err(bad("the docker daemon is not addressed by digest", DAEMON));
            }
            return Ok(Location::Daemon(reference));
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            if rest.starts_with('/') {
                return Err(bad("too many slashes", "write docker://NAME[:TAG|@sha256:DIGEST]"));
            }
            return Reference::parse(rest).map(Location::Registry);
        }
        if let Some(name) = s.strip_prefix("builtin:") {
            if name.is_empty() || !name.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-')) {
                return Err(bad(
                    "not a sample name",
                    "write builtin:NAME, NAME being lowercase letters, digits, '.' and '-'",
                ));
            }
            return Ok(Location::Builtin(name.to_string()));
        }
        match s.split_once(':') {
            Some((word, _)) if OTHER_TRANSPORTS.contains(&word) => {
                Err(ReferenceError::Transport { input: s.to_string(), transport: word.to_string() }.into())
            }
            _ => Reference::parse(s).map(Location::Registry),
        }
    }
}

/// A Docker Hub image named without a registry (`out`, `nosuch:thing`) that
/// could not be read: a bare name is easily meant as a local folder or file.
/// The hint names the local image when one of that name exists
/// (`did you mean oci:out?`), else the forms of a local image.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct BareNameError {
    /// The name as the user would write it.
    pub name: String,
    /// Why it could not be read (the registry's error).
    pub reason: String,
    /// The kind of the registry's error.
    pub kind: crate::error::Kind,
    /// The local image of that name, when a folder or file exists.
    pub local: Option<Location>,
}

impl crate::error::Typed for BareNameError {
    fn kind(&self) -> crate::error::Kind {
        self.kind
    }
    fn hint(&self) -> Option<String> {
        Some(match &self.local {
            Some(l) => format!("did you mean {l}?"),
            None => "a name without a registry is a Docker Hub image; for a local one write oci:DIR[:TAG], \
                     docker-archive:FILE, docker-daemon:NAME[:TAG] or builtin:NAME"
                .to_string(),
        })
    }
}

impl BareNameError {
    /// `err`, from reading Docker Hub image `r`, with the hint when `r` could
    /// have been meant as a local image (relative paths against `dir`).
    pub fn wrap(r: &Reference, dir: &std::path::Path, err: Error) -> Error {
        if !r.is_docker_hub() || r.digest.is_some() {
            return err;
        }
        let name = r.familiar_name();
        let path = dir.join(&name);
        let local = if path.is_dir() {
            Some(Location::Oci { dir: PathBuf::from(&name), tag: r.tag.clone() })
        } else if path.is_file() && r.tag.is_none() {
            Some(Location::DockerArchive { path: PathBuf::from(&name), reference: None })
        } else {
            None
        };
        let shown = match &r.tag {
            Some(t) => format!("{name}:{t}"),
            None => name,
        };
        let cause = err.cause();
        let typed: Error =
            BareNameError { name: shown, reason: err.what().to_string(), kind: err.kind(), local }.into();
        match cause {
            Some(c) => typed.with_cause(c),
            None => typed,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Oci { dir, tag } => {
                write!(f, "oci:{}", dir.display())?;
                tag.as_ref().map_or(Ok(()), |t| write!(f, ":{t}"))
            }
            Location::DockerArchive { path, reference } => {
                write!(f, "docker-archive:{}", path.display())?;
                reference.as_ref().map_or(Ok(()), |r| write!(f, ":{r}"))
            }
            Location::Registry(r) => write!(f, "docker://{r}"),
            Location::Daemon(r) => write!(f, "docker-daemon:{r}"),
            Location::Builtin(name) => write!(f, "builtin:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn r(s: &str) -> Reference {
        let parsed = Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(Reference::parse(&parsed.to_string()).ok(), Some(parsed.clone()), "round trip of {s}");
        parsed
    }

    fn err(s: &str) -> String {
        match Reference::parse(s) {
            Ok(x) => panic!("{s} parsed as {x}"),
            Err(e) => {
                assert_eq!(e.kind(), crate::error::Kind::Usage);
                e.to_string()
            }
        }
    }

    #[test]
    fn docker_hub_names() {
        let b = r("busybox");
        assert_eq!(
            (b.name().as_str(), b.tag.as_deref(), b.tag_or_latest()),
            ("docker.io/library/busybox", None, "latest")
        );
        assert_eq!((b.familiar_name().as_str(), b.to_string().as_str()), ("busybox", "docker.io/library/busybox"));
        let w = r("wso2/wso2am:4.3.0");
        assert_eq!(w.to_string(), "docker.io/wso2/wso2am:4.3.0");
        assert_eq!(w.familiar_name(), "wso2/wso2am");
        assert!(w.is_docker_hub() && !w.is_loopback());
        assert_eq!(r("docker.io/wso2/wso2am"), r("wso2/wso2am"));
        assert_eq!(r("index.docker.io/library/ubuntu:22.04").to_string(), "docker.io/library/ubuntu:22.04");
        assert_eq!(r("docker.io/ubuntu").repository, "library/ubuntu");
        assert_eq!(r("docker:24-dind").to_string(), "docker.io/library/docker:24-dind");
    }

    #[test]
    fn other_registries() {
        let l = r("localhost:5000/acme/apim:1.0");
        assert_eq!(
            (l.registry.as_str(), l.repository.as_str(), l.tag_or_latest()),
            ("localhost:5000", "acme/apim", "1.0")
        );
        assert_eq!(l.familiar_name(), "localhost:5000/acme/apim");
        assert!(l.is_loopback() && !l.is_docker_hub());
        assert_eq!(r("localhost:5000/foo").tag, None);
        let d = r(&format!("127.0.0.1:5000/a/b@sha256:{HEX}"));
        assert_eq!((d.registry.as_str(), d.tag.as_deref()), ("127.0.0.1:5000", None));
        assert_eq!(d.digest.map(|x| x.hex()), Some(HEX.to_string()));
        assert!(d.is_loopback());
        let both = r(&format!("registry.example.com/acme/wso2am:4.3.0@sha256:{HEX}"));
        assert_eq!((both.tag.as_deref(), both.digest.is_some(), both.is_loopback()), (Some("4.3.0"), true, false));
        let v6 = r("[::1]:5000/x:y");
        assert_eq!((v6.registry.as_str(), v6.repository.as_str(), v6.tag.as_deref()), ("[::1]:5000", "x", Some("y")));
        assert!(v6.is_loopback());
        assert_eq!(r("Registry.Example.COM/a__b/c-d--e.f").registry, "Registry.Example.COM");
    }

    #[test]
    fn reference_errors() {
        use ReferenceError as E;
        let typed = |s: &str| Reference::parse_typed(s).expect_err(s);
        let input = |s: &str| s.to_string();
        assert_eq!(typed("Wso2/wso2am:4.3.0"), E::Uppercase { input: input("Wso2/wso2am:4.3.0") });
        assert_eq!(typed("wso2/wso2am:"), E::EmptyTag { input: input("wso2/wso2am:") });
        assert_eq!(typed("x@sha256:abc"), E::InvalidDigest { input: input("x@sha256:abc") });
        let upper = format!("x@sha256:{}", HEX.to_uppercase());
        assert_eq!(typed(&upper), E::InvalidDigest { input: upper.clone() });
        let md5 = format!("x@md5:{HEX}");
        assert_eq!(typed(&md5), E::DigestAlgorithm { input: md5.clone(), algorithm: "md5".into() });
        assert!(matches!(typed("a//b"), E::EmptyComponent { .. }));
        assert!(matches!(typed("wso2/"), E::EmptyComponent { .. }));
        assert!(matches!(typed(&format!("x:{}", "a".repeat(129))), E::TagTooLong { .. }));
        assert!(Reference::parse(&format!("x:{}", "a".repeat(128))).is_ok());
        assert!(matches!(typed(&format!("{}/x", "a".repeat(250))), E::NameTooLong { .. }));
        assert!(matches!(typed(HEX), E::ImageId { .. }));
        assert!(matches!(typed(""), E::Empty { .. }));
        assert!(matches!(typed("a/-b"), E::InvalidComponent { ref component, .. } if component == "-b"));
        assert!(matches!(typed("x:.t"), E::InvalidTag { ref tag, .. } if tag == ".t"));
        assert!(matches!(typed("reg.com:5x/x"), E::InvalidRegistry { ref registry, .. } if registry == "reg.com:5x"));
        let bad_refs = "x@ :tag a/-b a/b_-c a/b. my_reg.com/x reg.com:/x reg.com:5x/x [zz]:1/x x:.t é/x";
        for bad in bad_refs.split(' ').chain(["", HEX]) {
            err(bad);
        }
        // One line: what is wrong with the text as written, then how to write it.
        assert_eq!(err("Wso2/wso2am:4.3.0"), "\"Wso2/wso2am:4.3.0\": repository names must be lowercase");
        assert_eq!(err("wso2/wso2am:"), "\"wso2/wso2am:\": empty tag; write NAME[:TAG|@sha256:DIGEST]");
        let e = Reference::parse("wso2/wso2am:").unwrap_err();
        assert_eq!(e.hint(), Some(FORM));
        assert!(matches!(e.typed::<ReferenceError>(), Some(E::EmptyTag { .. })));
    }

    #[test]
    fn public_registries() {
        let extra = vec!["quay.example.com".to_string(), "reg.example.com:5000".to_string()];
        for pub_host in [
            "docker.io",
            "DOCKER.IO",
            "docker.io:443",
            "index.docker.io",
            "registry-1.docker.io:443",
            "Registry-1.Docker.IO",
            "quay.example.com:8443",
            "reg.example.com:5000",
        ] {
            assert!(is_public_registry(pub_host, &extra), "{pub_host}");
        }
        for private in
            ["127.0.0.1:5000", "registry.example.com", "reg.example.com:5001", "notdocker.io", "docker.io.example.com"]
        {
            assert!(!is_public_registry(private, &extra), "{private}");
        }
        assert!(r("DOCKER.IO/acme/apim:1").is_public(&[]));
        assert!(r("registry-1.docker.io/acme/apim").is_public(&[]));
        assert!(r("docker.io:443/acme/apim").is_public(&[]));
    }

    #[test]
    fn tags_and_helpers() {
        assert!(Reference::valid_tag("_a.B-1") && !Reference::valid_tag("-a") && !Reference::valid_tag("a/b"));
        let w = r("wso2/wso2am:4.3.0").with_digest(format!("sha256:{HEX}").parse().expect("digest"));
        assert_eq!(w.to_string(), format!("docker.io/wso2/wso2am:4.3.0@sha256:{HEX}"));
        assert_eq!(w.with_tag("4.4.0").to_string(), "docker.io/wso2/wso2am:4.4.0");
        assert_eq!(r("library/a/b").familiar_name(), "library/a/b");
        assert!(!r("128.0.0.1/x").is_loopback() && r("127.1.2.3/x").is_loopback());
    }

    fn loc(s: &str) -> Location {
        let parsed: Location = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(parsed.to_string().parse::<Location>().ok(), Some(parsed.clone()), "round trip of {s}");
        parsed
    }

    #[test]
    fn locations() {
        let oci = |dir: &str, tag: Option<&str>| Location::Oci { dir: dir.into(), tag: tag.map(Into::into) };
        assert_eq!(loc("oci:out/apim:4.3.0"), oci("out/apim", Some("4.3.0")));
        assert_eq!(loc("oci:out/apim"), oci("out/apim", None));
        assert_eq!(loc("oci:a:b/c"), oci("a:b/c", None));
        assert_eq!(loc("oci:out/apim:tag").to_string(), "oci:out/apim:tag");
        let a = loc("docker-archive:a.tar");
        assert_eq!((a.to_string().as_str(), a.transport()), ("docker-archive:a.tar", "docker-archive"));
        let Location::DockerArchive { path, reference } = loc("docker-archive:out/a.tar:wso2/wso2am:4.3.0") else {
            panic!("not an archive")
        };
        assert_eq!((path, reference), ("out/a.tar".into(), Some(r("wso2/wso2am:4.3.0"))));
        assert_eq!(
            loc("docker-archive:a.tar:Bad"),
            Location::DockerArchive { path: "a.tar:Bad".into(), reference: None }
        );
        let reg = loc("docker://wso2/wso2am:4.3.0");
        assert_eq!((reg.to_string().as_str(), reg.transport()), ("docker://docker.io/wso2/wso2am:4.3.0", "docker"));
        assert_eq!(loc("wso2/wso2am:4.3.0"), reg);
        assert_eq!(loc("localhost:5000/x"), Location::Registry(r("localhost:5000/x")));
        let d = loc("docker-daemon:acme/apim:1");
        assert_eq!((d.to_string().as_str(), d.transport()), ("docker-daemon:docker.io/acme/apim:1", "docker-daemon"));
        let b = loc("builtin:wso2am-4.3.0");
        assert_eq!((b.to_string().as_str(), b.transport()), ("builtin:wso2am-4.3.0", "builtin"));
        assert_eq!(loc("oci:x").transport(), "oci");
    }

    #[test]
    fn location_errors() {
        let digest = format!("docker-daemon:x@sha256:{HEX}");
        let archive_digest = format!("docker-archive:a.tar:x@sha256:{HEX}");
        let bad_locations = "oci: oci::t oci:out: docker-archive: docker-archive::x docker-daemon: docker:///x \
            docker:// docker://Wso2/x builtin: builtin:Bad x:-y";
        for bad in bad_locations.split_whitespace().chain([digest.as_str(), archive_digest.as_str()]) {
            let e = bad.parse::<Location>().expect_err(bad);
            assert_eq!(e.kind(), crate::error::Kind::Usage, "{bad}");
        }
        let e = "oci-archive:x.tar".parse::<Location>().expect_err("oci-archive");
        assert!(
            matches!(e.typed::<ReferenceError>(), Some(ReferenceError::Transport { transport, .. }) if transport == "oci-archive")
        );
        assert_eq!(
            e.to_string(),
            "\"oci-archive:x.tar\": transport oci-archive is not supported; use one of oci:, docker-archive:, docker://, docker-daemon:"
        );
        let e = "oci::t".parse::<Location>().expect_err("oci::t");
        assert!(matches!(
            e.typed::<ReferenceError>(),
            Some(ReferenceError::Location { problem: "empty directory", .. })
        ));
        assert_eq!(e.hint(), Some("write oci:DIR[:TAG]"));
        assert!("dir:/tmp/x".parse::<Location>().is_err());
    }
}
