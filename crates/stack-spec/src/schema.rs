//! Structural validation against the Compose Specification's JSON schema,
//! run on the merged, interpolated document. Every violation is reported
//! with its position; unknown keys get a "did you mean" suggestion.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use serde_json::Value as Json;

use crate::error::{Diagnostics, ErrorKind, Span};
use crate::node::{SpanTable, pointer_to_path, span_for};

const COMPOSE_SCHEMA: &str = include_str!("compose-spec.json");

fn schema() -> &'static Json {
    static SCHEMA: OnceLock<Json> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(COMPOSE_SCHEMA).expect("bundled compose schema is valid JSON"))
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| jsonschema::validator_for(schema()).expect("bundled compose schema compiles"))
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

/// Property names allowed by the schema object that holds `keyword_pointer`
/// (the pointer of an `additionalProperties` keyword).
fn allowed_properties(keyword_pointer: &str) -> Vec<String> {
    let parent = keyword_pointer.rsplit_once('/').map_or("", |(p, _)| p);
    schema()
        .pointer(parent)
        .and_then(|s| s.get("properties"))
        .and_then(Json::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

pub fn validate(doc: &Json, spans: &SpanTable, diags: &mut Diagnostics) {
    let fallback = Span::synthetic("<stack file>");
    for err in validator().iter_errors(doc) {
        let pointer = err.instance_path.as_str().to_string();
        let span = span_for(spans, &pointer).unwrap_or_else(|| fallback.clone());
        let path = pointer_to_path(&pointer);
        match &err.kind {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed = allowed_properties(err.schema_path.as_str());
                for key in unexpected {
                    let key_pointer = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                    let key_span = span_for(spans, &key_pointer).unwrap_or_else(|| span.clone());
                    let key_path = pointer_to_path(&key_pointer);
                    let hint = suggest(key, allowed.iter().map(String::as_str))
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    diags.error(ErrorKind::Schema, &key_span, &key_path, format!("unknown key `{key}`{hint}"));
                }
            }
            _ => diags.error(ErrorKind::Schema, &span, &path, err.to_string()),
        }
    }
}
