//! Build secrets: what `RUN --mount=type=secret,id=ID` reads, given to a
//! build as `--secret id=ID,src=FILE` (or `env=VAR`) on the command line or
//! by `build: secrets:` in a stack file. A secret is mounted for the step
//! only; it never reaches a layer, the step cache key or the image.

use std::fs;
use std::io;
use std::path::PathBuf;

/// Where a secret's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// A file, read when a step mounts it.
    File(PathBuf),
    /// A value taken when the build was asked for (an environment
    /// variable's or a stack file's inline `content`).
    Value(Vec<u8>),
}

impl Secret {
    pub fn read(&self) -> io::Result<Vec<u8>> {
        match self {
            Secret::File(p) => fs::read(p),
            Secret::Value(v) => Ok(v.clone()),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretFlagError {
    #[error("--secret {0:?}: id is required (id=ID,src=FILE or id=ID,env=VAR)")]
    NoId(String),
    #[error("--secret {flag:?}: field {field:?} is not supported (id, src, env, type)")]
    Field { flag: String, field: String },
    #[error("--secret {flag:?}: type={kind} is not supported (file or env)")]
    Type { flag: String, kind: String },
    #[error("--secret {flag:?}: environment variable {var} is not set")]
    Unset { flag: String, var: String },
}

/// One `--secret` flag as BuildKit reads it: `id=ID[,src=FILE|,env=VAR]`,
/// `type=file|env`; without a source, a file is taken from `src`, else the
/// variable named after the id. `env` looks a name up with `lookup` (the
/// caller's environment).
pub fn parse_flag(
    flag: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(String, Secret), SecretFlagError> {
    let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
    for field in flag.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "id" => id = Some(v.to_owned()),
            "src" | "source" => src = Some(v.to_owned()),
            "env" => env = Some(v.to_owned()),
            "type" => kind = Some(v.to_owned()),
            _ => {
                return Err(SecretFlagError::Field {
                    flag: flag.to_owned(),
                    field: k.to_owned(),
                });
            }
        }
    }
    let id = id
        .filter(|i| !i.is_empty())
        .ok_or_else(|| SecretFlagError::NoId(flag.to_owned()))?;
    let from_env = |var: String| {
        lookup(&var)
            .map(|v| (id.clone(), Secret::Value(v.into_bytes())))
            .ok_or_else(|| SecretFlagError::Unset {
                flag: flag.to_owned(),
                var,
            })
    };
    match kind.as_deref() {
        None | Some("file") if src.is_some() => Ok((
            id.clone(),
            Secret::File(PathBuf::from(src.unwrap_or_default())),
        )),
        Some("env") => from_env(env.or(src).unwrap_or_else(|| id.clone())),
        None if env.is_some() => from_env(env.unwrap_or_default()),
        // Neither: BuildKit looks for a variable named like the id.
        None => from_env(id.clone()),
        Some("file") => Ok((id.clone(), Secret::File(PathBuf::from(&id)))),
        Some(other) => Err(SecretFlagError::Type {
            flag: flag.to_owned(),
            kind: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "t0k".to_owned())
    }

    #[test]
    fn flags_as_buildkit_reads_them() {
        assert_eq!(
            parse_flag("id=npm,src=/x/npmrc", env).unwrap(),
            ("npm".into(), Secret::File("/x/npmrc".into()))
        );
        assert_eq!(
            parse_flag("id=tok,env=TOKEN", env).unwrap(),
            ("tok".into(), Secret::Value(b"t0k".to_vec()))
        );
        assert_eq!(
            parse_flag("id=TOKEN", env).unwrap(),
            ("TOKEN".into(), Secret::Value(b"t0k".to_vec()))
        );
        assert_eq!(
            parse_flag("src=/x", env).unwrap_err(),
            SecretFlagError::NoId("src=/x".into())
        );
        assert!(matches!(
            parse_flag("id=a,env=NOPE", env).unwrap_err(),
            SecretFlagError::Unset { var, .. } if var == "NOPE"
        ));
        assert!(matches!(
            parse_flag("id=a,required", env).unwrap_err(),
            SecretFlagError::Field { field, .. } if field == "required"
        ));
    }
}
