//! `schemas/stack.schema.json` is generated from the Rust types. This test
//! fails when the checked-in file is stale; regenerate it with
//! `STACK_UPDATE_SCHEMA=1 cargo test -p stack-spec schema`.

use std::path::Path;

#[test]
fn schema_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/stack.schema.json");
    let generated = serde_json::to_string_pretty(&stack_spec::project_schema()).unwrap() + "\n";
    if std::env::var_os("STACK_UPDATE_SCHEMA").is_some() {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, &generated).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "{} is stale: run `STACK_UPDATE_SCHEMA=1 cargo test -p stack-spec schema` and commit the result",
        path.display()
    );
}
