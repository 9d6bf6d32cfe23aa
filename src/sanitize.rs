//! Text that came from outside (file names, base labels, registry answers,
//! environment variables) made safe to print or to write into an image:
//! control characters escaped for terminals, userinfo scrubbed from URLs, and
//! values with control characters refused. Imports nothing from the crate.

use std::borrow::Cow;

/// `s` with every control character written as an escape (`\n`, `\u{1b}`), so
/// a message stays one line and cannot drive a terminal.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` with the userinfo of every `scheme://user:password@host` replaced by
/// `<redacted>`: proxy URLs and registry URLs never show a password.
pub fn scrub_userinfo(s: &str) -> Cow<'_, str> {
    if !s.contains("://") || !s.contains('@') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>')
            })
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("<redacted>");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Refuses a value that holds a control character (NUL, newline, escape…),
/// naming the first one; such a value breaks `docker run` or a terminal.
pub fn check_value(s: &str) -> Result<(), String> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("contains the control character {}", c.escape_default())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_scrubs_and_checks() {
        assert_eq!(escape_controls("a\u{1b}[31mb\nc"), "a\\u{1b}[31mb\\nc");
        assert!(matches!(escape_controls("plain é"), Cow::Borrowed(_)));
        assert_eq!(
            scrub_userinfo("HTTPS_PROXY=http://user:secret@bad host:99: invalid"),
            "HTTPS_PROXY=http://<redacted>@bad host:99: invalid"
        );
        assert_eq!(scrub_userinfo("https://u:p@h/x@y and http://h2/z"), "https://<redacted>@h/x@y and http://h2/z");
        assert_eq!(scrub_userinfo("repo@sha256:ab https://h/v2/"), "repo@sha256:ab https://h/v2/");
        assert!(check_value("ok value").is_ok());
        assert!(check_value("a\0b").unwrap_err().contains("\\u{0}"));
    }
}
