//! Dockerfile to OCI image: the parser, the build context with its
//! `.dockerignore`, steps run by the runtime on overlay snapshots, a
//! content-addressed step cache, and the image written into the store so
//! containers and stacks can use it.

pub mod archive;
pub mod build;
pub mod cache;
pub mod cache_io;
pub mod context;
pub mod dockerfile;
pub mod fetch;
pub mod ignore;
pub mod layer;
pub mod network;
pub mod run;
pub mod secret;
pub mod service;
pub mod vars;

pub use build::{BuildError, BuildOptions, Built, Event, build};
pub use dockerfile::{Dockerfile, ParseErrors, parse};
