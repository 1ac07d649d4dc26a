//! A Dockerfile as the builder needs it: stages of typed steps, each with its
//! line and column. The syntax (directives, continuations, heredocs, JSON and
//! shell forms) is `parse-dockerfile`'s; this file checks what a build needs
//! beyond syntax (flags, forms, arguments) and reports every problem at once.

use std::fmt;
use std::path::{Path, PathBuf};

use parse_dockerfile::{self as pd, Instruction as I};

/// A place in the Dockerfile, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// One problem with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub pos: Pos,
    /// The instruction keyword (`COPY`), empty for syntax errors.
    pub instruction: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: ",
            self.file.display(),
            self.pos.line,
            self.pos.column
        )?;
        if !self.instruction.is_empty() {
            write!(f, "{}: ", self.instruction)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseErrors(pub Vec<Problem>);

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Exec form (`["a", "b"]`) or shell form (run by the stage's `SHELL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

/// `RUN --network=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunNetwork {
    /// The build's network: a bridge with NAT made for the build.
    #[default]
    Default,
    None,
    Host,
}

/// `RUN --mount=...`: mounted for the step only, never part of its layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// A directory kept between builds under the stack root, shared by
    /// every build with the same `id` (default: the target).
    Cache {
        id: String,
        target: String,
        /// Owner and mode of the directory when it is first made.
        uid: u32,
        gid: u32,
        mode: u32,
    },
    /// An empty tmpfs.
    Tmpfs { target: String },
    /// A path of the context (or of a stage or image with `from`), read-only
    /// unless `rw`; with `rw` the step's writes to it are thrown away.
    Bind {
        target: String,
        source: String,
        from: Option<String>,
        rw: bool,
    },
    /// A secret the build was given (`--secret id=..`), as a read-only file
    /// at `target` (default `/run/secrets/<id>`); never in a layer or a
    /// cache key.
    Secret {
        id: String,
        target: String,
        required: bool,
        uid: u32,
        gid: u32,
        mode: u32,
    },
}

/// A source of `COPY`/`ADD`: a path in the context (or in `--from`), or a
/// heredoc's content under its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(String),
    /// `ADD <http(s) URL>`: fetched at build time.
    Url(String),
    Inline {
        name: String,
        content: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub add: bool,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    /// `--exclude` patterns, matched against paths inside each source.
    pub exclude: Vec<String>,
    /// `--parents`: sources keep their path (from the context root, or
    /// from a `/./` in the source) under the destination.
    pub parents: bool,
    /// `ADD --checksum=sha256:..`: what a fetched URL must hash to.
    pub checksum: Option<String>,
    pub sources: Vec<Source>,
    pub dest: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `None` for `HEALTHCHECK NONE`.
    pub command: Option<Command>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
}

/// One instruction of a stage. Words keep their quotes and variables:
/// they are expanded when the build knows its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Run {
        command: Command,
        network: RunNetwork,
        mounts: Vec<RunMount>,
    },
    Copy(Copy),
    /// `KEY=VALUE` words (or the legacy `KEY VALUE`, turned into one pair).
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    Expose(String),
    User(String),
    Workdir(String),
    Volume(Vec<String>),
    Entrypoint(Command),
    Cmd(Command),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// Recorded in the image for images built `FROM` this one.
    Onbuild(String),
    Maintainer(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub pos: Pos,
    /// The instruction as written (continuations joined), for progress lines.
    pub text: String,
    pub instruction: Instruction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub pos: Pos,
    pub base: String,
    pub platform: Option<String>,
    pub name: Option<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub path: PathBuf,
    pub escape: char,
    /// `ARG`s before the first `FROM` (usable in `FROM` lines).
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// The index of the stage called `name` (or numbered so).
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages
            .iter()
            .position(|s| {
                s.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .or_else(|| {
                name.parse::<usize>()
                    .ok()
                    .filter(|&i| i < self.stages.len())
            })
    }
}

/// Byte offsets to line and column.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    fn pos(&self, offset: usize) -> Pos {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(1, |s| s.chars().count() + 1);
        Pos { line, column }
    }
}

struct Lowering<'a> {
    file: &'a Path,
    lines: Lines<'a>,
    escape: char,
    problems: Vec<Problem>,
}

impl Lowering<'_> {
    fn problem(&mut self, offset: usize, instruction: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_owned(),
            pos: self.lines.pos(offset),
            instruction: instruction.to_owned(),
            message: message.into(),
        });
    }

    /// Splits `KEY=VALUE ...` words; `legacy` allows Docker's old `KEY VALUE`.
    fn pairs(
        &mut self,
        arg: &pd::UnescapedString<'_>,
        keyword: &str,
        legacy: bool,
    ) -> Vec<(String, Option<String>)> {
        let text = arg.value.trim();
        let words = match crate::vars::split_raw(text, self.escape) {
            Ok(w) => w,
            Err(e) => {
                self.problem(arg.span.start, keyword, e.to_string());
                return Vec::new();
            }
        };
        if legacy && words.first().is_some_and(|w| !w.contains('=')) {
            let (key, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
            if rest.trim().is_empty() {
                self.problem(
                    arg.span.start,
                    keyword,
                    format!("{key:?} needs a value (KEY=VALUE)"),
                );
                return Vec::new();
            }
            return vec![(key.to_owned(), Some(rest.trim().to_owned()))];
        }
        let mut out = Vec::new();
        for w in words {
            match w.split_once('=') {
                Some((k, v)) if !k.is_empty() => out.push((k.to_owned(), Some(v.to_owned()))),
                Some(_) => self.problem(arg.span.start, keyword, format!("{w:?} has no name")),
                None => out.push((w, None)),
            }
        }
        out
    }

    fn command(&mut self, c: &pd::Command<'_>, here_docs: &[pd::HereDoc<'_>]) -> Command {
        match c {
            pd::Command::Exec(args) => {
                Command::Exec(args.value.iter().map(|s| s.value.to_string()).collect())
            }
            pd::Command::Shell(s) if here_docs.is_empty() => {
                Command::Shell(join_continuations(s.value, self.escape))
            }
            pd::Command::Shell(s) => {
                // A heredoc alone is the script; otherwise the shell reads
                // the heredocs itself, so the command keeps them (markers,
                // bodies and closing lines as written).
                if s.value.trim().is_empty() && here_docs.len() == 1 {
                    let body = &here_docs[0].value;
                    return Command::Shell(body.strip_prefix('\n').unwrap_or(body).to_owned());
                }
                let text = self.lines.text;
                let line_start = text[..s.span.start.min(text.len())]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                let start = text[line_start..s.span.start.min(text.len())]
                    .find("<<")
                    .map_or(s.span.start, |i| line_start + i);
                let last = here_docs.last().map_or(s.span.end, |h| h.span.end);
                let end = text[last.min(text.len())..]
                    .find('\n')
                    .map_or(text.len(), |i| last + i);
                Command::Shell(text.get(start..end).unwrap_or(s.value).to_owned())
            }
            _ => Command::Shell(String::new()),
        }
    }

    fn flags(
        &mut self,
        keyword: &str,
        flags: &[pd::Flag<'_>],
        allowed: &[&str],
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for f in flags {
            let name = f.name.value.to_string();
            if !allowed.contains(&name.as_str()) {
                let msg = if allowed.is_empty() {
                    format!("unknown flag --{name}")
                } else {
                    format!(
                        "flag --{name} is not supported (supported: {})",
                        allowed
                            .iter()
                            .map(|a| format!("--{a}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                self.problem(f.flag_span().start, keyword, msg);
                continue;
            }
            out.push((
                name,
                f.value
                    .as_ref()
                    .map(|v| v.value.to_string())
                    .unwrap_or_default(),
            ));
        }
        out
    }

    /// The names of the heredocs an instruction opens, in order
    /// (`<<EOF`, `<<-EOF`, `<<"EOF"`), from its first line.
    fn heredoc_names(&self, start: usize) -> Vec<String> {
        let text = self.lines.text.get(start..).unwrap_or("");
        let line = text.lines().next().unwrap_or("");
        line.match_indices("<<")
            .map(|(i, _)| {
                line[i + 2..]
                    .trim_start_matches('-')
                    .trim_start_matches(['"', '\''])
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    .collect()
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &mut self,
        start: usize,
        keyword: &str,
        add: bool,
        flags: &[pd::Flag<'_>],
        src: &[pd::Source<'_>],
        dest: &pd::UnescapedString<'_>,
    ) -> Instruction {
        // `--link` makes the copy a layer of its own, independent of the
        // ones below: every COPY here is one already, with the same result.
        let allowed: &[&str] = if add {
            &["chown", "chmod", "link", "exclude", "checksum"]
        } else {
            &["from", "chown", "chmod", "link", "exclude", "parents"]
        };
        let mut copy = Copy {
            add,
            from: None,
            chown: None,
            chmod: None,
            exclude: Vec::new(),
            parents: false,
            checksum: None,
            sources: Vec::new(),
            dest: dest.value.to_string(),
        };
        for (name, value) in self.flags(keyword, flags, allowed) {
            match name.as_str() {
                "from" => copy.from = Some(value),
                "chown" => copy.chown = Some(value),
                "chmod" => copy.chmod = Some(value),
                "exclude" if value.is_empty() => {
                    self.problem(start, keyword, "--exclude needs a pattern")
                }
                "exclude" => copy.exclude.push(value),
                "checksum" => copy.checksum = Some(value),
                "parents" => match value.as_str() {
                    "" | "true" => copy.parents = true,
                    "false" => copy.parents = false,
                    _ => self.problem(
                        start,
                        keyword,
                        format!("--parents={value}: expected true or false"),
                    ),
                },
                // A bare `--link` or `--link=true`; `--link=false` is a plain copy.
                _ if matches!(value.as_str(), "" | "true" | "false") => {}
                _ => self.problem(
                    start,
                    keyword,
                    format!("--link={value}: expected true or false"),
                ),
            }
        }
        if let Some(m) = &copy.chmod
            && u32::from_str_radix(m, 8).map_or(true, |v| v > 0o7777)
        {
            let at = flags
                .first()
                .map_or(dest.span.start, |f| f.flag_span().start);
            self.problem(at, keyword, format!("--chmod={m}: expected an octal mode"));
        }
        let names = self.heredoc_names(start);
        let mut heredocs = 0;
        for s in src {
            match s {
                pd::Source::Path(p) => {
                    let url = p.value.starts_with("http://") || p.value.starts_with("https://");
                    if url && !add {
                        self.problem(
                            p.span.start,
                            keyword,
                            format!("{}: COPY does not fetch URLs; use ADD", p.value),
                        );
                    } else if url {
                        copy.sources.push(Source::Url(p.value.to_string()));
                        continue;
                    } else if p.value.starts_with("git@") {
                        self.problem(
                            p.span.start,
                            keyword,
                            format!("{}: ADD of a git repository is not supported", p.value),
                        );
                    }
                    copy.sources.push(Source::Path(p.value.to_string()));
                }
                pd::Source::HereDoc(h) => {
                    let name = names.get(heredocs).cloned().unwrap_or_default();
                    heredocs += 1;
                    copy.sources.push(Source::Inline {
                        name,
                        content: h.value.to_string(),
                    });
                }
                _ => self.problem(dest.span.start, keyword, "unsupported source"),
            }
        }
        Instruction::Copy(copy)
    }

    fn step(&mut self, instruction: &I<'_>) -> Option<(usize, Instruction)> {
        let start = instruction_start(instruction);
        let keyword = keyword_of(instruction);
        let lowered = match instruction {
            I::Run(r) => {
                let mut network = RunNetwork::Default;
                let mut mounts = Vec::new();
                for (name, value) in self.flags(keyword, &r.options, &["network", "mount"]) {
                    if name == "mount" {
                        match run_mount(&value) {
                            Ok(m) => mounts.push(m),
                            Err(msg) => {
                                self.problem(start, keyword, format!("--mount={value}: {msg}"))
                            }
                        }
                    } else if name == "network" {
                        network = match value.as_str() {
                            "default" => RunNetwork::Default,
                            "none" => RunNetwork::None,
                            "host" => RunNetwork::Host,
                            other => {
                                self.problem(
                                    start,
                                    keyword,
                                    format!("--network={other}: expected default, none or host"),
                                );
                                RunNetwork::Default
                            }
                        };
                    }
                }
                Instruction::Run {
                    command: self.command(&r.arguments, &r.here_docs),
                    network,
                    mounts,
                }
            }
            I::Copy(c) => self.copy(start, keyword, false, &c.options, &c.src, &c.dest),
            I::Add(a) => self.copy(start, keyword, true, &a.options, &a.src, &a.dest),
            I::Env(e) => {
                let pairs = self.pairs(&e.arguments, keyword, true);
                let mut out = Vec::new();
                for (k, v) in pairs {
                    match v {
                        Some(v) => out.push((k, v)),
                        None => self.problem(
                            e.arguments.span.start,
                            keyword,
                            format!("{k:?} needs a value (KEY=VALUE)"),
                        ),
                    }
                }
                Instruction::Env(out)
            }
            I::Arg(a) => Instruction::Arg(self.pairs(&a.arguments, keyword, false)),
            I::Label(l) => {
                let pairs = self.pairs(&l.arguments, keyword, true);
                let mut out = Vec::new();
                for (k, v) in pairs {
                    match v {
                        Some(v) => out.push((k, v)),
                        None => self.problem(
                            l.arguments.span.start,
                            keyword,
                            format!("{k:?} needs a value (KEY=VALUE)"),
                        ),
                    }
                }
                Instruction::Label(out)
            }
            I::Expose(e) => Instruction::Expose(
                e.arguments
                    .iter()
                    .map(|a| a.value.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            I::User(u) => Instruction::User(u.arguments.value.to_string()),
            I::Workdir(w) => Instruction::Workdir(w.arguments.value.to_string()),
            I::Volume(v) => Instruction::Volume(match &v.arguments {
                pd::JsonOrStringArray::Json(a) => {
                    a.value.iter().map(|s| s.value.to_string()).collect()
                }
                pd::JsonOrStringArray::String(a) => a.iter().map(|s| s.value.to_string()).collect(),
            }),
            I::Entrypoint(e) => Instruction::Entrypoint(self.command(&e.arguments, &[])),
            I::Cmd(c) => Instruction::Cmd(self.command(&c.arguments, &[])),
            I::Shell(s) => {
                Instruction::Shell(s.arguments.iter().map(|a| a.value.to_string()).collect())
            }
            I::Stopsignal(s) => Instruction::StopSignal(s.arguments.value.to_string()),
            I::Maintainer(m) => Instruction::Maintainer(m.name.value.to_string()),
            I::Onbuild(o) => {
                let inner = instruction_start(&o.instruction);
                Instruction::Onbuild(
                    self.lines
                        .text
                        .get(inner..instruction_end(&o.instruction, self.lines.text))
                        .unwrap_or("")
                        .trim()
                        .to_owned(),
                )
            }
            I::Healthcheck(h) => {
                let mut hc = Healthcheck {
                    command: None,
                    interval: None,
                    timeout: None,
                    start_period: None,
                    start_interval: None,
                    retries: None,
                };
                for (name, value) in self.flags(
                    keyword,
                    &h.options,
                    &[
                        "interval",
                        "timeout",
                        "start-period",
                        "start-interval",
                        "retries",
                    ],
                ) {
                    let slot = match name.as_str() {
                        "interval" => &mut hc.interval,
                        "timeout" => &mut hc.timeout,
                        "start-period" => &mut hc.start_period,
                        "start-interval" => &mut hc.start_interval,
                        _ => &mut hc.retries,
                    };
                    *slot = Some(value);
                }
                if let pd::HealthcheckArguments::Cmd { arguments, .. } = &h.arguments {
                    hc.command = Some(self.command(arguments, &[]));
                }
                Instruction::Healthcheck(hc)
            }
            I::From(_) => return None,
            _ => {
                self.problem(start, keyword, "unsupported instruction");
                return None;
            }
        };
        Some((start, lowered))
    }
}

fn instruction_start(i: &I<'_>) -> usize {
    let k = match i {
        I::Add(x) => &x.add,
        I::Arg(x) => &x.arg,
        I::Cmd(x) => &x.cmd,
        I::Copy(x) => &x.copy,
        I::Entrypoint(x) => &x.entrypoint,
        I::Env(x) => &x.env,
        I::Expose(x) => &x.expose,
        I::From(x) => &x.from,
        I::Healthcheck(x) => &x.healthcheck,
        I::Label(x) => &x.label,
        I::Maintainer(x) => &x.maintainer,
        I::Onbuild(x) => &x.onbuild,
        I::Run(x) => &x.run,
        I::Shell(x) => &x.shell,
        I::Stopsignal(x) => &x.stopsignal,
        I::User(x) => &x.user,
        I::Volume(x) => &x.volume,
        I::Workdir(x) => &x.workdir,
        // A newer instruction kind: reported at its stage start.
        _ => return 0,
    };
    k.span.start
}

/// Where an instruction's text ends: the end of its last line.
fn instruction_end(i: &I<'_>, text: &str) -> usize {
    let from = instruction_start(i).min(text.len());
    text[from..].find('\n').map_or(text.len(), |n| from + n)
}

fn keyword_of(i: &I<'_>) -> &'static str {
    match i {
        I::Add(_) => "ADD",
        I::Arg(_) => "ARG",
        I::Cmd(_) => "CMD",
        I::Copy(_) => "COPY",
        I::Entrypoint(_) => "ENTRYPOINT",
        I::Env(_) => "ENV",
        I::Expose(_) => "EXPOSE",
        I::From(_) => "FROM",
        I::Healthcheck(_) => "HEALTHCHECK",
        I::Label(_) => "LABEL",
        I::Maintainer(_) => "MAINTAINER",
        I::Onbuild(_) => "ONBUILD",
        I::Run(_) => "RUN",
        I::Shell(_) => "SHELL",
        I::Stopsignal(_) => "STOPSIGNAL",
        I::User(_) => "USER",
        I::Volume(_) => "VOLUME",
        I::Workdir(_) => "WORKDIR",
        _ => "",
    }
}

/// The joined text of one instruction for progress lines: continuation
/// lines folded into one, heredoc bodies left out.
fn display_text(text: &str, start: usize, escape: char) -> String {
    let mut out = String::new();
    let mut rest = text.get(start..).unwrap_or("");
    loop {
        let (line, next) = match rest.split_once('\n') {
            Some((l, n)) => (l, Some(n)),
            None => (rest, None),
        };
        let trimmed = line.trim_end();
        if let Some(body) = trimmed.strip_suffix(escape)
            && next.is_some()
        {
            out.push_str(body.trim());
            out.push(' ');
            rest = next.unwrap_or("");
            continue;
        }
        out.push_str(trimmed.trim_start());
        break;
    }
    out.trim().to_owned()
}

/// A shell-form command as Docker runs it: an escape at the end of a line
/// joins the next one (the newline goes), comment lines inside are dropped.
fn join_continuations(text: &str, escape: char) -> String {
    let mut out = String::new();
    let mut lines = text.split('\n').peekable();
    let mut first = true;
    while let Some(line) = lines.next() {
        if !first && line.trim_start().starts_with('#') {
            continue;
        }
        first = false;
        let trimmed = line.trim_end();
        match trimmed.strip_suffix(escape) {
            Some(body) if lines.peek().is_some() => out.push_str(body),
            _ => {
                out.push_str(line);
                if lines.peek().is_some() {
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// One `--mount` value: comma-separated `key=value` fields, BuildKit's names.
/// Every field is honoured or refused by name.
fn run_mount(value: &str) -> Result<RunMount, String> {
    let mut kind = "bind";
    let mut target = None;
    let mut id = None;
    let mut source = None;
    let mut from = None;
    let mut rw = false;
    let mut required = false;
    let (mut uid, mut gid, mut mode) = (0, 0, None);
    for field in value.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        let number = |radix| {
            u32::from_str_radix(v, radix).map_err(|_| format!("{k}={v}: expected a number"))
        };
        let flag = || match v {
            "" | "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("{k}={v}: expected true or false")),
        };
        match k {
            "type" => kind = v,
            "target" | "dst" | "destination" => target = Some(v.to_owned()),
            "id" => id = Some(v.to_owned()),
            "source" | "src" => source = Some(v.to_owned()),
            "from" => from = Some(v.to_owned()),
            "rw" | "readwrite" => rw = flag()?,
            "ro" | "readonly" => rw = !flag()?,
            "required" => required = flag()?,
            "uid" => uid = number(10)?,
            "gid" => gid = number(10)?,
            "mode" => mode = Some(number(8)?),
            // Steps (of parallel stages or builds) that share a cache see
            // each other's files at once, as BuildKit's default.
            "sharing" if v == "shared" => {}
            "sharing" => return Err(format!("sharing={v} is not supported (only shared)")),
            "env" => {
                return Err("env= is not supported: secrets are files (target=)".into());
            }
            _ => return Err(format!("field {k:?} is not supported")),
        }
    }
    let only = |what: &str, set: bool, kinds: &str| {
        if set {
            Err(format!("{what} is for {kinds} mounts"))
        } else {
            Ok(())
        }
    };
    match kind {
        "cache" => {
            only("source", source.is_some() || from.is_some(), "bind")?;
            only("required", required, "secret")?;
            let target = target
                .filter(|t| !t.is_empty())
                .ok_or("target is required")?;
            Ok(RunMount::Cache {
                id: id.unwrap_or_else(|| target.clone()),
                target,
                uid,
                gid,
                mode: mode.unwrap_or(0o755),
            })
        }
        "tmpfs" => {
            only("id", id.is_some(), "cache and secret")?;
            only("source", source.is_some() || from.is_some(), "bind")?;
            let target = target
                .filter(|t| !t.is_empty())
                .ok_or("target is required")?;
            Ok(RunMount::Tmpfs { target })
        }
        "bind" => {
            only("id", id.is_some(), "cache and secret")?;
            only("required", required, "secret")?;
            let target = target
                .filter(|t| !t.is_empty())
                .ok_or("target is required")?;
            Ok(RunMount::Bind {
                target,
                source: source.unwrap_or_else(|| "/".into()),
                from,
                rw,
            })
        }
        "secret" => {
            only("source", source.is_some() || from.is_some(), "bind")?;
            let id = match (id, &target) {
                (Some(id), _) if !id.is_empty() => id,
                // BuildKit: the id defaults to the target's file name.
                (_, Some(t)) => t.rsplit('/').next().unwrap_or_default().to_owned(),
                _ => String::new(),
            };
            if id.is_empty() {
                return Err("id (or target) is required".into());
            }
            Ok(RunMount::Secret {
                target: target
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| format!("/run/secrets/{id}")),
                id,
                required,
                uid,
                gid,
                mode: mode.unwrap_or(0o400),
            })
        }
        other => Err(format!(
            "type={other} is not supported (supported: bind, cache, tmpfs, secret)"
        )),
    }
}

/// Parses a Dockerfile; `file` is only used in messages.
pub fn parse(file: &Path, text: &str) -> Result<Dockerfile, ParseErrors> {
    let parsed = match pd::parse(text) {
        Ok(p) => p,
        Err(e) => {
            let full = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
            return Err(ParseErrors(vec![Problem {
                file: file.to_owned(),
                pos: Pos {
                    line: e.line().max(1),
                    column: e.column().max(1),
                },
                instruction: String::new(),
                message,
            }]));
        }
    };
    let escape = parsed
        .parser_directives
        .escape
        .as_ref()
        .map_or('\\', |d| d.value.value);
    let mut lower = Lowering {
        file,
        lines: Lines::new(text),
        escape,
        problems: Vec::new(),
    };
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in &parsed.instructions {
        match instruction {
            I::From(f) => {
                let start = instruction_start(instruction);
                let mut platform = None;
                for (_, v) in lower.flags("FROM", &f.options, &["platform"]) {
                    platform = Some(v);
                }
                stages.push(Stage {
                    pos: lower.lines.pos(start),
                    base: f.image.value.to_string(),
                    platform,
                    name: f.as_.as_ref().map(|(_, n)| n.value.to_string()),
                    steps: Vec::new(),
                });
            }
            I::Arg(a) if stages.is_empty() => {
                global_args.extend(lower.pairs(&a.arguments, "ARG", false));
            }
            other => {
                if let Some((start, lowered)) = lower.step(other) {
                    let step = Step {
                        pos: lower.lines.pos(start),
                        text: display_text(text, start, escape),
                        instruction: lowered,
                    };
                    if let Some(stage) = stages.last_mut() {
                        stage.steps.push(step);
                    }
                }
            }
        }
    }
    if lower.problems.is_empty() {
        Ok(Dockerfile {
            path: file.to_owned(),
            escape,
            global_args,
            stages,
        })
    } else {
        Err(ParseErrors(lower.problems))
    }
}
