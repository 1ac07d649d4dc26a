//! Containers on one network reach each other by name; other networks do not.

mod common;

use std::net::SocketAddr;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_reach_each_other_by_name_and_networks_are_isolated() {
    stack_testing::require_root!();
    let env = Env::new("conn");
    let (s1, s2) = (test_subnet(11), test_subnet(12));
    let front = env
        .mgr
        .ensure_network(&env.project, "front", &spec(s1))
        .await
        .unwrap();
    let back = env
        .mgr
        .ensure_network(&env.project, "back", &spec(s2))
        .await
        .unwrap();
    assert!(front.bridge.starts_with("stk-") && front.bridge.len() <= 15);
    assert_ne!(front.bridge, back.bridge);

    let web = env
        .mgr
        .attach(&env.request("web-1", "web", &[("front", &["www"])]))
        .await
        .unwrap();
    let db = env
        .mgr
        .attach(&env.request("db-1", "db", &[("front", &["database"])]))
        .await
        .unwrap();
    let other = env
        .mgr
        .attach(&env.request("other-1", "other", &[("back", &[])]))
        .await
        .unwrap();
    let both = env
        .mgr
        .attach(&env.request("both-1", "both", &[("front", &[]), ("back", &[])]))
        .await
        .unwrap();
    assert_eq!(web.interfaces[0].ifname, "eth0");
    assert_eq!(both.interfaces[1].ifname, "eth1");
    assert_eq!(
        web.resolv_conf,
        format!("nameserver {}\noptions ndots:0\n", front.gateway)
    );
    assert!(
        web.hosts
            .contains(&format!("{}\thost-web-1", web.interfaces[0].address)),
        "{}",
        web.hosts
    );

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
    assert_eq!(
        nslookup(&web.netns, &format!("{}-db-1", env.project), front.gateway),
        [db.interfaces[0].address]
    );
    assert_eq!(
        nslookup(&web.netns, "host-db-1", front.gateway),
        [db.interfaces[0].address]
    );

    // The container on the other network neither resolves nor reaches them.
    assert!(nslookup(&other.netns, "web", back.gateway).is_empty());
    assert!(nslookup(&other.netns, "web", front.gateway).is_empty());
    let web_addr = SocketAddr::new(web.interfaces[0].address.into(), 7000);
    let reach = in_netns(&other.netns, move || tcp_roundtrip(web_addr, "x"))
        .join()
        .unwrap();
    assert!(reach.is_err(), "other network reached web: {reach:?}");

    // A container on both networks reaches both sides.
    assert_eq!(nc_by_name(&both, dir, "web", 7000, "ping5"), "ping5");
    let other_addr = SocketAddr::new(other.interfaces[0].address.into(), 7000);
    let r = in_netns(&both.netns, move || tcp_roundtrip(other_addr, "ping6"))
        .join()
        .unwrap();
    assert_eq!(r.unwrap(), "ping6");

    // Detach removes the veth and the namespace.
    env.mgr
        .detach(&format!("{}-web-1", env.project))
        .await
        .unwrap();
    assert!(!web.netns.exists());
    let links = String::from_utf8(
        std::process::Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(!links.contains(&web.interfaces[0].host_veth));
    assert!(nslookup(&db.netns, "web", front.gateway).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_network_is_joined_not_owned() {
    stack_testing::require_root!();
    let owner = Env::new("extown");
    let mut joiner = Env::new("extjoin");
    // Same state dir: both projects live under one root, as with one `stack`.
    joiner.mgr = owner.mgr.clone();
    let shared = owner
        .mgr
        .ensure_network(&owner.project, "shared", &spec(test_subnet(13)))
        .await
        .unwrap();
    let ext = stack_net::NetworkSpec {
        external: Some(stack_net::ExternalRef {
            project: owner.project.clone(),
            name: "shared".into(),
        }),
        ..Default::default()
    };
    let joined = joiner
        .mgr
        .ensure_network(&joiner.project, "shared", &ext)
        .await
        .unwrap();
    assert_eq!(joined, shared);
    let api = owner
        .mgr
        .attach(&owner.request("api-1", "api", &[("shared", &[])]))
        .await
        .unwrap();
    let cli = joiner
        .mgr
        .attach(&joiner.request("cli-1", "cli", &[("shared", &[])]))
        .await
        .unwrap();
    tcp_echo_server(&api.netns, 7100);
    assert_eq!(
        nc_by_name(&cli, owner.dir.path(), "api", 7100, "hello"),
        "hello"
    );

    // Tearing down the joining project leaves the owner's bridge alone.
    joiner.mgr.cleanup_project(&joiner.project).await.unwrap();
    assert!(!cli.netns.exists());
    let links = String::from_utf8(
        std::process::Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(links.contains(&shared.bridge));
    assert_eq!(
        nc_by_name(&api, owner.dir.path(), "api", 7100, "still"),
        "still"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_mode_none_has_only_loopback() {
    stack_testing::require_root!();
    let env = Env::new("none");
    let id = format!("{}-solo", env.project);
    let netns = env.mgr.attach_none(&env.project, &id).await.unwrap();
    assert_eq!(
        env.mgr.netns_of(&id).await.unwrap(),
        netns,
        "service:/container: modes join this path"
    );
    let out = ns_cmd(&netns, &["ip", "-o", "link"]);
    let links = String::from_utf8_lossy(&out.stdout);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    env.mgr.detach(&id).await.unwrap();
    assert!(!netns.exists());
}
