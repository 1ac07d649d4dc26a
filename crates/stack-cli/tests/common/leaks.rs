//! The one leak checker of the end-to-end tests: after `down`, nothing of a
//! project may be left on the host — no network link, netns, nftables
//! table, mount, cgroup or process, no entry in the network state, and no
//! file under its root or run directory but what every project of a root
//! shares (the image store, the seccomp cache, lock files: a lock file is
//! never removed, as removing it races with whoever opens it next).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::Env;

/// The `stk-TTTTTT` prefix of the project's kernel objects (its tag as
/// stack-net derives it when no other project took it first).
pub fn object_prefix(project: &str) -> String {
    let digest = Sha256::digest(project.as_bytes());
    format!("stk-{}", hex::encode(&digest[..3]))
}

/// Everything of `env`'s project still on the host, in words (empty when
/// nothing is left).
pub fn leaks(env: &Env) -> Vec<String> {
    let project = &env.project;
    let prefix = object_prefix(project);
    let mut left = Vec::new();

    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        if let Some(name) = line.split(": ").nth(1)
            && name.starts_with(&prefix)
        {
            left.push(format!("link {name}"));
        }
    }
    let tables = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&tables.stdout).lines() {
        if line.split_whitespace().last() == Some(prefix.as_str()) {
            left.push(format!("nft {line}"));
        }
    }
    let dir = env.dir.path().to_str().unwrap().to_owned();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    for line in mounts.lines() {
        if let Some(target) = line.split(' ').nth(1)
            && target.starts_with(&dir)
        {
            left.push(format!("mount {target}"));
        }
    }
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let cgroup = entry.path().join("stack").join(project);
        if cgroup.exists() {
            left.push(format!("cgroup {}", cgroup.display()));
        }
    }
    left.extend(processes(&dir, project));
    left.extend(net_records(&env.root(), project));
    left.extend(files(&env.root(), &env.run_dir()));
    left
}

/// Panics naming whatever of `env`'s project is left. A supervisor
/// answers `down` before its process ends, so the check is given a few
/// seconds to see it go.
pub fn assert_nothing_left(env: &Env) {
    let started = std::time::Instant::now();
    loop {
        let left = leaks(env);
        if left.is_empty() {
            return;
        }
        let only_ending = left.iter().all(|l| l.starts_with("process "));
        if !only_ending || started.elapsed() > std::time::Duration::from_secs(5) {
            panic!("left after down: {left:#?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Processes that run for the project: in one of its cgroups, or started
/// with its root or run directory on their command line (supervisor, log
/// keeper).
fn processes(dir: &str, project: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let in_project = format!("/stack/{project}/");
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        if cmdline.contains(dir)
            || cgroup.lines().any(|l| {
                l.ends_with(&in_project[..in_project.len() - 1]) || l.contains(&in_project)
            })
        {
            left.push(format!("process {pid}: {}", cmdline.trim()));
        }
    }
    left
}

/// The project's networks, endpoints and tag in the network state.
fn net_records(root: &Path, project: &str) -> Vec<String> {
    let Ok(bytes) = std::fs::read(root.join("net").join("state.json")) else {
        return Vec::new();
    };
    let state: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let mut left = Vec::new();
    if state["projects"].get(project).is_some() {
        left.push(format!("network state: project {project}"));
    }
    for (key, net) in state["networks"].as_object().into_iter().flatten() {
        if key.starts_with(&format!("{project}/")) {
            left.push(format!("network state: network {key}: {net}"));
        }
    }
    for (id, endpoint) in state["endpoints"].as_object().into_iter().flatten() {
        left.push(format!("network state: endpoint {id}: {endpoint}"));
    }
    left
}

/// Files under the root and the run directory but those all projects
/// share; empty directories are allowed.
fn files(root: &Path, run: &Path) -> Vec<String> {
    let shared = [
        root.join("images"),
        root.join("runtime").join(".seccomp-cache"),
        root.join("net").join("lock"),
        root.join("net").join("state.json"),
        run.join("locks"),
    ];
    let mut left = Vec::new();
    let mut todo: Vec<PathBuf> = vec![root.to_path_buf(), run.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if shared.contains(&path) {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => todo.push(path),
                _ => left.push(format!("file {}", path.display())),
            }
        }
    }
    left
}
