//! YAML text -> [`Node`] trees, one per document, built from the parser's
//! event stream so that we decide the Compose-relevant semantics ourselves:
//! go-yaml's scalar typing (`yes`/`no` stay strings, `0440` is octal), unique
//! keys, `<<` merge keys, `!reset`/`!override` tags, and a budget on alias
//! expansion so that an alias bomb is refused quickly with bounded memory.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YSpan};

use crate::error::{ErrorKind, LoadError, Span};
use crate::node::{Entry, Map, MergeTag, Node, Value};

/// Most nodes alias expansion may create in one file. A 1,000-service file
/// expands a few tens of thousands of nodes through aliases at most; a billion-laughs bomb expands billions.
const ALIAS_NODE_BUDGET: usize = 250_000;
/// Deepest nesting accepted; protects the recursive stages after parsing.
const MAX_DEPTH: usize = 256;

/// Parse every document of `text`. `file` is the name errors show.
///
/// go-yaml (what `docker compose` reads files with) and PyYAML accept the
/// closing `]` or `}` of a multi-line flow collection at or left of its
/// parent key's column, as in
///
/// ```yaml
/// test: [
///   "CMD", "true"
/// ]
/// ```
///
/// which YAML 1.2 and saphyr refuse ("invalid indentation"). Real projects
/// ship such files, so when the parser refuses a line that holds only such
/// closing indicators, that line is indented one column past the line above
/// it and the text parsed again; positions on the moved line are mapped back
/// so that errors and spans still point into the file as written.
pub fn parse(text: &str, file: &Arc<str>) -> Result<Vec<Node>, LoadError> {
    let mut text = std::borrow::Cow::Borrowed(text);
    let mut shifts = Shifts::new();
    loop {
        match parse_once(&text, file, &shifts) {
            Ok(docs) => return Ok(docs),
            Err(Failure::Built(e)) => return Err(e),
            Err(Failure::Scan { line, col, error }) => {
                if error.message == "invalid indentation"
                    && shifts.len() < MAX_REINDENTS
                    && !shifts.contains_key(&line)
                    && let Some((fixed, pad)) = indent_flow_close(&text, line, col)
                {
                    shifts.insert(line, (col, pad));
                    text = std::borrow::Cow::Owned(fixed);
                    continue;
                }
                return Err(error);
            }
        }
    }
}

/// Most closing lines re-indented in one file: each costs a parse of the
/// whole text, and real files have a few.
const MAX_REINDENTS: usize = 64;

/// Per 1-based line: the 0-based column where padding was inserted and how
/// many spaces.
type Shifts = HashMap<u32, (u32, u32)>;

enum Failure {
    /// The scanner refused the text at `line` (1-based), `col` (0-based, in
    /// the text as parsed).
    Scan {
        line: u32,
        col: u32,
        error: LoadError,
    },
    Built(LoadError),
}

/// The position in the file as written of a position in the padded text.
fn unshift(shifts: &Shifts, line: u32, col: u32) -> u32 {
    match shifts.get(&line) {
        Some(&(at, pad)) if col >= at + pad => col - pad,
        Some(&(at, _)) if col >= at => at,
        _ => col,
    }
}

/// If line `line` (1-based) holds only closing flow indicators (and maybe a
/// comment) starting at `col`, the text with that line indented one column
/// past the previous non-blank line, and the padding added.
fn indent_flow_close(text: &str, line: u32, col: u32) -> Option<(String, u32)> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let idx = usize::try_from(line).ok()?.checked_sub(1)?;
    let target = lines.get(idx)?;
    let indent = |l: &str| l.len() - l.trim_start_matches([' ', '\t']).len();
    let body = target.trim_start_matches([' ', '\t']);
    if indent(target) != col as usize || !body.starts_with([']', '}']) {
        return None;
    }
    let rest = body.trim_start_matches([']', '}', ',', ' ', '\t']);
    let rest = rest.trim_end();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return None;
    }
    let prev = lines[..idx]
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    let want = indent(prev) + 1;
    let pad = want.checked_sub(col as usize).filter(|p| *p > 0)?;
    let mut out = String::with_capacity(text.len() + pad);
    for (i, l) in lines.iter().enumerate() {
        if i == idx {
            out.push_str(&" ".repeat(pad));
        }
        out.push_str(l);
    }
    Some((out, u32::try_from(pad).ok()?))
}

fn parse_once(text: &str, file: &Arc<str>, shifts: &Shifts) -> Result<Vec<Node>, Failure> {
    let mut b = Builder {
        file: file.clone(),
        shifts,
        anchors: HashMap::new(),
        expanded: 0,
        stack: Vec::new(),
        docs: Vec::new(),
    };
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| {
            let m = e.marker();
            let (line, col) = (m.line() as u32, m.col() as u32);
            Failure::Scan {
                line,
                col,
                error: LoadError::new(
                    ErrorKind::Yaml,
                    Span::new(file.clone(), line, unshift(shifts, line, col) + 1),
                    "",
                    e.info().to_string(),
                ),
            }
        })?;
        b.event(ev, span).map_err(Failure::Built)?;
    }
    Ok(b.docs)
}

struct Builder<'s> {
    file: Arc<str>,
    shifts: &'s Shifts,
    /// Completed anchored nodes and their size in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    expanded: usize,
    stack: Vec<Frame>,
    docs: Vec<Node>,
}

enum Frame {
    Seq {
        node: Node,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        node: Node,
        anchor: usize,
        map: Map,
        merges: Vec<Node>,
        key: Option<(String, Span, bool)>,
    },
}

fn merge_tag(tag: Option<&saphyr_parser::Tag>) -> Option<MergeTag> {
    let tag = tag?;
    if tag.handle == "!" {
        match tag.suffix.as_str() {
            "reset" => return Some(MergeTag::Reset),
            "override" => return Some(MergeTag::Override),
            _ => {}
        }
    }
    None
}

fn count(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Value::Map(m) => 1 + m.values().map(|e| count(&e.node)).sum::<usize>(),
        _ => 1,
    }
}

impl Builder<'_> {
    fn span(&self, s: &YSpan) -> Span {
        let line = s.start.line() as u32;
        Span::new(
            self.file.clone(),
            line,
            unshift(self.shifts, line, s.start.col() as u32) + 1,
        )
    }

    fn err(&self, span: &Span, msg: impl Into<String>) -> LoadError {
        LoadError::new(ErrorKind::Yaml, span.clone(), "", msg)
    }

    fn event(&mut self, ev: Event<'_>, ys: YSpan) -> Result<(), LoadError> {
        let span = self.span(&ys);
        match ev {
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => Ok(()),
            Event::Alias(id) => {
                let Some((node, size)) = self.anchors.get(&id) else {
                    return Err(self.err(
                        &span,
                        "alias refers to an anchor that is not complete yet (a node cannot include itself)",
                    ));
                };
                self.expanded += size;
                if self.expanded > ALIAS_NODE_BUDGET {
                    return Err(self.err(
                        &span,
                        format!(
                            "excessive aliasing: alias expansion exceeds {ALIAS_NODE_BUDGET} nodes"
                        ),
                    ));
                }
                let mut node = node.clone();
                // The alias's own position is more useful for errors about the key it fills.
                node.span = span;
                self.push_value(node, true)
            }
            Event::Scalar(text, style, anchor, tag) => {
                let forced_str = tag
                    .as_ref()
                    .is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !forced_str {
                    resolve_plain(&text)
                } else {
                    Value::Str(text.into_owned())
                };
                let mut node = Node::new(value, span);
                node.tag = merge_tag(tag.as_deref());
                if node.tag == Some(MergeTag::Reset)
                    && matches!(node.value, Value::Str(ref s) if s.is_empty())
                {
                    node.value = Value::Null;
                }
                if anchor > 0 {
                    self.anchors.insert(anchor, (node.clone(), 1));
                }
                let is_merge_key = style == ScalarStyle::Plain
                    && matches!(node.value, Value::Str(ref s) if s == "<<");
                self.push_scalar(node, is_merge_key)
            }
            Event::SequenceStart(anchor, tag) => {
                self.depth_check(&span)?;
                let mut node = Node::new(Value::Null, span);
                node.tag = merge_tag(tag.as_deref());
                self.stack.push(Frame::Seq {
                    node,
                    anchor,
                    items: Vec::new(),
                });
                Ok(())
            }
            Event::MappingStart(anchor, tag) => {
                self.depth_check(&span)?;
                let mut node = Node::new(Value::Null, span);
                node.tag = merge_tag(tag.as_deref());
                self.stack.push(Frame::Map {
                    node,
                    anchor,
                    map: Map::new(),
                    merges: Vec::new(),
                    key: None,
                });
                Ok(())
            }
            Event::SequenceEnd => {
                let Some(Frame::Seq {
                    mut node,
                    anchor,
                    items,
                }) = self.stack.pop()
                else {
                    return Err(self.err(&span, "unbalanced sequence"));
                };
                node.value = Value::Seq(items);
                self.finish(node, anchor)
            }
            Event::MappingEnd => {
                let Some(Frame::Map {
                    mut node,
                    anchor,
                    mut map,
                    merges,
                    ..
                }) = self.stack.pop()
                else {
                    return Err(self.err(&span, "unbalanced mapping"));
                };
                // Merge keys: explicit keys win, then earlier merge sources win over later ones.
                for src in merges {
                    let Value::Map(m) = src.value else { continue };
                    for (k, e) in m {
                        map.entry(k).or_insert(e);
                    }
                }
                node.value = Value::Map(map);
                self.finish(node, anchor)
            }
        }
    }

    fn depth_check(&self, span: &Span) -> Result<(), LoadError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.err(span, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), LoadError> {
        if anchor > 0 {
            let size = count(&node);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        self.push_value(node, false)
    }

    fn push_scalar(&mut self, node: Node, is_merge_key: bool) -> Result<(), LoadError> {
        if let Some(Frame::Map {
            key: key @ None, ..
        }) = self.stack.last_mut()
        {
            let key_text = match &node.value {
                Value::Str(s) => s.clone(),
                other => {
                    let shown = node.scalar_text().unwrap_or_else(|| "null".into());
                    let _ = other;
                    return Err(LoadError::new(
                        ErrorKind::Yaml,
                        node.span.clone(),
                        "",
                        format!("non-string key: {shown} (quote it to use it as a key)"),
                    ));
                }
            };
            *key = Some((key_text, node.span, is_merge_key));
            return Ok(());
        }
        self.push_value(node, false)
    }

    fn push_value(&mut self, node: Node, from_alias: bool) -> Result<(), LoadError> {
        match self.stack.last_mut() {
            None => {
                self.docs.push(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                key, map, merges, ..
            }) => {
                let Some((k, key_span, is_merge)) = key.take() else {
                    let _ = from_alias;
                    return Err(LoadError::new(
                        ErrorKind::Yaml,
                        node.span.clone(),
                        "",
                        format!(
                            "non-string key: a {} cannot be a mapping key",
                            node.type_name()
                        ),
                    ));
                };
                if is_merge {
                    match node.value {
                        Value::Map(_) => merges.push(node),
                        Value::Seq(items) => {
                            for item in items {
                                if !matches!(item.value, Value::Map(_)) {
                                    return Err(LoadError::new(
                                        ErrorKind::Yaml,
                                        item.span.clone(),
                                        "",
                                        "merge key `<<` needs a mapping or a sequence of mappings",
                                    ));
                                }
                                merges.push(item);
                            }
                        }
                        _ => {
                            return Err(LoadError::new(
                                ErrorKind::Yaml,
                                node.span.clone(),
                                "",
                                format!(
                                    "merge key `<<` needs a mapping or a sequence of mappings, found a {}",
                                    node.type_name()
                                ),
                            ));
                        }
                    }
                    return Ok(());
                }
                if let Some(prev) = map.get(&k) {
                    return Err(LoadError::new(
                        ErrorKind::Yaml,
                        key_span,
                        "",
                        format!(
                            "duplicate key `{k}` (first defined at line {})",
                            prev.key_span.line
                        ),
                    ));
                }
                map.insert(k, Entry { key_span, node });
                Ok(())
            }
        }
    }
}

/// go-yaml's typing of plain scalars (YAML 1.2 core schema plus octal `0440`).
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_int(s) {
        return Value::Int(i);
    }
    if is_float(s)
        && let Ok(f) = s.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(s.to_string())
}

fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let body = body.replace('_', "");
    if body.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = body.strip_prefix("0x") {
        (h.to_string(), 16)
    } else if let Some(o) = body.strip_prefix("0o") {
        (o.to_string(), 8)
    } else if let Some(b) = body.strip_prefix("0b") {
        (b.to_string(), 2)
    } else if body.len() > 1
        && body.starts_with('0')
        && body.bytes().all(|c| (b'0'..=b'7').contains(&c))
    {
        (body[1..].to_string(), 8)
    } else {
        (body, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn is_float(s: &str) -> bool {
    let b = s.trim_start_matches(['-', '+']);
    let mut parts = b.splitn(2, ['e', 'E']);
    let mant = parts.next().unwrap_or("");
    let exp = parts.next();
    let mant_ok = {
        let mut it = mant.splitn(2, '.');
        let a = it.next().unwrap_or("");
        let c = it.next();
        let a_ok = a.bytes().all(|x| x.is_ascii_digit());
        match c {
            Some(c) => {
                a_ok && c.bytes().all(|x| x.is_ascii_digit()) && !(a.is_empty() && c.is_empty())
            }
            None => a_ok && !a.is_empty(),
        }
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.trim_start_matches(['-', '+']);
        !e.is_empty() && e.bytes().all(|x| x.is_ascii_digit())
    });
    mant_ok && exp_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Result<Node, LoadError> {
        parse(text, &Arc::from("t.yaml")).map(|mut d| d.remove(0))
    }

    #[test]
    fn scalars_follow_go_yaml() {
        let n = doc("a: yes\nb: 0440\nc: 22:22\nd: true\ne: 1.5\nf: '1'\ng: 0o17\nh: ~\ni: 0x1F\n")
            .unwrap();
        assert_eq!(n.get("a").unwrap().value, Value::Str("yes".into()));
        assert_eq!(n.get("b").unwrap().value, Value::Int(288));
        assert_eq!(n.get("c").unwrap().value, Value::Str("22:22".into()));
        assert_eq!(n.get("d").unwrap().value, Value::Bool(true));
        assert_eq!(n.get("e").unwrap().value, Value::Float(1.5));
        assert_eq!(n.get("f").unwrap().value, Value::Str("1".into()));
        assert_eq!(n.get("g").unwrap().value, Value::Int(15));
        assert_eq!(n.get("h").unwrap().value, Value::Null);
        assert_eq!(n.get("i").unwrap().value, Value::Int(31));
    }

    #[test]
    fn positions_are_one_based() {
        let n = doc("a:\n  b: 1\n").unwrap();
        let b = n.get("a").unwrap().get("b").unwrap();
        assert_eq!((b.span.line, b.span.col), (2, 6));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = doc("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert!(e.message.contains("duplicate key `a`"), "{e}");
        assert_eq!(e.span.line, 3);
    }

    #[test]
    fn merge_keys_fill_missing_keys_only() {
        let n = doc("x: &d {a: 1, b: 2}\ny:\n  <<: *d\n  b: 3\n").unwrap();
        let y = n.get("y").unwrap();
        assert_eq!(y.get("a").unwrap().value, Value::Int(1));
        assert_eq!(y.get("b").unwrap().value, Value::Int(3));
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for c in 'b'..='k' {
            text.push_str(&format!("{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = c;
        }
        let start = std::time::Instant::now();
        let e = doc(&text).unwrap_err();
        assert!(e.message.contains("excessive aliasing"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn self_referencing_merge_is_refused() {
        assert!(doc("x: &h\n  e:\n    <<: *h\n").is_err());
    }

    #[test]
    fn non_string_keys_are_refused() {
        let e = doc("123: a\n").unwrap_err();
        assert!(e.message.contains("non-string key: 123"), "{e}");
    }

    #[test]
    fn tags_are_kept() {
        let n = doc("a: !reset []\nb: !override {x: 1}\nc: !reset\n").unwrap();
        assert_eq!(n.get("a").unwrap().tag, Some(MergeTag::Reset));
        assert_eq!(n.get("b").unwrap().tag, Some(MergeTag::Override));
        assert_eq!(n.get("c").unwrap().value, Value::Null);
    }
}
