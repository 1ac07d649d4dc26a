//! Names and reachability: a Service per service so its name resolves in
//! the cluster as it does under `stack`, a second one for published ports,
//! and NetworkPolicies that let a pod in only from pods sharing one of its
//! networks (Compose's isolation, which a flat cluster network lacks).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use stack_spec::{NetworkMode, Service};

use super::pod::{container_ports, protocol};
use super::{Ctx, PART_OF, PublishAs};
use crate::names::{dns_label, is_dns_label};

const NETWORK_LABEL_PREFIX: &str = "stack.network/";

/// The networks a service joins (`default` when it names none); empty for
/// `network_mode: host` or `none`.
fn service_networks(s: &Service) -> Vec<&str> {
    match s.network_mode {
        Some(NetworkMode::Host | NetworkMode::None) => Vec::new(),
        _ if s.networks.is_empty() => vec!["default"],
        _ => s.networks.keys().map(String::as_str).collect(),
    }
}

fn network_label(net: &str) -> Option<String> {
    dns_label(net).map(|n| format!("{NETWORK_LABEL_PREFIX}{n}"))
}

/// The pod labels that mark the service's networks.
pub fn network_labels(cx: &mut Ctx<'_>, name: &str, s: &Service) -> Map<String, Value> {
    let mut out = Map::new();
    for net in service_networks(s) {
        match network_label(net) {
            Some(l) => {
                out.insert(l, json!("true"));
            }
            None => cx.w.warn(
                format!("services.{name}.networks.{net}"),
                "dropped: the network name cannot be a Kubernetes label; the service is isolated from it",
            ),
        }
    }
    out
}

/// The Service that gives `name` its DNS name in the cluster, and one of
/// type NodePort or LoadBalancer for its published ports.
pub fn services(cx: &mut Ctx<'_>, name: &str, s: &Service) -> Vec<Value> {
    for (net, settings) in &s.networks {
        let Some(n) = settings else { continue };
        let path = format!("services.{name}.networks.{net}");
        if !n.aliases.is_empty() {
            cx.w.warn(
                format!("{path}.aliases"),
                "dropped: only the service name resolves; add a Service per alias by hand",
            );
        }
        if n.ipv4_address.is_some()
            || n.ipv6_address.is_some()
            || n.mac_address.is_some()
            || !n.link_local_ips.is_empty()
        {
            cx.w.warn(
                path.clone(),
                "addresses dropped: pods get addresses from the cluster",
            );
        }
        if n.priority.is_some()
            || n.gw_priority.is_some()
            || n.interface_name.is_some()
            || !n.driver_opts.is_empty()
        {
            cx.w.warn(
                path,
                "priority, interface_name and driver_opts dropped: a pod has one network interface",
            );
        }
    }
    let k = cx.name(name).to_string();
    let ports = container_ports(cx, name, s);
    let mut spec = Map::new();
    spec.insert("selector".into(), cx.selector(name));
    if ports.is_empty() {
        // No ports: a headless Service still makes the name resolve to the
        // pods, as a Compose service name resolves to its containers.
        spec.insert("clusterIP".into(), json!("None"));
    } else {
        spec.insert(
            "ports".into(),
            json!(
                ports
                    .iter()
                    .map(|(p, proto)| json!({
                        "name": format!("{}-{p}", proto.to_lowercase()),
                        "port": p,
                        "targetPort": p,
                        "protocol": proto,
                    }))
                    .collect::<Vec<_>>()
            ),
        );
    }
    let mut out = vec![json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": cx.metadata(&k, Some(name)),
        "spec": spec,
    })];

    let mut published = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, p) in s.ports.iter().enumerate() {
        let path = format!("services.{name}.ports[{i}]");
        let proto = protocol(p.protocol);
        let port: u16 = match p.published.as_deref() {
            None => p.target,
            Some(pub_) => match pub_.parse() {
                Ok(n) => n,
                Err(_) => {
                    cx.w.warn(
                        format!("{path}.published"),
                        format!("dropped: the range {pub_:?} is not published; Kubernetes lists ports one by one"),
                    );
                    continue;
                }
            },
        };
        if !seen.insert((port, proto)) {
            continue;
        }
        if p.host_ip.is_some() {
            cx.w.warn(
                format!("{path}.host_ip"),
                "dropped: a Service listens on every node address (or the load balancer's)",
            );
        }
        if p.mode == stack_spec::PortMode::Host {
            cx.w.warn(
                format!("{path}.mode"),
                "approximated: published through the Service, not on the pod's node only",
            );
        }
        let mut sp = Map::new();
        let port_name = p
            .name
            .clone()
            .filter(|n| is_dns_label(n) && n.len() <= 15)
            .unwrap_or_else(|| format!("{}-{port}", proto.to_lowercase()));
        sp.insert("name".into(), json!(port_name));
        sp.insert("port".into(), json!(port));
        sp.insert("targetPort".into(), json!(p.target));
        sp.insert("protocol".into(), json!(proto));
        if let Some(ap) = &p.app_protocol {
            sp.insert("appProtocol".into(), json!(ap));
        }
        if cx.opts.publish_as == PublishAs::NodePort {
            if (30000..=32767).contains(&port) {
                sp.insert("nodePort".into(), json!(port));
            } else if p.published.is_some() {
                cx.w.warn(
                    format!("{path}.published"),
                    format!("approximated: a NodePort must be in 30000-32767, so the cluster picks the node port for {port} (or export with --publish loadbalancer)"),
                );
            }
        }
        published.push(Value::Object(sp));
    }
    if !published.is_empty() {
        let ty = match cx.opts.publish_as {
            PublishAs::NodePort => "NodePort",
            PublishAs::LoadBalancer => "LoadBalancer",
        };
        out.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": cx.metadata(&format!("{k}-published"), Some(name)),
            "spec": { "type": ty, "selector": cx.selector(name), "ports": published },
        }));
    }
    out
}

fn policy(cx: &Ctx<'_>, name: &str, pod_selector: Value, spec: Map<String, Value>) -> Value {
    let mut s = Map::new();
    s.insert("podSelector".into(), json!({ "matchLabels": pod_selector }));
    s.extend(spec);
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": cx.metadata(name, None),
        "spec": s,
    })
}

/// NetworkPolicies: per network, its members let each other in; published
/// ports are open to all; `network_mode: none` isolates a pod; a service
/// only on `internal` networks reaches nothing outside them but DNS.
pub fn policies(cx: &mut Ctx<'_>) -> Vec<Value> {
    let p = cx.project;
    let mut out = Vec::new();
    let mut networks: BTreeMap<String, &str> = BTreeMap::new();
    let services: BTreeMap<&String, &Service> = p
        .services
        .iter()
        .filter(|(n, _)| !cx.init_only.contains(n.as_str()))
        .collect();
    for (name, s) in &services {
        for net in service_networks(s) {
            if let Some(l) = network_label(net) {
                networks.insert(l, net);
            }
        }
        if s.network_mode == Some(NetworkMode::Host) {
            cx.w.warn(
                format!("services.{name}.network_mode"),
                "approximated: the pod uses the node's network (hostNetwork), where NetworkPolicies do not apply",
            );
        }
    }
    for (label, net) in &networks {
        let sel = json!({ PART_OF: p.name, label.as_str(): "true" });
        let mut spec = Map::new();
        spec.insert("policyTypes".into(), json!(["Ingress"]));
        spec.insert(
            "ingress".into(),
            json!([{ "from": [{ "podSelector": { "matchLabels": sel } }] }]),
        );
        let Some(n) = dns_label(net) else { continue };
        out.push(policy(cx, &format!("{}-net-{n}", p.name), sel, spec));
    }
    for (name, s) in &services {
        let k = cx.name(name).to_string();
        if s.network_mode == Some(NetworkMode::None) {
            let mut spec = Map::new();
            spec.insert("policyTypes".into(), json!(["Ingress", "Egress"]));
            out.push(policy(
                cx,
                &format!("{k}-isolated"),
                cx.selector(name),
                spec,
            ));
        }
        if !s.ports.is_empty() {
            let ports: BTreeSet<(u16, &str)> = s
                .ports
                .iter()
                .map(|p| (p.target, protocol(p.protocol)))
                .collect();
            let mut spec = Map::new();
            spec.insert("policyTypes".into(), json!(["Ingress"]));
            spec.insert(
                "ingress".into(),
                json!([{ "ports": ports.iter().map(|(p, proto)| json!({ "port": p, "protocol": proto })).collect::<Vec<_>>() }]),
            );
            out.push(policy(
                cx,
                &format!("{k}-published"),
                cx.selector(name),
                spec,
            ));
        }
        let nets = service_networks(s);
        let all_internal = !nets.is_empty()
            && nets
                .iter()
                .all(|n| p.networks.get(*n).is_some_and(|n| n.internal));
        if all_internal {
            let to: Vec<Value> = nets
                .iter()
                .filter_map(|n| network_label(n))
                .map(
                    |l| json!({ "podSelector": { "matchLabels": { PART_OF: p.name, l: "true" } } }),
                )
                .collect();
            let mut spec = Map::new();
            spec.insert("policyTypes".into(), json!(["Egress"]));
            spec.insert(
                "egress".into(),
                json!([
                    { "to": to },
                    { "ports": [{ "port": 53, "protocol": "UDP" }, { "port": 53, "protocol": "TCP" }] },
                ]),
            );
            out.push(policy(
                cx,
                &format!("{k}-internal"),
                cx.selector(name),
                spec,
            ));
        }
    }
    out
}
