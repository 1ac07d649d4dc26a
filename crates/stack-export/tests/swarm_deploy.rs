//! `stack export swarm` on a real swarm: Debian's dockerd started in a
//! network namespace of its own (its bridges and firewall rules stay
//! there), with its own data root, exec root and socket in a temporary
//! directory; one-node `docker swarm init`; the busybox and redis fixture
//! images loaded; every example exported and deployed with `docker stack
//! deploy`; their services reach each other by name (hello's client the
//! web server, devloop's tail the app, webapp's front end the api, which
//! reads the database the migration wrote and the cache); hello's web
//! server scales to two replicas; `docker stack rm` leaves no service,
//! container or network. A drop guard stops dockerd and removes everything
//! also when the test fails. Skips, saying why, where dockerd cannot run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stack_spec::LoadOptions;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Debian's docker CLI, which matches the daemon (another one on PATH may
/// parse compose files differently).
fn docker_cli() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/docker");
    if debian.is_file() {
        debian
    } else {
        PathBuf::from("docker")
    }
}

fn dockerd() -> Option<PathBuf> {
    ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A dockerd of this test's own; dropping it takes the stack, the daemon,
/// its containerd and shims, its mounts and its namespace away.
struct Daemon {
    netns: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Daemon {
    fn sock(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(docker_cli())
            .env("DOCKER_HOST", format!("unix://{}", self.sock().display()))
            .args(args)
            .output()
            .expect("run the docker CLI")
    }

    /// `docker ARGS`, which must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Start dockerd; `Err` says why it cannot run here.
    fn start(dockerd: &Path) -> Result<Self, String> {
        let netns = format!("stk-swarm-{}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("stk-swarm-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let status = Command::new("ip")
            .args(["netns", "add", &netns])
            .status()
            .map_err(|e| format!("ip: {e}"))?;
        if !status.success() {
            return Err(format!("ip netns add {netns} failed"));
        }
        let mut d = Daemon {
            netns,
            dir,
            child: None,
        };
        run(Command::new("ip").args(["-n", &d.netns, "link", "set", "lo", "up"]));
        let log = std::fs::File::create(d.dir.path().join("dockerd.log")).unwrap();
        let p = d.dir.path();
        // nsenter, not `ip netns exec`, which remounts /sys and hides the
        // cgroup hierarchy from dockerd.
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", d.netns))
            .arg(dockerd)
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", d.sock().display()))
            .args(["--containerd-namespace", &d.netns])
            .args(["--containerd-plugins-namespace", &format!("{}-p", d.netns)])
            .args(["--bip", "10.226.255.1/24"])
            .args(["--default-address-pool", "base=10.226.128.0/17,size=24"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("nsenter dockerd: {e}"))?;
        d.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !d.docker(&["version"]).status.success() {
            if Instant::now() > deadline
                || d.child
                    .as_mut()
                    .unwrap()
                    .try_wait()
                    .ok()
                    .flatten()
                    .is_some()
            {
                return Err(format!("dockerd did not start:\n{}", d.log()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(d)
    }

    /// Every process of this daemon (dockerd, its containerd, the shims,
    /// also under a system containerd), found by its directory or its
    /// containerd namespace in the command line, by pid.
    fn processes(&self) -> Vec<i32> {
        let dir = self.dir.path().display().to_string();
        let namespace = format!("-namespace {}", self.netns);
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                (cmd.contains(&dir) || cmd.contains(&namespace)).then_some(pid)
            })
            .collect()
    }
}

fn run(cmd: &mut Command) {
    let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.docker(&["version"]).status.success() {
            for stack in ["hello", "devloop", "webapp", "worker", "mapping"] {
                self.docker(&["stack", "rm", stack]);
            }
            self.docker(&["swarm", "leave", "--force"]);
        }
        if let Some(child) = &mut self.child {
            // dockerd is nsenter's child; TERM it by its pid file.
            if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("dockerd.pid")) {
                run(Command::new("kill").args(["-TERM", pid.trim()]));
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in self.processes() {
            run(Command::new("kill").args(["-KILL", &pid.to_string()]));
        }
        // Mounts dockerd made (overlays, network namespaces) under the
        // directory, innermost first.
        let marker = self.dir.path().display().to_string();
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&marker))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            run(Command::new("umount").args(["-l", &m]));
        }
        run(Command::new("ip").args(["netns", "del", &self.netns]));
    }
}

/// The redis fixture image (built from Debian's packages, cached under the
/// target directory as the CLI tests cache it), converted from its OCI
/// archive to one `docker load` reads.
fn load_redis(d: &Daemon) {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("redis-image");
    let built = Command::new("python3")
        .arg(repo().join("tests/fixtures/images/redis.py"))
        .arg(&cache)
        .output()
        .expect("python3 runs the redis fixture script");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let oci = String::from_utf8(built.stdout).unwrap().trim().to_string();
    let docker_tar = d.dir.path().join("redis-docker.tar");
    let out = Command::new("skopeo")
        .args(["copy", "-q", &format!("oci-archive:{oci}")])
        .arg(format!("docker-archive:{}:redis:7", docker_tar.display()))
        .output()
        .expect("skopeo (scripts/install-deps installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.ok(&["load", "-q", "-i", docker_tar.to_str().unwrap()]);
}

/// Export the stack in `file` for Swarm and `docker stack deploy` it as
/// stack `name`; docker must not say it ignores anything in the file (what
/// Swarm ignores is left out, with a warning, by the export).
fn deploy(d: &Daemon, name: &str, file: &Path) {
    let project = stack_spec::load(&LoadOptions::new(file.parent().unwrap()).with_file(file))
        .expect("the example loads")
        .project;
    let mut exported = stack_export::swarm::export(&project).unwrap();
    if !Path::new("/proc/sys/net/ipv4/vs").exists() {
        // Without IPVS in the kernel a service's virtual IP and the ingress
        // mesh route nowhere; DNS round robin and host-mode ports give the
        // same name resolution and publishing without it.
        for s in exported.document["services"]
            .as_object_mut()
            .unwrap()
            .values_mut()
        {
            let s = s.as_object_mut().unwrap();
            let deploy = s.entry("deploy").or_insert_with(|| json!({}));
            deploy["endpoint_mode"] = Value::from("dnsrr");
            if let Some(Value::Array(ports)) = s.get_mut("ports") {
                for p in ports {
                    p["mode"] = Value::from("host");
                }
            }
        }
    }
    let compose = d.dir.path().join(format!("{name}-swarm.yaml"));
    std::fs::write(&compose, exported.to_yaml().unwrap()).unwrap();
    let out = d.docker(&[
        "stack",
        "deploy",
        "--resolve-image",
        "never",
        "-c",
        compose.to_str().unwrap(),
        name,
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "docker stack deploy {name}: {said}");
    assert!(
        !said.contains("Ignoring"),
        "docker stack deploy {name}: {said}"
    );
}

/// `running/desired` of a service, as `docker service ls` prints it.
fn replicas(d: &Daemon, stack: &str, service: &str) -> String {
    d.ok(&[
        "service",
        "ls",
        "--filter",
        &format!("name={stack}_{service}"),
        "--format",
        "{{.Name}} {{.Replicas}}",
    ])
    .lines()
    .find_map(|l| {
        l.strip_prefix(&format!("{stack}_{service} "))
            .map(str::to_string)
    })
    .unwrap_or_default()
}

/// `wget URL` inside a running container of the service; whether the
/// answer contains `want`.
fn fetch(d: &Daemon, stack: &str, service: &str, url: &str, want: &str) -> bool {
    let ps = d.ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={stack}_{service}"),
    ]);
    let Some(container) = ps.lines().next() else {
        return false;
    };
    let out = d.docker(&["exec", container, "wget", "-q", "-O-", url]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains(want)
}

/// Poll `check` until it returns true; fail with `what` after `secs`.
fn wait_for(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn exported_examples_deploy_on_a_swarm() {
    if !is_root() {
        eprintln!("SKIPPED: the Swarm deploy test starts dockerd and needs root");
        return;
    }
    let Some(dockerd) = dockerd() else {
        eprintln!(
            "SKIPPED: dockerd is not installed (apt-get install docker.io; scripts/install-deps does)"
        );
        return;
    };
    let d = match Daemon::start(&dockerd) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED: Docker cannot run here: {why}");
            return;
        }
    };
    let started = Instant::now();
    let phase = |what: &str| eprintln!("{:>5.1}s {what}", started.elapsed().as_secs_f64());
    d.ok(&["swarm", "init", "--advertise-addr", "10.226.255.1"]);
    phase("swarm initialised");

    let fixtures = d.dir.path().join("fixtures");
    let out = Command::new("python3")
        .arg(repo().join("tests/fixtures/images/build.py"))
        .arg(&fixtures)
        .output()
        .expect("python3 runs the fixture script");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.ok(&[
        "load",
        "-q",
        "-i",
        fixtures.join("busybox-docker.tar").to_str().unwrap(),
    ]);
    d.ok(&["tag", "stack-test/busybox:docker", "busybox:latest"]);

    load_redis(&d);
    d.ok(&["tag", "busybox:latest", "busybox:1.36"]);

    phase("images loaded");
    let examples = ["hello", "devloop", "webapp", "worker"];
    for name in examples {
        deploy(
            &d,
            name,
            &repo().join("examples").join(name).join("stack.yaml"),
        );
    }
    // The stack covering every row of the mapping table: its images do not
    // exist here, but Swarm parses and creates every service of it.
    let mapping = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stacks/mapping/stack.yaml");
    deploy(&d, "mapping", &mapping);
    wait_for(30, "mapping: every service created", || {
        d.ok(&[
            "service",
            "ls",
            "-q",
            "--filter",
            "label=com.docker.stack.namespace=mapping",
        ])
        .lines()
        .count()
            == 8
    });
    d.ok(&["stack", "rm", "mapping"]);

    wait_for(120, "every long-running service up", || {
        [
            ("hello", "web", "1/1"),
            ("hello", "client", "1/1"),
            ("devloop", "app", "1/1"),
            ("devloop", "tail", "1/1"),
            ("webapp", "db", "1/1"),
            ("webapp", "cache", "1/1"),
            ("webapp", "api", "1/1"),
            ("webapp", "web", "1/1"),
            ("worker", "queue", "1/1"),
            ("worker", "worker", "2/2"),
            ("worker", "reporter", "1/1"),
        ]
        .iter()
        .all(|(stack, service, want)| replicas(&d, stack, service) == *want)
    });

    phase("every long-running service up");
    // Names resolve across services as under `stack`.
    let hello_web = || {
        fetch(
            &d,
            "hello",
            "client",
            "http://web:8080/",
            "hello from stack",
        )
    };
    wait_for(30, "hello: the client reaching web by name", hello_web);
    wait_for(30, "devloop: tail reaching app by name", || {
        fetch(
            &d,
            "devloop",
            "tail",
            "http://app:8000/",
            "hello from stack",
        )
    });
    // web -> api -> db (the migration's schema version) and cache.
    wait_for(60, "webapp: web, api, db and cache answering", || {
        fetch(
            &d,
            "webapp",
            "web",
            "http://127.0.0.1:80/",
            "schema 3, visit",
        )
    });
    // One-shot services others wait for ran to completion and stay done.
    for (stack, service) in [("hello", "setup"), ("webapp", "migrate")] {
        wait_for(60, &format!("{stack}: {service} complete"), || {
            d.ok(&[
                "service",
                "ps",
                &format!("{stack}_{service}"),
                "--format",
                "{{.CurrentState}}",
            ])
            .lines()
            .any(|l| l.starts_with("Complete"))
        });
    }

    phase("names resolve, one-shot services done");
    d.ok(&["service", "scale", "--detach", "hello_web=2"]);
    wait_for(60, "hello: web scaled to 2", || {
        replicas(&d, "hello", "web") == "2/2"
    });
    wait_for(30, "hello: web reachable by name after scaling", hello_web);

    // Docker refuses to remove a stack's network while a task of it is
    // still shutting down ("in use by task"): ask again until all is gone.
    let rm = |name: &str| {
        let out = d.docker(&["stack", "rm", name]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || said.contains("in use by task"),
            "docker stack rm {name}: {said}"
        );
    };
    for name in examples {
        rm(name);
    }
    wait_for(60, "stack rm removing everything", || {
        d.ok(&["service", "ls", "-q"]).trim().is_empty()
            && examples.iter().all(|name| {
                let label = format!("label=com.docker.stack.namespace={name}");
                let gone = d.ok(&["ps", "-aq", "--filter", &label]).trim().is_empty()
                    && d.ok(&["network", "ls", "-q", "--filter", &label])
                        .trim()
                        .is_empty();
                if !gone {
                    let _ = d.docker(&["stack", "rm", name]);
                }
                gone
            })
    });
    phase("scaled, and every stack removed");
}
