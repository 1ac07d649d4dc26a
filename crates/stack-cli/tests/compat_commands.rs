//! The compose commands that move files and images, against real
//! containers: `cp` (both ways, tar streams, `-a`, `-L`, `--index`, a
//! symlink in the container that points out of it, a stopped container),
//! `export SERVICE`, and project `pull`/`push` through a `docker-registry`
//! on loopback. Grouped in two tests so that the project is brought up
//! once for each.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::Env;
use common::registry::Registry;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `stack ARGS -f FILE -p PROJECT`, its output, not asserting success.
fn try_stack(env: &Env, args: &[&str]) -> std::process::Output {
    let file = env.file();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--file", file.to_str().unwrap(), "-p", &env.project]);
    env.stack(&all)
}

/// `stack -f FILE -p PROJECT ARGS` (the options before the subcommand, so
/// that they stay out of a command's trailing arguments), asserting success.
fn ok_before(env: &Env, args: &[&str]) -> String {
    let file = env.file();
    let mut all: Vec<&str> = vec!["--file", file.to_str().unwrap(), "-p", &env.project];
    all.extend(args);
    let out = env.stack(&all);
    assert!(
        out.status.success(),
        "stack {args:?} failed:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `stack ARGS` with no project, asserting success.
fn ok_plain(env: &Env, args: &[&str]) -> String {
    let out = env.stack(args);
    assert!(
        out.status.success(),
        "stack {args:?} failed:\n{}",
        text(&out)
    );
    text(&out)
}

fn tar_list(archive: &[u8]) -> Vec<String> {
    let mut child = Command::new("tar")
        .args(["-tvf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(archive).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "tar -t failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn cp_and_export_go_through_the_container() {
    stack_testing::require_root!();
    let env = Env::new("cc-cp", 217);
    // A host file a symlink in the container names: it must never be read
    // or written through that link.
    let marker_dir = env.dir.path().join("host-only");
    std::fs::create_dir(&marker_dir).unwrap();
    std::fs::write(marker_dir.join("secret"), "host\n").unwrap();
    let marker = marker_dir.to_str().unwrap();
    env.write(&format!(
        "services:
  web:
    image: busybox
    scale: 2
    volumes: [vol:/vol]
    command:
      - sh
      - -c
      - |
        mkdir -p /data/sub {marker}
        echo inside > /data/sub/f
        echo volume > /vol/v
        echo container > {marker}/secret
        ln -s {marker} /data/out-link
        ln -s /data/sub/f /data/f-link
        echo owned > /data/owned
        chown 1234:5678 /data/owned
        touch /ready
        trap 'exit 0' TERM
        while :; do sleep 0.1; done
  talker:
    image: busybox
    command: [\"sh\", \"-c\", \"trap 'exit 3' TERM; i=0; while :; do i=$$((i+1)); echo tick $$i; echo err $$i >&2; sleep 0.2; done\"]
volumes:
  vol: {{}}
"
    ));
    env.ok(&["up", "-d", "-y"]);
    let dir = env.dir.path();
    let at = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for index in ["1", "2"] {
        while !try_stack(&env, &["cp", "--index", index, "web:/ready", &at("ready")])
            .status
            .success()
        {
            assert!(std::time::Instant::now() < deadline, "/ready never made");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    // A directory onto a missing path takes that name; a volume's file is
    // seen as the container sees it (its mount namespace).
    env.ok(&["cp", "web:/data/sub", &at("out")]);
    assert_eq!(
        std::fs::read_to_string(dir.join("out/f")).unwrap(),
        "inside\n"
    );
    env.ok(&["cp", "web:/vol/v", &at("v")]);
    assert_eq!(std::fs::read_to_string(dir.join("v")).unwrap(), "volume\n");
    // `SRC/.` into an existing directory: its contents.
    std::fs::create_dir(dir.join("contents")).unwrap();
    env.ok(&["cp", "web:/data/sub/.", &at("contents")]);
    assert!(dir.join("contents/f").is_file());

    // The symlink points at a directory the host has too: resolved in the
    // container's root, so the container's file comes out ...
    env.ok(&["cp", "web:/data/out-link/secret", &at("secret")]);
    assert_eq!(
        std::fs::read_to_string(dir.join("secret")).unwrap(),
        "container\n"
    );
    // ... `..` stops at the container's root ...
    env.ok(&[
        "cp",
        &format!("web:/../../..{marker}/secret"),
        &at("secret2"),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.join("secret2")).unwrap(),
        "container\n"
    );
    // ... and a copy in through the link lands in the container, the
    // host's file untouched.
    std::fs::write(dir.join("payload"), "payload\n").unwrap();
    env.ok(&["cp", &at("payload"), "web:/data/out-link/secret"]);
    assert_eq!(
        std::fs::read_to_string(marker_dir.join("secret")).unwrap(),
        "host\n"
    );
    assert_eq!(
        ok_before(
            &env,
            &["exec", "-T", "web", "cat", &format!("{marker}/secret")]
        ),
        "payload\n"
    );

    // -L follows a symlink named as the source; without it the link itself.
    env.ok(&["cp", "web:/data/f-link", &at("link")]);
    assert!(dir.join("link").is_symlink());
    env.ok(&["cp", "-L", "web:/data/f-link", &at("followed")]);
    assert_eq!(
        std::fs::read_to_string(dir.join("followed")).unwrap(),
        "inside\n"
    );

    // -a keeps uid and gid; otherwise root owns what is copied.
    env.ok(&["cp", "-a", "web:/data/owned", &at("owned-a")]);
    let meta = std::fs::metadata(dir.join("owned-a")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    env.ok(&["cp", "web:/data/owned", &at("owned")]);
    assert_eq!(std::fs::metadata(dir.join("owned")).unwrap().uid(), 0);

    // A tar stream out (entries under the source's name) and in.
    let out = try_stack(&env, &["cp", "web:/data/sub", "-"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = tar_list(&out.stdout);
    assert!(listed.iter().any(|l| l.ends_with(" sub/f")), "{listed:?}");
    let staged = dir.join("staged");
    std::fs::create_dir(&staged).unwrap();
    std::fs::write(staged.join("streamed"), "streamed\n").unwrap();
    let archive = Command::new("tar")
        .args(["-cf", "-", "-C", staged.to_str().unwrap(), "."])
        .output()
        .unwrap();
    let file = env.file();
    let mut child = env
        .command(&[
            "cp",
            "--file",
            file.to_str().unwrap(),
            "-p",
            &env.project,
            "--index",
            "2",
            "-",
            "web:/data",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&archive.stdout)
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        ok_before(
            &env,
            &["exec", "-T", "--index", "2", "web", "cat", "/data/streamed"]
        ),
        "streamed\n"
    );
    // --index: only that replica; without it, into every one.
    let missing = env.stack(&[
        "--file",
        file.to_str().unwrap(),
        "-p",
        &env.project,
        "exec",
        "-T",
        "web",
        "cat",
        "/data/streamed",
    ]);
    assert!(!missing.status.success());
    env.ok(&["cp", &at("payload"), "web:/data/everywhere"]);
    for index in ["1", "2"] {
        assert_eq!(
            ok_before(
                &env,
                &[
                    "exec",
                    "-T",
                    "--index",
                    index,
                    "web",
                    "cat",
                    "/data/everywhere"
                ]
            ),
            "payload\n"
        );
    }
    // A directory onto a file is refused, naming it.
    let refused = try_stack(&env, &["cp", &at("staged"), "web:/data/owned"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("cannot copy a directory to a file"),
        "{}",
        text(&refused)
    );

    // export: the root filesystem, not /proc's or the volume's contents.
    let tarball = dir.join("web.tar");
    env.ok(&["export", "web", "-o", tarball.to_str().unwrap()]);
    let listed = tar_list(&std::fs::read(&tarball).unwrap());
    for want in [" data/sub/f", " bin/busybox", " data/everywhere"] {
        assert!(
            listed.iter().any(|l| l.ends_with(want)),
            "{want} missing from the export"
        );
    }
    assert!(!listed.iter().any(|l| l.contains(" proc/self")));
    assert!(!listed.iter().any(|l| l.ends_with(" vol/v")));

    // attach: the output from now on, stdout and stderr apart; a SIGTERM
    // to it goes to the container (--sig-proxy), whose exit code it returns.
    let file = env.file();
    let mut attach = env.command(&[
        "attach",
        "--file",
        file.to_str().unwrap(),
        "-p",
        &env.project,
        "talker",
    ]);
    attach.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = common::limit::spawn(attach);
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.starts_with("tick "), "{first:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.stdout = Some(stdout.into_inner());
    let out = common::limit::wait_output(child, "stack attach", std::time::Duration::from_secs(20))
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let rest = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("err "), "{err}");
    assert!(!rest.contains("err "), "{rest}");
    let ps = env.ok(&["ps", "-a", "--format", "{{.Name}} {{.State}}", "talker"]);
    assert!(ps.contains("exited"), "{ps}");
    // Not running: refused.
    let refused = try_stack(&env, &["attach", "talker"]);
    assert!(!refused.status.success());

    // A stopped container: through its overlay, both ways.
    env.ok(&["stop", "-t", "1"]);
    env.ok(&["cp", "web:/data/sub/f", &at("stopped")]);
    assert_eq!(
        std::fs::read_to_string(dir.join("stopped")).unwrap(),
        "inside\n"
    );
    env.ok(&["cp", &at("payload"), "web:/data/after-stop"]);
    env.ok(&["cp", "web:/data/after-stop", &at("after-stop")]);
    assert_eq!(
        std::fs::read_to_string(dir.join("after-stop")).unwrap(),
        "payload\n"
    );

    env.ok(&["down", "-v"]);
    let left = common::leaks::leaks(&env);
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(Path::new(&marker_dir.join("secret")).exists());
}

#[test]
fn pull_and_push_through_a_loopback_registry() {
    stack_testing::require_root!();
    let registry = Registry::start();
    registry.push(&common::busybox_archive(), "lib/busybox:1");
    let host = registry.host();
    let env = Env::new("cc-pull", 218);
    env.write(&format!(
        "services:
  base:
    image: {host}/lib/busybox:${{TAG:-1}}
  app:
    build: .
    image: {host}/app/app:1
    depends_on: [base]
  gone:
    image: {host}/lib/nothing:1
"
    ));
    // --include-deps: the dependency is pulled; the build service's image
    // is not in the registry yet: a warning, not a failure.
    let out = env.ok(&["pull", "--include-deps", "app"]);
    assert!(out.contains(" base Pulled"), "{out}");
    assert!(out.contains("it can be built"), "{out}");
    let images = ok_plain(&env, &["image", "ls"]);
    assert!(images.contains("lib/busybox"), "{images}");
    // --policy missing skips what is there.
    let out = env.ok(&["pull", "--policy", "missing", "base"]);
    assert!(
        out.contains("Skipped - Image is already present locally"),
        "{out}"
    );
    // A failing image fails the command, unless told to go on.
    let failed = try_stack(&env, &["pull", "gone"]);
    assert!(!failed.status.success(), "{}", text(&failed));
    let out = env.ok(&["pull", "--ignore-pull-failures", "-q", "gone"]);
    assert!(out.contains("warning: gone"), "{out}");
    assert!(!out.contains("Pulling"), "{out}");

    // push: only the service that builds its image; the image goes up and
    // comes back down by its name.
    let name = format!("{host}/app/app:1");
    ok_plain(&env, &["image", "tag", "busybox", &name]);
    let out = env.ok(&["push"]);
    assert!(out.contains(" app Pushed"), "{out}");
    assert!(out.contains(" base Skipped"), "{out}");
    ok_plain(&env, &["image", "rm", &name]);
    let out = env.ok(&["pull", "app"]);
    assert!(out.contains(" app Pulled"), "{out}");
    let tagged = ok_plain(&env, &["image", "inspect", &name]);
    let pushed = ok_plain(&env, &["image", "inspect", "busybox"]);
    let id = |s: &str| {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        let v = if v.is_array() { v[0].clone() } else { v };
        v["id"].as_str().unwrap().to_owned()
    };
    assert_eq!(id(&tagged), id(&pushed));
    // config: the variables the file uses, those interpolation read, and
    // images pinned to the digests the registry serves.
    std::fs::write(env.dir.path().join(".env"), "EXTRA=from-dotenv\n").unwrap();
    let vars = env.ok(&["config", "--variables"]);
    let row: Vec<&str> = vars
        .lines()
        .find(|l| l.starts_with("TAG "))
        .unwrap_or_else(|| panic!("{vars}"))
        .split_whitespace()
        .collect();
    assert_eq!(row, ["TAG", "false", "1"], "{vars}");
    assert!(vars.starts_with("NAME "), "{vars}");
    let environment = env.ok(&["config", "--environment"]);
    assert!(
        environment.lines().any(|l| l == "EXTRA=from-dotenv"),
        "{environment}"
    );
    let unresolved = try_stack(&env, &["config", "--resolve-image-digests"]);
    assert!(!unresolved.status.success());
    assert!(
        text(&unresolved).contains("service gone"),
        "{}",
        text(&unresolved)
    );
    env.write(&format!(
        "services:\n  base:\n    image: {host}/lib/busybox:1\n"
    ));
    let out = env.ok(&["config", "--resolve-image-digests", "--format", "json"]);
    assert!(
        out.contains(&format!("{host}/lib/busybox:1@sha256:")),
        "{out}"
    );

    // A push to a registry that is not there fails, or warns when told to.
    env.write(
        "services:
  app:
    build: .
    image: 127.0.0.1:1/app/app:1
",
    );
    ok_plain(&env, &["image", "tag", "busybox", "127.0.0.1:1/app/app:1"]);
    assert!(!try_stack(&env, &["push", "-q"]).status.success());
    let out = env.ok(&["push", "--ignore-push-failures"]);
    assert!(out.contains("warning: app"), "{out}");
}

/// The docker client (when installed) finds stack as its `compose` plugin
/// and runs it: the handshake, then `docker compose ...` with its options.
#[test]
fn docker_runs_stack_as_its_compose_plugin() {
    let Some(docker) = ["/usr/bin/docker", "/usr/local/bin/docker"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("skipped: no docker client installed (apt-get install docker.io)");
        return;
    };
    let env = Env::empty("cc-plugin", 219);
    let home = env.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let out = env
        .command(&["docker-plugin", "install"])
        .env("HOME", &home)
        .env_remove("DOCKER_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(home.join(".docker/cli-plugins/docker-compose").is_symlink());
    let docker_compose = |args: &[&str]| {
        let out = Command::new(docker)
            .arg("compose")
            .args(args)
            .env("HOME", &home)
            .env_remove("DOCKER_CONFIG")
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .env("STACK_ROOT", env.root())
            .env("STACK_RUN", env.run_dir())
            .current_dir(env.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker compose {args:?}: {}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        docker_compose(&["version", "--short"]).trim(),
        env!("CARGO_PKG_VERSION")
    );
    env.write("services:\n  a:\n    image: busybox\n  b:\n    image: busybox\n");
    let file = env.file();
    assert_eq!(
        docker_compose(&["-f", file.to_str().unwrap(), "config", "--services"]),
        "a\nb\n"
    );
}
