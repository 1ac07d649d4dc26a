//! `start`, `stop`, `restart`, `kill`, `pause`, `unpause` and `rm` as plans:
//! pure functions from (project, observed, request) to a [`Plan`] that the
//! one executor runs, so that these commands decide nothing while acting,
//! print what they would do under `--dry-run`, and keep the dependency
//! order of `up` (dependencies start first, dependents stop first).

use std::collections::{BTreeMap, HashMap};

use stack_spec::Project;

use crate::observed::{ContainerState, Observed, ObservedContainer};
use crate::plan::{Action, Cause, OpId, Plan, Resource, Wait};
use crate::reconcile::namespace_parents;

/// Why a lifecycle request plans nothing at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("no such service: {0}")]
    NoSuchService(String),
    #[error("no containers to start")]
    NothingToStart,
}

/// The containers a request is about: those of `services` (all when
/// empty), one-offs included when `one_offs`; by service start order, then
/// number. Containers of services no longer in the file come last.
fn targets<'a>(
    project: &Project,
    observed: &'a Observed,
    services: &[String],
    one_offs: bool,
) -> Result<Vec<&'a ObservedContainer>, LifecycleError> {
    if let Some(s) = services
        .iter()
        .find(|s| !project.services.contains_key(s.as_str()))
    {
        return Err(LifecycleError::NoSuchService(s.clone()));
    }
    let order = project.start_order();
    let rank = |service: &str| order.iter().position(|s| *s == service);
    let mut out: Vec<&ObservedContainer> = observed
        .containers
        .iter()
        .chain(observed.one_offs.iter().filter(|_| one_offs))
        .filter(|c| services.is_empty() || services.contains(&c.service))
        .collect();
    out.sort_by(|a, b| {
        (
            rank(&a.service).is_none(),
            rank(&a.service),
            &a.service,
            a.number,
            &a.name,
        )
            .cmp(&(
                rank(&b.service).is_none(),
                rank(&b.service),
                &b.service,
                b.number,
                &b.name,
            ))
    });
    Ok(out)
}

fn resource(c: &ObservedContainer) -> Resource {
    Resource::Container {
        service: c.service.clone(),
        number: c.number,
        name: c.name.clone(),
    }
}

/// Whether `dependent` must stop before (and start after) `service`: it
/// depends on it or shares its namespaces.
fn depends(project: &Project, dependent: &str, service: &str) -> bool {
    project.services.get(dependent).is_some_and(|s| {
        s.depends_on.contains_key(service) || namespace_parents(s).iter().any(|p| p == service)
    })
}

/// Stop ops for the running `containers`, each after the stops of the
/// containers that depend on it.
fn push_stops(
    plan: &mut Plan,
    project: &Project,
    containers: &[&ObservedContainer],
    timeout: Option<u64>,
) {
    let mut stops: HashMap<String, Vec<OpId>> = HashMap::new();
    // Dependents first: reverse start order, so their ops exist to point at.
    for c in containers.iter().rev().filter(|c| c.state.is_up()) {
        let op = plan.push(Action::Stop { timeout }, resource(c), Cause::Requested);
        let mut after: Vec<OpId> = stops
            .iter()
            .filter(|(dependent, _)| depends(project, dependent, &c.service))
            .flat_map(|(_, ops)| ops.iter().copied())
            .collect();
        after.sort_unstable();
        plan.operations[op].after = after;
        stops.entry(c.service.clone()).or_default().push(op);
    }
}

/// `stack stop [SERVICE...]`: the running containers (one-offs included),
/// dependents first.
pub fn plan_stop(
    project: &Project,
    observed: &Observed,
    services: &[String],
    timeout: Option<u64>,
) -> Result<Plan, LifecycleError> {
    let mut plan = Plan::default();
    let containers = targets(project, observed, services, true)?;
    push_stops(&mut plan, project, &containers, timeout);
    Ok(plan)
}

/// Start ops for `containers` (not one-offs), each after the starts of
/// what it depends on and waiting for its `depends_on` conditions; every
/// one after `first`.
fn push_starts(
    plan: &mut Plan,
    project: &Project,
    containers: &[&ObservedContainer],
    first: &[OpId],
) {
    let mut starts: BTreeMap<&str, Vec<OpId>> = BTreeMap::new();
    for c in containers {
        let op = plan.push(Action::Start, resource(c), Cause::Requested);
        let mut after: Vec<OpId> = first.to_vec();
        after.extend(
            starts
                .iter()
                .filter(|(service, _)| depends(project, &c.service, service))
                .flat_map(|(_, ops)| ops.iter().copied()),
        );
        after.sort_unstable();
        plan.operations[op].after = after;
        if let Some(service) = project.services.get(&c.service) {
            plan.operations[op].waits = service
                .depends_on
                .iter()
                .map(|(dep, d)| Wait {
                    service: dep.clone(),
                    condition: d.condition,
                    required: d.required,
                })
                .collect();
        }
        starts.entry(c.service.as_str()).or_default().push(op);
    }
}

/// `stack start [SERVICE...]`: the stopped containers (not one-offs),
/// dependencies first, each once its `depends_on` conditions hold.
pub fn plan_start(
    project: &Project,
    observed: &Observed,
    services: &[String],
) -> Result<Plan, LifecycleError> {
    let containers = targets(project, observed, services, false)?;
    if containers.is_empty() {
        return Err(LifecycleError::NothingToStart);
    }
    let stopped: Vec<&ObservedContainer> = containers
        .into_iter()
        .filter(|c| !c.state.is_up())
        .collect();
    let mut plan = Plan::default();
    push_starts(&mut plan, project, &stopped, &[]);
    Ok(plan)
}

/// The services `restart SERVICE...` restarts: those named and, unless
/// `no_deps`, every service that restarts with one of them (a `depends_on`
/// entry with `restart: true`, or its namespaces shared), transitively,
/// as compose's `IncludeDependents` over such entries only. Empty means
/// every service.
pub fn restarted_services(
    project: &Project,
    services: &[String],
    no_deps: bool,
) -> Result<Vec<String>, LifecycleError> {
    if let Some(s) = services
        .iter()
        .find(|s| !project.services.contains_key(s.as_str()))
    {
        return Err(LifecycleError::NoSuchService(s.clone()));
    }
    let mut out: Vec<String> = services.to_vec();
    if no_deps {
        return Ok(out);
    }
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].clone();
        for (name, service) in &project.services {
            let restarts_with = service.depends_on.get(&parent).is_some_and(|d| d.restart)
                || namespace_parents(service).contains(&parent);
            if restarts_with && !out.contains(name) {
                out.push(name.clone());
            }
        }
        i += 1;
    }
    Ok(out)
}

/// `stack restart [SERVICE...]`: stop (dependents first), then start every
/// container of them again (dependencies first), with the services that
/// restart with them unless `no_deps`; they keep their ids, addresses and
/// volumes.
pub fn plan_restart(
    project: &Project,
    observed: &Observed,
    services: &[String],
    timeout: Option<u64>,
    no_deps: bool,
) -> Result<Plan, LifecycleError> {
    let services = &restarted_services(project, services, no_deps)?;
    let mut plan = plan_stop(project, observed, services, timeout)?;
    let containers = targets(project, observed, services, false)?;
    if containers.is_empty() {
        return Err(LifecycleError::NothingToStart);
    }
    let stops: Vec<OpId> = (0..plan.operations.len()).collect();
    push_starts(&mut plan, project, &containers, &stops);
    Ok(plan)
}

/// `stack kill [-s SIGNAL] [SERVICE...]`: the signal to every running
/// container (one-offs included), all at once; containers of services no
/// longer in the file only with `orphans` (compose's `kill
/// --remove-orphans`, which kills them too).
pub fn plan_kill(
    project: &Project,
    observed: &Observed,
    services: &[String],
    signal: i32,
    orphans: bool,
) -> Result<Plan, LifecycleError> {
    let mut plan = Plan::default();
    for c in targets(project, observed, services, true)? {
        let orphan = !project.services.contains_key(&c.service);
        if c.state.is_up() && (orphans || !orphan) {
            plan.push(Action::Kill { signal }, resource(c), Cause::Requested);
        }
    }
    Ok(plan)
}

/// `stack pause` (`freeze`) or `unpause`: the running (or paused)
/// containers, one-offs included.
pub fn plan_freeze(
    project: &Project,
    observed: &Observed,
    services: &[String],
    freeze: bool,
) -> Result<Plan, LifecycleError> {
    let mut plan = Plan::default();
    for c in targets(project, observed, services, true)? {
        let paused = c.state == ContainerState::Paused;
        if freeze && c.state.is_up() && !paused {
            plan.push(Action::Pause, resource(c), Cause::Requested);
        } else if !freeze && paused {
            plan.push(Action::Unpause, resource(c), Cause::Requested);
        }
    }
    Ok(plan)
}

/// `stack rm [-s] [SERVICE...]`: the stopped containers (one-offs
/// included); with `stop_first` the running ones are stopped (dependents
/// first) and removed too.
pub fn plan_remove(
    project: &Project,
    observed: &Observed,
    services: &[String],
    stop_first: bool,
) -> Result<Plan, LifecycleError> {
    let mut plan = Plan::default();
    let containers = targets(project, observed, services, true)?;
    if stop_first {
        push_stops(&mut plan, project, &containers, None);
    }
    // The stop op of each container stopped first.
    let stop_of: HashMap<String, OpId> = plan
        .operations
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match &op.resource {
            Resource::Container { name, .. } => Some((name.clone(), i)),
            _ => None,
        })
        .collect();
    for c in containers.iter().rev() {
        let stopped = stop_of.get(c.name.as_str()).copied();
        if c.state.is_up() && stopped.is_none() {
            continue;
        }
        let op = plan.push(Action::Remove, resource(c), Cause::Requested);
        plan.operations[op].after = stopped.into_iter().collect();
    }
    Ok(plan)
}

/// The plan a request to the supervisor would run, for `--dry-run`;
/// `None` for a request that changes nothing or is planned elsewhere
/// (`up` and `run`, by `reconcile`).
pub fn plan_request(
    project: &Project,
    observed: &Observed,
    request: &crate::control::Request,
) -> Result<Option<Plan>, LifecycleError> {
    use crate::control::Request;
    Ok(Some(match request {
        Request::Start { services } => plan_start(project, observed, services)?,
        Request::Stop { services, timeout } => plan_stop(project, observed, services, *timeout)?,
        Request::Restart {
            services,
            timeout,
            no_deps,
        } => plan_restart(project, observed, services, *timeout, *no_deps)?,
        Request::Kill {
            services,
            signal,
            remove_orphans,
        } => plan_kill(project, observed, services, *signal, *remove_orphans)?,
        Request::Pause { services } => plan_freeze(project, observed, services, true)?,
        Request::Unpause { services } => plan_freeze(project, observed, services, false)?,
        Request::Remove { services, stop, .. } => plan_remove(project, observed, services, *stop)?,
        Request::Down {
            remove_volumes,
            timeout,
        } => {
            // `down -t` stops everything first, with that grace period.
            let mut plan = match timeout {
                Some(_) => plan_stop(project, observed, &[], *timeout)?,
                None => Plan::default(),
            };
            let down = crate::reconcile::plan_down(Some(project), observed, *remove_volumes);
            let offset = plan.operations.len();
            let stops: Vec<OpId> = (0..offset).collect();
            for mut op in down.operations {
                op.after = op.after.iter().map(|a| a + offset).collect();
                op.after.extend(stops.iter().copied());
                plan.operations.push(op);
            }
            plan
        }
        _ => return Ok(None),
    }))
}
