//! Command-line parsing and output. Each subcommand turns its flags into
//! library options, calls the library, and prints: data on stdout (one JSON
//! object with `--json`), messages on stderr. One file per group of commands.

mod build;
mod check;
mod completions;
mod init;
mod inspect;
mod lock;
mod login;
mod metadata;
mod output;
mod reference;
mod registry;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use wso2img::{Error, Result};

/// Builds reproducible, customized WSO2 API Manager images.
#[derive(Parser)]
#[command(name = "wso2img", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command takes.
#[derive(Args, Clone)]
pub struct Global {
    /// The config file.
    #[arg(short, long, global = true, default_value = wso2img::config::FILE_NAME, value_name = "FILE")]
    pub config: PathBuf,
    /// Print only errors on stderr (the same as --progress=quiet).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// How progress shows on stderr: bars on a terminal (auto, tty), timestamped lines (plain), or only errors (quiet).
    #[arg(long, global = true, value_enum, default_value_t = output::Mode::Auto, value_name = "MODE")]
    pub progress: output::Mode,
    /// Also print per-blob details (exists, mounted, uploaded, retried); twice (-vv), every network request too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Trust this CA certificate (PEM) for registries, in addition to the system's (repeatable).
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// Allow plain HTTP or an unverified certificate for this registry host (repeatable).
    #[arg(long, global = true, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// Upload blobs in chunks of this many bytes, 65536 to 1 GiB (for registries that limit request bodies).
    #[arg(long, global = true, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(wso2img::transport::registry::push::MIN_CHUNK_SIZE..=wso2img::transport::registry::push::MAX_CHUNK_SIZE))]
    pub chunk_size: Option<u64>,
    /// Give up on a registry that sends nothing for this many seconds (1 to 3600).
    #[arg(long, global = true, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

impl Global {
    /// Registry options from the flags.
    pub fn registry(&self) -> wso2img::transport::registry::Options {
        wso2img::transport::registry::Options {
            ca_certs: self.ca_cert.clone(),
            insecure: self.insecure_registry.clone(),
            chunk_size: self.chunk_size,
            timeout: std::time::Duration::from_secs(self.timeout),
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Build the image and write or push it to every destination.
    #[command(
        after_help = "Examples:\n  wso2img build\n  wso2img build --push --json\n  wso2img build --to oci:out/apim --to docker-archive:apim.tar\n  wso2img build --base docker-archive:base.tar\n  wso2img build --base docker-daemon:wso2/wso2am:4.3.0 --to docker-daemon:acme/apim\n  wso2img build --push --via docker\n  wso2img build --push --locked --digest-file digest.txt --metadata-file metadata.json"
    )]
    Build(build::BuildArgs),
    /// Show the content digest, tag and layers a build would produce, without compressing or writing.
    #[command(after_help = "Examples:\n  wso2img plan --json\n  wso2img plan --locked")]
    Plan(build::PlanArgs),
    /// Run every input check (ignore rules, configuration files, jars, keystores, themes), writing nothing.
    #[command(
        after_help = "Reads only the base's manifests and configs; exit 0 when every check passes, 1 on a bad\ninput file, 2 on a configuration error (file:line:col: what).\n\nExamples:\n  wso2img check\n  wso2img check --locked --json\n  wso2img check -v                      # also list every file the ignore rules left out"
    )]
    Check(check::CheckArgs),
    /// Show what an image holds: digest, platforms, layers, labels.
    #[command(
        after_help = "Examples:\n  wso2img inspect oci:out:4.3.0-0123456789ab\n  wso2img inspect registry.example.com/acme/wso2am:4.3.0-0123456789ab --json"
    )]
    Inspect(inspect::InspectArgs),
    /// Add tags to an image in a registry, without moving any layer.
    #[command(
        after_help = "Example:\n  wso2img tag registry.example.com/acme/wso2am:4.3.0-0123456789ab release-2026.11 latest"
    )]
    Tag(registry::TagArgs),
    /// Copy an image to another repository or registry, keeping its digest.
    #[command(
        after_help = "Example:\n  wso2img copy registry.example.com/acme/wso2am:4.3.0-0123456789ab prod.example.com/acme/wso2am:4.3.0-0123456789ab"
    )]
    Copy(registry::CopyArgs),
    /// Create wso2img.toml, its lock and the customer folders for a base (never overwrites).
    #[command(
        after_help = "Examples:\n  wso2img init --base wso2/wso2am:4.3.0\n  wso2img init --base docker-archive:base.tar -c apim/wso2img.toml\n  wso2img init --base builtin:wso2am-4.1.0"
    )]
    Init(init::InitArgs),
    /// Resolve the base again and record its digests in wso2img.lock.
    #[command(
        after_help = "Examples:\n  wso2img update\n  wso2img update --json\n  wso2img update --base docker-archive:base.tar"
    )]
    Update(lock::LockArgs),
    /// Say whether the base tag now points elsewhere than wso2img.lock (exit 1 when it does).
    #[command(
        after_help = "Exit status: 0 when the lock is current, 1 when the base moved or is not locked,\n2 on a usage or configuration error.\n\nExamples:\n  wso2img outdated || wso2img update\n  wso2img outdated --json"
    )]
    Outdated(lock::LockArgs),
    /// Check a registry credential and store it in the Docker config file (as `docker login` does).
    #[command(
        after_help = "Examples:\n  printf %s \"$TOKEN\" | wso2img login registry.example.com -u ci --password-stdin\n  wso2img logout registry.example.com"
    )]
    Login(login::LoginArgs),
    /// Remove a registry credential from the Docker config file.
    Logout(login::LogoutArgs),
    /// Print a shell completion script.
    #[command(
        visible_alias = "completion",
        after_help = "Examples:\n  wso2img completions bash > /etc/bash_completion.d/wso2img\n  wso2img completions zsh > \"${fpath[1]}/_wso2img\"\n  wso2img completions fish > ~/.config/fish/completions/wso2img.fish"
    )]
    Completions(completions::CompletionsArgs),
    /// Print the command-line reference (markdown or a man page), generated from these definitions.
    #[command(hide = true)]
    Reference(reference::ReferenceArgs),
}

/// Runs the command line and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = cli.global.clone();
    let mode = if global.quiet { output::Mode::Quiet } else { global.progress };
    output::install(mode, global.verbose);
    let result = match cli.command {
        Command::Build(a) => build::build(&global, a),
        Command::Plan(a) => build::plan(&global, a),
        Command::Check(a) => check::run(&global, a),
        Command::Inspect(a) => inspect::run(&global, a),
        Command::Tag(a) => registry::tag(&global, a),
        Command::Copy(a) => registry::copy(&global, a),
        Command::Init(a) => init::run(&global, a),
        Command::Update(a) => lock::update(&global, a),
        Command::Outdated(a) => match lock::outdated(&global, a) {
            Ok(true) => return ExitCode::FAILURE,
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        },
        Command::Login(a) => login::login(&global, a),
        Command::Logout(a) => login::logout(&global, a),
        Command::Completions(a) => completions::run(a),
        Command::Reference(a) => reference::run(a),
    };
    output::close();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", wso2img::sanitize::escape_controls(&e.message()));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints one JSON object on stdout.
pub fn print_json(v: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(v).expect("reports serialize");
    print_line(&text)
}

/// Prints a line on stdout; a closed pipe is not an error.
pub fn print_line(s: &str) -> Result<()> {
    output::close();
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{s}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("writing", &PathBuf::from("stdout"), e)),
        _ => Ok(()),
    }
}
