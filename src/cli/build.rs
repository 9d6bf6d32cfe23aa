//! `build` and `plan`.

use clap::{Args, ValueEnum};

use super::{print_json, print_line, Global};
use wso2img::files::Target;
use wso2img::image::Platform;
use wso2img::pipeline::{self, Options, Report, Via};
use wso2img::reference::Location;
use wso2img::{Error, Result};

/// Flags shared by `build`, `plan` and `check`.
#[derive(Args)]
pub struct Common {
    /// Base image instead of [base] image (docker://…, docker-daemon:NAME[:TAG], oci:DIR[:TAG], docker-archive:FILE, builtin:NAME).
    #[arg(long, value_name = "REF")]
    base: Option<String>,
    /// With a docker-daemon: base, have the Docker daemon pull it first (credentials from the Docker config).
    #[arg(long)]
    pull: bool,
    /// Keep only this platform of a multi-platform base (repeatable), e.g. linux/arm64.
    #[arg(long, value_name = "OS/ARCH")]
    platform: Vec<String>,
    /// Bake the keystores folder into the image.
    #[arg(long)]
    bake_keystores: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Fail (exit 1) when wso2img.lock is missing or the base resolves differently, instead of refreshing the lock.
    #[arg(long)]
    locked: bool,
    /// Check the base's cosign signature with this public key (PEM) before anything is built; overrides [base] verify_key.
    #[arg(long, value_name = "FILE")]
    verify_base_key: Option<std::path::PathBuf>,
}

/// `build` flags.
#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    common: Common,
    /// Destination (repeatable): docker://HOST/REPO[:TAG], docker-daemon:NAME[:TAG], oci:DIR[:TAG] or
    /// docker-archive:FILE[:REF]. Default: oci:<config folder>/out.
    #[arg(long = "to", value_name = "REF")]
    to: Vec<String>,
    /// Also push to [target] repository.
    #[arg(long)]
    push: bool,
    /// Move a content tag that already names different content.
    #[arg(long)]
    force: bool,
    /// How --push and docker:// destinations reach the registry: directly, or through the Docker daemon
    /// (load, tag, `docker push`; uses the daemon's mirrors, proxies and network).
    #[arg(long, value_enum, default_value_t = ViaArg::Registry, value_name = "HOW")]
    via: ViaArg,
    /// Push baked keystores to a public registry (Docker Hub, [target] public_registries) anyway.
    #[arg(long)]
    allow_public_keystores: bool,
    /// Write a CycloneDX 1.5 SBOM of what the customization adds to FILE.
    #[arg(long, value_name = "FILE")]
    sbom: Option<std::path::PathBuf>,
    /// Write the main image's digest (the first destination's) to FILE, like buildah's --digestfile.
    #[arg(long, value_name = "FILE")]
    digest_file: Option<std::path::PathBuf>,
    /// Write a JSON object like `docker buildx build --metadata-file` to FILE.
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<std::path::PathBuf>,
    /// Sign every image pushed to a registry with this key (ECDSA P-256/P-384/P-521, RSA or Ed25519; PEM or cosign
    /// key, password in WSO2IMG_SIGN_PASSWORD or COSIGN_PASSWORD) and attach its SBOM and SLSA provenance.
    #[arg(long, value_name = "FILE")]
    sign_key: Option<std::path::PathBuf>,
    /// Neither read nor write the digest cache: read every file (and every blob of an oci: destination).
    #[arg(long)]
    no_cache: bool,
}

/// Values of `--via`.
#[derive(Clone, Copy, ValueEnum)]
enum ViaArg {
    /// Over the registry API.
    Registry,
    /// Through the Docker daemon.
    Docker,
}

impl Common {
    /// Whether `--json` was given.
    pub(super) fn json(&self) -> bool {
        self.json
    }
}

/// Says, after a run that succeeded, that the keystores folder is not baked
/// (once; a failed run says only what failed).
pub(super) fn tell_unbaked_keystores(g: &Global, c: &Common) {
    if let Ok(config) = wso2img::config::Config::load(&g.config) {
        if let Some(note) = wso2img::inputs::unbaked_keystores(&config, c.bake_keystores) {
            wso2img::progress::message(&note);
        }
    }
}

/// `plan` flags.
#[derive(Args)]
pub struct PlanArgs {
    #[command(flatten)]
    common: Common,
    /// Neither read nor write the digest cache: read every file.
    #[arg(long)]
    no_cache: bool,
}

pub(super) fn options(g: &Global, c: &Common, outputs: &[String]) -> Result<Options> {
    let source_date_epoch =
        match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(s) if !s.is_empty() => Some(s.trim().parse::<i64>().ok().filter(|t| (0..1 << 33).contains(t)).ok_or_else(
                || {
                    Error::usage(format!(
                        "SOURCE_DATE_EPOCH={s}: expected a number of seconds since 1970, from 0 to 8589934591 (what a tar header holds)"
                    ))
                },
            )?),
            _ => None,
        };
    Ok(Options {
        config: g.config.clone(),
        base: c.base.as_deref().map(str::parse).transpose()?,
        platforms: c.platform.iter().map(|p| Platform::parse(p)).collect::<Result<_>>()?,
        outputs: outputs.iter().map(|o| o.parse::<Location>()).collect::<Result<_>>()?,
        bake_keystores: c.bake_keystores,
        source_date_epoch,
        push: false,
        force: false,
        pull: c.pull,
        via: Via::Registry,
        registry: g.registry(),
        allow_public_keystores: false,
        sbom: None,
        locked: c.locked,
        sign_key: None,
        sign_key_file: None,
        output_files: Vec::new(),
        verify_base_key: c.verify_base_key.clone(),
        no_cache: false,
    })
}

/// Runs `build`.
pub fn build(g: &Global, a: BuildArgs) -> Result<()> {
    let mut opts = options(g, &a.common, &a.to)?;
    opts.push = a.push;
    opts.force = a.force;
    opts.allow_public_keystores = a.allow_public_keystores;
    opts.sbom = a.sbom.clone();
    opts.no_cache = a.no_cache;
    opts.via = match a.via {
        ViaArg::Registry => Via::Registry,
        ViaArg::Docker => Via::Docker,
    };
    opts.sign_key = a.sign_key.as_deref().map(super::registry::load_sign_key).transpose()?;
    opts.sign_key_file = a.sign_key.clone();
    let files = super::metadata::Files::new(a.digest_file.clone(), a.metadata_file.clone())?;
    for (flag, p) in [("--digest-file", &a.digest_file), ("--metadata-file", &a.metadata_file)] {
        if let Some(p) = p {
            opts.output_files.push((format!("{flag} {}", p.display()), p.clone()));
        }
    }
    let mut stdout_users = files.stdout_users();
    let to_stdout = |p: &std::path::Path| Target::of(p) == Target::Stdout;
    stdout_users.extend(opts.sbom.iter().filter(|p| to_stdout(p)).map(|p| format!("--sbom {}", p.display())));
    stdout_users
        .extend(opts.outputs.iter().filter(|o| wso2img::transport::of(o).writes_stdout()).map(|o| o.to_string()));
    if stdout_users.len() > 1 {
        return Err(Error::usage(format!(
            "{} all write to standard output; send all but one to a file",
            stdout_users.join(" and ")
        )));
    }
    if !stdout_users.is_empty() && a.common.json {
        return Err(Error::usage(format!("--json and {} both write to standard output; drop one", stdout_users[0])));
    }
    let rep = pipeline::build(&opts)?;
    files.write(&rep)?;
    tell_unbaked_keystores(g, &a.common);
    if !stdout_users.is_empty() {
        wso2img::progress::message(&format!("content digest {} tag {}", rep.content_digest, rep.tag));
        Ok(())
    } else if a.common.json {
        print_json(&rep)
    } else {
        wso2img::progress::message(&format!("content digest {} tag {}", rep.content_digest, rep.tag));
        pinned(&rep).try_for_each(print_line)
    }
}

/// One line per image written (the main image's destinations, then each
/// variant's): what a CI step passes on.
fn pinned(rep: &Report) -> impl Iterator<Item = &str> {
    rep.outputs.iter().chain(rep.variants.iter().flat_map(|v| v.outputs.iter())).map(|o| o.pinned.as_str())
}

/// Runs `plan`.
pub fn plan(g: &Global, a: PlanArgs) -> Result<()> {
    let mut opts = options(g, &a.common, &[])?;
    opts.no_cache = a.no_cache;
    let rep = pipeline::plan(&opts)?;
    tell_unbaked_keystores(g, &a.common);
    if a.common.json {
        print_json(&rep)
    } else {
        print_line(&plan_text(&rep))
    }
}

fn plan_text(r: &Report) -> String {
    let mut s = format!("content digest  {}\ntag             {}\n", r.content_digest, r.tags.join(", "));
    s += &format!("base            {}\n", r.base.name);
    for p in &r.platforms {
        s += &format!(
            "platform        {}  config {}  home {}  kind {}  owner {} ({})\n",
            p.platform,
            p.config_digest,
            p.detected.product_home,
            p.detected.kind.map(|k| k.name()).unwrap_or("unknown"),
            p.detected.owner,
            p.detected.owner_from
        );
    }
    // The certificates added, once per distinct merge (platforms share them).
    let mut told = Vec::new();
    for t in r.platforms.iter().filter_map(|p| p.truststore.as_ref()) {
        if told.contains(&t) {
            continue;
        }
        told.push(t);
        s += &format!("truststore      {} ({}, {} base entries)\n", t.path, t.format.name(), t.base_entries);
        for c in &t.added {
            s += &format!("  + {}  {}  {}  not after {}\n", c.alias, c.sha256, c.subject, c.not_after);
        }
        for c in &t.already_present {
            s += &format!("  = {}  {}  already there as {}\n", c.alias, c.sha256, c.base_alias);
        }
    }
    for l in &r.layers {
        s += &format!(
            "layer {:<10} {:>12}  content {:>9}  tar {:>9}  {}\n",
            l.name,
            wso2img::fmt::count(l.files, "file"),
            wso2img::fmt::human(l.bytes),
            wso2img::fmt::human(l.tar_size),
            l.diff_id
        );
    }
    s.trim_end().to_string()
}
