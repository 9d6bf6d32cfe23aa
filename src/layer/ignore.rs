//! Ignore rules for the customer folders: what a team keeps next to its files
//! (VCS folders, OS litter, editor backups, placeholder files) never ships.
//!
//! Rules use gitignore syntax (matched by ripgrep's `ignore` crate) and come,
//! from lowest to highest precedence, from: the built-in defaults
//! ([`DEFAULTS`]), the `.wso2imgignore` in the config's folder, `[layers]
//! exclude`, and every `.wso2imgignore` inside a customer folder (a deeper
//! file wins, as in git). The last rule that matches decides, so `!.gitkeep`
//! in a folder's file ships its `.gitkeep` again. The ignore files themselves
//! never ship. An ignored folder is skipped whole.

use std::fs;
use std::path::{Path, PathBuf};

use ::ignore::gitignore::{Gitignore, GitignoreBuilder};
use ::ignore::Match;

use crate::error::{io_reason, Error, Result};

/// The name of an ignore file.
pub const FILE_NAME: &str = ".wso2imgignore";

/// Whether `rule` is the built-in rule for the empty files that keep a
/// folder in git (`.gitkeep`, `.keep`, which `init` writes): what it leaves
/// out is left out silently.
pub fn is_placeholder(rule: &str) -> bool {
    matches!(rule, "built-in: .gitkeep" | "built-in: .keep")
}

/// Patterns every build ignores unless a rule re-includes them.
pub const DEFAULTS: [&str; 9] = [".git", ".svn", ".hg", ".DS_Store", "Thumbs.db", "*~", ".*.swp", ".gitkeep", ".keep"];

/// The ignore rules of one project: built-in defaults, the config folder's
/// `.wso2imgignore` and `[layers] exclude`. Ignore files inside the customer
/// folders are read while walking them.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Matchers from lowest to highest precedence, each with how its rules are named.
    levels: Vec<(Gitignore, Origin)>,
}

/// Where a rule was written.
#[derive(Debug, Clone)]
enum Origin {
    /// Built into wso2img.
    Builtin,
    /// An ignore file, as shown to the user.
    File(String),
    /// `[layers] exclude` of the config file.
    Exclude,
}

/// Something a rule left out of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// The path as the user names it (`jars/.DS_Store`).
    pub path: String,
    /// The rule, e.g. `built-in: .DS_Store` or `jars/.wso2imgignore: *.bak`.
    pub rule: String,
    /// Files it held: 1 for a file, every file below an ignored folder.
    pub files: usize,
}

/// A nested ignore file's matcher, rooted at its folder.
#[derive(Debug)]
pub struct Nested {
    matcher: Gitignore,
    shown: String,
}

impl Rules {
    /// No rules at all: every file is taken (the ignore files too).
    pub fn none() -> Rules {
        Rules { levels: Vec::new() }
    }

    /// The rules of the project whose config is in `config_dir` (shown as
    /// `config_shown`), with `[layers] exclude` patterns `exclude`.
    pub fn load(config_dir: &Path, config_shown: &str, exclude: &[String]) -> Result<Rules> {
        let mut levels = Vec::new();
        let mut b = GitignoreBuilder::new(config_dir);
        for d in DEFAULTS {
            b.add_line(None, d).map_err(|e| Error::config(format!("built-in ignore rule {d}: {e}")))?;
        }
        levels.push((b.build().map_err(|e| Error::config(format!("built-in ignore rules: {e}")))?, Origin::Builtin));
        let file = config_dir.join(FILE_NAME);
        let shown = shown_in(config_dir, FILE_NAME);
        if let Some(m) = read_file(config_dir, &file, &shown)? {
            levels.push((m, Origin::File(shown)));
        }
        if !exclude.is_empty() {
            let mut b = GitignoreBuilder::new(config_dir);
            for pat in exclude {
                b.add_line(None, pat).map_err(|e| {
                    Error::config(format!("{config_shown}: [layers] exclude `{pat}`: {}; fix the pattern", reason(&e)))
                })?;
            }
            let m =
                b.build().map_err(|e| Error::config(format!("{config_shown}: [layers] exclude: {}", reason(&e))))?;
            levels.push((m, Origin::Exclude));
        }
        Ok(Rules { levels })
    }

    /// Whether any rule exists (else walking takes every file as it is).
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Whether a path whose last component is `name`, with no ignore file
    /// of a customer folder around it, surely ships: only the built-in rules
    /// exist and `name` cannot match one of them (each starts with `.`, ends
    /// with `~` or is `Thumbs.db`). A quick answer for the common case; when
    /// it says no, ask [`Rules::excludes`].
    pub fn surely_ships(&self, name: &str) -> bool {
        let builtin_only = matches!(self.levels.as_slice(), [(_, Origin::Builtin)]);
        builtin_only && !name.starts_with('.') && !name.ends_with('~') && name != "Thumbs.db"
    }

    /// Reads the ignore file of `dir` (inside a customer folder; `shown` is
    /// how the folder is named), when there is one.
    pub fn nested(&self, dir: &Path, shown: &str) -> Result<Option<Nested>> {
        if self.is_empty() {
            return Ok(None);
        }
        let file = dir.join(FILE_NAME);
        let shown = format!("{}/{FILE_NAME}", shown.trim_end_matches('/'));
        Ok(read_file(dir, &file, &shown)?.map(|matcher| Nested { matcher, shown }))
    }

    /// The rule that leaves out `in_project` (the path relative to the config's
    /// folder) or, for nested files, the path relative to each nested file's
    /// folder; `None` when it ships. `nested` holds the ignore files of the
    /// enclosing folders, outermost first, with the entry's path relative to each.
    pub fn excludes(&self, in_project: &str, nested: &[(&Nested, &str)], is_dir: bool) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let name = in_project.rsplit('/').next().unwrap_or(in_project);
        if name == FILE_NAME && !is_dir {
            return Some(format!("built-in: {FILE_NAME}"));
        }
        for (n, rel) in nested.iter().rev() {
            match n.matcher.matched(Path::new(rel), is_dir) {
                Match::Ignore(g) => return Some(format!("{}: {}", n.shown, g.original())),
                Match::Whitelist(_) => return None,
                Match::None => {}
            }
        }
        for (m, origin) in self.levels.iter().rev() {
            match m.matched(Path::new(in_project), is_dir) {
                Match::Ignore(g) => {
                    return Some(match origin {
                        Origin::Builtin => format!("built-in: {}", g.original()),
                        Origin::File(f) => format!("{f}: {}", g.original()),
                        Origin::Exclude => format!("[layers] exclude: {}", g.original()),
                    })
                }
                Match::Whitelist(_) => return None,
                Match::None => {}
            }
        }
        None
    }
}

/// Counts the files below `dir` (best effort: unreadable folders count as 0).
pub fn count_files(dir: &Path) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            _ => 1,
        })
        .sum()
}

/// Totals per rule, sorted by rule: `(rule, files)`.
pub fn totals(excluded: &[Excluded]) -> Vec<(String, usize)> {
    let mut by: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for e in excluded {
        *by.entry(&e.rule).or_default() += e.files;
    }
    by.into_iter().map(|(r, n)| (r.to_string(), n)).collect()
}

fn shown_in(dir: &Path, name: &str) -> String {
    if dir == Path::new(".") || dir.as_os_str().is_empty() {
        name.to_string()
    } else {
        dir.join(name).display().to_string()
    }
}

fn reason(e: &::ignore::Error) -> String {
    e.to_string().replace('\n', " ")
}

/// Parses one ignore file rooted at `root`, line by line so a bad line is
/// named; `None` when the file does not exist.
fn read_file(root: &Path, file: &Path, shown: &str) -> Result<Option<Gitignore>> {
    let text = match crate::bounded::read_file(file, crate::bounded::CONFIG_FILE) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if crate::bounded::refusal(&e).is_some() => {
            return Err(Error::config(format!(
                "{shown}: {}; an ignore file holds patterns, one a line",
                crate::bounded::read_error(&e)
            )))
        }
        Err(e) => return Err(Error::config(format!("{shown}: cannot read ({}); fix its permissions", io_reason(&e)))),
    };
    let text =
        String::from_utf8(text).map_err(|_| Error::config(format!("{shown}: is not UTF-8 text; save it as UTF-8")))?;
    let mut b = GitignoreBuilder::new(root);
    for (i, line) in text.lines().enumerate() {
        b.add_line(Some(PathBuf::from(file)), line).map_err(|e| {
            Error::config(format!("{shown}:{}: `{line}`: {}; fix or remove the line", i + 1, reason(&e)))
        })?;
    }
    let m = b.build().map_err(|e| Error::config(format!("{shown}: {}", reason(&e))))?;
    Ok(Some(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(dir: &Path, ignore_file: Option<&str>, exclude: &[&str]) -> Rules {
        if let Some(t) = ignore_file {
            fs::write(dir.join(FILE_NAME), t).unwrap();
        }
        let ex: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
        Rules::load(dir, "wso2img.toml", &ex).unwrap()
    }

    #[test]
    fn defaults_file_and_exclude_in_order() {
        let d = tempfile::tempdir().unwrap();
        let r = rules(d.path(), Some("*.bak\n# comment\n!keep.bak\n"), &["themes/**/*.psd"]);
        assert_eq!(r.excludes("jars/.DS_Store", &[], false).unwrap(), "built-in: .DS_Store");
        assert_eq!(r.excludes("themes/devportal/.git", &[], true).unwrap(), "built-in: .git");
        assert_eq!(r.excludes("overlays/deployment.toml~", &[], false).unwrap(), "built-in: *~");
        assert_eq!(r.excludes("overlays/.deployment.toml.swp", &[], false).unwrap(), "built-in: .*.swp");
        assert_eq!(r.excludes("jars/.gitkeep", &[], false).unwrap(), "built-in: .gitkeep");
        assert!(r.excludes("jars/a.bak", &[], false).unwrap().ends_with("/.wso2imgignore: *.bak"));
        assert_eq!(r.excludes("jars/keep.bak", &[], false), None);
        assert_eq!(r.excludes("themes/a/b/logo.psd", &[], false).unwrap(), "[layers] exclude: themes/**/*.psd");
        assert_eq!(r.excludes("jars/.wso2imgignore", &[], false).unwrap(), "built-in: .wso2imgignore");
        assert_eq!(r.excludes("jars/driver.jar", &[], false), None);
        assert_eq!(r.excludes("jars/.gitignore", &[], false), None);
        assert!(Rules::none().excludes("jars/.DS_Store", &[], false).is_none());
        assert!(!r.surely_ships("driver.jar"), "a project file's rules apply");
    }

    #[test]
    fn what_surely_ships_no_builtin_rule_leaves_out() {
        let d = tempfile::tempdir().unwrap();
        let r = Rules::load(d.path(), "wso2img.toml", &[]).unwrap();
        let names = [
            "driver.jar",
            ".git",
            ".svn",
            ".hg",
            ".DS_Store",
            "Thumbs.db",
            "thumbs.db",
            "a~",
            "~a",
            ".a.swp",
            "..swp",
            ".swp",
            "a.swp",
            ".gitkeep",
            ".keep",
            "keep",
            "x.gitkeep",
            "Thumbs.db~",
            "git",
        ];
        for name in names {
            for is_dir in [false, true] {
                let ships = r.excludes(&format!("themes/devportal/{name}"), &[], is_dir).is_none();
                assert!(!r.surely_ships(name) || ships, "{name}: said to ship surely, but a rule leaves it out");
            }
            assert_eq!(r.surely_ships(name), !name.starts_with('.') && !name.ends_with('~') && name != "Thumbs.db");
        }
        assert!(!Rules::load(d.path(), "wso2img.toml", &["*.jar".into()]).unwrap().surely_ships("a.jar"));
    }

    #[test]
    fn nested_files_win_and_bad_patterns_are_named() {
        let d = tempfile::tempdir().unwrap();
        let r = rules(d.path(), None, &[]);
        let jars = d.path().join("jars");
        fs::create_dir(&jars).unwrap();
        fs::write(jars.join(FILE_NAME), "!.gitkeep\n/old/\n").unwrap();
        let n = r.nested(&jars, "jars").unwrap().unwrap();
        assert_eq!(r.excludes("jars/.gitkeep", &[(&n, ".gitkeep")], false), None);
        assert_eq!(r.excludes("jars/old", &[(&n, "old")], true).unwrap(), "jars/.wso2imgignore: /old/");
        assert_eq!(r.excludes("jars/old", &[(&n, "old")], false), None, "a file named old is kept");
        fs::write(jars.join(FILE_NAME), "ok\n{a,b\n").unwrap();
        let e = r.nested(&jars, "jars").unwrap_err();
        assert!(e.message().starts_with("jars/.wso2imgignore:2: `{a,b`"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let e = Rules::load(d.path(), "wso2img.toml", &["a{".into()]).unwrap_err();
        assert!(e.message().contains("[layers] exclude `a{`"), "{e}");
    }
}
