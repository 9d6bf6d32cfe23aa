//! How progress looks: bars with bytes and rates on a terminal; plain,
//! timestamped lines (no control characters) when stderr is not a terminal
//! or `CI` is set; nothing but errors with `-q`. `-v` adds per-blob details,
//! `-v -v` every network request too; `NO_COLOR` turns colour off.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use wso2img::fmt::human;
use wso2img::progress::{self, Sink, TaskView};

/// Installs the sink the flags and the environment ask for: `verbosity`
/// counts `-v` (1 shows details, 2 also debugging lines).
pub fn install(quiet: bool, verbosity: u8) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if quiet {
        return;
    }
    let (verbose, debug) = (verbosity >= 1, verbosity >= 2);
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let sink: Arc<dyn Sink> = if std::io::stderr().is_terminal() && !ci && !dumb {
        Arc::new(Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            verbose,
            debug,
            color: !no_color,
        })
    } else {
        Arc::new(Lines { verbose, debug })
    };
    progress::install(sink);
}

fn summary(bytes: u64, secs: f64) -> String {
    let rate = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
    format!("{} in {secs:.2} s ({}/s)", human(bytes), human(rate as u64))
}

/// Plain lines, each with a UTC timestamp.
struct Lines {
    verbose: bool,
    debug: bool,
}

fn stamp() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let base = wso2img::image::mutate::rfc3339(now.as_secs() as i64);
    format!("{}.{:03}Z", base.trim_end_matches('Z'), now.subsec_millis())
}

/// Escapes control characters so a line stays one plain line and cannot drive the terminal.
fn clean(msg: &str) -> String {
    wso2img::sanitize::escape_controls(msg).into_owned()
}

impl Lines {
    fn line(&self, msg: &str) {
        let _ = writeln!(std::io::stderr(), "{} wso2img: {}", stamp(), clean(msg));
    }
}

impl Sink for Lines {
    fn message(&self, msg: &str) {
        self.line(msg);
    }
    fn detail(&self, msg: &str) {
        if self.verbose {
            self.line(msg);
        }
    }
    fn debug(&self, msg: &str) {
        if self.debug {
            self.line(msg);
        }
    }
    fn start(&self, what: &str, _total: Option<u64>) -> Box<dyn TaskView> {
        Box::new(LineTask { what: what.to_string(), verbose: self.verbose })
    }
}

struct LineTask {
    what: String,
    verbose: bool,
}

impl TaskView for LineTask {
    fn advance(&self, _n: u64) {}
    fn finish(&self, bytes: u64, secs: f64) {
        if self.verbose || bytes >= 1 << 20 {
            Lines { verbose: self.verbose, debug: false }.line(&format!("{}: {}", self.what, summary(bytes, secs)));
        }
    }
}

/// Progress bars on a terminal.
struct Bars {
    multi: MultiProgress,
    verbose: bool,
    debug: bool,
    color: bool,
}

impl Sink for Bars {
    fn message(&self, msg: &str) {
        let _ = self.multi.println(format!("wso2img: {}", clean(msg)));
    }
    fn detail(&self, msg: &str) {
        if self.verbose {
            self.message(msg);
        }
    }
    fn debug(&self, msg: &str) {
        if self.debug {
            self.message(msg);
        }
    }
    fn start(&self, what: &str, total: Option<u64>) -> Box<dyn TaskView> {
        let bar = match total {
            Some(t) if t > 0 => ProgressBar::new(t),
            _ => ProgressBar::no_length(),
        };
        let template = if self.color {
            "{prefix:>22.bold} [{bar:30.cyan/blue}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}"
        } else {
            "{prefix:>22} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_string());
        let bar = self.multi.add(bar);
        Box::new(BarTask { bar, what: what.to_string(), multi: self.multi.clone(), verbose: self.verbose })
    }
}

struct BarTask {
    bar: ProgressBar,
    what: String,
    multi: MultiProgress,
    verbose: bool,
}

impl TaskView for BarTask {
    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
    fn finish(&self, bytes: u64, secs: f64) {
        self.bar.finish_and_clear();
        self.multi.remove(&self.bar);
        if self.verbose || bytes >= 1 << 20 {
            let _ = self.multi.println(format!("wso2img: {}: {}", self.what, summary(bytes, secs)));
        }
    }
}
