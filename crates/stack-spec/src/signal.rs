//! Signals as a stack file, the command line and the runtime's CLI name
//! them (`SIGTERM`, `term`, `15`): one parser, so that `stop_signal`,
//! `stack kill -s` and an image's `StopSignal` accept the same words and
//! refuse the same mistakes.

use std::str::FromStr;

pub use nix::sys::signal::Signal;

/// A word that names no signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("invalid signal number {0}")]
    Number(i32),
    #[error("invalid signal {0:?}")]
    Name(String),
}

/// `SIGHUP`, `hup`, `HUP` or `1`.
pub fn parse(s: &str) -> Result<Signal, SignalError> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| SignalError::Number(n));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| SignalError::Name(s.to_owned()))
}

/// [`parse`], as the signal's number.
pub fn number(s: &str) -> Result<i32, SignalError> {
    parse(s).map(|signal| signal as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(number("HUP"), Ok(1));
        assert_eq!(parse("sigusr1"), Ok(Signal::SIGUSR1));
        assert_eq!(parse("SIGTERM"), Ok(Signal::SIGTERM));
        assert_eq!(parse("9"), Ok(Signal::SIGKILL));
        assert_eq!(
            parse("SIGNOPE").unwrap_err().to_string(),
            "invalid signal \"SIGNOPE\""
        );
        assert_eq!(parse("999"), Err(SignalError::Number(999)));
        assert!(parse("").is_err());
    }
}
