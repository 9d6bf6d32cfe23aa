//! Pulls and pushes the daemon makes, with the credential wso2img finds for
//! the registry in `X-Registry-Auth` (URL-safe base64).

use base64::Engine as _;
use serde_json::json;

use super::{daemon_name, escape_path, progress, Daemon, Message};
use crate::digest::Digest;
use crate::error::{Error, Kind, Result};
use crate::net::runtime;
use crate::net::urlencode as escape;
use crate::reference::Reference;
use crate::transport::registry::auth::{self, Credential};

/// The JSON the daemon expects in `X-Registry-Auth` for registry `host`
/// (`{}` without a credential).
pub fn auth_json(credential: Option<&Credential>, host: &str) -> String {
    let server = if host == "docker.io" { "https://index.docker.io/v1/" } else { host };
    let v = match credential {
        Some(Credential::Basic { username, password }) => {
            json!({"username": username, "password": password, "serveraddress": server})
        }
        Some(Credential::IdentityToken(t)) => json!({"identitytoken": t, "serveraddress": server}),
        None => json!({}),
    };
    v.to_string()
}

/// The `X-Registry-Auth` header value: [`auth_json`] in URL-safe base64. The
/// daemon decodes URL-safe base64 and silently drops a credential whose
/// standard encoding carries `+` or `/`.
pub fn registry_auth(credential: Option<&Credential>, host: &str) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(auth_json(credential, host))
}

impl Daemon {
    /// Asks the daemon to pull `r`, with the credential wso2img finds for its
    /// registry; each finished step is reported as progress.
    pub fn pull(&self, r: &Reference) -> Result<()> {
        let found = auth::lookup(&r.registry, crate::net::DEFAULT_TIMEOUT)?;
        let header = registry_auth(found.as_ref().map(|f| &f.credential), &r.registry);
        let path = format!("/images/create?fromImage={}&tag={}", escape(&r.familiar_name()), escape(r.tag_or_latest()));
        crate::progress::message(&format!("daemon: pulling {}", daemon_name(r)));
        let what = format!("docker-daemon:{}: pulling", daemon_name(r));
        runtime()
            .block_on(self.post_stream(&path, &header, &mut |m| progress(&m)))
            .map_err(|f| self.failure(f, &what, &r.registry, found.as_ref()))
    }

    /// Has the daemon push `r` (a name with tag it already holds), with the
    /// credential wso2img finds for its registry. Returns the manifest digest
    /// the daemon pushed: the daemon compresses layers itself, so it differs
    /// from what a direct push writes while the config digest stays.
    pub fn push(&self, r: &Reference) -> Result<Digest> {
        let found = auth::lookup(&r.registry, crate::net::DEFAULT_TIMEOUT)?;
        let header = registry_auth(found.as_ref().map(|f| &f.credential), &r.registry);
        let path = format!("/images/{}/push?tag={}", escape_path(&r.familiar_name()), escape(r.tag_or_latest()));
        let what = format!("{}: pushing through the Docker daemon", r);
        let mut digest: Option<Digest> = None;
        runtime()
            .block_on(self.post_stream(&path, &header, &mut |m| {
                if let Some(d) = pushed_digest(&m) {
                    digest = Some(d);
                }
                progress(&m)
            }))
            .map_err(|f| self.failure(f, &what, &r.registry, found.as_ref()))?;
        digest.ok_or_else(|| Error::new(Kind::Io, format!("{what}: the daemon finished without reporting a digest")))
    }
}

/// The digest a push reports: `aux.Digest`, or the `TAG: digest: sha256:… size: N` line.
pub(super) fn pushed_digest(m: &Message) -> Option<Digest> {
    if let Some(d) = m.aux.as_ref().and_then(|a| a["Digest"].as_str()).and_then(|d| d.parse().ok()) {
        return Some(d);
    }
    let status = m.status.as_deref()?;
    let (_, rest) = status.split_once(": digest: ")?;
    rest.split_whitespace().next()?.parse().ok()
}
