//! The container-side helper `stack-init` is found beside `stack`; a `stack`
//! installed without it says so and starts nothing.

mod common;

use common::Env;

#[test]
fn up_without_the_helper_beside_stack_names_it_and_starts_nothing() {
    let env = Env::empty("helpermissing", 0);
    // A hard link: the same program in a directory without `stack-init`
    // (the running binary's path is what the helper is looked up beside).
    let alone = env.dir.path().join("bin");
    std::fs::create_dir(&alone).unwrap();
    let stack = alone.join("stack");
    std::fs::hard_link(common::stack_bin(), &stack).unwrap();
    env.write("services:\n  a:\n    image: busybox\n    command: [\"sleep\", \"60\"]\n");
    let out = std::process::Command::new(&stack)
        .arg("--root")
        .arg(env.root())
        .arg("--run-dir")
        .arg(env.run_dir())
        .args(["up", "-d", "-p", &env.project, "-f"])
        .arg(env.file())
        .env_remove("STACK_ROOT")
        .env_remove("STACK_RUN")
        .env("STACK_SUBNET_POOL", &env.pool)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "up succeeded without the helper");
    let wanted = format!("cannot find {}", alone.join("stack-init").display());
    assert!(stderr.contains(&wanted), "stderr: {stderr}");
    let socket = env
        .run_dir()
        .join("supervisors")
        .join(format!("{}.sock", env.project));
    assert!(!socket.exists(), "a supervisor was started");
}
