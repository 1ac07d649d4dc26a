//! The variables a stack file uses, read from its text as written: each
//! `${NAME}`, `$NAME`, `${NAME:-default}` / `${NAME-default}`, `${NAME:?err}`
//! / `${NAME?err}` (required) and `${NAME:+alt}` / `${NAME+alt}` (the
//! alternate value), also nested in a default. `$$` is a literal dollar.
//! What `config --variables` lists, as compose's `ExtractVariables` does.

use std::collections::BTreeMap;

/// One variable and what the file says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Variable {
    pub name: String,
    pub required: bool,
    pub default_value: Option<String>,
    pub alternate_value: Option<String>,
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The variables of `text`, by name; a name used several times keeps the
/// first default and alternate given, and is required if any use requires it.
pub fn extract(text: &str) -> BTreeMap<String, Variable> {
    let mut out = BTreeMap::new();
    scan(text, &mut out);
    out
}

fn record(out: &mut BTreeMap<String, Variable>, v: Variable) {
    let e = out.entry(v.name.clone()).or_insert_with(|| Variable {
        name: v.name.clone(),
        ..Default::default()
    });
    e.required |= v.required;
    if e.default_value.is_none() {
        e.default_value = v.default_value;
    }
    if e.alternate_value.is_none() {
        e.alternate_value = v.alternate_value;
    }
}

fn scan(text: &str, out: &mut BTreeMap<String, Variable>) {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => i += 2,
            Some('{') => {
                // The matching brace, counting the ones a default opens.
                let mut depth = 1;
                let mut j = i + 2;
                while j < chars.len() && depth > 0 {
                    match chars[j] {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                if depth > 0 {
                    return;
                }
                let inner: String = chars[i + 2..j - 1].iter().collect();
                braced(&inner, out);
                i = j;
            }
            Some(c) if is_name(*c) && !c.is_ascii_digit() => {
                let mut j = i + 1;
                while j < chars.len() && is_name(chars[j]) {
                    j += 1;
                }
                record(
                    out,
                    Variable {
                        name: chars[i + 1..j].iter().collect(),
                        ..Default::default()
                    },
                );
                i = j;
            }
            _ => i += 1,
        }
    }
}

fn braced(inner: &str, out: &mut BTreeMap<String, Variable>) {
    let end = inner.find(|c: char| !is_name(c)).unwrap_or(inner.len());
    let (name, rest) = inner.split_at(end);
    if name.is_empty() {
        return;
    }
    let mut v = Variable {
        name: name.to_owned(),
        ..Default::default()
    };
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    let mut value = |s: &str| {
        scan(s, out);
        s.to_owned()
    };
    if let Some(d) = rest.strip_prefix('-') {
        v.default_value = Some(value(d));
    } else if rest.starts_with('?') {
        v.required = true;
    } else if let Some(a) = rest.strip_prefix('+') {
        v.alternate_value = Some(value(a));
    }
    record(out, v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_read() {
        let vars = extract(
            "image: ${IMAGE:-busybox}\nports: [\"${PORT-80}:80\"]\n\
             user: $USER\npass: ${PASS:?set it}\ntls: ${TLS:+--tls}\n\
             cost: $$5 ${OUTER:-${INNER:-x}}\n",
        );
        let get = |n: &str| vars.get(n).cloned().unwrap();
        assert_eq!(get("IMAGE").default_value.as_deref(), Some("busybox"));
        assert_eq!(get("PORT").default_value.as_deref(), Some("80"));
        assert!(get("PASS").required);
        assert!(!get("USER").required && get("USER").default_value.is_none());
        assert_eq!(get("TLS").alternate_value.as_deref(), Some("--tls"));
        assert_eq!(get("OUTER").default_value.as_deref(), Some("${INNER:-x}"));
        assert_eq!(get("INNER").default_value.as_deref(), Some("x"));
        assert!(!vars.contains_key("5"));
        assert_eq!(vars.len(), 7);
    }
}
