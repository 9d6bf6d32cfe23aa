//! `inspect`.

use clap::Args;

use super::{print_json, print_line, Global};
use wso2img::inspect::Inspection;
use wso2img::reference::Location;
use wso2img::sanitize::escape_controls;
use wso2img::transport::registry::Registries;
use wso2img::Result;

/// `inspect` flags.
#[derive(Args)]
pub struct InspectArgs {
    /// The image: oci:DIR[:TAG], docker-archive:FILE or a registry reference.
    image: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `inspect`.
pub fn run(g: &Global, a: InspectArgs) -> Result<()> {
    let loc: Location = a.image.parse()?;
    let info = wso2img::inspect::inspect(&loc, &Registries::new(g.registry()))?;
    if a.json {
        print_json(&info)
    } else {
        let shown: Vec<String> = text(&info).lines().map(|l| escape_controls(l).into_owned()).collect();
        print_line(&shown.join("\n"))
    }
}

fn text(i: &Inspection) -> String {
    let mut s = format!("{}\ndigest  {}\n", i.reference, i.digest.map(|d| d.to_string()).unwrap_or_else(|| "-".into()));
    for p in &i.platforms {
        s += &format!("platform {}  config {}  user {}\n", p.platform, p.config_digest, p.user);
        if let Some(d) = &p.detected {
            s += &format!(
                "  product home {} (version {}, kind {})\n",
                d.product_home,
                d.version.as_deref().unwrap_or("?"),
                d.kind.map(|k| k.name()).unwrap_or("?")
            );
        }
        for l in &p.layers {
            s += &format!(
                "  layer {} {:>10}  {}\n",
                l.digest,
                wso2img::fmt::human(l.size),
                l.created_by.as_deref().unwrap_or("")
            );
        }
        if let Some(labels) = p.labels.as_object() {
            for (k, v) in labels {
                s += &format!("  label {k}={}\n", v.as_str().unwrap_or(""));
            }
        }
    }
    s.trim_end().to_string()
}
