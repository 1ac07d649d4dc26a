//! `stack export swarm`: one compose file that `docker stack deploy`
//! (Compose file format 3.9, Docker 20.10 and later) accepts. Everything the
//! loader resolved stays resolved (interpolation, `extends`, `include`,
//! profiles, `env_file`); keys Swarm has a place for are moved there
//! (`restart` → `deploy.restart_policy`, `mem_limit` →
//! `deploy.resources`); keys Swarm ignores or the format lacks are left out
//! with a warning each.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use stack_spec::{MountType, Project, RestartPolicy, Service};

use crate::{ExportError, Warning, Warnings};

/// The compose file format version `docker stack deploy` reads.
pub const VERSION: &str = "3.9";

/// A Swarm-ready compose file and what it could not carry.
#[derive(Debug)]
pub struct SwarmFile {
    pub document: Value,
    pub warnings: Vec<Warning>,
    /// The project name, which `docker stack deploy` takes as an argument.
    pub stack_name: String,
}

impl SwarmFile {
    pub fn to_yaml(&self) -> Result<String, ExportError> {
        Ok(format!(
            "# docker stack deploy -c FILE {}\n{}",
            self.stack_name,
            serde_saphyr::to_string(&self.document)?
        ))
    }
}

/// Service keys the format has and `docker stack deploy` acts on, kept as
/// the loader normalised them.
const KEPT: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "labels",
    "logging",
    "secrets",
    "configs",
    "stop_grace_period",
    "stop_signal",
    "tty",
    "stdin_open",
    "user",
    "working_dir",
    "hostname",
    "dns",
    "dns_search",
    "sysctls",
    "ulimits",
    "cap_add",
    "cap_drop",
    "read_only",
    "init",
];

/// Why a service key is left out; `None` when it is kept or moved.
fn dropped(key: &str) -> Option<&'static str> {
    if KEPT.contains(&key) {
        return None;
    }
    Some(match key {
        "build" | "restart" | "deploy" | "scale" | "cpus" | "mem_limit" | "mem_reservation"
        | "pids_limit" | "ports" | "volumes" | "tmpfs" | "networks" | "healthcheck"
        | "depends_on" | "env_file" | "profiles" | "extra_hosts" => return None,
        "container_name" | "devices" | "links" | "network_mode" | "security_opt" | "privileged"
        | "domainname" | "ipc" | "shm_size" | "pid" => "dropped: docker stack deploy ignores it",
        "expose" => "dropped: services on one Swarm network reach each other on any port",
        "x-stack" => "dropped: a stack-only setting",
        "develop" => "dropped: watch mode is for a development machine",
        _ => "dropped: not in the compose file format docker stack deploy reads",
    })
}

/// Export `project` as a compose file for `docker stack deploy`.
pub fn export(project: &Project) -> Result<SwarmFile, ExportError> {
    let mut w = Warnings::default();
    let mut doc = Map::new();
    doc.insert("version".into(), json!(VERSION));
    let mut services = Map::new();
    for (name, s) in &project.services {
        let awaited = project.services.values().any(|o| {
            o.depends_on.get(name).is_some_and(|d| {
                d.condition == stack_spec::DependsOnCondition::ServiceCompletedSuccessfully
            })
        });
        services.insert(
            name.clone(),
            service(&mut w, &project.name, name, s, awaited)?,
        );
    }
    doc.insert("services".into(), Value::Object(services));

    let mut networks = Map::new();
    for (key, n) in &project.networks {
        let path = format!("networks.{key}");
        let mut v = to_map(n);
        default_name(&mut v, &project.name, key);
        match n.driver.as_deref() {
            None | Some("overlay") => {}
            Some(d) => {
                w.warn(
                    format!("{path}.driver"),
                    format!("approximated: {d} becomes overlay, the network driver of a swarm"),
                );
                v.insert("driver".into(), json!("overlay"));
            }
        }
        for k in ["enable_ipv4", "enable_ipv6"] {
            if v.remove(k).is_some() {
                w.warn(
                    format!("{path}.{k}"),
                    "dropped: not in the compose file format docker stack deploy reads",
                );
            }
        }
        if let Some(Value::Object(ipam)) = v.get_mut("ipam") {
            if ipam.remove("options").is_some() {
                w.warn(format!("{path}.ipam.options"), "dropped: not in the format");
            }
            if let Some(Value::Array(pools)) = ipam.get_mut("config") {
                for (i, pool) in pools.iter_mut().enumerate() {
                    if let Value::Object(p) = pool {
                        let before = p.len();
                        p.retain(|k, _| k == "subnet");
                        if p.len() != before {
                            w.warn(
                                format!("{path}.ipam.config[{i}]"),
                                "ip_range, gateway and aux_addresses dropped: Swarm takes a subnet only",
                            );
                        }
                    }
                }
            }
        }
        networks.insert(key.clone(), Value::Object(v));
    }
    if !networks.is_empty() {
        doc.insert("networks".into(), Value::Object(networks));
    }
    let mut volumes = Map::new();
    for (key, v) in &project.volumes {
        let mut m = to_map(v);
        default_name(&mut m, &project.name, key);
        volumes.insert(key.clone(), Value::Object(m));
    }
    if !volumes.is_empty() {
        doc.insert("volumes".into(), Value::Object(volumes));
    }
    for (kind, objs) in [("configs", &project.configs), ("secrets", &project.secrets)] {
        let mut out = Map::new();
        for (key, o) in objs {
            if o.content.is_some() || o.environment.is_some() {
                return Err(ExportError::value(
                    format!("{kind}.{key}"),
                    "content and environment are not in the compose file format docker stack deploy reads; use file:",
                ));
            }
            let mut m = to_map(o);
            if m.remove("driver").is_some() {
                w.warn(format!("{kind}.{key}.driver"), "dropped: not in the format");
            }
            out.insert(key.clone(), Value::Object(m));
        }
        if !out.is_empty() {
            doc.insert(kind.into(), Value::Object(out));
        }
    }
    for key in project.unsupported.keys() {
        w.warn(key.clone(), "dropped: not carried to the Swarm file");
    }
    let mut document = Value::Object(doc);
    escape_dollars(&mut document);
    Ok(SwarmFile {
        document,
        warnings: w.into_sorted(),
        stack_name: project.name.clone(),
    })
}

/// `docker stack deploy` interpolates the file again; the values here are
/// already interpolated, so every `$` is doubled to stay as it is.
fn escape_dollars(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        Value::Array(a) => a.iter_mut().for_each(escape_dollars),
        Value::Object(m) => m.values_mut().for_each(escape_dollars),
        _ => {}
    }
}

fn to_map<T: serde::Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The loader fills in `<project>_<key>` names; left out, Swarm derives
/// the same from the stack name, and another stack name does not collide.
fn default_name(m: &mut Map<String, Value>, project: &str, key: &str) {
    if m.get("name").and_then(Value::as_str) == Some(&format!("{project}_{key}")) {
        m.remove("name");
    }
}

fn service(
    w: &mut Warnings,
    project: &str,
    name: &str,
    s: &Service,
    awaited: bool,
) -> Result<Value, ExportError> {
    let path = |k: &str| format!("services.{name}.{k}");
    let full = to_map(s);
    let mut out = Map::new();
    for (key, value) in &full {
        if KEPT.contains(&key.as_str()) {
            out.insert(key.clone(), value.clone());
        } else if let Some(why) = dropped(key) {
            w.warn(path(key), why);
        }
    }
    let image = s
        .image
        .clone()
        .unwrap_or_else(|| format!("{project}-{name}"));
    if s.build.is_some() {
        w.warn(
            path("build"),
            format!("not built: every node pulls {image:?}; build and push it to a registry the swarm can reach"),
        );
    }
    out.insert("image".into(), json!(image));

    let mut deploy = s.deploy.as_ref().map(to_map).unwrap_or_default();
    if let Some(n) = s.scale
        && !deploy.contains_key("replicas")
    {
        deploy.insert("replicas".into(), json!(n));
    }
    if let Some(r) = s.restart
        && !deploy.contains_key("restart_policy")
    {
        let rp = match r {
            RestartPolicy::No => json!({ "condition": "none" }),
            RestartPolicy::Always => json!({ "condition": "any" }),
            RestartPolicy::UnlessStopped => {
                w.warn(
                    path("restart"),
                    "approximated: unless-stopped becomes condition any (Swarm has no stopped state)",
                );
                json!({ "condition": "any" })
            }
            RestartPolicy::OnFailure { max_retries: None } => json!({ "condition": "on-failure" }),
            RestartPolicy::OnFailure {
                max_retries: Some(n),
            } => json!({ "condition": "on-failure", "max_attempts": n }),
        };
        deploy.insert("restart_policy".into(), rp);
    }
    if awaited && !deploy.contains_key("restart_policy") {
        // Swarm restarts a finished task by default; a one-shot service
        // others wait for must run until it succeeds, then stay done.
        w.warn(
            path("restart"),
            "approximated: others wait for it to complete, so it runs until it succeeds (restart_policy on-failure)",
        );
        deploy.insert(
            "restart_policy".into(),
            json!({ "condition": "on-failure" }),
        );
    }
    resources(&mut deploy, s);
    if !deploy.is_empty() {
        out.insert("deploy".into(), Value::Object(deploy));
    }

    if !s.depends_on.is_empty() {
        w.warn(
            path("depends_on"),
            "approximated: docker stack deploy starts services in any order and ignores conditions; services must retry until what they need is up",
        );
    }
    if !s.extra_hosts.is_empty() {
        // The format writes host:ip; the loader normalised to host=ip.
        let hosts: Vec<String> = s
            .extra_hosts
            .iter()
            .map(|h| h.replacen('=', ":", 1))
            .collect();
        out.insert("extra_hosts".into(), json!(hosts));
    }
    if let Some(h) = &s.healthcheck {
        let mut m = to_map(h);
        if m.remove("start_interval").is_some() {
            w.warn(
                path("healthcheck.start_interval"),
                "dropped: not in the format; checks run at interval from the start",
            );
        }
        out.insert("healthcheck".into(), Value::Object(m));
    }
    ports(w, name, s, &mut out);
    volumes(w, name, s, &mut out);
    networks(w, name, s, &mut out);
    Ok(Value::Object(out))
}

/// `cpus`, `mem_limit`, `mem_reservation` and `pids_limit` are
/// `deploy.resources` in Swarm; sizes and CPU counts are strings there.
fn resources(deploy: &mut Map<String, Value>, s: &Service) {
    let res = deploy
        .entry("resources")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("resources is an object");
    for (which, cpus, memory, pids) in [
        ("limits", s.cpus, s.mem_limit, s.pids_limit),
        ("reservations", None, s.mem_reservation, None),
    ] {
        let m = res
            .entry(which)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("limits is an object");
        if let Some(c) = cpus {
            m.entry("cpus").or_insert(json!(c));
        }
        if let Some(b) = memory {
            m.entry("memory").or_insert(json!(b.bytes()));
        }
        if let Some(p) = pids {
            m.entry("pids").or_insert(json!(p));
        }
        if let Some(c) = m.get("cpus").and_then(Value::as_f64) {
            m.insert("cpus".into(), json!(format!("{c}")));
        }
        if let Some(b) = m.get("memory").and_then(Value::as_i64) {
            m.insert("memory".into(), json!(b.to_string()));
        }
        if m.is_empty() {
            res.remove(which);
        }
    }
    if res.is_empty() {
        deploy.remove("resources");
    }
}

fn ports(w: &mut Warnings, name: &str, s: &Service, out: &mut Map<String, Value>) {
    let mut list = Vec::new();
    for (i, p) in s.ports.iter().enumerate() {
        let path = format!("services.{name}.ports[{i}]");
        let mut m = Map::new();
        m.insert(
            "mode".into(),
            json!(match p.mode {
                stack_spec::PortMode::Ingress => "ingress",
                stack_spec::PortMode::Host => "host",
            }),
        );
        m.insert("target".into(), json!(p.target));
        if let Some(pub_) = &p.published {
            match pub_.parse::<u16>() {
                Ok(n) => {
                    m.insert("published".into(), json!(n));
                }
                Err(_) => {
                    w.warn(
                        format!("{path}.published"),
                        format!("dropped: the range {pub_:?} cannot be published by Swarm; the port is published on one it picks"),
                    );
                }
            }
        }
        m.insert("protocol".into(), to_value(&p.protocol));
        if p.host_ip.is_some() {
            w.warn(
                format!("{path}.host_ip"),
                "dropped: Swarm publishes on every node address",
            );
        }
        if p.name.is_some() || p.app_protocol.is_some() {
            w.warn(path, "name and app_protocol dropped: not in the format");
        }
        list.push(Value::Object(m));
    }
    if !list.is_empty() {
        out.insert("ports".into(), Value::Array(list));
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn volumes(w: &mut Warnings, name: &str, s: &Service, out: &mut Map<String, Value>) {
    let mut list = Vec::new();
    for (i, v) in s.volumes.iter().enumerate() {
        let path = format!("services.{name}.volumes[{i}]");
        if !matches!(
            v.kind,
            MountType::Bind | MountType::Volume | MountType::Tmpfs
        ) {
            w.warn(
                path,
                format!("dropped: a {:?} mount is not in the format", v.kind),
            );
            continue;
        }
        let mut m = Map::new();
        m.insert("type".into(), to_value(&v.kind));
        if let Some(src) = &v.source {
            m.insert("source".into(), json!(src));
        }
        m.insert("target".into(), json!(v.target));
        if v.read_only {
            m.insert("read_only".into(), json!(true));
        }
        if let Some(b) = &v.bind {
            if let Some(p) = &b.propagation {
                m.insert("bind".into(), json!({ "propagation": p }));
            }
            if b.selinux.is_some() || b.recursive.is_some() {
                w.warn(
                    format!("{path}.bind"),
                    "selinux and recursive dropped: not in the format",
                );
            }
        }
        if v.kind == MountType::Bind {
            w.warn(
                path.clone(),
                "approximated: the bind mount source must exist on every node a task may run on",
            );
        }
        if let Some(o) = &v.volume {
            if o.nocopy {
                m.insert("volume".into(), json!({ "nocopy": true }));
            }
            if o.subpath.is_some() || !o.labels.is_empty() {
                w.warn(
                    format!("{path}.volume"),
                    "subpath and labels dropped: not in the format",
                );
            }
        }
        if let Some(t) = &v.tmpfs {
            if let Some(size) = t.size {
                m.insert("tmpfs".into(), json!({ "size": size.bytes() }));
            }
            if t.mode.is_some() {
                w.warn(format!("{path}.tmpfs.mode"), "dropped: not in the format");
            }
        }
        if v.image.is_some() {
            w.warn(format!("{path}.image"), "dropped: not in the format");
        }
        list.push(Value::Object(m));
    }
    for t in &s.tmpfs {
        let (target, opts) = t.split_once(':').unwrap_or((t, ""));
        if !opts.is_empty() {
            w.warn(
                format!("services.{name}.tmpfs"),
                format!("approximated: the options {opts:?} are dropped"),
            );
        }
        list.push(json!({ "type": "tmpfs", "target": target }));
    }
    if !list.is_empty() {
        out.insert("volumes".into(), Value::Array(list));
    }
}

fn networks(w: &mut Warnings, name: &str, s: &Service, out: &mut Map<String, Value>) {
    if s.networks.is_empty() {
        return;
    }
    let mut nets: IndexMap<String, Value> = IndexMap::new();
    for (net, settings) in &s.networks {
        let v = match settings {
            None => Value::Null,
            Some(n) => {
                let mut m = Map::new();
                if !n.aliases.is_empty() {
                    m.insert("aliases".into(), json!(n.aliases));
                }
                if n.ipv4_address.is_some()
                    || n.ipv6_address.is_some()
                    || n.mac_address.is_some()
                    || n.priority.is_some()
                    || n.gw_priority.is_some()
                    || n.interface_name.is_some()
                    || !n.driver_opts.is_empty()
                    || !n.link_local_ips.is_empty()
                {
                    w.warn(
                        format!("services.{name}.networks.{net}"),
                        "only aliases kept: Swarm assigns addresses itself and has no per-network interface settings",
                    );
                }
                if m.is_empty() {
                    Value::Null
                } else {
                    Value::Object(m)
                }
            }
        };
        nets.insert(net.clone(), v);
    }
    out.insert("networks".into(), json!(nets));
}
