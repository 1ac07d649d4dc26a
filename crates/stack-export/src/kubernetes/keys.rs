//! The Kubernetes fate of every service key: carried by the builders (which
//! warn about the parts they approximate) or dropped with the reason given
//! here. A key missing from the table is dropped with a generic warning, so
//! a key added to the model later can never disappear silently.

use stack_spec::Service;

use super::Ctx;

/// Why a service key cannot go to Kubernetes; `None` when a builder carries it.
pub fn dropped(key: &str) -> Option<&'static str> {
    Some(match key {
        "image" | "build" | "command" | "entrypoint" | "environment" | "env_file" | "ports"
        | "expose" | "volumes" | "tmpfs" | "depends_on" | "healthcheck" | "restart" | "deploy"
        | "scale" | "cpus" | "mem_limit" | "mem_reservation" | "shm_size" | "user"
        | "group_add" | "hostname" | "working_dir" | "networks" | "network_mode" | "dns"
        | "dns_search" | "dns_opt" | "extra_hosts" | "read_only" | "privileged" | "tty"
        | "stdin_open" | "cap_add" | "cap_drop" | "sysctls" | "stop_grace_period" | "labels"
        | "annotations" | "profiles" | "secrets" | "configs" | "pull_policy" | "platform"
        | "links" | "ipc" | "pid" | "x-stack" => return None,
        "volumes_from" => "dropped: Kubernetes has no volumes_from; mount the same volumes by name",
        "cpu_shares" | "cpu_quota" | "cpu_period" | "cpuset" => {
            "dropped: Kubernetes sets CPU through requests and limits only (use cpus or deploy.resources)"
        }
        "memswap_limit" | "mem_swappiness" => "dropped: Kubernetes manages swap per node",
        "pids_limit" => {
            "dropped: Kubernetes limits pids per node (kubelet podPidsLimit), not per container"
        }
        "oom_kill_disable" | "oom_score_adj" => {
            "dropped: Kubernetes sets the OOM score from the pod's QoS class"
        }
        "blkio_config" => "dropped: Kubernetes has no block I/O limits",
        "ulimits" => "dropped: Kubernetes has no per-container ulimits",
        "domainname" => "dropped: pods take their domain from the cluster DNS",
        "init" => {
            "dropped: Kubernetes runs no init process in the container; use an image with one"
        }
        "security_opt" => {
            "dropped: set seccomp, AppArmor and SELinux in the pod's securityContext by hand"
        }
        "devices" => "dropped: Kubernetes passes devices through device plugins",
        "stop_signal" => "dropped: Kubernetes stops containers with SIGTERM",
        "container_name" => "dropped: Kubernetes names pods itself",
        "develop" => "dropped: watch mode is for a development machine",
        "logging" => "dropped: the cluster's log collection applies",
        "uts" => "dropped: Kubernetes has no UTS namespace sharing",
        _ => "dropped: not carried to Kubernetes",
    })
}

/// Warn about every key of `service` that no builder carries.
pub fn warn_service(cx: &mut Ctx<'_>, name: &str, service: &Service) {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(service) else {
        return;
    };
    for key in map.keys() {
        if let Some(why) = dropped(key) {
            cx.w.warn(format!("services.{name}.{key}"), why);
        }
    }
}

/// Warn about top-level settings Kubernetes has no place for.
pub fn warn_project(cx: &mut Ctx<'_>) {
    let p = cx.project;
    for (name, n) in &p.networks {
        let path = format!("networks.{name}");
        if n.driver.is_some() || !n.driver_opts.is_empty() {
            cx.w.warn(
                format!("{path}.driver"),
                "dropped: the cluster's network plugin applies",
            );
        }
        if n.ipam.is_some() {
            cx.w.warn(
                format!("{path}.ipam"),
                "dropped: pods get addresses from the cluster",
            );
        }
        if n.enable_ipv4.is_some() || n.enable_ipv6.is_some() {
            cx.w.warn(
                format!("{path}.enable_ipv6"),
                "dropped: the cluster decides the address families",
            );
        }
        if n.attachable {
            cx.w.warn(
                format!("{path}.attachable"),
                "dropped: Kubernetes has no attachable networks",
            );
        }
        if n.external {
            cx.w.warn(
                format!("{path}.external"),
                "approximated: only this stack's services on it are let in; other members are unknown",
            );
        }
        let default_name = format!("{}_{name}", p.name);
        if n.name.as_deref().is_some_and(|n| n != default_name) || !n.labels.is_empty() {
            cx.w.warn(
                path.clone(),
                "name and labels dropped: a network is a NetworkPolicy in Kubernetes",
            );
        }
    }
    for (name, v) in &p.volumes {
        if v.driver.is_some() || !v.driver_opts.is_empty() {
            cx.w.warn(
                format!("volumes.{name}.driver"),
                "dropped: the claim uses the cluster's default StorageClass",
            );
        }
    }
    for (kind, objs) in [("configs", &p.configs), ("secrets", &p.secrets)] {
        for (name, o) in objs {
            if o.driver.is_some() || o.template_driver.is_some() {
                cx.w.warn(
                    format!("{kind}.{name}.driver"),
                    "dropped: Kubernetes stores the content as given",
                );
            }
        }
    }
    for key in p.unsupported.keys() {
        cx.w.warn(key.clone(), "dropped: not carried to Kubernetes");
    }
}
