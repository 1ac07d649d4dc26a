//! Containers on one network reach each other by name; other networks do not.

mod common;

use std::net::SocketAddr;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_reach_each_other_by_name_and_networks_are_isolated() {
    let env = Env::new("conn");
    let (s1, s2) = (test_subnet(11), test_subnet(12));
    let front = env.mgr.ensure_network(&env.project, "front", &spec(s1)).await.unwrap();
    let back = env.mgr.ensure_network(&env.project, "back", &spec(s2)).await.unwrap();
    assert!(front.bridge.starts_with("stk-") && front.bridge.len() <= 15);
    assert_ne!(front.bridge, back.bridge);

    let web = env.mgr.attach(&env.request("web-1", "web", &[("front", &["www"])])).await.unwrap();
    let db = env.mgr.attach(&env.request("db-1", "db", &[("front", &["database"])])).await.unwrap();
    let other = env.mgr.attach(&env.request("other-1", "other", &[("back", &[])])).await.unwrap();
    let both = env.mgr.attach(&env.request("both-1", "both", &[("front", &[]), ("back", &[])])).await.unwrap();
    assert_eq!(web.interfaces[0].ifname, "eth0");
    assert_eq!(both.interfaces[1].ifname, "eth1");
    assert_eq!(web.resolv_conf, format!("nameserver {}\noptions ndots:0\n", front.gateway));
    assert!(web.hosts.contains(&format!("{}\thost-web-1", web.interfaces[0].address)), "{}", web.hosts);

    for att in [&web, &db, &other, &both] {
        tcp_echo_server(&att.netns, 7000);
    }
    let dir = env.dir.path();
    // By service name and by alias, both ways.
    assert_eq!(nc_by_name(&web, dir, "db", 7000, "ping1"), "ping1");
    assert_eq!(nc_by_name(&db, dir, "web", 7000, "ping2"), "ping2");
    assert_eq!(nc_by_name(&web, dir, "database", 7000, "ping3"), "ping3");
    assert_eq!(nc_by_name(&db, dir, "www", 7000, "ping4"), "ping4");
    // Container name and hostname resolve too.
    assert_eq!(nslookup(&web.netns, &format!("{}-db-1", env.project), front.gateway), [db.interfaces[0].address]);
    assert_eq!(nslookup(&web.netns, "host-db-1", front.gateway), [db.interfaces[0].address]);

    // The container on the other network neither resolves nor reaches them.
    assert!(nslookup(&other.netns, "web", back.gateway).is_empty());
    assert!(nslookup(&other.netns, "web", front.gateway).is_empty());
    let web_addr = SocketAddr::new(web.interfaces[0].address.into(), 7000);
    let reach = in_netns(&other.netns, move || tcp_roundtrip(web_addr, "x")).join().unwrap();
    assert!(reach.is_err(), "other network reached web: {reach:?}");

    // A container on both networks reaches both sides.
    assert_eq!(nc_by_name(&both, dir, "web", 7000, "ping5"), "ping5");
    let other_addr = SocketAddr::new(other.interfaces[0].address.into(), 7000);
    let r = in_netns(&both.netns, move || tcp_roundtrip(other_addr, "ping6")).join().unwrap();
    assert_eq!(r.unwrap(), "ping6");

    // Detach removes the veth and the namespace.
    env.mgr.detach(&format!("{}-web-1", env.project)).await.unwrap();
    assert!(!web.netns.exists());
    let links = String::from_utf8(std::process::Command::new("ip").args(["-o", "link"]).output().unwrap().stdout).unwrap();
    assert!(!links.contains(&web.interfaces[0].host_veth));
    assert!(nslookup(&db.netns, "web", front.gateway).is_empty());
}
