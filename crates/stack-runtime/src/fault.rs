//! Fault injection for crash tests: `point("name")` kills the calling
//! process with `SIGKILL` when `STACK_FAULT` names that point, so a test can
//! crash the supervisor exactly between two on-disk steps. Compiled in only
//! with the `fault-injection` feature (the test build); otherwise `point`
//! is empty and the variable is never read.

/// A named place where a crash must be recoverable.
#[inline]
pub fn point(name: &str) {
    #[cfg(feature = "fault-injection")]
    if std::env::var("STACK_FAULT").is_ok_and(|armed| armed == name) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = name;
}
