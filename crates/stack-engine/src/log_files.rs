//! Container logs: one JSON object per line, shaped like Docker's `json-file`
//! driver's (`{"log":"...\n","stream":"stdout","time":...}`, but with the time
//! as nanoseconds since the epoch, cheaper to write and to filter by
//! `--since`), in a file that rotates at `max-size` keeping `max-file` files
//! in all.
//!
//! Rotation renames `ctr.log` to `ctr.log.1` (and `.1` to `.2` ...), so a
//! reader sees the oldest lines in the highest-numbered file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Docker's defaults are unbounded; a host that runs for months needs a bound.
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;
pub const DEFAULT_MAX_FILE: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: Stream,
    /// Nanoseconds since the Unix epoch.
    #[serde(rename = "time")]
    pub time_ns: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: u64,
    pub max_file: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_SIZE,
            max_file: DEFAULT_MAX_FILE,
        }
    }
}

/// Appends entries to a container's log, rotating as configured.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
}

impl LogWriter {
    /// Opens `path` for appending: logs survive container restarts.
    pub fn open(path: &Path, rotation: Rotation) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            rotation,
        })
    }

    pub fn write(&mut self, stream: Stream, line: &str, time: SystemTime) -> io::Result<()> {
        let time_ns = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let entry = Entry {
            log: line.to_owned(),
            stream,
            time_ns,
        };
        let mut bytes = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        bytes.push(b'\n');
        if self.size > 0 && self.size + bytes.len() as u64 > self.rotation.max_size {
            self.rotate()?;
        }
        self.file.write_all(&bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.rotation.max_file.max(1);
        if keep == 1 {
            self.file.set_len(0)?;
        } else {
            let _ = fs::remove_file(numbered(&self.path, keep - 1));
            for n in (1..keep - 1).rev() {
                let from = numbered(&self.path, n);
                if from.exists() {
                    fs::rename(&from, numbered(&self.path, n + 1))?;
                }
            }
            fs::rename(&self.path, numbered(&self.path, 1))?;
            // No current file until the next one is opened: a keeper
            // killed here leaves whole files, and its successor makes it.
            stack_runtime::fault::point("keeper-in-rotate");
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Every entry still kept for the log at `path`, oldest first.
///
/// All the files are opened before any is read, newest first, so that a
/// rotation while reading (which renames them) changes nothing for this
/// reader: an open file is the same file whatever it is called now.
pub fn read_all(path: &Path) -> io::Result<Vec<Entry>> {
    let mut files = Vec::new();
    for candidate in std::iter::once(path.to_owned()).chain((1..).map(|n| numbered(path, n))) {
        match File::open(&candidate) {
            Ok(f) => files.push(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // The live file may be missing for a moment while it
                // rotates; the numbered ones end at the first gap.
                if candidate != path {
                    break;
                }
            }
            Err(e) => return Err(e),
        }
    }
    files.reverse();
    let mut entries = Vec::new();
    for file in files {
        for line in BufReader::new(file).lines() {
            let line = line?;
            // A torn last line (crash mid-write) is skipped, not fatal.
            if let Ok(entry) = serde_json::from_str::<Entry>(&line) {
                entries.push(entry);
            }
        }
    }
    Ok(entries)
}

/// The last `n` entries, as `stack logs --tail N` shows them.
pub fn tail(entries: &[Entry], n: usize) -> &[Entry] {
    &entries[entries.len().saturating_sub(n)..]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn keeps_order_across_rotations_and_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web-1.log");
        let rotation = Rotation {
            max_size: 400,
            max_file: 3,
        };
        let mut w = LogWriter::open(&path, rotation).unwrap();
        for i in 0..100u64 {
            w.write(Stream::Stdout, &format!("line {i}\n"), at(i))
                .unwrap();
        }
        assert!(numbered(&path, 2).exists());
        assert!(
            !numbered(&path, 3).exists(),
            "max-file counts the live file"
        );
        let entries = read_all(&path).unwrap();
        let numbers: Vec<u64> = entries
            .iter()
            .map(|e| e.log.trim()["line ".len()..].parse().unwrap())
            .collect();
        assert_eq!(*numbers.last().unwrap(), 99);
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 1),
            "in order, no gaps"
        );
        let total: u64 = [path.clone(), numbered(&path, 1), numbered(&path, 2)]
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum();
        assert!(total <= 3 * 400);
    }

    #[test]
    fn appends_across_reopen_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db-1.log");
        LogWriter::open(&path, Rotation::default())
            .unwrap()
            .write(Stream::Stderr, "first\n", at(1))
            .unwrap();
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"log\":\"tor")
            .unwrap();
        // A fresh writer after a crash starts on a new line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"\n").unwrap();
        LogWriter::open(&path, Rotation::default())
            .unwrap()
            .write(Stream::Stdout, "second\n", at(2))
            .unwrap();
        let entries = read_all(&path).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].stream, Stream::Stderr);
        assert_eq!(entries[1].log, "second\n");
        assert_eq!(tail(&entries, 1)[0].time_ns, 2_000_000);
    }

    #[test]
    fn one_json_object_per_line() {
        let entry = Entry {
            log: "hi\n".into(),
            stream: Stream::Stdout,
            time_ns: 5,
        };
        assert_eq!(
            serde_json::to_string(&entry).unwrap(),
            r#"{"log":"hi\n","stream":"stdout","time":5}"#
        );
    }
}
