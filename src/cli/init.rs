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
    /// A deployment pattern of wso2/helm-apim (0 all-in-one, 1 all-in-one HA, 2 all-in-one + gateway,
    /// 3 ACP+TM+GW, 4 ACP+TM+GW+KM, 5 all-in-one + GW + KM): also writes a [[variant]] per component.
    #[arg(long, value_name = "N")]
    pattern: Option<u8>,
}

/// Runs `init`: prints every file and folder it created, one per line.
pub fn run(g: &Global, a: InitArgs) -> Result<()> {
    let s = wso2img::init::init(&g.config, &a.base, a.pattern, &g.registry())?;
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
    if let Some(n) = a.pattern {
        for c in &s.components {
            wso2img::progress::message(&format!(
                "pattern {n}: fill in {}/repository/conf/deployment.toml for the {} (its hostnames and the shared databases, the other components' URLs)",
                wso2img::init::variant_overlays(c),
                c.name
            ));
        }
        if s.components.is_empty() {
            wso2img::progress::message(&format!(
                "pattern {n} ({}): the main image is all it needs",
                wso2img::init::pattern::name(n)
            ));
        }
    }
    Ok(())
}
