//! A property of the reconciler: for random pairs of small stack files A and
//! B, `up A; up B` ends where `down; up B` does — the same containers with
//! the same configuration and state, the same networks and volumes with the
//! same configuration — and one `up` is enough to get there. The host is a
//! model here (plans applied to `Observed`); the real driver is tested end
//! to end in stack-cli's tests.

use std::collections::BTreeMap;

use proptest::prelude::*;
use stack_engine::hash::{config_hash, hashed_form, network_form, volume_form};
use stack_engine::observed::{ContainerState, Observed, ObservedContainer};
use stack_engine::plan::{Action, Plan, Resource};
use stack_engine::reconcile::{ReconcileOptions, network_name, reconcile, volume_name};
use stack_spec::Project;

/// One service of a generated file.
#[derive(Debug, Clone)]
struct Svc {
    env: u8,
    replicas: u8,
    image: u8,
    networks: Vec<u8>,
    volume: bool,
    depends_on_previous: bool,
}

#[derive(Debug, Clone)]
struct Stack {
    services: Vec<Option<Svc>>,
    internal: [bool; 2],
    subnet: [Option<u8>; 2],
    volume_label: u8,
}

fn svc() -> impl Strategy<Value = Svc> {
    (
        0u8..3,
        1u8..4,
        0u8..2,
        proptest::sample::subsequence(vec![0u8, 1], 0..=2),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(env, replicas, image, networks, volume, depends_on_previous)| Svc {
                env,
                replicas,
                image,
                networks,
                volume,
                depends_on_previous,
            },
        )
}

fn stack() -> impl Strategy<Value = Stack> {
    (
        svc(),
        proptest::option::of(svc()),
        proptest::option::of(svc()),
        any::<[bool; 2]>(),
        [proptest::option::of(0u8..3), proptest::option::of(0u8..3)],
        0u8..2,
    )
        .prop_map(
            |(first, second, third, internal, subnet, volume_label)| Stack {
                services: vec![Some(first), second, third],
                internal,
                subnet,
                volume_label,
            },
        )
}

fn yaml(stack: &Stack) -> String {
    let mut out = String::from("name: p\nservices:\n");
    let mut previous: Option<usize> = None;
    for (i, s) in stack.services.iter().enumerate() {
        let Some(s) = s else { continue };
        out += &format!(
            "  s{i}:\n    image: img{}\n    environment: {{E: '{}'}}\n    scale: {}\n",
            s.image, s.env, s.replicas
        );
        if !s.networks.is_empty() {
            let names: Vec<String> = s.networks.iter().map(|n| format!("n{n}")).collect();
            out += &format!("    networks: [{}]\n", names.join(", "));
        }
        if s.volume {
            out += "    volumes: ['v0:/data']\n";
        }
        if let (true, Some(p)) = (s.depends_on_previous, previous) {
            out += &format!("    depends_on: [s{p}]\n");
        }
        previous = Some(i);
    }
    out += "networks:\n";
    for n in 0..2 {
        out += &format!("  n{n}:\n    internal: {}\n", stack.internal[n]);
        if let Some(subnet) = stack.subnet[n] {
            out += &format!(
                "    ipam: {{config: [{{subnet: 10.9.{}.0/24}}]}}\n",
                subnet * 2 + n as u8
            );
        }
    }
    out += &format!(
        "volumes:\n  v0:\n    labels: {{gen: '{}'}}\n",
        stack.volume_label
    );
    out
}

fn load(text: &str) -> Project {
    let options = stack_spec::LoadOptions::new("/tmp").with_content("stack.yaml", text);
    stack_spec::load(&options)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .project
}

/// The host after `plan` ran: what each operation leaves behind.
fn apply(project: &Project, observed: &mut Observed, plan: &Plan) {
    let network_key = |name: &str| {
        project
            .networks
            .keys()
            .cloned()
            .chain(std::iter::once("default".to_owned()))
            .find(|k| network_name(project, k) == name)
            .expect("planned networks are the project's")
    };
    let volume_key = |name: &str| {
        project
            .volumes
            .keys()
            .find(|k| volume_name(project, k) == name)
            .expect("planned volumes are the project's")
            .clone()
    };
    for op in &plan.operations {
        match (&op.action, &op.resource) {
            (Action::Create | Action::Recreate, Resource::Network(name)) => {
                let key = network_key(name);
                observed.networks.insert(name.clone());
                observed
                    .network_configs
                    .insert(name.clone(), network_form(project.networks.get(&key)));
            }
            (Action::Create | Action::Recreate, Resource::Volume(name)) => {
                let key = volume_key(name);
                observed.volumes.insert(name.clone());
                observed
                    .volume_configs
                    .insert(name.clone(), volume_form(&project.volumes[&key]));
            }
            (Action::Pull, Resource::Image(image)) => {
                observed
                    .images
                    .insert(image.clone(), format!("sha256:{image}"));
            }
            (
                Action::Create | Action::Recreate,
                Resource::Container {
                    service,
                    number,
                    name,
                },
            ) => {
                observed.containers.retain(|c| c.name != *name);
                let s = &project.services[service];
                observed.containers.push(ObservedContainer {
                    name: name.clone(),
                    service: service.clone(),
                    number: *number,
                    config_hash: config_hash(s),
                    config: hashed_form(s),
                    image_digest: s
                        .image
                        .as_ref()
                        .and_then(|i| observed.images.get(i))
                        .cloned(),
                    state: ContainerState::Created,
                });
            }
            (Action::Start | Action::Restart, Resource::Container { name, .. }) => {
                for c in observed.containers.iter_mut().filter(|c| c.name == *name) {
                    c.state = ContainerState::Running;
                }
            }
            (Action::Remove, Resource::Container { name, .. }) => {
                observed.containers.retain(|c| c.name != *name);
            }
            (action, resource) => panic!("up planned {action} {resource}"),
        }
    }
}

/// `up` of `project` on `observed`: one plan, applied.
fn up(project: &Project, observed: &mut Observed) {
    let options = ReconcileOptions {
        remove_orphans: true,
        recreate_volumes: true,
        ..ReconcileOptions::default()
    };
    let plan = reconcile(project, observed, &options).unwrap_or_else(|e| panic!("{e}"));
    apply(project, observed, &plan);
    let again = reconcile(project, observed, &options).unwrap();
    assert!(again.is_empty(), "one up is not enough; next:\n{again}");
}

/// What `B` owns of the host, comparable: containers by name, and the
/// networks, volumes and images B names (`up` leaves others alone).
type View = (
    Vec<(String, String, u32, String, ContainerState)>,
    BTreeMap<String, serde_json::Value>,
    BTreeMap<String, serde_json::Value>,
);

fn view(project: &Project, observed: &Observed) -> View {
    let mut containers: Vec<_> = observed
        .containers
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.service.clone(),
                c.number,
                c.config_hash.clone(),
                c.state,
            )
        })
        .collect();
    containers.sort_by(|a, b| a.0.cmp(&b.0));
    let networks = observed
        .network_configs
        .iter()
        .filter(|(name, _)| {
            project.services.values().any(|s| {
                stack_engine::reconcile::service_networks(s)
                    .iter()
                    .any(|k| network_name(project, k) == **name)
            })
        })
        .map(|(n, f)| (n.clone(), f.clone()))
        .collect();
    let volumes = observed
        .volume_configs
        .iter()
        .filter(|(name, _)| {
            project
                .volumes
                .keys()
                .any(|k| volume_name(project, k) == **name)
        })
        .map(|(n, f)| (n.clone(), f.clone()))
        .collect();
    (containers, networks, volumes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn up_a_then_b_ends_where_up_b_alone_does(a in stack(), b in stack()) {
        let a = load(&yaml(&a));
        let b = load(&yaml(&b));
        let mut changed = Observed::default();
        up(&a, &mut changed);
        up(&b, &mut changed);
        let mut fresh = Observed::default();
        up(&b, &mut fresh);
        prop_assert_eq!(view(&b, &changed), view(&b, &fresh));
    }
}
