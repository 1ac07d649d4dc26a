//! Fault injection for crash tests: `point("name")` stops the calling
//! process exactly where `STACK_FAULT` names, so a test can crash the
//! supervisor (or the log keeper, or the client) between two on-disk steps.
//! Compiled in only with the `fault-injection` feature (the test build);
//! otherwise `point` is empty and no variable is ever read.
//!
//! - `STACK_FAULT=<step>`: the process kills itself with `SIGKILL` there.
//! - with `STACK_FAULT_PAUSE=<dir>` as well: the first process to get
//!   there creates `<dir>/<step>`, writes its pid into it and stops itself
//!   with `SIGSTOP`, so the test chooses what to kill at that moment and
//!   continues the process (`SIGCONT`) if it lives on. Later processes (a
//!   supervisor started again by the client) pass the step: the file
//!   exists.

/// A named place where a crash must be recoverable.
#[inline]
pub fn point(name: &str) {
    #[cfg(feature = "fault-injection")]
    armed::hit(name);
    #[cfg(not(feature = "fault-injection"))]
    let _ = name;
}

#[cfg(feature = "fault-injection")]
mod armed {
    use std::io::Write;

    use nix::sys::signal::{Signal, raise};

    pub fn hit(name: &str) {
        if !std::env::var("STACK_FAULT").is_ok_and(|armed| armed == name) {
            return;
        }
        let Some(dir) = std::env::var_os("STACK_FAULT_PAUSE") else {
            let _ = raise(Signal::SIGKILL);
            return;
        };
        let marker = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(std::path::Path::new(&dir).join(name));
        if let Ok(mut marker) = marker {
            let _ = write!(marker, "{}", std::process::id());
            drop(marker);
            let _ = raise(Signal::SIGSTOP);
        }
    }
}
