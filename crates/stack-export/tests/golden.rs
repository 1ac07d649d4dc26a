//! Every example under `examples/` and every stack under `tests/stacks/`
//! exported to Kubernetes and to Swarm, compared with the golden files in
//! `tests/golden/<name>/` (`UPDATE_GOLDEN=1` rewrites them), and the
//! manifests checked against Kubernetes' own schemas of the oldest and the
//! newest version we write for.

use std::path::{Path, PathBuf};
use std::process::Command;

use stack_export::{kubernetes, swarm};
use stack_spec::{LoadOptions, Project};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `(name, stack file)` of every case.
fn cases() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (prefix, dir) in [
        ("example-", repo().join("examples")),
        (
            "",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stacks"),
        ),
    ] {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("stack.yaml").is_file())
            .collect();
        entries.sort();
        for e in entries {
            let name = format!("{prefix}{}", e.file_name().unwrap().to_string_lossy());
            out.push((name, e.join("stack.yaml")));
        }
    }
    assert!(out.len() >= 5, "no stacks found: {out:?}");
    out
}

fn load(file: &Path) -> Project {
    let opts = LoadOptions::new(file.parent().unwrap()).with_file(file);
    match stack_spec::load(&opts) {
        Ok(l) => l.project,
        Err(e) => panic!("{}: {e}", file.display()),
    }
}

fn k8s_options() -> kubernetes::Options {
    kubernetes::Options {
        environment: [("API_TOKEN".to_string(), "t0ken".to_string())]
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

/// Output with the checkout's path replaced, so golden files do not
/// depend on where the repository lives.
fn portable(text: &str) -> String {
    text.replace(&repo().display().to_string(), "/REPO")
}

struct Exported {
    kubernetes: String,
    kubernetes_warnings: String,
    swarm: String,
    swarm_warnings: String,
}

fn export(file: &Path) -> Exported {
    let project = load(file);
    let m = kubernetes::export(&project, &k8s_options())
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let s = swarm::export(&project).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let lines =
        |w: &[stack_export::Warning]| w.iter().map(|w| format!("{w}\n")).collect::<String>();
    Exported {
        kubernetes: m.to_yaml().unwrap(),
        kubernetes_warnings: lines(&m.warnings),
        swarm: s.to_yaml().unwrap(),
        swarm_warnings: lines(&s.warnings),
    }
}

#[test]
fn exports_match_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for (name, file) in cases() {
        let e = export(&file);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(&name);
        for (fname, text) in [
            ("kubernetes.yaml", &e.kubernetes),
            ("kubernetes.warnings", &e.kubernetes_warnings),
            ("swarm.yaml", &e.swarm),
            ("swarm.warnings", &e.swarm_warnings),
        ] {
            let path = dir.join(fname);
            let text = portable(text);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                mismatches.push(path.display().to_string());
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "output differs from (or lacks) these golden files; rerun with UPDATE_GOLDEN=1 and review the diff:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn export_is_deterministic() {
    for (_, file) in cases() {
        let (a, b) = (export(&file), export(&file));
        assert_eq!(a.kubernetes, b.kubernetes);
        assert_eq!(a.swarm, b.swarm);
    }
}

/// `kubernetes-validate` (PyPI) on PATH, or where scripts/install-deps puts it.
fn kubernetes_validate() -> Option<PathBuf> {
    let installed = PathBuf::from("/opt/stack-tools/kubernetes-validate/bin/kubernetes-validate");
    if installed.is_file() {
        return Some(installed);
    }
    Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| PathBuf::from("kubernetes-validate"))
}

#[test]
fn manifests_validate_against_two_kubernetes_versions() {
    let Some(tool) = kubernetes_validate() else {
        eprintln!(
            "SKIPPED: kubernetes-validate is not installed (scripts/install-deps installs it)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, file) in cases() {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, export(&file).kubernetes).unwrap();
        files.push(path);
    }
    let oldest = format!(
        "{}.{}.0",
        kubernetes::MIN_VERSION.0,
        kubernetes::MIN_VERSION.1
    );
    for version in [oldest.as_str(), "1.37.0"] {
        let out = Command::new(&tool)
            .args(["--strict", "--quiet", "-k", version])
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "manifests do not validate against Kubernetes {version}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `docker stack config` (Docker CLI 23 and later) parses a file with the
/// same loader and schema `docker stack deploy` uses, without a daemon.
#[test]
fn swarm_files_load_in_docker_stack_config() {
    let works = Command::new("docker")
        .args(["stack", "config", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        eprintln!(
            "SKIPPED: no docker CLI with `docker stack config` (the Swarm deploy test still checks the examples)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, file) in cases() {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, export(&file).swarm).unwrap();
        let out = Command::new("docker")
            .args(["stack", "config", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: docker stack config refuses the Swarm file:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
