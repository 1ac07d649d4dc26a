//! Files that are not regular files, or are too large, as a stack file,
//! `--env-file`, a service's `env_file`, a config or a secret: each is a
//! clear error at once
//! (no hang on a FIFO, no unbounded read of `/dev/zero` or of a huge sparse
//! file) and nothing is created.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Env;

/// (what, path, what the error must say)
fn specials(dir: &Path) -> Vec<(&'static str, PathBuf, &'static str)> {
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let sparse = dir.join("sparse");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let directory = dir.join("directory");
    std::fs::create_dir(&directory).unwrap();
    vec![
        ("FIFO", fifo, "is a FIFO, not a regular file"),
        (
            "/dev/zero",
            PathBuf::from("/dev/zero"),
            "is a character device, not a regular file",
        ),
        ("sparse 2 GiB file", sparse, "is larger than the limit of"),
        ("directory", directory, "is a directory, not a regular file"),
    ]
}

fn refused(env: &Env, what: &str, args: &[&str], says: &str) {
    let started = Instant::now();
    let out = env.stack(args);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: accepted");
    assert!(
        stderr.contains(says),
        "{what}: {args:?} does not say {says:?}:\n{stderr}"
    );
    // A second is the goal; the margin is for a loaded CI host.
    assert!(took < Duration::from_secs(3), "{what}: took {took:?}");
    assert!(
        !env.root().join("projects").join(&env.project).exists(),
        "{what}: a project was recorded"
    );
}

#[test]
fn special_files_as_inputs_are_refused_at_once() {
    let env = Env::empty("cr-special", 189);
    let dir = env.dir.path().join("specials");
    std::fs::create_dir(&dir).unwrap();
    for (what, path, says) in specials(&dir) {
        let path = path.to_str().unwrap();
        refused(
            &env,
            what,
            &["config", "-f", path, "-p", &env.project],
            says,
        );

        env.write("services:\n  web:\n    image: busybox\n");
        let file = env.file();
        let file = file.to_str().unwrap();
        refused(
            &env,
            what,
            &[
                "up",
                "-d",
                "-f",
                file,
                "-p",
                &env.project,
                "--env-file",
                path,
            ],
            says,
        );

        env.write(&format!(
            "services:\n  web:\n    image: busybox\n    env_file: [{path}]\n"
        ));
        refused(
            &env,
            what,
            &["up", "-d", "-f", file, "-p", &env.project],
            says,
        );

        // Optional (`required: false`) means it may be missing, not that
        // anything found there is ignored.
        env.write(&format!(
            "services:\n  web:\n    image: busybox\n    env_file:\n      - path: {path}\n        required: false\n"
        ));
        refused(
            &env,
            what,
            &["up", "-d", "-f", file, "-p", &env.project],
            says,
        );

        // Configs and secrets are checked at load (never opened there),
        // and `export`, which reads them, reads them bounded.
        for kind in ["configs", "secrets"] {
            env.write(&format!(
                "services:\n  web:\n    image: busybox\n    {kind}: [s]\n{kind}:\n  s:\n    file: {path}\n"
            ));
            refused(
                &env,
                what,
                &["up", "-d", "-f", file, "-p", &env.project],
                says,
            );
            let out = env.stack(&["config", "-f", file, "-p", &env.project]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what} as {kind}: accepted");
            // The place in the file: `{kind}.s.file` is on line 7.
            assert!(stderr.contains(":7:11:"), "{what} as {kind}: {stderr}");
        }
    }
}

#[test]
fn names_and_image_references_that_would_fail_later_are_refused_at_load() {
    let env = Env::empty("cr-names", 185);
    let file = env.file();
    let file = file.to_str().unwrap();
    let long = "s".repeat(300);
    for (what, yaml, says) in [
        (
            "300-character service name",
            format!("services:\n  {long}:\n    image: busybox\n"),
            "300 characters long",
        ),
        (
            "path as an image",
            "services:\n  web:\n    image: ../../etc/passwd\n".to_owned(),
            "invalid image reference \"../../etc/passwd\"",
        ),
        (
            "300-character volume name",
            format!("services:\n  web:\n    image: busybox\nvolumes:\n  {long}: {{}}\n"),
            "volume name sss",
        ),
    ] {
        env.write(&yaml);
        refused(
            &env,
            what,
            &["up", "-d", "-f", file, "-p", &env.project],
            says,
        );
        assert!(
            !env.run_dir().join("supervisors").exists(),
            "{what}: a supervisor was started"
        );
    }
}
