//! A service (plus its image's defaults) as an OCI runtime spec, the way
//! Docker turns `docker run` flags into one. Pure: whatever needs the host
//! (device numbers, volume paths, the image's passwd file) comes in.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{Value, json};
use stack_image::merge::ResolvedProcess;
use stack_runtime::default_spec;
use stack_spec::settings::{self, NamespaceMode};
use stack_spec::{MountType, NetworkMode, Service};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("user {0:?} not found in the image's /etc/passwd")]
    UnknownUser(String),
    #[error("group {0:?} not found in the image's /etc/group")]
    UnknownGroup(String),
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    /// A setting the loader checks (`stack_spec::settings`), bad here in
    /// a project saved by an older `stack`: refused, never defaulted.
    #[error("{key}: {message}")]
    Setting { key: String, message: String },
    #[error("{key}: {mode:?} is not supported")]
    UnsupportedMode { key: &'static str, mode: String },
    #[error("device {0}: not a device node on this host")]
    NotADevice(String),
    #[error("volume {0:?} has no host directory")]
    UnknownVolume(String),
    #[error("invalid tmpfs {0:?}")]
    BadTmpfs(String),
    #[error("the generated spec is invalid: {0}")]
    Invalid(String),
    #[error(transparent)]
    SecurityOpt(#[from] stack_spec::security_opt::SecurityOptError),
    /// The reason is text: this enum is compared in tests, and neither
    /// `io::Error` nor the profile error can be.
    #[error("seccomp profile {path}: {reason}")]
    SeccompProfile { path: String, reason: String },
}

/// A file or directory bound into the container (resolv.conf, hosts,
/// secrets, configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// `(major, minor, is_block)` of a host device node.
pub type DeviceNumbers = (i64, i64, bool);

/// Everything about the host that the spec needs.
pub struct SpecInput<'a> {
    pub service: &'a Service,
    pub process: &'a ResolvedProcess,
    pub rootfs: &'a Path,
    pub hostname: &'a str,
    /// The network namespace to join; `None` with bridge networking means a
    /// fresh one (only `lo`).
    pub netns: Option<&'a Path>,
    pub binds: Vec<Bind>,
    pub cgroup_path: String,
    /// The image's `/etc/passwd` and `/etc/group`, for names in `user`.
    pub passwd: &'a str,
    pub group: &'a str,
    /// Host directory of a named volume (`None` for an anonymous one).
    pub volume_dir: &'a dyn Fn(Option<&str>, &str) -> Option<PathBuf>,
    pub device: &'a dyn Fn(&str) -> Option<DeviceNumbers>,
}

/// Whether the runtime applies Docker's default seccomp filter when the
/// spec carries no profile: not for `privileged` nor `seccomp:unconfined`.
pub fn default_seccomp(service: &Service) -> bool {
    let unconfined = stack_spec::security_opt::Security::from_options(&service.security_opt)
        .is_ok_and(|s| s.seccomp == Some(None));
    !service.privileged && !unconfined
}

/// Every capability the kernel knows, by name, for `cap_add: [ALL]`.
fn all_caps() -> impl Iterator<Item = String> {
    caps::all().into_iter().map(|c| c.to_string())
}

fn cap_name(raw: &str) -> Result<String, SpecError> {
    let upper = raw.trim().to_ascii_uppercase();
    let name = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    name.parse::<caps::Capability>()
        .map(|c| c.to_string())
        .map_err(|_| SpecError::UnknownCapability(raw.to_owned()))
}

/// Docker's 14 defaults, plus `cap_add`, minus `cap_drop` (`ALL` works in
/// both); `privileged` gets everything.
pub fn capabilities(service: &Service) -> Result<Vec<String>, SpecError> {
    if service.privileged {
        return Ok(all_caps().collect());
    }
    let mut caps: BTreeSet<String> = stack_runtime::plan::DEFAULT_CAPS
        .iter()
        .map(|c| c.to_string())
        .collect();
    let all = |list: &[String]| list.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
    if all(&service.cap_drop) {
        caps.clear();
    }
    for c in service
        .cap_drop
        .iter()
        .filter(|c| !c.eq_ignore_ascii_case("ALL"))
    {
        caps.remove(&cap_name(c)?);
    }
    if all(&service.cap_add) {
        caps.extend(all_caps());
    }
    for c in service
        .cap_add
        .iter()
        .filter(|c| !c.eq_ignore_ascii_case("ALL"))
    {
        caps.insert(cap_name(c)?);
    }
    Ok(caps.into_iter().collect())
}

/// `user[:group]` by name or number, as Docker resolves it against the
/// image's files; returns uid, gid and the user's supplementary groups.
pub fn resolve_user(
    spec: Option<&str>,
    passwd: &str,
    group: &str,
) -> Result<(u32, u32, Vec<u32>), SpecError> {
    let spec = spec.unwrap_or("0");
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd_entry = |want: &dyn Fn(&[&str]) -> bool| {
        passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 4 && want(f))
    };
    let (uid, name, primary) = match user.parse::<u32>() {
        Ok(uid) => match passwd_entry(&|f| f[2] == user) {
            Some(f) => (uid, Some(f[0].to_owned()), f[3].parse().unwrap_or(0)),
            None => (uid, None, 0),
        },
        Err(_) => match passwd_entry(&|f| f[0] == user) {
            Some(f) => (
                f[2].parse().unwrap_or(0),
                Some(f[0].to_owned()),
                f[3].parse().unwrap_or(0),
            ),
            None => return Err(SpecError::UnknownUser(user.to_owned())),
        },
    };
    let group_entries: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let gid = match grp {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_entries
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| SpecError::UnknownGroup(g.to_owned()))?,
        },
    };
    let mut extra: Vec<u32> = Vec::new();
    if let Some(name) = name {
        for f in &group_entries {
            let members = f.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == name)
                && let Ok(g) = f[2].parse::<u32>()
                && g != gid
                && !extra.contains(&g)
            {
                extra.push(g);
            }
        }
    }
    Ok((uid, gid, extra))
}

fn group_id(name: &str, group: &str) -> Result<u32, SpecError> {
    if let Ok(gid) = name.parse() {
        return Ok(gid);
    }
    group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[0] == name)
        .and_then(|f| f[2].parse().ok())
        .ok_or_else(|| SpecError::UnknownGroup(name.to_owned()))
}

/// The mode of namespace `key`, refusing the ones this engine does not
/// make (joining another container's, `ipc: none`).
fn namespace_mode(key: &'static str, value: Option<&str>) -> Result<NamespaceMode, SpecError> {
    let mode = NamespaceMode::parse(key, value).map_err(|message| SpecError::Setting {
        key: key.to_owned(),
        message,
    })?;
    match mode {
        NamespaceMode::Private | NamespaceMode::Host => Ok(mode),
        _ => Err(SpecError::UnsupportedMode {
            key,
            mode: value.unwrap_or_default().to_owned(),
        }),
    }
}

/// `/run:size=64m,mode=1777` → destination and mount options.
fn tmpfs_mount(spec: &str) -> Result<Value, SpecError> {
    let (dest, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !dest.starts_with('/') {
        return Err(SpecError::BadTmpfs(spec.to_owned()));
    }
    let mut options = vec!["nosuid".to_owned(), "nodev".to_owned(), "noexec".to_owned()];
    options.extend(opts.split(',').filter(|o| !o.is_empty()).map(str::to_owned));
    Ok(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}))
}

pub fn build(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let service = input.service;
    let base = default_spec(&input.rootfs.to_string_lossy(), &[]);
    let mut spec = serde_json::to_value(&base).map_err(|e| SpecError::Invalid(e.to_string()))?;

    // Process.
    let (uid, gid, mut extra_gids) =
        resolve_user(input.process.user.as_deref(), input.passwd, input.group)?;
    for g in &service.group_add {
        let g = group_id(g, input.group)?;
        if !extra_gids.contains(&g) {
            extra_gids.push(g);
        }
    }
    let caps = capabilities(service)?;
    let security = stack_spec::security_opt::Security::from_options(&service.security_opt)?;
    let mut rlimits =
        vec![json!({"type": "RLIMIT_NOFILE", "hard": 1048576u64, "soft": 1048576u64})];
    for (name, limit) in &service.ulimits {
        let bad = |message| SpecError::Setting {
            key: format!("ulimits.{name}"),
            message,
        };
        let kind = settings::rlimit(name).map_err(bad)?;
        let soft = settings::rlimit_value(limit.soft).map_err(bad)?;
        let hard = settings::rlimit_value(limit.hard).map_err(bad)?;
        rlimits.retain(|r| r["type"] != kind.as_str());
        rlimits.push(json!({"type": kind, "soft": soft, "hard": hard}));
    }
    let mut process = json!({
        "terminal": service.tty,
        "user": {"uid": uid, "gid": gid},
        "args": input.process.args,
        "env": input.process.env,
        "cwd": input.process.working_dir,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits,
        "noNewPrivileges": security.no_new_privileges.unwrap_or(!service.privileged),
    });
    if !extra_gids.is_empty() {
        process["user"]["additionalGids"] = json!(extra_gids);
    }
    if let Some(adj) = service.oom_score_adj {
        process["oomScoreAdj"] = json!(adj);
    }
    spec["process"] = process;
    spec["hostname"] = json!(input.hostname);
    if let Some(domain) = &service.domainname {
        spec["domainname"] = json!(domain);
    }
    spec["root"]["readonly"] = json!(service.read_only);
    if !service.annotations.is_empty() {
        spec["annotations"] = json!(service.annotations);
    }

    // Mounts: the standard ones, then what the service asks for.
    let mut mounts: Vec<Value> = spec["mounts"].as_array().cloned().unwrap_or_default();
    if let Some(size) = service.shm_size {
        for m in &mut mounts {
            if m["destination"] == "/dev/shm" {
                m["options"] = json!([
                    "nosuid",
                    "noexec",
                    "nodev",
                    "mode=1777",
                    format!("size={}", size.bytes())
                ]);
            }
        }
    }
    for v in &service.volumes {
        let mut options: Vec<String> = vec!["rbind".into()];
        let source = match v.kind {
            MountType::Bind => PathBuf::from(v.source.clone().unwrap_or_default()),
            MountType::Volume => (input.volume_dir)(v.source.as_deref(), &v.target)
                .ok_or_else(|| SpecError::UnknownVolume(v.source.clone().unwrap_or_default()))?,
            MountType::Tmpfs => {
                let mut opts = vec!["nosuid".to_owned(), "nodev".to_owned()];
                if let Some(t) = &v.tmpfs {
                    if let Some(size) = t.size {
                        opts.push(format!("size={}", size.bytes()));
                    }
                    if let Some(mode) = t.mode {
                        opts.push(format!("mode={mode:o}"));
                    }
                }
                if v.read_only {
                    opts.push("ro".into());
                }
                mounts.push(json!({"destination": v.target, "type": "tmpfs", "source": "tmpfs", "options": opts}));
                continue;
            }
            // Image, npipe and cluster mounts are refused by the loader.
            _ => continue,
        };
        if v.read_only {
            options.push("ro".into());
        }
        if let Some(p) = v.bind.as_ref().and_then(|b| b.propagation.clone()) {
            options.push(p);
        }
        mounts.push(
            json!({"destination": v.target, "type": "bind", "source": source, "options": options}),
        );
    }
    for t in &service.tmpfs {
        mounts.push(tmpfs_mount(t)?);
    }
    for b in &input.binds {
        let mut options = vec!["rbind".to_owned()];
        if b.read_only {
            options.push("ro".into());
        }
        mounts.push(json!({"destination": b.target, "type": "bind", "source": b.source, "options": options}));
    }
    spec["mounts"] = json!(mounts);

    // Namespaces.
    let mut namespaces: Vec<Value> = Vec::new();
    for ns in ["pid", "ipc", "uts", "mount", "cgroup", "network"] {
        let entry = match ns {
            "network" => match (&service.network_mode, input.netns) {
                (Some(NetworkMode::Host), _) => None,
                (_, Some(path)) => Some(json!({"type": "network", "path": path})),
                (_, None) => Some(json!({"type": "network"})),
            },
            "pid" | "ipc" | "uts" => {
                let value = match ns {
                    "pid" => &service.pid,
                    "ipc" => &service.ipc,
                    _ => &service.uts,
                };
                match namespace_mode(ns, value.as_deref())? {
                    NamespaceMode::Host => None,
                    _ => Some(json!({"type": ns})),
                }
            }
            _ => Some(json!({"type": ns})),
        };
        namespaces.extend(entry);
    }
    spec["linux"]["namespaces"] = json!(namespaces);
    spec["linux"]["cgroupsPath"] = json!(input.cgroup_path);
    if !service.sysctls.is_empty() {
        // Warned about at load, refused here: runc would fail later and
        // less clearly.
        for key in service.sysctls.keys() {
            settings::check_sysctl(key, service).map_err(|message| SpecError::Setting {
                key: format!("sysctls.{key}"),
                message,
            })?;
        }
        spec["linux"]["sysctl"] = json!(service.sysctls);
    }
    if service.privileged || security.system_paths_unconfined {
        spec["linux"]["maskedPaths"] = json!([]);
        spec["linux"]["readonlyPaths"] = json!([]);
    }
    // `seccomp=FILE`: that profile; `seccomp:unconfined` (and `privileged`)
    // run with no filter, see [`default_seccomp`].
    if let Some(Some(path)) = &security.seccomp {
        let failed = |reason: String| SpecError::SeccompProfile {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
        let profile = stack_runtime::seccomp::from_docker_profile(&text, &caps)
            .map_err(|e| failed(e.to_string()))?;
        spec["linux"]["seccomp"] =
            serde_json::to_value(profile).map_err(|e| SpecError::Invalid(e.to_string()))?;
    }

    // Devices.
    let mut device_rules = vec![json!({"allow": service.privileged, "access": "rwm"})];
    let mut devices = Vec::new();
    for d in &service.devices {
        let (major, minor, block) =
            (input.device)(&d.source).ok_or_else(|| SpecError::NotADevice(d.source.clone()))?;
        let kind = if block { "b" } else { "c" };
        let access = d.permissions.clone().unwrap_or_else(|| "rwm".into());
        settings::check_device_permissions(&access).map_err(|message| SpecError::Setting {
            key: format!("devices.{}", d.source),
            message,
        })?;
        devices.push(json!({"path": d.target, "type": kind, "major": major, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0}));
        device_rules.push(
            json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access}),
        );
    }
    if !devices.is_empty() {
        spec["linux"]["devices"] = json!(devices);
    }

    // Resources.
    let limits = service
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let reservations = service
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    let mut resources = json!({"devices": device_rules});
    let memory_limit = service.mem_limit.or(limits.and_then(|l| l.memory));
    let memory_reservation = service
        .mem_reservation
        .or(reservations.and_then(|r| r.memory));
    let mut memory = json!({});
    if let Some(m) = memory_limit {
        memory["limit"] = json!(m.bytes());
    }
    if let Some(m) = memory_reservation {
        memory["reservation"] = json!(m.bytes());
    }
    if let Some(m) = service.memswap_limit {
        memory["swap"] = json!(m.bytes());
    }
    if let Some(s) = service.mem_swappiness {
        memory["swappiness"] = json!(s);
    }
    if service.oom_kill_disable == Some(true) {
        memory["disableOOMKiller"] = json!(true);
    }
    if memory.as_object().is_some_and(|m| !m.is_empty()) {
        resources["memory"] = memory;
    }
    let mut cpu = json!({});
    let period = service.cpu_period.unwrap_or(100_000);
    if let Some(cpus) = service.cpus.or(limits.and_then(|l| l.cpus)) {
        cpu["period"] = json!(period);
        cpu["quota"] = json!((cpus * period as f64).round() as i64);
    }
    if let Some(q) = service.cpu_quota {
        cpu["quota"] = json!(q);
        cpu["period"] = json!(period);
    }
    if let Some(s) = service.cpu_shares {
        cpu["shares"] = json!(s);
    }
    if let Some(set) = &service.cpuset {
        cpu["cpus"] = json!(set);
    }
    if cpu.as_object().is_some_and(|c| !c.is_empty()) {
        resources["cpu"] = cpu;
    }
    if let Some(p) = service.pids_limit.or(limits.and_then(|l| l.pids)) {
        resources["pids"] = json!({"limit": p});
    }
    if let Some(b) = &service.blkio_config {
        let mut io = json!({});
        if let Some(w) = b.weight {
            io["weight"] = json!(w);
        }
        let numbers =
            |path: &str| (input.device)(path).ok_or_else(|| SpecError::NotADevice(path.to_owned()));
        let mut weights = Vec::new();
        for d in &b.weight_device {
            let (major, minor, _) = numbers(&d.path)?;
            weights.push(json!({"major": major, "minor": minor, "weight": d.weight}));
        }
        if !weights.is_empty() {
            io["weightDevice"] = json!(weights);
        }
        for (key, list) in [
            ("throttleReadBpsDevice", &b.device_read_bps),
            ("throttleWriteBpsDevice", &b.device_write_bps),
            ("throttleReadIOPSDevice", &b.device_read_iops),
            ("throttleWriteIOPSDevice", &b.device_write_iops),
        ] {
            let mut rules = Vec::new();
            for d in list {
                let (major, minor, _) = numbers(&d.path)?;
                rules.push(json!({"major": major, "minor": minor, "rate": d.rate.bytes()}));
            }
            if !rules.is_empty() {
                io[key] = json!(rules);
            }
        }
        resources["blockIO"] = io;
    }
    spec["linux"]["resources"] = resources;

    serde_json::from_value(spec).map_err(|e| SpecError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nusers:x:100:app\napp:x:1000:\naudio:x:29:\n";

    fn service(body: &str) -> Service {
        let text = format!("services:\n  s:\n    image: busybox\n{body}volumes:\n  data:\n");
        let mut options = stack_spec::LoadOptions::new("/tmp").with_content("stack.yaml", text);
        options.project_name = Some("p".into());
        stack_spec::load(&options)
            .unwrap_or_else(|e| panic!("{e}"))
            .project
            .services["s"]
            .clone()
    }

    fn process(user: Option<&str>) -> ResolvedProcess {
        ResolvedProcess {
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            working_dir: "/".into(),
            user: user.map(str::to_owned),
            exposed_ports: vec![],
            healthcheck: None,
            stop_signal: None,
        }
    }

    fn build_for(body: &str, user: Option<&str>) -> Value {
        try_build(body, user).unwrap()
    }

    fn try_build(body: &str, user: Option<&str>) -> Result<Value, SpecError> {
        let service = service(body);
        let process = process(user);
        let volume_dir =
            |name: Option<&str>, _: &str| name.map(|n| PathBuf::from(format!("/vol/{n}")));
        let device = |path: &str| (path == "/dev/sda").then_some((8, 0, true));
        let input = SpecInput {
            service: &service,
            process: &process,
            rootfs: Path::new("/rootfs"),
            hostname: "web",
            netns: Some(Path::new("/run/netns/x")),
            binds: vec![Bind {
                source: "/state/resolv.conf".into(),
                target: "/etc/resolv.conf".into(),
                read_only: true,
            }],
            cgroup_path: "/stack/p/p-s-1".into(),
            passwd: PASSWD,
            group: GROUP,
            volume_dir: &volume_dir,
            device: &device,
        };
        Ok(serde_json::to_value(build(&input)?).unwrap())
    }

    #[test]
    fn settings_a_container_cannot_take_are_refused_not_dropped() {
        let err = try_build("    pid: 'service:s'\n", None).unwrap_err();
        assert_eq!(err.to_string(), "pid: \"service:s\" is not supported");
        let err = try_build("    sysctls: {vm.swappiness: '1'}\n", None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("sysctls.vm.swappiness: sysctl vm.swappiness is not namespaced"),
            "{err}"
        );
        let err = try_build("    devices: ['/dev/sda:/dev/sda:rwx']\n", None).unwrap_err();
        assert!(
            err.to_string().contains("invalid device permissions"),
            "{err}"
        );
        // -1 is unlimited, as in Docker, not 0.
        let spec = build_for("    ulimits: {core: {soft: 0, hard: -1}}\n", None);
        let rl = spec["process"]["rlimits"].as_array().unwrap();
        assert!(
            rl.iter()
                .any(|r| r["type"] == "RLIMIT_CORE" && r["soft"] == 0 && r["hard"] == u64::MAX),
            "{rl:?}"
        );
    }

    #[test]
    fn users_resolve_by_name_and_number_with_supplementary_groups() {
        assert_eq!(resolve_user(None, PASSWD, GROUP).unwrap(), (0, 0, vec![]));
        assert_eq!(
            resolve_user(Some("app"), PASSWD, GROUP).unwrap(),
            (1000, 1000, vec![100])
        );
        assert_eq!(
            resolve_user(Some("1000:audio"), PASSWD, GROUP).unwrap(),
            (1000, 29, vec![100])
        );
        assert_eq!(
            resolve_user(Some("4242"), PASSWD, GROUP).unwrap(),
            (4242, 0, vec![])
        );
        assert_eq!(
            resolve_user(Some("nobody"), PASSWD, GROUP),
            Err(SpecError::UnknownUser("nobody".into()))
        );
    }

    #[test]
    fn capabilities_add_and_drop_on_dockers_defaults() {
        let caps = capabilities(&service(
            "    cap_add: [NET_ADMIN]\n    cap_drop: [chown, CAP_KILL]\n",
        ))
        .unwrap();
        assert!(caps.contains(&"CAP_NET_ADMIN".to_owned()));
        assert!(!caps.contains(&"CAP_CHOWN".to_owned()));
        assert!(!caps.contains(&"CAP_KILL".to_owned()));
        assert_eq!(caps.len(), 14 - 2 + 1);
        let none = capabilities(&service(
            "    cap_drop: [ALL]\n    cap_add: [NET_BIND_SERVICE]\n",
        ))
        .unwrap();
        assert_eq!(none, ["CAP_NET_BIND_SERVICE"]);
        assert!(matches!(
            capabilities(&service("    cap_add: [FLY]\n")),
            Err(SpecError::UnknownCapability(_))
        ));
    }

    #[test]
    fn limits_become_cgroup_resources() {
        let spec = build_for(
            "    cpus: 0.5\n    mem_limit: 64m\n    pids_limit: 50\n    blkio_config:\n      weight: 300\n      device_read_bps:\n        - {path: /dev/sda, rate: 1mb}\n",
            None,
        );
        let r = &spec["linux"]["resources"];
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["memory"]["limit"], 64 * 1024 * 1024);
        assert_eq!(r["pids"]["limit"], 50);
        assert_eq!(r["blockIO"]["weight"], 300);
        assert_eq!(r["blockIO"]["throttleReadBpsDevice"][0]["major"], 8);
        assert_eq!(
            r["blockIO"]["throttleReadBpsDevice"][0]["rate"],
            1024 * 1024
        );
        let deploy = build_for(
            "    deploy:\n      resources:\n        limits: {cpus: '1.5', memory: 1g, pids: 9}\n",
            None,
        );
        assert_eq!(deploy["linux"]["resources"]["cpu"]["quota"], 150_000);
        assert_eq!(deploy["linux"]["resources"]["pids"]["limit"], 9);
    }

    #[test]
    fn process_mounts_and_namespaces() {
        let spec = build_for(
            "    user: app\n    read_only: true\n    volumes: [data:/data, /host/src:/src:ro]\n    tmpfs: [/run]\n    ulimits: {nproc: 512}\n    sysctls: {net.core.somaxconn: '1024'}\n",
            Some("app"),
        );
        assert_eq!(spec["process"]["user"]["uid"], 1000);
        assert_eq!(spec["process"]["user"]["additionalGids"], json!([100]));
        assert_eq!(spec["root"]["readonly"], true);
        assert_eq!(spec["hostname"], "web");
        let mounts = spec["mounts"].as_array().unwrap();
        let find = |d: &str| {
            mounts
                .iter()
                .find(|m| m["destination"] == d)
                .cloned()
                .unwrap()
        };
        assert_eq!(find("/data")["source"], "/vol/data");
        assert_eq!(find("/src")["options"], json!(["rbind", "ro"]));
        assert_eq!(find("/run")["type"], "tmpfs");
        assert_eq!(find("/etc/resolv.conf")["source"], "/state/resolv.conf");
        let rl = spec["process"]["rlimits"].as_array().unwrap();
        assert!(
            rl.iter()
                .any(|r| r["type"] == "RLIMIT_NPROC" && r["hard"] == 512)
        );
        assert_eq!(spec["linux"]["sysctl"]["net.core.somaxconn"], "1024");
        let ns = spec["linux"]["namespaces"].as_array().unwrap();
        assert!(
            ns.iter()
                .any(|n| n["type"] == "network" && n["path"] == "/run/netns/x")
        );
        assert_eq!(ns.len(), 6);
        let host = build_for("    network_mode: host\n    pid: host\n", None);
        let ns = host["linux"]["namespaces"].as_array().unwrap();
        assert!(
            !ns.iter()
                .any(|n| n["type"] == "network" || n["type"] == "pid")
        );
    }
}
