//! `check`: every input check, for pre-merge CI; builds and writes nothing.

use clap::Args;

use super::build::{options, Common};
use super::{print_json, print_line, Global};
use wso2img::fmt::count;
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
    super::build::tell_unbaked_keystores(g, &a.common);
    if a.common.json() {
        print_json(&rep)
    } else {
        print_line(&text(&rep))
    }
}

fn text(r: &CheckReport) -> String {
    let mut s = format!(
        "ok: {} ({}, {}) checked against {}",
        count(r.files, "file"),
        count(r.jars, "jar"),
        count(r.config_files, "configuration file"),
        r.base
    );
    if !r.warnings.is_empty() {
        let n = r.warnings.len();
        s += &format!("\n{} (on stderr)", count(n, "warning"));
    }
    s
}
