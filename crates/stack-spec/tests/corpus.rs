//! The Compose conformance corpus (`../shared/corpus/compose`): every valid
//! case loads, every invalid case is refused, and the interpolation, ports,
//! durations and memory tables pass row by row.

use std::path::{Path, PathBuf};

use serde_json::Value;
use stack_spec::{ErrorKind, LoadOptions, Source};

/// The corpus, beside the repository (`shared/` next to its checkout);
/// `None`, with the running test reported as skipped, in a clone alone.
fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/compose");
    if !p.join("README.md").is_file() {
        stack_testing::skip(&format!(
            "the Compose corpus is not at {} (check out `shared/` beside the repository)",
            p.display()
        ));
        return None;
    }
    Some(p)
}

fn cases(kind: &str) -> Option<Vec<(PathBuf, Value)>> {
    let dir = corpus()?.join(kind);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").is_file())
        .map(|p| {
            let case: Value =
                serde_json::from_str(&std::fs::read_to_string(p.join("case.json")).unwrap())
                    .unwrap();
            (p, case)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no cases in {}", dir.display());
    Some(out)
}

fn options(dir: &Path, case: &Value) -> LoadOptions {
    let mut opts = LoadOptions::new(dir);
    for e in case["entries"].as_array().unwrap() {
        opts.files.push(Source::Path(dir.join(e.as_str().unwrap())));
    }
    if let Some(pd) = case["project_directory"].as_str() {
        opts.project_directory = Some(dir.join(pd));
    }
    if let Some(p) = case["project"].as_str() {
        opts.project_name = Some(p.to_string());
    }
    if let Some(env) = case["env"].as_object() {
        opts.environment = env
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
    }
    opts
}

#[test]
fn valid_cases_load() {
    let mut failures = Vec::new();
    let Some(all) = cases("valid") else {
        return;
    };
    // What `stack config --format json` prints must match the published schema.
    let schema = jsonschema::validator_for(&stack_spec::project_schema()).unwrap();
    for (dir, case) in &all {
        let id = case["id"].as_str().unwrap();
        let expect = case["expect"].as_str().unwrap();
        let result = stack_spec::load(&options(dir, case));
        match (expect, result) {
            (_, Ok(loaded)) => {
                let out = serde_json::to_value(&loaded.project).unwrap();
                if let Err(e) = schema.validate(&out) {
                    failures.push(format!(
                        "{id}: output does not match schemas/stack.schema.json: {e}"
                    ));
                }
            }
            // `parse` cases may be refused by the cross-reference checks.
            ("parse", Err(e))
                if e.errors
                    .iter()
                    .all(|e| matches!(e.kind, ErrorKind::Reference | ErrorKind::Cycle)) => {}
            ("bounded", Err(_)) => {}
            (_, Err(e)) => failures.push(format!("{id}:\n{e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} valid cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn invalid_cases_are_refused() {
    let mut failures = Vec::new();
    let Some(all) = cases("invalid") else {
        return;
    };
    // Build the schema validator once so that the timing below measures loading only.
    let _ = stack_spec::load(&LoadOptions::new("/").with_content("warm-up", "services: {}"));
    for (dir, case) in &all {
        let id = case["id"].as_str().unwrap();
        let start = std::time::Instant::now();
        match stack_spec::load(&options(dir, case)) {
            Ok(_) => failures.push(format!(
                "{id}: accepted, expected {} error: {}",
                case["kind"], case["error"]
            )),
            Err(e) => {
                for err in &e.errors {
                    assert!(
                        err.span.line > 0 || !err.span.file.is_empty(),
                        "{id}: error without position: {err}"
                    );
                }
            }
        }
        assert!(
            start.elapsed().as_secs() < 5,
            "{id} took {:?}",
            start.elapsed()
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid cases accepted:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

fn table(name: &str) -> Option<Vec<Value>> {
    let p = corpus()?.join(name).join("cases.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    Some(v["cases"].as_array().unwrap().clone())
}

#[test]
fn interpolation_table() {
    let mut failures = Vec::new();
    let Some(rows) = table("interpolation") else {
        return;
    };
    for row in rows {
        let vars: stack_spec::interpolate::Vars = row["env"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let got = stack_spec::interpolate::substitute(
            row["template"].as_str().unwrap(),
            &vars,
            &mut Vec::new(),
        );
        let ok = match (&row["expected"], &got) {
            (Value::String(want), Ok(g)) => want == g,
            (Value::Null, Err(stack_spec::interpolate::TemplateError::Invalid { .. })) => {
                row["error"]["kind"] == "invalid_template"
            }
            (Value::Null, Err(stack_spec::interpolate::TemplateError::MissingRequired { .. })) => {
                row["error"]["kind"] == "missing_required"
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{}: {:?} -> {got:?}, want {}",
                row["id"], row["template"], row
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ports_table() {
    let mut failures = Vec::new();
    let Some(rows) = table("ports") else {
        return;
    };
    for row in rows {
        let got = stack_spec::ports::parse_port_spec(row["input"].as_str().unwrap());
        match (&row["expected"], got) {
            (Value::Array(want), Ok(got)) => {
                let mut want: Vec<String> = want.iter().map(|w| w.to_string()).collect();
                let mut got: Vec<String> = got
                    .iter()
                    .map(|p| {
                        let mut v = serde_json::to_value(p).unwrap();
                        v.as_object_mut().unwrap().retain(|_, x| !x.is_null());
                        // Compare with the table's key set and order.
                        let mut o = serde_json::Map::new();
                        for k in ["host_ip", "protocol", "target", "published", "mode"] {
                            if let Some(x) = v.get(k) {
                                o.insert(k.into(), x.clone());
                            }
                        }
                        Value::Object(o).to_string()
                    })
                    .collect();
                let mut want_norm: Vec<String> = want
                    .drain(..)
                    .map(|w| {
                        let v: Value = serde_json::from_str(&w).unwrap();
                        let mut o = serde_json::Map::new();
                        for k in ["host_ip", "protocol", "target", "published", "mode"] {
                            if let Some(x) = v.get(k) {
                                o.insert(k.into(), x.clone());
                            }
                        }
                        Value::Object(o).to_string()
                    })
                    .collect();
                want_norm.sort();
                got.sort();
                if want_norm != got {
                    failures.push(format!(
                        "{}: {} -> {got:?}, want {want_norm:?}",
                        row["id"], row["input"]
                    ));
                }
            }
            (Value::Null, Err(_)) => {}
            (_, got) => failures.push(format!(
                "{}: {} -> {got:?}, want {}",
                row["id"], row["input"], row
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn durations_table() {
    let mut failures = Vec::new();
    let Some(rows) = table("durations") else {
        return;
    };
    for row in rows {
        let got = stack_spec::units::parse_duration(row["input"].as_str().unwrap());
        match (row["expected_ns"].as_u64(), got) {
            (Some(want), Ok(d)) if d.as_nanos() == u128::from(want) => {}
            (None, Err(_)) => {}
            (_, got) => failures.push(format!(
                "{}: {} -> {got:?}, want {}",
                row["id"], row["input"], row
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn memory_table() {
    let mut failures = Vec::new();
    let Some(rows) = table("memory") else {
        return;
    };
    for row in rows {
        let got = match &row["input"] {
            Value::String(s) => stack_spec::units::parse_bytes(s),
            Value::Number(n) => Ok(n.as_i64().unwrap()),
            other => panic!("unexpected input {other}"),
        };
        match (&row["expected"], got) {
            // The table went through float64 JSON numbers: compare with that precision.
            (Value::Number(want), Ok(g)) if (want.as_f64().unwrap() - g as f64).abs() <= 8.0 => {}
            (Value::Null, Err(_)) => {}
            (_, got) => failures.push(format!(
                "{}: {} -> {got:?}, want {}",
                row["id"], row["input"], row
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
