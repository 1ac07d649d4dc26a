//! Golden-text tests of the reconciler: for each situation, the exact plan.

use std::path::Path;

use stack_engine::hash::{config_hash, hashed_form, network_form, volume_form};
use stack_engine::lifecycle_plan::{
    LifecycleError, plan_freeze, plan_kill, plan_remove, plan_restart, plan_start, plan_stop,
};
use stack_engine::observed::{ContainerState, Observed, ObservedBuild, ObservedContainer};
use stack_engine::reconcile::{
    ReconcileError, ReconcileOptions, container_name, network_name, plan_down, plan_one_off,
    reconcile, replicas, service_image, service_networks, volume_name,
};
use stack_engine::single;
use stack_spec::{MountType, NetworkMode, Project, Service, ServiceVolume};

const STACK: &str = r#"
name: shop
services:
  db:
    image: postgres:16
    volumes: [dbdata:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD", "pg_isready"]
  migrate:
    image: shop/app:1
    command: ["migrate"]
    depends_on:
      db: {condition: service_healthy}
  api:
    image: shop/app:1
    environment:
      FOO: "1"
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  web:
    image: nginx:1.27
    depends_on:
      api: {condition: service_started, restart: true}
  sidecar:
    image: busybox
    network_mode: "service:api"
  debug:
    image: busybox
    profiles: [debug]
volumes:
  dbdata:
"#;

fn load(text: &str, profiles: &[&str]) -> Project {
    let mut options = stack_spec::LoadOptions::new("/tmp").with_content("stack.yaml", text);
    options.profiles = profiles.iter().map(|p| p.to_string()).collect();
    stack_spec::load(&options)
        .unwrap_or_else(|e| panic!("{e}"))
        .project
}

/// What the host looks like after a successful `up` of `project`.
fn converged(project: &Project, options: &ReconcileOptions) -> Observed {
    let mut observed = Observed::default();
    for (name, service) in &project.services {
        for number in 1..=replicas(name, service, options) {
            observed.containers.push(ObservedContainer {
                name: container_name(&project.name, name, service, number),
                service: name.clone(),
                number,
                config_hash: config_hash(service),
                config: hashed_form(service),
                image_digest: service.image.as_ref().map(|i| format!("sha256:{i}")),
                state: ContainerState::Running,
            });
        }
        for net in service_networks(service) {
            let name = network_name(project, &net);
            observed
                .network_configs
                .insert(name.clone(), network_form(project.networks.get(&net)));
            observed.networks.insert(name);
        }
        if let Some(image) = &service.image {
            observed
                .images
                .insert(image.clone(), format!("sha256:{image}"));
        }
    }
    for (key, volume) in &project.volumes {
        let name = volume_name(project, key);
        observed
            .volume_configs
            .insert(name.clone(), volume_form(volume));
        observed.volumes.insert(name);
    }
    observed
}

fn plan(project: &Project, observed: &Observed, options: &ReconcileOptions) -> String {
    reconcile(project, observed, options)
        .unwrap_or_else(|e| panic!("{e}"))
        .to_string()
}

#[test]
fn first_up_creates_everything_in_dependency_order() {
    let project = load(STACK, &[]);
    let got = plan(&project, &Observed::default(), &ReconcileOptions::default());
    let want = "\
#1 create network shop_default (not found)
#2 create volume shop_dbdata (not found)
#3 pull image postgres:16 (not found)
#4 pull image shop/app:1 (not found)
#5 pull image nginx:1.27 (not found)
#6 pull image busybox (not found)
#7 create container shop-db-1 (not found) after #1 #2 #3
#8 start container shop-db-1 (not found) after #7
#9 create container shop-migrate-1 (not found) after #1 #4
#10 start container shop-migrate-1 (not found) after #9 #8; waits for db healthy
#11 create container shop-api-1 (not found) after #1 #4
#12 start container shop-api-1 (not found) after #11 #8 #10; waits for db healthy, migrate completed successfully
#13 create container shop-web-1 (not found) after #1 #5
#14 start container shop-web-1 (not found) after #13 #12; waits for api started
#15 create container shop-sidecar-1 (not found) after #6 #11
#16 start container shop-sidecar-1 (not found) after #15 #12
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn second_up_is_a_no_op() {
    let project = load(STACK, &[]);
    let options = ReconcileOptions::default();
    let observed = converged(&project, &options);
    assert_eq!(plan(&project, &observed, &options), "");
}

#[test]
fn changed_environment_recreates_it_and_what_shares_or_restarts_with_it() {
    let before = load(STACK, &[]);
    let observed = converged(&before, &ReconcileOptions::default());
    let after = load(&STACK.replace("FOO: \"1\"", "FOO: \"2\""), &[]);
    let got = plan(&after, &observed, &ReconcileOptions::default());
    let want = "\
#1 recreate container shop-api-1 (config changed: environment.FOO)
#2 start container shop-api-1 (config changed: environment.FOO) after #1; waits for db healthy, migrate completed successfully
#3 restart container shop-web-1 (dependency api changed) after #2; waits for api started
#4 recreate container shop-sidecar-1 (dependency api changed) after #1
#5 start container shop-sidecar-1 (dependency api changed) after #4 #2
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn updated_image_recreates_its_users() {
    let project = load(STACK, &[]);
    let mut observed = converged(&project, &ReconcileOptions::default());
    observed
        .images
        .insert("nginx:1.27".into(), "sha256:newer".into());
    let got = plan(&project, &observed, &ReconcileOptions::default());
    let want = "\
#1 recreate container shop-web-1 (image updated)
#2 start container shop-web-1 (image updated) after #1; waits for api started
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn removed_service_is_an_orphan() {
    let project = load(STACK, &[]);
    let observed = converged(&project, &ReconcileOptions::default());
    let smaller = load(
        &STACK.replace(
            "  sidecar:\n    image: busybox\n    network_mode: \"service:api\"\n",
            "",
        ),
        &[],
    );
    let got = plan(&smaller, &observed, &ReconcileOptions::default());
    assert_eq!(
        got,
        "note: orphan container shop-sidecar-1 (service sidecar is not in the file); --remove-orphans removes it\n"
    );
    let options = ReconcileOptions {
        remove_orphans: true,
        ..ReconcileOptions::default()
    };
    assert_eq!(
        plan(&smaller, &observed, &options),
        "#1 remove container shop-sidecar-1 (orphan)\n"
    );
    // COMPOSE_IGNORE_ORPHANS: not a word.
    let ignore = ReconcileOptions {
        ignore_orphans: true,
        ..ReconcileOptions::default()
    };
    assert_eq!(plan(&smaller, &observed, &ignore), "");
}

#[test]
fn scale_up_adds_replicas_and_scale_down_removes_the_highest() {
    let project = load(STACK, &[]);
    let observed = converged(&project, &ReconcileOptions::default());
    let mut options = ReconcileOptions::default();
    options.scale.insert("web".into(), 3);
    let got = plan(&project, &observed, &options);
    let want = "\
#1 create container shop-web-2 (not found)
#2 start container shop-web-2 (not found) after #1; waits for api started
#3 create container shop-web-3 (not found)
#4 start container shop-web-3 (not found) after #3; waits for api started
";
    assert_eq!(got, want, "\n{got}");

    let three = converged(&project, &options);
    options.scale.insert("web".into(), 1);
    let got = plan(&project, &three, &options);
    let want = "\
#1 remove container shop-web-3 (scale down)
#2 remove container shop-web-2 (scale down)
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn profiles_add_their_services() {
    let project = load(STACK, &["debug"]);
    let observed = converged(&load(STACK, &[]), &ReconcileOptions::default());
    let got = plan(&project, &observed, &ReconcileOptions::default());
    let want = "\
#1 create container shop-debug-1 (not found)
#2 start container shop-debug-1 (not found) after #1
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn stopped_containers_are_started_and_flags_are_honoured() {
    let project = load(STACK, &[]);
    let mut observed = converged(&project, &ReconcileOptions::default());
    for c in &mut observed.containers {
        if c.service == "migrate" {
            c.state = ContainerState::Exited;
        }
    }
    assert_eq!(
        plan(&project, &observed, &ReconcileOptions::default()),
        "#1 start container shop-migrate-1 (not running); waits for db healthy\n"
    );
    let changed = load(&STACK.replace("FOO: \"1\"", "FOO: \"2\""), &[]);
    let no_recreate = ReconcileOptions {
        no_recreate: true,
        ..ReconcileOptions::default()
    };
    assert_eq!(
        plan(&changed, &observed, &no_recreate),
        "#1 start container shop-migrate-1 (not running); waits for db healthy\n"
    );
    let force = ReconcileOptions {
        force_recreate: true,
        ..ReconcileOptions::default()
    };
    assert_eq!(
        reconcile(&project, &observed, &force)
            .unwrap()
            .operations
            .iter()
            .filter(|op| op.action == stack_engine::plan::Action::Recreate)
            .count(),
        5
    );
}

#[test]
fn down_removes_dependents_first_then_networks_and_with_v_volumes() {
    let project = load(STACK, &[]);
    let observed = converged(&project, &ReconcileOptions::default());
    let got = plan_down(Some(&project), &observed, true).to_string();
    let want = "\
#1 remove container shop-sidecar-1 (down)
#2 remove container shop-web-1 (down)
#3 remove container shop-api-1 (down) after #2 #1
#4 remove container shop-migrate-1 (down) after #3
#5 remove container shop-db-1 (down) after #4 #3
#6 remove network shop_default (down) after #1 #2 #3 #4 #5
#7 remove volume shop_dbdata (down) after #1 #2 #3 #4 #5
";
    assert_eq!(got, want, "\n{got}");
    assert!(
        !plan_down(Some(&project), &observed, false)
            .to_string()
            .contains("volume")
    );
}

#[test]
fn selected_services_plan_only_themselves_and_drop_waits_outside() {
    let project = load(STACK, &[]);
    let with_deps = ReconcileOptions {
        services: Some(stack_engine::service_graph::with_dependencies(
            &project,
            &["migrate".to_owned()],
        )),
        ..ReconcileOptions::default()
    };
    let got = plan(&project, &Observed::default(), &with_deps);
    let want = "\
#1 create network shop_default (not found)
#2 create volume shop_dbdata (not found)
#3 pull image postgres:16 (not found)
#4 pull image shop/app:1 (not found)
#5 create container shop-db-1 (not found) after #1 #2 #3
#6 start container shop-db-1 (not found) after #5
#7 create container shop-migrate-1 (not found) after #1 #4
#8 start container shop-migrate-1 (not found) after #7 #6; waits for db healthy
";
    assert_eq!(got, want, "\n{got}");

    // --no-deps: the service alone, waiting for nothing it was not given.
    let alone = ReconcileOptions {
        services: Some(["migrate".to_owned()].into()),
        ..ReconcileOptions::default()
    };
    let got = plan(&project, &Observed::default(), &alone);
    let want = "\
#1 create network shop_default (not found)
#2 pull image shop/app:1 (not found)
#3 create container shop-migrate-1 (not found) after #1 #2
#4 start container shop-migrate-1 (not found) after #3
";
    assert_eq!(got, want, "\n{got}");
}

const RUN_STACK: &str = r#"
name: tools
services:
  job:
    image: tools/job:1
    pull_policy: PULL
    volumes: [cache:/cache, /host:/host]
    networks: [back]
networks:
  back:
volumes:
  cache:
"#;

fn one_off(policy: &str, observed: &Observed) -> String {
    let project = load(&RUN_STACK.replace("PULL", policy), &[]);
    plan_one_off(&project, observed, "job", &ReconcileOptions::default()).to_string()
}

#[test]
fn a_one_off_makes_its_networks_and_volumes_and_pulls_as_its_policy_says() {
    let nothing = Observed::default();
    let want = "\
#1 create network tools_back (not found)
#2 create volume tools_cache (not found)
#3 pull image tools/job:1 (not found)
";
    assert_eq!(one_off("missing", &nothing), want);
    let want = "\
#1 create network tools_back (not found)
#2 create volume tools_cache (not found)
";
    assert_eq!(one_off("never", &nothing), want);
    assert_eq!(one_off("build", &nothing), want);

    let mut present = Observed::default();
    present.networks.insert("tools_back".into());
    present.volumes.insert("tools_cache".into());
    present
        .images
        .insert("tools/job:1".into(), "sha256:abc".into());
    assert_eq!(one_off("missing", &present), "");
    assert_eq!(one_off("never", &present), "");
    assert_eq!(
        one_off("always", &present),
        "#1 pull image tools/job:1 (pull_policy: always)\n"
    );
}

const NETWORKED: &str = r#"
name: net
services:
  db:
    image: postgres:16
    networks: [back]
    volumes: [data:/var/lib/postgresql/data]
  api:
    image: shop/app:1
    networks: [back, front]
    depends_on: [db]
  sidecar:
    image: busybox
    network_mode: "service:api"
  web:
    image: nginx:1.27
    networks: [front]
networks:
  back:
  front:
volumes:
  data:
"#;

#[test]
fn a_changed_network_is_recreated_with_the_containers_on_it() {
    let before = load(NETWORKED, &[]);
    let options = ReconcileOptions::default();
    let observed = converged(&before, &options);
    let after = load(
        &NETWORKED.replace(
            "  back:\n",
            "  back:\n    internal: true\n    ipam: {config: [{subnet: 10.91.0.0/24}]}\n",
        ),
        &[],
    );
    let got = plan(&after, &observed, &options);
    let want = "\
#1 remove container net-api-1 (network net_back changed)
#2 remove container net-db-1 (network net_back changed)
#3 recreate network net_back (config changed: internal, ipam) after #1 #2
#4 create container net-db-1 (network net_back changed) after #3
#5 start container net-db-1 (network net_back changed) after #4
#6 create container net-api-1 (network net_back changed) after #3
#7 start container net-api-1 (network net_back changed) after #6 #5; waits for db started
#8 recreate container net-sidecar-1 (dependency api changed) after #6
#9 start container net-sidecar-1 (dependency api changed) after #8 #7
";
    assert_eq!(got, want, "\n{got}");
    // Converged again, the new form is what is kept: nothing more to do.
    assert_eq!(plan(&after, &converged(&after, &options), &options), "");
}

#[test]
fn a_network_made_before_forms_were_kept_is_left_alone() {
    let before = load(NETWORKED, &[]);
    let options = ReconcileOptions::default();
    let mut observed = converged(&before, &options);
    observed.network_configs.clear();
    let after = load(
        &NETWORKED.replace("  front:\n", "  front:\n    labels: {tier: edge}\n"),
        &[],
    );
    assert_eq!(plan(&after, &observed, &options), "");
}

#[test]
fn a_changed_network_used_by_a_service_left_out_is_only_noted() {
    let before = load(NETWORKED, &[]);
    let observed = converged(&before, &ReconcileOptions::default());
    let after = load(
        &NETWORKED.replace("  front:\n", "  front:\n    driver_opts: {mtu: '1400'}\n"),
        &[],
    );
    let web_only = ReconcileOptions {
        services: Some(["web".to_owned()].into()),
        ..ReconcileOptions::default()
    };
    let got = plan(&after, &observed, &web_only);
    let want = "\
note: network net_front changed (driver_opts) but is not recreated: service api, which this up leaves alone, uses it
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn a_changed_volume_is_refused_unless_asked_then_recreated_with_its_users() {
    let before = load(NETWORKED, &[]);
    let options = ReconcileOptions::default();
    let observed = converged(&before, &options);
    let after = load(
        &NETWORKED.replace("  data:\n", "  data:\n    labels: {backup: daily}\n"),
        &[],
    );
    let refused = reconcile(&after, &observed, &options).unwrap_err();
    assert_eq!(
        refused,
        ReconcileError::VolumeChanged {
            name: "net_data".into(),
            paths: vec!["labels".into()],
        }
    );
    assert_eq!(
        refused.to_string(),
        "volume \"net_data\" exists but doesn't match configuration in the stack file (changed: labels). Recreate (data will be lost)? Run again with --yes to recreate it"
    );
    let yes = ReconcileOptions {
        recreate_volumes: true,
        ..ReconcileOptions::default()
    };
    let got = plan(&after, &observed, &yes);
    let want = "\
#1 remove container net-db-1 (volume net_data changed)
#2 recreate volume net_data (config changed: labels) after #1
#3 create container net-db-1 (volume net_data changed) after #2
#4 start container net-db-1 (volume net_data changed) after #3
";
    assert_eq!(got, want, "\n{got}");
}

/// The shop stack converged, `web` stopped and one one-off of `api`.
fn lifecycle_observed(project: &Project) -> Observed {
    let mut observed = converged(project, &ReconcileOptions::default());
    for c in &mut observed.containers {
        if c.service == "web" {
            c.state = ContainerState::Exited;
        }
    }
    let api = observed
        .containers
        .iter()
        .find(|c| c.service == "api")
        .unwrap()
        .clone();
    observed.one_offs.push(ObservedContainer {
        name: "shop-api-run-1".into(),
        ..api
    });
    observed
}

#[test]
fn stop_goes_dependents_first_and_takes_one_offs() {
    let project = load(STACK, &[]);
    let observed = lifecycle_observed(&project);
    let got = plan_stop(&project, &observed, &[], Some(3))
        .unwrap()
        .to_string();
    let want = "\
#1 stop container shop-sidecar-1 (requested)
#2 stop container shop-api-run-1 (requested) after #1
#3 stop container shop-api-1 (requested) after #1
#4 stop container shop-migrate-1 (requested) after #2 #3
#5 stop container shop-db-1 (requested) after #2 #3 #4
";
    assert_eq!(got, want, "\n{got}");
    let got = plan_stop(&project, &observed, &["db".into()], None)
        .unwrap()
        .to_string();
    assert_eq!(got, "#1 stop container shop-db-1 (requested)\n");
    assert_eq!(
        plan_stop(&project, &observed, &["nope".into()], None).unwrap_err(),
        LifecycleError::NoSuchService("nope".into())
    );
}

#[test]
fn down_takes_one_offs_in_its_plan() {
    let project = load(STACK, &[]);
    let observed = lifecycle_observed(&project);
    let got = plan_down(Some(&project), &observed, false).to_string();
    let want = "\
#1 remove container shop-api-run-1 (down)
#2 remove container shop-sidecar-1 (down)
#3 remove container shop-web-1 (down)
#4 remove container shop-api-1 (down) after #3 #2
#5 remove container shop-migrate-1 (down) after #4
#6 remove container shop-db-1 (down) after #5 #4
#7 remove network shop_default (down) after #1 #2 #3 #4 #5 #6
";
    assert_eq!(got, want, "\n{got}");
    // `down -t` plans the stops first, the one-off's with the others.
    let request = stack_engine::api::Request::Down {
        remove_volumes: false,
        timeout: Some(1),
    };
    let got = stack_engine::lifecycle_plan::plan_request(&project, &observed, &request)
        .unwrap()
        .unwrap()
        .to_string();
    assert!(
        got.contains("#2 stop container shop-api-run-1 (requested) after #1\n"),
        "\n{got}"
    );
    assert!(
        got.contains("#6 remove container shop-api-run-1 (down) after #1 #2 #3 #4 #5\n"),
        "\n{got}"
    );
}

#[test]
fn start_goes_dependencies_first_with_their_conditions() {
    let project = load(STACK, &[]);
    let mut observed = lifecycle_observed(&project);
    for c in &mut observed.containers {
        if c.service == "api" || c.service == "sidecar" {
            c.state = ContainerState::Exited;
        }
    }
    let got = plan_start(&project, &observed, &[]).unwrap().to_string();
    let want = "\
#1 start container shop-api-1 (requested); waits for db healthy, migrate completed successfully
#2 start container shop-web-1 (requested) after #1; waits for api started
#3 start container shop-sidecar-1 (requested) after #1
";
    assert_eq!(got, want, "\n{got}");
    let empty = Observed::default();
    assert_eq!(
        plan_start(&project, &empty, &[]).unwrap_err(),
        LifecycleError::NothingToStart
    );
}

#[test]
fn restart_stops_then_starts_every_container_of_the_service() {
    let project = load(STACK, &[]);
    let observed = lifecycle_observed(&project);
    let got = plan_restart(
        &project,
        &observed,
        &["db".into(), "migrate".into()],
        None,
        false,
    )
    .unwrap()
    .to_string();
    let want = "\
#1 stop container shop-migrate-1 (requested)
#2 stop container shop-db-1 (requested) after #1
#3 start container shop-db-1 (requested) after #1 #2
#4 start container shop-migrate-1 (requested) after #1 #2 #3; waits for db healthy
";
    assert_eq!(got, want, "\n{got}");
}

// As compose's `restart`: with a service, the services that restart with
// it (`depends_on` with `restart: true`, or its namespaces shared) are
// restarted too; `--no-deps` restarts it alone.
#[test]
fn restart_takes_what_restarts_with_it_unless_no_deps() {
    let project = load(STACK, &[]);
    let observed = converged(&project, &ReconcileOptions::default());
    let got = plan_restart(&project, &observed, &["api".into()], Some(1), false)
        .unwrap()
        .to_string();
    let want = "\
#1 stop container shop-sidecar-1 (requested)
#2 stop container shop-web-1 (requested)
#3 stop container shop-api-1 (requested) after #1 #2
#4 start container shop-api-1 (requested) after #1 #2 #3; waits for db healthy, migrate completed successfully
#5 start container shop-web-1 (requested) after #1 #2 #3 #4; waits for api started
#6 start container shop-sidecar-1 (requested) after #1 #2 #3 #4
";
    assert_eq!(got, want, "\n{got}");
    let got = plan_restart(&project, &observed, &["api".into()], Some(1), true)
        .unwrap()
        .to_string();
    let want = "\
#1 stop container shop-api-1 (requested)
#2 start container shop-api-1 (requested) after #1; waits for db healthy, migrate completed successfully
";
    assert_eq!(got, want, "\n{got}");
}

// Compose's `kill` leaves the containers of services no longer in the file
// alone unless `--remove-orphans`, which signals them too.
#[test]
fn kill_signals_orphans_only_when_asked() {
    let project = load(STACK, &[]);
    let mut observed = converged(&project, &ReconcileOptions::default());
    let mut old = observed.containers[0].clone();
    old.service = "old".into();
    old.name = "shop-old-1".into();
    observed.containers.push(old);
    let got = plan_kill(&project, &observed, &[], 15, false)
        .unwrap()
        .to_string();
    assert!(!got.contains("shop-old-1"), "\n{got}");
    assert_eq!(got.lines().count(), 5, "\n{got}");
    let got = plan_kill(&project, &observed, &[], 15, true)
        .unwrap()
        .to_string();
    assert!(
        got.ends_with("#6 kill container shop-old-1 (requested)\n"),
        "\n{got}"
    );
}

// `stack create` / `up --no-start`: the containers are made, none started;
// a later `up` starts what is there.
#[test]
fn no_start_makes_the_containers_and_starts_none() {
    let project = load(STACK, &[]);
    let no_start = ReconcileOptions {
        no_start: true,
        ..ReconcileOptions::default()
    };
    let got = plan(&project, &Observed::default(), &no_start);
    let want = "\
#1 create network shop_default (not found)
#2 create volume shop_dbdata (not found)
#3 pull image postgres:16 (not found)
#4 pull image shop/app:1 (not found)
#5 pull image nginx:1.27 (not found)
#6 pull image busybox (not found)
#7 create container shop-db-1 (not found) after #1 #2 #3
#8 create container shop-migrate-1 (not found) after #1 #4
#9 create container shop-api-1 (not found) after #1 #4
#10 create container shop-web-1 (not found) after #1 #5
#11 create container shop-sidecar-1 (not found) after #6 #9
";
    assert_eq!(got, want, "\n{got}");
    // Created, then `up`: started, dependencies first; with --no-start
    // again: nothing.
    let mut observed = converged(&project, &ReconcileOptions::default());
    for c in &mut observed.containers {
        c.state = ContainerState::Created;
    }
    let got = plan(&project, &observed, &ReconcileOptions::default());
    assert!(
        got.starts_with("#1 start container shop-db-1 (not running)\n"),
        "\n{got}"
    );
    assert_eq!(got.lines().count(), 5, "\n{got}");
    assert_eq!(plan(&project, &observed, &no_start), "");
    // A changed one is recreated, and left created.
    let changed = load(&STACK.replace("FOO: \"1\"", "FOO: \"2\""), &[]);
    let got = plan(&changed, &observed, &no_start);
    let want = "\
#1 recreate container shop-api-1 (config changed: environment.FOO)
#2 recreate container shop-sidecar-1 (dependency api changed) after #1
";
    assert_eq!(got, want, "\n{got}");
}

// `--force-recreate` is for the services named (all when none is); their
// dependencies are recreated when they changed, or always with
// `--always-recreate-deps` (compose's `recreateStrategy` and
// `dependenciesRecreateStrategy`); `-V` gives recreated containers new
// anonymous volumes.
#[test]
fn recreate_strategies_for_named_services_and_their_dependencies() {
    let project = load(STACK, &[]);
    let observed = converged(&project, &ReconcileOptions::default());
    let named = |force: bool, deps: bool| ReconcileOptions {
        services: Some(stack_engine::service_graph::with_dependencies(
            &project,
            &["migrate".to_owned()],
        )),
        named: Some(["migrate".to_owned()].into()),
        force_recreate: force,
        always_recreate_deps: deps,
        ..ReconcileOptions::default()
    };
    let got = plan(&project, &observed, &named(true, false));
    let want = "\
#1 recreate container shop-migrate-1 (--force-recreate)
#2 start container shop-migrate-1 (--force-recreate) after #1; waits for db healthy
";
    assert_eq!(got, want, "\n{got}");
    let got = plan(&project, &observed, &named(false, true));
    let want = "\
#1 recreate container shop-db-1 (--always-recreate-deps)
#2 start container shop-db-1 (--always-recreate-deps) after #1
";
    assert_eq!(got, want, "\n{got}");
    let renew = ReconcileOptions {
        renew_anon_volumes: true,
        ..named(true, true)
    };
    let got = plan(&project, &observed, &renew);
    let want = "\
#1 recreate container shop-db-1 (--always-recreate-deps) with new anonymous volumes
#2 start container shop-db-1 (--always-recreate-deps) after #1
#3 recreate container shop-migrate-1 (--force-recreate) with new anonymous volumes
#4 start container shop-migrate-1 (--force-recreate) after #3 #2; waits for db healthy
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn kill_pause_unpause_and_rm_plan_what_their_state_allows() {
    let project = load(STACK, &[]);
    let mut observed = lifecycle_observed(&project);
    let got = plan_kill(&project, &observed, &["api".into(), "web".into()], 9, false)
        .unwrap()
        .to_string();
    let want = "\
#1 kill container shop-api-1 (requested)
#2 kill container shop-api-run-1 (requested)
";
    assert_eq!(got, want, "\n{got}");
    let got = plan_freeze(&project, &observed, &["api".into(), "web".into()], true)
        .unwrap()
        .to_string();
    let want = "\
#1 pause container shop-api-1 (requested)
#2 pause container shop-api-run-1 (requested)
";
    assert_eq!(got, want, "\n{got}");
    observed.containers.iter_mut().for_each(|c| {
        if c.service == "api" {
            c.state = ContainerState::Paused;
        }
    });
    let got = plan_freeze(&project, &observed, &["api".into()], false)
        .unwrap()
        .to_string();
    assert_eq!(got, "#1 unpause container shop-api-1 (requested)\n");
    // rm takes the stopped ones; rm -s stops the running ones first.
    let got = plan_remove(&project, &observed, &["api".into(), "web".into()], false)
        .unwrap()
        .to_string();
    assert_eq!(got, "#1 remove container shop-web-1 (requested)\n");
    let got = plan_remove(&project, &observed, &["db".into(), "web".into()], true)
        .unwrap()
        .to_string();
    let want = "\
#1 stop container shop-db-1 (requested)
#2 remove container shop-web-1 (requested)
#3 remove container shop-db-1 (requested) after #1
";
    assert_eq!(got, want, "\n{got}");
}

const BUILD_STACK: &str = r#"
name: dev
services:
  api:
    build: ./api
    depends_on: [db]
  worker:
    image: dev/worker:1
    build: {context: ./worker}
  db:
    image: postgres:16
"#;

/// Converged, with the built images present and each build's inputs as
/// `current` against what its image was built from.
fn built(project: &Project, fingerprints: &[(&str, &str, &str)]) -> Observed {
    let options = ReconcileOptions::default();
    let mut observed = converged(project, &options);
    for (name, service) in &project.services {
        let image = service_image(&project.name, name, service).unwrap();
        observed
            .images
            .insert(image.clone(), format!("sha256:{image}"));
        for c in observed
            .containers
            .iter_mut()
            .filter(|c| &c.service == name)
        {
            c.image_digest = Some(format!("sha256:{image}"));
        }
    }
    for (service, current, was) in fingerprints {
        observed.builds.insert(
            (*service).to_owned(),
            ObservedBuild {
                current: Some((*current).to_owned()),
                built: Some((*was).to_owned()),
            },
        );
    }
    observed
}

#[test]
fn services_with_build_are_built_before_their_containers_and_never_pulled() {
    let project = load(BUILD_STACK, &[]);
    let got = plan(&project, &Observed::default(), &ReconcileOptions::default());
    let want = "\
#1 create network dev_default (not found)
#2 build image dev-api (build: image not found)
#3 build image dev/worker:1 (build: image not found)
#4 pull image postgres:16 (not found)
#5 create container dev-db-1 (not found) after #1 #4
#6 start container dev-db-1 (not found) after #5
#7 create container dev-api-1 (not found) after #1 #2
#8 start container dev-api-1 (not found) after #7 #6; waits for db started
#9 create container dev-worker-1 (not found) after #1 #3
#10 start container dev-worker-1 (not found) after #9
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn up_build_rebuilds_and_recreates_only_what_changed() {
    let project = load(BUILD_STACK, &[]);
    let observed = built(
        &project,
        &[("api", "new", "old"), ("worker", "same", "same")],
    );
    let build = ReconcileOptions {
        build: true,
        ..ReconcileOptions::default()
    };
    let got = plan(&project, &observed, &build);
    let want = "\
#1 build image dev-api (build: context changed)
#2 recreate container dev-api-1 (image rebuilt) after #1
#3 start container dev-api-1 (image rebuilt) after #2; waits for db started
";
    assert_eq!(got, want, "\n{got}");
    // Without --build the changed context is not looked at.
    assert_eq!(plan(&project, &observed, &ReconcileOptions::default()), "");
    // Unreadable inputs build (and the build says why).
    let mut unreadable = built(&project, &[("api", "x", "x")]);
    unreadable
        .builds
        .insert("worker".into(), ObservedBuild::default());
    let got = plan(&project, &unreadable, &build);
    let want = "\
#1 build image dev/worker:1 (build: context changed)
#2 recreate container dev-worker-1 (image rebuilt) after #1
#3 start container dev-worker-1 (image rebuilt) after #2
";
    assert_eq!(got, want, "\n{got}");
}

#[test]
fn no_build_refuses_a_missing_image_only_a_build_makes_before_anything() {
    let project = load(BUILD_STACK, &[]);
    let no_build = ReconcileOptions {
        no_build: true,
        ..ReconcileOptions::default()
    };
    // Nothing is planned: not even the network the containers would join.
    let err = reconcile(&project, &Observed::default(), &no_build).unwrap_err();
    assert_eq!(
        err.to_string(),
        "service api: image dev-api is missing and --no-build forbids building it \
         (run `stack build api`, or `up` without --no-build)"
    );
    // A worker with `image:` is pulled instead, as compose does; with the
    // api image there, the plan goes ahead without building.
    let mut observed = Observed::default();
    observed.images.insert("dev-api".into(), "sha256:a".into());
    let got = plan(&project, &observed, &no_build);
    assert!(!got.contains("build image"), "{got}");
    assert!(got.contains("pull image dev/worker:1 (not found)"), "{got}");
    // A container that exists and stays needs no image.
    let converged = built(&project, &[]);
    let mut gone = converged.clone();
    gone.images.remove("dev-api");
    assert_eq!(plan(&project, &gone, &no_build), "");
}

#[test]
fn pull_policy_never_refuses_a_missing_image_naming_the_service() {
    let project = load(
        r#"
name: nv
services:
  web:
    image: nv/web:1
    pull_policy: never
  api:
    build: ./api
    pull_policy: never
  db:
    image: nv/db:1
    pull_policy: never
"#,
        &[],
    );
    let mut observed = Observed::default();
    observed.images.insert("nv/db:1".into(), "sha256:d".into());
    let err = reconcile(&project, &observed, &ReconcileOptions::default()).unwrap_err();
    // `never` is about pulling: the build service builds (as compose).
    assert_eq!(
        err.to_string(),
        "service web: image nv/web:1 is missing and its pull_policy is never \
         (pull it with `stack pull`, or load it)"
    );
}

#[test]
fn pull_policy_build_rebuilds_on_change_without_the_flag() {
    let project = load(
        &BUILD_STACK.replace("build: ./api", "build: ./api\n    pull_policy: build"),
        &[],
    );
    let observed = built(&project, &[("api", "new", "old")]);
    let got = plan(&project, &observed, &ReconcileOptions::default());
    let want = "\
#1 build image dev-api (build: context changed)
#2 recreate container dev-api-1 (image rebuilt) after #1
#3 start container dev-api-1 (image rebuilt) after #2; waits for db started
";
    assert_eq!(got, want, "\n{got}");
    let same = built(&project, &[("api", "x", "x")]);
    assert_eq!(plan(&project, &same, &ReconcileOptions::default()), "");
}

#[test]
fn a_one_off_builds_its_missing_image_and_with_build_a_changed_one() {
    let project = load(BUILD_STACK, &[]);
    let mut nothing = Observed::default();
    nothing.networks.insert("dev_default".into());
    let got = plan_one_off(&project, &nothing, "api", &ReconcileOptions::default()).to_string();
    assert_eq!(got, "#1 build image dev-api (build: image not found)\n");
    let observed = built(&project, &[("api", "new", "old")]);
    let build = ReconcileOptions {
        build: true,
        ..ReconcileOptions::default()
    };
    assert_eq!(
        plan_one_off(&project, &observed, "api", &ReconcileOptions::default()).to_string(),
        ""
    );
    assert_eq!(
        plan_one_off(&project, &observed, "api", &build).to_string(),
        "#1 build image dev-api (build: context changed)\n"
    );
}

/// `stack container run` of `service` as `name`, joining `current` (the
/// root's single-container project as its supervisor serves it); the
/// project's name (a hash of the root) printed as `_ctr-ROOT`.
fn container_run(current: Option<&Project>, name: &str, service: Service) -> (Project, String) {
    let added = single::project(Path::new("/nonexistent/root"), name, service);
    let project = match current {
        Some(current) => single::merge(current, added),
        None => added,
    };
    let observed = match current {
        Some(current) => converged(current, &ReconcileOptions::default()),
        None => Observed::default(),
    };
    let plan = plan_one_off(&project, &observed, name, &ReconcileOptions::default());
    let text = plan.to_string().replace(&project.name, "_ctr-ROOT");
    (project, text)
}

#[test]
fn container_run_makes_the_default_bridge_once_and_pulls_what_is_missing() {
    let volume = |source: &str, target: &str| ServiceVolume {
        kind: MountType::Volume,
        source: Some(source.into()),
        target: target.into(),
        read_only: false,
        consistency: None,
        bind: None,
        volume: None,
        tmpfs: None,
        image: None,
    };
    let web = Service {
        image: Some("busybox".into()),
        volumes: vec![volume("data", "/data")],
        ..Service::default()
    };
    // The first container of a root: the default bridge, the named volume
    // (under its own name, as `docker run -v data:/data`) and the image.
    let (first, got) = container_run(None, "web", web);
    let want = "\
#1 create network _ctr-ROOT_bridge (not found)
#2 create volume data (not found)
#3 pull image busybox (not found)
";
    assert_eq!(got, want, "\n{got}");

    // The next one finds them: nothing to make before its container.
    let job = Service {
        image: Some("busybox".into()),
        volumes: vec![volume("data", "/data")],
        ..Service::default()
    };
    let (both, got) = container_run(Some(&first), "job", job);
    assert_eq!(got, "", "\n{got}");
    assert_eq!(both.services.keys().collect::<Vec<_>>(), ["web", "job"]);

    // `--network none` with another image: only the pull.
    let alone = Service {
        image: Some("alpine:3".into()),
        network_mode: Some(NetworkMode::None),
        ..Service::default()
    };
    let (_, got) = container_run(Some(&both), "alone", alone);
    assert_eq!(got, "#1 pull image alpine:3 (not found)\n", "\n{got}");
}

#[test]
fn the_last_single_container_gone_takes_the_bridge_and_keeps_volumes() {
    let web = Service {
        image: Some("busybox".into()),
        volumes: vec![ServiceVolume {
            kind: MountType::Volume,
            source: Some("data".into()),
            target: "/data".into(),
            read_only: false,
            consistency: None,
            bind: None,
            volume: None,
            tmpfs: None,
            image: None,
        }],
        ..Service::default()
    };
    let (first, _) = container_run(None, "web", web.clone());
    let (both, _) = container_run(Some(&first), "job", web);
    let observed = converged(&both, &ReconcileOptions::default());
    let text = |observed: &Observed| {
        single::plan_retire(&both.name, observed)
            .to_string()
            .replace(&both.name, "_ctr-ROOT")
    };
    // While a container is left, nothing goes.
    assert_eq!(
        text(&single::without_services(&observed, &["web".into()])),
        ""
    );
    // The last one gone: its bridge, not its named volume.
    let none = single::without_services(&observed, &["web".into(), "job".into()]);
    let got = text(&none);
    assert_eq!(
        got, "#1 remove network _ctr-ROOT_bridge (last container gone)\n",
        "\n{got}"
    );
    // A stack file's project never retires this way.
    let shop = load(STACK, &[]);
    let empty = single::without_services(&converged(&shop, &ReconcileOptions::default()), &[]);
    assert_eq!(single::plan_retire(&shop.name, &empty).to_string(), "");
}
