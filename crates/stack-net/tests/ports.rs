//! Published ports: TCP and UDP on 127.0.0.1, host_ip binding, random ports,
//! hairpin from a container through a host address.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::*;
use stack_net::{PortMapping, Protocol};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_ports_answer_on_loopback_and_hairpin() {
    stack_testing::require_root!();
    let env = Env::new("ports");
    let net = env
        .mgr
        .ensure_network(&env.project, "default", &spec(test_subnet(21)))
        .await
        .unwrap();
    let web = env
        .mgr
        .attach(&env.request("web-1", "web", &[("default", &[])]))
        .await
        .unwrap();
    let peer = env
        .mgr
        .attach(&env.request("peer-1", "peer", &[("default", &[])]))
        .await
        .unwrap();
    tcp_echo_server(&web.netns, 80);
    udp_echo_server(&web.netns, 5353);
    let id = format!("{}-web-1", env.project);
    let lo = Some(Ipv4Addr::LOCALHOST);
    let published = env
        .mgr
        .publish(
            &id,
            &[
                PortMapping {
                    host_ip: None,
                    host_port: None,
                    container_ports: (80, 80),
                    protocol: Protocol::Tcp,
                },
                PortMapping {
                    host_ip: lo,
                    host_port: None,
                    container_ports: (5353, 5353),
                    protocol: Protocol::Udp,
                },
                PortMapping {
                    host_ip: lo,
                    host_port: None,
                    container_ports: (80, 80),
                    protocol: Protocol::Tcp,
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(published.len(), 3);
    assert!(
        published
            .iter()
            .all(|p| p.host_port != 0 && p.container_ip == web.interfaces[0].address)
    );
    assert_eq!(
        env.mgr.published(&id).await.unwrap(),
        published,
        "`stack port` reports the chosen ports"
    );
    let (any_tcp, lo_udp, lo_tcp) = (
        published[0].host_port,
        published[1].host_port,
        published[2].host_port,
    );

    let local = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    assert_eq!(tcp_roundtrip(local(any_tcp), "tcp-any").unwrap(), "tcp-any");
    assert_eq!(udp_roundtrip(local(lo_udp), "udp-lo").unwrap(), "udp-lo");
    assert_eq!(tcp_roundtrip(local(lo_tcp), "tcp-lo").unwrap(), "tcp-lo");

    // All-address mapping also answers on another host address (the gateway);
    // the 127.0.0.1-only mapping does not.
    let gateway = net.gateway;
    let gw = move |port| SocketAddr::from((gateway, port));
    assert_eq!(tcp_roundtrip(gw(any_tcp), "tcp-gw").unwrap(), "tcp-gw");
    assert!(
        tcp_roundtrip(gw(lo_tcp), "no").is_err(),
        "host_ip 127.0.0.1 answered on {}",
        net.gateway
    );

    // Hairpin: a peer and the container itself reach it through the host address.
    let r = in_netns(&peer.netns, move || tcp_roundtrip(gw(any_tcp), "hairpin"))
        .join()
        .unwrap();
    assert_eq!(r.unwrap(), "hairpin");
    let r = in_netns(&web.netns, move || tcp_roundtrip(gw(any_tcp), "self"))
        .join()
        .unwrap();
    assert_eq!(r.unwrap(), "self");

    // A taken host port is a clear error.
    let err = env
        .mgr
        .publish(
            &id,
            &[PortMapping {
                host_ip: lo,
                host_port: Some(lo_tcp),
                container_ports: (80, 80),
                protocol: Protocol::Tcp,
            }],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not available"), "{err}");

    // Detach unpublishes.
    env.mgr.detach(&id).await.unwrap();
    assert!(tcp_roundtrip(local(any_tcp), "gone").is_err());
}
