//! `reference` (hidden): the CLI reference, generated from the clap
//! definitions, as markdown (`docs/reference/cli.md`) or a man page
//! (`docs/reference/wso2img.1`). A test fails when the committed files differ.

use clap::{Args, Command, CommandFactory, ValueEnum};

use super::print_line;
use wso2img::Result;

/// `reference` flags.
#[derive(Args)]
pub struct ReferenceArgs {
    /// What to print.
    #[arg(value_enum)]
    format: Format,
}

/// Formats of the reference.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Markdown, for the documentation.
    Cli,
    /// A man page (roff).
    Man,
}

/// Runs `reference`.
pub fn run(a: ReferenceArgs) -> Result<()> {
    let mut cmd = super::Cli::command();
    cmd.build();
    let text = match a.format {
        Format::Cli => markdown(&cmd),
        Format::Man => man(&cmd),
    };
    print_line(text.trim_end())
}

/// The visible subcommands of `cmd`.
fn subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

/// One line per visible argument: `--name VALUE`, its help, default and values.
fn arguments(cmd: &Command) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let id = a.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let names: Vec<String> =
            a.get_short().map(|s| format!("-{s}")).into_iter().chain(a.get_long().map(|l| format!("--{l}"))).collect();
        let value = a.get_value_names().map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "));
        let takes = a.get_action().takes_values();
        let mut form = if names.is_empty() {
            format!("<{}>", value.clone().unwrap_or_else(|| id.to_uppercase()))
        } else {
            names.join(", ")
        };
        if !names.is_empty() && takes {
            form += &format!(" {}", value.unwrap_or_else(|| id.to_uppercase()));
        }
        let mut help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        if !help.is_empty() && !help.ends_with('.') {
            help.push('.');
        }
        let values: Vec<String> =
            a.get_possible_values().iter().filter(|v| !v.is_hide_set()).map(|v| v.get_name().to_string()).collect();
        if !values.is_empty() && a.get_long().is_some() {
            help += &format!(" Values: {}.", values.join(", "));
        }
        let defaults: Vec<String> = a.get_default_values().iter().map(|d| d.to_string_lossy().into_owned()).collect();
        if !defaults.is_empty() && takes {
            help += &format!(" Default: {}.", defaults.join(", "));
        }
        out.push((form, help.trim().to_string()));
    }
    out
}

fn markdown(cmd: &Command) -> String {
    let mut s = String::from(
        "# Command-line reference\n\nGenerated from the command definitions by `wso2img reference cli`; do not edit.\n\n",
    );
    s += &format!("`{}` — {}\n\n", cmd.get_name(), cmd.get_about().map(|a| a.to_string()).unwrap_or_default());
    s += "## Global options\n\n";
    for (form, help) in arguments(cmd) {
        s += &format!("- `{form}`: {help}\n");
    }
    for sub in subcommands(cmd) {
        s += &format!("\n## wso2img {}\n\n", sub.get_name());
        s += &format!("{}\n\n", sub.get_about().map(|a| a.to_string()).unwrap_or_default());
        let aliases: Vec<&str> = sub.get_visible_aliases().collect();
        if !aliases.is_empty() {
            s += &format!("Also: `wso2img {}`.\n\n", aliases.join("`, `wso2img "));
        }
        let own: Vec<(String, String)> =
            arguments(sub).into_iter().filter(|(f, _)| !arguments(cmd).iter().any(|(g, _)| g == f)).collect();
        for (form, help) in own {
            s += &format!("- `{form}`: {help}\n");
        }
        if let Some(after) = sub.get_after_help() {
            s += &format!("\n```text\n{}\n```\n", after.to_string().trim_end());
        }
    }
    s
}

/// Escapes text for roff.
fn roff(t: &str) -> String {
    t.replace('\\', "\\e")
        .replace('-', "\\-")
        .lines()
        .map(|l| if l.starts_with(['.', '\'']) { format!("\\&{l}") } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
}

fn man(cmd: &Command) -> String {
    let mut s = String::from(".TH WSO2IMG 1 \"\" \"wso2img\" \"User Commands\"\n");
    s += &format!(".SH NAME\nwso2img \\- {}\n", roff(&cmd.get_about().map(|a| a.to_string()).unwrap_or_default()));
    s += ".SH SYNOPSIS\n\\fBwso2img\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR\n.SH OPTIONS\n";
    for (form, help) in arguments(cmd) {
        s += &format!(".TP\n\\fB{}\\fR\n{}\n", roff(&form), roff(&help));
    }
    s += ".SH COMMANDS\n";
    for sub in subcommands(cmd) {
        s += &format!(
            ".SS \"wso2img {}\"\n{}\n",
            sub.get_name(),
            roff(&sub.get_about().map(|a| a.to_string()).unwrap_or_default())
        );
        for (form, help) in arguments(sub).into_iter().filter(|(f, _)| !arguments(cmd).iter().any(|(g, _)| g == f)) {
            s += &format!(".TP\n\\fB{}\\fR\n{}\n", roff(&form), roff(&help));
        }
    }
    s += ".SH SEE ALSO\nThe documentation in docs/ (an MkDocs book).\n";
    s
}
