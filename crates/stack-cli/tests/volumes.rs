//! Named volumes outlive `down` and the containers that wrote them; `down -v`
//! removes them.

mod common;

use common::{Env, wait_file};

#[test]
fn plain_down_keeps_a_named_volume_and_down_v_removes_it() {
    stack_testing::require_root!();
    let env = Env::new("wl-vol", 44);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Reports what the volume held when it started, then leaves its mark.
    env.write(&format!(
        r#"
services:
  app:
    image: busybox
    command: ["sh", "-c", "(cat /data/mark 2>/dev/null || echo empty) > /out/seen; echo kept > /data/mark; trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    volumes: ["data:/data", "{out}:/out"]
volumes:
  data:
"#,
        out = out.display()
    ));
    let seen = || {
        let text = wait_file(&out.join("seen"));
        std::fs::remove_file(out.join("seen")).unwrap();
        text.trim().to_owned()
    };
    let volume = env.root().join("volumes/wl-vol_data");

    env.ok(&["up", "-d"]);
    assert_eq!(seen(), "empty");
    assert!(volume.exists(), "the volume lives at {}", volume.display());

    env.ok(&["down"]);
    assert!(volume.exists(), "plain down removed the volume");
    env.ok(&["up", "-d"]);
    assert_eq!(seen(), "kept", "the data did not survive down + up");

    env.ok(&["down", "-v"]);
    assert!(!volume.exists(), "down -v left {}", volume.display());
    env.ok(&["up", "-d"]);
    assert_eq!(seen(), "empty", "down -v kept the data");
}
