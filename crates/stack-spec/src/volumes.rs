//! Short-syntax service volumes (`./src:/dst:ro,z`, `name:/dst`, `/dst`)
//! expanded to Compose's long form.

use serde_json::{Map as JMap, Value as Json, json};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    #[error("empty volume specification")]
    Empty,
    #[error("invalid volume specification {spec:?}: {reason}")]
    Invalid { spec: String, reason: &'static str },
    #[error(
        "unknown volume option {option:?} in {spec:?}: expected ro, rw, z, Z, nocopy, a propagation mode or cached/delegated/consistent"
    )]
    Option { spec: String, option: String },
}

/// Split on ':' but keep a Windows drive letter (`C:\x`) with its path.
fn split(spec: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for p in spec.split(':') {
        if let Some(last) = parts.last_mut()
            && last.len() == 1
            && last.as_bytes()[0].is_ascii_alphabetic()
            && (p.starts_with('\\') || p.starts_with('/'))
        {
            last.push(':');
            last.push_str(p);
            continue;
        }
        parts.push(p.to_string());
    }
    parts
}

fn is_path(s: &str) -> bool {
    s.starts_with('.')
        || s.starts_with('/')
        || s.starts_with('~')
        || (s.len() > 2 && s.as_bytes()[1] == b':')
}

pub fn parse_short(spec: &str) -> Result<Json, VolumeError> {
    if spec.is_empty() {
        return Err(VolumeError::Empty);
    }
    let parts = split(spec);
    let (source, target, opts) = match parts.as_slice() {
        [t] => (None, t.clone(), None),
        [s, t] => (Some(s.clone()), t.clone(), None),
        [s, t, o] => (Some(s.clone()), t.clone(), Some(o.clone())),
        _ => {
            return Err(VolumeError::Invalid {
                spec: spec.into(),
                reason: "too many ':'",
            });
        }
    };
    if target.is_empty() {
        return Err(VolumeError::Invalid {
            spec: spec.into(),
            reason: "no target path",
        });
    }
    let mut v = JMap::new();
    let kind = match &source {
        Some(s) if is_path(s) => "bind",
        _ => "volume",
    };
    v.insert("type".into(), json!(kind));
    if let Some(s) = &source {
        if s.is_empty() {
            return Err(VolumeError::Invalid {
                spec: spec.into(),
                reason: "empty source",
            });
        }
        v.insert("source".into(), json!(s));
    }
    v.insert("target".into(), json!(target));
    let mut bind = JMap::new();
    let mut volume = JMap::new();
    for o in opts.iter().flat_map(|o| o.split(',')) {
        match o {
            "ro" => {
                v.insert("read_only".into(), json!(true));
            }
            "rw" => {}
            "z" | "Z" => {
                bind.insert("selinux".into(), json!(o));
            }
            "nocopy" => {
                volume.insert("nocopy".into(), json!(true));
            }
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                bind.insert("propagation".into(), json!(o));
            }
            "cached" | "delegated" | "consistent" => {
                v.insert("consistency".into(), json!(o));
            }
            _ => {
                return Err(VolumeError::Option {
                    spec: spec.into(),
                    option: o.into(),
                });
            }
        }
    }
    if kind == "bind" {
        bind.insert("create_host_path".into(), json!(true));
        v.insert("bind".into(), Json::Object(bind));
    } else if !volume.is_empty() {
        v.insert("volume".into(), Json::Object(volume));
    }
    Ok(Json::Object(v))
}

/// A short-syntax volume given outside a file (`stack run -v`), typed as
/// the loader types the same entry: a relative bind source is taken from
/// `project_dir`.
pub fn parse_typed(
    spec: &str,
    project_dir: &std::path::Path,
) -> Result<crate::model::ServiceVolume, VolumeError> {
    let mut form = parse_short(spec)?;
    if form["type"] == "bind"
        && let Some(Json::String(source)) = form.get_mut("source")
    {
        *source = crate::normalize::absolutize(project_dir, source);
    }
    serde_json::from_value(form).map_err(|_| VolumeError::Invalid {
        spec: spec.into(),
        reason: "not a volume",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        let v = parse_short("./src:/dst:ro,z").unwrap();
        assert_eq!(v["type"], "bind");
        assert_eq!(v["read_only"], true);
        assert_eq!(v["bind"]["selinux"], "z");
        assert_eq!(parse_short("data:/var/lib").unwrap()["type"], "volume");
        assert_eq!(parse_short("/anon").unwrap()["target"], "/anon");
        assert_eq!(parse_short("C:\\x:/dst").unwrap()["source"], "C:\\x");
        assert!(parse_short("a:b:c:d").is_err());
    }

    #[test]
    fn typed_binds_are_taken_from_the_project_directory() {
        let v = parse_typed("./data:/d:ro", std::path::Path::new("/srv/app")).unwrap();
        assert_eq!(v.source.as_deref(), Some("/srv/app/data"));
        assert!(v.read_only);
        let v = parse_typed("cache:/c", std::path::Path::new("/srv/app")).unwrap();
        assert_eq!(v.source.as_deref(), Some("cache"));
    }
}
