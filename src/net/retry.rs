//! The one retry policy: which failures are worth another attempt (408, 429,
//! 5xx, and connections that could not be made or broke), how long to wait
//! (exponential backoff with ±50 % jitter, or the server's `Retry-After` up
//! to a cap when that is longer), a visible "waiting N s for …" line for
//! waits of a second or more, and a final error that names the request and
//! the attempts made.

use std::future::Future;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::error::Error;

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff; each further one doubles, up to [`Policy::max_backoff`].
    pub backoff: Duration,
    /// The longest backoff (before jitter).
    pub max_backoff: Duration,
    /// The longest wait a `Retry-After` answer gets.
    pub retry_after_cap: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempts: 6,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(60),
        }
    }
}

/// The outcome of one failed attempt.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong (naming the peer and the request).
    pub error: Error,
    /// Whether another attempt may help.
    pub retryable: bool,
    /// How long the server asked to wait (`Retry-After`), uncapped.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure no retry helps.
    pub fn fatal(error: Error) -> Self {
        Failure { error, retryable: false, retry_after: None }
    }
    /// A failure another attempt may get past.
    pub fn transient(error: Error, retry_after: Option<Duration>) -> Self {
        Failure { error, retryable: true, retry_after }
    }
}

/// Whether an HTTP status is worth retrying: 408, 429 and 5xx.
pub fn retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// How long a `Retry-After` header asks to wait (delay-seconds or an
/// HTTP date; a date in the past means no wait), uncapped.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// What a `Retry-After` wait was for, when shown.
fn wait_line(wait: Duration, what: &str, failure: &Failure, attempt: u32, attempts: u32) -> String {
    let asked = match failure.retry_after {
        Some(ra) if ra > wait => format!("; the server asked for {} s (Retry-After), capped", ra.as_secs()),
        Some(ra) if ra == wait => "; the server asked for it (Retry-After)".to_string(),
        _ => String::new(),
    };
    format!(
        "waiting {} s for attempt {} of {attempts} at {what} ({}{asked})",
        wait.as_secs_f64().ceil() as u64,
        attempt + 1,
        failure.error
    )
}

impl Policy {
    /// The wait before retry number `attempt` (1 for the first retry):
    /// exponential backoff with ±50 % jitter, or the server's `Retry-After`
    /// (up to the cap) when that is longer.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(6));
        let backoff = exp.min(self.max_backoff).mul_f64(0.5 + fastrand::f64());
        match retry_after {
            Some(ra) => ra.min(self.retry_after_cap).max(backoff),
            None => backoff,
        }
    }

    /// Sleeps before retry number `attempt` of `what` after `failure`; a
    /// wait of a second or more is reported as a message, a shorter one as a detail.
    pub async fn pause(&self, attempt: u32, what: &str, failure: &Failure) {
        let wait = self.delay(attempt, failure.retry_after);
        let line = wait_line(wait, what, failure, attempt, self.attempts);
        if wait >= Duration::from_secs(1) {
            crate::progress::message(&line);
        } else {
            crate::progress::detail(&line);
        }
        tokio::time::sleep(wait).await;
    }

    /// Runs `attempt` until it succeeds, fails for good, or the attempts are
    /// used up; the last error then says so and names `what`.
    pub async fn run<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut last: Option<Failure> = None;
        for n in 0..self.attempts.max(1) {
            if let Some(f) = &last {
                self.pause(n, what, f).await;
            }
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(f) if f.retryable => last = Some(f),
                Err(f) => return Err(f.error),
            }
        }
        Err(self.gave_up(last.expect("at least one attempt"), what))
    }

    /// The final error after every attempt failed with `last`.
    pub fn gave_up(&self, last: Failure, what: &str) -> Error {
        let e = last.error;
        if e.message().contains(what) {
            e.context(format!("gave up after {} attempts", self.attempts))
        } else {
            e.context(format!("{what}: gave up after {} attempts", self.attempts))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_doubles_with_jitter_and_stays_capped() {
        let p = Policy { backoff: Duration::from_millis(100), ..Policy::default() };
        for _ in 0..50 {
            let d = p.delay(3, None);
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(600), "{d:?}");
            let d = p.delay(1, None);
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(150), "{d:?}");
            let far = p.delay(30, None);
            assert!(far <= Duration::from_secs(15), "the backoff is capped before jitter: {far:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = Policy::default();
        assert_eq!(p.delay(1, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(p.delay(4, Some(Duration::from_secs(3600))), Duration::from_secs(60));
        let short = Policy { retry_after_cap: Duration::from_secs(5), ..p };
        assert_eq!(short.delay(1, Some(Duration::from_secs(60))), Duration::from_secs(5));
        // A Retry-After of 0 (or a date gone by) does not make the retries hammer.
        for _ in 0..20 {
            let d = p.delay(3, Some(Duration::ZERO));
            assert!(d >= Duration::from_millis(400) && d <= Duration::from_millis(1200), "{d:?}");
        }
    }

    fn header(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn retry_after_seconds_or_date() {
        assert_eq!(retry_after(&header("120")), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&header(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&header("-3")), None);
        assert_eq!(retry_after(&header("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = retry_after(&header(&later)).unwrap();
        assert!(d > Duration::from_secs(27) && d <= Duration::from_secs(30), "{d:?}");
        assert_eq!(retry_after(&header("Sun, 06 Nov 1994 08:49:37 GMT")), Some(Duration::ZERO));
    }

    #[test]
    fn statuses_worth_retrying() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 201, 301, 400, 401, 403, 404, 409, 413, 600] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[test]
    fn the_wait_line_says_how_long_what_for_and_why() {
        let f = Failure::transient(Error::source("reg.example: PUT /v2/a/manifests/1: 429 Too Many Requests"), None);
        let line = wait_line(Duration::from_millis(1500), "PUT /v2/a/manifests/1", &f, 1, 6);
        assert_eq!(
            line,
            "waiting 2 s for attempt 2 of 6 at PUT /v2/a/manifests/1 (reg.example: PUT /v2/a/manifests/1: 429 Too Many Requests)"
        );
        let asked = Failure { retry_after: Some(Duration::from_secs(3)), ..f };
        let line = wait_line(Duration::from_secs(3), "x", &asked, 1, 6);
        assert!(line.ends_with("; the server asked for it (Retry-After))"), "{line}");
        let f = Failure { retry_after: Some(Duration::from_secs(300)), ..asked };
        let line = wait_line(Duration::from_secs(60), "x", &f, 2, 6);
        assert!(line.starts_with("waiting 60 s for attempt 3 of 6 at x ("), "{line}");
        assert!(line.ends_with("the server asked for 300 s (Retry-After), capped)"), "{line}");
    }

    #[test]
    fn run_retries_transient_failures_and_names_the_request_when_it_gives_up() {
        let p = Policy { attempts: 3, backoff: Duration::from_millis(1), ..Policy::default() };
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let calls = std::cell::Cell::new(0);
        let out: Result<u32, Error> = rt.block_on(p.run("GET /v2/", || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(Failure::transient(Error::source("reg: 503 Service Unavailable"), None))
                } else {
                    Ok(n)
                }
            }
        }));
        assert_eq!(out.unwrap(), 3);
        calls.set(0);
        let e = rt
            .block_on(p.run("GET /v2/", || {
                calls.set(calls.get() + 1);
                async { Err::<(), _>(Failure::transient(Error::source("reg: 503 Service Unavailable"), None)) }
            }))
            .unwrap_err();
        assert_eq!(calls.get(), 3);
        assert_eq!(e.message(), "GET /v2/: gave up after 3 attempts: reg: 503 Service Unavailable");
        calls.set(0);
        let e = rt
            .block_on(p.run("GET /v2/", || {
                calls.set(calls.get() + 1);
                async { Err::<(), _>(Failure::fatal(Error::source("reg: GET /v2/: 400 Bad Request"))) }
            }))
            .unwrap_err();
        assert_eq!((calls.get(), e.message().as_str()), (1, "reg: GET /v2/: 400 Bad Request"));
    }
}
