//! `update` and `outdated`: the lockfile, `wso2img.lock`.

use clap::Args;
use serde_json::json;

use super::{print_json, print_line, Global};
use wso2img::lock::Comparison;
use wso2img::pipeline::{self, Options};
use wso2img::reference::Location;
use wso2img::Result;

/// Flags of `update` and `outdated`.
#[derive(Args)]
pub struct LockArgs {
    /// Base image instead of [base] image (as for build).
    #[arg(long, value_name = "REF")]
    base: Option<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn options(g: &Global, a: &LockArgs) -> Result<Options> {
    let base: Option<Location> = a.base.as_deref().map(str::parse).transpose()?;
    Ok(Options { config: g.config.clone(), base, registry: g.registry(), ..Options::default() })
}

fn digest_or_none(c: &Comparison) -> String {
    c.locked.map(|d| d.to_string()).unwrap_or_else(|| "nothing".into())
}

/// Runs `update`: resolves the base again and records it in the lock.
pub fn update(g: &Global, a: LockArgs) -> Result<()> {
    let c = pipeline::update(&options(g, &a)?)?;
    let shown = c.lockfile.display().to_string();
    if c.moved {
        wso2img::progress::message(&format!("{shown}: updated"));
    } else {
        wso2img::progress::message(&format!("{shown}: already current"));
    }
    if a.json {
        return print_json(&json!({
            "base": c.base,
            "locked": c.locked,
            "current": c.current,
            "changed": c.moved,
            "lockfile": shown,
        }));
    }
    match (c.moved, c.locked) {
        (false, _) => print_line(&format!("{}: unchanged ({})", c.base, c.current)),
        (true, None) => print_line(&format!("{}: locked at {}", c.base, c.current)),
        (true, Some(old)) => print_line(&format!("{}: {old} -> {}", c.base, c.current)),
    }
}

/// Runs `outdated`; returns whether the base moved away from the lock (or
/// is not locked), which makes the exit code 1.
pub fn outdated(g: &Global, a: LockArgs) -> Result<bool> {
    let c = pipeline::outdated(&options(g, &a)?)?;
    if a.json {
        print_json(&json!({
            "base": c.base,
            "locked": c.locked,
            "current": c.current,
            "outdated": c.moved,
        }))?;
    } else if c.moved {
        print_line(&format!("{}: outdated: locked at {}, now {}", c.base, digest_or_none(&c), c.current))?;
    } else {
        print_line(&format!("{}: up to date ({})", c.base, c.current))?;
    }
    if c.moved {
        wso2img::progress::message(&format!("run `wso2img update` to lock {} in {}", c.current, c.lockfile.display()));
    }
    Ok(c.moved)
}
