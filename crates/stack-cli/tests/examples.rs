//! Every stack under examples/ runs as written: `up -d`, a check that it does
//! what its comment says, `down`. The images come from a real registry on
//! loopback that holds the fixture images under the Docker Hub names the
//! examples use (`library/busybox`, `library/redis`), reached the way a user
//! reaches a Docker Hub mirror: `STACK_REGISTRY_MIRRORS`. Each example starts
//! from an empty image store, so its images are really pulled.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use common::registry::Registry;
use common::{Env, busybox_archive, redis_archive};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .join("stack.yaml")
}

struct Example<'a> {
    env: Env,
    file: PathBuf,
    mirror: &'a str,
    vars: Vec<(&'static str, String)>,
}

impl<'a> Example<'a> {
    fn new(name: &str, subnet: u8, mirror: &'a str) -> Self {
        Self {
            env: Env::empty(&format!("wl-ex-{name}"), subnet),
            file: example(name),
            mirror,
            vars: Vec::new(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend([
            "--file",
            self.file.to_str().unwrap(),
            "-p",
            &self.env.project,
        ]);
        let mut command = self.env.command(&all);
        command.env("STACK_REGISTRY_MIRRORS", self.mirror);
        for (k, v) in &self.vars {
            command.env(k, v);
        }
        command.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "{}: stack {args:?} failed:\n{text}",
            self.env.project
        );
        text
    }

    /// (service, state, exit code, restarts) per container.
    fn ps(&self) -> Vec<(String, String, i64, i64)> {
        let mut out: Vec<_> = self
            .ok(&["ps", "-a", "--format", "json"])
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["Service"].as_str().unwrap().to_owned(),
                    v["State"].as_str().unwrap().to_owned(),
                    v["ExitCode"].as_i64().unwrap(),
                    v["RestartCount"].as_i64().unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Polls `check` for up to `secs` seconds.
    fn eventually<T>(&self, secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = check() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {what} did not happen; ps: {:?}",
                self.env.project,
                self.ps()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn logs(&self, service: &str) -> String {
        self.ok(&["logs", "--no-color", service])
    }
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    // A CGI script's own headers end in a bare "\n\n".
    let (head, body) = response
        .split_once("\r\n\r\n")
        .or_else(|| response.split_once("\n\n"))?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn hello(ex: &Example) {
    ex.ok(&["up", "-d"]);
    ex.eventually(20, "client reads web's page by name", || {
        ex.logs("client")
            .contains("<h1>hello from stack</h1>")
            .then_some(())
    });
    let ps = ex.ps();
    assert!(
        ps.contains(&("setup".into(), "exited".into(), 0, 0)),
        "{ps:?}"
    );
    assert!(
        ps.iter().any(|s| s.0 == "web" && s.1 == "running"),
        "{ps:?}"
    );
    ex.ok(&["down"]);
}

fn webapp(ex: &mut Example) {
    let port = free_port();
    ex.vars.push(("WEB_PORT", port.to_string()));
    ex.ok(&["up", "-d"]);
    let addr = format!("127.0.0.1:{port}");
    // The whole chain: published port → web → api by name → db and cache.
    let page = ex.eventually(20, "the page through web", || http_get(&addr, "/"));
    assert_eq!(page.trim(), "schema 3, visit 1");
    assert_eq!(http_get(&addr, "/").unwrap().trim(), "schema 3, visit 2");
    let ps = ex.ps();
    assert!(
        ps.contains(&("migrate".into(), "exited".into(), 0, 0)),
        "{ps:?}"
    );
    assert!(ex.logs("migrate").contains("migrated to schema 3"));

    // The database's volume outlives `down`; the cache starts empty again.
    ex.ok(&["down"]);
    ex.vars.push(("SCHEMA_VERSION", "4".into()));
    ex.ok(&["up", "-d"]);
    let page = ex.eventually(20, "the page after down + up", || http_get(&addr, "/"));
    assert_eq!(page.trim(), "schema 4, visit 1");
    let volume = ex.env.root().join("volumes/wl-ex-webapp_dbdata/_data");
    assert!(
        volume.join("appendonlydir").exists(),
        "the database wrote into its named volume"
    );
    ex.ok(&["down", "-v"]);
    assert!(!volume.exists());
}

fn worker(ex: &Example) {
    ex.ok(&["up", "-d"]);
    // Two replicas of the worker run; flaky gives up after three restarts;
    // the reporter keeps going.
    ex.eventually(30, "flaky gives up after 3 restarts", || {
        ex.ps()
            .contains(&("flaky".into(), "exited".into(), 3, 3))
            .then_some(())
    });
    let ps = ex.ps();
    let running = |service: &str| {
        ps.iter()
            .filter(|s| s.0 == service && s.1 == "running")
            .count()
    };
    assert_eq!(running("worker"), 2, "{ps:?}");
    assert_eq!(running("queue"), 1, "{ps:?}");
    assert_eq!(running("reporter"), 1, "{ps:?}");
    let logs = ex.logs("worker");
    assert!(
        logs.contains("worker-1 ") && logs.contains("worker-2 ") && logs.contains("| working"),
        "{logs}"
    );
    assert_eq!(ex.logs("flaky").matches("trying").count(), 4);
    ex.ok(&["down"]);
}

fn devloop(ex: &Example) {
    ex.ok(&["up", "-d"]);
    let port = ex.ok(&["port", "app", "8000"]);
    let port = port
        .lines()
        .last()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let index =
        std::fs::read_to_string(example("devloop").with_file_name("src/index.html")).unwrap();
    let page = ex.eventually(20, "app serves ./src", || {
        http_get(&format!("127.0.0.1:{port}"), "/")
    });
    assert_eq!(page, index);
    let first = index.lines().next().unwrap();
    ex.eventually(20, "tail reads app by name", || {
        ex.logs("tail").contains(first).then_some(())
    });
    ex.ok(&["down"]);
}

#[test]
fn every_example_runs_from_a_local_registry() {
    stack_testing::require_root!();
    let registry = Registry::start();
    let busybox = busybox_archive();
    for name in ["library/busybox:latest", "library/busybox:1.36"] {
        registry.push(&busybox, name);
    }
    registry.push(&redis_archive(), "library/redis:7");
    let mirror = registry.url();

    std::thread::scope(|s| {
        let mirror = mirror.as_str();
        let runs = [
            s.spawn(move || hello(&Example::new("hello", 47, mirror))),
            s.spawn(move || webapp(&mut Example::new("webapp", 48, mirror))),
            s.spawn(move || worker(&Example::new("worker", 49, mirror))),
            s.spawn(move || devloop(&Example::new("devloop", 50, mirror))),
        ];
        let failed: Vec<_> = runs
            .into_iter()
            .zip(["hello", "webapp", "worker", "devloop"])
            .filter_map(|(run, name)| run.join().is_err().then_some(name))
            .collect();
        assert!(failed.is_empty(), "examples failed: {failed:?}");
    });
}
