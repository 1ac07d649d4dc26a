//! The executor: walks a plan's graph with bounded parallelism and performs
//! each operation through a [`Driver`]. It makes no decisions of its own;
//! the first failure stops what has not started, and the report says which
//! operation failed and why.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::plan::{Action, Operation, Plan, Resource, Wait};
use crate::plan_graph::Outcome;

/// Performs operations on the host: the real one uses the runtime, image and
/// network crates.
pub trait Driver: Sync {
    type Error: fmt::Display + Send;

    fn create_network(&self, name: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn remove_network(&self, name: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn create_volume(&self, name: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn pull_image(&self, reference: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Builds `service`'s image from its `build:` section, tagged `image`.
    fn build_image(
        &self,
        service: &str,
        image: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn create_container(
        &self,
        service: &str,
        number: u32,
        name: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Stop (grace period, then SIGKILL), remove, create again; the new
    /// container takes over the old one's anonymous volumes unless
    /// `renew_anon_volumes`.
    fn recreate_container(
        &self,
        service: &str,
        number: u32,
        name: &str,
        renew_anon_volumes: bool,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn start_container(&self, name: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn restart_container(&self, name: &str)
    -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn remove_container(&self, name: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Stop and keep it (`stack stop`): its stop signal, SIGKILL after
    /// `grace` or the service's grace period.
    fn stop_container(
        &self,
        name: &str,
        grace: Option<Duration>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn kill_container(
        &self,
        name: &str,
        signal: i32,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn pause_container(&self, name: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn unpause_container(&self, name: &str)
    -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Resolves when `wait.service` meets `wait.condition`, fails when it
    /// cannot any more (unhealthy, exited, exited non-zero).
    fn wait_for(&self, wait: &Wait) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

#[derive(Debug)]
pub struct Failure<E> {
    pub operation: Operation,
    pub error: E,
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} failed: {}",
            self.operation.action, self.operation.resource, self.error
        )
    }
}

#[derive(Debug)]
pub struct Report<E> {
    /// Indexes of the operations done.
    pub done: Vec<usize>,
    /// The first failure, if any; what it blocked did not run.
    pub failure: Option<Failure<E>>,
    /// Operations not run because of the failure.
    pub not_run: Vec<usize>,
}

/// Where an operation is, for the executor's caller to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Began,
    Done(Duration),
}

/// Whether an operation counts against the executor's limit: work that
/// takes CPU (creating, building, pulling, starting) does; taking containers
/// down (stop, kill, remove) mostly waits for exits and for the kernel,
/// which removes what arrives together in one batch, so every ready one
/// starts at once: stop signals go to all independent containers together.
fn bounded(op: &Operation) -> bool {
    !matches!(
        (&op.action, &op.resource),
        (
            Action::Stop { .. } | Action::Kill { .. } | Action::Remove,
            Resource::Container { .. }
        )
    )
}

/// Runs `plan` through `driver`, at most `limit` operations that take CPU
/// at once (see [`bounded`]); `on_step` hears each operation begin and end.
pub async fn execute<D: Driver>(
    plan: &Plan,
    driver: &D,
    limit: usize,
    on_step: impl Fn(&Operation, Phase) + Sync,
) -> Report<D::Error> {
    let (dag, _) = plan.to_dag();
    let outcomes = dag
        .execute_bounded(
            limit,
            |&index| bounded(&plan.operations[index]),
            async |_, &index| {
                let op = &plan.operations[index];
                let started = Instant::now();
                on_step(op, Phase::Began);
                perform(driver, op).await?;
                on_step(op, Phase::Done(started.elapsed()));
                Ok(())
            },
        )
        .await;
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        // Plans come from the reconciler, whose edges always point backwards.
        Err(cycle) => unreachable!("a plan has no cycles: {cycle}"),
    };
    let mut report = Report {
        done: Vec::new(),
        failure: None,
        not_run: Vec::new(),
    };
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Outcome::Done => report.done.push(index),
            Outcome::Failed(error) => {
                report.failure = Some(Failure {
                    operation: plan.operations[index].clone(),
                    error,
                })
            }
            Outcome::Blocked { .. } | Outcome::Aborted => report.not_run.push(index),
        }
    }
    report
}

async fn perform<D: Driver>(driver: &D, op: &Operation) -> Result<(), D::Error> {
    match (&op.action, &op.resource) {
        (Action::Create, Resource::Network(name)) => driver.create_network(name).await,
        (Action::Remove, Resource::Network(name)) => driver.remove_network(name).await,
        (Action::Recreate, Resource::Network(name)) => {
            driver.remove_network(name).await?;
            driver.create_network(name).await
        }
        (Action::Recreate, Resource::Volume(name)) => {
            driver.remove_volume(name).await?;
            driver.create_volume(name).await
        }
        (Action::Create, Resource::Volume(name)) => driver.create_volume(name).await,
        (Action::Remove, Resource::Volume(name)) => driver.remove_volume(name).await,
        (Action::Pull, Resource::Image(reference)) => driver.pull_image(reference).await,
        (Action::Build, Resource::Build { service, image }) => {
            driver.build_image(service, image).await
        }
        (
            Action::Create,
            Resource::Container {
                service,
                number,
                name,
            },
        ) => driver.create_container(service, *number, name).await,
        (
            Action::Recreate,
            Resource::Container {
                service,
                number,
                name,
            },
        ) => {
            driver
                .recreate_container(service, *number, name, op.renew_anon_volumes)
                .await
        }
        (Action::Start, Resource::Container { name, .. }) => {
            for wait in &op.waits {
                driver.wait_for(wait).await?;
            }
            driver.start_container(name).await
        }
        (Action::Restart, Resource::Container { name, .. }) => {
            for wait in &op.waits {
                driver.wait_for(wait).await?;
            }
            driver.restart_container(name).await
        }
        (Action::Remove, Resource::Container { name, .. }) => driver.remove_container(name).await,
        (Action::Stop { timeout }, Resource::Container { name, .. }) => {
            driver
                .stop_container(name, timeout.map(Duration::from_secs))
                .await
        }
        (Action::Kill { signal }, Resource::Container { name, .. }) => {
            driver.kill_container(name, *signal).await
        }
        (Action::Pause, Resource::Container { name, .. }) => driver.pause_container(name).await,
        (Action::Unpause, Resource::Container { name, .. }) => driver.unpause_container(name).await,
        (action, resource) => unreachable!("the reconciler never plans {action} {resource}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use stack_spec::DependsOnCondition;

    use super::*;
    use crate::plan::Cause;

    /// Records calls; fails the ones named in `fail`. Only the executor's
    /// ordering and failure handling are under test here; the real driver is
    /// tested with real containers.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        fail: Vec<String>,
    }

    impl Recorder {
        async fn call(&self, what: String) -> Result<(), String> {
            tokio::task::yield_now().await;
            self.calls.lock().unwrap().push(what.clone());
            if self.fail.contains(&what) {
                Err(format!("{what} exited with code 3"))
            } else {
                Ok(())
            }
        }
    }

    impl Driver for Recorder {
        type Error = String;
        async fn create_network(&self, n: &str) -> Result<(), String> {
            self.call(format!("create-network {n}")).await
        }
        async fn remove_network(&self, n: &str) -> Result<(), String> {
            self.call(format!("remove-network {n}")).await
        }
        async fn create_volume(&self, n: &str) -> Result<(), String> {
            self.call(format!("create-volume {n}")).await
        }
        async fn remove_volume(&self, n: &str) -> Result<(), String> {
            self.call(format!("remove-volume {n}")).await
        }
        async fn pull_image(&self, r: &str) -> Result<(), String> {
            self.call(format!("pull {r}")).await
        }
        async fn build_image(&self, s: &str, i: &str) -> Result<(), String> {
            self.call(format!("build {s} {i}")).await
        }
        async fn create_container(&self, _: &str, _: u32, n: &str) -> Result<(), String> {
            self.call(format!("create {n}")).await
        }
        async fn recreate_container(
            &self,
            _: &str,
            _: u32,
            n: &str,
            _: bool,
        ) -> Result<(), String> {
            self.call(format!("recreate {n}")).await
        }
        async fn start_container(&self, n: &str) -> Result<(), String> {
            self.call(format!("start {n}")).await
        }
        async fn restart_container(&self, n: &str) -> Result<(), String> {
            self.call(format!("restart {n}")).await
        }
        async fn remove_container(&self, n: &str) -> Result<(), String> {
            self.call(format!("remove {n}")).await
        }
        async fn stop_container(&self, n: &str, _: Option<Duration>) -> Result<(), String> {
            self.call(format!("stop {n}")).await
        }
        async fn kill_container(&self, n: &str, signal: i32) -> Result<(), String> {
            self.call(format!("kill -{signal} {n}")).await
        }
        async fn pause_container(&self, n: &str) -> Result<(), String> {
            self.call(format!("pause {n}")).await
        }
        async fn unpause_container(&self, n: &str) -> Result<(), String> {
            self.call(format!("unpause {n}")).await
        }
        async fn wait_for(&self, w: &Wait) -> Result<(), String> {
            self.call(format!("wait {}", w.service)).await
        }
    }

    fn container(name: &str) -> Resource {
        Resource::Container {
            service: name.into(),
            number: 1,
            name: name.into(),
        }
    }

    fn two_services() -> Plan {
        let mut plan = Plan::default();
        let net = plan.push(
            Action::Create,
            Resource::Network("n".into()),
            Cause::NotFound,
        );
        let c1 = plan.push(Action::Create, container("migrate"), Cause::NotFound);
        let s1 = plan.push(Action::Start, container("migrate"), Cause::NotFound);
        let c2 = plan.push(Action::Create, container("api"), Cause::NotFound);
        let s2 = plan.push(Action::Start, container("api"), Cause::NotFound);
        plan.operations[c1].after = vec![net];
        plan.operations[s1].after = vec![c1];
        plan.operations[c2].after = vec![net];
        plan.operations[s2].after = vec![c2, s1];
        plan.operations[s2].waits = vec![Wait {
            service: "migrate".into(),
            condition: DependsOnCondition::ServiceCompletedSuccessfully,
            required: true,
        }];
        plan
    }

    #[tokio::test]
    async fn waits_run_before_the_start_they_gate() {
        let driver = Recorder::default();
        let report = execute(&two_services(), &driver, 4, |_, _| {}).await;
        assert!(report.failure.is_none());
        let calls = driver.calls.into_inner().unwrap();
        let pos = |s: &str| calls.iter().position(|c| c == s).unwrap();
        assert!(pos("start migrate") < pos("wait migrate"));
        assert!(pos("wait migrate") < pos("start api"));
        assert_eq!(report.done.len(), 5);
    }

    #[tokio::test]
    async fn a_failed_wait_names_the_operation_and_stops_its_start() {
        let driver = Recorder {
            fail: vec!["wait migrate".into()],
            ..Recorder::default()
        };
        let report = execute(&two_services(), &driver, 4, |_, _| {}).await;
        let failure = report.failure.expect("fails");
        assert_eq!(
            failure.to_string(),
            "start container api failed: wait migrate exited with code 3"
        );
        let calls = driver.calls.into_inner().unwrap();
        assert!(!calls.contains(&"start api".to_owned()));
    }
}
