//! The stack file: Compose-compatible loading, interpolation, merging, validation and normalisation to a typed Project
