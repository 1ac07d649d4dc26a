//! How the stack file's restart settings become the engine's policy:
//! `restart:`, `deploy.restart_policy` (which wins, as in compose) and
//! `x-stack.restart_on_unhealthy`.

use std::time::Duration;

use stack_engine::restart::{
    Backoff, RestartPolicy, backoff, restart_on_unhealthy, restart_policy,
};

fn service(yaml: &str) -> Result<stack_spec::Service, String> {
    let mut options = stack_spec::LoadOptions::new("/tmp").with_content(
        "stack.yaml",
        format!("services:\n  web:\n    image: busybox\n{yaml}"),
    );
    options.project_name = Some("p".into());
    stack_spec::load(&options)
        .map(|l| l.project.services["web"].clone())
        .map_err(|e| {
            e.errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
}

#[test]
fn deploy_restart_policy_maps_as_compose_and_swarm_do() {
    let cases = [
        (
            "    restart: on-failure:3\n",
            RestartPolicy::OnFailure {
                max_retries: Some(3),
            },
        ),
        (
            "    restart: always\n    deploy:\n      restart_policy: {condition: none}\n",
            RestartPolicy::No,
        ),
        (
            "    deploy:\n      restart_policy: {condition: on-failure, max_attempts: 2}\n",
            RestartPolicy::OnFailure {
                max_retries: Some(2),
            },
        ),
        (
            "    deploy:\n      restart_policy: {condition: any}\n",
            RestartPolicy::Always,
        ),
        (
            "    deploy:\n      restart_policy: {condition: any, max_attempts: 4}\n",
            RestartPolicy::Any { max_attempts: 4 },
        ),
        (
            "    deploy:\n      restart_policy: {}\n",
            RestartPolicy::Always,
        ),
    ];
    for (yaml, expected) in cases {
        assert_eq!(restart_policy(&service(yaml).unwrap()), expected, "{yaml}");
    }
}

#[test]
fn delay_and_window_replace_the_doubling_backoff() {
    let s =
        service("    deploy:\n      restart_policy: {condition: any, delay: 5s, window: 30s}\n")
            .unwrap();
    assert_eq!(
        backoff(&s),
        Backoff::fixed(Duration::from_secs(5), Duration::from_secs(30))
    );
    let s = service("    deploy:\n      restart_policy: {condition: any, window: 1m}\n").unwrap();
    assert_eq!(
        backoff(&s),
        Backoff {
            reset_after: Duration::from_secs(60),
            ..Backoff::default()
        }
    );
    assert_eq!(
        backoff(&service("    restart: always\n").unwrap()),
        Backoff::default()
    );
}

#[test]
fn restart_on_unhealthy_is_opt_in_and_misspellings_are_errors() {
    assert!(!restart_on_unhealthy(&service("").unwrap()));
    let s = service("    x-stack:\n      restart_on_unhealthy: true\n").unwrap();
    assert!(restart_on_unhealthy(&s));
    let err = service("    x-stack:\n      restart_on_unhealty: true\n").unwrap_err();
    assert!(err.contains("restart_on_unhealty"), "{err}");
    assert!(err.contains("stack.yaml:"), "the error names where: {err}");
    // Other extensions stay ignored, as compose ignores them.
    assert!(service("    x-other: {anything: 1}\n").is_ok());
}
