//! Coalescing file events: a burst of changes becomes one batch, handed
//! over once no new change came for the quiet period (or, for a burst that
//! never pauses, after the longest wait). Pure: time is passed in.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

/// The default quiet period (compose waits 500 ms).
pub const DEFAULT_QUIET: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Debouncer {
    quiet: Duration,
    max_wait: Duration,
    pending: BTreeSet<PathBuf>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Debouncer {
    /// Hands a batch over after `quiet` without changes, and at the latest
    /// 20 quiet periods (at least 2 s) after its first change, so that a
    /// tool writing without pause is still served.
    pub fn new(quiet: Duration) -> Self {
        Self {
            quiet,
            max_wait: (quiet * 20).max(Duration::from_secs(2)),
            pending: BTreeSet::new(),
            first: None,
            last: None,
        }
    }

    pub fn push(&mut self, path: PathBuf, now: Instant) {
        self.pending.insert(path);
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// When the pending batch is due, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + self.quiet).min(first + self.max_wait))
    }

    /// The batch, every distinct path once in sorted order, if it is due at
    /// `now`.
    pub fn take_due(&mut self, now: Instant) -> Option<Vec<PathBuf>> {
        if self.deadline()? > now {
            return None;
        }
        self.first = None;
        self.last = None;
        Some(std::mem::take(&mut self.pending).into_iter().collect())
    }
}
