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
    command: [\"sh\", \"-c\", \"echo db-up; trap 'exit 0' TERM; while :; do sleep 0.1; done\"]
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
    let out = env.stack(&["-f", file, "-p", "cc-glob", "up", "-d", "-y"]);
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
    // ls --filter name=REGEX.
    let ls = |filter: &str| {
        let out = env.stack(&["ls", "-q", "--filter", filter]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(ls("name=^cc-gl"), "cc-glob\n");
    assert_eq!(ls("name=^zz"), "");
    assert!(!env.stack(&["ls", "--filter", "label=x"]).status.success());

    // config's listings as compose prints them.
    assert_eq!(env.ok(&["config", "--images"]), "busybox\nbusybox\n");
    assert_eq!(env.ok(&["config", "--networks"]), "default\n");
    let hashes = env.ok(&["config", "--hash", "*"]);
    let names: Vec<&str> = hashes
        .lines()
        .filter_map(|l| l.split_once(" v1-"))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["db", "web"], "{hashes}");
    let out_file = env.dir.path().join("web.hash");
    env.ok(&["config", "--hash", "web", "-o", out_file.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        hashes.lines().nth(1).unwrap().to_owned() + "\n"
    );

    // ps as compose: -q, --services, templates, --status, --filter.
    let ids = env.ok(&["ps", "-q"]);
    assert_eq!(ids.lines().count(), 2, "{ids}");
    assert!(ids.lines().all(|l| l.len() == 64), "{ids}");
    let services = env.ok(&["ps", "--services"]);
    assert_eq!(services.lines().collect::<Vec<_>>(), ["db", "web"]);
    let lines = env.ok(&["ps", "--format", "{{.Name}} {{.State}}", "web"]);
    assert_eq!(lines.trim(), "cc-glob-web-1 running");
    // `table TEMPLATE`: a header from the field names, aligned columns.
    let table = env.ok(&[
        "ps",
        "--no-trunc",
        "--format",
        "table {{.Name}}\\t{{.State}}\\t{{.ExitCode}}",
    ]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| {
            l.split("   ")
                .filter(|c| !c.is_empty())
                .map(str::trim)
                .collect()
        })
        .collect();
    assert_eq!(
        rows,
        [
            ["NAME", "STATE", "EXIT CODE"],
            ["cc-glob-db-1", "running", "0"],
            ["cc-glob-web-1", "running", "0"]
        ],
        "{table}"
    );
    let column = |line: &str, word: &str| line.find(word).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        column(lines[0], "STATE"),
        column(lines[2], "running"),
        "{table}"
    );
    // --orphans=false: web, gone from this file, is left out.
    let only_db = env.dir.path().join("only-db.yaml");
    std::fs::write(&only_db, "services:\n  db:\n    image: busybox\n").unwrap();
    let only_db = only_db.to_str().unwrap();
    let ps = |orphans: &str| {
        let out = env.stack(&[
            "-f",
            only_db,
            "-p",
            "cc-glob",
            "ps",
            "--orphans",
            orphans,
            "--format",
            "{{.Service}}",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(ps("false"), "db\n");
    assert_eq!(ps("true"), "db\nweb\n");
    env.ok(&["stop", "web"]);
    // stats: --all adds the stopped web (zeros), --no-trunc whole IDs.
    let stats = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["stats", "--no-stream", "--format", "json"];
        args.extend(extra);
        let out = env.stack(&[&args[..], &["-f", file, "-p", "cc-glob"]].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let running = stats(&[]);
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0]["ID"].as_str().unwrap().len(), 12);
    let all = stats(&["--all", "--no-trunc"]);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all.iter().all(|l| l["ID"].as_str().unwrap().len() == 64),
        "{all:?}"
    );
    let web = all.iter().find(|l| l["Name"] == "cc-glob-web-1").unwrap();
    assert_eq!(web["MemUsage"], "0B / 0B");
    assert_eq!(web["PIDs"], "0");
    let exited = env.ok(&["ps", "--status", "exited", "--format", "{{.Service}}"]);
    assert_eq!(exited.trim(), "web");
    let running = env.ok(&[
        "ps",
        "--filter",
        "status=running",
        "--format",
        "{{.Service}}",
    ]);
    assert_eq!(running.trim(), "db");
    let bad = env.stack(&["ps", "--filter", "name=x"]);
    assert!(!bad.status.success());

    // version and man pages, generated from the command line.
    let version = env.stack(&["version", "--short"]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        env!("CARGO_PKG_VERSION")
    );
    let man = env.dir.path().join("man");
    let out = env.stack(&["man", man.to_str().unwrap()]);
    assert!(out.status.success());
    let page = std::fs::read_to_string(man.join("stack.1")).unwrap();
    assert!(page.contains("project\\-name"), "{page}");
    assert!(man.join("stack-up.1").is_file());

    // scale: two containers of db, the rest left as it is.
    env.ok(&["scale", "db=2"]);
    let dbs = env.ok(&["ps", "--format", "{{.Name}}", "db"]);
    assert_eq!(
        dbs.lines().collect::<Vec<_>>(),
        ["cc-glob-db-1", "cc-glob-db-2"],
        "{dbs}"
    );
    assert_eq!(env.ok(&["ps", "-a", "-q", "web"]).lines().count(), 1);
    // logs --index: one replica's output.
    let logs = (0..50)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            env.ok(&["logs", "--index", "2", "db"])
        })
        .find(|l| l.contains("db-up"))
        .expect("db-2 prints db-up");
    assert!(
        logs.contains("db-2  | db-up") && !logs.contains("db-1"),
        "{logs}"
    );

    // Before and after the subcommand together, then the project goes.
    env.ok(&["stop"]);
    let out = env.stack(&["-p", "cc-glob", "down", "--rmi", "all", "-f", file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    // --rmi all: the image the containers ran is gone from the store.
    let images = env.stack(&["image", "ls", "-q"]);
    assert!(images.status.success());
    assert!(
        String::from_utf8_lossy(&images.stdout).trim().is_empty(),
        "{}",
        String::from_utf8_lossy(&images.stdout)
    );
}

/// `security_opt` as Docker takes it, seen from inside real containers.
#[test]
fn security_opt_as_docker_takes_it() {
    let env = Env::new("cc-secopt", 151);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Everything allowed but mkdir, which fails with EACCES.
    std::fs::write(
        env.dir.path().join("no-mkdir.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                          "comment": "a Docker-only key"},
                         {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}"#,
    )
    .unwrap();
    let probe = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status > /out/$$N.tmp; \
                 echo masks=$$(grep -cE ' /proc/(sys|bus|fs|irq|keys|kcore|timer_list|acpi|scsi) ' /proc/mounts) >> /out/$$N.tmp; \
                 if mkdir /tmp/d 2>/dev/null; then echo mkdir ok; else echo mkdir refused; fi >> /out/$$N.tmp; \
                 mv /out/$$N.tmp /out/$$N";
    let service = |name: &str, opts: &str| {
        format!(
            "  {name}:\n    image: busybox\n    environment: {{N: {name}}}\n    volumes: [\"{}:/out\"]\n    command: [\"sh\", \"-c\", \"{probe}\"]\n    security_opt: {opts}\n",
            out.display()
        )
    };
    let mut file = String::from("services:\n");
    file += &service("plain", "[]");
    file += &service("unconfined", "[\"seccomp:unconfined\"]");
    file += &service("profile", "[\"seccomp=no-mkdir.json\"]");
    file += &service(
        "privs",
        "[\"no-new-privileges:false\", \"systempaths=unconfined\"]",
    );
    file += &service("lsm", "[\"label:disable\", \"apparmor=unconfined\"]");
    env.write(&file);
    let text = env.ok(&["up", "-d"]);
    assert!(text.contains("stack applies no SELinux label"), "{text}");
    assert!(text.contains("stack applies no AppArmor profile"), "{text}");
    let read = |name: &str| common::wait_file(&out.join(name));
    let plain = read("plain");
    assert!(plain.contains("Seccomp:\t2"), "{plain}");
    assert!(plain.contains("NoNewPrivs:\t1"), "{plain}");
    assert!(
        !plain.contains("masks=0"),
        "/proc paths are masked or read-only by default: {plain}"
    );
    assert!(plain.contains("mkdir ok"), "{plain}");
    let unconfined = read("unconfined");
    assert!(unconfined.contains("Seccomp:\t0"), "{unconfined}");
    let profile = read("profile");
    assert!(profile.contains("Seccomp:\t2"), "{profile}");
    assert!(profile.contains("mkdir refused"), "{profile}");
    let privs = read("privs");
    assert!(privs.contains("NoNewPrivs:\t0"), "{privs}");
    assert!(
        privs.contains("masks=0"),
        "systempaths=unconfined unmasks: {privs}"
    );
    let lsm = read("lsm");
    assert!(lsm.contains("Seccomp:\t2"), "{lsm}");

    // A profile that is not one is refused at load, with its place.
    env.write(&file.replace("no-mkdir.json", "missing.json"));
    let file_path = env.file();
    let out = env.stack(&["config", "-f", file_path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("stack.yaml:")
            && err.contains("services.profile.security_opt[0]: seccomp profile")
            && err.contains("missing.json"),
        "{err}"
    );
}

/// Waits for `child` up to `secs`; kills it and fails past that.
fn wait_for(child: &mut std::process::Child, secs: u64, what: &str) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: `stack up` still attached after {secs}s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `ps --format json` states of the project's containers, by service.
fn states(env: &Env, services: &[&str]) -> Vec<(String, String)> {
    let file = env.file();
    let mut args = vec![
        "ps",
        "-a",
        "--format",
        "json",
        "-f",
        file.to_str().unwrap(),
        "-p",
        &env.project,
    ];
    args.extend_from_slice(services);
    let out = env.stack(&args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["Service"].as_str().unwrap().to_owned(),
                v["State"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn wait_running(env: &Env, services: &[&str]) {
    for _ in 0..150 {
        let s = states(env, services);
        if s.len() == services.len() && s.iter().all(|(_, st)| st == "running") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("containers not running: {:?}", states(env, &[]));
}

/// Attached `up` returns once every container has exited (0, as compose);
/// SIGTERM stops and keeps them; a second interrupt kills; `ps SERVICE`.
#[test]
fn attached_up_returns_when_all_exit_and_an_interrupt_stops() {
    let env = Env::new("cc-attach", 152);
    let file = env.file();
    let up = |env: &Env| {
        env.command(&["up", "-f", file.to_str().unwrap(), "-p", "cc-attach"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    env.write(
        "services:
  a:
    image: busybox
    command: [\"sh\", \"-c\", \"echo hello-from-a; sleep 0.5\"]
  b:
    image: busybox
    command: [\"sh\", \"-c\", \"echo hello-from-b\"]
",
    );
    let mut child = up(&env);
    let status = wait_for(&mut child, 40, "all exited");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        out.contains("hello-from-a") && out.contains("hello-from-b"),
        "{out}"
    );

    // --exit-code-from: every container stops once `a` exits, with its code;
    // --no-log-prefix prints the lines as written.
    env.write(
        "services:
  a:
    image: busybox
    command: [\"sh\", \"-c\", \"echo hello-from-a; sleep 0.5; exit 7\"]
  b:
    image: busybox
    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]
",
    );
    let mut child = env
        .command(&[
            "up",
            "--exit-code-from",
            "a",
            "--no-log-prefix",
            "-f",
            file.to_str().unwrap(),
            "-p",
            "cc-attach",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_for(&mut child, 40, "exit-code-from");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert_eq!(status.code(), Some(7), "{out}");
    assert!(out.lines().any(|l| l == "hello-from-a"), "{out}");
    assert_eq!(states(&env, &["b"]), [("b".into(), "exited".into())]);

    // --abort-on-container-failure: a clean exit does not abort, a failure does.
    env.write(
        "services:
  ok:
    image: busybox
    command: [\"true\"]
  bad:
    image: busybox
    command: [\"sh\", \"-c\", \"sleep 1.5; exit 5\"]
  b:
    image: busybox
    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]
",
    );
    let mut child = env
        .command(&[
            "up",
            "--abort-on-container-failure",
            "-t",
            "5",
            "-f",
            file.to_str().unwrap(),
            "-p",
            "cc-attach",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_for(&mut child, 40, "abort-on-container-failure");
    assert_eq!(status.code(), Some(5));
    assert_eq!(states(&env, &["b"]), [("b".into(), "exited".into())]);

    // The same output with compose's prefixes, and without.
    let logs = env.ok(&["logs", "a"]);
    assert!(logs.contains("a-1  | hello-from-a"), "{logs}");
    let logs = env.ok(&["logs", "--no-log-prefix", "a"]);
    assert_eq!(logs.trim(), "hello-from-a");

    // A long-running service and one that ignores SIGTERM.
    env.write(
        "services:
  a:
    image: busybox
    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]
  stubborn:
    image: busybox
    command: [\"sh\", \"-c\", \"trap '' TERM; while :; do sleep 0.1; done\"]
    stop_grace_period: 30s
",
    );
    // SIGTERM: stop, keep. Only `a` is stopped here (stubborn would take 30s),
    // so kill stubborn first through the CLI.
    let mut child = up(&env);
    wait_running(&env, &["a", "stubborn"]);
    assert_eq!(states(&env, &["a"]), [("a".into(), "running".into())]);
    env.ok(&["kill", "stubborn"]);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_for(&mut child, 30, "SIGTERM");
    assert!(status.success(), "{status:?}");
    let s = states(&env, &["a", "stubborn"]);
    assert_eq!(s.len(), 2, "containers are kept: {s:?}");
    assert!(s.iter().all(|(_, st)| st == "exited"), "{s:?}");

    // Ctrl-C twice: the second kills instead of waiting out the 30s grace period.
    let mut child = up(&env);
    wait_running(&env, &["a", "stubborn"]);
    let started = std::time::Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::sleep(std::time::Duration::from_millis(1500));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    wait_for(&mut child, 20, "second Ctrl-C");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let s = states(&env, &["a", "stubborn"]);
    assert!(s.iter().all(|(_, st)| st == "exited"), "{s:?}");

    // wait: blocks until the service's container exits, with its code;
    // --down-project then removes the project.
    env.write(
        "services:
  x:
    image: busybox
    command: [\"sh\", \"-c\", \"sleep 1; exit 3\"]
",
    );
    env.ok(&["up", "-d", "--remove-orphans"]);
    let out = env.stack(&[
        "wait",
        "--down-project",
        "x",
        "-f",
        file.to_str().unwrap(),
        "-p",
        "cc-attach",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}
