//! Merging a later file over an earlier one (and an `extends` service over
//! its base) with Compose's rules: mappings merge key by key, `command`,
//! `entrypoint` and `healthcheck.test` are replaced, `ports` and `volumes`
//! merge by their identity, other sequences append without duplicates;
//! `!reset` removes the inherited value and `!override` replaces it.

use crate::node::{Entry, Map, MergeTag, Node, Value};

/// Sequences that may also be written as mappings; turned into mappings
/// before merging so that they merge by key.
const LIST_OR_DICT: &[&str] = &["environment", "labels", "annotations", "sysctls"];

/// Turn `["A=1", "B"]` into `{A: "1", B: null}` (the form merges work on).
pub fn list_to_map(node: &mut Node) {
    let Value::Seq(items) = &node.value else {
        return;
    };
    // An entry with an empty name (`=x`, what `$UNSET=x` interpolates to)
    // has no mapping form the schema takes; Compose validates the list form
    // and keeps such an entry, so the list is left as it is.
    if items.iter().any(|i| {
        i.scalar_text()
            .is_some_and(|t| t.is_empty() || t.starts_with('='))
    }) {
        return;
    }
    let mut map = Map::new();
    for item in items {
        let Some(text) = item.scalar_text() else {
            return;
        };
        let (k, v) = match text.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::Str(v.to_string())),
            None => (text.clone(), Value::Null),
        };
        map.insert(
            k,
            Entry {
                key_span: item.span.clone(),
                node: Node::new(v, item.span.clone()),
            },
        );
    }
    node.value = Value::Map(map);
}

/// Put a service's mergeable fields in their mapping form.
pub fn prepare_service(svc: &mut Node) {
    let Some(map) = svc.as_map_mut() else { return };
    for key in LIST_OR_DICT {
        if let Some(e) = map.get_mut(*key) {
            list_to_map(&mut e.node);
        }
    }
    for key in ["depends_on", "networks"] {
        if let Some(e) = map.get_mut(key)
            && let Value::Seq(items) = &e.node.value
        {
            let mut m = Map::new();
            for item in items {
                if let Some(name) = item.as_str() {
                    // `depends_on: [a]` means "a started"; `networks: [a]` means "a, no settings".
                    let value = if key == "depends_on" {
                        let mut cond = Map::new();
                        let span = item.span.clone();
                        cond.insert(
                            "condition".into(),
                            Entry {
                                key_span: span.clone(),
                                node: Node::new(Value::Str("service_started".into()), span),
                            },
                        );
                        Value::Map(cond)
                    } else {
                        Value::Null
                    };
                    m.insert(
                        name.to_string(),
                        Entry {
                            key_span: item.span.clone(),
                            node: Node::new(value, item.span.clone()),
                        },
                    );
                }
            }
            e.node.value = Value::Map(m);
        }
    }
    if let Some(build) = map.get_mut("build") {
        if let Value::Str(ctx) = &build.node.value {
            let span = build.node.span.clone();
            let mut m = Map::new();
            m.insert(
                "context".into(),
                Entry {
                    key_span: span.clone(),
                    node: Node::new(Value::Str(ctx.clone()), span),
                },
            );
            build.node.value = Value::Map(m);
        }
        if let Some(args) = build.node.get_mut("args") {
            list_to_map(args);
        }
        if let Some(labels) = build.node.get_mut("labels") {
            list_to_map(labels);
        }
    }
}

/// Merge `over` onto `base` (`path` is the dotted key path, used to pick the rule).
pub fn merge(base: &mut Node, over: Node, path: &str) {
    match over.tag {
        Some(MergeTag::Override) | Some(MergeTag::Reset) => {
            *base = over;
            return;
        }
        None => {}
    }
    if replaces(path) {
        *base = over;
        return;
    }
    match (&mut base.value, over.value) {
        (Value::Map(bm), Value::Map(om)) => {
            for (k, e) in om {
                if e.node.tag == Some(MergeTag::Reset) {
                    bm.shift_remove(&k);
                    continue;
                }
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match bm.get_mut(&k) {
                    Some(be)
                        if !matches!(e.node.value, Value::Null)
                            || !path_allows_null_merge(&child) =>
                    {
                        merge(&mut be.node, e.node, &child)
                    }
                    Some(_) => {}
                    None => {
                        bm.insert(k, e);
                    }
                }
            }
        }
        (Value::Seq(bs), Value::Seq(os)) => {
            let ident = identity_fn(path);
            for item in os {
                match ident.and_then(|f| f(&item)).and_then(|id| {
                    bs.iter()
                        .position(|b| ident.and_then(|f| f(b)).as_deref() == Some(id.as_str()))
                }) {
                    Some(i) => bs[i] = item,
                    None => {
                        if !bs.iter().any(|b| same(b, &item)) {
                            bs.push(item);
                        }
                    }
                }
            }
        }
        (_, v) => {
            base.value = v;
            base.span = over.span;
        }
    }
}

/// `networks: {front: null}` over `{front: {aliases: [a]}}` keeps the settings.
fn path_allows_null_merge(path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    matches!(
        parts.as_slice(),
        ["services", _, "networks" | "depends_on", _]
    )
}

fn replaces(path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    matches!(
        parts.as_slice(),
        ["services", _, "command" | "entrypoint"] | ["services", _, "healthcheck", "test"]
    )
}

type IdentFn = fn(&Node) -> Option<String>;

fn identity_fn(path: &str) -> Option<IdentFn> {
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["services", _, "volumes"] => Some(volume_target),
        ["services", _, "ports"] => Some(port_identity),
        ["services", _, "secrets" | "configs"] => Some(file_ref_identity),
        _ => None,
    }
}

fn volume_target(n: &Node) -> Option<String> {
    match &n.value {
        Value::Str(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            Some(match parts.len() {
                1 => parts[0].to_string(),
                _ => parts[1].to_string(),
            })
        }
        Value::Map(_) => n.get("target").and_then(Node::as_str).map(str::to_string),
        _ => None,
    }
}

fn port_identity(n: &Node) -> Option<String> {
    match &n.value {
        Value::Map(_) => {
            let f = |k: &str| n.get(k).and_then(Node::scalar_text).unwrap_or_default();
            Some(format!(
                "{}:{}:{}/{}",
                f("host_ip"),
                f("published"),
                f("target"),
                f("protocol")
            ))
        }
        _ => n.scalar_text(),
    }
}

fn file_ref_identity(n: &Node) -> Option<String> {
    match &n.value {
        Value::Str(s) => Some(s.clone()),
        Value::Map(_) => n.get("source").and_then(Node::as_str).map(str::to_string),
        _ => None,
    }
}

/// Equality of values, ignoring positions.
pub fn same(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, e)| y.get(k).is_some_and(|f| same(&e.node, &f.node)))
        }
        (x, y) => x == y,
    }
}

/// Drop `!reset` values left where nothing was inherited.
pub fn strip_resets(node: &mut Node) {
    match &mut node.value {
        Value::Map(m) => {
            m.retain(|_, e| e.node.tag != Some(MergeTag::Reset));
            for e in m.values_mut() {
                strip_resets(&mut e.node);
            }
        }
        Value::Seq(items) => {
            items.retain(|n| n.tag != Some(MergeTag::Reset));
            for n in items {
                strip_resets(n);
            }
        }
        _ => {}
    }
    node.tag = None;
}

/// Prepare every service of a document for merging.
pub fn prepare_document(doc: &mut Node) {
    if let Some(services) = doc.get_mut("services").and_then(Node::as_map_mut) {
        for e in services.values_mut() {
            prepare_service(&mut e.node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn doc(t: &str) -> Node {
        let mut d = crate::yaml::parse(t, &Arc::from("t")).unwrap().remove(0);
        prepare_document(&mut d);
        d
    }

    #[test]
    fn compose_merge_rules() {
        let mut a = doc(
            "services:\n  w:\n    command: [a, b]\n    environment: [A=1, B=2]\n    ports: ['80:80']\n    volumes: ['./x:/data']\n",
        );
        let b = doc(
            "services:\n  w:\n    command: [c]\n    environment: {B: '3'}\n    ports: ['81:81']\n    volumes: ['./y:/data']\n",
        );
        merge(&mut a, b, "");
        let w = a.get("services").unwrap().get("w").unwrap();
        let cmd: Vec<_> = match &w.get("command").unwrap().value {
            Value::Seq(s) => s.iter().map(|n| n.as_str().unwrap()).collect(),
            _ => vec![],
        };
        assert_eq!(cmd, ["c"]);
        assert_eq!(
            w.get("environment").unwrap().get("B").unwrap().as_str(),
            Some("3")
        );
        assert_eq!(
            w.get("environment").unwrap().get("A").unwrap().as_str(),
            Some("1")
        );
        let Value::Seq(ports) = &w.get("ports").unwrap().value else {
            panic!()
        };
        assert_eq!(ports.len(), 2);
        let Value::Seq(vols) = &w.get("volumes").unwrap().value else {
            panic!()
        };
        assert_eq!(vols.len(), 1);
        assert_eq!(vols[0].as_str(), Some("./y:/data"));
    }

    #[test]
    fn reset_and_override() {
        let mut a = doc("services:\n  w:\n    ports: ['80:80']\n    labels: {a: b}\n");
        let b = doc("services:\n  w:\n    ports: !reset []\n    labels: !override {c: d}\n");
        merge(&mut a, b, "");
        let w = a.get("services").unwrap().get("w").unwrap();
        assert!(w.get("ports").is_none());
        assert!(w.get("labels").unwrap().get("a").is_none());
    }
}
