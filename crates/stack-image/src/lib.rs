//! Content-addressed image store: registry pulls, archive loads, layer unpacking and overlay root filesystems

pub mod digest;
pub mod load;
pub mod merge;
pub mod model;
pub mod reference;
pub mod rootfs;
pub mod store;
pub mod unpack;
