//! `stack inspect SERVICE|CONTAINER...`: everything known about containers
//! as JSON, in `docker inspect`'s shape (an array, `State`, `Config`,
//! `Mounts`, `NetworkSettings` ...) with what `stack` adds: the restart
//! history with exit codes and times, the next restart attempt, why a
//! container is dead, and whether its last exit is unknown (it ended while
//! no supervisor watched it).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};
use stack_engine::api::ContainerState;
use stack_engine::api::{ContainerRecord, LastExit, Records};
use stack_engine::restart::RestartPolicy;
use stack_engine::restart::restart_policy;
use stack_net::{NetOptions, NetworkManager};

use crate::cli::GlobalArgs;
use crate::client;
use crate::project_args::ProjectArgs;

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Services or container names.
    #[arg(required = true)]
    pub targets: Vec<String>,
}

fn time(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => {
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }
        // Docker's zero time.
        None => "0001-01-01T00:00:00Z".into(),
    }
}

fn exit_json(e: &LastExit) -> Value {
    json!({
        "StartedAt": time(e.started_ms),
        "FinishedAt": time(Some(e.at_ms)),
        "ExitCode": e.code,
        "ExitUnknown": e.code.is_none(),
        "OOMKilled": e.oom_killed,
    })
}

fn policy_json(policy: RestartPolicy) -> Value {
    let (name, max) = match policy {
        RestartPolicy::No => ("no", 0),
        RestartPolicy::Always => ("always", 0),
        RestartPolicy::UnlessStopped => ("unless-stopped", 0),
        RestartPolicy::OnFailure { max_retries } => ("on-failure", max_retries.unwrap_or(0)),
        RestartPolicy::Any { max_attempts } => ("always", max_attempts),
    };
    json!({"Name": name, "MaximumRetryCount": max})
}

/// The `docker inspect` object of one container.
pub fn inspect(
    record: &ContainerRecord,
    state: ContainerState,
    spec: &Value,
    health: Option<Value>,
    policy: Option<RestartPolicy>,
    addresses: &[(String, std::net::Ipv4Addr)],
) -> Value {
    let running = matches!(state, ContainerState::Running | ContainerState::Paused);
    let last = record.last_exit.as_ref();
    let args: Vec<Value> = spec["process"]["args"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mounts: Vec<Value> = spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["type"] == "bind" || m["type"] == "volume")
        .filter(|m| {
            // The runtime's own files (resolv.conf, hosts, hostname) are
            // not the user's mounts.
            !matches!(
                m["destination"].as_str(),
                Some("/etc/resolv.conf" | "/etc/hosts" | "/etc/hostname")
            )
        })
        .map(|m| {
            let options: Vec<&str> = m["options"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o.as_str())
                .collect();
            let rw = !options.contains(&"ro");
            json!({
                "Type": "bind",
                "Source": m["source"],
                "Destination": m["destination"],
                "Mode": if rw { "rw" } else { "ro" },
                "RW": rw,
            })
        })
        .collect();
    // The service's own labels (a one-off's `run -l` ones included), then
    // compose's.
    let mut labels = record.config["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in [
        ("com.docker.compose.project", record.project.clone()),
        ("com.docker.compose.service", record.service.clone()),
        (
            "com.docker.compose.container-number",
            record.number.to_string(),
        ),
        ("com.docker.compose.config-hash", record.config_hash.clone()),
    ] {
        labels.insert(k.to_owned(), v.into());
    }
    let networks: serde_json::Map<String, Value> = addresses
        .iter()
        .map(|(net, ip)| (net.clone(), json!({"IPAddress": ip.to_string()})))
        .collect();
    json!([{
        "Id": record.id,
        "Created": time(Some(record.created_ms)),
        "Path": args.first().cloned().unwrap_or(Value::Null),
        "Args": args.get(1..).map(|a| a.to_vec()).unwrap_or_default(),
        "State": {
            "Status": state,
            "Running": running,
            "Paused": state == ContainerState::Paused,
            "Restarting": state == ContainerState::Restarting,
            "OOMKilled": last.is_some_and(|e| e.oom_killed),
            "Dead": state == ContainerState::Dead,
            "DeadReason": record.dead_reason,
            "Pid": if running { record.pid.unwrap_or(0) } else { 0 },
            "ExitCode": last.and_then(|e| e.code).unwrap_or(0),
            "ExitUnknown": last.is_some_and(|e| e.code.is_none()),
            "Error": record.error.clone().unwrap_or_default(),
            "StartedAt": time(record.started_ms),
            "FinishedAt": time(last.map(|e| e.at_ms)),
            "NextRestartAt": record.next_attempt_ms.filter(|_| state == ContainerState::Restarting).map(|ms| time(Some(ms))),
            "StoppedByUser": record.stopped_by_user,
            "Health": health,
        },
        "Name": format!("/{}", record.name),
        "RestartCount": record.restart_count,
        "RestartHistory": record.history.iter().map(exit_json).collect::<Vec<_>>(),
        "Image": record.image_digest,
        "Config": {
            "Image": record.image,
            "Hostname": spec["hostname"],
            "User": spec["process"]["user"],
            "Env": spec["process"]["env"],
            "Cmd": spec["process"]["args"],
            "WorkingDir": spec["process"]["cwd"],
            "Labels": labels,
        },
        "HostConfig": {
            "RestartPolicy": policy.map(policy_json),
            "Memory": spec["linux"]["resources"]["memory"]["limit"].as_i64().unwrap_or(0),
            "PidsLimit": spec["linux"]["resources"]["pids"]["limit"],
        },
        "Mounts": mounts,
        "NetworkSettings": {"Networks": networks},
    }])[0]
        .clone()
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

pub fn run(global: &GlobalArgs, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let loaded = args.project.load().ok().flatten();
    let Some(project) = client::project_name(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let store = Records::new(&global.root);
    let records = store.containers(&project)?;
    let net = NetworkManager::new(&global.root, &global.run_dir, NetOptions::default());
    let leases = client::runtime()?
        .block_on(net.leases(&project))
        .unwrap_or_default();
    let mut out = Vec::new();
    for target in &args.targets {
        let matched: Vec<&ContainerRecord> = records
            .iter()
            .filter(|r| r.service == *target || r.name == *target)
            .collect();
        if matched.is_empty() {
            bail!("no container or service {target:?} in project {project}");
        }
        for record in matched {
            let dir = store.container_dir(&project, &record.name);
            let spec = read_json(&dir.join("config.json")).unwrap_or(Value::Null);
            let health = read_json(&dir.join(stack_engine::health::HEALTH_FILE)).map(|h| {
                json!({
                    "Status": h["status"],
                    "FailingStreak": h["failing_streak"],
                    "Log": h["log"].as_array().into_iter().flatten().map(|p| json!({
                        "SinceStartMs": p["at_ms"],
                        "ExitCode": p["exit_code"],
                        "Output": p["output"],
                    })).collect::<Vec<_>>(),
                })
            });
            let policy = loaded
                .as_ref()
                .and_then(|l| l.project.services.get(&record.service))
                .map(restart_policy);
            let addresses: Vec<(String, std::net::Ipv4Addr)> = leases
                .iter()
                .filter(|(id, _, _)| *id == record.id)
                .map(|(_, net, ip)| (net.clone(), *ip))
                .collect();
            out.push(inspect(
                record,
                record.live_state(),
                &spec,
                health,
                policy,
                &addresses,
            ));
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
