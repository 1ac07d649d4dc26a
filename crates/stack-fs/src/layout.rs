//! Where everything lives under `--root` and the run directory, in one
//! place: every crate asks this type for its paths instead of joining its
//! own, so that the layout on disk is written down once and cannot drift
//! between the engine, the CLI and the lower crates.
//!
//! ```text
//! <root>/images/                        image store (stack-image)
//! <root>/net/                           network state (stack-net)
//! <root>/runtime/                       runtime containers' state.json (stack-runtime)
//! <root>/volumes/<name>/_data           a named volume's data
//! <root>/volumes/<name>/config.json     the configuration it was made from
//! <root>/projects/<project>/            a project: its containers, logs, networks
//! <run>/supervisors/<project>.sock      a project's supervisor
//! <run>/supervisors/<project>.logs.sock its log keeper
//! ```

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
    run_dir: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>, run_dir: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            run_dir: run_dir.into(),
        }
    }

    /// Only what lives under `--root` (the run directory left empty), for
    /// code that never touches sockets.
    pub fn of_root(root: impl Into<PathBuf>) -> Self {
        Self::new(root, PathBuf::new())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn net(&self) -> PathBuf {
        self.root.join("net")
    }

    /// The runtime's state directory (one `<id>/state.json` per container).
    pub fn runtime(&self) -> PathBuf {
        self.root.join("runtime")
    }

    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// A named volume: its data and the configuration it was made from.
    pub fn volume(&self, name: &str) -> PathBuf {
        self.volumes().join(name)
    }

    pub fn volume_data(&self, name: &str) -> PathBuf {
        self.volume(name).join("_data")
    }

    pub fn volume_config(&self, name: &str) -> PathBuf {
        self.volume(name).join("config.json")
    }

    pub fn projects(&self) -> PathBuf {
        self.root.join("projects")
    }

    pub fn project(&self, project: &str) -> PathBuf {
        self.projects().join(project)
    }

    pub fn containers(&self, project: &str) -> PathBuf {
        self.project(project).join("containers")
    }

    pub fn container(&self, project: &str, name: &str) -> PathBuf {
        self.containers(project).join(name)
    }

    pub fn supervisor_log(&self, project: &str) -> PathBuf {
        self.project(project).join("supervisor.log")
    }

    /// The keys of the project's networks that exist, one a line.
    pub fn network_list(&self, project: &str) -> PathBuf {
        self.project(project).join("networks")
    }

    /// The configuration a project network (by key) was made from.
    pub fn network_config(&self, project: &str, key: &str) -> PathBuf {
        self.project(project)
            .join("network-configs")
            .join(format!("{key}.json"))
    }

    pub fn supervisors(&self) -> PathBuf {
        self.run_dir.join("supervisors")
    }

    pub fn supervisor_socket(&self, project: &str) -> PathBuf {
        self.supervisors().join(format!("{project}.sock"))
    }

    pub fn log_keeper_socket(&self, project: &str) -> PathBuf {
        self.supervisors().join(format!("{project}.logs.sock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_where_the_layout_says() {
        let l = Layout::new("/r", "/run/s");
        assert_eq!(l.volume_data("p_v"), Path::new("/r/volumes/p_v/_data"));
        assert_eq!(
            l.container("p", "p-web-1"),
            Path::new("/r/projects/p/containers/p-web-1")
        );
        assert_eq!(
            l.network_config("p", "back"),
            Path::new("/r/projects/p/network-configs/back.json")
        );
        assert_eq!(
            l.supervisor_socket("p"),
            Path::new("/run/s/supervisors/p.sock")
        );
        assert_eq!(
            l.log_keeper_socket("p"),
            Path::new("/run/s/supervisors/p.logs.sock")
        );
    }
}
