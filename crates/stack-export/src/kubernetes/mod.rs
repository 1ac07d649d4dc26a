//! `stack export kubernetes`: one Deployment (StatefulSet, DaemonSet) per
//! service, a Service per service so names resolve as they do under
//! `stack`, claims, ConfigMaps and Secrets for volumes, configs and secrets,
//! and NetworkPolicies that keep Compose's rule that services reach only
//! services sharing a network. Every object is built as JSON here, in this
//! module's files, and printed sorted so the same stack gives the same
//! bytes.

mod keys;
mod network;
mod pod;
mod storage;

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde_json::{Value, json};
use stack_spec::{DependsOnCondition, Project, Service};

use crate::names::{dns_label, is_dns_label, is_label_value};
use crate::{ExportError, Warning, Warnings};

/// The oldest Kubernetes the manifests are written for (every API they use
/// is stable there); the tests validate against it and the newest schema.
pub const MIN_VERSION: (u32, u32) = (1, 25);

/// How published ports are exposed outside the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishAs {
    #[default]
    NodePort,
    LoadBalancer,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Put every object in this namespace (otherwise kubectl's current one).
    pub namespace: Option<String>,
    pub publish_as: PublishAs,
    /// Claim size for a named volume without a `stack.size` label.
    pub default_volume_size: String,
    /// The Kubernetes version the manifests are for, `(1, NN)`.
    pub version: (u32, u32),
    /// Where `environment:` secrets and configs take their value from.
    pub environment: IndexMap<String, String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespace: None,
            publish_as: PublishAs::NodePort,
            default_volume_size: DEFAULT_VOLUME_SIZE.into(),
            version: MIN_VERSION,
            environment: IndexMap::new(),
        }
    }
}

/// The claim size when a volume does not name one.
pub const DEFAULT_VOLUME_SIZE: &str = "1Gi";
/// The volume label that sets its claim size.
pub const SIZE_LABEL: &str = "stack.size";

/// Parse `1.NN` (a patch part is accepted and ignored).
pub fn parse_version(s: &str) -> Result<(u32, u32), ExportError> {
    let bad = || {
        ExportError::value(
            "--k8s-version",
            format!(
                "expected 1.NN with NN at least {}, found {s:?}",
                MIN_VERSION.1
            ),
        )
    };
    let mut parts = s.trim_start_matches('v').split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    if major != 1 || minor < MIN_VERSION.1 {
        return Err(bad());
    }
    Ok((major, minor))
}

/// The exported objects and what they could not carry.
#[derive(Debug)]
pub struct Manifests {
    /// Sorted by kind (what others refer to first), then name.
    pub objects: Vec<Value>,
    pub warnings: Vec<Warning>,
}

impl Manifests {
    /// One YAML stream, `---` between objects, for `kubectl apply -f -`.
    pub fn to_yaml(&self) -> Result<String, ExportError> {
        let mut out = String::new();
        for obj in &self.objects {
            out.push_str("---\n");
            out.push_str(&serde_saphyr::to_string(obj)?);
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        Ok(out)
    }

    /// One file per object, `<name>-<kind>.yaml`, for `kubectl apply -f DIR`.
    pub fn files(&self) -> Result<Vec<(String, String)>, ExportError> {
        self.objects
            .iter()
            .map(|obj| {
                let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                let kind = obj["kind"].as_str().unwrap_or_default().to_lowercase();
                let mut text = serde_saphyr::to_string(obj)?;
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                Ok((format!("{name}-{kind}.yaml"), text))
            })
            .collect()
    }
}

/// What every builder needs: the project, the options, the Kubernetes name
/// of each service, and the warnings so far.
pub(crate) struct Ctx<'a> {
    pub project: &'a Project,
    pub opts: &'a Options,
    /// Compose service name → Kubernetes name.
    pub names: BTreeMap<&'a str, String>,
    /// Services that run as init containers of their dependents
    /// (`service_completed_successfully` targets) instead of on their own.
    pub init_only: BTreeSet<&'a str>,
    pub w: Warnings,
}

impl Ctx<'_> {
    pub fn name(&self, service: &str) -> &str {
        &self.names[service]
    }

    /// Labels every object of the project carries.
    pub fn project_labels(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert(PART_OF.into(), json!(self.project.name));
        m.insert(MANAGED_BY.into(), json!("stack"));
        m
    }

    /// The labels that select one service's pods.
    pub fn selector(&self, service: &str) -> Value {
        json!({ NAME_LABEL: self.name(service), PART_OF: self.project.name })
    }

    /// Metadata with the project's labels (and the service's, when given).
    pub fn metadata(&self, name: &str, service: Option<&str>) -> Value {
        let mut labels = self.project_labels();
        if let Some(s) = service {
            labels.insert(NAME_LABEL.into(), json!(self.name(s)));
        }
        let mut meta = serde_json::Map::new();
        meta.insert("name".into(), json!(name));
        if let Some(ns) = &self.opts.namespace {
            meta.insert("namespace".into(), json!(ns));
        }
        meta.insert("labels".into(), Value::Object(labels));
        Value::Object(meta)
    }
}

pub(crate) const NAME_LABEL: &str = "app.kubernetes.io/name";
pub(crate) const PART_OF: &str = "app.kubernetes.io/part-of";
pub(crate) const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Export `project` as Kubernetes objects.
pub fn export(project: &Project, opts: &Options) -> Result<Manifests, ExportError> {
    if !is_label_value(&project.name) {
        return Err(ExportError::value(
            "name",
            format!(
                "project name {:?} is not a valid Kubernetes label value",
                project.name
            ),
        ));
    }
    if let Some(ns) = &opts.namespace
        && !is_dns_label(ns)
    {
        return Err(ExportError::value(
            "--namespace",
            format!("{ns:?} is not a valid namespace name (lowercase letters, digits and '-')"),
        ));
    }
    let mut w = Warnings::default();
    let mut names = BTreeMap::new();
    let mut taken: BTreeMap<String, &str> = BTreeMap::new();
    for name in project.services.keys() {
        let k = dns_label(name).ok_or_else(|| {
            ExportError::value(
                format!("services.{name}"),
                "the service name cannot be a Kubernetes name (letters, digits, '-', '_' and '.', at most 63)",
            )
        })?;
        if let Some(other) = taken.insert(k.clone(), name) {
            return Err(ExportError::value(
                format!("services.{name}"),
                format!("becomes the Kubernetes name {k:?}, as service {other:?} does"),
            ));
        }
        if &k != name {
            w.warn(
                format!("services.{name}"),
                format!("named {k:?} in Kubernetes; other services reach it by that name"),
            );
        }
        names.insert(name.as_str(), k);
    }
    let init_only: BTreeSet<&str> = project
        .services
        .values()
        .flat_map(|s| {
            s.depends_on
                .iter()
                .filter(|(_, d)| d.condition == DependsOnCondition::ServiceCompletedSuccessfully)
                .map(|(n, _)| n.as_str())
        })
        .collect();
    let mut cx = Ctx {
        project,
        opts,
        names,
        init_only,
        w,
    };
    keys::warn_project(&mut cx);

    let mut objects = Vec::new();
    objects.extend(storage::objects(&mut cx)?);
    let services: BTreeMap<&str, &Service> = project
        .services
        .iter()
        .map(|(n, s)| (n.as_str(), s))
        .collect();
    for (name, service) in &services {
        keys::warn_service(&mut cx, name, service);
        pod::dependency_warnings(&mut cx, name, service);
        if cx.init_only.contains(name) {
            let hosts: Vec<&str> = services
                .keys()
                .filter(|n| !cx.init_only.contains(*n))
                .filter(|n| pod::completion_chain(&cx, n).contains(name))
                .copied()
                .collect();
            cx.w.warn(
                format!("services.{name}"),
                format!(
                    "runs as an init container in each pod of {} (once per pod, before its containers), not as a workload of its own",
                    hosts.join(", ")
                ),
            );
            pod::init_only_warnings(&mut cx, name, service);
            continue;
        }
        objects.push(pod::workload(&mut cx, name, service)?);
        objects.extend(network::services(&mut cx, name, service));
    }
    objects.extend(network::policies(&mut cx));
    objects.sort_by_key(order_key);
    Ok(Manifests {
        objects,
        warnings: cx.w.into_sorted(),
    })
}

/// Objects others refer to come first, so a `kubectl apply` of the stream
/// never points at something not yet there.
fn order_key(obj: &Value) -> (usize, String) {
    const KINDS: &[&str] = &[
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
        "Service",
        "StatefulSet",
        "Deployment",
        "DaemonSet",
        "NetworkPolicy",
    ];
    let kind = obj["kind"].as_str().unwrap_or_default();
    (
        KINDS.iter().position(|k| *k == kind).unwrap_or(KINDS.len()),
        obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Whether `s` is a storage size Kubernetes reads (`10Gi`, `500M`).
pub fn is_size(s: &str) -> bool {
    crate::names::is_quantity(s)
}
