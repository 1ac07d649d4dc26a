//! The stack file: Compose-compatible loading, interpolation, merging,
//! validation and normalisation to a typed [`Project`].
//!
//! ```no_run
//! let opts = stack_spec::LoadOptions::new(std::env::current_dir().unwrap())
//!     .with_environment(std::env::vars());
//! match stack_spec::load(&opts) {
//!     Ok(loaded) => println!("{} services", loaded.project.services.len()),
//!     Err(errors) => eprintln!("{errors}"),
//! }
//! ```

pub mod dotenv;
pub mod error;
mod extends;
pub mod input;
pub mod interpolate;
mod load;
mod merge;
pub mod model;
mod names;
mod no_effect;
mod node;
mod normalize;
pub mod ports;
mod schema;
pub mod security_opt;
pub mod settings;
pub mod signal;
pub mod units;
mod validate;
pub mod variables;
pub mod volumes;
mod yaml;

pub use error::{ErrorKind, LoadError, LoadErrors, Span, Warning};
pub use load::{
    LoadOptions, Loaded, STACK_FILE_NAMES, Source, find_stack_file, load, normalize_project_name,
};
pub use model::*;

/// The JSON schema of [`Project`] (what `stack config --format json` prints).
pub fn project_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Project)).unwrap_or(serde_json::Value::Null)
}
