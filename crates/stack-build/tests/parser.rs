//! The Dockerfile parser against a table of files: each instruction, heredocs,
//! escapes, directives, and bad files with their line and column.

use std::path::Path;

use stack_build::dockerfile::{Command, Instruction, RunMount, RunNetwork, Source, parse};

fn one(text: &str) -> Instruction {
    let f = parse(Path::new("Dockerfile"), &format!("FROM busybox\n{text}\n")).unwrap();
    assert_eq!(f.stages[0].steps.len(), 1, "{text}");
    f.stages[0].steps[0].instruction.clone()
}

#[test]
fn instructions() {
    let table: Vec<(&str, Instruction)> = vec![
        (
            "RUN echo hi",
            Instruction::Run {
                command: Command::Shell("echo hi".into()),
                network: RunNetwork::Default,
                mounts: vec![],
            },
        ),
        (
            "RUN --network=none [\"sh\", \"-c\", \"x\"]",
            Instruction::Run {
                command: Command::Exec(vec!["sh".into(), "-c".into(), "x".into()]),
                network: RunNetwork::None,
                mounts: vec![],
            },
        ),
        (
            "RUN a \\\n  && b",
            Instruction::Run {
                command: Command::Shell("a   && b".into()),
                network: RunNetwork::Default,
                mounts: vec![],
            },
        ),
        (
            "RUN <<EOF\necho one\necho two\nEOF",
            Instruction::Run {
                command: Command::Shell("echo one\necho two\n".into()),
                network: RunNetwork::Default,
                mounts: vec![],
            },
        ),
        (
            "ENV A=1 B=\"two words\"",
            Instruction::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into()),
            ]),
        ),
        (
            "ENV LEGACY value with spaces",
            Instruction::Env(vec![("LEGACY".into(), "value with spaces".into())]),
        ),
        (
            "ARG V X=1",
            Instruction::Arg(vec![("V".into(), None), ("X".into(), Some("1".into()))]),
        ),
        (
            "LABEL a=b \"c d\"=e",
            Instruction::Label(vec![
                ("a".into(), "b".into()),
                ("\"c d\"".into(), "e".into()),
            ]),
        ),
        (
            "EXPOSE 80 443/udp",
            Instruction::Expose("80 443/udp".into()),
        ),
        ("USER app:app", Instruction::User("app:app".into())),
        (
            "WORKDIR /srv/$APP",
            Instruction::Workdir("/srv/$APP".into()),
        ),
        (
            "VOLUME [\"/a\", \"/b\"]",
            Instruction::Volume(vec!["/a".into(), "/b".into()]),
        ),
        (
            "ENTRYPOINT [\"/bin/app\"]",
            Instruction::Entrypoint(Command::Exec(vec!["/bin/app".into()])),
        ),
        (
            "CMD serve --port 80",
            Instruction::Cmd(Command::Shell("serve --port 80".into())),
        ),
        (
            "SHELL [\"/bin/bash\", \"-c\"]",
            Instruction::Shell(vec!["/bin/bash".into(), "-c".into()]),
        ),
        (
            "STOPSIGNAL SIGINT",
            Instruction::StopSignal("SIGINT".into()),
        ),
        ("ONBUILD RUN make", Instruction::Onbuild("RUN make".into())),
    ];
    for (text, want) in table {
        assert_eq!(one(text), want, "{text}");
    }
}

#[test]
fn copy_forms() {
    let Instruction::Copy(c) = one("COPY --from=build --chown=1:2 --chmod=750 a b /dst/") else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1:2"));
    assert_eq!(c.chmod.as_deref(), Some("750"));
    assert_eq!(
        c.sources,
        [Source::Path("a".into()), Source::Path("b".into())]
    );
    assert_eq!(c.dest, "/dst/");

    let Instruction::Copy(c) = one("COPY <<EOF /etc/motd\nwelcome\nEOF") else {
        panic!()
    };
    assert_eq!(
        c.sources,
        [Source::Inline {
            name: "EOF".into(),
            content: "welcome\n".into()
        }]
    );
}

#[test]
fn healthcheck_and_stages() {
    let text = "ARG BASE=busybox\nFROM $BASE AS one\nFROM one\nHEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost\n";
    let f = parse(Path::new("Dockerfile"), text).unwrap();
    assert_eq!(
        f.global_args,
        [("BASE".to_owned(), Some("busybox".to_owned()))]
    );
    assert_eq!(f.stages.len(), 2);
    assert_eq!(f.stage_index("ONE"), Some(0));
    assert_eq!(f.stage_index("1"), Some(1));
    let Instruction::Healthcheck(h) = &f.stages[1].steps[0].instruction else {
        panic!()
    };
    assert_eq!(h.interval.as_deref(), Some("5s"));
    assert_eq!(h.retries.as_deref(), Some("3"));
    assert_eq!(h.command, Some(Command::Shell("wget -q localhost".into())));
    assert_eq!(f.stages[1].steps[0].pos.line, 4);
}

#[test]
fn escape_directive() {
    let f = parse(
        Path::new("Dockerfile"),
        "# escape=`\nFROM busybox\nRUN echo a `\n  b\n",
    )
    .unwrap();
    assert_eq!(f.escape, '`');
    assert_eq!(
        f.stages[0].steps[0].instruction,
        Instruction::Run {
            command: Command::Shell("echo a   b".into()),
            network: RunNetwork::Default,
            mounts: vec![],
        }
    );
}

#[test]
fn run_mounts_and_copy_link() {
    let f = parse(
        Path::new("Dockerfile"),
        "FROM busybox\n\
         RUN --mount=type=cache,target=/root/.cache,uid=1,mode=0700 --mount=type=tmpfs,dst=/t true\n\
         RUN --mount=type=cache,id=apt,target=/var/cache/apt,sharing=shared true\n\
         COPY --link a /a\n",
    )
    .unwrap();
    assert_eq!(
        f.stages[0].steps[0].instruction,
        Instruction::Run {
            command: Command::Shell("true".into()),
            network: RunNetwork::Default,
            mounts: vec![
                RunMount::Cache {
                    id: "/root/.cache".into(),
                    target: "/root/.cache".into(),
                    uid: 1,
                    gid: 0,
                    mode: 0o700
                },
                RunMount::Tmpfs {
                    target: "/t".into()
                },
            ],
        }
    );
    let Instruction::Run { mounts, .. } = &f.stages[0].steps[1].instruction else {
        panic!("not a RUN");
    };
    assert!(matches!(&mounts[0], RunMount::Cache { id, .. } if id == "apt"));
    assert!(matches!(
        &f.stages[0].steps[2].instruction,
        Instruction::Copy(c) if c.dest == "/a"
    ));
}

/// Bad files: every problem with its line and column, one per line.
#[test]
fn errors_name_line_and_column() {
    let table = [
        ("RUN x\n", "Dockerfile:1:1: expected FROM"),
        (
            "FROM busybox\nFROB x\n",
            "Dockerfile:2:1: unknown instruction 'FROB'",
        ),
        ("FROM busybox\nCOPY\n", "Dockerfile:2:1:"),
        (
            "FROM busybox\nRUN --mount=type=secret,id=x true\n",
            "Dockerfile:2:1: RUN: --mount=type=secret,id=x: type=secret is not supported (supported: cache, tmpfs)",
        ),
        (
            "FROM busybox\nRUN --mount=type=cache true\n",
            "Dockerfile:2:1: RUN: --mount=type=cache: target is required",
        ),
        (
            "FROM busybox\nRUN --mount=type=cache,target=/x,sharing=locked true\n",
            "sharing=locked is not supported (only shared)",
        ),
        (
            "FROM busybox\nRUN --mount=type=cache,target=/x,mode=9 true\n",
            "mode=9: expected a number",
        ),
        (
            "FROM busybox\nRUN --network=bridge true\n",
            "Dockerfile:2:1: RUN: --network=bridge: expected default, none or host",
        ),
        (
            "FROM busybox\nCOPY --chmod=999 a b\n",
            "Dockerfile:2:6: COPY: --chmod=999: expected an octal mode",
        ),
        (
            "FROM busybox\nADD https://example.com/x /x\n",
            "Dockerfile:2:5: ADD: https://example.com/x: ADD of a URL is not supported",
        ),
        (
            "FROM busybox\nENV A\n",
            "Dockerfile:2:5: ENV: \"A\" needs a value",
        ),
        ("FROM busybox\nRUN <<EOF\nx\n", "Dockerfile:3:"),
        (
            "FROM a AS x\nFROM b AS x\n",
            "Dockerfile:2:11: duplicate stage name 'x'",
        ),
    ];
    for (text, want) in table {
        let err = parse(Path::new("Dockerfile"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(want) || err.contains(want),
            "{text:?}: got {err:?}, want {want:?}"
        );
    }
}

#[test]
fn all_problems_at_once() {
    let err = parse(
        Path::new("Dockerfile"),
        "FROM busybox\nRUN --network=x a\nCOPY --chmod=z a b\n",
    )
    .unwrap_err();
    assert_eq!(err.0.len(), 2);
    assert_eq!(err.0[0].pos.line, 2);
    assert_eq!(err.0[1].pos.line, 3);
}
