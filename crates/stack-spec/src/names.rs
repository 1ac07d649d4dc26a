//! Names and image references checked at load, so that a file whose
//! names cannot become paths and kernel objects, or whose image reference
//! cannot be pulled, is refused before anything is created (not found by
//! `ENAMETOOLONG` after the network was made).
//!
//! Docker's rules: object names are `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; image
//! references follow the distribution grammar
//! (`[domain[:port]/]path[:tag][@digest]`). Lengths come from the file
//! system: a container's directory is `<project>-<service>-<n>`, a volume's
//! `<project>_<volume>`, each one path component of at most 255 bytes.

use crate::error::{Diagnostics, ErrorKind};
use crate::model::Project;
use crate::node::SpanTable;
use crate::validate::span;

/// The longest path component (`NAME_MAX`).
const NAME_MAX: usize = 255;
/// Room kept for `-<replica>` after a service's name.
const REPLICA_SUFFIX: usize = 6;

fn valid_chars(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Why `name`, used as `what`, cannot be one (`None`: it can).
fn name_problem(what: &str, name: &str, longest: usize) -> Option<String> {
    if !valid_chars(name) {
        return Some(format!(
            "{what} name {name:?} must start with a letter or digit and contain only letters, digits, '_', '.' and '-'"
        ));
    }
    (name.len() > longest).then(|| {
        format!(
            "{what} name {}… is {} characters long; at most {longest} fit in this project",
            &name[..24],
            name.len()
        )
    })
}

fn alnum_run(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// One path component: lowercase alphanumerics separated by `.`, `_`,
/// `__` or runs of `-`.
fn path_component(c: &str) -> bool {
    let mut rest = c;
    loop {
        let end = rest
            .find(|ch: char| !(ch.is_ascii_lowercase() || ch.is_ascii_digit()))
            .unwrap_or(rest.len());
        if !alnum_run(&rest[..end]) {
            return false;
        }
        rest = &rest[end..];
        if rest.is_empty() {
            return true;
        }
        let sep = if rest.starts_with("__") {
            2
        } else if rest.starts_with(['.', '_']) {
            1
        } else {
            rest.bytes().take_while(|b| *b == b'-').count()
        };
        if sep == 0 {
            return false;
        }
        rest = &rest[sep..];
    }
}

fn domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Why `reference` is not an image reference (`None`: it is one).
pub fn reference_problem(reference: &str) -> Option<&'static str> {
    let (name_tag, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty()
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+._-".contains(&b))
                && hex.len() >= 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
        });
        if !ok {
            return Some("the digest is not algorithm:hex");
        }
    }
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(t) = tag {
        let ok = t.len() <= 128
            && t.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !ok {
            return Some("the tag must be up to 128 letters, digits, '_', '.' and '-'");
        }
    }
    if name.is_empty() || name.len() > NAME_MAX {
        return Some("the name is empty or longer than 255 characters");
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    if parts.len() > 1 && (first.contains(['.', ':']) || first == "localhost") {
        if !domain(first) {
            return Some("the registry is not a host name with an optional port");
        }
        parts.remove(0);
    }
    if !parts.iter().all(|c| path_component(c)) {
        return Some(
            "each path component must be lowercase letters and digits separated by '.', '_', '__' or '-'",
        );
    }
    None
}

pub fn check(project: &Project, spans: &SpanTable, diags: &mut Diagnostics) {
    let room = NAME_MAX.saturating_sub(project.name.len() + 1);
    for (name, svc) in &project.services {
        if let Some(problem) = name_problem("service", name, room.saturating_sub(REPLICA_SUFFIX)) {
            diags.error(
                ErrorKind::Value,
                &span(spans, &["services", name]),
                &format!("services.{name}"),
                problem,
            );
        }
        if let Some(cn) = &svc.container_name
            && let Some(problem) = name_problem("container", cn, NAME_MAX)
        {
            diags.error(
                ErrorKind::Value,
                &span(spans, &["services", name, "container_name"]),
                &format!("services.{name}.container_name"),
                problem,
            );
        }
        if let Some(image) = &svc.image
            && let Some(problem) = reference_problem(image)
        {
            diags.error(
                ErrorKind::Value,
                &span(spans, &["services", name, "image"]),
                &format!("services.{name}.image"),
                format!("invalid image reference {image:?}: {problem}"),
            );
        }
    }
    for (kind, keys) in [
        ("volume", project.volumes.keys().collect::<Vec<_>>()),
        ("network", project.networks.keys().collect()),
    ] {
        for key in keys {
            if let Some(problem) = name_problem(kind, key, room) {
                diags.error(
                    ErrorKind::Value,
                    &span(spans, &[&format!("{kind}s"), key]),
                    &format!("{kind}s.{key}"),
                    problem,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_docker_accepts() {
        for r in [
            "busybox",
            "busybox:1.36",
            "library/busybox:latest",
            "127.0.0.1:5000/ns/app:v1.2-rc_3",
            "localhost/app",
            "ghcr.io/org/sub/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "my-app__x.y",
        ] {
            assert_eq!(reference_problem(r), None, "{r}");
        }
    }

    #[test]
    fn references_docker_refuses() {
        for r in [
            "../../etc/passwd",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "a//b",
            "app@sha256:short",
            "-app",
            "",
        ] {
            assert!(reference_problem(r).is_some(), "{r:?} accepted");
        }
    }

    #[test]
    fn names_have_docker_charset_and_fit_a_path_component() {
        assert_eq!(name_problem("service", "web-1.a_b", 100), None);
        assert!(name_problem("service", "_web", 100).is_some());
        assert!(name_problem("service", "a/b", 100).is_some());
        let long = "s".repeat(300);
        let problem = name_problem("service", &long, 240).unwrap();
        assert!(
            problem.contains("300 characters long; at most 240"),
            "{problem}"
        );
    }
}
