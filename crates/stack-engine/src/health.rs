//! Health status from probe results, with Docker's rules, as a pure state
//! machine: the supervisor runs the probes and feeds their results here.
//!
//! - A container with a health check starts `starting`.
//! - One passing probe makes it `healthy`.
//! - `retries` consecutive failing probes make it `unhealthy`, except that
//!   failures during `start_period` do not count (a pass still does).
//! - Probes run every `interval`, or every `start_interval` during the start
//!   period; a probe that outlives `timeout` is a failure.
//! - The last five results are kept; `inspect` reads them from the health
//!   file, written when the status or the failing streak changes.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The file in a container's directory that holds its [`Health`].
pub const HEALTH_FILE: &str = "health.json";

/// Docker keeps this many probe results.
pub const KEPT_RESULTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Starting,
    Healthy,
    Unhealthy,
}

/// The numbers of one health check, defaults as Docker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
    pub start_interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            retries: 3,
            start_period: Duration::ZERO,
            start_interval: Duration::from_secs(5),
        }
    }
}

/// One probe's result as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Milliseconds after the container started.
    pub at_ms: u64,
    /// The probe's exit code; -1 for a timeout or a probe that could not run.
    pub exit_code: i32,
    /// The probe's output, cut to 4 KiB like Docker's.
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: Status,
    pub failing_streak: u32,
    pub log: VecDeque<Probe>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            status: Status::Starting,
            failing_streak: 0,
            log: VecDeque::new(),
        }
    }
}

const MAX_OUTPUT: usize = 4096;

impl Health {
    /// Records a probe result taken `since_start` after the container started.
    /// Returns the new status when it changed.
    pub fn record(
        &mut self,
        timing: &Timing,
        since_start: Duration,
        exit_code: i32,
        output: &str,
    ) -> Option<Status> {
        let mut output = output.to_owned();
        if output.len() > MAX_OUTPUT {
            let mut cut = MAX_OUTPUT;
            while !output.is_char_boundary(cut) {
                cut -= 1;
            }
            output.truncate(cut);
        }
        if self.log.len() == KEPT_RESULTS {
            self.log.pop_front();
        }
        self.log.push_back(Probe {
            at_ms: since_start.as_millis() as u64,
            exit_code,
            output,
        });

        let before = self.status;
        if exit_code == 0 {
            self.failing_streak = 0;
            self.status = Status::Healthy;
        } else if since_start >= timing.start_period || self.status != Status::Starting {
            self.failing_streak += 1;
            if self.failing_streak >= timing.retries.max(1) {
                self.status = Status::Unhealthy;
            }
        }
        (self.status != before).then_some(self.status)
    }

    /// What readers of the health file (`ps`, `inspect`) must see current:
    /// the status and the failing streak. A passing probe of a healthy
    /// container changes neither, so it need not be written down.
    pub fn summary(&self) -> Summary {
        Summary {
            status: self.status,
            failing_streak: self.failing_streak,
        }
    }
}

/// The part of [`Health`] whose change is written to the health file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub status: Status,
    pub failing_streak: u32,
}

/// How long to wait before the next probe.
pub fn next_probe_in(timing: &Timing, since_start: Duration) -> Duration {
    if since_start < timing.start_period {
        timing
            .start_interval
            .min(timing.start_period - since_start)
            .max(Duration::from_millis(1))
    } else {
        timing.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn one_pass_makes_healthy_and_retries_failures_unhealthy() {
        let timing = Timing {
            retries: 3,
            ..Timing::default()
        };
        let mut h = Health::default();
        assert_eq!(h.record(&timing, secs(1), 0, "PONG"), Some(Status::Healthy));
        assert_eq!(h.record(&timing, secs(2), 1, "no"), None);
        assert_eq!(h.record(&timing, secs(3), 1, "no"), None);
        assert_eq!(h.record(&timing, secs(4), 1, "no"), Some(Status::Unhealthy));
        assert_eq!(h.failing_streak, 3);
        assert_eq!(h.record(&timing, secs(5), 0, ""), Some(Status::Healthy));
        assert_eq!(h.failing_streak, 0);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let timing = Timing {
            retries: 1,
            start_period: secs(10),
            ..Timing::default()
        };
        let mut h = Health::default();
        for t in 0..10 {
            assert_eq!(h.record(&timing, secs(t), 1, "booting"), None);
        }
        assert_eq!(h.status, Status::Starting);
        assert_eq!(
            h.record(&timing, secs(10), 1, "dead"),
            Some(Status::Unhealthy)
        );
    }

    #[test]
    fn a_pass_in_the_start_period_counts_and_later_failures_too() {
        let timing = Timing {
            retries: 2,
            start_period: secs(60),
            ..Timing::default()
        };
        let mut h = Health::default();
        assert_eq!(h.record(&timing, secs(1), 0, ""), Some(Status::Healthy));
        h.record(&timing, secs(2), 1, "");
        assert_eq!(h.record(&timing, secs(3), 1, ""), Some(Status::Unhealthy));
    }

    #[test]
    fn keeps_the_last_five_results_and_cuts_output() {
        let mut h = Health::default();
        let long = "x".repeat(10_000);
        for t in 0..8 {
            h.record(&Timing::default(), secs(t), 0, &long);
        }
        assert_eq!(h.log.len(), KEPT_RESULTS);
        assert_eq!(h.log.front().unwrap().at_ms, 3000);
        assert!(h.log.iter().all(|p| p.output.len() == 4096));
    }

    #[test]
    fn the_summary_changes_with_status_and_failures_not_with_passes() {
        let timing = Timing {
            retries: 2,
            ..Timing::default()
        };
        let mut h = Health::default();
        let mut summaries = vec![h.summary()];
        for (t, code) in [0, 0, 0, 1, 1, 1, 0, 0].into_iter().enumerate() {
            h.record(&timing, secs(t as u64), code, "");
            if summaries.last() != Some(&h.summary()) {
                summaries.push(h.summary());
            }
        }
        let shown: Vec<(Status, u32)> = summaries
            .iter()
            .map(|s| (s.status, s.failing_streak))
            .collect();
        assert_eq!(
            shown,
            [
                (Status::Starting, 0),
                (Status::Healthy, 0),
                (Status::Healthy, 1),
                (Status::Unhealthy, 2),
                (Status::Unhealthy, 3),
                (Status::Healthy, 0),
            ]
        );
    }

    #[test]
    fn probes_run_faster_during_the_start_period() {
        let timing = Timing {
            interval: secs(30),
            start_period: secs(10),
            start_interval: secs(2),
            ..Timing::default()
        };
        assert_eq!(next_probe_in(&timing, secs(0)), secs(2));
        assert_eq!(next_probe_in(&timing, secs(9)), secs(1));
        assert_eq!(next_probe_in(&timing, secs(10)), secs(30));
    }
}

/// A health check ready to run: the probe's argv inside the container and
/// its timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub argv: Vec<String>,
    pub timing: Timing,
}

/// The service's `healthcheck:` over the image's HEALTHCHECK, field by field
/// as Docker does; `None` when there is no test or it is `NONE`/disabled.
pub fn resolve_check(
    service: Option<&stack_spec::Healthcheck>,
    image: Option<&stack_image::model::Healthcheck>,
) -> Option<Check> {
    if service.is_some_and(|s| s.disable) {
        return None;
    }
    let test = service
        .and_then(|s| s.test.clone())
        .or_else(|| image.and_then(|i| i.test.clone()))?;
    let argv = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
        Some("NONE") | None => return None,
        // A bare string in the file is a shell command.
        Some(_) => vec!["/bin/sh".into(), "-c".into(), test.join(" ")],
    };
    if argv.is_empty() {
        return None;
    }
    let defaults = Timing::default();
    // The image's numbers are nanoseconds; 0 means "not set".
    let from_image = |get: fn(&stack_image::model::Healthcheck) -> Option<u64>| {
        image
            .and_then(get)
            .filter(|&ns| ns > 0)
            .map(Duration::from_nanos)
    };
    let pick = |svc: Option<Duration>, img: Option<Duration>, default: Duration| {
        svc.or(img).unwrap_or(default)
    };
    let s = service;
    Some(Check {
        argv,
        timing: Timing {
            interval: pick(
                s.and_then(|s| s.interval).map(|d| d.as_duration()),
                from_image(|i| i.interval),
                defaults.interval,
            ),
            timeout: pick(
                s.and_then(|s| s.timeout).map(|d| d.as_duration()),
                from_image(|i| i.timeout),
                defaults.timeout,
            ),
            retries: s
                .and_then(|s| s.retries)
                .or(image.and_then(|i| i.retries).filter(|&r| r > 0))
                .unwrap_or(defaults.retries),
            start_period: pick(
                s.and_then(|s| s.start_period).map(|d| d.as_duration()),
                from_image(|i| i.start_period),
                defaults.start_period,
            ),
            start_interval: pick(
                s.and_then(|s| s.start_interval).map(|d| d.as_duration()),
                from_image(|i| i.start_interval),
                defaults.start_interval,
            ),
        },
    })
}
