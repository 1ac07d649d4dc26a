//! Service-name DNS: recreated containers are found at once, replicas all
//! resolve, unknown names go upstream.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use common::*;
use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use stack_net::NetOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreated_container_resolves_at_once_and_replicas_all_resolve() {
    stack_testing::require_root!();
    let env = Env::new("recreate");
    let net = env
        .mgr
        .ensure_network(&env.project, "default", &spec(test_subnet(41)))
        .await
        .unwrap();
    let web = env
        .mgr
        .attach(&env.request("web-1", "web", &[("default", &[])]))
        .await
        .unwrap();
    let db1 = env
        .mgr
        .attach(&env.request("db-1", "db", &[("default", &["pg"])]))
        .await
        .unwrap();
    assert_eq!(
        nslookup(&web.netns, "db", net.gateway),
        [db1.interfaces[0].address]
    );

    // Recreate db with a new address; web is not touched.
    env.mgr
        .detach(&format!("{}-db-1", env.project))
        .await
        .unwrap();
    let mut req = env.request("db-1b", "db", &[("default", &["pg"])]);
    req.networks[0].ipv4_address = Some(Ipv4Addr::new(10, 201, 41, 50));
    let db2 = env.mgr.attach(&req).await.unwrap();
    assert_eq!(db2.interfaces[0].address, Ipv4Addr::new(10, 201, 41, 50));
    assert_eq!(
        nslookup(&web.netns, "db", net.gateway),
        [db2.interfaces[0].address]
    );
    assert_eq!(
        nslookup(&web.netns, "pg", net.gateway),
        [db2.interfaces[0].address]
    );

    // Scale db to two replicas: the service name resolves to both.
    let db3 = env
        .mgr
        .attach(&env.request("db-2", "db", &[("default", &[])]))
        .await
        .unwrap();
    let mut both = vec![db2.interfaces[0].address, db3.interfaces[0].address];
    both.sort();
    assert_eq!(nslookup(&web.netns, "db", net.gateway), both);
    assert_eq!(
        nslookup(&web.netns, "pg", net.gateway),
        [db2.interfaces[0].address]
    );
}

/// A resolver on loopback answering every A query with 10.201.99.99.
fn fake_upstream() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let Ok(req) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut resp =
                Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
            resp.add_queries(req.queries.clone());
            let name = req.queries[0].name().clone();
            resp.add_answer(Record::from_rdata(
                name,
                60,
                RData::A(A(Ipv4Addr::new(10, 201, 99, 99))),
            ));
            let _ = sock.send_to(&resp.to_vec().unwrap(), peer);
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_names_are_forwarded_upstream() {
    stack_testing::require_root!();
    let upstream = fake_upstream();
    let env = Env::with_options(
        "fwd",
        NetOptions {
            upstream_dns: Some(vec![upstream]),
            ..NetOptions::default()
        },
    );
    let net = env
        .mgr
        .ensure_network(&env.project, "default", &spec(test_subnet(42)))
        .await
        .unwrap();
    let app = env
        .mgr
        .attach(&env.request("app-1", "app", &[("default", &[])]))
        .await
        .unwrap();
    assert_eq!(
        nslookup(&app.netns, "example.test", net.gateway),
        [Ipv4Addr::new(10, 201, 99, 99)]
    );
    assert_eq!(
        nslookup(&app.netns, "app", net.gateway),
        [app.interfaces[0].address]
    );
    // The resolv.conf given to the container resolves through the same server.
    let out = ns_sh_with_resolv(
        &app,
        env.dir.path(),
        "busybox nslookup -type=a example.test",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("10.201.99.99"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_by_another_manager_are_served_at_once() {
    stack_testing::require_root!();
    let env = Env::new("twoproc");
    let net = env
        .mgr
        .ensure_network(&env.project, "default", &spec(test_subnet(43)))
        .await
        .unwrap();
    let web = env
        .mgr
        .attach(&env.request("web-1", "web", &[("default", &[])]))
        .await
        .unwrap();
    // A second manager over the same state, as a second `stack` process.
    let other = stack_net::NetworkManager::new(
        &env.state_dir(),
        &env.run_dir(),
        NetOptions {
            upstream_dns: Some(Vec::new()),
            ..NetOptions::default()
        },
    );
    other
        .ensure_network(&env.project, "default", &spec(test_subnet(43)))
        .await
        .unwrap();
    let db = other
        .attach(&env.request("db-1", "db", &[("default", &[])]))
        .await
        .unwrap();
    assert_eq!(
        nslookup(&web.netns, "db", net.gateway),
        [db.interfaces[0].address]
    );
    other
        .detach(&format!("{}-db-1", env.project))
        .await
        .unwrap();
    assert!(nslookup(&web.netns, "db", net.gateway).is_empty());
}
