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

/// One base in the JSON of `update` and `outdated`, under `flag` (`changed`, `outdated`).
fn base_json(c: &Comparison, flag: &str) -> serde_json::Value {
    json!({ "base": c.base, "locked": c.locked, "current": c.current, flag: c.moved })
}

/// Runs `update`: resolves every base again and records those that moved in the lock.
pub fn update(g: &Global, a: LockArgs) -> Result<()> {
    let all = pipeline::update(&options(g, &a)?)?;
    let c = &all[0];
    let moved = all.iter().any(|c| c.moved);
    let shown = c.lockfile.display().to_string();
    if moved {
        wso2img::progress::message(&format!("{shown}: updated"));
    } else {
        wso2img::progress::message(&format!("{shown}: already current"));
    }
    if a.json {
        // The main base's fields as before; `changed` is whether the lock changed.
        return print_json(&json!({
            "base": c.base,
            "locked": c.locked,
            "current": c.current,
            "changed": moved,
            "lockfile": shown,
            "bases": all.iter().map(|c| base_json(c, "changed")).collect::<Vec<_>>(),
        }));
    }
    for c in &all {
        match (c.moved, c.locked) {
            (false, _) => print_line(&format!("{}: unchanged ({})", c.base, c.current))?,
            (true, None) => print_line(&format!("{}: locked at {}", c.base, c.current))?,
            (true, Some(old)) => print_line(&format!("{}: {old} -> {}", c.base, c.current))?,
        }
    }
    Ok(())
}

/// Runs `outdated`; returns whether any base moved away from the lock (or
/// is not locked), which makes the exit code 1.
pub fn outdated(g: &Global, a: LockArgs) -> Result<bool> {
    let all = pipeline::outdated(&options(g, &a)?)?;
    let moved = all.iter().any(|c| c.moved);
    if a.json {
        let c = &all[0];
        // The main base's fields as before; `outdated` is whether any base is.
        print_json(&json!({
            "base": c.base,
            "locked": c.locked,
            "current": c.current,
            "outdated": moved,
            "bases": all.iter().map(|c| base_json(c, "outdated")).collect::<Vec<_>>(),
        }))?;
    } else {
        for c in &all {
            if c.moved {
                print_line(&format!("{}: outdated: locked at {}, now {}", c.base, digest_or_none(c), c.current))?;
            } else {
                print_line(&format!("{}: up to date ({})", c.base, c.current))?;
            }
        }
    }
    for c in all.iter().filter(|c| c.moved) {
        wso2img::progress::message(&format!(
            "run `wso2img update` to lock {} at {} in {}",
            c.base,
            c.current,
            c.lockfile.display()
        ));
    }
    Ok(moved)
}
