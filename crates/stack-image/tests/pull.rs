//! Pulls from a real registry on loopback (Debian `docker-registry`), images
//! pushed with Debian's `skopeo`. Token auth uses a token endpoint served by
//! the test and `openssl` for signing.

mod common;

use std::process::Command;

use common::registry::{Fault, Proxy, Registry, TOKEN_PASSWORD, TOKEN_USER};
use common::{TempRoot, fixtures, tree};
use stack_image::model::Platform;
use stack_image::progress::ProgressMode;
use stack_image::pull::{PullError, PullOptions};
use stack_image::reference::Reference;
use stack_image::registry_config::RegistriesConfig;
use stack_image::store::Store;

fn opts() -> PullOptions {
    PullOptions {
        progress: ProgressMode::Quiet,
        docker_config: None,
        ..Default::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn no_partials(store: &Store) {
    let left = tree(&store.dir().join("tmp"));
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn pull_runs_and_a_second_pull_transfers_nothing() {
    stack_testing::require_root!();
    let reg = Registry::start();
    reg.push(&fixtures().join("busybox-oci"), "busybox:latest", false);
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let rt = runtime();
    let r = Reference::parse(&format!("{}/busybox:latest", reg.host())).unwrap();
    let first = rt.block_on(store.pull(&r, &opts())).unwrap();
    assert_eq!(first.blobs_fetched, 2, "config and one layer");
    let m = store.prepare_rootfs(&first.id, "pulled-1").unwrap();
    let out = Command::new("chroot")
        .arg(&m.path)
        .args(["/bin/busybox", "echo", "hi"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    store.release_rootfs("pulled-1").unwrap();

    let second = rt.block_on(store.pull(&r, &opts())).unwrap();
    assert_eq!((second.blobs_fetched, second.bytes_fetched), (0, 0));
    assert_eq!(second.id, first.id);
    // By digest, as recorded in RepoDigests.
    let by_digest =
        Reference::parse(&format!("{}/busybox@{}", reg.host(), first.manifest)).unwrap();
    assert_eq!(
        rt.block_on(store.pull(&by_digest, &opts())).unwrap().id,
        first.id
    );
    assert_eq!(store.resolve(&by_digest.to_string()).unwrap(), first.id);
    assert_eq!(
        store.resolve(&format!("{}/busybox", reg.host())).unwrap(),
        first.id
    );
    no_partials(&store);
}

#[test]
fn manifest_lists_resolve_to_the_requested_platform() {
    stack_testing::require_root!();
    let reg = Registry::start();
    reg.push(&fixtures().join("index-oci"), "multiarch:latest", true);
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let rt = runtime();
    let r = Reference::parse(&format!("{}/multiarch", reg.host())).unwrap();
    let amd = rt
        .block_on(store.pull(
            &r,
            &PullOptions {
                platform: Platform::parse("linux/amd64"),
                ..opts()
            },
        ))
        .unwrap();
    assert_eq!(store.config(&amd.id).unwrap().architecture, "amd64");
    assert_eq!(store.inspect(amd.id.as_str()).unwrap().layers.len(), 3);
    let arm = rt
        .block_on(store.pull(
            &r,
            &PullOptions {
                platform: Platform::parse("linux/arm64"),
                ..opts()
            },
        ))
        .unwrap();
    let cfg = store.config(&arm.id).unwrap();
    assert_eq!(
        (cfg.architecture.as_str(), cfg.config.cmd.clone()),
        ("arm64", Some(vec!["echo".into(), "arm64".into()]))
    );
    // The base layer is shared: only the arm64 config was new.
    assert_eq!(arm.blobs_fetched, 1);
    let err = rt
        .block_on(store.pull(
            &r,
            &PullOptions {
                platform: Platform::parse("linux/s390x"),
                ..opts()
            },
        ))
        .unwrap_err();
    assert!(matches!(err, PullError::NoPlatform { .. }), "{err}");
}

#[test]
fn an_interrupted_pull_resumes_and_leaves_a_consistent_store() {
    stack_testing::require_root!();
    let reg = Registry::start();
    reg.push(&fixtures().join("busybox-oci"), "busybox:latest", false);
    let proxy = Proxy::start(reg.port, 4 * 1024 * 1024);
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let rt = runtime();
    let r = Reference::parse(&format!("127.0.0.1:{}/busybox:latest", proxy.port)).unwrap();
    proxy.set(Fault::CutAfter(400_000));
    let err = rt.block_on(store.pull(&r, &opts())).unwrap_err();
    eprintln!("interrupted pull: {err}");
    assert!(
        store.list().unwrap().is_empty(),
        "no image recorded from a failed pull"
    );
    let layer = store.dir().join("layers");
    assert!(
        tree(&layer).is_empty(),
        "no layer unpacked from a partial blob"
    );
    let partials = tree(&store.dir().join("tmp"));
    assert_eq!(partials.len(), 1, "{partials:?}");
    let partial_len = std::fs::metadata(store.dir().join("tmp").join(&partials[0]))
        .unwrap()
        .len();
    assert!(
        partial_len > 100_000,
        "partial download kept ({partial_len} bytes)"
    );

    proxy.set(Fault::None);
    let report = rt.block_on(store.pull(&r, &opts())).unwrap();
    let layer_size = store.inspect(report.id.as_str()).unwrap().size;
    assert_eq!(
        report.blobs_fetched, 1,
        "config was kept; the layer resumed"
    );
    assert!(
        report.bytes_fetched <= layer_size - partial_len,
        "resumed: fetched {} of {layer_size} bytes",
        report.bytes_fetched
    );
    let m = store.prepare_rootfs(&report.id, "resumed").unwrap();
    assert!(m.path.join("bin/busybox").is_file());
    store.release_rootfs("resumed").unwrap();
    no_partials(&store);
}

#[test]
fn a_corrupted_blob_is_refused_and_nothing_half_written_remains() {
    stack_testing::require_root!();
    let reg = Registry::start();
    reg.push(&fixtures().join("busybox-oci"), "busybox:latest", false);
    let proxy = Proxy::start(reg.port, 64 * 1024 * 1024);
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let rt = runtime();
    let r = Reference::parse(&format!("127.0.0.1:{}/busybox:latest", proxy.port)).unwrap();
    proxy.set(Fault::CorruptAt(600_000));
    let err = rt.block_on(store.pull(&r, &opts())).unwrap_err();
    assert!(err.to_string().contains("digest"), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert!(tree(&store.dir().join("layers")).is_empty());
    no_partials(&store);
    // Only verified blobs (manifest, config) are in the store.
    for name in tree(&store.dir().join("blobs/sha256")) {
        let d = stack_image::digest::Digest::parse(&format!("sha256:{name}")).unwrap();
        store.read_blob(&d).unwrap();
    }
}

#[test]
fn token_auth_registry_with_docker_config_credentials() {
    stack_testing::require_root!();
    let reg = Registry::start_with_token_auth();
    reg.push(&fixtures().join("busybox-oci"), "team/busybox:1", false);
    let token = reg.token.as_ref().unwrap();
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let rt = runtime();
    let r = Reference::parse(&format!("{}/team/busybox:1", reg.host())).unwrap();

    // Anonymous: the token endpoint refuses, so the pull fails.
    let refused_before = token.refused.load(std::sync::atomic::Ordering::Relaxed);
    let err = rt.block_on(store.pull(&r, &opts())).unwrap_err();
    assert!(matches!(err, PullError::Registry { .. }), "{err}");
    assert!(token.refused.load(std::sync::atomic::Ordering::Relaxed) > refused_before);

    // Credentials from a docker config file.
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.json");
    use base64::Engine as _;
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_USER}:{TOKEN_PASSWORD}"));
    std::fs::write(
        &cfg,
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let issued_before = token.issued.load(std::sync::atomic::Ordering::Relaxed);
    let report = rt
        .block_on(store.pull(
            &r,
            &PullOptions {
                docker_config: Some(cfg),
                ..opts()
            },
        ))
        .unwrap();
    assert!(
        token.issued.load(std::sync::atomic::Ordering::Relaxed) > issued_before,
        "bearer flow used"
    );
    assert_eq!(report.blobs_fetched, 2);
    assert_eq!(store.resolve(&r.to_string()).unwrap(), report.id);
}

#[test]
fn docker_hub_names_are_served_by_a_configured_mirror() {
    stack_testing::require_root!();
    let reg = Registry::start();
    reg.push(
        &fixtures().join("busybox-oci"),
        "library/busybox:latest",
        false,
    );
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let rt = runtime();
    let registries = RegistriesConfig {
        // The first mirror is down; the second answers. Docker Hub is never asked.
        registry_mirrors: vec![
            "http://127.0.0.1:1".into(),
            format!("http://{}", reg.host()),
        ],
        ..Default::default()
    };
    let report = rt
        .block_on(store.pull(
            &Reference::parse("busybox").unwrap(),
            &PullOptions {
                registries,
                ..opts()
            },
        ))
        .unwrap();
    assert_eq!(report.source, reg.host());
    assert_eq!(store.resolve("busybox:latest").unwrap(), report.id);
    assert_eq!(store.list().unwrap()[0].repo_tags, vec!["busybox:latest"]);
}

#[test]
fn concurrent_pulls_of_one_image_share_the_work() {
    stack_testing::require_root!();
    let reg = Registry::start();
    reg.push(&fixtures().join("multi-oci"), "multi:latest", false);
    let root = TempRoot::new();
    let store = Store::open(root.path()).unwrap();
    let rt = runtime();
    let r = Reference::parse(&format!("{}/multi:latest", reg.host())).unwrap();
    let o = opts();
    let (a, b) = rt.block_on(async { tokio::join!(store.pull(&r, &o), store.pull(&r, &o)) });
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.id, b.id);
    // Each layer blob was transferred once in total (config may race: it is tiny).
    assert!(
        a.blobs_fetched + b.blobs_fetched <= 5,
        "{} + {}",
        a.blobs_fetched,
        b.blobs_fetched
    );
    assert_eq!(
        tree(&store.dir().join("layers"))
            .iter()
            .filter(|p| !p.contains('/'))
            .count(),
        3
    );
    no_partials(&store);
}
