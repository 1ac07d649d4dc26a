//! `stack watch` and `stack up --watch` end to end, as root, with real
//! containers from the busybox fixture: the watcher runs as a child process
//! whose output lines the tests read; a guard kills it (the `Env` guard
//! then takes the stack down), also when a test fails.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Env, stack_bin};

const LOOP: &str = "trap 'exit 0' TERM; while :; do sleep 0.05; done";

/// A running `stack watch` (or `up --watch`) and its output, line by line.
struct Watching {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watching {
    /// Starts `stack ARGS` with a short debounce, so that tests run fast.
    fn start(env: &Env, args: &[&str]) -> Self {
        Self::with_debounce(env, args, 50)
    }

    fn with_debounce(env: &Env, args: &[&str], debounce_ms: u32) -> Self {
        let file = env.file();
        let mut child = Command::new(stack_bin())
            .arg("--root")
            .arg(env.root())
            .arg("--run-dir")
            .arg(env.run_dir())
            .args(args)
            .args(["-f", file.to_str().unwrap(), "-p", &env.project])
            .args(["--debounce", &debounce_ms.to_string()])
            .current_dir(env.dir.path())
            .env_remove("STACK_ROOT")
            .env_remove("STACK_RUN")
            .env("STACK_SUBNET_POOL", &env.pool)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(line);
            }
        });
        let mut w = Self {
            child,
            lines,
            seen: Vec::new(),
        };
        w.until(|l| l.starts_with("watching "), 60);
        w
    }

    /// Reads lines until one satisfies `pred`; returns every line read on
    /// the way (that one included).
    fn until(&mut self, pred: impl Fn(&str) -> bool, secs: u64) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    got.push(line.clone());
                    if pred(&line) {
                        return got;
                    }
                }
                Err(_) => panic!(
                    "no expected line within {secs} s; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Like `until`, but a line already read counts: standard output (the
    /// logs) and standard error (the watch lines) arrive in any order.
    fn seen_or_until(&mut self, pred: impl Fn(&str) -> bool, secs: u64) {
        if !self.seen.iter().any(|l| pred(l)) {
            self.until(pred, secs);
        }
    }

    /// Lines that arrive within `wait`.
    fn drain(&mut self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line.clone());
            got.push(line);
        }
        got
    }

    /// The next batch's lines, up to its summary.
    fn batch(&mut self) -> Vec<String> {
        self.until(|l| l.starts_with("watch: "), 60)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The content of `path` once `pred` holds for it (the container writes
/// it on its own schedule).
fn eventually(path: &Path, pred: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if pred(&text) {
                return text;
            }
            last = text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never matched; last: {last:?}", path.display());
}

/// Replaces a file the way editors save: a temporary file renamed over it.
fn save(path: &Path, text: &str) {
    let temp = path.with_extension("swp-save");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

fn services(out: &Path, list: &[(&str, &str)]) -> String {
    let mut yaml = String::from("services:\n");
    for (name, value) in list {
        yaml += &format!(
            "  {name}:\n    image: busybox\n    command: [\"sh\", \"-c\", \"echo $$V > /out/{name}.env; {LOOP}\"]\n    environment:\n      V: \"{value}\"\n    volumes: [\"{}:/out\"]\n",
            out.display()
        );
    }
    yaml
}

fn find<'a>(
    list: &'a [(String, String, Option<i64>)],
    name: &str,
) -> &'a (String, String, Option<i64>) {
    list.iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("no container {name} in {list:?}"))
}

#[test]
fn stack_file_changes_recreate_only_what_changed_and_bad_files_change_nothing() {
    let env = Env::new("wa-reload", 100);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    env.write(&services(&out, &[("a", "1"), ("b", "1"), ("c", "1")]));
    let mut w = Watching::start(&env, &["watch"]);
    eventually(&out.join("c.env"), |t| t.trim() == "1");
    let before = env.containers();
    assert_eq!(before.len(), 3, "{before:?}");

    // One service's environment: only it is recreated and sees the value.
    save(
        &env.file(),
        &services(&out, &[("a", "1"), ("b", "1"), ("c", "2")]),
    );
    let lines = w.batch();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("wa-reload-c-1: recreated") && l.contains("environment.V")),
        "{lines:?}"
    );
    eventually(&out.join("c.env"), |t| t.trim() == "2");
    let after = env.containers();
    for name in ["wa-reload-a-1", "wa-reload-b-1"] {
        assert_eq!(
            find(&before, name),
            find(&after, name),
            "{name} was touched"
        );
    }
    assert_ne!(
        find(&before, "wa-reload-c-1").1,
        find(&after, "wa-reload-c-1").1
    );

    // A new service is started; a removed one is stopped and removed.
    save(
        &env.file(),
        &services(&out, &[("a", "1"), ("c", "2"), ("d", "1")]),
    );
    let lines = w.batch();
    assert!(
        lines.iter().any(|l| l.contains("wa-reload-d-1: started")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("wa-reload-b-1: removed")),
        "{lines:?}"
    );
    eventually(&out.join("d.env"), |t| t.trim() == "1");
    let names: Vec<String> = env.containers().into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["wa-reload-a-1", "wa-reload-c-1", "wa-reload-d-1"]);

    // A broken file changes nothing and says where it is broken.
    let good = env.containers();
    save(
        &env.file(),
        "services:\n  a:\n    image: busybox\n    restart: sometimes\n",
    );
    let lines = w.batch();
    let name = env.file().display().to_string();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("error: ") && l.contains(&format!("{name}:4:"))),
        "no file:line:column in {lines:?}"
    );
    assert!(
        lines.last().unwrap().contains("nothing changed"),
        "{lines:?}"
    );
    assert_eq!(env.containers(), good);

    // Fixed: applied.
    save(
        &env.file(),
        &services(&out, &[("a", "3"), ("c", "2"), ("d", "1")]),
    );
    let lines = w.batch();
    assert!(
        lines.iter().any(|l| l.contains("wa-reload-a-1: recreated")),
        "{lines:?}"
    );
    eventually(&out.join("a.env"), |t| t.trim() == "3");
    let now = env.containers();
    assert_eq!(find(&good, "wa-reload-d-1"), find(&now, "wa-reload-d-1"));
}

#[test]
fn sync_writes_modifies_deletes_restarts_once_per_burst_and_execs() {
    let env = Env::new("wa-sync", 101);
    let d = env.dir.path();
    let out = d.join("out");
    for dir in ["out", "src", "conf", "hook"] {
        std::fs::create_dir_all(d.join(dir)).unwrap();
    }
    std::fs::write(d.join("src/keep.txt"), "initial").unwrap();
    // The container reports what it sees under /app, and each start.
    let report = "(cd /app && for f in *; do echo \\\"$$f=$$(cat $$f)\\\"; done) > /out/app.tmp; mv /out/app.tmp /out/app.txt";
    env.write(&format!(
        r#"
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo start >> /out/starts; trap 'exit 0' TERM; while :; do {report}; sleep 0.05; done"]
    volumes: ["{out}:/out"]
    develop:
      watch:
        - path: ./src
          action: sync
          target: /app
          initial_sync: true
          ignore: ["*.tmp"]
        - path: ./conf
          action: sync+restart
          target: /etc/web
        - path: ./hook
          action: sync+exec
          target: /hook
          exec:
            command: cat /hook/x > /out/hooked
"#,
        out = out.display()
    ));
    // Long enough that the ten files below are one burst on a loaded machine.
    let mut w = Watching::with_debounce(&env, &["watch"], 300);
    eventually(&out.join("app.txt"), |t| t.contains("keep.txt=initial"));

    std::fs::write(d.join("src/a.txt"), "one").unwrap();
    std::fs::write(d.join("src/ignored.tmp"), "no").unwrap();
    let lines = w.batch();
    assert!(
        lines
            .iter()
            .any(|l| l == "web: synced 1 files" || l.starts_with("web: synced 1 files ")),
        "{lines:?}"
    );
    eventually(&out.join("app.txt"), |t| {
        t.contains("a.txt=one") && !t.contains("ignored")
    });

    save(&d.join("src/a.txt"), "two");
    w.batch();
    eventually(&out.join("app.txt"), |t| t.contains("a.txt=two"));

    std::fs::remove_file(d.join("src/a.txt")).unwrap();
    w.batch();
    eventually(&out.join("app.txt"), |t| {
        !t.contains("a.txt") && t.contains("keep.txt")
    });

    // A burst of ten configuration files: one restart.
    let starts = std::fs::read_to_string(out.join("starts"))
        .unwrap()
        .lines()
        .count();
    for i in 0..10 {
        std::fs::write(d.join(format!("conf/{i}.conf")), "x").unwrap();
    }
    let lines = w.batch();
    let started = lines.iter().filter(|l| l.ends_with(": started")).count();
    assert_eq!(started, 1, "one restart of the one container: {lines:?}");
    assert!(
        lines.last().is_some_and(|l| l.contains("web restarted")),
        "the summary says so: {lines:?}"
    );
    eventually(&out.join("starts"), |t| t.lines().count() == starts + 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        std::fs::read_to_string(out.join("starts"))
            .unwrap()
            .lines()
            .count(),
        starts + 1
    );

    // sync+exec: the command runs after the file arrived.
    std::fs::write(d.join("hook/x"), "hooked!").unwrap();
    let lines = w.batch();
    assert!(
        lines.iter().any(|l| l.starts_with("web: ran ")),
        "{lines:?}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("hooked")).unwrap(),
        "hooked!"
    );
}

#[test]
fn five_hundred_files_in_one_burst_are_one_sync_and_all_arrive() {
    let env = Env::new("wa-burst", 102);
    let d = env.dir.path();
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(d.join("src")).unwrap();
    env.write(&format!(
        r#"
services:
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do ls /app 2>/dev/null | wc -l > /out/n.tmp; mv /out/n.tmp /out/n; sleep 0.05; done"]
    volumes: ["{}:/out"]
    develop:
      watch:
        - {{path: ./src, action: sync, target: /app}}
"#,
        out.display()
    ));
    // A debounce longer than the writer's longest pause on a loaded
    // two-core machine: the burst is one burst however slowly it is written.
    let mut w = Watching::with_debounce(&env, &["watch"], 400);
    for i in 0..500 {
        std::fs::write(d.join(format!("src/f{i:03}.txt")), i.to_string()).unwrap();
    }
    let lines = w.batch();
    assert!(
        lines.last().unwrap().contains("500 files synced"),
        "{lines:?}"
    );
    eventually(&out.join("n"), |t| t.trim() == "500");
    let more = w.drain(Duration::from_millis(1000));
    assert!(
        more.iter().all(|l| !l.starts_with("watch: ")),
        "a second batch: {more:?}"
    );
}

#[test]
fn up_watch_stays_attached_and_applies_a_renamed_over_file() {
    let env = Env::new("wa-upw", 103);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let yaml = |v: &str| {
        format!(
            "services:\n  web:\n    image: busybox\n    command: [\"sh\", \"-c\", \"echo hello $$V; echo $$V > /out/v; {LOOP}\"]\n    environment: {{V: \"{v}\"}}\n    volumes: [\"{}:/out\"]\n",
            out.display()
        )
    };
    env.write(&yaml("one"));
    let mut w = Watching::start(&env, &["up", "--watch"]);
    w.until(|l| l.contains("hello one"), 30);
    save(&env.file(), &yaml("two"));
    w.seen_or_until(|l| l.contains("wa-upw-web-1: recreated"), 30);
    w.seen_or_until(|l| l.contains("hello two"), 30);
    assert_eq!(
        std::fs::read_to_string(out.join("v")).unwrap().trim(),
        "two"
    );
}

#[test]
fn rebuild_without_build_is_refused_before_anything_starts() {
    let env = Env::new("wa-rebuild", 104);
    env.write("services:\n  web:\n    image: busybox\n    develop:\n      watch:\n        - {path: ., action: rebuild}\n");
    let file = env.file();
    for args in [&["watch"][..], &["up", "--watch"][..]] {
        let mut all = args.to_vec();
        all.extend(["-f", file.to_str().unwrap(), "-p", "wa-rebuild"]);
        let out = env.stack(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains("rebuild") && err.contains("needs a build section"),
            "{err}"
        );
        assert!(env.containers().is_empty(), "{args:?} started something");
    }
}

#[test]
fn a_dot_env_written_later_and_an_env_file_are_watched_too() {
    let env = Env::new("wa-dotenv", 105);
    let d = env.dir.path();
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(d.join("web.env"), "W=first\n").unwrap();
    env.write(&format!(
        "services:\n  web:\n    image: busybox\n    command: [\"sh\", \"-c\", \"echo $$V $$W > /out/v; {LOOP}\"]\n    environment: {{V: \"${{V:-unset}}\"}}\n    env_file: web.env\n    volumes: [\"{}:/out\"]\n",
        out.display()
    ));
    let mut w = Watching::start(&env, &["watch"]);
    eventually(&out.join("v"), |t| t.trim() == "unset first");

    save(&d.join(".env"), "V=from-dotenv\n");
    w.batch();
    eventually(&out.join("v"), |t| t.trim() == "from-dotenv first");

    save(&d.join("web.env"), "W=second\n");
    let lines = w.batch();
    assert!(
        lines.iter().any(|l| l.contains("environment.W")),
        "{lines:?}"
    );
    eventually(&out.join("v"), |t| t.trim() == "from-dotenv second");
}

#[test]
fn a_rebuild_trigger_builds_again_and_the_new_code_answers() {
    let env = Env::new("wa-rebuild2", 106);
    let d = env.dir.path();
    let out = d.join("out");
    std::fs::create_dir_all(d.join("app")).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        d.join("app/Dockerfile"),
        "FROM busybox\nCOPY app.sh /app.sh\nCMD [\"sh\", \"/app.sh\"]\n",
    )
    .unwrap();
    let app = |v: &str| format!("echo {v} > /out/v; echo serving {v}; {LOOP}\n");
    std::fs::write(d.join("app/app.sh"), app("one")).unwrap();
    env.write(&format!(
        "services:\n  web:\n    build: ./app\n    volumes: [\"{}:/out\"]\n    develop:\n      watch:\n        - {{path: ./app, action: rebuild}}\n",
        out.display()
    ));
    let mut w = Watching::start(&env, &["up", "--watch"]);
    w.seen_or_until(|l| l.contains("serving one"), 60);
    save(&d.join("app/app.sh"), &app("two"));
    w.seen_or_until(|l| l.contains("web rebuilt"), 60);
    w.seen_or_until(|l| l.contains("serving two"), 30);
    eventually(&out.join("v"), |t| t.trim() == "two");
    assert!(
        w.seen
            .iter()
            .any(|l| l.contains("wa-rebuild2-web: built (build: context changed)")),
        "{:?}",
        w.seen
    );
}
