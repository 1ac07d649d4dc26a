//! Named volumes as PersistentVolumeClaims, `configs:` and `secrets:` as
//! ConfigMaps and Secrets mounted at the paths Compose mounts them at, and
//! the other mounts (bind, tmpfs, anonymous) as the nearest pod volume.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value, json};
use stack_spec::input::MAX_CONFIG_FILE;
use stack_spec::{FileObject, MountType, Service};

use super::{Ctx, SIZE_LABEL};
use crate::ExportError;
use crate::names::{dns_label, is_label_key, is_label_value, is_quantity};

/// Whether the service keeps data in a named volume (so one replica is
/// a StatefulSet, which keeps its claim across rescheduling).
pub fn mounts_named_volume(s: &Service) -> bool {
    s.volumes
        .iter()
        .any(|v| v.kind == MountType::Volume && v.source.is_some())
}

fn object_name(path: &str, key: &str) -> Result<String, ExportError> {
    dns_label(key).ok_or_else(|| {
        ExportError::value(
            path,
            "the name cannot be a Kubernetes name (letters, digits, '-', '_' and '.', at most 63)",
        )
    })
}

/// The claim a volume mount refers to: this stack's claim, or for an
/// external volume the one that must already exist.
fn claim_name(cx: &Ctx<'_>, key: &str) -> Result<String, ExportError> {
    let v = cx.project.volumes.get(key);
    match v {
        Some(v) if v.external => object_name(
            &format!("volumes.{key}.name"),
            v.name.as_deref().unwrap_or(key),
        ),
        _ => object_name(&format!("volumes.{key}"), key),
    }
}

fn file_object_name(kind: &str, key: &str, o: &FileObject) -> Result<String, ExportError> {
    if o.external {
        object_name(
            &format!("{kind}.{key}.name"),
            o.name.as_deref().unwrap_or(key),
        )
    } else {
        object_name(&format!("{kind}.{key}"), key)
    }
}

/// The claims, ConfigMaps and Secrets of the project.
pub fn objects(cx: &mut Ctx<'_>) -> Result<Vec<Value>, ExportError> {
    let mut out = Vec::new();
    let p = cx.project;
    for (key, v) in &p.volumes {
        let path = format!("volumes.{key}");
        if v.external {
            cx.w.warn(
                format!("{path}.external"),
                format!(
                    "the PersistentVolumeClaim {:?} must exist in the namespace",
                    claim_name(cx, key)?
                ),
            );
            continue;
        }
        let name = claim_name(cx, key)?;
        let size = match v.labels.get(SIZE_LABEL) {
            Some(s) if is_quantity(s) => s.clone(),
            Some(s) => {
                return Err(ExportError::value(
                    format!("{path}.labels.{SIZE_LABEL}"),
                    format!("{s:?} is not a size such as 10Gi or 500M"),
                ));
            }
            None => {
                cx.w.warn(
                    path.clone(),
                    format!(
                        "no size given (label {SIZE_LABEL}); the claim requests {}",
                        cx.opts.default_volume_size
                    ),
                );
                cx.opts.default_volume_size.clone()
            }
        };
        // Pods that mount it: more than one needs a volume many nodes can
        // mount, which not every StorageClass offers.
        let users: u32 = p
            .services
            .iter()
            .filter(|(n, _)| !cx.init_only.contains(n.as_str()))
            .filter(|(_, s)| {
                s.volumes.iter().any(|m| {
                    m.kind == MountType::Volume && m.source.as_deref() == Some(key.as_str())
                })
            })
            .map(|(_, s)| {
                s.deploy
                    .as_ref()
                    .and_then(|d| d.replicas)
                    .or(s.scale)
                    .unwrap_or(1)
            })
            .sum();
        let mode = if users > 1 {
            cx.w.warn(
                path.clone(),
                "approximated: mounted by more than one pod, so the claim asks for ReadWriteMany, which the StorageClass must support",
            );
            "ReadWriteMany"
        } else {
            "ReadWriteOnce"
        };
        let mut meta = cx.metadata(&name, None);
        let mut labels: Vec<(&String, &String)> =
            v.labels.iter().filter(|(k, _)| *k != SIZE_LABEL).collect();
        labels.sort();
        for (k, val) in labels {
            if is_label_key(k) && is_label_value(val) {
                meta["labels"][k] = json!(val);
            } else {
                cx.w.warn(
                    format!("{path}.labels.{k}"),
                    "dropped: not a valid Kubernetes label",
                );
            }
        }
        out.push(json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta,
            "spec": {
                "accessModes": [mode],
                "resources": { "requests": { "storage": size } },
            },
        }));
    }
    for (kind, objs) in [("configs", &p.configs), ("secrets", &p.secrets)] {
        for (key, o) in objs {
            let path = format!("{kind}.{key}");
            let name = file_object_name(kind, key, o)?;
            if o.external {
                cx.w.warn(
                    format!("{path}.external"),
                    format!(
                        "the {} {name:?} must exist in the namespace with the key \"content\"",
                        if kind == "configs" {
                            "ConfigMap"
                        } else {
                            "Secret"
                        }
                    ),
                );
                continue;
            }
            let bytes = content(cx, &path, o)?;
            let meta = cx.metadata(&name, None);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
            out.push(if kind == "configs" {
                match String::from_utf8(bytes) {
                    Ok(text) => json!({
                        "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                        "data": { "content": text },
                    }),
                    Err(_) => json!({
                        "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                        "binaryData": { "content": b64 },
                    }),
                }
            } else {
                json!({
                    "apiVersion": "v1", "kind": "Secret", "metadata": meta,
                    "type": "Opaque", "data": { "content": b64 },
                })
            });
        }
    }
    Ok(out)
}

/// The bytes of a secret or config, read now: the manifest carries them.
fn content(cx: &Ctx<'_>, path: &str, o: &FileObject) -> Result<Vec<u8>, ExportError> {
    if let Some(f) = &o.file {
        return stack_fs::read_regular(std::path::Path::new(f), MAX_CONFIG_FILE).map_err(
            |source| ExportError::Read {
                path: format!("{path}.file"),
                source,
            },
        );
    }
    if let Some(c) = &o.content {
        return Ok(c.clone().into_bytes());
    }
    if let Some(var) = &o.environment {
        return cx
            .opts
            .environment
            .get(var)
            .map(|v| v.clone().into_bytes())
            .ok_or_else(|| {
                ExportError::value(
                    format!("{path}.environment"),
                    format!("the variable {var} is not set"),
                )
            });
    }
    Err(ExportError::value(
        path,
        "has no file, content or environment to take the content from",
    ))
}

/// The container's volume mounts; the pod volumes they need go into `volumes`.
pub fn mounts(
    cx: &mut Ctx<'_>,
    name: &str,
    s: &Service,
    volumes: &mut BTreeMap<String, Value>,
) -> Result<Vec<Value>, ExportError> {
    let k = cx.name(name).to_string();
    let mut out = Vec::new();
    for (i, v) in s.volumes.iter().enumerate() {
        let path = format!("services.{name}.volumes[{i}]");
        let mut mount = Map::new();
        let vol_name = match (v.kind, &v.source) {
            (MountType::Volume, Some(src)) => {
                let claim = claim_name(cx, src)?;
                let vn = format!("vol-{claim}");
                volumes.insert(
                    vn.clone(),
                    json!({ "name": vn, "persistentVolumeClaim": { "claimName": claim } }),
                );
                if let Some(o) = &v.volume {
                    if let Some(sp) = &o.subpath {
                        mount.insert("subPath".into(), json!(sp));
                    }
                    if o.nocopy || !o.labels.is_empty() {
                        cx.w.warn(
                            format!("{path}.volume"),
                            "nocopy and labels dropped: a claim always starts empty",
                        );
                    }
                }
                vn
            }
            (MountType::Volume, None) => {
                cx.w.warn(
                    path.clone(),
                    "approximated: an anonymous volume becomes an emptyDir, whose data goes with the pod",
                );
                let vn = format!("{k}-anon-{i}");
                volumes.insert(vn.clone(), json!({ "name": vn, "emptyDir": {} }));
                vn
            }
            (MountType::Bind, Some(src)) => {
                cx.w.warn(
                    path.clone(),
                    format!(
                        "approximated: the bind mount of {src} becomes a hostPath volume, which must exist on every node; ship the files in the image or a ConfigMap"
                    ),
                );
                if let Some(b) = &v.bind
                    && (b.propagation.is_some() || b.selinux.is_some() || b.recursive.is_some())
                {
                    cx.w.warn(
                        format!("{path}.bind"),
                        "dropped: propagation, selinux and recursive have no hostPath counterpart",
                    );
                }
                let vn = format!("{k}-bind-{i}");
                volumes.insert(
                    vn.clone(),
                    json!({ "name": vn, "hostPath": { "path": src } }),
                );
                vn
            }
            (MountType::Tmpfs, _) => {
                let vn = format!("{k}-tmpfs-{i}");
                let mut dir = json!({ "medium": "Memory" });
                if let Some(t) = &v.tmpfs {
                    if let Some(size) = t.size {
                        dir["sizeLimit"] = json!(size.bytes().to_string());
                    }
                    if t.mode.is_some() {
                        cx.w.warn(
                            format!("{path}.tmpfs.mode"),
                            "dropped: an emptyDir's mode is set by the kubelet",
                        );
                    }
                }
                volumes.insert(vn.clone(), json!({ "name": vn, "emptyDir": dir }));
                vn
            }
            (kind, _) => {
                cx.w.warn(
                    path,
                    format!("dropped: a {kind:?} mount has no Kubernetes counterpart"),
                );
                continue;
            }
        };
        if v.consistency.is_some() {
            cx.w.warn(
                format!("{path}.consistency"),
                "dropped: it only matters on Docker Desktop",
            );
        }
        mount.insert("name".into(), json!(vol_name));
        mount.insert("mountPath".into(), json!(v.target));
        if v.read_only {
            mount.insert("readOnly".into(), json!(true));
        }
        out.push(Value::Object(sorted(mount)));
    }
    for (i, t) in s.tmpfs.iter().enumerate() {
        let (target, opts) = t.split_once(':').unwrap_or((t, ""));
        if !opts.is_empty() {
            cx.w.warn(
                format!("services.{name}.tmpfs[{i}]"),
                format!("approximated: the options {opts:?} are dropped; an in-memory emptyDir is mounted"),
            );
        }
        let vn = format!("{k}-tmpfs-t{i}");
        volumes.insert(
            vn.clone(),
            json!({ "name": vn, "emptyDir": { "medium": "Memory" } }),
        );
        out.push(json!({ "mountPath": target, "name": vn }));
    }
    for (kind, refs) in [("configs", &s.configs), ("secrets", &s.secrets)] {
        for (i, r) in refs.iter().enumerate() {
            let path = format!("services.{name}.{kind}[{i}]");
            let objs = if kind == "configs" {
                &cx.project.configs
            } else {
                &cx.project.secrets
            };
            let Some(o) = objs.get(&r.source) else {
                continue;
            };
            let obj_name = file_object_name(kind, &r.source, o)?;
            let target = match (&r.target, kind) {
                (Some(t), "secrets") if !t.starts_with('/') => format!("/run/secrets/{t}"),
                (Some(t), _) => t.clone(),
                (None, "secrets") => format!("/run/secrets/{}", r.source),
                (None, _) => format!("/{}", r.source),
            };
            if r.uid.is_some() || r.gid.is_some() {
                cx.w.warn(
                    path.clone(),
                    "uid and gid dropped: files of a Kubernetes volume belong to root (or the pod's fsGroup)",
                );
            }
            let (prefix, source) = if kind == "configs" {
                ("config", json!({ "configMap": { "name": obj_name } }))
            } else {
                ("secret", json!({ "secret": { "secretName": obj_name } }))
            };
            let vn = format!("{prefix}-{obj_name}");
            let mut vol = json!({ "name": vn });
            let inner = if kind == "configs" {
                "configMap"
            } else {
                "secret"
            };
            vol[inner] = source[inner].clone();
            if let Some(mode) = r.mode {
                vol[inner]["defaultMode"] = json!(mode);
            }
            volumes.entry(vn.clone()).or_insert(vol);
            out.push(json!({
                "mountPath": target,
                "name": vn,
                "readOnly": true,
                "subPath": "content",
            }));
        }
    }
    Ok(out)
}

/// Keys in a fixed order, so mounts print the same whatever order they
/// were filled in.
fn sorted(m: Map<String, Value>) -> Map<String, Value> {
    let mut v: Vec<(String, Value)> = m.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().collect()
}
