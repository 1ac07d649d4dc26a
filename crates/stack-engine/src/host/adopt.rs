//! Taking over a project's containers after a supervisor restart: running
//! ones are watched again without being touched, ones that waited for a
//! restart keep their backoff, ones that died while nobody watched get an
//! exit recorded as unknown (or as an OOM kill, which their cgroup still
//! tells) and their policy applied.

use std::sync::Arc;
use std::time::Duration;

use stack_runtime::Container;

use super::Host;
use super::launch::{now_ms, restart_policy};
use crate::observed::ContainerState;
use crate::restart::start_on_boot;
use crate::store::{ContainerRecord, LastExit};
use crate::supervise::Begin;

/// How a monitor takes up a container found in `record`, `now_ms` being
/// the wall clock; `alive` says whether its recorded process still runs.
/// `None`: leave it unwatched (never started).
pub fn begin_for(
    record: &ContainerRecord,
    alive: bool,
    boot_start: bool,
    now_ms: u64,
) -> Option<Begin> {
    match (record.state, record.pid) {
        (ContainerState::Created, _) => None,
        (_, Some(pid)) if alive => Some(Begin::Adopt(pid)),
        (ContainerState::Restarting, _) if !record.stopped_by_user => {
            let due = record.next_attempt_ms.unwrap_or(now_ms);
            let wait = Duration::from_millis(due.saturating_sub(now_ms));
            Some(Begin::RestartAt(tokio::time::Instant::now() + wait))
        }
        (ContainerState::Running | ContainerState::Paused, _) => {
            let ran_for = record
                .started_ms
                .map(|s| Duration::from_millis(now_ms.saturating_sub(s)))
                .unwrap_or_default();
            Some(Begin::ExitedUnseen { ran_for })
        }
        _ if boot_start => Some(Begin::Start),
        _ => Some(Begin::Idle),
    }
}

impl Host {
    /// Rolls back containers whose create was cut short by a crash (see
    /// `stack_runtime::recover`): at supervisor start and at `down`, so
    /// that neither a later create of the same container nor `down` meets
    /// them. Failures are logged: recovery is retried at the next start.
    pub async fn recover_runtime(&self) {
        let root = self.runtime_root();
        match tokio::task::spawn_blocking(move || stack_runtime::recover(&root)).await {
            Ok(Ok(ids)) => {
                for id in ids {
                    tracing::warn!("rolled back container {id}, whose create was interrupted");
                }
            }
            Ok(Err(e)) => tracing::warn!("recovering half-made containers: {e}"),
            Err(e) => tracing::warn!("recovering half-made containers: {e}"),
        }
    }

    /// Watches every container of the project again (see the module).
    pub async fn adopt_all(self: &Arc<Self>) {
        let project = self.project();
        let records = self.records().containers(&project.name).unwrap_or_default();
        // Containers started again here are running before the supervisor
        // answers its first request, as after a Docker daemon restart.
        let mut starts = tokio::task::JoinSet::new();
        for mut record in records {
            let Some(service) = project.services.get(&record.service) else {
                continue;
            };
            let boot = start_on_boot(restart_policy(service), record.stopped_by_user);
            let Some(begin) = begin_for(&record, record.is_alive(), boot, now_ms()) else {
                continue;
            };
            if let Begin::ExitedUnseen { .. } = begin {
                self.record_unseen_exit(&mut record);
            }
            if begin == Begin::Start {
                let host = self.clone();
                starts.spawn(async move {
                    if let Err(e) = host.run(&record.name).await {
                        tracing::warn!("starting {} again: {e}", record.name);
                    }
                });
                continue;
            }
            if let Err(e) = self.watch(&record.name, begin) {
                tracing::warn!("adopting {}: {e}", record.name);
            }
            if let Begin::Adopt(pid) = begin {
                let handover = self.handover(&record.name, service);
                self.keep_adopted_pipes(&record.name, pid, handover);
            }
        }
        while starts.join_next().await.is_some() {}
    }

    /// The exit of a container that died while no supervisor watched it:
    /// its status went to whoever reaped it, but an OOM kill is still
    /// counted by its cgroup.
    fn record_unseen_exit(&self, record: &mut ContainerRecord) {
        let oom = Container::load(&self.runtime_root(), &record.id)
            .map(|c| c.cgroup().oom_kills() > 0)
            .unwrap_or(false);
        record.state = ContainerState::Exited;
        record.pid = None;
        record.pid_start_time = None;
        record.push_exit(LastExit {
            code: oom.then_some(137),
            oom_killed: oom,
            at_ms: now_ms(),
            started_ms: record.started_ms,
        });
        if let Err(e) = self.store.save(record) {
            tracing::warn!("saving {}: {e}", record.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restart::RestartState;

    fn record(state: ContainerState) -> ContainerRecord {
        ContainerRecord {
            id: "0".repeat(64),
            name: "p-web-1".into(),
            project: "p".into(),
            service: "web".into(),
            number: 1,
            config_hash: String::new(),
            config: serde_json::Value::Null,
            image: "busybox".into(),
            image_digest: None,
            created_ms: 1_000,
            state,
            pid: Some(42),
            pid_start_time: Some(7),
            restart_count: 3,
            stopped_by_user: false,
            last_exit: None,
            started_ms: Some(5_000),
            restart: RestartState::default(),
            next_attempt_ms: Some(9_000),
            history: Vec::new(),
            error: None,
            dead_reason: None,
            one_off: false,
        }
    }

    #[test]
    fn running_ones_are_adopted_and_dead_ones_decided() {
        let r = record(ContainerState::Running);
        assert_eq!(begin_for(&r, true, false, 8_000), Some(Begin::Adopt(42)));
        assert_eq!(
            begin_for(&r, false, false, 8_000),
            Some(Begin::ExitedUnseen {
                ran_for: Duration::from_secs(3)
            })
        );
        assert_eq!(
            begin_for(&record(ContainerState::Created), false, true, 0),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pending_restart_keeps_its_due_time() {
        let r = record(ContainerState::Restarting);
        let now = tokio::time::Instant::now();
        assert_eq!(
            begin_for(&r, false, false, 8_000),
            Some(Begin::RestartAt(now + Duration::from_secs(1)))
        );
        let stopped = ContainerRecord {
            stopped_by_user: true,
            state: ContainerState::Exited,
            ..r
        };
        assert_eq!(begin_for(&stopped, false, false, 8_000), Some(Begin::Idle));
        assert_eq!(begin_for(&stopped, false, true, 8_000), Some(Begin::Start));
    }
}
