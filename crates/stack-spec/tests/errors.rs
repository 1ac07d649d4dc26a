//! What users see when a file is wrong: every error with file:line:column,
//! key path, and a useful message; several errors reported together.

use stack_spec::{ErrorKind, LoadOptions};

fn load(text: &str) -> Result<stack_spec::Loaded, stack_spec::LoadErrors> {
    stack_spec::load(
        &LoadOptions::new("/nonexistent")
            .with_content("stack.yaml", text)
            .with_environment([("HOME", "/root")]),
    )
}

#[test]
fn unknown_keys_get_a_suggestion_and_all_errors_are_reported() {
    let err = load(
        "services:\n  web:\n    image: nginx\n    prots: ['80:80']\n  db:\n    imgae: postgres\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "stack.yaml:4:5: services.web.prots: unknown key `prots` (did you mean `ports`?)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "stack.yaml:6:5: services.db.imgae: unknown key `imgae` (did you mean `image`?)"
        ),
        "{text}"
    );
}

#[test]
fn bad_values_name_position_and_path() {
    let err = load("services:\n  web:\n    image: nginx\n    ports: ['80:80', '80/xyz']\n    stop_grace_period: 1h30\n    mem_limit: 32bm\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("stack.yaml:4:22: services.web.ports[1]: invalid protocol \"xyz\""),
        "{text}"
    );
    assert!(
        text.contains("services.web.stop_grace_period: invalid duration \"1h30\""),
        "{text}"
    );
    assert!(
        text.contains("services.web.mem_limit: invalid size \"32bm\""),
        "{text}"
    );
    assert_eq!(err.errors.len(), 3, "{text}");
}

#[test]
fn wrong_types_say_what_was_found_and_expected() {
    let err = load("services:\n  web:\n    image: [nginx]\n    environment: 3\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "stack.yaml:3:12: services.web.image: found a list [\"nginx\"], expected a string"
        ),
        "{text}"
    );
    assert!(
        text.contains("services.web.environment: found a number 3, expected"),
        "{text}"
    );
}

#[test]
fn cycles_are_named_by_their_path() {
    let err = load("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n  c: {image: x, depends_on: [a]}\n").unwrap_err();
    assert_eq!(err.kinds(), vec![ErrorKind::Cycle]);
    assert!(
        err.to_string()
            .contains("dependency cycle: a -> b -> c -> a"),
        "{err}"
    );
}

#[test]
fn undefined_references_are_errors() {
    let err = load("services:\n  a:\n    image: x\n    depends_on: [nope]\n    networks: [front]\n    volumes: ['data:/d']\n    secrets: [s]\n").unwrap_err();
    assert_eq!(err.errors.len(), 4, "{err}");
    assert!(
        err.errors
            .iter()
            .all(|e| e.kind == ErrorKind::Reference && e.span.line > 0),
        "{err}"
    );
}

#[test]
fn a_good_file_loads_with_long_forms() {
    let loaded = load(
        "name: Demo App\nx-common: &common\n  restart: on-failure:3\nservices:\n  web:\n    <<: *common\n    image: nginx\n    command: nginx -g 'daemon off;'\n    ports: ['127.0.0.1:8000-8001:80-81/udp']\n    environment: [A=1, HOME]\n    healthcheck:\n      test: curl -f localhost\n      interval: 1m30s\n    depends_on:\n      db: {condition: service_healthy}\n    mem_limit: 1.5g\n    unset: ${NOT_SET}\n  db:\n    image: postgres\n",
    );
    // `unset` is not a service key: it is refused rather than ignored.
    assert!(loaded.is_err());
    let loaded = load(
        "name: Demo App\nx-common: &common\n  restart: on-failure:3\nservices:\n  web:\n    <<: *common\n    image: nginx:${TAG:-latest}\n    command: nginx -g 'daemon off;'\n    ports: ['127.0.0.1:8000-8001:80-81/udp']\n    environment: [A=1, HOME]\n    healthcheck:\n      test: curl -f localhost\n      interval: 1m30s\n    depends_on:\n      db: {condition: service_healthy}\n    mem_limit: 1.5g\n    labels: {v: $UNSET}\n  db:\n    image: postgres\n",
    )
    .unwrap();
    let p = &loaded.project;
    assert_eq!(p.name, "demoapp");
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("nginx:latest"));
    assert_eq!(
        web.command.as_deref().unwrap(),
        ["nginx", "-g", "daemon off;"]
    );
    assert_eq!(web.ports.len(), 2);
    assert_eq!(web.ports[1].published.as_deref(), Some("8001"));
    assert_eq!(web.environment["HOME"].as_deref(), Some("/root"));
    assert_eq!(
        web.restart,
        Some(stack_spec::RestartPolicy::OnFailure {
            max_retries: Some(3)
        })
    );
    assert_eq!(web.mem_limit, Some(stack_spec::ByteSize(3 << 29)));
    let hc = web.healthcheck.as_ref().unwrap();
    assert_eq!(
        hc.test.as_deref().unwrap(),
        ["CMD-SHELL", "curl -f localhost"]
    );
    assert_eq!(hc.interval.unwrap().to_string(), "1m30s");
    assert_eq!(
        web.depends_on["db"].condition,
        stack_spec::DependsOnCondition::ServiceHealthy
    );
    assert!(
        loaded.warnings.iter().any(|w| w.message.contains("UNSET")),
        "{:?}",
        loaded.warnings
    );
    assert_eq!(p.start_order(), ["db", "web"]);
    assert!(web.networks.contains_key("default"));
    assert_eq!(
        p.networks["default"].name.as_deref(),
        Some("demoapp_default")
    );
}

#[test]
fn profiles_select_services() {
    let text = "services:\n  a: {image: x}\n  dbg: {image: x, profiles: [debug]}\n";
    assert_eq!(load(text).unwrap().project.services.len(), 1);
    let mut opts = LoadOptions::new("/nonexistent/demo").with_content("s.yaml", text);
    opts.profiles = vec!["debug".into()];
    assert_eq!(stack_spec::load(&opts).unwrap().project.services.len(), 2);
}

#[test]
fn later_files_merge_over_earlier_ones() {
    let opts = LoadOptions::new("/nonexistent/demo")
        .with_content(
            "a.yaml",
            "services:\n  w:\n    image: a\n    command: [x, y]\n    environment: {A: '1'}\n",
        )
        .with_content(
            "b.yaml",
            "services:\n  w:\n    command: [z]\n    environment: {B: '2'}\n",
        );
    let p = stack_spec::load(&opts).unwrap().project;
    let w = &p.services["w"];
    assert_eq!(w.command.as_deref().unwrap(), ["z"]);
    assert_eq!(w.environment.len(), 2);
}
