//! What cannot be exported at all is an error naming the key, and nothing
//! is produced.

use stack_export::{ExportError, kubernetes, swarm};
use stack_spec::{LoadOptions, Project};

fn load(yaml: &str) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let opts = LoadOptions::new(dir.path()).with_content("stack.yaml", yaml);
    stack_spec::load(&opts).unwrap().project
}

fn k8s_error(yaml: &str) -> String {
    match kubernetes::export(&load(yaml), &kubernetes::Options::default()) {
        Ok(_) => panic!("exported:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_volume_size_that_is_no_quantity_names_the_label() {
    let e = k8s_error(
        "name: p\nservices:\n  db:\n    image: x\n    volumes: [data:/d]\nvolumes:\n  data:\n    labels:\n      stack.size: ten gigs\n",
    );
    assert_eq!(
        e,
        "volumes.data.labels.stack.size: \"ten gigs\" is not a size such as 10Gi or 500M"
    );
}

#[test]
fn services_that_become_the_same_kubernetes_name_are_refused() {
    let e = k8s_error("name: p\nservices:\n  a_b:\n    image: x\n  a-b:\n    image: x\n");
    assert_eq!(
        e,
        "services.a-b: becomes the Kubernetes name \"a-b\", as service \"a_b\" does"
    );
}

#[test]
fn a_secret_from_an_unset_variable_names_the_key() {
    let e = k8s_error(
        "name: p\nservices:\n  s:\n    image: x\n    secrets: [tok]\nsecrets:\n  tok:\n    environment: STACK_EXPORT_TEST_UNSET\n",
    );
    assert_eq!(
        e,
        "secrets.tok.environment: the variable STACK_EXPORT_TEST_UNSET is not set"
    );
}

#[test]
fn a_bad_namespace_and_version_are_refused() {
    let p = load("name: p\nservices:\n  s:\n    image: x\n");
    let opts = kubernetes::Options {
        namespace: Some("Not_A_Namespace".into()),
        ..Default::default()
    };
    assert!(matches!(
        kubernetes::export(&p, &opts),
        Err(ExportError::Value { path, .. }) if path == "--namespace"
    ));
    assert!(kubernetes::parse_version("1.24").is_err());
    assert!(kubernetes::parse_version("2.0").is_err());
    assert_eq!(kubernetes::parse_version("1.31.2").unwrap(), (1, 31));
}

#[test]
fn inline_content_cannot_go_to_swarm() {
    let p = load(
        "name: p\nservices:\n  s:\n    image: x\n    configs: [c]\nconfigs:\n  c:\n    content: hello\n",
    );
    let e = swarm::export(&p).unwrap_err().to_string();
    assert!(
        e.starts_with("configs.c: content and environment are not in the compose file format"),
        "{e}"
    );
}

#[test]
fn inline_content_goes_to_kubernetes() {
    let p = load(
        "name: p\nservices:\n  s:\n    image: x\n    configs: [c]\nconfigs:\n  c:\n    content: hello\n",
    );
    let m = kubernetes::export(&p, &kubernetes::Options::default()).unwrap();
    let cm = m
        .objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap")
        .expect("a ConfigMap");
    assert_eq!(cm["data"]["content"], "hello");
}

#[test]
fn an_init_container_gets_no_probes() {
    let p = load(
        "name: p\nservices:\n  job:\n    image: x\n    healthcheck:\n      test: [CMD, 'true']\n  app:\n    image: x\n    depends_on:\n      job:\n        condition: service_completed_successfully\n",
    );
    let m = kubernetes::export(&p, &kubernetes::Options::default()).unwrap();
    let app = m
        .objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment");
    let init = &app["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(init["name"], "job");
    assert!(init.get("readinessProbe").is_none() && init.get("livenessProbe").is_none());
    assert!(
        m.warnings
            .iter()
            .any(|w| w.path == "services.job.healthcheck"),
        "{:?}",
        m.warnings
    );
}

#[test]
fn environment_names_follow_the_kubernetes_version() {
    let p = load(
        "name: p\nservices:\n  s:\n    image: x\n    environment:\n      OK_NAME: a\n      1BAD NAME: b\n",
    );
    let env_names = |version: (u32, u32)| {
        let opts = kubernetes::Options {
            version,
            ..Default::default()
        };
        let m = kubernetes::export(&p, &opts).unwrap();
        let d = m
            .objects
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .unwrap();
        let names: Vec<String> = d["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect();
        let warned = m
            .warnings
            .iter()
            .any(|w| w.path == "services.s.environment.1BAD NAME");
        (names, warned)
    };
    assert_eq!(env_names((1, 25)), (vec!["OK_NAME".to_string()], true));
    assert_eq!(
        env_names((1, 32)),
        (vec!["OK_NAME".to_string(), "1BAD NAME".to_string()], false)
    );
}
