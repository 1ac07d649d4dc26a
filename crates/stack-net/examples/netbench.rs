//! Networking benchmark (run as root through `bench/net/run.sh`): per-container
//! setup time and TCP throughput container→container and host→published port,
//! as a ratio to host loopback throughput measured in the same run.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stack_net::{
    AttachRequest, NetOptions, NetworkAttachment, NetworkManager, NetworkSpec, PortMapping,
    Protocol,
};

const SUBNET: &str = "10.201.250.0/24";
const SECONDS: &str = "2";
const ROUNDS: usize = 3;

fn request(project: &str, id: &str) -> AttachRequest {
    AttachRequest {
        project: project.into(),
        container_id: format!("{project}-{id}"),
        container_name: format!("{project}-{id}"),
        service: id.into(),
        networks: vec![NetworkAttachment {
            network: "default".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn iperf_server(netns: Option<&Path>, port: u16) -> Child {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display()))
                .arg("--")
                .arg("iperf3");
            c
        }
        None => Command::new("iperf3"),
    };
    let child = cmd
        .args(["-s", "-1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 (Debian package iperf3) is needed");
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Gbit/s received by an iperf3 client run (optionally inside `netns`).
fn iperf_client(netns: Option<&Path>, host: Ipv4Addr, port: u16) -> f64 {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display()))
                .arg("--")
                .arg("iperf3");
            c
        }
        None => Command::new("iperf3"),
    };
    let out = cmd
        .args([
            "-J",
            "-c",
            &host.to_string(),
            "-p",
            &port.to_string(),
            "-t",
            SECONDS,
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 -J output");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("iperf3 result")
        / 1e9
}

fn fmedian(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let project = format!("bench{}", std::process::id());
    let mgr = NetworkManager::new(
        &dir.path().join("state"),
        &dir.path().join("run"),
        NetOptions {
            upstream_dns: Some(Vec::new()),
            ..NetOptions::default()
        },
    );
    let spec = NetworkSpec {
        subnet: Some(SUBNET.parse().unwrap()),
        ..Default::default()
    };
    let result = run(&mgr, &project, &spec).await;
    mgr.cleanup_project(&project).await.unwrap();
    let (attach, detach, c2c, pub_, proxied, lo) = result;
    println!("| metric | value |");
    println!("|---|---|");
    println!(
        "| attach (netns + veth + address + routes + DNS), median of 100 | {:.2} ms |",
        attach.as_secs_f64() * 1e3
    );
    println!(
        "| detach, median of 100 | {:.2} ms |",
        detach.as_secs_f64() * 1e3
    );
    println!(
        "| host loopback TCP (iperf3, {SECONDS} s, median of {ROUNDS}) | {lo:.1} Gbit/s (1.00) |"
    );
    println!(
        "| container → container TCP | {c2c:.1} Gbit/s ({:.2}) |",
        c2c / lo
    );
    println!(
        "| host → published port (127.0.0.1, nft DNAT) TCP | {pub_:.1} Gbit/s ({:.2}) |",
        pub_ / lo
    );
    println!(
        "| host → userland copy proxy → container TCP | {proxied:.1} Gbit/s ({:.2}) |",
        proxied / lo
    );
}

async fn run(
    mgr: &NetworkManager,
    project: &str,
    spec: &NetworkSpec,
) -> (Duration, Duration, f64, f64, f64, f64) {
    mgr.ensure_network(project, "default", spec).await.unwrap();
    let mut attach = Vec::new();
    let mut detach = Vec::new();
    for i in 0..100 {
        let req = request(project, &format!("c{i}"));
        let t = Instant::now();
        mgr.attach(&req).await.unwrap();
        attach.push(t.elapsed());
        let t = Instant::now();
        mgr.detach(&req.container_id).await.unwrap();
        detach.push(t.elapsed());
    }

    let server = mgr.attach(&request(project, "server")).await.unwrap();
    let client = mgr.attach(&request(project, "client")).await.unwrap();
    let server_ip = server.interfaces[0].address;
    let port = PortMapping {
        host_ip: None,
        host_port: None,
        container_ports: (5201, 5201),
        protocol: Protocol::Tcp,
    };
    let published = mgr
        .publish(&format!("{project}-server"), &[port])
        .await
        .unwrap()[0]
        .host_port;

    // The alternative design: a userland proxy (tokio copy loop, no splice)
    // on loopback in front of the container.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = proxy.local_addr().unwrap().port();
    let proxy_task = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = proxy.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect((server_ip, 5201)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });

    // Interleaved rounds, median of each: the machine is shared and noisy.
    let (mut lo, mut c2c, mut pub_, mut proxied) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let mut s = iperf_server(None, 5299);
        lo.push(iperf_client(None, Ipv4Addr::LOCALHOST, 5299));
        let _ = s.wait();
        let mut s = iperf_server(Some(&server.netns), 5201);
        c2c.push(iperf_client(Some(&client.netns), server_ip, 5201));
        let _ = s.wait();
        let mut s = iperf_server(Some(&server.netns), 5201);
        pub_.push(iperf_client(None, Ipv4Addr::LOCALHOST, published));
        let _ = s.wait();
        let mut s = iperf_server(Some(&server.netns), 5201);
        let got = tokio::task::spawn_blocking(move || {
            iperf_client(None, Ipv4Addr::LOCALHOST, proxy_port)
        });
        proxied.push(got.await.unwrap());
        let _ = s.wait();
    }
    proxy_task.abort();
    let (c2c, pub_, proxied, lo) = (fmedian(c2c), fmedian(pub_), fmedian(proxied), fmedian(lo));
    (median(attach), median(detach), c2c, pub_, proxied, lo)
}
