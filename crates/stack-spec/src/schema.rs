//! Structural validation against the Compose Specification's JSON schema,
//! run on the merged, interpolated document. Every violation is reported
//! with its position; unknown keys get a "did you mean" suggestion.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use serde_json::Value as Json;

use crate::error::{Diagnostics, ErrorKind, Span};
use crate::node::{KEY_SUFFIX, SpanTable, pointer_to_path, span_for};

const COMPOSE_SCHEMA: &str = include_str!("compose-spec.json");

fn schema() -> &'static Json {
    static SCHEMA: OnceLock<Json> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(COMPOSE_SCHEMA).expect("bundled compose schema is valid JSON")
    })
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        // The schema only uses draft-7 features; compiling it as draft 7 skips
        // the 2020-12 meta-schema's dynamic references, which cost more than
        // loading a large file.
        let mut s = schema().clone();
        if let Some(o) = s.as_object_mut() {
            o.remove("$schema");
        }
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .build(&s)
            .expect("bundled compose schema compiles")
    })
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A short description of a value for "found ..." messages.
fn describe(v: &Json) -> String {
    let shown = v.to_string();
    let shown = if shown.len() > 40 {
        format!("{}...", &shown[..shown.floor_char_boundary(37)])
    } else {
        shown
    };
    let kind = match v {
        Json::Null => return "nothing (null)".into(),
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a mapping",
    };
    format!("{kind} {shown}")
}

/// Resolve a keyword location (through `$ref`s) to the schema node it names.
fn schema_at(pointer: &str) -> Option<&'static Json> {
    let root = schema();
    let mut node = Some(root);
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        node = node.and_then(|n| {
            if seg == "$ref" {
                n.get("$ref")
                    .and_then(Json::as_str)
                    .and_then(|r| root.pointer(r.trim_start_matches('#')))
            } else if let Some(arr) = n.as_array() {
                seg.parse::<usize>().ok().and_then(|i| arr.get(i))
            } else {
                n.get(seg.as_str())
            }
        });
    }
    node
}

/// The shapes a `type`/`oneOf`/`anyOf` keyword allows, in words.
fn expected_shapes(keyword_pointer: &str) -> Vec<String> {
    fn shapes(n: &Json, out: &mut Vec<String>, depth: usize) {
        if depth > 4 {
            return;
        }
        let n = match n.get("$ref").and_then(Json::as_str) {
            Some(r) => match schema().pointer(r.trim_start_matches('#')) {
                Some(t) => t,
                None => return,
            },
            None => n,
        };
        let mut push = |t: &str| {
            let w = match t {
                "string" => "a string",
                "number" => "a number",
                "integer" => "an integer",
                "boolean" => "a boolean",
                "array" => "a list",
                "object" => "a mapping",
                "null" => "nothing",
                _ => return,
            };
            if !out.iter().any(|o| o == w) {
                out.push(w.to_string());
            }
        };
        match n.get("type") {
            Some(Json::String(t)) => push(t),
            Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).for_each(push),
            _ => {}
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Json::Array(alts)) = n.get(key) {
                for a in alts {
                    shapes(a, out, depth + 1);
                }
            }
        }
    }
    let mut out = Vec::new();
    let parent = keyword_pointer.rsplit_once('/').map_or("", |(p, _)| p);
    if let Some(n) = schema_at(parent) {
        shapes(n, &mut out, 0);
    }
    out
}

/// Property names allowed by the schema object that holds `keyword_pointer`
/// (the pointer of an `additionalProperties` keyword).
fn allowed_properties(keyword_pointer: &str) -> Vec<String> {
    let parent = keyword_pointer.rsplit_once('/').map_or("", |(p, _)| p);
    schema_at(parent)
        .and_then(|s| s.get("properties"))
        .and_then(Json::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

pub fn validate(doc: &Json, spans: &SpanTable, diags: &mut Diagnostics) {
    // The fast yes/no check first: collecting errors costs more.
    if validator().is_valid(doc) {
        return;
    }
    for err in validator().iter_errors(doc) {
        report(&err, spans, diags, 0);
    }
}

/// Of the alternatives of a failed `oneOf`/`anyOf`, the one meant: the only
/// one whose shape matches the value (its errors are then the real ones).
fn meant_alternative<'a>(
    instance_path: &str,
    context: &'a [Vec<jsonschema::ValidationError<'static>>],
) -> Option<&'a [jsonschema::ValidationError<'static>]> {
    let mut matching = context.iter().filter(|errs| {
        !errs.iter().any(|e| {
            e.instance_path.as_str() == instance_path
                && matches!(
                    e.kind,
                    ValidationErrorKind::Type { .. }
                        | ValidationErrorKind::OneOfNotValid { .. }
                        | ValidationErrorKind::AnyOf { .. }
                )
        })
    });
    let first = matching.next()?;
    if matching.next().is_some() || first.is_empty() {
        return None;
    }
    Some(first)
}

fn report(
    err: &jsonschema::ValidationError<'_>,
    spans: &SpanTable,
    diags: &mut Diagnostics,
    depth: usize,
) {
    let fallback = Span::synthetic("<stack file>");
    let pointer = err.instance_path.as_str().to_string();
    let span = span_for(spans, &pointer).unwrap_or_else(|| fallback.clone());
    let path = pointer_to_path(&pointer);
    match &err.kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_properties(err.schema_path.as_str());
            for key in unexpected {
                let key_pointer =
                    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                let key_span = spans
                    .get(&format!("{key_pointer}{KEY_SUFFIX}"))
                    .cloned()
                    .or_else(|| span_for(spans, &key_pointer))
                    .unwrap_or_else(|| span.clone());
                let key_path = pointer_to_path(&key_pointer);
                let hint = suggest(key, allowed.iter().map(String::as_str))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                diags.error(
                    ErrorKind::Schema,
                    &key_span,
                    &key_path,
                    format!("unknown key `{key}`{hint}"),
                );
            }
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context }
            if depth < 8 && meant_alternative(&pointer, context).is_some() =>
        {
            for inner in meant_alternative(&pointer, context).unwrap_or_default() {
                report(inner, spans, diags, depth + 1);
            }
        }
        ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::AnyOf { .. }
        | ValidationErrorKind::Type { .. } => {
            let expected = expected_shapes(err.schema_path.as_str());
            let found = describe(&err.instance);
            let msg = if expected.is_empty() {
                format!("found {found}, which is not allowed here")
            } else {
                format!("found {found}, expected {}", expected.join(" or "))
            };
            diags.error(ErrorKind::Schema, &span, &path, msg);
        }
        _ => diags.error(ErrorKind::Schema, &span, &path, err.to_string()),
    }
}
