//! Files `docker compose` accepts (or refuses) as real projects write them:
//! variables in list forms, flow sequences closed at the parent key's
//! column, host IPs in short port syntax, services that cannot run, and keys
//! that are accepted but do nothing here.

use stack_spec::LoadOptions;

fn load_with(
    text: &str,
    env: &[(&str, &str)],
) -> Result<stack_spec::Loaded, stack_spec::LoadErrors> {
    let mut vars = vec![("HOME", "/root")];
    vars.extend_from_slice(env);
    stack_spec::load(
        &LoadOptions::new("/nonexistent")
            .with_content("stack.yaml", text)
            .with_environment(vars),
    )
}

fn load(text: &str) -> stack_spec::Loaded {
    load_with(text, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn warnings(l: &stack_spec::Loaded) -> Vec<String> {
    l.warnings.iter().map(ToString::to_string).collect()
}

/// Compose interpolates the raw tree before list forms become mappings, so a
/// variable in a list entry is substituted before it becomes a key.
#[test]
fn list_forms_are_interpolated_before_they_become_mappings() {
    let l = load_with(
        "services:
  web:
    image: nginx
    depends_on:
      - ${DB_HOST:-db}
    networks:
      - ${NET:-front}
    environment:
      - ${K:-FOO}=bar
      - ${UNSET_KEY:-PLAIN}
    labels:
      - traefik.http.routers.${NAME}.rule=Host(`x`)
  db:
    image: postgres
networks:
  front: {}
",
        &[("NAME", "shop"), ("PLAIN", "from-env")],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let web = &l.project.services["web"];
    assert!(web.depends_on.contains_key("db"), "{:?}", web.depends_on);
    assert!(web.networks.contains_key("front"), "{:?}", web.networks);
    assert_eq!(web.environment["FOO"].as_deref(), Some("bar"));
    assert_eq!(web.environment["PLAIN"].as_deref(), Some("from-env"));
    assert_eq!(
        web.labels["traefik.http.routers.shop.rule"], "Host(`x`)",
        "{:?}",
        web.labels
    );
}

/// The closing bracket of a multi-line flow sequence at, or left of, its
/// key's column: go-yaml and PyYAML accept it, YAML 1.2 does not.
#[test]
fn flow_sequence_closed_at_the_parent_column_loads() {
    for close in ["      ]", "    ]", "]", "      ]  # end", "      }"] {
        let open = if close.trim_start().starts_with('}') {
            "{"
        } else {
            "["
        };
        let body = if open == "{" {
            "        a: 1, b: 2"
        } else {
            "        \"CMD\", \"true\""
        };
        let key = if open == "{" { "x-test" } else { "test" };
        let text = format!(
            "services:\n  web:\n    image: nginx\n    healthcheck:\n      {key}: {open}\n{body}\n{close}\n      interval: 10s\n"
        );
        let text = if open == "{" {
            text.replace(
                "    healthcheck:\n",
                "    labels:\n      k: v\n    x-stack-ignored:\n",
            )
            .replace("      interval: 10s\n", "")
        } else {
            text
        };
        let l = load_with(&text, &[]).unwrap_or_else(|e| panic!("{text}\n{e}"));
        if open == "[" {
            let hc = l.project.services["web"].healthcheck.as_ref().unwrap();
            assert_eq!(
                hc.test.as_deref(),
                Some(&["CMD".to_string(), "true".to_string()][..])
            );
        }
    }
}

/// Positions after the re-indented line still point into the file as written.
#[test]
fn errors_after_a_reindented_line_keep_their_positions() {
    let err = load_with(
        "services:\n  web:\n    image: nginx\n    healthcheck:\n      test: [\n        \"CMD\", \"true\"\n      ]\n    prots: ['80']\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("stack.yaml:8:5: services.web.prots: unknown key `prots`"),
        "{err}"
    );
    // Other indentation errors are still refused where they are.
    let err = load_with("services:\n  web:\n    image: nginx\n   bad: 1\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("stack.yaml:4:"), "{err}");
}

/// An empty host IP means none; an unbracketed IPv6 one is refused as the
/// go-connections version Compose pins refuses it, with the fix named.
#[test]
fn empty_and_unbracketed_ipv6_host_ips() {
    let l = load_with(
        "services:\n  web:\n    image: nginx\n    ports:\n      - ${PORT-:8080:80}\n      - \"[::1]:6000:6000\"\n",
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ports = &l.project.services["web"].ports;
    assert_eq!(ports[0].host_ip, None);
    assert_eq!(ports[0].published.as_deref(), Some("8080"));
    assert_eq!(ports[0].target, 80);
    assert_eq!(ports[1].host_ip.as_deref(), Some("::1"));
    assert_eq!(ports[1].published.as_deref(), Some("6000"));
    let err = load_with(
        "services:\n  web:\n    image: nginx\n    ports: [\"::1:6000:6000\"]\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("stack.yaml:4:13: services.web.ports[0]: invalid ip address \"::1\"")
            && err.contains("\"[::1]:6000:6000\""),
        "{err}"
    );
}

#[test]
fn a_service_with_neither_image_nor_build_is_refused_at_its_name() {
    let err = load_with(
        "services:\n  web:\n    image: nginx\n  worker:\n    command: [\"true\"]\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(err.errors.len(), 1, "{err}");
    assert!(
        err.to_string().contains(
            "stack.yaml:4:3: services.worker: service \"worker\" has neither an image nor a build context specified"
        ),
        "{err}"
    );
    // A build alone is enough (the image name is then derived from it).
    load("services:\n  web:\n    build: .\n");
}

/// Every key that is accepted but does nothing here is named once, with its
/// place, wherever it sits in the file.
#[test]
fn keys_without_effect_are_warned_once_wherever_they_are() {
    let l = load(
        "services:
  web:
    image: nginx
    isolation: default
    deploy:
      placement:
        constraints: [node.role==manager]
      update_config: {parallelism: 2}
    build:
      context: .
      ssh: [default]
      tags: [x]
    logging:
      driver: syslog
models:
  m: {model: ai/x}
",
    );
    let w = warnings(&l);
    for want in [
        "stack.yaml:4:16: services.web.isolation: accepted but not supported",
        "stack.yaml:7:9: services.web.deploy.placement: accepted but not supported",
        "stack.yaml:8:22: services.web.deploy.update_config: accepted but not supported",
        "stack.yaml:11:12: services.web.build.ssh: accepted but not supported",
        "stack.yaml:14:15: services.web.logging.driver: log driver \"syslog\" is not available",
        "stack.yaml:16:3: models: accepted but not supported",
    ] {
        assert_eq!(
            w.iter().filter(|m| m.contains(want)).count(),
            1,
            "{want} in {w:#?}"
        );
    }
    assert_eq!(w.len(), 6, "{w:#?}");
}
