//! `init`: scaffolds `wso2img.toml` and its folders for a base.

use clap::Args;

use super::{print_line, Global};
use wso2img::Result;

/// `init` flags.
#[derive(Args)]
pub struct InitArgs {
    /// The base to start from: docker://HOST/REPO:TAG (or a bare NAME:TAG), docker-daemon:NAME[:TAG],
    /// oci:DIR[:TAG], docker-archive:FILE or builtin:NAME.
    #[arg(long, value_name = "REF")]
    base: String,
}

/// Runs `init`: prints every file and folder it created, one per line.
pub fn run(g: &Global, a: InitArgs) -> Result<()> {
    let s = wso2img::init::init(&g.config, &a.base, &g.registry())?;
    for c in &s.created {
        print_line(c)?;
    }
    let theme = match s.theme_file {
        Some(t) => format!("devportal theme: themes/devportal/{t}"),
        None => {
            format!("no portals on this {} base, so no themes/", s.facts.kind.map(|k| k.name()).unwrap_or("unknown"))
        }
    };
    wso2img::progress::message(&format!(
        "created {} for {} ({theme}); keystores/ is baked only with bake_keystores = true or --bake-keystores; next: add your files and run `wso2img build`",
        g.config.display(),
        s.base,
    ));
    Ok(())
}
