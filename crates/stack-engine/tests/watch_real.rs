//! Watch mode on the real file system: inotify through the watcher (an
//! editor's rename, a delete and re-create, a burst of 500 files), and
//! syncing into a container's file system laid out as the engine lays it
//! out (a root directory and bind-mounted volumes in the runtime spec).

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use stack_engine::watch::{
    ContainerFs, Effects, Session, Snapshot, SyncError, Trigger, WatchSet, Watcher, secure_join,
    sync_paths,
};
use tokio::sync::mpsc;

/// A bundle whose spec has `rootfs` as its root, `/data` bound from
/// `volume`, a tmpfs at `/run` and `/src` bound from `src`.
fn bundle(dir: &Path, volume: &Path, src: &Path) -> ContainerFs {
    std::fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
    std::fs::create_dir_all(volume).unwrap();
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": volume, "options": ["rbind", "rw"]},
            {"destination": "/run", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/src", "source": src, "options": ["bind"]},
        ],
    });
    std::fs::write(dir.join("config.json"), spec.to_string()).unwrap();
    ContainerFs::from_bundle(dir).unwrap()
}

#[test]
fn paths_resolve_through_mounts_and_stay_inside_the_root() {
    let t = tempfile::tempdir().unwrap();
    let (b, vol, src) = (
        t.path().join("b"),
        t.path().join("vol"),
        t.path().join("src"),
    );
    let fs = bundle(&b, &vol, &src);
    let root = b.join("rootfs");
    assert_eq!(
        fs.host_path(Path::new("/app/x")).unwrap(),
        root.join("app/x")
    );
    assert_eq!(
        fs.host_path(Path::new("/data/a/b")).unwrap(),
        vol.join("a/b")
    );
    assert_eq!(fs.host_path(Path::new("/data")).unwrap(), vol);
    assert_eq!(
        fs.host_path(Path::new("/src/../data/x")).unwrap(),
        vol.join("x")
    );
    let err = fs.host_path(Path::new("/run/app.pid")).unwrap_err();
    assert!(matches!(err, SyncError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("tmpfs"), "{err}");

    // An absolute link in the container points into the container.
    symlink("/etc", root.join("conf")).unwrap();
    symlink("../../../../..", root.join("up")).unwrap();
    assert_eq!(
        fs.host_path(Path::new("/conf/app.ini")).unwrap(),
        root.join("etc/app.ini")
    );
    assert_eq!(
        secure_join(&root, Path::new("/up/etc/passwd")).unwrap(),
        root.join("etc/passwd")
    );
    assert_eq!(
        secure_join(&root, Path::new("../../x")).unwrap(),
        root.join("x")
    );
    symlink("loop", root.join("loop")).unwrap();
    assert!(matches!(
        secure_join(&root, Path::new("/loop/x")),
        Err(SyncError::Loop(_))
    ));
}

#[test]
fn sync_copies_with_modes_removes_deletions_and_skips_ignored() {
    let t = tempfile::tempdir().unwrap();
    let (b, vol, host) = (
        t.path().join("b"),
        t.path().join("vol"),
        t.path().join("host"),
    );
    let fs = bundle(&b, &vol, &t.path().join("src"));
    let root = b.join("rootfs");
    std::fs::create_dir_all(host.join("bin")).unwrap();
    std::fs::create_dir_all(host.join("cache")).unwrap();
    std::fs::write(host.join("index.html"), "one").unwrap();
    std::fs::write(host.join("bin/run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        host.join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    std::fs::write(host.join("cache/junk"), "x").unwrap();
    symlink("index.html", host.join("latest")).unwrap();
    let keep = |rel: &Path| !rel.starts_with("cache");

    // The whole tree (initial sync), into the root and into a volume.
    let report = sync_paths(&fs, &host, "/app", std::slice::from_ref(&host), &keep).unwrap();
    assert_eq!(report.copied, 3);
    assert_eq!(
        std::fs::read_to_string(root.join("app/index.html")).unwrap(),
        "one"
    );
    let mode = std::fs::metadata(root.join("app/bin/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o751);
    assert_eq!(
        std::fs::read_link(root.join("app/latest")).unwrap(),
        Path::new("index.html")
    );
    assert!(!root.join("app/cache").exists());
    sync_paths(&fs, &host, "/data/site", std::slice::from_ref(&host), &keep).unwrap();
    assert_eq!(
        std::fs::read_to_string(vol.join("site/index.html")).unwrap(),
        "one"
    );

    // Modify and delete.
    std::fs::write(host.join("index.html"), "two").unwrap();
    std::fs::remove_file(host.join("bin/run.sh")).unwrap();
    let changed = [host.join("index.html"), host.join("bin/run.sh")];
    let report = sync_paths(&fs, &host, "/app", &changed, &keep).unwrap();
    assert_eq!((report.copied, report.removed), (1, 1));
    assert_eq!(
        std::fs::read_to_string(root.join("app/index.html")).unwrap(),
        "two"
    );
    assert!(!root.join("app/bin/run.sh").exists());
    // A deleted directory goes with what is in it.
    std::fs::remove_dir_all(host.join("bin")).unwrap();
    sync_paths(&fs, &host, "/app", &[host.join("bin")], &keep).unwrap();
    assert!(!root.join("app/bin").exists());
    // No temporary file is left beside the destination.
    let names: Vec<String> = std::fs::read_dir(root.join("app"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("stack-sync")), "{names:?}");
}

#[test]
fn container_symlinks_never_lead_a_sync_out_of_the_container() {
    let t = tempfile::tempdir().unwrap();
    let (b, host) = (t.path().join("b"), t.path().join("host"));
    let fs = bundle(&b, &t.path().join("vol"), &t.path().join("src"));
    let root = b.join("rootfs");
    // Outside the container, where a naive write would go.
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim"), "untouched").unwrap();
    // In the container: a directory that is an absolute link, and a file
    // that is a link to a host path.
    symlink(&outside, root.join("app")).unwrap();
    std::fs::create_dir_all(root.join("srv")).unwrap();
    symlink(outside.join("victim"), root.join("srv/victim")).unwrap();
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("victim"), "synced").unwrap();

    // Where the link leads inside the container does not exist: an error,
    // and nothing written anywhere.
    let err = sync_paths(&fs, &host, "/app", &[host.join("victim")], &|_| true).unwrap_err();
    assert!(err.to_string().contains("rootfs/app"), "{err}");
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "untouched"
    );
    std::fs::create_dir_all(root.join(outside.strip_prefix("/").unwrap())).unwrap();
    sync_paths(&fs, &host, "/app", &[host.join("victim")], &|_| true).unwrap();
    sync_paths(&fs, &host, "/srv", &[host.join("victim")], &|_| true).unwrap();
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "untouched"
    );
    // The link is read inside the container's root, as the container reads it.
    let inside = root.join(outside.strip_prefix("/").unwrap()).join("victim");
    assert_eq!(std::fs::read_to_string(inside).unwrap(), "synced");
    // A link at the destination is replaced, not written through.
    assert!(
        !std::fs::symlink_metadata(root.join("srv/victim"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(root.join("srv/victim")).unwrap(),
        "synced"
    );

    // A deletion does not follow a link either.
    std::fs::remove_file(host.join("victim")).unwrap();
    symlink(&outside, root.join("srv/dir")).unwrap();
    std::fs::create_dir_all(host.join("dir")).unwrap();
    std::fs::remove_dir(host.join("dir")).unwrap();
    sync_paths(&fs, &host, "/srv", &[host.join("dir")], &|_| true).unwrap();
    assert!(outside.join("victim").exists());
}

#[test]
fn a_target_bound_from_the_watched_tree_itself_is_left_alone() {
    let t = tempfile::tempdir().unwrap();
    let (b, src) = (t.path().join("b"), t.path().join("src"));
    std::fs::create_dir_all(&src).unwrap();
    let fs = bundle(&b, &t.path().join("vol"), &src);
    std::fs::write(src.join("a.txt"), "same").unwrap();
    let report = sync_paths(&fs, &src, "/src", &[src.join("a.txt")], &|_| true).unwrap();
    assert_eq!(report.copied, 0);
    assert_eq!(std::fs::read_to_string(src.join("a.txt")).unwrap(), "same");
}

/// Collects what the watcher reports until `pred` holds (or 5 s pass).
async fn until(
    rx: &mut mpsc::UnboundedReceiver<PathBuf>,
    pred: impl Fn(&[PathBuf]) -> bool,
) -> Vec<PathBuf> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !pred(&seen) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(p)) => seen.push(p),
            _ => break,
        }
    }
    seen
}

#[tokio::test]
async fn the_watcher_sees_replacements_deletions_and_new_directories() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let file = d.join("stack.yaml");
    std::fs::write(&file, "a").unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watcher = Watcher::new(tx).unwrap();
    let tree = d.join("src");
    let mut set = WatchSet::default();
    set.files.insert(file.clone());
    set.trees.insert(tree.clone());
    watcher.set(&set).unwrap();

    // An editor's save: write a temporary file, rename it over.
    std::fs::write(d.join(".stack.yaml.tmp"), "b").unwrap();
    std::fs::rename(d.join(".stack.yaml.tmp"), &file).unwrap();
    let seen = until(&mut rx, |s| s.contains(&file)).await;
    assert!(seen.contains(&file), "rename not seen: {seen:?}");

    // Deleted, then created again.
    std::fs::remove_file(&file).unwrap();
    let seen = until(&mut rx, |s| s.contains(&file)).await;
    assert!(seen.contains(&file), "{seen:?}");
    std::fs::write(&file, "c").unwrap();
    let seen = until(&mut rx, |s| s.contains(&file)).await;
    assert!(seen.contains(&file), "{seen:?}");

    // The tree did not exist: its creation is seen, and once watched again
    // (as the session does after each reload), what is written in it.
    std::fs::create_dir(&tree).unwrap();
    let seen = until(&mut rx, |s| s.contains(&tree)).await;
    assert!(seen.contains(&tree), "{seen:?}");
    watcher.set(&set).unwrap();
    // A new directory's contents may be written before inotify watches it:
    // the directory itself is reported then, and syncing a directory copies
    // what is in it. Later writes in it are reported one by one.
    let deep = tree.join("deep");
    std::fs::create_dir(&deep).unwrap();
    let nested = deep.join("x.txt");
    std::fs::write(&nested, "x").unwrap();
    let seen = until(&mut rx, |s| s.contains(&deep)).await;
    assert!(seen.contains(&deep), "{seen:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::fs::write(&nested, "y").unwrap();
    let seen = until(&mut rx, |s| s.contains(&nested)).await;
    assert!(seen.contains(&nested), "{seen:?}");
}

/// Records syncs, with the number of paths in each.
#[derive(Default)]
struct Syncs(Vec<usize>);

impl Effects for Syncs {
    fn load(&mut self) -> Result<Snapshot, Vec<String>> {
        Err(vec!["not used".into()])
    }
    async fn up(&mut self, _: &stack_spec::Project) -> Result<Vec<String>, String> {
        Ok(vec![])
    }
    async fn sync(&mut self, _: &Trigger, paths: &[PathBuf]) -> Result<usize, String> {
        self.0.push(paths.len());
        Ok(paths.len())
    }
    async fn restart(&mut self, _: &[String]) -> Result<Vec<String>, String> {
        Ok(vec![])
    }
    async fn rebuild(
        &mut self,
        _: &stack_spec::Project,
        _: &[String],
    ) -> Result<Vec<String>, String> {
        Ok(vec![])
    }
    async fn exec(&mut self, _: &str, _: &[String]) -> Result<(), String> {
        Ok(())
    }
    fn watch(&mut self, _: &WatchSet) -> Result<(), String> {
        Ok(())
    }
    fn print(&mut self, _: &str) {}
}

#[tokio::test]
async fn five_hundred_files_written_at_once_are_one_batch() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let yaml = "services:\n  web:\n    image: busybox\n    develop:\n      watch:\n        - {path: ./src, action: sync, target: /app}\n";
    let mut options = stack_spec::LoadOptions::new(t.path()).with_content("stack.yaml", yaml);
    options.project_name = Some("wa-burst".into());
    let loaded = stack_spec::load(&options).unwrap();
    let snapshot = Snapshot {
        project: loaded.project,
        inputs: vec![],
        project_dir: t.path().to_owned(),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watcher = Watcher::new(tx).unwrap();
    let mut set = WatchSet::default();
    set.trees.insert(src.clone());
    watcher.set(&set).unwrap();
    // A quiet period longer than the writer's longest pause on a loaded
    // two-core machine.
    let mut session = Session::new(
        Syncs::default(),
        snapshot,
        vec![],
        Duration::from_millis(400),
    )
    .unwrap();
    let writer = tokio::task::spawn_blocking(move || {
        for i in 0..500 {
            std::fs::write(src.join(format!("f{i:03}.txt")), format!("{i}")).unwrap();
        }
    });
    let _ = tokio::time::timeout(Duration::from_secs(4), session.run(&mut rx)).await;
    writer.await.unwrap();
    drop(watcher);
    assert_eq!(session.effects().0, [500], "one batch with every file");
}
