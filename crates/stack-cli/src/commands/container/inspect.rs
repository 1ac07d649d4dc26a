//! `stack container inspect`: `docker inspect`'s JSON for the fields that
//! apply to a container here, from the engine's record, the service it was
//! made from and its OCI bundle.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use serde_json::{Value, json};

use stack_engine::api::ContainerRecord;
use stack_engine::api::ContainerState;
use stack_spec::MountType;

use super::{found, ls};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn rfc3339(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => {
            humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }
        // Docker's zero time.
        None => "0001-01-01T00:00:00Z".into(),
    }
}

/// The container's address on the default bridge, from the network state.
fn address(global: &GlobalArgs, record: &ContainerRecord) -> Option<String> {
    let config = crate::client::host_config(global).ok()?;
    let manager = stack_net::NetworkManager::new(&global.root, &global.run_dir, config.net);
    let leases = crate::client::runtime()
        .ok()?
        .block_on(manager.leases(&record.project))
        .ok()?;
    leases
        .into_iter()
        .find(|(owner, _, _)| *owner == record.id)
        .map(|(_, _, address)| address.to_string())
}

pub fn document(global: &GlobalArgs, r: &ContainerRecord) -> Value {
    let state = r.live_state();
    let up = found::is_up(r);
    let service = found::service(global, r);
    let bundle = found::bundle(global, r);
    let process = &bundle["process"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let args = strings(&process["args"]);
    let published = if up {
        crate::commands::port::published(global, &[r.id.as_str()])
            .pop()
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut ports = serde_json::Map::new();
    for p in &published {
        let key = format!("{}/{}", p.container_port, p.protocol.as_str());
        let binding = json!({
            "HostIp": p.host_ip.map_or("0.0.0.0".to_owned(), |ip| ip.to_string()),
            "HostPort": p.host_port.to_string(),
        });
        match ports.get_mut(&key) {
            Some(Value::Array(list)) => list.push(binding),
            _ => {
                ports.insert(key, json!([binding]));
            }
        }
    }
    let ip = if up { address(global, r) } else { None };
    let entrypoint = service.entrypoint.clone().unwrap_or_default();
    let cmd: Vec<String> = args[entrypoint.len().min(args.len())..].to_vec();
    let exit = r.last_exit;
    let health = found::dir(global, r);
    let health = crate::commands::ps::health_of(&health).filter(|_| up);
    let policy = service.restart.unwrap_or_default();
    let (policy_name, retries) = match policy {
        stack_spec::RestartPolicy::OnFailure { max_retries } => {
            ("on-failure".to_owned(), max_retries.unwrap_or(0))
        }
        other => (other.to_string(), 0),
    };
    let resources = &bundle["linux"]["resources"];
    let nano_cpus = match (
        resources["cpu"]["quota"].as_i64(),
        resources["cpu"]["period"].as_i64(),
    ) {
        (Some(q), Some(p)) if q > 0 && p > 0 => q * 1_000_000_000 / p,
        _ => 0,
    };
    let port_bindings: Vec<String> = service
        .ports
        .iter()
        .map(|p| {
            let ip = p
                .host_ip
                .as_deref()
                .map(|i| format!("{i}:"))
                .unwrap_or_default();
            let published = p
                .published
                .as_deref()
                .map(|h| format!("{h}:"))
                .unwrap_or_default();
            format!(
                "{ip}{published}{}/{}",
                p.target,
                serde_json::to_value(p.protocol)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )
        })
        .collect();
    let mut state_doc = json!({
        "Status": state.as_str(),
        "Running": up,
        "Paused": state == ContainerState::Paused,
        "Restarting": state == ContainerState::Restarting,
        "OOMKilled": exit.is_some_and(|e| e.oom_killed),
        "Dead": state == ContainerState::Dead,
        "Pid": if up { r.pid.unwrap_or(0) } else { 0 },
        "ExitCode": exit.and_then(|e| e.code).unwrap_or(0),
        "Error": r.error.clone().unwrap_or_default(),
        "StartedAt": rfc3339(r.started_ms),
        "FinishedAt": rfc3339(exit.filter(|_| !up).map(|e| e.at_ms)),
    });
    if let Some(h) = health {
        state_doc["Health"] = json!({
            "Status": h.status,
            "FailingStreak": h.failing_streak,
            "Log": h.log,
        });
    }
    json!({
        "Id": r.id,
        "Created": rfc3339(Some(r.created_ms)),
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": state_doc,
        "Image": format!("sha256:{}", r.image_digest.as_deref().unwrap_or_default().trim_start_matches("sha256:")),
        "LogPath": found::dir(global, r).join("container.log").display().to_string(),
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "HostConfig": {
            "AutoRemove": false,
            "NetworkMode": ls::network_word(&service),
            "PortBindings": port_bindings,
            "RestartPolicy": {"Name": policy_name, "MaximumRetryCount": retries},
            "Binds": service.volumes.iter().filter(|v| v.kind == MountType::Bind)
                .map(|v| format!("{}:{}{}", v.source.as_deref().unwrap_or_default(), v.target, if v.read_only { ":ro" } else { "" }))
                .collect::<Vec<_>>(),
            "Memory": resources["memory"]["limit"].as_i64().unwrap_or(0),
            "NanoCpus": nano_cpus,
            "PidsLimit": service.pids_limit,
            "ReadonlyRootfs": service.read_only,
            "CapAdd": service.cap_add,
            "CapDrop": service.cap_drop,
        },
        "Mounts": service.volumes.iter().map(|v| json!({
            "Type": if v.kind == MountType::Bind { "bind" } else { "volume" },
            "Source": v.source.clone().unwrap_or_default(),
            "Destination": v.target,
            "RW": !v.read_only,
        })).collect::<Vec<_>>(),
        "Config": {
            "Hostname": bundle["hostname"].as_str().unwrap_or_default(),
            "User": service.user.clone().unwrap_or_default(),
            "Tty": service.tty,
            "OpenStdin": service.stdin_open,
            "Env": strings(&process["env"]),
            "Cmd": cmd,
            "Image": r.image,
            "WorkingDir": process["cwd"].as_str().unwrap_or_default(),
            "Entrypoint": entrypoint,
            "StopSignal": service.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into()),
            "Healthcheck": service.healthcheck,
        },
        "NetworkSettings": {
            "IPAddress": ip.unwrap_or_default(),
            "Ports": ports,
        },
    })
}

pub fn run(global: &GlobalArgs, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for key in &args.containers {
        match found::find(global, key) {
            Ok(r) => out.push(document(global, &r)),
            Err(e) => {
                eprintln!("error: {e:#}");
                code = ExitCode::FAILURE;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(code)
}
