//! Dockerfile words and variables, as Docker's shell lexer treats them:
//! quotes and the escape character are removed, `$V`, `${V}`, `${V:-x}`,
//! `${V-x}`, `${V:+x}`, `${V+x}` and `${V:?msg}` are substituted. The shell
//! is not involved: this is what `ENV`, `COPY`, `WORKDIR`... see.

use std::collections::BTreeMap;

/// Variables in scope of one instruction (build args and `ENV`).
pub type Scope = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VarError {
    #[error("unterminated quote in {0:?}")]
    Quote(String),
    #[error("bad substitution in {0:?}")]
    BadSubstitution(String),
    #[error("{name}: {message}")]
    Required { name: String, message: String },
}

/// Splits `text` into words at unquoted blanks, keeping quotes and escapes
/// (for `KEY=VALUE` lists, whose halves are expanded afterwards).
pub fn split_raw(text: &str, escape: char) -> Result<Vec<String>, VarError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        return Err(VarError::Quote(text.to_owned()));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// One word: quotes removed, variables substituted, blanks kept.
pub fn expand(word: &str, scope: &Scope, escape: char) -> Result<String, VarError> {
    let chars: Vec<char> = word.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        pos: 0,
        scope,
        escape,
        text: word,
    };
    lexer.run(None)
}

/// Expands then splits at unquoted blanks (`EXPOSE`, `VOLUME`, `COPY` sources).
pub fn expand_words(text: &str, scope: &Scope, escape: char) -> Result<Vec<String>, VarError> {
    split_raw(text, escape)?
        .iter()
        .map(|w| expand(w, scope, escape))
        .collect()
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
    scope: &'a Scope,
    escape: char,
    text: &'a str,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// Reads until the end, or until `stop` at nesting level zero (the `}`
    /// that closes a `${V:-word}`).
    fn run(&mut self, stop: Option<char>) -> Result<String, VarError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                return Ok(out);
            }
            self.pos += 1;
            if c == self.escape {
                match self.peek() {
                    Some(n) => {
                        out.push(n);
                        self.pos += 1;
                    }
                    None => out.push(c),
                }
            } else if c == '\'' {
                loop {
                    match self.peek() {
                        None => return Err(VarError::Quote(self.text.to_owned())),
                        Some('\'') => {
                            self.pos += 1;
                            break;
                        }
                        Some(n) => {
                            out.push(n);
                            self.pos += 1;
                        }
                    }
                }
            } else if c == '"' {
                loop {
                    match self.peek() {
                        None => return Err(VarError::Quote(self.text.to_owned())),
                        Some('"') => {
                            self.pos += 1;
                            break;
                        }
                        Some(n) if n == self.escape => {
                            self.pos += 1;
                            match self.peek() {
                                Some(m @ ('"' | '$')) => {
                                    out.push(m);
                                    self.pos += 1;
                                }
                                Some(m) if m == self.escape => {
                                    out.push(m);
                                    self.pos += 1;
                                }
                                _ => out.push(n),
                            }
                        }
                        Some('$') => {
                            self.pos += 1;
                            out.push_str(&self.dollar()?);
                        }
                        Some(n) => {
                            out.push(n);
                            self.pos += 1;
                        }
                    }
                }
            } else if c == '$' {
                out.push_str(&self.dollar()?);
            } else {
                out.push(c);
            }
        }
        if stop.is_some() {
            return Err(VarError::BadSubstitution(self.text.to_owned()));
        }
        Ok(out)
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// After a `$`: the substitution, or a literal `$` when no name follows.
    fn dollar(&mut self) -> Result<String, VarError> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.scope.get(&name).cloned().unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err(VarError::BadSubstitution(self.text.to_owned()));
        }
        let value = self.scope.get(&name);
        match self.peek() {
            Some('}') => {
                self.pos += 1;
                Ok(value.cloned().unwrap_or_default())
            }
            Some(':') | Some('-') | Some('+') | Some('?') => {
                let colon = self.peek() == Some(':');
                if colon {
                    self.pos += 1;
                }
                let op = self
                    .peek()
                    .ok_or_else(|| VarError::BadSubstitution(self.text.to_owned()))?;
                if !matches!(op, '-' | '+' | '?') {
                    return Err(VarError::BadSubstitution(self.text.to_owned()));
                }
                self.pos += 1;
                let word = self.run(Some('}'))?;
                self.pos += 1;
                // With `:` an empty value counts as unset.
                let set = match value {
                    Some(v) => !(colon && v.is_empty()),
                    None => false,
                };
                Ok(match op {
                    '-' if set => value.cloned().unwrap_or_default(),
                    '-' => word,
                    '+' if set => word,
                    '+' => String::new(),
                    _ if set => value.cloned().unwrap_or_default(),
                    _ => {
                        return Err(VarError::Required {
                            name,
                            message: if word.is_empty() {
                                "is required".into()
                            } else {
                                word
                            },
                        });
                    }
                })
            }
            _ => Err(VarError::BadSubstitution(self.text.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        [("A", "1"), ("E", ""), ("P", "a b")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn substitutions() {
        let s = scope();
        for (input, want) in [
            ("$A", "1"),
            ("${A}x", "1x"),
            ("${B:-d}", "d"),
            ("${E:-d}", "d"),
            ("${E-d}", ""),
            ("${A:+set}", "set"),
            ("${E:+set}", ""),
            ("${E+set}", "set"),
            ("${B:-${A}}", "1"),
            ("'$A'", "$A"),
            ("\"$A\"", "1"),
            ("\\$A", "$A"),
            ("a$", "a$"),
            ("\"x\\\"y\"", "x\"y"),
        ] {
            assert_eq!(expand(input, &s, '\\').unwrap(), want, "{input}");
        }
    }

    #[test]
    fn errors() {
        let s = scope();
        assert!(matches!(
            expand("${A", &s, '\\'),
            Err(VarError::BadSubstitution(_))
        ));
        assert!(matches!(
            expand("${}", &s, '\\'),
            Err(VarError::BadSubstitution(_))
        ));
        assert!(matches!(expand("'a", &s, '\\'), Err(VarError::Quote(_))));
        assert_eq!(
            expand("${B:?must be set}", &s, '\\'),
            Err(VarError::Required {
                name: "B".into(),
                message: "must be set".into()
            })
        );
    }

    #[test]
    fn words_split_after_quotes() {
        let s = scope();
        assert_eq!(
            expand_words("a \"b c\" $P", &s, '\\').unwrap(),
            ["a", "b c", "a b"]
        );
        assert_eq!(
            split_raw("K=\"v w\" L=x", '\\').unwrap(),
            ["K=\"v w\"", "L=x"]
        );
    }
}
