//! Proxies from the environment, read the way curl and Go read them.
//!
//! - `HTTPS_PROXY` (else `https_proxy`) serves `https://` URLs, `HTTP_PROXY`
//!   (else `http_proxy`) serves `http://` URLs; the first non-empty variable
//!   wins. A value without a scheme means `http://`; only `http://` and
//!   `https://` proxies are supported.
//! - `NO_PROXY` (else `no_proxy`) lists destinations reached directly,
//!   separated by commas or spaces, case-insensitively:
//!   - `*` alone: every destination;
//!   - a name (`example.com`), the same with a leading dot (`.example.com`)
//!     or `*.` (`*.example.com`): that name and every name under it (curl's
//!     rule; Go leaves the name itself out for the dotted forms), never a
//!     mere suffix (`ample.com` does not cover `example.com`);
//!   - an IP address (`10.1.2.3`, `::1`) or a CIDR block (`10.0.0.0/8`,
//!     `fd00::/8`), compared with the URL's host when that is an address
//!     (names are not resolved for it, as in curl and Go);
//!   - any of those with `:PORT` (`registry.corp:5000`, `[fd00::1]:443`):
//!     only that port, the URL's port defaulting to 80 or 443 (Go's rule;
//!     curl ignores ports).
//! - Loopback destinations (`localhost`, 127.0.0.0/8, `::1`) never go
//!   through a proxy.
//! - A variable that is not a usable proxy URL is a configuration error as
//!   soon as a non-loopback destination of its scheme is reached.

use std::net::IpAddr;

use reqwest::Url;

use crate::error::{Error, Result};

/// The `NO_PROXY` rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// A CIDR block.
    Net { addr: IpAddr, prefix: u8 },
    /// One address, on any port or one.
    Ip { addr: IpAddr, port: Option<u16> },
    /// A name and the names under it, on any port or one.
    Domain { name: String, port: Option<u16> },
}

/// Splits `host[:port]`, `[v6][:port]` or a bare IPv6 address into the host
/// (without brackets) and the port.
pub fn split_host_port(s: &str) -> (&str, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
        return (s, None);
    }
    match s.split_once(':') {
        Some((host, port)) if !port.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (s, None),
        },
        _ => (s, None),
    }
}

impl NoProxy {
    /// Parses a `NO_PROXY` value. Entries it cannot read are left out.
    pub fn parse(value: &str) -> NoProxy {
        let mut out = NoProxy::default();
        for entry in value.split(|c: char| c == ',' || c.is_whitespace()).filter(|e| !e.is_empty()) {
            let entry = entry.to_ascii_lowercase();
            if entry == "*" {
                out.all = true;
                continue;
            }
            if let Some((addr, prefix)) = entry.split_once('/') {
                let addr = addr.trim_start_matches('[').trim_end_matches(']');
                if let (Ok(addr), Ok(prefix)) = (addr.parse::<IpAddr>(), prefix.parse::<u8>()) {
                    if prefix <= if addr.is_ipv4() { 32 } else { 128 } {
                        out.rules.push(Rule::Net { addr, prefix });
                    }
                }
                continue;
            }
            let (host, port) = split_host_port(&entry);
            if let Ok(addr) = host.parse::<IpAddr>() {
                out.rules.push(Rule::Ip { addr, port });
                continue;
            }
            let name = host.strip_prefix("*.").or_else(|| host.strip_prefix('.')).unwrap_or(host);
            let name = name.trim_end_matches('.');
            if !name.is_empty() && !name.contains(['*', '/', '@']) {
                out.rules.push(Rule::Domain { name: name.to_string(), port });
            }
        }
        out
    }

    /// Whether a request to `host` (a name or an address, brackets allowed)
    /// on `port` goes direct.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        self.rules.iter().any(|r| match (r, ip) {
            (Rule::Net { addr, prefix }, Some(ip)) => in_block(ip, *addr, *prefix),
            (Rule::Ip { addr, port: p }, Some(ip)) => *addr == ip && port_ok(p),
            (Rule::Domain { name, port: p }, None) => {
                (host == *name || host.strip_suffix(name.as_str()).is_some_and(|s| s.ends_with('.'))) && port_ok(p)
            }
            _ => false,
        })
    }
}

/// Whether `ip` lies in the block `net`/`prefix` (of the same family).
fn in_block(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// One proxy variable's value, parsed, or refused with a message naming it.
#[derive(Debug, Clone)]
struct Var {
    proxy: std::result::Result<Url, String>,
}

/// The proxies of the environment.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    https: Option<Var>,
    http: Option<Var>,
    no: NoProxy,
}

impl Proxies {
    /// The proxies the environment names.
    pub fn from_env() -> Proxies {
        Proxies::from_vars(|name| std::env::var(name).ok())
    }

    /// The proxies `get` names (`get` reads one variable).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Proxies {
        let first = |names: [&'static str; 2]| {
            names.into_iter().find_map(|n| get(n).filter(|v| !v.trim().is_empty()).map(|v| (n, v)))
        };
        let var = |names| first(names).map(|(name, value)| Var { proxy: parse_proxy(name, &value) });
        Proxies {
            https: var(["HTTPS_PROXY", "https_proxy"]),
            http: var(["HTTP_PROXY", "http_proxy"]),
            no: first(["NO_PROXY", "no_proxy"]).map(|(_, v)| NoProxy::parse(&v)).unwrap_or_default(),
        }
    }

    /// Whether any proxy is set.
    pub fn any(&self) -> bool {
        self.https.is_some() || self.http.is_some()
    }

    /// The variable a request to `url` would use, when it goes through a proxy.
    fn var_for(&self, url: &Url) -> Option<&Var> {
        let host = url.host_str()?;
        if super::is_loopback(host) || self.no.matches(host, url.port_or_known_default().unwrap_or(0)) {
            return None;
        }
        match url.scheme() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        }
    }

    /// The proxy for a request to `url`; `None` means a direct connection.
    pub fn for_url(&self, url: &Url) -> Option<&Url> {
        self.var_for(url).and_then(|v| v.proxy.as_ref().ok())
    }

    /// Checks that the variable for `url`'s scheme is a usable proxy URL
    /// when `url` is not loopback — whether `NO_PROXY` excludes it or not: a
    /// variable that cannot work is a mistake to fix wherever it bites.
    pub fn check(&self, url: &Url) -> Result<()> {
        if url.host_str().is_none_or(super::is_loopback) {
            return Ok(());
        }
        let var = match url.scheme() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        };
        match var {
            Some(Var { proxy: Err(e) }) => Err(Error::config(e.clone())),
            _ => Ok(()),
        }
    }

    /// These proxies for reqwest (`None` when no proxy is set).
    pub fn into_reqwest(self) -> Option<reqwest::Proxy> {
        if !self.any() {
            return None;
        }
        Some(reqwest::Proxy::custom(move |url| self.for_url(url).cloned()))
    }
}

/// Parses the value of proxy variable `name`; the error is the whole message.
fn parse_proxy(name: &str, value: &str) -> std::result::Result<Url, String> {
    let value = value.trim();
    let with_scheme = if value.contains("://") { value.to_string() } else { format!("http://{value}") };
    let refuse = |why: String| {
        format!("{name}={}: not a usable proxy URL ({why}); fix or unset it", crate::sanitize::escape_controls(value))
    };
    let url = Url::parse(&with_scheme).map_err(|e| refuse(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse(format!("scheme {}: only http:// and https:// proxies are supported", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("no host".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(no_proxy: &str, host: &str, port: u16) -> bool {
        NoProxy::parse(no_proxy).matches(host, port)
    }

    #[test]
    fn no_proxy_names_cover_themselves_and_names_under_them() {
        for rule in ["example.com", ".example.com", "*.example.com", "EXAMPLE.com", " other.test , example.com "] {
            assert!(direct(rule, "example.com", 443), "{rule}");
            assert!(direct(rule, "registry.example.com", 443), "{rule}");
            assert!(direct(rule, "a.b.Example.COM", 80), "{rule}");
            assert!(direct(rule, "example.com.", 443), "{rule}: a trailing dot is the same name");
            assert!(!direct(rule, "ample.com", 443), "{rule}");
            assert!(!direct(rule, "badexample.com", 443), "{rule}: not a mere suffix");
            assert!(!direct(rule, "example.com.evil.test", 443), "{rule}");
        }
        assert!(!direct("ample.com", "example.com", 443));
        assert!(direct("a.test b.test", "x.b.test", 443), "spaces separate entries too");
        assert!(!direct("", "example.com", 443));
        assert!(!direct(",,", "example.com", 443));
    }

    #[test]
    fn no_proxy_star_covers_everything_only_alone() {
        assert!(direct("*", "registry.example.com", 5000));
        assert!(direct("foo.test,*", "10.1.2.3", 80));
        assert!(!direct("*.", "registry.example.com", 443));
        assert!(!direct("reg*.example.com", "registry.example.com", 443));
    }

    #[test]
    fn no_proxy_addresses_and_blocks() {
        assert!(direct("10.1.2.3", "10.1.2.3", 443));
        assert!(!direct("10.1.2.3", "10.1.2.4", 443));
        assert!(direct("10.0.0.0/8", "10.200.3.4", 5000));
        assert!(!direct("10.0.0.0/8", "11.0.0.1", 5000));
        assert!(direct("192.168.1.0/24", "192.168.1.255", 443));
        assert!(!direct("192.168.1.0/24", "192.168.2.1", 443));
        assert!(direct("0.0.0.0/0", "8.8.8.8", 443));
        assert!(direct("fd00::/8", "[fd12::1]", 443));
        assert!(!direct("fd00::/8", "[fe80::1]", 443));
        assert!(direct("::1,fd00::5", "fd00::5", 443), "IPv6 without brackets");
        assert!(!direct("10.0.0.0/33", "10.0.0.1", 443), "an impossible prefix is left out");
        // Names are not resolved to compare them with addresses, and the reverse.
        assert!(!direct("10.0.0.0/8", "internal.example.com", 443));
        assert!(!direct("example.com", "93.184.216.34", 443));
    }

    #[test]
    fn no_proxy_ports() {
        assert!(direct("registry.corp:5000", "registry.corp", 5000));
        assert!(!direct("registry.corp:5000", "registry.corp", 443));
        assert!(direct("registry.corp:5000", "eu.registry.corp", 5000));
        assert!(direct("10.1.2.3:443", "10.1.2.3", 443));
        assert!(!direct("10.1.2.3:443", "10.1.2.3", 80));
        assert!(direct("[fd00::1]:5000", "[fd00::1]", 5000));
        assert!(!direct("[fd00::1]:5000", "[fd00::1]", 5001));
        assert!(direct("registry.corp", "registry.corp", 1234), "no port means every port");
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn env(vars: &[(&str, &str)]) -> Proxies {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Proxies::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn proxies_by_scheme_with_loopback_and_no_proxy_direct() {
        let p = env(&[
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("http_proxy", "plain.corp:8080"),
            ("no_proxy", ".internal.corp,10.0.0.0/8,registry.corp:5000"),
        ]);
        let via = |u: &str| p.for_url(&url(u)).map(|p| p.as_str().to_string());
        assert_eq!(via("https://registry-1.docker.io/v2/").as_deref(), Some("http://proxy.corp:3128/"));
        assert_eq!(via("http://registry.example.com/v2/").as_deref(), Some("http://plain.corp:8080/"));
        assert_eq!(via("https://nexus.internal.corp/m2/x.jar"), None);
        assert_eq!(via("https://10.3.4.5/v2/"), None);
        assert_eq!(via("https://registry.corp:5000/v2/"), None);
        assert_eq!(via("https://registry.corp/v2/").as_deref(), Some("http://proxy.corp:3128/"));
        for loopback in
            ["http://127.0.0.1:5000/v2/", "https://localhost/v2/", "http://[::1]:5000/v2/", "http://127.9.9.9/"]
        {
            assert_eq!(via(loopback), None, "{loopback}");
        }
        assert_eq!(via("http://127.evil.test/v2/").as_deref(), Some("http://plain.corp:8080/"));
    }

    #[test]
    fn proxy_variables_upper_case_first_and_empty_is_unset() {
        let p = env(&[("HTTPS_PROXY", ""), ("https_proxy", "http://lower:1"), ("NO_PROXY", ""), ("no_proxy", "*")]);
        assert_eq!(p.for_url(&url("https://r.example/")).map(Url::as_str), None, "no_proxy=* applies");
        let p = env(&[("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "http://lower:1")]);
        assert_eq!(p.for_url(&url("https://r.example/")).map(Url::as_str), Some("http://upper:1/"));
        assert!(!env(&[]).any());
        assert!(env(&[]).for_url(&url("https://r.example/")).is_none());
    }

    #[test]
    fn unusable_proxies_are_configuration_errors_naming_the_variable() {
        let p = env(&[("HTTPS_PROXY", "socks5://proxy:1080"), ("HTTP_PROXY", "http://u:pw@bad host:99")]);
        let e = p.check(&url("https://r.example/")).unwrap_err();
        assert_eq!(e.kind(), crate::error::Kind::Config);
        assert!(e.message().starts_with("HTTPS_PROXY=socks5://proxy:1080: not a usable proxy URL"), "{e}");
        let e = p.check(&url("http://r.example/")).unwrap_err();
        assert!(e.message().starts_with("HTTP_PROXY="), "{e}");
        assert!(!e.message().contains("pw"), "{e}");
        // A loopback destination never needs the variable; one NO_PROXY names still refuses it.
        assert!(p.check(&url("http://127.0.0.1:5000/")).is_ok());
        let excluded = env(&[("HTTPS_PROXY", "socks5://proxy:1080"), ("NO_PROXY", "*")]);
        assert!(excluded.check(&url("https://r.example/")).is_err());
        assert!(env(&[("HTTPS_PROXY", "http://ok:1")]).check(&url("https://r.example/")).is_ok());
    }

    #[test]
    fn host_and_port_split() {
        assert_eq!(split_host_port("registry.corp:5000"), ("registry.corp", Some(5000)));
        assert_eq!(split_host_port("registry.corp"), ("registry.corp", None));
        assert_eq!(split_host_port("[::1]:5000"), ("::1", Some(5000)));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
        assert_eq!(split_host_port("fd00::1"), ("fd00::1", None));
        assert_eq!(split_host_port("a:b"), ("a:b", None));
    }
}
