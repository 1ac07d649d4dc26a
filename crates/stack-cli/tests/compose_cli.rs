//! A compose user's habits against real containers: global options before
//! the subcommand (`stack -f FILE -p NAME up -d`), the `COMPOSE_` variables
//! instead of options, and list-form variables in the file interpolated
//! before they become keys.

mod common;

use common::Env;

#[test]
fn global_options_and_compose_variables_reach_the_project() {
    let env = Env::new("cc-glob", 150);
    // `depends_on` in list form with a variable: interpolated before it
    // becomes a key, as compose does.
    env.write(
        "services:
  db:
    image: busybox
    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]
  web:
    image: busybox
    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]
    depends_on:
      - ${DB_SERVICE:-db}
    healthcheck:
      test: [
        \"CMD\", \"true\"
      ]
",
    );
    let file = env.file();
    let file = file.to_str().unwrap();
    // Options before the subcommand, as `docker compose -f F -p P up -d`.
    let out = env.stack(&["-f", file, "-p", "cc-glob", "up", "-d"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No option at all: COMPOSE_FILE and COMPOSE_PROJECT_NAME name the project.
    let out = env
        .command(&["ps", "--format", "json"])
        .env("COMPOSE_FILE", file)
        .env("COMPOSE_PROJECT_NAME", "cc-glob")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["cc-glob-db-1", "cc-glob-web-1"] {
        assert!(text.contains(name), "{name} missing from ps: {text}");
    }
    // STACK_PROJECT_NAME wins over COMPOSE_PROJECT_NAME: another (empty) project.
    let out = env
        .command(&["ps", "-a", "--format", "json"])
        .env("COMPOSE_FILE", file)
        .env("COMPOSE_PROJECT_NAME", "cc-glob")
        .env("STACK_PROJECT_NAME", "cc-other")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("cc-glob-web-1"), "{text}");
    // Before and after the subcommand together, then the project goes.
    env.ok(&["stop"]);
    let out = env.stack(&["-p", "cc-glob", "down", "-f", file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}
