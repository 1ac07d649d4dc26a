//! Restart decisions with Docker's semantics and numbers, as pure functions.
//!
//! Docker restarts a container after an exit according to its policy, waiting
//! 100 ms before the first restart and doubling the wait up to one minute; a
//! container that ran for at least ten seconds counts as healthy again and its
//! wait starts over at 100 ms. A container the user stopped is never restarted
//! by the policy (`unless-stopped` remembers that across supervisor restarts).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A service's restart settings as the monitor applies them.
pub use crate::host::{backoff, restart_on_unhealthy, restart_policy};

/// What the service asked for with `restart:` or `deploy.restart_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    No,
    Always,
    /// Restart only after a non-zero exit; `max_retries: None` means no limit.
    OnFailure {
        max_retries: Option<u32>,
    },
    UnlessStopped,
    /// `deploy.restart_policy` with `condition: any` and `max_attempts`:
    /// every exit restarts, but only so many times in a row (swarm's rule).
    Any {
        max_attempts: u32,
    },
}

/// How a container's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Killed by the kernel's OOM killer (reported by the cgroup).
    OomKilled,
    /// It ended while no supervisor watched it, so its status is lost.
    Unknown,
}

impl Exit {
    /// The exit code Docker reports: the process's code, or 128 + signal.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(sig) => 128 + sig,
            Exit::OomKilled => 128 + 9,
            // What Docker reports for a container that died while the
            // daemon was away.
            Exit::Unknown => 255,
        }
    }

    pub fn is_success(self) -> bool {
        self.code() == 0
    }
}

/// The backoff numbers. `Default` is Docker's: 100 ms doubling to 60 s, reset
/// after 10 s of running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

impl Backoff {
    /// `deploy.restart_policy`'s numbers: the same `delay` before every
    /// restart (swarm does not double it), and a run of `window` counts as
    /// a success that starts the attempt count over.
    pub fn fixed(delay: Duration, window: Duration) -> Self {
        Self {
            initial: delay,
            max: delay,
            reset_after: window,
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(10),
        }
    }
}

/// What the supervisor remembers about one container between its exits
/// (kept in the container's record, so a new supervisor continues it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartState {
    /// Restarts done by the policy since the container was created.
    pub restart_count: u32,
    /// Consecutive failed restarts that count against `on-failure:N`.
    pub failure_count: u32,
    /// The wait before the previous restart; `None` before the first one.
    pub last_delay: Option<Duration>,
    /// The user stopped or killed the container on purpose.
    pub stopped_by_user: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start the container again after waiting this long.
    Restart { after: Duration },
    /// Leave it exited.
    Stay(StayReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StayReason {
    PolicyNo,
    StoppedByUser,
    ExitedSuccessfully,
    MaxRetriesReached,
}

/// Decides what to do after `exit`, given how long the container ran before
/// it. Returns the decision and the state to remember if the restart happens.
pub fn decide(
    policy: RestartPolicy,
    backoff: &Backoff,
    state: &RestartState,
    exit: Exit,
    ran_for: Duration,
) -> (Decision, RestartState) {
    let stay = |reason| (Decision::Stay(reason), *state);
    if state.stopped_by_user {
        return stay(StayReason::StoppedByUser);
    }
    // A run long enough counts as a recovery: the wait and the failure streak
    // start over, as in Docker.
    let recovered = ran_for >= backoff.reset_after;
    let mut failure_count = if recovered { 0 } else { state.failure_count };
    match policy {
        RestartPolicy::No => return stay(StayReason::PolicyNo),
        RestartPolicy::OnFailure { max_retries } => {
            if exit.is_success() {
                return stay(StayReason::ExitedSuccessfully);
            }
            if let Some(max) = max_retries.filter(|&max| max > 0)
                && failure_count >= max
            {
                return stay(StayReason::MaxRetriesReached);
            }
            failure_count += 1;
        }
        RestartPolicy::Any { max_attempts } => {
            if max_attempts > 0 && failure_count >= max_attempts {
                return stay(StayReason::MaxRetriesReached);
            }
            failure_count += 1;
        }
        RestartPolicy::Always | RestartPolicy::UnlessStopped => {}
    }
    let after = match state.last_delay {
        Some(last) if !recovered => (last * 2).min(backoff.max),
        _ => backoff.initial,
    };
    let next = RestartState {
        restart_count: state.restart_count + 1,
        failure_count,
        last_delay: Some(after),
        stopped_by_user: false,
    };
    (Decision::Restart { after }, next)
}

/// Whether the policy brings the container back when the supervisor (or the
/// host) starts again: Docker's `always` does even after a user stop;
/// `unless-stopped` does unless the user stopped it.
pub fn start_on_boot(policy: RestartPolicy, stopped_by_user: bool) -> bool {
    match policy {
        RestartPolicy::Always | RestartPolicy::Any { .. } => true,
        RestartPolicy::UnlessStopped => !stopped_by_user,
        RestartPolicy::No | RestartPolicy::OnFailure { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_millis(50);

    fn run(policy: RestartPolicy, exits: &[Exit]) -> Vec<Decision> {
        let backoff = Backoff::default();
        let mut state = RestartState::default();
        let mut out = Vec::new();
        for &exit in exits {
            let (decision, next) = decide(policy, &backoff, &state, exit, QUICK);
            out.push(decision);
            if matches!(decision, Decision::Restart { .. }) {
                state = next;
            }
        }
        out
    }

    fn ms(n: u64) -> Decision {
        Decision::Restart {
            after: Duration::from_millis(n),
        }
    }

    #[test]
    fn policy_no_never_restarts() {
        for exit in [Exit::Code(0), Exit::Code(3), Exit::OomKilled] {
            assert_eq!(
                run(RestartPolicy::No, &[exit]),
                [Decision::Stay(StayReason::PolicyNo)]
            );
        }
    }

    #[test]
    fn always_restarts_on_success_failure_and_oom() {
        let got = run(
            RestartPolicy::Always,
            &[Exit::Code(0), Exit::Code(3), Exit::OomKilled],
        );
        assert_eq!(got, [ms(100), ms(200), ms(400)]);
    }

    #[test]
    fn on_failure_ignores_success_and_counts_failures() {
        let policy = RestartPolicy::OnFailure {
            max_retries: Some(2),
        };
        assert_eq!(
            run(policy, &[Exit::Code(0)]),
            [Decision::Stay(StayReason::ExitedSuccessfully)]
        );
        assert_eq!(
            run(policy, &[Exit::Code(3), Exit::OomKilled, Exit::Code(3)]),
            [
                ms(100),
                ms(200),
                Decision::Stay(StayReason::MaxRetriesReached)
            ]
        );
    }

    #[test]
    fn on_failure_zero_means_unlimited() {
        let policy = RestartPolicy::OnFailure {
            max_retries: Some(0),
        };
        let got = run(policy, &[Exit::Code(1); 20]);
        assert!(got.iter().all(|d| matches!(d, Decision::Restart { .. })));
    }

    #[test]
    fn backoff_doubles_to_sixty_seconds() {
        let got = run(RestartPolicy::Always, &[Exit::Code(1); 14]);
        let delays: Vec<u64> = got
            .iter()
            .map(|d| match d {
                Decision::Restart { after } => after.as_millis() as u64,
                Decision::Stay(r) => panic!("unexpected stay: {r:?}"),
            })
            .collect();
        assert_eq!(
            delays,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000, 60000,
                60000
            ]
        );
    }

    #[test]
    fn ten_seconds_of_running_resets_backoff_and_failures() {
        let backoff = Backoff::default();
        let policy = RestartPolicy::OnFailure {
            max_retries: Some(2),
        };
        let s0 = RestartState::default();
        let (_, s1) = decide(policy, &backoff, &s0, Exit::Code(1), QUICK);
        let (_, s2) = decide(policy, &backoff, &s1, Exit::Code(1), QUICK);
        assert_eq!(s2.failure_count, 2);
        // Just under the threshold: still capped.
        let (d, _) = decide(
            policy,
            &backoff,
            &s2,
            Exit::Code(1),
            Duration::from_millis(9_999),
        );
        assert_eq!(d, Decision::Stay(StayReason::MaxRetriesReached));
        // At the threshold: a fresh start.
        let (d, s3) = decide(
            policy,
            &backoff,
            &s2,
            Exit::Code(1),
            Duration::from_secs(10),
        );
        assert_eq!(d, ms(100));
        assert_eq!(s3.failure_count, 1);
        assert_eq!(s3.restart_count, 3);
    }

    #[test]
    fn user_stop_wins_over_every_policy() {
        let state = RestartState {
            stopped_by_user: true,
            ..RestartState::default()
        };
        for policy in [
            RestartPolicy::Always,
            RestartPolicy::UnlessStopped,
            RestartPolicy::OnFailure { max_retries: None },
        ] {
            let (d, _) = decide(policy, &Backoff::default(), &state, Exit::Signal(15), QUICK);
            assert_eq!(d, Decision::Stay(StayReason::StoppedByUser));
        }
    }

    #[test]
    fn boot_start_follows_docker() {
        assert!(start_on_boot(RestartPolicy::Always, true));
        assert!(start_on_boot(RestartPolicy::UnlessStopped, false));
        assert!(!start_on_boot(RestartPolicy::UnlessStopped, true));
        assert!(!start_on_boot(RestartPolicy::No, false));
        assert!(!start_on_boot(
            RestartPolicy::OnFailure { max_retries: None },
            false
        ));
    }

    #[test]
    fn any_with_max_attempts_counts_every_exit() {
        let policy = RestartPolicy::Any { max_attempts: 2 };
        assert_eq!(
            run(policy, &[Exit::Code(0), Exit::Code(0), Exit::Code(0)]),
            [
                ms(100),
                ms(200),
                Decision::Stay(StayReason::MaxRetriesReached)
            ]
        );
        assert!(start_on_boot(policy, true));
    }

    #[test]
    fn a_fixed_delay_does_not_double() {
        let backoff = Backoff::fixed(Duration::from_secs(2), Duration::from_secs(30));
        let mut state = RestartState::default();
        for _ in 0..4 {
            let (d, next) = decide(
                RestartPolicy::Always,
                &backoff,
                &state,
                Exit::Code(1),
                QUICK,
            );
            assert_eq!(d, ms(2000));
            state = next;
        }
        let (d, next) = decide(
            RestartPolicy::Any { max_attempts: 5 },
            &backoff,
            &state,
            Exit::Code(1),
            Duration::from_secs(30),
        );
        assert_eq!(d, ms(2000));
        assert_eq!(
            next.failure_count, 1,
            "a run as long as the window resets the count"
        );
    }

    #[test]
    fn exit_codes_match_docker() {
        assert_eq!(Exit::Unknown.code(), 255);
        assert!(!Exit::Unknown.is_success());
        assert_eq!(Exit::Signal(15).code(), 143);
        assert_eq!(Exit::OomKilled.code(), 137);
        assert!(!Exit::OomKilled.is_success());
    }
}
