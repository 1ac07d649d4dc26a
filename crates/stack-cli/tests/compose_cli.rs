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
