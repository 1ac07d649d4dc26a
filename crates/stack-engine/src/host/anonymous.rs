//! A recreated container keeps its predecessor's anonymous volumes, as
//! compose's recreate does unless `up -V`: they live in the container's
//! directory (`anonymous/<target>`), which its removal takes away, so they
//! are set aside under the project first and put back into the new
//! container's directory before it is made.

use std::fs;
use std::path::PathBuf;

use super::Host;
use super::create::{CreateError, io};

impl Host {
    /// Where `name`'s anonymous volumes wait while it is made again.
    fn kept_anonymous(&self, name: &str) -> PathBuf {
        self.records()
            .project_dir(&self.project().name)
            .join("anonymous-kept")
            .join(name)
    }

    /// Sets `name`'s anonymous volumes aside before its removal. A set
    /// left by a recreate that a crash cut short is the one kept.
    pub(super) fn keep_anonymous_volumes(&self, name: &str) -> Result<(), CreateError> {
        let kept = self.kept_anonymous(name);
        let current = self.container_dir(name).join("anonymous");
        if kept.exists() || !current.exists() {
            return Ok(());
        }
        let parent = kept.parent().expect("a kept path has a parent");
        fs::create_dir_all(parent).map_err(io("create", parent))?;
        fs::rename(&current, &kept).map_err(io("set aside the anonymous volumes of", &current))
    }

    /// Puts the volumes set aside back where `name`'s new container mounts
    /// them from.
    pub(super) fn restore_anonymous_volumes(&self, name: &str) -> Result<(), CreateError> {
        let kept = self.kept_anonymous(name);
        if !kept.exists() {
            return Ok(());
        }
        let dir = self.container_dir(name);
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let target = dir.join("anonymous");
        fs::rename(&kept, &target).map_err(io("restore the anonymous volumes of", &target))
    }
}
