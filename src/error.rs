//! The library's error type: one line of text for the user plus a kind that
//! decides the process exit code.

use std::fmt;
use std::path::Path;

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

/// A typed cause that callers decide on (never by matching message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// A registry or daemon answered with this HTTP status.
    Http {
        /// The status code.
        status: u16,
    },
    /// The Docker daemon stopped reading a request body (its answer says why).
    StoppedReading,
}

/// A wso2img error: a single-line message that names the file or reference
/// involved and says what to do.
#[derive(Debug, Clone)]
pub struct Error {
    kind: Kind,
    message: String,
    cause: Option<Cause>,
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `message` (one line; the userinfo of any URL in
    /// it, such as a proxy password, is scrubbed).
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        let message = crate::sanitize::scrub_userinfo(&message.into().replace('\n', " ")).into_owned();
        Error { kind, message, cause: None }
    }
    /// The same error carrying a typed `cause`.
    pub fn with_cause(mut self, cause: Cause) -> Self {
        self.cause = Some(cause);
        self
    }
    /// The typed cause, when there is one.
    pub fn cause(&self) -> Option<Cause> {
        self.cause
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
    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
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
        self.message = crate::sanitize::scrub_userinfo(&format!("{prefix}: {}", self.message)).into_owned();
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A short reason for an I/O error, without the "(os error N)" suffix.
pub fn io_reason(err: &std::io::Error) -> String {
    let s = err.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
