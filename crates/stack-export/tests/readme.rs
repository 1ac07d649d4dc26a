//! The README's mapping table ("Beyond one host") names every service key
//! of the model, so a key added later cannot go undocumented (the export
//! itself warns about keys it does not know).

use std::collections::BTreeSet;

#[test]
fn the_mapping_table_lists_every_service_key() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("## Beyond one host")
        .expect("README has a \"Beyond one host\" section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut listed = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap_or_default();
        for (i, part) in first.split('`').enumerate() {
            if i % 2 == 1 {
                listed.insert(part.to_string());
            }
        }
    }
    let schema = stack_spec::project_schema();
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .expect("schema definitions");
    let keys: BTreeSet<String> = defs["Service"]["properties"]
        .as_object()
        .expect("Service properties")
        .keys()
        .cloned()
        .collect();
    let missing: Vec<&String> = keys.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "README's mapping table lacks {missing:?}"
    );
}
