//! Consistency checks on the typed project: references to services,
//! networks, volumes, secrets and configs exist, no dependency cycle
//! (named by its path), no conflicting settings.

use std::collections::{HashMap, HashSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;

use crate::error::{Diagnostics, ErrorKind, Span};
use crate::model::{MountType, NetworkMode, Project};
use crate::node::SpanTable;

pub(crate) fn span(spans: &SpanTable, path: &[&str]) -> Span {
    let mut ptr = String::new();
    for p in path {
        ptr.push('/');
        ptr.push_str(&p.replace('~', "~0").replace('/', "~1"));
    }
    crate::node::span_for(spans, &ptr).unwrap_or_else(|| Span::synthetic("<stack file>"))
}

pub fn check(project: &Project, spans: &SpanTable, diags: &mut Diagnostics) {
    let mut container_names: HashMap<&str, &str> = HashMap::new();
    for (name, svc) in &project.services {
        let at = |rest: &[&str]| {
            let mut p = vec!["services", name.as_str()];
            p.extend_from_slice(rest);
            span(spans, &p)
        };
        let path = |rest: &str| format!("services.{name}.{rest}");
        for (dep, d) in &svc.depends_on {
            if !project.services.contains_key(dep) && d.required {
                diags.error(
                    ErrorKind::Reference,
                    &at(&["depends_on", dep]),
                    &path(&format!("depends_on.{dep}")),
                    format!("service {name:?} depends on undefined service {dep:?}"),
                );
            }
        }
        for (net, _) in &svc.networks {
            if net != "default" && !project.networks.contains_key(net) {
                diags.error(
                    ErrorKind::Reference,
                    &at(&["networks", net]),
                    &path(&format!("networks.{net}")),
                    format!("service {name:?} refers to undefined network {net:?}"),
                );
            }
        }
        if let Some(mode) = &svc.network_mode {
            if !svc.networks.is_empty() {
                diags.error(
                    ErrorKind::Reference,
                    &at(&["network_mode"]),
                    &path("network_mode"),
                    format!(
                        "service {name:?} declares mutually exclusive `network_mode` and `networks`"
                    ),
                );
            }
            if let NetworkMode::Service(other) = mode
                && !project.services.contains_key(other)
            {
                diags.error(
                    ErrorKind::Reference,
                    &at(&["network_mode"]),
                    &path("network_mode"),
                    format!("service {name:?} uses the network of undefined service {other:?}"),
                );
            }
        }
        for (key, value) in [("ipc", &svc.ipc), ("pid", &svc.pid)] {
            if let Some(other) = value.as_deref().and_then(|v| v.strip_prefix("service:"))
                && !project.services.contains_key(other)
            {
                diags.error(
                    ErrorKind::Reference,
                    &at(&[key]),
                    &path(key),
                    format!(
                        "service {name:?} depends on undefined service {other:?} (through {key})"
                    ),
                );
            }
        }
        let mut targets: HashMap<&str, String> = HashMap::new();
        for (i, v) in svc.volumes.iter().enumerate() {
            let is = i.to_string();
            if v.kind == MountType::Volume
                && let Some(src) = &v.source
                && !project.volumes.contains_key(src)
            {
                diags.error(
                    ErrorKind::Reference,
                    &at(&["volumes", &is]),
                    &path(&format!("volumes[{i}]")),
                    format!("service {name:?} refers to undefined volume {src:?}"),
                );
            }
            if let Some(prev) = targets.insert(&v.target, format!("services.{name}.volumes[{i}]")) {
                diags.error(
                    ErrorKind::Reference,
                    &at(&["volumes", &is]),
                    &path(&format!("volumes[{i}]")),
                    format!("target {} already mounted as {prev}", v.target),
                );
            }
        }
        for (i, t) in svc.tmpfs.iter().enumerate() {
            let target = t.split(':').next().unwrap_or(t);
            if let Some(prev) = targets.get(target) {
                diags.error(
                    ErrorKind::Reference,
                    &at(&["tmpfs", &i.to_string()]),
                    &path(&format!("tmpfs[{i}]")),
                    format!("target {target} already mounted as {prev}"),
                );
            }
        }
        for (kind, refs, defined) in [
            ("secret", &svc.secrets, &project.secrets),
            ("config", &svc.configs, &project.configs),
        ] {
            for (i, r) in refs.iter().enumerate() {
                if !defined.contains_key(&r.source) {
                    let key = format!("{kind}s");
                    diags.error(
                        ErrorKind::Reference,
                        &at(&[&key, &i.to_string()]),
                        &path(&format!("{key}[{i}]")),
                        format!("service {name:?} refers to undefined {kind} {:?}", r.source),
                    );
                }
            }
        }
        if let Some(dev) = &svc.develop {
            for (i, w) in dev.watch.iter().enumerate() {
                if w.action.needs_target() && w.target.is_none() {
                    diags.error(
                        ErrorKind::Reference,
                        &at(&["develop", "watch", &i.to_string()]),
                        &path(&format!("develop.watch[{i}]")),
                        "target is required for sync actions",
                    );
                }
            }
        }
        if let Some(cn) = &svc.container_name
            && let Some(other) = container_names.insert(cn, name)
        {
            diags.error(
                ErrorKind::Reference,
                &at(&["container_name"]),
                &path("container_name"),
                format!("container name {cn:?} is already used by service {other:?}"),
            );
        }
        for (i, v) in svc.volumes_from.iter().enumerate() {
            let target = v.split(':').next().unwrap_or(v);
            if !target.starts_with("container:") && !project.services.contains_key(target) {
                diags.error(
                    ErrorKind::Reference,
                    &at(&["volumes_from", &i.to_string()]),
                    &path(&format!("volumes_from[{i}]")),
                    format!("service {name:?} takes volumes from undefined service {target:?}"),
                );
            }
        }
    }
    cycles(project, spans, diags);
}

fn cycles(project: &Project, spans: &SpanTable, diags: &mut Diagnostics) {
    let mut g = DiGraph::<&str, ()>::new();
    let idx: HashMap<&str, _> = project
        .services
        .keys()
        .map(|n| (n.as_str(), g.add_node(n.as_str())))
        .collect();
    for (name, svc) in &project.services {
        for dep in svc.depends_on.keys() {
            if let Some(&to) = idx.get(dep.as_str()) {
                g.add_edge(idx[name.as_str()], to, ());
            }
        }
    }
    for scc in tarjan_scc(&g) {
        let self_loop = scc.len() == 1 && g.contains_edge(scc[0], scc[0]);
        if scc.len() < 2 && !self_loop {
            continue;
        }
        let members: HashSet<_> = scc.iter().copied().collect();
        // Start at the first service in file order and follow edges inside the cycle.
        let start = *scc
            .iter()
            .min_by_key(|n| project.services.get_index_of(g[**n]).unwrap_or(0))
            .unwrap_or(&scc[0]);
        let mut path = vec![g[start]];
        let mut cur = start;
        let mut seen = HashSet::new();
        seen.insert(start);
        loop {
            let mut next: Vec<_> = g.neighbors(cur).filter(|n| members.contains(n)).collect();
            next.sort_by_key(|n| project.services.get_index_of(g[*n]).unwrap_or(0));
            let Some(&n) = next.iter().find(|n| **n == start || !seen.contains(*n)) else {
                break;
            };
            path.push(g[n]);
            if n == start {
                break;
            }
            seen.insert(n);
            cur = n;
        }
        let first = g[start];
        diags.error(
            ErrorKind::Cycle,
            &span(spans, &["services", first, "depends_on"]),
            &format!("services.{first}.depends_on"),
            format!("dependency cycle: {}", path.join(" -> ")),
        );
    }
}
