//! A stack file with a mistake is refused before anything happens: the error
//! names file:line:column, and no container, network, volume, supervisor or
//! pull comes of it.

mod common;

use std::net::TcpListener;

use common::Env;

/// (what is wrong, the file, where the error must point, what it must say)
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "YAML syntax",
        "services:\n  web:\n    image: wl-never-pulled:1\n    command: [sh, -c\nvolumes:\n  data:\n",
        "5:8",
        "illegal placement of ':'",
    ),
    (
        "unknown key",
        "services:\n  web:\n    image: wl-never-pulled:1\n    volumes: [data:/data]\n    imagee: x\nvolumes:\n  data:\n",
        "5:5",
        "unknown key `imagee`",
    ),
    (
        "undefined dependency",
        "services:\n  web:\n    image: wl-never-pulled:1\n    volumes: [data:/data]\n    depends_on: [nothere]\nvolumes:\n  data:\n",
        "5:18",
        "undefined service \"nothere\"",
    ),
    (
        "undefined volume",
        "services:\n  web:\n    image: wl-never-pulled:1\n    volumes: [data:/data, other:/other]\nvolumes:\n  data:\n",
        "4:27",
        "undefined volume \"other\"",
    ),
    (
        "undefined network",
        "services:\n  web:\n    image: wl-never-pulled:1\n    volumes: [data:/data]\n    networks: [front]\nvolumes:\n  data:\n",
        "5:16",
        "undefined network \"front\"",
    ),
    (
        "bad port",
        "services:\n  web:\n    image: wl-never-pulled:1\n    volumes: [data:/data]\n    ports: [\"99999:80\"]\nvolumes:\n  data:\n",
        "5:13",
        "99999",
    ),
    (
        "misspelt stop signal",
        "services:\n  web:\n    image: wl-never-pulled:1\n    volumes: [data:/data]\n    stop_signal: SIGTREM\nvolumes:\n  data:\n",
        "5:18",
        "services.web.stop_signal: invalid signal \"SIGTREM\"",
    ),
    (
        "dns that is not an address",
        "services:\n  web:\n    image: wl-never-pulled:1\n    volumes: [data:/data]\n    dns: [resolver.lan]\nvolumes:\n  data:\n",
        "5:11",
        "\"resolver.lan\" is not an IP address",
    ),
    (
        "invalid ipam subnet",
        "services:\n  web:\n    image: wl-never-pulled:1\n    volumes: [data:/data]\nvolumes:\n  data:\nnetworks:\n  default:\n    ipam:\n      config: [{subnet: 10.1.0.0/40}]\n",
        "10:25",
        "\"10.1.0.0/40\" is not a subnet",
    ),
];

#[test]
fn every_kind_of_bad_file_is_refused_with_its_position_and_creates_nothing() {
    let env = Env::new("wl-bad", 45);
    // A registry mirror that only counts who knocks: a pull would show here.
    let mirror = TcpListener::bind("127.0.0.1:0").unwrap();
    mirror.set_nonblocking(true).unwrap();
    let mirror_url = format!("http://{}", mirror.local_addr().unwrap());

    for (what, yaml, at, says) in CASES {
        env.write(yaml);
        let file = env.file();
        let result = env
            .command(&["up", "-d", "-f", file.to_str().unwrap(), "-p", "wl-bad"])
            .env("STACK_REGISTRY_MIRRORS", &mirror_url)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{what}: up succeeded");
        let position = format!("{}:{at}:", file.display());
        assert!(
            stderr.contains(&position),
            "{what}: the error does not point at {position}:\n{stderr}"
        );
        assert!(stderr.contains(says), "{what}: not said why:\n{stderr}");

        assert!(
            !env.root().join("projects/wl-bad").exists(),
            "{what}: a project record was written"
        );
        assert!(
            !env.root().join("volumes").exists(),
            "{what}: a volume was created"
        );
        assert_eq!(
            stack_net::project_object_prefix(&env.root(), "wl-bad").unwrap(),
            None,
            "{what}: a network was created"
        );
        assert!(
            !env.run_dir().join("supervisors/wl-bad.sock").exists(),
            "{what}: a supervisor was started"
        );
        assert!(
            mirror.accept().is_err(),
            "{what}: an image pull was attempted"
        );
    }
}
