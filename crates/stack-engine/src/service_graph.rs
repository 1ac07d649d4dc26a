//! The services' dependency graph as levels: level 1 needs nothing, each
//! later level needs only services of earlier ones. `start` walks the
//! levels up, `stop` down, and `stack graph` prints them (pure, so the
//! text is golden-tested).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use stack_spec::{DependsOnCondition, Project, Service};

use crate::reconcile::namespace_parents;

/// What a service waits for before it starts.
fn dependencies(service: &Service) -> BTreeSet<String> {
    service
        .depends_on
        .keys()
        .cloned()
        .chain(namespace_parents(service))
        .collect()
}

/// Services by start level, each level sorted by name. Dependencies not in
/// the project (disabled by a profile) are ignored, as compose does.
pub fn levels(project: &Project) -> Vec<Vec<String>> {
    let mut level: BTreeMap<&str, usize> = BTreeMap::new();
    // `start_order` puts every service after its dependencies.
    for name in project.start_order() {
        let Some(service) = project.services.get(name) else {
            continue;
        };
        let own = dependencies(service)
            .iter()
            .filter_map(|d| level.get(d.as_str()))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        level.insert(name, own);
    }
    let mut out: Vec<Vec<String>> = Vec::new();
    for (name, l) in level {
        if out.len() <= l {
            out.resize(l + 1, Vec::new());
        }
        out[l].push(name.to_owned());
    }
    out
}

/// `names` and everything they depend on, transitively.
pub fn with_dependencies(project: &Project, names: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = names.to_vec();
    while let Some(name) = todo.pop() {
        if !out.insert(name.clone()) {
            continue;
        }
        if let Some(service) = project.services.get(&name) {
            todo.extend(dependencies(service));
        }
    }
    out
}

fn condition(c: DependsOnCondition) -> &'static str {
    match c {
        DependsOnCondition::ServiceStarted => "started",
        DependsOnCondition::ServiceHealthy => "healthy",
        DependsOnCondition::ServiceCompletedSuccessfully => "completed successfully",
    }
}

/// What `name` waits for, in words: `db healthy, cache started (optional)`.
fn edges(service: &Service) -> Vec<String> {
    let mut out: Vec<String> = service
        .depends_on
        .iter()
        .map(|(dep, d)| {
            let mut text = format!("{dep} {}", condition(d.condition));
            if !d.required {
                text.push_str(" (optional)");
            }
            if d.restart {
                text.push_str(" (restarts with it)");
            }
            text
        })
        .collect();
    for parent in namespace_parents(service) {
        out.push(format!("{parent} namespaces"));
    }
    out
}

/// The levels as text, in start order:
///
/// ```text
/// level 1: db
/// level 2: migrate (after db healthy)
/// ```
pub fn text(project: &Project) -> String {
    let mut out = String::new();
    for (i, names) in levels(project).iter().enumerate() {
        let _ = writeln!(out, "level {}:", i + 1);
        for name in names {
            let after = project.services.get(name).map(edges).unwrap_or_default();
            if after.is_empty() {
                let _ = writeln!(out, "  {name}");
            } else {
                let _ = writeln!(out, "  {name} (after {})", after.join(", "));
            }
        }
    }
    out
}

/// The graph in Graphviz dot: an edge from each service to what it
/// depends on, labelled with the condition.
pub fn dot(project: &Project) -> String {
    let mut out = format!("digraph \"{}\" {{\n", project.name);
    for (i, names) in levels(project).iter().enumerate() {
        let _ = writeln!(out, "  subgraph level_{} {{", i + 1);
        let _ = writeln!(out, "    rank=same;");
        for name in names {
            let _ = writeln!(out, "    \"{name}\";");
        }
        let _ = writeln!(out, "  }}");
    }
    for (name, service) in &project.services {
        for (dep, d) in &service.depends_on {
            let style = if d.required { "" } else { ", style=dashed" };
            let _ = writeln!(
                out,
                "  \"{name}\" -> \"{dep}\" [label=\"{}\"{style}];",
                condition(d.condition)
            );
        }
        for parent in namespace_parents(service) {
            let _ = writeln!(
                out,
                "  \"{name}\" -> \"{parent}\" [label=\"namespaces\", style=dotted];"
            );
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        let mut options = stack_spec::LoadOptions::new("/tmp").with_content("stack.yaml", yaml);
        options.project_name = Some("p".into());
        stack_spec::load(&options).unwrap().project
    }

    const THREE: &str = "services:
  api:
    image: busybox
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
      cache: {condition: service_started, required: false}
  migrate:
    image: busybox
    depends_on:
      db: {condition: service_healthy}
  db:
    image: busybox
  cache:
    image: busybox
  sidecar:
    image: busybox
    network_mode: service:api
";

    #[test]
    fn levels_put_each_service_after_its_dependencies() {
        let p = project(THREE);
        assert_eq!(
            levels(&p),
            [
                vec!["cache".to_owned(), "db".into()],
                vec!["migrate".into()],
                vec!["api".into()],
                vec!["sidecar".into()],
            ]
        );
    }

    #[test]
    fn text_is_golden() {
        assert_eq!(
            text(&project(THREE)),
            "level 1:
  cache
  db
level 2:
  migrate (after db healthy)
level 3:
  api (after db healthy, migrate completed successfully, cache started (optional))
level 4:
  sidecar (after api namespaces)
"
        );
    }

    #[test]
    fn dot_is_golden() {
        assert_eq!(
            dot(&project(
                "services:\n  web:\n    image: busybox\n    depends_on: [db]\n  db:\n    image: busybox\n"
            )),
            "digraph \"p\" {
  subgraph level_1 {
    rank=same;
    \"db\";
  }
  subgraph level_2 {
    rank=same;
    \"web\";
  }
  \"web\" -> \"db\" [label=\"started\"];
}
"
        );
    }

    #[test]
    fn dependencies_are_closed_transitively() {
        let p = project(THREE);
        let got: Vec<String> = with_dependencies(&p, &["migrate".into()])
            .into_iter()
            .collect();
        assert_eq!(got, ["db", "migrate"]);
        assert_eq!(with_dependencies(&p, &["sidecar".into()]).len(), 5);
    }
}
