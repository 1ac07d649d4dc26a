//! `stack container inspect`: `docker inspect`'s JSON for the fields that
//! apply to a container here.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use serde_json::{Value, json};

use super::create::runtime_root;
use super::monitor::log_path;
use super::net;
use super::record::{Record, Records, State};
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

pub fn document(global: &GlobalArgs, r: &Record) -> Value {
    let state = r.live_state(&runtime_root(&global.root));
    let published = if matches!(state, State::Running | State::Paused) {
        net::published(global, &r.id)
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
    let ip = if matches!(state, State::Running | State::Paused) {
        net::address(global, &r.id).map(|a| a.to_string())
    } else {
        None
    };
    let cmd: Vec<String> = r.args[r.entrypoint.len().min(r.args.len())..].to_vec();
    json!({
        "Id": r.id,
        "Created": rfc3339(Some(r.created_ms)),
        "Path": r.args.first().cloned().unwrap_or_default(),
        "Args": r.args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": state.as_str(),
            "Running": matches!(state, State::Running | State::Paused),
            "Paused": state == State::Paused,
            "Restarting": false,
            "OOMKilled": r.oom_killed,
            "Dead": false,
            "Pid": if matches!(state, State::Running | State::Paused) { r.pid.unwrap_or(0) } else { 0 },
            "ExitCode": r.exit_code.unwrap_or(0),
            "Error": r.error.clone().unwrap_or_default(),
            "StartedAt": rfc3339(r.started_ms),
            "FinishedAt": rfc3339(r.finished_ms),
        },
        "Image": format!("sha256:{}", r.image_id.trim_start_matches("sha256:")),
        "LogPath": if r.detached { log_path(global, &r.id).display().to_string() } else { String::new() },
        "Name": format!("/{}", r.name),
        "RestartCount": 0,
        "HostConfig": {
            "AutoRemove": r.auto_remove,
            "NetworkMode": r.network.as_str(),
            "PortBindings": r.port_specs,
            "Binds": r.mounts.iter().filter(|m| m.kind == "bind")
                .map(|m| format!("{}:{}{}", m.source, m.target, if m.read_only { ":ro" } else { "" }))
                .collect::<Vec<_>>(),
            "Memory": r.memory.unwrap_or(0),
            "NanoCpus": r.nano_cpus.unwrap_or(0),
            "PidsLimit": r.pids_limit,
            "ReadonlyRootfs": r.read_only,
            "CapAdd": r.cap_add,
            "CapDrop": r.cap_drop,
        },
        "Mounts": r.mounts.iter().map(|m| json!({
            "Type": m.kind,
            "Source": m.source,
            "Destination": m.target,
            "RW": !m.read_only,
        })).collect::<Vec<_>>(),
        "Config": {
            "Hostname": r.hostname,
            "User": r.user.clone().unwrap_or_default(),
            "Tty": r.tty,
            "OpenStdin": r.interactive,
            "Env": r.env,
            "Cmd": cmd,
            "Image": r.image,
            "WorkingDir": r.working_dir,
            "Entrypoint": r.entrypoint,
            "StopSignal": nix::sys::signal::Signal::try_from(r.stop_signal).map(|s| s.as_str()).unwrap_or("SIGTERM"),
        },
        "NetworkSettings": {
            "IPAddress": ip.unwrap_or_default(),
            "Ports": ports,
        },
    })
}

pub fn run(global: &GlobalArgs, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let records = Records::new(&global.root);
    let mut out = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for key in &args.containers {
        match records.find(key) {
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
