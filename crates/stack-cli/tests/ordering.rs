//! Start order across three dependency levels, seen from the containers' own
//! clocks: `web` waits for a healthy `api`, which waits for a healthy `db`
//! and a `migrate` that exited 0; a failing `migrate` keeps both from starting.

mod common;

use std::path::Path;

use common::{Env, first_uptime};

const LOOP: &str = "trap 'exit 0' TERM; while :; do sleep 0.1; done";

/// Appends the host uptime (shared by all containers, 10 ms steps) to `/out/FILE`.
fn stamp(file: &str) -> String {
    format!("cut -d' ' -f1 /proc/uptime >> /out/{file}")
}

/// A health check that passes once `/tmp/ready` exists and records the time
/// of every passing probe: the first line is no later than the moment the
/// service turned healthy.
fn health(name: &str) -> String {
    format!(
        r#"
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready && {stamp}"]
      interval: 5s
      start_interval: 100ms
      start_period: 30s"#,
        stamp = stamp(&format!("{name}.healthy"))
    )
}

fn stack(out: &Path, migrate_exit: i32) -> String {
    let out = out.display();
    // Each long-running service takes a while before it reports ready, so
    // that a dependent started too early would be caught by the timestamps.
    let server = |name: &str| {
        format!(
            r#"["sh", "-c", "{start}; sleep 0.4; touch /tmp/ready; {LOOP}"]"#,
            start = stamp(&format!("{name}.start"))
        )
    };
    format!(
        r#"
services:
  web:
    image: busybox
    command: {web}
    volumes: ["{out}:/out"]
    depends_on:
      api: {{condition: service_healthy}}
  api:
    image: busybox
    command: {api}
    volumes: ["{out}:/out"]
    depends_on:
      db: {{condition: service_healthy}}
      migrate: {{condition: service_completed_successfully}}{api_health}
  migrate:
    image: busybox
    command: ["sh", "-c", "{migrate_start}; sleep 0.3; {migrate_end}; exit {migrate_exit}"]
    volumes: ["{out}:/out"]
  db:
    image: busybox
    command: {db}
    volumes: ["{out}:/out"]{db_health}
"#,
        web = server("web"),
        api = server("api"),
        db = server("db"),
        api_health = health("api"),
        db_health = health("db"),
        migrate_start = stamp("migrate.start"),
        migrate_end = stamp("migrate.end"),
    )
}

#[test]
fn three_levels_start_in_the_order_their_conditions_say() {
    stack_testing::require_root!();
    let env = Env::new("wl-order", 40);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    env.write(&stack(&out, 0));

    env.ok(&["up", "-d"]);
    let t = |f: &str| first_uptime(&out.join(f));
    let (db_healthy, migrate_end) = (t("db.healthy"), t("migrate.end"));
    let (api_start, api_healthy, web_start) = (t("api.start"), t("api.healthy"), t("web.start"));
    assert!(t("db.start") < db_healthy, "db healthy before it started");
    assert!(
        db_healthy <= api_start,
        "api started at {api_start} before db was healthy at {db_healthy}"
    );
    assert!(
        migrate_end <= api_start,
        "api started at {api_start} before migrate exited at {migrate_end}"
    );
    assert!(
        api_healthy <= web_start,
        "web started at {web_start} before api was healthy at {api_healthy}"
    );

    let states = env.states("wl-order");
    assert_eq!(
        states,
        vec![
            ("api".into(), "running".into(), 0),
            ("db".into(), "running".into(), 0),
            ("migrate".into(), "exited".into(), 0),
            ("web".into(), "running".into(), 0),
        ]
    );
}

#[test]
fn a_failed_migration_keeps_every_level_above_it_from_starting() {
    stack_testing::require_root!();
    let env = Env::new("wl-order-fail", 41);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    env.write(&stack(&out, 3));

    let file = env.file();
    let result = env.stack(&[
        "up",
        "-d",
        "-f",
        file.to_str().unwrap(),
        "-p",
        "wl-order-fail",
    ]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "up succeeded:\n{stderr}");
    assert!(
        stderr.contains("migrate") && stderr.contains("exited with code 3"),
        "the error names migrate and its exit code:\n{stderr}"
    );
    // db did start and migrate did run: the failure is migrate's, not a
    // refusal to do anything.
    assert!(out.join("db.start").exists());
    assert!(out.join("migrate.end").exists());
    // Give a wrongly started api or web time to show itself.
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(!out.join("api.start").exists(), "api must not start");
    assert!(!out.join("web.start").exists(), "web must not start");
    let states = env.states("wl-order-fail");
    for (service, state, _) in &states {
        if service == "api" || service == "web" {
            assert_ne!(state, "running", "{states:?}");
        }
    }
    assert!(
        states.contains(&("migrate".into(), "exited".into(), 3)),
        "{states:?}"
    );
}
