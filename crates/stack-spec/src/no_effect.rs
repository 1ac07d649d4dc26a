//! Warnings, each naming its place, for what a file says that `stack`
//! accepts but does not act on: keys the model keeps only to print them back
//! (its `unsupported` and `other` maps), keys the typed project has no place
//! for at all, and values of typed keys the engine does not honour. A file
//! that works under `docker compose` must not silently behave differently.

use crate::error::{Diagnostics, Span};
use crate::model::Project;
use crate::node::{SpanTable, pointer_to_path, span_for};

/// Log drivers the engine writes (both as rotated files).
const LOG_DRIVERS: &[&str] = &["json-file", "local"];

/// Warn once per key. `accepted` is the normalised document as validated,
/// before it was typed into `project`.
pub fn warn(
    accepted: &serde_json::Value,
    project: &Project,
    spans: &SpanTable,
    diags: &mut Diagnostics,
) {
    kept_unsupported(project, spans, diags);
    match serde_json::to_value(project) {
        Ok(kept) => dropped(accepted, &kept, &mut String::new(), spans, diags),
        Err(e) => diags.warn(
            &Span::synthetic("<stack file>"),
            "",
            format!("cannot compare the file with the loaded project: {e}"),
        ),
    }
    for (name, svc) in &project.services {
        if let Some(logging) = &svc.logging
            && let Some(driver) = &logging.driver
            && !LOG_DRIVERS.contains(&driver.as_str())
        {
            let ptr = format!("/services/{}/logging/driver", esc(name));
            at(
                spans,
                diags,
                &ptr,
                &format!(
                    "log driver {driver:?} is not available in stack; output is kept as with json-file"
                ),
            );
        }
    }
}

fn esc(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

fn at(spans: &SpanTable, diags: &mut Diagnostics, ptr: &str, msg: &str) {
    if let Some(span) = span_for(spans, ptr) {
        diags.warn(&span, &pointer_to_path(ptr), msg);
    }
}

/// `build:` keys the builder reads from the kept map (`stack_build::service`
/// honours them, or refuses a value it cannot, when it builds).
const BUILD_KEYS_HONOURED: &[&str] = &["no_cache", "tags", "network", "platforms", "pull"];

/// Keys the model keeps without acting on them (its `unsupported` maps).
fn kept_unsupported(project: &Project, spans: &SpanTable, diags: &mut Diagnostics) {
    let mut ptrs: Vec<String> = project
        .unsupported
        .keys()
        .map(|k| format!("/{}", esc(k)))
        .collect();
    for (name, svc) in &project.services {
        let base = format!("/services/{}", esc(name));
        ptrs.extend(svc.unsupported.keys().map(|k| format!("{base}/{}", esc(k))));
        if let Some(d) = &svc.deploy {
            ptrs.extend(d.other.keys().map(|k| format!("{base}/deploy/{}", esc(k))));
        }
        if let Some(b) = &svc.build {
            ptrs.extend(
                b.other
                    .keys()
                    .filter(|k| !BUILD_KEYS_HONOURED.contains(&k.as_str()))
                    .map(|k| format!("{base}/build/{}", esc(k))),
            );
        }
    }
    for ptr in ptrs {
        at(
            spans,
            diags,
            &ptr,
            "accepted but not supported by stack yet; ignored",
        );
    }
}

/// Keys anywhere in the file that the schema accepts but the typed project
/// has no place for: what the file said (`accepted`) against what was kept
/// (`kept`, the project serialised back). Empty values (`false`, `[]`,
/// `null`...) are left out, as the model does not write defaults back.
fn dropped(
    accepted: &serde_json::Value,
    kept: &serde_json::Value,
    ptr: &mut String,
    spans: &SpanTable,
    diags: &mut Diagnostics,
) {
    use serde_json::Value as J;
    match (accepted, kept) {
        (J::Object(a), J::Object(k)) => {
            for (key, v) in a {
                let len = ptr.len();
                ptr.push('/');
                ptr.push_str(&key.replace('~', "~0").replace('/', "~1"));
                match k.get(key) {
                    Some(kv) => dropped(v, kv, ptr, spans, diags),
                    None if !is_empty_value(v) => {
                        at(
                            spans,
                            diags,
                            ptr,
                            "accepted but has no effect in stack; ignored",
                        );
                    }
                    None => {}
                }
                ptr.truncate(len);
            }
        }
        (J::Array(a), J::Array(k)) if a.len() == k.len() => {
            for (i, (av, kv)) in a.iter().zip(k).enumerate() {
                let len = ptr.len();
                ptr.push_str(&format!("/{i}"));
                dropped(av, kv, ptr, spans, diags);
                ptr.truncate(len);
            }
        }
        _ => {}
    }
}

fn is_empty_value(v: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match v {
        J::Null | J::Bool(false) => true,
        J::String(s) => s.is_empty() || s == "false",
        J::Array(a) => a.is_empty(),
        J::Object(o) => o.is_empty(),
        _ => false,
    }
}
