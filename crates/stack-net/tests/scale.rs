//! 50 containers attach concurrently without address conflicts, and nothing
//! is left after a concurrent teardown (whose deletions go in batches).

mod common;

use std::collections::BTreeSet;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_attaches_get_distinct_addresses_and_leave_nothing() {
    stack_testing::require_root!();
    let env = Env::new("scale");
    let net = env
        .mgr
        .ensure_network(&env.project, "default", &spec(test_subnet(51)))
        .await
        .unwrap();
    let attaches = (0..50).map(|i| {
        let (mgr, req) = (
            env.mgr.clone(),
            env.request(&format!("c-{i}"), "svc", &[("default", &[])]),
        );
        tokio::spawn(async move { mgr.attach(&req).await })
    });
    let atts: Vec<_> = futures::future::join_all(attaches)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    let addrs: BTreeSet<_> = atts.iter().map(|a| a.interfaces[0].address).collect();
    assert_eq!(addrs.len(), 50, "addresses must be distinct");
    assert!(!addrs.contains(&net.gateway));
    assert_eq!(env.mgr.leases(&env.project).await.unwrap().len(), 50);
    let prefix = env.prefix();
    assert_eq!(leaks(&prefix, &env.run_dir()), (51, 50, 1));
    // Each namespace really has its address on eth0.
    for a in atts.iter().step_by(7) {
        let out = ns_cmd(&a.netns, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .contains(&format!("{}/24", a.interfaces[0].address))
        );
    }
    // All 50 replicas over TCP; UDP answers are truncated to what fits.
    assert_eq!(
        dns_tcp_lookup(&atts[0].netns, "svc", net.gateway),
        addrs.iter().copied().collect::<Vec<_>>()
    );
    let udp = nslookup(&atts[0].netns, "svc", net.gateway);
    assert!(
        !udp.is_empty() && udp.iter().all(|a| addrs.contains(a)),
        "{udp:?}"
    );

    // Half detached (addresses kept), half forgotten, all at once: their
    // state changes and veth deletions are done in shared batches.
    let detaches = (0..50).map(|i| {
        let (mgr, id) = (env.mgr.clone(), format!("{}-c-{i}", env.project));
        tokio::spawn(async move {
            if i % 2 == 0 {
                mgr.detach(&id).await
            } else {
                mgr.forget(&id).await
            }
        })
    });
    for r in futures::future::join_all(detaches).await {
        r.unwrap().unwrap();
    }
    assert!(env.mgr.leases(&env.project).await.unwrap().is_empty());
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.state_dir().join("net/state.json")).unwrap())
            .unwrap();
    let kept: BTreeSet<&String> = state["previous"].as_object().unwrap().keys().collect();
    let detached: Vec<String> = (0..50)
        .step_by(2)
        .map(|i| format!("{}-c-{i}", env.project))
        .collect();
    assert_eq!(
        kept,
        detached.iter().collect(),
        "only detached ones keep addresses"
    );
    assert_eq!(
        leaks(&prefix, &env.run_dir()),
        (1, 0, 1),
        "only the bridge and its table remain"
    );
    env.mgr
        .remove_network(&env.project, "default")
        .await
        .unwrap();
    assert_eq!(leaks(&prefix, &env.run_dir()), (0, 0, 0));
}
