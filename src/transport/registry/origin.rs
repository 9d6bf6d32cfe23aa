//! Where a registry's credentials may go: only to the scheme, host and port
//! they were found for. A `Location` header or a redirect may move a request
//! elsewhere (a storage backend, or a hostile registry's other host); the
//! request then goes without `Authorization`, and a move from HTTPS to plain
//! HTTP is refused outright.

use reqwest::Url;

/// The most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// Whether `a` and `b` share scheme, host and port (the default port when none is written).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme().eq_ignore_ascii_case(b.scheme())
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Resolves `location` (absolute, scheme-relative or relative) against
/// `from`, refusing a move from HTTPS to plain HTTP and any scheme but those two.
pub fn follow(from: &Url, location: &str) -> Result<Url, String> {
    let next = from.join(location.trim()).map_err(|e| format!("bad Location {:?} ({e})", location))?;
    match (from.scheme(), next.scheme()) {
        ("https", "http") => Err(format!(
            "refusing to follow {} from HTTPS to plain HTTP ({})",
            shown(&next),
            from.host_str().unwrap_or("")
        )),
        (_, "http" | "https") => Ok(next),
        (_, other) => Err(format!("refusing to follow a Location with scheme {other:?}")),
    }
}

/// `scheme://host[:port]/path` of `u`, without userinfo or query (for messages).
pub fn shown(u: &Url) -> String {
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{}{port}{}", u.scheme(), u.host_str().unwrap_or(""), u.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn origins_and_moves() {
        let base = u("https://reg.example.com/v2/");
        assert!(same_origin(&base, &u("https://REG.example.com:443/v2/x")));
        assert!(!same_origin(&base, &u("http://reg.example.com/v2/x")));
        assert!(!same_origin(&base, &u("https://reg.example.com:5000/v2/x")));
        assert!(!same_origin(&base, &u("https://other.example.com/v2/x")));
        assert_eq!(
            follow(&base, "/v2/a/blobs/uploads/1").unwrap().as_str(),
            "https://reg.example.com/v2/a/blobs/uploads/1"
        );
        assert_eq!(follow(&base, "//cdn.example.com/b").unwrap().as_str(), "https://cdn.example.com/b");
        let e = follow(&base, "http://127.0.0.2:5011/v2/x").unwrap_err();
        assert!(e.contains("HTTPS to plain HTTP"), "{e}");
        assert!(follow(&base, "file:///etc/passwd").is_err());
        let plain = u("http://127.0.0.1:5000/v2/");
        assert!(follow(&plain, "http://127.0.0.2:5011/v2/x").is_ok());
    }
}
