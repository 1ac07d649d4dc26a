//! A service's `init: true` end to end: the runtime's minimal init is pid 1,
//! the command pid 2, and `stack down`'s SIGTERM reaches the command.

mod common;

use std::path::Path;

use common::Env;

fn wait_file(path: &Path) -> String {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} was never written", path.display());
}

#[test]
fn init_true_puts_an_init_before_the_command() {
    stack_testing::require_root!();
    let mut env = Env::new("rt2-init", 0);
    // No network is made (network_mode: none); the pool is this test's own anyway.
    env.pool = "10.230.0.0/24".into();
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let svc = |name: &str, init: bool| {
        format!(
            r#"
  {name}:
    image: busybox
    init: {init}
    network_mode: none
    volumes: ["{out}:/out"]
    command: ["sh", "-c", "trap 'echo term > /out/{name}.term; exit 0' TERM; echo pid=$$$$ one=$$(cat /proc/1/comm) > /out/{name}; while :; do sleep 0.1; done"]"#,
            out = out.display()
        )
    };
    env.write(&format!(
        "services:{}{}\n",
        svc("withinit", true),
        svc("plain", false)
    ));
    env.ok(&["up", "-d"]);
    assert_eq!(
        wait_file(&out.join("withinit")).trim(),
        "pid=2 one=stack-init"
    );
    assert_eq!(wait_file(&out.join("plain")).trim(), "pid=1 one=sh");
    env.ok(&["down"]);
    assert_eq!(wait_file(&out.join("withinit.term")).trim(), "term");
}
