//! Command-line parsing and output. Each subcommand turns its flags into
//! library options, calls the library once, and prints: data on stdout (JSON
//! with `--json`), messages on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use wso2img::build::{self, Options, Report};
use wso2img::image::Platform;
use wso2img::reference::Location;
use wso2img::{Error, Result};

/// Builds reproducible, customized WSO2 API Manager images.
#[derive(Parser)]
#[command(name = "wso2img", version, about, propagate_version = true)]
struct Cli {
    /// The config file.
    #[arg(short, long, global = true, default_value = wso2img::config::FILE_NAME, value_name = "FILE")]
    config: PathBuf,
    /// Print only errors on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the image and write it to every destination.
    #[command(after_help = "Examples:\n  wso2img build\n  wso2img build --to oci:out/apim --to docker-archive:apim.tar --json\n  wso2img build --base docker-archive:base.tar")]
    Build(BuildArgs),
    /// Show the content digest, tag and layers a build would produce, without compressing or writing.
    #[command(after_help = "Example:\n  wso2img plan --json")]
    Plan(PlanArgs),
    /// Show what an image holds: digest, platforms, layers, labels.
    #[command(after_help = "Example:\n  wso2img inspect oci:out:4.3.0-0123456789ab")]
    Inspect(InspectArgs),
}

#[derive(Args)]
struct Common {
    /// Base image instead of [base] image (oci:DIR[:TAG], docker-archive:FILE, builtin:NAME, …).
    #[arg(long, value_name = "REF")]
    base: Option<String>,
    /// Keep only this platform of a multi-platform base (repeatable), e.g. linux/arm64.
    #[arg(long, value_name = "OS/ARCH")]
    platform: Vec<String>,
    /// Bake the keystores folder into the image.
    #[arg(long)]
    bake_keystores: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BuildArgs {
    #[command(flatten)]
    common: Common,
    /// Destination (repeatable): oci:DIR[:TAG] or docker-archive:FILE[:REF]. Default: oci:<config folder>/out.
    #[arg(long = "to", value_name = "REF")]
    to: Vec<String>,
}

#[derive(Args)]
struct PlanArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct InspectArgs {
    /// The image: oci:DIR[:TAG] or docker-archive:FILE.
    image: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the command line and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = cli.quiet;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "wso2img: error: {e}");
            let _ = quiet;
            ExitCode::from(e.exit_code())
        }
    }
}

fn options(config: PathBuf, c: &Common, outputs: &[String]) -> Result<Options> {
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.is_empty() => Some(s.trim().parse::<i64>().map_err(|_| {
            Error::usage(format!("SOURCE_DATE_EPOCH={s}: expected a number of seconds since 1970"))
        })?),
        _ => None,
    };
    Ok(Options {
        config,
        base: c.base.as_deref().map(str::parse).transpose()?,
        platforms: c.platform.iter().map(|p| Platform::parse(p)).collect::<Result<_>>()?,
        outputs: outputs.iter().map(|o| o.parse::<Location>()).collect::<Result<_>>()?,
        bake_keystores: c.bake_keystores,
        source_date_epoch,
    })
}

fn run(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    let mut log = move |m: &str| {
        if !quiet {
            let _ = writeln!(std::io::stderr(), "wso2img: {m}");
        }
    };
    match cli.command {
        Command::Build(a) => {
            let opts = options(cli.config, &a.common, &a.to)?;
            let rep = build::build(&opts, &mut log)?;
            if a.common.json {
                print_json(&rep)
            } else {
                log(&format!("content digest {} tag {}", rep.content_digest, rep.tag));
                print_line(&rep.content_digest.to_string())
            }
        }
        Command::Plan(a) => {
            let opts = options(cli.config, &a.common, &[])?;
            let rep = build::plan(&opts, &mut log)?;
            if a.common.json {
                print_json(&rep)
            } else {
                print_line(&plan_text(&rep))
            }
        }
        Command::Inspect(a) => {
            let loc: Location = a.image.parse()?;
            let info = wso2img::inspect::inspect(&loc)?;
            if a.json {
                print_json(&info)
            } else {
                print_line(&inspect_text(&info))
            }
        }
    }
}

fn plan_text(r: &Report) -> String {
    let mut s = format!("content digest  {}\ntag             {}\n", r.content_digest, r.tags.join(", "));
    s += &format!("base            {}\n", r.base.name);
    for p in &r.platforms {
        s += &format!(
            "platform        {}  config {}  home {}  owner {} ({})\n",
            p.platform, p.config_digest, p.detected.product_home, p.detected.owner, p.detected.owner_from
        );
    }
    for l in &r.layers {
        s += &format!("layer {:<10} {:>6} files {:>10}  {}\n", l.name, l.files, build::human(l.bytes), l.diff_id);
    }
    s.trim_end().to_string()
}

fn inspect_text(i: &wso2img::inspect::Inspection) -> String {
    let mut s = format!("{}\ndigest  {}\n", i.reference, i.digest.map(|d| d.to_string()).unwrap_or_else(|| "-".into()));
    for p in &i.platforms {
        s += &format!("platform {}  config {}  user {}\n", p.platform, p.config_digest, p.user);
        if let Some(d) = &p.detected {
            s += &format!("  product home {} (version {})\n", d.product_home, d.version.as_deref().unwrap_or("?"));
        }
        for l in &p.layers {
            s += &format!("  layer {} {:>10}  {}\n", l.digest, build::human(l.size), l.created_by.as_deref().unwrap_or(""));
        }
        if let Some(labels) = p.labels.as_object() {
            for (k, v) in labels {
                s += &format!("  label {k}={}\n", v.as_str().unwrap_or(""));
            }
        }
    }
    s.trim_end().to_string()
}

fn print_json(v: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(v).expect("reports serialize");
    print_line(&text)
}

fn print_line(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{s}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("writing", &PathBuf::from("stdout"), e)),
        _ => Ok(()),
    }
}
