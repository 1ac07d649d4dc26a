//! Loading a generated 1,000-service stack file (interpolation, merge keys,
//! schema validation, normalisation, consistency checks).

use criterion::{Criterion, criterion_group, criterion_main};
use stack_spec::LoadOptions;

/// A realistic file: shared defaults through a merge key, ports, volumes,
/// environment, healthchecks and a dependency on the previous service.
pub fn generate(services: usize) -> String {
    let mut s = String::from(
        "name: bench\nx-defaults: &defaults\n  restart: unless-stopped\n  environment:\n    LOG_LEVEL: ${LOG_LEVEL:-info}\n  labels: [team=core]\n",
    );
    s.push_str("volumes:\n  data: {}\nnetworks:\n  back: {}\nservices:\n");
    for i in 0..services {
        s.push_str(&format!(
            "  svc{i}:\n    <<: *defaults\n    image: registry.example/app{i}:${{TAG:-1.0}}\n    command: [\"/bin/app\", \"--port\", \"{port}\"]\n    ports: [\"127.0.0.1:{port}:8080/tcp\"]\n    volumes: [\"data:/data/{i}:ro\", \"./conf/{i}:/etc/app\"]\n    networks: [back]\n    mem_limit: 256m\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 30s\n",
            port = 10000 + i
        ));
        if i > 0 {
            s.push_str(&format!("    depends_on: [svc{}]\n", i - 1));
        }
    }
    s
}

fn bench(c: &mut Criterion) {
    let text = generate(1000);
    // bench/spec/run.sh times `stack config` on the very same file.
    if let Ok(path) = std::env::var("STACK_BENCH_FILE") {
        std::fs::write(&path, &text).expect("write the generated stack file");
    }
    let opts = LoadOptions::new("/nonexistent/bench")
        .with_content("stack.yaml", text)
        .with_environment([("TAG", "2.0")]);
    let loaded = stack_spec::load(&opts).expect("the generated file loads");
    assert_eq!(loaded.project.services.len(), 1000);
    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    g.bench_function("1000_services", |b| {
        b.iter(|| stack_spec::load(&opts).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
