//! The progress display as compose prints it, from real `up` and `down`
//! runs: plain lines when piped, JSON lines, nothing when quiet, and at a
//! terminal (a pty) the `[+] Running` block redrawn in place, read back
//! through an in-memory terminal emulator as a user would see it.

mod common;

use std::io::Read;
use std::os::fd::AsFd;
use std::process::Stdio;

use common::Env;

const TWO_SERVICES: &str = "services:
  db:
    image: busybox
    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]
  web:
    image: busybox
    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]
    depends_on: [db]
";

fn stderr_of(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> String {
    let mut command = env.command(args);
    for (k, v) in vars {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stack {args:?}: {err}");
    assert!(
        out.stdout.is_empty(),
        "progress goes to stderr: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

#[test]
fn plain_json_and_quiet_when_piped() {
    let env = Env::new("pg-plain", 153);
    env.write(TWO_SERVICES);
    let file = env.file();
    let file = file.to_str().unwrap();
    let project = ["-f", file, "-p", "pg-plain"];

    // Piped, auto is plain: each step as compose's plain writer prints it.
    let up = stderr_of(&env, &[&project[..], &["up", "-d"]].concat(), &[]);
    let mut lines: Vec<&str> = up.lines().collect();
    // db and web are created at once; their order among themselves is not
    // fixed, the order per resource is.
    lines.sort_by_key(|l| l.split(' ').nth(2).unwrap_or_default().to_owned());
    assert_eq!(
        lines.join("\n"),
        " Container pg-plain-db-1 Creating
 Container pg-plain-db-1 Created
 Container pg-plain-db-1 Starting
 Container pg-plain-db-1 Started
 Container pg-plain-web-1 Creating
 Container pg-plain-web-1 Created
 Container pg-plain-web-1 Starting
 Container pg-plain-web-1 Started
 Network pg-plain_default Creating
 Network pg-plain_default Created",
        "{up}"
    );
    for resource in ["Network pg-plain_default", "Container pg-plain-web-1"] {
        let at = |word: &str| up.find(&format!(" {resource} {word}")).unwrap();
        assert!(at("Creating") < at("Created"), "{up}");
    }
    let db_started = up.find("db-1 Started").unwrap();
    assert!(db_started < up.find("web-1 Starting").unwrap(), "{up}");

    // A change says why the container is recreated.
    env.write(&TWO_SERVICES.replace(
        "depends_on: [db]",
        "depends_on: [db]\n    environment: {V: '1'}",
    ));
    let up = stderr_of(&env, &[&project[..], &["up", "-d"]].concat(), &[]);
    assert!(
        up.contains(" Container pg-plain-web-1 Recreated config changed: environment\n"),
        "{up}"
    );

    // --progress quiet (COMPOSE_PROGRESS as well): nothing.
    let quiet = stderr_of(
        &env,
        &[&project[..], &["up", "-d", "--force-recreate"]].concat(),
        &[("COMPOSE_PROGRESS", "quiet")],
    );
    assert_eq!(quiet, "");

    // json: one object per step, as compose's json writer.
    let down = stderr_of(
        &env,
        &[&["--progress", "json"][..], &project[..], &["down"]].concat(),
        &[],
    );
    let events: Vec<serde_json::Value> = down
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    for (id, text) in [
        ("Container pg-plain-web-1", "Removing"),
        ("Container pg-plain-web-1", "Removed"),
        ("Container pg-plain-db-1", "Removed"),
        ("Network pg-plain_default", "Removed"),
    ] {
        assert!(
            events.iter().any(|e| e["id"] == id && e["text"] == text),
            "{id} {text} missing: {down}"
        );
    }
    // A progress mode that does not exist is refused by name.
    let out = env
        .command(&[&project[..], &["ps"]].concat())
        .env("COMPOSE_PROGRESS", "fancy")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("COMPOSE_PROGRESS=fancy"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `stack ARGS` with its output on a new 24x80 pty; returns the bytes
/// written to the terminal.
fn on_a_terminal(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Vec<u8> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let size = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    // Not inherited by what other tests start meanwhile, nor by the
    // supervisor `stack` starts: the terminal ends with the command.
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
    }
    let mut command = env.command(args);
    for (k, v) in vars {
        command.env(k, v);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave))
        .spawn()
        .unwrap();
    drop(command);
    let mut master = std::fs::File::from(pty.master);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let mut status = None;
    // Read while it runs (a full pty would block it), then what is left.
    loop {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0);
        if ready > 0 {
            match master.read(&mut buf) {
                Ok(n) if n > 0 => {
                    bytes.extend_from_slice(&buf[..n]);
                    continue;
                }
                // EIO: every writer is gone.
                _ => {}
            }
        } else if status.is_none() {
            status = child.try_wait().unwrap();
            continue;
        }
        if status.is_some() || ready > 0 {
            break;
        }
    }
    let status = match status {
        Some(s) => s,
        None => child.wait().unwrap(),
    };
    assert!(
        status.success(),
        "stack {args:?}: {}",
        String::from_utf8_lossy(&bytes)
    );
    bytes
}

/// The screen as a user sees it after the output, each line's timer (the
/// last word, `0.4s`) checked to sit at the right edge and then left out.
fn screen(bytes: &[u8]) -> String {
    let mut parser = vt100::Parser::new(24, 80, 0);
    parser.process(bytes);
    let mut lines = Vec::new();
    for line in parser.screen().contents().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if line.starts_with(" ✔") || line.starts_with(" ✘") {
            let (left, timer) = line.rsplit_once(' ').unwrap();
            assert!(
                timer.ends_with('s') && timer[..timer.len() - 1].parse::<f64>().is_ok(),
                "no timer: {line:?}"
            );
            assert_eq!(line.chars().count(), 79, "not aligned right: {line:?}");
            lines.push(left.trim_end().to_owned());
        } else {
            lines.push(line.to_owned());
        }
    }
    lines.join("\n")
}

#[test]
fn a_block_redrawn_at_a_terminal() {
    let env = Env::new("pg-tty", 154);
    env.write(TWO_SERVICES);
    let file = env.file();
    let file = file.to_str().unwrap();
    let project = ["-f", file, "-p", "pg-tty"];

    let bytes = on_a_terminal(&env, &[&project[..], &["up", "-d"]].concat(), &[]);
    let text = String::from_utf8_lossy(&bytes);
    // Redrawn in place: the cursor goes back up over the block.
    assert!(text.contains("\x1b[3A"), "{text:?}");
    let mut shown = screen(&bytes);
    // db and web may be created in either order.
    if shown.find("web-1").unwrap() < shown.find("db-1").unwrap() {
        shown = shown
            .replace("db-1 ", "@@ ")
            .replace("web-1 ", "db-1 ")
            .replace("@@ ", "web-1 ");
    }
    assert_eq!(
        shown,
        "[+] Running 3/3
 ✔ Network pg-tty_default Created
 ✔ Container pg-tty-db-1 Started
 ✔ Container pg-tty-web-1 Started",
        "{text:?}"
    );

    // --ansi never at a terminal: plain lines, no control characters.
    let bytes = on_a_terminal(
        &env,
        &[
            &["--ansi", "never"][..],
            &project[..],
            &["up", "-d", "--force-recreate"],
        ]
        .concat(),
        &[],
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(
        text.contains(" Container pg-tty-web-1 Recreated --force-recreate\r\n"),
        "{text:?}"
    );

    // Piped, COMPOSE_ANSI=always still draws the block.
    let down = stderr_of(
        &env,
        &[&project[..], &["down"]].concat(),
        &[("COMPOSE_ANSI", "always")],
    );
    // A terminal would turn each newline into CR LF (onlcr).
    let shown = screen(down.replace('\n', "\r\n").as_bytes());
    assert!(shown.starts_with("[+] Running 3/3\n"), "{down:?}");
    assert!(
        shown.contains(" ✔ Network pg-tty_default Removed"),
        "{down:?}"
    );
}

/// `up --pull never|always` over the services' `pull_policy`, and
/// `--quiet-pull`, against a registry on loopback.
#[test]
fn pull_policies_and_quiet_pull() {
    let registry = common::registry::Registry::start();
    registry.push(&common::busybox_archive(), "library/busybox:latest");
    let env = Env::empty("pg-pull", 155);
    env.write(
        "services:
  web:
    image: busybox
    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]
",
    );
    let file = env.file();
    let file = file.to_str().unwrap();
    let up = |extra: &[&str]| {
        let mut args = vec!["-f", file, "-p", "pg-pull", "up", "-d"];
        args.extend(extra);
        env.command(&args)
            .env("STACK_REGISTRY_MIRRORS", registry.url())
            .output()
            .unwrap()
    };
    // never: the missing image is not pulled, and that is an error.
    let out = up(&["--pull", "never"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("Pulling"), "{err}");
    // always with --quiet-pull: pulled, without a line about it.
    let out = up(&["--pull", "always", "--quiet-pull"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("Image"), "{err}");
    assert!(err.contains(" Container pg-pull-web-1 Started"), "{err}");
    // always: pulled again although it is there, and said.
    let out = up(&["--pull", "always"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(" Image busybox Pulled"), "{err}");
    // missing: it is there, nothing to pull.
    let out = up(&["--pull", "missing"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("Image"), "{err}");
}
