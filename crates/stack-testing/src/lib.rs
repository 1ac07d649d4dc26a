//! What the tests of every crate share. Most integration tests make real
//! namespaces, cgroups, mounts and bridges and so need root (`scripts/test`
//! runs the whole suite as root); `cargo test` as a normal user still runs
//! every pure test and reports each root-only one as skipped, with the
//! reason, instead of failing it.
//!
//! libtest has no skipped outcome, so a skipped test passes and says so on
//! standard error, past the harness's output capture, so that the line is
//! seen in a normal run.

use std::io::Write;

/// Whether the tests run as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Reports the running test as skipped for `reason`.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    // `std::io::stderr()` is not captured by the harness, `eprintln!` is.
    let _ = writeln!(std::io::stderr(), "skipped {test}: {reason}");
}

/// Whether the running test may go on: true as root, else it is reported
/// as skipped.
pub fn root_or_skip() -> bool {
    let root = is_root();
    if !root {
        skip(
            "needs root (real namespaces, cgroups, mounts or bridges); scripts/test runs it as root",
        );
    }
    root
}

/// Returns from the calling test, reported as skipped, unless the tests run
/// as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::root_or_skip() {
            return;
        }
    };
}
