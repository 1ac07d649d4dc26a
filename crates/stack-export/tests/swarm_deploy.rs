//! `stack export swarm` on a real swarm: Debian's dockerd started in a
//! network namespace of its own (its bridges and firewall rules stay
//! there), with its own data root, exec root and socket in a temporary
//! directory; one-node `docker swarm init`; the busybox fixture loaded;
//! the `hello` example exported and deployed with `docker stack deploy`;
//! its client reaches the web server by service name; the web server
//! scales to two replicas; `docker stack rm` leaves no service, container
//! or network. A drop guard stops dockerd and removes everything also when
//! the test fails. Skips, saying why, where dockerd cannot run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stack_spec::LoadOptions;

const STACK: &str = "hello";

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

    /// Every process started under this daemon's directory (dockerd, its
    /// containerd, the shims), by pid.
    fn processes(&self) -> Vec<i32> {
        let marker = self.dir.path().display().to_string();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                String::from_utf8_lossy(&cmd)
                    .contains(&marker)
                    .then_some(pid)
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
            self.docker(&["stack", "rm", STACK]);
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

/// Poll `check` until it returns true; fail with `what` after `secs`.
fn wait_for(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn exported_example_deploys_on_a_swarm() {
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
    d.ok(&["swarm", "init", "--advertise-addr", "10.226.255.1"]);

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

    let file = repo().join("examples/hello/stack.yaml");
    let project = stack_spec::load(&LoadOptions::new(file.parent().unwrap()).with_file(&file))
        .expect("the example loads")
        .project;
    let mut exported = stack_export::swarm::export(&project).unwrap();
    if !Path::new("/proc/sys/net/ipv4/vs").exists() {
        // Without IPVS in the kernel a service's virtual IP routes nowhere;
        // DNS round robin gives the same name resolution without it.
        eprintln!("note: no IPVS in this kernel; deploying with endpoint_mode dnsrr");
        for s in exported.document["services"]
            .as_object_mut()
            .unwrap()
            .values_mut()
        {
            let deploy = s
                .as_object_mut()
                .unwrap()
                .entry("deploy")
                .or_insert_with(|| json!({}));
            deploy["endpoint_mode"] = Value::from("dnsrr");
        }
    }
    let compose = d.dir.path().join("hello-swarm.yaml");
    std::fs::write(&compose, exported.to_yaml().unwrap()).unwrap();
    d.ok(&["stack", "deploy", "-c", compose.to_str().unwrap(), STACK]);

    let replicas = |service: &str| {
        d.ok(&[
            "service",
            "ls",
            "--filter",
            &format!("name={STACK}_{service}"),
            "--format",
            "{{.Replicas}}",
        ])
        .trim()
        .to_string()
    };
    wait_for(90, "web and client running", || {
        replicas("web") == "1/1" && replicas("client") == "1/1"
    });
    let client = d
        .ok(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={STACK}_client"),
        ])
        .lines()
        .next()
        .expect("a client container")
        .to_string();
    let fetch = || {
        let out = d.docker(&["exec", &client, "wget", "-q", "-O-", "http://web:8080/"]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("hello from stack")
    };
    wait_for(30, "the client reaching web by name", fetch);
    // The one-shot setup ran to completion and was not restarted.
    wait_for(30, "setup complete", || {
        d.ok(&[
            "service",
            "ps",
            &format!("{STACK}_setup"),
            "--format",
            "{{.CurrentState}}",
        ])
        .lines()
        .next()
        .is_some_and(|l| l.starts_with("Complete"))
    });

    d.ok(&["service", "scale", "--detach", &format!("{STACK}_web=2")]);
    wait_for(60, "web scaled to 2", || replicas("web") == "2/2");
    wait_for(30, "web reachable by name after scaling", fetch);

    d.ok(&["stack", "rm", STACK]);
    let label = format!("label=com.docker.stack.namespace={STACK}");
    wait_for(60, "stack rm removing everything", || {
        d.ok(&["service", "ls", "-q"]).trim().is_empty()
            && d.ok(&["ps", "-aq", "--filter", &label]).trim().is_empty()
            && d.ok(&["network", "ls", "-q", "--filter", &label])
                .trim()
                .is_empty()
    });
    eprintln!("dockerd log tail:\n{}", d.log());
}
