//! The YAML node tree every later stage works on: each node keeps the
//! position it came from, so errors found after merging several files still
//! point at the right file, line and column.

use indexmap::IndexMap;

use crate::error::Span;

/// Compose-specific tags that steer merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeTag {
    /// `!reset`: drop the value inherited from earlier files.
    Reset,
    /// `!override`: replace the inherited value instead of merging with it.
    Override,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Map),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    pub tag: Option<MergeTag>,
}

/// A mapping entry keeps the key's position for errors about the key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key_span: Span,
    pub node: Node,
}

pub type Map = IndexMap<String, Entry>;

impl Node {
    pub fn new(value: Value, span: Span) -> Self {
        Self {
            value,
            span,
            tag: None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key)).map(|e| &e.node)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut()
            .and_then(|m| m.get_mut(key))
            .map(|e| &mut e.node)
    }

    /// What kind of value this is, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "sequence",
            Value::Map(_) => "mapping",
        }
    }

    /// The scalar as text, the way Compose turns scalars into strings
    /// (environment values, labels, sysctls ...).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Null => None,
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(format_float(*f)),
            Value::Str(s) => Some(s.clone()),
            Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// Convert to JSON, recording each node's position under its JSON pointer.
    pub fn to_json(&self, pointer: &mut String, spans: &mut SpanTable) -> serde_json::Value {
        spans.insert(pointer.clone(), self.span.clone());
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    out.push(item.to_json(pointer, spans));
                    pointer.truncate(len);
                }
                serde_json::Value::Array(out)
            }
            Value::Map(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, e) in map {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    spans.insert(format!("{pointer}{KEY_SUFFIX}"), e.key_span.clone());
                    out.insert(k.clone(), e.node.to_json(pointer, spans));
                    pointer.truncate(len);
                }
                serde_json::Value::Object(out)
            }
        }
    }
}

pub fn format_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.0}")
    } else {
        f.to_string()
    }
}

/// Suffix of the span-table entry holding a mapping key's own position.
pub const KEY_SUFFIX: &str = "#key";

/// JSON pointer -> source position.
pub type SpanTable = std::collections::HashMap<String, Span>;

/// Find the position for a JSON pointer, falling back to the nearest parent.
pub fn span_for(spans: &SpanTable, pointer: &str) -> Option<Span> {
    let mut p = pointer;
    loop {
        if let Some(s) = spans.get(p) {
            return Some(s.clone());
        }
        match p.rfind('/') {
            Some(i) => p = &p[..i],
            None => return None,
        }
    }
}

/// `/services/web/ports/1` -> `services.web.ports[1]`.
pub fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_paths_read_like_keys() {
        assert_eq!(
            pointer_to_path("/services/web/ports/1"),
            "services.web.ports[1]"
        );
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(pointer_to_path("/a~1b"), "a/b");
    }
}
