//! Store, archive loads, layer unpack and overlay root filesystems, as root
//! against the real kernel. Needs Debian packages: python3, busybox-static, zstd.

mod common;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::process::Command;

use common::{TempRoot, fixtures, tree};
use stack_image::model::ImageConfigFile;
use stack_image::reference::Reference;
use stack_image::store::Store;

fn tar_dir(src: &std::path::Path, dest: &std::path::Path) {
    let st = Command::new("tar")
        .arg("-cf")
        .arg(dest)
        .arg("-C")
        .arg(src)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn docker_save_and_oci_archives_load_to_the_same_image() {
    stack_testing::require_root!();
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let docker = store
        .load_archive(&fixtures().join("busybox-docker.tar"))
        .unwrap();
    let oci = store
        .load_archive(&fixtures().join("busybox-oci.tar"))
        .unwrap();
    assert_eq!(docker.len(), 1);
    assert_eq!(oci.len(), 1);
    // Same config, so the same image id, although one layer is gzip and one plain.
    assert_eq!(docker[0].id, oci[0].id);
    assert_eq!(docker[0].tags, vec!["stack-test/busybox:docker"]);
    assert_eq!(oci[0].tags, vec!["busybox:latest"]);
    let id = store.resolve("busybox").unwrap();
    assert_eq!(id, docker[0].id);
    assert_eq!(store.resolve(&id.hex()[..12]).unwrap(), id);
    let cfg = store.inspect("stack-test/busybox:docker").unwrap();
    assert_eq!(cfg.config.config.cmd, Some(vec!["sh".to_owned()]));
    let ls = store.list().unwrap();
    assert_eq!(ls.len(), 1);
    assert_eq!(ls[0].repo_tags.len(), 2);
}

#[test]
fn gzip_compressed_oci_archive_loads() {
    stack_testing::require_root!();
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let gz = root.path().join("busybox-oci.tar.gz");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c {} > {}",
            fixtures().join("busybox-oci.tar").display(),
            gz.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let loaded = store.load_archive(&gz).unwrap();
    assert_eq!(loaded[0].tags, vec!["busybox:latest"]);
}

#[test]
fn multi_layer_image_has_whiteouts_opaque_dirs_and_links() {
    stack_testing::require_root!();
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let archive = root.path().join("multi.tar");
    tar_dir(&fixtures().join("multi-oci"), &archive);
    let loaded = store.load_archive(&archive).unwrap();
    assert_eq!(loaded[0].tags, vec!["multi:latest"]);
    let id = loaded[0].id.clone();
    let details = store.inspect("multi").unwrap();
    assert_eq!(details.layers.len(), 3);

    // The top layer as unpacked on disk: overlay whiteout and opaque marker.
    let top = store.layer_path(&details.layers[2]);
    let wh = fs::symlink_metadata(top.join("data/gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    let mut opq = [0u8; 8];
    let c = std::ffi::CString::new(top.join("opqdir").to_str().unwrap()).unwrap();
    let name = c"trusted.overlay.opaque";
    // SAFETY: valid C strings and buffer.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            name.as_ptr(),
            opq.as_mut_ptr().cast(),
            opq.len(),
        )
    };
    assert_eq!(&opq[..n as usize], b"y");
    assert_eq!(
        fs::metadata(top.join("data/hard")).unwrap().ino(),
        fs::metadata(top.join("data/orig")).unwrap().ino()
    );
    assert_eq!(
        fs::read_link(top.join("data/link")).unwrap().to_str(),
        Some("keep")
    );
    assert_eq!(
        fs::read_link(top.join("data/abs-link")).unwrap().to_str(),
        Some("/etc/motd")
    );
    assert!(
        fs::symlink_metadata(top.join("data/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let suid = fs::metadata(top.join("data/suid")).unwrap();
    assert_eq!(suid.permissions().mode() & 0o7777, 0o4755);
    assert_eq!((suid.uid(), suid.gid()), (1000, 1000));
    assert_eq!(suid.mtime(), 946684800);
    assert_eq!(
        fs::metadata(store.layer_path(&details.layers[1]).join("data"))
            .unwrap()
            .mtime(),
        946684800
    );
    let c = std::ffi::CString::new(top.join("data/attr").to_str().unwrap()).unwrap();
    let mut v = [0u8; 8];
    // SAFETY: valid C strings and buffer.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"user.stack".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    assert_eq!(&v[..n as usize], b"yes");

    // The merged view a container gets.
    let m = store.prepare_rootfs(&id, "multi-1").unwrap();
    let r = &m.path;
    assert!(!r.join("data/gone").exists());
    assert_eq!(fs::read_to_string(r.join("data/keep")).unwrap(), "keep\n");
    assert_eq!(fs::read_to_string(r.join("data/hard")).unwrap(), "orig\n");
    assert_eq!(fs::read_to_string(r.join("data/link")).unwrap(), "keep\n");
    assert_eq!(
        fs::read_to_string(r.join("etc/motd")).unwrap(),
        "layer three\n"
    );
    let mut opq_entries: Vec<_> = fs::read_dir(r.join("opqdir"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    opq_entries.sort();
    assert_eq!(opq_entries, vec!["new"]);
    assert!(r.join("bin/busybox").is_file());
    store.release_rootfs("multi-1").unwrap();
    assert!(!m.path.exists());
}

#[test]
fn containers_get_private_copy_on_write_roots() {
    stack_testing::require_root!();
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let id = store
        .load_archive(&fixtures().join("busybox-docker.tar"))
        .unwrap()[0]
        .id
        .clone();
    let a = store.prepare_rootfs(&id, "cow-a").unwrap();
    let b = store.prepare_rootfs(&id, "cow-b").unwrap();
    fs::write(a.path.join("etc/hostname"), "a\n").unwrap();
    fs::write(a.path.join("new-file"), "only a\n").unwrap();
    fs::remove_file(a.path.join("etc/group")).unwrap();
    assert_eq!(fs::read_to_string(b.path.join("etc/hostname")).unwrap(), "");
    assert!(!b.path.join("new-file").exists());
    assert!(b.path.join("etc/group").exists());
    // Writes land in a's upper dir; the shared layer is untouched.
    assert!(a.upper.join("new-file").is_file());
    let layer = store.layer_path(&store.inspect(id.as_str()).unwrap().layers[0]);
    assert_eq!(fs::read_to_string(layer.join("etc/hostname")).unwrap(), "");
    assert!(layer.join("etc/group").exists());
    // A program runs from the mounted root.
    let out = Command::new("chroot")
        .arg(&b.path)
        .args(["/bin/busybox", "echo", "hi"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    // Preparing again returns the existing mount.
    assert_eq!(store.prepare_rootfs(&id, "cow-a").unwrap().path, a.path);
    store.release_rootfs("cow-a").unwrap();
    store.release_rootfs("cow-b").unwrap();
    store.release_rootfs("cow-b").unwrap();
    assert!(tree(&store.dir().join("rootfs")).is_empty());
    assert!(store.prepare_rootfs(&id, "../escape").is_err());
}

#[test]
fn hostile_layers_are_refused_and_write_nothing() {
    stack_testing::require_root!();
    let root = TempRoot::new();
    let tmp = root.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let passwd_before = fs::read("/etc/passwd").unwrap();
    for (name, needle) in [
        ("dotdot", "'..'"),
        ("absolute", "absolute"),
        ("symlink-abs", "symlink"),
        ("symlink-rel", "symlink"),
        ("hardlink-dotdot", "hard link"),
        ("hardlink-abs", "hard link"),
        ("hardlink-through-symlink", "hard link"),
    ] {
        let dest = root.path().join(format!("layer-{name}"));
        let err = stack_image::unpack::unpack_layer(
            &fixtures().join(format!("hostile/{name}.tar")),
            &dest,
            &tmp,
            None,
        )
        .expect_err(name);
        let msg = err.to_string();
        assert!(
            msg.contains("refusing hostile layer") && msg.contains(needle),
            "{name}: {msg}"
        );
        assert!(!dest.exists(), "{name}: layer dir left behind");
        assert!(
            tree(&tmp).is_empty(),
            "{name}: temp files left: {:?}",
            tree(&tmp)
        );
    }
    for marker in [
        "/tmp/stack-hostile-absolute",
        "/tmp/stack-hostile-symlink-abs",
        "/tmp/stack-hostile-symlink-rel",
    ] {
        assert!(
            !std::path::Path::new(marker).exists(),
            "{marker} was written"
        );
    }
    assert!(!root.path().join("stack-hostile-dotdot").exists());
    assert_eq!(fs::read("/etc/passwd").unwrap(), passwd_before);
}

#[test]
fn an_image_with_a_hostile_layer_is_not_recorded() {
    stack_testing::require_root!();
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    // A docker save archive whose only layer is hostile.
    let dir = root.path().join("save");
    fs::create_dir(&dir).unwrap();
    let layer = fs::read(fixtures().join("hostile/symlink-abs.tar")).unwrap();
    let diff_id = stack_image::digest::Digest::of(&layer);
    fs::create_dir(dir.join("l")).unwrap();
    fs::write(dir.join("l/layer.tar"), &layer).unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    );
    fs::write(dir.join("config.json"), config).unwrap();
    fs::write(
        dir.join("manifest.json"),
        r#"[{"Config":"config.json","RepoTags":["evil:1"],"Layers":["l/layer.tar"]}]"#,
    )
    .unwrap();
    let archive = root.path().join("evil.tar");
    tar_dir(&dir, &archive);
    let err = store.load_archive(&archive).unwrap_err().to_string();
    assert!(err.contains("refusing hostile layer"), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert!(tree(&store.dir().join("layers")).is_empty());
    assert!(
        tree(&store.dir().join("tmp")).is_empty(),
        "{:?}",
        tree(&store.dir().join("tmp"))
    );
}

#[test]
fn tag_remove_and_prune_keep_what_is_in_use() {
    stack_testing::require_root!();
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let id = store
        .load_archive(&fixtures().join("busybox-docker.tar"))
        .unwrap()[0]
        .id
        .clone();
    let target = Reference::parse("localhost/copy:v1").unwrap();
    assert_eq!(store.tag("stack-test/busybox:docker", &target).unwrap(), id);
    // Removing one of two tags only untags.
    assert_eq!(store.remove("stack-test/busybox:docker").unwrap(), None);
    assert_eq!(store.resolve("localhost/copy:v1").unwrap(), id);
    // A mounted image survives prune --all and rm.
    store.prepare_rootfs(&id, "user-1").unwrap();
    let report = store.prune(&HashSet::new(), true).unwrap();
    assert!(report.images.is_empty());
    assert!(
        store
            .remove(id.as_str())
            .unwrap_err()
            .to_string()
            .contains("user-1")
    );
    store.release_rootfs("user-1").unwrap();
    // Engine-declared use also protects it.
    let in_use: HashSet<_> = [id.clone()].into();
    assert!(store.prune(&in_use, true).unwrap().images.is_empty());
    // Untagged and unused: gone, with its blobs and layer.
    let report = store.prune(&HashSet::new(), false).unwrap();
    assert!(
        report.images.is_empty(),
        "tagged images survive a plain prune"
    );
    let report = store.prune(&HashSet::new(), true).unwrap();
    assert_eq!(report.images, vec![id]);
    assert_eq!(report.layers, 1);
    assert!(tree(&store.dir().join("blobs/sha256")).is_empty());
    assert!(tree(&store.dir().join("layers")).is_empty());
}

#[test]
fn config_round_trips_docker_fields() {
    stack_testing::require_root!();
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let id = store
        .load_archive(&fixtures().join("multi-docker.tar"))
        .unwrap()[0]
        .id
        .clone();
    let cfg: ImageConfigFile = store.config(&id).unwrap();
    assert_eq!(
        cfg.config.entrypoint,
        Some(vec!["/bin/sh".to_owned(), "-c".to_owned()])
    );
    assert_eq!(cfg.config.user.as_deref(), Some("app"));
    assert_eq!(cfg.config.healthcheck.as_ref().unwrap().retries, Some(2));
    let p = stack_image::merge::resolve_process(&cfg.config, &Default::default()).unwrap();
    assert_eq!(p.args, vec!["/bin/sh", "-c", "cat /etc/motd"]);
    // The rootfs runs what the image says.
    let m = store.prepare_rootfs(&id, "cfg-1").unwrap();
    let out = Command::new("chroot")
        .arg(&m.path)
        .args(&p.args)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "layer three\n");
    store.release_rootfs("cfg-1").unwrap();
}

#[test]
fn an_oci_archive_with_a_tampered_blob_is_refused() {
    stack_testing::require_root!();
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let layout = root.path().join("layout");
    let st = Command::new("cp")
        .arg("-a")
        .arg(fixtures().join("busybox-oci"))
        .arg(&layout)
        .status()
        .unwrap();
    assert!(st.success());
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let path = layout.join("blobs/sha256").join(manifest);
    let mut bytes = fs::read(&path).unwrap();
    bytes.push(b' ');
    fs::write(&path, bytes).unwrap();
    let archive = root.path().join("tampered.tar");
    tar_dir(&layout, &archive);
    let err = store.load_archive(&archive).unwrap_err().to_string();
    assert!(err.contains("has digest"), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert!(tree(&store.dir().join("blobs/sha256")).is_empty());
    assert!(tree(&store.dir().join("tmp")).is_empty());
    // Not an image at all.
    let junk = root.path().join("junk.tar");
    tar_dir(&root.path().join("layout/blobs"), &junk);
    assert!(
        store
            .load_archive(&junk)
            .unwrap_err()
            .to_string()
            .contains("neither")
    );
}
