//! A Docker seccomp profile file (`docker run --security-opt
//! seccomp=profile.json`) as an OCI `linux.seccomp`: the field names are the
//! OCI ones, but Docker adds `archMap` and per-rule `includes`/`excludes`
//! (capabilities, architectures, minimum kernel), which are decided here for
//! the container's capabilities and this host, as Docker decides them.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("not a JSON seccomp profile: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the profile is not a JSON object")]
    NotAnObject,
}

/// The Go architecture name of this host, as profiles' `arches` use it.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// `major.minor` of the running kernel.
fn host_kernel() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    version(&release)
}

fn version(s: &str) -> (u32, u32) {
    let mut parts = s
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether a rule applies for `caps` (full `CAP_` names) on this host.
fn applies(rule: &Map<String, Value>, caps: &[&str], arch: &str, kernel: (u32, u32)) -> bool {
    let has = |c: &str| caps.iter().any(|x| x.eq_ignore_ascii_case(c));
    if let Some(inc) = rule.get("includes").and_then(Value::as_object) {
        if !strings(inc.get("caps")).iter().all(|c| has(c)) {
            return false;
        }
        let arches = strings(inc.get("arches"));
        if !arches.is_empty() && !arches.contains(&arch) {
            return false;
        }
        if let Some(min) = inc.get("minKernel").and_then(Value::as_str)
            && kernel < version(min)
        {
            return false;
        }
    }
    if let Some(exc) = rule.get("excludes").and_then(Value::as_object) {
        if strings(exc.get("caps")).iter().any(|c| has(c)) {
            return false;
        }
        if strings(exc.get("arches")).contains(&arch) {
            return false;
        }
    }
    true
}

/// The OCI profile for a container holding `caps`, from a Docker profile's text.
pub fn from_docker_profile<S: AsRef<str>>(
    text: &str,
    caps: &[S],
) -> Result<LinuxSeccomp, ProfileError> {
    let caps: Vec<&str> = caps.iter().map(AsRef::as_ref).collect();
    convert(text, &caps, host_arch(), host_kernel())
}

fn convert(
    text: &str,
    caps: &[&str],
    arch: &str,
    kernel: (u32, u32),
) -> Result<LinuxSeccomp, ProfileError> {
    let Value::Object(mut p) = serde_json::from_str(text)? else {
        return Err(ProfileError::NotAnObject);
    };
    if let Some(Value::Array(map)) = p.remove("archMap")
        && !p.contains_key("architectures")
    {
        let arches: Vec<Value> = map
            .iter()
            .flat_map(|m| {
                let main = m.get("architecture").cloned();
                let subs = m
                    .get("subArchitectures")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                main.into_iter().chain(subs)
            })
            .collect();
        p.insert("architectures".into(), Value::Array(arches));
    }
    if let Some(Value::Array(rules)) = p.get_mut("syscalls") {
        rules.retain(|r| {
            r.as_object()
                .is_some_and(|r| applies(r, caps, arch, kernel))
        });
        for r in rules.iter_mut() {
            if let Value::Object(r) = r {
                for key in ["includes", "excludes", "comment", "name"] {
                    if key == "name"
                        && let Some(n) = r.remove("name")
                    {
                        // Old profiles name one syscall per rule.
                        r.entry("names").or_insert_with(|| Value::Array(vec![n]));
                        continue;
                    }
                    r.remove(key);
                }
            }
        }
    }
    p.remove("comment");
    Ok(serde_json::from_value(Value::Object(p))?)
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{Arch, LinuxSeccompAction};

    use super::*;

    const PROFILE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "always"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
        ]
    }"#;

    fn names(p: &LinuxSeccomp) -> Vec<String> {
        p.syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn rules_are_decided_for_the_capabilities_arch_and_kernel() {
        let p = convert(PROFILE, &["CAP_CHOWN"], "amd64", (6, 1)).unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        assert_eq!(
            names(&p),
            ["read", "write", "ptrace", "arch_prctl", "clone", "mkdir"]
        );
        let p = convert(PROFILE, &["CAP_SYS_ADMIN"], "arm64", (4, 4)).unwrap();
        assert_eq!(names(&p), ["read", "write", "mount", "mkdir"]);
        assert!(matches!(
            convert("[1]", &[], "amd64", (6, 1)),
            Err(ProfileError::NotAnObject)
        ));
        assert!(matches!(
            convert("{\"defaultAction\": \"NOPE\"}", &[], "amd64", (6, 1)),
            Err(ProfileError::Json(_))
        ));
    }
}
