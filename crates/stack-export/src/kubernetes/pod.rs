//! A service as a workload: its container (and the containers of the
//! one-shot services it waits for, as init containers), the pod around it,
//! and the Deployment, StatefulSet or DaemonSet that keeps it running.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use stack_spec::{DependsOnCondition, NetworkMode, PullPolicy, RestartPolicy, Service};

use super::{Ctx, storage};
use crate::ExportError;
use crate::names::{is_dns_label, is_label_key, is_label_value};

/// The workload object for `name`.
pub fn workload(cx: &mut Ctx<'_>, name: &str, s: &Service) -> Result<Value, ExportError> {
    let mut volumes: BTreeMap<String, Value> = BTreeMap::new();
    let mut init = Vec::new();
    for dep in completion_chain(cx, name) {
        let dep_service = &cx.project.services[dep];
        let mut c = container(cx, dep, dep_service, &mut volumes)?;
        // The API refuses probes on init containers; one runs to its exit.
        let mut had_probes = false;
        if let Some(m) = c.as_object_mut() {
            for p in ["readinessProbe", "livenessProbe", "startupProbe"] {
                had_probes |= m.remove(p).is_some();
            }
        }
        if had_probes {
            cx.w.warn(
                format!("services.{dep}.healthcheck"),
                "dropped: an init container has no probes; its exit status is what counts",
            );
        }
        init.push(c);
    }
    let main = container(cx, name, s, &mut volumes)?;
    let mut spec = Map::new();
    if !init.is_empty() {
        spec.insert("initContainers".into(), Value::Array(init));
    }
    spec.insert("containers".into(), json!([main]));
    pod_settings(cx, name, s, &mut spec, &mut volumes);
    if !volumes.is_empty() {
        spec.insert(
            "volumes".into(),
            Value::Array(volumes.into_values().collect()),
        );
    }
    restart_warnings(cx, name, s);

    let (labels, annotations) = user_labels(cx, name, s);
    let mut template_labels = cx.selector(name).as_object().cloned().unwrap_or_default();
    template_labels.extend(super::network::network_labels(cx, name, s));
    template_labels.extend(labels.clone());
    let mut template_meta = json!({ "labels": template_labels });
    if !annotations.is_empty() {
        template_meta["annotations"] = Value::Object(annotations.clone());
    }
    let k = cx.name(name).to_string();
    let mut meta = cx.metadata(&k, Some(name));
    meta["labels"]
        .as_object_mut()
        .expect("metadata labels")
        .extend(deploy_labels(cx, name, s));
    if !annotations.is_empty() {
        meta["annotations"] = Value::Object(annotations);
    }
    let template = json!({ "metadata": template_meta, "spec": spec });
    let selector = json!({ "matchLabels": cx.selector(name) });

    let deploy = s.deploy.as_ref();
    let global = deploy.and_then(|d| d.mode.as_deref()) == Some("global");
    let replicas = deploy.and_then(|d| d.replicas).or(s.scale).unwrap_or(1);
    let (kind, api, spec) = if global {
        if deploy.and_then(|d| d.replicas).is_some() || s.scale.is_some() {
            cx.w.warn(
                format!("services.{name}.deploy.replicas"),
                "dropped: a global service runs one pod per node",
            );
        }
        (
            "DaemonSet",
            "apps/v1",
            json!({ "selector": selector, "template": template }),
        )
    } else if replicas == 1 && storage::mounts_named_volume(s) {
        (
            "StatefulSet",
            "apps/v1",
            json!({ "serviceName": k, "replicas": 1, "selector": selector, "template": template }),
        )
    } else {
        (
            "Deployment",
            "apps/v1",
            json!({ "replicas": replicas, "selector": selector, "template": template }),
        )
    };
    Ok(json!({ "apiVersion": api, "kind": kind, "metadata": meta, "spec": spec }))
}

/// The `service_completed_successfully` dependencies of `name`, each after
/// its own, so that they run as init containers in start order.
pub fn completion_chain<'a>(cx: &Ctx<'a>, name: &str) -> Vec<&'a str> {
    fn visit<'a>(cx: &Ctx<'a>, name: &str, out: &mut Vec<&'a str>) {
        let Some(s) = cx.project.services.get(name) else {
            return;
        };
        for (dep, d) in &s.depends_on {
            if d.condition == DependsOnCondition::ServiceCompletedSuccessfully {
                let (key, _) = cx
                    .project
                    .services
                    .get_key_value(dep)
                    .expect("dependencies are checked by the loader");
                visit(cx, dep, out);
                if !out.contains(&key.as_str()) {
                    out.push(key.as_str());
                }
            }
        }
    }
    let mut out = Vec::new();
    visit(cx, name, &mut out);
    out
}

/// From this version on (RelaxedEnvironmentVariableValidation, on by
/// default) an environment variable may have any printable name but `=`.
const RELAXED_ENV_NAMES: (u32, u32) = (1, 32);

/// `[-._a-zA-Z][-._a-zA-Z0-9]*`, what older API servers accept.
fn is_strict_env_name(k: &str) -> bool {
    let mut b = k.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, b'-' | b'.' | b'_'))
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
}

fn is_relaxed_env_name(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|c| (b' '..=b'~').contains(&c) && c != b'=')
}

/// Kubelet expands `$(VAR)` in commands, arguments and environment values
/// and turns `$$` into `$`; doubling every `$` keeps the text as written.
fn escape(s: &str) -> String {
    s.replace('$', "$$")
}

fn escaped(v: &[String]) -> Value {
    json!(v.iter().map(|s| escape(s)).collect::<Vec<_>>())
}

/// Whole seconds for a probe or grace period (Kubernetes has no finer
/// unit), rounded up to at least `min`; warns when that changes the value.
fn seconds(cx: &mut Ctx<'_>, path: String, d: Duration, min: u64) -> u64 {
    let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let s = whole.max(min);
    if Duration::from_secs(s) != d {
        cx.w.warn(
            path,
            format!(
                "approximated: {} becomes {s}s (Kubernetes counts whole seconds, at least {min})",
                stack_spec::GoDuration(d)
            ),
        );
    }
    s
}

/// The image a service runs; a built image by the tag it would get.
fn image(cx: &mut Ctx<'_>, name: &str, s: &Service) -> String {
    let image = s
        .image
        .clone()
        .unwrap_or_else(|| format!("{}-{}", cx.project.name, name));
    if s.build.is_some() {
        cx.w.warn(
            format!("services.{name}.build"),
            format!("not built: the cluster pulls {image:?}; build and push it to a registry the cluster can reach"),
        );
    }
    image
}

/// The container of service `name`; its volumes go into `volumes`.
fn container(
    cx: &mut Ctx<'_>,
    name: &str,
    s: &Service,
    volumes: &mut BTreeMap<String, Value>,
) -> Result<Value, ExportError> {
    let mut c = Map::new();
    c.insert("name".into(), json!(cx.name(name)));
    c.insert("image".into(), json!(image(cx, name, s)));
    if let Some(p) = s.pull_policy {
        let policy = match p {
            PullPolicy::Always => "Always",
            PullPolicy::Never => "Never",
            PullPolicy::Missing => "IfNotPresent",
            PullPolicy::Build | PullPolicy::Every(_) => {
                cx.w.warn(
                    format!("services.{name}.pull_policy"),
                    format!("approximated: {p} becomes IfNotPresent"),
                );
                "IfNotPresent"
            }
        };
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    if let Some(e) = &s.entrypoint {
        c.insert("command".into(), escaped(e));
    }
    if let Some(a) = &s.command {
        c.insert("args".into(), escaped(a));
    }
    if let Some(wd) = &s.working_dir {
        c.insert("workingDir".into(), json!(wd));
    }
    let mut env = Vec::new();
    for (k, v) in &s.environment {
        let accepted = if cx.opts.version >= RELAXED_ENV_NAMES {
            is_relaxed_env_name(k)
        } else {
            is_strict_env_name(k)
        };
        match v {
            Some(_) if !accepted => cx.w.warn(
                format!("services.{name}.environment.{k}"),
                format!(
                    "dropped: Kubernetes {}.{} refuses the name (any printable name but '=' from 1.32 on, see --k8s-version)",
                    cx.opts.version.0, cx.opts.version.1
                ),
            ),
            Some(v) => env.push(json!({ "name": k, "value": escape(v) })),
            None => cx.w.warn(
                format!("services.{name}.environment.{k}"),
                "dropped: the variable is set nowhere",
            ),
        }
    }
    if !env.is_empty() {
        c.insert("env".into(), Value::Array(env));
    }
    let ports = container_ports(cx, name, s);
    if !ports.is_empty() {
        c.insert(
            "ports".into(),
            json!(
                ports
                    .iter()
                    .map(|(p, proto)| json!({ "containerPort": p, "protocol": proto }))
                    .collect::<Vec<_>>()
            ),
        );
    }
    if let Some(r) = resources(cx, name, s) {
        c.insert("resources".into(), r);
    }
    let mounts = storage::mounts(cx, name, s, volumes)?;
    if !mounts.is_empty() {
        c.insert("volumeMounts".into(), Value::Array(mounts));
    }
    probes(cx, name, s, &mut c);
    if let Some(sc) = security_context(cx, name, s) {
        c.insert("securityContext".into(), sc);
    }
    if s.tty {
        c.insert("tty".into(), json!(true));
    }
    if s.stdin_open {
        c.insert("stdin".into(), json!(true));
    }
    Ok(Value::Object(c))
}

/// Container ports from `ports` and `expose`, sorted, each once.
pub fn container_ports(cx: &mut Ctx<'_>, name: &str, s: &Service) -> Vec<(u16, &'static str)> {
    let mut out = std::collections::BTreeSet::new();
    for p in &s.ports {
        out.insert((p.target, protocol(p.protocol)));
    }
    for (i, e) in s.expose.iter().enumerate() {
        let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let proto = match proto {
            "udp" => "UDP",
            "sctp" => "SCTP",
            _ => "TCP",
        };
        match port.parse::<u16>() {
            Ok(p) => {
                out.insert((p, proto));
            }
            Err(_) => cx.w.warn(
                format!("services.{name}.expose[{i}]"),
                format!("dropped: {e:?} is not one port (Kubernetes lists ports one by one)"),
            ),
        }
    }
    out.into_iter().collect()
}

pub fn protocol(p: stack_spec::PortProtocol) -> &'static str {
    match p {
        stack_spec::PortProtocol::Tcp => "TCP",
        stack_spec::PortProtocol::Udp => "UDP",
        stack_spec::PortProtocol::Sctp => "SCTP",
    }
}

fn cpu(c: f64) -> String {
    format!("{}m", (c * 1000.0).round() as i64)
}

fn resources(cx: &mut Ctx<'_>, name: &str, s: &Service) -> Option<Value> {
    let res = s.deploy.as_ref().and_then(|d| d.resources.as_ref());
    let lim = res.and_then(|r| r.limits.as_ref());
    let req = res.and_then(|r| r.reservations.as_ref());
    for (which, l) in [("limits", lim), ("reservations", req)] {
        let Some(l) = l else { continue };
        let path = format!("services.{name}.deploy.resources.{which}");
        if l.pids.is_some() {
            cx.w.warn(
                format!("{path}.pids"),
                "dropped: Kubernetes limits pids per node (kubelet podPidsLimit), not per container",
            );
        }
        if l.devices.is_some() || l.generic_resources.is_some() {
            cx.w.warn(
                format!("{path}.devices"),
                "dropped: request devices through the cluster's device plugins",
            );
        }
    }
    let mut limits = Map::new();
    if let Some(c) = lim.and_then(|l| l.cpus).or(s.cpus) {
        limits.insert("cpu".into(), json!(cpu(c)));
    }
    if let Some(m) = lim.and_then(|l| l.memory).or(s.mem_limit)
        && m.bytes() > 0
    {
        limits.insert("memory".into(), json!(m.bytes().to_string()));
    }
    let mut requests = Map::new();
    if let Some(c) = req.and_then(|l| l.cpus) {
        requests.insert("cpu".into(), json!(cpu(c)));
    }
    if let Some(m) = req.and_then(|l| l.memory).or(s.mem_reservation)
        && m.bytes() > 0
    {
        requests.insert("memory".into(), json!(m.bytes().to_string()));
    }
    let mut r = Map::new();
    if !limits.is_empty() {
        r.insert("limits".into(), Value::Object(limits));
    }
    if !requests.is_empty() {
        r.insert("requests".into(), Value::Object(requests));
    }
    (!r.is_empty()).then_some(Value::Object(r))
}

fn probes(cx: &mut Ctx<'_>, name: &str, s: &Service, c: &mut Map<String, Value>) {
    let Some(h) = &s.healthcheck else { return };
    let path = format!("services.{name}.healthcheck");
    if h.disable {
        return;
    }
    let command: Vec<String> = match h.test.as_deref() {
        None => {
            cx.w.warn(
                format!("{path}.test"),
                "dropped: the image's own HEALTHCHECK is not visible to Kubernetes; give test: to get probes",
            );
            return;
        }
        Some([first, ..]) if first == "NONE" => return,
        Some([first, rest @ ..]) if first == "CMD" => rest.to_vec(),
        Some([first, cmd, ..]) if first == "CMD-SHELL" => {
            vec!["/bin/sh".into(), "-c".into(), cmd.clone()]
        }
        Some(other) => other.to_vec(),
    };
    let interval = h.interval.map_or(Duration::from_secs(30), |d| d.0);
    let timeout = h.timeout.map_or(Duration::from_secs(30), |d| d.0);
    let period = seconds(cx, format!("{path}.interval"), interval, 1);
    let timeout = seconds(cx, format!("{path}.timeout"), timeout, 1);
    let retries = h.retries.unwrap_or(3).max(1);
    let probe = json!({
        "exec": { "command": command },
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": retries,
    });
    c.insert("readinessProbe".into(), probe.clone());
    c.insert("livenessProbe".into(), probe.clone());
    if let Some(sp) = h.start_period {
        // During the start period failures do not count; a startup probe
        // holds the other two back until the first success, as compose
        // marks the container healthy at the first passing check.
        let every = h.start_interval.map_or(Duration::from_secs(5), |d| d.0);
        let every = seconds(cx, format!("{path}.start_interval"), every, 1);
        let grace = sp.0.as_secs().div_ceil(every).max(1);
        let mut startup = probe;
        startup["periodSeconds"] = json!(every);
        startup["failureThreshold"] = json!(grace + u64::from(retries));
        c.insert("startupProbe".into(), startup);
    } else if h.start_interval.is_some() {
        cx.w.warn(
            format!("{path}.start_interval"),
            "dropped: it applies only during start_period, which is not set",
        );
    }
}

fn capability(c: &str) -> String {
    let c = c.to_ascii_uppercase();
    c.strip_prefix("CAP_").map(str::to_string).unwrap_or(c)
}

fn security_context(cx: &mut Ctx<'_>, name: &str, s: &Service) -> Option<Value> {
    let mut sc = Map::new();
    let mut caps = Map::new();
    if !s.cap_add.is_empty() {
        caps.insert(
            "add".into(),
            json!(s.cap_add.iter().map(|c| capability(c)).collect::<Vec<_>>()),
        );
    }
    if !s.cap_drop.is_empty() {
        caps.insert(
            "drop".into(),
            json!(s.cap_drop.iter().map(|c| capability(c)).collect::<Vec<_>>()),
        );
    }
    if !caps.is_empty() {
        sc.insert("capabilities".into(), Value::Object(caps));
    }
    if s.privileged {
        sc.insert("privileged".into(), json!(true));
    }
    if s.read_only {
        sc.insert("readOnlyRootFilesystem".into(), json!(true));
    }
    if let Some(u) = &s.user {
        let (user, group) = u
            .split_once(':')
            .map_or((u.as_str(), None), |(a, b)| (a, Some(b)));
        match (user.parse::<i64>(), group.map(str::parse::<i64>)) {
            (Ok(uid), None) => {
                sc.insert("runAsUser".into(), json!(uid));
            }
            (Ok(uid), Some(Ok(gid))) => {
                sc.insert("runAsUser".into(), json!(uid));
                sc.insert("runAsGroup".into(), json!(gid));
            }
            _ => cx.w.warn(
                format!("services.{name}.user"),
                format!("dropped: Kubernetes takes numeric ids only, found {u:?}"),
            ),
        }
    }
    (!sc.is_empty()).then_some(Value::Object(sc))
}

/// Pod-level settings of the service's own pod.
fn pod_settings(
    cx: &mut Ctx<'_>,
    name: &str,
    s: &Service,
    spec: &mut Map<String, Value>,
    volumes: &mut BTreeMap<String, Value>,
) {
    let path = |k: &str| format!("services.{name}.{k}");
    if let Some(h) = &s.hostname {
        if is_dns_label(h) {
            spec.insert("hostname".into(), json!(h));
        } else {
            cx.w.warn(
                path("hostname"),
                format!("dropped: {h:?} is not a DNS label"),
            );
        }
    }
    if let Some(g) = s.stop_grace_period {
        let secs = seconds(cx, path("stop_grace_period"), g.0, 0);
        spec.insert("terminationGracePeriodSeconds".into(), json!(secs));
    }
    match &s.network_mode {
        Some(NetworkMode::Host) => {
            spec.insert("hostNetwork".into(), json!(true));
            spec.insert("dnsPolicy".into(), json!("ClusterFirstWithHostNet"));
        }
        Some(m @ (NetworkMode::Service(_) | NetworkMode::Container(_))) => cx.w.warn(
            path("network_mode"),
            format!("dropped: {m} cannot share a namespace across pods; put the containers in one pod by hand"),
        ),
        Some(m @ NetworkMode::Network(_)) => cx.w.warn(
            path("network_mode"),
            format!("dropped: {m}; list the network under networks: instead"),
        ),
        Some(NetworkMode::None | NetworkMode::Bridge) | None => {}
    }
    for (key, field) in [("ipc", "hostIPC"), ("pid", "hostPID")] {
        let v = if key == "ipc" { &s.ipc } else { &s.pid };
        match v.as_deref() {
            Some("host") => {
                spec.insert(field.into(), json!(true));
            }
            Some("private") | None => {}
            Some(other) => cx.w.warn(
                path(key),
                format!("dropped: {other:?}; Kubernetes shares only the host's namespace"),
            ),
        }
    }
    if let Some(p) = &s.platform {
        let mut parts = p.split('/');
        let os = parts.next().unwrap_or_default();
        let arch = parts.next();
        let mut sel = Map::new();
        sel.insert("kubernetes.io/os".into(), json!(os));
        if let Some(a) = arch {
            sel.insert("kubernetes.io/arch".into(), json!(a));
        }
        if parts.next().is_some() {
            cx.w.warn(
                path("platform"),
                "approximated: the variant is dropped; nodes are selected by os and arch",
            );
        }
        spec.insert("nodeSelector".into(), Value::Object(sel));
    }
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in &s.extra_hosts {
        if let Some((host, ip)) = h.split_once('=').or_else(|| h.split_once(':')) {
            aliases
                .entry(ip.to_string())
                .or_default()
                .push(host.to_string());
        }
    }
    if !aliases.is_empty() {
        spec.insert(
            "hostAliases".into(),
            json!(
                aliases
                    .into_iter()
                    .map(|(ip, hostnames)| json!({ "ip": ip, "hostnames": hostnames }))
                    .collect::<Vec<_>>()
            ),
        );
    }
    let mut dns = Map::new();
    if !s.dns.is_empty() {
        cx.w.warn(
            path("dns"),
            "approximated: the servers are added after the cluster's DNS, which still answers service names",
        );
        dns.insert("nameservers".into(), json!(s.dns));
    }
    if !s.dns_search.is_empty() {
        dns.insert("searches".into(), json!(s.dns_search));
    }
    if !s.dns_opt.is_empty() {
        let opts: Vec<Value> = s
            .dns_opt
            .iter()
            .map(|o| match o.split_once(':') {
                Some((k, v)) => json!({ "name": k, "value": v }),
                None => json!({ "name": o }),
            })
            .collect();
        dns.insert("options".into(), Value::Array(opts));
    }
    if !dns.is_empty() {
        spec.insert("dnsConfig".into(), Value::Object(dns));
    }
    let mut psc = Map::new();
    if !s.sysctls.is_empty() {
        let mut v: Vec<(&String, &String)> = s.sysctls.iter().collect();
        v.sort();
        psc.insert(
            "sysctls".into(),
            json!(
                v.into_iter()
                    .map(|(k, v)| json!({ "name": k, "value": v }))
                    .collect::<Vec<_>>()
            ),
        );
    }
    let mut groups = Vec::new();
    for g in &s.group_add {
        match g.parse::<i64>() {
            Ok(id) => groups.push(id),
            Err(_) => cx.w.warn(
                path("group_add"),
                format!("dropped: Kubernetes takes numeric group ids only, found {g:?}"),
            ),
        }
    }
    if !groups.is_empty() {
        psc.insert("supplementalGroups".into(), json!(groups));
    }
    if !psc.is_empty() {
        spec.insert("securityContext".into(), Value::Object(psc));
    }
    if let Some(shm) = s.shm_size {
        volumes.insert(
            format!("{}-shm", cx.name(name)),
            json!({ "name": format!("{}-shm", cx.name(name)), "emptyDir": { "medium": "Memory", "sizeLimit": shm.bytes().to_string() } }),
        );
        if let Some(Value::Array(c)) = spec.get_mut("containers")
            && let Some(Value::Object(main)) = c.first_mut()
        {
            let mounts = main.entry("volumeMounts").or_insert_with(|| json!([]));
            if let Value::Array(m) = mounts {
                m.push(
                    json!({ "name": format!("{}-shm", cx.name(name)), "mountPath": "/dev/shm" }),
                );
            }
        }
    }
    if !s.links.is_empty() {
        cx.w.warn(
            path("links"),
            "approximated: services reach each other by Service name; link aliases are dropped",
        );
    }
    // x-stack.restart_on_unhealthy needs nothing more: the liveness probe
    // restarts an unhealthy container in every case.
}

/// An init container runs in its host's pod: its own pod-level settings
/// and restart policy have nowhere to go.
pub fn init_only_warnings(cx: &mut Ctx<'_>, name: &str, s: &Service) {
    let path = |k: &str| format!("services.{name}.{k}");
    if s.restart
        .is_some_and(|r| r != RestartPolicy::OnFailure { max_retries: None })
    {
        cx.w.warn(
            path("restart"),
            "approximated: as an init container it is retried until it succeeds",
        );
    }
    let pod_level = [
        ("ports", !s.ports.is_empty()),
        ("expose", !s.expose.is_empty()),
        ("hostname", s.hostname.is_some()),
        ("extra_hosts", !s.extra_hosts.is_empty()),
        ("dns", !s.dns.is_empty()),
        ("network_mode", s.network_mode.is_some()),
        ("sysctls", !s.sysctls.is_empty()),
        ("shm_size", s.shm_size.is_some()),
        ("stop_grace_period", s.stop_grace_period.is_some()),
        ("scale", s.scale.is_some()),
        ("deploy", s.deploy.is_some()),
    ];
    for (key, set) in pod_level {
        if set {
            cx.w.warn(
                path(key),
                "dropped: an init container takes the pod settings of the service it runs in",
            );
        }
    }
}

/// Kubernetes has no start order between pods; only completion
/// dependencies (init containers) are kept exactly.
pub fn dependency_warnings(cx: &mut Ctx<'_>, name: &str, s: &Service) {
    for (dep, d) in &s.depends_on {
        let p = format!("services.{name}.depends_on.{dep}");
        match d.condition {
            DependsOnCondition::ServiceCompletedSuccessfully => {}
            DependsOnCondition::ServiceStarted => cx.w.warn(
                p,
                "approximated: Kubernetes starts all pods at once; the service name resolves once the dependency's pod exists",
            ),
            DependsOnCondition::ServiceHealthy => cx.w.warn(
                p,
                "approximated: Kubernetes starts all pods at once; the dependency's Service sends traffic only once its readiness probe passes",
            ),
        }
    }
}

fn restart_warnings(cx: &mut Ctx<'_>, name: &str, s: &Service) {
    match s.restart {
        Some(RestartPolicy::No) => cx.w.warn(
            format!("services.{name}.restart"),
            "approximated: Kubernetes restarts a workload's containers always; \"no\" cannot be kept",
        ),
        Some(RestartPolicy::OnFailure { max_retries }) => cx.w.warn(
            format!("services.{name}.restart"),
            format!(
                "approximated: Kubernetes restarts a workload's containers always, also after a successful exit{}",
                if max_retries.is_some() { "; the retry limit is dropped" } else { "" }
            ),
        ),
        Some(RestartPolicy::Always | RestartPolicy::UnlessStopped) | None => {}
    }
    let Some(d) = &s.deploy else { return };
    if let Some(rp) = &d.restart_policy {
        let p = format!("services.{name}.deploy.restart_policy");
        if rp.condition.as_deref().is_some_and(|c| c != "any") {
            cx.w.warn(
                format!("{p}.condition"),
                "approximated: Kubernetes restarts a workload's containers always",
            );
        }
        if rp.delay.is_some() || rp.max_attempts.is_some() || rp.window.is_some() {
            cx.w.warn(
                p,
                "dropped: Kubernetes uses its own restart backoff (10s doubling to 5m)",
            );
        }
    }
    for key in d.other.keys() {
        cx.w.warn(
            format!("services.{name}.deploy.{key}"),
            "dropped: a Swarm setting with no Kubernetes counterpart here",
        );
    }
    if d.mode
        .as_deref()
        .is_some_and(|m| m != "global" && m != "replicated")
    {
        cx.w.warn(
            format!("services.{name}.deploy.mode"),
            "dropped: only replicated and global have Kubernetes counterparts",
        );
    }
}

/// Service labels Kubernetes accepts as labels, and the rest (plus
/// `annotations:`) as annotations.
fn user_labels(
    cx: &mut Ctx<'_>,
    name: &str,
    s: &Service,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut sorted: Vec<(&String, &String)> = s.labels.iter().collect();
    sorted.sort();
    for (k, v) in sorted {
        if is_label_key(k) && is_label_value(v) {
            labels.insert(k.clone(), json!(v));
        } else {
            cx.w.warn(
                format!("services.{name}.labels.{k}"),
                "approximated: not a valid Kubernetes label; carried as an annotation",
            );
            annotations.insert(k.clone(), json!(v));
        }
    }
    let mut sorted: Vec<(&String, &String)> = s.annotations.iter().collect();
    sorted.sort();
    for (k, v) in sorted {
        annotations.insert(k.clone(), json!(v));
    }
    (labels, annotations)
}

/// `deploy.labels` (labels of the Swarm service, not of its containers)
/// on the workload object.
fn deploy_labels(cx: &mut Ctx<'_>, name: &str, s: &Service) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(d) = &s.deploy else { return out };
    let mut sorted: Vec<(&String, &String)> = d.labels.iter().collect();
    sorted.sort();
    for (k, v) in sorted {
        if is_label_key(k) && is_label_value(v) {
            out.insert(k.clone(), json!(v));
        } else {
            cx.w.warn(
                format!("services.{name}.deploy.labels.{k}"),
                "dropped: not a valid Kubernetes label",
            );
        }
    }
    out
}
