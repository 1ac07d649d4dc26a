//! How a failed command ends: the one place where an error becomes the
//! exit code and the words (or, with `--format json`, the JSON object) the
//! user sees. Commands return the engine's typed error as it came over the
//! control socket; nothing before this point turns it into text.

use std::process::ExitCode;

use stack_engine::api::{EngineError, ErrorKind};

/// The exit code of a failure of this kind. Every kind exits 1, as
/// `docker compose` does for every failed command, so scripts written for
/// it keep working; the kind itself is in the JSON form.
pub fn exit_code(kind: Option<&ErrorKind>) -> u8 {
    match kind {
        // Docker's statuses for a program that cannot run (126, 127).
        Some(ErrorKind::CannotExecute { status }) => *status,
        Some(
            ErrorKind::FileInvalid
            | ErrorKind::NoSuchService { .. }
            | ErrorKind::NotFound
            | ErrorKind::ImageNotFound { .. }
            | ErrorKind::DependencyFailed { .. }
            | ErrorKind::ServiceFailed { .. }
            | ErrorKind::PortInUse { .. }
            | ErrorKind::LockHeld { .. }
            | ErrorKind::Conflict
            | ErrorKind::Timeout
            | ErrorKind::Unsupported
            | ErrorKind::Host
            | ErrorKind::Protocol,
        )
        | None => 1,
    }
}

/// The engine's error inside `err`, if it came from the engine.
fn engine_error(err: &anyhow::Error) -> Option<&EngineError> {
    err.chain().find_map(|e| e.downcast_ref::<EngineError>())
}

/// The JSON form: `{"error": {"kind": ..., <facts>, "message": ...}}`;
/// errors that did not come from the engine have no kind.
pub fn to_json(err: &anyhow::Error) -> serde_json::Value {
    let error = match engine_error(err) {
        Some(e) => {
            let mut value = serde_json::to_value(e).unwrap_or_default();
            value["message"] = format!("{err:#}").into();
            value
        }
        None => serde_json::json!({ "message": format!("{err:#}") }),
    };
    serde_json::json!({ "error": error })
}

/// Prints `err` (`error: ...` on standard error, or its JSON form on
/// standard output) and returns the exit code.
pub fn report(err: &anyhow::Error, json: bool) -> ExitCode {
    use std::io::Write;
    // Not println!/eprintln!: a closed or full stream must not turn an
    // error into a panic.
    if json {
        let _ = writeln!(std::io::stdout(), "{}", to_json(err));
    } else {
        let _ = writeln!(std::io::stderr(), "error: {}", crate::chain(err));
    }
    ExitCode::from(exit_code(engine_error(err).map(|e| &e.kind)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_error_keeps_its_kind_and_facts_in_json() {
        let err = anyhow::Error::new(EngineError::new(
            ErrorKind::DependencyFailed {
                service: "db".into(),
                exit_code: Some(3),
            },
            "start web-1: dependency db exited with code 3",
        ));
        assert_eq!(
            to_json(&err),
            serde_json::json!({"error": {
                "kind": "dependency_failed",
                "service": "db",
                "exit_code": 3,
                "message": "start web-1: dependency db exited with code 3",
            }})
        );
        assert_eq!(exit_code(engine_error(&err).map(|e| &e.kind)), 1);
    }

    #[test]
    fn other_errors_have_a_message_only() {
        let err = anyhow::anyhow!("cannot start the async runtime");
        assert_eq!(
            to_json(&err),
            serde_json::json!({"error": {"message": "cannot start the async runtime"}})
        );
        assert!(engine_error(&err).is_none());
    }
}
