//! `${VAR}` interpolation exactly as Compose does it: `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`,
//! `${VAR:+alt}`, `${VAR+alt}`, nesting inside the argument, `$$` for `$`.
//! Applied to values only, never to keys.

use indexmap::IndexMap;

use crate::error::{Diagnostics, ErrorKind};
use crate::node::{Node, Value};

/// The variables interpolation sees.
pub type Vars = IndexMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("invalid template: {template:?}")]
    Invalid { template: String },
    #[error("required variable {name} is missing a value{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    MissingRequired { name: String, message: String },
}

/// Substitute `template`; names of unset variables used without a default
/// are pushed to `unset` (they become empty strings).
pub fn substitute(
    template: &str,
    vars: &Vars,
    unset: &mut Vec<String>,
) -> Result<String, TemplateError> {
    if !template.contains('$') {
        return Ok(template.to_string());
    }
    let mut out = String::with_capacity(template.len());
    let b = template.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let next = template[i..].find('$').map_or(b.len(), |p| i + p);
            out.push_str(&template[i..next]);
            i = next;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let (text, end) = braced(template, i + 2, vars, unset)?;
                out.push_str(&text);
                i = end;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                let name = &template[start..end];
                match vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => unset.push(name.to_string()),
                }
                i = end;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Handle `${...}` whose content starts at `start`; returns the text and the
/// index just past the closing brace.
fn braced(
    t: &str,
    start: usize,
    vars: &Vars,
    unset: &mut Vec<String>,
) -> Result<(String, usize), TemplateError> {
    let invalid = || TemplateError::Invalid {
        template: t.to_string(),
    };
    let b = t.as_bytes();
    let mut i = start;
    if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
    } else {
        return Err(invalid());
    }
    let name = &t[start..i];
    if i >= b.len() {
        return Err(invalid());
    }
    if b[i] == b'}' {
        let v = match vars.get(name) {
            Some(v) => v.clone(),
            None => {
                unset.push(name.to_string());
                String::new()
            }
        };
        return Ok((v, i + 1));
    }
    let colon = b[i] == b':';
    if colon {
        i += 1;
    }
    let op = *b.get(i).ok_or_else(invalid)?;
    if !matches!(op, b'-' | b'?' | b'+') {
        return Err(invalid());
    }
    i += 1;
    // The argument runs to the matching closing brace.
    let arg_start = i;
    let mut depth = 1;
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return Err(invalid());
    }
    let arg = &t[arg_start..i];
    let end = i + 1;
    let value = vars.get(name);
    // With ':' an empty value counts as unset.
    let present = value.is_some_and(|v| !colon || !v.is_empty());
    let text = match op {
        b'-' => {
            if present {
                value.cloned().unwrap_or_default()
            } else {
                substitute(arg, vars, unset)?
            }
        }
        b'+' => {
            if present {
                substitute(arg, vars, unset)?
            } else {
                String::new()
            }
        }
        _ => {
            if present {
                value.cloned().unwrap_or_default()
            } else {
                return Err(TemplateError::MissingRequired {
                    name: name.to_string(),
                    message: substitute(arg, vars, unset)?,
                });
            }
        }
    };
    Ok((text, end))
}

/// Interpolate every string value under `node` (keys are left alone).
pub fn interpolate_tree(node: &mut Node, path: &mut String, vars: &Vars, diags: &mut Diagnostics) {
    match &mut node.value {
        Value::Str(s) => {
            if !s.contains('$') {
                return;
            }
            let mut unset = Vec::new();
            match substitute(s, vars, &mut unset) {
                Ok(v) => *s = v,
                Err(e) => diags.error(ErrorKind::Interpolation, &node.span, path, e.to_string()),
            }
            for name in unset {
                diags.warn(
                    &node.span,
                    path,
                    format!("variable {name} is not set, using an empty string"),
                );
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                interpolate_tree(item, path, vars, diags);
                path.truncate(len);
            }
        }
        Value::Map(map) => {
            for (k, e) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                interpolate_tree(&mut e.node, path, vars, diags);
                path.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn basic_forms() {
        let v = vars(&[("FOO", "first"), ("BAR", "")]);
        let mut unset = Vec::new();
        assert_eq!(
            substitute("$$FOO ${FOO}", &v, &mut unset).unwrap(),
            "$FOO first"
        );
        assert_eq!(
            substitute("${NOPE:-${FOO}}", &v, &mut unset).unwrap(),
            "first"
        );
        assert!(unset.is_empty());
        assert_eq!(substitute("$NOPE", &v, &mut unset).unwrap(), "");
        assert_eq!(unset, vec!["NOPE".to_string()]);
        assert!(matches!(
            substitute("${BAR:?need}", &v, &mut unset),
            Err(TemplateError::MissingRequired { .. })
        ));
    }
}
