//! Watch mode's decisions, without containers: which paths matter and to
//! which trigger, how bursts are coalesced, and what the loop does with a
//! batch (fake effects, tokio's paused clock).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stack_engine::watch::{
    Debouncer, Effects, Patterns, Session, Snapshot, Trigger, WatchSet, classify, is_editor_temp,
    triggers,
};
use stack_spec::Project;
use tokio::sync::mpsc;
use tokio::time::Instant;

fn project(yaml: &str) -> Project {
    let mut options = stack_spec::LoadOptions::new("/src").with_content("stack.yaml", yaml);
    options.project_name = Some("wa-logic".into());
    stack_spec::load(&options).unwrap().project
}

const TWO: &str = r#"
services:
  web:
    image: busybox
    develop:
      watch:
        - path: ./web
          action: sync
          target: /app
          ignore: [node_modules/, "*.log", "!keep.log"]
        - path: ./web/conf
          action: sync+restart
          target: /etc/web
  api:
    image: busybox
    develop:
      watch:
        - path: api.py
          action: sync+exec
          target: /srv/api.py
          exec:
            command: kill -HUP 1
        - path: ./requirements.txt
          action: restart
"#;

#[test]
fn editor_temp_files_are_recognised() {
    for temp in [
        "/p/.main.rs.swp",
        "/p/.x.swx",
        "/p/4913",
        "/p/main.rs~",
        "/p/.#main.rs",
        "/p/#main.rs#",
    ] {
        assert!(is_editor_temp(Path::new(temp)), "{temp}");
    }
    for real in ["/p/main.rs", "/p/swp", "/p/49130", "/p/a#b", "/p/#"] {
        assert!(!is_editor_temp(Path::new(real)), "{real}");
    }
}

#[test]
fn dockerignore_patterns_cover_directories_and_last_match_wins() {
    let p = Patterns::new(&[
        "node_modules".into(),
        "*.log".into(),
        "!keep.log".into(),
        "/build/".into(),
        "docs/**/*.tmp".into(),
    ])
    .unwrap();
    assert!(p.matches(Path::new("node_modules")));
    assert!(p.matches(Path::new("node_modules/x/y.js")));
    assert!(p.matches(Path::new("a.log")));
    assert!(!p.matches(Path::new("keep.log")));
    // `*` does not cross `/`, as in .dockerignore.
    assert!(!p.matches(Path::new("sub/a.log")));
    assert!(p.matches(Path::new("build/out.o")));
    assert!(p.matches(Path::new("docs/a/b/c.tmp")));
    assert!(!p.matches(Path::new("src/main.rs")));
    let err = Patterns::new(&["a[".into()]).unwrap_err();
    assert_eq!(err.0, "a[");
}

#[test]
fn triggers_resolve_paths_and_exec_commands() {
    let t = triggers(&project(TWO), Path::new("/src")).unwrap();
    assert_eq!(t.len(), 4);
    assert_eq!(t[0].path, Path::new("/src/web"));
    assert_eq!(t[2].path, Path::new("/src/api.py"));
    assert_eq!(
        t[2].exec.as_deref().unwrap(),
        ["/bin/sh", "-c", "kill -HUP 1"]
    );
    assert!(t[1].restarts() && t[1].syncs());
    assert!(t[3].restarts() && !t[3].syncs());
}

#[test]
fn rebuild_without_a_build_section_is_refused_clearly_at_load() {
    let p = project(
        "services:\n  web:\n    image: busybox\n    develop:\n      watch:\n        - path: .\n          action: rebuild\n",
    );
    let err = triggers(&p, Path::new("/src")).unwrap_err().to_string();
    assert!(
        err.contains("\"web\"") && err.contains("develop.watch[0]"),
        "{err}"
    );
    assert!(
        err.contains("rebuild") && err.contains("needs a build section"),
        "{err}"
    );
    let p = project(
        "services:\n  web:\n    build: .\n    develop:\n      watch:\n        - path: .\n          action: rebuild\n",
    );
    let t = triggers(&p, Path::new("/src")).unwrap();
    assert!(t[0].rebuilds() && !t[0].restarts() && !t[0].syncs());
}

#[test]
fn classify_sorts_paths_into_reloads_and_triggers() {
    let t = triggers(&project(TWO), Path::new("/src")).unwrap();
    let inputs: HashSet<PathBuf> = [PathBuf::from("/src/stack.yaml")].into();
    let paths: Vec<PathBuf> = [
        "/src/stack.yaml",
        "/src/.stack.yaml.swp",
        "/src/web/index.html",
        "/src/web/node_modules/x.js",
        "/src/web/debug.log",
        "/src/web/keep.log",
        "/src/web/conf/web.conf",
        "/src/api.py",
        "/src/api.pyc",
        "/src/requirements.txt",
        "/src/state/root/x",
        "/elsewhere/file",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    let c = classify(&paths, &inputs, &t, &[PathBuf::from("/src/state")]);
    assert_eq!(c.inputs, [PathBuf::from("/src/stack.yaml")].into());
    let got = |i: usize| -> Vec<&str> {
        c.triggered[&i]
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect()
    };
    assert_eq!(
        got(0),
        [
            "/src/web/conf/web.conf",
            "/src/web/index.html",
            "/src/web/keep.log"
        ]
    );
    assert_eq!(got(1), ["/src/web/conf/web.conf"]);
    assert_eq!(got(2), ["/src/api.py"]);
    assert_eq!(got(3), ["/src/requirements.txt"]);
}

#[test]
fn debouncer_waits_for_quiet_and_caps_a_burst_that_never_pauses() {
    let quiet = Duration::from_millis(100);
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut d = Debouncer::new(quiet);
    assert_eq!(d.deadline(), None);
    assert_eq!(d.take_due(ms(1000)), None);
    for i in 0..500u64 {
        d.push(PathBuf::from(format!("/p/{}", i % 250)), ms(i / 10));
    }
    assert_eq!(d.deadline(), Some(ms(49 + 100)));
    assert_eq!(d.take_due(ms(148)), None);
    let batch = d.take_due(ms(149)).unwrap();
    assert_eq!(batch.len(), 250, "each path once");
    assert!(d.is_empty() && d.deadline().is_none());

    // A change every 50 ms for ever: served after 2 s all the same.
    let mut d = Debouncer::new(quiet);
    let mut now = 0;
    let served = loop {
        d.push(PathBuf::from("/p/x"), ms(now));
        if let Some(b) = d.take_due(ms(now)) {
            break (now, b);
        }
        now += 50;
    };
    assert_eq!(served.0, 2000);
}

#[derive(Debug, Clone, PartialEq)]
enum Call {
    Load,
    Up(Vec<String>),
    Sync(String, usize),
    Restart(Vec<String>),
    Rebuild(Vec<String>),
    Exec(String, Vec<String>),
    Watch(usize, usize),
}

type LoadResult = Result<Snapshot, Vec<String>>;

#[derive(Clone, Default)]
struct Fake {
    calls: Arc<Mutex<Vec<Call>>>,
    printed: Arc<Mutex<Vec<String>>>,
    /// What `load` returns next (the last one stays).
    loads: Arc<Mutex<Vec<LoadResult>>>,
    up_takes: Duration,
    /// Watching the same set again changes nothing (as with the real
    /// watcher), so only changes of the set are recorded.
    watching: Arc<Mutex<Option<WatchSet>>>,
    /// Every sync fails with this error.
    sync_error: Option<String>,
}

impl Fake {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    fn printed(&self) -> Vec<String> {
        self.printed.lock().unwrap().clone()
    }
    fn record(&self, c: Call) {
        self.calls.lock().unwrap().push(c);
    }
}

impl Effects for Fake {
    fn load(&mut self) -> Result<Snapshot, Vec<String>> {
        self.record(Call::Load);
        let mut loads = self.loads.lock().unwrap();
        if loads.len() > 1 {
            loads.remove(0)
        } else {
            loads[0].clone()
        }
    }
    async fn up(&mut self, project: &Project) -> Result<Vec<String>, String> {
        self.record(Call::Up(project.services.keys().cloned().collect()));
        tokio::time::sleep(self.up_takes).await;
        Ok(vec![
            "container wa-web-1: recreated (config changed) 5 ms".into(),
        ])
    }
    async fn sync(&mut self, trigger: &Trigger, paths: &[PathBuf]) -> Result<usize, String> {
        self.record(Call::Sync(trigger.service.clone(), paths.len()));
        match &self.sync_error {
            Some(e) => Err(e.clone()),
            None => Ok(paths.len()),
        }
    }
    async fn restart(&mut self, services: &[String]) -> Result<Vec<String>, String> {
        self.record(Call::Restart(services.to_vec()));
        Ok(vec![])
    }
    async fn rebuild(&mut self, _: &Project, services: &[String]) -> Result<Vec<String>, String> {
        self.record(Call::Rebuild(services.to_vec()));
        Ok(vec![])
    }
    async fn exec(&mut self, service: &str, command: &[String]) -> Result<(), String> {
        self.record(Call::Exec(service.into(), command.to_vec()));
        Ok(())
    }
    fn watch(&mut self, set: &WatchSet) -> Result<(), String> {
        let mut watching = self.watching.lock().unwrap();
        if watching.as_ref() != Some(set) {
            self.record(Call::Watch(set.files.len(), set.trees.len()));
            *watching = Some(set.clone());
        }
        Ok(())
    }
    fn print(&mut self, line: &str) {
        self.printed.lock().unwrap().push(line.to_owned());
    }
}

fn snapshot(yaml: &str) -> Snapshot {
    Snapshot {
        project: project(yaml),
        inputs: vec![PathBuf::from("/src/stack.yaml")],
        project_dir: PathBuf::from("/src"),
    }
}

/// Starts a session over `fake`; returns the sender of changed paths.
async fn start(fake: &Fake) -> (mpsc::UnboundedSender<PathBuf>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut session = Session::new(
        fake.clone(),
        snapshot(TWO),
        vec![],
        Duration::from_millis(100),
    )
    .unwrap();
    session.start().await.unwrap();
    let task = tokio::spawn(async move { session.run(&mut rx).await });
    (tx, task)
}

fn send(tx: &mpsc::UnboundedSender<PathBuf>, path: &str) {
    tx.send(PathBuf::from(path)).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_500_writes_is_one_sync_and_one_restart() {
    let fake = Fake::default();
    let (tx, task) = start(&fake).await;
    for i in 0..500 {
        send(&tx, &format!("/src/web/conf/f{i}"));
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(tx);
    task.await.unwrap();
    assert_eq!(
        fake.calls(),
        [
            Call::Watch(1, 4),
            Call::Sync("web".into(), 500),
            Call::Sync("web".into(), 500),
            Call::Restart(vec!["web".into()]),
        ]
    );
    let summaries: Vec<String> = fake
        .printed()
        .into_iter()
        .filter(|l| l.starts_with("watch: "))
        .collect();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert!(summaries[0].contains("1000 files synced"), "{summaries:?}");
}

#[tokio::test(start_paused = true)]
async fn a_batch_that_applies_nothing_says_so() {
    let fake = Fake {
        sync_error: Some("not running".into()),
        ..Fake::default()
    };
    let (tx, task) = start(&fake).await;
    send(&tx, "/src/web/conf/a");
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(tx);
    task.await.unwrap();
    let printed = fake.printed();
    assert!(
        printed.iter().any(|l| l == "web: sync failed: not running"),
        "{printed:?}"
    );
    let summary = printed.iter().find(|l| l.starts_with("watch: ")).unwrap();
    assert!(
        summary.starts_with("watch: nothing applied in "),
        "{summary}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_change_during_a_reconcile_is_applied_right_after_it() {
    let fake = Fake {
        loads: Arc::new(Mutex::new(vec![Ok(snapshot(TWO))])),
        up_takes: Duration::from_secs(1),
        ..Fake::default()
    };
    let (tx, task) = start(&fake).await;
    send(&tx, "/src/stack.yaml");
    // The reconcile starts after the quiet period and takes a second.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fake.calls().last(),
        Some(&Call::Up(vec!["web".into(), "api".into()]))
    );
    send(&tx, "/src/api.py");
    send(&tx, "/src/stack.yaml");
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(tx);
    task.await.unwrap();
    let up = Call::Up(vec!["web".into(), "api".into()]);
    let exec = Call::Exec(
        "api".into(),
        vec!["/bin/sh".into(), "-c".into(), "kill -HUP 1".into()],
    );
    assert_eq!(
        fake.calls(),
        [
            Call::Watch(1, 4),
            Call::Load,
            up.clone(),
            Call::Load,
            up,
            Call::Sync("api".into(), 1),
            exec,
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_invalid_file_changes_nothing_until_it_is_fixed() {
    let error = "stack.yaml:3:7: services.web.image: expected a string".to_owned();
    let fake = Fake {
        loads: Arc::new(Mutex::new(vec![
            Err(vec![error.clone()]),
            Ok(snapshot(TWO)),
        ])),
        ..Fake::default()
    };
    let (tx, task) = start(&fake).await;
    send(&tx, "/src/stack.yaml");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.calls(), [Call::Watch(1, 4), Call::Load]);
    let printed = fake.printed();
    assert!(printed.contains(&format!("error: {error}")), "{printed:?}");
    assert!(
        printed
            .iter()
            .any(|l| l.contains("invalid, nothing changed")),
        "{printed:?}"
    );
    // Syncs go on meanwhile, with the rules of the last good file.
    send(&tx, "/src/web/a.txt");
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&tx, "/src/stack.yaml");
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(tx);
    task.await.unwrap();
    assert_eq!(
        &fake.calls()[2..],
        [
            Call::Sync("web".into(), 1),
            Call::Load,
            Call::Up(vec!["web".into(), "api".into()]),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_recreated_by_the_same_batch_is_not_restarted_again() {
    let changed = TWO.replace(
        "  web:\n    image: busybox\n",
        "  web:\n    image: busybox\n    environment: {A: '1'}\n",
    );
    assert_ne!(changed, TWO);
    let fake = Fake {
        loads: Arc::new(Mutex::new(vec![Ok(snapshot(&changed))])),
        ..Fake::default()
    };
    let (tx, task) = start(&fake).await;
    send(&tx, "/src/stack.yaml");
    send(&tx, "/src/web/conf/a.conf");
    send(&tx, "/src/requirements.txt");
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(tx);
    task.await.unwrap();
    assert_eq!(
        &fake.calls()[1..],
        [
            Call::Load,
            Call::Up(vec!["web".into(), "api".into()]),
            Call::Sync("web".into(), 1),
            Call::Sync("web".into(), 1),
            Call::Restart(vec!["api".into()]),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn editor_temp_files_and_unwatched_paths_do_nothing() {
    let fake = Fake::default();
    let (tx, task) = start(&fake).await;
    for p in [
        "/src/web/.index.html.swp",
        "/src/web/4913",
        "/src/web/index.html~",
        "/src/web/node_modules/a.js",
        "/src/other.txt",
    ] {
        send(&tx, p);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(tx);
    task.await.unwrap();
    assert_eq!(fake.calls(), [Call::Watch(1, 4)]);
    assert!(fake.printed().is_empty());
}

#[tokio::test(start_paused = true)]
async fn initial_sync_copies_the_whole_path_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("web")).unwrap();
    let yaml = "services:\n  web:\n    image: busybox\n    develop:\n      watch:\n        - {path: ./web, action: sync, target: /app, initial_sync: true}\n";
    let mut options = stack_spec::LoadOptions::new(dir.path()).with_content("stack.yaml", yaml);
    options.project_name = Some("wa-init".into());
    let loaded = stack_spec::load(&options).unwrap();
    let fake = Fake::default();
    let snapshot = Snapshot {
        project: loaded.project,
        inputs: vec![],
        project_dir: dir.path().to_owned(),
    };
    let mut session =
        Session::new(fake.clone(), snapshot, vec![], Duration::from_millis(100)).unwrap();
    session.start().await.unwrap();
    assert_eq!(
        fake.calls(),
        [Call::Watch(0, 1), Call::Sync("web".into(), 1)]
    );
}

#[test]
fn the_loader_lists_every_file_the_stack_is_made_from() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();
    write(".env", "TAG=1\n");
    write("web.env", "A=1\n");
    write("secret.txt", "s\n");
    write("base.yaml", "services:\n  base:\n    image: busybox\n");
    write("inc.yaml", "services:\n  inc:\n    image: busybox\n");
    write(
        "stack.yaml",
        "include: [inc.yaml]\nservices:\n  web:\n    extends: {file: base.yaml, service: base}\n    env_file: web.env\n    secrets: [s]\nsecrets:\n  s: {file: ./secret.txt}\n",
    );
    let mut options = stack_spec::LoadOptions::new(d);
    options.project_name = Some("wa-inputs".into());
    let loaded = stack_spec::load(&options).unwrap();
    let inputs: HashSet<PathBuf> = loaded.inputs.iter().cloned().collect();
    for name in [
        "stack.yaml",
        ".env",
        "base.yaml",
        "inc.yaml",
        "web.env",
        "secret.txt",
    ] {
        assert!(
            inputs.contains(&d.join(name)),
            "{name} missing from {inputs:?}"
        );
    }

    // No `.env` yet: one written later is watched for all the same.
    std::fs::remove_file(d.join(".env")).unwrap();
    let loaded = stack_spec::load(&options).unwrap();
    assert!(
        loaded.inputs.contains(&d.join(".env")),
        "{:?}",
        loaded.inputs
    );
}

#[tokio::test(start_paused = true)]
async fn a_rebuild_trigger_rebuilds_its_service_and_does_not_restart_it() {
    let fake = Fake::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut session = Session::new(
        fake.clone(),
        snapshot(
            "services:\n  app:\n    build: ./app\n    develop:\n      watch:\n        - {path: ./app, action: rebuild}\n        - {path: ./app/conf, action: restart}\n",
        ),
        vec![],
        Duration::from_millis(100),
    )
    .unwrap();
    session.start().await.unwrap();
    let task = tokio::spawn(async move { session.run(&mut rx).await });
    send(&tx, "/src/app/conf/main.c");
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(tx);
    task.await.unwrap();
    assert_eq!(
        fake.calls(),
        [Call::Watch(1, 2), Call::Rebuild(vec!["app".into()])]
    );
    let printed = fake.printed();
    assert!(
        printed.iter().any(|l| l.contains("app rebuilt")),
        "{printed:?}"
    );
}
