//! `stack image build` for real, as root: steps run in containers on overlay
//! roots, layers land in the store, and the image runs.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;

use common::Env;

fn build(env: &Env, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["image", "build"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    env.stack(&args)
}

fn ok(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "build failed:\n{stdout}{stderr}");
    (stdout.trim().to_owned(), stderr)
}

fn run(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["container", "run", "--rm", "--network", "none"];
    all.extend_from_slice(args);
    let out = env.stack(&all);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn context(env: &Env, dockerfile: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let ctx = env.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    for (name, content) in files {
        let p = ctx.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    ctx
}

#[test]
fn multi_stage_image_runs_and_prints() {
    let env = Env::new("bld-multi", 181);
    let ctx = context(
        &env,
        "ARG GREETING=hello\n\
         FROM busybox AS builder\n\
         ARG GREETING\n\
         WORKDIR /src\n\
         COPY app.sh .\n\
         RUN sed \"s/@GREETING@/${GREETING}/\" app.sh > app && chmod 755 app\n\
         FROM busybox\n\
         COPY --from=builder /src/app /usr/local/bin/app\n\
         COPY <<EOF /etc/motd\nbuilt by stack\nEOF\n\
         ENV WHO=world\n\
         CMD [\"/usr/local/bin/app\"]\n",
        &[(
            "app.sh",
            "#!/bin/sh\necho \"@GREETING@ $WHO\"\ncat /etc/motd\n",
        )],
    );
    let (id, log) = ok(&build(
        &env,
        &ctx,
        &["-t", "app:1", "--build-arg", "GREETING=bonjour"],
    ));
    assert!(id.starts_with("sha256:"), "{id}");
    assert!(log.contains("[builder 3/6] RUN sed"), "{log}");
    assert_eq!(run(&env, &["app:1"]), "bonjour world\nbuilt by stack\n");
    // The builder's files are not in the final image.
    assert_eq!(
        run(
            &env,
            &["app:1", "sh", "-c", "test -e /src/app.sh || echo absent"]
        ),
        "absent\n"
    );
}

#[test]
fn cache_rebuild_is_all_cached_and_an_edit_reruns_from_its_copy() {
    let env = Env::new("bld-cache", 182);
    let ctx = context(
        &env,
        "FROM busybox\n\
         RUN echo base > /base\n\
         COPY a.txt /a.txt\n\
         COPY b.txt /b.txt\n\
         RUN cat /a.txt /b.txt > /both\n",
        &[("a.txt", "a1\n"), ("b.txt", "b1\n")],
    );
    let (first, log) = ok(&build(&env, &ctx, &["-t", "c:1"]));
    assert!(log.contains("(4 steps run, 0 cached)"), "{log}");
    let (second, log) = ok(&build(&env, &ctx, &["-t", "c:1"]));
    assert_eq!(first, second, "a no-op rebuild gives the same image");
    assert!(log.contains("(0 steps run, 4 cached)"), "{log}");

    // An mtime-only change is no change.
    let b = ctx.join("b.txt");
    fs::write(&b, "b1\n").unwrap();
    let (third, _) = ok(&build(&env, &ctx, &["-t", "c:1"]));
    assert_eq!(first, third);

    fs::write(&b, "b2\n").unwrap();
    let (edited, log) = ok(&build(&env, &ctx, &["-t", "c:1"]));
    assert_ne!(first, edited);
    assert!(log.contains("(2 steps run, 2 cached)"), "{log}");
    assert!(
        log.contains("#3 CACHED") && !log.contains("#4 CACHED"),
        "{log}"
    );
    assert_eq!(run(&env, &["c:1", "cat", "/both"]), "a1\nb2\n");

    let (_, log) = ok(&build(&env, &ctx, &["-t", "c:1", "--no-cache"]));
    assert!(log.contains("(4 steps run, 0 cached)"), "{log}");
}

#[test]
fn deleted_files_stay_deleted_and_links_and_modes_survive() {
    let env = Env::new("bld-layers", 183);
    let ctx = context(
        &env,
        "FROM busybox\n\
         RUN mkdir -p /d/sub && echo x > /d/gone && echo y > /d/sub/f && echo z > /keep \
             && ln /keep /keep-link && chmod 4711 /keep && rm /bin/wget\n\
         RUN rm /d/gone && rm -r /d/sub && mkdir /d/sub && echo new > /d/sub/g\n\
         RUN cat /etc/resolv.conf > /seen-resolv\n",
        &[],
    );
    ok(&build(&env, &ctx, &["-t", "l:1"]));
    let out = run(
        &env,
        &[
            "l:1",
            "sh",
            "-c",
            "ls /d; ls /d/sub; test -e /bin/wget || echo no-wget; stat -c '%a %h' /keep; \
             [ $(stat -c %i /keep) = $(stat -c %i /keep-link) ] && echo linked",
        ],
    );
    assert_eq!(out, "sub\ng\nno-wget\n4711 2\nlinked\n");
    // RUN steps resolve names as the host does; the image keeps its own file.
    let host = fs::read_to_string("/etc/resolv.conf").unwrap();
    assert_eq!(run(&env, &["l:1", "cat", "/seen-resolv"]), host);
    assert_ne!(run(&env, &["l:1", "cat", "/etc/resolv.conf"]), host);
}

#[test]
fn copy_cannot_leave_the_context() {
    let env = Env::new("bld-safe", 184);
    let ctx = context(&env, "FROM busybox\nCOPY ../outside /x\n", &[]);
    fs::write(env.dir.path().join("outside"), "secret").unwrap();
    let out = build(&env, &ctx, &["-t", "s:1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Dockerfile:2:1: COPY: \"../outside\" is outside the build context"),
        "{err}"
    );

    fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY link /x\n").unwrap();
    std::os::unix::fs::symlink(env.dir.path().join("outside"), ctx.join("link")).unwrap();
    let out = build(&env, &ctx, &["-t", "s:1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("\"link\" is a symlink to"), "{err}");
    assert!(err.contains("outside the build context"), "{err}");

    // A link inside a copied directory is copied as a link, never followed.
    fs::remove_file(ctx.join("link")).unwrap();
    fs::create_dir(ctx.join("dir")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", ctx.join("dir/l")).unwrap();
    fs::write(ctx.join(".dockerignore"), "secret.txt\n").unwrap();
    fs::write(ctx.join("secret.txt"), "no").unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY dir /dir\n").unwrap();
    ok(&build(&env, &ctx, &["-t", "s:2"]));
    assert_eq!(run(&env, &["s:2", "readlink", "/dir/l"]), "/etc/shadow\n");

    fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY secret.txt /\n").unwrap();
    let out = build(&env, &ctx, &["-t", "s:3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("excluded by .dockerignore"), "{err}");
}

#[test]
fn a_failing_step_prints_its_output_and_line() {
    let env = Env::new("bld-fail", 185);
    let ctx = context(
        &env,
        "FROM busybox\n\nRUN echo about to fail; exit 3\n",
        &[],
    );
    let out = build(&env, &ctx, &["-t", "f:1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Dockerfile:3:1: `RUN echo about to fail; exit 3` failed with exit code 3"),
        "{err}"
    );
    assert!(err.contains("about to fail"), "{err}");
}

#[test]
fn stack_build_builds_the_services_with_build_sections() {
    let env = Env::new("bld-svc", 186);
    context(
        &env,
        "FROM busybox\nARG WHAT\nRUN echo \"$WHAT\" > /what\nCMD [\"cat\", \"/what\"]\n",
        &[],
    );
    env.write(
        "services:\n\
         \x20 api:\n\
         \x20   build:\n\
         \x20     context: ctx\n\
         \x20     args: {WHAT: api}\n\
         \x20     labels: {team: web}\n\
         \x20 worker:\n\
         \x20   image: worker:dev\n\
         \x20   build:\n\
         \x20     context: ctx\n\
         \x20     dockerfile_inline: |\n\
         \x20       FROM busybox\n\
         \x20       CMD [\"echo\", \"inline\"]\n\
         \x20 db:\n\
         \x20   image: busybox\n",
    );
    let log = env.ok(&["build"]);
    assert!(log.contains("building api as bld-svc-api"), "{log}");
    assert!(log.contains("building worker as worker:dev"), "{log}");
    assert_eq!(run(&env, &["bld-svc-api"]), "api\n");
    assert_eq!(run(&env, &["worker:dev"]), "inline\n");
    let inspect = env.stack(&["image", "inspect", "bld-svc-api"]);
    assert!(String::from_utf8_lossy(&inspect.stdout).contains("\"team\": \"web\""));
    // Nothing changed: nothing runs again.
    let log = env.ok(&["build", "api"]);
    assert!(log.contains("(0 steps run, 1 cached)"), "{log}");
}

/// A context for service `name` whose container writes `/msg` (copied from
/// the context) into `/out/<name>` and stays up.
fn service_context(env: &Env, name: &str, msg: &str) -> std::path::PathBuf {
    let ctx = env.dir.path().join(name);
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM busybox\nRUN echo built > /built\nCOPY msg /msg\n\
             CMD [\"sh\", \"-c\", \"cat /msg > /out/{name}; trap 'exit 0' TERM; while :; do sleep 0.1; done\"]\n"
        ),
    )
    .unwrap();
    fs::write(ctx.join("msg"), msg).unwrap();
    ctx
}

fn read_when(path: &Path, want: &str) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        last = fs::read_to_string(path).unwrap_or_default();
        if last.trim() == want {
            return last;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{}: {last:?}, not {want:?}", path.display());
}

#[test]
fn up_builds_what_is_missing_and_up_build_only_what_changed() {
    let env = Env::new("bld-up", 187);
    let out = env.dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let a = service_context(&env, "a", "a1");
    service_context(&env, "b", "b1");
    env.write(&format!(
        "services:\n\
         \x20 a:\n\
         \x20   build: ./a\n\
         \x20   volumes: [\"{out}:/out\"]\n\
         \x20 b:\n\
         \x20   image: bld-up-b:dev\n\
         \x20   build: {{context: ./b}}\n\
         \x20   volumes: [\"{out}:/out\"]\n\
         \x20 db:\n\
         \x20   image: busybox\n\
         \x20   command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]\n",
        out = out.display()
    ));
    let plan = env.ok(&["up", "--dry-run"]);
    assert!(
        plan.contains("build image bld-up-a (build: image not found)")
            && plan.contains("build image bld-up-b:dev (build: image not found)"),
        "{plan}"
    );
    assert!(
        !plan.contains("pull"),
        "an image that is built is not pulled:\n{plan}"
    );

    let log = env.ok(&["up", "-d"]);
    assert!(log.contains("Image bld-up-a Built"), "{log}");
    assert!(log.contains("Image bld-up-b:dev Built"), "{log}");
    read_when(&out.join("a"), "a1");
    read_when(&out.join("b"), "b1");

    // Nothing changed: nothing is built or recreated, with or without --build.
    let idle = |log: &str| {
        !log.contains(" Built") && !log.contains(" Created") && !log.contains(" Recreated")
    };
    let log = env.ok(&["up", "-d"]);
    assert!(idle(&log), "{log}");
    let log = env.ok(&["up", "-d", "--build"]);
    assert!(idle(&log), "{log}");

    // One service's source changes: only it is rebuilt and recreated.
    let before = env.containers();
    fs::write(a.join("msg"), "a2").unwrap();
    let log = env.ok(&["up", "-d"]);
    assert!(idle(&log), "without --build: {log}");
    let plan = env.ok(&["up", "--dry-run", "--build"]);
    assert!(
        plan.contains("build image bld-up-a (build: context changed)"),
        "{plan}"
    );
    assert!(
        plan.contains("recreate container bld-up-a-1 (image rebuilt)"),
        "{plan}"
    );
    let log = env.ok(&["up", "-d", "--build"]);
    assert!(log.contains("Image bld-up-a Built"), "{log}");
    assert!(
        log.contains("Container bld-up-a-1 Recreated image rebuilt"),
        "{log}"
    );
    assert!(!log.contains("bld-up-b"), "b was touched:\n{log}");
    assert!(!log.contains("bld-up-db"), "db was touched:\n{log}");
    read_when(&out.join("a"), "a2");
    let after = env.containers();
    let id = |list: &[(String, String, Option<i64>)], n: &str| {
        list.iter().find(|c| c.0 == n).unwrap().1.clone()
    };
    assert_ne!(id(&before, "bld-up-a-1"), id(&after, "bld-up-a-1"));
    assert_eq!(id(&before, "bld-up-b-1"), id(&after, "bld-up-b-1"));
    assert_eq!(id(&before, "bld-up-db-1"), id(&after, "bld-up-db-1"));

    // `stack build` records what it built: `up --build` then has nothing to do.
    fs::write(a.join("msg"), "a3").unwrap();
    env.ok(&["build", "a"]);
    let plan = env.ok(&["up", "--dry-run", "--build"]);
    assert!(!plan.contains("build image"), "{plan}");
    // `--no-build` never builds, even a missing image.
    env.ok(&["down"]);
    let rm = env.stack(&["image", "rm", "bld-up-b:dev"]);
    assert!(rm.status.success(), "{rm:?}");
    let plan = env.ok(&["up", "--dry-run", "--no-build"]);
    assert!(!plan.contains("build image"), "{plan}");
}

#[test]
fn cache_mounts_persist_tmpfs_vanishes_and_chown_takes_names() {
    let env = Env::new("bld-mnt", 188);
    let ctx = context(
        &env,
        "FROM busybox\n\
         ARG ROUND\n\
         RUN --mount=type=cache,target=/cache,id=counter --mount=type=tmpfs,target=/scratch \\\n\
         \x20   echo \"$ROUND\" >> /cache/log && wc -l < /cache/log > /count && \\\n\
         \x20   echo tmp > /scratch/f && cat /scratch/f > /seen\n\
         COPY --link --chown=nobody:nogroup f /f\n",
        &[("f", "x")],
    );
    ok(&build(&env, &ctx, &["-t", "m:1", "--build-arg", "ROUND=1"]));
    assert_eq!(run(&env, &["m:1", "cat", "/count", "/seen"]), "1\ntmp\n");
    // Another step key (ROUND), the same cache: it kept the first line.
    ok(&build(&env, &ctx, &["-t", "m:2", "--build-arg", "ROUND=2"]));
    assert_eq!(run(&env, &["m:2", "cat", "/count"]), "2\n");
    // Neither mount is part of the image.
    assert_eq!(
        run(
            &env,
            &[
                "m:2",
                "sh",
                "-c",
                "find /cache /scratch -mindepth 1 2>/dev/null | wc -l; stat -c %u:%g /f"
            ]
        ),
        "0\n65534:65534\n"
    );
    // An image as --from: files straight from the store's busybox.
    let from = context(
        &env,
        "FROM scratch\nCOPY --from=busybox /bin/busybox /bin/busybox\nCOPY --from=m:2 /count /count\nCMD [\"/bin/busybox\", \"cat\", \"/count\"]\n",
        &[],
    );
    ok(&build(&env, &from, &["-t", "m:from"]));
    assert_eq!(run(&env, &["m:from"]), "2\n");
    let bad = context(&env, "FROM busybox\nCOPY --chown=nosuchuser f /f\n", &[]);
    let out = build(&env, &bad, &["-t", "m:3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Dockerfile:2:1: COPY: --chown=nosuchuser: user \"nosuchuser\" not found"),
        "{err}"
    );
}

#[test]
fn builder_prune_empties_the_cache_and_keeps_images() {
    let env = Env::new("bld-prune", 189);
    let ctx = context(
        &env,
        "FROM busybox\nRUN --mount=type=cache,target=/c echo x > /c/f && echo built > /b\n",
        &[],
    );
    ok(&build(&env, &ctx, &["-t", "p:1"]));
    let cache = env.root().join("build-cache");
    assert!(cache.join("mounts").read_dir().unwrap().count() == 1);
    let out = env.stack(&["builder", "prune", "-f"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Deleted 1 cache entries, 1 cache mounts"),
        "{text}"
    );
    assert_eq!(cache.join("mounts").read_dir().unwrap().count(), 0);
    // The image is untouched and runs; a rebuild runs its step again.
    assert_eq!(run(&env, &["p:1", "cat", "/b"]), "built\n");
    let (_, log) = ok(&build(&env, &ctx, &["-t", "p:1"]));
    assert!(log.contains("(1 steps run, 0 cached)"), "{log}");
}

#[test]
fn add_unpacks_a_local_tar_archive() {
    let env = Env::new("bld-add", 190);
    let ctx = context(
        &env,
        "FROM busybox\nADD app.tar.gz /opt/app/\nADD plain.txt /opt/plain.txt\n",
        &[
            ("plain.txt", "plain\n"),
            ("src/a.txt", "from the archive\n"),
        ],
    );
    let status = std::process::Command::new("tar")
        .args(["-C", ctx.join("src").to_str().unwrap(), "-czf"])
        .arg(ctx.join("app.tar.gz"))
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    ok(&build(&env, &ctx, &["-t", "add:1"]));
    assert_eq!(
        run(&env, &["add:1", "cat", "/opt/app/a.txt", "/opt/plain.txt"]),
        "from the archive\nplain\n"
    );
}

#[test]
fn copying_a_directory_leaves_out_what_dockerignore_ignores() {
    let env = Env::new("bld-ign", 191);
    let ctx = context(
        &env,
        "FROM busybox\nCOPY . /c\n",
        &[
            (".dockerignore", "secret\n**/*.log\n!app/keep.log\n"),
            ("secret", "s"),
            ("app/a.txt", "a"),
            ("app/x.log", "x"),
            ("app/keep.log", "k"),
        ],
    );
    ok(&build(&env, &ctx, &["-t", "ign:1"]));
    assert_eq!(
        run(
            &env,
            &["ign:1", "sh", "-c", "cd /c && find . -type f | sort"]
        ),
        "./.dockerignore\n./Dockerfile\n./app/a.txt\n./app/keep.log\n"
    );
}
