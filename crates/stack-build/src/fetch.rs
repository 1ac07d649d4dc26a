//! `ADD <http(s) URL>`: the file is fetched at every build, into a temporary
//! file beside the store, and its content (not its URL alone) goes into the
//! step's cache key, so a changed file re-runs the step and an unchanged one
//! is CACHED, as Docker's builder does.

use std::io::Write as _;
use std::path::Path;

use sha2::{Digest as _, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url}: the server answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("{url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("{url}: checksum {expected} expected, got sha256:{actual}")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url}: --checksum={expected}: expected sha256:<64 hex digits>")]
    BadChecksum { url: String, expected: String },
}

/// A fetched file: where it is until dropped, the name it is added under,
/// and its sha256.
pub struct Fetched {
    pub file: tempfile::NamedTempFile,
    pub name: String,
    pub sha256: [u8; 32],
}

/// The name a URL's file is added under in a directory: its path's last
/// segment (Docker's rule); empty when the path has none.
pub fn file_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split(['?', '#']).next().unwrap_or("");
    match path.split_once('/') {
        Some((_, p)) => p.rsplit('/').next().unwrap_or("").to_owned(),
        None => String::new(),
    }
}

/// Fetches `url` into a temporary file under `dir`, checking `checksum`
/// (`sha256:HEX`) when given.
pub fn fetch(url: &str, dir: &Path, checksum: Option<&str>) -> Result<Fetched, FetchError> {
    let io = |source| FetchError::Io {
        url: url.to_owned(),
        source,
    };
    let http = |source| FetchError::Http {
        url: url.to_owned(),
        source,
    };
    let expected = match checksum {
        None => None,
        Some(c) => Some(
            c.strip_prefix("sha256:")
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| FetchError::BadChecksum {
                    url: url.to_owned(),
                    expected: c.to_owned(),
                })?,
        ),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    let mut hasher = Sha256::new();
    // A runtime of its own: builds run on blocking threads, never inside
    // the engine's async tasks.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io)?;
    runtime.block_on(async {
        let mut response = reqwest::Client::new().get(url).send().await.map_err(http)?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: response.status(),
            });
        }
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(io)?;
        }
        Ok(())
    })?;
    file.flush().map_err(io)?;
    let sha256: [u8; 32] = hasher.finalize().into();
    if let Some(expected) = expected
        && hex::encode(sha256) != expected
    {
        return Err(FetchError::Checksum {
            url: url.to_owned(),
            expected: format!("sha256:{expected}"),
            actual: hex::encode(sha256),
        });
    }
    Ok(Fetched {
        file,
        name: file_name(url),
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_path() {
        assert_eq!(file_name("http://h:1/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(file_name("https://h/f"), "f");
        assert_eq!(file_name("https://h/"), "");
        assert_eq!(file_name("https://h"), "");
    }
}
