//! docker compose's lifecycle flags against real containers: `create` and
//! `up --no-start`, anonymous volumes kept on recreate or renewed with
//! `-V`, `--always-recreate-deps`, `restart --no-deps`, `kill
//! --remove-orphans` and `COMPOSE_IGNORE_ORPHANS`; which services an
//! attached `up` prints (`--attach`, `--no-attach`, `--attach-dependencies`);
//! `run`'s flags (`--service-ports`, `--publish`, `-v`, `-l`, `--cap-add`,
//! `--cap-drop`, `--pull`, `--remove-orphans`, `--use-aliases`) and `exec
//! --privileged`.

mod common;

use std::process::Output;

use common::Env;

const LOOP: &str = r#"["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]"#;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `stack CMD -f FILE --project-name P ARGS...`.
fn stack(env: &Env, args: &[&str]) -> Output {
    let file = env.file();
    let mut all: Vec<&str> = vec![
        args[0],
        "-f",
        file.to_str().unwrap(),
        "--project-name",
        &env.project,
    ];
    all.extend(&args[1..]);
    env.stack(&all)
}

fn ok(env: &Env, args: &[&str]) -> String {
    let out = stack(env, args);
    let text = text(&out);
    assert!(out.status.success(), "stack {args:?} failed:\n{text}");
    text
}

/// `service state` of each container, as `ps -a` prints them.
fn states(env: &Env) -> Vec<String> {
    ok(env, &["ps", "-a", "--format", "{{.Service}} {{.State}}"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The record's (id, pid) of a container.
fn id_pid(env: &Env, name: &str) -> (String, Option<i64>) {
    env.containers()
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, id, pid)| (id, pid))
        .unwrap_or_else(|| panic!("no container {name}: {:?}", env.containers()))
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn create_no_start_recreate_strategies_restart_and_orphans() {
    stack_testing::require_root!();
    let env = Env::new("cl-create", 210);
    let file = format!(
        "services:
  db:
    image: busybox
    command: {LOOP}
  web:
    image: busybox
    command: {LOOP}
    volumes: [/data]
    depends_on:
      db: {{condition: service_started, restart: true}}
"
    );
    env.write(&file);

    // `create` plans creates and no start; `up --no-start` is the same.
    let plan = ok(&env, &["create", "--dry-run"]);
    assert!(plan.contains("create container cl-create-web-1"), "{plan}");
    assert!(!plan.contains("start container"), "{plan}");
    let plan = ok(&env, &["up", "--no-start", "--dry-run"]);
    assert!(!plan.contains("start container"), "{plan}");
    ok(&env, &["create"]);
    assert_eq!(states(&env), ["db created", "web created"]);
    assert!(env.containers().iter().all(|(_, _, pid)| pid.is_none()));
    // `start` starts them, dependencies first.
    ok(&env, &["start"]);
    assert_eq!(states(&env), ["db running", "web running"]);

    // Anonymous volumes: kept by a recreate, new with -V.
    ok(
        &env,
        &["exec", "-T", "web", "sh", "-c", "echo kept > /data/f"],
    );
    let (db_id, _) = id_pid(&env, "cl-create-db-1");
    let (web_id, _) = id_pid(&env, "cl-create-web-1");
    ok(&env, &["up", "-d", "--force-recreate", "web"]);
    assert_ne!(id_pid(&env, "cl-create-web-1").0, web_id);
    // --force-recreate is for the services named, not their dependencies.
    assert_eq!(id_pid(&env, "cl-create-db-1").0, db_id);
    let out = ok(&env, &["exec", "-T", "web", "cat", "/data/f"]);
    assert_eq!(out.trim(), "kept");
    // --always-recreate-deps: the dependency too, and -V: empty volumes.
    ok(
        &env,
        &[
            "up",
            "-d",
            "--always-recreate-deps",
            "-V",
            "--force-recreate",
            "web",
        ],
    );
    assert_ne!(id_pid(&env, "cl-create-db-1").0, db_id);
    let out = stack(&env, &["exec", "-T", "web", "cat", "/data/f"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        !stack(&env, &["up", "-d", "-V", "--no-recreate"])
            .status
            .success()
    );

    // restart db: web (restart: true) restarts with it, unless --no-deps.
    let (_, web_pid) = id_pid(&env, "cl-create-web-1");
    ok(&env, &["restart", "-t", "1", "--no-deps", "db"]);
    assert_eq!(id_pid(&env, "cl-create-web-1").1, web_pid);
    let dry = ok(&env, &["restart", "--dry-run", "db"]);
    assert!(dry.contains("stop container cl-create-web-1"), "{dry}");
    ok(&env, &["restart", "-t", "1", "db"]);
    let (_, new_pid) = id_pid(&env, "cl-create-web-1");
    assert!(new_pid.is_some() && new_pid != web_pid, "{new_pid:?}");

    // web leaves the file: an orphan, warned about unless
    // COMPOSE_IGNORE_ORPHANS.
    env.write(&file[..file.find("  web:").unwrap()]);
    let out = ok(&env, &["up", "-d"]);
    assert!(out.contains("orphan container cl-create-web-1"), "{out}");
    let f = env.file();
    let quiet = env
        .command(&[
            "up",
            "-d",
            "-f",
            f.to_str().unwrap(),
            "--project-name",
            "cl-create",
        ])
        .env("COMPOSE_IGNORE_ORPHANS", "true")
        .output()
        .unwrap();
    assert!(quiet.status.success(), "{}", text(&quiet));
    assert!(!text(&quiet).contains("orphan"), "{}", text(&quiet));
    let both = env
        .command(&[
            "up",
            "-d",
            "--remove-orphans",
            "-f",
            f.to_str().unwrap(),
            "--project-name",
            "cl-create",
        ])
        .env("COMPOSE_IGNORE_ORPHANS", "1")
        .output()
        .unwrap();
    assert!(!both.status.success());
    assert!(
        text(&both).contains("cannot combine COMPOSE_IGNORE_ORPHANS and --remove-orphans"),
        "{}",
        text(&both)
    );
    // kill leaves the orphan running; --remove-orphans signals it too.
    ok(&env, &["kill", "-s", "TERM"]);
    wait_until("db exited", || states(&env).contains(&"db exited".into()));
    assert!(
        states(&env).contains(&"web running".into()),
        "{:?}",
        states(&env)
    );
    ok(&env, &["kill", "-s", "TERM", "--remove-orphans"]);
    wait_until("the orphan exited", || {
        states(&env).contains(&"web exited".into())
    });

    ok(&env, &["down", "-v", "--remove-orphans"]);
    common::leaks::assert_nothing_left(&env);
}

#[test]
fn attached_up_prints_the_services_compose_attaches() {
    stack_testing::require_root!();
    let env = Env::new("cl-attach", 211);
    env.write(
        "services:
  a:
    image: busybox
    command: [\"sh\", \"-c\", \"echo said-a; sleep 0.3\"]
  b:
    image: busybox
    command: [\"sh\", \"-c\", \"echo said-b; sleep 0.3\"]
    depends_on: [a]
  c:
    image: busybox
    command: [\"sh\", \"-c\", \"echo said-c; sleep 0.3\"]
",
    );
    // Attached `up` returns once every container exited; what it printed.
    let said = |args: &[&str]| -> Vec<&'static str> {
        let out = ok(&env, &[&["up"][..], args].concat());
        ["said-a", "said-b", "said-c"]
            .into_iter()
            .filter(|w| out.contains(w))
            .collect()
    };
    assert_eq!(
        said(&["--attach", "a", "--attach", "c"]),
        ["said-a", "said-c"]
    );
    assert_eq!(said(&["--no-attach", "b"]), ["said-a", "said-c"]);
    // Services named: only they, unless --attach-dependencies.
    assert_eq!(said(&["b"]), ["said-b"]);
    assert_eq!(said(&["--attach-dependencies", "b"]), ["said-a", "said-b"]);
    // Attaching to a service this up does not bring is refused.
    let out = stack(&env, &["up", "--attach", "c", "b"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("cannot attach to services not included in up: c"),
        "{}",
        text(&out)
    );
    ok(&env, &["down"]);
    common::leaks::assert_nothing_left(&env);
}

#[test]
fn run_flags_reach_the_one_off_and_exec_privileged_is_unconfined() {
    stack_testing::require_root!();
    let env = Env::new("cl-run", 212);
    let host_dir = env.dir.path().join("shared");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("f"), "from-host\n").unwrap();
    let serve = r#"["sh", "-c", "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www"]"#;
    let file = format!(
        "services:
  web:
    image: busybox
    command: {serve}
    ports: ['127.0.0.1:18212:80']
    networks:
      default:
        aliases: [webalias]
  probe:
    image: busybox
    command: {LOOP}
  ghost:
    image: 127.0.0.1:1/none:1
  old:
    image: busybox
    command: {LOOP}
"
    );
    env.write(&file);
    ok(&env, &["up", "-d", "probe", "old"]);
    // `old` leaves the file; `run --remove-orphans` takes it away.
    env.write(&file[..file.find("  old:").unwrap()]);

    // -v (relative to the project directory), --cap-add/--cap-drop,
    // --remove-orphans.
    let out = ok(
        &env,
        &[
            "run",
            "--rm",
            "-T",
            "--remove-orphans",
            "-v",
            "./shared:/mnt:ro",
            "--cap-drop",
            "NET_RAW",
            "--cap-add",
            "sys_admin",
            "web",
            "sh",
            "-c",
            "cat /mnt/f; grep CapEff /proc/self/status",
        ],
    );
    assert!(out.contains("from-host"), "{out}");
    let eff = out
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(eff & (1 << 13), 0, "NET_RAW dropped: {eff:x}");
    assert_ne!(eff & (1 << 21), 0, "SYS_ADMIN added: {eff:x}");
    assert!(
        !env.containers().iter().any(|(n, _, _)| n == "cl-run-old-1"),
        "{:?}",
        env.containers()
    );

    // A one-off publishes nothing, unless --service-ports or --publish.
    let get = |port: u16| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
            .unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        Some(body)
    };
    ok(
        &env,
        &[
            "run",
            "-d",
            "--name",
            "cl-run-ports",
            "--service-ports",
            "web",
        ],
    );
    wait_until("the service's port answers", || {
        get(18212).is_some_and(|b| b.contains("hi"))
    });
    ok(
        &env,
        &[
            "run",
            "-d",
            "--name",
            "cl-run-pub",
            "--publish",
            "127.0.0.1:18213:80",
            "-l",
            "team=blue",
            "web",
        ],
    );
    wait_until("the published port answers", || {
        get(18213).is_some_and(|b| b.contains("hi"))
    });
    let inspect = ok(&env, &["inspect", "cl-run-pub"]);
    assert!(inspect.contains("\"team\": \"blue\""), "{inspect}");

    // The service's name and aliases find a one-off only with --use-aliases.
    let lookup = "nslookup webalias || echo unresolved";
    let out = ok(&env, &["exec", "-T", "probe", "sh", "-c", lookup]);
    assert!(out.contains("unresolved"), "{out}");
    ok(
        &env,
        &[
            "run",
            "-d",
            "--name",
            "cl-run-aliased",
            "--use-aliases",
            "web",
        ],
    );
    for name in ["webalias", "web"] {
        let out = ok(&env, &["exec", "-T", "probe", "nslookup", name]);
        assert!(out.contains("Address: 10.220.212."), "{name}: {out}");
    }

    // A missing image is pulled, unless --pull never; -p after run is the
    // project name, and a port there is refused with the way out.
    let out = stack(&env, &["run", "--rm", "-T", "ghost", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("pull 127.0.0.1:1/none:1"),
        "{}",
        text(&out)
    );
    let out = stack(
        &env,
        &["run", "--rm", "-T", "--pull", "never", "ghost", "true"],
    );
    assert!(!out.status.success());
    assert!(!text(&out).contains("pull 127.0.0.1"), "{}", text(&out));
    assert!(text(&out).contains("no such image"), "{}", text(&out));
    let f = env.file();
    let out = env.stack(&["run", "-f", f.to_str().unwrap(), "-p", "8080:80", "web"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--publish 8080:80"), "{}", text(&out));

    // exec --privileged: every capability and no seccomp filter.
    let status = "grep -E '^(Seccomp|CapEff):' /proc/self/status";
    let plain = ok(&env, &["exec", "-T", "probe", "sh", "-c", status]);
    assert!(plain.contains("Seccomp:\t2"), "{plain}");
    let privileged = ok(
        &env,
        &["exec", "-T", "--privileged", "probe", "sh", "-c", status],
    );
    assert!(privileged.contains("Seccomp:\t0"), "{privileged}");
    let cap = |s: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
            .unwrap()
    };
    assert_ne!(cap(&privileged) & (1 << 21), 0, "{privileged}");
    assert_eq!(cap(&privileged) & cap(&plain), cap(&plain));

    ok(&env, &["down", "-v", "--remove-orphans"]);
    common::leaks::assert_nothing_left(&env);
}
