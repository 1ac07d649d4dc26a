//! A dependency graph of operations and the executor that walks it.
//!
//! The executor carries no decision logic: it starts every node whose
//! dependencies are done, at most `limit` at a time, and after the first
//! failure starts nothing new, lets what is running finish, and reports for
//! every node whether it ran, failed, or why it did not start.

use futures::stream::{FuturesUnordered, StreamExt};
use petgraph::Direction;
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};

/// A node of a [`Dag`].
pub type NodeId = NodeIndex<u32>;

/// Operations with "runs after" edges between them.
#[derive(Debug, Clone)]
pub struct Dag<T> {
    graph: DiGraph<T, ()>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("dependency cycle through node {node}")]
pub struct CycleError {
    pub node: usize,
}

/// What happened to one node.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<E> {
    Done,
    Failed(E),
    /// Not started: this dependency failed or did not start itself.
    Blocked {
        by: NodeId,
    },
    /// Not started: another node failed first and the run was stopped.
    Aborted,
}

impl<T> Default for Dag<T> {
    fn default() -> Self {
        Self {
            graph: DiGraph::new(),
        }
    }
}

impl<T> Dag<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, op: T) -> NodeId {
        self.graph.add_node(op)
    }

    /// `node` starts only after `dependency` is done.
    pub fn depend(&mut self, node: NodeId, dependency: NodeId) {
        self.graph.update_edge(dependency, node, ());
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    pub fn get(&self, node: NodeId) -> &T {
        &self.graph[node]
    }

    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &T)> {
        self.graph
            .node_indices()
            .map(move |node| (node, &self.graph[node]))
    }

    /// The nodes `node` waits for.
    pub fn dependencies(&self, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.graph.neighbors_directed(node, Direction::Incoming)
    }

    /// A start order that respects every edge, or the cycle that prevents one.
    pub fn order(&self) -> Result<Vec<NodeId>, CycleError> {
        toposort(&self.graph, None).map_err(|cycle| CycleError {
            node: cycle.node_id().index(),
        })
    }

    /// Runs every node, each once its dependencies are done, at most `limit`
    /// at once. Outcomes are indexed by node.
    pub async fn execute<E, F>(&self, limit: usize, run: F) -> Result<Vec<Outcome<E>>, CycleError>
    where
        F: AsyncFn(NodeId, &T) -> Result<(), E>,
    {
        self.execute_bounded(limit, |_| true, run).await
    }

    /// [`Dag::execute`] where only the nodes `bounded` says are count
    /// against `limit`; the others run as soon as they are ready (work that
    /// mostly waits, which a bound would only make wait in turn).
    pub async fn execute_bounded<E, F>(
        &self,
        limit: usize,
        bounded: impl Fn(&T) -> bool,
        run: F,
    ) -> Result<Vec<Outcome<E>>, CycleError>
    where
        F: AsyncFn(NodeId, &T) -> Result<(), E>,
    {
        self.order()?;
        let limit = limit.max(1);
        let count = self.graph.node_count();
        let mut waiting_on: Vec<usize> = self
            .graph
            .node_indices()
            .map(|n| self.dependencies(n).count())
            .collect();
        let mut outcomes: Vec<Option<Outcome<E>>> = (0..count).map(|_| None).collect();
        let mut ready: Vec<NodeId> = self
            .graph
            .node_indices()
            .filter(|n| waiting_on[n.index()] == 0)
            .rev()
            .collect();
        let mut running = FuturesUnordered::new();
        let mut failed = false;

        let mut counted = 0;
        loop {
            if !failed {
                // The ready nodes in order, skipping bounded ones while the
                // bound is reached.
                let mut held = Vec::new();
                while let Some(node) = ready.pop() {
                    let counts = bounded(&self.graph[node]);
                    if counts && counted >= limit {
                        held.push(node);
                        continue;
                    }
                    counted += usize::from(counts);
                    let fut = run(node, &self.graph[node]);
                    running.push(async move { (node, counts, fut.await) });
                }
                ready.extend(held.into_iter().rev());
            }
            let Some((node, counts, result)) = running.next().await else {
                break;
            };
            counted -= usize::from(counts);
            match result {
                Ok(()) => {
                    outcomes[node.index()] = Some(Outcome::Done);
                    for next in self.graph.neighbors_directed(node, Direction::Outgoing) {
                        waiting_on[next.index()] -= 1;
                        if waiting_on[next.index()] == 0 {
                            ready.insert(0, next);
                        }
                    }
                }
                Err(err) => {
                    outcomes[node.index()] = Some(Outcome::Failed(err));
                    failed = true;
                }
            }
        }

        // Whatever did not run: blocked by a dependency that did not finish,
        // or stopped because something else failed.
        let order = self.order()?;
        for node in order {
            if outcomes[node.index()].is_some() {
                continue;
            }
            let blocker = self
                .dependencies(node)
                .find(|dep| !matches!(outcomes[dep.index()], Some(Outcome::Done)));
            outcomes[node.index()] = Some(match blocker {
                Some(by) => Outcome::Blocked { by },
                None => Outcome::Aborted,
            });
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every node has an outcome"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn runs_dependencies_first() {
        // db <- api <- web, cache <- api
        let mut dag = Dag::new();
        let db = dag.add("db");
        let cache = dag.add("cache");
        let api = dag.add("api");
        let web = dag.add("web");
        dag.depend(api, db);
        dag.depend(api, cache);
        dag.depend(web, api);
        let log = Mutex::new(Vec::new());
        let outcomes = dag
            .execute(4, async |_, name: &&str| {
                tokio::time::sleep(Duration::from_millis(5)).await;
                log.lock().unwrap().push(*name);
                Ok::<_, ()>(())
            })
            .await
            .unwrap();
        assert!(outcomes.iter().all(|o| *o == Outcome::Done));
        let log = log.into_inner().unwrap();
        let pos = |n| log.iter().position(|x| *x == n).unwrap();
        assert!(pos("db") < pos("api") && pos("cache") < pos("api") && pos("api") < pos("web"));
    }

    #[tokio::test]
    async fn parallelism_is_bounded() {
        let mut dag = Dag::new();
        for i in 0..20 {
            dag.add(i);
        }
        let now = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        dag.execute(3, async |_, _| {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, ()>(())
        })
        .await
        .unwrap();
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn only_bounded_nodes_count_against_the_limit() {
        // Even numbers are bounded (at most 2 at once), odd ones are not.
        let mut dag = Dag::new();
        for i in 0..20 {
            dag.add(i);
        }
        let now = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let peak = [AtomicUsize::new(0), AtomicUsize::new(0)];
        dag.execute_bounded(
            2,
            |i| i % 2 == 0,
            async |_, i| {
                let kind = i % 2;
                let n = now[kind].fetch_add(1, Ordering::SeqCst) + 1;
                peak[kind].fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                now[kind].fetch_sub(1, Ordering::SeqCst);
                Ok::<_, ()>(())
            },
        )
        .await
        .unwrap();
        assert_eq!(peak[0].load(Ordering::SeqCst), 2);
        assert_eq!(peak[1].load(Ordering::SeqCst), 10);
    }

    #[tokio::test]
    async fn failure_blocks_dependents_and_stops_the_rest() {
        let mut dag = Dag::new();
        let migrate = dag.add("migrate");
        let api = dag.add("api");
        let web = dag.add("web");
        let other = dag.add("other");
        dag.depend(api, migrate);
        dag.depend(web, api);
        dag.depend(other, migrate);
        let outcomes = dag
            .execute(1, async |_, name: &&str| {
                if *name == "migrate" {
                    Err("exit 3")
                } else {
                    Ok(())
                }
            })
            .await
            .unwrap();
        assert_eq!(outcomes[migrate.index()], Outcome::Failed("exit 3"));
        assert_eq!(outcomes[api.index()], Outcome::Blocked { by: migrate });
        assert_eq!(outcomes[web.index()], Outcome::Blocked { by: api });
        assert_eq!(outcomes[other.index()], Outcome::Blocked { by: migrate });
    }

    #[tokio::test]
    async fn independent_work_not_started_after_a_failure_is_aborted() {
        let mut dag = Dag::new();
        let bad = dag.add("bad");
        let later = dag.add("later");
        let outcomes = dag
            .execute(
                1,
                async |_, name: &&str| {
                    if *name == "bad" { Err(()) } else { Ok(()) }
                },
            )
            .await
            .unwrap();
        assert_eq!(outcomes[bad.index()], Outcome::Failed(()));
        assert_eq!(outcomes[later.index()], Outcome::Aborted);
    }

    #[tokio::test]
    async fn cycles_are_refused_before_anything_runs() {
        let mut dag = Dag::new();
        let a = dag.add("a");
        let b = dag.add("b");
        dag.depend(a, b);
        dag.depend(b, a);
        let ran = AtomicUsize::new(0);
        let result = dag
            .execute(2, async |_, _| {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(())
            })
            .await;
        assert!(result.is_err());
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
