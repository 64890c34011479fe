//! The agent's runtime error: one line of text, outermost context first (`context: cause`).
//!
//! It replaces `anyhow`, whose `std` support captures a `std::backtrace::Backtrace` in every
//! error and formats cause chains generically (≈13 KB of the router build, see
//! docs/BENCHMARKS.md). The agent only ever prints the whole chain on one line (`{e}`, as
//! anyhow's `{e:#}` did), so the chain is flattened into the text when the error is made.

use core::fmt;

/// An error message with its causes, `outer: inner: …`.
#[derive(Debug)]
pub struct Error(String);

/// `Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// An error from a message.
    #[must_use]
    pub fn msg(m: impl fmt::Display) -> Error {
        Error(m.to_string())
    }

    /// The error as `context: self`.
    #[must_use]
    pub fn context(self, context: &str) -> Error {
        let mut s = String::with_capacity(context.len() + 2 + self.0.len());
        s.push_str(context);
        s.push_str(": ");
        s.push_str(&self.0);
        Error(s)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// For callers that return `Box<dyn std::error::Error>` (the one-shot commands).
impl From<Error> for Box<dyn std::error::Error> {
    fn from(e: Error) -> Self {
        e.0.into()
    }
}

/// Any standard error, with its `source()` chain joined by `: `.
impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Error {
        chain(&e)
    }
}

fn chain(e: &dyn std::error::Error) -> Error {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    Error(s)
}

/// Adds context to a failed `Result` or a `None`, like `anyhow::Context`.
pub trait Context<T> {
    /// Wraps the error (or `None`) as `context: error`.
    ///
    /// # Errors
    /// When `self` is an error or `None`.
    fn context(self, context: &str) -> Result<T>;

    /// [`Context::context`] with the context made only on failure.
    ///
    /// # Errors
    /// When `self` is an error or `None`.
    fn with_context(self, f: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for core::result::Result<T, E> {
    fn context(self, context: &str) -> Result<T> {
        self.map_err(|e| e.into().context(context))
    }

    fn with_context(self, f: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.into().context(&f()))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: &str) -> Result<T> {
        self.ok_or_else(|| Error::msg(context))
    }

    fn with_context(self, f: impl FnOnce() -> String) -> Result<T> {
        self.ok_or_else(|| Error(f()))
    }
}

#[cfg(test)]
mod tests {
    use super::{Context as _, Error, Result};

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl core::fmt::Display for Outer {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("outer")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn chain_and_context_print_on_one_line() {
        let io = std::io::Error::other("disk on fire");
        let r: Result<()> = Err(Outer(io)).context("spool /tmp/x");
        assert_eq!(
            r.unwrap_err().to_string(),
            "spool /tmp/x: outer: disk on fire"
        );
        let r: Result<()> = Err(Error::msg("inner")).with_context(|| "a".into());
        assert_eq!(r.unwrap_err().to_string(), "a: inner");
        assert_eq!(
            None::<u8>.context("not set").unwrap_err().to_string(),
            "not set"
        );
    }
}
