//! Names of kernel objects. Every object of a project carries the project's tag
//! (`stk-` + 6 hex digits), so a crash leaves nothing that cleanup cannot find
//! by prefix; interface names stay within the kernel's 15 characters.

use sha2::{Digest, Sha256};

/// Prefix shared by every kernel object this crate creates.
pub const PREFIX: &str = "stk-";

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
#[cfg(test)]
pub const IFNAME_MAX: usize = 15;

/// What an interface is, encoded as one letter of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    Bridge,
    Veth,
}

impl LinkKind {
    fn letter(self) -> char {
        match self {
            LinkKind::Bridge => 'b',
            LinkKind::Veth => 'v',
        }
    }
}

/// A 6-hex-digit tag for `project` that no project in `taken` uses yet.
/// Deterministic: the same project and the same taken set give the same tag.
pub fn project_tag<'a>(project: &str, taken: impl Iterator<Item = &'a str> + Clone) -> String {
    (0u32..)
        .map(|salt| {
            let mut h = Sha256::new();
            h.update(project.as_bytes());
            if salt > 0 {
                h.update(salt.to_le_bytes());
            }
            hex::encode(&h.finalize()[..3])
        })
        .find(|tag| !taken.clone().any(|t| t == tag))
        .expect("2^32 salts cannot all be taken")
}

/// `stk-TTTTTTkNNNN`: tag, kind letter and a per-project counter (exactly 15 chars).
pub fn link_name(tag: &str, kind: LinkKind, counter: u16) -> String {
    format!("{PREFIX}{tag}{}{counter:04x}", kind.letter())
}

/// Every interface of a project starts with this.
pub fn link_prefix(tag: &str) -> String {
    format!("{PREFIX}{tag}")
}

/// File name of a container's network namespace under `<run>/netns/`.
pub fn netns_name(tag: &str, counter: u16, container_id: &str) -> String {
    let id: String = container_id
        .chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{PREFIX}{tag}-{counter:04x}-{id}")
}

/// Every netns file of a project starts with this.
pub fn netns_prefix(tag: &str) -> String {
    format!("{PREFIX}{tag}-")
}

/// Name of the project's nftables table (`table ip stk-TTTTTT`).
pub fn nft_table(tag: &str) -> String {
    format!("{PREFIX}{tag}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_fit_ifnamsiz() {
        let tag = project_tag(
            "a-very-long-project-name-that-would-not-fit",
            [].iter().copied(),
        );
        for kind in [LinkKind::Bridge, LinkKind::Veth] {
            let n = link_name(&tag, kind, u16::MAX);
            assert_eq!(n.len(), IFNAME_MAX, "{n}");
            assert!(n.starts_with(&link_prefix(&tag)));
        }
    }

    #[test]
    fn tags_are_deterministic_and_avoid_taken_ones() {
        let a = project_tag("web", [].iter().copied());
        assert_eq!(a, project_tag("web", [].iter().copied()));
        assert_eq!(a.len(), 6);
        let taken = [a.as_str()];
        let b = project_tag("web", taken.iter().copied());
        assert_ne!(a, b);
        assert_ne!(
            project_tag("web", [].iter().copied()),
            project_tag("db", [].iter().copied())
        );
    }

    #[test]
    fn netns_names_are_sanitised() {
        let n = netns_name("abcdef", 3, "my/ctr x");
        assert_eq!(n, "stk-abcdef-0003-my_ctr_x");
        assert!(n.starts_with(&netns_prefix("abcdef")));
    }
}
