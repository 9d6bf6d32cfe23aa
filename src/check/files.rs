//! Well-formedness of configuration files, with `file:line:col` positions:
//! TOML parsed strictly (a duplicate key or table is an error, as it is for
//! WSO2 at boot), the `$env{…}`, `$sys{…}`, `$ref{…}` and `$secret{…}`
//! placeholders of `deployment.toml`, JSON, and XML (tags closed in order,
//! attributes well formed).

use quick_xml::events::Event;
use quick_xml::Reader;

/// A problem in a file: 1-based line and column (in characters) and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
    /// What is wrong.
    pub what: String,
}

/// Line and column of byte `at` in `text`.
pub fn position(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

fn problem(text: &str, at: usize, what: impl Into<String>) -> Problem {
    let (line, col) = position(text, at);
    Problem { line, col, what: what.into() }
}

/// Parses TOML strictly; returns the document or the first problem.
pub fn toml(text: &str) -> Result<toml::Table, Problem> {
    text.parse::<toml::Table>().map_err(|e| {
        let at = e.span().map(|s| s.start).unwrap_or(0);
        problem(text, at, e.message().trim().replace('\n', " "))
    })
}

/// The placeholders WSO2's configuration mapper reads in `deployment.toml`.
const PLACEHOLDERS: [&str; 4] = ["env", "sys", "ref", "secret"];

/// Checks the placeholders in every string value of a `deployment.toml`
/// that already parsed as TOML.
pub fn placeholders(text: &str) -> Result<(), Problem> {
    let doc = toml::de::DeTable::parse(text)
        .map_err(|e| problem(text, e.span().map(|s| s.start).unwrap_or(0), e.message()))?;
    let mut strings = Vec::new();
    collect_strings(doc.get_ref(), &mut strings);
    strings.sort_unstable_by_key(|s| s.start);
    for span in strings {
        let raw = &text[span.clone()];
        check_placeholders(raw).map_err(|(off, what)| problem(text, span.start + off, what))?;
    }
    Ok(())
}

fn collect_strings(t: &toml::de::DeTable<'_>, out: &mut Vec<std::ops::Range<usize>>) {
    for v in t.values() {
        collect_value(v, out);
    }
}

fn collect_value(v: &toml::Spanned<toml::de::DeValue<'_>>, out: &mut Vec<std::ops::Range<usize>>) {
    match v.get_ref() {
        toml::de::DeValue::String(_) => out.push(v.span()),
        toml::de::DeValue::Array(a) => a.iter().for_each(|x| collect_value(x, out)),
        toml::de::DeValue::Table(t) => collect_strings(t, out),
        _ => {}
    }
}

/// Checks the placeholders in one string as written (quotes included);
/// the error is a byte offset into `raw` and what is wrong.
fn check_placeholders(raw: &str) -> Result<(), (usize, String)> {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let word_end = (i + 1..b.len()).find(|&j| !b[j].is_ascii_alphabetic()).unwrap_or(b.len());
        let word = &raw[i + 1..word_end];
        let brace = b.get(word_end) == Some(&b'{');
        if word.is_empty() || (!brace && !PLACEHOLDERS.contains(&word)) {
            i += 1;
            continue;
        }
        if !PLACEHOLDERS.contains(&word) {
            return Err((
                i,
                format!("unknown placeholder `${word}{{`; WSO2 reads $env{{NAME}}, $sys{{name}}, $ref{{key}} and $secret{{alias}}"),
            ));
        }
        if !brace {
            return Err((i, format!("`${word}` must be followed by {{…}}, e.g. ${word}{{NAME}}")));
        }
        let open = word_end + 1;
        let Some(close) = raw[open..].find('}').map(|c| open + c) else {
            return Err((i, format!("`${word}{{` is not closed; add the `}}`")));
        };
        let name = &raw[open..close];
        let ok_char = |c: char| match word {
            "env" => c.is_ascii_alphanumeric() || c == '_',
            "ref" => c.is_ascii_alphanumeric() || "_.-[]".contains(c),
            _ => c.is_ascii_alphanumeric() || "_.-".contains(c),
        };
        if name.is_empty() {
            return Err((i, format!("`${word}{{}}` names nothing; put the name between the braces")));
        }
        if !name.chars().all(ok_char) || (word == "env" && name.starts_with(|c: char| c.is_ascii_digit())) {
            let allowed = match word {
                "env" => "letters, digits and _ (not starting with a digit)",
                "ref" => "letters, digits, _ . - [ ]",
                _ => "letters, digits, _ . -",
            };
            return Err((i, format!("`${word}{{{name}}}`: the name may hold {allowed}")));
        }
        i = close + 1;
    }
    Ok(())
}

/// Parses JSON; returns the first problem.
pub fn json(bytes: &[u8]) -> Result<(), Problem> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map(|_| ()).map_err(|e| {
        let what = e.to_string();
        let what = what.split(" at line ").next().unwrap_or(&what).to_string();
        Problem { line: e.line().max(1), col: e.column().max(1), what }
    })
}

/// Reads XML to the end: tags closed in order, attributes well formed,
/// one root element.
pub fn xml(text: &str) -> Result<(), Problem> {
    let mut r = Reader::from_str(text);
    r.config_mut().check_end_names = true;
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut roots = 0usize;
    loop {
        let before = r.buffer_position() as usize;
        let ev = r.read_event().map_err(|e| problem(text, r.error_position() as usize, e.to_string()))?;
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                if open.is_empty() {
                    roots += 1;
                    if roots > 1 {
                        return Err(problem(text, before, "a second root element; an XML file has exactly one"));
                    }
                }
                for a in s.attributes().with_checks(true) {
                    a.map_err(|e| problem(text, before, e.to_string()))?;
                }
                if matches!(ev, Event::Start(_)) {
                    open.push((String::from_utf8_lossy(s.name().as_ref()).to_string(), before));
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) if open.is_empty() && !t.iter().all(|c| c.is_ascii_whitespace()) => {
                return Err(problem(text, before, "text outside the root element"));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some((name, at)) = open.pop() {
        return Err(problem(text, at, format!("<{name}> is never closed")));
    }
    if roots == 0 {
        return Err(problem(text, text.len(), "no root element"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_duplicates_and_syntax_are_found_with_positions() {
        let e = toml("[server]\nhostname = \"a\"\n\n[server]\nnode_ip = \"b\"\n").unwrap_err();
        assert_eq!(e.line, 4, "{e:?}");
        let e = toml("[server]\nhostname = \"a\"\nhostname = \"b\"\n").unwrap_err();
        assert_eq!((e.line, e.col), (3, 1), "{e:?}");
        assert!(e.what.contains("duplicate"), "{e:?}");
        let e = toml("[server]\nhostname = \"a\n").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        assert!(toml("[a]\nb = 1\n[a.c]\nd = 2\n").is_ok());
    }

    #[test]
    fn placeholders_are_checked() {
        assert!(placeholders("a = \"$env{DB_PASS}\"\nb = [\"$sys{carbon.home}/x\", \"$ref{server.hostname}\"]\nc = \"${carbon.home}/y\"\nd = \"$secret{admin_password}\"\ne = \"pa$$word\"\n").is_ok());
        let e = placeholders("[x]\nurl = \"jdbc:$env{DB_HOST:3306\"\n").unwrap_err();
        assert_eq!((e.line, e.col, e.what.contains("not closed")), (2, 13, true), "{e:?}");
        let e = placeholders("a = \"$ENV{X}\"\n").unwrap_err();
        assert!(e.what.contains("unknown placeholder `$ENV{`"), "{e:?}");
        let e = placeholders("a = \"$env{MY VAR}\"\n").unwrap_err();
        assert!(e.what.contains("letters, digits and _"), "{e:?}");
        let e = placeholders("a = \"$env{}\"\n").unwrap_err();
        assert!(e.what.contains("names nothing"), "{e:?}");
        let e = placeholders("a = \"$env DB\"\n").unwrap_err();
        assert!(e.what.contains("must be followed"), "{e:?}");
        assert!(placeholders("# $env{ in a comment\na = 1\n").is_ok());
    }

    #[test]
    fn json_and_xml() {
        assert!(json(b"{\"custom\": {}}\n").is_ok());
        let e = json(b"{\n  \"custom\": {,}\n}\n").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        assert!(!e.what.contains("at line"));
        assert!(xml("<?xml version=\"1.0\"?>\n<a x=\"1\"><b/><!-- c --></a>\n").is_ok());
        let e = xml("<a>\n  <b></c>\n</a>\n").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        let e = xml("<a>\n  <b>\n</a>\n").unwrap_err();
        assert_eq!(e.line, 3, "{e:?}");
        let e = xml("<a>\n  <b>\n").unwrap_err();
        assert!(e.what.contains("never closed") || e.line == 2, "{e:?}");
        assert!(xml("<a x=\"1\" x=\"2\"/>").is_err());
        assert!(xml("<a/><b/>").unwrap_err().what.contains("second root"));
    }
}
