//! What the state keeps of a container after it is gone: a detached
//! container's addresses stay for its return, a forgotten one leaves nothing,
//! and cleaning a project up drops the addresses kept on its networks.

mod common;

use std::path::Path;

use common::*;

/// The container ids with addresses kept in `previous`.
fn kept(state_dir: &Path) -> Vec<String> {
    let text = std::fs::read(state_dir.join("net/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_slice(&text).unwrap();
    state["previous"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_drops_kept_addresses_and_cleanup_drops_the_projects() {
    stack_testing::require_root!();
    let env = Env::new("forget");
    let subnet: stack_net::Subnet = "10.222.2.0/24".parse().unwrap();
    env.mgr
        .ensure_network(&env.project, "default", &spec(subnet))
        .await
        .unwrap();
    let web = format!("{}-web-1", env.project);
    let gone = format!("{}-gone-1", env.project);
    let solo = format!("{}-solo", env.project);
    let first = env
        .mgr
        .attach(&env.request("web-1", "web", &[("default", &[])]))
        .await
        .unwrap();
    env.mgr.detach(&web).await.unwrap();
    assert_eq!(kept(&env.state_dir()), [web.as_str()]);
    // Kept so that a restart gets the same address back.
    let again = env
        .mgr
        .attach(&env.request("web-1", "web", &[("default", &[])]))
        .await
        .unwrap();
    assert_eq!(again.interfaces[0].address, first.interfaces[0].address);

    // Forgetting an attached container disconnects it, and keeps nothing.
    let attached = env
        .mgr
        .attach(&env.request("gone-1", "gone", &[("default", &[])]))
        .await
        .unwrap();
    env.mgr.forget(&gone).await.unwrap();
    assert!(!attached.netns.exists());
    assert!(
        matches!(
            env.mgr.netns_of(&gone).await,
            Err(stack_net::NetError::NotAttached(_))
        ),
        "still attached"
    );
    // A detached one loses what was kept; an unknown id is no error.
    env.mgr.detach(&web).await.unwrap();
    env.mgr.forget(&web).await.unwrap();
    env.mgr.forget("never-attached").await.unwrap();
    assert_eq!(kept(&env.state_dir()), Vec::<String>::new());

    // A namespace with no network has no address worth keeping.
    env.mgr.attach_none(&env.project, &solo).await.unwrap();
    env.mgr.detach(&solo).await.unwrap();
    assert_eq!(kept(&env.state_dir()), Vec::<String>::new());

    // Down: addresses kept on the project's networks go with them, also
    // those of containers that were no longer attached.
    env.mgr
        .attach(&env.request("web-1", "web", &[("default", &[])]))
        .await
        .unwrap();
    env.mgr.detach(&web).await.unwrap();
    assert_eq!(kept(&env.state_dir()), [web.as_str()]);
    let prefix = env.prefix();
    env.mgr.cleanup_project(&env.project).await.unwrap();
    assert_eq!(kept(&env.state_dir()), Vec::<String>::new());
    assert_eq!(leaks(&prefix, &env.run_dir()), (0, 0, 0));
}
