//! `.dockerignore` patterns as Docker matches them (its patternmatcher): one
//! pattern a line, `#` comments, `!` re-includes, the last matching pattern
//! wins, a pattern that names a directory covers what is in it, `*` stays
//! within one path segment and `**` crosses them. The build context and the
//! engine's `develop.watch` ignore lists share this one matcher.

use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

/// Compiled patterns, in file order.
#[derive(Debug, Clone, Default)]
pub struct Patterns {
    rules: Vec<(GlobMatcher, bool)>,
}

impl Patterns {
    /// Compiles patterns; a bad one is returned with its text.
    pub fn new(patterns: &[String]) -> Result<Self, (String, globset::Error)> {
        let mut rules = Vec::new();
        for raw in patterns {
            let (negated, pattern) = match raw.trim().strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, raw.trim()),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() || pattern.starts_with('#') {
                continue;
            }
            let glob = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| (raw.clone(), e))?;
            rules.push((glob.compile_matcher(), negated));
        }
        Ok(Self { rules })
    }

    /// The patterns of a `.dockerignore` file's text: blank lines and lines
    /// starting with `#` are not patterns.
    pub fn parse_file(text: &str) -> Result<Self, (String, globset::Error)> {
        let lines: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        Self::new(&lines)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `rel` (relative to the root the patterns are for) is matched.
    pub fn matches(&self, rel: &Path) -> bool {
        let mut matched = false;
        for (glob, negated) in &self.rules {
            // A pattern naming a directory covers everything under it.
            let hit = rel
                .ancestors()
                .any(|a| !a.as_os_str().is_empty() && glob.is_match(a));
            if hit {
                matched = !negated;
            }
        }
        matched
    }

    /// Whether any `!` pattern re-includes: then a walk must look inside
    /// excluded directories too.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(_, negated)| *negated)
    }
}

/// A pattern as Docker's patternmatcher cleans it: no leading `/` or `./`,
/// no trailing `/`.
fn clean(pattern: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &str, path: &str) -> bool {
        Patterns::parse_file(patterns)
            .unwrap()
            .matches(Path::new(path))
    }

    #[test]
    fn docker_rules() {
        assert!(m("*.md", "README.md"));
        assert!(!m("*.md", "docs/a.md"));
        assert!(m("**/*.md", "docs/a.md"));
        assert!(m("target", "target/debug/x"));
        assert!(m("/target/", "target/x"));
        assert!(!m("# comment\n\n", "x"));
        assert!(!m("*.md\n!README.md", "README.md"));
        assert!(m("*.md\n!README.md\nREADME*", "README.md"));
        assert!(m("./a/../b", "b"));
    }
}
