//! `security_opt` entries as Docker takes them (`seccomp:unconfined`,
//! `seccomp=profile.json`, `no-new-privileges[:true|false]`,
//! `systempaths=unconfined`, `label:...`, `apparmor:...`; `:` and `=` both
//! separate the key from its value). Parsed once at load, where a mistake
//! can be named by its place; the engine reads the same parse.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOpt {
    /// No seccomp filter at all.
    SeccompUnconfined,
    /// A Docker seccomp profile file (absolute once loaded).
    SeccompProfile(String),
    NoNewPrivileges(bool),
    /// `/proc` and `/sys` paths are neither masked nor read-only.
    SystemPathsUnconfined,
    /// An SELinux label option: stack applies no LSM label.
    Label(String),
    /// An AppArmor profile: stack applies no LSM profile.
    Apparmor(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityOptError {
    #[error(
        "invalid security_opt {0:?}: expected seccomp, no-new-privileges, systempaths, label or apparmor"
    )]
    Unknown(String),
    #[error("invalid security_opt {0:?}: expected true or false")]
    Bool(String),
    #[error("invalid security_opt {0:?}: `seccomp` takes `unconfined` or a profile file")]
    Seccomp(String),
    #[error("invalid security_opt {0:?}: only `systempaths=unconfined` is known")]
    SystemPaths(String),
}

impl std::str::FromStr for SecurityOpt {
    type Err = SecurityOptError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Docker splits at the first `=`, else the first `:`.
        let (key, value) = match s.split_once('=') {
            Some(kv) => (kv.0, Some(kv.1)),
            None => match s.split_once(':') {
                Some(kv) => (kv.0, Some(kv.1)),
                None => (s, None),
            },
        };
        match (key, value) {
            ("no-new-privileges", None) => Ok(Self::NoNewPrivileges(true)),
            ("no-new-privileges", Some(v)) => match v {
                "true" => Ok(Self::NoNewPrivileges(true)),
                "false" => Ok(Self::NoNewPrivileges(false)),
                _ => Err(SecurityOptError::Bool(s.into())),
            },
            ("seccomp", Some("unconfined")) => Ok(Self::SeccompUnconfined),
            ("seccomp", Some(f)) if !f.is_empty() => Ok(Self::SeccompProfile(f.into())),
            ("seccomp", _) => Err(SecurityOptError::Seccomp(s.into())),
            ("systempaths", Some("unconfined")) => Ok(Self::SystemPathsUnconfined),
            ("systempaths", _) => Err(SecurityOptError::SystemPaths(s.into())),
            ("label", Some(v)) => Ok(Self::Label(v.into())),
            ("apparmor", Some(v)) => Ok(Self::Apparmor(v.into())),
            _ => Err(SecurityOptError::Unknown(s.into())),
        }
    }
}

impl std::fmt::Display for SecurityOpt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SeccompUnconfined => f.write_str("seccomp=unconfined"),
            Self::SeccompProfile(p) => write!(f, "seccomp={p}"),
            Self::NoNewPrivileges(b) => write!(f, "no-new-privileges={b}"),
            Self::SystemPathsUnconfined => f.write_str("systempaths=unconfined"),
            Self::Label(v) => write!(f, "label={v}"),
            Self::Apparmor(v) => write!(f, "apparmor={v}"),
        }
    }
}

/// What the engine applies for a service's (already validated) options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// `None`: Docker's default profile; `Some(None)`: no filter.
    pub seccomp: Option<Option<String>>,
    /// `None`: the default (set unless privileged).
    pub no_new_privileges: Option<bool>,
    pub system_paths_unconfined: bool,
}

impl Security {
    /// The last option of each kind wins, as in Docker.
    pub fn from_options<S: AsRef<str>>(opts: &[S]) -> Result<Self, SecurityOptError> {
        let mut out = Self::default();
        for o in opts {
            match o.as_ref().parse::<SecurityOpt>()? {
                SecurityOpt::SeccompUnconfined => out.seccomp = Some(None),
                SecurityOpt::SeccompProfile(p) => out.seccomp = Some(Some(p)),
                SecurityOpt::NoNewPrivileges(b) => out.no_new_privileges = Some(b),
                SecurityOpt::SystemPathsUnconfined => out.system_paths_unconfined = true,
                SecurityOpt::Label(_) | SecurityOpt::Apparmor(_) => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_forms() {
        let p = |s: &str| s.parse::<SecurityOpt>();
        assert_eq!(p("seccomp:unconfined"), Ok(SecurityOpt::SeccompUnconfined));
        assert_eq!(p("seccomp=unconfined"), Ok(SecurityOpt::SeccompUnconfined));
        assert_eq!(
            p("seccomp=/etc/p.json"),
            Ok(SecurityOpt::SeccompProfile("/etc/p.json".into()))
        );
        assert_eq!(
            p("no-new-privileges"),
            Ok(SecurityOpt::NoNewPrivileges(true))
        );
        assert_eq!(
            p("no-new-privileges:false"),
            Ok(SecurityOpt::NoNewPrivileges(false))
        );
        assert_eq!(
            p("no-new-privileges=true"),
            Ok(SecurityOpt::NoNewPrivileges(true))
        );
        assert_eq!(
            p("systempaths=unconfined"),
            Ok(SecurityOpt::SystemPathsUnconfined)
        );
        assert_eq!(
            p("label:type:svirt_t"),
            Ok(SecurityOpt::Label("type:svirt_t".into()))
        );
        assert_eq!(
            p("apparmor=unconfined"),
            Ok(SecurityOpt::Apparmor("unconfined".into()))
        );
        assert!(matches!(
            p("no-new-privileges:maybe"),
            Err(SecurityOptError::Bool(_))
        ));
        assert!(matches!(p("seccomp"), Err(SecurityOptError::Seccomp(_))));
        assert!(matches!(
            p("systempaths=x"),
            Err(SecurityOptError::SystemPaths(_))
        ));
        assert!(matches!(p("nonsense"), Err(SecurityOptError::Unknown(_))));
        let s = Security::from_options(&[
            "seccomp=a.json",
            "seccomp:unconfined",
            "no-new-privileges:false",
        ])
        .unwrap();
        assert_eq!(s.seccomp, Some(None));
        assert_eq!(s.no_new_privileges, Some(false));
    }
}
