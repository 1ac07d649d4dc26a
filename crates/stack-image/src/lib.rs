//! Content-addressed image store: registry pulls, archive loads, layer
//! unpacking and overlay root filesystems.
//!
//! The engine's path from `image: redis:7` to a container root:
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use stack_image::{PullOptions, Reference, Store};
//! let store = Store::open("/var/lib/stack".as_ref())?;
//! let reference = Reference::parse("redis:7")?;
//! let id = match store.resolve(&reference.to_string()) {
//!     Ok(id) => id,
//!     Err(_) => store.pull(&reference, &PullOptions::default()).await?.id,
//! };
//! let config = store.config(&id)?.config;
//! let process = stack_image::resolve_process(&config, &Default::default())?;
//! let rootfs = store.prepare_rootfs(&id, "myproj-redis-1")?; // overlay mounted at rootfs.path
//! # let _ = process;
//! store.release_rootfs("myproj-redis-1")?; // when the container is removed
//! # Ok(()) }
//! ```

pub mod digest;
pub mod load;
pub mod merge;
pub mod model;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry_config;
pub mod rootfs;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use load::{LoadError, LoadedImage};
pub use merge::{MergeError, ResolvedProcess, ServiceProcess, resolve_process};
pub use model::{ImageConfig, ImageConfigFile, Platform};
pub use pull::{PullError, PullOptions, PullReport};
pub use push::{PushError, PushReport};
pub use reference::{Reference, ReferenceError};
pub use registry_config::RegistriesConfig;
pub use store::{ImageDetails, ImageId, ImageSummary, PruneReport, RootfsMount, Store, StoreError};
