//! `.env` and `env_file` parsing the way Compose reads them: `KEY=VALUE`
//! lines, `export ` prefix, `#` comments, single quotes literal, double
//! quotes with escapes and `${VAR}` interpolation, bare `KEY` taken from the
//! lookup when present.

use indexmap::IndexMap;

use crate::interpolate::{Vars, substitute};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DotenvError {
    #[error("line {line}: invalid variable name {name:?}")]
    BadName { line: usize, name: String },
    #[error("line {line}: unterminated quoted value")]
    Unterminated { line: usize },
    #[error("line {line}: {source}")]
    Template {
        line: usize,
        source: crate::interpolate::TemplateError,
    },
}

/// Parse `text`; `lookup` resolves `${VAR}` in values and bare `KEY` lines.
/// Values from earlier lines of the same file are visible to later ones.
pub fn parse(text: &str, lookup: &Vars) -> Result<IndexMap<String, Option<String>>, DotenvError> {
    let mut out: IndexMap<String, Option<String>> = IndexMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let raw = lines[i].trim_start();
        i += 1;
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let raw = raw
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(raw);
        let (key, rest) = match raw.find(['=', ':']) {
            Some(p) => (&raw[..p], Some(&raw[p + 1..])),
            None => (raw.trim_end(), None),
        };
        let key_trim = key.trim_end();
        if key_trim.is_empty() || key_trim.contains(char::is_whitespace) {
            return Err(DotenvError::BadName {
                line: lineno,
                name: key.to_string(),
            });
        }
        let Some(rest) = rest else {
            let v = lookup.get(key_trim).cloned();
            out.insert(key_trim.to_string(), v);
            continue;
        };
        let rest = rest.trim_start();
        let mut vars = lookup.clone();
        for (k, v) in &out {
            if let Some(v) = v {
                vars.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let value = if let Some(q) = rest.strip_prefix('\'') {
            let mut buf = q.to_string();
            while !buf.contains('\'') {
                let Some(next) = lines.get(i) else {
                    return Err(DotenvError::Unterminated { line: lineno });
                };
                buf.push('\n');
                buf.push_str(next);
                i += 1;
            }
            buf[..buf.find('\'').unwrap_or(buf.len())].to_string()
        } else if let Some(q) = rest.strip_prefix('"') {
            let mut buf = q.to_string();
            let end = loop {
                if let Some(e) = closing_quote(&buf) {
                    break e;
                }
                let Some(next) = lines.get(i) else {
                    return Err(DotenvError::Unterminated { line: lineno });
                };
                buf.push('\n');
                buf.push_str(next);
                i += 1;
            };
            let unescaped = unescape(&buf[..end]);
            let mut unset = Vec::new();
            substitute(&unescaped, &vars, &mut unset).map_err(|source| DotenvError::Template {
                line: lineno,
                source,
            })?
        } else {
            let v = match rest.find(" #") {
                Some(p) => &rest[..p],
                None => rest,
            };
            let mut unset = Vec::new();
            substitute(v.trim_end(), &vars, &mut unset).map_err(|source| DotenvError::Template {
                line: lineno,
                source,
            })?
        };
        out.insert(key_trim.to_string(), Some(value));
    }
    Ok(out)
}

fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_dotenv_forms() {
        let mut lookup = Vars::new();
        lookup.insert("HOME".into(), "/root".into());
        let env = parse(
            "# c\nA=1\nexport B='x y'\nC=\"a\\nb ${A}\"\nD=v # note\nHOME\nE=${HOME}/x\n",
            &lookup,
        )
        .unwrap();
        assert_eq!(env["A"].as_deref(), Some("1"));
        assert_eq!(env["B"].as_deref(), Some("x y"));
        assert_eq!(env["C"].as_deref(), Some("a\nb 1"));
        assert_eq!(env["D"].as_deref(), Some("v"));
        assert_eq!(env["HOME"].as_deref(), Some("/root"));
        assert_eq!(env["E"].as_deref(), Some("/root/x"));
    }
}
