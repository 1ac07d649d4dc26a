//! The progress display as `docker compose` v2 draws it: at a terminal a
//! block redrawn in place (`[+] Running 2/4`, then a line per resource with
//! a spinner or a tick and its time), plain lines when piped, JSON lines,
//! or nothing (`--progress` / `COMPOSE_PROGRESS`, `--ansi` /
//! `COMPOSE_ANSI`). It draws from the engine's typed steps; the
//! supervisor's other lines (warnings, `stop` and `start` reports) are
//! printed as they are, above the block at a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use stack_engine::control::Progress;
use stack_engine::plan::Action;
use stack_engine::progress::{Step, StepKind, StepPhase};

/// How progress is shown, once the options are resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// A redrawn block when the output is a terminal, else plain lines.
    #[default]
    Auto,
    Tty,
    Plain,
    Json,
    Quiet,
}

/// compose's spinner frames, one per redraw (100 ms).
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// How often a terminal display is redrawn while something runs.
pub const TICK: Duration = Duration::from_millis(100);

/// One resource's line.
struct Entry {
    /// `Container web-1`.
    id: String,
    action: Action,
    phase: StepPhase,
    cause: String,
    began: Instant,
    took: Option<Duration>,
}

impl Entry {
    /// compose's word for where the operation is.
    fn text(&self) -> &'static str {
        match (self.phase, self.action) {
            (StepPhase::Failed, _) => "Error",
            (StepPhase::Working, Action::Create) => "Creating",
            (StepPhase::Working, Action::Pull) => "Pulling",
            (StepPhase::Working, Action::Start) => "Starting",
            (StepPhase::Working, Action::Recreate) => "Recreate",
            (StepPhase::Working, Action::Restart) => "Restarting",
            (StepPhase::Working, Action::Remove) => "Removing",
            (StepPhase::Done, Action::Create) => "Created",
            (StepPhase::Done, Action::Pull) => "Pulled",
            (StepPhase::Done, Action::Start) => "Started",
            (StepPhase::Done, Action::Recreate) => "Recreated",
            (StepPhase::Done, Action::Restart) => "Restarted",
            (StepPhase::Done, Action::Remove) => "Removed",
            (StepPhase::Working, Action::Build) => "Building",
            (StepPhase::Done, Action::Build) => "Built",
            (StepPhase::Working, Action::Stop { .. }) => "Stopping",
            (StepPhase::Done, Action::Stop { .. }) => "Stopped",
            (StepPhase::Working, Action::Kill { .. }) => "Killing",
            (StepPhase::Done, Action::Kill { .. }) => "Killed",
            (StepPhase::Working, Action::Pause) => "Pausing",
            (StepPhase::Done, Action::Pause) => "Paused",
            (StepPhase::Working, Action::Unpause) => "Unpausing",
            (StepPhase::Done, Action::Unpause) => "Unpaused",
        }
    }

    /// What compose puts after the word: here why a container is
    /// recreated, restarted or removed (the changed keys, an orphan), the
    /// one thing a user cannot guess.
    fn status(&self) -> &str {
        match self.action {
            Action::Recreate | Action::Restart => &self.cause,
            Action::Remove if self.cause != "down" => &self.cause,
            _ => "",
        }
    }

    fn elapsed(&self, now: Instant) -> Duration {
        self.took
            .unwrap_or_else(|| now.saturating_duration_since(self.began))
    }
}

fn kind_word(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Network => "Network",
        StepKind::Volume => "Volume",
        StepKind::Image => "Image",
        StepKind::Container => "Container",
    }
}

/// The display of one request's progress.
pub struct Display {
    mode: Mode,
    out: Box<dyn Write + Send>,
    entries: Vec<Entry>,
    /// Lines of the block now on the terminal, to move back over.
    drawn: usize,
    frame: usize,
    width: usize,
    /// Kinds of steps not shown (`--quiet-pull`: images).
    hidden: Vec<StepKind>,
}

impl Display {
    /// A display on standard error (standard output with
    /// COMPOSE_STATUS_STDOUT); `Auto` becomes a terminal display when that
    /// is a terminal.
    pub fn new(mode: Mode, to_stdout: bool) -> Self {
        let (out, is_tty): (Box<dyn Write + Send>, bool) = if to_stdout {
            (Box::new(std::io::stdout()), std::io::stdout().is_terminal())
        } else {
            (Box::new(std::io::stderr()), std::io::stderr().is_terminal())
        };
        let mode = match mode {
            Mode::Auto if is_tty => Mode::Tty,
            Mode::Auto => Mode::Plain,
            m => m,
        };
        let width = crate::terminal::known_size().map_or(80, |(_, cols)| usize::from(cols));
        Self::to(out, mode, width)
    }

    /// A display writing to `out`, `width` columns wide.
    pub fn to(out: Box<dyn Write + Send>, mode: Mode, width: usize) -> Self {
        Self {
            mode,
            out,
            entries: Vec::new(),
            drawn: 0,
            frame: 0,
            width: width.max(20),
            hidden: Vec::new(),
        }
    }

    /// Leaves out the steps on `kind` (`--quiet-pull`: no image lines).
    pub fn hide(&mut self, kind: StepKind) {
        self.hidden.push(kind);
    }

    pub fn show(&mut self, event: Progress<'_>) {
        match event {
            Progress::Line(line) => self.line(line),
            Progress::Step(step) => self.step(step),
        }
    }

    /// A line that is not a step: printed as it is (JSON: as a tail
    /// message), above the block at a terminal. Quiet keeps warnings only.
    pub fn line(&mut self, line: &str) {
        match self.mode {
            Mode::Quiet if !line.starts_with("warning:") => {}
            Mode::Quiet | Mode::Plain | Mode::Auto => {
                let _ = writeln!(self.out, "{line}");
            }
            Mode::Json => {
                let json = serde_json::json!({ "tail": true, "text": line });
                let _ = writeln!(self.out, "{json}");
            }
            Mode::Tty => {
                let mut text = self.back_over_block();
                text.push_str("\x1b[J");
                text.push_str(line);
                text.push('\n');
                let _ = self.out.write_all(text.as_bytes());
                self.drawn = 0;
                self.draw();
            }
        }
        let _ = self.out.flush();
    }

    pub fn step(&mut self, step: &Step) {
        if self.hidden.contains(&step.kind) {
            return;
        }
        let id = format!("{} {}", kind_word(step.kind), step.name);
        let now = Instant::now();
        let took = step.took_ms.map(Duration::from_millis);
        let index = match self.entries.iter().position(|e| e.id == id) {
            Some(i) => {
                let e = &mut self.entries[i];
                e.action = step.action;
                e.phase = step.phase;
                e.cause.clone_from(&step.cause);
                e.took =
                    took.or_else(|| (step.phase != StepPhase::Working).then(|| e.elapsed(now)));
                i
            }
            None => {
                self.entries.push(Entry {
                    id,
                    action: step.action,
                    phase: step.phase,
                    cause: step.cause.clone(),
                    began: took.map_or(now, |t| now.checked_sub(t).unwrap_or(now)),
                    took: took.or((step.phase != StepPhase::Working).then_some(Duration::ZERO)),
                });
                self.entries.len() - 1
            }
        };
        let e = &self.entries[index];
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain | Mode::Auto => {
                let line = format!(" {} {} {}", e.id, e.text(), e.status());
                let _ = writeln!(self.out, "{}", line.trim_end());
            }
            Mode::Json => {
                let mut json = serde_json::json!({ "id": e.id, "text": e.text() });
                if !e.status().is_empty() {
                    json["status"] = e.status().into();
                }
                let _ = writeln!(self.out, "{json}");
            }
            Mode::Tty => self.draw(),
        }
        let _ = self.out.flush();
    }

    /// Advances the spinners and timers of a terminal display.
    pub fn tick(&mut self) {
        if self.mode == Mode::Tty && !self.entries.is_empty() {
            self.frame += 1;
            self.draw();
        }
    }

    /// The last draw, with the final times.
    pub fn finish(&mut self) {
        if self.mode == Mode::Tty && !self.entries.is_empty() {
            self.draw();
        }
    }

    /// Cursor movements back to the first line of the block.
    fn back_over_block(&self) -> String {
        match self.drawn {
            0 => "\r".to_owned(),
            n => format!("\x1b[{n}A\r"),
        }
    }

    /// Redraws the block in place, as compose's tty writer does.
    fn draw(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut text = self.back_over_block();
        text.push_str("\x1b[?25l");
        let done = self
            .entries
            .iter()
            .filter(|e| e.phase == StepPhase::Done)
            .count();
        let header = format!("[+] Running {done}/{}", self.entries.len());
        if done == self.entries.len() {
            text.push_str(&format!("\x1b[34m{header}\x1b[0m\x1b[K\n"));
        } else {
            text.push_str(&format!("{header}\x1b[K\n"));
        }
        let pad = self
            .entries
            .iter()
            .map(|e| e.id.chars().count() + 1 + e.text().len())
            .max()
            .unwrap_or(0);
        for e in &self.entries {
            let mark = match e.phase {
                StepPhase::Working => SPINNER[self.frame % SPINNER.len()],
                StepPhase::Done => '✔',
                StepPhase::Failed => '✘',
            };
            let head = format!("{} {}", e.id, e.text());
            let filler = pad.saturating_sub(head.chars().count());
            let left = format!(" {mark} {head}{} {}", " ".repeat(filler), e.status());
            let timer = format!("{:.1}s", e.elapsed(now).as_secs_f64());
            let line = align(&left, &timer, self.width);
            let colour = match e.phase {
                StepPhase::Working => "",
                StepPhase::Done => "\x1b[34m",
                StepPhase::Failed => "\x1b[31m",
            };
            text.push_str(&format!("{colour}{line}\x1b[0m\x1b[K\n"));
        }
        text.push_str("\x1b[?25h");
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
        self.drawn = 1 + self.entries.len();
    }
}

/// `left` and `right` on one line `width` columns wide, `right` flush
/// right; `left` is cut (with `...`) where both do not fit, so that a line
/// never wraps and the redraw stays in place.
fn align(left: &str, right: &str, width: usize) -> String {
    let room = width.saturating_sub(right.chars().count() + 2);
    let left_len = left.chars().count();
    let left: String = if left_len > room {
        let cut: String = left.chars().take(room.saturating_sub(3)).collect();
        format!("{cut}...")
    } else {
        left.to_owned()
    };
    let filler = room.saturating_sub(left.chars().count());
    format!("{left}{} {right}", " ".repeat(filler))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_cut_to_the_width() {
        let line = align(&"x".repeat(100), "0.1s", 40);
        assert_eq!(line.chars().count(), 39);
        assert!(line.ends_with("... 0.1s"), "{line}");
        let line = align(" ✔ Network n  Created", "0.1s", 40);
        assert_eq!(line.chars().count(), 39);
        assert!(line.starts_with(" ✔ Network n  Created "), "{line}");
    }
}
