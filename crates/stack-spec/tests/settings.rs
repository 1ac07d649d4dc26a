//! Settings the engine hands to the kernel are checked at load: a misspelt
//! signal, namespace mode, address, subnet or limit is an error naming its
//! file, line, column and key, never a default chosen when a container
//! starts.

use stack_spec::{ErrorKind, LoadOptions};

fn load(text: &str) -> Result<stack_spec::Loaded, stack_spec::LoadErrors> {
    stack_spec::load(&LoadOptions::new("/nonexistent").with_content("stack.yaml", text))
}

#[test]
fn every_bad_setting_of_a_service_is_named_at_its_place() {
    let err = load(
        "services:
  web:
    image: busybox
    stop_signal: SIGTREM
    ipc: hots
    pid: 'service:'
    uts: private
    dns: [8.8.8.8, dns.example.com]
    ulimits:
      nofiles: 10
      nproc: {soft: 20, hard: 10}
    devices: ['dev/fuse:/dev/fuse']
    logging:
      options: {max-size: 10 megs, max-file: '0'}
",
    )
    .unwrap_err();
    let text = err.to_string();
    for expected in [
        "stack.yaml:4:18: services.web.stop_signal: invalid signal \"SIGTREM\"",
        "stack.yaml:5:10: services.web.ipc: invalid ipc mode \"hots\"",
        "stack.yaml:6:10: services.web.pid: invalid pid mode \"service:\"",
        "stack.yaml:7:10: services.web.uts: invalid uts mode \"private\" (expected host)",
        "stack.yaml:8:20: services.web.dns[1]: \"dns.example.com\" is not an IP address",
        "services.web.ulimits.nofiles: unknown ulimit \"nofiles\"",
        "services.web.ulimits.nproc: soft limit 20 is above hard limit 10",
        "services.web.devices[0]: device source \"dev/fuse\" is not an absolute path",
        "services.web.logging.options.max-size: invalid size \"10 megs\"",
        "services.web.logging.options.max-file: invalid file count \"0\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(err.errors.len(), 10, "{text}");
    assert!(err.kinds().iter().all(|k| *k == ErrorKind::Value));
}

#[test]
fn a_long_form_port_needs_an_ip_for_host_ip() {
    let err = load(
        "services:
  web:
    image: busybox
    ports: [{target: 80, published: '8080', host_ip: localhost}]
",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("services.web.ports[0].host_ip: \"localhost\" is not an IP address"),
        "{text}"
    );
}

#[test]
fn ipam_pools_are_subnets_with_their_addresses_inside() {
    let err = load(
        "services:
  web: {image: busybox}
networks:
  a:
    ipam:
      config:
        - subnet: 172.28.0.0/33
  b:
    ipam:
      config:
        - subnet: 172.29.0.0/16
          ip_range: 172.30.0.0/24
          gateway: 172.29.0.300
          aux_addresses: {host1: 10.0.0.1}
",
    )
    .unwrap_err();
    let text = err.to_string();
    for expected in [
        "stack.yaml:7:19: networks.a.ipam.config[0].subnet: \"172.28.0.0/33\" is not a subnet in CIDR form",
        "networks.b.ipam.config[0].ip_range: ip_range 172.30.0.0/24 is not inside the subnet",
        "networks.b.ipam.config[0].gateway: \"172.29.0.300\" is not an IP address",
        "networks.b.ipam.config[0].aux_addresses: aux address host1=10.0.0.1 is not inside the subnet",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(err.errors.len(), 4, "{text}");
}

#[test]
fn good_settings_load_and_unsettable_ones_are_warned_about() {
    let loaded = load(
        "services:
  web:
    image: busybox
    stop_signal: quit
    ipc: shareable
    pid: host
    dns: [1.1.1.1, 'fd00::1']
    ports: ['127.0.0.1:8080:80']
    ulimits: {nofile: {soft: 1024, hard: -1}, nproc: 64}
    sysctls: {net.core.somaxconn: '1024', vm.swappiness: '10'}
    devices: ['/dev/fuse:/dev/fuse:rwx']
networks:
  n:
    ipam:
      config: [{subnet: 10.9.0.0/24, ip_range: 10.9.0.128/25, gateway: 10.9.0.1}]
",
    )
    .unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    let text = warnings.join("\n");
    assert!(
        text.contains("services.web.sysctls.vm.swappiness: sysctl vm.swappiness is not namespaced"),
        "{text}"
    );
    assert!(
        text.contains("services.web.devices[0]: invalid device permissions \"rwx\""),
        "{text}"
    );
    assert_eq!(warnings.len(), 2, "{text}");
}
