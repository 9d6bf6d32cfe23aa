//! How progress looks (`--progress`, the names `docker buildx` uses):
//! `tty` draws one bar per running task, named by its layer, and folds every
//! finished task into one summary line, so nothing stale is left on the
//! screen; `plain` prints timestamped lines without control characters;
//! `quiet` (`-q`) prints nothing but errors; `auto` is `tty` when stderr is a
//! terminal (and neither `CI` is set nor `TERM=dumb`), else `plain`. `-v`
//! adds per-blob details, `-v -v` every network request too; `NO_COLOR`
//! turns colour off. Sizes are in SI units (kB, MB, GB) everywhere.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use wso2img::fmt::human;
use wso2img::progress::{self, Sink, TaskView};

/// Values of `--progress`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Bars on a terminal, plain lines otherwise.
    Auto,
    /// Timestamped lines, no control characters.
    Plain,
    /// Bars, even when stderr does not look like a terminal.
    Tty,
    /// Only errors.
    Quiet,
}

/// The bars installed, kept to close them at the end of the run.
static BARS: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();

/// Installs the sink `mode` asks for: `verbosity` counts `-v` (1 shows
/// details, 2 also debugging lines).
pub fn install(mode: Mode, verbosity: u8) {
    let (verbose, debug) = (verbosity >= 1, verbosity >= 2);
    let tty = match mode {
        Mode::Quiet => return,
        Mode::Plain => false,
        Mode::Tty => true,
        Mode::Auto => {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
            let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
            std::io::stderr().is_terminal() && !ci && !dumb
        }
    };
    let sink: Arc<dyn Sink> = if tty {
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        // A terminal even when stderr does not look like one (`tty`).
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(Narrow(console::Term::stderr())), 10);
        let shared = Shared {
            multi: MultiProgress::with_draw_target(target),
            summary: Arc::new(Mutex::new(Summary::default())),
            verbose,
        };
        let _ = BARS.set(shared.clone());
        Arc::new(Bars { shared, debug, color })
    } else {
        Arc::new(Lines { verbose, debug })
    };
    progress::install(sink);
}

/// Ends the bars (the summary line stays), so that what is printed next
/// starts on a line of its own.
pub fn close() {
    if let Some(b) = BARS.get() {
        b.close();
    }
}

/// A byte count and a rate, in the one unit system of every output.
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

/// Finished tasks, per verb (`compress`, `upload`, `pull`): how many, bytes.
#[derive(Default)]
struct Summary {
    bar: Option<ProgressBar>,
    verbs: Vec<(String, usize, u64)>,
    closed: bool,
}

impl Summary {
    fn line(&self) -> String {
        let parts: Vec<String> = self
            .verbs
            .iter()
            .map(|(verb, n, bytes)| format!("{verb} {n} {} {}", wso2img::fmt::plural(*n, "layer"), human(*bytes)))
            .collect();
        format!("wso2img: done: {}", parts.join(", "))
    }
}

/// Progress bars on a terminal: one per running task, and one summary line
/// for the finished ones.
struct Bars {
    shared: Shared,
    debug: bool,
    color: bool,
}

/// What the sink and its tasks share.
#[derive(Clone)]
struct Shared {
    multi: MultiProgress,
    summary: Arc<Mutex<Summary>>,
    verbose: bool,
}

impl Shared {
    fn close(&self) {
        let mut s = self.summary.lock().unwrap_or_else(|e| e.into_inner());
        if s.closed {
            return;
        }
        s.closed = true;
        if let Some(bar) = s.bar.take() {
            bar.finish_and_clear();
            self.multi.remove(&bar);
            let line = s.line();
            self.multi.suspend(|| eprintln!("{line}"));
        }
        let _ = self.multi.clear();
    }
}

impl Sink for Bars {
    fn message(&self, msg: &str) {
        // Bars cleared, the line written, bars drawn again: a line printed
        // between two draws would leave the previous draw on the screen.
        let line = format!("wso2img: {}", clean(msg));
        self.shared.multi.suspend(|| eprintln!("{line}"));
    }
    fn detail(&self, msg: &str) {
        if self.shared.verbose {
            self.message(msg);
        }
    }
    fn debug(&self, msg: &str) {
        if self.debug {
            self.message(msg);
        }
    }
    fn start(&self, what: &str, total: Option<u64>) -> Box<dyn TaskView> {
        // Hidden until the multi-progress takes it: a bar styled before that
        // would draw once on its own, outside the lines the multi-progress
        // clears, and stay on the screen.
        let bar = ProgressBar::with_draw_target(total.filter(|t| *t > 0), ProgressDrawTarget::hidden());
        // Fixed columns; the bar takes what the terminal width leaves, so a
        // line never wraps (a wrapped line is one the next redraw misses).
        let template = if self.color {
            "{prefix:<24!.bold} {wide_bar:.cyan/blue} {decimal_bytes:>9}/{decimal_total_bytes:<9} {decimal_bytes_per_sec:>11}"
        } else {
            "{prefix:<24!} {wide_bar} {decimal_bytes:>9}/{decimal_total_bytes:<9} {decimal_bytes_per_sec:>11}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(clean(what));
        let multi = &self.shared.multi;
        let s = self.shared.summary.lock().unwrap_or_else(|e| e.into_inner());
        let bar = match (&s.bar, s.closed) {
            (_, true) => ProgressBar::hidden(),
            (Some(summary), false) => multi.insert_before(summary, bar),
            (None, false) => multi.add(bar),
        };
        Box::new(BarTask { bar, what: what.to_string(), shared: self.shared.clone() })
    }
}

/// A running task's bar.
struct BarTask {
    bar: ProgressBar,
    what: String,
    shared: Shared,
}

impl TaskView for BarTask {
    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
    fn finish(&self, bytes: u64, secs: f64) {
        self.bar.finish_and_clear();
        let bars = &self.shared;
        bars.multi.remove(&self.bar);
        if bars.verbose {
            let line = format!("wso2img: {}: {}", clean(&self.what), summary(bytes, secs));
            bars.multi.suspend(|| eprintln!("{line}"));
        }
        let mut s = bars.summary.lock().unwrap_or_else(|e| e.into_inner());
        if s.closed {
            return;
        }
        let verb = self.what.split(' ').next().unwrap_or("").to_string();
        match s.verbs.iter_mut().find(|(v, _, _)| *v == verb) {
            Some(e) => {
                e.1 += 1;
                e.2 += bytes;
            }
            None => s.verbs.push((verb, 1, bytes)),
        }
        let line = s.line();
        match s.bar.clone() {
            Some(b) => b.set_message(line),
            None => {
                let b = bars.multi.add(ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()));
                if let Ok(style) = ProgressStyle::with_template("{wide_msg}") {
                    b.set_style(style);
                }
                b.set_message(line);
                s.bar = Some(b);
            }
        }
    }
}

/// Standard error, one column narrower than it is: a line never reaches the
/// last column, where terminals defer the wrap and the next redraw would
/// start a line below the one it means to clear.
#[derive(Debug)]
struct Narrow(console::Term);

impl TermLike for Narrow {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(1).max(20)
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}
