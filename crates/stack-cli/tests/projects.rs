//! Two projects from one file (`-p a`, `-p b`) in one root: each has its own
//! containers and network, a service name resolves inside its own project
//! only, and `down` of one leaves the other running.

mod common;

use common::{Env, ProjectGuard, link_exists, wait_file};

const LOOP: &str = "trap 'exit 0' TERM; while :; do sleep 0.1; done";

#[test]
fn two_projects_from_one_file_are_isolated() {
    stack_testing::require_root!();
    let mut env = Env::new("wl-proj-a", 42);
    // Two projects, two networks: two /24s.
    env.pool = "10.220.42.0/23".into();
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // `web` serves its own hostname (its container id); `client` fetches
    // `http://web/` and files the answer under its own hostname.
    env.write(&format!(
        r#"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      start_interval: 100ms
      start_period: 20s
  client:
    image: busybox
    command: ["sh", "-c", "until wget -q -O /tmp/got http://web/; do sleep 0.2; done; cp /tmp/got /out/$$(hostname); {LOOP}"]
    volumes: ["{out}:/out"]
    depends_on:
      web: {{condition: service_healthy}}
"#,
        out = out.display()
    ));
    let b = ProjectGuard {
        env: &env,
        project: "wl-proj-b".into(),
    };
    env.ok_as("wl-proj-a", &["up", "-d"]);
    env.ok_as(&b.project, &["up", "-d"]);

    let records = |project: &str| {
        let dir = env.root().join("projects").join(project).join("containers");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let record: serde_json::Value =
                serde_json::from_slice(&std::fs::read(entry.path().join("record.json")).unwrap())
                    .unwrap();
            out.push((
                record["name"].as_str().unwrap().to_owned(),
                record["id"].as_str().unwrap().to_owned(),
                record["pid"].as_i64().unwrap(),
            ));
        }
        out.sort();
        out
    };
    let (ra, rb) = (records("wl-proj-a"), records("wl-proj-b"));
    let names = |r: &[(String, String, i64)]| r.iter().map(|c| c.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ra), ["wl-proj-a-client-1", "wl-proj-a-web-1"]);
    assert_eq!(names(&rb), ["wl-proj-b-client-1", "wl-proj-b-web-1"]);
    for a in &ra {
        assert!(rb.iter().all(|b| b.1 != a.1 && b.2 != a.2), "shared {a:?}");
    }

    // Each client reached the web of its own project by the name `web`.
    for r in [&ra, &rb] {
        let (client, web) = (&r[0].1[..12], &r[1].1[..12]);
        assert_eq!(
            wait_file(&out.join(client)).trim(),
            web,
            "{client} reached another project's web"
        );
    }

    // Separate networks: each project has its own bridge and subnet.
    let prefix = |p: &str| {
        stack_net::project_object_prefix(&env.root(), p)
            .unwrap()
            .unwrap_or_else(|| panic!("{p} has no network state"))
    };
    let (pa, pb) = (prefix("wl-proj-a"), prefix("wl-proj-b"));
    assert_ne!(pa, pb);
    assert!(link_exists(&pa) && link_exists(&pb));
    let ps_b = env.ok_as(&b.project, &["ps", "--format", "json"]);
    assert!(!ps_b.contains("wl-proj-a"), "{ps_b}");

    // Down of a: b keeps running, untouched.
    env.ok_as("wl-proj-a", &["down"]);
    assert!(!env.root().join("projects/wl-proj-a").exists());
    assert!(!link_exists(&pa), "a's links are left");
    assert!(link_exists(&pb), "b's network went with a");
    assert_eq!(records("wl-proj-b"), rb, "b was touched by a's down");
    for (name, _, pid) in &rb {
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{name} died with a's down"
        );
    }
    let states = env.states(&b.project);
    assert!(
        states.iter().all(|s| s.1 == "running"),
        "b after a's down: {states:?}"
    );
}
