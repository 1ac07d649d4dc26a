//! A real workload: redis-server from Debian's packages behind a `redis-cli
//! ping` health check, and an app that starts once it is healthy and talks
//! to it by its service name.

mod common;

use common::{Env, redis_archive};

#[test]
fn an_app_writes_and_reads_keys_in_redis_by_service_name() {
    stack_testing::require_root!();
    let env = Env::new("wl-redis", 46);
    env.load(&redis_archive());
    env.write(
        r#"
services:
  cache:
    image: redis:7
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 5s
      start_interval: 100ms
      start_period: 20s
  app:
    image: redis:7
    command:
      - sh
      - -c
      - |
        set -e
        redis-cli -h cache set greeting "hello from app"
        redis-cli -h cache incr visits
        redis-cli -h cache incr visits
        echo "got: $(redis-cli -h cache get greeting) / $(redis-cli -h cache get visits)"
    depends_on:
      cache: {condition: service_healthy}
"#,
    );
    env.ok(&["up", "-d"]);

    // The app ran to completion against the server: exit code 0 and the
    // values it read back.
    let mut states = Vec::new();
    for _ in 0..200 {
        states = env.states("wl-redis");
        if states.iter().any(|s| s.0 == "app" && s.1 == "exited") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        states,
        vec![
            ("app".into(), "exited".into(), 0),
            ("cache".into(), "running".into(), 0)
        ]
    );
    let logs = env.ok(&["logs", "--no-color", "app"]);
    assert!(
        logs.contains("got: hello from app / 2"),
        "the app did not read its keys back:\n{logs}"
    );
    let server_logs = env.ok(&["logs", "--no-color", "cache"]);
    assert!(
        server_logs.contains("Ready to accept connections"),
        "{server_logs}"
    );
    env.ok(&["down"]);
}
