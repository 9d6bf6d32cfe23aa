//! Errors. A module reports what went wrong as a typed value of its own — a
//! `thiserror` enum that callers and tests decide on by variant — and it
//! becomes the crate's [`Error`] through [`Typed`]: the kind that decides the
//! exit code, one line naming the file or reference involved, and a hint of
//! what to do. [`Error::cause`] gives the typed value back.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// What went wrong, broadly; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The command line is wrong (bad flag value, bad image reference).
    Usage,
    /// `wso2img.toml` is missing, unreadable or wrong.
    Config,
    /// A customer file or tree cannot go into an image as it is.
    Input,
    /// The base image cannot be found or read.
    Source,
    /// A destination cannot be written, or another I/O failure.
    Io,
    /// A capability that is recognised but not available in this build.
    Unsupported,
}

/// A module's typed error: what kind it is and what the user can do about it.
pub trait Typed: std::error::Error + Send + Sync + 'static {
    /// The kind, which decides the exit code.
    fn kind(&self) -> Kind;
    /// What to do about it, when there is something to say.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// A typed cause that callers decide on (never by matching message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Cause {
    /// A registry or daemon answered with this HTTP status.
    #[error("HTTP status {status}")]
    Http {
        /// The status code.
        status: u16,
    },
    /// The Docker daemon stopped reading a request body (its answer says why).
    #[error("the Docker daemon stopped reading")]
    StoppedReading,
}

/// A wso2img error: a single-line message that names the file or reference
/// involved, a hint of what to do, and its typed cause when it has one.
#[derive(Debug, Clone)]
pub struct Error {
    kind: Kind,
    message: String,
    hint: Option<String>,
    cause: Option<Cause>,
    typed: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl<E: Typed> From<E> for Error {
    fn from(e: E) -> Self {
        let mut err = Error::new(e.kind(), e.to_string());
        err.hint = e.hint().map(|h| one_line(&h));
        err.typed = Some(Arc::new(e));
        err
    }
}

impl Error {
    /// An error of `kind` with `message` (one line; the userinfo of any URL in
    /// it, such as a proxy password, is scrubbed).
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error { kind, message: one_line(&message.into()), hint: None, cause: None, typed: None }
    }
    /// The same error carrying a typed `cause`.
    pub fn with_cause(mut self, cause: Cause) -> Self {
        self.cause = Some(cause);
        self
    }
    /// The same error with `hint` saying what to do.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(one_line(&hint.into()));
        self
    }
    /// The typed cause, when there is one.
    pub fn cause(&self) -> Option<Cause> {
        self.cause
    }
    /// The module's typed error this was made from, when it is an `E`.
    pub fn typed<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.typed.as_deref().and_then(|e| e.downcast_ref::<E>())
    }
    /// The HTTP status behind this error, when a server answered with one.
    pub fn http_status(&self) -> Option<u16> {
        match self.cause {
            Some(Cause::Http { status }) => Some(status),
            _ => None,
        }
    }
    /// A command-line error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }
    /// A configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(Kind::Config, message)
    }
    /// An error in the customer's files.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(Kind::Input, message)
    }
    /// An error reading the base image.
    pub fn source(message: impl Into<String>) -> Self {
        Self::new(Kind::Source, message)
    }
    /// A capability not available yet.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(Kind::Unsupported, message)
    }
    /// An I/O error on `path`, with what was being done.
    pub fn io(doing: &str, path: &Path, err: std::io::Error) -> Self {
        Self::new(Kind::Io, format!("{}: {doing}: {}", path.display(), io_reason(&err)))
    }
    /// The kind of this error.
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// What went wrong, naming the input, without the hint.
    pub fn what(&self) -> &str {
        &self.message
    }
    /// What to do about it.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
    /// The whole line: what went wrong, then the hint.
    pub fn message(&self) -> String {
        match &self.hint {
            Some(h) => format!("{}; {h}", self.message),
            None => self.message.clone(),
        }
    }
    /// Process exit code: 2 for usage and configuration errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::Usage | Kind::Config => 2,
            _ => 1,
        }
    }
    /// The same error with `prefix: ` in front of its message.
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.message = one_line(&format!("{prefix}: {}", self.message));
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match &self.hint {
            Some(h) => write!(f, "; {h}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.typed.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// One line of text with the userinfo of any URL in it (a proxy password)
/// scrubbed.
fn one_line(s: &str) -> String {
    crate::sanitize::scrub_userinfo(&s.replace('\n', " ")).into_owned()
}

/// A short reason for an I/O error, without the "(os error N)" suffix.
pub fn io_reason(err: &std::io::Error) -> String {
    let s = err.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
