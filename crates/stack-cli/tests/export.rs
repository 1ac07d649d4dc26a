//! `stack export`: the command writes what the library exports, warnings
//! go to standard error, `-o DIR` replaces an earlier export and refuses a
//! directory holding anything else.

use std::path::Path;
use std::process::{Command, Output};

fn stack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(args)
        .output()
        .expect("run stack")
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .join("stack.yaml")
        .display()
        .to_string()
}

#[test]
fn kubernetes_into_a_directory_replaces_an_earlier_export() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k8s");
    let d = dir.to_str().unwrap();
    let out = stack(&["export", "kubernetes", "-f", &example("webapp"), "-o", d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: services.migrate: runs as an init container in each pod of api"),
        "{stderr}"
    );
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert!(
        files.contains(&"api-deployment.yaml".to_string()),
        "{files:?}"
    );
    assert!(
        files.contains(&"db-statefulset.yaml".to_string()),
        "{files:?}"
    );
    assert!(
        files.contains(&"webapp-net-default-networkpolicy.yaml".to_string()),
        "{files:?}"
    );

    // A second export into the same directory leaves only its own files.
    let out = stack(&["export", "kubernetes", "-f", &example("hello"), "-o", d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("api-deployment.yaml").exists());
    assert!(dir.join("client-deployment.yaml").exists());

    // A directory with other files in it is not touched.
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let out = stack(&["export", "kubernetes", "-f", &example("webapp"), "-o", d]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.txt"));
    assert!(dir.join("client-deployment.yaml").exists());
}

#[test]
fn kubernetes_to_standard_output_and_bad_flags() {
    let out = stack(&[
        "export",
        "kubernetes",
        "-f",
        &example("hello"),
        "--namespace",
        "demo",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(yaml.starts_with("---\napiVersion: v1\n"), "{yaml}");
    assert_eq!(
        yaml.matches("namespace: demo").count(),
        yaml.matches("\n---\n").count() + 1
    );

    let out = stack(&[
        "export",
        "kubernetes",
        "-f",
        &example("hello"),
        "--k8s-version",
        "1.20",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--k8s-version"));
}

#[test]
fn swarm_into_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("swarm.yaml");
    let out = stack(&[
        "export",
        "swarm",
        "-f",
        &example("worker"),
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("# docker stack deploy -c FILE worker\nversion: \"3.9\"\n"),
        "{text}"
    );
    assert!(
        text.contains("condition: on-failure\n        max_attempts: 3"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: services.worker.depends_on:"));
}
