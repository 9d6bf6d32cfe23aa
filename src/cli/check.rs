//! `check`: every input check, for pre-merge CI; builds and writes nothing.

use clap::Args;

use super::build::{options, Common};
use super::{print_json, print_line, Global};
use wso2img::pipeline::{self, CheckReport};
use wso2img::Result;

/// `check` flags.
#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    common: Common,
}

/// Runs `check`.
pub fn run(g: &Global, a: CheckArgs) -> Result<()> {
    let opts = options(g, &a.common, &[])?;
    let rep = pipeline::check(&opts)?;
    if a.common.json() {
        print_json(&rep)
    } else {
        print_line(&text(&rep))
    }
}

fn text(r: &CheckReport) -> String {
    let mut s = format!(
        "ok: {} file{} ({} jar{}, {} configuration file{}) checked against {}",
        r.files,
        if r.files == 1 { "" } else { "s" },
        r.jars,
        if r.jars == 1 { "" } else { "s" },
        r.config_files,
        if r.config_files == 1 { "" } else { "s" },
        r.base
    );
    for i in &r.ignored {
        s += &format!("\nignored {:>6} file{}  {}", i.files, if i.files == 1 { " " } else { "s" }, i.rule);
    }
    if !r.warnings.is_empty() {
        let n = r.warnings.len();
        s += &format!("\n{n} warning{} (on stderr)", if n == 1 { "" } else { "s" });
    }
    s
}
