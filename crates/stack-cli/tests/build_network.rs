//! The build network for real, as root: a `RUN` on the default network
//! reaches a server beyond the host only through the build bridge's NAT,
//! `--network=none` reaches nothing, and nothing of the network is left when
//! the build ends, failed or not. "Beyond the host" is a network namespace
//! the test makes, joined to the host by a veth pair with a /30 on it: its
//! server sees the host's address when the source was masqueraded, and
//! could not answer the build's own address at all.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::Env;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the server beyond the host answers.
#[derive(Clone)]
enum Serve {
    /// The same text to every request.
    Text(&'static str),
    /// The files of a directory by path, 404 for anything else.
    Dir(PathBuf),
}

impl Serve {
    fn answer(&self, path: &str) -> Option<Vec<u8>> {
        match self {
            Serve::Text(t) => Some(t.as_bytes().to_vec()),
            Serve::Dir(dir) => {
                let decoded = percent_decode(path);
                let rel = decoded.trim_start_matches('/');
                if rel.split('/').any(|c| c == "..") {
                    return None;
                }
                fs::read(dir.join(rel)).ok()
            }
        }
    }
}

/// `%XX` escapes of a request path decoded (apt asks for `gcc_4%253a...`
/// for the file `gcc_4%3a...`).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers one HTTP request on `conn`.
fn respond(mut conn: std::net::TcpStream, serve: &Serve) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let mut words = text.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let head = method == "HEAD";
    let _ = match serve.answer(path) {
        Some(body) => write!(
            conn,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .and_then(|()| if head { Ok(()) } else { conn.write_all(&body) }),
        None => write!(
            conn,
            "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    };
}

/// A namespace joined to the host by a veth pair (`<prefix>.1` on the
/// host's end, `<prefix>.2` inside), with an HTTP server on port 8080
/// inside that answers as `serve` says and records who asked. Removed on
/// drop, also when the test panics.
struct Outside {
    netns: String,
    host_if: String,
    addr: String,
    peers: Arc<Mutex<Vec<IpAddr>>>,
}

impl Outside {
    fn new(tag: &str, prefix: &str, serve: Serve) -> Self {
        let pid = std::process::id();
        let o = Outside {
            netns: format!("bnt-{tag}-{pid}"),
            host_if: format!("bnt{tag}{pid}"),
            addr: format!("{prefix}.2"),
            peers: Arc::default(),
        };
        let inside = format!("{}i", o.host_if);
        ip(&["netns", "add", &o.netns]);
        ip(&[
            "link", "add", &o.host_if, "type", "veth", "peer", "name", &inside, "netns", &o.netns,
        ]);
        ip(&["addr", "add", &format!("{prefix}.1/30"), "dev", &o.host_if]);
        ip(&["link", "set", &o.host_if, "up"]);
        let inside_addr = format!("{prefix}.2/30");
        for args in [
            ["addr", "add", inside_addr.as_str(), "dev", inside.as_str()].as_slice(),
            &["link", "set", inside.as_str(), "up"],
            &["link", "set", "lo", "up"],
        ] {
            let mut all = vec!["-n", o.netns.as_str()];
            all.extend_from_slice(args);
            ip(&all);
        }
        let ns = fs::File::open(format!("/run/netns/{}", o.netns)).unwrap();
        let peers = o.peers.clone();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // This thread alone moves into the namespace; its socket stays
            // there.
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let listener = TcpListener::bind("0.0.0.0:8080").unwrap();
            ready_tx.send(()).unwrap();
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if let Ok(peer) = conn.peer_addr() {
                    peers.lock().unwrap().push(peer.ip());
                }
                let serve = serve.clone();
                std::thread::spawn(move || respond(conn, &serve));
            }
        });
        ready.recv().unwrap();
        o
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

/// What of a build network is left: an address of the test's pool on a
/// host interface, a pinned namespace, a record in the network state.
fn network_leftovers(env: &Env, pool_prefix: &str) -> Vec<String> {
    let mut left = Vec::new();
    let addrs = Command::new("ip")
        .args(["-o", "-4", "addr"])
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&addrs.stdout).lines() {
        if line.contains(&format!(" {pool_prefix}.")) {
            left.push(format!("address: {line}"));
        }
    }
    for entry in fs::read_dir(env.run_dir().join("netns"))
        .into_iter()
        .flatten()
        .flatten()
    {
        left.push(format!("netns {}", entry.path().display()));
    }
    for entry in walk(&env.root().join("net")) {
        if fs::read_to_string(&entry).is_ok_and(|t| t.contains("_build-")) {
            left.push(format!("record in {}", entry.display()));
        }
    }
    left
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn run_steps_reach_beyond_the_host_through_nat_and_leave_nothing() {
    stack_testing::require_root!();
    let env = Env::new("bld-net", 200);
    let outside = Outside::new("a", "10.229.200", Serve::Text("from-outside\n"));
    let url = format!("http://{}:8080/hello", outside.addr);
    let ctx = env.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();

    // A failing step on the network: the network goes with the build.
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nRUN wget -q -O /got {url} && exit 3\n"),
    )
    .unwrap();
    let out = env.stack(&["image", "build", "-t", "net:fail", ctx.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("exit code 3"), "{text}");
    let left = network_leftovers(&env, "10.219.200");
    assert!(left.is_empty(), "after a failed build: {left:?}");

    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM busybox\n\
             RUN wget -q -O /got {url}\n\
             RUN --network=none (wget -q -T 2 -O /none {url} || echo unreachable) > /none\n\
             CMD [\"cat\", \"/got\", \"/none\"]\n"
        ),
    )
    .unwrap();
    let out = env.stack(&["image", "build", "-t", "net:ok", ctx.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = env.stack(&["container", "run", "--rm", "--network", "none", "net:ok"]);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "from-outside\nunreachable\n",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // Every request came from the host's end of the link: masqueraded.
    let peers = outside.peers.lock().unwrap().clone();
    assert!(!peers.is_empty());
    assert!(
        peers.iter().all(|p| p.to_string() == "10.229.200.1"),
        "{peers:?}"
    );
    let left = network_leftovers(&env, "10.219.200");
    assert!(left.is_empty(), "after a build: {left:?}");
}

/// A multi-stage build: a C program compiled in a Debian stage with gcc that
/// `apt-get install` fetches over the build network from a repository
/// served beyond the host, copied into a busybox stage that runs it; the
/// compiler stays behind in the first stage. Installed, used and purged in
/// one step, as Dockerfiles keep layers small: a debug build of stack
/// compresses a 200 MB layer slowly.
#[test]
fn a_c_program_compiled_with_apt_installed_gcc_runs_in_a_busybox_image() {
    stack_testing::require_root!();
    let (debian, repo) = common::debian_fixture();
    let env = Env::new("bld-gcc", 201);
    // A debug build unpacks the 38 MB base image slowly on a busy machine.
    let load = env.stack_within(
        &["image", "load", "-i", debian.to_str().unwrap()],
        std::time::Duration::from_secs(600),
    );
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let outside = Outside::new("g", "10.229.201", Serve::Dir(repo));
    let ctx = env.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("hello.c"),
        "#include <stdio.h>\nint main(void) { printf(\"hello from C, %d\\n\", 6 * 7); return 0; }\n",
    )
    .unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM debian:bookworm AS compile\n\
             WORKDIR /src\n\
             COPY hello.c .\n\
             RUN rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* \\\n\
              && echo 'deb [trusted=yes] http://{}:8080/ ./' > /etc/apt/sources.list.d/local.list \\\n\
              && apt-get update -q && apt-get install -y -q --no-install-recommends gcc libc6-dev \\\n\
              && gcc -static -O2 -o hello hello.c \\\n\
              && apt-get purge -y -q --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/*\n\
             FROM busybox\n\
             COPY --from=compile /src/hello /usr/local/bin/hello\n\
             CMD [\"/usr/local/bin/hello\"]\n",
            outside.addr
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = env.stack_within(
        &["image", "build", "-t", "hello-c:1", ctx.to_str().unwrap()],
        std::time::Duration::from_secs(600),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("the gcc build took {:?}", started.elapsed());
    let run = env.stack(&["container", "run", "--rm", "--network", "none", "hello-c:1"]);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "hello from C, 42\n",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!outside.peers.lock().unwrap().is_empty());

    // No compiler in the result: busybox and one static binary, against
    // the stage that had gcc.
    let images: serde_json::Value =
        serde_json::from_slice(&env.stack(&["image", "ls", "--format", "json"]).stdout).unwrap();
    let size_of = |tag: &str| {
        images
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i.to_string().contains(tag))
            .and_then(|i| i["size"].as_u64().or(i["Size"].as_u64()))
            .unwrap_or_else(|| panic!("no {tag} in {images}"))
    };
    let (final_size, debian_size) = (size_of("hello-c:1"), size_of("debian:bookworm"));
    assert!(final_size < 5 << 20, "{final_size} bytes");
    assert!(
        debian_size > 10 * final_size,
        "{debian_size} vs {final_size}"
    );
    let left = network_leftovers(&env, "10.219.201");
    assert!(left.is_empty(), "after a build: {left:?}");
}
