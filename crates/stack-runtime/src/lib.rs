//! The container core: OCI bundles to processes in namespaces and cgroups, with a runc-compatible CLI
