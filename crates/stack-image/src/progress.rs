//! Pull progress: one bar per layer on a terminal, plain lines otherwise.

/// `eprintln!` without its panic when standard error cannot be written
/// (a full disk under a redirected stderr): progress is not worth dying for.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::digest::Digest;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, lines otherwise.
    #[default]
    Auto,
    Bars,
    Lines,
    Quiet,
}

pub(crate) struct Progress {
    multi: Option<MultiProgress>,
    lines: bool,
}

impl Progress {
    pub(crate) fn new(mode: ProgressMode) -> Self {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bars,
            ProgressMode::Auto => ProgressMode::Lines,
            m => m,
        };
        Self {
            multi: (mode == ProgressMode::Bars)
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            lines: mode == ProgressMode::Lines,
        }
    }

    pub(crate) fn line(&self, msg: &str) {
        if let Some(m) = &self.multi {
            let _ = m.println(msg);
        } else if self.lines {
            say!("{msg}");
        }
    }

    pub(crate) fn layer(&self, digest: &Digest, size: u64) -> LayerProgress {
        let label = digest.short().to_owned();
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::new(size));
            b.set_style(
                ProgressStyle::with_template("{prefix}: {bar:30} {bytes}/{total_bytes} {msg}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            b.set_prefix(label.clone());
            b
        });
        LayerProgress {
            bar,
            lines: self.lines,
            label,
            size,
        }
    }
}

pub(crate) struct LayerProgress {
    bar: Option<ProgressBar>,
    lines: bool,
    label: String,
    size: u64,
}

impl LayerProgress {
    pub(crate) fn start(&self, offset: u64) {
        if let Some(b) = &self.bar {
            b.set_position(offset);
        } else if self.lines {
            if offset > 0 {
                say!(
                    "{}: resuming at {offset} of {} bytes",
                    self.label,
                    self.size
                );
            } else {
                say!("{}: downloading {} bytes", self.label, self.size);
            }
        }
    }

    pub(crate) fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    pub(crate) fn finish(&self, msg: &'static str) {
        if let Some(b) = &self.bar {
            b.finish_with_message(msg);
        } else if self.lines {
            say!("{}: {msg}", self.label);
        }
    }
}
