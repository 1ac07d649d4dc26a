//! The configuration hash that decides whether a container must be recreated.
//!
//! The hash covers the normalised service minus the keys that must never
//! force a recreate (how many replicas, what it depends on, profiles, build
//! and pull settings, watch rules), with map keys in a fixed order so that
//! reordering a file changes nothing. The same reduced form is stored with
//! the container, so a change can be explained field by field
//! ("config changed: environment.FOO").
//!
//! Networks and volumes get the same treatment: the form they were made
//! from is kept beside them, so a changed `internal:`, subnet or
//! `driver_opts` is seen and named rather than silently kept.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use stack_spec::{Network, Service, Volume};

/// Bumped whenever the hashed form changes, so containers made by an older
/// `stack` are recreated once rather than compared field by field wrongly.
pub const HASH_VERSION: &str = "v1";

/// The part of a service that defines its container, as JSON with sorted keys.
pub fn hashed_form(service: &Service) -> Value {
    let mut value = serde_json::to_value(service).expect("a service serialises to JSON");
    if let Value::Object(map) = &mut value {
        for key in [
            "scale",
            "depends_on",
            "profiles",
            "build",
            "pull_policy",
            "develop",
        ] {
            map.remove(key);
        }
        if let Some(Value::Object(deploy)) = map.get_mut("deploy") {
            deploy.remove("replicas");
            if deploy.is_empty() {
                map.remove("deploy");
            }
        }
    }
    canonical(value)
}

/// The part of a network declaration that defines the network made from it:
/// everything but its name and `external` (which say which network, not
/// what it is). A network the file does not declare (`default`) is the
/// empty declaration.
pub fn network_form(network: Option<&Network>) -> Value {
    let default = Network::default();
    let mut value =
        serde_json::to_value(network.unwrap_or(&default)).expect("a network serialises to JSON");
    if let Value::Object(map) = &mut value {
        map.remove("name");
        map.remove("external");
    }
    canonical(value)
}

/// The part of a volume declaration that defines the volume made from it:
/// its driver, options and labels.
pub fn volume_form(volume: &Volume) -> Value {
    let mut value = serde_json::to_value(volume).expect("a volume serialises to JSON");
    if let Value::Object(map) = &mut value {
        map.remove("name");
        map.remove("external");
    }
    canonical(value)
}

/// `v1-<sha256 of the hashed form>`.
pub fn config_hash(service: &Service) -> String {
    hash_of(&hashed_form(service))
}

pub fn hash_of(form: &Value) -> String {
    let bytes = serde_json::to_vec(form).expect("JSON values serialise");
    format!("{HASH_VERSION}-{}", hex::encode(Sha256::digest(&bytes)))
}

fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// The dotted paths where two hashed forms differ, e.g. `environment.FOO` or
/// `ports[0].published`, sorted. Arrays of different lengths report the
/// array itself.
pub fn changed_paths(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff(old, new, String::new(), &mut out);
    out.sort();
    out
}

fn diff(old: &Value, new: &Value, path: String, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff(x, y, child, out),
                    _ => out.push(child),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(x, y, format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        _ => out.push(if path.is_empty() {
            "(service)".into()
        } else {
            path
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml_body: &str) -> Service {
        let text = format!("services:\n  s:\n{yaml_body}");
        let mut options = stack_spec::LoadOptions::new("/tmp").with_content("stack.yaml", text);
        options.project_name = Some("p".into());
        options.profiles = vec!["x".into()];
        let loaded = stack_spec::load(&options).unwrap_or_else(|e| panic!("{e}"));
        loaded.project.services["s"].clone()
    }

    #[test]
    fn scale_depends_on_and_profiles_do_not_change_the_hash() {
        let a = service("    image: busybox\n    environment: {A: '1'}\n");
        let b = service(
            "    image: busybox\n    environment: {A: '1'}\n    scale: 3\n    profiles: [x]\n    pull_policy: always\n",
        );
        assert_eq!(config_hash(&a), config_hash(&b));
    }

    #[test]
    fn environment_change_is_named() {
        let a = service("    image: busybox\n    environment: {A: '1', B: '2'}\n");
        let b = service("    image: busybox\n    environment: {B: '2', A: '3'}\n");
        assert_ne!(config_hash(&a), config_hash(&b));
        assert_eq!(
            changed_paths(&hashed_form(&a), &hashed_form(&b)),
            ["environment.A"]
        );
    }

    #[test]
    fn network_form_names_what_changed_and_ignores_the_name() {
        let plain = Network::default();
        let internal = Network {
            internal: true,
            name: Some("other".into()),
            ..Network::default()
        };
        let named = Network {
            name: Some("other".into()),
            ..Network::default()
        };
        assert_eq!(network_form(None), network_form(Some(&plain)));
        assert_eq!(network_form(None), network_form(Some(&named)));
        assert_eq!(
            changed_paths(&network_form(None), &network_form(Some(&internal))),
            ["internal"]
        );
    }

    #[test]
    fn volume_form_covers_driver_opts_and_labels() {
        let a = Volume::default();
        let mut b = Volume::default();
        b.driver_opts.insert("o".into(), "bind".into());
        b.labels.insert("tier".into(), "db".into());
        assert_eq!(
            changed_paths(&volume_form(&a), &volume_form(&b)),
            ["driver_opts", "labels"]
        );
    }

    #[test]
    fn key_order_does_not_matter() {
        let a = service("    image: busybox\n    environment: {A: '1', B: '2'}\n");
        let b = service("    environment: {B: '2', A: '1'}\n    image: busybox\n");
        assert_eq!(config_hash(&a), config_hash(&b));
        assert!(config_hash(&a).starts_with("v1-"));
    }
}
