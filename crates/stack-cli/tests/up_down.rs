//! `stack up` / `down` end to end, as root, with real containers from the
//! busybox fixture image: dependency order and health gating, a no-op second
//! `up`, recreating only what changed, failures named, nothing left behind.

mod common;

use std::path::Path;

use common::Env;

/// A service that records when it started (host uptime, 10 ms resolution),
/// then runs until told to stop.
fn stamp(name: &str) -> String {
    format!("cut -d' ' -f1 /proc/uptime > /out/{name}.start; echo {name} started")
}

/// The uptime a container wrote to `dir/name`; `up -d` returns once the
/// processes run, so the file may still be on its way.
fn uptime(dir: &Path, name: &str) -> f64 {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(dir.join(name))
            && let Ok(value) = text.trim().parse()
        {
            return value;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{name} was never written");
}

const LOOP: &str = "trap 'exit 0' TERM; while :; do sleep 0.1; done";

fn three_level(out: &Path, migrate_exit: i32, api_env: &str) -> String {
    let out = out.display();
    format!(
        r#"
services:
  db:
    image: busybox
    command: ["sh", "-c", "{db}; sleep 0.5; cut -d' ' -f1 /proc/uptime > /out/db.ready; touch /tmp/ready; {LOOP}"]
    volumes: ["{out}:/out"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 5s
      start_interval: 100ms
      start_period: 20s
  migrate:
    image: busybox
    command: ["sh", "-c", "{migrate}; sleep 0.3; cut -d' ' -f1 /proc/uptime > /out/migrate.end; exit {migrate_exit}"]
    volumes: ["{out}:/out"]
    depends_on:
      db: {{condition: service_healthy}}
  api:
    image: busybox
    command: ["sh", "-c", "{api}; echo FOO=$$FOO > /out/api.env; {LOOP}"]
    environment:
      FOO: "{api_env}"
    volumes: ["{out}:/out"]
    depends_on:
      db: {{condition: service_healthy}}
      migrate: {{condition: service_completed_successfully}}
"#,
        db = stamp("db"),
        migrate = stamp("migrate"),
        api = stamp("api"),
    )
}

#[test]
fn dependency_order_no_op_second_up_targeted_recreate_and_clean_down() {
    let env = Env::new("e2e-order", 1);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    env.write(&three_level(&out, 0, "one"));

    env.ok(&["up", "-d"]);
    // Health gating and completion gating, seen from the containers' own clocks.
    let (db_ready, migrate_start, migrate_end, api_start) = (
        uptime(&out, "db.ready"),
        uptime(&out, "migrate.start"),
        uptime(&out, "migrate.end"),
        uptime(&out, "api.start"),
    );
    assert!(uptime(&out, "db.start") < db_ready);
    assert!(
        db_ready <= migrate_start,
        "migrate started before db was healthy"
    );
    assert!(
        migrate_end <= api_start,
        "api started before migrate completed"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("api.env")).unwrap().trim(),
        "FOO=one"
    );

    let ps = env.ok(&["ps", "-a", "--format", "json"]);
    let states: Vec<(String, String)> = ps
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["Service"].as_str().unwrap().into(),
                v["State"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(states.contains(&("db".into(), "running".into())), "{ps}");
    assert!(
        states.contains(&("migrate".into(), "exited".into())),
        "{ps}"
    );
    assert!(states.contains(&("api".into(), "running".into())), "{ps}");

    // Second up: the running containers keep their ids and pids.
    let before = env.containers();
    env.ok(&["up", "-d"]);
    let after = env.containers();
    for name in ["e2e-order-db-1", "e2e-order-api-1"] {
        let b = before.iter().find(|c| c.0 == name).unwrap();
        let a = after.iter().find(|c| c.0 == name).unwrap();
        assert_eq!(b, a, "{name} was touched by a no-op up");
    }

    // Change api's environment: only api is recreated, and sees the value.
    env.write(&three_level(&out, 0, "two"));
    let plan = env.ok(&["up", "--dry-run"]);
    assert!(
        plan.contains("recreate container e2e-order-api-1 (config changed: environment.FOO)"),
        "{plan}"
    );
    assert!(
        !plan.contains("recreate container e2e-order-db-1"),
        "{plan}"
    );
    env.ok(&["up", "-d"]);
    let changed = env.containers();
    let id = |list: &[(String, String, Option<i64>)], n: &str| {
        list.iter().find(|c| c.0 == n).unwrap().1.clone()
    };
    assert_eq!(id(&after, "e2e-order-db-1"), id(&changed, "e2e-order-db-1"));
    assert_ne!(
        id(&after, "e2e-order-api-1"),
        id(&changed, "e2e-order-api-1")
    );
    let mut seen = String::new();
    for _ in 0..200 {
        seen = std::fs::read_to_string(out.join("api.env")).unwrap_or_default();
        if seen.trim() == "FOO=two" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        seen.trim(),
        "FOO=two",
        "the recreated api sees the new value"
    );

    let logs = env.ok(&["logs", "--no-color"]);
    // Compose's prefixes: `service-N` padded to the longest name.
    assert!(
        logs.lines()
            .any(|l| l.starts_with("db-1 ") && l.ends_with(" | db started")),
        "{logs}"
    );

    // Down: no container, network, mount, cgroup, socket or record left.
    let prefix = stack_net::project_object_prefix(&env.root(), "e2e-order")
        .unwrap()
        .expect("the project has network state");
    env.ok(&["down"]);
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains(&prefix),
        "a link of the project is left"
    );
    assert!(!env.root().join("projects/e2e-order").exists());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(env.root().to_str().unwrap()),
        "a mount is left"
    );
    assert!(!Path::new("/sys/fs/cgroup/memory/stack/e2e-order").exists());
    assert!(!env.run_dir().join("supervisors/e2e-order.sock").exists());
}

#[test]
fn a_failing_dependency_stops_its_dependents_and_is_named() {
    let env = Env::new("e2e-fail", 2);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    env.write(&three_level(&out, 3, "x"));
    let file = env.file();
    let result = env.stack(&["up", "-d", "-f", file.to_str().unwrap(), "-p", "e2e-fail"]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(
        stderr.contains("dependency migrate exited with code 3"),
        "the error names migrate and its exit code:\n{stderr}"
    );
    assert!(!out.join("api.start").exists(), "api must not start");

    // The supervisor answers the same request with the typed error: the
    // failed dependency and its exit code, not only words.
    let mut options = stack_spec::LoadOptions::new(env.dir.path())
        .with_content("stack.yaml", std::fs::read_to_string(&file).unwrap());
    options.project_name = Some("e2e-fail".into());
    let project = stack_spec::load(&options).unwrap().project;
    let socket = stack_engine::control::socket_path(&env.run_dir(), "e2e-fail");
    let request = stack_engine::control::Request::Up {
        project: Box::new(project),
        options: Default::default(),
    };
    let answer = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut channel = stack_engine::control::Channel::connect(&socket)
            .await
            .unwrap();
        channel.call(&request, |_| {}).await.unwrap()
    });
    let error = answer.expect_err("up with a failing dependency fails");
    assert_eq!(
        error.kind,
        stack_engine::error::ErrorKind::DependencyFailed {
            service: "migrate".into(),
            exit_code: Some(3),
        },
        "{error}"
    );
    assert!(
        error
            .message
            .contains("dependency migrate exited with code 3")
    );
}

#[test]
fn a_bad_stack_file_creates_nothing() {
    let env = Env::new("e2e-bad", 3);
    env.write("services:\n  web:\n    image: busybox\n    ports: [\"99999:80\"]\n    depends_on: [nothere]\n");
    let file = env.file();
    let result = env.stack(&["up", "-d", "-f", file.to_str().unwrap(), "-p", "e2e-bad"]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(
        stderr.contains("stack.yaml:"),
        "errors name the file:\n{stderr}"
    );
    assert!(
        !env.root().join("projects/e2e-bad").exists(),
        "no project state"
    );
    assert!(
        !env.run_dir().join("supervisors/e2e-bad.sock").exists(),
        "no supervisor"
    );
}

fn http_get(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body
}

#[test]
fn published_ports_service_names_and_shared_namespaces() {
    let env = Env::new("e2e-net", 4);
    let site = env.dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "hello from web\n").unwrap();
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    env.write(&format!(
        r#"
services:
  web:
    image: busybox
    command: ["httpd", "-f", "-p", "80", "-h", "/srv"]
    volumes: ["{site}:/srv:ro"]
    ports: ["80"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      start_interval: 100ms
      start_period: 20s
  client:
    image: busybox
    command: ["sh", "-c", "until wget -q -O /out/by-name http://web/; do sleep 0.2; done; {LOOP}"]
    volumes: ["{out}:/out"]
    depends_on:
      web: {{condition: service_healthy}}
  sidecar:
    image: busybox
    network_mode: "service:web"
    command: ["sh", "-c", "until wget -q -O /out/by-localhost http://127.0.0.1/; do sleep 0.2; done; {LOOP}"]
    volumes: ["{out}:/out"]
    depends_on:
      web: {{condition: service_healthy}}
"#,
        site = site.display(),
        out = out.display(),
    ));
    env.ok(&["up", "-d"]);
    // A random host port, reported by `stack port` and answering on loopback.
    let port = env.ok(&["port", "web", "80"]);
    let port = port.lines().last().unwrap().trim().to_owned();
    let host_port = port.rsplit(':').next().unwrap();
    assert!(port.starts_with("0.0.0.0:"), "{port}");
    let body = http_get(&format!("127.0.0.1:{host_port}"));
    assert!(body.contains("hello from web"), "{body}");
    let ps = env.ok(&["ps", "--format", "json"]);
    assert!(
        ps.contains(&format!("\"PublishedPort\":{host_port}")),
        "{ps}"
    );

    // The client reached web by its service name; the sidecar through the
    // network namespace it shares with web.
    let wait = |file: &str| {
        for _ in 0..400 {
            if let Ok(text) = std::fs::read_to_string(out.join(file))
                && !text.is_empty()
            {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{file} never arrived");
    };
    assert_eq!(wait("by-name"), "hello from web\n");
    assert_eq!(wait("by-localhost"), "hello from web\n");
    env.ok(&["down"]);
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{host_port}")).is_err());
}

/// Lines of `dir/name` once there are `count` of them.
fn lines_of(dir: &Path, name: &str, count: usize) -> Vec<String> {
    for _ in 0..400 {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= count {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{name} never had {count} lines");
}

#[test]
fn a_changed_network_is_recreated_and_a_changed_volume_refused_unless_asked() {
    let env = Env::new("e2e-netchg", 231);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let stack = |network: &str, volume: &str| {
        format!(
            r#"
services:
  app:
    image: busybox
    command: ["sh", "-c", "ip -4 -o addr show eth0 | awk '{{print $$4}}' >> /out/ips; {LOOP}"]
    networks: [back]
    volumes: ["{out}:/out", "data:/data"]
networks:
  back:
{network}
volumes:
  data:
{volume}
"#,
            out = out.display(),
        )
    };
    env.write(&stack("", ""));
    env.ok(&["up", "-d"]);
    let first = lines_of(&out, "ips", 1);
    assert!(first[0].starts_with("10.220.231."), "{first:?}");

    // An internal network on a subnet of its own: the network is made
    // again and the container on it with it, each saying why.
    env.write(&stack(
        "    internal: true\n    ipam: {config: [{subnet: 10.231.7.0/24}]}",
        "",
    ));
    let said = env.ok(&["up", "-d"]);
    assert!(
        said.contains("Container e2e-netchg-app-1 Removed network e2e-netchg_back changed"),
        "{said}"
    );
    assert!(
        said.contains("Network e2e-netchg_back Recreated config changed: internal, ipam"),
        "{said}"
    );
    let second = lines_of(&out, "ips", 2);
    assert!(second[1].starts_with("10.231.7."), "{second:?}");
    let dry = env.ok(&["up", "--dry-run"]);
    assert!(dry.contains("nothing to do"), "{dry}");

    // A volume whose labels changed is refused, keeping its data, until
    // `--yes` says to make it again.
    let volume = env.root().join("volumes/e2e-netchg_data/_data");
    std::fs::write(volume.join("kept"), "x").unwrap();
    let labelled = stack(
        "    internal: true\n    ipam: {config: [{subnet: 10.231.7.0/24}]}",
        "    labels: {backup: daily}",
    );
    env.write(&labelled);
    let file = env.file();
    let refused = env.stack(&["up", "-d", "-f", file.to_str().unwrap(), "-p", "e2e-netchg"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("volume \"e2e-netchg_data\" exists but doesn't match configuration in the stack file (changed: labels). Recreate (data will be lost)?"),
        "{stderr}"
    );
    assert!(volume.join("kept").exists());
    assert_eq!(lines_of(&out, "ips", 2).len(), 2, "nothing was touched");
    let said = env.ok(&["up", "-d", "--yes"]);
    assert!(
        said.contains("Volume e2e-netchg_data Recreated config changed: labels"),
        "{said}"
    );
    assert!(!volume.join("kept").exists());
    lines_of(&out, "ips", 3);
    env.ok(&["down", "-v"]);
}

/// What a dry run must leave as it is: the project's records (name, state,
/// pid), its cgroups, its links.
fn host_snapshot(env: &Env, prefix: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut records = Vec::new();
    let dir = env
        .root()
        .join("projects")
        .join(&env.project)
        .join("containers");
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.path().join("record.json")).unwrap())
                .unwrap();
        records.push(format!(
            "{} {} {} {}",
            record["name"], record["state"], record["pid"], record["stopped_by_user"]
        ));
    }
    records.sort();
    let mut cgroups: Vec<String> =
        std::fs::read_dir(Path::new("/sys/fs/cgroup/memory/stack").join(&env.project))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
    cgroups.sort();
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    let mut links: Vec<String> = String::from_utf8_lossy(&links.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    links.sort();
    (records, cgroups, links)
}

#[test]
fn dry_runs_print_the_plan_and_change_nothing() {
    let env = Env::new("e2e-dry", 232);
    env.write(&format!(
        r#"
services:
  db:
    image: busybox
    command: ["sh", "-c", "{LOOP}"]
  api:
    image: busybox
    command: ["sh", "-c", "{LOOP}"]
    depends_on: [db]
"#
    ));
    let first = env.ok(&["up", "--dry-run"]);
    assert!(
        first.contains("create container e2e-dry-db-1 (not found)"),
        "{first}"
    );
    assert!(!env.root().join("projects/e2e-dry").exists());
    env.ok(&["up", "-d"]);
    let prefix = stack_net::project_object_prefix(&env.root(), "e2e-dry")
        .unwrap()
        .expect("the project has network state");
    let before = host_snapshot(&env, &prefix);
    assert_eq!(before.0.len(), 2, "{before:?}");
    assert!(!before.2.is_empty(), "{before:?}");

    let stop = env.ok(&["stop", "--dry-run"]);
    assert_eq!(
        stop,
        "#1 stop container e2e-dry-api-1 (requested)\n#2 stop container e2e-dry-db-1 (requested) after #1\n"
    );
    let rm = env.ok(&["rm", "-s", "-f", "--dry-run", "api"]);
    assert_eq!(
        rm,
        "#1 stop container e2e-dry-api-1 (requested)\n#2 remove container e2e-dry-api-1 (requested) after #1\n"
    );
    let file = env.file();
    let global = env.stack(&[
        "--dry-run",
        "down",
        "-f",
        file.to_str().unwrap(),
        "-p",
        "e2e-dry",
    ]);
    let down = String::from_utf8_lossy(&global.stdout);
    assert!(global.status.success());
    assert!(
        down.contains("remove network e2e-dry_default (down) after #1 #2"),
        "{down}"
    );
    let up = env.ok(&["up", "--dry-run"]);
    assert!(up.contains("nothing to do"), "{up}");
    assert_eq!(
        host_snapshot(&env, &prefix),
        before,
        "a dry run changed the host"
    );
    env.ok(&["down"]);
}
