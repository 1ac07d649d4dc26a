//! linux.devices: nodes made with the type, numbers, mode and owner asked
//! for, next to the default devices.

mod common;

use common::{Bundle, run};

#[test]
fn spec_devices_and_the_defaults_are_created() {
    stack_testing::require_root!();
    let script = "for f in null zero full random urandom tty rt2c rt2b rt2p; do \
                  stat -c \"%n %F %t:%T %a %u:%g\" /dev/$f; done";
    let b = Bundle::new(&["sh", "-c", script], |v| {
        v["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/rt2c", "type": "c", "major": 10, "minor": 666, "fileMode": 0o640, "uid": 1000, "gid": 1001},
            {"path": "/dev/rt2b", "type": "b", "major": 8, "minor": 666, "fileMode": 0o600, "uid": 0, "gid": 0},
            {"path": "/dev/rt2p", "type": "p", "major": 0, "minor": 0, "fileMode": 0o620},
        ]);
    });
    let (out, info, _g) = run(&b, "rt2-dev", false);
    assert_eq!(info.code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "/dev/null character special file 1:3 666 0:0",
            "/dev/zero character special file 1:5 666 0:0",
            "/dev/full character special file 1:7 666 0:0",
            "/dev/random character special file 1:8 666 0:0",
            "/dev/urandom character special file 1:9 666 0:0",
            "/dev/tty character special file 5:0 666 0:0",
            // stat prints the numbers in hex: 666 = 0x29a.
            "/dev/rt2c character special file a:29a 640 1000:1001",
            "/dev/rt2b block special file 8:29a 600 0:0",
            "/dev/rt2p fifo 0:0 620 0:0",
        ],
        "{out}"
    );
}
