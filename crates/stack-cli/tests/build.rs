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
    stack_testing::require_root!();
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
    stack_testing::require_root!();
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
    stack_testing::require_root!();
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
    // RUN steps resolve names through the build network's DNS (at its
    // gateway, the first address of the build pool); the image keeps its
    // own file.
    let seen = run(&env, &["l:1", "cat", "/seen-resolv"]);
    assert!(seen.starts_with("nameserver 10.219.183.1\n"), "{seen}");
    assert_ne!(run(&env, &["l:1", "cat", "/etc/resolv.conf"]), seen);
}

#[test]
fn copy_cannot_leave_the_context() {
    stack_testing::require_root!();
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
    stack_testing::require_root!();
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
    stack_testing::require_root!();
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
    stack_testing::require_root!();
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
    // `--no-build` never builds: with an image only a build makes missing,
    // `up` is refused before anything is made, naming service and image.
    env.ok(&["down"]);
    let rm = env.stack(&["image", "rm", "bld-up-a"]);
    assert!(rm.status.success(), "{rm:?}");
    let file = env.file();
    let file = file.to_str().unwrap();
    for args in [&["up", "--dry-run"][..], &["up", "-d"]] {
        let mut args = args.to_vec();
        args.extend(["--no-build", "--file", file, "-p", &env.project]);
        let up = env.stack(&args);
        let err = String::from_utf8_lossy(&up.stderr);
        assert!(!up.status.success(), "{args:?} went ahead:\n{err}");
        assert!(
            err.contains("service a: image bld-up-a is missing and --no-build forbids building it"),
            "{err}"
        );
    }
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    let made: Vec<String> = common::leaks::leaks(&env)
        .into_iter()
        .filter(|l| {
            ["link ", "nft ", "mount ", "cgroup "]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .collect();
    assert!(made.is_empty(), "made before the refusal: {made:#?}");
}

#[test]
fn cache_mounts_persist_tmpfs_vanishes_and_chown_takes_names() {
    stack_testing::require_root!();
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
    stack_testing::require_root!();
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
fn image_rm_and_prune_keep_the_layers_the_step_cache_names() {
    let env = Env::new("bld-gc", 192);
    let ctx = context(
        &env,
        "FROM busybox AS b\nRUN echo one > /one\n\
         FROM busybox\nCOPY --from=b /one /one\nRUN cat /one > /two\n",
        &[],
    );
    let (_, log) = ok(&build(&env, &ctx, &["-t", "g:1"]));
    assert!(log.contains("(3 steps run, 0 cached)"), "{log}");
    // The image goes, and with it every layer no image and no cache entry
    // names; the stage `b` layer is in no image at all.
    let rm = env.stack(&["image", "rm", "g:1"]);
    assert!(rm.status.success(), "{rm:?}");
    let prune = env.stack(&["image", "prune"]);
    assert!(prune.status.success(), "{prune:?}");
    let (_, log) = ok(&build(&env, &ctx, &["-t", "g:1"]));
    assert!(log.contains("(0 steps run, 3 cached)"), "{log}");
    assert_eq!(run(&env, &["g:1", "cat", "/two"]), "one\n");
    // `builder prune` drops the entries and what only they kept: the next
    // build runs every step again, and succeeds.
    let out = env.stack(&["builder", "prune", "-f"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Deleted 3 cache entries"), "{text}");
    let rm = env.stack(&["image", "rm", "g:1"]);
    assert!(rm.status.success(), "{rm:?}");
    let (_, log) = ok(&build(&env, &ctx, &["-t", "g:1"]));
    assert!(log.contains("(3 steps run, 0 cached)"), "{log}");
    assert_eq!(run(&env, &["g:1", "cat", "/two"]), "one\n");
}

#[test]
fn add_unpacks_a_local_tar_archive() {
    stack_testing::require_root!();
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
    stack_testing::require_root!();
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

#[test]
fn bind_and_secret_mounts_show_files_for_one_step_only() {
    stack_testing::require_root!();
    let env = Env::new("bld-bind", 196);
    let ctx = context(
        &env,
        "FROM busybox AS tools\n\
         RUN echo tool > /tool\n\
         FROM busybox\n\
         RUN --mount=type=bind,target=/src --mount=type=bind,from=tools,source=/tool,target=/t/tool \\\n\
         \x20   cat /src/data /t/tool > /out && \\\n\
         \x20   (test -e /src/hidden && echo hidden-seen || echo hidden-absent) >> /out && \\\n\
         \x20   (touch /src/new 2>/dev/null && echo writable || echo read-only) >> /out\n\
         RUN --mount=type=bind,source=data,target=/d,rw echo scribble > /d && cat /d > /rw\n\
         RUN --mount=type=secret,id=tok,required \\\n\
         \x20   test \"$(cat /run/secrets/tok)\" = s3cret && stat -c %a /run/secrets/tok > /secret-mode\n",
        &[
            ("data", "data-1\n"),
            ("hidden", "h\n"),
            (".dockerignore", "hidden\n"),
        ],
    );
    let secret = env.dir.path().join("tok");
    fs::write(&secret, "s3cret").unwrap();
    let flag = format!("id=tok,src={}", secret.display());

    // A required secret that is not given fails, naming its line.
    let out = build(&env, &ctx, &["-t", "b:1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Dockerfile:9:1: RUN: secret \"tok\" is required but was not given"),
        "{err}"
    );

    ok(&build(&env, &ctx, &["-t", "b:1", "--secret", &flag]));
    assert_eq!(
        run(&env, &["b:1", "cat", "/out", "/rw", "/secret-mode"]),
        "data-1\ntool\nhidden-absent\nread-only\nscribble\n400\n"
    );
    // Nothing mounted is left in the image: not the mount points, not the
    // secret, and the context's file is unchanged by the rw mount.
    assert_eq!(
        run(
            &env,
            &[
                "b:1",
                "sh",
                "-c",
                "ls -d /src /t /d /run/secrets 2>/dev/null | wc -l"
            ]
        ),
        "0\n"
    );
    assert_eq!(fs::read_to_string(ctx.join("data")).unwrap(), "data-1\n");

    // What a bind mount shows is part of the step's key; a secret is not.
    fs::write(&secret, "other").unwrap();
    let (_, log) = ok(&build(&env, &ctx, &["-t", "b:1", "--secret", &flag]));
    assert!(log.contains("(0 steps run, 4 cached)"), "{log}");
    fs::write(ctx.join("data"), "data-2\n").unwrap();
    fs::write(&secret, "s3cret").unwrap();
    let (_, log) = ok(&build(&env, &ctx, &["-t", "b:1", "--secret", &flag]));
    assert!(log.contains("(3 steps run, 1 cached)"), "{log}");
    assert_eq!(run(&env, &["b:1", "head", "-n1", "/out"]), "data-2\n");
}

#[test]
fn copy_exclude_and_parents() {
    stack_testing::require_root!();
    let env = Env::new("bld-excl", 197);
    let ctx = context(
        &env,
        "FROM busybox AS src\n\
         RUN mkdir -p /w/keep /w/skip && echo k > /w/keep/k && echo s > /w/skip/s && echo l > /w/x.log\n\
         FROM busybox\n\
         COPY --exclude=*.log --exclude=tmp --exclude=Dockerfile . /all/\n\
         COPY --parents app/a/one.txt app/./b/two.txt /p/\n\
         COPY --from=src --exclude=skip --exclude=*.log /w /fromstage/\n",
        &[
            ("app/a/one.txt", "1"),
            ("app/b/two.txt", "2"),
            ("top.log", "no"),
            ("app/deep.log", "deep"),
            ("tmp/t", "no"),
        ],
    );
    ok(&build(&env, &ctx, &["-t", "e:1"]));
    assert_eq!(
        run(
            &env,
            &[
                "e:1",
                "sh",
                "-c",
                "cd /all && find . -type f | sort; cd /p && find . -type f | sort; cd /fromstage && find . -type f | sort"
            ]
        ),
        "./app/a/one.txt\n./app/b/two.txt\n./app/deep.log\n\
         ./app/a/one.txt\n./b/two.txt\n\
         ./keep/k\n"
    );
    // An excluded file's edit is no change; a copied one's is.
    fs::write(ctx.join("top.log"), "still excluded").unwrap();
    let (_, log) = ok(&build(&env, &ctx, &["-t", "e:1"]));
    assert!(log.contains("(0 steps run, 4 cached)"), "{log}");
}

/// A one-file HTTP server on 127.0.0.1 for `ADD <url>`: answers every
/// request with the file's current content; stops with the test process.
fn serve(file: std::path::PathBuf) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let request = String::from_utf8_lossy(&buf);
            let (status, body) = if request.starts_with("GET /missing") {
                ("404 Not Found", Vec::new())
            } else {
                ("200 OK", fs::read(&file).unwrap_or_default())
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(&body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn add_fetches_a_url_and_caches_by_content() {
    stack_testing::require_root!();
    let env = Env::new("bld-url", 198);
    let served = env.dir.path().join("served.txt");
    fs::write(&served, "v1\n").unwrap();
    let base = serve(served.clone());
    let ctx = context(
        &env,
        &format!("FROM busybox\nADD {base}/files/tool.txt /opt/\nRUN cat /opt/tool.txt > /copy\n"),
        &[],
    );
    ok(&build(&env, &ctx, &["-t", "u:1"]));
    assert_eq!(
        run(
            &env,
            &["u:1", "sh", "-c", "cat /copy; stat -c %a /opt/tool.txt"]
        ),
        "v1\n600\n"
    );
    let (_, log) = ok(&build(&env, &ctx, &["-t", "u:1"]));
    assert!(log.contains("(0 steps run, 2 cached)"), "{log}");
    fs::write(&served, "v2\n").unwrap();
    let (_, log) = ok(&build(&env, &ctx, &["-t", "u:1"]));
    assert!(log.contains("(2 steps run, 0 cached)"), "{log}");
    assert_eq!(run(&env, &["u:1", "cat", "/copy"]), "v2\n");

    let bad = context(
        &env,
        &format!(
            "FROM busybox\nADD --checksum=sha256:{} {base}/f /f\nADD {base}/missing /m\n",
            "0".repeat(64)
        ),
        &[],
    );
    let out = build(&env, &bad, &["-t", "u:2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "Dockerfile:2:1: ADD: {base}/f: checksum sha256:000"
        )),
        "{err}"
    );
    let bad = context(&env, &format!("FROM busybox\nADD {base}/missing /m\n"), &[]);
    let out = build(&env, &bad, &["-t", "u:3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "Dockerfile:2:1: ADD: {base}/missing: the server answered 404"
        )),
        "{err}"
    );
}

#[test]
fn independent_stages_build_at_the_same_time() {
    stack_testing::require_root!();
    let env = Env::new("bld-par", 199);
    // Each stage's step waits for the other's mark in a shared cache
    // mount: built one after the other, the first would give up after 20 s.
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,target=/sync,id=rendezvous \\\n\
             \x20   touch /sync/{me} && i=0 && while [ ! -e /sync/{other} ]; do \\\n\
             \x20   sleep 0.1; i=$((i+1)); [ $i -lt 200 ] || exit 7; done && echo {me} > /{me}\n"
        )
    };
    let ctx = context(
        &env,
        &format!(
            "FROM busybox AS a\n{}FROM busybox AS b\n{}FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
            wait("a", "b"),
            wait("b", "a")
        ),
        &[],
    );
    let (_, log) = ok(&build(&env, &ctx, &["-t", "par:1"]));
    // Step numbers follow the file, whichever stage ran first.
    assert!(
        log.contains("[a 2/7] RUN") && log.contains("[b 4/7] RUN"),
        "{log}"
    );
    assert_eq!(run(&env, &["par:1", "cat", "/a", "/b"]), "a\nb\n");
}

#[test]
fn extra_hosts_and_shm_size_reach_run_steps_only() {
    stack_testing::require_root!();
    let env = Env::new("bld-hosts", 195);
    let ctx = context(
        &env,
        "FROM busybox\n\
         RUN grep -w db /etc/hosts > /hosts-seen && df -k /dev/shm | tail -n1 | awk '{print $2}' > /shm\n",
        &[],
    );
    ok(&build(
        &env,
        &ctx,
        &["-t", "h:1", "--add-host", "db:10.9.8.7", "--shm-size", "3m"],
    ));
    assert_eq!(
        run(&env, &["h:1", "sh", "-c", "cat /hosts-seen /shm"]),
        "10.9.8.7\tdb\n3072\n"
    );
    // The hosts file bound for the step is not in the layer: a later
    // build's step on the image sees busybox's own.
    let probe = |base: &str| {
        let ctx = context(
            &env,
            &format!("FROM {base}\nRUN (cat /etc/hosts || echo absent) > /probe 2>&1\n"),
            &[],
        );
        ok(&build(&env, &ctx, &["-t", "h:probe"]));
        run(&env, &["h:probe", "cat", "/probe"])
    };
    let own = probe("busybox");
    assert_eq!(probe("h:1"), own);
    assert!(!own.contains("10.9.8.7"), "{own}");
    let out = build(&env, &ctx, &["-t", "h:2", "--add-host", "gw:host-gateway"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("host-gateway is not provided to builds"),
        "{out:?}"
    );
}

#[test]
fn additional_contexts_and_build_secrets_from_a_stack_file() {
    stack_testing::require_root!();
    let env = Env::new("bld-named", 194);
    context(
        &env,
        "FROM base\n\
         COPY --from=lib greet.txt /greet.txt\n\
         RUN --mount=type=bind,from=lib,target=/l --mount=type=secret,id=npm,required \\\n\
         \x20   cat /l/greet.txt /run/secrets/npm > /seen\n\
         CMD [\"cat\", \"/greet.txt\", \"/seen\"]\n",
        &[],
    );
    let lib = env.dir.path().join("lib");
    fs::create_dir_all(&lib).unwrap();
    fs::write(lib.join("greet.txt"), "from lib\n").unwrap();
    fs::write(lib.join(".dockerignore"), "junk\n").unwrap();
    fs::write(lib.join("junk"), "x").unwrap();
    env.write(
        "services:\n\
         \x20 app:\n\
         \x20   build:\n\
         \x20     context: ctx\n\
         \x20     additional_contexts:\n\
         \x20       lib: ./lib\n\
         \x20       base: docker-image://busybox\n\
         \x20     secrets:\n\
         \x20       - source: token\n\
         \x20         target: npm\n\
         secrets:\n\
         \x20 token:\n\
         \x20   file: ./token.txt\n",
    );
    fs::write(env.dir.path().join("token.txt"), "tok-1").unwrap();
    let config = env.ok(&["config"]);
    assert!(
        config.contains(&format!("lib: {}", lib.display())),
        "{config}"
    );
    env.ok(&["build"]);
    assert_eq!(run(&env, &["bld-named-app"]), "from lib\nfrom lib\ntok-1");
    // The secret's mount point is in no layer.
    assert_eq!(
        run(
            &env,
            &[
                "bld-named-app",
                "sh",
                "-c",
                "test -e /run/secrets/npm && echo present || echo absent"
            ]
        ),
        "absent\n"
    );
    // An edit in the named context is seen by the next build; a file its
    // .dockerignore leaves out is not.
    fs::write(lib.join("junk"), "y").unwrap();
    let log = env.ok(&["build"]);
    assert!(log.contains("(0 steps run, 2 cached)"), "{log}");
    fs::write(lib.join("greet.txt"), "lib v2\n").unwrap();
    env.ok(&["build"]);
    assert_eq!(run(&env, &["bld-named-app"]), "lib v2\nlib v2\ntok-1");
}

#[test]
fn a_step_cache_exported_to_a_directory_makes_another_roots_build_cached() {
    stack_testing::require_root!();
    let env = Env::new("bld-cacheio", 202);
    let ctx = context(
        &env,
        "FROM busybox\n\
         RUN echo one > /one\n\
         COPY a.txt /a.txt\n\
         RUN cat /one /a.txt > /both\n",
        &[("a.txt", "a1\n")],
    );
    let exported = env.dir.path().join("exported cache");
    let to = format!("type=local,dest={}", exported.display());
    let (first, log) = ok(&build(&env, &ctx, &["-t", "c:1", "--cache-to", &to]));
    assert!(log.contains("(3 steps run, 0 cached)"), "{log}");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(exported.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.stack.build.cache.v1+json"
    );
    assert!(exported.join("oci-layout").is_file());

    // Another root, empty cache: everything comes from the directory.
    let other = Env::new("bld-cacheio2", 203);
    let from = format!("type=local,src={}", exported.display());
    let (second, log) = ok(&build(&other, &ctx, &["-t", "c:1", "--cache-from", &from]));
    assert!(log.contains("(0 steps run, 3 cached)"), "{log}");
    assert_eq!(first, second, "the same steps make the same image");
    assert_eq!(run(&other, &["c:1", "cat", "/both"]), "one\na1\n");
    // An edit still re-runs from the step that reads it.
    fs::write(ctx.join("a.txt"), "a2\n").unwrap();
    let (_, log) = ok(&build(&other, &ctx, &["-t", "c:2", "--cache-from", &from]));
    assert!(log.contains("(2 steps run, 1 cached)"), "{log}");

    for (flag, value, says) in [
        (
            "--cache-to",
            "type=registry,ref=r/x:cache",
            "only type=local,dest=DIR",
        ),
        ("--cache-from", "user/app:cache", "only type=local,src=DIR"),
    ] {
        let out = build(&env, &ctx, &["-t", "c:3", flag, value]);
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && text.contains(says), "{text}");
    }
    let out = build(
        &env,
        &ctx,
        &[
            "-t",
            "c:3",
            "--cache-from",
            &format!("type=local,src={}", ctx.display()),
        ],
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("index.json"),
        "a directory without a cache is refused: {text}"
    );
}
