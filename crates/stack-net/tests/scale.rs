//! 50 containers attach concurrently without address conflicts, and nothing
//! is left after teardown.

mod common;

use std::collections::BTreeSet;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_attaches_get_distinct_addresses_and_leave_nothing() {
    let env = Env::new("scale");
    let net = env.mgr.ensure_network(&env.project, "default", &spec(test_subnet(51))).await.unwrap();
    let attaches = (0..50).map(|i| {
        let (mgr, req) = (env.mgr.clone(), env.request(&format!("c-{i}"), "svc", &[("default", &[])]));
        tokio::spawn(async move { mgr.attach(&req).await })
    });
    let atts: Vec<_> = futures::future::join_all(attaches).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    let addrs: BTreeSet<_> = atts.iter().map(|a| a.interfaces[0].address).collect();
    assert_eq!(addrs.len(), 50, "addresses must be distinct");
    assert!(!addrs.contains(&net.gateway));
    eprintln!("{}", std::fs::read_to_string(env.state_dir().join("net/state.json")).unwrap().len());
    assert_eq!(env.mgr.leases(&env.project).await.unwrap().len(), 50);
    let prefix = env.prefix();
    assert_eq!(leaks(&prefix, &env.run_dir()), (51, 50, 1));
    // Each namespace really has its address on eth0.
    for a in atts.iter().step_by(7) {
        let out = ns_cmd(&a.netns, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{}/24", a.interfaces[0].address)));
    }
    assert_eq!(nslookup(&atts[0].netns, "svc", net.gateway).len(), 50);

    let detaches = (0..50).map(|i| {
        let (mgr, id) = (env.mgr.clone(), format!("{}-c-{i}", env.project));
        tokio::spawn(async move { mgr.detach(&id).await })
    });
    for r in futures::future::join_all(detaches).await {
        r.unwrap().unwrap();
    }
    assert!(env.mgr.leases(&env.project).await.unwrap().is_empty());
    assert_eq!(leaks(&prefix, &env.run_dir()), (1, 0, 1), "only the bridge and its table remain");
    env.mgr.cleanup_project(&env.project).await.unwrap();
    assert_eq!(leaks(&prefix, &env.run_dir()), (0, 0, 0));
}
