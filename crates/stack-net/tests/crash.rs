//! A process killed in the middle of network setup leaves state that the next
//! command adopts and cleans up completely.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use stack_net::{NetOptions, NetworkManager, PortMapping, Protocol};

const HELPER_DIR: &str = "STACK_NET_CRASH_DIR";
const HELPER_PROJECT: &str = "STACK_NET_CRASH_PROJECT";
const SUBNET: u8 = 61;

/// Runs in the child process only (the parent sets the variables): attaches
/// containers in a loop until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process of killed_midway_setup_is_cleaned_up_by_the_next_command"]
async fn crash_helper() {
    let (Ok(dir), Ok(project)) = (std::env::var(HELPER_DIR), std::env::var(HELPER_PROJECT)) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let opts = NetOptions {
        upstream_dns: Some(Vec::new()),
        ..NetOptions::default()
    };
    let mgr = NetworkManager::new(&dir.join("state"), &dir.join("run"), opts);
    mgr.ensure_network(&project, "default", &spec(test_subnet(SUBNET)))
        .await
        .unwrap();
    for i in 0.. {
        let req = stack_net::AttachRequest {
            project: project.clone(),
            container_id: format!("{project}-c-{i}"),
            container_name: format!("{project}-c-{i}"),
            service: "svc".into(),
            networks: vec![stack_net::NetworkAttachment {
                network: "default".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        mgr.attach(&req).await.unwrap();
        let port = PortMapping {
            host_ip: None,
            host_port: None,
            container_ports: (80, 80),
            protocol: Protocol::Tcp,
        };
        mgr.publish(&req.container_id, &[port]).await.unwrap();
    }
}

fn recorded_endpoints(env: &Env) -> usize {
    let Ok(text) = std::fs::read_to_string(env.state_dir().join("net/state.json")) else {
        return 0;
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["endpoints"].as_object().map_or(0, |o| o.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_midway_setup_is_cleaned_up_by_the_next_command() {
    stack_testing::require_root!();
    let env = Env::new("crash");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_helper", "--exact", "--ignored", "--nocapture"])
        .env(HELPER_DIR, env.dir.path())
        .env(HELPER_PROJECT, &env.project)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while recorded_endpoints(&env) < 8 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "helper made no progress"
        );
        assert!(child.try_wait().unwrap().is_none(), "helper exited early");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL, mid-attach
    child.wait().unwrap();

    let prefix = env.prefix();
    let (links, netns, tables) = leaks(&prefix, &env.run_dir());
    assert!(
        links > 1 && netns > 1 && tables == 1,
        "setup left {links} links, {netns} netns, {tables} tables"
    );

    // The next command adopts the network (bridge, DNS) and keeps working.
    let net = env
        .mgr
        .ensure_network(&env.project, "default", &spec(test_subnet(SUBNET)))
        .await
        .unwrap();
    env.mgr.adopt().await.unwrap();
    let fresh = env
        .mgr
        .attach(&env.request("after", "after", &[("default", &[])]))
        .await
        .unwrap();
    assert_eq!(
        nslookup(&fresh.netns, "after", net.gateway),
        [fresh.interfaces[0].address]
    );
    assert!(!env.mgr.leases(&env.project).await.unwrap().is_empty());

    // Teardown removes everything: links, namespaces, rules, leases.
    env.mgr.cleanup_project(&env.project).await.unwrap();
    assert_eq!(leaks(&prefix, &env.run_dir()), (0, 0, 0));
    assert!(env.mgr.leases(&env.project).await.unwrap().is_empty());
    assert!(
        stack_net::project_object_prefix(&env.state_dir(), &env.project)
            .unwrap()
            .is_none()
    );
}
