//! Content-addressed image store: registry pulls, archive loads, layer unpacking and overlay root filesystems
