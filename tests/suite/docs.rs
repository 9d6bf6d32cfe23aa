//! The documentation cannot drift: the CLI reference is generated from the
//! command definitions and must match what is committed, every shell block
//! marked `<!-- test: offline -->` runs, the book builds with
//! `mkdocs build --strict` (broken internal links fail), and the README stays
//! short with its install and set-up commands as CI runs them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::support::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every markdown file of the book, and the README.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let mut out = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut out);
    out.sort();
    out
}

/// The shell blocks marked to run offline: (file, block).
fn offline_blocks() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for p in pages() {
        let text = fs::read_to_string(&p).unwrap();
        let mut lines = text.lines();
        while let Some(l) = lines.next() {
            if l.trim() != "<!-- test: offline -->" {
                continue;
            }
            assert_eq!(
                lines.next().map(str::trim),
                Some("```sh"),
                "{}: the marker goes right above a ```sh block",
                p.display()
            );
            let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            out.push((p.clone(), block.join("\n")));
        }
    }
    out
}

#[test]
fn the_cli_reference_is_generated_and_current() {
    for (format, file) in [("cli", "docs/reference/cli.md"), ("man", "docs/reference/wso2img.1")] {
        let out = ok(bin().args(["reference", format]));
        let committed = fs::read_to_string(root().join(file)).unwrap_or_default();
        assert!(
            committed == String::from_utf8_lossy(&out.stdout),
            "{file} is stale: run `cargo run -- reference {format} > {file}`"
        );
    }
    let md = fs::read_to_string(root().join("docs/reference/cli.md")).unwrap();
    for sub in ["## wso2img build", "## wso2img login", "`--progress MODE`", "Also: `wso2img completion`"] {
        assert!(md.contains(sub), "{sub} in the reference");
    }
}

#[test]
fn offline_doc_blocks_run_as_written() {
    let blocks = offline_blocks();
    assert!(blocks.len() >= 2, "marked blocks: {blocks:?}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_wso2img")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    for (file, block) in blocks {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("sh")
            .args(["-euc", &block])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("XDG_CACHE_HOME", dir.path().join(".cache"))
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: block failed:\n{block}\nstdout: {}\nstderr: {}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_book_builds_with_mkdocs_strict() {
    let Ok(python) = std::env::var("WSO2IMG_TEST_PYTHON") else {
        assert!(!in_ci(), "WSO2IMG_TEST_PYTHON (the test venv with mkdocs) is required in CI");
        skipped("WSO2IMG_TEST_PYTHON");
        return;
    };
    let site = tempfile::tempdir().unwrap();
    let out = Command::new(python)
        .args(["-m", "mkdocs", "build", "--strict", "--site-dir"])
        .arg(site.path())
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "mkdocs build --strict:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(site.path().join("index.html").is_file());
}

#[test]
fn the_docs_carry_no_issue_numbers_or_dated_logs() {
    for p in pages() {
        let text = fs::read_to_string(&p).unwrap();
        for (i, l) in text.lines().enumerate() {
            assert!(!mentions_issue(l), "{}:{}: an issue number: {l}", p.display(), i + 1);
            let dated = l.as_bytes().windows(16).any(|w| {
                w.iter().enumerate().all(|(j, b)| match j {
                    4 | 7 => *b == b'-',
                    10 => *b == b' ',
                    13 => *b == b':',
                    _ => b.is_ascii_digit(),
                })
            });
            assert!(!dated, "{}:{}: a dated log line: {l}", p.display(), i + 1);
        }
    }
}

/// Whether `l` says `issue N` or `Issue #N` (any case).
fn mentions_issue(l: &str) -> bool {
    let lower = l.to_lowercase();
    lower.match_indices("issue").any(|(i, _)| {
        let after = &lower[i + 5..];
        after.starts_with([' ', '#']) && after.trim_start_matches([' ', '#']).starts_with(|c: char| c.is_ascii_digit())
    })
}

#[test]
fn the_readme_is_short_and_its_commands_are_the_ones_ci_runs() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.lines().count() <= 150, "README.md has {} lines", readme.lines().count());
    let install = readme.find("cargo install --locked --path .").expect("install command");
    let quickstart = readme.find("## Quickstart").expect("quickstart");
    assert!(install < quickstart, "install comes first");
    assert!(readme.contains("--git"), "the --git install form");
    let ci = fs::read_to_string(root().join(".ci/run")).unwrap();
    let test_command = ci.lines().last().unwrap().trim_start_matches("exec ").trim();
    assert!(
        readme.lines().any(|l| l == test_command),
        "the README's test command is the one .ci/run runs: {test_command}"
    );
    assert!(readme.lines().any(|l| l == "cargo run --release -- build --base builtin:wso2am-4.3.0"), "the main job");
}
